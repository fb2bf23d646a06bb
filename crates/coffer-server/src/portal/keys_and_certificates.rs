//! Keys and certificates in the portal: lists, item pages, generate / create / import, enable
//! or disable a version, delete, the deleted items with recover and purge, and the certificate
//! download — all through the key and certificate services, like the secrets pages.
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_core::Error;
use coffer_core::object::{AttributesPatch, ObjectKind};
use coffer_store::StoredVersion;

use super::pages::{
    DeletedPage, DeletedRow, Form, Portal, Posted, VaultView, VersionRow, change_object, context, field, signed_in,
    vault_view, version_rows, when,
};
use super::{UserView, error_page, html, seg, status_of};
use crate::certificates::{self, CertificateChange, CertificateToCreate, CertificateToImport};
use crate::http::ClientAddr;
use crate::keys::{self, KeyChange, KeyToCreate, KeyToImport};
use crate::objects::VaultContext;
use crate::state::SharedState;

/// Keys or certificates: which service a page reads through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Collection {
    Keys,
    Certificates,
}

impl Collection {
    fn path(self) -> &'static str {
        match self {
            Self::Keys => "keys",
            Self::Certificates => "certificates",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Keys => "Keys",
            Self::Certificates => "Certificates",
        }
    }

    fn kind(self) -> ObjectKind {
        match self {
            Self::Keys => ObjectKind::Key,
            Self::Certificates => ObjectKind::Certificate,
        }
    }

    async fn list_all(self, state: &SharedState, ctx: &VaultContext) -> coffer_core::Result<Vec<StoredVersion>> {
        match self {
            Self::Keys => keys::list_all(state, ctx).await,
            Self::Certificates => certificates::list_all(state, ctx).await,
        }
    }

    async fn all_versions(
        self,
        state: &SharedState,
        ctx: &VaultContext,
        name: &str,
    ) -> coffer_core::Result<Vec<StoredVersion>> {
        match self {
            Self::Keys => keys::all_versions(state, ctx, name).await,
            Self::Certificates => certificates::all_versions(state, ctx, name).await,
        }
    }

    async fn all_deleted(self, state: &SharedState, ctx: &VaultContext) -> coffer_core::Result<Vec<StoredVersion>> {
        match self {
            Self::Keys => keys::all_deleted(state, ctx).await,
            Self::Certificates => certificates::all_deleted(state, ctx).await,
        }
    }

    /// The latest version's properties as an item page lists them (never key material).
    async fn properties(
        self,
        state: &SharedState,
        ctx: &VaultContext,
        name: &str,
    ) -> coffer_core::Result<(StoredVersion, Vec<(String, String)>)> {
        let (version, mut first) = match self {
            Self::Keys => {
                let k = keys::get(state, ctx, name, None).await?;
                let size = k.meta.key_size.map(|s| format!(" {s} bits")).unwrap_or_default();
                let curve = k.meta.crv.as_deref().map(|c| format!(" {c}")).unwrap_or_default();
                let rows = vec![
                    ("Key type".to_string(), format!("{}{curve}{size}", k.meta.kty)),
                    ("Permitted operations".to_string(), k.meta.key_ops.join(", ")),
                ];
                (k.version, rows)
            }
            Self::Certificates => {
                let c = certificates::get(state, ctx, name, None).await?;
                let mut rows = vec![("Thumbprint (x5t)".to_string(), certificates::x5t_of(&c.version))];
                if let Some(s) = &c.policy.x509_props.subject {
                    rows.push(("Subject".into(), s.clone()));
                }
                (c.version, rows)
            }
        };
        let a = &version.attributes;
        first.extend([
            ("Enabled".to_string(), a.enabled.to_string()),
            ("Created".to_string(), when(Some(a.created))),
            ("Updated".to_string(), when(Some(a.updated))),
            ("Not before".to_string(), when(a.not_before)),
            ("Expires".to_string(), when(a.expires)),
        ]);
        if !version.tags.is_empty() {
            let t: Vec<String> = version.tags.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            first.push(("Tags".into(), t.join(", ")));
        }
        Ok((version, first))
    }
}

