//! Azure's operation names (as in Key Vault's `AuditEvent` log): the data plane's from a
//! request's method and path (one table); the control surface's routes name theirs where they
//! are declared (`coffer-server`'s `routes`), with `read` and `write`.
use http::Method;

/// An operation's name and whether it changes state (those are recorded durably as "started"
/// before they run, so a failing audit log stops them before they happen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub name: &'static str,
    pub changes_state: bool,
}

/// An operation that only reads.
pub const fn read(name: &'static str) -> Operation {
    Operation { name, changes_state: false }
}
/// An operation that changes state.
pub const fn write(name: &'static str) -> Operation {
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
}
