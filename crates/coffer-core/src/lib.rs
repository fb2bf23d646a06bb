//! Coffer's domain: pure logic with no I/O. Names, versioned-object attributes, the soft-delete
//! lifecycle, vaults and their access policies, the permission evaluator, the error type and the
//! injected clock. Everything here is deterministic given a `Clock`.
#![forbid(unsafe_code)]

pub mod clock;
pub mod duration;
pub mod error;
pub mod lifecycle;
pub mod limits;
pub mod names;
pub mod network;
pub mod object;
pub mod permissions;
pub mod principal;
pub mod rbac;
pub mod vault;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, ErrorKind, Result};