struct ObjectRow {
    name: String,
    enabled: bool,
    updated: String,
    expires: String,
    tags: String,
}

#[derive(Template)]
#[template(path = "portal/objects.html")]
struct ObjectsPage {
    user: Option<UserView>,
    flash: Option<String>,
    vault: VaultView,
    tab: &'static str,
    csrf: String,
    title: &'static str,
    collection: &'static str,
    items: Vec<ObjectRow>,
    error: Option<String>,
}

async fn list_page(
    state: &SharedState,
    p: &Portal,
    vault: &str,
    collection: Collection,
    addr: Option<std::net::IpAddr>,
) -> Response {
    let ctx = match context(state, &p.caller, vault, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    let view = vault_view(state, &ctx.vault);
    let (items, error, status) = match collection.list_all(state, &ctx).await {
        Ok(all) => {
            let rows = all
                .iter()
                .map(|o| ObjectRow {
                    name: o.name.clone(),
                    enabled: o.attributes.enabled,
                    updated: when(Some(o.attributes.updated)),
                    expires: when(o.attributes.expires),
                    tags: o.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
                })
                .collect();
            (rows, None, StatusCode::OK)
        }
        Err(e) => (Vec::new(), Some(e.message.clone()), status_of(&e)),
    };
    let page = ObjectsPage {
        user: p.user(),
        flash: None,
        vault: view,
        tab: collection.path(),
        csrf: p.session.csrf.clone(),
        title: collection.title(),
        collection: collection.path(),
        items,
        error,
    };
    html(status, &page)
}

#[derive(Template)]
#[template(path = "portal/object.html")]
struct ObjectPage {
    user: Option<UserView>,
    flash: Option<String>,
    vault: VaultView,
    tab: &'static str,
    csrf: String,
    kind: &'static str,
    collection: &'static str,
    name: String,
    id: String,
    properties: Vec<(String, String)>,
    versions: Vec<VersionRow>,
    error: Option<String>,
    current_version: Option<String>,
    enabled: bool,
    who: Vec<String>,
    who_error: Option<String>,
}

async fn item_page(
    state: &SharedState,
    p: &Portal,
    vault: &str,
    collection: Collection,
    name: &str,
    addr: Option<std::net::IpAddr>,
) -> Response {
    let ctx = match context(state, &p.caller, vault, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    let view = vault_view(state, &ctx.vault);
    let id = ctx.object_id(collection.kind(), name, None);
    let mut page = ObjectPage {
        user: p.user(),
        flash: None,
        vault: view,
        tab: collection.path(),
        csrf: p.session.csrf.clone(),
        kind: if collection == Collection::Keys { "Key" } else { "Certificate" },
        collection: collection.path(),
        name: name.to_string(),
        id,
        properties: Vec::new(),
        versions: Vec::new(),
        error: None,
        current_version: None,
        enabled: false,
        who: Vec::new(),
        who_error: None,
    };
    // Asked first, so that the decision the request's audit record keeps is the data one.
    let (kind, action) =
        if collection == Collection::Keys { ("key", "getKey") } else { ("certificate", "getCertificate") };
    (page.who, page.who_error) = super::pages::who_can(state, &p.caller, vault, kind, name, action).await;
    ctx.note_object(collection.path(), name, None);
    let mut status = StatusCode::OK;
    match collection.properties(state, &ctx, name).await {
        Ok((current, properties)) => {
            page.properties = properties;
            page.enabled = current.attributes.enabled;
            page.current_version = Some(current.version);
        }
        Err(e) => {
            status = status_of(&e);
            page.error = Some(e.message.clone());
        }
    }
    match collection.all_versions(state, &ctx, name).await {
        Ok(mut all) => page.versions = version_rows(&mut all),
        Err(e) if page.error.is_none() => {
            status = status_of(&e);
            page.error = Some(e.message.clone());
        }
        Err(_) => {}
    }
    html(status, &page)
}

/// The deleted keys or certificates of a vault, with recover and purge.
async fn deleted_page(
    state: &SharedState,
    headers: &HeaderMap,
    addr: Option<std::net::IpAddr>,
    vault: &str,
    collection: Collection,
) -> Response {
    let p = match signed_in(state, headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let ctx = match context(state, &p.caller, vault, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    let view = vault_view(state, &ctx.vault);
    let (items, error, status) = match collection.all_deleted(state, &ctx).await {
        Ok(all) => (super::pages::deleted_rows(&all), None, StatusCode::OK),
        Err(e) => (Vec::<DeletedRow>::new(), Some(e.message.clone()), status_of(&e)),
    };
    let page = DeletedPage {
        user: p.user(),
        flash: None,
        vault: view,
        tab: "deleted",
        csrf: p.session.csrf.clone(),
        collection: collection.path(),
        items,
        error,
    };
    html(status, &page)
}

/// Enables or disables a version (the form's `version` and `enabled`).
fn enable_change(form: &Form) -> (String, AttributesPatch) {
    let version = field(form, "version").unwrap_or("").trim().to_string();
    let enabled = field(form, "enabled") == Some("true");
    (version, AttributesPatch { enabled: Some(enabled), ..Default::default() })
}

/// Delete, recover and purge: the soft-delete steps every kind shares.
#[derive(Clone, Copy)]
enum Lifecycle {
    Delete,
    Recover,
    Purge,
}

/// One soft-delete step through the kind's service, then on to the page that shows its result
/// (the deleted items after a delete or purge, the item after a recover).
async fn lifecycle(
    state: &SharedState,
    p: &Portal,
    (vault, addr): (&str, Option<std::net::IpAddr>),
    (collection, name): (Collection, &str),
    step: Lifecycle,
) -> Response {
    let then = match step {
        Lifecycle::Recover => format!("/portal/vaults/{}/{}/{}", seg(vault), collection.path(), seg(name)),
        Lifecycle::Delete | Lifecycle::Purge => format!("/portal/vaults/{}/deleted-{}", seg(vault), collection.path()),
    };
    change_object(state, p, (vault, addr), (collection.path(), name, None), &then, async |ctx: &VaultContext| {
        match (collection, step) {
            (Collection::Keys, Lifecycle::Delete) => keys::delete(state, ctx, name).await.map(|_| ()),
            (Collection::Keys, Lifecycle::Recover) => keys::recover(state, ctx, name).await.map(|_| ()),
            (Collection::Keys, Lifecycle::Purge) => keys::purge(state, ctx, name).await,
            (Collection::Certificates, Lifecycle::Delete) => certificates::delete(state, ctx, name).await.map(|_| ()),
            (Collection::Certificates, Lifecycle::Recover) => certificates::recover(state, ctx, name).await.map(|_| ()),
            (Collection::Certificates, Lifecycle::Purge) => certificates::purge(state, ctx, name).await,
        }
    })
    .await
}

macro_rules! object_pages {
    ($collection:expr, list: $list:ident, item: $item:ident,
     delete: $delete:ident, deleted: $deleted:ident, recover: $recover:ident, purge: $purge:ident) => {
        pub async fn $list(
            State(state): State<SharedState>,
            ClientAddr(addr): ClientAddr,
            headers: HeaderMap,
            Path(vault): Path<String>,
        ) -> Response {
            match signed_in(&state, &headers).await {
                Ok(p) => list_page(&state, &p, &vault, $collection, addr).await,
                Err(r) => r,
            }
        }

        pub async fn $item(
            State(state): State<SharedState>,
            ClientAddr(addr): ClientAddr,
            headers: HeaderMap,
            Path((vault, name)): Path<(String, String)>,
        ) -> Response {
            match signed_in(&state, &headers).await {
                Ok(p) => item_page(&state, &p, &vault, $collection, &name, addr).await,
                Err(r) => r,
            }
        }

        pub async fn $delete(
            State(state): State<SharedState>,
            ClientAddr(addr): ClientAddr,
            Path((vault, name)): Path<(String, String)>,
            Posted { portal: p, .. }: Posted,
        ) -> Response {
            lifecycle(&state, &p, (&vault, addr), ($collection, &name), Lifecycle::Delete).await
        }

        pub async fn $deleted(
            State(state): State<SharedState>,
            ClientAddr(addr): ClientAddr,
            headers: HeaderMap,
            Path(vault): Path<String>,
        ) -> Response {
            deleted_page(&state, &headers, addr, &vault, $collection).await
        }

        pub async fn $recover(
            State(state): State<SharedState>,
            ClientAddr(addr): ClientAddr,
            Path((vault, name)): Path<(String, String)>,
            Posted { portal: p, .. }: Posted,
        ) -> Response {
            lifecycle(&state, &p, (&vault, addr), ($collection, &name), Lifecycle::Recover).await
        }

        pub async fn $purge(
            State(state): State<SharedState>,
            ClientAddr(addr): ClientAddr,
            Path((vault, name)): Path<(String, String)>,
            Posted { portal: p, .. }: Posted,
        ) -> Response {
            lifecycle(&state, &p, (&vault, addr), ($collection, &name), Lifecycle::Purge).await
        }
    };
}

object_pages!(Collection::Keys, list: keys, item: key, delete: delete_key,
    deleted: deleted_keys, recover: recover_key, purge: purge_key);
object_pages!(Collection::Certificates, list: certificates, item: certificate,
    delete: delete_certificate, deleted: deleted_certificates,
    recover: recover_certificate, purge: purge_certificate);

/// Enables or disables a version of a key.
pub async fn update_key(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let (version, attributes) = enable_change(&form);
    let then = format!("/portal/vaults/{}/keys/{}", seg(&vault), seg(&name));
    let change = KeyChange { attributes, ..Default::default() };
    change_object(&state, &p, (&vault, addr), ("keys", &name, Some(&version)), &then, async |ctx: &VaultContext| {
        keys::update(&state, ctx, &name, Some(&version), change).await
    })
    .await
}

/// Enables or disables a version of a certificate.
pub async fn update_certificate(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let (version, attributes) = enable_change(&form);
    let then = format!("/portal/vaults/{}/certificates/{}", seg(&vault), seg(&name));
    let change = CertificateChange { attributes, ..Default::default() };
    let object = ("certificates", name.as_str(), Some(version.as_str()));
    change_object(&state, &p, (&vault, addr), object, &then, async |ctx: &VaultContext| {
        certificates::update(&state, ctx, &name, Some(&version), change).await
    })
    .await
}

/// The name a create form gives, checked first so that the page says what is wrong with it.
fn new_name(form: &Form) -> Result<String, Error> {
    let name = field(form, "name").unwrap_or("").trim().to_string();
    coffer_core::names::validate_object_name(&name)?;
    Ok(name)
}

/// A new key or certificate from a form, through its service: on to its page, or the error
/// page (also for a form that does not parse: `parsed`).
async fn new_object<T, N>(
    state: &SharedState,
    (p, vault, addr): (&Portal, &str, Option<std::net::IpAddr>),
    collection: Collection,
    parsed: Result<(String, N), Error>,
    create: impl AsyncFnOnce(&VaultContext, &str, N) -> Result<T, Error>,
) -> Response {
    let (name, new) = match parsed {
        Ok(x) => x,
        Err(e) => return error_page(p.user(), &e),
    };
    let then = format!("/portal/vaults/{}/{}/{}", seg(vault), collection.path(), seg(&name));
    change_object(state, p, (vault, addr), (collection.path(), &name, None), &then, async |ctx: &VaultContext| {
        create(ctx, &name, new).await
    })
    .await
}

/// `kty` is `RSA:SIZE` or `EC:CURVE`.
fn key_to_create(form: &Form) -> Result<KeyToCreate, Error> {
    match field(form, "kty").and_then(|k| k.split_once(':')) {
        Some(("RSA", size)) => {
            Ok(KeyToCreate { kty: "RSA".into(), key_size: Some(size.parse().unwrap_or(2048)), ..Default::default() })
        }
        Some(("EC", crv)) => Ok(KeyToCreate { kty: "EC".into(), crv: Some(crv.to_string()), ..Default::default() }),
        _ => Err(Error::bad_parameter("Choose a key type.")),
    }
}

fn key_to_import(form: &Form) -> Result<KeyToImport, Error> {
    let jwk = serde_json::from_str(field(form, "jwk").unwrap_or(""))
        .map_err(|_| Error::bad_parameter("The key is not a JSON Web Key (JSON)."))?;
    Ok(KeyToImport { jwk, key_ops: None, hsm: false, attributes: Default::default(), tags: Default::default() })
}

/// A self-signed RSA certificate for `subject`, valid `months`.
fn self_signed_certificate(form: &Form) -> CertificateToCreate {
    let months = field(form, "months").and_then(|m| m.trim().parse::<u32>().ok()).unwrap_or(12);
    let mut policy = certificates::CertPolicy::default();
    policy.issuer.name = Some("Self".into());
    policy.x509_props.subject = Some(field(form, "subject").unwrap_or("").trim().to_string());
    policy.x509_props.validity_months = Some(months);
    policy.key_props.kty = Some("RSA".into());
    policy.key_props.key_size = Some(2048);
    policy.key_props.exportable = Some(true);
    policy.key_props.reuse_key = Some(false);
    policy.secret_props.content_type = Some(certificates::PKCS12.into());
    CertificateToCreate { policy: Some(policy), enabled: None, tags: Default::default() }
}

/// A pasted PEM is the file itself; a PFX comes as base64.
fn certificate_to_import(form: &Form) -> Result<CertificateToImport, Error> {
    let value = field(form, "value").unwrap_or("").trim();
    let file = if value.contains("-----BEGIN") {
        value.as_bytes().to_vec()
    } else {
        coffer_crypto::b64::std_decode(value)
            .ok_or_else(|| Error::bad_parameter("Paste a PEM file, or a PFX file in base64."))?
    };
    Ok(CertificateToImport {
        file: zeroize::Zeroizing::new(file),
        password: field(form, "password").filter(|p| !p.is_empty()).map(|p| zeroize::Zeroizing::new(p.to_string())),
        policy: None,
        enabled: None,
        tags: Default::default(),
    })
}

/// Generates a key (`kty` is `RSA:SIZE` or `EC:CURVE`).
pub async fn create_key(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path(vault): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let parsed = new_name(&form).and_then(|n| Ok((n, key_to_create(&form)?)));
    new_object(&state, (&p, &vault, addr), Collection::Keys, parsed, async |ctx, name, new| {
        keys::create(&state, ctx, name, new).await
    })
    .await
}

/// Imports a key from a JSON Web Key.
pub async fn import_key(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path(vault): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let parsed = new_name(&form).and_then(|n| Ok((n, key_to_import(&form)?)));
    new_object(&state, (&p, &vault, addr), Collection::Keys, parsed, async |ctx, name, new| {
        keys::import(&state, ctx, name, new).await
    })
    .await
}

/// Creates a self-signed certificate (its key and secret come with it).
pub async fn create_certificate(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path(vault): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let parsed = new_name(&form).map(|n| (n, self_signed_certificate(&form)));
    new_object(&state, (&p, &vault, addr), Collection::Certificates, parsed, async |ctx, name, new| {
        certificates::create(&state, ctx, name, new).await
    })
    .await
}

/// Imports a certificate with its key from PEM or a base64 PFX.
pub async fn import_certificate(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path(vault): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let parsed = new_name(&form).and_then(|n| Ok((n, certificate_to_import(&form)?)));
    new_object(&state, (&p, &vault, addr), Collection::Certificates, parsed, async |ctx, name, new| {
        certificates::import(&state, ctx, name, new).await
    })
    .await
}

/// The certificate (DER) as a `.cer` download.
pub async fn download_certificate(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path((vault, name)): Path<(String, String)>,
) -> Response {
    let p = match signed_in(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let ctx = match context(&state, &p.caller, &vault, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    ctx.note_object("certificates", &name, None);
    let certificate = match certificates::get(&state, &ctx, &name, None).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    let Some(der) = certificate.chain.into_iter().next() else {
        return error_page(p.user(), &Error::internal("the certificate has no DER form"));
    };
    let file = format!("attachment; filename=\"{name}.cer\"");
    ([(header::CONTENT_TYPE, "application/pkix-cert".to_string()), (header::CONTENT_DISPOSITION, file)], der)
        .into_response()
}
