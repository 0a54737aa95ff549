//! [`Db`]: opening a database directory, the partition lifecycle (create,
//! describe, drop, list), database-level shortcuts, statistics, closing.

mod builder;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use crate::catalog::{Catalog, remove_partition_dir};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::name;
use crate::options::{PartitionOptions, Persistence};
use crate::partition::Partition;
use crate::snapshot::Version;
use crate::stats::{DbStats, PartitionStats};
use crate::storage::{Backend, StorageLock};
use crate::supervisor::slot::Slot;
use crate::supervisor::{self, Supervisor};
use crate::sync::Ordering;

pub use builder::DbBuilder;
pub(crate) use builder::LOCK_NAME;

/// An open database: a directory of partitions, locked for exclusive use.
///
/// `Db` is a cheap, cloneable handle. Partitions open on first use and are
/// evicted when idle or when more than
/// [`max_open_partitions`](DbBuilder::max_open_partitions) are open; both are
/// invisible to holders of a [`Partition`] handle.
///
/// Call [`Db::close`] to drain every partition's mailbox, sync and release the
/// directory lock deterministically; if every handle (including partition
/// handles) is dropped instead, the partitions close in the background and
/// the lock is released when the last one has.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> caskade::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = caskade::Db::open(dir.path()).await?;
/// let p = db.partition("users").await?;
/// p.put("k", "v").await?;
/// db.put("orders/eu", "o-1", "42").await?;
/// assert_eq!(db.get("orders/eu", "o-1").await?.as_deref(), Some(&b"42"[..]));
/// assert_eq!(db.list_partitions(), ["orders/eu", "users"]);
/// db.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Db {
    shared: Arc<DbShared>,
}

#[derive(Debug)]
struct DbShared {
    sup: Arc<Supervisor>,
    catalog: Arc<Mutex<Catalog>>,
    /// Serialises catalog changes (create, drop); operations never take it.
    changes: tokio::sync::Mutex<()>,
    /// Every partition in the catalog, by name. Guards only memory.
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// The outcome of the one `close`.
    closing: tokio::sync::OnceCell<Result<()>>,
}

/// What [`Db::describe_partition`] reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PartitionInfo {
    /// The partition's name.
    pub name: String,
    /// The options it was created with.
    pub options: PartitionOptions,
    /// Its directory (`None` for a memory-only partition).
    pub dir: Option<PathBuf>,
    /// Its statistics.
    pub stats: PartitionStats,
}

impl Db {
    /// Opens (creating if needed) the database at `path` with default settings.
    ///
    /// # Errors
    /// [`Error::Locked`] if another `Db` has it open, [`Error::Io`],
    /// [`Error::Corrupt`] (a damaged catalog).
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
    /// use std::time::Duration;
    /// use caskade::{Db, Durability};
    /// let db = Db::builder(dir.path())
    ///     .durability(Durability::OsBuffered)
    ///     .max_file_size(8 << 20)
    ///     .max_open_partitions(64)
    ///     .idle_timeout(Duration::from_secs(300))
    ///     .open()
    ///     .await?;
    /// # db.close().await }
    /// ```
    pub fn builder(path: impl AsRef<Path>) -> DbBuilder {
        DbBuilder {
            root: path.as_ref().to_path_buf(),
            cfg: Config::default(),
            fs: None,
            max_open_partitions: builder::DEFAULT_MAX_OPEN_PARTITIONS,
            idle_timeout: None,
            scheduler: crate::CompactionScheduler::default(),
        }
    }

