//! The permission model and its evaluator. The same `evaluate` decides requests and answers
//! "why" questions, so what is explained is exactly what is enforced.
//!
//! Management is not data: tenant administrators and vault owners manage settings and grants,
//! but a data action (reading a secret value) needs a data grant — an access policy under the
//! access-policy model, a role assignment under RBAC.
use crate::error::{Error, Result};
use crate::principal::Caller;
use crate::rbac::ApplicableAssignment;
use crate::vault::Vault;

/// The area an access-policy permission belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Keys,
    Secrets,
    Certificates,
}

/// Data-plane actions. Each maps to one access-policy permission and one RBAC data action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataAction {
    SecretGet,
    /// Reading a deleted secret's metadata (`GET /deletedsecrets/{n}`).
    SecretGetDeleted,
    SecretList,
    SecretSet,
    SecretUpdate,
    SecretDelete,
    SecretRecover,
    SecretBackup,
    SecretRestore,
    SecretPurge,
    KeyGet,
    KeyList,
    KeyGetDeleted,
    KeyCreate,
    KeyImport,
    KeyUpdate,
    KeyDelete,
    KeyRecover,
    KeyBackup,
    KeyRestore,
    KeyPurge,
    KeyEncrypt,
    KeyDecrypt,
    KeySign,
    KeyVerify,
    KeyWrap,
    KeyUnwrap,
    KeyRotate,
    KeyGetRotationPolicy,
    KeySetRotationPolicy,
    CertGet,
    CertList,
    CertGetDeleted,
    CertCreate,
    CertImport,
    CertUpdate,
    CertDelete,
    CertRecover,
    CertBackup,
    CertRestore,
    CertPurge,
    CertManageContacts,
    CertGetIssuers,
    CertListIssuers,
    CertSetIssuers,
    CertDeleteIssuers,
}

