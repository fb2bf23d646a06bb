//! What sign-ins may cost, per node and in memory: failed attempts per claimed principal and
//! per address (`throttle`), and client assertions already redeemed (`replay`). Used by the
//! token endpoint and the portal's sign-in form; held in the server state.
pub mod replay;
pub mod throttle;

pub use replay::SeenAssertions;
pub use throttle::Throttle;
