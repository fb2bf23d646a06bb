//! Azure's operation names (as in Key Vault's `AuditEvent` log) for each request, from its
//! method and path: one table, so every surface names its operations the same way.
use http::Method;

/// An operation's name and whether it changes state (those are recorded durably as "started"
/// before they run, so a failing audit log stops them before they happen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub name: &'static str,
    pub changes_state: bool,
}

const fn read(name: &'static str) -> Operation {
    Operation { name, changes_state: false }
}
const fn write(name: &'static str) -> Operation {
    Operation { name, changes_state: true }
}

fn verb(method: &Method, get: Operation, put: Operation, patch: Operation, delete: Operation) -> Option<Operation> {
    match *method {
        Method::GET | Method::HEAD => Some(get),
        Method::PUT => Some(put),
        Method::PATCH => Some(patch),
        Method::DELETE => Some(delete),
        _ => None,
    }
}

/// The object a data-plane path is about: (collection, name, version).
pub fn data_object<'a>(segments: &[&'a str]) -> Option<(&'a str, &'a str, Option<&'a str>)> {
    let collection = *segments.first()?;
    let name = *segments.get(1)?;
    if name.is_empty() || ["restore", "contacts", "issuers", "import"].contains(&name.to_ascii_lowercase().as_str()) {
        return None;
    }
    let version = segments.get(2).copied().filter(|v| {
        !v.is_empty()
            && ![
                "versions",
                "backup",
                "recover",
                "create",
                "rotate",
                "rotationpolicy",
                "release",
                "policy",
                "pending",
                "import",
            ]
            .contains(&v.to_ascii_lowercase().as_str())
    });
    Some((collection, name, version))
}

