//! Hooks for the loom models in `loom-tests/` (built only with
//! `--cfg caskade_loom`; not part of the public API).
//!
//! A thin layer over the synchronous core the partition actor drives: the
//! [`Writer`] (recovery, group commit, publication, poisoning) on a
//! [`SimDisk`], the snapshot cell its versions are published through, and the
//! read path. Nothing here adds behaviour: every call goes straight to the
//! engine code the actor and the `Partition` handles use, so loom threads can
//! stand in for the actor thread and for reader tasks. Under `caskade_loom`
//! the engine's `crate::sync` is loom's, so the cell's `RwLock` and `Arc`s
//! are model-checked; every value here must be created inside
//! `loom::model`.
//!
//! The partition [`Gate`] (the state machine behind eviction, drop and
//! close) is exposed the same way: loom threads stand in for the request
//! tasks, the evictor and the closer that drive it in the supervisor.
//!
//! Hot-swap compaction too: [`Writer::begin_compaction`] hands out the
//! background copy as a [`Job`] (run it on its own loom thread, as the
//! engine runs it on its own OS thread), [`Writer::install`] installs its
//! [`Output`], and the partition's reaper (which deletes the replaced files
//! when their last handle drops, inline under loom) is observable through
//! [`Writer::reaper_deleted`] and [`Writer::reaper_owed`].

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use bytes::Bytes;

use crate::compaction::CompactionReport;
use crate::config::Config;
use crate::error::Result;
use crate::format::data_file;
use crate::options::CompactionOptions;
use crate::partition::compaction::{CompactionJob, CompactionOutput};
use crate::partition::files::ensure_dir;
use crate::partition::read;
use crate::partition::reaper::Reaper;
use crate::partition::writer::{self, Begin, Op, WriteSet};
use crate::snapshot::{self, SnapshotCell};
use crate::storage::sim::SimDisk;
use crate::supervisor::gate;
use crate::sync::Arc;

/// A [`SnapshotCell`] over any payload (for checking the cell on its own).
#[derive(Debug)]
pub struct Cell<T>(SnapshotCell<T>);

impl<T> Cell<T> {
    /// A cell holding `initial`.
    pub fn new(initial: T) -> Self {
        Cell(SnapshotCell::new(initial))
    }

    /// The current value (`SnapshotCell::load`).
    pub fn load(&self) -> Arc<T> {
        self.0.load()
    }

    /// Replaces the current value (`SnapshotCell::publish`).
    pub fn publish(&self, next: Arc<T>) {
        self.0.publish(next);
    }
}

/// The single writer of one partition (the engine's `Writer`), with the
/// partition's reaper.
#[derive(Debug)]
pub struct Writer {
    inner: writer::Writer,
    reaper: Arc<Reaper>,
}

impl Writer {
    /// Creates the partition directory `dir` on `disk` if needed and opens
    /// the writer exactly as the actor does (recovery, then generation 1
    /// published), with default settings except `max_file_size` (a small one
    /// makes every commit rotate to a new data file first) and a
    /// `min_space_saving` of 0 (any dead byte makes a compaction worth it).
    pub fn open(disk: &SimDisk, dir: impl AsRef<Path>, max_file_size: u64) -> Result<Self> {
        let dir = dir.as_ref();
        let fs: crate::storage::Backend = std::sync::Arc::new(disk.clone());
        ensure_dir(&*fs, dir)?;
        let cfg = Config {
            max_file_size,
            compaction: CompactionOptions::default().min_space_saving(0),
            ..Config::default()
        };
        // A fresh cell, counters and reaper, as a never-opened `Slot` has them.
        let cell = Arc::new(SnapshotCell::new(snapshot::Version::retired()));
        let stats = std::sync::Arc::default();
        let reaper = Arc::new(Reaper::default());
        let inner = writer::Writer::open(
            "loom",
            fs,
            dir.to_path_buf(),
            std::sync::Arc::new(cfg),
            cell,
            stats,
            false,
            Arc::clone(&reaper),
        )?;
        Ok(Writer { inner, reaper })
    }

