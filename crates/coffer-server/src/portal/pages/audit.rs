//! A vault's audit records.
use super::*;

pub(crate) struct AuditRowView {
    pub(crate) time: String,
    pub(crate) operation: String,
    pub(crate) result: String,
    pub(crate) status: String,
    pub(crate) caller: String,
    pub(crate) object: String,
    pub(crate) address: String,
}

#[derive(Template)]
#[template(path = "portal/audit.html")]
pub(crate) struct AuditPage {
    pub(crate) user: Option<UserView>,
    pub(crate) flash: Option<String>,
    pub(crate) vault: VaultView,
    pub(crate) tab: &'static str,
    pub(crate) records: Vec<AuditRowView>,
    pub(crate) results: Vec<String>,
    pub(crate) filter_operation: String,
    pub(crate) filter_result: String,
    pub(crate) filter_caller: String,
    pub(crate) error: Option<String>,
}

#[derive(serde::Deserialize)]
pub(crate) struct AuditFilter {
    pub(crate) operation: Option<String>,
    pub(crate) result: Option<String>,
    pub(crate) caller: Option<String>,
}

pub(crate) async fn audit(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(vault): Path<String>,
    Query(f): Query<AuditFilter>,
) -> Response {
    let p = match signed_in(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let v = match visible_vault(&state, &p.caller, &vault).await {
        Ok(v) => v,
        Err(e) => return error_page(p.user(), &e),
    };
    let clean = |s: Option<String>| s.map(|x| x.trim().to_string()).filter(|x| !x.is_empty());
    let (operation, result, caller) =
        (clean(f.operation), clean(f.result).map(|r| r.to_ascii_lowercase()), clean(f.caller));
    let mut page = AuditPage {
        user: p.user(),
        flash: None,
        vault: vault_view(&state, &v),
        tab: "audit",
        records: Vec::new(),
        results: ["", "success", "denied", "failed", "started", "event"].iter().map(|s| s.to_string()).collect(),
        filter_operation: operation.clone().unwrap_or_default(),
        filter_result: result.clone().unwrap_or_default(),
        filter_caller: caller.clone().unwrap_or_default(),
        error: None,
    };
    // The same rule as the audit API: tenant administrators read the log.
    if let Err(e) = crate::authorization::require_tenant_admin(&p.caller, "read the audit log") {
        page.error = Some(e.message.clone());
        return html(StatusCode::FORBIDDEN, &page);
    }
    let q = AuditQuery {
        vault: Some(v.name.to_ascii_lowercase()),
        operation,
        result,
        caller,
        newest_first: true,
        limit: 200,
        ..Default::default()
    };
    match state.store.query_audit(&q).await {
        Ok(rows) => {
            page.records = rows
                .iter()
                .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
                .map(|r| AuditRowView {
                    time: r["time"].as_str().unwrap_or("").to_string(),
                    operation: r["operationName"].as_str().unwrap_or("").to_string(),
                    result: r["result"].as_str().unwrap_or("").to_string(),
                    status: r["properties"]["httpStatusCode"].as_i64().map(|s| s.to_string()).unwrap_or_default(),
                    caller: r["identity"]["claim"]["name"].as_str().unwrap_or("—").to_string(),
                    object: r["properties"]["objectName"].as_str().unwrap_or("").to_string(),
                    address: r["callerIpAddress"].as_str().unwrap_or("").to_string(),
                })
                .collect();
            html(StatusCode::OK, &page)
        }
        Err(e) => error_page(p.user(), &e),
    }
}
