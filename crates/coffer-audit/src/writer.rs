//! The audit writer: one task that owns the chain's head. Requests hand it records and wait
//! (bounded) for its answer; it takes everything queued at that moment as one batch (group
//! commit), chains it, commits it to the store in one transaction, appends it to the file sink
//! and syncs it, and only then answers. The two are pipelined: while one batch is synced to the
//! file (its own task, `FileSide`), the next is committed to the store; file appends stay in
//! chain order because a batch's file phase starts only after the previous one ended. A
//! record may witness a change (a new version, `write_witnessing`): the batch then commits the
//! version with the records, and only once the file has synced them. A failure answers every
//! waiter with an error (the request becomes a 503); a hung sink answers nobody, so waiters give
//! up after the write timeout — nothing blocks forever, a change whose caller gave up is not
//! made (`Claim`), and `/healthz` says what is wrong.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_core::Clock;
use coffer_crypto::jwt::{TokenSigner, VerifyingKey};
use coffer_store::{AuditCheckpoint, AuditQuery, AuditRow, CommitGate, OwnedVersion, PutOutcome, Store, Witnessed};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use super::chain::{self, GENESIS};
use super::file_sink::FileSink;
use super::record::{Draft, Outcome, Who, row_with_text};
use crate::config::AuditConfig;

/// Told how each batch write went (the server's `/metrics` counts them).
pub trait WriteObserver: Send + Sync + std::fmt::Debug {
    /// `records` written in `took`; `ok` false when the batch failed.
    fn observe_audit_write(&self, records: usize, took: Duration, ok: bool);
}

/// Why a record could not be written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AuditFailure(pub String);

/// What `/healthz` shows.
#[derive(Debug, Default)]
struct HealthState {
    last_error: Option<(i64, String)>,
    last_success: Option<i64>,
    batch_started: Option<Instant>,
}

/// The signed statement in a checkpoint.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointClaims {
    pub seq: i64,
    pub hash: String,
    pub time_ms: i64,
}

/// The newest record written to each sink.
#[derive(Debug, Clone, Default)]
pub struct Heads {
    pub store: (i64, String),
    pub file: Option<(i64, String)>,
}

/// Where a writer answers a caller: what became of its record, or why it has none.
type Ack = oneshot::Sender<Result<Answer, AuditFailure>>;

/// What became of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Written (with the version it witnesses, if any), at this seq.
    Written(i64),
    /// Not written: the version it was to witness was refused, so neither was written.
    Refused(PutOutcome),
}

enum Job {
    Record(Box<Pending>, Option<Ack>),
    Checkpoint(oneshot::Sender<Result<Option<AuditCheckpoint>, AuditFailure>>),
    Purge(i64, oneshot::Sender<Result<u64, AuditFailure>>),
}

/// The audit log service held in the app state.
#[derive(Debug)]
pub struct AuditLog {
    tx: Option<mpsc::Sender<Job>>,
    health: Arc<Mutex<HealthState>>,
    heads: Arc<Mutex<Heads>>,
    pub config: AuditConfig,
    verifying_key: VerifyingKey,
    clock: Arc<dyn Clock>,
    pub webhook: super::webhook::Webhook,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

/// Milliseconds: the (injectable) clock's seconds plus the wall clock's milliseconds.
pub fn now_ms(clock: &dyn Clock) -> i64 {
    let sub = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::from(d.subsec_millis()))
        .unwrap_or(0);
    clock.now() * 1000 + sub
}

