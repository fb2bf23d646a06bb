//! Contacts and issuers: vault-wide documents.
use crate::certificates::{Contact, Issuer, IssuerChange, IssuerCredentials, OrganizationDetails};

use super::*;

fn contacts_json(ctx: &VaultContext, contacts: &[Contact]) -> Value {
    json!({"id": format!("{}/certificates/contacts", ctx.base_url()), "contacts": contacts})
}

#[derive(Deserialize)]
struct ContactsIn {
    contacts: Option<Vec<Value>>,
}

pub(super) async fn contacts(state: &SharedState, req: &DataRequest) -> Handled {
    let ctx = &req.ctx;
    let list = match req.method {
        Method::GET => certificates::contacts(state, ctx).await?,
        Method::PUT => {
            let body: ContactsIn = parse_body(&req.body)?;
            let given =
                body.contacts.ok_or_else(|| Error::bad_parameter("The property 'contacts' (a list) is required."))?;
            let list = given
                .into_iter()
                .map(|c| serde_json::from_value(c).map_err(|_| Error::bad_parameter("Every contact needs an email.")))
                .collect::<Result<Vec<Contact>>>()?;
            certificates::set_contacts(state, ctx, list).await?
        }
        Method::DELETE => certificates::delete_contacts(state, ctx).await?,
        ref m => return Err(method_not_allowed(m)),
    };
    ok(contacts_json(ctx, &list))
}

/// IssuerBundle; the account's password is write-only.
fn issuer_json(ctx: &VaultContext, name: &str, issuer: &Issuer) -> Value {
    let mut v = json!({
        "id": format!("{}/certificates/issuers/{name}", ctx.base_url()),
        "provider": issuer.provider,
        "attributes": issuer.attributes,
    });
    if let Some(c) = &issuer.credentials {
        v["credentials"] = json!({"account_id": c.account_id});
    }
    if let Some(o) = &issuer.org_details {
        v["org_details"] = json!(o);
    }
    v
}

pub(super) async fn list_issuers(state: &SharedState, req: &DataRequest) -> Handled {
    let all = certificates::issuers(state, &req.ctx).await?;
    let items: Vec<Value> = all
        .iter()
        .map(|(n, i)| json!({"id": format!("{}/certificates/issuers/{n}", req.ctx.base_url()), "provider": i.provider}))
        .collect();
    ok(json!({"value": items, "nextLink": null}))
}

#[derive(Deserialize)]
struct IssuerAttributesIn {
    enabled: Option<bool>,
}

#[derive(Deserialize)]
struct IssuerIn {
    provider: Option<String>,
    credentials: Option<IssuerCredentials>,
    org_details: Option<OrganizationDetails>,
    attributes: Option<IssuerAttributesIn>,
}

pub(super) async fn issuer_op(state: &SharedState, req: &DataRequest, name: &str) -> Handled {
    let ctx = &req.ctx;
    let issuer = match req.method {
        Method::GET => certificates::issuer(state, ctx, name).await?,
        Method::PUT | Method::PATCH => {
            coffer_core::names::validate_object_name(name)?;
            let body: IssuerIn = parse_body(&req.body)?;
            let change = IssuerChange {
                provider: body.provider,
                credentials: body.credentials,
                org_details: body.org_details,
                enabled: body.attributes.and_then(|a| a.enabled),
            };
            certificates::set_issuer(state, ctx, name, change, req.method == Method::PUT).await?
        }
        Method::DELETE => certificates::delete_issuer(state, ctx, name).await?,
        ref m => return Err(method_not_allowed(m)),
    };
    ok(issuer_json(ctx, name, &issuer))
}