impl DataAction {
    pub const ALL: &'static [DataAction] = &[
        Self::SecretGet,
        // Before SecretGetDeleted: `secrets/readMetadata/action` means listing.
        Self::SecretList,
        Self::SecretGetDeleted,
        Self::SecretSet,
        Self::SecretUpdate,
        Self::SecretDelete,
        Self::SecretRecover,
        Self::SecretBackup,
        Self::SecretRestore,
        Self::SecretPurge,
        Self::KeyGet,
        // Before KeyGetDeleted: `keys/list` means listing.
        Self::KeyList,
        Self::KeyGetDeleted,
        Self::KeyCreate,
        Self::KeyImport,
        Self::KeyUpdate,
        Self::KeyDelete,
        Self::KeyRecover,
        Self::KeyBackup,
        Self::KeyRestore,
        Self::KeyPurge,
        Self::KeyEncrypt,
        Self::KeyDecrypt,
        Self::KeySign,
        Self::KeyVerify,
        Self::KeyWrap,
        Self::KeyUnwrap,
        Self::KeyRotate,
        Self::KeyGetRotationPolicy,
        Self::KeySetRotationPolicy,
        Self::CertGet,
        // Before CertGetDeleted: `certificates/list` means listing.
        Self::CertList,
        Self::CertGetDeleted,
        Self::CertCreate,
        Self::CertImport,
        Self::CertUpdate,
        Self::CertDelete,
        Self::CertRecover,
        Self::CertBackup,
        Self::CertRestore,
        Self::CertPurge,
        Self::CertManageContacts,
        Self::CertGetIssuers,
        Self::CertListIssuers,
        Self::CertSetIssuers,
        Self::CertDeleteIssuers,
    ];

    /// The access-policy permission that allows this action (`secrets/get`, ...).
    pub fn policy_permission(self) -> (Area, &'static str) {
        use DataAction::*;
        match self {
            SecretGet | SecretGetDeleted => (Area::Secrets, "get"),
            SecretList => (Area::Secrets, "list"),
            SecretSet | SecretUpdate => (Area::Secrets, "set"),
            SecretDelete => (Area::Secrets, "delete"),
            SecretRecover => (Area::Secrets, "recover"),
            SecretBackup => (Area::Secrets, "backup"),
            SecretRestore => (Area::Secrets, "restore"),
            SecretPurge => (Area::Secrets, "purge"),
            KeyGet | KeyGetDeleted => (Area::Keys, "get"),
            KeyList => (Area::Keys, "list"),
            KeyCreate => (Area::Keys, "create"),
            KeyImport => (Area::Keys, "import"),
            KeyUpdate => (Area::Keys, "update"),
            KeyDelete => (Area::Keys, "delete"),
            KeyRecover => (Area::Keys, "recover"),
            KeyBackup => (Area::Keys, "backup"),
            KeyRestore => (Area::Keys, "restore"),
            KeyPurge => (Area::Keys, "purge"),
            KeyEncrypt => (Area::Keys, "encrypt"),
            KeyDecrypt => (Area::Keys, "decrypt"),
            KeySign => (Area::Keys, "sign"),
            KeyVerify => (Area::Keys, "verify"),
            KeyWrap => (Area::Keys, "wrapKey"),
            KeyUnwrap => (Area::Keys, "unwrapKey"),
            KeyRotate => (Area::Keys, "rotate"),
            KeyGetRotationPolicy => (Area::Keys, "getrotationpolicy"),
            KeySetRotationPolicy => (Area::Keys, "setrotationpolicy"),
            CertGet | CertGetDeleted => (Area::Certificates, "get"),
            CertList => (Area::Certificates, "list"),
            CertCreate => (Area::Certificates, "create"),
            CertImport => (Area::Certificates, "import"),
            CertUpdate => (Area::Certificates, "update"),
            CertDelete => (Area::Certificates, "delete"),
            CertRecover => (Area::Certificates, "recover"),
            CertBackup => (Area::Certificates, "backup"),
            CertRestore => (Area::Certificates, "restore"),
            CertPurge => (Area::Certificates, "purge"),
            CertManageContacts => (Area::Certificates, "managecontacts"),
            CertGetIssuers => (Area::Certificates, "getissuers"),
            CertListIssuers => (Area::Certificates, "listissuers"),
            CertSetIssuers => (Area::Certificates, "setissuers"),
            CertDeleteIssuers => (Area::Certificates, "deleteissuers"),
        }
    }

    /// The RBAC data action, without the `Microsoft.KeyVault/vaults/` prefix.
    pub fn rbac_action(self) -> &'static str {
        use DataAction::*;
        match self {
            SecretGet => "secrets/getSecret/action",
            SecretList | SecretGetDeleted => "secrets/readMetadata/action",
            SecretSet => "secrets/setSecret/action",
            SecretUpdate => "secrets/update/action",
            SecretDelete => "secrets/delete",
            SecretRecover => "secrets/recover/action",
            SecretBackup => "secrets/backup/action",
            SecretRestore => "secrets/restore/action",
            SecretPurge => "secrets/purge/action",
            KeyGet | KeyList | KeyGetDeleted => "keys/read",
            KeyCreate => "keys/create/action",
            KeyImport => "keys/import/action",
            KeyUpdate => "keys/update/action",
            KeyDelete => "keys/delete",
            KeyRecover => "keys/recover/action",
            KeyBackup => "keys/backup/action",
            KeyRestore => "keys/restore/action",
            KeyPurge => "keys/purge/action",
            KeyEncrypt => "keys/encrypt/action",
            KeyDecrypt => "keys/decrypt/action",
            KeySign => "keys/sign/action",
            KeyVerify => "keys/verify/action",
            KeyWrap => "keys/wrap/action",
            KeyUnwrap => "keys/unwrap/action",
            KeyRotate => "keys/rotate/action",
            KeyGetRotationPolicy => "keyrotationpolicies/read",
            KeySetRotationPolicy => "keyrotationpolicies/write",
            CertGet | CertList | CertGetDeleted => "certificates/read",
            CertCreate => "certificates/create/action",
            CertImport => "certificates/import/action",
            CertUpdate => "certificates/update/action",
            CertDelete => "certificates/delete",
            CertRecover => "certificates/recover/action",
            CertBackup => "certificates/backup/action",
            CertRestore => "certificates/restore/action",
            CertPurge => "certificates/purge/action",
            CertManageContacts => "certificatecontacts/write",
            CertGetIssuers | CertListIssuers => "certificatecas/read",
            CertSetIssuers => "certificatecas/write",
            CertDeleteIssuers => "certificatecas/delete",
        }
    }

    /// Accepts the RBAC data action (with or without prefix), `getSecret`-style names and
    /// `secrets/get`-style access-policy names.
    pub fn parse(s: &str) -> Option<Self> {
        let t = s.trim().trim_start_matches("Microsoft.KeyVault/vaults/");
        Self::ALL
            .iter()
            .copied()
            .find(|a| a.rbac_action().eq_ignore_ascii_case(t) || a.short_name().eq_ignore_ascii_case(t))
            .or_else(|| {
                // Access-policy form, `secrets/get`: `set` maps to SecretSet, not SecretUpdate.
                let (area, perm) = t.split_once('/')?;
                let wanted = match area.to_ascii_lowercase().as_str() {
                    "secrets" => Area::Secrets,
                    "keys" => Area::Keys,
                    "certificates" => Area::Certificates,
                    _ => return None,
                };
                Self::ALL.iter().copied().find(|a| {
                    let (ar, p) = a.policy_permission();
                    ar == wanted && p.eq_ignore_ascii_case(perm)
                })
            })
    }

    /// Operation-style name (`getSecret`), used by `explain` and the audit log.
    pub fn short_name(self) -> &'static str {
        use DataAction::*;
        match self {
            SecretGet => "getSecret",
            SecretGetDeleted => "getDeletedSecret",
            SecretList => "listSecrets",
            SecretSet => "setSecret",
            SecretUpdate => "updateSecret",
            SecretDelete => "deleteSecret",
            SecretRecover => "recoverSecret",
            SecretBackup => "backupSecret",
            SecretRestore => "restoreSecret",
            SecretPurge => "purgeSecret",
            KeyGet => "getKey",
            KeyList => "listKeys",
            KeyGetDeleted => "getDeletedKey",
            KeyCreate => "createKey",
            KeyImport => "importKey",
            KeyUpdate => "updateKey",
            KeyDelete => "deleteKey",
            KeyRecover => "recoverKey",
            KeyBackup => "backupKey",
            KeyRestore => "restoreKey",
            KeyPurge => "purgeKey",
            KeyEncrypt => "encrypt",
            KeyDecrypt => "decrypt",
            KeySign => "sign",
            KeyVerify => "verify",
            KeyWrap => "wrapKey",
            KeyUnwrap => "unwrapKey",
            KeyRotate => "rotateKey",
            KeyGetRotationPolicy => "getRotationPolicy",
            KeySetRotationPolicy => "setRotationPolicy",
            CertGet => "getCertificate",
            CertList => "listCertificates",
            CertGetDeleted => "getDeletedCertificate",
            CertCreate => "createCertificate",
            CertImport => "importCertificate",
            CertUpdate => "updateCertificate",
            CertDelete => "deleteCertificate",
            CertRecover => "recoverCertificate",
            CertBackup => "backupCertificate",
            CertRestore => "restoreCertificate",
            CertPurge => "purgeCertificate",
            CertManageContacts => "manageContacts",
            CertGetIssuers => "getIssuer",
            CertListIssuers => "listIssuers",
            CertSetIssuers => "setIssuer",
            CertDeleteIssuers => "deleteIssuer",
        }
    }
}

