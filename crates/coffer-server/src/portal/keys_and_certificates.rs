//! Keys and certificates in the portal: lists, item pages, generate / create, delete, and the
//! certificate download — all through `dataplane::dispatch`, like the secrets pages.
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::pages::{
    Portal, Posted, Submit, VaultView, VersionRow, context, date, field, last_segment, signed_in, submit, vault_view,
    version_rows,
};
use super::{UserView, error_page, html, seg, status_of};
use crate::http::ClientAddr;
use crate::state::SharedState;

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

fn title_of(collection: &'static str) -> &'static str {
    if collection == "keys" { "Keys" } else { "Certificates" }
}

async fn list_page(
    state: &SharedState,
    p: &Portal,
    vault: &str,
    collection: &'static str,
    addr: Option<std::net::IpAddr>,
) -> Response {
    let ctx = match context(state, &p.caller, vault, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    let view = vault_view(state, &ctx.vault);
    let (items, error, status) =
        match crate::dataplane::dispatch(state, ctx, Method::GET, &format!("/{collection}"), None).await {
            Ok(list) => {
                let rows = list["value"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|o| {
                                let id = o["kid"].as_str().or(o["id"].as_str()).unwrap_or_default();
                                ObjectRow {
                                    name: last_segment(id),
                                    enabled: o["attributes"]["enabled"].as_bool().unwrap_or(false),
                                    updated: date(&o["attributes"]["updated"]),
                                    expires: date(&o["attributes"]["exp"]),
                                    tags: super::pages::tags_line(&o["tags"]),
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (rows, None, StatusCode::OK)
            }
            Err(e) => (Vec::new(), Some(e.message.clone()), status_of(&e)),
        };
    let page = ObjectsPage {
        user: p.user(),
        flash: None,
        vault: view,
        tab: collection,
        csrf: p.session.csrf.clone(),
        title: title_of(collection),
        collection,
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

/// What an item page lists about the current version (never key material).
fn properties(collection: &str, bundle: &Value) -> Vec<(String, String)> {
    let a = &bundle["attributes"];
    let mut out = vec![
        ("Enabled".to_string(), a["enabled"].as_bool().map(|b| b.to_string()).unwrap_or_default()),
        ("Created".to_string(), date(&a["created"])),
        ("Updated".to_string(), date(&a["updated"])),
        ("Not before".to_string(), date(&a["nbf"])),
        ("Expires".to_string(), date(&a["exp"])),
    ];
    if collection == "keys" {
        let k = &bundle["key"];
        let kty = k["kty"].as_str().unwrap_or("");
        let size = k["n"].as_str().map(|n| format!(" {} bits", n.len() * 6 / 8 * 8)).unwrap_or_default();
        out.insert(
            0,
            (
                "Key type".into(),
                format!("{kty}{}{size}", k["crv"].as_str().map(|c| format!(" {c}")).unwrap_or_default()),
            ),
        );
        let ops: Vec<&str> =
            k["key_ops"].as_array().map(|o| o.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        out.insert(1, ("Permitted operations".into(), ops.join(", ")));
    } else {
        out.insert(0, ("Thumbprint (x5t)".into(), bundle["x5t"].as_str().unwrap_or("").to_string()));
        if let Some(s) = bundle["policy"]["x509_props"]["subject"].as_str() {
            out.insert(1, ("Subject".into(), s.to_string()));
        }
    }
    if let Some(tags) = bundle["tags"].as_object().filter(|t| !t.is_empty()) {
        let t: Vec<String> = tags.iter().map(|(k, v)| format!("{k} = {}", v.as_str().unwrap_or(""))).collect();
        out.push(("Tags".into(), t.join(", ")));
    }
    out
}

async fn item_page(
    state: &SharedState,
    p: &Portal,
    vault: &str,
    collection: &'static str,
    name: &str,
    addr: Option<std::net::IpAddr>,
) -> Response {
    let ctx = match context(state, &p.caller, vault, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    let view = vault_view(state, &ctx.vault);
    let id = ctx.object_id_in(collection, name, None);
    let mut page = ObjectPage {
        user: p.user(),
        flash: None,
        vault: view,
        tab: collection,
        csrf: p.session.csrf.clone(),
        kind: if collection == "keys" { "Key" } else { "Certificate" },
        collection,
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
    let (kind, action) = if collection == "keys" { ("key", "getKey") } else { ("certificate", "getCertificate") };
    (page.who, page.who_error) = super::pages::who_can(state, &p.caller, vault, kind, name, action).await;
    let mut status = StatusCode::OK;
    let again = || context(state, &p.caller, vault, addr);
    match crate::dataplane::dispatch(state, ctx, Method::GET, &format!("/{collection}/{}", seg(name)), None).await {
        Ok(bundle) => {
            page.properties = properties(collection, &bundle);
            page.enabled = bundle["attributes"]["enabled"].as_bool().unwrap_or(false);
            page.current_version = bundle["kid"].as_str().or(bundle["id"].as_str()).map(last_segment);
        }
        Err(e) => {
            status = status_of(&e);
            page.error = Some(e.message.clone());
        }
    }
    if let Ok(ctx) = again().await {
        match crate::dataplane::dispatch(
            state,
            ctx,
            Method::GET,
            &format!("/{collection}/{}/versions", seg(name)),
            None,
        )
        .await
        {
            Ok(list) => page.versions = version_rows(list["value"].as_array().map(Vec::as_slice).unwrap_or(&[])),
            Err(e) if page.error.is_none() => {
                status = status_of(&e);
                page.error = Some(e.message.clone());
            }
            Err(_) => {}
        }
    }
    html(status, &page)
}

macro_rules! object_pages {
    ($list:ident, $item:ident, $delete:ident, $collection:literal) => {
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
            let then = format!("/portal/vaults/{vault}/deleted-{}", $collection);
            let path = format!("/{}/{}", $collection, seg(&name));
            submit(&state, &p, &vault, addr, Submit { method: Method::DELETE, path, body: None, then }).await
        }
    };
}

object_pages!(keys, key, delete_key, "keys");
object_pages!(certificates, certificate, delete_certificate, "certificates");

/// Generates a key (`kty` is `RSA:SIZE` or `EC:CURVE`).
pub async fn create_key(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path(vault): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let name = field(&form, "name").unwrap_or("").trim().to_string();
    let spec = match field(&form, "kty").and_then(|k| k.split_once(':')) {
        Some(("RSA", size)) => json!({"kty": "RSA", "key_size": size.parse::<u32>().unwrap_or(2048)}),
        Some(("EC", crv)) => json!({"kty": "EC", "crv": crv}),
        _ => return error_page(p.user(), &coffer_core::Error::bad_parameter("Choose a key type.")),
    };
    let op = Submit {
        method: Method::POST,
        path: format!("/keys/{}/create", seg(&name)),
        body: Some(spec),
        then: format!("/portal/vaults/{vault}/keys/{name}"),
    };
    create_named(&state, &p, &vault, addr, &name, op).await
}

/// Creates a self-signed certificate (its key and secret come with it).
pub async fn create_certificate(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path(vault): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let name = field(&form, "name").unwrap_or("").trim().to_string();
    let months = field(&form, "months").and_then(|m| m.trim().parse::<u32>().ok()).unwrap_or(12);
    let spec = json!({"policy": {
        "issuer": {"name": "Self"},
        "x509_props": {"subject": field(&form, "subject").unwrap_or("").trim(), "validity_months": months},
        "key_props": {"kty": "RSA", "key_size": 2048, "exportable": true, "reuse_key": false},
        "secret_props": {"contentType": "application/x-pkcs12"},
    }});
    let op = Submit {
        method: Method::POST,
        path: format!("/certificates/{}/create", seg(&name)),
        body: Some(spec),
        then: format!("/portal/vaults/{vault}/certificates/{name}"),
    };
    create_named(&state, &p, &vault, addr, &name, op).await
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
    let bundle = match crate::dataplane::dispatch(
        &state,
        ctx,
        Method::GET,
        &format!("/certificates/{}", seg(&name)),
        None,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return error_page(p.user(), &e),
    };
    let Some(der) = bundle["cer"].as_str().and_then(coffer_crypto::b64::std_decode) else {
        return error_page(p.user(), &coffer_core::Error::internal("the certificate has no DER form"));
    };
    let file = format!("attachment; filename=\"{name}.cer\"");
    ([(header::CONTENT_TYPE, "application/pkix-cert".to_string()), (header::CONTENT_DISPOSITION, file)], der)
        .into_response()
}

/// Imports a key from a JSON Web Key (`PUT /keys/{name}`).
pub async fn import_key(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path(vault): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let name = field(&form, "name").unwrap_or("").trim().to_string();
    let Ok(jwk) = serde_json::from_str::<Value>(field(&form, "jwk").unwrap_or("")) else {
        return error_page(p.user(), &coffer_core::Error::bad_parameter("The key is not a JSON Web Key (JSON)."));
    };
    let op = Submit {
        method: Method::PUT,
        path: format!("/keys/{}", seg(&name)),
        body: Some(json!({"key": jwk})),
        then: format!("/portal/vaults/{vault}/keys/{name}"),
    };
    create_named(&state, &p, &vault, addr, &name, op).await
}

/// Imports a certificate with its key from PEM or a base64 PFX (`POST /certificates/{name}/import`).
pub async fn import_certificate(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path(vault): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let name = field(&form, "name").unwrap_or("").trim().to_string();
    let value = field(&form, "value").unwrap_or("").trim().to_string();
    // The API takes the file in base64 (as the SDKs send it): a pasted PEM is encoded here.
    let (content_type, value) = if value.contains("-----BEGIN") {
        ("application/x-pem-file", coffer_crypto::b64::std_encode(value.as_bytes()))
    } else {
        ("application/x-pkcs12", value)
    };
    let mut input = json!({"value": value, "policy": {"secret_props": {"contentType": content_type}}});
    if let Some(pwd) = field(&form, "password").filter(|p| !p.is_empty()) {
        input["pwd"] = json!(pwd);
    }
    let op = Submit {
        method: Method::POST,
        path: format!("/certificates/{}/import", seg(&name)),
        body: Some(input),
        then: format!("/portal/vaults/{vault}/certificates/{name}"),
    };
    create_named(&state, &p, &vault, addr, &name, op).await
}

/// A new key or certificate from a form: its name is checked first, so the page says what is
/// wrong with it.
async fn create_named(
    state: &SharedState,
    p: &Portal,
    vault: &str,
    addr: Option<std::net::IpAddr>,
    name: &str,
    op: Submit,
) -> Response {
    if let Err(e) = coffer_core::names::validate_object_name(name) {
        return error_page(p.user(), &e);
    }
    submit(state, p, vault, addr, op).await
}
