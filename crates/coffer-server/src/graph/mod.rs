//! A subset of Microsoft Graph (`/v1.0/...` on the control host, management-audience tokens)
//! over the directory service, so `az ad …`, `az role assignment create --assignee NAME` and
//! `az keyvault create`'s self-permissions manage and find Coffer's directory — the same
//! objects `/directory/...`, the portal and `coffer principal|group` manage.
//!
//! Reading: a tenant administrator reads the whole directory; anyone else only itself (what
//! tools look up about their own identity). Every change needs a tenant administrator (the
//! directory service checks). Properties Coffer does not keep are refused when they carry a
//! value, never silently dropped. Errors keep Azure's shape with Graph's codes.
mod filter;
mod render;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use coffer_core::principal::{Caller, Principal, PrincipalKind};
use coffer_core::{Error, ErrorKind, Result};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::authentication::GraphCaller;
use crate::directory::{self, IssuedCredential, NewCredential, NewPrincipal, PrincipalChange};
use crate::http::{ApiError, ApiResult, Path, json as json_response, parse_body, query_get, query_pairs};
use crate::routes::{Methods, Routes, read, write};
use crate::state::{AppState, SharedState};
use filter::Filter;
use render::View;

/// A page of a list holds this many objects unless `$top` says otherwise (Graph's default).
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 999;

/// A Graph collection of directory objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collection {
    Users,
    Applications,
    ServicePrincipals,
    Groups,
}

impl Collection {
    fn path(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Applications => "applications",
            Self::ServicePrincipals => "servicePrincipals",
            Self::Groups => "groups",
        }
    }

    fn view(self) -> View {
        match self {
            Self::Users => View::User,
            Self::Applications => View::Application,
            Self::ServicePrincipals => View::ServicePrincipal,
            Self::Groups => View::Group,
        }
    }

    fn holds(self, p: &Principal) -> bool {
        View::of(p).contains(&self.view())
    }

    /// The properties `$filter` may name here (what the Azure CLI and the SDKs filter on).
    fn filterable(self) -> &'static [&'static str] {
        match self {
            Self::Users => &["id", "displayName", "userPrincipalName", "mailNickname", "accountEnabled", "mail"],
            Self::Applications => &["id", "appId", "displayName", "identifierUris"],
            Self::ServicePrincipals => {
                &["id", "appId", "displayName", "servicePrincipalNames", "servicePrincipalType", "accountEnabled"]
            }
            Self::Groups => &["id", "displayName", "mailNickname", "securityEnabled", "mailEnabled"],
        }
    }
}

pub fn routes() -> Routes<SharedState> {
    use Collection::*;
    let (get, change) = (read("DirectoryGet"), write("DirectoryChange"));
    let mut routes = Routes::new()
        .route("/v1.0/me", Methods::get(get, me))
        .route("/v1.0/groups/{id}/members", Methods::get(get, list_members))
        .route("/v1.0/groups/{id}/members/$ref", Methods::post(change, add_member))
        .route("/v1.0/groups/{id}/members/{member}/$ref", Methods::delete(change, remove_member))
        .route("/v1.0/directoryObjects/getByIds", Methods::post(get, get_by_ids))
        .route("/v1.0/directoryObjects/{id}", Methods::get(get, show_directory_object))
        .route("/v1.0/directoryObjects/{id}/checkMemberGroups", Methods::post(get, check_member_groups));
    for c in [Users, Applications, ServicePrincipals, Groups] {
        let one = format!("/v1.0/{}/{{id}}", c.path());
        routes = routes
            .route(
                &format!("/v1.0/{}", c.path()),
                Methods::get(get, move |s: State<SharedState>, g: GraphCaller, uri: Uri| list(s, g, uri, c))
                    .and_post(change, move |s: State<SharedState>, g: GraphCaller, b: Bytes| create(s, g, b, c)),
            )
            .route(
                &one,
                Methods::get(get, move |s: State<SharedState>, g: GraphCaller, id: Path<String>| show(s, g, id, c))
                    .and_patch(change, move |s: State<SharedState>, g: GraphCaller, id: Path<String>, b: Bytes| {
                        update(s, g, id, b, c)
                    })
                    .and_delete(change, move |s: State<SharedState>, g: GraphCaller, id: Path<String>| {
                        delete(s, g, id, c)
                    }),
            )
            .route(&format!("{one}/getMemberGroups"), Methods::post(get, member_groups));
    }
    for c in [Applications, ServicePrincipals] {
        let one = format!("/v1.0/{}/{{id}}", c.path());
        routes = routes
            .route(
                &format!("{one}/addPassword"),
                Methods::post(change, move |s: State<SharedState>, g: GraphCaller, id: Path<String>, b: Bytes| {
                    add_password(s, g, id, b, c)
                }),
            )
            .route(
                &format!("{one}/removePassword"),
                Methods::post(change, move |s: State<SharedState>, g: GraphCaller, id: Path<String>, b: Bytes| {
                    remove_password(s, g, id, b, c)
                }),
            );
    }
    routes
}

