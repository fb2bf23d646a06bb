//! The verbs every versioned object has alike (`az keyvault secret|key|certificate`): soft
//! delete, the deleted list, recover, purge, backup to a file and restore from one. Flattened
//! into `coffer secret`, `coffer key` and `coffer certificate`.
use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

use super::args::Target;
use crate::client::{CliError, CliResult, Client};

#[derive(clap::Subcommand)]
pub enum LifecycleCommand {
    /// Soft-delete (recoverable until the vault's retention ends).
    Delete {
        #[command(flatten)]
        target: Target,
    },
    /// List deleted objects.
    ListDeleted {
        #[arg(long)]
        vault_name: String,
        #[arg(long)]
        maxresults: Option<usize>,
    },
    /// Show a deleted object.
    ShowDeleted {
        #[command(flatten)]
        target: Target,
    },
    /// Recover a deleted object.
    Recover {
        #[command(flatten)]
        target: Target,
    },
    /// Permanently erase a deleted object.
    Purge {
        #[command(flatten)]
        target: Target,
    },
    /// Write an encrypted backup of every version to a file.
    Backup {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
    /// Restore a backup file into a vault, under the name it was backed up with.
    Restore {
        #[arg(long)]
        vault_name: String,
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
}

/// Runs one lifecycle verb on `collection` (`secrets`, `keys` or `certificates`).
pub async fn run(c: &mut Client, collection: &str, cmd: LifecycleCommand) -> CliResult<Option<Value>> {
    let deleted = format!("deleted{collection}");
    let value = match cmd {
        LifecycleCommand::Delete { target } => {
            c.data(&target.vault_name, Method::DELETE, &format!("/{collection}/{}", target.name), None).await?
        }
        LifecycleCommand::ListDeleted { vault_name, maxresults } => {
            c.data_list(&vault_name, &format!("/{deleted}"), maxresults).await?
        }
        LifecycleCommand::ShowDeleted { target } => {
            c.data(&target.vault_name, Method::GET, &format!("/{deleted}/{}", target.name), None).await?
        }
        LifecycleCommand::Recover { target } => {
            c.data(&target.vault_name, Method::POST, &format!("/{deleted}/{}/recover", target.name), None).await?
        }
        LifecycleCommand::Purge { target } => {
            c.data(&target.vault_name, Method::DELETE, &format!("/{deleted}/{}", target.name), None).await?;
            return Ok(None);
        }
        LifecycleCommand::Backup { target, file } => {
            let path = format!("/{collection}/{}/backup", target.name);
            let r = c.data(&target.vault_name, Method::POST, &path, None).await?;
            let blob =
                r["value"].as_str().ok_or_else(|| CliError::Server("the backup response has no value".into()))?;
            std::fs::write(&file, blob)
                .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", file.display())))?;
            return Ok(None);
        }
        LifecycleCommand::Restore { vault_name, file } => {
            let blob = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
            let body = json!({"value": blob.trim()});
            c.data(&vault_name, Method::POST, &format!("/{collection}/restore"), Some(&body)).await?
        }
    };
    Ok(Some(value))
}