/// The object a data action is about (`None` name: the collection, e.g. list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub area: Area,
    pub name: Option<&'a str>,
}

/// The outcome of an authorization check, with the grant that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Human-readable reasons: the grant that allowed, or why nothing did.
    pub reasons: Vec<String>,
}

impl Decision {
    pub fn allow(reason: String) -> Self {
        Self { allowed: true, reasons: vec![reason] }
    }
    pub fn deny(reason: String) -> Self {
        Self { allowed: false, reasons: vec![reason] }
    }
}

impl DataAction {
    /// Actions that reveal only metadata (names, ids, attributes, tags): management rights
    /// on the vault include them, values never.
    pub fn is_metadata(self) -> bool {
        matches!(
            self,
            Self::SecretList
                | Self::SecretGetDeleted
                | Self::KeyList
                | Self::KeyGetDeleted
                | Self::CertList
                | Self::CertGetDeleted
        )
    }

    pub fn full_rbac_action(self) -> String {
        format!("{}{}", crate::rbac::DATA_PREFIX, self.rbac_action())
    }
}

/// Management actions (Azure Resource Manager's `Microsoft.KeyVault` and
/// `Microsoft.Authorization` actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagementAction {
    VaultRead,
    VaultWrite,
    VaultDelete,
    VaultPurge,
    AccessPolicyWrite,
    RoleAssignmentRead,
    RoleAssignmentWrite,
    RoleAssignmentDelete,
    RoleDefinitionWrite,
}

