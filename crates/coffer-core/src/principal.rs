//! Who is calling: the authenticated principal, resolved from a token or a session.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    User,
    App,
    ManagedIdentity,
    Group,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::App => "app",
            Self::ManagedIdentity => "managed-identity",
            Self::Group => "group",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "app" => Some(Self::App),
            "managed-identity" => Some(Self::ManagedIdentity),
            "group" => Some(Self::Group),
            _ => None,
        }
    }
}

/// A directory object: user, application, managed identity or group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub object_id: String,
    pub tenant_id: String,
    pub kind: PrincipalKind,
    pub name: String,
    /// Applications and managed identities sign in with a client id.
    pub client_id: Option<String>,
    pub enabled: bool,
    /// Tenant administrators manage vaults and grants (not data: see `permissions`).
    pub tenant_admin: bool,
    pub created: i64,
    /// What Microsoft Graph shows as `displayName` where it differs from `name`: a user's
    /// name is the sign-in name (Graph's `userPrincipalName`); unset means `name`.
    pub display_name: Option<String>,
    /// A group's `mailNickname` in Microsoft Graph (kept as given; Coffer sends no mail).
    pub mail_nickname: Option<String>,
}

impl Principal {
    /// The name people read: Graph's `displayName`.
    pub fn display_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

/// The caller of one request, as the authorization layer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub object_id: String,
    pub tenant_id: String,
    pub client_id: Option<String>,
    pub name: String,
    pub kind: PrincipalKind,
    /// Object ids of the groups the caller belongs to (transitively).
    pub groups: Vec<String>,
    pub tenant_admin: bool,
    /// For a user, the client id of the application the user signed in through (the token's
    /// `appid`), if any. A compound-identity access policy (`objectId` with `applicationId`)
    /// applies only when it matches — the user alone does not get that policy's rights.
    pub signed_in_through: Option<String>,
}

impl Caller {
    /// How Azure names a caller in 403 messages.
    pub fn describe(&self) -> String {
        match &self.client_id {
            Some(app) => format!("appid={app};oid={};iss=https://localhost/{}/", self.object_id, self.tenant_id),
            None => format!("oid={};iss=https://localhost/{}/", self.object_id, self.tenant_id),
        }
    }
}
