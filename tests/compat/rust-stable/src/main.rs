//! The official Azure SDK for Rust, the stable crates (`azure_security_keyvault_secrets` 1.0
//! with `azure_identity` 1.0, which send `api-version=2025-07-01`), against Coffer, unchanged:
//! the same setup and secrets scenario as tests/compat/rust (its `common.rs`, compiled here
//! against the stable crates). Run by tests/compat/test_rust_sdk.py; prints "ok secrets", or
//! the failure and exits 1.
#[path = "../../rust/src/common.rs"]
mod common;

#[tokio::main]
async fn main() {
    let done = match common::setup() {
        Ok(s) => common::secrets(&s).await,
        Err(e) => Err(e),
    };
    if let Err(e) = done {
        eprintln!("FAILED: secrets: {e}");
        std::process::exit(1);
    }
    println!("ok secrets");
}
