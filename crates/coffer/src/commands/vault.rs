//! `coffer vault …`, in the style of `az keyvault`.
use reqwest::Method;
use serde_json::{Value, json};

use super::args;
use crate::client::{CliError, CliResult, Client, Settings};

#[derive(clap::Subcommand)]
pub enum VaultCommand {
    /// Create a vault; its creator gets an access policy with every permission.
    Create {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'g', default_value = "default")]
        resource_group: String,
        #[arg(long, short = 'l', default_value = "local")]
        location: String,
        /// Soft-delete retention, 7–90 days (fixed at creation).
        #[arg(long)]
        retention_days: Option<u32>,
        #[arg(long)]
        enable_purge_protection: Option<bool>,
        #[arg(long)]
        enable_rbac_authorization: Option<bool>,
        #[arg(long, num_args = 0..)]
        tags: Vec<String>,
        /// Do not give the creator an access policy (as `az keyvault create --no-self-perms`).
        #[arg(long)]
        no_self_perms: bool,
    },
    /// List vaults.
    List {
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
    },
    /// Show a vault.
    Show {
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Update a vault's settings.
    Update {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long)]
        enable_rbac_authorization: Option<bool>,
        #[arg(long)]
        enable_purge_protection: Option<bool>,
        #[arg(long, num_args = 0..)]
        tags: Option<Vec<String>>,
    },
    /// Set a principal's permissions (the listed areas; others are kept).
    SetPolicy {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long)]
        object_id: String,
        #[arg(long, num_args = 0..)]
        secret_permissions: Option<Vec<String>>,
        #[arg(long, num_args = 0..)]
        key_permissions: Option<Vec<String>>,
        #[arg(long, num_args = 0..)]
        certificate_permissions: Option<Vec<String>>,
    },
    /// Remove a principal's access policy.
    DeletePolicy {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long)]
        object_id: String,
    },
}

/// The ARM id path of a vault found by name (as `az` does without `-g`).
async fn find_vault(c: &mut Client, name: &str) -> CliResult<Value> {
    let sub = c.subscription().await?;
    let list =
        c.management(Method::GET, &format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults"), None).await?;
    list["value"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name))).cloned())
        .ok_or_else(|| CliError::Server(format!("(ResourceNotFound) The vault '{name}' was not found.")))
}

fn id_of(vault: &Value) -> CliResult<String> {
    vault["id"].as_str().map(str::to_string).ok_or_else(|| CliError::Server("the vault has no id".into()))
}

pub async fn run(cmd: VaultCommand, profile: &str) -> CliResult<Option<Value>> {
    let mut c = Client::new(Settings::resolve(profile)?)?;
    let value = match cmd {
        VaultCommand::Create {
            name,
            resource_group,
            location,
            retention_days,
            enable_purge_protection,
            enable_rbac_authorization,
            tags,
            no_self_perms,
        } => {
            let sub = c.subscription().await?;
            let path = format!(
                "/subscriptions/{sub}/resourceGroups/{resource_group}/providers/Microsoft.KeyVault/vaults/{name}"
            );
            if find_vault(&mut c, &name).await.is_ok() {
                return Err(CliError::Server(format!("(VaultAlreadyExists) The vault '{name}' already exists.")));
            }
            let rbac = enable_rbac_authorization.unwrap_or(false);
            let mut props = json!({"tenantId": c.tenant_id(), "sku": {"family": "A", "name": "standard"}});
            if !rbac && !no_self_perms {
                // As `az keyvault create`: the creator gets every permission.
                let oid = c.own_object_id().await?;
                props["accessPolicies"] = json!([{
                    "tenantId": c.tenant_id(), "objectId": oid,
                    "permissions": {"keys": ["all"], "secrets": ["all"], "certificates": ["all"], "storage": ["all"]}
                }]);
            }
            if let Some(d) = retention_days {
                props["softDeleteRetentionInDays"] = d.into();
            }
            if let Some(p) = enable_purge_protection {
                props["enablePurgeProtection"] = p.into();
            }
            props["enableRbacAuthorization"] = rbac.into();
            let body = json!({"location": location, "properties": props, "tags": args::tags(&tags)?});
            c.management(Method::PUT, &path, Some(&body)).await?
        }
        VaultCommand::List { resource_group } => {
            let sub = c.subscription().await?;
            let path = match resource_group {
                Some(rg) => format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults"),
                None => format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults"),
            };
            c.management(Method::GET, &path, None).await?["value"].clone()
        }
        VaultCommand::Show { name } => find_vault(&mut c, &name).await?,
        VaultCommand::Update { name, enable_rbac_authorization, enable_purge_protection, tags } => {
            let id = id_of(&find_vault(&mut c, &name).await?)?;
            let mut props = serde_json::Map::new();
            if let Some(r) = enable_rbac_authorization {
                props.insert("enableRbacAuthorization".into(), r.into());
            }
            if let Some(p) = enable_purge_protection {
                props.insert("enablePurgeProtection".into(), p.into());
            }
            let mut body = json!({"properties": props});
            if let Some(t) = tags {
                body["tags"] = args::tags(&t)?;
            }
            c.management(Method::PATCH, &id, Some(&body)).await?
        }
        VaultCommand::SetPolicy { name, object_id, secret_permissions, key_permissions, certificate_permissions } => {
            let vault = find_vault(&mut c, &name).await?;
            let id = id_of(&vault)?;
            let existing = vault["properties"]["accessPolicies"].as_array().and_then(|ps| {
                ps.iter().find(|p| p["objectId"].as_str().is_some_and(|o| o.eq_ignore_ascii_case(&object_id))).cloned()
            });
            let mut perms = existing.map(|p| p["permissions"].clone()).unwrap_or_else(|| json!({}));
            for (area, given) in
                [("secrets", secret_permissions), ("keys", key_permissions), ("certificates", certificate_permissions)]
            {
                if let Some(g) = given {
                    perms[area] = json!(g);
                }
            }
            let body = json!({"properties": {"accessPolicies": [{"tenantId": c.tenant_id(), "objectId": object_id, "permissions": perms}]}});
            c.management(Method::PUT, &format!("{id}/accessPolicies/replace"), Some(&body)).await?;
            find_vault(&mut c, &name).await?
        }
        VaultCommand::DeletePolicy { name, object_id } => {
            let id = id_of(&find_vault(&mut c, &name).await?)?;
            let body = json!({"properties": {"accessPolicies": [{"tenantId": c.tenant_id(), "objectId": object_id, "permissions": {}}]}});
            c.management(Method::PUT, &format!("{id}/accessPolicies/remove"), Some(&body)).await?;
            find_vault(&mut c, &name).await?
        }
    };
    Ok(Some(value))
}
