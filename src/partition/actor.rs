//! The partition actor: a dedicated OS thread that owns the [`Writer`] and
//! pumps requests from a bounded `flume` mailbox into group commits.
//!
//! Why a thread and not a tokio task: every write ends in `write(2)` and
//! usually `fdatasync(2)`, which block for tens to hundreds of microseconds.
//! A dedicated thread blocks on them (and on `recv`) without ever stalling a
//! runtime worker, costs one wake-up per group rather than a `spawn_blocking`
//! hop per group, and keeps the loop a plain synchronous function. Each
//! partition opened costs one thread (512 KiB stack) until the `Db` closes;
//! bounding open partitions (and so threads) is the supervisor's job.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use flume::Receiver;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::compaction::CompactionReport;
use crate::config::{Config, Durability};
use crate::error::{Error, Result};
use crate::events::EventSender;
use crate::options::parse_int;
use crate::snapshot::{SnapshotCell, Version};
use crate::stats::Counters;
use crate::storage::{Backend, StorageLock};

use super::compactor::Compactor;
use super::files::ensure_dir;
use super::intake::{Arrival, Intake};
use super::reaper::Reaper;
use super::writer::{Op, WriteSet, Writer};

/// A message to the actor. Each carries the sender its answer goes to.
#[derive(Debug)]
pub(crate) enum Request {
    /// Apply a write set; answers how many deletes removed a key.
    Write {
        set: WriteSet,
        reply: oneshot::Sender<Result<usize>>,
    },
    /// Add `by` to the integer value of `key` (0 if missing); answers the result.
    Incr {
        key: Bytes,
        by: i64,
        reply: oneshot::Sender<Result<i64>>,
    },
    /// Make everything acknowledged so far durable.
    Sync { reply: oneshot::Sender<Result<()>> },
    /// Compact the sealed files (or join the compaction running); answers
    /// its report once installed.
    Compact {
        reply: oneshot::Sender<Result<CompactionReport>>,
    },
    /// Abandon a running compaction (the partition is being dropped or
    /// closed); its waiters get `CompactionCancelled`.
    CancelCompaction,
    /// The background copy finished (a nudge; see `compactor`).
    CompactionReady,
    /// Drain, sync, close the files, then answer and stop. With `retire`
    /// (eviction, drop) the partition's cell is emptied too, releasing the
    /// index; without (the database closing) the last version stays.
    /// The answer: whether the close was clean (the writer was not
    /// poisoned, so everything acknowledged is synced).
    Shutdown {
        reply: oneshot::Sender<Result<bool>>,
        retire: bool,
    },
}

/// What the opening side receives once recovery finished on the actor thread.
pub(crate) type Opened = Result<()>;

/// Everything the actor thread needs.
#[derive(Debug)]
pub(crate) struct ActorSpec {
    pub(crate) name: String,
    pub(crate) fs: Backend,
    pub(crate) dir: PathBuf,
    pub(crate) cfg: Arc<Config>,
    /// Where versions are published (the partition's, across incarnations).
    pub(crate) cell: crate::sync::Arc<SnapshotCell<Version>>,
    pub(crate) stats: Arc<Counters>,
    /// This process closed the partition cleanly since it last opened it:
    /// its files and directory are durable, so recovery skips its syncs.
    pub(crate) clean: bool,
    /// The database lock, held until this actor has closed its files.
    pub(crate) lock: Arc<Box<dyn StorageLock>>,
    /// Ownership of the partition directory, held for the actor's whole life.
    pub(crate) owner: OwnedSemaphorePermit,
    /// Dropped when the actor thread ends, however it ends (even by a
    /// panic): requesters waiting for a reply that will never come (queued
    /// behind a shutdown) see it and answer themselves `Closed`.
    pub(crate) stopped: tokio::sync::watch::Sender<()>,
    /// The partition's reaper of obsolete files (across incarnations).
    pub(crate) reaper: crate::sync::Arc<Reaper>,
    /// The actor's own mailbox, for the compaction copy's nudge.
    pub(crate) mailbox: flume::WeakSender<Request>,
    /// Where compaction events go (`None` once the `Db` is closing).
    pub(crate) events: Option<EventSender>,
}