impl AuditLog {
    /// Opens the log: finds the chain's head in the store, brings the file sink up to it, and
    /// starts the writer task.
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        signer: TokenSigner,
        config: AuditConfig,
        metrics: Arc<dyn WriteObserver>,
    ) -> coffer_core::Result<Self> {
        let verifying_key = signer.verifying_key();
        let mut head = match store.audit_head().await? {
            // A head without its hash cannot be continued honestly: chaining from "" would
            // turn evidence of an edit into a chain that looks whole from here on.
            Some(row) => (
                row.seq,
                hash_of(&row.body).ok_or_else(|| {
                    coffer_core::Error::internal(format!(
                        "the audit store's last record ({}) has no hash: it was altered. Coffer will not continue \
                         the chain from it; run `coffer audit verify` and restore the store from a backup",
                        row.seq
                    ))
                })?,
            ),
            None => match anchor(store.as_ref()).await? {
                Some(a) => (a.seq, a.hash),
                None => (0, GENESIS.to_string()),
            },
        };
        let mut notes = Vec::new();
        if let Some(cp) = store.list_audit_checkpoints().await?.last()
            && (cp.seq > head.0 || (cp.seq == head.0 && cp.hash != head.1))
        {
            let msg = format!(
                "the audit store ends at record {} but a signed checkpoint vouches for record {}: records were removed or rewritten while Coffer was stopped",
                head.0, cp.seq
            );
            tracing::error!(target: "coffer::audit", "{msg}");
            notes.push(("AuditChainTampered", msg));
        }
        let file = config.file.clone().map(FileSink::new);
        // A stopped process can leave at most its last batch in the file and not in the store;
        // records a signed checkpoint vouches for were removed from the store by someone, and
        // are evidence of that, not something to copy back quietly.
        if let Some(f) = &file
            && f.last.as_ref().is_some_and(|l| l.0 > head.0 && l.0 - head.0 <= RECOVERABLE)
            && notes.is_empty()
        {
            let from = head.0;
            head = recover_from_file(store.as_ref(), f, head).await?;
            let msg = format!(
                "records {} to {} were in the audit file but not in the store (Coffer stopped between the two writes; \
                 their requests were never answered, and no change they record was made): they were copied to the store",
                from + 1,
                head.0
            );
            tracing::warn!(target: "coffer::audit", "{msg}");
            notes.push(("AuditRecordsRecovered", msg));
        }
        let heads = Arc::new(Mutex::new(Heads {
            store: head.clone(),
            file: file.as_ref().map(|f| f.last.clone().unwrap_or((0, GENESIS.to_string()))),
        }));
        let health = Arc::new(Mutex::new(HealthState::default()));
        let webhook = super::webhook::Webhook::new(config.webhook.clone());
        if !config.enabled {
            return Ok(Self { tx: None, health, heads, config, verifying_key, clock, webhook });
        }
        let (tx, rx) = mpsc::channel(16_384);
        let writer = Writer {
            side: FileSide {
                store,
                clock: clock.clone(),
                signer: Arc::new(signer),
                file: file.map(|f| Arc::new(Mutex::new(f))),
                syslog: config.syslog.as_deref().and_then(super::syslog::Syslog::open).map(Arc::new),
                heads: heads.clone(),
                health: health.clone(),
                metrics,
            },
            head,
            pending_notes: notes,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            config: config.clone(),
            in_flight: None,
        };
        tokio::spawn(writer.run(rx));
        Ok(Self { tx: Some(tx), health, heads, config, verifying_key, clock, webhook })
    }

    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Records waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.tx.as_ref().map(|t| t.max_capacity() - t.capacity()).unwrap_or(0)
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying_key
    }

    pub fn heads(&self) -> Heads {
        self.heads.lock().map(|h| h.clone()).unwrap_or_default()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Writes one record durably; the seq it got. Bounded by the write timeout.
    pub async fn write(&self, record: Map<String, Value>) -> Result<i64, AuditFailure> {
        if self.tx.is_none() {
            return Ok(0);
        }
        match self.send(Pending::of(&record)).await? {
            Answer::Written(seq) => Ok(seq),
            Answer::Refused(_) => Err(AuditFailure("a record that witnesses nothing was refused".into())),
        }
    }

    /// Writes a record and the version it witnesses in one commit (see
    /// `AuditStore::append_audit_witnessing`): the record says the change happened, so it is
    /// written with the change or not at all — no "started" record is needed before it.
    /// Bounded by the write timeout: a caller that gives up is told the change was not made,
    /// and it is not (`Claim`).
    pub async fn write_witnessing(
        &self,
        record: Map<String, Value>,
        version: OwnedVersion,
    ) -> Result<Answer, AuditFailure> {
        let mut pending = Pending::of(&record);
        pending.witnesses = Some((version, Arc::new(Claim::default())));
        self.send(pending).await
    }

    async fn send(&self, pending: Pending) -> Result<Answer, AuditFailure> {
        let Some(tx) = &self.tx else { return Err(AuditFailure("the audit log is disabled".into())) };
        let (ack, mut done) = oneshot::channel();
        let claim = pending.witnesses.as_ref().map(|(_, claim)| claim.clone());
        // Serialized here, on the request's own task: the writer only gives it its place.
        tx.try_send(Job::Record(Box::new(pending), Some(ack)))
            .map_err(|_| AuditFailure("the audit writer is overloaded or stopped".into()))?;
        let timeout = self.config.write_timeout;
        let answered = |r: Result<Result<Answer, AuditFailure>, oneshot::error::RecvError>| {
            r.unwrap_or_else(|_| Err(AuditFailure("the audit writer stopped".into())))
        };
        if let Ok(r) = tokio::time::timeout(timeout, &mut done).await {
            return answered(r);
        }
        match claim {
            // A change whose commit has begun is reported as it ends (or as unknown).
            Some(claim) if !claim.abandon() => match tokio::time::timeout(timeout, &mut done).await {
                Ok(r) => answered(r),
                Err(_) => Err(AuditFailure(format!(
                    "the commit of the change did not return within {} ms: whether it was made is unknown",
                    2 * timeout.as_millis()
                ))),
            },
            _ => Err(AuditFailure(format!(
                "the audit log did not confirm the write within {} ms (a sink is hung)",
                timeout.as_millis()
            ))),
        }
    }

    /// A record of something Coffer itself did (a background job), or an event.
    pub async fn system(
        &self,
        operation: &'static str,
        outcome: Outcome,
        vault: Option<&str>,
        object: Option<super::record::RecordedObject>,
        description: Option<String>,
    ) -> Result<i64, AuditFailure> {
        let draft = Draft {
            request_id: coffer_crypto::random::guid(),
            time_ms: now_ms(self.clock.as_ref()),
            method: "SYSTEM".into(),
            path: String::new(),
            operation: Some(operation),
            audited: true,
            who: Some(Who {
                object_id: "coffer".into(),
                name: "Coffer".into(),
                kind: "system".into(),
                ..Default::default()
            }),
            vault: vault.map(str::to_string),
            object,
            error: description,
            ..Default::default()
        };
        let status = if outcome == Outcome::Event { None } else { Some(200) };
        self.write(draft.to_record(outcome, status, None)).await
    }

    /// Signs the current head now (and stores and files the checkpoint).
    pub async fn checkpoint(&self) -> Result<Option<AuditCheckpoint>, AuditFailure> {
        let Some(tx) = &self.tx else { return Ok(None) };
        let (ack, done) = oneshot::channel();
        tx.send(Job::Checkpoint(ack)).await.map_err(|_| AuditFailure("the audit writer stopped".into()))?;
        done.await.map_err(|_| AuditFailure("the audit writer stopped".into()))?
    }

    /// Purges records older than the retention period (a signed anchor keeps the rest verifiable).
    pub async fn apply_retention(&self) -> Result<u64, AuditFailure> {
        let Some(tx) = &self.tx else { return Ok(0) };
        let cutoff = (self.clock.now() - i64::from(self.config.retention_days) * 86_400) * 1000;
        let (ack, done) = oneshot::channel();
        tx.send(Job::Purge(cutoff, ack)).await.map_err(|_| AuditFailure("the audit writer stopped".into()))?;
        done.await.map_err(|_| AuditFailure("the audit writer stopped".into()))?
    }

    /// `ok`, `failing` (the last write failed) or `stalled` (a write has hung past the timeout).
    pub fn health(&self) -> Value {
        if !self.enabled() {
            return json!({"status": "disabled"});
        }
        let h = match self.health.lock() {
            Ok(h) => h,
            Err(_) => return json!({"status": "failing", "error": "health state poisoned"}),
        };
        let heads = self.heads();
        let stalled = h.batch_started.is_some_and(|t| t.elapsed() > self.config.write_timeout);
        let failing = match (&h.last_error, h.last_success) {
            (Some((at, _)), Some(ok)) => *at >= ok,
            (Some(_), None) => true,
            _ => false,
        };
        let status = if stalled {
            "stalled"
        } else if failing {
            "failing"
        } else {
            "ok"
        };
        let mut v = json!({"status": status, "lastSeq": heads.store.0});
        if let Some(f) = heads.file {
            v["fileLastSeq"] = json!(f.0);
        }
        if status != "ok"
            && let Some((_, e)) = &h.last_error
        {
            v["error"] = json!(e);
        }
        v
    }

    /// Checks a checkpoint's signature; its claims if it is ours and intact.
    pub fn open_checkpoint(&self, signature: &str) -> Option<CheckpointClaims> {
        super::verify_checkpoint(signature, &self.verifying_key)
    }
}

fn hash_of(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body).ok()?.get("hash")?.as_str().map(str::to_string)
}

