//! What the store's tests share beyond the conformance suite.
pub mod postgres;
