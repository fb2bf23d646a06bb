//! The server's settings from one definition (`KEYS`): a TOML file (`coffer serve --config`),
//! `COFFER_<SECTION>_<KEY>` environment variables (which win over the file) and the flags of
//! `coffer serve` (which win over both). Unknown keys and bad values are refused with the key's
//! name and where it came from. The README's configuration reference is `reference()`.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{AuditConfig, FileSinkConfig, Pkcs11Config, SealConfig, ServerConfig, TlsConfig, WebhookConfig};

/// What a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Path,
    Bool,
    Integer,
}

/// One setting: `section.key` (or a top-level `key`), its kind, its default and what it does.
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

const fn key(name: &'static str, kind: Kind, default: Option<&'static str>, doc: &'static str) -> Key {
    Key { name, kind, default, doc }
}

/// Every setting the server knows.
pub const KEYS: &[Key] = &[
    key("listen", Kind::Text, Some("127.0.0.1:8443"), "Address and port to listen on (port 0 picks a free one)."),
    key(
        "public_url",
        Kind::Text,
        None,
        "What clients (and a load balancer) use, `https://HOST[:PORT]`; tokens, vault URIs and the 401 challenge are built from it. Default `https://localhost:{listen port}`.",
    ),
    key(
        "data_dir",
        Kind::Path,
        Some("./coffer-data"),
        "Where the database, the seal file and the vault key store live.",
    ),
    key("dns_suffix", Kind::Text, Some("vault.localhost"), "Vaults are served at `https://{vault}.{dns_suffix}`."),
    key("storage", Kind::Text, Some("sqlite"), "`sqlite` (the database `DATA_DIR/coffer.db`)."),
    key(
        "metrics_unauthenticated",
        Kind::Bool,
        Some("false"),
        "Serve `/metrics` without a token (for a scraper on a trusted network).",
    ),
    key(
        "tls.cert_file",
        Kind::Path,
        None,
        "PEM certificate chain, leaf first, for the bare host and `*.{dns_suffix}`. Reloaded on SIGHUP. Production: required.",
    ),
    key(
        "tls.key_file",
        Kind::Path,
        None,
        "PEM private key of the certificate. Reloaded on SIGHUP. Production: required.",
    ),
    key(
        "seal.type",
        Kind::Text,
        Some("shamir"),
        "The root of trust: `shamir` (the server starts sealed; `threshold` of the shares made by `coffer operator init` unseal it) or `pkcs11` (the root key is a non-extractable AES key in an HSM; the server unseals itself).",
    ),
    key(
        "seal.module",
        Kind::Path,
        Some("/usr/lib/softhsm/libsofthsm2.so"),
        "pkcs11: the PKCS#11 module (the HSM vendor's library).",
    ),
    key("seal.token_label", Kind::Text, Some("coffer"), "pkcs11: the label of the token that holds the root key."),
    key(
        "seal.key_label",
        Kind::Text,
        Some("coffer-root"),
        "pkcs11: the label of the root key (made by `coffer operator init` if the token has none).",
    ),
    key(
        "seal.pin_file",
        Kind::Path,
        None,
        "pkcs11: a file holding the token's user PIN (or `COFFER_SEAL_PIN` in the environment); never the PIN itself in this file.",
    ),
    key(
        "audit.file",
        Kind::Text,
        None,
        "The JSON-lines audit file (default `DATA_DIR/audit/audit.log`); `none` for no file sink.",
    ),
    key("audit.file_max_bytes", Kind::Integer, Some("104857600"), "Rotate the audit file when it is larger than this."),
    key("audit.file_max_files", Kind::Integer, Some("10"), "Rotated audit files kept."),
    key(
        "audit.retention_days",
        Kind::Integer,
        Some("365"),
        "Audit records older than this are purged from the store, after a signed checkpoint.",
    ),
    key(
        "audit.syslog",
        Kind::Text,
        None,
        "Also send each record to syslog: `udp:HOST:PORT` or `unix:/dev/log` (best effort).",
    ),
    key(
        "audit.write_timeout_ms",
        Kind::Integer,
        Some("5000"),
        "How long a request waits for its audit record before it is refused with 503.",
    ),
    key(
        "audit.checkpoint_every",
        Kind::Integer,
        Some("1000"),
        "Sign a checkpoint after this many records (and at least every minute).",
    ),
    key("audit.disabled", Kind::Bool, Some("false"), "No audit log at all. Dev mode only, for benchmarks."),
    key(
        "audit.events_webhook",
        Kind::Text,
        None,
        "POST events (near expiry, expired, new versions) to this URL, in Event Grid's schema.",
    ),
    key(
        "audit.events_webhook_secret_file",
        Kind::Path,
        None,
        "File holding the HMAC-SHA256 key for `X-Coffer-Signature`.",
    ),
    key("limits.tls_handshake_timeout_secs", Kind::Integer, Some("10"), "Seconds a client has for its TLS handshake."),
    key(
        "limits.request_header_timeout_secs",
        Kind::Integer,
        Some("15"),
        "Seconds a client has to send a request head (and an idle connection stays open).",
    ),
    key(
        "limits.request_body_timeout_secs",
        Kind::Integer,
        Some("60"),
        "Seconds a client has to send a request body (408 after).",
    ),
    key(
        "limits.max_connections",
        Kind::Integer,
        Some("4096"),
        "Connections open at once; more are closed when accepted.",
    ),
    key(
        "limits.max_in_flight",
        Kind::Integer,
        Some("1024"),
        "Requests served at once; more are answered 503 `ServerBusy`.",
    ),
];

