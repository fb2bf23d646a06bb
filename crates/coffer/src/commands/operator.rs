//! `coffer operator …`: initialise, unseal, seal and read the status of a production server
//! (as `bao operator …`). `init`, `status` and `unseal` need no token (a sealed server has no
//! identity provider); `seal` needs a tenant administrator's.
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::client::{CliError, CliResult, Client, Settings, env, server_message};

#[derive(clap::Args)]
pub struct ServerArgs {
    /// The server (default COFFER_SERVER), e.g. https://vault.hospital.internal:8443.
    #[arg(long)]
    server: Option<String>,
    /// The CA that signed the server's certificate (default COFFER_CA_FILE; else the system's).
    #[arg(long)]
    ca_file: Option<String>,
}

/// How the key is split: `threshold` of `shares` rebuild it.
#[derive(clap::Args)]
pub struct SplitArgs {
    /// Shares to make.
    #[arg(long, default_value_t = 5)]
    key_shares: u32,
    /// Shares needed to unseal.
    #[arg(long, default_value_t = 3)]
    key_threshold: u32,
}

#[derive(clap::Subcommand)]
pub enum OperatorCommand {
    /// Initialise a server started on an empty data directory: a new root key split into
    /// shares, a tenant and a bootstrap administrator application. Prints them once.
    Init {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        split: SplitArgs,
    },
    /// Enter one key share (read from standard input, or a prompt without echo).
    Unseal {
        #[command(flatten)]
        server: ServerArgs,
        /// Forget the shares entered so far.
        #[arg(long)]
        reset: bool,
    },
    /// A new split of the root key (new shares, a new threshold), from threshold current
    /// shares on standard input, one per line. The new shares are printed once and take
    /// effect with `rekey --verify` (threshold of the new shares on standard input); until
    /// then the current shares still unseal.
    Rekey {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        split: SplitArgs,
        /// Show threshold of the new shares: the new split takes effect.
        #[arg(long)]
        verify: bool,
    },
    /// A new root key while the server serves: every key sealed under the root is rewrapped,
    /// then the old root destroyed. Threshold current shares on standard input (with PKCS#11
    /// the recovery shares), one per line. With PKCS#11 it is done at once; with Shamir the
    /// shares are the root key, so the new shares are printed once and the rotation runs with
    /// `rotate-root --verify` (threshold of the new shares on standard input).
    RotateRoot {
        #[command(flatten)]
        server: ServerArgs,
        /// Shamir: new shares to make (default: as many as now).
        #[arg(long)]
        key_shares: Option<u32>,
        /// Shamir: new shares needed to unseal (default: as now).
        #[arg(long)]
        key_threshold: Option<u32>,
        /// Shamir: show threshold of the new shares; the rotation runs.
        #[arg(long)]
        verify: bool,
    },
    /// Move a stopped server's data directory to the seal its configuration names: from a dev
    /// data directory (its root.key), from a Shamir seal (the current shares on standard input,
    /// one per line) or from a PKCS#11 token (`--from-config`, the recovery shares on standard
    /// input) to a new Shamir root key or to a PKCS#11 token.
    /// Every vault, secret, key and certificate stays; prints the new shares once.
    MigrateSeal {
        /// The configuration file of the server (its data_dir and [seal]).
        #[arg(long)]
        config: std::path::PathBuf,
        /// The seal to move to; must be the one the configuration names.
        #[arg(long, value_parser = ["shamir", "pkcs11"])]
        to: String,
        /// Moving from a PKCS#11 seal: the configuration the server ran with (its [seal] says
        /// where the token is). The recovery shares are read from standard input.
        #[arg(long)]
        from_config: Option<std::path::PathBuf>,
        #[command(flatten)]
        split: SplitArgs,
    },
    /// Sealed or not, the threshold, the shares, the progress of an unseal, the provider.
    Status {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Seal the server: the root key and every opened key leave its memory (a tenant
    /// administrator's credentials, as for other commands).
    Seal,
}

/// A client for the operator endpoints (no token).
struct Operator {
    http: reqwest::Client,
    server: String,
}

impl Operator {
    fn new(args: &ServerArgs) -> CliResult<Self> {
        let server = args
            .server
            .clone()
            .or_else(|| env("COFFER_SERVER"))
            .ok_or_else(|| CliError::Usage("give --server or set COFFER_SERVER".into()))?
            .trim_end_matches('/')
            .to_string();
        let mut b = reqwest::Client::builder().https_only(true).timeout(std::time::Duration::from_secs(120));
        if let Some(ca) = args.ca_file.clone().or_else(|| env("COFFER_CA_FILE")) {
            let pem = std::fs::read(&ca).map_err(|e| CliError::Usage(format!("reading the CA file {ca}: {e}")))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| CliError::Usage(format!("parsing the CA file {ca}: {e}")))?;
            b = b.tls_certs_only(certs);
        }
        let http = b.build().map_err(|e| CliError::Server(format!("building the HTTP client: {e}")))?;
        Ok(Self { http, server })
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> CliResult<Value> {
        let url = format!("{}{path}", self.server);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| CliError::Server(format!("cannot reach {url}: {e}")))?;
        let status = resp.status();
        let text =
            Zeroizing::new(resp.text().await.map_err(|e| CliError::Server(format!("reading the response: {e}")))?);
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() { Ok(value) } else { Err(CliError::Server(server_message(status, &value))) }
    }
}

/// Shares, one per line on standard input (or prompted without echo until an empty line).
fn read_shares() -> CliResult<Vec<Zeroizing<String>>> {
    use std::io::{BufRead, IsTerminal};
    let mut out = Vec::new();
    if std::io::stdin().is_terminal() {
        loop {
            let share = rpassword::prompt_password("Key share (empty to finish): ")
                .map(Zeroizing::new)
                .map_err(|e| CliError::Usage(format!("reading the share: {e}")))?;
            if share.trim().is_empty() {
                break;
            }
            out.push(Zeroizing::new(share.trim().to_string()));
        }
    } else {
        for line in std::io::stdin().lock().lines() {
            let line = Zeroizing::new(line.map_err(|e| CliError::Usage(format!("reading standard input: {e}")))?);
            if !line.trim().is_empty() {
                out.push(Zeroizing::new(line.trim().to_string()));
            }
        }
    }
    if out.is_empty() {
        return Err(CliError::Usage("no key shares on standard input (one per line)".into()));
    }
    Ok(out)
}

/// One share: standard input when it is not a terminal, else a prompt without echo.
fn read_share() -> CliResult<Zeroizing<String>> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("Key share (will be hidden): ")
            .map(Zeroizing::new)
            .map_err(|e| CliError::Usage(format!("reading the share: {e}")));
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().read_line(&mut line).map_err(|e| CliError::Usage(format!("reading standard input: {e}")))?;
    let share = Zeroizing::new(line.trim().to_string());
    if share.is_empty() {
        return Err(CliError::Usage("no key share on standard input".into()));
    }
    Ok(share)
}

