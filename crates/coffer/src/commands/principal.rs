//! `coffer principal …`: users, applications and managed identities, and their credentials.
use reqwest::Method;
use serde_json::{Value, json};

use super::{args, stdin};
use crate::client::{CliError, CliResult, Client, Settings};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum PrincipalType {
    User,
    App,
    ManagedIdentity,
}

#[derive(clap::Subcommand)]
pub enum PrincipalCommand {
    /// Create a principal; prints its object id (apps and managed identities: client id;
    /// managed identities: identity endpoint and header).
    Create {
        #[arg(long = "type", value_enum)]
        kind: PrincipalType,
        #[arg(long)]
        name: String,
        /// Read the user's password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Make the principal a tenant administrator (manages vaults and the directory).
        #[arg(long)]
        tenant_admin: bool,
    },
    /// List principals.
    List,
    /// Show a principal (by object id or client id).
    Show {
        #[arg(long)]
        id: String,
    },
    /// Disable a principal: no new tokens, and its tokens stop working at once.
    Disable {
        #[arg(long)]
        id: String,
    },
    Enable {
        #[arg(long)]
        id: String,
    },
    /// Delete a principal with its credentials and memberships.
    Delete {
        #[arg(long)]
        id: String,
    },
    /// Credentials: client secrets and certificates (apps), identity headers (managed
    /// identities), passwords (users).
    #[command(subcommand)]
    Credential(CredentialCommand),
}

#[derive(clap::Subcommand)]
pub enum CredentialCommand {
    /// Add a credential; a client secret or identity header is shown once.
    Add {
        #[arg(long)]
        id: String,
        /// Expiry (UTC date-time, date, or Unix seconds).
        #[arg(long)]
        expires: Option<String>,
        /// An application's public certificate (PEM) for certificate credentials.
        #[arg(long)]
        certificate: Option<std::path::PathBuf>,
        /// A user's new password, from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    List {
        #[arg(long)]
        id: String,
    },
    Remove {
        #[arg(long)]
        id: String,
        #[arg(long)]
        credential_id: String,
    },
}

pub async fn run(cmd: PrincipalCommand, profile: &str) -> CliResult<Option<Value>> {
    let mut c = Client::new(Settings::resolve(profile)?)?;
    let value = match cmd {
        PrincipalCommand::Create { kind, name, password_stdin, tenant_admin } => {
            let kind = match kind {
                PrincipalType::User => "user",
                PrincipalType::App => "app",
                PrincipalType::ManagedIdentity => "managed-identity",
            };
            let mut body = json!({"type": kind, "name": name, "tenant_admin": tenant_admin});
            if password_stdin {
                if kind != "user" {
                    return Err(CliError::Usage("--password-stdin is for users".into()));
                }
                body["password"] = stdin::read_secret_stdin()?.as_str().into();
            }
            c.management(Method::POST, "/directory/principals", Some(&body)).await?
        }
        PrincipalCommand::List => c.management(Method::GET, "/directory/principals", None).await?["value"].clone(),
        PrincipalCommand::Show { id } => {
            c.management(Method::GET, &format!("/directory/principals/{id}"), None).await?
        }
        PrincipalCommand::Disable { id } => set_enabled(&mut c, &id, false).await?,
        PrincipalCommand::Enable { id } => set_enabled(&mut c, &id, true).await?,
        PrincipalCommand::Delete { id } => {
            c.management(Method::DELETE, &format!("/directory/principals/{id}"), None).await?;
            return Ok(None);
        }
        PrincipalCommand::Credential(CredentialCommand::Add { id, expires, certificate, password_stdin }) => {
            let mut body = json!({});
            if let Some(e) = expires {
                body["expires"] = args::date(&e)?.into();
            }
            if let Some(path) = certificate {
                let pem = std::fs::read_to_string(&path)
                    .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
                body["certificate"] = pem.into();
            }
            if password_stdin {
                body["password"] = stdin::read_secret_stdin()?.as_str().into();
            }
            c.management(Method::POST, &format!("/directory/principals/{id}/credentials"), Some(&body)).await?
        }
        PrincipalCommand::Credential(CredentialCommand::List { id }) => {
            c.management(Method::GET, &format!("/directory/principals/{id}/credentials"), None).await?["value"].clone()
        }
        PrincipalCommand::Credential(CredentialCommand::Remove { id, credential_id }) => {
            c.management(Method::DELETE, &format!("/directory/principals/{id}/credentials/{credential_id}"), None)
                .await?;
            return Ok(None);
        }
    };
    Ok(Some(value))
}

async fn set_enabled(c: &mut Client, id: &str, enabled: bool) -> CliResult<Value> {
    c.management(Method::PATCH, &format!("/directory/principals/{id}"), Some(&json!({"enabled": enabled}))).await
}