/// `COFFER_TLS_CERT_FILE` for `tls.cert_file`, `COFFER_LISTEN` for `listen`.
pub fn env_name(key: &str) -> String {
    format!("COFFER_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// A setting that could not be used, with the key and where its value came from.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Where a value came from, for error messages.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Env(String),
    Flag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "in {}", p.display()),
            Self::Env(v) => write!(f, "from {v}"),
            Self::Flag => write!(f, "from the command line"),
        }
    }
}

/// The values given, by key, each with where it came from.
#[derive(Debug, Default)]
struct Given(BTreeMap<&'static str, (String, Source)>);

fn known(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

fn unknown_key(name: &str, source: &Source) -> ConfigError {
    let section = name.split_once('.').map(|(s, _)| s);
    let siblings: Vec<&str> = KEYS
        .iter()
        .filter(|k| k.name.split_once('.').map(|(s, _)| s) == section)
        .map(|k| k.name.rsplit('.').next().unwrap_or(k.name))
        .collect();
    let place = section.map(|s| format!("[{s}]")).unwrap_or_else(|| "the top level".into());
    ConfigError(format!("unknown setting '{name}' {source}; the settings of {place} are: {}", siblings.join(", ")))
}

impl Given {
    fn from_toml(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("reading the configuration file {}: {e}", path.display())))?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| ConfigError(format!("{} is not valid TOML: {e}", path.display())))?;
        let source = Source::File(path.to_path_buf());
        let mut given = Self::default();
        for (name, value) in &table {
            match value {
                toml::Value::Table(section) => {
                    if !KEYS.iter().any(|k| k.name.starts_with(&format!("{name}."))) {
                        return Err(ConfigError(format!(
                            "unknown section [{name}] {source}; the sections are [tls], [seal], [audit] and [limits]"
                        )));
                    }
                    for (inner, v) in section {
                        given.put_toml(&format!("{name}.{inner}"), v, &source)?;
                    }
                }
                v => given.put_toml(name, v, &source)?,
            }
        }
        Ok(given)
    }

    fn put_toml(&mut self, name: &str, value: &toml::Value, source: &Source) -> Result<(), ConfigError> {
        let key = known(name).ok_or_else(|| unknown_key(name, source))?;
        let text = match (key.kind, value) {
            (Kind::Text | Kind::Path, toml::Value::String(s)) => s.clone(),
            (Kind::Bool, toml::Value::Boolean(b)) => b.to_string(),
            (Kind::Integer, toml::Value::Integer(i)) => i.to_string(),
            (kind, v) => {
                return Err(ConfigError(format!(
                    "'{name}' {source} must be {}, not {}",
                    match kind {
                        Kind::Text | Kind::Path => "a string",
                        Kind::Bool => "true or false",
                        Kind::Integer => "a whole number",
                    },
                    v.type_str()
                )));
            }
        };
        self.0.insert(key.name, (text, source.clone()));
        Ok(())
    }

    fn text(&self, name: &str) -> Option<(&str, &Source)> {
        self.0.get(name).map(|(v, s)| (v.as_str(), s))
    }
}

