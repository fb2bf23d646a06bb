//! JSON shapes shared by every kind of object: attributes, paging, and Azure's date handling.
use coffer_core::lifecycle::RetentionPolicy;
use coffer_core::object::{Attributes, AttributesPatch};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::objects::{Page, VaultContext};

/// `attributes` with the read-only `recoveryLevel`/`recoverableDays` of the vault.
pub fn attributes(a: &Attributes, retention: &RetentionPolicy) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("enabled".into(), a.enabled.into());
    if let Some(nbf) = a.not_before {
        m.insert("nbf".into(), nbf.into());
    }
    if let Some(exp) = a.expires {
        m.insert("exp".into(), exp.into());
    }
    m.insert("created".into(), a.created.into());
    m.insert("updated".into(), a.updated.into());
    m.insert("recoveryLevel".into(), retention.recovery_level().into());
    m.insert("recoverableDays".into(), retention.retention_days.into());
    Value::Object(m)
}

/// The client-settable attributes in a request body. `null` clears a date.
#[derive(Debug, Default, Deserialize)]
pub struct AttributesIn {
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    pub nbf: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub exp: Option<Option<i64>>,
}

impl AttributesIn {
    pub fn patch(&self) -> AttributesPatch {
        AttributesPatch { enabled: self.enabled, not_before: self.nbf, expires: self.exp }
    }
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `{"value":[…],"nextLink":…}` with an absolute nextLink on the client's authority.
pub fn page(ctx: &VaultContext, path: &str, page: &Page, max_results: usize, items: Vec<Value>) -> Value {
    let next = page.next.as_ref().map(|token| {
        format!("{}/{path}?api-version={}&$skiptoken={token}&maxresults={max_results}", ctx.base_url(), ctx.api_version)
    });
    json!({ "value": items, "nextLink": next })
}
