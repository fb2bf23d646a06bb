//! What one audit record says, and how it is drafted while a request runs.
//!
//! The shape follows Azure Key Vault's `AuditEvent` diagnostic log (`time`, `resourceId`,
//! `operationName`, `resultType`, `resultSignature`, `durationMs`, `callerIpAddress`,
//! `correlationId`, `identity.claim`, `properties`), so pipelines that parse Azure's logs parse
//! these. Nothing here ever holds a request or response body, a header other than the user agent
//! and the client request id, or a query string: secret values, key material, passwords, tokens
//! and client secrets have no way in.
use coffer_core::permissions::Decision;
use coffer_core::principal::Caller;
use coffer_store::AuditRow;
use serde_json::{Map, Value, json};

/// The longest user agent or error message kept (they are caller-controlled).
const MAX_TEXT: usize = 512;

/// `started`, `success`, `denied`, `failed` or `event`: the `result` index column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Started,
    Success,
    Denied,
    Failed,
    Event,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Failed => "failed",
            Self::Event => "event",
        }
    }
    fn result_type(self) -> &'static str {
        match self {
            Self::Started => "Started",
            Self::Success => "Success",
            Self::Denied => "Denied",
            Self::Failed => "Failure",
            Self::Event => "Event",
        }
    }
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=399 => Self::Success,
            401 | 403 => Self::Denied,
            _ => Self::Failed,
        }
    }
}

/// Who called, as the record names them (never a credential's secret: its id only).
#[derive(Debug, Clone, Default)]
pub struct Who {
    pub object_id: String,
    pub tenant_id: String,
    pub name: String,
    pub kind: String,
    pub client_id: Option<String>,
    /// The credential the token came from (its id) or the sign-in method.
    pub via: Option<String>,
}

impl Who {
    pub fn of(caller: &Caller, via: Option<String>) -> Self {
        Self {
            object_id: caller.object_id.clone(),
            tenant_id: caller.tenant_id.clone(),
            name: caller.name.clone(),
            kind: caller.kind.as_str().to_string(),
            client_id: caller.client_id.clone(),
            via,
        }
    }
}

/// The record of one request, filled in as the request goes through the layers.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub request_id: String,
    pub correlation_id: Option<String>,
    pub time_ms: i64,
    pub caller_ip: Option<String>,
    pub method: String,
    pub path: String,
    pub user_agent: Option<String>,
    pub api_version: Option<String>,
    pub operation: Option<&'static str>,
    pub changes_state: bool,
    /// Whether the request's record is written with its change (see `scope::witness_record`).
    pub witness: Witness,
    /// Set once the request reaches authentication: only those are recorded.
    pub audited: bool,
    pub who: Option<Who>,
    /// A sign-in's claimed identity when it failed (user name or client id; never a secret).
    pub claimed: Option<String>,
    pub vault: Option<String>,
    pub resource_id: Option<String>,
    pub object: Option<RecordedObject>,
    pub decision: Option<(bool, String, Vec<String>)>,
    pub error: Option<String>,
}

/// A request whose one change can carry its own record, committed with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Witness {
    /// The change (if any) is preceded by a "started" record.
    #[default]
    None,
    /// The operation's one change will be written with its success record.
    Ready,
    /// The success record was taken for the change; the change was refused or failed, so the
    /// request is recorded as usual when it ends.
    Taken,
    /// The change was committed with its success record, at `seq`, for a response of `status`.
    Committed { seq: i64, status: u16 },
}

#[derive(Debug, Clone)]
pub struct RecordedObject {
    pub collection: String,
    pub name: String,
    pub version: Option<String>,
    pub id: String,
}

impl Draft {
    pub fn note_decision(&mut self, model: &str, d: &Decision) {
        self.decision = Some((d.allowed, model.to_string(), d.reasons.clone()));
    }