/// The settings, resolved: the given value or the key's default, parsed with errors that
/// name the key.
struct Resolved {
    given: Given,
}

impl Resolved {
    fn raw(&self, name: &str) -> Option<(String, String)> {
        match self.given.text(name) {
            Some((v, s)) => Some((v.to_string(), format!("'{name}' {s}"))),
            None => known(name).and_then(|k| k.default).map(|d| (d.to_string(), format!("'{name}' (default)"))),
        }
    }

    fn text(&self, name: &str) -> Option<String> {
        self.raw(name).map(|(v, _)| v).filter(|v| !v.is_empty())
    }

    fn is_given(&self, name: &str) -> bool {
        self.given.text(name).is_some()
    }

    fn bool(&self, name: &str) -> Result<bool, ConfigError> {
        match self.raw(name) {
            None => Ok(false),
            Some((v, what)) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(ConfigError(format!("{what} must be true or false, not '{v}'"))),
            },
        }
    }

    fn integer(&self, name: &str, min: u64) -> Result<u64, ConfigError> {
        let (v, what) = self.raw(name).ok_or_else(|| ConfigError(format!("'{name}' is required")))?;
        match v.trim().parse::<u64>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(ConfigError(format!("{what} must be a whole number of at least {min}, not '{v}'"))),
        }
    }

    fn what(&self, name: &str) -> String {
        self.raw(name).map(|(_, w)| w).unwrap_or_else(|| format!("'{name}'"))
    }
}

/// Reads the settings: `file` (if any), then the environment (`env` looks a variable up),
/// then `flags` (key names of `KEYS` with their values). `dev`: `coffer serve --dev`.
pub fn load(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    flags: &[(&str, String)],
    dev: bool,
) -> Result<ServerConfig, ConfigError> {
    let mut given = match file {
        Some(path) => Given::from_toml(path)?,
        None => Given::default(),
    };
    for key in KEYS {
        let var = env_name(key.name);
        if let Some(v) = env(&var) {
            given.0.insert(key.name, (v, Source::Env(var)));
        }
    }
    for (name, value) in flags {
        let key = known(name).ok_or_else(|| unknown_key(name, &Source::Flag))?;
        given.0.insert(key.name, (value.clone(), Source::Flag));
    }
    build(Resolved { given }, dev)
}

