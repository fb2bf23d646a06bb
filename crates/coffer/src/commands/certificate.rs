//! `coffer certificate …`, in the style of `az keyvault certificate`. Policies are JSON in the
//! API's own wire form (`issuer`, `key_props`, `x509_props`, `lifetime_actions`, …), inline or
//! `@file`; `get-default-policy` prints one to start from.
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};

use super::args::{self, Target};
use super::lifecycle::{self, LifecycleCommand};
use crate::client::{CliError, CliResult, Client, Settings};

#[derive(clap::Subcommand)]
pub enum CertificateCommand {
    /// Create a certificate from a policy and wait until it is issued (or pending a merge).
    Create {
        #[command(flatten)]
        target: Target,
        /// The policy as JSON (inline or @file); the default policy when omitted.
        #[arg(long, short = 'p')]
        policy: Option<String>,
        #[arg(long, num_args = 0..)]
        tags: Option<Vec<String>>,
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        disabled: Option<bool>,
    },
    /// Import a certificate with its private key from a PFX/PKCS#12 or PEM file.
    Import {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'f')]
        file: PathBuf,
        /// The PFX password.
        #[arg(long)]
        password: Option<String>,
        #[arg(long, short = 'p')]
        policy: Option<String>,
        #[arg(long, num_args = 0..)]
        tags: Option<Vec<String>>,
    },
    Show {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'v')]
        version: Option<String>,
    },
    /// Write the public certificate to a file (no private key: use `secret show` for that).
    Download {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'v')]
        version: Option<String>,
        #[arg(long, short = 'f')]
        file: PathBuf,
        #[arg(long, short = 'e', value_parser = ["PEM", "DER"], default_value = "PEM")]
        encoding: String,
    },
    List {
        #[arg(long)]
        vault_name: String,
        /// Also list certificates that so far exist only as a pending operation.
        #[arg(long)]
        include_pending: bool,
    },
    ListVersions {
        #[command(flatten)]
        target: Target,
    },
    /// Change a version's attributes and tags, or the certificate's policy.
    SetAttributes {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'v')]
        version: Option<String>,
        #[arg(long)]
        enabled: Option<bool>,
        #[arg(long, num_args = 0..)]
        tags: Option<Vec<String>>,
        #[arg(long, short = 'p')]
        policy: Option<String>,
    },
    /// Print the default policy (self-signed, RSA 2048, 12 months, renewed 90 days before expiry).
    GetDefaultPolicy,
    /// The pending operation of a certificate (issuance by an outside CA).
    #[command(subcommand)]
    Pending(PendingCommand),
    /// The vault's certificate contacts.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// The vault's certificate issuers.
    #[command(subcommand)]
    Issuer(IssuerCommand),
    #[command(flatten)]
    Lifecycle(LifecycleCommand),
}

