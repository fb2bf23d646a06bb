//! The hash chain of audit records, and its verification. Pure: no IO, no clock.
//!
//! Each record is a JSON object with `seq` (1, 2, 3, … with no gaps), `prevHash` (the `hash` of
//! record `seq - 1`, or of the signed anchor left by a retention purge, or [`GENESIS`]) and
//! `hash`: SHA-256 of the record's canonical JSON without `hash` (keys sorted, no spaces). An
//! edit changes a hash; a removal leaves a gap; an insertion or a rewrite breaks a link; a
//! rewrite of the whole tail (links recomputed) disagrees with a signed checkpoint.
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};

/// The `prevHash` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 (hex) of a record's canonical form: everything but `hash`, keys in order.
pub fn record_hash(record: &Map<String, Value>) -> String {
    let mut m = record.clone();
    m.remove("hash");
    // serde_json's map is ordered by key (no `preserve_order`), so this is canonical.
    let bytes = serde_json::to_vec(&Value::Object(m)).unwrap_or_default();
    coffer_crypto::digest::sha256_hex(&bytes)
}

/// `seal`, and the sealed record's text (what the store and the file keep), serializing the
/// record once (`Prepared`). The same bytes as serializing the map twice (serde_json writes a
/// map as `{"key":value,…}` in key order), at half the cost on every audited request.
pub fn seal_to_text(record: &mut Map<String, Value>, seq: i64, prev_hash: &str) -> (String, String) {
    let (hash, text) = Prepared::of(record).seal(seq, prev_hash);
    record.insert("seq".into(), Value::from(seq));
    record.insert("prevHash".into(), Value::from(prev_hash));
    record.insert("hash".into(), Value::from(hash.clone()));
    (hash, text)
}

/// A record serialized before it has its place in the chain: each entry but `seq`, `prevHash`
/// and `hash` written once, in key order, into one buffer. The request's own task prepares it;
/// the audit writer, which gives records their places one after another, only splices in the
/// three and hashes (`seal`).
#[derive(Debug, Clone)]
pub struct Prepared {
    entries: Vec<u8>,
    spans: Vec<std::ops::Range<usize>>,
    /// How many entries come before `hash`, `prevHash` and `seq` in key order.
    before_hash: usize,
    before_prev: usize,
    before_seq: usize,
}

impl Prepared {
    pub fn of(record: &Map<String, Value>) -> Self {
        let mut entries: Vec<u8> = Vec::with_capacity(2048);
        let mut spans = Vec::with_capacity(record.len());
        let (mut before_hash, mut before_prev, mut before_seq) = (0, 0, 0);
        for (k, v) in record.iter() {
            let key = k.as_str();
            if matches!(key, "seq" | "prevHash" | "hash") {
                continue;
            }
            let start = entries.len();
            // Writing into a Vec cannot fail, and a Value always serializes.
            let _ = serde_json::to_writer(&mut entries, k);
            entries.push(b':');
            let _ = serde_json::to_writer(&mut entries, v);
            spans.push(start..entries.len());
            before_hash += usize::from(key < "hash");
            before_prev += usize::from(key < "prevHash");
            before_seq += usize::from(key < "seq");
        }
        Self { entries, spans, before_hash, before_prev, before_seq }
    }

    /// The record at `seq` after `prev_hash`: its hash and its text.
    pub fn seal(&self, seq: i64, prev_hash: &str) -> (String, String) {
        let mut prev = b"\"prevHash\":".to_vec();
        let _ = serde_json::to_writer(&mut prev, prev_hash);
        let seq_entry = format!("\"seq\":{seq}");
        // (position in key order, entry) for what the writer adds; `hash` only to the text.
        let join = |hash: Option<&[u8]>| {
            let added = [
                (self.before_hash, hash),
                (self.before_prev, Some(&prev[..])),
                (self.before_seq, Some(seq_entry.as_bytes())),
            ];
            let extra: usize = added.iter().filter_map(|(_, e)| e.map(|e| e.len() + 1)).sum();
            let mut out = Vec::with_capacity(self.entries.len() + self.spans.len() + extra + 2);
            out.push(b'{');
            let mut first = true;
            let mut put = |out: &mut Vec<u8>, piece: &[u8]| {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(piece);
            };
            for i in 0..=self.spans.len() {
                for (at, entry) in added {
                    if at == i
                        && let Some(e) = entry
                    {
                        put(&mut out, e);
                    }
                }
                if let Some(span) = self.spans.get(i) {
                    put(&mut out, &self.entries[span.clone()]);
                }
            }
            out.push(b'}');
            out
        };
        let hash = coffer_crypto::digest::sha256_hex(&join(None));
        let text = join(Some(format!("\"hash\":\"{hash}\"").as_bytes()));
        // serde_json writes UTF-8 only.
        (hash, String::from_utf8(text).unwrap_or_default())
    }
}

