//! `coffer audit verify`: the store's chain and the file sink's, each checked whole. The one
//! reader of audit files (`read_files`) serves the server's live check and the CLI's offline
//! check of exported files.
use std::io::BufRead;
use std::path::PathBuf;

use coffer_crypto::jwt::VerifyingKey;
use coffer_store::{AuditQuery, Store};
use serde_json::{Value, json};

use super::chain::{self, Bounds, Entry, Report, SignedPoint};
use super::file_sink::FileSink;
use super::record::columns_match;
use super::writer::{AuditLog, CheckpointClaims, anchor};

const PAGE: usize = 10_000;

fn signed(key: &VerifyingKey, seq: i64, hash: &str, signature: &str, place: String) -> SignedPoint {
    let claims: Option<CheckpointClaims> = super::verify_checkpoint(signature, key);
    let valid = claims.is_some_and(|c| c.seq == seq && c.hash == hash);
    SignedPoint { seq, hash: hash.to_string(), valid, place }
}

/// The store: every record up to the head known when the check began, the checkpoints and the
/// retention anchor; then anything past the writer's head is an insertion.
pub async fn verify_store(audit: &AuditLog, store: &dyn Store) -> coffer_core::Result<Report> {
    let key = audit.verifying_key();
    let head = audit.heads().store;
    let mut entries = Vec::new();
    let mut after = None;
    loop {
        let rows = store
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
    let checkpoints = store.list_audit_checkpoints().await?;
    // A checkpoint past the head known at the start but not past the writer's head now is of
    // records written during the check; one past the writer's head means records were cut off.
    let now_head = audit.heads().store.0;
    let checkpoints: Vec<SignedPoint> = checkpoints
        .into_iter()
        .filter(|c| c.seq <= head.0 || c.seq > now_head)
        .map(|c| signed(key, c.seq, &c.hash, &c.signature, format!("checkpoint {}", c.seq)))
        .collect();
    let anchor = anchor(store).await?.map(|a| signed(key, a.seq, &a.hash, &a.signature, "retention anchor".into()));
    let bounds = Bounds { anchor, partial_start: false, head: enabled_head(audit, head) };
    let mut report = chain::verify(&entries, &checkpoints, &bounds);
    // Rows past the head the writer has now were not written by it.
    let now_head = audit.heads().store.0.max(now_head);
    let extra = store.query_audit(&AuditQuery { after_seq: Some(now_head), limit: 100, ..Default::default() }).await?;
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

/// How a file is read: the server's own files while it writes them, or exported copies.
#[derive(Debug, Clone)]
pub enum Reading {
    /// The sink being written: a last line without its newline is being written right now
    /// and records past `head` are not yet acknowledged; the next check covers both. A file
    /// that is gone was rotated away meanwhile.
    Live { head: Option<(i64, String)> },
    /// Exported files: every line counts (a cut-off last line is checked, and found altered)
    /// and a missing file is an error.
    Exported,
}

/// Reads audit files oldest first and checks them as one chain: a checkpoint line at the very
/// start (written at rotation) anchors it, other checkpoint lines pin it.
pub fn read_files(paths: &[PathBuf], reading: &Reading, key: &VerifyingKey) -> std::io::Result<Report> {
    let live_head = match reading {
        Reading::Live { head } => Some(head.clone()),
        Reading::Exported => None,
    };
    let mut entries = Vec::new();
    let mut checkpoints = Vec::new();
    let mut anchor = None;
    let mut first_line = true;
    for path in paths {
        let name = match reading {
            Reading::Live { .. } => path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
            Reading::Exported => path.display().to_string(),
        };
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(_) if live_head.is_some() => continue,
            Err(e) => return Err(std::io::Error::new(e.kind(), format!("{name}: {e}"))),
        };
        let mut reader = std::io::BufReader::new(f);
        let mut buf = String::new();
        let mut i = 0;
        loop {
            buf.clear();
            match reader.read_line(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) if live_head.is_some() => break,
                Err(e) => return Err(std::io::Error::new(e.kind(), format!("{name}: {e}"))),
            }
            if !buf.ends_with('\n') && live_head.is_some() {
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
                    key,
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
            if let (Some(s), Some(Some((h, _)))) = (seq, &live_head)
                && s > *h
            {
                continue;
            }
            entries.push(Entry { place, stored_seq: None, text: line, columns_match: true });
        }
    }
    let partial_start = anchor.is_none();
    let head = live_head.flatten().filter(|(s, _)| *s > 0);
    Ok(chain::verify(&entries, &checkpoints, &Bounds { anchor, partial_start, head }))
}

/// Both chains, as `GET /audit/verify` returns them.
pub async fn verify_all(audit: &AuditLog, store: &dyn Store) -> coffer_core::Result<Value> {
    let store = verify_store(audit, store).await?;
    let file = match audit.config.file.clone() {
        None => None,
        Some(config) => {
            let head = audit.heads().file.filter(|_| audit.enabled());
            let key = audit.verifying_key().clone();
            tokio::task::spawn_blocking(move || {
                read_files(&FileSink::files_of(&config), &Reading::Live { head }, &key).ok()
            })
            .await
            .map_err(|e| coffer_core::Error::internal(format!("verify: {e}")))?
        }
    };
    let ok = store.ok && file.as_ref().is_none_or(|f| f.ok);
    Ok(json!({"ok": ok, "store": store, "file": file}))
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::chain::{GENESIS, Problem, seal};

    fn key() -> VerifyingKey {
        let (signer, _) = coffer_crypto::jwt::TokenSigner::generate("k".into()).expect("signer");
        signer.verifying_key()
    }

    /// Three chained records, the last cut off halfway (no newline): a crash mid-write, or
    /// a copy taken while the server was writing.
    fn file_with_a_cut_off_last_line(dir: &std::path::Path) -> PathBuf {
        let mut prev = GENESIS.to_string();
        let mut text = String::new();
        for seq in 1..=3 {
            let mut m = Map::new();
            m.insert("operationName".into(), Value::from("SecretGet"));
            prev = seal(&mut m, seq, &prev);
            let line = Value::Object(m).to_string();
            if seq == 3 {
                text.push_str(&line[..line.len() / 2]);
            } else {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let path = dir.join("audit.log");
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn the_live_reading_leaves_a_line_being_written_for_the_next_check() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file_with_a_cut_off_last_line(dir.path());
        let head = Some((2, String::new()));
        let report = read_files(&[path], &Reading::Live { head }, &key()).expect("read");
        assert!(report.findings.iter().all(|f| f.problem != Problem::Altered), "{:?}", report.findings);
        assert_eq!((report.records, report.last_seq), (2, Some(2)));
    }

    #[test]
    fn an_exported_copy_with_a_cut_off_last_line_does_not_verify() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file_with_a_cut_off_last_line(dir.path());
        let report = read_files(&[path], &Reading::Exported, &key()).expect("read");
        assert!(!report.ok);
        assert!(report.findings.iter().any(|f| f.problem == Problem::Altered), "{:?}", report.findings);
    }

    #[test]
    fn a_missing_exported_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("audit.log.7");
        let err = read_files(&[missing], &Reading::Exported, &key()).expect_err("missing");
        assert!(err.to_string().contains("audit.log.7"), "{err}");
    }
}
