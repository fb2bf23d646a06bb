//! `coffer audit verify`: the store's chain and the file sink's, each checked whole.
use std::io::BufRead;

use coffer_store::AuditQuery;
use serde_json::{Value, json};

use super::chain::{self, Bounds, Entry, Report, SignedPoint};
use super::file_sink::FileSink;
use super::record::columns_match;
use super::writer::{AuditLog, anchor};
use crate::state::{AppState, SharedState};

const PAGE: usize = 10_000;

fn signed(audit: &AuditLog, seq: i64, hash: &str, signature: &str, place: String) -> SignedPoint {
    let valid = audit.open_checkpoint(signature).is_some_and(|c| c.seq == seq && c.hash == hash);
    SignedPoint { seq, hash: hash.to_string(), valid, place }
}

/// The store: every record up to the head known when the check began, the checkpoints and the
/// retention anchor; then anything past the writer's head is an insertion.
pub async fn verify_store(state: &AppState) -> coffer_core::Result<Report> {
    let audit = &state.audit;
    let head = audit.heads().store;
    let mut entries = Vec::new();
    let mut after = None;
    loop {
        let rows = state
            .store
            .query_audit(&AuditQuery {
                after_seq: after,
                before_seq: Some(head.0 + 1),
                limit: PAGE,
                ..Default::default()
            })
            .await?;
        let n = rows.len();
        for r in rows {
            after = Some(r.seq);
            entries.push(Entry {
                place: format!("row {}", r.seq),
                stored_seq: Some(r.seq),
                columns_match: columns_match(&r),
                text: r.body,
            });
        }
        if n < PAGE {
            break;
        }
    }
    let checkpoints = state.store.list_audit_checkpoints().await?;
    // A checkpoint past the head known at the start but not past the writer's head now is of
    // records written during the check; one past the writer's head means records were cut off.
    let now_head = audit.heads().store.0;
    let checkpoints: Vec<SignedPoint> = checkpoints
        .into_iter()
        .filter(|c| c.seq <= head.0 || c.seq > now_head)
        .map(|c| signed(audit, c.seq, &c.hash, &c.signature, format!("checkpoint {}", c.seq)))
        .collect();
    let anchor = anchor(state.store.as_ref())
        .await?
        .map(|a| signed(audit, a.seq, &a.hash, &a.signature, "retention anchor".into()));
    let bounds = Bounds { anchor, partial_start: false, head: enabled_head(audit, head) };
    let mut report = chain::verify(&entries, &checkpoints, &bounds);
    // Rows past the head the writer has now were not written by it.
    let now_head = audit.heads().store.0.max(now_head);
    let extra =
        state.store.query_audit(&AuditQuery { after_seq: Some(now_head), limit: 100, ..Default::default() }).await?;
    for r in extra {
        report.findings.push(chain::Finding {
            seq: Some(r.seq),
            problem: chain::Problem::Inserted,
            message: format!("record {} is past the last record Coffer wrote ({now_head}): it was inserted", r.seq),
        });
        report.ok = false;
    }
    Ok(report)
}

fn enabled_head(audit: &AuditLog, head: (i64, String)) -> Option<(i64, String)> {
    audit.enabled().then_some(head)
}

/// The file sink: its files oldest first; a checkpoint line at the very start (written at
/// rotation) anchors the chain, others pin it.
pub fn verify_files(audit: &AuditLog) -> Option<Report> {
    let config = audit.config.file.clone()?;
    let head = audit.heads().file;
    let mut entries = Vec::new();
    let mut checkpoints = Vec::new();
    let mut anchor = None;
    let mut first_line = true;
    for path in FileSink::files_of(&config) {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let Ok(f) = std::fs::File::open(&path) else { continue };
        let mut reader = std::io::BufReader::new(f);
        let mut buf = String::new();
        let mut i = 0;
        loop {
            buf.clear();
            match reader.read_line(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // A line without its newline is being written right now: the next check has it.
            if !buf.ends_with('\n') {
                break;
            }
            i += 1;
            let line = buf.trim_end_matches('\n').to_string();
            if line.trim().is_empty() {
                continue;
            }
            let place = format!("{name} line {i}");
            let parsed: Option<Value> = serde_json::from_str(&line).ok();
            let seq = parsed.as_ref().and_then(|v| v.get("seq")).and_then(Value::as_i64);
            if parsed.as_ref().and_then(|v| v.get("category")).and_then(Value::as_str) == Some("AuditCheckpoint") {
                let v = parsed.unwrap_or(Value::Null);
                let p = signed(
                    audit,
                    seq.unwrap_or(-1),
                    v.get("hash").and_then(Value::as_str).unwrap_or(""),
                    v.get("signature").and_then(Value::as_str).unwrap_or(""),
                    place,
                );
                if first_line && entries.is_empty() {
                    anchor = Some(p);
                } else {
                    checkpoints.push(p);
                }
                first_line = false;
                continue;
            }
            first_line = false;
            // Lines past the head are being written right now; the next check covers them.
            if let (Some(s), Some((h, _))) = (seq, &head)
                && s > *h
            {
                continue;
            }
            entries.push(Entry { place, stored_seq: None, text: line, columns_match: true });
        }
    }
    let partial_start = anchor.is_none();
    let head = head.filter(|_| audit.enabled()).filter(|(s, _)| *s > 0);
    Some(chain::verify(&entries, &checkpoints, &Bounds { anchor, partial_start, head }))
}

/// Both chains, as `GET /audit/verify` returns them.
pub async fn verify_all(state: &SharedState) -> coffer_core::Result<Value> {
    let store = verify_store(state).await?;
    let audit_state = state.clone();
    let file = tokio::task::spawn_blocking(move || verify_files(&audit_state.audit))
        .await
        .map_err(|e| coffer_core::Error::internal(format!("verify: {e}")))?;
    let ok = store.ok && file.as_ref().is_none_or(|f| f.ok);
    Ok(json!({"ok": ok, "store": store, "file": file}))
}
