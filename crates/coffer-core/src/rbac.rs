//! Azure RBAC: role definitions (built-in and custom), scopes, assignments, and the matching of
//! actions against `actions`/`notActions` and `dataActions`/`notDataActions` with wildcards.
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::names::{printable, validate_object_name, validate_resource_group_name, validate_vault_name};

pub const DATA_PREFIX: &str = "Microsoft.KeyVault/vaults/";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinition {
    /// A GUID (Azure's, for built-in roles).
    pub id: String,
    #[serde(rename = "roleName")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub not_actions: Vec<String>,
    #[serde(default)]
    pub data_actions: Vec<String>,
    #[serde(default)]
    pub not_data_actions: Vec<String>,
    #[serde(default)]
    pub built_in: bool,
}

/// `*` matches any run of characters (including `/`); comparison ignores case, as Azure's.
pub fn wildcard_match(pattern: &str, action: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let a: Vec<char> = action.to_ascii_lowercase().chars().collect();
    // Iterative glob with backtracking to the last star: linear in practice.
    let (mut pi, mut ai, mut star, mut mark) = (0, 0, None, 0);
    while ai < a.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ai;
            pi += 1;
        } else if pi < p.len() && p[pi] == a[ai] {
            pi += 1;
            ai += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ai = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn any_match(patterns: &[String], action: &str) -> Option<String> {
    patterns.iter().find(|p| wildcard_match(p, action)).cloned()
}

impl RoleDefinition {
    /// The data-action pattern that allows `action` (full name), unless a `notDataActions` entry removes it.
    pub fn allows_data(&self, action: &str) -> Option<String> {
        let granted = any_match(&self.data_actions, action)?;
        any_match(&self.not_data_actions, action).is_none().then_some(granted)
    }

    pub fn allows_management(&self, action: &str) -> Option<String> {
        let granted = any_match(&self.actions, action)?;
        any_match(&self.not_actions, action).is_none().then_some(granted)
    }

    /// Checks a custom role definition before it is stored.
    pub fn validate_custom(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.name.chars().count() > 256 {
            return Err(Error::bad_parameter("A role needs a name of 1 to 256 characters."));
        }
        if self.data_actions.is_empty() && self.actions.is_empty() {
            return Err(Error::bad_parameter("A role needs at least one action or data action."));
        }
        for a in self.data_actions.iter().chain(&self.not_data_actions) {
            if !a.to_ascii_lowercase().starts_with(&DATA_PREFIX.to_ascii_lowercase()) && a != "*" {
                return Err(Error::bad_parameter(format!(
                    "Data action '{}' must start with '{DATA_PREFIX}'.",
                    printable(a)
                )));
            }
        }
        for a in self.actions.iter().chain(&self.not_actions).chain(&self.data_actions).chain(&self.not_data_actions) {
            if a.is_empty() || a.len() > 512 || a.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Error::bad_parameter(format!("'{}' is not a valid action.", printable(a))));
            }
        }
        Ok(())
    }
}

fn role(
    id: &str,
    name: &str,
    description: &str,
    actions: &[&str],
    not_actions: &[&str],
    data: &[&str],
    not_data: &[&str],
) -> RoleDefinition {
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
    RoleDefinition {
        id: id.into(),
        name: name.into(),
        description: description.into(),
        actions: v(actions),
        not_actions: v(not_actions),
        data_actions: v(data),
        not_data_actions: v(not_data),
        built_in: true,
    }
}

pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
pub const KV_CONTRIBUTOR: &str = "f25e0fa2-a7c8-4377-a976-54943a77a395";
pub const KV_DATA_ACCESS_ADMINISTRATOR: &str = "8b54135c-b56d-4d72-a534-26097cfdc8d8";

/// The Key Vault data roles a Data Access Administrator may assign (its ABAC condition).
pub const DATA_ACCESS_ADMIN_ASSIGNABLE: &[&str] = &[
    "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "21090545-7ca7-4776-b22c-e363652d74d2",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "4633458b-17de-408a-b874-0445c86b69e6",
    "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
    "12338af0-0e69-4776-bea7-57ae8d297424",
    "e147488a-f6f5-4113-8e2d-b22465e65bf6",
    "08bbd89e-9f13-488c-ac41-acfcb10c90ab",
    "a4417e6f-fecd-4de8-b567-7b0420556985",
    "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba",
];