pub async fn run(cmd: OperatorCommand, profile: &str) -> CliResult<Option<Value>> {
    match cmd {
        OperatorCommand::Init { server, split } => {
            let op = Operator::new(&server)?;
            let body = json!({"key_shares": split.key_shares, "key_threshold": split.key_threshold});
            Ok(Some(op.call(Method::POST, "/operator/init", Some(&body)).await?))
        }
        OperatorCommand::Unseal { server, reset } => {
            let op = Operator::new(&server)?;
            let before = op.call(Method::GET, "/operator/status", None).await?;
            let status = if reset {
                op.call(Method::POST, "/operator/unseal", Some(&json!({"reset": true}))).await?
            } else if before["provider"] == json!("pkcs11") {
                // The token holds the root key: no share to enter.
                op.call(Method::POST, "/operator/unseal", Some(&json!({}))).await?
            } else {
                let share = read_share()?;
                op.call(Method::POST, "/operator/unseal", Some(&json!({ "key": share.as_str() }))).await?
            };
            if let (Some(p), Some(t)) = (status["progress"].as_u64(), status["threshold"].as_u64())
                && status["sealed"] == json!(true)
            {
                eprintln!("Unseal progress: {p}/{t}");
            }
            Ok(Some(status))
        }
        OperatorCommand::Rekey { server, split, verify } => {
            let op = Operator::new(&server)?;
            let shares = read_shares()?;
            let keys: Vec<&str> = shares.iter().map(|s| s.as_str()).collect();
            if verify {
                Ok(Some(op.call(Method::POST, "/operator/rekey/verify", Some(&json!({ "keys": keys }))).await?))
            } else {
                let body = json!({"key_shares": split.key_shares, "key_threshold": split.key_threshold, "keys": keys});
                Ok(Some(op.call(Method::POST, "/operator/rekey", Some(&body)).await?))
            }
        }
        OperatorCommand::RotateRoot { server, key_shares, key_threshold, verify } => {
            let op = Operator::new(&server)?;
            let shares = read_shares()?;
            let keys: Vec<&str> = shares.iter().map(|s| s.as_str()).collect();
            if verify {
                Ok(Some(op.call(Method::POST, "/operator/rotate-root/verify", Some(&json!({ "keys": keys }))).await?))
            } else {
                let body = json!({"key_shares": key_shares, "key_threshold": key_threshold, "keys": keys});
                Ok(Some(op.call(Method::POST, "/operator/rotate-root", Some(&body)).await?))
            }
        }
        OperatorCommand::MigrateSeal { config, to, from_config, split } => {
            let settings =
                coffer_server::config_file::load(Some(&config), &|name| std::env::var(name).ok(), &[], false)
                    .map_err(|e| CliError::Usage(e.0))?;
            let named = match settings.seal {
                coffer_server::config::SealConfig::Shamir => "shamir",
                coffer_server::config::SealConfig::Pkcs11(_) => "pkcs11",
            };
            if named != to {
                return Err(CliError::Usage(format!(
                    "--to {to}, but {} says type = \"{named}\": change [seal] first",
                    config.display()
                )));
            }
            let sealed_now =
                coffer_server::seal::SealFile::read(&settings.data_dir).map_err(|e| CliError::Usage(e.to_string()))?;
            let current = if sealed_now.is_some() { read_shares()? } else { Vec::new() };
            let from = match &from_config {
                Some(path) => {
                    let before =
                        coffer_server::config_file::load(Some(path), &|name| std::env::var(name).ok(), &[], false)
                            .map_err(|e| CliError::Usage(e.0))?;
                    match before.seal {
                        coffer_server::config::SealConfig::Pkcs11(p) => Some(p),
                        coffer_server::config::SealConfig::Shamir => {
                            return Err(CliError::Usage(format!("{} names no PKCS#11 seal", path.display())));
                        }
                    }
                }
                None => None,
            };
            let shares = u8::try_from(split.key_shares).map_err(|_| CliError::Usage("at most 255 shares".into()))?;
            let threshold = u8::try_from(split.key_threshold).map_err(|_| CliError::Usage("at most 255".into()))?;
            let done =
                coffer_server::migration::migrate_seal(&settings, from.as_ref(), &current, (shares, threshold)).await?;
            Ok(Some(serde_json::to_value(&done).map_err(|e| CliError::Server(e.to_string()))?))
        }
        OperatorCommand::Status { server } => {
            let op = Operator::new(&server)?;
            Ok(Some(op.call(Method::GET, "/operator/status", None).await?))
        }
        OperatorCommand::Seal => {
            let mut c = Client::new(Settings::resolve(profile)?)?;
            Ok(Some(c.management(Method::POST, "/operator/seal", None).await?))
        }
    }
}
