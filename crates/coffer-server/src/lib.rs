//! The Coffer server: one axum application on one TLS listener. Requests are routed by `Host`:
//! `{vault}.{dns-suffix}` goes to that vault's data plane (Azure Key Vault's API), the bare host
//! to identity, management, the directory, role assignments, the audit API and the portal.
#![forbid(unsafe_code)]

pub mod api_version;
pub mod app;
pub mod audit;
pub mod audit_api;
pub mod authentication;
pub mod authorization;
pub mod authorization_api;
pub mod certificates;
pub mod config;
pub mod config_file;
pub mod connections;
pub mod dataplane;
pub mod dev_api;
pub mod dev_bootstrap;
pub mod directory;
pub mod directory_api;
pub mod events;
pub mod graph;
pub mod hardening;
pub mod host;
pub mod http;
pub mod identity;
pub mod jobs;
pub mod key_cache;
pub mod keyring;
pub mod keys;
pub mod lifetime_markers;
pub mod management;
pub mod metrics;
pub mod migration;
pub mod node;
pub mod objects;
pub mod operator_api;
pub mod portal;
pub mod routes;
pub mod seal;
pub mod secrets;
pub mod server;
pub mod sessions;
pub mod sign_in;
pub mod state;
pub mod system;
pub mod tls;
pub mod tokens;
pub mod vaults;

pub use app::{Opened, build_app, open};
pub use config::ServerConfig;
pub use server::{RunningServer, start};
