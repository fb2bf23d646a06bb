//! Sign-in and sign-out (the sign-in throttle and `directory::authenticate_user`, as the token endpoint).
use super::*;

#[derive(Template)]
#[template(path = "portal/login.html")]
pub(crate) struct LoginPage {
    pub(crate) user: Option<UserView>,
    pub(crate) flash: Option<String>,
    pub(crate) csrf: String,
    pub(crate) error: Option<String>,
}

pub(crate) fn login_page(status: StatusCode, error: Option<String>) -> Response {
    let token = coffer_crypto::random::client_secret().to_string();
    let mut resp = html(status, &LoginPage { user: None, flash: None, csrf: token.clone(), error });
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(LOGIN_COOKIE, &token, Some(600))) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub(crate) async fn login_form() -> Response {
    login_page(StatusCode::OK, None)
}

pub(crate) async fn login(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    SameOrigin(same): SameOrigin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use crate::sign_in::throttle::{address_key, principal_key};
    let form: Form = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    // Login CSRF: the form's token must be the one in this browser's login cookie.
    let expected = session::cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if !same || expected.is_empty() || !csrf_matches(&form, expected) {
        return cross_site();
    }
    let (Some(username), Some(password)) = (field(&form, "username"), field(&form, "password")) else {
        return login_page(StatusCode::BAD_REQUEST, Some("Enter a user name and a password.".into()));
    };
    crate::audit::note(|d| d.claimed = Some(username.to_string()));
    let tenant = match state.store.list_tenants().await {
        Ok(t) => t.into_iter().next().map(|t| t.id).unwrap_or_default(),
        Err(e) => return error_page(None, &e),
    };
    let now = state.clock.now();
    let (pkey, akey) = (principal_key(&tenant, username), address_key(addr));
    let attempt = match state.throttle.begin(pkey, akey, now) {
        Ok(attempt) => attempt,
        Err(wait) => {
            let msg = format!("Too many failed sign-ins. Try again in {wait} seconds.");
            crate::audit::note(|d| d.error = Some(msg.clone()));
            return login_page(StatusCode::TOO_MANY_REQUESTS, Some(msg));
        }
    };
    let signed = crate::directory::authenticate_user(&state, &tenant, username, password).await;
    let (principal, credential) = match signed {
        Ok(Some(pc)) => pc,
        Ok(None) => {
            let msg = "The user name or password is incorrect.".to_string();
            crate::audit::note(|d| d.error = Some(msg.clone()));
            return login_page(StatusCode::UNAUTHORIZED, Some(msg));
        }
        Err(e) => return error_page(None, &e),
    };
    attempt.succeeded();
    crate::audit::note(|d| {
        d.who = Some(crate::audit::record::Who {
            object_id: principal.object_id.clone(),
            tenant_id: principal.tenant_id.clone(),
            name: principal.name.clone(),
            kind: principal.kind.as_str().to_string(),
            client_id: None,
            via: Some(format!("portal:password:{}", credential.id)),
        })
    });
    let (id, _) = state.sessions.create(&principal.object_id, &principal.tenant_id, &credential.id, now);
    let mut resp = Redirect::to("/portal/vaults").into_response();
    for c in [session::set_cookie(COOKIE, &id, None), session::set_cookie(LOGIN_COOKIE, "", Some(0))] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

pub(crate) async fn logout(
    State(state): State<SharedState>,
    SameOrigin(same): SameOrigin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let portal = match signed_in(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let form: Form = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if !same || !csrf_matches(&form, &portal.session.csrf) {
        return cross_site();
    }
    state.sessions.remove(&portal.cookie);
    let mut resp = Redirect::to("/portal/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(COOKIE, "", Some(0))) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
