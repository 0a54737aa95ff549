//! [`DbBuilder`]: the settings a [`Db`] is opened with.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::config::{Config, Durability};
use crate::error::{Error, Result};
use crate::name;
use crate::partition::files::{ensure_dir, sync_parent};
use crate::storage::fs::RealFs;
use crate::storage::sim::SimDisk;
use crate::storage::{Backend, StorageLock};
use crate::supervisor::scheduler::CompactionScheduler;

use super::Db;

/// The lock file in the root directory.
pub(crate) const LOCK_NAME: &str = "LOCK";

/// Settings for opening a [`Db`]; every setter consumes and returns the
/// builder and states its default. Values are validated by [`DbBuilder::open`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct DbBuilder {
    pub(super) root: PathBuf,
    pub(super) cfg: Config,
    pub(super) fs: Option<Backend>,
    pub(super) max_open_partitions: usize,
    pub(super) idle_timeout: Option<Duration>,
    pub(super) scheduler: CompactionScheduler,
}

/// Default bound on open partitions.
pub(super) const DEFAULT_MAX_OPEN_PARTITIONS: usize = 256;

impl DbBuilder {
    /// Most partitions open at once (each open one costs a thread, its open
    /// files and its index in memory). Opening one more evicts the least
    /// recently used one that has no request in flight. If every open
    /// partition has one, the opening goes ahead over the bound (rather than
    /// wait, which could deadlock a task holding requests on several
    /// partitions) and the supervisor evicts back down to the bound within
    /// a second. Memory-only partitions count but are never evicted.
    /// Default 256; at least 1.
    pub fn max_open_partitions(mut self, n: usize) -> Self {
        self.max_open_partitions = n;
        self
    }

    /// Evicts a partition after it served no request for this long
    /// (checked every quarter of it, so up to 1.25× the timeout). Default:
    /// off. Runs on the tokio runtime `open` was called on.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// How compactions are scheduled (thresholds are per partition, in its
    /// [`CompactionOptions`](crate::CompactionOptions)). Default:
    /// [`CompactionScheduler::default`] (on, one at a time, after a quiet
    /// period of 10 s); [`CompactionScheduler::disabled`] turns it off.
    pub fn compaction_scheduler(mut self, scheduler: CompactionScheduler) -> Self {
        self.scheduler = scheduler;
        self
    }

    /// Compaction copies at most this many bytes per second (per
    /// compaction), leaving the disk and the CPU to reads and writes.
    /// Default: no limit. At least 1 MiB/s.
    pub fn compaction_rate_limit(mut self, bytes_per_sec: u64) -> Self {
        self.cfg.compaction_rate = Some(bytes_per_sec);
        self
    }

    /// The nice value of compaction threads (Linux; 0 ..= 19): the higher,
    /// the more readily the copy yields the CPU to reads and writes. Default
    /// 10, as background work usually runs (RocksDB lowers its compaction
    /// threads' priority the same way); 0 runs it at the priority of the
    /// rest of the process.
    pub fn compaction_thread_nice(mut self, nice: i32) -> Self {
        self.cfg.compaction_nice = nice;
        self
    }

    /// When writes become durable, for partitions whose options do not say.
    /// Default: [`Durability::Always`].
    pub fn durability(mut self, d: Durability) -> Self {
        self.cfg.durability = d;
        self
    }

