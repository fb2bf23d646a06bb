//! The one versioned-object machinery behind secrets, keys and certificates: create a version,
//! read, update attributes and tags, list with paging, soft delete, recover, purge, backup and
//! restore. Payloads are sealed under the vault's data key, bound to vault/kind/name/version.
//! Only payload shapes and operations differ between kinds; they live in `dataplane`.
use coffer_core::lifecycle::Deletion;
use coffer_core::limits::{MAX_BACKUP_VERSIONS, MAX_PAGE_SIZE};
use coffer_core::names::{self, name_key, validate_object_name};
use coffer_core::object::{
    Attributes, AttributesPatch, ObjectKind, Tags, validate_content_type, validate_dates, validate_tags,
};
use coffer_core::permissions::DataAction;
use coffer_core::principal::Caller;
use coffer_core::vault::Vault;
use coffer_core::{Error, Result};
use coffer_crypto::b64;
use coffer_crypto::seal::{DataKey, object_aad};
use coffer_store::{ListQuery, NewVersion, ObjectRef, PutOutcome, StoredVersion};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::state::AppState;

/// A data-plane request's view of its vault: who calls, which vault, under which key.
#[derive(Debug)]
pub struct VaultContext {
    pub vault: Vault,
    pub key: DataKey,
    /// The authority the client used (`hr-app.vault.localhost:8443`); ids echo it.
    pub authority: String,
    pub caller: Caller,
    pub api_version: String,
}

/// Where a vault is opened from, for its firewall.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    /// A client's request, from this address (unknown: `None`, refused by a firewall).
    Network(Option<std::net::IpAddr>),
    /// Coffer's own background work: not subject to the firewall.
    Internal,
}

impl VaultContext {
    /// The one place a live vault is opened for a caller: it must exist and not be deleted
    /// (404 `VaultNotFound`), belong to the caller's tenant (401, as Azure answers a token
    /// of another tenant), let `origin` through its firewall (403 `ForbiddenByFirewall`),
    /// and its data key must open. The authority is the vault's public host; the data plane
    /// sets the one the client used.
    pub async fn open(
        state: &AppState,
        name: &str,
        caller: Caller,
        origin: Origin,
        api_version: String,
    ) -> Result<Self> {
        let record = state.store.get_vault_by_name(name).await?;
        Self::open_record(state, name, record, caller, origin, api_version)
    }

    /// `open`, with the vault's row as already read (the data plane reads it first, for the
    /// tenant its 401 challenge names).
    pub fn open_record(
        state: &AppState,
        name: &str,
        record: Option<coffer_store::VaultRecord>,
        caller: Caller,
        origin: Origin,
        api_version: String,
    ) -> Result<Self> {
        let record = record.filter(|r| !r.vault.is_deleted()).ok_or_else(|| {
            Error::not_found(
                "VaultNotFound",
                format!("The vault '{}' does not exist.", coffer_core::names::printable(name)),
            )
        })?;
        let vault = &record.vault;
        if vault.tenant_id != caller.tenant_id {
            return Err(Error::unauthorized("AKV10032: Invalid issuer. The token's tenant does not own this vault."));
        }
        if let (Some(acls), Origin::Network(address)) = (&vault.network_acls, origin)
            && !acls.allows(address)
        {
            let addr = address.map(|i| i.to_string()).unwrap_or_else(|| "unknown".into());
            return Err(Error::forbidden(
                "ForbiddenByFirewall",
                format!(
                    "Client address is not authorized and caller is not a trusted service.\r\nClient address: {addr}\r\nCaller: {}\r\nVault: {};location={}",
                    caller.describe(),
                    vault.name,
                    vault.location
                ),
            ));
        }
        crate::audit::note(|d| {
            d.vault = Some(vault.name.clone());
            d.resource_id = Some(vault.resource_id());
        });
        let key = state.keyring.vault_key(&record)?;
        let authority =
            state.names.vault_uri(&vault.name).trim_start_matches("https://").trim_end_matches('/').to_string();
        Ok(Self { vault: record.vault, key, authority, caller, api_version })
    }

    pub fn base_url(&self) -> String {
        format!("https://{}", self.authority)
    }

