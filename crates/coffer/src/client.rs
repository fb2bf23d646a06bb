//! The CLI's connection to a Coffer server: credentials from `COFFER_*` variables, TLS trust in
//! the server's CA, tokens from the identity provider, and Azure-shaped errors turned into
//! exit code 2 with the server's message.
use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use zeroize::Zeroizing;

/// The client id the CLI names when a user signs in (a public client, like `az`'s).
pub const CLI_CLIENT_ID: &str = "coffer-cli";

/// How a command failed, which decides the exit code.
#[derive(Debug)]
pub enum CliError {
    /// Exit 1: the command line was wrong or incomplete.
    Usage(String),
    /// Exit 2: the server (or the way to it) said no.
    Server(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(m) | Self::Server(m) => f.write_str(m),
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        Self::Server(format!("{e:#}"))
    }
}

pub type CliResult<T> = Result<T, CliError>;

/// How the CLI signs in.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Auth {
    /// An application: client credentials.
    ClientSecret { client_id: String, client_secret: Zeroizing<String> },
    /// A user who signed in with `coffer login --username`: a refresh token.
    RefreshToken { username: String, refresh_token: Zeroizing<String> },
}

/// A saved sign-in (`coffer login`), kept under `$COFFER_CONFIG_DIR/profiles/NAME.json` (0600).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub server: String,
    pub ca_file: Option<String>,
    pub tenant_id: String,
    pub auth: Auth,
}

pub struct Settings {
    pub server: String,
    pub ca_file: Option<String>,
    pub tenant_id: String,
    pub auth: Auth,
    /// The profile a refresh token came from: refresh tokens are single-use, so each new one
    /// is written back there.
    pub profile: Option<String>,
}

pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn config_dir() -> std::path::PathBuf {
    match env("COFFER_CONFIG_DIR") {
        Some(d) => d.into(),
        None => std::path::PathBuf::from(env("HOME").unwrap_or_else(|| ".".into())).join(".config").join("coffer"),
    }
}

pub fn profile_path(name: &str) -> CliResult<std::path::PathBuf> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(CliError::Usage(format!("invalid profile name '{name}': use letters, digits, '-' and '_'")));
    }
    Ok(config_dir().join("profiles").join(format!("{name}.json")))
}

/// An exclusive lock on a profile (`NAME.lock` beside it), released when dropped.
fn lock_profile(name: &str) -> CliResult<std::fs::File> {
    let path = profile_path(name)?.with_extension("lock");
    let io = |e: std::io::Error| CliError::Usage(format!("cannot lock {}: {e}", path.display()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let f = opts.open(&path).map_err(io)?;
    f.lock().map_err(io)?;
    Ok(f)
}

pub fn load_profile(name: &str) -> CliResult<Option<Profile>> {
    let path = profile_path(name)?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            CliError::Usage(format!("the profile {} is damaged ({e}); run `coffer login` again", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::Usage(format!("cannot read {}: {e}", path.display()))),
    }
}

pub fn save_profile(name: &str, profile: &Profile) -> CliResult<std::path::PathBuf> {
    use std::io::Write;
    let path = profile_path(name)?;
    let io = |e: std::io::Error| CliError::Usage(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    let text = Zeroizing::new(serde_json::to_vec_pretty(profile).map_err(|e| CliError::Usage(e.to_string()))?);
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(&text).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path)
}

impl Settings {
    /// `COFFER_*` variables, falling back field by field to the saved profile.
    pub fn resolve(profile: &str) -> CliResult<Self> {
        let saved = load_profile(profile)?;
        let hint = "run `coffer login`, or set the COFFER_* variables that `coffer serve --dev` prints";
        let server = env("COFFER_SERVER").or_else(|| saved.as_ref().map(|p| p.server.clone())).ok_or_else(|| {
            CliError::Usage(format!("COFFER_SERVER is not set and there is no profile '{profile}': {hint}"))
        })?;
        let tenant_id = env("COFFER_TENANT_ID")
            .or_else(|| saved.as_ref().map(|p| p.tenant_id.clone()))
            .ok_or_else(|| CliError::Usage(format!("COFFER_TENANT_ID is not set: {hint}")))?;
        let ca_file = env("COFFER_CA_FILE").or_else(|| saved.as_ref().and_then(|p| p.ca_file.clone()));
        let (auth, from_profile) = match (env("COFFER_CLIENT_ID"), env("COFFER_CLIENT_SECRET")) {
            (Some(client_id), Some(secret)) => {
                (Auth::ClientSecret { client_id, client_secret: Zeroizing::new(secret) }, None)
            }
            _ => (
                saved.map(|p| p.auth).ok_or_else(|| {
                    CliError::Usage(format!(
                        "COFFER_CLIENT_ID/COFFER_CLIENT_SECRET are not set and there is no profile '{profile}': {hint}"
                    ))
                })?,
                Some(profile.to_string()),
            ),
        };
        Ok(Self { server: server.trim_end_matches('/').to_string(), ca_file, tenant_id, auth, profile: from_profile })
    }
}

pub struct Client {
    settings: Settings,
    http: reqwest::Client,
    server_addr: Option<SocketAddr>,
    vault_dns: Option<String>,
    tokens: std::collections::HashMap<String, Zeroizing<String>>,
    /// Vault hosts the HTTP client already pins to the server's address.
    pinned: Vec<String>,
}

/// Host and port of an `https://host[:port]` URL.
fn host_port(url: &str) -> CliResult<(String, u16)> {
    let parsed = reqwest::Url::parse(url).map_err(|e| CliError::Usage(format!("invalid server URL {url}: {e}")))?;
    let host =
        parsed.host_str().ok_or_else(|| CliError::Usage(format!("the server URL {url} has no host")))?.to_string();
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_string(), parsed.port_or_known_default().unwrap_or(443)))
}

