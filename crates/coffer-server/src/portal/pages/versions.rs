//! Editing a secret's versions: a new version, its properties, enabling or disabling one.
//! (Keys' and certificates' versions: `portal::keys_and_certificates`.)
use super::*;

/// A new version of a secret, from the edit form.
pub(crate) async fn new_version(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let then = format!("/portal/vaults/{}/secrets/{}", seg(&vault), seg(&name));
    let new = crate::secrets::NewSecret { content_type: None, ..new_secret(&form) };
    change_object(&state, &p, (&vault, addr), ("secrets", &name, None), &then, async |ctx: &VaultContext| {
        crate::secrets::set(&state, ctx, &name, new).await
    })
    .await
}

/// Enables or disables a version of a secret.
pub(crate) async fn update_secret(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let version = field(&form, "version").unwrap_or("").trim().to_string();
    let enabled = field(&form, "enabled") == Some("true");
    let patch = crate::objects::ObjectPatch {
        attributes: coffer_core::object::AttributesPatch { enabled: Some(enabled), ..Default::default() },
        tags: None,
        content_type: None,
        meta: None,
    };
    let then = format!("/portal/vaults/{}/secrets/{}", seg(&vault), seg(&name));
    change_object(&state, &p, (&vault, addr), ("secrets", &name, Some(&version)), &then, async |ctx: &VaultContext| {
        crate::secrets::update(&state, ctx, &name, Some(&version), &patch).await
    })
    .await
}

/// Content type, expiry and tags of a secret's version (`PATCH /secrets/{name}/{version}`).
pub(crate) async fn properties(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let expires = match field(&form, "expires").map(str::trim).filter(|e| !e.is_empty()) {
        None => None,
        Some(e) => match coffer_core::clock::parse_iso8601(e) {
            Some(t) => Some(t),
            None => return error_page(p.user(), &Error::bad_parameter(format!("'{e}' is not a date (YYYY-MM-DD)."))),
        },
    };
    let mut tags = coffer_core::object::Tags::new();
    for line in field(&form, "tags").unwrap_or("").lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once('=') else {
            return error_page(p.user(), &Error::bad_parameter(format!("The tag line '{line}' is not name=value.")));
        };
        tags.insert(k.trim().to_string(), v.trim().to_string());
    }
    let patch = crate::objects::ObjectPatch {
        attributes: coffer_core::object::AttributesPatch { expires: Some(expires), ..Default::default() },
        tags: Some(tags),
        content_type: Some(field(&form, "content_type").unwrap_or("").trim().to_string()),
        meta: None,
    };
    let version = field(&form, "version").unwrap_or("").trim().to_string();
    let then = format!("/portal/vaults/{}/secrets/{}", seg(&vault), seg(&name));
    change_object(&state, &p, (&vault, addr), ("secrets", &name, Some(&version)), &then, async |ctx: &VaultContext| {
        crate::secrets::update(&state, ctx, &name, Some(&version), &patch).await
    })
    .await
}
