//! `coffer dev …`: tools that exist only against a server started with `--dev`.
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{CliError, CliResult, Client, Settings};

#[derive(clap::Subcommand)]
pub enum DevCommand {
    /// Move the server's clock forward (dev mode only), then run the purge job: retention
    /// periods and expiry dates can be tested without waiting.
    AdvanceTime {
        #[arg(long, default_value_t = 0)]
        days: i64,
        #[arg(long, default_value_t = 0)]
        seconds: i64,
    },
}

pub async fn run(cmd: DevCommand, profile: &str) -> CliResult<Option<Value>> {
    let mut c = Client::new(Settings::resolve(profile)?)?;
    match cmd {
        DevCommand::AdvanceTime { days, seconds } => {
            let total = days
                .checked_mul(86_400)
                .and_then(|d| d.checked_add(seconds))
                .ok_or_else(|| CliError::Usage("too far".into()))?;
            if total <= 0 {
                return Err(CliError::Usage("give --days and/or --seconds (time only moves forward)".into()));
            }
            Ok(Some(c.management(Method::POST, "/dev/advance-time", Some(&json!({"seconds": total}))).await?))
        }
    }
}
