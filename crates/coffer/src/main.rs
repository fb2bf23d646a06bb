//! `coffer`: the server (`coffer serve`) and a command-line client in the style of
//! `az keyvault`. Exit codes: 0 success, 1 usage error, 2 error from the server.
#![forbid(unsafe_code)]

mod client;
mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::client::CliError;
use crate::output::Format;

#[derive(Parser)]
#[command(name = "coffer", version, about = "Coffer: a self-hosted key vault that speaks the Azure Key Vault API")]
struct Cli {
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value = "json")]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(commands::serve::ServeArgs),
    /// Manage vaults.
    #[command(subcommand)]
    Vault(commands::vault::VaultCommand),
    /// Manage secrets in a vault.
    #[command(subcommand)]
    Secret(commands::secret::SecretCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 1,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await.map(|_| None),
            Command::Vault(cmd) => commands::vault::run(cmd).await,
            Command::Secret(cmd) => commands::secret::run(cmd).await,
        }
    });
    match result {
        Ok(Some(value)) => {
            println!("{}", output::render(&value, cli.output));
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(CliError::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
        Err(CliError::Server(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
    }
}
