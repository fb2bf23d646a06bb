//! `coffer audit …`: read and check the audit log (tenant administrators).
//! `tail` and `query` print JSON lines (one record per line) or, with `-o table|tsv`, one row
//! per record; `verify` prints the report and exits non-zero naming the first bad record.
use std::path::PathBuf;
use std::time::Duration;

use coffer_audit::chain;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{CliError, CliResult, Client, Settings};
use crate::output::{Format, render};

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// The newest records (oldest of them first); with --follow, keep printing new ones.
    Tail {
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        #[arg(short, long)]
        follow: bool,
    },
    /// Records that match every filter given, newest first.
    Query(QueryArgs),
    /// Check the hash chains (the store and the file sink), or exported files with --file.
    Verify {
        /// Audit files to check offline, oldest first (e.g. audit.log.2 audit.log.1 audit.log).
        #[arg(long, num_args = 1..)]
        file: Vec<PathBuf>,
    },
    /// Sign the chain's head now (a checkpoint).
    Checkpoint,
}

#[derive(clap::Args)]
pub struct QueryArgs {
    #[arg(long)]
    vault: Option<String>,
    /// An object's name (secret, key or certificate).
    #[arg(long)]
    object: Option<String>,
    /// The caller's object id.
    #[arg(long)]
    caller: Option<String>,
    /// An operation name, e.g. SecretGet, KeySign, VaultAccessPolicyChange, Authentication.
    #[arg(long)]
    operation: Option<String>,
    /// success, denied, failed, started or event.
    #[arg(long)]
    result: Option<String>,
    /// From this time (2027-01-31T12:00:00Z, 2027-01-31 or Unix seconds).
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    until: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

fn push(q: &mut Vec<(String, String)>, k: &str, v: Option<String>) {
    if let Some(v) = v {
        q.push((k.to_string(), v));
    }
}

async fn fetch(c: &mut Client, q: &[(String, String)]) -> CliResult<Vec<Value>> {
    let qs = serde_urlencoded::to_string(q).map_err(|e| CliError::Usage(e.to_string()))?;
    let v = c.management(Method::GET, &format!("/audit/records?{qs}"), None).await?;
    Ok(v["value"].as_array().cloned().unwrap_or_default())
}

/// One line per record: the whole record as JSON, or its main fields as a row.
fn print(records: &[Value], format: Format) {
    if format == Format::Json {
        for r in records {
            println!("{r}");
        }
        return;
    }
    let rows: Vec<Value> = records
        .iter()
        .map(|r| {
            let claim = &r["identity"]["claim"];
            let props = &r["properties"];
            json!({
                "seq": r["seq"], "time": r["time"], "operation": r["operationName"], "result": r["result"],
                "status": props["httpStatusCode"], "caller": claim["name"], "callerId": claim["oid"],
                "vault": props["vaultName"], "object": props["objectName"], "ip": r["callerIpAddress"],
            })
        })
        .collect();
    println!("{}", render(&Value::Array(rows), format));
}

pub async fn run(cmd: AuditCommand, profile: &str, format: Format) -> CliResult<Option<Value>> {
    let mut c = Client::new(Settings::resolve(profile)?)?;
    match cmd {
        AuditCommand::Tail { lines, follow } => {
            let q = vec![("limit".to_string(), lines.max(1).to_string()), ("order".into(), "newest".into())];
            let mut records = fetch(&mut c, &q).await?;
            records.reverse();
            print(&records, format);
            let mut last = records.last().and_then(|r| r["seq"].as_i64()).unwrap_or(0);
            if !follow {
                return Ok(None);
            }
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let q = vec![
                    ("after".to_string(), last.to_string()),
                    ("order".into(), "oldest".into()),
                    ("limit".into(), "1000".into()),
                ];
                let new = fetch(&mut c, &q).await?;
                if let Some(s) = new.last().and_then(|r| r["seq"].as_i64()) {
                    last = s;
                }
                print(&new, format);
            }
        }
        AuditCommand::Query(a) => {
            let mut q = vec![("limit".to_string(), a.limit.to_string())];
            push(&mut q, "vault", a.vault);
            push(&mut q, "object", a.object);
            push(&mut q, "caller", a.caller);
            push(&mut q, "operation", a.operation);
            push(&mut q, "result", a.result);
            push(&mut q, "since", a.since.as_deref().map(super::args::date).transpose()?.map(|d| d.to_string()));
            push(&mut q, "until", a.until.as_deref().map(super::args::date).transpose()?.map(|d| d.to_string()));
            print(&fetch(&mut c, &q).await?, format);
            Ok(None)
        }
        AuditCommand::Checkpoint => Ok(Some(c.management(Method::POST, "/audit/checkpoint", None).await?)),
        AuditCommand::Verify { file } => {
            let report = if file.is_empty() {
                c.management(Method::GET, "/audit/verify", None).await?
            } else {
                let keys = c.management(Method::GET, "/audit/checkpoint-key", None).await?;
                let key = verifying_key(&keys["keys"][0])?;
                serde_json::to_value(verify_files(&file, &key)?).map_err(|e| CliError::Usage(e.to_string()))?
            };
            println!("{}", render(&report, Format::Json));
            if report["ok"].as_bool() == Some(true) {
                return Ok(None);
            }
            let first = ["store", "file", ""]
                .iter()
                .map(|k| if k.is_empty() { &report } else { &report[*k] })
                .find_map(|r| r["findings"].as_array().and_then(|f| f.first()).map(|f| f["message"].clone()));
            let first = first.and_then(|m| m.as_str().map(str::to_string)).unwrap_or_else(|| "unknown".into());
            Err(CliError::Server(format!("the audit log does not verify: {first}")))
        }
    }
}

/// The P-256 public key of a JWK (`x`, `y`).
fn verifying_key(jwk: &Value) -> CliResult<coffer_audit::VerifyingKey> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let part = |k: &str| {
        jwk[k].as_str().and_then(|s| b64.decode(s).ok()).ok_or_else(|| CliError::Server("bad checkpoint key".into()))
    };
    let mut point = vec![4u8];
    point.extend(part("x")?);
    point.extend(part("y")?);
    Ok(coffer_audit::VerifyingKey { kid: jwk["kid"].as_str().unwrap_or_default().to_string(), point })
}

/// Offline check of exported files with the server's checkpoint key (the server's own reader).
fn verify_files(files: &[PathBuf], key: &coffer_audit::VerifyingKey) -> CliResult<chain::Report> {
    coffer_audit::verify::read_files(files, &coffer_audit::verify::Reading::Exported, key)
        .map_err(|e| CliError::Usage(e.to_string()))
}