    /// Size at which the active data file is sealed and a new one started.
    /// Default 64 MiB; allowed 4 KiB ..= 1 GiB.
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.cfg.max_file_size = bytes;
        self
    }

    /// Largest accepted value. Default 16 MiB; at most 1 GiB.
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.cfg.max_value_len = bytes;
        self
    }

    /// Requests each partition's mailbox holds before senders wait
    /// (backpressure). Default 1024.
    pub fn mailbox_capacity(mut self, requests: usize) -> Self {
        self.cfg.mailbox_capacity = requests;
        self
    }

    /// Most requests in one group commit. Default 1024.
    pub fn max_group_requests(mut self, requests: usize) -> Self {
        self.cfg.max_group_requests = requests;
        self
    }

    /// Bytes after which the writer stops adding requests to a group commit
    /// (the request that crosses the bound is still included, so one large
    /// request always goes through). Default 8 MiB.
    pub fn max_group_bytes(mut self, bytes: usize) -> Self {
        self.cfg.max_group_bytes = bytes;
        self
    }

    /// Records up to this size are read directly by `get` on the calling
    /// thread (one positional read, typically from the page cache); larger
    /// ones on tokio's blocking pool. Default 64 KiB.
    pub fn inline_read_limit(mut self, bytes: usize) -> Self {
        self.cfg.inline_read_limit = bytes;
        self
    }

    /// Runs the database on a simulated in-memory disk instead of the real
    /// file system: for tests of power loss and I/O faults (see [`SimDisk`]).
    /// The path is then a path on the simulated disk.
    pub fn simulated_disk(mut self, disk: SimDisk) -> Self {
        self.fs = Some(Arc::new(disk));
        self.cfg.background_hints = false;
        self
    }

    /// Opens the database: validates the settings, creates the root directory
    /// if needed, takes its lock and loads the catalog of partitions
    /// (removing directories of partitions dropped before a crash). No
    /// partition is opened until used.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`], [`Error::Locked`], [`Error::Io`],
    /// [`Error::Corrupt`] (a damaged catalog).
    pub async fn open(self) -> Result<Db> {
        self.cfg.validate()?;
        if self.max_open_partitions == 0 {
            return Err(Error::InvalidConfig {
                reason: "max_open_partitions must be at least 1".into(),
            });
        }
        if self.scheduler.max_concurrent == 0 || self.scheduler.check_interval.is_zero() {
            return Err(Error::InvalidConfig {
                reason: "the compaction scheduler needs max_concurrent ≥ 1 and a positive check interval"
                    .into(),
            });
        }
        if self.cfg.compaction_rate.is_some_and(|r| r < 1 << 20) {
            return Err(Error::InvalidConfig {
                reason: "compaction_rate_limit must be at least 1 MiB/s".into(),
            });
        }
        if self.idle_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::InvalidConfig {
                reason: "idle_timeout must be positive".into(),
            });
        }
        let fs: Backend = self.fs.clone().unwrap_or_else(|| Arc::new(RealFs));
        let root = self.root.clone();
        let (fs, root, lock, catalog) = super::blocking(move || {
            let lock = prepare_root(&*fs, &root)?;
            let catalog = Catalog::open(&fs, &root)?;
            Ok((fs, root, lock, catalog))
        })
        .await?;
        tracing::info!(
            root = %root.display(),
            partitions = catalog.entries().count(),
            "database opened"
        );
        Ok(Db::assemble(self, fs, root, lock, catalog))
    }
}

/// Creates the root and its `partitions` directory if needed (making their
/// entries durable) and locks the root. The root may be a symbolic link to a
/// directory — that is the user's choice of path; a link inside the root,
/// where caskade creates directories, is refused.
pub(super) fn prepare_root(fs: &dyn crate::storage::Storage, root: &Path) -> Result<Box<dyn StorageLock>> {
    match fs.create_dir(root) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::AlreadyExists | ErrorKind::NotADirectory) => {}
        Err(e) => return Err(Error::io("create_dir", root, e)),
    }
    sync_parent(fs, root)?;
    let lock_path = root.join(LOCK_NAME);
    let lock = fs.lock(&lock_path).map_err(|e| match e.kind() {
        ErrorKind::WouldBlock => Error::Locked {
            path: lock_path.clone(),
        },
        _ => Error::io("lock", &lock_path, e),
    })?;
    ensure_dir(fs, &root.join(name::PARTITIONS_DIR))?;
    Ok(lock)
}