    /// `https://{vault-host}/{collection}/{name}[/{version}]`.
    pub fn object_id(&self, kind: ObjectKind, name: &str, version: Option<&str>) -> String {
        match version {
            Some(v) => format!("{}/{}/{name}/{v}", self.base_url(), kind.collection()),
            None => format!("{}/{}/{name}", self.base_url(), kind.collection()),
        }
    }

    /// The id of an object given by its path's collection (`secrets`, `deletedsecrets`, …).
    pub fn object_id_in(&self, collection: &str, name: &str, version: Option<&str>) -> String {
        match version {
            Some(v) => format!("{}/{collection}/{name}/{v}", self.base_url()),
            None => format!("{}/{collection}/{name}", self.base_url()),
        }
    }

    /// Names the object in the request's audit record (the portal, which works on objects its
    /// own paths do not name as the data plane's do) and the api-version it is served under.
    pub fn note_object(&self, collection: &str, name: &str, version: Option<&str>) {
        let id = self.object_id_in(collection, name, version);
        crate::audit::note(|d| {
            d.api_version = Some(self.api_version.clone());
            d.object = Some(crate::audit::record::RecordedObject {
                collection: collection.to_ascii_lowercase(),
                name: name.to_string(),
                version: version.map(str::to_string),
                id,
            });
        });
    }

    pub fn recovery_id(&self, kind: ObjectKind, name: &str) -> String {
        format!("{}/{}/{name}", self.base_url(), kind.deleted_collection())
    }

    /// Enforces a data permission: Ok, or Azure's 403 for the vault's model.
    pub async fn authorize(&self, state: &AppState, action: DataAction, name: Option<&str>) -> Result<()> {
        crate::authorization::authorize_data(state, &self.vault, &self.caller, action, name).await
    }
}

/// A version ready to be written (see `Objects::prepare`).
#[derive(Debug)]
pub struct PreparedVersion {
    pub kind: ObjectKind,
    pub name: String,
    pub name_key: String,
    pub version: String,
    attributes: Attributes,
    tags: coffer_core::object::Tags,
    content_type: Option<String>,
    managed: bool,
    sealed: Vec<u8>,
    meta: Option<String>,
}

impl PreparedVersion {
    fn to_write<'a>(&'a self, vault_id: &'a str) -> NewVersion<'a> {
        NewVersion {
            at: coffer_store::ObjectRef { vault_id, kind: self.kind, name_key: &self.name_key },
            name: &self.name,
            version: &self.version,
            attributes: &self.attributes,
            tags: &self.tags,
            content_type: self.content_type.as_deref(),
            managed: self.managed,
            payload: &self.sealed,
            meta: self.meta.as_deref(),
        }
    }
}

/// A new version's id is known only once it is chosen (a certificate's three objects share
/// it): the audit record's object gets it then.
fn note_new_version(version: &str) {
    crate::audit::note(|d| {
        if let Some(o) = d.object.as_mut().filter(|o| o.version.is_none()) {
            o.id = format!("{}/{version}", o.id);
            o.version = Some(version.to_string());
        }
    });
}

/// The version noted was not written after all.
fn forget_new_version(version: &str) {
    crate::audit::note(|d| {
        if let Some(o) = d.object.as_mut().filter(|o| o.version.as_deref() == Some(version)) {
            if let Some(id) = o.id.strip_suffix(&format!("/{version}")) {
                o.id = id.to_string();
            }
            o.version = None;
        }
    });
}

/// The status a new version is answered with (Azure's SetSecret: 200): what its witness
/// record says.
const WITNESSED_STATUS: u16 = 200;

/// Versions of objects that belong together (a certificate with its key and secret, in that
/// order, the certificate last) and the last one's `policy`, written in one transaction: all
/// of them, or none. Returns them as stored.
pub async fn create_version_group(
    state: &AppState,
    ctx: &VaultContext,
    group: Vec<PreparedVersion>,
    policy: Option<&str>,
) -> Result<Vec<StoredVersion>> {
    let writes: Vec<NewVersion<'_>> = group.iter().map(|p| p.to_write(&ctx.vault.id)).collect();
    match state.store.put_version_group(&writes, policy).await? {
        PutOutcome::Written => {}
        outcome => {
            let last = group.last().ok_or_else(|| Error::internal("an empty version group"))?;
            return Err(match outcome {
                PutOutcome::NameDeleted => last.kind.deleted_but_recoverable(&last.name),
                _ => Error::internal("put_version_group reported a taken name"),
            });
        }
    }
    let mut stored = Vec::with_capacity(group.len());
    for p in &group {
        note_new_version(&p.version);
        stored.push(Objects::new(state, ctx, p.kind).read(&p.name, Some(&p.version)).await?);
    }
    Ok(stored)
}