/// The records the file holds past the store's head, checked to continue the store's chain,
/// copied into the store; the new head. The file and the store are synced at the same time, so
/// a process stopped between the two leaves the file ahead; its records are whole and chained,
/// so they are kept, not cut off.
async fn recover_from_file(
    store: &dyn Store,
    file: &FileSink,
    head: (i64, String),
) -> coffer_core::Result<(i64, String)> {
    let refuse = |why: String| {
        coffer_core::Error::internal(format!(
            "the audit file holds records the store does not, and they do not continue the store's chain ({why}). \
             Coffer will not continue the chain from either; run `coffer audit verify` on both"
        ))
    };
    let lines = file.records_after(head.0).map_err(|e| refuse(format!("the file cannot be read: {e}")))?;
    let (mut seq, mut prev) = head;
    let mut rows = Vec::with_capacity(lines.len());
    for (n, line) in lines {
        let record = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(m)) => m,
            _ => return Err(refuse(format!("record {n} is not a JSON object"))),
        };
        let hash = record.get("hash").and_then(Value::as_str).unwrap_or_default().to_string();
        let links = record.get("prevHash").and_then(Value::as_str) == Some(prev.as_str());
        if n != seq + 1 || !links || chain::record_hash(&record) != hash {
            return Err(refuse(format!("record {n} does not follow record {seq}")));
        }
        rows.push(row_with_text(n, &record, line));
        (seq, prev) = (n, hash);
    }
    store.append_audit(&rows).await?;
    Ok((seq, prev))
}

/// A record on its way to the writer: its text prepared but for its place in the chain, and
/// its index columns (the row's `seq` and `body` are filled in when it gets its place).
struct Pending {
    chain: chain::Prepared,
    row: AuditRow,
    /// The version the record witnesses (written in the same commit, or neither is), and
    /// where its caller and the writer settle whether it may still be committed.
    witnesses: Option<(OwnedVersion, Arc<Claim>)>,
}

/// Whether a witnessed change may still be committed. The caller, when it stops waiting,
/// abandons it (and answers 503: not carried out); the writer, just before the commit, claims
/// it. Whichever comes first wins: an abandoned change is never committed, and a caller whose
/// change is being committed waits for how that ends.
#[derive(Debug, Default)]
struct Claim(std::sync::atomic::AtomicU8);

impl Claim {
    const WAITING: u8 = 0;
    const ABANDONED: u8 = 1;
    const COMMITTING: u8 = 2;

    fn state(&self) -> u8 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }

    fn swap_from_waiting(&self, to: u8) -> bool {
        use std::sync::atomic::Ordering;
        self.0.compare_exchange(Self::WAITING, to, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// The caller stops waiting; false if the commit has begun.
    fn abandon(&self) -> bool {
        self.swap_from_waiting(Self::ABANDONED)
    }

    /// The writer is about to commit; false if the caller has gone.
    fn commit(&self) -> bool {
        self.swap_from_waiting(Self::COMMITTING) || self.state() == Self::COMMITTING
    }

    fn abandoned(&self) -> bool {
        self.state() == Self::ABANDONED
    }
}

impl Pending {
    fn of(record: &Map<String, Value>) -> Self {
        Self { chain: chain::Prepared::of(record), row: row_with_text(0, record, String::new()), witnesses: None }
    }
}

/// The signed point a retention purge left behind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
    pub signature: String,
}

pub async fn anchor(store: &dyn Store) -> coffer_core::Result<Option<Anchor>> {
    Ok(store.get_meta("audit/anchor").await?.and_then(|b| serde_json::from_slice(&b).ok()))
}

struct Writer {
    /// The store, the file sink and what both phases share; cloned into each file phase.
    side: FileSide,
    head: (i64, String),
    /// Things the log must say about itself (a sink failed, a file vanished), written first
    /// in the next batch.
    pending_notes: Vec<(&'static str, String)>,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    config: AuditConfig,
    /// The file phase of the last batch, while it runs.
    in_flight: Option<tokio::task::JoinHandle<Vec<Note>>>,
}

/// Something the log must say about itself, written first in the next batch.
type Note = (&'static str, String);

/// The most records one batch takes.
const MAX_BATCH: usize = 1024;

/// Tries a batch gets at new places when other writers keep moving the chain's head on.
const MAX_ATTEMPTS: usize = 64;

/// The most records the file can hold past the store after a stop: one batch and the log's
/// notes about itself.
const RECOVERABLE: i64 = MAX_BATCH as i64 + 64;

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut tick = tokio::time::interval(self.config.checkpoint_interval.max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let job = tokio::select! {
                j = rx.recv() => match j { Some(j) => j, None => break },
                _ = tick.tick() => {
                    if self.since_checkpoint > 0 && self.last_checkpoint.elapsed() >= self.config.checkpoint_interval {
                        self.drain().await;
                        let _ = self.checkpoint().await;
                    }
                    continue;
                }
            };
            match job {
                Job::Record(r, ack) => {
                    let mut batch = vec![(*r, ack)];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Job::Record(r, ack)) => batch.push((*r, ack)),
                            Ok(other) => {
                                self.write_batch(std::mem::take(&mut batch)).await;
                                self.other(other).await;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if !batch.is_empty() {
                        self.write_batch(batch).await;
                    }
                }
                other => self.other(other).await,
            }
            if self.since_checkpoint >= self.config.checkpoint_every {
                self.drain().await;
                let _ = self.checkpoint().await;
            }
        }
        self.drain().await;
    }

    /// Waits for the file phase in flight, then takes in what it reported.
    async fn drain(&mut self) {
        if let Some(task) = self.in_flight.take() {
            match task.await {
                Ok(notes) => self.pending_notes.extend(notes),
                Err(e) => set_health(
                    &self.side.health,
                    self.side.clock.as_ref(),
                    Some(format!("the audit file writer failed: {e}")),
                ),
            }
        }
    }

    async fn other(&mut self, job: Job) {
        // Checkpoints and purges write to the file too: the batch before them goes first.
        self.drain().await;
        match job {
            Job::Checkpoint(ack) => {
                let _ = ack.send(self.checkpoint().await);
            }
            Job::Purge(cutoff, ack) => {
                let _ = ack.send(self.purge(cutoff).await);
            }
            Job::Record(..) => {}
        }
    }

    fn note_record(&self, operation: &'static str, text: &str) -> Pending {
        let record = Draft {
            request_id: coffer_crypto::random::guid(),
            time_ms: now_ms(self.side.clock.as_ref()),
            method: "SYSTEM".into(),
            operation: Some(operation),
            who: Some(Who {
                object_id: "coffer".into(),
                name: "Coffer".into(),
                kind: "system".into(),
                ..Default::default()
            }),
            error: Some(text.to_string()),
            ..Default::default()
        }
        .to_record(Outcome::Event, None, None);
        Pending::of(&record)
    }

