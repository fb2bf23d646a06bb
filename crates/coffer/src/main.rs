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

/// mimalloc instead of glibc's malloc: under load glibc's allocation, its frees of memory
/// another thread allocated (the store's connection threads free what request tasks bound)
/// and its consolidation were a quarter of the server's CPU (`perf`, bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "coffer", version, about = "Coffer: a self-hosted key vault that speaks the Azure Key Vault API")]
struct Cli {
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value = "json")]
    output: Format,
    /// The saved sign-in to use (see `coffer login`); COFFER_* variables win over it.
    #[arg(long, global = true, env = "COFFER_PROFILE", default_value = "default")]
    profile: String,
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
    /// Manage keys and use them (encrypt, decrypt, sign, verify, wrap, unwrap).
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    /// Manage certificates (issue, import, download, renew policy, contacts, issuers).
    #[command(subcommand)]
    Certificate(commands::certificate::CertificateCommand),
    /// Manage users, applications and managed identities.
    #[command(subcommand)]
    Principal(commands::principal::PrincipalCommand),
    /// Manage groups.
    #[command(subcommand)]
    Group(commands::group::GroupCommand),
    /// Sign in and save a profile.
    Login(commands::login::LoginArgs),
    /// Forget a saved profile (and revoke its refresh token).
    Logout,
    /// Role assignments and role definitions (RBAC).
    #[command(subcommand)]
    Role(commands::role::RoleCommand),
    /// Explain decisions and list who can do what.
    #[command(subcommand)]
    Access(commands::role::AccessCommand),
    /// The audit log: tail, query, verify, checkpoint.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Initialise, unseal, seal and inspect a production server.
    #[command(subcommand)]
    Operator(commands::operator::OperatorCommand),
    /// Dev-mode tools (moving the server's clock).
    #[command(subcommand)]
    Dev(commands::dev::DevCommand),
    /// Token signing keys of the tenant.
    #[command(subcommand)]
    SigningKey(commands::login::SigningKeyCommand),
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
            Command::Vault(cmd) => commands::vault::run(cmd, &cli.profile).await,
            Command::Secret(cmd) => commands::secret::run(cmd, &cli.profile).await,
            Command::Key(cmd) => commands::key::run(cmd, &cli.profile).await,
            Command::Certificate(cmd) => commands::certificate::run(cmd, &cli.profile).await,
            Command::Principal(cmd) => commands::principal::run(cmd, &cli.profile).await,
            Command::Group(cmd) => commands::group::run(cmd, &cli.profile).await,
            Command::Login(args) => commands::login::login(args, &cli.profile).await,
            Command::Logout => commands::login::logout(&cli.profile).await,
            Command::SigningKey(cmd) => commands::login::signing_key(cmd, &cli.profile).await,
            Command::Role(cmd) => commands::role::role(cmd, &cli.profile).await,
            Command::Access(cmd) => commands::role::access(cmd, &cli.profile).await,
            Command::Dev(cmd) => commands::dev::run(cmd, &cli.profile).await,
            Command::Operator(cmd) => commands::operator::run(cmd, &cli.profile).await,
            Command::Audit(cmd) => commands::audit::run(cmd, &cli.profile, cli.output).await,
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
