//! Azure's operation names (as in Key Vault's `AuditEvent` log): the data plane's from a
//! request's method and path (one table); the control surface's routes name theirs where they
//! are declared (`coffer-server`'s `routes`), with `read` and `write`.
use coffer_core::object::ObjectKind;
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

/// A data-plane request as the data plane will carry it out, parsed once from its method
/// (after `X-HTTP-METHOD`) and path: the audit record, the metrics label, the router and the
/// permission check all read this one value. Names are as the client wrote them; the
/// matching mirrors Azure's routes (and, where a path exists without that method,
/// `NotAllowed` — a 405 — rather than `NotFound`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataOperation {
    SecretList,
    SecretRestore,
    SecretSet {
        name: String,
    },
    SecretGet {
        name: String,
        version: Option<String>,
    },
    SecretUpdate {
        name: String,
        version: Option<String>,
    },
    SecretDelete {
        name: String,
    },
    SecretListVersions {
        name: String,
    },
    SecretBackup {
        name: String,
    },
    SecretListDeleted,
    SecretGetDeleted {
        name: String,
    },
    SecretPurge {
        name: String,
    },
    SecretRecover {
        name: String,
    },

    GetRandomBytes,
    KeyList,
    KeyRestore,
    KeyImport {
        name: String,
    },
    KeyGet {
        name: String,
        version: Option<String>,
    },
    KeyUpdate {
        name: String,
        version: Option<String>,
    },
    KeyDelete {
        name: String,
    },
    KeyCreate {
        name: String,
    },
    KeyListVersions {
        name: String,
    },
    KeyBackup {
        name: String,
    },
    KeyRotate {
        name: String,
    },
    KeyGetRotationPolicy {
        name: String,
    },
    KeyUpdateRotationPolicy {
        name: String,
    },
    /// `GET /keys/{name}/{version}/attestation` (2025-07-01).
    KeyGetAttestation {
        name: String,
        version: Option<String>,
    },
    /// `POST /keys/{name}/{version}/{op}`: sign, verify, encrypt, decrypt, wrapkey, unwrapkey.
    KeyOperation {
        name: String,
        version: Option<String>,
        op: String,
    },
    KeyListDeleted,
    KeyGetDeleted {
        name: String,
    },
    KeyPurge {
        name: String,
    },
    KeyRecover {
        name: String,
    },

    CertificateList,
    CertificateContactsGet,
    CertificateContactsSet,
    CertificateContactsDelete,
    CertificateRestore,
    CertificateIssuersList,
    CertificateIssuerGet {
        issuer: String,
    },
    CertificateIssuerSet {
        issuer: String,
    },
    CertificateIssuerUpdate {
        issuer: String,
    },
    CertificateIssuerDelete {
        issuer: String,
    },
    CertificateGet {
        name: String,
        version: Option<String>,
    },
    CertificateUpdate {
        name: String,
        version: Option<String>,
    },
    CertificateDelete {
        name: String,
    },
    CertificateCreate {
        name: String,
    },
    CertificateImport {
        name: String,
    },
    CertificateListVersions {
        name: String,
    },
    CertificateBackup {
        name: String,
    },
    CertificatePolicyGet {
        name: String,
    },
    CertificatePolicyUpdate {
        name: String,
    },
    CertificatePendingGet {
        name: String,
    },
    CertificatePendingUpdate {
        name: String,
    },
    CertificatePendingDelete {
        name: String,
    },
    CertificatePendingMerge {
        name: String,
    },
    CertificateListDeleted,
    CertificateGetDeleted {
        name: String,
    },
    CertificatePurge {
        name: String,
    },
    CertificateRecover {
        name: String,
    },

    /// A known path without this method (405).
    NotAllowed,
    /// No Key Vault operation at this path (404).
    NotFound,
}

/// The cryptographic operations of `POST /keys/{name}/{version}/{op}`.
/// (`release`, `securewrapkey` and `secureunwrapkey` rest on attestation and are refused, by name.)
const KEY_OPERATIONS: &[&str] =
    &["sign", "verify", "encrypt", "decrypt", "wrapkey", "unwrapkey", "release", "securewrapkey", "secureunwrapkey"];

