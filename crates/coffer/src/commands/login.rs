//! `coffer login` / `coffer logout`: save or forget a profile, and `coffer signing-key rotate`.
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::stdin;
use crate::client::{
    Auth, CLI_CLIENT_ID, CliError, CliResult, Client, Profile, Settings, env, load_profile, profile_path, save_profile,
};

#[derive(clap::Args)]
pub struct LoginArgs {
    /// The server, e.g. https://localhost:8443 (default: COFFER_SERVER).
    #[arg(long)]
    server: Option<String>,
    /// The CA that signed the server's certificate (default: COFFER_CA_FILE).
    #[arg(long)]
    ca_file: Option<String>,
    /// The tenant id (default: COFFER_TENANT_ID).
    #[arg(long)]
    tenant: Option<String>,
    /// Sign in as an application.
    #[arg(long, requires = "client_secret", conflicts_with = "username")]
    client_id: Option<String>,
    /// Generated secrets may begin with '-': taken as the value, not as a flag.
    #[arg(long, allow_hyphen_values = true)]
    client_secret: Option<String>,
    /// Sign in as a user; the password is prompted for (no echo) or read with --password-stdin.
    #[arg(long, required_unless_present = "client_id")]
    username: Option<String>,
    #[arg(long)]
    password_stdin: bool,
}

pub async fn login(args: LoginArgs, profile: &str) -> CliResult<Option<Value>> {
    let need = |given: Option<String>, var: &str, flag: &str| {
        given.or_else(|| env(var)).ok_or_else(|| CliError::Usage(format!("give {flag} or set {var}")))
    };
    let server = need(args.server, "COFFER_SERVER", "--server")?.trim_end_matches('/').to_string();
    let tenant_id = need(args.tenant, "COFFER_TENANT_ID", "--tenant")?;
    let ca_file = args.ca_file.or_else(|| env("COFFER_CA_FILE"));
    let auth = match (args.client_id, args.client_secret, args.username) {
        (Some(client_id), Some(secret), None) => {
            Auth::ClientSecret { client_id, client_secret: Zeroizing::new(secret) }
        }
        (None, None, Some(username)) => {
            let password = stdin::password(args.password_stdin, &format!("Password for {username}: "))?;
            // The password is exchanged for a refresh token at once and never stored.
            let probe = Client::new(Settings {
                server: server.clone(),
                ca_file: ca_file.clone(),
                tenant_id: tenant_id.clone(),
                auth: Auth::RefreshToken { username: username.clone(), refresh_token: Zeroizing::new(String::new()) },
                profile: None,
            })?;
            let url = format!("{server}/{tenant_id}/oauth2/v2.0/token");
            let host = reqwest::Url::parse(&server).map_err(|e| CliError::Usage(format!("invalid --server: {e}")))?;
            let scope = format!("https://{}/.default", host.authority());
            let body = probe
                .post_form(
                    &url,
                    &[
                        ("grant_type", "password"),
                        ("client_id", CLI_CLIENT_ID),
                        ("username", username.as_str()),
                        ("password", password.as_str()),
                        ("scope", scope.as_str()),
                    ],
                )
                .await?;
            let refresh = body["refresh_token"]
                .as_str()
                .ok_or_else(|| CliError::Server("the server issued no refresh token".into()))?;
            Auth::RefreshToken { username, refresh_token: Zeroizing::new(refresh.to_string()) }
        }
        _ => return Err(CliError::Usage("give --client-id with --client-secret, or --username".into())),
    };
    let p = Profile { server: server.clone(), ca_file, tenant_id: tenant_id.clone(), auth };
    // Check the credentials work before saving them.
    let mut c = Client::new(Settings {
        server: p.server.clone(),
        ca_file: p.ca_file.clone(),
        tenant_id: p.tenant_id.clone(),
        auth: p.auth.clone(),
        profile: None,
    })?;
    c.management_token().await?;
    let object_id = c.own_object_id().await?;
    // The check redeemed the refresh token (single-use): save the one that replaced it.
    let p = Profile { auth: c.auth().clone(), ..p };
    let path = save_profile(profile, &p)?;
    Ok(Some(
        json!({"profile": profile, "path": path.display().to_string(), "server": server, "tenant_id": tenant_id, "object_id": object_id}),
    ))
}

pub async fn logout(profile: &str) -> CliResult<Option<Value>> {
    let path = profile_path(profile)?;
    let Some(p) = load_profile(profile)? else {
        return Err(CliError::Usage(format!("there is no profile '{profile}'")));
    };
    if let Auth::RefreshToken { refresh_token, .. } = &p.auth {
        // Best effort: revoke the refresh token on the server, then forget it here.
        let settings = Settings {
            server: p.server.clone(),
            ca_file: p.ca_file.clone(),
            tenant_id: p.tenant_id.clone(),
            auth: p.auth.clone(),
            profile: None,
        };
        if let Ok(c) = Client::new(settings) {
            let url = format!("{}/{}/oauth2/v2.0/revoke", p.server, p.tenant_id);
            let _ = c.post_form(&url, &[("token", refresh_token.as_str())]).await;
        }
    }
    std::fs::remove_file(&path).map_err(|e| CliError::Usage(format!("cannot remove {}: {e}", path.display())))?;
    Ok(Some(json!({"profile": profile, "logged_out": true})))
}

#[derive(clap::Subcommand)]
pub enum SigningKeyCommand {
    /// Start signing tokens with a new key; tokens signed by older keys stay valid until they expire.
    Rotate,
}

pub async fn signing_key(cmd: SigningKeyCommand, profile: &str) -> CliResult<Option<Value>> {
    let mut c = Client::new(Settings::resolve(profile)?)?;
    match cmd {
        SigningKeyCommand::Rotate => {
            Ok(Some(c.management(Method::POST, "/directory/signing-keys/rotate", None).await?))
        }
    }
}
