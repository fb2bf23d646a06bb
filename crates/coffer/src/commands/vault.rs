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
        /// The firewall's default action for addresses not in an IP rule.
        #[arg(long, value_parser = ["Allow", "Deny"])]
        default_action: Option<String>,
        #[arg(long, value_parser = ["AzureServices", "None"])]
        bypass: Option<String>,
    },
    /// Soft-delete a vault: it can be recovered until its retention period ends.
    Delete {
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Recover a deleted vault with all its objects (not its role assignments).
    Recover {
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Purge a deleted vault: its key is destroyed and its data erased, for good.
    Purge {
        #[arg(long, short = 'n')]
        name: String,
    },
    /// List deleted vaults.
    ListDeleted,
    /// Show a deleted vault.
    ShowDeleted {
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Is this vault name free and valid?
    CheckName {
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Firewall IP rules of a vault.
    #[command(subcommand)]
    NetworkRule(NetworkRuleCommand),
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

#[derive(clap::Subcommand)]
pub enum NetworkRuleCommand {
    Add {
        #[arg(long, short = 'n')]
        name: String,
        /// An IPv4/IPv6 address or CIDR range.
        #[arg(long)]
        ip_address: String,
    },
    Remove {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long)]
        ip_address: String,
    },
    List {
        #[arg(long, short = 'n')]
        name: String,
    },
}

/// A deleted vault by name.
async fn find_deleted(c: &mut Client, name: &str) -> CliResult<Value> {
    let sub = c.subscription().await?;
    let list = c
        .management(Method::GET, &format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/deletedVaults"), None)
        .await?;
    list["value"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name))).cloned())
        .ok_or_else(|| CliError::Server(format!("(DeletedVaultNotFound) No deleted vault named '{name}' exists.")))
}

/// The network ACLs of a vault as JSON (an open firewall when none are set).
fn acls_of(vault: &Value) -> Value {
    let a = &vault["properties"]["networkAcls"];
    if a.is_object() {
        a.clone()
    } else {
        json!({"defaultAction": "Allow", "bypass": "AzureServices", "ipRules": [], "virtualNetworkRules": []})
    }
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
        VaultCommand::Update {
            name,
            enable_rbac_authorization,
            enable_purge_protection,
            tags,
            default_action,
            bypass,
        } => {
            let vault = find_vault(&mut c, &name).await?;
            let id = id_of(&vault)?;
            let mut props = serde_json::Map::new();
            if default_action.is_some() || bypass.is_some() {
                let mut acls = acls_of(&vault);
                if let Some(d) = default_action {
                    acls["defaultAction"] = d.into();
                }
                if let Some(b) = bypass {
                    acls["bypass"] = b.into();
                }
                props.insert("networkAcls".into(), acls);
            }
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
        VaultCommand::Delete { name } => {
            let id = id_of(&find_vault(&mut c, &name).await?)?;
            c.management(Method::DELETE, &id, None).await?;
            return Ok(None);
        }
        VaultCommand::Recover { name } => {
            let deleted = find_deleted(&mut c, &name).await?;
            let id = deleted["properties"]["vaultId"]
                .as_str()
                .ok_or_else(|| CliError::Server("the deleted vault has no vaultId".into()))?
                .to_string();
            let body = json!({
                "location": deleted["properties"]["location"],
                "properties": {"tenantId": c.tenant_id(), "sku": {"family": "A", "name": "standard"}, "createMode": "recover"},
            });
            c.management(Method::PUT, &id, Some(&body)).await?
        }
        VaultCommand::Purge { name } => {
            let id = id_of(&find_deleted(&mut c, &name).await?)?;
            c.management(Method::POST, &format!("{id}/purge"), None).await?;
            return Ok(None);
        }
        VaultCommand::ListDeleted => {
            let sub = c.subscription().await?;
            c.management(Method::GET, &format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/deletedVaults"), None)
                .await?["value"]
                .clone()
        }
        VaultCommand::ShowDeleted { name } => find_deleted(&mut c, &name).await?,
        VaultCommand::CheckName { name } => {
            let sub = c.subscription().await?;
            let body = json!({"name": name, "type": "Microsoft.KeyVault/vaults"});
            c.management(
                Method::POST,
                &format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/checkNameAvailability"),
                Some(&body),
            )
            .await?
        }
        VaultCommand::NetworkRule(cmd) => {
            let (name, change) = match &cmd {
                NetworkRuleCommand::Add { name, ip_address } => (name, Some((true, ip_address))),
                NetworkRuleCommand::Remove { name, ip_address } => (name, Some((false, ip_address))),
                NetworkRuleCommand::List { name } => (name, None),
            };
            let vault = find_vault(&mut c, name).await?;
            let mut acls = acls_of(&vault);
            let Some((add, ip)) = change else { return Ok(Some(acls)) };
            let mut rules: Vec<Value> = acls["ipRules"].as_array().cloned().unwrap_or_default();
            rules.retain(|r| r["value"].as_str() != Some(ip.as_str()));
            if add {
                rules.push(json!({"value": ip}));
            }
            acls["ipRules"] = Value::Array(rules);
            let updated = c
                .management(Method::PATCH, &id_of(&vault)?, Some(&json!({"properties": {"networkAcls": acls}})))
                .await?;
            acls_of(&updated)
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