/// What a client sends to create a version.
#[derive(Debug)]
pub struct NewObject<'a> {
    pub name: &'a str,
    pub payload: &'a [u8],
    pub attributes: AttributesPatch,
    pub tags: Tags,
    pub content_type: Option<String>,
    pub managed: bool,
    /// Kind-specific public metadata (JSON).
    pub meta: Option<String>,
    /// The version id to use (a certificate and its key and secret share one); new if `None`.
    pub version: Option<String>,
}

/// What a client sends to update a version; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ObjectPatch {
    pub attributes: AttributesPatch,
    pub tags: Option<Tags>,
    pub content_type: Option<String>,
    /// Replaces the kind-specific metadata.
    pub meta: Option<String>,
}

/// `maxresults` and `$skiptoken` of a list request.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub max_results: usize,
    pub skip_token: Option<String>,
}

impl PageRequest {
    pub fn from_query(pairs: &[(String, String)]) -> Result<Self> {
        let max_results = match crate::http::query_get(pairs, "maxresults") {
            None => MAX_PAGE_SIZE,
            Some(s) => match s.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                _ => {
                    return Err(Error::bad_parameter(format!(
                        "The value '{}' of 'maxresults' is invalid; it must be an integer from 1 to {MAX_PAGE_SIZE}.",
                        names::printable(s)
                    )));
                }
            },
        };
        let skip_token = crate::http::query_get(pairs, "$skiptoken").map(str::to_string);
        Ok(Self { max_results, skip_token })
    }
}

#[derive(Debug)]
pub struct Page {
    pub items: Vec<StoredVersion>,
    /// The `$skiptoken` of the next page, if there is one.
    pub next: Option<String>,
}

/// Every item of a listing, page after page (Azure-sized pages, each checked and read as a
/// client's would be), for the portal's pages, which show a listing whole.
/// (`fetch` takes the request by value: a future borrowing it would not be `Send` for axum.)
pub async fn every_page<F, Fut>(mut fetch: F) -> Result<Vec<StoredVersion>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Page>>,
{
    let mut page = PageRequest { max_results: MAX_PAGE_SIZE, skip_token: None };
    let mut all = Vec::new();
    loop {
        let p = fetch(page.clone()).await?;
        all.extend(p.items);
        match p.next {
            Some(next) => page.skip_token = Some(next),
            None => return Ok(all),
        }
    }
}

fn encode_token(s: &str) -> String {
    b64::url_encode(s.as_bytes())
}

fn decode_token(t: &str) -> Result<String> {
    b64::url_decode(t)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| Error::bad_parameter("The $skiptoken is invalid."))
}

/// The versioned objects of one kind in one vault.
pub struct Objects<'a> {
    pub state: &'a AppState,
    pub ctx: &'a VaultContext,
    pub kind: ObjectKind,
}

/// The plaintext of a backup: every version of one object.
#[derive(Serialize, Deserialize)]
struct BackupContent {
    format: String,
    kind: String,
    name: String,
    versions: Vec<BackupVersion>,
}

#[derive(Serialize, Deserialize)]
struct BackupVersion {
    version: String,
    seq: i64,
    enabled: bool,
    nbf: Option<i64>,
    exp: Option<i64>,
    created: i64,
    updated: i64,
    content_type: Option<String>,
    tags: Tags,
    managed: bool,
    /// base64url of the plaintext payload; the whole document is sealed.
    payload: String,
    #[serde(default)]
    meta: Option<String>,
}

const BACKUP_MAGIC: &[u8] = b"CFB1";
const BACKUP_FORMAT: &str = "coffer-backup/1";

fn backup_aad(kind: ObjectKind) -> Vec<u8> {
    format!("coffer/backup/v1|{}", kind.as_str()).into_bytes()
}