    /// The record as it stands, with the response's status and duration.
    pub fn to_record(&self, outcome: Outcome, status: Option<u16>, duration_ms: Option<u64>) -> Map<String, Value> {
        let mut properties = Map::new();
        properties.insert("httpMethod".into(), json!(self.method));
        properties.insert("requestUri".into(), json!(self.path));
        if let Some(s) = status {
            properties.insert("httpStatusCode".into(), json!(s));
        }
        if let Some(v) = &self.vault {
            properties.insert("vaultName".into(), json!(v));
        }
        if let Some(o) = &self.object {
            properties.insert("id".into(), json!(o.id));
            properties.insert("objectType".into(), json!(o.collection));
            properties.insert("objectName".into(), json!(o.name));
            if let Some(v) = &o.version {
                properties.insert("version".into(), json!(v));
            }
        }
        if let Some(ua) = &self.user_agent {
            properties.insert("clientInfo".into(), json!(clip(ua)));
        }
        if let Some((allowed, model, reasons)) = &self.decision {
            properties.insert(
                "authorization".into(),
                json!({"decision": if *allowed { "allow" } else { "deny" }, "model": model, "reasons": reasons}),
            );
        }
        if let Some(c) = &self.claimed {
            properties.insert("claimedIdentity".into(), json!(clip(c)));
        }
        let identity = self.who.as_ref().map(|w| {
            let mut claim = json!({
                "oid": w.object_id, "tid": w.tenant_id, "name": w.name, "kind": w.kind,
            });
            if let Some(c) = &w.client_id {
                claim["appid"] = json!(c);
            }
            if let Some(v) = &w.via {
                claim["via"] = json!(v);
            }
            json!({ "claim": claim })
        });
        let mut m = Map::new();
        m.insert("time".into(), json!(time_string(self.time_ms)));
        m.insert("category".into(), json!(if outcome == Outcome::Event { "Event" } else { "AuditEvent" }));
        m.insert("operationName".into(), json!(self.operation.unwrap_or("Unknown")));
        if let Some(v) = &self.api_version {
            m.insert("operationVersion".into(), json!(v));
        }
        m.insert("resultType".into(), json!(outcome.result_type()));
        if let Some(s) = status {
            let reason = http::StatusCode::from_u16(s).ok().and_then(|c| c.canonical_reason()).unwrap_or("");
            m.insert("resultSignature".into(), json!(reason));
        }
        m.insert("resultDescription".into(), json!(self.error.as_deref().map(clip).unwrap_or_default()));
        if let Some(d) = duration_ms {
            m.insert("durationMs".into(), json!(d));
        }
        m.insert("callerIpAddress".into(), json!(self.caller_ip.clone().unwrap_or_default()));
        m.insert("correlationId".into(), json!(self.correlation_id.clone().unwrap_or_default()));
        m.insert("requestId".into(), json!(self.request_id));
        m.insert("resourceId".into(), json!(self.resource_id.clone().unwrap_or_default()));
        m.insert("identity".into(), identity.unwrap_or(Value::Null));
        m.insert("properties".into(), Value::Object(properties));
        m.insert("timeMs".into(), json!(self.time_ms));
        m.insert("result".into(), json!(outcome.as_str()));
        m
    }
}

fn clip(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_string();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `2026-11-29T05:04:38.123Z`.
pub fn time_string(time_ms: i64) -> String {
    let base = coffer_core::clock::iso8601(time_ms.div_euclid(1000));
    format!("{}.{:03}Z", base.trim_end_matches('Z'), time_ms.rem_euclid(1000))
}

/// The index columns of a sealed record: the one derivation used to write rows and to check
/// them (a column that disagrees with its record was edited).
pub fn row_of(seq: i64, record: &Map<String, Value>) -> AuditRow {
    row_with_text(seq, record, serde_json::to_string(record).unwrap_or_default())
}

/// `row_of`, with the record's text already written (`chain::seal_to_text`).
pub fn row_with_text(seq: i64, record: &Map<String, Value>, body: String) -> AuditRow {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let props = record.get("properties");
    let object = props.and_then(|p| p.get("objectName")).and_then(Value::as_str).map(|n| n.to_ascii_lowercase());
    AuditRow {
        seq,
        time_ms: record.get("timeMs").and_then(Value::as_i64).unwrap_or(0),
        vault: s(props.and_then(|p| p.get("vaultName"))).map(|v| v.to_ascii_lowercase()),
        caller: s(record.get("identity").and_then(|i| i.get("claim")).and_then(|c| c.get("oid"))),
        operation: s(record.get("operationName")).unwrap_or_default(),
        result: s(record.get("result")).unwrap_or_default(),
        object,
        body,
    }
}

/// True if a stored row's columns are those its record gives.
pub fn columns_match(row: &AuditRow) -> bool {
    match serde_json::from_str::<Value>(&row.body) {
        Ok(Value::Object(m)) => {
            let expected = row_of(row.seq, &m);
            expected.time_ms == row.time_ms
                && expected.vault == row.vault
                && expected.caller == row.caller
                && expected.operation == row.operation
                && expected.result == row.result
                && expected.object == row.object
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_azure_fields_and_no_bodies() {
        let d = Draft {
            request_id: "r1".into(),
            time_ms: 1_795_920_336_123,
            method: "GET".into(),
            path: "/secrets/db".into(),
            operation: Some("SecretGet"),
            vault: Some("HR".into()),
            who: Some(Who { object_id: "o1".into(), name: "ann".into(), kind: "user".into(), ..Default::default() }),
            object: Some(RecordedObject {
                collection: "secrets".into(),
                name: "DB".into(),
                version: None,
                id: "https://hr/secrets/DB".into(),
            }),
            ..Default::default()
        };
        let r = d.to_record(Outcome::Success, Some(200), Some(3));
        assert_eq!(r["time"], "2026-11-29T02:45:36.123Z");
        assert_eq!(r["operationName"], "SecretGet");
        assert_eq!(r["resultSignature"], "OK");
        assert_eq!(r["identity"]["claim"]["oid"], "o1");
        let row = row_of(7, &r);
        assert_eq!(
            (row.vault.as_deref(), row.object.as_deref(), row.result.as_str()),
            (Some("hr"), Some("db"), "success")
        );
        assert!(columns_match(&row));
        let edited = AuditRow { caller: Some("someone-else".into()), ..row };
        assert!(!columns_match(&edited));
        assert_eq!(Outcome::of_status(403), Outcome::Denied);
        assert_eq!(clip(&"é".repeat(400)).chars().count(), 257);
    }
}