/// A data-plane operation (`/secrets/...`, `/keys/...`, `/certificates/...`, `/rng`).
pub fn data_plane(method: &Method, segments: &[&str]) -> Operation {
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let s: Vec<&str> = lower.iter().map(String::as_str).collect();
    let post = *method == Method::POST;
    let get = *method == Method::GET;
    let op = match (s.first().copied().unwrap_or(""), &s[1..]) {
        ("secrets", []) if get => Some(read("SecretList")),
        ("secrets", ["restore"]) if post => Some(write("SecretRestore")),
        ("secrets", [_]) => {
            verb(method, read("SecretGet"), write("SecretSet"), write("SecretUpdate"), write("SecretDelete"))
        }
        ("secrets", [_, "versions"]) if get => Some(read("SecretListVersions")),
        ("secrets", [_, "backup"]) if post => Some(read("SecretBackup")),
        ("secrets", [_, _]) => {
            verb(method, read("SecretGet"), write("SecretSet"), write("SecretUpdate"), write("SecretDelete"))
        }
        ("deletedsecrets", []) if get => Some(read("SecretListDeleted")),
        ("deletedsecrets", [_]) if get => Some(read("SecretGetDeleted")),
        ("deletedsecrets", [_]) if *method == Method::DELETE => Some(write("SecretPurge")),
        ("deletedsecrets", [_, "recover"]) if post => Some(write("SecretRecover")),

        ("keys", []) if get => Some(read("KeyList")),
        ("keys", ["restore"]) if post => Some(write("KeyRestore")),
        ("keys", [_]) => verb(method, read("KeyGet"), write("KeyImport"), write("KeyUpdate"), write("KeyDelete")),
        ("keys", [_, "create"]) if post => Some(write("KeyCreate")),
        ("keys", [_, "versions"]) if get => Some(read("KeyListVersions")),
        ("keys", [_, "backup"]) if post => Some(read("KeyBackup")),
        ("keys", [_, "rotate"]) if post => Some(write("KeyRotate")),
        ("keys", [_, "release"]) if post => Some(read("KeyRelease")),
        ("keys", [_, "rotationpolicy"]) if get => Some(read("KeyGetRotationPolicy")),
        ("keys", [_, "rotationpolicy"]) => Some(write("KeyUpdateRotationPolicy")),
        ("keys", [_, _, op] | [_, op]) if post => Some(match *op {
            "sign" => read("KeySign"),
            "verify" => read("KeyVerify"),
            "encrypt" => read("KeyEncrypt"),
            "decrypt" => read("KeyDecrypt"),
            "wrapkey" => read("KeyWrap"),
            "unwrapkey" => read("KeyUnwrap"),
            _ => read("Unknown"),
        }),
        ("keys", [_, _]) => verb(method, read("KeyGet"), write("KeyImport"), write("KeyUpdate"), write("KeyDelete")),
        ("deletedkeys", []) if get => Some(read("KeyListDeleted")),
        ("deletedkeys", [_]) if get => Some(read("KeyGetDeleted")),
        ("deletedkeys", [_]) if *method == Method::DELETE => Some(write("KeyPurge")),
        ("deletedkeys", [_, "recover"]) if post => Some(write("KeyRecover")),
        ("rng", []) => Some(read("GetRandomBytes")),

        ("certificates", []) if get => Some(read("CertificateList")),
        ("certificates", ["contacts"]) => verb(
            method,
            read("CertificateContactsGet"),
            write("CertificateContactsSet"),
            write("CertificateContactsSet"),
            write("CertificateContactsDelete"),
        ),
        ("certificates", ["issuers"]) if get => Some(read("CertificateIssuersList")),
        ("certificates", ["issuers", _]) => verb(
            method,
            read("CertificateIssuerGet"),
            write("CertificateIssuerSet"),
            write("CertificateIssuerUpdate"),
            write("CertificateIssuerDelete"),
        ),
        ("certificates", ["restore"]) if post => Some(write("CertificateRestore")),
        ("certificates", [_]) => verb(
            method,
            read("CertificateGet"),
            write("CertificateImport"),
            write("CertificateUpdate"),
            write("CertificateDelete"),
        ),
        ("certificates", [_, "create"]) if post => Some(write("CertificateCreate")),
        ("certificates", [_, "import"]) if post => Some(write("CertificateImport")),
        ("certificates", [_, "versions"]) if get => Some(read("CertificateListVersions")),
        ("certificates", [_, "backup"]) if post => Some(read("CertificateBackup")),
        ("certificates", [_, "policy"]) => verb(
            method,
            read("CertificatePolicyGet"),
            write("CertificatePolicySet"),
            write("CertificatePolicyUpdate"),
            write("CertificatePolicyUpdate"),
        ),
        ("certificates", [_, "pending"]) => verb(
            method,
            read("CertificatePendingGet"),
            write("CertificatePendingUpdate"),
            write("CertificatePendingUpdate"),
            write("CertificatePendingDelete"),
        ),
        ("certificates", [_, "pending", "merge"]) if post => Some(write("CertificatePendingMerge")),
        ("certificates", [_, _]) => verb(
            method,
            read("CertificateGet"),
            write("CertificateImport"),
            write("CertificateUpdate"),
            write("CertificateDelete"),
        ),
        ("deletedcertificates", []) if get => Some(read("CertificateListDeleted")),
        ("deletedcertificates", [_]) if get => Some(read("CertificateGetDeleted")),
        ("deletedcertificates", [_]) if *method == Method::DELETE => Some(write("CertificatePurge")),
        ("deletedcertificates", [_, "recover"]) if post => Some(write("CertificateRecover")),
        _ => None,
    };
    op.unwrap_or(if *method == Method::GET { read("Unknown") } else { write("Unknown") })
}