impl<'a> Objects<'a> {
    pub fn new(state: &'a AppState, ctx: &'a VaultContext, kind: ObjectKind) -> Self {
        Self { state, ctx, kind }
    }

    fn at<'k>(&'k self, key: &'k str) -> ObjectRef<'k> {
        ObjectRef { vault_id: &self.ctx.vault.id, kind: self.kind, name_key: key }
    }

    fn now(&self) -> i64 {
        self.state.clock.now()
    }

    /// Keys and secrets that belong to a certificate change only through the certificate.
    pub async fn refuse_if_managed(&self, name: &str) -> Result<()> {
        validate_object_name(name)?;
        let key = name_key(name);
        if let Some(v) = self.state.store.get_version(&self.at(&key), None, false).await?
            && v.managed
        {
            return Err(Error::forbidden(
                "ManagedObject",
                format!(
                    "{} {name} is managed by the certificate of the same name; change the certificate instead.",
                    self.kind.title()
                ),
            ));
        }
        Ok(())
    }

    pub fn open_payload(&self, v: &StoredVersion) -> Result<Zeroizing<Vec<u8>>> {
        let aad = object_aad(&self.ctx.vault.id, self.kind.as_str(), &name_key(&v.name), &v.version);
        self.ctx
            .key
            .open(&aad, &v.payload)
            .map_err(|e| Error::internal(format!("opening {} {}/{}: {e}", self.kind.as_str(), v.name, v.version)))
    }

    /// A version checked and sealed, its id chosen, ready to be written (alone with
    /// `create_prepared`, or with the objects it belongs with by `create_version_group`).
    pub fn prepare(&self, new: NewObject<'_>) -> Result<PreparedVersion> {
        validate_object_name(new.name)?;
        validate_tags(&new.tags)?;
        if let Some(ct) = &new.content_type {
            validate_content_type(ct)?;
        }
        let now = self.now();
        let mut attributes = Attributes::new(now);
        attributes.apply(&new.attributes, now);
        validate_dates(&attributes)?;
        let key = name_key(new.name);
        let version = match new.version {
            Some(v) if names::is_valid_version(&v) => v.to_ascii_lowercase(),
            Some(_) => return Err(Error::internal("an invalid version id was chosen")),
            None => coffer_crypto::random::version_id(),
        };
        let aad = object_aad(&self.ctx.vault.id, self.kind.as_str(), &key, &version);
        let sealed = self.ctx.key.seal(&aad, new.payload)?;
        Ok(PreparedVersion {
            kind: self.kind,
            name: new.name.to_string(),
            name_key: key,
            version,
            attributes,
            tags: new.tags,
            content_type: new.content_type,
            managed: new.managed,
            sealed,
            meta: new.meta,
        })
    }

    pub async fn create_version(&self, new: NewObject<'_>) -> Result<StoredVersion> {
        let prepared = self.prepare(new)?;
        self.create_prepared(prepared).await
    }

    /// Writes a prepared version of this kind — with the request's success record in one
    /// commit when that is the request's one change (`DataOperation::witnessed`).
    pub async fn create_prepared(&self, p: PreparedVersion) -> Result<StoredVersion> {
        let write = p.to_write(&self.ctx.vault.id);
        // The record names the version it witnesses.
        note_new_version(&p.version);
        let outcome = match crate::audit::witness_record(&self.state.audit, WITNESSED_STATUS).await {
            Ok(Some(record)) => {
                match self.state.audit.write_witnessing(record, coffer_store::OwnedVersion::of(&write)).await {
                    Ok(crate::audit::Answer::Written(seq)) => {
                        crate::audit::note_witnessed(seq, WITNESSED_STATUS);
                        Ok(PutOutcome::Written)
                    }
                    Ok(crate::audit::Answer::Refused(outcome)) => Ok(outcome),
                    Err(e) => Err(crate::audit::scope::unavailable(&e.0)),
                }
            }
            Ok(None) => self.state.store.put_version(&write).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(PutOutcome::Written) => {}
            other => {
                forget_new_version(&p.version);
                match other? {
                    PutOutcome::NameDeleted => return Err(self.kind.deleted_but_recoverable(&p.name)),
                    _ => return Err(Error::internal("put_version reported a taken name")),
                }
            }
        }
        // Re-read: the display name is the one first written.
        self.read(&p.name, Some(&p.version)).await
    }

