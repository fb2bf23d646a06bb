//! One module per command group.
pub mod args;
pub mod secret;
pub mod serve;
pub mod vault;