#[derive(clap::Subcommand)]
pub enum PendingCommand {
    Show {
        #[command(flatten)]
        target: Target,
    },
    /// Complete the pending operation with the certificate (chain) signed by the CA.
    Merge {
        #[command(flatten)]
        target: Target,
        /// PEM (one or more certificates) or DER.
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
    Delete {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(clap::Subcommand)]
pub enum ContactCommand {
    List {
        #[arg(long)]
        vault_name: String,
    },
    Add {
        #[arg(long)]
        vault_name: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        phone: Option<String>,
    },
    Delete {
        #[arg(long)]
        vault_name: String,
        #[arg(long)]
        email: String,
    },
}

#[derive(clap::Args)]
pub struct IssuerArgs {
    #[arg(long)]
    vault_name: String,
    #[arg(long)]
    issuer_name: String,
    #[arg(long)]
    account_id: Option<String>,
    #[arg(long)]
    password: Option<String>,
    #[arg(long)]
    organization_id: Option<String>,
    #[arg(long)]
    disabled: Option<bool>,
}

#[derive(clap::Subcommand)]
pub enum IssuerCommand {
    Create {
        #[command(flatten)]
        issuer: IssuerArgs,
        /// The CA: DigiCert, GlobalSign, OneCertV2-PublicCA, OneCertV2-PrivateCA, …
        #[arg(long)]
        provider_name: String,
    },
    Update {
        #[command(flatten)]
        issuer: IssuerArgs,
        #[arg(long)]
        provider_name: Option<String>,
    },
    Show {
        #[arg(long)]
        vault_name: String,
        #[arg(long)]
        issuer_name: String,
    },
    List {
        #[arg(long)]
        vault_name: String,
    },
    Delete {
        #[arg(long)]
        vault_name: String,
        #[arg(long)]
        issuer_name: String,
    },
}

/// The policy `az keyvault certificate get-default-policy` prints, in the API's wire form.
pub fn default_policy() -> Value {
    json!({
        "issuer": {"name": "Self"},
        "key_props": {"exportable": true, "kty": "RSA", "key_size": 2048, "reuse_key": true},
        "lifetime_actions": [{"action": {"action_type": "AutoRenew"}, "trigger": {"days_before_expiry": 90}}],
        "secret_props": {"contentType": "application/x-pkcs12"},
        "x509_props": {
            "key_usage": ["cRLSign", "dataEncipherment", "digitalSignature", "keyEncipherment", "keyAgreement", "keyCertSign"],
            "subject": "CN=CLIGetDefaultPolicy",
            "validity_months": 12
        }
    })
}

fn read_file(path: &Path) -> CliResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))
}

fn write_file(path: &Path, bytes: &[u8]) -> CliResult<()> {
    std::fs::write(path, bytes).map_err(|e| CliError::Usage(format!("cannot write {}: {e}", path.display())))
}

/// JSON given inline or as `@file`.
fn json_arg(value: &str, what: &str) -> CliResult<Value> {
    let text = match value.strip_prefix('@') {
        Some(p) => String::from_utf8_lossy(&read_file(Path::new(p))?).into_owned(),
        None => value.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("{what} is not JSON: {e}")))
}

/// The certificates of a PEM bundle (or one DER certificate) as base64 DER, for `x5c`.
fn certificate_chain(bytes: &[u8]) -> CliResult<Vec<String>> {
    let text = String::from_utf8_lossy(bytes);
    if !text.contains("-----BEGIN") {
        return Ok(vec![STANDARD.encode(bytes)]);
    }
    let mut chain = Vec::new();
    let mut inside: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            inside = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(b64) = inside.take() {
                chain.push(b64);
            }
        } else if let Some(b64) = inside.as_mut() {
            b64.push_str(line);
        }
    }
    if chain.is_empty() {
        return Err(CliError::Usage("the file has no PEM CERTIFICATE block".into()));
    }
    Ok(chain)
}

fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Waits for a create to leave `inProgress`, as `az` does; returns the certificate once
/// issued, or the pending operation when an outside CA must sign (merge) or it failed.
async fn wait_for_issuance(c: &mut Client, target: &Target, mut op: Value) -> CliResult<Value> {
    let path = format!("/certificates/{}/pending", target.name);
    for _ in 0..600 {
        match op["status"].as_str() {
            Some("inProgress") if op["csr"].is_string() && op["issuer"]["name"] == "Unknown" => return Ok(op),
            Some("inProgress") => {}
            Some("completed") => {
                return c.data(&target.vault_name, Method::GET, &format!("/certificates/{}", target.name), None).await;
            }
            _ => return Ok(op),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        op = c.data(&target.vault_name, Method::GET, &path, None).await?;
    }
    Ok(op)
}

async fn contacts(c: &mut Client, vault: &str) -> CliResult<Vec<Value>> {
    match c.data(vault, Method::GET, "/certificates/contacts", None).await {
        Ok(v) => Ok(v["contacts"].as_array().cloned().unwrap_or_default()),
        Err(CliError::Server(m)) if m.contains("ContactsNotFound") || m.contains("NotFound") => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn issuer_body(a: &IssuerArgs, provider: Option<String>) -> Value {
    let mut body = json!({});
    if let Some(p) = provider {
        body["provider"] = p.into();
    }
    if a.account_id.is_some() || a.password.is_some() {
        body["credentials"] = json!({"account_id": a.account_id, "pwd": a.password});
    }
    if let Some(o) = &a.organization_id {
        body["org_details"] = json!({"id": o});
    }
    if let Some(d) = a.disabled {
        body["attributes"] = json!({"enabled": !d});
    }
    body
}

pub async fn run(cmd: CertificateCommand, profile: &str) -> CliResult<Option<Value>> {
    if let CertificateCommand::GetDefaultPolicy = cmd {
        return Ok(Some(default_policy()));
    }
    let mut c = Client::new(Settings::resolve(profile)?)?;
    let value = match cmd {
        CertificateCommand::Lifecycle(cmd) => return lifecycle::run(&mut c, "certificates", cmd).await,
        CertificateCommand::GetDefaultPolicy => default_policy(),
        CertificateCommand::Create { target, policy, tags, disabled } => {
            let policy = match policy {
                Some(p) => json_arg(&p, "--policy")?,
                None => default_policy(),
            };
            let mut body = json!({"policy": policy});
            if let Some(t) = &tags {
                body["tags"] = args::tags(t)?;
            }
            if let Some(d) = disabled {
                body["attributes"] = json!({"enabled": !d});
            }
            let op = c
                .data(&target.vault_name, Method::POST, &format!("/certificates/{}/create", target.name), Some(&body))
                .await?;
            wait_for_issuance(&mut c, &target, op).await?
        }
        CertificateCommand::Import { target, file, password, policy, tags } => {
            let bytes = read_file(&file)?;
            let is_pem = String::from_utf8_lossy(&bytes).contains("-----BEGIN");
            let (value, content_type) = if is_pem {
                (String::from_utf8_lossy(&bytes).into_owned(), "application/x-pem-file")
            } else {
                (STANDARD.encode(&bytes), "application/x-pkcs12")
            };
            let mut policy = match policy {
                Some(p) => json_arg(&p, "--policy")?,
                None => json!({}),
            };
            policy["secret_props"] = json!({"contentType": content_type});
            let mut body = json!({"value": value, "policy": policy});
            if let Some(p) = password {
                body["pwd"] = p.into();
            }
            if let Some(t) = &tags {
                body["tags"] = args::tags(t)?;
            }
            c.data(&target.vault_name, Method::POST, &format!("/certificates/{}/import", target.name), Some(&body))
                .await?
        }
        CertificateCommand::Show { target, version } => {
            let path = format!("/certificates/{}/{}", target.name, version.unwrap_or_default());
            c.data(&target.vault_name, Method::GET, &path, None).await?
        }
        CertificateCommand::Download { target, version, file, encoding } => {
            let path = format!("/certificates/{}/{}", target.name, version.unwrap_or_default());
            let cert = c.data(&target.vault_name, Method::GET, &path, None).await?;
            let cer = cert["cer"].as_str().ok_or_else(|| CliError::Server("the certificate has no cer".into()))?;
            let der = STANDARD.decode(cer).map_err(|_| CliError::Server("the cer is not base64".into()))?;
            match encoding.as_str() {
                "DER" => write_file(&file, &der)?,
                _ => write_file(&file, pem(&der).as_bytes())?,
            }
            return Ok(None);
        }
        CertificateCommand::List { vault_name, include_pending } => {
            let path = if include_pending { "/certificates?includePending=true" } else { "/certificates" };
            c.data_list(&vault_name, path, None).await?
        }
        CertificateCommand::ListVersions { target } => {
            c.data_list(&target.vault_name, &format!("/certificates/{}/versions", target.name), None).await?
        }
        CertificateCommand::SetAttributes { target, version, enabled, tags, policy } => {
            let mut body = json!({});
            if let Some(e) = enabled {
                body["attributes"] = json!({"enabled": e});
            }
            if let Some(t) = &tags {
                body["tags"] = args::tags(t)?;
            }
            if let Some(p) = policy {
                body["policy"] = json_arg(&p, "--policy")?;
            }
            let path = format!("/certificates/{}/{}", target.name, version.unwrap_or_default());
            c.data(&target.vault_name, Method::PATCH, &path, Some(&body)).await?
        }
        CertificateCommand::Pending(PendingCommand::Show { target }) => {
            c.data(&target.vault_name, Method::GET, &format!("/certificates/{}/pending", target.name), None).await?
        }
        CertificateCommand::Pending(PendingCommand::Merge { target, file }) => {
            let body = json!({"x5c": certificate_chain(&read_file(&file)?)?});
            let path = format!("/certificates/{}/pending/merge", target.name);
            c.data(&target.vault_name, Method::POST, &path, Some(&body)).await?
        }
        CertificateCommand::Pending(PendingCommand::Delete { target }) => {
            c.data(&target.vault_name, Method::DELETE, &format!("/certificates/{}/pending", target.name), None).await?
        }
        CertificateCommand::Contact(ContactCommand::List { vault_name }) => {
            c.data(&vault_name, Method::GET, "/certificates/contacts", None).await?
        }
        CertificateCommand::Contact(ContactCommand::Add { vault_name, email, name, phone }) => {
            // Like `az`: read the list, add to it, write it back.
            let mut list = contacts(&mut c, &vault_name).await?;
            list.retain(|x| x["email"].as_str() != Some(email.as_str()));
            list.push(json!({"email": email, "name": name, "phone": phone}));
            c.data(&vault_name, Method::PUT, "/certificates/contacts", Some(&json!({"contacts": list}))).await?
        }
        CertificateCommand::Contact(ContactCommand::Delete { vault_name, email }) => {
            let mut list = contacts(&mut c, &vault_name).await?;
            let before = list.len();
            list.retain(|x| x["email"].as_str() != Some(email.as_str()));
            if list.len() == before {
                return Err(CliError::Usage(format!("no contact with e-mail {email}")));
            }
            if list.is_empty() {
                c.data(&vault_name, Method::DELETE, "/certificates/contacts", None).await?
            } else {
                c.data(&vault_name, Method::PUT, "/certificates/contacts", Some(&json!({"contacts": list}))).await?
            }
        }
        CertificateCommand::Issuer(IssuerCommand::Create { issuer, provider_name }) => {
            let body = issuer_body(&issuer, Some(provider_name));
            let path = format!("/certificates/issuers/{}", issuer.issuer_name);
            c.data(&issuer.vault_name, Method::PUT, &path, Some(&body)).await?
        }
        CertificateCommand::Issuer(IssuerCommand::Update { issuer, provider_name }) => {
            let body = issuer_body(&issuer, provider_name);
            let path = format!("/certificates/issuers/{}", issuer.issuer_name);
            c.data(&issuer.vault_name, Method::PATCH, &path, Some(&body)).await?
        }
        CertificateCommand::Issuer(IssuerCommand::Show { vault_name, issuer_name }) => {
            c.data(&vault_name, Method::GET, &format!("/certificates/issuers/{issuer_name}"), None).await?
        }
        CertificateCommand::Issuer(IssuerCommand::List { vault_name }) => {
            c.data_list(&vault_name, "/certificates/issuers", None).await?
        }
        CertificateCommand::Issuer(IssuerCommand::Delete { vault_name, issuer_name }) => {
            c.data(&vault_name, Method::DELETE, &format!("/certificates/issuers/{issuer_name}"), None).await?
        }
    };
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_through_the_chain_reader() {
        let der = vec![0x30, 0x82, 1, 2, 3, 4, 5];
        let bundle = format!("{}{}", pem(&der), pem(&[9, 9]));
        assert_eq!(certificate_chain(bundle.as_bytes()).unwrap(), vec![STANDARD.encode(&der), STANDARD.encode([9, 9])]);
        assert_eq!(certificate_chain(&der).unwrap(), vec![STANDARD.encode(&der)]);
        assert!(certificate_chain(b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n").is_err());
    }
}
