//! `coffer key …`, in the style of `az keyvault key`. Binary inputs are base64 (`--value`) or
//! a file of raw bytes (`--file`); `--out-file` writes an operation's result as raw bytes.
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};

use super::args::{self, Target};
use super::lifecycle::{self, LifecycleCommand};
use crate::client::{CliError, CliResult, Client, Settings};

#[derive(clap::Args)]
pub struct Attrs {
    #[arg(long)]
    expires: Option<String>,
    #[arg(long)]
    not_before: Option<String>,
    #[arg(long, num_args = 0..)]
    tags: Option<Vec<String>>,
    /// Permitted operations: encrypt decrypt sign verify wrapKey unwrapKey.
    #[arg(long, num_args = 1..)]
    ops: Option<Vec<String>>,
}

#[derive(clap::Args)]
pub struct Input {
    /// The data, base64 (standard or URL-safe), or text with --data-type plaintext.
    #[arg(long, conflicts_with = "file", allow_hyphen_values = true)]
    value: Option<String>,
    /// The data as raw bytes from a file.
    #[arg(long, short = 'f')]
    file: Option<PathBuf>,
    #[arg(long, value_parser = ["base64", "plaintext"], default_value = "base64")]
    data_type: String,
}

#[derive(clap::Args)]
pub struct Op {
    #[command(flatten)]
    target: Target,
    #[arg(long, short = 'v')]
    version: Option<String>,
    #[arg(long, short = 'a')]
    algorithm: String,
    #[command(flatten)]
    input: Input,
    /// AES: the iv (base64); GCM picks one when encrypting if none is given.
    #[arg(long)]
    iv: Option<String>,
    /// AES-GCM: additional authenticated data (base64).
    #[arg(long)]
    aad: Option<String>,
    /// AES-GCM decryption: the authentication tag (base64).
    #[arg(long)]
    tag: Option<String>,
    /// Write the result's value to this file as raw bytes.
    #[arg(long)]
    out_file: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum KeyCommand {
    /// Create a key (RSA 2048/3072/4096, EC P-256/P-384/P-521/P-256K, oct 128/192/256).
    Create {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value = "RSA")]
        kty: String,
        #[arg(long)]
        size: Option<u32>,
        #[arg(long)]
        curve: Option<String>,
        #[command(flatten)]
        attrs: Attrs,
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        disabled: Option<bool>,
    },
    /// Import a key from a JSON Web Key file (with its private parts).
    Import {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        jwk_file: PathBuf,
        #[command(flatten)]
        attrs: Attrs,
    },
    Show {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'v')]
        version: Option<String>,
    },
    List {
        #[arg(long)]
        vault_name: String,
    },
    ListVersions {
        #[command(flatten)]
        target: Target,
    },
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
    /// Create a new version of the key (old versions keep working).
    Rotate {
        #[command(flatten)]
        target: Target,
    },
    #[command(subcommand)]
    RotationPolicy(PolicyCommand),
    Encrypt(Op),
    Decrypt(Op),
    /// Sign a digest (the value is the digest, computed by the caller).
    Sign(Op),
    /// Verify a signature over a digest.
    Verify {
        #[command(flatten)]
        op: Op,
        /// The signature, base64.
        #[arg(long)]
        signature: String,
    },
    Wrap(Op),
    Unwrap(Op),
    /// Random bytes from the server (1 to 128).
    Random {
        #[arg(long)]
        vault_name: String,
        #[arg(long)]
        count: u32,
    },
    #[command(flatten)]
    Lifecycle(LifecycleCommand),
}

#[derive(clap::Subcommand)]
pub enum PolicyCommand {
    Show {
        #[command(flatten)]
        target: Target,
    },
    /// Set the policy from JSON (inline or @file): lifetimeActions, attributes.expiryTime.
    Update {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        value: String,
    },
}

fn decode_b64(s: &str, what: &str) -> CliResult<Vec<u8>> {
    let t = s.trim().trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(t)
        .or_else(|_| STANDARD.decode(s.trim()))
        .map_err(|_| CliError::Usage(format!("{what} is not base64")))
}

