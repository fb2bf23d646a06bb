//! What the beta and the stable Rust SDK programs share, word for word: the setup (a custom
//! cloud, a reqwest transport that trusts the CA and resolves the vault's host to the server)
//! and the secrets scenario. Each crate compiles this file against its own versions of the
//! Azure crates (tests/compat/rust-stable includes it by path).
use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::Secret;
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use azure_security_keyvault_secrets::models::{SetSecretParameters, UpdateSecretPropertiesParameters};
use azure_security_keyvault_secrets::{ResourceExt, SecretClient, SecretClientOptions};
use futures::TryStreamExt;

pub type Failure = Box<dyn std::error::Error>;

pub fn env(name: &str) -> Result<String, Failure> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

pub fn expect(ok: bool, what: &str) -> Result<(), Failure> {
    if ok { Ok(()) } else { Err(what.into()) }
}

/// What every area's client is built from.
pub struct Setup {
    pub vault_url: String,
    pub credential: Arc<ClientSecretCredential>,
    pub client_options: ClientOptions,
}

pub fn setup() -> Result<Setup, Failure> {
    let vault_url = env("VAULT_URL")?;
    let server: reqwest::Url = env("AUTHORITY")?.parse()?;
    let vault: reqwest::Url = vault_url.parse()?;
    let port = server.port().ok_or("the authority has no port")?;
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let ca = reqwest::Certificate::from_pem(&std::fs::read(env("CA_FILE")?)?)?;
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve("localhost", loopback)
        .resolve(vault.host_str().ok_or("no vault host")?, loopback)
        .build()?;
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = env("AUTHORITY")?;
    let client_options = ClientOptions {
        transport: Some(Transport::new(Arc::new(http))),
        cloud: Some(Arc::new(CloudConfiguration::from(cloud))),
        ..Default::default()
    };
    let credential = ClientSecretCredential::new(
        &env("TENANT_ID")?,
        env("CLIENT_ID")?,
        Secret::from(env("CLIENT_SECRET")?),
        Some(ClientSecretCredentialOptions { client_options: client_options.clone() }),
    )?;
    Ok(Setup { vault_url, credential, client_options })
}

pub async fn secrets(s: &Setup) -> Result<(), Failure> {
    let client = SecretClient::new(
        &s.vault_url,
        s.credential.clone(),
        Some(SecretClientOptions { client_options: s.client_options.clone(), ..Default::default() }),
    )?;

    let set = SetSecretParameters { value: Some("Server=db;Password=s3cr3t".into()), ..Default::default() };
    let made = client.set_secret("patient-db", set.try_into()?, None).await?.into_model()?;
    expect(made.value.as_deref() == Some("Server=db;Password=s3cr3t"), "set")?;
    let got = client.get_secret("patient-db", None).await?.into_model()?;
    expect(got.value.as_deref() == Some("Server=db;Password=s3cr3t"), "get")?;
    let again = SetSecretParameters { value: Some("rotated".into()), ..Default::default() };
    client.set_secret("patient-db", again.try_into()?, None).await?;
    let mut versions = 0;
    let mut pager = client.list_secret_properties_versions("patient-db", None)?;
    while pager.try_next().await?.is_some() {
        versions += 1;
    }
    expect(versions == 2, &format!("versions: {versions}"))?;
    let mut names = Vec::new();
    let mut pager = client.list_secret_properties(None)?;
    while let Some(p) = pager.try_next().await? {
        names.push(p.resource_id()?.name);
    }
    expect(names.iter().any(|n| n == "patient-db"), "list")?;
    let tags = UpdateSecretPropertiesParameters {
        tags: Some([("ward".to_string(), "7".to_string())].into()),
        ..Default::default()
    };
    let updated = client.update_secret_properties("patient-db", tags.try_into()?, None).await?.into_model()?;
    expect(updated.tags.as_ref().and_then(|t| t.get("ward")).map(String::as_str) == Some("7"), "update")?;
    client.delete_secret("patient-db", None).await?;
    client.get_deleted_secret("patient-db", None).await?;
    client.recover_deleted_secret("patient-db", None).await?;
    // Recovery is asynchronous in Azure; Coffer's is done when it answers.
    let back = client.get_secret("patient-db", None).await?.into_model()?;
    expect(back.value.as_deref() == Some("rotated"), "recovered")?;
    Ok(())
}
