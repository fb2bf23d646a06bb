//! A vault's access policies.
use super::*;

pub(crate) struct PolicyRow {
    pub(crate) object_id: String,
    pub(crate) principal: String,
    pub(crate) secrets: String,
    pub(crate) keys: String,
    pub(crate) certificates: String,
}

pub(crate) struct PrincipalOption {
    pub(crate) object_id: String,
    pub(crate) name: String,
    pub(crate) kind: &'static str,
}

pub(crate) struct PermBox {
    pub(crate) name: &'static str,
    pub(crate) checked: bool,
}

/// One area's permission checkboxes, as the Azure portal shows them.
pub(crate) struct PermArea {
    pub(crate) title: &'static str,
    pub(crate) field: &'static str,
    pub(crate) boxes: Vec<PermBox>,
}

#[derive(Template)]
#[template(path = "portal/access.html")]
pub(crate) struct AccessPage {
    pub(crate) user: Option<UserView>,
    pub(crate) flash: Option<String>,
    pub(crate) vault: VaultView,
    pub(crate) tab: &'static str,
    pub(crate) csrf: String,
    pub(crate) policies: Vec<PolicyRow>,
    pub(crate) principals: Vec<PrincipalOption>,
    pub(crate) editing: Option<String>,
    pub(crate) editing_name: String,
    pub(crate) areas: Vec<PermArea>,
    pub(crate) error: Option<String>,
}

#[derive(serde::Deserialize)]
pub(crate) struct AccessQuery {
    pub(crate) principal: Option<String>,
}

pub(crate) fn boxes(known: &'static [&'static str], given: &[String]) -> Vec<PermBox> {
    known
        .iter()
        .filter(|k| **k != "all")
        .map(|k| PermBox {
            name: k,
            checked: given.iter().any(|g| g.eq_ignore_ascii_case(k) || g.eq_ignore_ascii_case("all")),
        })
        .collect()
}

pub(crate) async fn access_page(
    state: &SharedState,
    p: &Portal,
    vault: &str,
    editing: Option<String>,
    flash: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    use coffer_core::vault::{CERTIFICATE_PERMISSIONS, KEY_PERMISSIONS, SECRET_PERMISSIONS};
    let v = match visible_vault(state, &p.caller, vault).await {
        Ok(v) => v,
        Err(e) => return error_page(p.user(), &e),
    };
    // The vault's access policies are part of the vault resource: the management API's rule
    // (`Microsoft.KeyVault/vaults/read`) applies here too, not mere visibility of the vault.
    let read = coffer_core::permissions::ManagementAction::VaultRead;
    if let Err(e) = crate::authorization::authorize_management(state, &p.caller, read, Some(&v.name)).await {
        crate::audit::note(|d| d.error = Some(e.message.clone()));
        return error_page(p.user(), &e);
    }
    let principals = state.store.list_principals(&p.caller.tenant_id).await.unwrap_or_default();
    let name_of = |oid: &str| {
        principals
            .iter()
            .find(|x| x.object_id.eq_ignore_ascii_case(oid))
            .map(|x| format!("{} ({})", x.name, x.kind.as_str()))
            .unwrap_or_else(|| oid.to_string())
    };
    let policies = v
        .access_policies
        .iter()
        .map(|a| PolicyRow {
            object_id: a.object_id.clone(),
            principal: name_of(&a.object_id),
            secrets: a.permissions.secrets.join(", "),
            keys: a.permissions.keys.join(", "),
            certificates: a.permissions.certificates.join(", "),
        })
        .collect();
    // The picker lists the directory only to those who may read it.
    let options = if p.caller.tenant_admin {
        principals
            .iter()
            .filter(|x| x.enabled || x.kind == PrincipalKind::Group)
            .map(|x| PrincipalOption { object_id: x.object_id.clone(), name: x.name.clone(), kind: x.kind.as_str() })
            .collect()
    } else {
        Vec::new()
    };
    let current = editing
        .as_deref()
        .and_then(|oid| v.access_policies.iter().find(|a| a.object_id.eq_ignore_ascii_case(oid)))
        .map(|a| a.permissions.clone())
        .unwrap_or_default();
    let areas = vec![
        PermArea { title: "Secret permissions", field: "secret", boxes: boxes(SECRET_PERMISSIONS, &current.secrets) },
        PermArea { title: "Key permissions", field: "key", boxes: boxes(KEY_PERMISSIONS, &current.keys) },
        PermArea {
            title: "Certificate permissions",
            field: "certificate",
            boxes: boxes(CERTIFICATE_PERMISSIONS, &current.certificates),
        },
    ];
    let page = AccessPage {
        user: p.user(),
        flash,
        vault: vault_view(state, &v),
        tab: "access",
        csrf: p.session.csrf.clone(),
        policies,
        principals: options,
        editing_name: editing.as_deref().map(name_of).unwrap_or_default(),
        editing,
        areas,
        error,
    };
    html(status, &page)
}

pub(crate) async fn access(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(vault): Path<String>,
    Query(q): Query<AccessQuery>,
) -> Response {
    match signed_in(&state, &headers).await {
        Ok(p) => access_page(&state, &p, &vault, q.principal, None, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

/// Sets a principal's secret, key and certificate permissions (none: the policy goes), through
/// the vault service, as `PUT …/accessPolicies/replace|remove` does.
pub(crate) async fn set_access(
    State(state): State<SharedState>,
    Path(vault): Path<String>,
    Posted { portal: p, form }: Posted,
) -> Response {
    let v = match visible_vault(&state, &p.caller, &vault).await {
        Ok(v) => v,
        Err(e) => return error_page(p.user(), &e),
    };
    let Some(object_id) = field(&form, "object_id").map(str::trim).filter(|o| !o.is_empty()).map(str::to_string) else {
        return access_page(
            &state,
            &p,
            &vault,
            None,
            None,
            Some("Choose a principal.".into()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let picked =
        |name: &str| -> Vec<&str> { form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect() };
    let (secrets, keys, certificates) = (picked("secret"), picked("key"), picked("certificate"));
    let policy = AccessPolicy {
        tenant_id: v.tenant_id.clone(),
        object_id: object_id.clone(),
        application_id: None,
        permissions: PolicyPermissions {
            secrets: secrets.iter().map(|x| x.to_string()).collect(),
            keys: keys.iter().map(|x| x.to_string()).collect(),
            certificates: certificates.iter().map(|x| x.to_string()).collect(),
            storage: Vec::new(),
        },
    };
    let edit = if secrets.is_empty() && keys.is_empty() && certificates.is_empty() {
        PolicyEdit::Remove
    } else {
        PolicyEdit::Replace
    };
    let place = (v.subscription_id.as_str(), v.resource_group.as_str(), v.name.as_str());
    let result = match crate::vaults::granted(
        &state,
        &p.caller,
        place,
        coffer_core::permissions::ManagementAction::AccessPolicyWrite,
    )
    .await
    {
        Ok(vault) => crate::vaults::edit_access_policies(&state, &p.caller, vault, edit, vec![policy]).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            let flash = Some("The access policy was saved.".into());
            access_page(&state, &p, &vault, Some(object_id), flash, None, StatusCode::OK).await
        }
        Err(e) => access_page(&state, &p, &vault, Some(object_id), None, Some(e.message.clone()), status_of(&e)).await,
    }
}