fn build(r: Resolved, dev: bool) -> Result<ServerConfig, ConfigError> {
    let listen: SocketAddr = {
        let v = r.text("listen").unwrap_or_default();
        v.parse().map_err(|_| {
            ConfigError(format!("{} must be an address and port such as 0.0.0.0:8443, not '{v}'", r.what("listen")))
        })?
    };
    let data_dir = PathBuf::from(r.text("data_dir").unwrap_or_else(|| "./coffer-data".into()));
    let dns_suffix = r.text("dns_suffix").unwrap_or_default().to_ascii_lowercase();
    if dns_suffix.is_empty()
        || !dns_suffix
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return Err(ConfigError(format!(
            "{} must be a DNS name such as vault.hospital.internal",
            r.what("dns_suffix")
        )));
    }
    let (public_host, public_port) = match r.text("public_url") {
        None => ("localhost".to_string(), None),
        Some(url) => parse_public_url(&url).map_err(|why| ConfigError(format!("{} {why}", r.what("public_url"))))?,
    };
    match r.text("storage").as_deref() {
        Some("sqlite") | None => {}
        Some(other) if other.starts_with("postgres://") || other.starts_with("postgresql://") => {
            return Err(ConfigError(format!(
                "{}: PostgreSQL storage is not available in this version of Coffer; use \"sqlite\"",
                r.what("storage")
            )));
        }
        Some(other) => {
            return Err(ConfigError(format!("{} must be \"sqlite\", not '{other}'", r.what("storage"))));
        }
    }
    let tls = match (r.text("tls.cert_file"), r.text("tls.key_file")) {
        (Some(cert), Some(key)) => {
            let (cert, key) = (PathBuf::from(cert), PathBuf::from(key));
            for (name, path) in [("tls.cert_file", &cert), ("tls.key_file", &key)] {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("{}: cannot read {}: {e}", r.what(name), path.display())))?;
                if !text.contains("-----BEGIN") {
                    return Err(ConfigError(format!("{}: {} is not a PEM file", r.what(name), path.display())));
                }
            }
            Some(TlsConfig { cert_file: cert, key_file: key })
        }
        (None, None) => None,
        (Some(_), None) => return Err(ConfigError("'tls.cert_file' is set but 'tls.key_file' is not".into())),
        (None, Some(_)) => return Err(ConfigError("'tls.key_file' is set but 'tls.cert_file' is not".into())),
    };
    let seal_type = r.text("seal.type").unwrap_or_default();
    let mut seal = SealConfig::Shamir;
    if dev {
        if tls.is_some() || KEYS.iter().any(|k| k.name.starts_with("seal.") && r.is_given(k.name)) {
            return Err(ConfigError(
                "--dev makes its own TLS certificate and root key: leave [tls] and [seal] out, or run without --dev"
                    .into(),
            ));
        }
    } else {
        match seal_type.as_str() {
            "shamir" => {}
            "pkcs11" => seal = SealConfig::Pkcs11(pkcs11_config(&r)?),
            other => {
                return Err(ConfigError(format!(
                    "{} must be \"shamir\" or \"pkcs11\", not '{other}'",
                    r.what("seal.type")
                )));
            }
        }
        if tls.is_none() {
            return Err(ConfigError(
                "production mode needs a TLS certificate: set tls.cert_file and tls.key_file (or COFFER_TLS_CERT_FILE and COFFER_TLS_KEY_FILE); `--dev` makes its own"
                    .into(),
            ));
        }
    }
    let audit = audit_config(&r, &data_dir, dev)?;
    let secs = |name: &str| r.integer(name, 1).map(Duration::from_secs);
    let limits = crate::connections::ConnectionLimits {
        handshake_timeout: secs("limits.tls_handshake_timeout_secs")?,
        header_timeout: secs("limits.request_header_timeout_secs")?,
        body_timeout: secs("limits.request_body_timeout_secs")?,
        max_connections: usize::try_from(r.integer("limits.max_connections", 1)?).unwrap_or(usize::MAX),
        max_in_flight: usize::try_from(r.integer("limits.max_in_flight", 1)?).unwrap_or(usize::MAX),
    };
    Ok(ServerConfig {
        data_dir,
        listen,
        dns_suffix,
        dev,
        public_host,
        public_port,
        audit,
        metrics_unauthenticated: r.bool("metrics_unauthenticated")?,
        limits,
        tls,
        seal,
    })
}

fn pkcs11_config(r: &Resolved) -> Result<Pkcs11Config, ConfigError> {
    let module = PathBuf::from(r.text("seal.module").unwrap_or_default());
    if !module.is_file() {
        return Err(ConfigError(format!("{}: {} is not a file", r.what("seal.module"), module.display())));
    }
    let pin_file = r.text("seal.pin_file").map(PathBuf::from);
    if let Some(p) = &pin_file
        && let Err(e) = std::fs::metadata(p)
    {
        return Err(ConfigError(format!("{}: cannot read {}: {e}", r.what("seal.pin_file"), p.display())));
    }
    Ok(Pkcs11Config {
        module,
        token_label: r.text("seal.token_label").unwrap_or_default(),
        key_label: r.text("seal.key_label").unwrap_or_default(),
        pin_file,
    })
}