impl DataOperation {
    /// Parses a data-plane request. `path` is the request path (`/secrets/db/abc`).
    pub fn parse(method: &Method, path: &str) -> Self {
        use DataOperation as Op;
        let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let own = |s: &str| s.to_string();
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let m = method;
        let (get, post) = (m == Method::GET, m == Method::POST);
        match seg.as_slice() {
            ["secrets"] | ["secrets", ""] => {
                if get {
                    Op::SecretList
                } else {
                    Op::NotAllowed
                }
            }
            ["secrets", "restore"] if post => Op::SecretRestore,
            ["secrets", name] | ["secrets", name, ""] => match *m {
                Method::PUT => Op::SecretSet { name: own(name) },
                Method::GET => Op::SecretGet { name: own(name), version: None },
                Method::PATCH => Op::SecretUpdate { name: own(name), version: None },
                Method::DELETE => Op::SecretDelete { name: own(name) },
                _ => Op::NotAllowed,
            },
            ["secrets", name, "versions"] => {
                if get {
                    Op::SecretListVersions { name: own(name) }
                } else {
                    Op::NotAllowed
                }
            }
            ["secrets", name, "backup"] if post => Op::SecretBackup { name: own(name) },
            ["secrets", name, version] => match *m {
                Method::GET => Op::SecretGet { name: own(name), version: Some(own(version)) },
                Method::PATCH => Op::SecretUpdate { name: own(name), version: Some(own(version)) },
                _ => Op::NotAllowed,
            },
            ["deletedsecrets"] | ["deletedsecrets", ""] => {
                if get {
                    Op::SecretListDeleted
                } else {
                    Op::NotAllowed
                }
            }
            ["deletedsecrets", name] => match *m {
                Method::GET => Op::SecretGetDeleted { name: own(name) },
                Method::DELETE => Op::SecretPurge { name: own(name) },
                _ => Op::NotAllowed,
            },
            ["deletedsecrets", name, "recover"] => {
                if post {
                    Op::SecretRecover { name: own(name) }
                } else {
                    Op::NotAllowed
                }
            }

            ["rng"] if post => Op::GetRandomBytes,
            ["keys"] | ["keys", ""] if get => Op::KeyList,
            ["keys", "restore"] if post => Op::KeyRestore,
            ["keys", name] | ["keys", name, ""] => match *m {
                Method::PUT if seg.len() == 2 => Op::KeyImport { name: own(name) },
                Method::GET => Op::KeyGet { name: own(name), version: None },
                Method::PATCH => Op::KeyUpdate { name: own(name), version: None },
                Method::DELETE if seg.len() == 2 => Op::KeyDelete { name: own(name) },
                _ => Op::NotAllowed,
            },
            ["keys", name, "create"] if post => Op::KeyCreate { name: own(name) },
            ["keys", name, "versions"] if get => Op::KeyListVersions { name: own(name) },
            ["keys", name, "backup"] if post => Op::KeyBackup { name: own(name) },
            ["keys", name, "rotate"] if post => Op::KeyRotate { name: own(name) },
            ["keys", name, "rotationpolicy"] => match *m {
                Method::GET => Op::KeyGetRotationPolicy { name: own(name) },
                Method::PUT => Op::KeyUpdateRotationPolicy { name: own(name) },
                _ => Op::NotAllowed,
            },
            // Without a version the Go SDK writes `/keys/{name}/sign` (its empty version
            // collapsed), which Azure serves with the latest version.
            ["keys", name, op] if post && KEY_OPERATIONS.iter().any(|o| o.eq_ignore_ascii_case(op)) => {
                Op::KeyOperation { name: own(name), version: None, op: own(op) }
            }
            ["keys", name, version] => match *m {
                Method::GET => Op::KeyGet { name: own(name), version: Some(own(version)) },
                Method::PATCH => Op::KeyUpdate { name: own(name), version: Some(own(version)) },
                _ => Op::NotAllowed,
            },
            ["keys", name, version, "attestation"] if get => {
                Op::KeyGetAttestation { name: own(name), version: opt(version) }
            }
            ["keys", name, version, op] if post => {
                Op::KeyOperation { name: own(name), version: opt(version), op: own(op) }
            }
            ["deletedkeys"] | ["deletedkeys", ""] if get => Op::KeyListDeleted,
            ["deletedkeys", name] => match *m {
                Method::GET => Op::KeyGetDeleted { name: own(name) },
                Method::DELETE => Op::KeyPurge { name: own(name) },
                _ => Op::NotAllowed,
            },
            ["deletedkeys", name, "recover"] if post => Op::KeyRecover { name: own(name) },

            ["certificates"] | ["certificates", ""] if get => Op::CertificateList,
            ["certificates", "contacts"] => match *m {
                Method::GET => Op::CertificateContactsGet,
                Method::PUT => Op::CertificateContactsSet,
                Method::DELETE => Op::CertificateContactsDelete,
                _ => Op::NotAllowed,
            },
            ["certificates", "restore"] if post => Op::CertificateRestore,
            ["certificates", "issuers"] if get => Op::CertificateIssuersList,
            ["certificates", "issuers", issuer] => {
                let issuer = own(issuer);
                match *m {
                    Method::GET => Op::CertificateIssuerGet { issuer },
                    Method::PUT => Op::CertificateIssuerSet { issuer },
                    Method::PATCH => Op::CertificateIssuerUpdate { issuer },
                    Method::DELETE => Op::CertificateIssuerDelete { issuer },
                    _ => Op::NotAllowed,
                }
            }
            ["certificates", name] | ["certificates", name, ""] => match *m {
                Method::GET => Op::CertificateGet { name: own(name), version: None },
                Method::PATCH => Op::CertificateUpdate { name: own(name), version: None },
                Method::DELETE if seg.len() == 2 => Op::CertificateDelete { name: own(name) },
                _ => Op::NotAllowed,
            },
            ["certificates", name, "create"] if post => Op::CertificateCreate { name: own(name) },
            ["certificates", name, "import"] if post => Op::CertificateImport { name: own(name) },
            ["certificates", name, "versions"] if get => Op::CertificateListVersions { name: own(name) },
            ["certificates", name, "backup"] if post => Op::CertificateBackup { name: own(name) },
            ["certificates", name, "policy"] => match *m {
                Method::GET => Op::CertificatePolicyGet { name: own(name) },
                Method::PATCH => Op::CertificatePolicyUpdate { name: own(name) },
                _ => Op::NotAllowed,
            },
            ["certificates", name, "pending"] => match *m {
                Method::GET => Op::CertificatePendingGet { name: own(name) },
                Method::PATCH => Op::CertificatePendingUpdate { name: own(name) },
                Method::DELETE => Op::CertificatePendingDelete { name: own(name) },
                _ => Op::NotAllowed,
            },
            ["certificates", name, "pending", "merge"] if post => Op::CertificatePendingMerge { name: own(name) },
            ["certificates", name, version] => match *m {
                Method::GET => Op::CertificateGet { name: own(name), version: Some(own(version)) },
                Method::PATCH => Op::CertificateUpdate { name: own(name), version: Some(own(version)) },
                _ => Op::NotAllowed,
            },
            ["deletedcertificates"] | ["deletedcertificates", ""] if get => Op::CertificateListDeleted,
            ["deletedcertificates", name] => match *m {
                Method::GET => Op::CertificateGetDeleted { name: own(name) },
                Method::DELETE => Op::CertificatePurge { name: own(name) },
                _ => Op::NotAllowed,
            },
            ["deletedcertificates", name, "recover"] if post => Op::CertificateRecover { name: own(name) },
            _ => Op::NotFound,
        }
    }

