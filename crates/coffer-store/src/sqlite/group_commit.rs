//! Group commit. SQLite has one writer and a durable commit costs a sync of the WAL (most of a
//! SET's time in the store, and most of an audit batch's), so the writes that come at the same
//! moment — new object versions from different requests and the audit writer's batch — share
//! one transaction and one sync: a writer that finds the write lock taken leaves its change in
//! the queue and waits; whoever takes the lock next writes everything queued — each change in
//! its own savepoint, so one refused name does not undo another's version or the audit batch —
//! commits once and answers every waiter. Nobody is answered before the commit returned, so
//! "acknowledged" still means "on disk". The audit writer sends one batch at a time, so its
//! batches reach the table in the chain's order. An audit batch may carry the versions its
//! records witness (a SET's new version with its success record): they are one change, written
//! whole or not at all, and the group's commit waits for the batch's `CommitGate` (the audit
//! file synced).
use std::sync::Mutex as SyncMutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Acquire;
use tokio::sync::oneshot;

use super::*;

/// A change that can share a transaction with others, borrowed from its caller.
#[derive(Clone)]
enum Change<'a> {
    Version(NewVersion<'a>),
    /// An audit batch and the versions its records witness.
    Audit(&'a [AuditRow], &'a [OwnedVersion]),
}

/// A change left in the queue, with its own copies of what it borrowed.
enum Queued {
    Version(Box<OwnedVersion>),
    /// An audit batch, the versions it witnesses, and what the commit waits for (taken by the
    /// group that writes it; in a mutex, as the queue is shared across the group's awaits).
    Audit(Vec<AuditRow>, Vec<OwnedVersion>, SyncMutex<Option<CommitGate>>),
}

impl Queued {
    fn borrowed(&self) -> Change<'_> {
        match self {
            Queued::Version(v) => Change::Version(v.borrowed()),
            Queued::Audit(rows, versions, _) => Change::Audit(rows, versions),
        }
    }

    fn take_gate(&mut self) -> Option<CommitGate> {
        match self {
            Queued::Audit(_, _, gate) => gate.get_mut().unwrap_or_else(|p| p.into_inner()).take(),
            Queued::Version(_) => None,
        }
    }
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Put(PutOutcome),
    Appended(Witnessed),
}

impl Done {
    /// Whether the change wrote rows (and so needs the commit).
    fn wrote(self) -> bool {
        matches!(self, Done::Put(PutOutcome::Written) | Done::Appended(Witnessed::Written))
    }
}

/// A change waiting for the next writer.
struct Waiting {
    id: u64,
    change: Queued,
    answer: oneshot::Sender<Result<Done>>,
}

/// The changes waiting for the write lock.
#[derive(Default)]
pub(super) struct WriteQueue {
    waiting: SyncMutex<Vec<Waiting>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteQueue")
    }
}