impl ManagementAction {
    pub fn arm_action(self) -> &'static str {
        match self {
            Self::VaultRead => "Microsoft.KeyVault/vaults/read",
            Self::VaultWrite => "Microsoft.KeyVault/vaults/write",
            Self::VaultDelete => "Microsoft.KeyVault/vaults/delete",
            Self::VaultPurge => "Microsoft.KeyVault/locations/deletedVaults/purge/action",
            Self::AccessPolicyWrite => "Microsoft.KeyVault/vaults/accessPolicies/write",
            Self::RoleAssignmentRead => "Microsoft.Authorization/roleAssignments/read",
            Self::RoleAssignmentWrite => "Microsoft.Authorization/roleAssignments/write",
            Self::RoleAssignmentDelete => "Microsoft.Authorization/roleAssignments/delete",
            Self::RoleDefinitionWrite => "Microsoft.Authorization/roleDefinitions/write",
        }
    }
}

/// Tenant administrators only: Ok, or 403 `AuthorizationFailed` saying who may `purpose`.
pub fn require_tenant_admin(caller: &Caller, purpose: &str) -> Result<()> {
    if caller.tenant_admin {
        return Ok(());
    }
    Err(Error::new(
        crate::error::ErrorKind::Forbidden,
        "AuthorizationFailed",
        format!("'{}' is not a tenant administrator; only administrators {purpose}.", caller.name),
    ))
}

/// Decides a management action. `assignments` are the caller's (direct or through groups) at
/// the scopes that cover the target (`/` and, for a vault, `/vaults/V`). Tenant
/// administrators hold every management right, as an Owner at `/` would.
pub fn evaluate_management(
    caller: &Caller,
    action: ManagementAction,
    assignments: &[ApplicableAssignment],
) -> Decision {
    if caller.tenant_admin {
        return Decision::allow("the caller is a tenant administrator".into());
    }
    let needed = action.arm_action();
    for a in assignments {
        if let Some(pattern) = a.role.allows_management(needed) {
            return Decision::allow(format!("{} grants '{needed}' (through '{pattern}')", a.describe()));
        }
    }
    Decision::deny(format!("no role assignment of the caller or its groups grants '{needed}'"))
}

/// Whether the caller may assign `role_id`. Owners may assign any role; a Key Vault Data
/// Access Administrator only the Key Vault data roles (Azure's ABAC condition).
pub fn evaluate_assign(caller: &Caller, role_id: &str, assignments: &[ApplicableAssignment]) -> Decision {
    if caller.tenant_admin {
        return Decision::allow("the caller is a tenant administrator".into());
    }
    let needed = ManagementAction::RoleAssignmentWrite.arm_action();
    for a in assignments {
        let Some(pattern) = a.role.allows_management(needed) else { continue };
        let limited = a.role.id.eq_ignore_ascii_case(crate::rbac::KV_DATA_ACCESS_ADMINISTRATOR);
        if !limited || crate::rbac::DATA_ACCESS_ADMIN_ASSIGNABLE.iter().any(|r| r.eq_ignore_ascii_case(role_id)) {
            return Decision::allow(format!("{} grants '{needed}' (through '{pattern}')", a.describe()));
        }
    }
    Decision::deny(format!(
        "no role assignment of the caller grants '{needed}' for role {role_id} (a Data Access Administrator may assign only Key Vault data roles)"
    ))
}