    /// A version (latest when `version` is `None`), with its sealed payload.
    pub async fn read(&self, name: &str, version: Option<&str>) -> Result<StoredVersion> {
        validate_object_name(name)?;
        let key = name_key(name);
        let found = self.state.store.get_version(&self.at(&key), version, false).await?;
        found.ok_or_else(|| match version {
            Some(v) => self.kind.version_not_found(name, v),
            None => self.kind.not_found(name),
        })
    }

    pub async fn update(&self, name: &str, version: Option<&str>, patch: &ObjectPatch) -> Result<StoredVersion> {
        let mut current = self.read(name, version).await?;
        if let Some(tags) = &patch.tags {
            validate_tags(tags)?;
            current.tags = tags.clone();
        }
        if let Some(ct) = &patch.content_type {
            validate_content_type(ct)?;
            current.content_type = Some(ct.clone());
        }
        if let Some(meta) = &patch.meta {
            current.meta = Some(meta.clone());
        }
        current.attributes.apply(&patch.attributes, self.now());
        validate_dates(&current.attributes)?;
        let key = name_key(name);
        let ok = self
            .state
            .store
            .update_version(
                &self.at(&key),
                &current.version,
                &current.attributes,
                &current.tags,
                current.content_type.as_deref(),
                current.meta.as_deref(),
            )
            .await?;
        if !ok {
            return Err(self.kind.not_found(name));
        }
        Ok(current)
    }

    pub async fn list(&self, page: &PageRequest) -> Result<Page> {
        self.list_heads(page, false).await
    }

    pub async fn list_deleted(&self, page: &PageRequest) -> Result<Page> {
        self.list_heads(page, true).await
    }

