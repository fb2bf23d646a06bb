//! Contacts and issuers: vault-wide documents, sealed.
use super::*;

pub(super) async fn contacts(state: &SharedState, req: &DataRequest) -> Handled {
    let ctx = &req.ctx;
    let id = format!("{}/certificates/contacts", ctx.base_url());
    let not_found = || Error::not_found("ContactsNotFound", "Contacts not found");
    match req.method {
        Method::GET => {
            ctx.authorize(state, DataAction::CertManageContacts, None).await?;
            let doc = load_doc(state, ctx, "contacts").await?.ok_or_else(not_found)?;
            Ok(json_response(StatusCode::OK, json!({"id": id, "contacts": doc})))
        }
        Method::PUT => {
            ctx.authorize(state, DataAction::CertManageContacts, None).await?;
            let body: Value = parse_body(&req.body)?;
            let list = body
                .get("contacts")
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| Error::bad_parameter("The property 'contacts' (a list) is required."))?;
            for c in &list {
                if !c.get("email").is_some_and(Value::is_string) {
                    return Err(Error::bad_parameter("Every contact needs an email.").into());
                }
            }
            save_doc(state, ctx, "contacts", &Value::Array(list.clone())).await?;
            Ok(json_response(StatusCode::OK, json!({"id": id, "contacts": list})))
        }
        Method::DELETE => {
            ctx.authorize(state, DataAction::CertManageContacts, None).await?;
            let doc = load_doc(state, ctx, "contacts").await?.ok_or_else(not_found)?;
            state.store.delete_meta(&doc_key(ctx, "contacts")).await?;
            Ok(json_response(StatusCode::OK, json!({"id": id, "contacts": doc})))
        }
        ref m => Err(method_not_allowed(m)),
    }
}

fn issuer_json(ctx: &VaultContext, name: &str, doc: &Value) -> Value {
    let mut v = doc.clone();
    v["id"] = format!("{}/certificates/issuers/{name}", ctx.base_url()).into();
    // The issuer account's password is write-only.
    if let Some(c) = v.get_mut("credentials").and_then(Value::as_object_mut) {
        c.remove("pwd");
    }
    v
}

pub(super) async fn list_issuers(state: &SharedState, req: &DataRequest) -> Handled {
    req.ctx.authorize(state, DataAction::CertListIssuers, None).await?;
    let doc = load_doc(state, &req.ctx, "issuers").await?.unwrap_or_else(|| json!({}));
    let items: Vec<Value> = doc
        .as_object()
        .map(|m| m.iter().map(|(n, d)| json!({"id": format!("{}/certificates/issuers/{n}", req.ctx.base_url()), "provider": d["provider"]})).collect())
        .unwrap_or_default();
    Ok(json_response(StatusCode::OK, json!({"value": items, "nextLink": null})))
}

pub(super) async fn issuer_op(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let ctx = &req.ctx;
    coffer_core::names::validate_object_name(name)?;
    let mut all = load_doc(state, ctx, "issuers").await?.unwrap_or_else(|| json!({}));
    let not_found = || Error::not_found("CertificateIssuerNotFound", format!("Issuer not found: {name}"));
    let now = state.clock.now();
    match req.method {
        Method::GET => {
            ctx.authorize(state, DataAction::CertGetIssuers, None).await?;
            let d = all.get(name).cloned().ok_or_else(not_found)?;
            Ok(json_response(StatusCode::OK, issuer_json(ctx, name, &d)))
        }
        Method::PUT | Method::PATCH => {
            ctx.authorize(state, DataAction::CertSetIssuers, None).await?;
            let body: Value = parse_body(&req.body)?;
            let existing = all.get(name).cloned();
            if req.method == Method::PATCH && existing.is_none() {
                return Err(not_found().into());
            }
            let mut d = existing.clone().unwrap_or_else(|| json!({}));
            for field in ["provider", "credentials", "org_details"] {
                if let Some(v) = body.get(field) {
                    d[field] = v.clone();
                }
            }
            if !d.get("provider").is_some_and(Value::is_string) {
                return Err(Error::bad_parameter("The property 'provider' is required.").into());
            }
            let enabled = body
                .get("attributes")
                .and_then(|a| a.get("enabled"))
                .and_then(Value::as_bool)
                .or_else(|| d["attributes"]["enabled"].as_bool())
                .unwrap_or(true);
            let created = d["attributes"]["created"].as_i64().unwrap_or(now);
            d["attributes"] = json!({"enabled": enabled, "created": created, "updated": now});
            if let Some(m) = all.as_object_mut() {
                m.insert(name.to_string(), d.clone());
            }
            save_doc(state, ctx, "issuers", &all).await?;
            Ok(json_response(StatusCode::OK, issuer_json(ctx, name, &d)))
        }
        Method::DELETE => {
            ctx.authorize(state, DataAction::CertDeleteIssuers, None).await?;
            let d = all.as_object_mut().and_then(|m| m.remove(name)).ok_or_else(not_found)?;
            save_doc(state, ctx, "issuers", &all).await?;
            Ok(json_response(StatusCode::OK, issuer_json(ctx, name, &d)))
        }
        ref m => Err(method_not_allowed(m)),
    }
}