/// Azure's built-in roles that matter to a key vault, with their GUIDs and (data) actions.
pub fn builtin_roles() -> &'static [RoleDefinition] {
    static ROLES: std::sync::OnceLock<Vec<RoleDefinition>> = std::sync::OnceLock::new();
    ROLES.get_or_init(|| {
        let kv_reads = ["Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/read", "Microsoft.KeyVault/checkNameAvailability/read", "Microsoft.KeyVault/deletedVaults/read", "Microsoft.KeyVault/locations/*/read", "Microsoft.KeyVault/operations/read"];
        vec![
            role(OWNER, "Owner", "Grants full access to manage all resources, including the ability to assign roles.", &["*"], &[], &[], &[]),
            role(
                CONTRIBUTOR,
                "Contributor",
                "Grants full access to manage all resources, but does not allow you to assign roles.",
                &["*"],
                &["Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action"],
                &[],
                &[],
            ),
            role(READER, "Reader", "View all resources, but does not allow you to make any changes.", &["*/read"], &[], &[], &[]),
            role(
                KV_CONTRIBUTOR,
                "Key Vault Contributor",
                "Lets you manage key vaults, but not access to them.",
                &["Microsoft.KeyVault/*", "Microsoft.Resources/subscriptions/resourceGroups/read"],
                &["Microsoft.KeyVault/locations/deletedVaults/purge/action", "Microsoft.KeyVault/hsmPools/*", "Microsoft.KeyVault/managedHsms/*"],
                &[],
                &[],
            ),
            role(
                KV_DATA_ACCESS_ADMINISTRATOR,
                "Key Vault Data Access Administrator",
                "Manage access to Azure Key Vault by adding or removing role assignments for the Key Vault Administrator, Key Vault Certificates Officer, Key Vault Crypto Officer, Key Vault Crypto Service Encryption User, Key Vault Crypto User, Key Vault Reader, Key Vault Secrets Officer, or Key Vault Secrets User roles.",
                &["Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete", "Microsoft.Authorization/*/read", "Microsoft.KeyVault/vaults/read"],
                &[],
                &[],
                &[],
            ),
            role("00482a5a-887f-4fb3-b363-3b7fe8e74483", "Key Vault Administrator", "Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and secrets.", &kv_reads, &[], &["Microsoft.KeyVault/vaults/*"], &[]),
            role("21090545-7ca7-4776-b22c-e363652d74d2", "Key Vault Reader", "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material.", &kv_reads, &[], &["Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"], &[]),
            role("b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "Key Vault Secrets Officer", "Perform any action on the secrets of a key vault, except manage permissions.", &kv_reads, &[], &["Microsoft.KeyVault/vaults/secrets/*"], &[]),
            role("4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User", "Read secret contents.", &[], &[], &["Microsoft.KeyVault/vaults/secrets/getSecret/action", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"], &[]),
            role("14b46e9e-c2b7-41b4-b07b-48a6ebf60603", "Key Vault Crypto Officer", "Perform any action on the keys of a key vault, except manage permissions.", &kv_reads, &[], &["Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keyrotationpolicies/*"], &[]),
            role(
                "12338af0-0e69-4776-bea7-57ae8d297424",
                "Key Vault Crypto User",
                "Perform cryptographic operations using keys.",
                &[],
                &[],
                &[
                    "Microsoft.KeyVault/vaults/keys/read",
                    "Microsoft.KeyVault/vaults/keys/update/action",
                    "Microsoft.KeyVault/vaults/keys/backup/action",
                    "Microsoft.KeyVault/vaults/keys/encrypt/action",
                    "Microsoft.KeyVault/vaults/keys/decrypt/action",
                    "Microsoft.KeyVault/vaults/keys/wrap/action",
                    "Microsoft.KeyVault/vaults/keys/unwrap/action",
                    "Microsoft.KeyVault/vaults/keys/sign/action",
                    "Microsoft.KeyVault/vaults/keys/verify/action",
                ],
                &[],
            ),
            role("e147488a-f6f5-4113-8e2d-b22465e65bf6", "Key Vault Crypto Service Encryption User", "Read metadata of keys and perform wrap/unwrap operations.", &[], &[], &["Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/wrap/action", "Microsoft.KeyVault/vaults/keys/unwrap/action"], &[]),
            role("08bbd89e-9f13-488c-ac41-acfcb10c90ab", "Key Vault Crypto Service Release User", "Release keys.", &[], &[], &["Microsoft.KeyVault/vaults/keys/release/action"], &[]),
            role("a4417e6f-fecd-4de8-b567-7b0420556985", "Key Vault Certificates Officer", "Perform any action on the certificates of a key vault, except manage permissions.", &kv_reads, &[], &["Microsoft.KeyVault/vaults/certificatecas/*", "Microsoft.KeyVault/vaults/certificates/*", "Microsoft.KeyVault/vaults/certificatecontacts/write"], &[]),
            role("db79e9a7-68ee-4b58-9aeb-b90e7c24fcba", "Key Vault Certificate User", "Read entire certificate contents including secret and key portion.", &[], &[], &["Microsoft.KeyVault/vaults/certificates/read", "Microsoft.KeyVault/vaults/secrets/getSecret/action", "Microsoft.KeyVault/vaults/secrets/readMetadata/action", "Microsoft.KeyVault/vaults/keys/read"], &[]),
        ]
    })
}

/// A built-in role by GUID or by name (case-insensitive).
pub fn find_builtin(name_or_id: &str) -> Option<&'static RoleDefinition> {
    builtin_roles().iter().find(|r| r.id.eq_ignore_ascii_case(name_or_id) || r.name.eq_ignore_ascii_case(name_or_id))
}

/// Where an assignment applies: the whole tenant, one vault, or one object in a vault.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Root,
    /// Every vault of one resource group (of the tenant's one subscription), now or later.
    ResourceGroup(String),
    Vault(String),
    Item {
        vault: String,
        collection: String,
        name: String,
    },
}

impl Scope {
    /// `/`, `/resourceGroups/G`, `/vaults/V`, `/vaults/V/secrets|keys|certificates/N` (names
    /// lowercased: they are case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::bad_parameter(format!(
                "The scope '{}' is not valid. Use '/', '/resourceGroups/NAME', '/vaults/NAME' or '/vaults/NAME/secrets|keys|certificates/NAME'.",
                printable(s)
            ))
        };
        let parts: Vec<&str> = s.trim().trim_end_matches('/').split('/').collect();
        match parts.as_slice() {
            [""] => Ok(Self::Root),
            ["", g, group] if g.eq_ignore_ascii_case("resourcegroups") => {
                validate_resource_group_name(group).map_err(|_| bad())?;
                Ok(Self::ResourceGroup(group.to_lowercase()))
            }
            ["", v, vault] if v.eq_ignore_ascii_case("vaults") => {
                validate_vault_name(vault).map_err(|_| bad())?;
                Ok(Self::Vault(vault.to_ascii_lowercase()))
            }
            ["", v, vault, coll, name] if v.eq_ignore_ascii_case("vaults") => {
                validate_vault_name(vault).map_err(|_| bad())?;
                validate_object_name(name).map_err(|_| bad())?;
                let coll = coll.to_ascii_lowercase();
                if !matches!(coll.as_str(), "secrets" | "keys" | "certificates") {
                    return Err(bad());
                }
                Ok(Self::Item { vault: vault.to_ascii_lowercase(), collection: coll, name: name.to_ascii_lowercase() })
            }
            _ => Err(bad()),
        }
    }

    /// The canonical text form, which is also the index key.
    pub fn key(&self) -> String {
        match self {
            Self::Root => "/".into(),
            Self::ResourceGroup(g) => format!("/resourcegroups/{g}"),
            Self::Vault(v) => format!("/vaults/{v}"),
            Self::Item { vault, collection, name } => format!("/vaults/{vault}/{collection}/{name}"),
        }
    }

    /// Every scope that covers an operation on `vault`, a vault of resource group `group` (and,
    /// for item operations, the item): an assignment at any of these applies. At most four
    /// keys, so lookups are indexed.
    pub fn covering(vault: &str, group: &str, item: Option<(&str, &str)>) -> Vec<String> {
        let v = vault.to_ascii_lowercase();
        let mut keys = vec!["/".to_string()];
        if !group.is_empty() {
            keys.push(format!("/resourcegroups/{}", group.to_lowercase()));
        }
        keys.push(format!("/vaults/{v}"));
        if let Some((collection, name)) = item {
            keys.push(format!("/vaults/{v}/{collection}/{}", name.to_ascii_lowercase()));
        }
        keys
    }

    /// The scopes whose assignments apply here: this one and those above it. `group_of_vault`
    /// is the resource group of the vault this scope is in, if it is in one.
    pub fn covering_keys(&self, group_of_vault: &str) -> Vec<String> {
        match self {
            Self::Root => vec!["/".into()],
            Self::ResourceGroup(g) => vec!["/".into(), format!("/resourcegroups/{g}")],
            Self::Vault(v) => Self::covering(v, group_of_vault, None),
            Self::Item { vault, collection, name } => Self::covering(vault, group_of_vault, Some((collection, name))),
        }
    }

    /// The resource group this scope names, if it is one.
    pub fn resource_group(&self) -> Option<&str> {
        match self {
            Self::ResourceGroup(g) => Some(g),
            _ => None,
        }
    }

    pub fn vault(&self) -> Option<&str> {
        match self {
            Self::Root | Self::ResourceGroup(_) => None,
            Self::Vault(v) | Self::Item { vault: v, .. } => Some(v),
        }
    }
}

/// A role given to a principal (user, app, managed identity or group) at a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    pub id: String,
    pub tenant_id: String,
    /// `Scope::key()`.
    pub scope: String,
    pub role_definition_id: String,
    pub principal_id: String,
    pub created: i64,
    pub created_by: String,
}

/// An assignment that applies to a caller, with its role resolved and how it reaches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicableAssignment {
    pub assignment: RoleAssignment,
    pub role: RoleDefinition,
    /// The group through which the caller holds it, if not directly.
    pub via_group: Option<String>,
}

impl ApplicableAssignment {
    pub fn describe(&self) -> String {
        let who = match &self.via_group {
            Some(g) => format!("group {g}"),
            None => "the caller".to_string(),
        };
        format!(
            "role '{}' assigned to {who} at scope '{}' (assignment {})",
            self.role.name, self.assignment.scope, self.assignment.id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*", "Microsoft.KeyVault/vaults/secrets/getSecret/action"));
        assert!(wildcard_match("Microsoft.KeyVault/vaults/*", "microsoft.keyvault/vaults/secrets/getSecret/action"));
        assert!(wildcard_match("Microsoft.KeyVault/vaults/secrets/*", "Microsoft.KeyVault/vaults/secrets/delete"));
        assert!(!wildcard_match("Microsoft.KeyVault/vaults/secrets/*", "Microsoft.KeyVault/vaults/keys/read"));
        assert!(wildcard_match("Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/keys/read"));
        assert!(!wildcard_match("Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/read"));
        assert!(wildcard_match("*/read", "Microsoft.KeyVault/vaults/read"));
        assert!(!wildcard_match("a*b*c", "abd"));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
    }

    #[test]
    fn builtin_roles_behave_as_documented() {
        let user = find_builtin("Key Vault Secrets User").unwrap();
        assert!(user.allows_data("Microsoft.KeyVault/vaults/secrets/getSecret/action").is_some());
        assert!(user.allows_data("Microsoft.KeyVault/vaults/secrets/setSecret/action").is_none());
        let reader = find_builtin("21090545-7ca7-4776-b22c-e363652d74d2").unwrap();
        assert_eq!(reader.name, "Key Vault Reader");
        assert!(reader.allows_data("Microsoft.KeyVault/vaults/secrets/readMetadata/action").is_some());
        assert!(reader.allows_data("Microsoft.KeyVault/vaults/secrets/getSecret/action").is_none());
        let contributor = find_builtin("contributor").unwrap();
        assert!(contributor.allows_management("Microsoft.KeyVault/vaults/write").is_some());
        assert!(contributor.allows_management("Microsoft.Authorization/roleAssignments/write").is_none());
        assert!(contributor.allows_data("Microsoft.KeyVault/vaults/secrets/getSecret/action").is_none());
        assert!(
            find_builtin("Owner").unwrap().allows_management("Microsoft.Authorization/roleAssignments/write").is_some()
        );
        assert_eq!(builtin_roles().len(), 15);
    }

    #[test]
    fn not_data_actions_subtract() {
        let r = RoleDefinition {
            id: "x".into(),
            name: "All but purge".into(),
            description: String::new(),
            actions: vec![],
            not_actions: vec![],
            data_actions: vec!["Microsoft.KeyVault/vaults/secrets/*".into()],
            not_data_actions: vec!["Microsoft.KeyVault/vaults/secrets/purge/action".into()],
            built_in: false,
        };
        assert!(r.allows_data("Microsoft.KeyVault/vaults/secrets/delete").is_some());
        assert!(r.allows_data("Microsoft.KeyVault/vaults/secrets/purge/action").is_none());
        assert!(r.validate_custom().is_ok());
        let bad = RoleDefinition { data_actions: vec!["Other/thing".into()], ..r };
        assert!(bad.validate_custom().is_err());
    }

    #[test]
    fn scopes() {
        assert_eq!(Scope::parse("/").unwrap(), Scope::Root);
        assert_eq!(Scope::parse("/vaults/HR-App").unwrap().key(), "/vaults/hr-app");
        assert_eq!(Scope::parse("/vaults/hr-app/secrets/Db").unwrap().key(), "/vaults/hr-app/secrets/db");
        for bad in ["vaults/x", "/vaults", "/vaults/x/blobs/y", "/vaults/ab", "/vaults/hr-app/secrets/bad_name", "/x/y"]
        {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Scope::parse("/resourceGroups/Clinical").unwrap().key(), "/resourcegroups/clinical");
        assert!(Scope::parse("/resourceGroups/bad name").is_err());
        assert_eq!(
            Scope::covering("HR-app", "Clinical", Some(("secrets", "Db"))),
            vec!["/", "/resourcegroups/clinical", "/vaults/hr-app", "/vaults/hr-app/secrets/db"]
        );
        assert_eq!(
            Scope::parse("/resourceGroups/Clinical").unwrap().covering_keys("ignored"),
            vec!["/", "/resourcegroups/clinical"]
        );
    }
}
