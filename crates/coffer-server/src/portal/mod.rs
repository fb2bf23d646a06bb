//! The web portal on the bare host (`https://localhost:8443/portal/…`): server-rendered pages
//! (askama templates, escaped by default) for signing in, browsing vaults and secrets,
//! revealing a value, creating, deleting, recovering and purging secrets, editing access
//! policies and reading a vault's audit records.
//!
//! Every action goes through the same code as the API: vaults, access policies, role
//! assignments, who-can and the directory through their services (`vaults`, `authorization`,
//! `directory`), secrets, keys and certificates through `secrets`, `keys` and `certificates`
//! (each checks the caller's permission as for an SDK) — and every page request is audited
//! under the operation its route names. Forms carry a per-session CSRF token and cross-site
//! requests are refused; pages carry a strict Content-Security-Policy.
mod admin;
mod keys_and_certificates;
mod pages;
mod roles;
pub use crate::sessions as session;

use crate::routes::{Methods, Routes, read, unaudited_get, write};
use askama::Template;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use coffer_core::principal::Caller;
use coffer_core::{Error, ErrorKind};

pub use crate::sessions::Sessions;

use crate::state::SharedState;

pub fn routes() -> Routes<SharedState> {
    // Page views are `PortalView`; actions carry the names of the operations they perform.
    let view = read("PortalView");
    let (directory, roles) = (write("DirectoryChange"), write("RoleAssignmentChange"));
    Routes::new()
        .route("/", unaudited_get(|| async { Redirect::to("/portal/vaults") }))
        .route("/portal", unaudited_get(|| async { Redirect::to("/portal/vaults") }))
        .route("/portal/static/{file}", unaudited_get(static_file))
        .route("/portal/login", unaudited_get(pages::login_form).and_post(read("Authentication"), pages::login))
        .route("/portal/logout", Methods::post(read("SignOut"), pages::logout))
        .route("/portal/vaults", Methods::get(view, pages::vaults).and_post(write("VaultPut"), pages::create_vault))
        .route("/portal/admin", Methods::get(view, admin::admin))
        .route("/portal/admin/principals", Methods::post(directory, admin::create_principal))
        .route("/portal/admin/members", Methods::post(directory, admin::add_member))
        .route("/portal/admin/principals/{id}/enabled", Methods::post(directory, admin::set_enabled))
        .route("/portal/admin/principals/{id}/delete", Methods::post(directory, admin::delete_principal))
        .route("/portal/admin/principals/{id}/credentials", Methods::post(directory, admin::new_credential))
        .route("/portal/admin/groups/{id}/members/{member}/remove", Methods::post(directory, admin::remove_member))
        .route("/portal/vaults/{vault}", Methods::get(view, pages::overview))
        .route(
            "/portal/vaults/{vault}/secrets",
            Methods::get(view, pages::secrets).and_post(write("SecretSet"), pages::create_secret),
        )
        .route("/portal/vaults/{vault}/secrets/{name}", Methods::get(view, pages::secret))
        .route("/portal/vaults/{vault}/secrets/{name}/reveal", Methods::post(read("SecretGet"), pages::reveal))
        .route(
            "/portal/vaults/{vault}/secrets/{name}/delete",
            Methods::post(write("SecretDelete"), pages::delete_secret),
        )
        .route("/portal/vaults/{vault}/secrets/{name}/versions", Methods::post(write("SecretSet"), pages::new_version))
        .route(
            "/portal/vaults/{vault}/secrets/{name}/properties",
            Methods::post(write("SecretUpdate"), pages::properties),
        )
        .route(
            "/portal/vaults/{vault}/secrets/{name}/update",
            Methods::post(write("SecretUpdate"), pages::update_secret),
        )
        .route(
            "/portal/vaults/{vault}/keys/{name}/update",
            Methods::post(write("KeyUpdate"), keys_and_certificates::update_key),
        )
        .route(
            "/portal/vaults/{vault}/certificates/{name}/update",
            Methods::post(write("CertificateUpdate"), keys_and_certificates::update_certificate),
        )
        .route("/portal/vaults/{vault}/deleted-secrets", Methods::get(view, pages::deleted))
        .route(
            "/portal/vaults/{vault}/deleted-secrets/{name}/recover",
            Methods::post(write("SecretRecover"), pages::recover),
        )
        .route("/portal/vaults/{vault}/deleted-secrets/{name}/purge", Methods::post(write("SecretPurge"), pages::purge))
        .route(
            "/portal/vaults/{vault}/keys",
            Methods::get(view, keys_and_certificates::keys)
                .and_post(write("KeyCreate"), keys_and_certificates::create_key),
        )
        .route(
            "/portal/vaults/{vault}/import-key",
            Methods::post(write("KeyImport"), keys_and_certificates::import_key),
        )
        .route(
            "/portal/vaults/{vault}/import-certificate",
            Methods::post(write("CertificateImport"), keys_and_certificates::import_certificate),
        )
        .route("/portal/vaults/{vault}/keys/{name}", Methods::get(view, keys_and_certificates::key))
        .route(
            "/portal/vaults/{vault}/keys/{name}/delete",
            Methods::post(write("KeyDelete"), keys_and_certificates::delete_key),
        )
        .route("/portal/vaults/{vault}/deleted-keys", Methods::get(view, keys_and_certificates::deleted_keys))
        .route(
            "/portal/vaults/{vault}/deleted-keys/{name}/recover",
            Methods::post(write("KeyRecover"), keys_and_certificates::recover_key),
        )
        .route(
            "/portal/vaults/{vault}/deleted-keys/{name}/purge",
            Methods::post(write("KeyPurge"), keys_and_certificates::purge_key),
        )
        .route(
            "/portal/vaults/{vault}/certificates",
            Methods::get(view, keys_and_certificates::certificates)
                .and_post(write("CertificateCreate"), keys_and_certificates::create_certificate),
        )
        .route("/portal/vaults/{vault}/certificates/{name}", Methods::get(view, keys_and_certificates::certificate))
        .route(
            "/portal/vaults/{vault}/certificates/{name}/download",
            Methods::get(read("CertificateGet"), keys_and_certificates::download_certificate),
        )
        .route(
            "/portal/vaults/{vault}/certificates/{name}/delete",
            Methods::post(write("CertificateDelete"), keys_and_certificates::delete_certificate),
        )
        .route(
            "/portal/vaults/{vault}/deleted-certificates",
            Methods::get(view, keys_and_certificates::deleted_certificates),
        )
        .route(
            "/portal/vaults/{vault}/deleted-certificates/{name}/recover",
            Methods::post(write("CertificateRecover"), keys_and_certificates::recover_certificate),
        )
        .route(
            "/portal/vaults/{vault}/deleted-certificates/{name}/purge",
            Methods::post(write("CertificatePurge"), keys_and_certificates::purge_certificate),
        )
        .route(
            "/portal/vaults/{vault}/access",
            Methods::get(view, pages::access).and_post(write("VaultAccessPolicyChange"), pages::set_access),
        )
        .route("/portal/vaults/{vault}/audit", Methods::get(view, pages::audit))
        .route("/portal/vaults/{vault}/roles", Methods::get(view, roles::roles).and_post(roles, roles::assign))
        .route("/portal/vaults/{vault}/roles/{id}/delete", Methods::post(roles, roles::unassign))
}

