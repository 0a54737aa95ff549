//! The engines under test behind one small interface: [`EngineKind`] names
//! them, [`Store`] is an open store of any of them (a cheap clone per task),
//! and [`Runner`] runs N concurrent tasks of a workload on it — caskade's
//! as tokio tasks on a multi-thread runtime (caskade is async), the peers'
//! as N OS threads (they are synchronous), each thread driving its task's
//! future with `pollster` (the peers' futures never wait, so the future is
//! only a way to share one workload code: a plain loop of blocking calls).
//!
//! Every store is opened in a [`Mode`]: buffered (writes reach the OS, not
//! the disk) or durable (each acknowledged put survives power loss), and
//! each adapter (`engines/`) maps that to its engine's documented way.

use std::future::Future;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::engines::{caskade::CaskadeStore, fjall::FjallStore, redb::RedbStore, sled::SledStore};
use crate::plan::Records;
use crate::stats::Recorder;

/// One engine under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// This crate's engine.
    Caskade,
    /// sled 0.34.
    Sled,
    /// redb 4.
    Redb,
    /// fjall 3.
    Fjall,
}

impl EngineKind {
    /// The engine's name in tables, JSON and directory names.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Caskade => "caskade",
            EngineKind::Sled => "sled",
            EngineKind::Redb => "redb",
            EngineKind::Fjall => "fjall",
        }
    }

    /// Whether this is one of the peers (not caskade).
    pub fn is_peer(self) -> bool {
        self != EngineKind::Caskade
    }
}

/// How writes are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Acknowledged once in the OS's buffers (survives a process crash).
    Buffered,
    /// Acknowledged once on the disk (survives power loss).
    Durable,
}

/// Settings shared by the adapters.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Block/page cache of each peer, in bytes (caskade has none: it reads
    /// through the OS page cache).
    pub cache_bytes: u64,
    /// Whether caskade's compaction scheduler runs (its default); the space
    /// phase turns it off to measure the footprint without compaction.
    pub caskade_scheduler: bool,
}

/// An open store of one engine; clones share it.
#[derive(Clone)]
pub enum Store {
    /// caskade: a `Db` and its partition.
    Caskade(CaskadeStore),
    /// sled: a `Db` (its default tree).
    Sled(SledStore),
    /// redb: a `Database` and one table.
    Redb(RedbStore),
    /// fjall: a `Database` and one keyspace.
    Fjall(FjallStore),
}

/// Dispatches `$call` to the adapter inside `$store`.
macro_rules! dispatch {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Caskade($s) => $call,
            Store::Sled($s) => $call,
            Store::Redb($s) => $call,
            Store::Fjall($s) => $call,
        }
    };
}

impl Store {
    /// Opens (or creates) `kind`'s store in directory `dir`.
    ///
    /// # Errors
    /// The engine's error, with the engine and directory named.
    pub async fn open(kind: EngineKind, dir: &Path, mode: Mode, cfg: EngineConfig) -> Result<Store> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let store = match kind {
            EngineKind::Caskade => Store::Caskade(CaskadeStore::open(dir, mode, cfg).await?),
            EngineKind::Sled => Store::Sled(SledStore::open(dir, mode, cfg)?),
            EngineKind::Redb => Store::Redb(RedbStore::open(dir, mode, cfg)?),
            EngineKind::Fjall => Store::Fjall(FjallStore::open(dir, mode, cfg)?),
        };
        Ok(store)
    }

    /// Which engine this is.
    pub fn kind(&self) -> EngineKind {
        match self {
            Store::Caskade(_) => EngineKind::Caskade,
            Store::Sled(_) => EngineKind::Sled,
            Store::Redb(_) => EngineKind::Redb,
            Store::Fjall(_) => EngineKind::Fjall,
        }
    }

    /// The length of `key`'s value, `None` if absent.
    pub async fn get(&self, key: &[u8]) -> Result<Option<usize>> {
        dispatch!(self, s => s.get(key).await)
    }

    /// Puts one record, acknowledged as the store's [`Mode`] says.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        dispatch!(self, s => s.put(key, value).await)
    }

    /// Writes `records` as one atomic batch (not synced in buffered mode).
    pub async fn write_batch(&self, records: &Records) -> Result<()> {
        dispatch!(self, s => s.write_batch(records).await)
    }

    /// Makes every write so far durable.
    pub async fn sync(&self) -> Result<()> {
        dispatch!(self, s => s.sync().await)
    }

    /// Syncs and closes the store (every clone must be dropped first).
    pub async fn close(self) -> Result<()> {
        dispatch!(self, s => s.close().await)
    }
}

/// What one task of a phase returns: its latencies, when it finished and
/// whether it was a writer (the mixed phase has both).
#[derive(Debug)]
pub struct TaskOut {
    /// Per-operation latencies.
    pub latency: Recorder,
    /// When its last operation completed.
    pub end: Instant,
    /// Whether the task wrote (else it read).
    pub writer: bool,
}

/// Runs tasks: caskade's on its tokio runtime, the peers' on OS threads.
pub struct Runner {
    rt: tokio::runtime::Runtime,
}

impl Runner {
    /// A runner with a multi-thread tokio runtime of `workers` workers.
    ///
    /// # Errors
    /// If the runtime cannot start.
    pub fn new(workers: usize) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        Ok(Runner { rt })
    }

    /// Runs one future to completion on the calling thread, inside the
    /// runtime (opens, syncs, closes: caskade's need the runtime).
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// Runs `tasks` tasks `body(store clone, task number)` on `store` and
    /// waits for all of them: tokio tasks for caskade, OS threads for peers.
    ///
    /// # Errors
    /// The first task's error (or panic).
    pub fn run<F, Fut>(&self, store: &Store, tasks: usize, body: F) -> Result<Vec<TaskOut>>
    where
        F: Fn(Store, usize) -> Fut + Sync,
        Fut: Future<Output = Result<TaskOut>> + Send + 'static,
    {
        if store.kind() == EngineKind::Caskade {
            return self.rt.block_on(async {
                let handles: Vec<_> = (0..tasks).map(|t| tokio::spawn(body(store.clone(), t))).collect();
                let mut out = Vec::with_capacity(tasks);
                for h in handles {
                    out.push(h.await.context("a task panicked")??);
                }
                Ok(out)
            });
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..tasks)
                .map(|t| {
                    let fut = body(store.clone(), t);
                    std::thread::Builder::new()
                        .name(format!("task-{t}"))
                        .spawn_scoped(s, move || pollster::block_on(fut))
                })
                .collect::<std::io::Result<_>>()
                .context("spawning task threads")?;
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| anyhow::anyhow!("a task thread panicked"))?)
                .collect()
        })
    }
}