/// Starts the actor thread. It creates the directory if needed, recovers
/// the partition, reports the result on `opened`, then serves `rx`.
pub(crate) fn spawn(spec: ActorSpec, rx: Receiver<Request>, opened: oneshot::Sender<Opened>) -> Result<()> {
    let thread_name = format!("caskade:{}", spec.name);
    let dir = spec.dir.clone();
    std::thread::Builder::new()
        .name(thread_name)
        .stack_size(512 * 1024)
        .spawn(move || {
            // Lives until this closure ends, normally or by unwinding.
            let _stopped_on_exit = spec.stopped;
            let span = tracing::info_span!("partition", name = %spec.name);
            let _entered = span.enter();
            // After this process's own clean close the directory is durable.
            let dir_ready = if spec.clean {
                Ok(())
            } else {
                ensure_dir(&*spec.fs, &spec.dir)
            };
            let writer = dir_ready.and_then(|()| {
                Writer::open(
                    &spec.name,
                    Arc::clone(&spec.fs),
                    spec.dir.clone(),
                    Arc::clone(&spec.cfg),
                    crate::sync::Arc::clone(&spec.cell),
                    Arc::clone(&spec.stats),
                    spec.clean,
                    crate::sync::Arc::clone(&spec.reaper),
                )
            });
            match writer {
                Ok(writer) => {
                    tracing::debug!(keys = writer.len(), "partition opened");
                    // The opener may have given up (its future dropped); then
                    // nobody holds a sender either and `run` ends at once.
                    let _ = opened.send(Ok(()));
                    let compactor = Compactor::new(
                        &spec.name,
                        spec.mailbox,
                        spec.events,
                        Arc::clone(&spec.stats),
                        spec.cfg.background_hints,
                        spec.cfg.compaction_nice,
                    );
                    run(
                        spec.owner,
                        spec.lock,
                        &rx,
                        &spec.cfg,
                        &spec.stats,
                        writer,
                        compactor,
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, "partition failed to open");
                    // Same as above: an absent opener needs no answer.
                    let _ = opened.send(Err(e));
                }
            }
        })
        .map(drop)
        .map_err(|e| Error::io("spawn partition thread for", dir, e))
}

/// A non-write request, handled after the group that precedes it.
enum Control {
    Sync(oneshot::Sender<Result<()>>),
    Compact(oneshot::Sender<Result<CompactionReport>>),
    CancelCompaction,
    Shutdown(oneshot::Sender<Result<bool>>, bool),
}

/// Where the answer to one write set of a group goes.
enum Reply {
    /// How many deletes removed a key.
    Write(oneshot::Sender<Result<usize>>),
    /// The incremented value.
    Incr(oneshot::Sender<Result<i64>>, i64),
}

impl Reply {
    fn send(self, outcome: Result<usize>) {
        // A requester that stopped waiting (dropped future) needs no answer.
        match (self, outcome) {
            (Reply::Write(tx), r) => drop(tx.send(r)),
            (Reply::Incr(tx, n), r) => drop(tx.send(r.map(|_| n))),
        }
    }
}

/// The value of `key` the group so far leaves: the last op on it among the
/// group's pending sets, else the writer's (published) value.
fn pending_value(writer: &Writer, sets: &[WriteSet], key: &[u8]) -> Result<Option<Bytes>> {
    for set in sets.iter().rev() {
        for op in set.ops.iter().rev() {
            match op {
                Op::Put { key: k, value } if &k[..] == key => return Ok(Some(value.clone())),
                Op::Delete { key: k } if &k[..] == key => return Ok(None),
                _ => {}
            }
        }
    }
    writer.get(key)
}

/// Computes an increment against the group's pending state: the put to
/// make and the new value, or the error to answer (nothing written).
fn increment(writer: &Writer, sets: &[WriteSet], key: Bytes, by: i64) -> Result<(WriteSet, i64)> {
    let current = match pending_value(writer, sets, &key)? {
        None => 0,
        Some(v) => parse_int(&v).ok_or(Error::NotAnInteger)?,
    };
    let next = current
        .checked_add(by)
        .ok_or(Error::IntegerOverflow { current, by })?;
    let value = Bytes::from(next.to_string());
    Ok((
        WriteSet {
            ops: vec![Op::Put { key, value }],
        },
        next,
    ))
}