    /// Commits one put as its own group (`Writer::commit`).
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let op = Op::Put {
            key: Bytes::copy_from_slice(key),
            value: Bytes::copy_from_slice(value),
        };
        self.inner.commit(&[WriteSet { ops: vec![op] }]).map(drop)
    }

    /// Commits one delete as its own group; whether it removed a live key.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let op = Op::Delete {
            key: Bytes::copy_from_slice(key),
        };
        self.inner
            .commit(&[WriteSet { ops: vec![op] }])
            .map(|removed| removed[0] > 0)
    }

    /// Commits one atomic batch as its own group: `(key, Some(value))` puts,
    /// `(key, None)` deletes.
    pub fn commit_batch(&mut self, ops: &[(&[u8], Option<&[u8]>)]) -> Result<()> {
        let ops = ops
            .iter()
            .map(|&(key, value)| {
                let key = Bytes::copy_from_slice(key);
                match value {
                    Some(v) => Op::Put {
                        key,
                        value: Bytes::copy_from_slice(v),
                    },
                    None => Op::Delete { key },
                }
            })
            .collect();
        self.inner.commit(&[WriteSet { ops }]).map(drop)
    }

    /// `Writer::sync`.
    pub fn sync(&mut self) -> Result<()> {
        self.inner.sync()
    }

    /// The cell readers load published versions from (`Writer::cell`).
    pub fn cell(&self) -> VersionCell {
        VersionCell(self.inner.cell())
    }

    /// Begins a compaction of every sealed file (`Writer::begin_compaction`:
    /// seals the active file, snapshots the index, reserves the outputs' ids,
    /// starts tracking writes); `None` if it was skipped.
    pub fn begin_compaction(&mut self) -> Result<Option<Job>> {
        let cancel = std::sync::Arc::new(AtomicBool::new(false));
        Ok(match self.inner.begin_compaction(cancel)? {
            Begin::Started(job) => Some(Job(job)),
            Begin::Skipped(_) => None,
        })
    }

    /// Installs a finished copy (`Writer::install_compaction`: manifest
    /// switch, bulk compare-and-swap of the index, publication, inputs marked
    /// obsolete).
    pub fn install(&mut self, out: Output) -> Result<CompactionReport> {
        self.inner.install_compaction(out.0)
    }

    /// Forgets the running compaction (`Writer::abandon_compaction`).
    pub fn abandon_compaction(&mut self) {
        self.inner.abandon_compaction();
    }

    /// Obsolete files the partition's reaper has deleted so far (`Reaper::deleted`).
    pub fn reaper_deleted(&self) -> usize {
        self.reaper.deleted()
    }

    /// Obsolete files whose deletion the reaper still owes: some version
    /// holds them (`Reaper::owed`).
    pub fn reaper_owed(&self) -> usize {
        self.reaper.owed()
    }
}

/// The path of data file `id` in partition directory `dir`.
pub fn data_file_path(dir: impl AsRef<Path>, id: u32) -> PathBuf {
    dir.as_ref().join(data_file::data_name(id))
}

/// The path of data file `id`'s hint in partition directory `dir`.
pub fn hint_file_path(dir: impl AsRef<Path>, id: u32) -> PathBuf {
    dir.as_ref().join(data_file::hint_name(id))
}

/// The background copy of a compaction (the engine's `CompactionJob`).
#[derive(Debug)]
pub struct Job(CompactionJob);

impl Job {
    /// Ids of the files the compaction replaces, oldest first.
    pub fn input_ids(&self) -> Vec<u32> {
        self.0.inputs.iter().map(|(f, _)| f.id).collect()
    }

    /// Runs the copy (`CompactionJob::run`); on error its outputs are gone.
    pub fn run(self) -> Result<Output> {
        self.0.run().map(Output)
    }
}

/// A finished copy, durable and not yet installed (the engine's
/// `CompactionOutput`).
#[derive(Debug)]
pub struct Output(CompactionOutput);

impl Output {
    /// Ids of the output files, in the order written.
    pub fn file_ids(&self) -> Vec<u32> {
        self.0.files.iter().map(|(f, _)| f.id).collect()
    }
}

/// A reader's handle on a partition's published versions (what every
/// `Partition` handle holds).
#[derive(Debug, Clone)]
pub struct VersionCell(Arc<SnapshotCell<snapshot::Version>>);

impl VersionCell {
    /// The current version (`SnapshotCell::load`).
    pub fn load(&self) -> Version {
        Version(self.0.load())
    }
}