/// A control-surface operation: sign-ins, Resource Manager, directory, role assignments, audit.
/// `None` for what is not audited (discovery documents, health, unknown paths).
pub fn control(method: &Method, path: &str) -> Option<Operation> {
    let lower = path.to_ascii_lowercase();
    let s: Vec<&str> = lower.trim_matches('/').split('/').collect();
    let post = *method == Method::POST;
    let get = *method == Method::GET;
    let generic = |area: &'static str| -> Operation {
        // Directory and role-assignment changes: `DirectoryChange`, reads: `DirectoryGet`.
        match *method {
            Method::GET => read(match area {
                "Directory" => "DirectoryGet",
                "RoleAssignment" => "RoleAssignmentGet",
                _ => "ManagementGet",
            }),
            _ => write(match area {
                "Directory" => "DirectoryChange",
                "RoleAssignment" => "RoleAssignmentChange",
                _ => "ManagementChange",
            }),
        }
    };
    let op = match s.as_slice() {
        [_, "oauth2", "v2.0", "token"] | [_, "oauth2", "token"] if post => read("Authentication"),
        [_, "msi", _, "token"] => read("Authentication"),
        [_, "oauth2", "v2.0", "revoke"] if post => write("TokenRevoke"),
        ["audit", "records"] if get => read("AuditQuery"),
        // A token presented to /metrics is checked like any other: refusals are recorded, so
        // the endpoint is no silent oracle for stolen tokens.
        ["metrics"] if get => read("MetricsRead"),
        ["audit", "verify"] if get => read("AuditVerify"),
        ["audit", "checkpoint"] if post => write("AuditCheckpoint"),
        ["audit", "checkpoint-key"] if get => read("AuditCheckpointKeyGet"),
        ["directory", ..] => generic("Directory"),
        ["authorization", "explain" | "who-can", ..] => read("AccessExplain"),
        ["authorization", "roledefinitions" | "role-definitions", ..] if !get => write("RoleDefinitionChange"),
        ["authorization", ..] => generic("RoleAssignment"),
        ["dev", ..] => write("DevTimeAdvance"),
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.keyvault",
            "vaults",
            _,
            "accesspolicies",
            _,
        ] => write("VaultAccessPolicyChange"),
        ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.keyvault", "vaults", _] => {
            verb(method, read("VaultGet"), write("VaultPut"), write("VaultPatch"), write("VaultDelete"))?
        }
        ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.keyvault", "vaults"] if get => {
            read("VaultList")
        }
        ["subscriptions", _, "providers", "microsoft.keyvault", "vaults"] if get => read("VaultList"),
        ["subscriptions", _, "providers", "microsoft.keyvault", "deletedvaults"] if get => read("VaultListDeleted"),
        ["subscriptions", _, "providers", "microsoft.keyvault", "locations", _, "deletedvaults", _] if get => {
            read("VaultGetDeleted")
        }
        ["subscriptions", _, "providers", "microsoft.keyvault", "locations", _, "deletedvaults", _, "purge"]
            if post =>
        {
            write("VaultPurge")
        }
        ["subscriptions", _, "providers", "microsoft.keyvault", "checknameavailability"] => {
            read("VaultCheckNameAvailability")
        }
        ["subscriptions", ..] | ["resources", ..] => generic("Management"),
        // The portal: its actions carry the data-plane names; page views are `PortalView`.
        ["portal", "static", ..] => return None,
        ["portal", "login"] if post => read("Authentication"),
        ["portal", "login"] => return None,
        ["portal", "logout"] => read("SignOut"),
        ["portal", "vaults"] if post => write("VaultPut"),
        ["portal", "admin", ..] if post => write("DirectoryChange"),
        ["portal", "admin"] => read("PortalView"),
        ["portal", "vaults", _, "secrets"] if post => write("SecretSet"),
        ["portal", "vaults", _, "secrets", _, "reveal"] => read("SecretGet"),
        ["portal", "vaults", _, "secrets", _, "delete"] => write("SecretDelete"),
        ["portal", "vaults", _, "secrets", _, "versions"] if post => write("SecretSet"),
        ["portal", "vaults", _, "secrets", _, "update" | "properties"] => write("SecretUpdate"),
        ["portal", "vaults", _, "keys", _, "update"] => write("KeyUpdate"),
        ["portal", "vaults", _, "certificates", _, "update"] => write("CertificateUpdate"),
        ["portal", "vaults", _, "deleted-secrets", _, "recover"] => write("SecretRecover"),
        ["portal", "vaults", _, "deleted-secrets", _, "purge"] => write("SecretPurge"),
        ["portal", "vaults", _, "keys"] if post => write("KeyCreate"),
        ["portal", "vaults", _, "import-key"] => write("KeyImport"),
        ["portal", "vaults", _, "import-certificate"] => write("CertificateImport"),
        ["portal", "vaults", _, "keys", _, "delete"] => write("KeyDelete"),
        ["portal", "vaults", _, "deleted-keys", _, "recover"] => write("KeyRecover"),
        ["portal", "vaults", _, "deleted-keys", _, "purge"] => write("KeyPurge"),
        ["portal", "vaults", _, "certificates"] if post => write("CertificateCreate"),
        ["portal", "vaults", _, "certificates", _, "download"] => read("CertificateGet"),
        ["portal", "vaults", _, "certificates", _, "delete"] => write("CertificateDelete"),
        ["portal", "vaults", _, "deleted-certificates", _, "recover"] => write("CertificateRecover"),
        ["portal", "vaults", _, "deleted-certificates", _, "purge"] => write("CertificatePurge"),
        ["portal", "vaults", _, "access"] if post => write("VaultAccessPolicyChange"),
        ["portal", "vaults", _, "roles"] if post => write("RoleAssignmentChange"),
        ["portal", "vaults", _, "roles", _, "delete"] => write("RoleAssignmentChange"),
        ["portal", "vaults", ..] if get => read("PortalView"),
        _ => return None,
    };
    Some(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_plane_names_follow_azure() {
        let n = |m: Method, p: &str| data_plane(&m, &p.trim_start_matches('/').split('/').collect::<Vec<_>>()).name;
        assert_eq!(n(Method::GET, "/secrets/db"), "SecretGet");
        assert_eq!(n(Method::GET, "/secrets/db/abc"), "SecretGet");
        assert_eq!(n(Method::PUT, "/secrets/db"), "SecretSet");
        assert_eq!(n(Method::GET, "/secrets"), "SecretList");
        assert_eq!(n(Method::GET, "/secrets/db/versions"), "SecretListVersions");
        assert_eq!(n(Method::DELETE, "/deletedsecrets/db"), "SecretPurge");
        assert_eq!(n(Method::POST, "/keys/k/abc/sign"), "KeySign");
        assert_eq!(n(Method::POST, "/keys/k/abc/unwrapkey"), "KeyUnwrap");
        assert_eq!(n(Method::POST, "/keys/k/create"), "KeyCreate");
        assert_eq!(n(Method::POST, "/certificates/c/pending/merge"), "CertificatePendingMerge");
        assert_eq!(n(Method::GET, "/nothing"), "Unknown");
        assert!(data_plane(&Method::PUT, &["secrets", "db"]).changes_state);
        assert!(!data_plane(&Method::POST, &["keys", "k", "v", "decrypt"]).changes_state);
        assert_eq!(data_object(&["secrets", "db", "abc"]), Some(("secrets", "db", Some("abc"))));
        assert_eq!(data_object(&["keys", "k", "rotate"]), Some(("keys", "k", None)));
        assert_eq!(data_object(&["certificates", "issuers", "x"]), None);
    }

    #[test]
    fn control_names() {
        let v = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/hr";
        assert_eq!(control(&Method::PUT, v).map(|o| o.name), Some("VaultPut"));
        assert_eq!(
            control(&Method::PUT, &format!("{v}/accessPolicies/add")).map(|o| o.name),
            Some("VaultAccessPolicyChange")
        );
        assert_eq!(control(&Method::POST, "/t/oauth2/v2.0/token").map(|o| o.name), Some("Authentication"));
        assert_eq!(control(&Method::GET, "/healthz"), None);
        assert_eq!(control(&Method::POST, "/portal/vaults/hr/secrets/db/reveal").map(|o| o.name), Some("SecretGet"));
        assert!(control(&Method::POST, "/portal/vaults/hr/secrets").is_some_and(|o| o.changes_state));
        assert_eq!(control(&Method::GET, "/portal/static/portal.css"), None);
        assert_eq!(control(&Method::GET, "/t/v2.0/.well-known/openid-configuration"), None);
    }
}