    async fn write_batch(&mut self, batch: Vec<(Pending, Option<Ack>)>) {
        if let Ok(mut h) = self.side.health.lock() {
            h.batch_started = Some(Instant::now());
        }
        let notes: Vec<(&'static str, String)> = std::mem::take(&mut self.pending_notes);
        let mut records: Vec<Pending> = notes.iter().map(|(op, t)| self.note_record(op, t)).collect();
        let mut acks = Vec::with_capacity(batch.len());
        for (r, ack) in batch {
            records.push(r);
            acks.push(ack);
        }
        // A caller that stopped waiting was told its change was not made: it is not, and
        // neither is its record.
        let mut caller = 0;
        while caller < acks.len() {
            let at = notes.len() + caller;
            if records.get(at).and_then(|r| r.witnesses.as_ref()).is_some_and(|(_, claim)| claim.abandoned()) {
                records.remove(at);
                acks.remove(caller);
            } else {
                caller += 1;
            }
        }
        if records.is_empty() {
            if let Ok(mut h) = self.side.health.lock() {
                h.batch_started = None;
            }
            return;
        }
        let started = Instant::now();
        for attempt in 1.. {
            // Notes take the first seqs; callers' records follow them.
            let first_seq = self.head.0 + 1;
            let first_caller = first_seq + notes.len() as i64;
            let (rows, last_hash) = self.sealed(&records);
            let versions: Vec<OwnedVersion> =
                records.iter().filter_map(|r| Some(r.witnesses.as_ref()?.0.clone())).collect();
            let claims: Vec<Arc<Claim>> =
                records.iter().filter_map(|r| Some(r.witnesses.as_ref()?.1.clone())).collect();
            // The file takes batches in order: this batch's file phase starts when the last
            // one's ended.
            self.drain().await;
            let rows = Arc::new(rows);
            let (stored, store_outcome) = oneshot::channel();
            let mut job = Some(FileJob {
                first_seq,
                first_caller,
                rows: rows.clone(),
                last_hash: last_hash.clone(),
                acks: Vec::new(),
                started,
                store_outcome,
                filed: None,
            });
            let outcome = if versions.is_empty() {
                // Records alone: the file appends and syncs while the store commits (one
                // sync's wait, not two in a row), and answers the callers once it knows how the
                // store went.
                if let Some(mut job) = job.take() {
                    job.acks = std::mem::take(&mut acks);
                    self.in_flight = Some(tokio::spawn(self.side.clone().run(job)));
                }
                self.side.store.append_audit_witnessing(&rows, &[], CommitGate::open()).await
            } else {
                // With changes they witness, the store's commit also waits for the file's sync:
                // a change happens only once its record is in both (and a file that cannot be
                // written stops changes, as it does when a "started" record goes first). The
                // writer answers the callers once the commit returned.
                let (filed, file_synced) = oneshot::channel();
                if let Some(mut job) = job.take() {
                    job.filed = Some(filed);
                    self.in_flight = Some(tokio::spawn(self.side.clone().run(job)));
                }
                let timeout = self.config.write_timeout;
                let gate = CommitGate::new(async move {
                    match tokio::time::timeout(timeout, file_synced).await {
                        Ok(Ok(synced)) => synced?,
                        Ok(Err(_)) => return Err("the audit file writer stopped".to_string()),
                        Err(_) => return Err(format!("the audit file did not sync within {} ms", timeout.as_millis())),
                    }
                    // (Callers whose claim was taken wait for the batch's answer.)
                    if claims.iter().all(|claim| claim.commit()) {
                        Ok(())
                    } else {
                        Err("a caller stopped waiting before its change was committed; nothing was".to_string())
                    }
                });
                self.side.store.append_audit_witnessing(&rows, &versions, gate).await
            };
            match outcome {
                Ok(Witnessed::Written) => {
                    let _ = stored.send(Ok(()));
                    // (Callers of a batch of records alone are answered by its file phase.)
                    for (n, a) in (first_caller..).zip(std::mem::take(&mut acks)) {
                        if let Some(a) = a {
                            let _ = a.send(Ok(Answer::Written(n)));
                        }
                    }
                    self.head = (first_seq + rows.len() as i64 - 1, last_hash);
                    self.since_checkpoint += rows.len() as u64;
                    if let Ok(mut h) = self.side.heads.lock() {
                        h.store = self.head.clone();
                    }
                    return;
                }
                Ok(Witnessed::HeadMoved) => {
                    // Another writer (a node on the same database) appended first: the batch
                    // is taken back out of the file and sealed again after the head as the
                    // store has it now.
                    let (back, callers) = oneshot::channel();
                    let _ = stored.send(Err(Refusal::Again(back)));
                    if acks.is_empty() {
                        acks = callers.await.unwrap_or_default();
                    }
                    self.drain().await;
                    if let Err(msg) = self.read_head(attempt).await {
                        return self.store_refused(acks, notes, started, rows.len(), msg).await;
                    }
                }
                Ok(Witnessed::Refused { index, outcome }) => {
                    // Neither that version nor its record was written, nor anything else: its
                    // caller is told, and the rest is sealed again without it (the file phase
                    // takes the batch back out of the file first).
                    let (back, _) = oneshot::channel();
                    let _ = stored.send(Err(Refusal::Again(back)));
                    // (Notes witness nothing: the refused record is a caller's.)
                    let refused = records
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.witnesses.is_some())
                        .nth(index)
                        .and_then(|(at, _)| Some((at, at.checked_sub(notes.len()).filter(|&c| c < acks.len())?)));
                    let Some((at, caller)) = refused else {
                        let msg = "the store refused a version it was not given".to_string();
                        return self.store_refused(acks, notes, started, rows.len(), msg).await;
                    };
                    records.remove(at);
                    if let Some(ack) = acks.remove(caller) {
                        let _ = ack.send(Ok(Answer::Refused(outcome)));
                    }
                    if records.is_empty() {
                        if let Ok(mut h) = self.side.health.lock() {
                            h.batch_started = None;
                        }
                        return;
                    }
                }
                Err(e) => {
                    let msg = if e.code == "AuditLogUnavailable" {
                        e.message
                    } else {
                        format!("the audit store cannot write: {}", e.message)
                    };
                    let _ = stored.send(Err(Refusal::Failed(msg.clone())));
                    return self.store_refused(acks, notes, started, rows.len(), msg).await;
                }
            }
        }
    }