impl Client {
    pub fn new(settings: Settings) -> CliResult<Self> {
        let (host, port) = host_port(&settings.server)?;
        let server_addr = (host.as_str(), port).to_socket_addrs().ok().and_then(|mut a| a.next());
        let mut c = Self {
            settings,
            http: reqwest::Client::new(),
            server_addr,
            vault_dns: None,
            tokens: Default::default(),
            pinned: Vec::new(),
        };
        c.http = c.build_http()?;
        Ok(c)
    }

    /// A client that trusts the configured CA and reaches `*.localhost` vault hosts at the
    /// server's address (glibc does not resolve them).
    fn build_http(&self) -> CliResult<reqwest::Client> {
        let mut b = reqwest::Client::builder().https_only(true).timeout(std::time::Duration::from_secs(60));
        if let Some(ca) = &self.settings.ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("reading COFFER_CA_FILE {ca}"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| format!("parsing {ca}"))?;
            b = b.tls_certs_only(certs);
        }
        if let Some(addr) = self.server_addr {
            for host in &self.pinned {
                b = b.resolve(host, addr);
            }
        }
        b.build().map_err(|e| CliError::Server(format!("building the HTTP client: {e}")))
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> CliResult<(StatusCode, Value)> {
        let mut req = self.http.request(method, url);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| CliError::Server(format!("cannot reach {url}: {e}")))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| CliError::Server(format!("reading the response: {e}")))?;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() { Ok((status, value)) } else { Err(CliError::Server(server_message(status, &value))) }
    }

    /// The vault host suffix with port, from the server's metadata (`vault.localhost:8443`).
    async fn vault_dns(&mut self) -> CliResult<String> {
        if let Some(d) = &self.vault_dns {
            return Ok(d.clone());
        }
        let url = format!("{}/metadata/endpoints?api-version=2022-09-01", self.settings.server);
        let (_, meta) = self.send(Method::GET, &url, None, None).await?;
        let dns = meta["suffixes"]["keyVaultDns"]
            .as_str()
            .ok_or_else(|| CliError::Server("the server's metadata has no keyVaultDns".into()))?
            .trim_start_matches('.')
            .to_string();
        self.vault_dns = Some(dns.clone());
        Ok(dns)
    }

    /// A token for `resource` (client credentials), cached for this invocation.
    async fn token(&mut self, resource: &str) -> CliResult<Zeroizing<String>> {
        if let Some(t) = self.tokens.get(resource) {
            return Ok(t.clone());
        }
        let url = format!("{}/{}/oauth2/v2.0/token", self.settings.server, self.settings.tenant_id);
        let scope = format!("{resource}/.default");
        // A refresh token is single-use: hold the profile's lock from reading the newest one
        // to saving the next, so concurrent invocations take turns instead of replaying it.
        let _turn = match (&self.settings.auth, &self.settings.profile) {
            (Auth::RefreshToken { .. }, Some(name)) => {
                let lock = lock_profile(name)?;
                if let Some(saved) = load_profile(name)?
                    && matches!(saved.auth, Auth::RefreshToken { .. })
                {
                    self.settings.auth = saved.auth;
                }
                Some(lock)
            }
            _ => None,
        };
        let form: Vec<(&str, &str)> = match &self.settings.auth {
            Auth::ClientSecret { client_id, client_secret } => vec![
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.as_str()),
                ("scope", scope.as_str()),
            ],
            Auth::RefreshToken { refresh_token, .. } => vec![
                ("grant_type", "refresh_token"),
                ("client_id", CLI_CLIENT_ID),
                ("refresh_token", refresh_token.as_str()),
                ("scope", scope.as_str()),
            ],
        };
        let body = self.post_form(&url, &form).await?;
        if let (Auth::RefreshToken { username, .. }, Some(next)) = (&self.settings.auth, body["refresh_token"].as_str())
        {
            self.settings.auth =
                Auth::RefreshToken { username: username.clone(), refresh_token: Zeroizing::new(next.to_string()) };
            if let Some(name) = &self.settings.profile
                && let Some(mut saved) = load_profile(name)?
            {
                saved.auth = self.settings.auth.clone();
                save_profile(name, &saved)?;
            }
        }
        let token = Zeroizing::new(body["access_token"].as_str().unwrap_or_default().to_string());
        self.tokens.insert(resource.to_string(), token.clone());
        Ok(token)
    }

    /// POSTs a form to the identity provider; OAuth errors become `CliError::Server`.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> CliResult<Value> {
        let resp = self
            .http
            .post(url)
            .form(form)
            .send()
            .await
            .map_err(|e| CliError::Server(format!("cannot reach {url}: {e}")))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let desc = body["error_description"].as_str().or(body["error"].as_str()).unwrap_or("sign-in failed");
            return Err(CliError::Server(format!("sign-in failed ({status}): {desc}")));
        }
        Ok(body)
    }

    /// How this client signs in now (a refresh token is replaced each time it is used).
    pub fn auth(&self) -> &Auth {
        &self.settings.auth
    }

    /// A token for the management resource (used by `coffer login` to check credentials).
    pub async fn management_token(&mut self) -> CliResult<Zeroizing<String>> {
        let resource = self.management_resource()?;
        self.token(&resource).await
    }

    /// The caller's object id, read from its own token's claims.
    pub async fn own_object_id(&mut self) -> CliResult<String> {
        let resource = self.management_resource()?;
        let token = self.token(&resource).await?;
        let claims = token.split('.').nth(1).and_then(|p| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok()
        });
        let claims: Value = claims.and_then(|c| serde_json::from_slice(&c).ok()).unwrap_or(Value::Null);
        claims["oid"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CliError::Server("the token carries no object id".into()))
    }

    pub fn tenant_id(&self) -> &str {
        &self.settings.tenant_id
    }

    fn management_resource(&self) -> CliResult<String> {
        let (host, port) = host_port(&self.settings.server)?;
        Ok(if port == 443 { format!("https://{host}") } else { format!("https://{host}:{port}") })
    }

    /// A management (ARM) call; `path` starts with `/subscriptions`.
    pub async fn management(&mut self, method: Method, path: &str, body: Option<&Value>) -> CliResult<Value> {
        let resource = self.management_resource()?;
        let token = self.token(&resource).await?;
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}{path}{sep}api-version=2023-07-01", self.settings.server);
        Ok(self.send(method, &url, Some(&token), body).await?.1)
    }

    /// The tenant's default subscription.
    pub async fn subscription(&mut self) -> CliResult<String> {
        if let Some(s) = env("COFFER_SUBSCRIPTION_ID") {
            return Ok(s);
        }
        let subs = self.management(Method::GET, "/subscriptions", None).await?;
        subs["value"][0]["subscriptionId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CliError::Server("no subscription is visible".into()))
    }

    /// A data-plane call on vault `vault`; `path` starts with `/`. Returns the body (Null for 204).
    pub async fn data(&mut self, vault: &str, method: Method, path: &str, body: Option<&Value>) -> CliResult<Value> {
        let url = self.vault_url(vault, path).await?;
        let dns = self.vault_dns().await?;
        let host = dns.split(':').next().unwrap_or(&dns).to_string();
        let resource = format!("https://{dns}");
        let token = self.token(&resource).await?;
        let vault_host = format!("{}.{host}", vault.to_ascii_lowercase());
        if !self.pinned.contains(&vault_host) {
            self.pinned.push(vault_host);
            self.http = self.build_http()?;
        }
        Ok(self.send(method, &url, Some(&token), body).await?.1)
    }

    /// Follows `nextLink` until the list ends (or `limit` items were read).
    pub async fn data_list(&mut self, vault: &str, path: &str, limit: Option<usize>) -> CliResult<Value> {
        let mut items = Vec::new();
        let mut page = self.data(vault, Method::GET, path, None).await?;
        loop {
            if let Some(v) = page["value"].as_array() {
                items.extend(v.iter().cloned());
            }
            if limit.is_some_and(|l| items.len() >= l) {
                items.truncate(limit.unwrap_or(items.len()));
                break;
            }
            let Some(next) = page["nextLink"].as_str().map(str::to_string) else { break };
            let resource = format!("https://{}", self.vault_dns().await?);
            let token = self.token(&resource).await?;
            page = self.send(Method::GET, &next, Some(&token), None).await?.1;
        }
        Ok(Value::Array(items))
    }

    pub async fn vault_url(&mut self, vault: &str, path: &str) -> CliResult<String> {
        let dns = self.vault_dns().await?;
        let sep = if path.contains('?') { '&' } else { '?' };
        Ok(format!("https://{}.{dns}{path}{sep}api-version=2026-04-01", vault.to_ascii_lowercase()))
    }
}

/// `Code: message` from an Azure error body, or the status and raw text.
pub(crate) fn server_message(status: StatusCode, body: &Value) -> String {
    let err = &body["error"];
    match (err["code"].as_str(), err["message"].as_str()) {
        (Some(code), Some(msg)) => match err["innererror"]["code"].as_str() {
            Some(inner) => format!("({code}/{inner}) {msg}"),
            None => format!("({code}) {msg}"),
        },
        _ => match body {
            Value::String(s) => format!("{status}: {s}"),
            Value::Null => format!("{status}"),
            other => format!("{status}: {other}"),
        },
    }
}
