//! The JSON-lines file sink: one record per line, appended in order and flushed to disk
//! (`fdatasync`) before a batch counts as written. Size-based rotation keeps `max_files` old
//! files (`audit.log.1` is the newest of them). Before each batch the path is checked against the
//! open file: if it was deleted, renamed (an outside log rotator) or replaced, the sink notices,
//! says so, and opens the path afresh — a deleted audit file never goes unnoticed.
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::config::FileSinkConfig;

#[derive(Debug)]
pub struct FileSink {
    pub config: FileSinkConfig,
    file: Option<File>,
    identity: Option<(u64, u64)>,
    /// The last record (seq, hash) known to be in the files.
    pub last: Option<(i64, String)>,
    /// How to take the last append back (`undo_last_append`): the file's length and `last`
    /// before it.
    undo: Option<(u64, Option<(i64, String)>)>,
}

#[cfg(unix)]
fn identity_of(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity_of(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// The last record in a file: its (seq, hash), reading the last complete lines.
fn last_record(path: &Path) -> Option<(i64, String)> {
    let f = File::open(path).ok()?;
    let mut last = None;
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&line)
            && let (Some(seq), Some(hash)) =
                (m.get("seq").and_then(|v| v.as_i64()), m.get("hash").and_then(|v| v.as_str()))
            && m.get("category").and_then(|c| c.as_str()) != Some("AuditCheckpoint")
        {
            last = Some((seq, hash.to_string()));
        }
    }
    last
}

impl FileSink {
    pub fn new(config: FileSinkConfig) -> Self {
        let last = Self::files_of(&config).iter().rev().find_map(|p| last_record(p));
        Self { config, file: None, identity: None, last, undo: None }
    }

    /// Every file of the sink, oldest first (`path.N` … `path.1`, `path`).
    pub fn files_of(config: &FileSinkConfig) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> =
            (1..=config.max_files).rev().map(|i| rotated(&config.path, i)).filter(|p| p.exists()).collect();
        if config.path.exists() {
            v.push(config.path.clone());
        }
        v
    }

    /// Opens the path if nothing is open or the path no longer names the open file. Returns
    /// a notice when an open file went missing or was replaced.
    fn ensure_open(&mut self) -> std::io::Result<Option<String>> {
        let on_disk = std::fs::metadata(&self.config.path).ok().and_then(|m| identity_of(&m));
        if self.file.is_some() && on_disk.is_some() && on_disk == self.identity {
            return Ok(None);
        }
        let notice = self.file.as_ref().map(|_| match on_disk {
            None => format!(
                "the audit file {} was deleted or moved away; a new one was started",
                self.config.path.display()
            ),
            Some(_) => format!("the audit file {} was replaced; writing to the new file", self.config.path.display()),
        });
        self.file = None;
        self.undo = None;
        if let Some(dir) = self.config.path.parent() {
            coffer_store::private_files::create_dir(dir)?;
        }
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let f = opts.open(&self.config.path)?;
        self.identity = f.metadata().ok().and_then(|m| identity_of(&m));
        self.file = Some(f);
        Ok(notice)
    }

    /// Appends lines (each a whole JSON object) and syncs them to disk. On failure nothing is
    /// counted as written, and a partly written tail is cut off again where possible.
    pub fn append(&mut self, lines: &[String], last: Option<(i64, String)>) -> std::io::Result<Option<String>> {
        let notice = self.ensure_open()?;
        let Some(f) = self.file.as_mut() else {
            return Err(std::io::Error::other("the audit file is not open"));
        };
        let before = f.metadata().map(|m| m.len()).ok();
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in lines {
            buf.extend_from_slice(l.as_bytes());
            buf.push(b'\n');
        }
        let written = f.write_all(&buf).and_then(|_| f.sync_data());
        if let Err(e) = written {
            if let Some(len) = before {
                let _ = f.set_len(len);
            }
            // Reopen next time: the file may be on a device that recovers.
            self.file = None;
            return Err(e);
        }
        self.undo = before.map(|len| (len, self.last.clone()));
        if last.is_some() {
            self.last = last;
        }
        Ok(notice)
    }

    /// Takes the last append back: the audit writer syncs a batch to the file while the store
    /// commits it, and a batch the store refused must not stay in the file (its seqs are given
    /// to the next batch). Only the append just made, on the file it was made to.
    pub fn undo_last_append(&mut self) -> std::io::Result<()> {
        let Some((len, last)) = self.undo.take() else { return Ok(()) };
        let Some(f) = self.file.as_mut() else {
            return Err(std::io::Error::other("the audit file is not open"));
        };
        let cut = f.set_len(len).and_then(|_| f.sync_data());
        if cut.is_err() {
            self.file = None;
        }
        cut?;
        self.last = last;
        Ok(())
    }

    /// The records after `seq` in the current file, `(seq, line)` in order: what the file holds
    /// that a store ending at `seq` lacks (the process stopped between the two writes).
    pub fn records_after(&self, seq: i64) -> std::io::Result<Vec<(i64, String)>> {
        let f = match File::open(&self.config.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for line in BufReader::new(f).lines() {
            let line = line?;
            if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&line)
                && m.get("category").and_then(|c| c.as_str()) != Some("AuditCheckpoint")
                && let Some(n) = m.get("seq").and_then(|v| v.as_i64())
                && n > seq
            {
                out.push((n, line));
            }
        }
        Ok(out)
    }

    /// Appends records `(seq, line)` in order, skipping those the files already hold (a seq at
    /// or below the last one written): catching up after a failure is idempotent, so a record
    /// is never written twice, whatever was written before the failure.
    pub fn append_records(&mut self, records: &[(i64, String)], last_hash: &str) -> std::io::Result<Option<String>> {
        self.undo = None;
        let written = self.last.as_ref().map_or(0, |l| l.0);
        let fresh: Vec<String> = records.iter().filter(|(seq, _)| *seq > written).map(|(_, l)| l.clone()).collect();
        let Some(last_seq) = records.last().map(|(seq, _)| *seq).filter(|seq| *seq > written) else {
            return Ok(None);
        };
        self.append(&fresh, Some((last_seq, last_hash.to_string())))
    }

    pub fn needs_rotation(&self) -> bool {
        self.file.as_ref().and_then(|f| f.metadata().ok()).is_some_and(|m| m.len() > self.config.max_bytes)
    }

    /// `path` → `path.1` → … → `path.max_files` (the oldest is deleted); a fresh `path` is opened.
    pub fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        self.undo = None;
        let max = self.config.max_files;
        if max == 0 {
            std::fs::remove_file(&self.config.path)?;
        } else {
            let _ = std::fs::remove_file(rotated(&self.config.path, max));
            for i in (1..max).rev() {
                let from = rotated(&self.config.path, i);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.config.path, i + 1))?;
                }
            }
            std::fs::rename(&self.config.path, rotated(&self.config.path, 1))?;
        }
        self.ensure_open()?;
        Ok(())
    }
}

