//! `coffer role …` (as `az role`) and `coffer access explain|who-can`.
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{CliError, CliResult, Client, Settings};

#[derive(clap::Subcommand)]
pub enum RoleCommand {
    /// Role assignments: a role, given to a principal or group, at a scope.
    #[command(subcommand)]
    Assignment(AssignmentCommand),
    /// Role definitions: built-in and custom roles.
    #[command(subcommand)]
    Definition(DefinitionCommand),
}

#[derive(clap::Subcommand)]
pub enum AssignmentCommand {
    /// Assign a role. Scopes: `/`, `/resourceGroups/G`, `/vaults/V`, `/vaults/V/secrets|keys|certificates/N`.
    Create {
        /// Role name (e.g. "Key Vault Secrets User") or GUID.
        #[arg(long)]
        role: String,
        /// Object id (or client id) of a user, application, managed identity or group.
        #[arg(long)]
        assignee: String,
        #[arg(long)]
        scope: String,
    },
    /// List assignments (at a scope and below it, and/or of one assignee).
    List {
        #[arg(long)]
        scope: Option<String>,
        #[arg(long)]
        assignee: Option<String>,
    },
    Delete {
        #[arg(long)]
        id: String,
    },
}

#[derive(clap::Subcommand)]
pub enum DefinitionCommand {
    /// Create a custom role from JSON (inline or @file): roleName, description, actions,
    /// notActions, dataActions, notDataActions (wildcards allowed).
    Create {
        #[arg(long)]
        role_definition: String,
    },
    List {
        /// Only custom roles.
        #[arg(long)]
        custom_role_only: bool,
    },
    Delete {
        /// Name or GUID.
        #[arg(long)]
        name: String,
    },
}

#[derive(clap::Args)]
pub struct Question {
    #[arg(long)]
    vault: String,
    #[arg(long, conflicts_with_all = ["key", "certificate"])]
    secret: Option<String>,
    #[arg(long, conflicts_with = "certificate")]
    key: Option<String>,
    #[arg(long)]
    certificate: Option<String>,
    /// A data action: getSecret, secrets/get, or Microsoft.KeyVault/vaults/secrets/getSecret/action.
    #[arg(long)]
    action: String,
}

#[derive(clap::Subcommand)]
pub enum AccessCommand {
    /// Why can (or can't) a principal perform an action: the decision and the grant behind it.
    Explain {
        #[arg(long)]
        assignee: String,
        #[command(flatten)]
        question: Question,
    },
    /// Every principal that can perform an action, expanded through groups.
    WhoCan {
        #[command(flatten)]
        question: Question,
    },
}

fn question_json(q: &Question) -> Value {
    json!({"vault": q.vault, "secret": q.secret, "key": q.key, "certificate": q.certificate, "action": q.action})
}

pub async fn role(cmd: RoleCommand, profile: &str) -> CliResult<Option<Value>> {
    let mut c = Client::new(Settings::resolve(profile)?)?;
    let value = match cmd {
        RoleCommand::Assignment(AssignmentCommand::Create { role, assignee, scope }) => {
            let body = json!({"role": role, "assignee": assignee, "scope": scope});
            c.management(Method::POST, "/authorization/roleAssignments", Some(&body)).await?
        }
        RoleCommand::Assignment(AssignmentCommand::List { scope, assignee }) => {
            let mut q: Vec<(String, String)> = Vec::new();
            if let Some(s) = scope {
                q.push(("scope".into(), s));
            }
            if let Some(a) = assignee {
                q.push(("assignee".into(), a));
            }
            let qs = serde_urlencoded::to_string(&q).map_err(|e| CliError::Usage(e.to_string()))?;
            let path = if qs.is_empty() {
                "/authorization/roleAssignments".to_string()
            } else {
                format!("/authorization/roleAssignments?{qs}")
            };
            c.management(Method::GET, &path, None).await?["value"].clone()
        }
        RoleCommand::Assignment(AssignmentCommand::Delete { id }) => {
            c.management(Method::DELETE, &format!("/authorization/roleAssignments/{id}"), None).await?;
            return Ok(None);
        }
        RoleCommand::Definition(DefinitionCommand::Create { role_definition }) => {
            let text = match role_definition.strip_prefix('@') {
                Some(path) => {
                    std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("cannot read {path}: {e}")))?
                }
                None => role_definition,
            };
            let body: Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Usage(format!("--role-definition is not JSON: {e}")))?;
            c.management(Method::POST, "/authorization/roleDefinitions", Some(&body)).await?
        }
        RoleCommand::Definition(DefinitionCommand::List { custom_role_only }) => {
            let all = c.management(Method::GET, "/authorization/roleDefinitions", None).await?;
            let roles = all["value"].as_array().cloned().unwrap_or_default();
            Value::Array(roles.into_iter().filter(|r| !custom_role_only || r["roleType"] == "CustomRole").collect())
        }
        RoleCommand::Definition(DefinitionCommand::Delete { name }) => {
            c.management(Method::DELETE, &format!("/authorization/roleDefinitions/{name}"), None).await?;
            return Ok(None);
        }
    };
    Ok(Some(value))
}

pub async fn access(cmd: AccessCommand, profile: &str) -> CliResult<Option<Value>> {
    let mut c = Client::new(Settings::resolve(profile)?)?;
    let value = match cmd {
        AccessCommand::Explain { assignee, question } => {
            let mut body = question_json(&question);
            body["assignee"] = assignee.into();
            c.management(Method::POST, "/authorization/explain", Some(&body)).await?
        }
        AccessCommand::WhoCan { question } => {
            c.management(Method::POST, "/authorization/who-can", Some(&question_json(&question))).await?["principals"]
                .clone()
        }
    };
    Ok(Some(value))
}