/// Completes a record: gives it `seq` and `prevHash` and seals it with its `hash`.
pub fn seal(record: &mut Map<String, Value>, seq: i64, prev_hash: &str) -> String {
    record.insert("seq".into(), Value::from(seq));
    record.insert("prevHash".into(), Value::from(prev_hash));
    record.remove("hash");
    // Without `hash` the record is its own canonical form: no copy needed.
    let hash = coffer_crypto::digest::sha256_hex(&serde_json::to_vec(record).unwrap_or_default());
    record.insert("hash".into(), Value::from(hash.clone()));
    hash
}

/// One stored record to check, in storage order.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Where it is: `row 12`, `audit.log line 40`.
    pub place: String,
    /// The `seq` the storage files it under (the store's key column), if it has one.
    pub stored_seq: Option<i64>,
    pub text: String,
    /// False if the store's index columns disagree with the record (they serve queries).
    pub columns_match: bool,
}

/// A checkpoint whose signature was checked: `valid` false means it did not verify.
#[derive(Debug, Clone)]
pub struct SignedPoint {
    pub seq: i64,
    pub hash: String,
    pub valid: bool,
    pub place: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Problem {
    Altered,
    Removed,
    Inserted,
    Reordered,
    Rewritten,
    BadCheckpoint,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub seq: Option<i64>,
    pub problem: Problem,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub ok: bool,
    pub records: usize,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub checkpoints: usize,
    pub findings: Vec<Finding>,
}

/// What the checked records should start from and end at.
#[derive(Debug, Clone, Default)]
pub struct Bounds {
    /// The signed point the chain continues from (after a retention purge); else genesis.
    pub anchor: Option<SignedPoint>,
    /// A file may start anywhere (its older part rotated away): take its first record as given.
    pub partial_start: bool,
    /// The head the writer knows it wrote: anything past it was inserted, anything short of it removed.
    pub head: Option<(i64, String)>,
}

struct Parsed {
    place: String,
    seq: i64,
    prev: String,
    hash: String,
    intact: bool,
}

fn parse(e: &Entry) -> Result<Parsed, String> {
    let v: Value = serde_json::from_str(&e.text).map_err(|_| "is not a JSON record".to_string())?;
    let Value::Object(m) = v else { return Err("is not a JSON object".into()) };
    let seq = m.get("seq").and_then(Value::as_i64).ok_or("has no seq")?;
    let prev = m.get("prevHash").and_then(Value::as_str).ok_or("has no prevHash")?.to_string();
    let hash = m.get("hash").and_then(Value::as_str).ok_or("has no hash")?.to_string();
    let intact = record_hash(&m) == hash;
    Ok(Parsed { place: e.place.clone(), seq, prev, hash, intact })
}

/// Checks records (in storage order) against each other, the checkpoints and the bounds.
pub fn verify(entries: &[Entry], checkpoints: &[SignedPoint], bounds: &Bounds) -> Report {
    let mut findings: Vec<Finding> = Vec::new();
    let mut add = |seq: Option<i64>, problem: Problem, message: String| {
        if !findings.iter().any(|f| f.seq == seq && f.problem == problem) {
            findings.push(Finding { seq, problem, message });
        }
    };

    // Parse; note edits of a record's content, of its index columns, and of where it is filed.
    let mut parsed: Vec<Parsed> = Vec::new();
    for e in entries {
        match parse(e) {
            Ok(p) => {
                if !p.intact {
                    add(
                        Some(p.seq),
                        Problem::Altered,
                        format!("record {} ({}) was altered: its content does not match its hash", p.seq, p.place),
                    );
                } else if !e.columns_match {
                    add(
                        Some(p.seq),
                        Problem::Altered,
                        format!(
                            "record {} ({}) was altered: its index columns do not match the record",
                            p.seq, p.place
                        ),
                    );
                }
                if let Some(s) = e.stored_seq
                    && s != p.seq
                {
                    add(
                        Some(s),
                        Problem::Reordered,
                        format!("{} is filed as record {s} but holds record {}: records were swapped", p.place, p.seq),
                    );
                }
                parsed.push(p);
            }
            Err(why) => add(e.stored_seq, Problem::Altered, format!("{} {why}: it was altered", e.place)),
        }
    }

    // Order: each record must come after every record with a smaller seq.
    let mut max_so_far: Option<&Parsed> = None;
    for p in &parsed {
        if let Some(m) = max_so_far
            && p.seq < m.seq
        {
            add(
                Some(p.seq),
                Problem::Reordered,
                format!(
                    "record {} ({}) comes after record {} ({}): records were reordered",
                    p.seq, p.place, m.seq, m.place
                ),
            );
            continue;
        }
        max_so_far = Some(p);
    }

    // One record per seq: a second one is an insertion (keep the one that chains).
    let mut by_seq: BTreeMap<i64, &Parsed> = BTreeMap::new();
    let mut hash_of: HashMap<i64, Vec<&Parsed>> = HashMap::new();
    for p in &parsed {
        hash_of.entry(p.seq).or_default().push(p);
    }
    let chain_hash = |seq: i64, by: &BTreeMap<i64, &Parsed>| by.get(&seq).map(|p| p.hash.clone());
    let mut seqs: Vec<i64> = hash_of.keys().copied().collect();
    seqs.sort_unstable();
    for s in &seqs {
        let candidates = &hash_of[s];
        let expected_prev = chain_hash(s - 1, &by_seq)
            .or_else(|| bounds.anchor.as_ref().filter(|a| a.seq == s - 1).map(|a| a.hash.clone()));
        let keep = candidates
            .iter()
            .find(|p| p.intact && expected_prev.as_deref().is_none_or(|h| h == p.prev))
            .or_else(|| candidates.first())
            .copied();
        for p in candidates {
            if let Some(k) = keep
                && !std::ptr::eq(*p, k)
            {
                add(Some(*s), Problem::Inserted, format!("{} is a second record {s}: it was inserted", p.place));
            }
        }
        if let Some(k) = keep {
            by_seq.insert(*s, k);
        }
    }

    let first = by_seq.keys().next().copied();
    let last = by_seq.keys().next_back().copied();
    // Where the chain must start.
    let start = match (&bounds.anchor, bounds.partial_start) {
        (Some(a), _) => Some(a.seq + 1),
        (None, true) => first,
        (None, false) => Some(1),
    };
    if let Some(a) = &bounds.anchor
        && !a.valid
    {
        add(
            Some(a.seq),
            Problem::BadCheckpoint,
            format!("the retention anchor at record {} is not validly signed", a.seq),
        );
    }

    // Gaps are removals.
    if let (Some(start), Some(last)) = (start, last) {
        let mut s = start;
        while s <= last {
            if !by_seq.contains_key(&s) {
                let from = s;
                while s <= last && !by_seq.contains_key(&s) {
                    s += 1;
                }
                let to = s - 1;
                let what = if from == to {
                    format!("record {from} was removed")
                } else {
                    format!("records {from} to {to} were removed")
                };
                add(Some(from), Problem::Removed, what);
            }
            s += 1;
        }
        if let Some(extra) = by_seq.keys().find(|k| **k < start) {
            add(
                Some(*extra),
                Problem::Inserted,
                format!("record {extra} is older than the chain's start ({start}): it was inserted"),
            );
        }
    }

    // Links.
    for (s, p) in &by_seq {
        let prev = if Some(*s) == start {
            match (&bounds.anchor, bounds.partial_start) {
                (Some(a), _) => Some(a.hash.clone()),
                (None, true) => None,
                (None, false) => Some(GENESIS.to_string()),
            }
        } else {
            by_seq.get(&(s - 1)).filter(|q| q.intact).map(|q| q.hash.clone())
        };
        if let Some(prev) = prev
            && prev != p.prev
            && p.intact
        {
            add(
                Some(*s),
                Problem::Inserted,
                format!(
                    "record {s} ({}) does not follow record {}: a record was inserted or altered and re-hashed here",
                    p.place,
                    s - 1
                ),
            );
        }
    }

    // Signed checkpoints pin the chain: a rewritten stretch disagrees with them.
    let mut checked = 0;
    for c in checkpoints {
        if !c.valid {
            add(
                Some(c.seq),
                Problem::BadCheckpoint,
                format!("checkpoint at record {} ({}) is not validly signed", c.seq, c.place),
            );
            continue;
        }
        checked += 1;
        match by_seq.get(&c.seq) {
            Some(p) if p.hash != c.hash => add(
                Some(c.seq),
                Problem::Rewritten,
                format!(
                    "record {} differs from the signed checkpoint ({}): the records up to it were rewritten",
                    c.seq, c.place
                ),
            ),
            Some(_) => {}
            None if last.is_some_and(|l| c.seq > l) => add(
                last.map(|l| l + 1),
                Problem::Removed,
                format!("records after {} up to the signed checkpoint at {} were removed", last.unwrap_or(0), c.seq),
            ),
            None => {}
        }
    }

    if let Some((head_seq, head_hash)) = &bounds.head {
        match last {
            Some(l) if l > *head_seq => add(
                Some(head_seq + 1),
                Problem::Inserted,
                format!(
                    "records {} to {l} are past the last record Coffer wrote ({head_seq}): they were inserted",
                    head_seq + 1
                ),
            ),
            Some(l) if l < *head_seq => {
                add(Some(l + 1), Problem::Removed, format!("records {} to {head_seq} (the newest) were removed", l + 1))
            }
            None if *head_seq > 0 && start.is_some_and(|s| s <= *head_seq) => {
                add(None, Problem::Removed, format!("every record up to {head_seq} was removed"))
            }
            Some(_) if by_seq.get(head_seq).is_some_and(|p| &p.hash != head_hash) => add(
                Some(*head_seq),
                Problem::Rewritten,
                format!("the newest record {head_seq} is not the one Coffer wrote: the chain was rewritten"),
            ),
            Some(_) => {}
            None => {}
        }
    }

    findings.sort_by_key(|f| (f.seq.unwrap_or(i64::MAX), f.problem as u8));
    Report {
        ok: findings.is_empty(),
        records: parsed.len(),
        first_seq: first,
        last_seq: last,
        checkpoints: checked,
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: i64) -> Vec<Map<String, Value>> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|i| {
                let mut m = Map::new();
                m.insert("operationName".into(), Value::from("SecretGet"));
                m.insert("caller".into(), Value::from(format!("user{i}")));
                prev = seal(&mut m, i, &prev);
                m
            })
            .collect()
    }

    fn entries(records: &[Map<String, Value>]) -> Vec<Entry> {
        records
            .iter()
            .enumerate()
            .map(|(i, m)| Entry {
                place: format!("line {}", i + 1),
                stored_seq: None,
                text: Value::Object(m.clone()).to_string(),
                columns_match: true,
            })
            .collect()
    }

    fn problems(r: &Report) -> Vec<(Option<i64>, Problem)> {
        r.findings.iter().map(|f| (f.seq, f.problem)).collect()
    }

    fn head(c: &[Map<String, Value>]) -> Option<(i64, String)> {
        c.last().map(|m| (m["seq"].as_i64().unwrap_or(0), m["hash"].as_str().unwrap_or("").to_string()))
    }

    #[test]
    fn sealing_once_gives_the_bytes_sealing_twice_gives() {
        let samples = [
            json!({"category": "AuditEvent", "operationName": "SecretGet", "identity": {"claim": {"oid": "o"}},
                   "properties": {"vaultName": "v", "note": "a \"quoted\" \u{1} é"}, "timeMs": 5, "zeta": [1, 2]}),
            json!({"a": 1}),
            json!({"zz": null}),
            json!({}),
            json!({"seq": 99, "hash": "old", "prevHash": "old", "b": 2, "r": 3, "t": 4}),
        ];
        for sample in samples {
            let Value::Object(m) = sample else { unreachable!() };
            let (mut once, mut twice) = (m.clone(), m.clone());
            let (hash, text) = seal_to_text(&mut once, 3, "p");
            assert_eq!(hash, seal(&mut twice, 3, "p"));
            assert_eq!(text, Value::Object(twice.clone()).to_string());
            assert_eq!(once, twice);
            assert_eq!(record_hash(&twice), hash);
        }
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let c = chain(5);
        let r = verify(&entries(&c), &[], &Bounds { head: head(&c), ..Default::default() });
        assert!(r.ok, "{:?}", r.findings);
        assert_eq!((r.records, r.first_seq, r.last_seq), (5, Some(1), Some(5)));
    }

    #[test]
    fn each_tampering_is_named() {
        let c = chain(8);
        let b = Bounds { head: head(&c), ..Default::default() };
        // Edit record 3.
        let mut e = entries(&c);
        e[2].text = e[2].text.replace("user3", "mallory");
        assert_eq!(problems(&verify(&e, &[], &b)), vec![(Some(3), Problem::Altered)]);
        // Remove record 4.
        let mut e = entries(&c);
        e.remove(3);
        assert_eq!(problems(&verify(&e, &[], &b)), vec![(Some(4), Problem::Removed)]);
        // Swap records 5 and 6.
        let mut e = entries(&c);
        e.swap(4, 5);
        assert_eq!(problems(&verify(&e, &[], &b)), vec![(Some(5), Problem::Reordered)]);
        // Insert a forged record 7 (valid hash, linked to 6) before the real 7.
        let mut e = entries(&c);
        let mut forged = Map::new();
        forged.insert("operationName".into(), Value::from("SecretGet"));
        seal(&mut forged, 7, c[5]["hash"].as_str().unwrap_or(""));
        e.insert(
            6,
            Entry {
                place: "line 7".into(),
                stored_seq: None,
                text: Value::Object(forged).to_string(),
                columns_match: true,
            },
        );
        let r = verify(&e, &[], &b);
        assert!(problems(&r).contains(&(Some(7), Problem::Inserted)), "{:?}", r.findings);
        // Remove the newest record: only the known head reveals it.
        let mut e = entries(&c);
        e.pop();
        assert_eq!(problems(&verify(&e, &[], &b)), vec![(Some(8), Problem::Removed)]);
        // Append a forged record past the head.
        let mut more = c.clone();
        let mut extra = Map::new();
        seal(&mut extra, 9, c[7]["hash"].as_str().unwrap_or(""));
        more.push(extra);
        assert_eq!(problems(&verify(&entries(&more), &[], &b)), vec![(Some(9), Problem::Inserted)]);
        // A swap in the store (bodies exchanged under their key column).
        let mut e = entries(&c);
        for (i, x) in e.iter_mut().enumerate() {
            x.stored_seq = Some(i as i64 + 1);
        }
        let t = e[1].text.clone();
        e[1].text = e[2].text.clone();
        e[2].text = t;
        let r = verify(&e, &[], &b);
        assert_eq!(
            r.findings.first().map(|f| (f.seq, f.problem)),
            Some((Some(2), Problem::Reordered)),
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn a_rehashed_rewrite_is_caught_by_a_checkpoint() {
        let c = chain(6);
        let cp =
            SignedPoint { seq: 6, hash: c[5]["hash"].as_str().unwrap_or("").into(), valid: true, place: "cp".into() };
        // Rewrite record 2 and re-link everything after it.
        let mut rewritten = c.clone();
        rewritten[1].insert("caller".into(), Value::from("mallory"));
        let mut prev = rewritten[0]["hash"].as_str().unwrap_or("").to_string();
        for (i, m) in rewritten.iter_mut().enumerate().skip(1) {
            prev = seal(m, i as i64 + 1, &prev);
        }
        let r = verify(&entries(&rewritten), std::slice::from_ref(&cp), &Bounds::default());
        assert_eq!(problems(&r), vec![(Some(6), Problem::Rewritten)]);
        let bad = SignedPoint { valid: false, ..cp };
        assert_eq!(
            problems(&verify(&entries(&c), &[bad], &Bounds::default())),
            vec![(Some(6), Problem::BadCheckpoint)]
        );
    }

    #[test]
    fn a_purged_prefix_continues_from_its_anchor() {
        let c = chain(6);
        let anchor = SignedPoint {
            seq: 3,
            hash: c[2]["hash"].as_str().unwrap_or("").into(),
            valid: true,
            place: "anchor".into(),
        };
        let b = Bounds { anchor: Some(anchor), head: head(&c), partial_start: false };
        assert!(verify(&entries(&c[3..]), &[], &b).ok);
        assert_eq!(problems(&verify(&entries(&c[4..]), &[], &b)), vec![(Some(4), Problem::Removed)]);
        // A rotated file starts mid-chain.
        let r = verify(&entries(&c[2..]), &[], &Bounds { partial_start: true, ..Default::default() });
        assert!(r.ok, "{:?}", r.findings);
    }
}
