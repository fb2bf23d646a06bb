//! Directory objects in Microsoft Graph's JSON: `user`, `application`, `servicePrincipal` and
//! `group`. A Coffer application is both Graph's application and its service principal (one
//! principal, one object id); a managed identity is a service principal of type
//! `ManagedIdentity`.
use coffer_core::clock::iso8601;
use coffer_core::principal::{Principal, PrincipalKind};
use coffer_store::{Credential, credential_kind};
use serde_json::{Value, json};

/// How an object is shown: Graph's resource types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    User,
    Application,
    ServicePrincipal,
    Group,
}

impl View {
    /// Graph's name of the type (`types` in `getByIds`, the end of `@odata.type`).
    pub fn type_name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Application => "application",
            Self::ServicePrincipal => "servicePrincipal",
            Self::Group => "group",
        }
    }

    /// The views a principal has, the usual one first.
    pub fn of(p: &Principal) -> &'static [View] {
        match p.kind {
            PrincipalKind::User => &[View::User],
            PrincipalKind::App => &[View::ServicePrincipal, View::Application],
            PrincipalKind::ManagedIdentity => &[View::ServicePrincipal],
            PrincipalKind::Group => &[View::Group],
        }
    }

    /// Whether this view shows credentials (they are read only for these).
    pub fn shows_credentials(self) -> bool {
        matches!(self, Self::Application | Self::ServicePrincipal)
    }
}

/// `p` as `view`; `credentials` are the principal's own (applications and service principals).
pub fn object(p: &Principal, view: View, credentials: &[Credential]) -> Value {
    let created = iso8601(p.created);
    let mut v = match view {
        View::User => json!({
            "id": p.object_id,
            "displayName": p.display_name(),
            "userPrincipalName": p.name,
            "mailNickname": p.mail_nickname.clone()
                .unwrap_or_else(|| p.name.split('@').next().unwrap_or(&p.name).to_string()),
            "accountEnabled": p.enabled,
            "mail": null,
            "givenName": null,
            "surname": null,
            "jobTitle": null,
            "officeLocation": null,
            "mobilePhone": null,
            "preferredLanguage": null,
            "businessPhones": [],
            "createdDateTime": created,
        }),
        View::Application => json!({
            "id": p.object_id,
            "appId": p.client_id,
            "displayName": p.name,
            "createdDateTime": created,
            "signInAudience": "AzureADMyOrg",
            "publisherDomain": null,
            "identifierUris": [],
            "tags": [],
            "appRoles": [],
            "requiredResourceAccess": [],
            "api": {"oauth2PermissionScopes": [], "preAuthorizedApplications": []},
            "web": {"redirectUris": [], "homePageUrl": null, "logoutUrl": null,
                    "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false}},
            "publicClient": {"redirectUris": []},
            "spa": {"redirectUris": []},
            "passwordCredentials": passwords(credentials),
            "keyCredentials": certificates(credentials),
        }),
        View::ServicePrincipal => json!({
            "id": p.object_id,
            "appId": p.client_id,
            "displayName": p.name,
            "appDisplayName": p.name,
            "accountEnabled": p.enabled,
            "appOwnerOrganizationId": p.tenant_id,
            "servicePrincipalNames": p.client_id.iter().collect::<Vec<_>>(),
            "servicePrincipalType": if p.kind == PrincipalKind::ManagedIdentity { "ManagedIdentity" } else { "Application" },
            "alternativeNames": [],
            "tags": [],
            "appRoles": [],
            "oauth2PermissionScopes": [],
            "replyUrls": [],
            "passwordCredentials": passwords(credentials),
            "keyCredentials": certificates(credentials),
        }),
        View::Group => json!({
            "id": p.object_id,
            "displayName": p.name,
            "mailNickname": p.mail_nickname,
            "mailEnabled": false,
            "securityEnabled": true,
            "groupTypes": [],
            "mail": null,
            "description": null,
            "createdDateTime": created,
        }),
    };
    v["@odata.type"] = format!("#microsoft.graph.{}", view.type_name()).into();
    v
}

/// A client secret as Graph's `passwordCredential`; `shown` is the one response that carries
/// the secret itself (`addPassword`), with the display name the client gave.
pub fn password_credential(c: &Credential, shown: Option<(&str, Option<&str>)>) -> Value {
    let (secret, display_name) = match shown {
        Some((secret, name)) => (Some(secret), name),
        None => (None, None),
    };
    json!({
        "keyId": c.id,
        "displayName": display_name,
        "startDateTime": iso8601(c.created),
        "endDateTime": c.expires.map(iso8601),
        "hint": secret.map(|s| s.chars().take(3).collect::<String>()),
        "secretText": secret,
        "customKeyIdentifier": null,
    })
}

fn passwords(credentials: &[Credential]) -> Vec<Value> {
    credentials.iter().filter(|c| c.kind == credential_kind::SECRET).map(|c| password_credential(c, None)).collect()
}

fn certificates(credentials: &[Credential]) -> Vec<Value> {
    credentials
        .iter()
        .filter(|c| c.kind == credential_kind::CERTIFICATE)
        .map(|c| {
            json!({
                "keyId": c.id,
                "displayName": null,
                "type": "AsymmetricX509Cert",
                "usage": "Verify",
                "key": null,
                "customKeyIdentifier": null,
                "startDateTime": iso8601(c.created),
                "endDateTime": c.expires.map(iso8601),
            })
        })
        .collect()
}
