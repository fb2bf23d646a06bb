//! `coffer group …`: groups and their members.
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{CliResult, Client, Settings};

#[derive(clap::Subcommand)]
pub enum GroupCommand {
    /// Create a group; prints its object id.
    Create {
        #[arg(long)]
        name: String,
    },
    List,
    Show {
        #[arg(long)]
        id: String,
    },
    Delete {
        #[arg(long)]
        id: String,
    },
    #[command(subcommand)]
    Member(MemberCommand),
}

#[derive(clap::Subcommand)]
pub enum MemberCommand {
    Add {
        #[arg(long)]
        group: String,
        #[arg(long)]
        member: String,
    },
    Remove {
        #[arg(long)]
        group: String,
        #[arg(long)]
        member: String,
    },
    List {
        #[arg(long)]
        group: String,
    },
}

pub async fn run(cmd: GroupCommand, profile: &str) -> CliResult<Option<Value>> {
    let mut c = Client::new(Settings::resolve(profile)?)?;
    let value = match cmd {
        GroupCommand::Create { name } => {
            c.management(Method::POST, "/directory/principals", Some(&json!({"type": "group", "name": name}))).await?
        }
        GroupCommand::List => {
            let all = c.management(Method::GET, "/directory/principals", None).await?;
            let groups: Vec<Value> =
                all["value"].as_array().into_iter().flatten().filter(|p| p["type"] == "group").cloned().collect();
            Value::Array(groups)
        }
        GroupCommand::Show { id } => c.management(Method::GET, &format!("/directory/principals/{id}"), None).await?,
        GroupCommand::Delete { id } => {
            c.management(Method::DELETE, &format!("/directory/principals/{id}"), None).await?;
            return Ok(None);
        }
        GroupCommand::Member(MemberCommand::Add { group, member }) => {
            c.management(Method::PUT, &format!("/directory/groups/{group}/members/{member}"), None).await?
        }
        GroupCommand::Member(MemberCommand::Remove { group, member }) => {
            c.management(Method::DELETE, &format!("/directory/groups/{group}/members/{member}"), None).await?
        }
        GroupCommand::Member(MemberCommand::List { group }) => {
            c.management(Method::GET, &format!("/directory/groups/{group}/members"), None).await?["value"].clone()
        }
    };
    Ok(Some(value))
}
