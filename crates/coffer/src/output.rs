//! Output formats, as `az` offers them: JSON (default), a table, or tab-separated values.
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Table,
    Tsv,
}

pub fn render(value: &Value, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(value).unwrap_or_default(),
        Format::Table | Format::Tsv => {
            let rows: Vec<Vec<(String, String)>> = match value {
                Value::Array(items) => items.iter().map(flatten).collect(),
                Value::Null => Vec::new(),
                other => vec![flatten(other)],
            };
            // `name` and `id` first, as people scan for them; the rest in key order.
            let mut columns: Vec<String> = Vec::new();
            for row in &rows {
                for (k, _) in row {
                    if !columns.contains(k) {
                        columns.push(k.clone());
                    }
                }
            }
            columns.sort_by_key(|c| match c.as_str() {
                "name" => 0,
                "id" => 1,
                _ => 2,
            });
            let cell = |row: &Vec<(String, String)>, c: &str| {
                row.iter().find(|(k, _)| k == c).map(|(_, v)| v.clone()).unwrap_or_default()
            };
            if format == Format::Tsv {
                return rows
                    .iter()
                    .map(|r| columns.iter().map(|c| cell(r, c)).collect::<Vec<_>>().join("\t"))
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            let widths: Vec<usize> = columns
                .iter()
                .map(|c| rows.iter().map(|r| cell(r, c).chars().count()).chain([c.chars().count()]).max().unwrap_or(0))
                .collect();
            let line = |cells: Vec<String>| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            let mut out = vec![line(columns.clone()), line(widths.iter().map(|w| "-".repeat(*w)).collect())];
            out.extend(rows.iter().map(|r| line(columns.iter().map(|c| cell(r, c)).collect())));
            out.join("\n")
        }
    }
}

/// Scalars of an object, one level of nesting flattened as `parent.child`.
fn flatten(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                match val {
                    Value::Object(inner) => {
                        for (ik, iv) in inner {
                            if let Some(s) = scalar(iv) {
                                out.push((format!("{k}.{ik}"), s));
                            }
                        }
                    }
                    other => {
                        if let Some(s) = scalar(other) {
                            out.push((k.clone(), s));
                        }
                    }
                }
            }
        }
        other => out.push(("value".into(), scalar(other).unwrap_or_else(|| other.to_string()))),
    }
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_and_tsv() {
        let v = json!([{"id": "a", "attributes": {"enabled": true}}, {"id": "bb", "attributes": {"enabled": false}}]);
        let t = render(&v, Format::Table);
        assert!(t.starts_with("id  attributes.enabled"));
        assert!(t.contains("bb  false"));
        assert_eq!(render(&v, Format::Tsv), "a\ttrue\nbb\tfalse");
        let named = json!({"id": "x", "name": "n", "a": 1});
        assert_eq!(render(&named, Format::Tsv), "n\tx\t1");
    }
}