/// `https://host[:port]` with nothing after it.
fn parse_public_url(url: &str) -> Result<(String, Option<u16>), String> {
    let rest = url.strip_prefix("https://").ok_or("must start with https://")?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err("must be https://HOST[:PORT] with no path".into());
    }
    let host = crate::host::split_host(authority).to_ascii_lowercase();
    let port = match crate::host::port_of(authority) {
        Some(p) => Some(p),
        None if authority.ends_with(']') || !authority.contains(':') => Some(443),
        None => return Err("has a port that is not a number".into()),
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    Ok((host, port))
}

fn audit_config(r: &Resolved, data_dir: &Path, dev: bool) -> Result<AuditConfig, ConfigError> {
    let mut c = AuditConfig::in_dir(data_dir);
    let disabled = r.bool("audit.disabled")?;
    if disabled && !dev {
        return Err(ConfigError(format!("{} exists only in dev mode (for benchmarks)", r.what("audit.disabled"))));
    }
    c.enabled = !disabled;
    c.file = match r.text("audit.file").as_deref() {
        Some("none") => None,
        Some(p) => c.file.map(|f| FileSinkConfig { path: PathBuf::from(p), ..f }),
        None => c.file,
    };
    if let Some(f) = c.file.as_mut() {
        f.max_bytes = r.integer("audit.file_max_bytes", 1)?;
        f.max_files = usize::try_from(r.integer("audit.file_max_files", 1)?).unwrap_or(usize::MAX);
    }
    c.retention_days = u32::try_from(r.integer("audit.retention_days", 1)?)
        .map_err(|_| ConfigError(format!("{} is too large", r.what("audit.retention_days"))))?;
    c.syslog = r.text("audit.syslog");
    c.write_timeout = Duration::from_millis(r.integer("audit.write_timeout_ms", 1)?);
    c.checkpoint_every = r.integer("audit.checkpoint_every", 1)?;
    c.webhook = match (r.text("audit.events_webhook"), r.text("audit.events_webhook_secret_file")) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(ConfigError(format!(
                "{} needs 'audit.events_webhook_secret_file' (the HMAC key)",
                r.what("audit.events_webhook")
            )));
        }
        (Some(url), Some(path)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError(format!(
                    "{} must be an http(s) URL, not '{url}'",
                    r.what("audit.events_webhook")
                )));
            }
            let secret = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError(format!("{}: reading {path}: {e}", r.what("audit.events_webhook_secret_file")))
            })?;
            let secret = zeroize::Zeroizing::new(secret.trim().to_string());
            if secret.is_empty() {
                return Err(ConfigError(format!("{}: the file is empty", r.what("audit.events_webhook_secret_file"))));
            }
            Some(WebhookConfig {
                url,
                secret: std::sync::Arc::new(secret),
                attempts: 5,
                first_backoff: Duration::from_secs(1),
            })
        }
    };
    Ok(c)
}