    fn assemble(
        b: DbBuilder,
        fs: Backend,
        root: PathBuf,
        lock: Box<dyn StorageLock>,
        catalog: Catalog,
    ) -> Db {
        let cfg = Arc::new(b.cfg);
        let slots = catalog
            .entries()
            .map(|e| {
                let slot = Slot::new(e.clone(), &root, &fs, &cfg);
                (e.name.clone(), Arc::new(slot))
            })
            .collect();
        let sup = Arc::new(Supervisor::new(
            root,
            fs,
            cfg,
            lock,
            b.max_open_partitions,
            b.idle_timeout,
            b.scheduler,
        ));
        supervisor::spawn_idle_task(&sup);
        Db {
            shared: Arc::new(DbShared {
                sup,
                catalog: Arc::new(Mutex::new(catalog)),
                changes: tokio::sync::Mutex::new(()),
                slots: Mutex::new(slots),
                closing: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.shared.sup.root
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        // Guards only the map; every update is one insert or remove.
        self.shared.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lookup(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots().get(name).cloned()
    }

    fn check_open(&self) -> Result<()> {
        // Acquire pairs with the Release store in `close`.
        if self.shared.sup.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn handle(&self, slot: Arc<Slot>) -> Partition {
        Partition::new(slot, Arc::clone(&self.shared.sup))
    }

    /// The partition `name`, opened — and created with default options if
    /// it does not exist. Concurrent calls for one name share one opening.
    ///
    /// # Errors
    /// [`Error::InvalidPartitionName`]; [`Error::Corrupt`] or [`Error::Io`]
    /// if recovery fails; [`Error::Closed`].
    pub async fn partition(&self, name: &str) -> Result<Partition> {
        name::validate(name)?;
        self.check_open()?;
        let slot = match self.lookup(name) {
            Some(slot) => slot,
            None => self.create(name, PartitionOptions::default(), false).await?,
        };
        self.shared.sup.open(&slot).await?;
        Ok(self.handle(slot))
    }

    /// Creates the partition `name` with `options` and opens it.
    ///
    /// # Errors
    /// [`Error::PartitionExists`], [`Error::InvalidPartitionName`],
    /// [`Error::InvalidConfig`] (options out of range), [`Error::Io`],
    /// [`Error::Closed`].
    ///
    /// # Examples
    /// See [`PartitionOptions`].
    pub async fn create_partition(&self, name: &str, options: PartitionOptions) -> Result<Partition> {
        name::validate(name)?;
        options.validate(&self.shared.sup.cfg)?;
        self.check_open()?;
        let slot = self.create(name, options, true).await?;
        self.shared.sup.open(&slot).await?;
        Ok(self.handle(slot))
    }

    /// Records a new partition in the catalog (durably) and adds its slot.
    async fn create(&self, name: &str, options: PartitionOptions, must_be_new: bool) -> Result<Arc<Slot>> {
        let _turn = self.shared.changes.lock().await;
        if let Some(slot) = self.lookup(name) {
            return match must_be_new {
                true => Err(Error::PartitionExists {
                    name: name.to_owned(),
                }),
                false => Ok(slot),
            };
        }
        self.check_open()?;
        let catalog = Arc::clone(&self.shared.catalog);
        let owned = name.to_owned();
        let entry = blocking(move || {
            catalog
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .create(&owned, options)
        })
        .await?;
        let sup = &self.shared.sup;
        let slot = Arc::new(Slot::new(entry, &sup.root, &sup.fs, &sup.cfg));
        self.slots().insert(name.to_owned(), Arc::clone(&slot));
        tracing::info!(partition = %name, id = slot.id, "partition created");
        Ok(slot)
    }

    /// The options and statistics of partition `name` (without opening it).
    ///
    /// # Errors
    /// [`Error::PartitionNotFound`], [`Error::Closed`].
    pub fn describe_partition(&self, name: &str) -> Result<PartitionInfo> {
        self.check_open()?;
        let slot = self.lookup(name).ok_or_else(|| Error::PartitionNotFound {
            name: name.to_owned(),
        })?;
        Ok(PartitionInfo {
            name: slot.name.clone(),
            options: slot.options,
            dir: (slot.options.persistence == Persistence::Durable).then(|| slot.dir.clone()),
            stats: slot.partition_stats(),
        })
    }

    /// Drops partition `name` durably: requests in flight are answered,
    /// its actor stops, the catalog records the drop, then its files are
    /// removed (a crash before that finishes is completed at the next open).
    /// Handles to it then fail with [`Error::PartitionDropped`]; a later
    /// create with the same name makes a new, empty partition.
    ///
    /// # Errors
    /// [`Error::PartitionNotFound`], [`Error::Io`] if the catalog could not
    /// record the drop (the partition then stays), [`Error::Closed`].
    pub async fn drop_partition(&self, name: &str) -> Result<()> {
        self.check_open()?;
        let _turn = self.shared.changes.lock().await;
        // `close` takes `changes` too: checked again now that we hold it.
        self.check_open()?;
        let slot = self.lookup(name).ok_or_else(|| Error::PartitionNotFound {
            name: name.to_owned(),
        })?;
        let sup = &self.shared.sup;
        if let Err(e) = sup.stop(&slot, true).await {
            // Its data is about to be deleted; a failed final sync is moot.
            tracing::warn!(partition = %name, error = %e, "final sync of a dropped partition failed");
        }
        let catalog = Arc::clone(&self.shared.catalog);
        let id = slot.id;
        let recorded = blocking(move || {
            catalog
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drop_partition(id)
        })
        .await;
        if let Err(e) = recorded {
            sup.reinstate(&slot);
            return Err(e);
        }
        self.slots().remove(name);
        slot.cell.publish(crate::sync::Arc::new(Version::retired()));
        tracing::info!(partition = %name, id, "partition dropped");
        // An actor left behind by an abandoned opening may still own the
        // directory: wait until it closed its files. (Never closed: only waits.)
        drop(slot.owner.acquire().await);
        // For a memory-only partition this frees its private disk's contents
        // even while old handles keep the slot alive.
        let (fs, dir) = (Arc::clone(&slot.fs), slot.dir.clone());
        if let Err(e) = blocking(move || remove_partition_dir(&*fs, &dir)).await {
            tracing::warn!(partition = %name, error = %e, "files of a dropped partition stay until the next open");
        }
        Ok(())
    }

    /// The names of every partition, sorted.
    pub fn list_partitions(&self) -> Vec<String> {
        let mut names: Vec<String> = self.slots().keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// Database-wide statistics: partitions, open ones, opens, reopens, evictions.
    pub fn stats(&self) -> DbStats {
        let partitions = self.slots().len();
        self.shared.sup.stats(partitions)
    }

    /// Puts `key` → `value` in partition `partition`, creating it if needed.
    ///
    /// # Errors
    /// As [`Db::partition`] and [`Partition::put`].
    pub async fn put(&self, partition: &str, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.partition(partition).await?.put(key, value).await
    }

    /// The value of `key` in partition `partition`; `None` also if the
    /// partition does not exist (it is not created).
    ///
    /// # Errors
    /// As [`Partition::get`].
    pub async fn get(&self, partition: &str, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.check_open()?;
        match self.lookup(partition) {
            Some(slot) => self.handle(slot).get(key).await,
            None => Ok(None),
        }
    }

    /// Deletes `key` from partition `partition`; whether it was present
    /// (`false` also if the partition does not exist; it is not created).
    ///
    /// # Errors
    /// As [`Partition::delete`].
    pub async fn delete(&self, partition: &str, key: impl AsRef<[u8]>) -> Result<bool> {
        self.check_open()?;
        match self.lookup(partition) {
            Some(slot) => self.handle(slot).delete(key).await,
            None => Ok(false),
        }
    }

    /// Subscribes to the database's [`Event`](crate::Event)s: compactions
    /// started, completed and failed, and partitions evicted and reopened.
    /// A subscriber that falls behind by more than
    /// [`EVENT_BUFFER`](crate::EVENT_BUFFER) events loses the oldest
    /// (the engine never waits for it); the subscription ends when the
    /// database has closed.
    ///
    /// # Examples
    /// See [`Events`](crate::Events).
    pub fn events(&self) -> crate::Events {
        self.shared.sup.events()
    }

    /// Closes the database: requests in flight are answered, every open
    /// partition drains its mailbox, syncs and closes its files; then the
    /// directory lock is released. Afterwards every operation through a
    /// `Db` or `Partition` handle, including other clones of this `Db`,
    /// returns [`Error::Closed`]; [`Snapshot`](crate::Snapshot)s taken
    /// before stay readable until dropped. Memory-only partitions lose
    /// their contents. Concurrent calls (on clones) all wait for the one
    /// closing and get its outcome. Running compactions are cancelled (rolled
    /// back); subscriptions to [`Db::events`] end.
    ///
    /// # Errors
    /// The first error a partition reported while syncing, or the failure
    /// that poisoned a partition while acknowledged writes were not yet
    /// synced (they may not be durable); the lock is released regardless.
    pub async fn close(self) -> Result<()> {
        let s = &self.shared;
        s.closing
            .get_or_init(|| async {
                // Release pairs with the Acquire loads in handles: after this
                // store no handle starts a new operation.
                s.sup.closed.store(true, Ordering::Release);
                // Waits for a create or drop in progress; none starts after.
                let _changes = s.changes.lock().await;
                let slots: Vec<Arc<Slot>> = self.slots().values().cloned().collect();
                let mut stops = tokio::task::JoinSet::new();
                for slot in &slots {
                    let (sup, slot) = (Arc::clone(&s.sup), Arc::clone(slot));
                    stops.spawn(async move { sup.stop(&slot, false).await });
                }
                let mut result = Ok(());
                while let Some(r) = stops.join_next().await {
                    let r = r.unwrap_or_else(|e| Err(Error::io("close", "(task)", std::io::Error::other(e))));
                    if result.is_ok() {
                        result = r;
                    }
                }
                for slot in &slots {
                    // An actor left behind by an abandoned opening holds its
                    // directory's permit until its files are closed. The
                    // semaphore is never closed, so this only waits.
                    drop(slot.owner.acquire().await);
                }
                drop(s.sup.lock.lock().unwrap_or_else(PoisonError::into_inner).take());
                s.sup.close_events();
                tracing::info!(root = %s.sup.root.display(), "database closed");
                // An eviction's final close that failed after acknowledging
                // unsynced writes is reported here, as a poisoned close is.
                match (result, s.sup.take_deferred()) {
                    (Ok(()), Some(e)) => Err(e),
                    (result, _) => result,
                }
            })
            .await
            .clone()
    }
}

/// Runs blocking file work off the runtime's workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::io("run", "(blocking task)", std::io::Error::other(e)))?
}