    async fn list_heads(&self, page: &PageRequest, deleted: bool) -> Result<Page> {
        let after = page.skip_token.as_deref().map(decode_token).transpose()?;
        let mut items = self
            .state
            .store
            .list_objects(&ListQuery {
                vault_id: &self.ctx.vault.id,
                kind: self.kind,
                deleted,
                after: after.as_deref(),
                limit: page.max_results + 1,
            })
            .await?;
        let next = if items.len() > page.max_results {
            items.truncate(page.max_results);
            items.last().map(|v| encode_token(&name_key(&v.name)))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// The version made just before `v` (Azure's `previousVersion` of a certificate's secret).
    pub async fn previous_version(&self, v: &StoredVersion) -> Result<Option<String>> {
        let key = name_key(&v.name);
        let all = self.state.store.all_versions(&self.at(&key)).await?;
        Ok(all.into_iter().filter(|o| o.seq < v.seq).max_by_key(|o| o.seq).map(|o| o.version))
    }

    pub async fn list_versions(&self, name: &str, page: &PageRequest) -> Result<Page> {
        validate_object_name(name)?;
        let key = name_key(name);
        let after_seq = match page.skip_token.as_deref().map(decode_token).transpose()? {
            Some(s) => s.parse::<i64>().map_err(|_| Error::bad_parameter("The $skiptoken is invalid."))?,
            None => 0,
        };
        let mut items = self.state.store.list_versions(&self.at(&key), after_seq, page.max_results + 1).await?;
        if items.is_empty() && after_seq == 0 {
            // Azure answers 404 for the versions of a secret that does not exist.
            return Err(self.kind.not_found(name));
        }
        let next = if items.len() > page.max_results {
            items.truncate(page.max_results);
            items.last().map(|v| encode_token(&v.seq.to_string()))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// Soft-deletes every version; returns the latest, marked deleted.
    pub async fn delete(&self, name: &str) -> Result<StoredVersion> {
        validate_object_name(name)?;
        let key = name_key(name);
        let now = self.now();
        let deletion =
            Deletion { deleted_date: now, scheduled_purge_date: self.ctx.vault.retention.scheduled_purge_date(now) };
        if !self.state.store.delete_object(&self.at(&key), &deletion).await? {
            return Err(self.kind.not_found(name));
        }
        self.get_deleted(name).await
    }

    pub async fn get_deleted(&self, name: &str) -> Result<StoredVersion> {
        validate_object_name(name)?;
        let key = name_key(name);
        self.state.store.get_version(&self.at(&key), None, true).await?.ok_or_else(|| self.kind.deleted_not_found(name))
    }

    pub async fn recover(&self, name: &str) -> Result<StoredVersion> {
        validate_object_name(name)?;
        let key = name_key(name);
        if !self.state.store.recover_object(&self.at(&key)).await? {
            return Err(self.kind.deleted_not_found(name));
        }
        self.read(name, None).await
    }

    pub async fn purge(&self, name: &str) -> Result<()> {
        validate_object_name(name)?;
        self.ctx.vault.retention.check_purge_allowed(&self.ctx.vault.name)?;
        let key = name_key(name);
        if !self.state.store.purge_object(&self.at(&key), None).await? {
            return Err(self.kind.deleted_not_found(name));
        }
        let subject =
            crate::lifetime_markers::Subject { kind: self.kind, vault_id: &self.ctx.vault.id, name_key: &key };
        crate::lifetime_markers::forget(self.state, subject).await
    }

    /// An opaque, sealed and authenticated blob of every version. A certificate's own key or
    /// secret is backed up only with its certificate (Azure answers 403, as here): restored on
    /// its own elsewhere it would be a certificate key without its certificate.
    pub async fn backup(&self, name: &str) -> Result<String> {
        let head = self.read(name, None).await?;
        if head.managed {
            return Err(Error::forbidden(
                "ManagedObject",
                format!(
                    "Operation \"backup\" is not allowed on this {}, since it is associated with a certificate. Perform the operation on the corresponding certificate.",
                    self.kind.title()
                ),
            ));
        }
        self.backup_versions(head).await
    }

    /// The backup of a certificate's key or secret, for the certificate's own backup.
    pub async fn backup_with_certificate(&self, name: &str) -> Result<String> {
        let head = self.read(name, None).await?;
        self.backup_versions(head).await
    }

    async fn backup_versions(&self, head: StoredVersion) -> Result<String> {
        let name = head.name.as_str();
        let key = name_key(name);
        let versions = self.state.store.all_versions(&self.at(&key)).await?;
        if versions.len() > MAX_BACKUP_VERSIONS {
            return Err(Error::bad_parameter(format!(
                "{} {name} has more than {MAX_BACKUP_VERSIONS} versions and cannot be backed up.",
                self.kind.title()
            )));
        }
        let mut out = Vec::with_capacity(versions.len());
        for v in &versions {
            let plain = self.open_payload(v)?;
            out.push(BackupVersion {
                version: v.version.clone(),
                seq: v.seq,
                enabled: v.attributes.enabled,
                nbf: v.attributes.not_before,
                exp: v.attributes.expires,
                created: v.attributes.created,
                updated: v.attributes.updated,
                content_type: v.content_type.clone(),
                tags: v.tags.clone(),
                managed: v.managed,
                payload: b64::url_encode(&plain),
                meta: v.meta.clone(),
            });
        }
        let doc = BackupContent {
            format: BACKUP_FORMAT.into(),
            kind: self.kind.as_str().into(),
            name: head.name,
            versions: out,
        };
        let plain = Zeroizing::new(serde_json::to_vec(&doc).map_err(|e| Error::internal(format!("backup: {e}")))?);
        let sealed = self.state.backup_key.seal(&backup_aad(self.kind), &plain)?;
        let mut blob = BACKUP_MAGIC.to_vec();
        blob.extend_from_slice(&sealed);
        Ok(b64::url_encode(&blob))
    }

    /// The object name inside a backup blob of this kind (without restoring it).
    pub fn backup_name(&self, blob: &str) -> Result<String> {
        Ok(self.open_backup(blob)?.name)
    }

    fn open_backup(&self, blob: &str) -> Result<BackupContent> {
        let invalid = || Error::bad_parameter("Backup blob contains invalid or corrupt version.");
        let raw = b64::url_decode(blob).ok_or_else(invalid)?;
        let sealed = raw.strip_prefix(BACKUP_MAGIC).ok_or_else(invalid)?;
        let plain = self.state.backup_key.open(&backup_aad(self.kind), sealed).map_err(|_| invalid())?;
        let doc: BackupContent = serde_json::from_slice(&plain).map_err(|_| invalid())?;
        if doc.format != BACKUP_FORMAT || doc.kind != self.kind.as_str() {
            return Err(invalid());
        }
        Ok(doc)
    }

    /// Restores a backup into this vault, under the name it was backed up with. A blob of a
    /// certificate's key or secret (made before such backups were refused) is refused: it is
    /// restored only as part of its certificate, so that a managed key can never become the
    /// key of a new certificate with other properties.
    pub async fn restore(&self, blob: &str) -> Result<StoredVersion> {
        let doc = self.open_backup(blob)?;
        if doc.versions.iter().any(|v| v.managed) {
            return Err(Error::bad_parameter(format!(
                "This backup is of a {} that belongs to a certificate; restore the certificate's backup instead.",
                self.kind.as_str()
            )));
        }
        let r = self.sealed_for_this_vault(doc)?;
        match self.state.store.restore_object(&self.at(&r.name_key), &r.name, &r.versions).await? {
            PutOutcome::Written => self.read(&r.name, None).await,
            outcome => Err(restore_conflict(self.kind, &r.name, outcome)),
        }
    }

    /// A certificate's key or secret from the certificate's own backup, opened and sealed for
    /// this vault but not written: the certificate writes its three objects in one transaction.
    pub fn restorable_with_certificate(&self, blob: &str) -> Result<Restorable> {
        let doc = self.open_backup(blob)?;
        if doc.versions.iter().any(|v| !v.managed) {
            return Err(Error::bad_parameter("Backup blob contains invalid or corrupt version."));
        }
        self.sealed_for_this_vault(doc)
    }

    /// A certificate's own backup blob (which holds no managed versions), prepared likewise.
    pub fn restorable(&self, blob: &str) -> Result<Restorable> {
        let doc = self.open_backup(blob)?;
        self.sealed_for_this_vault(doc)
    }

    fn sealed_for_this_vault(&self, doc: BackupContent) -> Result<Restorable> {
        let invalid = || Error::bad_parameter("Backup blob contains invalid or corrupt version.");
        validate_object_name(&doc.name)?;
        let key = name_key(&doc.name);
        let mut versions = Vec::with_capacity(doc.versions.len());
        for v in &doc.versions {
            if !names::is_valid_version(&v.version) {
                return Err(invalid());
            }
            let payload = Zeroizing::new(b64::url_decode(&v.payload).ok_or_else(invalid)?);
            let aad = object_aad(&self.ctx.vault.id, self.kind.as_str(), &key, &v.version);
            versions.push(StoredVersion {
                name: doc.name.clone(),
                version: v.version.clone(),
                seq: v.seq,
                attributes: Attributes {
                    enabled: v.enabled,
                    not_before: v.nbf,
                    expires: v.exp,
                    created: v.created,
                    updated: v.updated,
                },
                tags: v.tags.clone(),
                content_type: v.content_type.clone(),
                managed: v.managed,
                payload: self.ctx.key.seal(&aad, &payload)?,
                meta: v.meta.clone(),
                deletion: None,
            });
        }
        Ok(Restorable { kind: self.kind, name: doc.name, name_key: key, versions })
    }
}

/// A backed-up object opened and sealed for a vault, ready to be written by the store.
pub struct Restorable {
    pub kind: ObjectKind,
    pub name: String,
    name_key: String,
    versions: Vec<StoredVersion>,
}

impl Restorable {
    /// The versions it holds, sealed for this vault.
    pub fn versions(&self) -> &[StoredVersion] {
        &self.versions
    }

    /// The store's view of it, in the vault `vault_id`.
    pub fn in_vault<'a>(&'a self, vault_id: &'a str, policy: Option<&'a str>) -> coffer_store::RestoredObject<'a> {
        coffer_store::RestoredObject {
            at: ObjectRef { vault_id, kind: self.kind, name_key: &self.name_key },
            name: &self.name,
            versions: &self.versions,
            policy,
        }
    }
}

/// Azure's answer when a restore finds its name taken or deleted.
pub fn restore_conflict(kind: ObjectKind, name: &str, outcome: PutOutcome) -> Error {
    match outcome {
        PutOutcome::NameDeleted => kind.deleted_but_recoverable(name),
        _ => Error::conflict(
            None,
            format!(
                "There was a conflict restoring the {} '{name}': one with this name already exists in this vault.",
                kind.as_str()
            ),
        ),
    }
}
