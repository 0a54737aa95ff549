//! [`Db`] and [`DbBuilder`]: opening a database directory, handing out
//! partitions, closing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::{Config, Durability};
use crate::error::{Error, Result};
use crate::name;
use crate::partition::actor::{self, ActorSpec};
use crate::partition::files::{ensure_dir, sync_parent};
use crate::partition::{Partition, PartitionShared};
use crate::registry::Registry;
use crate::storage::fs::RealFs;
use crate::storage::sim::SimDisk;
use crate::storage::{Backend, StorageLock};
use crate::sync::{AtomicBool, Ordering};
use std::io::ErrorKind;
use tokio::sync::OwnedSemaphorePermit;

/// The lock file in the root directory.
const LOCK_NAME: &str = "LOCK";

/// An open database: a directory of partitions, locked for exclusive use.
///
/// `Db` is a cheap, cloneable handle. Call [`Db::close`] to drain every
/// partition's mailbox, sync and release the directory lock deterministically;
/// if every handle is dropped instead, the partitions close in the background
/// and the lock is released when the last one has.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> caskade::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = caskade::Db::open(dir.path()).await?;
/// let p = db.partition("users").await?;
/// p.put("k", "v").await?;
/// db.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Db {
    shared: Arc<DbShared>,
}

#[derive(Debug)]
struct DbShared {
    root: PathBuf,
    fs: Backend,
    cfg: Arc<Config>,
    /// Taken (and so released) by `close` once every actor has stopped.
    lock: Mutex<Option<Arc<Box<dyn StorageLock>>>>,
    closed: Arc<AtomicBool>,
    registry: Registry,
    /// The outcome of the one `close`.
    closing: tokio::sync::OnceCell<Result<()>>,
}