/// Runs a handler's body and gives its error Graph's code (the status and message stay).
async fn graph(body: impl Future<Output = Result<Response>>) -> ApiResult<Response> {
    body.await.map_err(|mut e| {
        e.code = match e.kind {
            ErrorKind::NotFound => "Request_ResourceNotFound",
            ErrorKind::Forbidden => "Authorization_RequestDenied",
            // Graph answers a duplicate with 400.
            ErrorKind::BadRequest | ErrorKind::Conflict if e.code != "Request_UnsupportedQuery" => "Request_BadRequest",
            _ => return ApiError(e),
        }
        .into();
        if e.kind == ErrorKind::Conflict {
            e.kind = ErrorKind::BadRequest;
        }
        e.inner_code = None;
        ApiError(e)
    })
}

fn bad(message: impl Into<String>) -> Error {
    Error::bad_parameter(message)
}

fn not_found(id: &str) -> Error {
    Error::not_found(
        "Request_ResourceNotFound",
        format!(
            "Resource '{}' does not exist or one of its queried reference-property objects are not present.",
            coffer_core::names::printable(id)
        ),
    )
}

fn context(state: &AppState, what: &str) -> String {
    format!("{}/v1.0/$metadata#{what}", state.names.authority())
}

/// `p` as `view`, with its credentials where the view shows them.
async fn render(state: &AppState, caller: &Caller, p: &Principal, view: View) -> Result<Value> {
    let credentials =
        if view.shows_credentials() { directory::readable_credentials(state, caller, p).await? } else { Vec::new() };
    Ok(render::object(p, view, &credentials))
}

/// A principal of collection `c` by id (object id, an application's appId, a user's sign-in name).
async fn find(state: &AppState, caller: &Caller, id: &str, c: Collection) -> Result<Principal> {
    let found = if c == Collection::Users && !coffer_core::names::is_guid(id) {
        directory::readable_user(state, caller, id).await
    } else {
        directory::readable_principal(state, caller, id).await
    };
    match found {
        Ok(p) if c.holds(&p) => Ok(p),
        Ok(_) => Err(not_found(id)),
        Err(e) if e.kind == ErrorKind::NotFound => Err(not_found(id)),
        Err(e) => Err(e),
    }
}

// ---- Lists ----

/// The query options of a list: `$filter`, `$top`, `$skiptoken`; the rest of OData's are
/// refused rather than ignored.
struct ListQuery {
    filter: Option<Filter>,
    top: usize,
    skip: usize,
    /// The query without `$skiptoken`, for the next page's link.
    rest: Vec<(String, String)>,
}