    /// The chain's head as the store has it, after another writer moved it on. Gives up after
    /// `MAX_ATTEMPTS` batches that lost the race in a row.
    async fn read_head(&mut self, attempt: usize) -> Result<(), String> {
        if !self.config.shared_chain {
            let msg = format!(
                "the audit store holds a record after {} that this writer did not write: something else wrote to the \
                 store. Coffer will not continue the chain after it; run `coffer audit verify`",
                self.head.0
            );
            tracing::error!(target: "coffer::audit", "{msg}");
            return Err(msg);
        }
        if attempt >= MAX_ATTEMPTS {
            return Err(format!("the audit chain's head moved on {attempt} times in a row while a batch was written"));
        }
        let row =
            self.side.store.audit_head().await.map_err(|e| format!("the audit store cannot be read: {}", e.message))?;
        let Some(row) = row else { return Err("the audit store lost its records while a batch was written".into()) };
        let hash = hash_of(&row.body)
            .ok_or_else(|| format!("the audit store's last record ({}) has no hash: it was altered", row.seq))?;
        self.head = (row.seq, hash);
        if let Ok(mut h) = self.side.heads.lock() {
            h.store = self.head.clone();
        }
        Ok(())
    }

    /// `records` given their places after the head: their rows, and the last one's hash.
    fn sealed(&self, records: &[Pending]) -> (Vec<AuditRow>, String) {
        let (mut seq, mut prev) = self.head.clone();
        let mut rows: Vec<AuditRow> = Vec::with_capacity(records.len());
        for Pending { chain, row, .. } in records {
            seq += 1;
            let (hash, text) = chain.seal(seq, &prev);
            prev = hash;
            rows.push(AuditRow { seq, body: text, ..row.clone() });
        }
        (rows, prev)
    }

    /// The store refused a batch: its callers (those the file phase does not answer) are
    /// told why, and the notes it carried are kept for the next one.
    async fn store_refused(
        &mut self,
        acks: Vec<Option<Ack>>,
        notes: Vec<Note>,
        started: Instant,
        records: usize,
        msg: String,
    ) {
        self.side.metrics.observe_audit_write(records, started.elapsed(), false);
        for a in acks.into_iter().flatten() {
            let _ = a.send(Err(AuditFailure(msg.clone())));
        }
        // A file phase under way takes the batch back out of the file before the next batch is
        // given its seqs; health follows the chain's order.
        self.drain().await;
        set_health(&self.side.health, self.side.clock.as_ref(), Some(msg));
        // The notes this batch carried are older than any the file phase just reported.
        let newer = std::mem::replace(&mut self.pending_notes, notes);
        self.pending_notes.extend(newer);
    }

    fn sign_head(&self) -> Result<AuditCheckpoint, String> {
        sign_checkpoint(&self.side.signer, self.side.clock.as_ref(), self.head.clone())
    }

    async fn checkpoint(&mut self) -> Result<Option<AuditCheckpoint>, AuditFailure> {
        if self.head.0 == 0 {
            return Ok(None);
        }
        let cp = self.sign_head().map_err(AuditFailure)?;
        self.side.store.add_audit_checkpoint(&cp).await.map_err(|e| AuditFailure(e.message))?;
        if let Some(file) = self.side.file.clone() {
            let line = checkpoint_line(&cp);
            let synced = file.lock().ok().and_then(|f| f.last.clone()).is_some_and(|l| l.0 == cp.seq);
            if synced {
                let _ =
                    tokio::task::spawn_blocking(move || file.lock().ok().map(|mut f| f.append(&[line], None))).await;
            }
        }
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        Ok(Some(cp))
    }

    async fn purge(&mut self, cutoff_ms: i64) -> Result<u64, AuditFailure> {
        let newest_old = self
            .side
            .store
            .query_audit(&AuditQuery {
                until_ms: Some(cutoff_ms - 1),
                newest_first: true,
                limit: 1,
                ..Default::default()
            })
            .await
            .map_err(|e| AuditFailure(e.message))?;
        let Some(last_old) = newest_old.into_iter().next() else { return Ok(0) };
        // The anchor vouches for the last purged record; without its hash there is nothing to
        // vouch for, and purging would destroy the evidence.
        let hash = hash_of(&last_old.body).ok_or_else(|| {
            AuditFailure(format!("audit record {} has no hash: it was altered, so nothing is purged", last_old.seq))
        })?;
        let cp = sign_checkpoint(&self.side.signer, self.side.clock.as_ref(), (last_old.seq, hash.clone()))
            .map_err(AuditFailure)?;
        self.side.store.add_audit_checkpoint(&cp).await.map_err(|e| AuditFailure(e.message))?;
        let anchor = serde_json::to_vec(&Anchor { seq: last_old.seq, hash, signature: cp.signature.clone() })
            .map_err(|e| AuditFailure(e.to_string()))?;
        let gone =
            self.side.store.purge_audit_through(last_old.seq, &anchor).await.map_err(|e| AuditFailure(e.message))?;
        self.pending_notes.push((
            "AuditRetentionPurge",
            format!(
                "{gone} records up to {} (older than {} days) were purged; the chain continues from a signed anchor",
                last_old.seq, self.config.retention_days
            ),
        ));
        Ok(gone)
    }
}

/// A signed checkpoint of the record `(seq, hash)`.
fn sign_checkpoint(
    signer: &TokenSigner,
    clock: &dyn Clock,
    (seq, hash): (i64, String),
) -> Result<AuditCheckpoint, String> {
    let time_ms = now_ms(clock);
    let claims = CheckpointClaims { seq, hash, time_ms };
    let signature = signer.sign(&claims).map_err(|e| format!("cannot sign a checkpoint: {e}"))?;
    Ok(AuditCheckpoint { seq: claims.seq, hash: claims.hash, time_ms, signature })
}

fn set_health(health: &Mutex<HealthState>, clock: &dyn Clock, error: Option<String>) {
    if let Ok(mut h) = health.lock() {
        let now = now_ms(clock);
        match error {
            Some(e) => {
                tracing::error!(target: "coffer::audit", error = %e, "audit write failed: requests are refused until it recovers");
                h.last_error = Some((now, e));
            }
            None => h.last_success = Some(now),
        }
        h.batch_started = None;
    }
}

/// Why the store did not take a batch.
enum Refusal {
    /// It failed: the callers are told why.
    Failed(String),
    /// The batch will be written again at new places (another writer moved the chain's head
    /// on, or a version it witnessed was refused): the callers are handed back to the writer.
    Again(oneshot::Sender<Vec<Option<Ack>>>),
}

/// A batch for its file phase, which runs while the store commits it.
struct FileJob {
    first_seq: i64,
    /// The seq of the first caller's record (the log's own notes come first).
    first_caller: i64,
    rows: Arc<Vec<AuditRow>>,
    /// The hash of the last of `rows` (known from sealing: not parsed back out of its body).
    last_hash: String,
    acks: Vec<Option<Ack>>,
    started: Instant,
    /// How the store's commit of the batch went (why not, if it failed).
    store_outcome: oneshot::Receiver<Result<(), Refusal>>,
    /// Told whether the file holds the batch, synced, when the store's commit waits for it.
    filed: Option<oneshot::Sender<Result<(), String>>>,
}