impl Db {
    /// Opens (creating if needed) the database at `path` with default settings.
    ///
    /// # Errors
    /// [`Error::Locked`] if another `Db` has it open, [`Error::Io`].
    ///
    /// # Examples
    /// See [`Db`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Db> {
        Db::builder(path).open().await
    }

    /// A builder to open the database at `path` with non-default settings.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> caskade::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use caskade::{Db, Durability};
    /// let db = Db::builder(dir.path())
    ///     .durability(Durability::OsBuffered)
    ///     .max_file_size(8 << 20)
    ///     .open()
    ///     .await?;
    /// # db.close().await }
    /// ```
    pub fn builder(path: impl AsRef<Path>) -> DbBuilder {
        DbBuilder {
            root: path.as_ref().to_path_buf(),
            cfg: Config::default(),
            fs: None,
        }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.shared.root
    }

    /// The partition `name`, opened (and created, if new) on first use.
    /// Concurrent calls for one name share one opening.
    ///
    /// # Errors
    /// [`Error::InvalidPartitionName`]; [`Error::Corrupt`] or [`Error::Io`]
    /// if recovery fails; [`Error::Closed`].
    pub async fn partition(&self, name: &str) -> Result<Partition> {
        name::validate(name)?;
        self.check_open()?;
        let p = self
            .shared
            .registry
            .get_or_open(name, |owner| self.open_partition(name, owner))
            .await?;
        // Acquire pairs with the Release store in `close`. (The registry
        // itself refuses openings once `close` drained it.)
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(p)
    }

    async fn open_partition(&self, name: &str, owner: OwnedSemaphorePermit) -> Result<Partition> {
        let s = &self.shared;
        let lock = s
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::Closed)?;
        let (tx, rx) = flume::bounded(s.cfg.mailbox_capacity);
        let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
        let (stopped_tx, stopped) = tokio::sync::watch::channel(());
        let spec = ActorSpec {
            name: name.to_owned(),
            fs: Arc::clone(&s.fs),
            dir: name::partition_dir(&s.root, name),
            cfg: Arc::clone(&s.cfg),
            lock,
            owner,
            stopped: stopped_tx,
        };
        actor::spawn(spec, rx, opened_tx)?;
        let cell = opened_rx.await.map_err(|_| Error::Closed)??;
        Ok(Partition::new(Arc::new(PartitionShared {
            name: name.to_owned(),
            tx,
            cell,
            cfg: Arc::clone(&s.cfg),
            closed: Arc::clone(&s.closed),
            stopped,
        })))
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Closes the database: every partition drains its mailbox (queued writes
    /// are applied and answered), syncs and closes its files; then the
    /// directory lock is released. Afterwards every operation through a
    /// `Db` or `Partition` handle, including other clones of this `Db`,
    /// returns [`Error::Closed`], except [`Partition::snapshot`], which still
    /// hands out the last published version: snapshots stay readable (they
    /// keep their files open) until dropped. Concurrent calls (on clones)
    /// all wait for the one closing and get its outcome.
    ///
    /// # Errors
    /// The first error a partition reported while syncing, or the failure
    /// that poisoned a partition while acknowledged writes were not yet
    /// synced (they may not be durable); the lock is released regardless.
    pub async fn close(self) -> Result<()> {
        let s = &self.shared;
        // Every concurrent or later `close` (of any clone) waits for the one
        // closing and gets its outcome.
        s.closing
            .get_or_init(|| async {
                // Release pairs with the Acquire loads in handles: after this
                // store no handle starts a new operation.
                s.closed.store(true, Ordering::Release);
                let result = self.shutdown_all().await;
                drop(s.lock.lock().unwrap_or_else(PoisonError::into_inner).take());
                tracing::info!(root = %s.root.display(), "database closed");
                result
            })
            .await
            .clone()
    }

    /// Shuts down every partition in the registry (draining their mailboxes)
    /// and waits until every actor, including one left behind by an abandoned
    /// opening, has closed its files.
    async fn shutdown_all(&self) -> Result<()> {
        let (open, owners) = self.shared.registry.drain().await;
        let mut result = Ok(());
        for p in open {
            let (reply, rx) = tokio::sync::oneshot::channel();
            let req = actor::Request::Shutdown { reply };
            if p.shared().tx.send_async(req).await.is_ok() {
                // The actor answers after it closed its files; a dropped
                // sender means it already stopped.
                let r = rx.await.unwrap_or(Ok(()));
                if result.is_ok() {
                    result = r;
                }
            }
        }
        for owner in owners {
            // Each actor holds its directory's permit until its files are
            // closed; the semaphores are never closed, so this only waits.
            drop(owner.acquire_owned().await);
        }
        result
    }
}

/// Settings for opening a [`Db`]; every setter consumes and returns the
/// builder and states its default. Values are validated by [`DbBuilder::open`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct DbBuilder {
    root: PathBuf,
    cfg: Config,
    fs: Option<Backend>,
}

impl DbBuilder {
    /// When writes become durable. Default: [`Durability::Always`].
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
    /// if needed and takes its lock.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`], [`Error::Locked`], [`Error::Io`].
    pub async fn open(self) -> Result<Db> {
        self.cfg.validate()?;
        let fs: Backend = self.fs.unwrap_or_else(|| Arc::new(RealFs));
        let root = self.root;
        let (fs, root, lock) = tokio::task::spawn_blocking(move || {
            let lock = prepare_root(&*fs, &root)?;
            Ok::<_, Error>((fs, root, lock))
        })
        .await
        .map_err(|e| Error::io("open", "(blocking task)", std::io::Error::other(e)))??;
        tracing::info!(root = %root.display(), "database opened");
        Ok(Db {
            shared: Arc::new(DbShared {
                root,
                fs,
                cfg: Arc::new(self.cfg),
                lock: Mutex::new(Some(Arc::new(lock))),
                closed: Arc::new(AtomicBool::new(false)),
                registry: Registry::default(),
                closing: tokio::sync::OnceCell::new(),
            }),
        })
    }
}

/// Creates the root and its `partitions` directory if needed (making their
/// entries durable) and locks the root. The root may be a symbolic link to a
/// directory — that is the user's choice of path; a link inside the root,
/// where caskade creates directories, is refused.
fn prepare_root(fs: &dyn crate::storage::Storage, root: &Path) -> Result<Box<dyn StorageLock>> {
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