/// Decides whether `caller` may perform `action` on `target` in `vault`. `assignments` are
/// the caller's role assignments (direct or through groups) at the scopes covering the target.
pub fn evaluate(
    vault: &Vault,
    caller: &Caller,
    action: DataAction,
    target: &Target<'_>,
    assignments: &[ApplicableAssignment],
) -> Decision {
    if action.is_metadata() {
        let manage = evaluate_management(caller, ManagementAction::VaultWrite, assignments);
        if manage.allowed {
            return Decision::allow(format!(
                "management right on vault '{}' ({}) includes reading metadata; values still need a data grant",
                vault.name, manage.reasons[0]
            ));
        }
    }
    if vault.enable_rbac_authorization {
        let needed = action.full_rbac_action();
        for a in assignments {
            if let Some(pattern) = a.role.allows_data(&needed) {
                return Decision::allow(format!("{} allows '{needed}' (through '{pattern}')", a.describe()));
            }
        }
        let on = match target.name {
            Some(n) => format!("{} '{n}' in vault '{}'", area_name(target.area), vault.name),
            None => format!("vault '{}'", vault.name),
        };
        return Decision::deny(format!(
            "vault '{}' uses RBAC and no role assignment of the caller or its groups allows '{needed}' on {on}",
            vault.name
        ));
    }
    let (area, needed) = action.policy_permission();
    for policy in &vault.access_policies {
        let via_group = caller.groups.iter().any(|g| g.eq_ignore_ascii_case(&policy.object_id));
        if !policy.object_id.eq_ignore_ascii_case(&caller.object_id) && !via_group {
            continue;
        }
        // Compound identity: the principal through this application only, as in Azure.
        if let Some(app) = &policy.application_id
            && !caller.signed_in_through.as_ref().is_some_and(|through| through.eq_ignore_ascii_case(app))
        {
            continue;
        }
        let granted = match area {
            Area::Secrets => &policy.permissions.secrets,
            Area::Keys => &policy.permissions.keys,
            Area::Certificates => &policy.permissions.certificates,
        };
        if let Some(p) = granted.iter().find(|p| p.eq_ignore_ascii_case(needed) || p.eq_ignore_ascii_case("all")) {
            let who = if via_group { format!("group {}", policy.object_id) } else { "the caller".to_string() };
            return Decision::allow(format!(
                "access policy for {who} on vault '{}' grants {}/{p}",
                vault.name,
                area_name(area)
            ));
        }
    }
    Decision::deny(format!(
        "no access policy on vault '{}' grants {}/{needed} to the caller or its groups",
        vault.name,
        area_name(area)
    ))
}

pub fn area_name(area: Area) -> &'static str {
    match area {
        Area::Keys => "keys",
        Area::Secrets => "secrets",
        Area::Certificates => "certificates",
    }
}

/// Enforces a decision: `Ok` or Azure's 403 for the vault's model.
pub fn enforce(
    vault: &Vault,
    caller: &Caller,
    action: DataAction,
    target: &Target<'_>,
    assignments: &[ApplicableAssignment],
) -> Result<Decision> {
    let decision = evaluate(vault, caller, action, target, assignments);
    if decision.allowed {
        return Ok(decision);
    }
    Err(refusal(vault, caller, action, target))
}

