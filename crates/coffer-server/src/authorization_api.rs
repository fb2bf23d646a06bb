//! `/authorization/...` (management token): role definitions, role assignments, `explain`
//! and `who-can` in JSON, over the authorization service.
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::Error;
use coffer_core::permissions::{Area, DataAction, Decision};
use coffer_core::rbac::RoleDefinition;
use coffer_core::vault::Vault;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authentication::ArmCaller;
use crate::authorization::{self, NamedAssignment, NewRole, Question};
use crate::http::{ApiResult, Path, Query, json as json_response, parse_body};
use crate::routes::{Methods, Routes, read, write};
use crate::state::SharedState;

pub fn routes() -> Routes<SharedState> {
    let (get, role_change) = (read("RoleAssignmentGet"), write("RoleDefinitionChange"));
    let assignment_change = write("RoleAssignmentChange");
    Routes::new()
        .route(
            "/authorization/roleDefinitions",
            Methods::get(get, list_definitions).and_post(role_change, create_definition),
        )
        .route("/authorization/roleDefinitions/{id}", Methods::delete(role_change, delete_definition))
        .route(
            "/authorization/roleAssignments",
            Methods::get(get, list_assignments).and_post(assignment_change, create_assignment),
        )
        .route("/authorization/roleAssignments/{id}", Methods::delete(assignment_change, delete_assignment))
        .route("/authorization/explain", Methods::post(read("AccessExplain"), explain))
        .route("/authorization/who-can", Methods::post(read("AccessExplain"), who_can))
}

fn role_json(r: &RoleDefinition) -> Value {
    json!({
        "id": r.id, "roleName": r.name, "description": r.description, "roleType": if r.built_in { "BuiltInRole" } else { "CustomRole" },
        "actions": r.actions, "notActions": r.not_actions, "dataActions": r.data_actions, "notDataActions": r.not_data_actions,
    })
}

async fn list_definitions(State(state): State<SharedState>, ArmCaller(caller): ArmCaller) -> ApiResult<Response> {
    let items: Vec<Value> = authorization::roles(&state, &caller).await?.iter().map(role_json).collect();
    Ok(json_response(StatusCode::OK, json!({ "value": items })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DefinitionIn {
    role_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    not_actions: Vec<String>,
    #[serde(default)]
    data_actions: Vec<String>,
    #[serde(default)]
    not_data_actions: Vec<String>,
}

async fn create_definition(
    State(state): State<SharedState>,
    ArmCaller(caller): ArmCaller,
    body: Bytes,
) -> ApiResult<Response> {
    let input: DefinitionIn = parse_body(&body)?;
    let new = NewRole {
        name: input.role_name,
        description: input.description,
        actions: input.actions,
        not_actions: input.not_actions,
        data_actions: input.data_actions,
        not_data_actions: input.not_data_actions,
    };
    let role = authorization::create_role(&state, &caller, new).await?;
    Ok(json_response(StatusCode::CREATED, role_json(&role)))
}

async fn delete_definition(
    State(state): State<SharedState>,
    ArmCaller(caller): ArmCaller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    authorization::delete_role(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// An assignment with names, for people.
fn assignment_json(n: &NamedAssignment) -> Value {
    let a = &n.assignment;
    json!({
        "id": a.id,
        "scope": a.scope,
        "roleDefinitionId": a.role_definition_id,
        "roleDefinitionName": n.role_name,
        "principalId": a.principal_id,
        "principalName": n.principal.as_ref().map(|p| p.name.clone()),
        "principalType": n.principal.as_ref().map(|p| p.kind.as_str()),
        "createdOn": a.created,
        "createdBy": a.created_by,
    })
}

#[derive(Deserialize)]
struct AssignmentIn {
    role: String,
    assignee: String,
    scope: String,
}

async fn create_assignment(
    State(state): State<SharedState>,
    ArmCaller(caller): ArmCaller,
    body: Bytes,
) -> ApiResult<Response> {
    let input: AssignmentIn = parse_body(&body)?;
    let a = authorization::assign(&state, &caller, &input.role, &input.assignee, &input.scope).await?;
    Ok(json_response(StatusCode::CREATED, assignment_json(&a)))
}

#[derive(Deserialize)]
struct AssignmentsQuery {
    scope: Option<String>,
    assignee: Option<String>,
}

async fn list_assignments(
    State(state): State<SharedState>,
    ArmCaller(caller): ArmCaller,
    Query(q): Query<AssignmentsQuery>,
) -> ApiResult<Response> {
    let found = authorization::assignments(&state, &caller, q.scope.as_deref(), q.assignee.as_deref()).await?;
    let items: Vec<Value> = found.iter().map(assignment_json).collect();
    Ok(json_response(StatusCode::OK, json!({ "value": items })))
}

async fn delete_assignment(
    State(state): State<SharedState>,
    ArmCaller(caller): ArmCaller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    authorization::unassign(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct QuestionIn {
    assignee: Option<String>,
    vault: String,
    secret: Option<String>,
    key: Option<String>,
    certificate: Option<String>,
    action: String,
}

impl QuestionIn {
    fn question(&self) -> coffer_core::Result<Question> {
        let object = match (&self.secret, &self.key, &self.certificate) {
            (Some(n), None, None) => Some((Area::Secrets, n.clone())),
            (None, Some(n), None) => Some((Area::Keys, n.clone())),
            (None, None, Some(n)) => Some((Area::Certificates, n.clone())),
            (None, None, None) => None,
            _ => return Err(Error::bad_parameter("Name at most one of secret, key and certificate.")),
        };
        Ok(Question { vault: self.vault.clone(), action: self.action.clone(), object })
    }
}

fn decision_json(d: &Decision, vault: &Vault, action: DataAction) -> Value {
    json!({
        "decision": if d.allowed { "allow" } else { "deny" },
        "reasons": d.reasons,
        "model": vault.permission_model(),
        "action": action.full_rbac_action(),
        "vault": vault.name,
    })
}

async fn explain(State(state): State<SharedState>, ArmCaller(caller): ArmCaller, body: Bytes) -> ApiResult<Response> {
    let q: QuestionIn = parse_body(&body)?;
    let question = q.question()?;
    let assignee = q.assignee.as_deref().ok_or_else(|| Error::bad_parameter("The property 'assignee' is required."))?;
    let answer = authorization::explain(&state, &caller, &question, assignee).await?;
    let (principal, groups, d) = &answer.answer;
    let mut out = decision_json(d, &answer.vault, answer.action);
    out["assignee"] = json!({"object_id": principal.object_id, "name": principal.name, "type": principal.kind.as_str(), "groups": groups});
    Ok(json_response(StatusCode::OK, out))
}

async fn who_can(State(state): State<SharedState>, ArmCaller(caller): ArmCaller, body: Bytes) -> ApiResult<Response> {
    let q: QuestionIn = parse_body(&body)?;
    let answer = authorization::who_can(&state, &caller, &q.question()?).await?;
    let out: Vec<Value> = answer
        .answer
        .iter()
        .map(|(p, d)| json!({"object_id": p.object_id, "name": p.name, "type": p.kind.as_str(), "reasons": d.reasons}))
        .collect();
    let vault = &answer.vault;
    Ok(json_response(
        StatusCode::OK,
        json!({"vault": vault.name, "action": answer.action.full_rbac_action(), "model": vault.permission_model(), "principals": out}),
    ))
}