pub fn rotated(path: &Path, i: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_rotates_and_notices_a_deleted_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let mut sink = FileSink::new(FileSinkConfig { path: path.clone(), max_bytes: 40, max_files: 2 });
        assert_eq!(sink.last, None);
        let line = |seq: i64| format!("{{\"seq\":{seq},\"hash\":\"h{seq}\"}}");
        assert_eq!(sink.append(&[line(1), line(2)], Some((2, "h2".into()))).expect("append"), None);
        assert!(sink.needs_rotation());
        sink.rotate().expect("rotate");
        sink.append(&[line(3)], Some((3, "h3".into()))).expect("append");
        assert_eq!(FileSink::files_of(&sink.config), vec![rotated(&path, 1), path.clone()]);
        // A fresh sink finds where the files end.
        assert_eq!(FileSink::new(sink.config.clone()).last, Some((3, "h3".into())));
        std::fs::remove_file(&path).expect("delete");
        let notice = sink.append(&[line(4)], Some((4, "h4".into()))).expect("append");
        assert!(notice.is_some_and(|n| n.contains("deleted")), "a deleted audit file is noticed");
        assert!(std::fs::read_to_string(&path).expect("read").contains("\"seq\":4"));
        for _ in 0..3 {
            sink.rotate().expect("rotate");
        }
        assert!(!rotated(&path, 3).exists(), "only max_files rotated files are kept");
    }

    #[test]
    fn records_already_written_are_not_written_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let mut sink = FileSink::new(FileSinkConfig { path: path.clone(), max_bytes: 1 << 20, max_files: 2 });
        let rec = |seq: i64| (seq, format!("{{\"seq\":{seq},\"hash\":\"h{seq}\"}}"));
        sink.append_records(&[rec(1), rec(2), rec(3)], "h3").expect("append");
        // A catch-up that overlaps what the file has (records 2 and 3) writes only 4 and 5.
        sink.append_records(&[rec(2), rec(3), rec(4), rec(5)], "h5").expect("catch up");
        sink.append_records(&[rec(5)], "h5").expect("nothing new");
        let text = std::fs::read_to_string(&path).expect("read");
        let seqs: Vec<i64> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["seq"].as_i64().expect("seq"))
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        assert_eq!(sink.last, Some((5, "h5".into())));
    }

    #[test]
    fn the_last_append_is_taken_back_and_what_follows_the_store_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let mut sink = FileSink::new(FileSinkConfig { path: path.clone(), max_bytes: 1 << 20, max_files: 2 });
        let rec = |seq: i64| (seq, format!("{{\"seq\":{seq},\"hash\":\"h{seq}\"}}"));
        sink.append_records(&[rec(1), rec(2)], "h2").expect("append");
        let kept = std::fs::read_to_string(&path).expect("read");
        sink.append_records(&[rec(3), rec(4)], "h4").expect("append");
        assert_eq!(sink.records_after(2).expect("read"), vec![rec(3), rec(4)]);
        sink.undo_last_append().expect("undo");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), kept, "the file as it was before the append");
        assert_eq!(sink.last, Some((2, "h2".into())));
        sink.undo_last_append().expect("nothing more to take back");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), kept, "only the last append is taken back");
        // The seqs taken back are given again, to other records.
        sink.append_records(&[(3, "{\"seq\":3,\"hash\":\"other\"}".into())], "other").expect("append");
        assert_eq!(sink.last, Some((3, "other".into())));
        assert!(sink.records_after(3).expect("read").is_empty());
    }
}
