//! `coffer secret …`, in the style of `az keyvault secret`.
use reqwest::Method;
use serde_json::{Value, json};

use super::args::{self, Target};
use super::lifecycle::{self, LifecycleCommand};
use crate::client::{CliError, CliResult, Client, Settings};

#[derive(clap::Args)]
pub struct Attrs {
    /// Expiry (UTC date-time, date, or Unix seconds).
    #[arg(long)]
    expires: Option<String>,
    /// Not valid before (UTC date-time, date, or Unix seconds).
    #[arg(long)]
    not_before: Option<String>,
    #[arg(long)]
    content_type: Option<String>,
    /// Space-separated KEY=VALUE pairs.
    #[arg(long, num_args = 0..)]
    tags: Option<Vec<String>>,
}

#[derive(clap::Subcommand)]
pub enum SecretCommand {
    /// Create a secret, or a new version of it.
    Set {
        #[command(flatten)]
        target: Target,
        /// (A value may begin with '-', as a PEM block does.)
        #[arg(long, conflicts_with = "file", required_unless_present = "file", allow_hyphen_values = true)]
        value: Option<String>,
        /// Read the value from a file (UTF-8).
        #[arg(long, short = 'f')]
        file: Option<std::path::PathBuf>,
        #[command(flatten)]
        attrs: Attrs,
        /// Create the version disabled.
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        disabled: Option<bool>,
    },
    /// Show a secret with its value (latest version unless --version).
    Show {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'v')]
        version: Option<String>,
    },
    /// List secrets (no values).
    List {
        #[arg(long)]
        vault_name: String,
        #[arg(long)]
        maxresults: Option<usize>,
    },
    /// List the versions of a secret.
    ListVersions {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        maxresults: Option<usize>,
    },
    /// Update attributes, content type or tags of a version.
    SetAttributes {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'v')]
        version: Option<String>,
        #[arg(long)]
        enabled: Option<bool>,
        #[command(flatten)]
        attrs: Attrs,
    },
    #[command(flatten)]
    Lifecycle(LifecycleCommand),
}

fn attributes(attrs: &Attrs, enabled: Option<bool>) -> CliResult<Value> {
    let mut a = serde_json::Map::new();
    if let Some(e) = enabled {
        a.insert("enabled".into(), e.into());
    }
    if let Some(x) = &attrs.expires {
        a.insert("exp".into(), args::date(x)?.into());
    }
    if let Some(n) = &attrs.not_before {
        a.insert("nbf".into(), args::date(n)?.into());
    }
    Ok(Value::Object(a))
}

fn path(name: &str, version: Option<&str>) -> String {
    format!("/secrets/{name}/{}", version.unwrap_or(""))
}

fn read_file(file: &std::path::Path) -> CliResult<String> {
    std::fs::read_to_string(file).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))
}

pub async fn run(cmd: SecretCommand, profile: &str) -> CliResult<Option<Value>> {
    let mut c = Client::new(Settings::resolve(profile)?)?;
    let value = match cmd {
        SecretCommand::Lifecycle(cmd) => return lifecycle::run(&mut c, "secrets", cmd).await,
        SecretCommand::Set { target, value, file, attrs, disabled } => {
            let value = match (value, file) {
                (Some(v), _) => v,
                (None, Some(f)) => read_file(&f)?,
                (None, None) => return Err(CliError::Usage("give --value or --file".into())),
            };
            let mut body = json!({"value": value, "attributes": attributes(&attrs, disabled.map(|d| !d))?});
            if let Some(ct) = attrs.content_type {
                body["contentType"] = ct.into();
            }
            if let Some(t) = attrs.tags {
                body["tags"] = args::tags(&t)?;
            }
            c.data(&target.vault_name, Method::PUT, &format!("/secrets/{}", target.name), Some(&body)).await?
        }
        SecretCommand::Show { target, version } => {
            c.data(&target.vault_name, Method::GET, &path(&target.name, version.as_deref()), None).await?
        }
        SecretCommand::List { vault_name, maxresults } => c.data_list(&vault_name, "/secrets", maxresults).await?,
        SecretCommand::ListVersions { target, maxresults } => {
            c.data_list(&target.vault_name, &format!("/secrets/{}/versions", target.name), maxresults).await?
        }
        SecretCommand::SetAttributes { target, version, enabled, attrs } => {
            let mut body = json!({"attributes": attributes(&attrs, enabled)?});
            if let Some(ct) = attrs.content_type {
                body["contentType"] = ct.into();
            }
            if let Some(t) = attrs.tags {
                body["tags"] = args::tags(&t)?;
            }
            c.data(&target.vault_name, Method::PATCH, &path(&target.name, version.as_deref()), Some(&body)).await?
        }
    };
    Ok(Some(value))
}
