//! The portal's pages and form actions: what every page shares (the signed-in `Portal`, the
//! `Posted` form extractor, vault views, data-plane submissions) here, the pages by area in
//! the submodules.
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use coffer_core::Error;
use coffer_core::permissions::Area;
use coffer_core::principal::{Caller, PrincipalKind};
use coffer_core::vault::{AccessPolicy, PolicyPermissions, Vault};
use coffer_store::AuditQuery;
use coffer_store::StoredVersion;
use serde_json::Value;

use super::session::{self, COOKIE, LOGIN_COOKIE, Session};
use super::{SameOrigin, UserView, error_page, html, seg, status_of};
use crate::authorization::Question;
use crate::http::ClientAddr;
use crate::objects::VaultContext;
use crate::state::SharedState;
use crate::vaults::{PolicyEdit, VaultProperties, VaultSettings};

/// A signed-in request: who, and their session.
pub(super) struct Portal {
    pub(crate) caller: Caller,
    pub(crate) session: Session,
    cookie: String,
}

impl Portal {
    pub(super) fn user(&self) -> Option<UserView> {
        Some(UserView::of(&self.caller, &self.session.csrf))
    }
}

fn to_login() -> Response {
    Redirect::to("/portal/login").into_response()
}

/// The session behind the request's cookie, with its principal and credential resolved again
/// (a disabled or deleted principal, or a changed, reset or removed password, signs it out),
/// or a redirect to the sign-in page.
pub(super) async fn signed_in(state: &SharedState, headers: &HeaderMap) -> Result<Portal, Response> {
    let now = state.clock.now();
    let Some(cookie) = session::cookie(headers, COOKIE) else { return Err(to_login()) };
    let Some(session) = state.sessions.get(cookie, now) else { return Err(to_login()) };
    let principal = state.store.get_principal(&session.object_id).await.ok().flatten().filter(|p| p.enabled);
    let credential_live = match state.store.get_credential(&session.credential_id).await {
        Ok(c) => c.is_some_and(|c| c.principal_id == session.object_id && c.expires.is_none_or(|e| now < e)),
        Err(e) => return Err(error_page(None, &e)),
    };
    let Some(principal) = principal.filter(|_| credential_live) else {
        state.sessions.remove(cookie);
        return Err(to_login());
    };
    let caller = crate::authorization::caller_of(state, &principal).await.map_err(|e| error_page(None, &e))?;
    crate::audit::note_caller(&caller, Some("portal session".into()));
    Ok(Portal { caller, session, cookie: cookie.to_string() })
}

pub(super) type Form = Vec<(String, String)>;

pub(super) fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn csrf_matches(form: &Form, expected: &str) -> bool {
    field(form, "csrf").is_some_and(|t| coffer_crypto::digest::ct_eq(t.as_bytes(), expected.as_bytes()))
}

fn cross_site() -> Response {
    let e = Error::forbidden("CrossSiteRequest", "This form was not sent from a Coffer page; nothing was done.");
    crate::audit::note(|d| d.error = Some(e.message.clone()));
    error_page(None, &e)
}

/// A form post from a signed-in user, as a handler's last argument: same origin, the right
/// CSRF token, and (for changes) a durable "started" audit record before anything happens.
/// Anything else is answered for the handler (sign-in page, refusal, 503).
pub(super) struct Posted {
    pub(crate) portal: Portal,
    pub(crate) form: Form,
}

/// The largest form the portal takes (a PFX in base64, a JWK, a secret value).
const MAX_FORM_BYTES: usize = 256 * 1024;

impl axum::extract::FromRequest<SharedState> for Posted {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &SharedState) -> Result<Self, Response> {
        use axum::extract::FromRequestParts;
        let (mut parts, body) = req.into_parts();
        let Ok(SameOrigin(same)) = SameOrigin::from_request_parts(&mut parts, state).await;
        let portal = signed_in(state, &parts.headers).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| error_page(portal.user(), &Error::bad_parameter("The form is too large.")))?;
        let form: Form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| error_page(portal.user(), &Error::bad_parameter("The form could not be read.")))?;
        if !same || !csrf_matches(&form, &portal.session.csrf) {
            return Err(cross_site());
        }
        crate::audit::before_change(&state.audit).await.map_err(|e| error_page(portal.user(), &e))?;
        Ok(Posted { portal, form })
    }
}

mod access;
mod audit;
mod secrets;
mod sign_in;
mod vaults;
mod versions;

pub(crate) use access::*;
pub(crate) use audit::*;
pub(crate) use secrets::*;
pub(crate) use sign_in::*;
pub(crate) use vaults::*;
pub(crate) use versions::*;