fn b64u(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn read_input(input: &Input) -> CliResult<Vec<u8>> {
    match (&input.value, &input.file) {
        (Some(v), _) if input.data_type == "plaintext" => Ok(v.as_bytes().to_vec()),
        (Some(v), _) => decode_b64(v, "--value"),
        (None, Some(f)) => std::fs::read(f).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", f.display()))),
        (None, None) => Err(CliError::Usage("give --value or --file".into())),
    }
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

fn with_common(mut body: Value, attrs: &Attrs, enabled: Option<bool>) -> CliResult<Value> {
    body["attributes"] = attributes(attrs, enabled)?;
    if let Some(t) = &attrs.tags {
        body["tags"] = args::tags(t)?;
    }
    if let Some(ops) = &attrs.ops {
        body["key_ops"] = json!(ops);
    }
    Ok(body)
}

fn op_path(target: &Target, version: &Option<String>, op: &str) -> String {
    format!("/keys/{}/{}/{op}", target.name, version.as_deref().unwrap_or(""))
}

async fn run_op(c: &mut Client, op: &Op, path_op: &str, extra: Option<(&str, Value)>) -> CliResult<Value> {
    let data = read_input(&op.input)?;
    let mut body = json!({"alg": op.algorithm, "value": b64u(&data)});
    for (k, v) in [("iv", &op.iv), ("aad", &op.aad), ("tag", &op.tag)] {
        if let Some(v) = v {
            body[k] = b64u(&decode_b64(v, &format!("--{k}"))?).into();
        }
    }
    if let Some((k, v)) = extra {
        body[k] = v;
    }
    let result =
        c.data(&op.target.vault_name, Method::POST, &op_path(&op.target, &op.version, path_op), Some(&body)).await?;
    if let (Some(path), Some(v)) = (&op.out_file, result["value"].as_str()) {
        let bytes = decode_b64(v, "the result")?;
        std::fs::write(path, bytes).map_err(|e| CliError::Usage(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(result)
}

pub async fn run(cmd: KeyCommand, profile: &str) -> CliResult<Option<Value>> {
    let mut c = Client::new(Settings::resolve(profile)?)?;
    let value = match cmd {
        KeyCommand::Lifecycle(cmd) => return lifecycle::run(&mut c, "keys", cmd).await,
        KeyCommand::Create { target, kty, size, curve, attrs, disabled } => {
            let mut body = json!({"kty": kty});
            if let Some(s) = size {
                body["key_size"] = s.into();
            }
            if let Some(crv) = curve {
                body["crv"] = crv.into();
            }
            let body = with_common(body, &attrs, disabled.map(|d| !d))?;
            c.data(&target.vault_name, Method::POST, &format!("/keys/{}/create", target.name), Some(&body)).await?
        }
        KeyCommand::Import { target, jwk_file, attrs } => {
            let text = std::fs::read_to_string(&jwk_file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", jwk_file.display())))?;
            let jwk: Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Usage(format!("{} is not JSON: {e}", jwk_file.display())))?;
            let mut body = with_common(json!({"key": jwk}), &attrs, None)?;
            if let Some(ops) = body.as_object_mut().and_then(|m| m.remove("key_ops")) {
                body["key"]["key_ops"] = ops;
            }
            c.data(&target.vault_name, Method::PUT, &format!("/keys/{}", target.name), Some(&body)).await?
        }
        KeyCommand::Show { target, version } => {
            c.data(
                &target.vault_name,
                Method::GET,
                &format!("/keys/{}/{}", target.name, version.unwrap_or_default()),
                None,
            )
            .await?
        }
        KeyCommand::List { vault_name } => c.data_list(&vault_name, "/keys", None).await?,
        KeyCommand::ListVersions { target } => {
            c.data_list(&target.vault_name, &format!("/keys/{}/versions", target.name), None).await?
        }
        KeyCommand::SetAttributes { target, version, enabled, attrs } => {
            let body = with_common(json!({}), &attrs, enabled)?;
            c.data(
                &target.vault_name,
                Method::PATCH,
                &format!("/keys/{}/{}", target.name, version.unwrap_or_default()),
                Some(&body),
            )
            .await?
        }
        KeyCommand::Rotate { target } => {
            c.data(&target.vault_name, Method::POST, &format!("/keys/{}/rotate", target.name), None).await?
        }
        KeyCommand::RotationPolicy(PolicyCommand::Show { target }) => {
            c.data(&target.vault_name, Method::GET, &format!("/keys/{}/rotationpolicy", target.name), None).await?
        }
        KeyCommand::RotationPolicy(PolicyCommand::Update { target, value }) => {
            let text = match value.strip_prefix('@') {
                Some(p) => std::fs::read_to_string(p).map_err(|e| CliError::Usage(format!("cannot read {p}: {e}")))?,
                None => value,
            };
            let body: Value =
                serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("--value is not JSON: {e}")))?;
            c.data(&target.vault_name, Method::PUT, &format!("/keys/{}/rotationpolicy", target.name), Some(&body))
                .await?
        }
        KeyCommand::Encrypt(op) => run_op(&mut c, &op, "encrypt", None).await?,
        KeyCommand::Decrypt(op) => run_op(&mut c, &op, "decrypt", None).await?,
        KeyCommand::Sign(op) => run_op(&mut c, &op, "sign", None).await?,
        KeyCommand::Verify { op, signature } => {
            // The API's verify takes the digest as `digest` and the signature as `value`.
            let digest = read_input(&op.input)?;
            let sig = decode_b64(&signature, "--signature")?;
            let body = json!({"alg": op.algorithm, "digest": b64u(&digest), "value": b64u(&sig)});
            c.data(&op.target.vault_name, Method::POST, &op_path(&op.target, &op.version, "verify"), Some(&body))
                .await?
        }
        KeyCommand::Wrap(op) => run_op(&mut c, &op, "wrapkey", None).await?,
        KeyCommand::Unwrap(op) => run_op(&mut c, &op, "unwrapkey", None).await?,
        KeyCommand::Random { vault_name, count } => {
            c.data(&vault_name, Method::POST, "/rng", Some(&json!({"count": count}))).await?
        }
    };
    Ok(Some(value))
}