/// The portal's routes with its security headers on every response.
pub fn router() -> Router<SharedState> {
    routes().into_router().layer(axum::middleware::map_response(security_headers))
}

/// No inline script or style, no framing, no referrer outside this site (`same-origin`, not
/// `no-referrer`: with that, browsers send `Origin: null` on form posts and the same-origin
/// check could not tell our forms from others); pages are never cached (values).
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

const CSS: &str = include_str!("../../static/portal.css");
const JS: &str = include_str!("../../static/portal.js");

async fn static_file(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "portal.css" => (CSS, "text/css; charset=utf-8"),
        "portal.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// The signed-in user as the layout shows them.
#[derive(Debug, Clone)]
pub struct UserView {
    pub name: String,
    pub object_id: String,
    pub csrf: String,
    pub admin: bool,
}

impl UserView {
    fn of(caller: &Caller, csrf: &str) -> Self {
        Self {
            name: caller.name.clone(),
            object_id: caller.object_id.clone(),
            csrf: csrf.to_string(),
            admin: caller.tenant_admin,
        }
    }
}

#[derive(Template)]
#[template(path = "portal/error.html")]
struct ErrorPage {
    user: Option<UserView>,
    flash: Option<String>,
    heading: String,
    message: String,
}

/// An HTML page from a template, or a plain 500 if it cannot render (it always can: the
/// templates are checked at compile time).
fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "portal template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "The page could not be rendered.").into_response()
        }
    }
}

/// A name or version as one path segment of a data-plane path: percent-encoded, so a `/` (or
/// `?`, `%`) in what the browser sent cannot change which route runs — the data plane then
/// refuses the name, as it would over HTTP, and the audit label is the operation executed.
pub(super) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn status_of(e: &Error) -> StatusCode {
    crate::http::status_of(e.kind)
}

/// An error as a page: the message is Coffer's own (e.g. which permission is missing).
fn error_page(user: Option<UserView>, e: &Error) -> Response {
    crate::audit::note(|d| d.error = Some(e.recorded_as.clone().unwrap_or_else(|| e.message.clone())));
    let (heading, message) = match e.kind {
        ErrorKind::Internal => (
            "Something went wrong",
            "The server could not complete this. The audit log has the request id.".to_string(),
        ),
        ErrorKind::Forbidden => ("Not allowed", e.message.clone()),
        ErrorKind::NotFound => ("Not found", e.message.clone()),
        ErrorKind::Unavailable => ("Unavailable", e.message.clone()),
        _ => ("That did not work", e.message.clone()),
    };
    html(status_of(e), &ErrorPage { user, flash: None, heading: heading.into(), message })
}

/// Whether the browser says the request came from this site: `Origin` (when present) must
/// be this host (`:authority` on HTTP/2, `Host` on HTTP/1.1), and `Sec-Fetch-Site` (when
/// present) must say same-origin. Together with the CSRF token and SameSite=Strict cookies.
pub struct SameOrigin(pub bool);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for SameOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let authority = match parts.extensions.get::<crate::host::Surface>() {
            Some(crate::host::Surface::Control { authority }) | Some(crate::host::Surface::Vault { authority, .. }) => {
                authority.clone()
            }
            None => String::new(),
        };
        Ok(SameOrigin(same_origin(&parts.headers, &authority)))
    }
}

fn same_origin(headers: &HeaderMap, authority: &str) -> bool {
    let origin_ok = match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(o) => !authority.is_empty() && o.eq_ignore_ascii_case(&format!("https://{authority}")),
    };
    let fetch_ok = match headers.get("sec-fetch-site").and_then(|o| o.to_str().ok()) {
        None => true,
        Some(s) => s == "same-origin" || s == "none",
    };
    origin_ok && fetch_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_site_requests_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h, "localhost:8443"), "no Origin: the CSRF token decides");
        h.insert(header::ORIGIN, HeaderValue::from_static("https://localhost:8443"));
        assert!(same_origin(&h, "localhost:8443"));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:9999"));
        assert!(!same_origin(&h, "localhost:8443"));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://localhost:8443"));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h, "localhost:8443"));
    }
}