/// Azure's 403 for a data action the evaluator refused: `ForbiddenByRbac` under RBAC,
/// `AccessDenied` under access policies.
pub fn refusal(vault: &Vault, caller: &Caller, action: DataAction, target: &Target<'_>) -> Error {
    let (area, needed) = action.policy_permission();
    if vault.enable_rbac_authorization {
        let resource = match target.name {
            Some(n) => format!("/vaults/{}/{}/{n}", vault.name, area_name(area)),
            None => format!("/vaults/{}", vault.name),
        };
        Error::forbidden(
            "ForbiddenByRbac",
            format!(
                "Caller is not authorized to perform action on resource.\r\nIf role assignments, \
                 deny assignments or role definitions were changed recently, please observe \
                 propagation time.\r\nCaller: {}\r\nAction: '{}'\r\n\
                 Resource: '{resource}'\r\nAssignment: (not found)\r\nDecisionReason: \
                 'DeniedWithNoValidRBAC'\r\nVault: {};location=local\r\n",
                caller.describe(),
                action.full_rbac_action(),
                vault.name
            ),
        )
    } else {
        Error::forbidden(
            "AccessDenied",
            format!(
                "The user, group or application '{}' does not have {} {needed} permission on key \
                 vault '{};location=local'. For help resolving this issue, please see \
                 https://go.microsoft.com/fwlink/?linkid=2125287",
                caller.describe(),
                area_name(area),
                vault.name
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::RetentionPolicy;
    use crate::principal::PrincipalKind;
    use crate::vault::{AccessPolicy, PolicyPermissions, validate_permission_names};

    fn vault(policies: Vec<AccessPolicy>) -> Vault {
        Vault {
            id: "v1".into(),
            name: "hr-app".into(),
            tenant_id: "t".into(),
            subscription_id: "s".into(),
            resource_group: "rg".into(),
            location: "local".into(),
            retention: RetentionPolicy::new(90, false).unwrap(),
            enable_rbac_authorization: false,
            access_policies: policies,
            tags: Default::default(),
            network_acls: None,
            created_by: "admin".into(),
            created: 0,
            updated: 0,
            deletion: None,
        }
    }

    fn caller(oid: &str, groups: &[&str]) -> Caller {
        Caller {
            object_id: oid.into(),
            tenant_id: "t".into(),
            client_id: None,
            name: oid.into(),
            kind: PrincipalKind::User,
            groups: groups.iter().map(|s| s.to_string()).collect(),
            tenant_admin: false,
            signed_in_through: None,
        }
    }

    fn policy(oid: &str, secrets: &[&str]) -> AccessPolicy {
        AccessPolicy {
            tenant_id: "t".into(),
            object_id: oid.into(),
            application_id: None,
            permissions: PolicyPermissions {
                secrets: secrets.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        }
    }

    const ANY: Target<'static> = Target { area: Area::Secrets, name: Some("x") };

    #[test]
    fn policy_grants_only_listed_permissions() {
        let v = vault(vec![policy("alice", &["Get", "list"])]);
        assert!(evaluate(&v, &caller("alice", &[]), DataAction::SecretGet, &ANY, &[]).allowed);
        assert!(evaluate(&v, &caller("alice", &[]), DataAction::SecretList, &ANY, &[]).allowed);
        assert!(!evaluate(&v, &caller("alice", &[]), DataAction::SecretSet, &ANY, &[]).allowed);
        assert!(!evaluate(&v, &caller("bob", &[]), DataAction::SecretGet, &ANY, &[]).allowed);
    }

    #[test]
    fn all_grants_everything_and_groups_count() {
        let v = vault(vec![policy("doctors", &["all"])]);
        let d = evaluate(&v, &caller("carol", &["doctors"]), DataAction::SecretPurge, &ANY, &[]);
        assert!(d.allowed);
        assert!(d.reasons[0].contains("group doctors"));
    }

    #[test]
    fn a_compound_identity_policy_needs_its_application() {
        let mut compound = policy("alice", &["get"]);
        compound.application_id = Some("billing-app".into());
        let v = vault(vec![compound]);
        let alone = caller("alice", &[]);
        assert!(!evaluate(&v, &alone, DataAction::SecretGet, &ANY, &[]).allowed, "the user alone");
        let mut elsewhere = caller("alice", &[]);
        elsewhere.signed_in_through = Some("other-app".into());
        assert!(!evaluate(&v, &elsewhere, DataAction::SecretGet, &ANY, &[]).allowed, "through another app");
        let mut through = caller("alice", &[]);
        through.signed_in_through = Some("BILLING-APP".into());
        assert!(evaluate(&v, &through, DataAction::SecretGet, &ANY, &[]).allowed, "through the application");
    }

    #[test]
    fn tenant_admin_without_policy_is_denied_data() {
        let v = vault(vec![]);
        let mut admin = caller("admin", &[]);
        admin.tenant_admin = true;
        let err = enforce(&v, &admin, DataAction::SecretGet, &ANY, &[]).unwrap_err();
        assert_eq!(err.inner_code.as_deref(), Some("AccessDenied"));
        assert!(err.message.contains("secrets get permission"));
    }

    #[test]
    fn rbac_vault_denies_with_forbidden_by_rbac() {
        let mut v = vault(vec![policy("alice", &["all"])]);
        v.enable_rbac_authorization = true;
        let err = enforce(&v, &caller("alice", &[]), DataAction::SecretGet, &ANY, &[]).unwrap_err();
        assert_eq!(err.inner_code.as_deref(), Some("ForbiddenByRbac"));
    }

    #[test]
    fn permission_names_are_checked() {
        let mut p = PolicyPermissions { secrets: vec!["GET".into(), "purge".into()], ..Default::default() };
        assert!(validate_permission_names(&p).is_ok());
        p.secrets.push("fly".into());
        assert!(validate_permission_names(&p).is_err());
    }

    #[test]
    fn parse_actions() {
        assert_eq!(DataAction::parse("getSecret"), Some(DataAction::SecretGet));
        assert_eq!(
            DataAction::parse("Microsoft.KeyVault/vaults/secrets/getSecret/action"),
            Some(DataAction::SecretGet)
        );
        assert_eq!(DataAction::parse("secrets/get"), Some(DataAction::SecretGet));
        assert_eq!(DataAction::parse("nonsense"), None);
        assert_eq!(DataAction::parse("secrets/readMetadata/action"), Some(DataAction::SecretList));
        assert_eq!(DataAction::parse("keys/sign"), Some(DataAction::KeySign));
        assert_eq!(DataAction::parse("Microsoft.KeyVault/vaults/keys/unwrap/action"), Some(DataAction::KeyUnwrap));
        assert_eq!(DataAction::KeyWrap.policy_permission(), (Area::Keys, "wrapKey"));
    }

    fn assigned(role: &str, scope: &str, via_group: Option<&str>) -> ApplicableAssignment {
        let role = crate::rbac::find_builtin(role).unwrap().clone();
        ApplicableAssignment {
            assignment: crate::rbac::RoleAssignment {
                id: "a1".into(),
                tenant_id: "t".into(),
                scope: scope.into(),
                role_definition_id: role.id.clone(),
                principal_id: via_group.unwrap_or("alice").into(),
                created: 0,
                created_by: "admin".into(),
            },
            role,
            via_group: via_group.map(str::to_string),
        }
    }

    #[test]
    fn rbac_assignments_decide_on_rbac_vaults() {
        let mut v = vault(vec![policy("alice", &["all"])]);
        v.enable_rbac_authorization = true;
        let alice = caller("alice", &["doctors"]);
        let via = [assigned("Key Vault Secrets User", "/vaults/hr-app/secrets/x", Some("doctors"))];
        let d = evaluate(&v, &alice, DataAction::SecretGet, &ANY, &via);
        assert!(d.allowed, "{d:?}");
        assert!(d.reasons[0].contains("group doctors") && d.reasons[0].contains("/vaults/hr-app/secrets/x"));
        assert!(!evaluate(&v, &alice, DataAction::SecretSet, &ANY, &via).allowed);
        // Access policies are ignored under RBAC.
        assert!(!evaluate(&v, &alice, DataAction::SecretGet, &ANY, &[]).allowed);
    }

    #[test]
    fn management_rights_show_metadata_but_never_values() {
        let v = vault(vec![]);
        let owner = [assigned("Owner", "/vaults/hr-app", None)];
        let site_admin = caller("alice", &[]);
        let list =
            evaluate(&v, &site_admin, DataAction::SecretList, &Target { area: Area::Secrets, name: None }, &owner);
        assert!(list.allowed && list.reasons[0].contains("management right"));
        assert!(!evaluate(&v, &site_admin, DataAction::SecretGet, &ANY, &owner).allowed);
        // A Reader sees the vault, not its contents.
        let reader = [assigned("Reader", "/", None)];
        assert!(!evaluate(&v, &site_admin, DataAction::SecretList, &ANY, &reader).allowed);
        assert!(evaluate_management(&site_admin, ManagementAction::VaultRead, &reader).allowed);
        assert!(!evaluate_management(&site_admin, ManagementAction::VaultWrite, &reader).allowed);
    }

    #[test]
    fn only_owners_and_data_access_administrators_grant() {
        let c = caller("alice", &[]);
        let secrets_user = "4633458b-17de-408a-b874-0445c86b69e6";
        let contributor = [assigned("Contributor", "/vaults/hr-app", None)];
        assert!(!evaluate_assign(&c, secrets_user, &contributor).allowed);
        assert!(evaluate_management(&c, ManagementAction::AccessPolicyWrite, &contributor).allowed);
        let daa = [assigned("Key Vault Data Access Administrator", "/vaults/hr-app", None)];
        assert!(evaluate_assign(&c, secrets_user, &daa).allowed);
        assert!(
            !evaluate_assign(&c, crate::rbac::OWNER, &daa).allowed,
            "a data access administrator cannot hand out Owner"
        );
        let owner = [assigned("Owner", "/", None)];
        assert!(evaluate_assign(&c, crate::rbac::OWNER, &owner).allowed);
    }
}