/// The file phase of a batch, on its own task: append and sync the file (catching up on what
/// it lacks), copy to syslog, then answer the batch's callers. Returns the notes the log must
/// write about itself.
#[derive(Clone)]
struct FileSide {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    signer: Arc<TokenSigner>,
    file: Option<Arc<Mutex<FileSink>>>,
    syslog: Option<Arc<super::syslog::Syslog>>,
    heads: Arc<Mutex<Heads>>,
    health: Arc<Mutex<HealthState>>,
    metrics: Arc<dyn WriteObserver>,
}

impl FileSide {
    async fn run(self, job: FileJob) -> Vec<Note> {
        let FileJob { first_seq, first_caller, rows, last_hash, acks, started, store_outcome, filed: told } = job;
        let mut notes = Vec::new();
        let filed = self.append_to_file(first_seq, &rows, last_hash, &mut notes).await;
        if let Some(told) = told {
            let _ = told.send(filed.clone());
        }
        let stored = store_outcome.await.unwrap_or_else(|_| Err(Refusal::Failed("the audit writer stopped".into())));
        if let Err(refusal) = stored {
            // The store refused the batch: its seqs go to the next one, so the file must not
            // keep it. (The writer reports the failure.)
            if filed.is_ok()
                && let Err(e) = self.undo_append().await
            {
                tracing::error!(target: "coffer::audit", "a batch the store refused stays in the audit file: {e}");
            }
            match refusal {
                Refusal::Failed(msg) => {
                    for a in acks.into_iter().flatten() {
                        let _ = a.send(Err(AuditFailure(msg.clone())));
                    }
                }
                Refusal::Again(writer) => {
                    let _ = writer.send(acks);
                }
            }
            return notes;
        }
        if let Err(msg) = filed.and(self.rotate_if_due().await) {
            self.metrics.observe_audit_write(rows.len(), started.elapsed(), false);
            // The records are in the store; the file catches up from it once it works again.
            // The callers get a 503, and the log says why their records show no response.
            set_health(&self.health, self.clock.as_ref(), Some(msg.clone()));
            let last_seq = rows.last().map_or(first_seq, |r| r.seq);
            notes.push((
                "AuditSinkFailure",
                format!("records {first_seq} to {last_seq} were refused to their callers (503): {msg}"),
            ));
            for a in acks.into_iter().flatten() {
                let _ = a.send(Err(AuditFailure(msg.clone())));
            }
            return notes;
        }
        self.metrics.observe_audit_write(rows.len(), started.elapsed(), true);
        set_health(&self.health, self.clock.as_ref(), None);
        if let Some(s) = &self.syslog {
            for r in rows.iter() {
                s.send(&r.body);
            }
        }
        for (n, a) in (first_caller..).zip(acks) {
            if let Some(a) = a {
                let _ = a.send(Ok(Answer::Written(n)));
            }
        }
        notes
    }

    /// Takes the batch just appended back out of the file.
    async fn undo_append(&self) -> Result<(), String> {
        let Some(file) = self.file.clone() else { return Ok(()) };
        let cut = tokio::task::spawn_blocking(move || {
            let mut f = file.lock().map_err(|_| "audit file state poisoned".to_string())?;
            f.undo_last_append().map_err(|e| format!("the audit file cannot be cut back: {e}"))?;
            Ok::<_, String>(f.last.clone())
        })
        .await
        .map_err(|e| format!("the audit file writer failed: {e}"))??;
        if let Ok(mut h) = self.heads.lock() {
            h.file = cut;
        }
        Ok(())
    }