    /// The kind of object it works on (`/rng` is the keys'); `None` for `NotAllowed` and
    /// `NotFound`.
    pub fn kind(&self) -> Option<ObjectKind> {
        let name = self.name();
        if matches!(self, Self::NotAllowed | Self::NotFound) {
            None
        } else if name.starts_with("Secret") {
            Some(ObjectKind::Secret)
        } else if name.starts_with("Certificate") {
            Some(ObjectKind::Certificate)
        } else {
            Some(ObjectKind::Key)
        }
    }

    /// Azure's name for it, as in the audit log and the metrics.
    pub fn name(&self) -> &'static str {
        use DataOperation as Op;
        match self {
            Op::SecretList => "SecretList",
            Op::SecretRestore => "SecretRestore",
            Op::SecretSet { .. } => "SecretSet",
            Op::SecretGet { .. } => "SecretGet",
            Op::SecretUpdate { .. } => "SecretUpdate",
            Op::SecretDelete { .. } => "SecretDelete",
            Op::SecretListVersions { .. } => "SecretListVersions",
            Op::SecretBackup { .. } => "SecretBackup",
            Op::SecretListDeleted => "SecretListDeleted",
            Op::SecretGetDeleted { .. } => "SecretGetDeleted",
            Op::SecretPurge { .. } => "SecretPurge",
            Op::SecretRecover { .. } => "SecretRecover",
            Op::GetRandomBytes => "GetRandomBytes",
            Op::KeyList => "KeyList",
            Op::KeyRestore => "KeyRestore",
            Op::KeyImport { .. } => "KeyImport",
            Op::KeyGet { .. } => "KeyGet",
            Op::KeyUpdate { .. } => "KeyUpdate",
            Op::KeyDelete { .. } => "KeyDelete",
            Op::KeyCreate { .. } => "KeyCreate",
            Op::KeyListVersions { .. } => "KeyListVersions",
            Op::KeyBackup { .. } => "KeyBackup",
            Op::KeyRotate { .. } => "KeyRotate",
            Op::KeyGetAttestation { .. } => "KeyGetAttestation",
            Op::KeyGetRotationPolicy { .. } => "KeyGetRotationPolicy",
            Op::KeyUpdateRotationPolicy { .. } => "KeyUpdateRotationPolicy",
            Op::KeyOperation { op, .. } => match op.to_ascii_lowercase().as_str() {
                "sign" => "KeySign",
                "verify" => "KeyVerify",
                "encrypt" => "KeyEncrypt",
                "decrypt" => "KeyDecrypt",
                "wrapkey" => "KeyWrap",
                "unwrapkey" => "KeyUnwrap",
                "release" => "KeyRelease",
                "securewrapkey" => "KeySecureWrap",
                "secureunwrapkey" => "KeySecureUnwrap",
                _ => "Unknown",
            },
            Op::KeyListDeleted => "KeyListDeleted",
            Op::KeyGetDeleted { .. } => "KeyGetDeleted",
            Op::KeyPurge { .. } => "KeyPurge",
            Op::KeyRecover { .. } => "KeyRecover",
            Op::CertificateList => "CertificateList",
            Op::CertificateContactsGet => "CertificateContactsGet",
            Op::CertificateContactsSet => "CertificateContactsSet",
            Op::CertificateContactsDelete => "CertificateContactsDelete",
            Op::CertificateRestore => "CertificateRestore",
            Op::CertificateIssuersList => "CertificateIssuersList",
            Op::CertificateIssuerGet { .. } => "CertificateIssuerGet",
            Op::CertificateIssuerSet { .. } => "CertificateIssuerSet",
            Op::CertificateIssuerUpdate { .. } => "CertificateIssuerUpdate",
            Op::CertificateIssuerDelete { .. } => "CertificateIssuerDelete",
            Op::CertificateGet { .. } => "CertificateGet",
            Op::CertificateUpdate { .. } => "CertificateUpdate",
            Op::CertificateDelete { .. } => "CertificateDelete",
            Op::CertificateCreate { .. } => "CertificateCreate",
            Op::CertificateImport { .. } => "CertificateImport",
            Op::CertificateListVersions { .. } => "CertificateListVersions",
            Op::CertificateBackup { .. } => "CertificateBackup",
            Op::CertificatePolicyGet { .. } => "CertificatePolicyGet",
            Op::CertificatePolicyUpdate { .. } => "CertificatePolicyUpdate",
            Op::CertificatePendingGet { .. } => "CertificatePendingGet",
            Op::CertificatePendingUpdate { .. } => "CertificatePendingUpdate",
            Op::CertificatePendingDelete { .. } => "CertificatePendingDelete",
            Op::CertificatePendingMerge { .. } => "CertificatePendingMerge",
            Op::CertificateListDeleted => "CertificateListDeleted",
            Op::CertificateGetDeleted { .. } => "CertificateGetDeleted",
            Op::CertificatePurge { .. } => "CertificatePurge",
            Op::CertificateRecover { .. } => "CertificateRecover",
            Op::NotAllowed | Op::NotFound => "Unknown",
        }
    }

    /// Whether the operation's one change is a new object version written with its own
    /// success record in one commit (`scope::witness_record`), so no "started" record goes
    /// before it. Only for an operation whose every path changes nothing but through
    /// `Objects::create_prepared`, once: a secret's new version.
    pub fn witnessed(&self) -> bool {
        matches!(self, DataOperation::SecretSet { .. })
    }

    /// Whether it changes state (recorded durably as "started" before it runs). Reads,
    /// lists, backups, cryptographic operations and random bytes do not; an unknown request
    /// is treated as a change unless it is a GET.
    pub fn changes_state(&self, method: &Method) -> bool {
        use DataOperation as Op;
        match self {
            Op::NotAllowed | Op::NotFound => *method != Method::GET,
            Op::SecretList
            | Op::SecretGet { .. }
            | Op::SecretListVersions { .. }
            | Op::SecretBackup { .. }
            | Op::SecretListDeleted
            | Op::SecretGetDeleted { .. }
            | Op::GetRandomBytes
            | Op::KeyList
            | Op::KeyGet { .. }
            | Op::KeyListVersions { .. }
            | Op::KeyBackup { .. }
            | Op::KeyGetRotationPolicy { .. }
            | Op::KeyGetAttestation { .. }
            | Op::KeyOperation { .. }
            | Op::KeyListDeleted
            | Op::KeyGetDeleted { .. }
            | Op::CertificateList
            | Op::CertificateContactsGet
            | Op::CertificateIssuersList
            | Op::CertificateIssuerGet { .. }
            | Op::CertificateGet { .. }
            | Op::CertificateListVersions { .. }
            | Op::CertificateBackup { .. }
            | Op::CertificatePolicyGet { .. }
            | Op::CertificatePendingGet { .. }
            | Op::CertificateListDeleted
            | Op::CertificateGetDeleted { .. } => false,
            _ => true,
        }
    }

    /// The object it is about, for the audit record: (path collection, name, version).
    pub fn object(&self) -> Option<(&'static str, &str, Option<&str>)> {
        use DataOperation as Op;
        Some(match self {
            Op::SecretSet { name }
            | Op::SecretDelete { name }
            | Op::SecretListVersions { name }
            | Op::SecretBackup { name } => ("secrets", name.as_str(), None),
            Op::SecretGet { name, version } | Op::SecretUpdate { name, version } => {
                ("secrets", name, version.as_deref())
            }
            Op::SecretGetDeleted { name } | Op::SecretPurge { name } | Op::SecretRecover { name } => {
                ("deletedsecrets", name, None)
            }
            Op::KeyImport { name }
            | Op::KeyDelete { name }
            | Op::KeyCreate { name }
            | Op::KeyListVersions { name }
            | Op::KeyBackup { name }
            | Op::KeyRotate { name }
            | Op::KeyGetRotationPolicy { name }
            | Op::KeyUpdateRotationPolicy { name } => ("keys", name, None),
            Op::KeyGet { name, version }
            | Op::KeyUpdate { name, version }
            | Op::KeyGetAttestation { name, version } => ("keys", name, version.as_deref()),
            Op::KeyOperation { name, version, .. } => ("keys", name, version.as_deref()),
            Op::KeyGetDeleted { name } | Op::KeyPurge { name } | Op::KeyRecover { name } => ("deletedkeys", name, None),
            Op::CertificateDelete { name }
            | Op::CertificateCreate { name }
            | Op::CertificateImport { name }
            | Op::CertificateListVersions { name }
            | Op::CertificateBackup { name }
            | Op::CertificatePolicyGet { name }
            | Op::CertificatePolicyUpdate { name }
            | Op::CertificatePendingGet { name }
            | Op::CertificatePendingUpdate { name }
            | Op::CertificatePendingDelete { name }
            | Op::CertificatePendingMerge { name } => ("certificates", name, None),
            Op::CertificateGet { name, version } | Op::CertificateUpdate { name, version } => {
                ("certificates", name, version.as_deref())
            }
            Op::CertificateGetDeleted { name } | Op::CertificatePurge { name } | Op::CertificateRecover { name } => {
                ("deletedcertificates", name, None)
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_operation_without_its_empty_version_segment_is_on_the_latest_version() {
        for path in ["/keys/k/sign", "/keys/k//sign", "/keys/k/Sign"] {
            let parsed = DataOperation::parse(&Method::POST, path);
            assert!(matches!(parsed, DataOperation::KeyOperation { version: None, .. }), "{path}: {parsed:?}");
        }
        // A version named like nothing else is still a version.
        assert_eq!(DataOperation::parse(&Method::GET, "/keys/k/sign").name(), "KeyGet");
    }

    #[test]
    fn data_plane_requests_are_parsed_once_as_azure_names_them() {
        let op = |m: Method, p: &str| DataOperation::parse(&m, p);
        let n = |m: Method, p: &str| op(m, p).name();
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
        assert_eq!(op(Method::GET, "/nothing"), DataOperation::NotFound);
        assert_eq!(op(Method::POST, "/secrets/db"), DataOperation::NotAllowed);
        assert!(op(Method::PUT, "/secrets/db").changes_state(&Method::PUT));
        assert!(!op(Method::POST, "/keys/k/v/decrypt").changes_state(&Method::POST));
        assert_eq!(op(Method::GET, "/secrets/db/abc").object(), Some(("secrets", "db", Some("abc"))));
        assert_eq!(op(Method::POST, "/keys/k/rotate").object(), Some(("keys", "k", None)));
        assert_eq!(op(Method::GET, "/certificates/issuers/x").object(), None);
        assert_eq!(
            op(Method::POST, "/keys/K1//encrypt"),
            DataOperation::KeyOperation { name: "K1".into(), version: None, op: "encrypt".into() }
        );
    }
}