impl ListQuery {
    fn parse(uri: &Uri, properties: &[&str]) -> Result<Self> {
        let pairs = query_pairs(uri.query())?;
        for (k, _) in &pairs {
            let k = k.to_ascii_lowercase();
            if k.starts_with('$') && !matches!(k.as_str(), "$filter" | "$top" | "$skiptoken") {
                return Err(Error::new(
                    ErrorKind::BadRequest,
                    "Request_UnsupportedQuery",
                    format!("Coffer's directory does not support the query option '{k}'."),
                ));
            }
        }
        let filter = query_get(&pairs, "$filter").map(|f| Filter::parse(f, properties)).transpose()?;
        let top = match query_get(&pairs, "$top") {
            None => DEFAULT_PAGE,
            Some(t) => t
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| bad(format!("$top must be a number from 1 to {MAX_PAGE}.")))?,
        };
        let skip = match query_get(&pairs, "$skiptoken") {
            None => 0,
            Some(s) => s.parse::<usize>().map_err(|_| bad("The $skiptoken is not one this server gave."))?,
        };
        let rest = pairs.into_iter().filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken")).collect();
        Ok(Self { filter, top, skip, rest })
    }

    /// One page of `objects`, with `@odata.nextLink` when there are more.
    fn page(self, state: &AppState, path: &str, objects: Vec<Value>) -> Response {
        let total = objects.len();
        let items: Vec<Value> = objects.into_iter().skip(self.skip).take(self.top).collect();
        let mut out = json!({"@odata.context": context(state, path), "value": items});
        let next = self.skip + self.top;
        if next < total {
            let mut query = self.rest;
            query.push(("$skiptoken".into(), next.to_string()));
            let query = serde_urlencoded::to_string(&query).unwrap_or_default();
            out["@odata.nextLink"] = format!("{}/v1.0/{path}?{query}", state.names.authority()).into();
        }
        json_response(StatusCode::OK, out)
    }
}

async fn list(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    uri: Uri,
    c: Collection,
) -> ApiResult<Response> {
    graph(async {
        let query = ListQuery::parse(&uri, c.filterable())?;
        let mut objects = Vec::new();
        for p in directory::readable_principals(&state, &caller).await?.iter().filter(|p| c.holds(p)) {
            let v = render(&state, &caller, p, c.view()).await?;
            if query.filter.as_ref().is_none_or(|f| f.matches(&v)) {
                objects.push(v);
            }
        }
        Ok(query.page(&state, c.path(), objects))
    })
    .await
}

// ---- One object ----

async fn me(State(state): State<SharedState>, GraphCaller(caller): GraphCaller) -> ApiResult<Response> {
    graph(async {
        if caller.kind != PrincipalKind::User {
            return Err(bad("/me request is only valid with delegated authentication flow."));
        }
        let p = directory::readable_principal(&state, &caller, &caller.object_id).await?;
        Ok(json_response(StatusCode::OK, render(&state, &caller, &p, View::User).await?))
    })
    .await
}

async fn show(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    Path(id): Path<String>,
    c: Collection,
) -> ApiResult<Response> {
    graph(async {
        let p = find(&state, &caller, &id, c).await?;
        Ok(json_response(StatusCode::OK, render(&state, &caller, &p, c.view()).await?))
    })
    .await
}

async fn show_directory_object(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    graph(async {
        let p = directory::readable_principal(&state, &caller, &id).await.map_err(|_| not_found(&id))?;
        Ok(json_response(StatusCode::OK, render(&state, &caller, &p, View::of(&p)[0]).await?))
    })
    .await
}

#[derive(Deserialize)]
struct ByIdsIn {
    ids: Vec<String>,
    #[serde(default)]
    types: Vec<String>,
}

/// `directoryObjects/getByIds`: the objects among `ids` the caller may read, each as the
/// first of `types` it has (ids that are not found are left out, as Graph does).
async fn get_by_ids(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    body: Bytes,
) -> ApiResult<Response> {
    graph(async {
        let input: ByIdsIn = parse_body(&body)?;
        if input.ids.len() > 1000 {
            return Err(bad("getByIds takes up to 1000 ids."));
        }
        let mut out = Vec::new();
        for id in &input.ids {
            let Ok(p) = directory::readable_principal(&state, &caller, id).await else { continue };
            let view = View::of(&p)
                .iter()
                .copied()
                .find(|v| input.types.is_empty() || input.types.iter().any(|t| t.eq_ignore_ascii_case(v.type_name())));
            if let Some(view) = view {
                out.push(render(&state, &caller, &p, view).await?);
            }
        }
        Ok(json_response(StatusCode::OK, json!({"@odata.context": context(&state, "directoryObjects"), "value": out})))
    })
    .await
}

