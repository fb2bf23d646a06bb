//! Vaults: the unit of isolation. Settings, access policies and soft-delete state.
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::lifecycle::{Deletion, RetentionPolicy};
use crate::limits::MAX_ACCESS_POLICIES;
use crate::object::Tags;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vault {
    /// Stable internal id (a GUID), part of every AAD so rows cannot move between vaults.
    pub id: String,
    pub name: String,
    pub tenant_id: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub location: String,
    pub retention: RetentionPolicy,
    pub enable_rbac_authorization: bool,
    pub access_policies: Vec<AccessPolicy>,
    pub tags: Tags,
    /// The vault's firewall; `None` means open (defaultAction Allow).
    pub network_acls: Option<crate::network::NetworkAcls>,
    pub created_by: String,
    pub created: UnixTime,
    pub updated: UnixTime,
    pub deletion: Option<Deletion>,
}

/// One principal's permissions, in Azure's shape (`az keyvault set-policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicy {
    pub tenant_id: String,
    pub object_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    pub permissions: PolicyPermissions,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyPermissions {
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub certificates: Vec<String>,
    #[serde(default)]
    pub storage: Vec<String>,
}

impl PolicyPermissions {
    /// Every permission, as `az keyvault create` grants the creator.
    pub fn all() -> Self {
        let all = || vec!["all".to_string()];
        Self { keys: all(), secrets: all(), certificates: all(), storage: all() }
    }
}

impl Vault {
    /// The permission model's name in audit records and in `explain`: `rbac` or `accessPolicy`.
    pub fn permission_model(&self) -> &'static str {
        if self.enable_rbac_authorization { "rbac" } else { "accessPolicy" }
    }

    /// Azure Resource Manager's id of the vault.
    pub fn resource_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.KeyVault/vaults/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }

    pub fn is_deleted(&self) -> bool {
        self.deletion.is_some()
    }

    /// Adds or replaces the policy of `policy.object_id`.
    pub fn set_access_policy(&mut self, policy: AccessPolicy) -> Result<()> {
        validate_permission_names(&policy.permissions)?;
        if let Some(existing) =
            self.access_policies.iter_mut().find(|p| p.object_id.eq_ignore_ascii_case(&policy.object_id))
        {
            *existing = policy;
        } else {
            if self.access_policies.len() >= MAX_ACCESS_POLICIES {
                return Err(Error::bad_parameter(format!(
                    "A vault can hold at most {MAX_ACCESS_POLICIES} access policies."
                )));
            }
            self.access_policies.push(policy);
        }
        Ok(())
    }

    pub fn remove_access_policy(&mut self, object_id: &str) -> bool {
        let before = self.access_policies.len();
        self.access_policies.retain(|p| !p.object_id.eq_ignore_ascii_case(object_id));
        before != self.access_policies.len()
    }
}

// ---- Access-policy permission names (Azure's) ----

pub const SECRET_PERMISSIONS: &[&str] =
    &["all", "get", "list", "set", "delete", "recover", "backup", "restore", "purge"];
pub const KEY_PERMISSIONS: &[&str] = &[
    "all",
    "get",
    "list",
    "update",
    "create",
    "import",
    "delete",
    "recover",
    "backup",
    "restore",
    "decrypt",
    "encrypt",
    "unwrapkey",
    "wrapkey",
    "verify",
    "sign",
    "purge",
    "release",
    "rotate",
    "getrotationpolicy",
    "setrotationpolicy",
];
pub const CERTIFICATE_PERMISSIONS: &[&str] = &[
    "all",
    "get",
    "list",
    "update",
    "create",
    "import",
    "delete",
    "recover",
    "backup",
    "restore",
    "managecontacts",
    "manageissuers",
    "getissuers",
    "listissuers",
    "setissuers",
    "deleteissuers",
    "purge",
];
const STORAGE_PERMISSIONS: &[&str] = &[
    "all",
    "get",
    "list",
    "delete",
    "set",
    "update",
    "regeneratekey",
    "getsas",
    "listsas",
    "deletesas",
    "setsas",
    "recover",
    "backup",
    "restore",
    "purge",
];

/// Rejects permission names Azure does not know (case-insensitive, as ARM tools write `Get`).
pub fn validate_permission_names(p: &PolicyPermissions) -> Result<()> {
    let check = |area: &str, given: &[String], known: &[&str]| -> Result<()> {
        for g in given {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(g)) {
                return Err(Error::bad_parameter(format!(
                    "'{}' is not a valid {area} permission. Valid values: {}.",
                    crate::names::printable(g),
                    known.join(", ")
                )));
            }
        }
        Ok(())
    };
    check("secret", &p.secrets, SECRET_PERMISSIONS)?;
    check("key", &p.keys, KEY_PERMISSIONS)?;
    check("certificate", &p.certificates, CERTIFICATE_PERMISSIONS)?;
    check("storage", &p.storage, STORAGE_PERMISSIONS)
}