/// The configuration reference as Markdown (the README's copy is checked against it).
pub fn reference() -> String {
    let mut out = String::from("| key | environment | default | |\n|---|---|---|---|\n");
    for k in KEYS {
        let name = match k.name.split_once('.') {
            Some((section, key)) => format!("`[{section}]` `{key}`"),
            None => format!("`{}`", k.name),
        };
        let default = k.default.map(|d| format!("`{d}`")).unwrap_or_default();
        out.push_str(&format!("| {name} | `{}` | {default} | {} |\n", env_name(k.name), k.doc));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn pem_pair(dir: &Path) -> (PathBuf, PathBuf) {
        let cert = write(dir, "server.pem", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
        let key = write(dir, "server.key", "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n");
        (cert, key)
    }

    #[test]
    fn a_file_the_environment_and_flags_in_that_order() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pem_pair(dir.path());
        let file = write(
            dir.path(),
            "coffer.toml",
            &format!(
                "listen = \"0.0.0.0:9443\"\npublic_url = \"https://vault.hospital.internal:8443\"\ndns_suffix = \"vault.hospital.internal\"\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n[seal]\ntype = \"shamir\"\n[audit]\nretention_days = 30\n",
                cert.display(),
                key.display()
            ),
        );
        let env = |v: &str| (v == "COFFER_AUDIT_RETENTION_DAYS").then(|| "90".to_string());
        let c = load(Some(&file), &env, &[("listen", "127.0.0.1:0".into())], false).unwrap();
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.public_host, "vault.hospital.internal");
        assert_eq!(c.public_port, Some(8443));
        assert_eq!(c.dns_suffix, "vault.hospital.internal");
        assert_eq!(c.audit.retention_days, 90);
        assert_eq!(c.tls.unwrap().cert_file, cert);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pem_pair(dir.path());
        let tls = format!("[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n", cert.display(), key.display());
        let refused = |text: &str| {
            let file = write(dir.path(), "bad.toml", text);
            load(Some(&file), &no_env, &[], false).unwrap_err().0
        };
        assert!(refused(&format!("{tls}[seal]\ntyp = \"shamir\"\n")).contains("unknown setting 'seal.typ'"));
        assert!(refused(&format!("lisen = \"x\"\n{tls}")).contains("unknown setting 'lisen'"));
        assert!(refused(&format!("[tsl]\ncert_file = \"x\"\n{tls}")).contains("unknown section [tsl]"));
        assert!(refused(&format!("listen = \"nowhere\"\n{tls}")).contains("'listen' in"));
        assert!(refused(&format!("listen = 8443\n{tls}")).contains("must be a string"));
        assert!(refused(&format!("public_url = \"http://x\"\n{tls}")).contains("https://"));
        assert!(refused(&format!("storage = \"postgres://db/coffer\"\n{tls}")).contains("PostgreSQL"));
        assert!(refused(&format!("{tls}[seal]\ntype = \"magic\"\n")).contains("'seal.type'"));
        assert!(
            refused(&format!("{tls}[seal]\ntype = \"pkcs11\"\nmodule = \"/nonexistent.so\"\n"))
                .contains("'seal.module'")
        );
        assert!(refused(&format!("{tls}[seal]\npin = \"1234\"\n")).contains("unknown setting 'seal.pin'"));
        assert!(refused(&format!("{tls}[audit]\nretention_days = 0\n")).contains("'audit.retention_days'"));
        assert!(
            refused("[tls]\ncert_file = \"/nonexistent.pem\"\nkey_file = \"/nonexistent.key\"\n")
                .contains("cannot read /nonexistent.pem")
        );
        assert!(refused("").contains("needs a TLS certificate"));
        let env = |v: &str| (v == "COFFER_LIMITS_MAX_CONNECTIONS").then(|| "many".to_string());
        let file = write(dir.path(), "ok.toml", &tls);
        let e = load(Some(&file), &env, &[], false).unwrap_err().0;
        assert!(e.contains("from COFFER_LIMITS_MAX_CONNECTIONS"), "{e}");
    }

    #[test]
    fn dev_mode_needs_no_file() {
        let c = load(None, &no_env, &[("data_dir", "/tmp/x".into())], true).unwrap();
        assert!(c.dev && c.tls.is_none());
        assert_eq!(c.public_host, "localhost");
        assert_eq!(c.listen, "127.0.0.1:8443".parse().unwrap());
    }

    #[test]
    fn the_reference_names_every_key_with_its_variable() {
        let r = reference();
        for k in KEYS {
            assert!(r.contains(&env_name(k.name)), "{}", k.name);
        }
        assert!(r.contains("`COFFER_TLS_CERT_FILE`"));
    }
}