    /// Appends rows to the file sink, first catching up whatever the store has that the file
    /// lacks (after a file failure). Rotates when the file grew too large.
    async fn append_to_file(
        &self,
        first_seq: i64,
        rows: &[AuditRow],
        last_hash: String,
        notes: &mut Vec<Note>,
    ) -> Result<(), String> {
        let Some(file) = self.file.clone() else { return Ok(()) };
        // Catch up, a page at a time, on what the store has and the file lacks.
        let mut from =
            file.lock().map_err(|_| "audit file state poisoned".to_string())?.last.as_ref().map_or(0, |l| l.0);
        let mut notices = Vec::new();
        while from + 1 < first_seq {
            let missing = self
                .store
                .query_audit(&AuditQuery {
                    after_seq: Some(from),
                    before_seq: Some(first_seq),
                    limit: CATCH_UP_PAGE,
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("the audit store cannot be read: {}", e.message))?;
            let Some(page_last) = missing.last().map(|r| r.seq) else { break };
            from = page_last;
            let page_hash = missing.last().and_then(|r| hash_of(&r.body)).unwrap_or_default();
            let page = missing.into_iter().map(|r| (r.seq, r.body)).collect();
            let (notice, _) = append_blocking(&file, page, page_hash).await?;
            notices.extend(notice);
        }
        let batch = rows.iter().map(|r| (r.seq, r.body.clone())).collect();
        let (notice, _) = append_blocking(&file, batch, last_hash).await?;
        for n in notices.into_iter().chain(notice) {
            tracing::warn!(target: "coffer::audit", "{n}");
            notes.push(("AuditFileReplaced", n));
        }
        if let Ok(mut h) = self.heads.lock() {
            h.file = file.lock().ok().and_then(|f| f.last.clone());
        }
        Ok(())
    }

    /// Rotates the file when it grew too large — once the store holds what the file does, as
    /// the fresh file starts with a checkpoint (in the store too) of its last record, so it
    /// verifies alone.
    async fn rotate_if_due(&self) -> Result<(), String> {
        let Some(file) = self.file.clone() else { return Ok(()) };
        let due = file.lock().map_err(|_| "audit file state poisoned".to_string())?.needs_rotation();
        if !due {
            return Ok(());
        }
        let head = file.lock().ok().and_then(|f| f.last.clone()).ok_or("the audit file has no last record")?;
        let cp = sign_checkpoint(&self.signer, self.clock.as_ref(), head)?;
        self.store.add_audit_checkpoint(&cp).await.map_err(|e| e.message)?;
        let line = checkpoint_line(&cp);
        tokio::task::spawn_blocking(move || {
            let mut f = file.lock().map_err(|_| "audit file state poisoned".to_string())?;
            f.rotate().map_err(|e| format!("the audit file cannot be rotated: {e}"))?;
            f.append(&[line], None).map_err(|e| format!("the audit file cannot be written: {e}")).map(|_| ())
        })
        .await
        .map_err(|e| format!("the audit file writer failed: {e}"))?
    }
}

/// Rows read from the store at a time when the file sink catches up after a failure.
const CATCH_UP_PAGE: usize = 10_000;

/// Appends records `(seq, line)`, the last of which has `last_hash`, to the file sink on a
/// blocking thread, skipping any the file already holds: (a notice if the file had been deleted
/// or replaced, whether it is due for rotation).
async fn append_blocking(
    file: &Arc<Mutex<FileSink>>,
    records: Vec<(i64, String)>,
    last_hash: String,
) -> Result<(Option<String>, bool), String> {
    let file = file.clone();
    tokio::task::spawn_blocking(move || {
        let mut f = file.lock().map_err(|_| "audit file state poisoned".to_string())?;
        let notice =
            f.append_records(&records, &last_hash).map_err(|e| format!("the audit file cannot be written: {e}"))?;
        Ok((notice, f.needs_rotation()))
    })
    .await
    .map_err(|e| format!("the audit file writer failed: {e}"))?
}

/// A checkpoint as a line of the file sink.
pub fn checkpoint_line(cp: &AuditCheckpoint) -> String {
    json!({"category": "AuditCheckpoint", "seq": cp.seq, "hash": cp.hash, "timeMs": cp.time_ms, "signature": cp.signature})
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_head_record_without_its_hash_stops_the_start() {
        let store: Arc<dyn Store> = Arc::new(coffer_store::SqliteStore::in_memory().await.expect("store"));
        let row = AuditRow {
            seq: 1,
            time_ms: 1,
            vault: None,
            caller: None,
            operation: "SecretGet".into(),
            result: "success".into(),
            object: None,
            body: r#"{"seq":1,"operationName":"SecretGet"}"#.into(),
        };
        store.append_audit(&[row]).await.expect("row");
        let (signer, _) = TokenSigner::generate("k".into()).expect("signer");
        let dir = tempfile::tempdir().expect("dir");
        let clock: Arc<dyn Clock> = Arc::new(coffer_core::SystemClock);
        #[derive(Debug)]
        struct Uncounted;
        impl WriteObserver for Uncounted {
            fn observe_audit_write(&self, _: usize, _: Duration, _: bool) {}
        }
        let metrics: Arc<dyn WriteObserver> = Arc::new(Uncounted);
        let started = AuditLog::start(store, clock, signer, AuditConfig::in_dir(dir.path()), metrics).await;
        let Err(err) = started else { panic!("the start is refused, not continued from an empty hash") };
        assert!(err.message.contains("has no hash"), "{}", err.message);
    }

    #[derive(Debug)]
    struct Uncounted;
    impl WriteObserver for Uncounted {
        fn observe_audit_write(&self, _: usize, _: Duration, _: bool) {}
    }

    /// Records sealed onto `head` as the writer would, as file lines.
    fn sealed_lines(head: (i64, String), n: i64) -> Vec<String> {
        let (mut seq, mut prev) = head;
        (0..n)
            .map(|_| {
                let mut record = Map::new();
                record.insert("operationName".into(), json!("SecretGet"));
                seq += 1;
                let (hash, text) = chain::seal_to_text(&mut record, seq, &prev);
                prev = hash;
                text
            })
            .collect()
    }

    fn append_lines(path: &std::path::Path, lines: &[String]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(path).expect("open");
        for l in lines {
            writeln!(f, "{l}").expect("write");
        }
    }

    /// Every record links to the one before it (the first to the genesis) and is whole.
    fn assert_one_chain(rows: &[AuditRow]) {
        let mut prev = GENESIS.to_string();
        for r in rows {
            let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&r.body) else { panic!("a JSON record") };
            assert_eq!(m.get("prevHash").and_then(Value::as_str), Some(prev.as_str()), "record {} links", r.seq);
            prev = chain::record_hash(&m);
            assert_eq!(m.get("hash").and_then(Value::as_str), Some(prev.as_str()), "record {} is whole", r.seq);
        }
    }