// ---- Changes ----

/// Rejects properties Coffer does not keep when they carry a value (null, false, "", [] and
/// objects of such are no value): a client must not believe something was stored that was not.
fn refuse_unkept(other: &Map<String, Value>) -> Result<()> {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null | Value::Bool(false) => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.values().all(empty),
            Value::Number(_) | Value::Bool(true) => false,
        }
    }
    let unkept: Vec<&str> =
        other.iter().filter(|(k, v)| !k.starts_with('@') && !empty(v)).map(|(k, _)| k.as_str()).collect();
    if unkept.is_empty() {
        Ok(())
    } else {
        Err(bad(format!("Coffer's directory does not keep these properties: {}.", unkept.join(", "))))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PasswordProfile {
    password: Option<String>,
    #[serde(default)]
    force_change_password_next_sign_in: bool,
    #[serde(default)]
    force_change_password_next_sign_in_with_mfa: bool,
}

impl PasswordProfile {
    fn password(self) -> Result<Option<Zeroizing<String>>> {
        if self.force_change_password_next_sign_in || self.force_change_password_next_sign_in_with_mfa {
            return Err(bad(
                "Coffer cannot make a user change the password at the next sign-in: set the password the user keeps \
                 (forceChangePasswordNextSignIn: false).",
            ));
        }
        Ok(self.password.map(Zeroizing::new))
    }
}

/// The writable properties of any directory object (each collection uses its own).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectIn {
    display_name: Option<String>,
    account_enabled: Option<bool>,
    user_principal_name: Option<String>,
    mail_nickname: Option<String>,
    password_profile: Option<PasswordProfile>,
    security_enabled: Option<bool>,
    app_id: Option<String>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

impl ObjectIn {
    /// What is left over for collection `c` must carry no value.
    fn check_for(&mut self, c: Collection) -> Result<()> {
        let mut put_back = |name: &str, v: Option<Value>| {
            if let Some(v) = v {
                self.other.insert(name.into(), v);
            }
        };
        let users = c == Collection::Users;
        if !users {
            put_back("userPrincipalName", self.user_principal_name.take().map(Value::from));
            put_back("passwordProfile", self.password_profile.take().map(|_| json!({"password": "…"})));
        }
        if !matches!(c, Collection::Users | Collection::Groups) {
            put_back("mailNickname", self.mail_nickname.take().map(Value::from));
        }
        if c == Collection::Groups {
            if self.security_enabled == Some(false) {
                return Err(bad("Coffer's groups are security groups (securityEnabled: true)."));
            }
            put_back("accountEnabled", self.account_enabled.take().map(Value::from));
        } else {
            self.security_enabled = None;
        }
        if c != Collection::ServicePrincipals {
            put_back("appId", self.app_id.take().map(Value::from));
        }
        refuse_unkept(&self.other)
    }
}

async fn create(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    body: Bytes,
    c: Collection,
) -> ApiResult<Response> {
    graph(async {
        let mut input: ObjectIn = parse_body(&body)?;
        input.check_for(c)?;
        let required =
            |v: Option<String>, name: &str| v.ok_or_else(|| bad(format!("The property '{name}' is required.")));
        let new = match c {
            Collection::Users => {
                let password = input.password_profile.map(PasswordProfile::password).transpose()?.flatten();
                NewPrincipal {
                    password: Some(
                        password.ok_or_else(|| bad("The property 'passwordProfile.password' is required."))?,
                    ),
                    display_name: Some(required(input.display_name, "displayName")?),
                    mail_nickname: input.mail_nickname,
                    enabled: input.account_enabled.unwrap_or(true),
                    ..NewPrincipal::new(PrincipalKind::User, required(input.user_principal_name, "userPrincipalName")?)
                }
            }
            Collection::Applications => {
                NewPrincipal::new(PrincipalKind::App, required(input.display_name, "displayName")?)
            }
            Collection::Groups => NewPrincipal {
                mail_nickname: Some(required(input.mail_nickname, "mailNickname")?),
                ..NewPrincipal::new(PrincipalKind::Group, required(input.display_name, "displayName")?)
            },
            Collection::ServicePrincipals => {
                // An application's service principal is the application itself.
                let app =
                    directory::application_by_client_id(&state, &caller, &required(input.app_id, "appId")?).await?;
                let v = render(&state, &caller, &app, View::ServicePrincipal).await?;
                return Ok(json_response(StatusCode::CREATED, v));
            }
        };
        let created = directory::create_principal(&state, &caller, new).await?;
        Ok(json_response(StatusCode::CREATED, render(&state, &caller, &created.principal, c.view()).await?))
    })
    .await
}

async fn update(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    Path(id): Path<String>,
    body: Bytes,
    c: Collection,
) -> ApiResult<Response> {
    graph(async {
        let mut input: ObjectIn = parse_body(&body)?;
        input.check_for(c)?;
        if input.app_id.is_some() || input.user_principal_name.is_some() {
            return Err(bad("An object's appId and userPrincipalName stay as they were made."));
        }
        let p = find(&state, &caller, &id, c).await?;
        let change = PrincipalChange {
            enabled: input.account_enabled,
            password: input.password_profile.map(PasswordProfile::password).transpose()?.flatten(),
            display_name: input.display_name,
            mail_nickname: input.mail_nickname,
        };
        directory::update_principal(&state, &caller, &p.object_id, change).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

/// Deleting an application or its service principal deletes the one Coffer principal both
/// are: the identity can no longer sign in, and its grants end.
async fn delete(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    Path(id): Path<String>,
    c: Collection,
) -> ApiResult<Response> {
    graph(async {
        let p = find(&state, &caller, &id, c).await?;
        directory::delete_principal(&state, &caller, &p.object_id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddPasswordIn {
    password_credential: Option<PasswordCredentialIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PasswordCredentialIn {
    display_name: Option<String>,
    start_date_time: Option<String>,
    end_date_time: Option<String>,
}

/// `2027-01-31T12:00:00Z`, with or without fractions of a second or a `+00:00` offset.
fn graph_time(s: &str, what: &str) -> Result<i64> {
    let s = s.trim().trim_end_matches("+00:00").trim_end_matches('Z');
    let whole = s.split('.').next().unwrap_or(s);
    coffer_core::clock::parse_iso8601(&format!("{whole}Z"))
        .ok_or_else(|| bad(format!("'{what}' must be a UTC date and time such as 2027-01-31T12:00:00Z.")))
}

/// A new client secret, generated here and shown once (`secretText`).
async fn add_password(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    Path(id): Path<String>,
    body: Bytes,
    c: Collection,
) -> ApiResult<Response> {
    graph(async {
        let input: AddPasswordIn =
            if body.is_empty() { AddPasswordIn { password_credential: None } } else { parse_body(&body)? };
        let p = find(&state, &caller, &id, c).await?;
        if p.kind != PrincipalKind::App {
            return Err(bad("Only applications have client secrets."));
        }
        let (display_name, start, end) = match input.password_credential {
            Some(pc) => (pc.display_name, pc.start_date_time, pc.end_date_time),
            None => (None, None, None),
        };
        // A credential works from when it is made; a later start is refused, not ignored.
        const CLOCK_SKEW: i64 = 300;
        if let Some(start) = start
            && graph_time(&start, "startDateTime")? > state.clock.now() + CLOCK_SKEW
        {
            return Err(bad(
                "Coffer's client secrets work from the moment they are made: startDateTime cannot be later.",
            ));
        }
        let expires = end.map(|e| graph_time(&e, "endDateTime")).transpose()?;
        let new = NewCredential { expires, ..NewCredential::default() };
        let IssuedCredential::ClientSecret { credential, secret, .. } =
            directory::add_credential(&state, &caller, &p.object_id, new).await?
        else {
            return Err(Error::internal("an application's new credential is not a client secret"));
        };
        let shown = render::password_credential(&credential, Some((secret.as_str(), display_name.as_deref())));
        Ok(json_response(StatusCode::OK, shown))
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemovePasswordIn {
    key_id: String,
}

async fn remove_password(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    Path(id): Path<String>,
    body: Bytes,
    c: Collection,
) -> ApiResult<Response> {
    graph(async {
        let input: RemovePasswordIn = parse_body(&body)?;
        let p = find(&state, &caller, &id, c).await?;
        directory::remove_credential(&state, &caller, &p.object_id, &input.key_id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

// ---- Groups and membership ----

async fn list_members(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    graph(async {
        let group = find(&state, &caller, &id, Collection::Groups).await?;
        let query = ListQuery::parse(&uri, &["id", "displayName"])?;
        let mut objects = Vec::new();
        for m in directory::members(&state, &caller, &group.object_id).await? {
            let v = render(&state, &caller, &m, View::of(&m)[0]).await?;
            if query.filter.as_ref().is_none_or(|f| f.matches(&v)) {
                objects.push(v);
            }
        }
        Ok(query.page(&state, "directoryObjects", objects))
    })
    .await
}

#[derive(Deserialize)]
struct RefIn {
    #[serde(rename = "@odata.id")]
    odata_id: String,
}

/// `{"@odata.id": "https://graph…/v1.0/directoryObjects/{id}"}`: the id at the end.
fn referenced_id(r: &RefIn) -> Result<&str> {
    let last = r.odata_id.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    // `directoryObjects('id')` is the other way OData writes it.
    let last = last.strip_prefix("directoryObjects('").and_then(|s| s.strip_suffix("')")).unwrap_or(last);
    if coffer_core::names::is_guid(last) {
        Ok(last)
    } else {
        Err(bad("'@odata.id' must name a directory object: https://…/v1.0/directoryObjects/{id}."))
    }
}

async fn add_member(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    graph(async {
        let input: RefIn = parse_body(&body)?;
        let member = referenced_id(&input)?;
        let group = find(&state, &caller, &id, Collection::Groups).await?;
        let (_, _, added) = directory::add_member(&state, &caller, &group.object_id, member).await?;
        if !added {
            return Err(bad(
                "One or more added object references already exist for the following modified properties: 'members'.",
            ));
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

async fn remove_member(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    Path((id, member)): Path<(String, String)>,
) -> ApiResult<Response> {
    graph(async {
        let group = find(&state, &caller, &id, Collection::Groups).await?;
        directory::remove_member(&state, &caller, &group.object_id, &member).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

/// The groups of `id` (an object id, or a user's sign-in name), through other groups too.
async fn groups_of(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<String>> {
    let object_id = if coffer_core::names::is_guid(id) {
        id.to_string()
    } else {
        find(state, caller, id, Collection::Users).await?.object_id
    };
    directory::member_of_transitively(state, caller, &object_id).await.map_err(|_| not_found(id))
}

/// `getMemberGroups`: every group the object is in, through other groups too.
async fn member_groups(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    graph(async {
        let groups = groups_of(&state, &caller, &id).await?;
        Ok(json_response(
            StatusCode::OK,
            json!({"@odata.context": context(&state, "Collection(Edm.String)"), "value": groups}),
        ))
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckGroupsIn {
    group_ids: Vec<String>,
}

/// `checkMemberGroups`: which of the given groups the object is in (through other groups too).
async fn check_member_groups(
    State(state): State<SharedState>,
    GraphCaller(caller): GraphCaller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    graph(async {
        let input: CheckGroupsIn = parse_body(&body)?;
        let groups = groups_of(&state, &caller, &id).await?;
        let hits: Vec<&String> =
            input.group_ids.iter().filter(|g| groups.iter().any(|m| m.eq_ignore_ascii_case(g))).collect();
        Ok(json_response(
            StatusCode::OK,
            json!({"@odata.context": context(&state, "Collection(Edm.String)"), "value": hits}),
        ))
    })
    .await
}