/// The actor loop: wait for a request (or the interval-sync deadline), drain
/// what else is queued up to the group bounds, commit once, reply to all.
// Parameters drop in reverse order, also when unwinding from a panic: the
// writer (its files, its hint job) goes first, then the database lock share,
// then the directory's ownership — never the other way round.
fn run(
    owner: OwnedSemaphorePermit,
    lock: Arc<Box<dyn StorageLock>>,
    rx: &Receiver<Request>,
    cfg: &Config,
    stats: &Counters,
    mut writer: Writer,
    mut compactor: Compactor,
) {
    let mut sets: Vec<WriteSet> = Vec::new();
    let mut replies: Vec<Reply> = Vec::new();
    let mut intake = Intake::new(cfg.durability == Durability::Always);
    loop {
        // A background copy that finished is installed between groups.
        compactor.poll(&mut writer);
        let first = match intake.first(rx, writer.wake_deadline()) {
            // Only a wake-up: the loop polls the compactor first.
            Arrival::Request(Request::CompactionReady) => continue,
            Arrival::Request(r) => r,
            Arrival::Deadline => {
                // A failure poisons the writer; the next request reports it.
                let _ = writer.sync_if_due(Instant::now());
                writer.settle_index();
                continue;
            }
            Arrival::Disconnected => break,
        };
        let mut control = None;
        let mut bytes = 0usize;
        let mut next = Some(first);
        while let Some(req) = next.take() {
            match req {
                Request::Write { set, reply } => {
                    bytes += set.encoded_len();
                    sets.push(set);
                    replies.push(Reply::Write(reply));
                }
                Request::Incr { key, by, reply } => match increment(&writer, &sets, key, by) {
                    Ok((set, next)) => {
                        bytes += set.encoded_len();
                        sets.push(set);
                        replies.push(Reply::Incr(reply, next));
                    }
                    Err(e) => {
                        // As for any reply: the requester may have gone.
                        let _ = reply.send(Err(e));
                    }
                },
                Request::Sync { reply } => {
                    control = Some(Control::Sync(reply));
                    break;
                }
                Request::Compact { reply } => {
                    control = Some(Control::Compact(reply));
                    break;
                }
                Request::CancelCompaction => {
                    control = Some(Control::CancelCompaction);
                    break;
                }
                // Only a wake-up: the loop polls the compactor.
                Request::CompactionReady => {}
                Request::Shutdown { reply, retire } => {
                    control = Some(Control::Shutdown(reply, retire));
                    break;
                }
            }
            if sets.len() >= cfg.max_group_requests || bytes >= cfg.max_group_bytes {
                break;
            }
            // None: the group is complete.
            next = intake.more(rx, sets.len());
        }
        if !sets.is_empty() {
            let started = Instant::now();
            let outcome = writer.commit(&sets);
            intake.committed(sets.len(), started.elapsed());
            stats.group(sets.len());
            sets.clear();
            match outcome {
                Ok(removed) => {
                    for (reply, n) in replies.drain(..).zip(removed) {
                        reply.send(Ok(n));
                    }
                }
                Err(e) => {
                    for reply in replies.drain(..) {
                        reply.send(Err(e.clone()));
                    }
                }
            }
        }
        // A failure poisons the writer; the next request reports it.
        let _ = writer.sync_if_due(Instant::now());
        match control {
            None => {}
            Some(Control::Sync(reply)) => {
                // The caller may have stopped waiting; the sync happened regardless.
                let _ = reply.send(writer.sync());
            }
            Some(Control::Compact(reply)) => compactor.request(&mut writer, reply),
            Some(Control::CancelCompaction) => compactor.cancel(&mut writer),
            Some(Control::Shutdown(reply, retire)) => {
                compactor.cancel(&mut writer);
                let cell = writer.cell();
                let clean = !writer.is_poisoned();
                let result = writer.close().map(|()| clean);
                if retire {
                    // Releases the index (and the files, once readers let go).
                    cell.publish(crate::sync::Arc::new(Version::retired()));
                }
                // Files are closed; give up the directory's ownership and our
                // share of the database lock before answering, so a closed
                // `Db` is really released.
                drop(owner);
                drop(lock);
                // Requests queued behind the shutdown are never processed:
                // their requesters see `stopped` drop when this thread ends
                // and answer themselves `Closed`.
                // The closer may have stopped waiting; the close happened regardless.
                let _ = reply.send(result);
                return;
            }
        }
    }
    // Every handle is gone (or the opening was abandoned): sync and close
    // quietly, and release the index while still owning the directory.
    compactor.cancel(&mut writer);
    let cell = writer.cell();
    if let Err(e) = writer.close() {
        tracing::error!(error = %e, "final sync failed");
    }
    cell.publish(crate::sync::Arc::new(Version::retired()));
}
