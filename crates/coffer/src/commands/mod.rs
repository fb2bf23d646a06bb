//! One module per command group.
pub mod args;
pub mod audit;
pub mod certificate;
pub mod dev;
pub mod group;
pub mod key;
pub mod lifecycle;
pub mod login;
pub mod operator;
pub mod principal;
pub mod role;
pub mod secret;
pub mod serve;
mod stdin;
pub mod vault;