    /// Two writers on one store (two nodes on one database): each finds the chain's head moved
    /// on by the other, writes after it, and the store holds one chain without a gap or a fork
    /// — every record linked to the one before, whichever writer sealed it.
    #[tokio::test]
    async fn two_writers_on_one_store_keep_one_chain() {
        let store: Arc<dyn Store> = Arc::new(coffer_store::SqliteStore::in_memory().await.expect("store"));
        let clock: Arc<dyn Clock> = Arc::new(coffer_core::SystemClock);
        let (a_dir, b_dir) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
        let start = |dir: &std::path::Path| {
            let signer = TokenSigner::generate("k".into()).expect("signer").0;
            let config = AuditConfig { shared_chain: true, ..AuditConfig::in_dir(dir) };
            AuditLog::start(store.clone(), clock.clone(), signer, config, Arc::new(Uncounted))
        };
        let (a, b) = (start(a_dir.path()).await.expect("a"), start(b_dir.path()).await.expect("b"));
        let record = |n: usize| {
            let mut r = Map::new();
            r.insert("operationName".into(), json!(format!("Test{n}")));
            r
        };
        for round in 0..5 {
            let (from_a, from_b) = tokio::join!(
                async { [a.write(record(round * 10)).await, a.write(record(round * 10 + 1)).await] },
                async { [b.write(record(round * 10 + 5)).await, b.write(record(round * 10 + 6)).await] },
            );
            for seq in from_a.into_iter().chain(from_b) {
                seq.expect("written");
            }
        }
        let rows = store.query_audit(&AuditQuery { limit: 100, ..Default::default() }).await.expect("rows");
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=20).collect::<Vec<i64>>(), "no gap");
        assert_one_chain(&rows);
        // Each writer's file caught up with the other's records: both hold the whole chain.
        for log in [&a, &b] {
            log.system("Test", Outcome::Event, None, None, None).await.expect("one more");
        }
        let last = store.audit_head().await.expect("head").expect("a head").seq;
        for log in [&a, &b] {
            let file = log.heads().file.expect("a file sink").0;
            assert!(file >= last - 1, "the file holds the chain up to {file} of {last}");
        }
    }

    /// A writer that is the chain's only one (one node) does not continue after a record it
    /// did not write: that is tampering with the store, and the write fails, saying so.
    #[tokio::test]
    async fn the_only_writer_refuses_to_continue_after_a_record_it_did_not_write() {
        let store: Arc<dyn Store> = Arc::new(coffer_store::SqliteStore::in_memory().await.expect("store"));
        let clock: Arc<dyn Clock> = Arc::new(coffer_core::SystemClock);
        let dir = tempfile::tempdir().expect("dir");
        let signer = TokenSigner::generate("k".into()).expect("signer").0;
        let log = AuditLog::start(store.clone(), clock, signer, AuditConfig::in_dir(dir.path()), Arc::new(Uncounted))
            .await
            .expect("start");
        let first = log.system("Test", Outcome::Event, None, None, None).await.expect("written");
        let head = log.heads().store;
        let forged = sealed_lines(head, 1).pop().expect("a line");
        let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&forged) else { panic!("a JSON record") };
        store.append_audit(&[row_with_text(first + 1, &m, forged)]).await.expect("forged in");
        let refused = log.system("Test", Outcome::Event, None, None, None).await;
        let Err(AuditFailure(msg)) = refused else { panic!("the writer continued after a forged record") };
        assert!(msg.contains("did not write"), "{msg}");
        assert_eq!(store.audit_head().await.expect("head").map(|r| r.seq), Some(first + 1), "nothing after it");
    }

    /// A caller that stops waiting and the writer about to commit settle it once: whichever
    /// comes first wins, and the other learns it.
    #[test]
    fn a_change_is_either_abandoned_or_committed() {
        let gone = Claim::default();
        assert!(gone.abandon(), "the caller gives up first");
        assert!(!gone.commit(), "so the writer may not commit it");
        assert!(gone.abandoned());
        let taken = Claim::default();
        assert!(taken.commit(), "the writer claims it first");
        assert!(taken.commit(), "(again, for the same batch tried twice)");
        assert!(!taken.abandon(), "so the caller waits for the commit's answer");
        assert!(!taken.abandoned());
    }

    /// Records written with the versions they witness, in one batch with others: a refused
    /// version takes only its own record out, and the chain the rest form has no gap.
    #[tokio::test]
    async fn a_refused_witness_leaves_the_rest_of_its_batch_chained() {
        use coffer_core::object::{Attributes, ObjectKind, Tags};
        use coffer_store::{NewVersion, ObjectRef};
        let store: Arc<dyn Store> = Arc::new(coffer_store::SqliteStore::in_memory().await.expect("store"));
        let dir = tempfile::tempdir().expect("dir");
        let clock: Arc<dyn Clock> = Arc::new(coffer_core::SystemClock);
        let signer = TokenSigner::generate("k".into()).expect("signer").0;
        let log = AuditLog::start(store.clone(), clock, signer, AuditConfig::in_dir(dir.path()), Arc::new(Uncounted))
            .await
            .expect("start");
        let (attributes, tags) = (Attributes::new(1), Tags::new());
        let version = |key: &'static str, id: &'static str| {
            OwnedVersion::of(&NewVersion {
                at: ObjectRef { vault_id: "v", kind: ObjectKind::Secret, name_key: key },
                name: key,
                version: id,
                attributes: &attributes,
                tags: &tags,
                content_type: None,
                managed: false,
                payload: b"p",
                meta: None,
            })
        };
        store.put_version(&version("gone", "g1").borrowed()).await.expect("put");
        let gone = ObjectRef { vault_id: "v", kind: ObjectKind::Secret, name_key: "gone" };
        let deletion = coffer_core::lifecycle::Deletion { deleted_date: 2, scheduled_purge_date: 3 };
        assert!(store.delete_object(&gone, &deletion).await.expect("delete"));
        let record = |op: &str| {
            let mut r = Map::new();
            r.insert("operationName".into(), json!(op));
            r
        };
        let (plain, refused, kept) = tokio::join!(
            log.write(record("SecretGet")),
            log.write_witnessing(record("SecretSet"), version("gone", "g2")),
            log.write_witnessing(record("SecretSet"), version("kept", "k1")),
        );
        assert_eq!(refused.expect("answered"), Answer::Refused(PutOutcome::NameDeleted));
        let Answer::Written(kept) = kept.expect("answered") else { panic!("the other version is written") };
        let plain = plain.expect("written");
        let kept_at = ObjectRef { vault_id: "v", kind: ObjectKind::Secret, name_key: "kept" };
        assert!(store.get_version(&kept_at, None, false).await.expect("get").is_some(), "with its record");
        assert!(store.get_version(&gone, Some("g2"), true).await.expect("get").is_none(), "not the refused one");
        let rows = store.query_audit(&AuditQuery { limit: 10, ..Default::default() }).await.expect("rows");
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 2], "two records, no gap");
        assert_eq!([plain.min(kept), plain.max(kept)], [1, 2]);
        assert_one_chain(&rows);
    }

    #[tokio::test]
    async fn records_the_file_holds_past_the_store_are_recovered_when_they_continue_its_chain() {
        let store: Arc<dyn Store> = Arc::new(coffer_store::SqliteStore::in_memory().await.expect("store"));
        let dir = tempfile::tempdir().expect("dir");
        let config = AuditConfig::in_dir(dir.path());
        let path = config.file.as_ref().expect("file sink").path.clone();
        let clock: Arc<dyn Clock> = Arc::new(coffer_core::SystemClock);
        let metrics: Arc<dyn WriteObserver> = Arc::new(Uncounted);
        let signer = || TokenSigner::generate("k".into()).expect("signer").0;
        let log = AuditLog::start(store.clone(), clock.clone(), signer(), config.clone(), metrics.clone())
            .await
            .expect("start");
        let seq = log.system("Test", Outcome::Event, None, None, None).await.expect("write");
        let head = log.heads().store;
        assert_eq!(head.0, seq);
        drop(log);
        // Stopped after the file's sync and before the store's commit: the file is ahead.
        append_lines(&path, &sealed_lines(head.clone(), 2));
        let log = AuditLog::start(store.clone(), clock.clone(), signer(), config.clone(), metrics.clone())
            .await
            .expect("restart");
        assert_eq!(log.heads().store.0, seq + 2, "the two records were copied to the store");
        let rows = store.query_audit(&AuditQuery { after_seq: Some(seq), limit: 10, ..Default::default() }).await;
        assert_eq!(rows.expect("rows").len(), 2);
        // The next record continues from them, in both sinks; the log says what happened.
        let next = log.system("Test", Outcome::Event, None, None, None).await.expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("AuditRecordsRecovered"), "{text}");
        assert_eq!(log.heads().file.map(|f| f.0), Some(next));
        let head = log.heads().store;
        drop(log);

        // Lines that do not continue the store's chain are not taken in, and the start says why.
        append_lines(&path, &sealed_lines((head.0, GENESIS.to_string()), 1));
        let refused = AuditLog::start(store.clone(), clock.clone(), signer(), config.clone(), metrics.clone()).await;
        let Err(err) = refused else { panic!("a file that does not continue the chain is refused") };
        assert!(err.message.contains("do not continue the store's chain"), "{}", err.message);
        assert_eq!(store.audit_head().await.expect("head").map(|r| r.seq), Some(head.0), "nothing copied");
    }
}
