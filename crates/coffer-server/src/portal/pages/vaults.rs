//! The vault list, creating a vault, a vault's overview.
use super::*;

#[derive(Debug, Clone)]
pub(crate) struct VaultView {
    pub(crate) name: String,
    pub(crate) uri: String,
    pub(crate) model: &'static str,
    pub(crate) rbac: bool,
    pub(crate) retention_days: u32,
    pub(crate) purge_protection: bool,
    pub(crate) network: String,
    pub(crate) resource_id: String,
}

pub(crate) fn vault_view(state: &SharedState, v: &Vault) -> VaultView {
    let network = match &v.network_acls {
        None => "All networks".to_string(),
        Some(acls) => serde_json::to_value(acls)
            .ok()
            .map(|a| {
                let ips: Vec<String> = a["ipRules"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|x| x["value"].as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                format!(
                    "Default {}; allowed: {}",
                    a["defaultAction"].as_str().unwrap_or("Allow"),
                    if ips.is_empty() { "none".into() } else { ips.join(", ") }
                )
            })
            .unwrap_or_default(),
    };
    VaultView {
        name: v.name.clone(),
        uri: state.names.vault_uri(&v.name),
        model: if v.enable_rbac_authorization { "Azure role-based access control" } else { "Vault access policy" },
        rbac: v.enable_rbac_authorization,
        retention_days: v.retention.retention_days,
        purge_protection: v.retention.purge_protection,
        network,
        resource_id: v.resource_id(),
    }
}

/// A vault the caller may see: tenant administrators and whoever manages it see it, and so does
/// anyone with an access policy in it or a role assigned in it (to them or their groups).
pub(crate) async fn may_see(state: &SharedState, caller: &Caller, v: &Vault) -> bool {
    use coffer_core::permissions::ManagementAction;
    if caller.tenant_admin
        || crate::authorization::authorize_management(state, caller, ManagementAction::VaultRead, Some(&v.name))
            .await
            .is_ok()
    {
        return true;
    }
    let me = |id: &str| {
        id.eq_ignore_ascii_case(&caller.object_id) || caller.groups.iter().any(|g| g.eq_ignore_ascii_case(id))
    };
    if !v.enable_rbac_authorization && v.access_policies.iter().any(|p| me(&p.object_id)) {
        return true;
    }
    let scope = format!("/vaults/{}", v.name);
    state
        .store
        .list_role_assignments(&caller.tenant_id, Some(&scope), None)
        .await
        .map(|list| list.iter().any(|a| me(&a.principal_id)))
        .unwrap_or(false)
}

pub(crate) async fn visible_vault(state: &SharedState, caller: &Caller, name: &str) -> Result<Vault, Error> {
    let not_found = || {
        Error::not_found(
            "VaultNotFound",
            format!("No vault named '{}' is shared with you.", coffer_core::names::printable(name)),
        )
    };
    let rec = state
        .store
        .get_vault_by_name(name)
        .await?
        .filter(|r| !r.vault.is_deleted() && r.vault.tenant_id == caller.tenant_id);
    let Some(rec) = rec else { return Err(not_found()) };
    if !may_see(state, caller, &rec.vault).await {
        return Err(not_found());
    }
    Ok(rec.vault)
}

/// The vault as the data plane sees a request from this browser (its firewall applies too).
pub(crate) async fn context(
    state: &SharedState,
    caller: &Caller,
    name: &str,
    addr: Option<std::net::IpAddr>,
) -> Result<VaultContext, Error> {
    let origin = crate::objects::Origin::Network(addr);
    VaultContext::open(state, name, caller.clone(), origin, crate::api_version::NEWEST.into()).await
}

#[derive(Template)]
#[template(path = "portal/vaults.html")]
pub(crate) struct VaultsPage {
    pub(crate) user: Option<UserView>,
    pub(crate) flash: Option<String>,
    pub(crate) vaults: Vec<VaultView>,
    pub(crate) admin: bool,
    pub(crate) csrf: String,
    pub(crate) error: Option<String>,
}

pub(crate) async fn vaults(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Ok(p) => vaults_page(&state, &p, None, StatusCode::OK).await,
        Err(r) => r,
    }
}

pub(crate) async fn vaults_page(
    state: &SharedState,
    p: &Portal,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let all = match state.store.list_vaults(&p.caller.tenant_id).await {
        Ok(v) => v,
        Err(e) => return error_page(p.user(), &e),
    };
    let mut vaults = Vec::new();
    for v in all.iter().filter(|v| !v.is_deleted()) {
        if may_see(state, &p.caller, v).await {
            vaults.push(vault_view(state, v));
        }
    }
    let page = VaultsPage {
        user: p.user(),
        flash: None,
        vaults,
        admin: p.caller.tenant_admin,
        csrf: p.session.csrf.clone(),
        error,
    };
    html(status, &page)
}

/// Creates a vault through the vault service, as ARM's PUT does; under access policies its creator
/// gets every permission (as `az keyvault create` gives).
pub(crate) async fn create_vault(State(state): State<SharedState>, Posted { portal: p, form }: Posted) -> Response {
    let name = field(&form, "name").unwrap_or("").trim().to_string();
    let rbac = field(&form, "model") == Some("rbac");
    let retention = field(&form, "retention").and_then(|r| r.trim().parse::<u32>().ok()).unwrap_or(90);
    let tenant = match state.store.get_tenant(&p.caller.tenant_id).await {
        Ok(Some(t)) => t,
        Ok(None) => return error_page(p.user(), &Error::not_found("TenantNotFound", "Your tenant no longer exists.")),
        Err(e) => return error_page(p.user(), &e),
    };
    let access_policies = (!rbac).then(|| {
        vec![AccessPolicy {
            tenant_id: tenant.id.clone(),
            object_id: p.caller.object_id.clone(),
            application_id: None,
            permissions: PolicyPermissions {
                keys: vec!["all".into()],
                secrets: vec!["all".into()],
                certificates: vec!["all".into()],
                storage: vec!["all".into()],
            },
        }]
    });
    let settings = VaultSettings {
        location: Some("local".into()),
        tags: None,
        properties: VaultProperties {
            tenant_id: Some(tenant.id.clone()),
            access_policies,
            soft_delete_retention_in_days: Some(retention),
            enable_purge_protection: (field(&form, "purge_protection") == Some("true")).then_some(true),
            enable_rbac_authorization: Some(rbac),
            ..Default::default()
        },
    };
    let sub = tenant.default_subscription_id.clone();
    match crate::vaults::put_vault(&state, &p.caller, &sub, "default", &name, settings).await {
        Ok(v) => Redirect::to(&format!("/portal/vaults/{}", seg(&v.name))).into_response(),
        Err(e) => vaults_page(&state, &p, Some(e.message.clone()), status_of(&e)).await,
    }
}

#[derive(Template)]
#[template(path = "portal/vault.html")]
pub(crate) struct OverviewPage {
    pub(crate) user: Option<UserView>,
    pub(crate) flash: Option<String>,
    pub(crate) vault: VaultView,
    pub(crate) tab: &'static str,
}

pub(crate) async fn overview(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let p = match signed_in(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match visible_vault(&state, &p.caller, &name).await {
        Ok(v) => html(
            StatusCode::OK,
            &OverviewPage { user: p.user(), flash: None, vault: vault_view(&state, &v), tab: "overview" },
        ),
        Err(e) => error_page(p.user(), &e),
    }
}
