//! Secrets: list, show, reveal (a `SecretGet` under the caller's rights), create, new versions, properties, delete, deleted items, recover, purge; who may read.
use super::*;

/// A date as the pages show it (UTC; — for none).
pub(crate) fn when(t: Option<i64>) -> String {
    t.map(coffer_core::clock::iso8601).unwrap_or_else(|| "—".into())
}

pub(crate) struct SecretRow {
    pub(crate) name: String,
    pub(crate) enabled: bool,
    pub(crate) content_type: String,
    pub(crate) updated: String,
    pub(crate) expires: String,
    pub(crate) tags: String,
}

#[derive(Template)]
#[template(path = "portal/secrets.html")]
pub(crate) struct SecretsPage {
    pub(crate) user: Option<UserView>,
    pub(crate) flash: Option<String>,
    pub(crate) vault: VaultView,
    pub(crate) tab: &'static str,
    pub(crate) csrf: String,
    pub(crate) items: Vec<SecretRow>,
    pub(crate) error: Option<String>,
}

pub(crate) async fn secrets_page(
    state: &SharedState,
    p: &Portal,
    name: &str,
    addr: Option<std::net::IpAddr>,
    flash: Option<String>,
    status: StatusCode,
) -> Response {
    let ctx = match context(state, &p.caller, name, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    let vault = vault_view(state, &ctx.vault);
    let (items, error, status) = match crate::secrets::list_all(state, &ctx).await {
        Ok(all) => {
            let items = all
                .iter()
                .map(|s| SecretRow {
                    name: s.name.clone(),
                    enabled: s.attributes.enabled,
                    content_type: s.content_type.clone().unwrap_or_default(),
                    updated: when(Some(s.attributes.updated)),
                    expires: when(s.attributes.expires),
                    tags: s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
                })
                .collect();
            (items, None, status)
        }
        Err(e) => (Vec::new(), Some(e.message.clone()), status_of(&e)),
    };
    html(
        status,
        &SecretsPage { user: p.user(), flash, vault, tab: "secrets", csrf: p.session.csrf.clone(), items, error },
    )
}

pub(crate) async fn secrets(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    match signed_in(&state, &headers).await {
        Ok(p) => secrets_page(&state, &p, &name, addr, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

/// A change to a secret, key or certificate through its service (its permission checks), then
/// on to `then`; the error page if it is refused. `collection`, `name` and `version` name the
/// request record's object.
pub(crate) async fn change_object<T>(
    state: &SharedState,
    p: &Portal,
    (vault, addr): (&str, Option<std::net::IpAddr>),
    (collection, name, version): (&str, &str, Option<&str>),
    then: &str,
    change: impl AsyncFnOnce(&VaultContext) -> Result<T, Error>,
) -> Response {
    let ctx = match context(state, &p.caller, vault, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    ctx.note_object(collection, name, version);
    match change(&ctx).await {
        Ok(_) => Redirect::to(then).into_response(),
        Err(e) => error_page(p.user(), &e),
    }
}

/// The value and content type a form gives a new secret or version.
pub(crate) fn new_secret(form: &Form) -> crate::secrets::NewSecret {
    crate::secrets::NewSecret {
        value: zeroize::Zeroizing::new(field(form, "value").unwrap_or("").to_string()),
        content_type: field(form, "content_type").map(str::trim).filter(|c| !c.is_empty()).map(str::to_string),
        tags: Default::default(),
        attributes: Default::default(),
    }
}

pub(crate) async fn create_secret(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path(vault): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let name = field(&form, "name").unwrap_or("").trim().to_string();
    if let Err(e) = coffer_core::names::validate_object_name(&name) {
        return error_page(p.user(), &e);
    }
    let then = format!("/portal/vaults/{}/secrets/{}", seg(&vault), seg(&name));
    let new = new_secret(&form);
    change_object(&state, &p, (&vault, addr), ("secrets", &name, None), &then, async |ctx: &VaultContext| {
        crate::secrets::set(&state, ctx, &name, new).await
    })
    .await
}

pub(crate) struct VersionRow {
    pub(crate) version: String,
    pub(crate) enabled: bool,
    pub(crate) created: String,
    pub(crate) expires: String,
}

#[derive(Template)]
#[template(path = "portal/secret.html")]
pub(crate) struct SecretPage {
    pub(crate) user: Option<UserView>,
    pub(crate) flash: Option<String>,
    pub(crate) vault: VaultView,
    pub(crate) tab: &'static str,
    pub(crate) csrf: String,
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) enabled: String,
    pub(crate) content_type: String,
    pub(crate) created: String,
    pub(crate) updated: String,
    pub(crate) not_before: String,
    pub(crate) expires: String,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) versions: Vec<VersionRow>,
    pub(crate) value: Option<String>,
    pub(crate) value_error: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) who: Vec<String>,
    pub(crate) who_error: Option<String>,
    pub(crate) current_version: Option<String>,
    pub(crate) edit_content_type: String,
    pub(crate) edit_expires: String,
    pub(crate) edit_tags: String,
}

/// The secret's page; with `reveal`, the value too (a `SecretGet` under the caller's rights).
pub(crate) async fn secret_page(
    state: &SharedState,
    p: &Portal,
    vault: &str,
    name: &str,
    addr: Option<std::net::IpAddr>,
    reveal: bool,
) -> Response {
    let ctx = match context(state, &p.caller, vault, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    let view = vault_view(state, &ctx.vault);
    let id = ctx.object_id(coffer_core::object::ObjectKind::Secret, name, None);
    let mut page = SecretPage {
        user: p.user(),
        flash: None,
        vault: view,
        tab: "secrets",
        csrf: p.session.csrf.clone(),
        name: name.to_string(),
        id,
        enabled: "—".into(),
        content_type: "—".into(),
        created: "—".into(),
        updated: "—".into(),
        not_before: "—".into(),
        expires: "—".into(),
        tags: Vec::new(),
        versions: Vec::new(),
        value: None,
        value_error: None,
        error: None,
        who: Vec::new(),
        who_error: None,
        current_version: None,
        edit_content_type: String::new(),
        edit_expires: String::new(),
        edit_tags: String::new(),
    };
    // Who can read the value: answered by the evaluator that enforces, for those who may ask.
    // Asked first, so that the decision the request's audit record keeps is the data one.
    (page.who, page.who_error) = who_can(state, &p.caller, vault, "secret", name, "getSecret").await;
    let mut status = StatusCode::OK;
    ctx.note_object("secrets", name, None);
    match crate::secrets::all_versions(state, &ctx, name).await {
        Ok(mut items) => {
            items.sort_by_key(|v| std::cmp::Reverse(v.attributes.created));
            if let Some(latest) = items.first() {
                let a = &latest.attributes;
                page.current_version = Some(latest.version.clone());
                page.enabled = a.enabled.to_string();
                page.content_type = latest.content_type.clone().unwrap_or_else(|| "—".into());
                page.created = when(Some(a.created));
                page.updated = when(Some(a.updated));
                page.not_before = when(a.not_before);
                page.expires = when(a.expires);
                page.tags = latest.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                page.edit_content_type = latest.content_type.clone().unwrap_or_default();
                page.edit_expires =
                    a.expires.map(|e| coffer_core::clock::iso8601(e)[..10].to_string()).unwrap_or_default();
                page.edit_tags = page.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n");
            }
            page.versions = items
                .iter()
                .map(|v| VersionRow {
                    version: v.version.clone(),
                    enabled: v.attributes.enabled,
                    created: when(Some(v.attributes.created)),
                    expires: when(v.attributes.expires),
                })
                .collect();
        }
        Err(e) => {
            status = status_of(&e);
            page.error = Some(e.message.clone());
        }
    }
    if reveal {
        match crate::secrets::get(state, &ctx, name, None).await {
            Ok(got) => {
                page.value = Some(got.value.to_string());
                status = StatusCode::OK;
            }
            Err(e) => {
                status = status_of(&e);
                page.value_error = Some(e.message.clone());
            }
        }
    }
    html(status, &page)
}

pub(crate) async fn secret(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path((vault, name)): Path<(String, String)>,
) -> Response {
    match signed_in(&state, &headers).await {
        Ok(p) => secret_page(&state, &p, &vault, &name, addr, false).await,
        Err(r) => r,
    }
}

pub(crate) async fn reveal(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    secret_page(&state, &p, &vault, &name, addr, true).await
}

/// Who may perform `action` on the object (`kind`: secret, key or certificate), answered by the
/// evaluator that enforces requests — for those who may read the vault's access settings.
pub(crate) async fn who_can(
    state: &SharedState,
    caller: &Caller,
    vault: &str,
    kind: &str,
    name: &str,
    action: &str,
) -> (Vec<String>, Option<String>) {
    let area = match kind {
        "secret" => Area::Secrets,
        "key" => Area::Keys,
        _ => Area::Certificates,
    };
    let question =
        Question { vault: vault.to_string(), action: action.to_string(), object: Some((area, name.to_string())) };
    match crate::authorization::who_can(state, caller, &question).await {
        Ok(answer) => {
            let who = answer
                .answer
                .iter()
                .map(|(p, d)| {
                    format!(
                        "{} ({}) — {}",
                        p.name,
                        p.kind.as_str(),
                        d.reasons.first().map(String::as_str).unwrap_or("")
                    )
                })
                .collect();
            (who, None)
        }
        Err(_) => (Vec::new(), Some("Only those who may read this vault's access settings see this list.".into())),
    }
}

/// Versions newest first.
pub(crate) fn version_rows(items: &mut [StoredVersion]) -> Vec<VersionRow> {
    items.sort_by_key(|v| std::cmp::Reverse(v.attributes.created));
    items
        .iter()
        .map(|v| VersionRow {
            version: v.version.clone(),
            enabled: v.attributes.enabled,
            created: when(Some(v.attributes.created)),
            expires: when(v.attributes.expires),
        })
        .collect()
}

pub(crate) async fn delete_secret(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    let then = format!("/portal/vaults/{}/deleted-secrets", seg(&vault));
    change_object(&state, &p, (&vault, addr), ("secrets", &name, None), &then, async |ctx: &VaultContext| {
        crate::secrets::delete(&state, ctx, &name).await
    })
    .await
}

pub(crate) struct DeletedRow {
    pub(crate) name: String,
    pub(crate) deleted: String,
    pub(crate) purge: String,
}

#[derive(Template)]
#[template(path = "portal/deleted.html")]
pub(crate) struct DeletedPage {
    pub(crate) user: Option<UserView>,
    pub(crate) flash: Option<String>,
    pub(crate) vault: VaultView,
    pub(crate) tab: &'static str,
    pub(crate) csrf: String,
    pub(crate) collection: &'static str,
    pub(crate) items: Vec<DeletedRow>,
    pub(crate) error: Option<String>,
}

/// The rows of a deleted-items page.
pub(crate) fn deleted_rows(items: &[StoredVersion]) -> Vec<DeletedRow> {
    items
        .iter()
        .map(|d| DeletedRow {
            name: d.name.clone(),
            deleted: when(d.deletion.map(|x| x.deleted_date)),
            purge: when(d.deletion.map(|x| x.scheduled_purge_date)),
        })
        .collect()
}

pub(crate) async fn deleted(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path(vault): Path<String>,
) -> Response {
    let p = match signed_in(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let ctx = match context(&state, &p.caller, &vault, addr).await {
        Ok(c) => c,
        Err(e) => return error_page(p.user(), &e),
    };
    let (items, error, status) = match crate::secrets::all_deleted(&state, &ctx).await {
        Ok(all) => (deleted_rows(&all), None, StatusCode::OK),
        Err(e) => (Vec::new(), Some(e.message.clone()), status_of(&e)),
    };
    let page = DeletedPage {
        user: p.user(),
        flash: None,
        vault: vault_view(&state, &ctx.vault),
        tab: "deleted",
        csrf: p.session.csrf.clone(),
        collection: "secrets",
        items,
        error,
    };
    html(status, &page)
}

pub(crate) async fn recover(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    let then = format!("/portal/vaults/{}/secrets/{}", seg(&vault), seg(&name));
    change_object(&state, &p, (&vault, addr), ("secrets", &name, None), &then, async |ctx: &VaultContext| {
        crate::secrets::recover(&state, ctx, &name).await
    })
    .await
}

pub(crate) async fn purge(
    State(state): State<SharedState>,
    ClientAddr(addr): ClientAddr,
    Path((vault, name)): Path<(String, String)>,
    Posted { portal: p, .. }: Posted,
) -> Response {
    let then = format!("/portal/vaults/{}/deleted-secrets", seg(&vault));
    change_object(&state, &p, (&vault, addr), ("secrets", &name, None), &then, async |ctx: &VaultContext| {
        crate::secrets::purge(&state, ctx, &name).await
    })
    .await
}
