//! One partition as the supervisor keeps it, open or not: its catalog
//! entry, settings, statistics, the cell its versions are published in, and
//! the gate requests pass through.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{Notify, Semaphore};

use crate::catalog::CatalogEntry;
use crate::config::Config;
use crate::name;
use crate::options::{PartitionOptions, Persistence};
use crate::partition::actor::Request;
use crate::partition::reaper::Reaper;
use crate::snapshot::{SnapshotCell, Version};
use crate::stats::Counters;
use crate::storage::Backend;
use crate::storage::sim::SimDisk;

use super::gate::Gate;

/// One running actor of a partition, as requests reach it.
#[derive(Debug)]
pub(crate) struct Incarnation {
    pub(crate) tx: flume::Sender<Request>,
    /// Changes (its sender drops) when the actor thread has ended.
    pub(crate) stopped: tokio::sync::watch::Receiver<()>,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) options: PartitionOptions,
    /// The partition's effective settings (the `Db`'s, overridden by its options).
    pub(crate) cfg: Arc<Config>,
    pub(crate) dir: PathBuf,
    /// The real file system, or this partition's private memory disk.
    pub(crate) fs: Backend,
    pub(crate) cell: crate::sync::Arc<SnapshotCell<Version>>,
    pub(crate) stats: Arc<Counters>,
    pub(crate) gate: Gate<Arc<Incarnation>>,
    /// Notified when the last lease is given back.
    pub(crate) idle: Notify,
    /// Held while opening or retiring an incarnation, so the two never overlap.
    pub(crate) turn: tokio::sync::Mutex<()>,
    /// Ownership of the directory: held by an actor from before recovery
    /// until after its files are closed, so even an actor left behind by an
    /// abandoned opening is never joined by a second one.
    pub(crate) owner: Arc<Semaphore>,
    /// Its last incarnation was retired cleanly (synced, files closed) by
    /// this process: the next opening may skip recovery's syncs.
    pub(crate) clean: std::sync::atomic::AtomicBool,
    /// Deletes the files compactions replaced once no version reads them;
    /// outlives incarnations (an old snapshot may hold such a file).
    pub(crate) reaper: crate::sync::Arc<Reaper>,
}

impl Slot {
    /// The slot of a catalog entry; nothing is opened.
    pub(crate) fn new(entry: CatalogEntry, root: &std::path::Path, db_fs: &Backend, db_cfg: &Config) -> Slot {
        let memory = entry.options.persistence == Persistence::Memory;
        let fs: Backend = if memory {
            Arc::new(SimDisk::new())
        } else {
            Arc::clone(db_fs)
        };
        let dir = if memory {
            PathBuf::from("/partition")
        } else {
            name::partition_dir(root, entry.id)
        };
        Slot {
            id: entry.id,
            cfg: Arc::new(entry.options.apply(db_cfg)),
            name: entry.name,
            options: entry.options,
            dir,
            fs,
            cell: crate::sync::Arc::new(SnapshotCell::new(Version::retired())),
            stats: Arc::default(),
            gate: Gate::default(),
            idle: Notify::new(),
            turn: tokio::sync::Mutex::new(()),
            owner: Arc::new(Semaphore::new(1)),
            clean: std::sync::atomic::AtomicBool::new(false),
            reaper: crate::sync::Arc::default(),
        }
    }

    /// The partition's statistics, as users see them.
    pub(crate) fn partition_stats(&self) -> crate::stats::PartitionStats {
        let mut stats = self.stats.snapshot(self.gate.is_open());
        stats.obsolete_files = self.reaper.owed() as u64;
        stats.obsolete_files_deleted = self.reaper.deleted() as u64;
        stats
    }

    /// Memory-only partitions are never evicted.
    pub(crate) fn pinned(&self) -> bool {
        self.options.persistence == Persistence::Memory
    }

    /// Takes a lease (see [`Gate::lease`]).
    pub(crate) fn lease(&self) -> super::gate::Admission<Arc<Incarnation>> {
        self.gate.lease(|| self.idle.notify_waiters())
    }

    /// Gives a lease back, waking a drop or close waiting for the last one.
    pub(crate) fn release(&self) {
        if self.gate.release() {
            self.idle.notify_waiters();
        }
    }

    /// Waits until no lease is held (after the gate was sealed, no new one
    /// can be taken, so this ends once the requests in flight are answered).
    pub(crate) async fn drained(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before checking, so a release in between is not missed.
            notified.as_mut().enable();
            if self.gate.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}
