//! Dev mode bootstrap (`coffer serve --dev`, see the README): on first start create the CA, a tenant and an
//! administrator application, and write `dev-credentials.json`; on later starts reuse them.
use std::path::{Path, PathBuf};

use anyhow::Context;
use coffer_core::principal::{Principal, PrincipalKind};
use coffer_store::{Credential, Store, Tenant};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::tls::write_private;

#[derive(Clone, Serialize, Deserialize)]
pub struct DevCredentials {
    pub server: String,
    pub authority: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub ca_file: String,
    pub subscription_id: String,
}

impl std::fmt::Debug for DevCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCredentials")
            .field("server", &self.server)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

const ADMIN_META: &str = "dev/admin-object-id";

pub fn credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-credentials.json")
}

/// Makes sure a tenant exists, with its default subscription's default resource group, and
/// returns it (the first one).
pub async fn ensure_tenant(store: &dyn Store, now: i64) -> anyhow::Result<Tenant> {
    let t = match store.list_tenants().await?.into_iter().next() {
        Some(t) => t,
        None => {
            let t = Tenant {
                id: coffer_crypto::random::guid(),
                name: "default".into(),
                default_subscription_id: coffer_crypto::random::guid(),
                created: now,
            };
            store.create_tenant(&t).await?;
            t
        }
    };
    let rg = crate::management::DEFAULT_RESOURCE_GROUP;
    if store.get_resource_group(&t.default_subscription_id, rg).await?.is_none() {
        store
            .put_resource_group(&coffer_store::ResourceGroup {
                subscription_id: t.default_subscription_id.clone(),
                name: rg.into(),
                location: "local".into(),
                tags: Default::default(),
                created: now,
            })
            .await?;
    }
    Ok(t)
}

/// Makes sure the dev administrator application exists and that `dev-credentials.json`
/// holds a working secret for it and the port actually listened on.
pub async fn ensure_admin(
    store: &dyn Store,
    tenant: &Tenant,
    data_dir: &Path,
    authority: &str,
    ca_file: &Path,
    now: i64,
) -> anyhow::Result<DevCredentials> {
    let path = credentials_path(data_dir);
    let admin = match store.get_meta(ADMIN_META).await? {
        Some(id) => {
            let id = String::from_utf8(id).context("admin object id")?;
            store.get_principal(&id).await?.context("the dev administrator application is missing")?
        }
        None => {
            let p = new_admin_application(store, tenant, "coffer-admin", now).await?;
            store.put_meta_if_absent(ADMIN_META, p.object_id.as_bytes()).await?;
            p
        }
    };
    let client_id = admin.client_id.clone().context("the administrator has no client id")?;

    // Reuse the secret in the file if it still opens the door; otherwise issue a new one.
    let previous: Option<DevCredentials> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|c: &DevCredentials| c.client_id == client_id);
    let hashes: Vec<String> =
        store.list_credentials(&admin.object_id).await?.into_iter().map(|c| c.secret_hash).collect();
    let secret = match previous.map(|c| Zeroizing::new(c.client_secret)) {
        Some(s) if hashes.iter().any(|h| coffer_crypto::password::verify(&s, h)) => s,
        _ => add_client_secret(store, &admin.object_id, now).await?,
    };
    let creds = DevCredentials {
        server: authority.to_string(),
        authority: authority.to_string(),
        tenant_id: tenant.id.clone(),
        client_id,
        client_secret: secret.to_string(),
        ca_file: ca_file.display().to_string(),
        subscription_id: tenant.default_subscription_id.clone(),
    };
    let text = Zeroizing::new(serde_json::to_vec_pretty(&creds)?);
    write_private(&path, &text)?;
    Ok(creds)
}

/// A tenant administrator application (the bootstrap administrator of dev mode and of
/// `coffer operator init`).
pub async fn new_admin_application(
    store: &dyn Store,
    tenant: &Tenant,
    name: &str,
    now: i64,
) -> anyhow::Result<Principal> {
    let p = Principal {
        object_id: coffer_crypto::random::guid(),
        tenant_id: tenant.id.clone(),
        kind: PrincipalKind::App,
        name: name.into(),
        client_id: Some(coffer_crypto::random::guid()),
        enabled: true,
        tenant_admin: true,
        created: now,
        display_name: None,
        mail_nickname: None,
    };
    store.create_principal(&p).await?;
    Ok(p)
}

/// A new client secret for an application; only its hash is stored.
pub async fn add_client_secret(store: &dyn Store, principal_id: &str, now: i64) -> anyhow::Result<Zeroizing<String>> {
    let s = coffer_crypto::random::client_secret();
    store
        .add_credential(&Credential {
            id: coffer_crypto::random::guid(),
            principal_id: principal_id.to_string(),
            kind: coffer_store::credential_kind::SECRET.into(),
            secret_hash: coffer_crypto::password::hash(&s)?,
            thumbprint: None,
            material: None,
            expires: None,
            created: now,
        })
        .await?;
    Ok(s)
}

/// The `export COFFER_...=` lines printed at start-up.
pub fn export_lines(c: &DevCredentials) -> String {
    format!(
        "export COFFER_SERVER={}\nexport COFFER_CA_FILE={}\nexport COFFER_TENANT_ID={}\nexport COFFER_CLIENT_ID={}\nexport COFFER_CLIENT_SECRET={}\n",
        c.server, c.ca_file, c.tenant_id, c.client_id, c.client_secret
    )
}