impl WriteQueue {
    fn push(&self, change: Queued) -> (u64, oneshot::Receiver<Result<Done>>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer, rx) = oneshot::channel();
        self.lock().push(Waiting { id, change, answer });
        (id, rx)
    }

    fn take(&self) -> Vec<Waiting> {
        std::mem::take(&mut *self.lock())
    }

    /// Takes `id` back out of the queue; false if a writer already took it.
    fn withdraw(&self, id: u64) -> bool {
        let mut q = self.lock();
        let before = q.len();
        q.retain(|w| w.id != id);
        q.len() != before
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        // The queue holds no invariant a panic could break half-way.
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Who writes a group its caller leads.
#[derive(Clone, Copy)]
enum Leader {
    /// A task of its own: the caller may be dropped (a request whose client hung up).
    OwnTask,
    /// The caller itself, which is never dropped half-way.
    Inline,
}

/// What a writer waiting for the lock got first.
enum Turn {
    Answered(std::result::Result<Result<Done>, oneshot::error::RecvError>),
    Lock(Result<tokio::sync::OwnedMutexGuard<()>>),
}

fn writer_gone() -> Error {
    Error::unavailable("StoreUnavailable", "The write was interrupted before it was committed; retry it.")
}

fn unexpected(done: Done) -> Error {
    Error::internal(format!("group commit: a change got another kind's outcome ({done:?})"))
}

impl SqliteStore {
    /// One new version, written alone or with the others waiting at the same moment.
    pub(super) async fn put_version_grouped(&self, v: &NewVersion<'_>) -> Result<PutOutcome> {
        match self.grouped(Queued::Version(Box::new(OwnedVersion::of(v))), Leader::OwnTask).await? {
            Done::Put(outcome) => Ok(outcome),
            other => Err(unexpected(other)),
        }
    }

    /// One audit batch and the versions it witnesses, written alone or with the versions
    /// waiting at the same moment.
    pub(super) async fn append_audit_grouped(
        &self,
        rows: &[AuditRow],
        versions: &[OwnedVersion],
        gate: CommitGate,
    ) -> Result<Witnessed> {
        // The audit writer is one task that is not dropped while it writes (only at shutdown),
        // so it writes a group it leads itself: one task switch fewer on every audited request.
        let change = Queued::Audit(rows.to_vec(), versions.to_vec(), SyncMutex::new(Some(gate)));
        match self.grouped(change, Leader::Inline).await? {
            Done::Appended(w) => Ok(w),
            other => Err(unexpected(other)),
        }
    }

    /// Queues `change` and waits for whichever comes first: a writer that took it, or the
    /// lock — then this caller leads the group that writes the queue. A request's group is
    /// written by a task of its own: a caller that goes away (its client hung up) must not take
    /// the others' changes with it, least of all half-way through the commit.
    async fn grouped(&self, change: Queued, leader: Leader) -> Result<Done> {
        let (id, mut answer) = self.queue.push(change);
        let turn = tokio::select! {
            biased;
            a = &mut answer => Turn::Answered(a),
            w = self.write_lock_owned() => Turn::Lock(w),
        };
        let guard = match turn {
            Turn::Answered(a) => return a.unwrap_or_else(|_| Err(writer_gone())),
            Turn::Lock(Err(e)) => {
                if self.queue.withdraw(id) {
                    return Err(e);
                }
                // A writer took ours before the lock failed for us: its answer is the truth.
                return answer.await.unwrap_or_else(|_| Err(writer_gone()));
            }
            Turn::Lock(Ok(guard)) => guard,
        };
        // The writer before us may have written ours just as we got the lock.
        if let Ok(a) = answer.try_recv() {
            return a;
        }
        let group = Group {
            pool: self.pool(),
            faulted: self.faulted.clone(),
            memos: self.memos.clone(),
            waiting: self.queue.take(),
        };
        match leader {
            Leader::OwnTask => drop(tokio::spawn(group.write(guard))),
            Leader::Inline => group.write(guard).await,
        }
        answer.await.unwrap_or_else(|_| Err(writer_gone()))
    }
}

/// Everything one group commit needs, owned by the task that writes it.
struct Group {
    pool: SqlitePool,
    faulted: std::sync::Arc<std::sync::atomic::AtomicBool>,
    memos: std::sync::Arc<Memos>,
    waiting: Vec<Waiting>,
}

impl Group {
    /// Writes the group in one transaction and answers every waiter; `_lock` is the write
    /// lock, released when the group is done.
    async fn write(mut self, _lock: tokio::sync::OwnedMutexGuard<()>) {
        let gates: Vec<CommitGate> = self.waiting.iter_mut().filter_map(|w| w.change.take_gate()).collect();
        let changes: Vec<Change<'_>> = self.waiting.iter().map(|w| w.change.borrowed()).collect();
        let outcomes = self.write_changes(&changes, gates).await;
        if changes.iter().any(|c| matches!(c, Change::Version(_)) || matches!(c, Change::Audit(_, v) if !v.is_empty()))
        {
            // Before the lock is released, as `MemoWrite` does for every other object change.
            self.memos.versions.invalidate();
        }
        if outcomes.iter().any(|o| o.as_ref().is_err_and(|e| e.kind == coffer_core::ErrorKind::Unavailable)) {
            // The next write starts on fresh connections (see `SqliteStore::write_lock`).
            self.faulted.store(true, std::sync::atomic::Ordering::Release);
        }
        drop(changes);
        for (w, outcome) in self.waiting.into_iter().zip(outcomes) {
            // A waiter that gave up (its client went away) is not told.
            let _ = w.answer.send(outcome);
        }
    }

    /// Each change's outcome; a change counts as done only once the transaction committed.
    async fn write_changes(&self, all: &[Change<'_>], gates: Vec<CommitGate>) -> Vec<Result<Done>> {
        if let [Change::Audit(rows, [])] = all {
            // One statement, its own transaction: what it waits for comes first.
            let mut gates = gates;
            if let Some(gate) = gates.pop()
                && let Err(why) = gate.passed().await
            {
                return vec![Err(Error::unavailable("AuditLogUnavailable", why))];
            }
            match insert_audit_batch_alone(&self.pool, rows).await {
                Some(inserted) => return vec![inserted.map(Done::Appended)],
                None => return self.write_in_transaction(all, Vec::new()).await,
            }
        }
        self.write_in_transaction(all, gates).await
    }

    async fn write_in_transaction(&self, all: &[Change<'_>], gates: Vec<CommitGate>) -> Vec<Result<Done>> {
        let mut tx = match self.pool.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                let e = backend(e);
                return all.iter().map(|_| Err(e.clone())).collect();
            }
        };
        let mut outcomes = Vec::with_capacity(all.len());
        if let [one] = all {
            outcomes.push(apply(&mut tx, one).await);
        } else {
            for change in all {
                let outcome = apply_in_savepoint(&mut tx, change).await;
                if let Err(e) = &outcome
                    && e.kind == coffer_core::ErrorKind::Unavailable
                {
                    // A fault (a full disk) can end SQLite's transaction under us; what ran
                    // after it would commit on its own while we report it failed. Nothing more
                    // runs, nothing is committed, and everyone is told the cause.
                    let e = e.clone();
                    return all.iter().map(|_| Err(e.clone())).collect();
                }
                outcomes.push(outcome);
            }
        }
        let wrote = outcomes.iter().any(|o| o.as_ref().is_ok_and(|d| d.wrote()));
        // (Nothing to commit, nothing to wait for: a gate not awaited does not pass.)
        for gate in gates.into_iter().filter(|_| wrote) {
            // The audit records' other copy did not sync: nothing is committed (a change whose
            // record is not everywhere it must be does not happen), and everyone is told why.
            if let Err(why) = gate.passed().await {
                let e = Error::unavailable("AuditLogUnavailable", why);
                return all.iter().map(|_| Err(e.clone())).collect();
            }
        }
        if wrote && let Err(e) = tx.commit().await {
            let e = backend(e);
            for o in outcomes.iter_mut() {
                if o.as_ref().is_ok_and(|d| d.wrote()) {
                    *o = Err(e.clone());
                }
            }
        }
        outcomes
    }
}

async fn apply(conn: &mut sqlx::SqliteConnection, change: &Change<'_>) -> Result<Done> {
    match change {
        Change::Version(v) => put_version_in(conn, v).await.map(Done::Put),
        Change::Audit(rows, versions) => {
            // A refused version leaves the rest unwritten: the caller (savepoint or
            // transaction) rolls back what came before it, as for any change that did not write.
            for (index, v) in versions.iter().enumerate() {
                let outcome = put_version_in(conn, &v.borrowed()).await?;
                if outcome != PutOutcome::Written {
                    return Ok(Done::Appended(Witnessed::Refused { index, outcome }));
                }
            }
            insert_audit_rows(conn, rows).await.map(Done::Appended)
        }
    }
}

/// One change of a group: rolled back alone if it is refused or fails.
async fn apply_in_savepoint(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, change: &Change<'_>) -> Result<Done> {
    let mut sp = tx.begin().await.map_err(backend)?;
    match apply(&mut sp, change).await {
        Ok(done) if done.wrote() => {
            sp.commit().await.map_err(backend)?;
            Ok(done)
        }
        other => {
            sp.rollback().await.map_err(backend)?;
            other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version<'a>(key: &'a str, id: &'a str, attributes: &'a Attributes, tags: &'a Tags) -> NewVersion<'a> {
        NewVersion {
            at: ObjectRef { vault_id: "v", kind: ObjectKind::Secret, name_key: key },
            name: key,
            version: id,
            attributes,
            tags,
            content_type: None,
            managed: false,
            payload: b"p",
            meta: None,
        }
    }

    /// Polls `f` once; true if it finished.
    async fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> bool {
        tokio::select! {
            biased;
            _ = f => true,
            _ = std::future::ready(()) => false,
        }
    }

    /// The request that leads a group goes away (its client hung up) right after taking the
    /// others' changes: they are written and answered all the same.
    #[tokio::test]
    async fn a_leader_that_goes_away_does_not_take_the_group_with_it() {
        let store = SqliteStore::in_memory().await.expect("store");
        let (attributes, tags) = (Attributes::new(1), Tags::new());
        let (a, b, c) = (
            version("a", "a1", &attributes, &tags),
            version("b", "b1", &attributes, &tags),
            version("c", "c1", &attributes, &tags),
        );
        let held = store.write.clone().lock_owned().await;
        let mut leader = Box::pin(store.put_version_grouped(&a));
        let mut second = Box::pin(store.put_version_grouped(&b));
        let mut third = Box::pin(store.put_version_grouped(&c));
        for f in [&mut leader, &mut second, &mut third] {
            assert!(!poll_once(f).await, "queued behind the held lock");
        }
        drop(held);
        // The first in line gets the lock, takes the queue and starts the group, then waits.
        assert!(!poll_once(&mut leader).await, "the leader waits for its group's answer");
        drop(leader);
        assert_eq!(second.await.expect("b"), PutOutcome::Written);
        assert_eq!(third.await.expect("c"), PutOutcome::Written);
        for key in ["a", "b", "c"] {
            let at = ObjectRef { vault_id: "v", kind: ObjectKind::Secret, name_key: key };
            assert!(store.get_version(&at, None, false).await.expect("read").is_some(), "{key} was written");
        }
    }
}