/// One loaded version, kept alive while this value lives.
#[derive(Debug, Clone)]
pub struct Version(Arc<snapshot::Version>);

impl Version {
    /// `Version::generation`: 1 at open, +1 per publication.
    pub fn generation(&self) -> u64 {
        self.0.generation
    }

    /// Reads `key` through the read path (`partition::read::get`).
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        read::get(&self.0, key)
    }

    /// Number of live keys in the version's index.
    pub fn len(&self) -> usize {
        self.0.index.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.0.index.is_empty()
    }

    /// The version's internal-consistency invariant: every index entry names
    /// a file that this version holds open.
    pub fn is_consistent(&self) -> bool {
        self.0
            .index
            .iter()
            .all(|(_, loc)| self.0.files.contains_key(&loc.file_id))
    }

    /// The id of the data file `key`'s index entry points into, if the key
    /// is live in this version.
    pub fn file_of(&self, key: &[u8]) -> Option<u32> {
        self.0.index.get(key).map(|loc| loc.file_id)
    }

    /// Ids of the data files the version holds open, ascending.
    pub fn file_ids(&self) -> Vec<u32> {
        self.0.files.keys().copied().collect()
    }

    /// Strong references to this version (loom's `Arc::strong_count`): the
    /// cell's, if it is still the current one, plus every reader's.
    pub fn strong_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }
}

/// The answer to [`Gate::lease`] (a public mirror of the engine's
/// `Admission`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission<T> {
    /// A lease on the open incarnation; give it back with [`Gate::release`].
    Leased(T),
    /// No incarnation is open (or one is retiring): open one, then try again.
    Reopen,
    /// The partition was dropped.
    Dropped,
    /// The database is closed.
    Shut,
}

impl<T> From<gate::Admission<T>> for Admission<T> {
    fn from(a: gate::Admission<T>) -> Self {
        match a {
            gate::Admission::Leased(t) => Admission::Leased(t),
            gate::Admission::Reopen => Admission::Reopen,
            gate::Admission::Dropped => Admission::Dropped,
            gate::Admission::Shut => Admission::Shut,
        }
    }
}

/// The gate of one partition (the engine's `supervisor::gate::Gate`) over
/// any incarnation handle `T`. Every method passes straight through.
#[derive(Debug)]
pub struct Gate<T>(gate::Gate<T>);

impl<T: Clone> Default for Gate<T> {
    /// A closed gate: no incarnation, no lease.
    fn default() -> Self {
        Gate(gate::Gate::default())
    }
}

impl<T: Clone> Gate<T> {
    /// `Gate::lease`: a lease if an incarnation is open; a refused request
    /// gives its count back and runs `on_idle` if it was the last one.
    pub fn lease(&self, on_idle: impl FnOnce()) -> Admission<T> {
        self.0.lease(on_idle).into()
    }

    /// `Gate::release`: gives a lease back; `true` if it was the last one.
    pub fn release(&self) -> bool {
        self.0.release()
    }

    /// `Gate::in_flight`: leases held now.
    pub fn in_flight(&self) -> usize {
        self.0.in_flight()
    }

    /// `Gate::is_open`: whether an incarnation is open.
    pub fn is_open(&self) -> bool {
        self.0.is_open()
    }

    /// `Gate::admission`: what a request would get now, without a lease.
    pub fn admission(&self) -> Admission<()> {
        self.0.admission().into()
    }

    /// `Gate::install`: installs an incarnation if the gate was closed.
    pub fn install(&self, t: T) -> bool {
        self.0.install(t)
    }

    /// `Gate::retire_if_idle`: takes the open incarnation if no lease is held.
    pub fn retire_if_idle(&self) -> Option<T> {
        self.0.retire_if_idle()
    }

    /// `Gate::retired`: the retired incarnation stopped; the next request reopens.
    pub fn retired(&self) {
        self.0.retired();
    }

    /// `Gate::seal`: refuses every new lease for good; the open incarnation.
    pub fn seal(&self, dropped: bool) -> Option<T> {
        self.0.seal(dropped)
    }

    /// `Gate::unseal`: undoes a drop's seal (the gate is closed again).
    pub fn unseal(&self) {
        self.0.unseal();
    }
}
