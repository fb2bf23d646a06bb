//! Argument parsers shared by several commands.
use serde_json::Value;

use crate::client::{CliError, CliResult};

/// The object a data-plane command acts on: `--vault-name V --name N`.
#[derive(clap::Args)]
pub struct Target {
    #[arg(long)]
    pub vault_name: String,
    #[arg(long, short = 'n')]
    pub name: String,
}

/// `k=v` pairs, as `az --tags` takes them.
pub fn tags(pairs: &[String]) -> CliResult<Value> {
    let mut m = serde_json::Map::new();
    for p in pairs {
        let (k, v) = p.split_once('=').unwrap_or((p.as_str(), ""));
        if k.is_empty() {
            return Err(CliError::Usage(format!("invalid tag '{p}': expected KEY=VALUE")));
        }
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(Value::Object(m))
}

/// A UTC date-time (`2027-01-31T12:00:00Z`), a date (`2027-01-31`), or Unix seconds.
pub fn date(s: &str) -> CliResult<i64> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let with_zone = if s.len() == 10 { format!("{s}T00:00:00Z") } else { format!("{}Z", s.trim_end_matches('Z')) };
    time::OffsetDateTime::parse(&with_zone, &Rfc3339).map(|t| t.unix_timestamp()).map_err(|_| {
        CliError::Usage(format!("invalid date '{s}': use 2027-01-31T12:00:00Z, 2027-01-31 or Unix seconds"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(date("2027-01-31T00:00:00Z").unwrap(), date("2027-01-31").unwrap());
        assert_eq!(date("2027-01-31T12:00:00").unwrap(), date("2027-01-31T12:00:00Z").unwrap());
        assert!(date("tomorrow").is_err());
    }

    #[test]
    fn tag_pairs() {
        assert_eq!(tags(&["a=1".into(), "b=".into()]).unwrap(), serde_json::json!({"a": "1", "b": ""}));
        assert!(tags(&["=x".into()]).is_err());
    }
}
