//! [`Partition`]: the cloneable handle users hold.

use std::sync::Arc as StdArc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::compaction::CompactionReport;
use crate::config::{MAX_BATCH_BYTES, MAX_KEY_LEN};
use crate::error::{Error, Result};
use crate::options::{PartitionOptions, parse_int};
use crate::snapshot::Version;
use crate::stats::PartitionStats;
use crate::supervisor::Supervisor;
use crate::supervisor::slot::{Incarnation, Slot};
use crate::sync::{Arc, Ordering};

use super::actor::Request;
use super::batch::Batch;
use super::read;
use super::view::Snapshot;
use super::writer::{Op, WriteSet};

/// A handle to one partition: cheap to clone, usable from many tasks.
///
/// Writes go to the partition's single writer through a bounded mailbox and
/// are acknowledged after they are written (and, under the default
/// [`Durability::Always`](crate::Durability::Always), synced) and *published*:
/// when a write method returns, every later read through any handle observes
/// the write. Reads never wait for the writer.
///
/// The handle stays valid while the supervisor evicts and reopens the
/// partition behind it: an operation on an evicted partition reopens it.
/// After [`Db::drop_partition`](crate::Db::drop_partition) every operation
/// fails with [`Error::PartitionDropped`].
///
/// If a write's future is dropped before it completes, the write may or may
/// not have been applied, but never partially.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> caskade::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = caskade::Db::open(dir.path()).await?;
/// let users = db.partition("users").await?;
/// users.put("ada", "lovelace").await?;
/// assert_eq!(users.get("ada").await?.as_deref(), Some(&b"lovelace"[..]));
/// assert!(users.delete("ada").await?);
/// assert_eq!(users.get("ada").await?, None);
/// assert_eq!(users.incr("visits", 2).await?, 2);
/// assert_eq!(users.get_int("visits").await?, Some(2));
/// # db.close().await }
/// ```
#[derive(Debug, Clone)]
pub struct Partition {
    slot: StdArc<Slot>,
    sup: StdArc<Supervisor>,
}

impl Partition {
    pub(crate) fn new(slot: StdArc<Slot>, sup: StdArc<Supervisor>) -> Self {
        Partition { slot, sup }
    }

    /// The partition's name.
    pub fn name(&self) -> &str {
        &self.slot.name
    }

    /// The options the partition was created with.
    pub fn options(&self) -> &PartitionOptions {
        &self.slot.options
    }

    /// The partition's statistics (see [`PartitionStats`] for what is exact).
    pub fn stats(&self) -> PartitionStats {
        self.slot.partition_stats()
    }

    fn check_open(&self) -> Result<()> {
        // Acquire pairs with the Release store in `Db::close`.
        if self.sup.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// The current published version, opening the partition if it is not
    /// open (never opened in this process, or evicted).
    async fn version(&self) -> Result<Arc<Version>> {
        self.check_open()?;
        loop {
            let version = self.slot.cell.load();
            if !version.retired {
                return Ok(version);
            }
            self.sup.open(&self.slot).await?;
        }
    }

    /// Sets `key` to `value`. An empty value is a value, not a delete.
    ///
    /// When this returns, every later read through any handle observes the write.
    ///
    /// # Errors
    /// [`Error::EmptyKey`], [`Error::KeyTooLarge`], [`Error::ValueTooLarge`],
    /// [`Error::SchemaViolation`] (nothing is written); [`Error::Io`] if the
    /// write or sync failed (the partition is then poisoned);
    /// [`Error::Poisoned`]; [`Error::PartitionDropped`]; [`Error::Closed`].
    pub async fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let op = Op::Put {
            key: check_key(key.as_ref())?,
            value: self.check_value(value.as_ref())?,
        };
        self.write(WriteSet { ops: vec![op] }).await.map(drop)
    }

    /// Sets `key` to the integer `value` (stored as decimal text, accepted
    /// by every schema).
    ///
    /// # Errors
    /// As [`Partition::put`].
    pub async fn put_int(&self, key: impl AsRef<[u8]>, value: i64) -> Result<()> {
        self.put(key, value.to_string()).await
    }

    /// Removes `key`; returns whether it was present.
    ///
    /// # Errors
    /// As [`Partition::put`].
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let op = Op::Delete {
            key: check_key(key.as_ref())?,
        };
        self.write(WriteSet { ops: vec![op] }).await.map(|n| n > 0)
    }

    /// Removes every key of `keys` atomically (one batch); returns how many
    /// were present (a key listed twice counts once), like Redis `DEL`.
    ///
    /// # Errors
    /// As [`Partition::put`]; an invalid key fails the whole call.
    pub async fn delete_many<K: AsRef<[u8]>>(&self, keys: impl IntoIterator<Item = K>) -> Result<usize> {
        let ops = keys
            .into_iter()
            .map(|k| check_key(k.as_ref()).map(|key| Op::Delete { key }))
            .collect::<Result<Vec<_>>>()?;
        if ops.is_empty() {
            return Ok(0);
        }
        self.write(WriteSet { ops }).await
    }

    /// Adds `by` to the integer value of `key` and returns the result; a
    /// missing key counts as 0. Runs inside the partition's writer, so
    /// concurrent increments never lose an update. Works on every schema:
    /// the value must be a canonical decimal integer (as Redis `INCRBY`).
    ///
    /// # Errors
    /// [`Error::NotAnInteger`], [`Error::IntegerOverflow`] (nothing is
    /// written); otherwise as [`Partition::put`].
    pub async fn incr(&self, key: impl AsRef<[u8]>, by: i64) -> Result<i64> {
        let key = check_key(key.as_ref())?;
        self.slot.stats.writes.fetch_add(1, Relaxed);
        self.request(|reply| Request::Incr { key, by, reply }).await
    }

    /// The value of `key`, or `None`. One index lookup and one positional read
    /// of the record (checksum verified); never waits for the writer.
    ///
    /// # Errors
    /// [`Error::EmptyKey`], [`Error::KeyTooLarge`], [`Error::Io`],
    /// [`Error::Corrupt`], [`Error::PartitionDropped`], [`Error::Closed`].
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let key = key.as_ref();
        check_key_len(key)?;
        let started = Instant::now();
        // A page-cache read never returns `Pending`: without this, a task
        // looping over `get` would never yield its worker to other tasks.
        tokio::task::coop::consume_budget().await;
        let version = self.version().await?;
        self.slot.stats.reads.fetch_add(1, Relaxed);
        let value = match version.index.get(key) {
            None => None,
            Some(loc) if loc.len as usize <= self.slot.cfg.inline_read_limit => {
                Some(read::read_value(&version, loc, key)?)
            }
            Some(loc) => {
                // Large values are read on the blocking pool, off the runtime's workers.
                let key = key.to_vec();
                let read = tokio::task::spawn_blocking(move || read::read_value(&version, loc, &key))
                    .await
                    .map_err(|e| Error::io("read", "(blocking task)", std::io::Error::other(e)))?;
                Some(read?)
            }
        };
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.slot.stats.read_latency.record(took);
        Ok(value)
    }

    /// The integer value of `key`, or `None`.
    ///
    /// # Errors
    /// [`Error::NotAnInteger`] if the value is not a canonical decimal
    /// integer; otherwise as [`Partition::get`].
    pub async fn get_int(&self, key: impl AsRef<[u8]>) -> Result<Option<i64>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(v) => parse_int(&v).map(Some).ok_or(Error::NotAnInteger),
        }
    }

    /// The values of `keys`, in order, all read from one snapshot.
    ///
    /// # Errors
    /// As [`Partition::get`]; an invalid key fails the whole call.
    pub async fn get_many<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Bytes>>> {
        let keys: Vec<K> = keys.into_iter().collect();
        for k in &keys {
            check_key_len(k.as_ref())?;
        }
        let version = self.version().await?;
        self.slot.stats.reads.fetch_add(keys.len() as u64, Relaxed);
        keys.iter().map(|k| read::get(&version, k.as_ref())).collect()
    }

    /// Whether `key` is present (an index lookup, no I/O).
    ///
    /// # Errors
    /// [`Error::EmptyKey`], [`Error::KeyTooLarge`], [`Error::PartitionDropped`],
    /// [`Error::Closed`].
    pub async fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        check_key_len(key.as_ref())?;
        let version = self.version().await?;
        self.slot.stats.reads.fetch_add(1, Relaxed);
        Ok(version.index.contains_key(key.as_ref()))
    }

    /// How many of `keys` are present, in one snapshot (a key listed twice
    /// counts twice), like Redis `EXISTS`. No I/O.
    ///
    /// # Errors
    /// As [`Partition::contains_key`].
    pub async fn exists_many<K: AsRef<[u8]>>(&self, keys: impl IntoIterator<Item = K>) -> Result<usize> {
        let version = self.version().await?;
        let mut count = 0;
        let mut looked = 0;
        for k in keys {
            check_key_len(k.as_ref())?;
            looked += 1;
            count += usize::from(version.index.contains_key(k.as_ref()));
        }
        self.slot.stats.reads.fetch_add(looked, Relaxed);
        Ok(count)
    }

    /// Starts an atomic batch of puts and deletes.
    pub fn batch(&self) -> Batch {
        Batch::new(self.clone())
    }

    /// Makes every write acknowledged so far durable (an `fdatasync`), whatever
    /// the durability policy.
    ///
    /// # Errors
    /// [`Error::Io`] if the sync failed (the partition is then poisoned),
    /// [`Error::Poisoned`], [`Error::PartitionDropped`], [`Error::Closed`].
    pub async fn sync(&self) -> Result<()> {
        self.request(|reply| Request::Sync { reply }).await
    }

    /// Compacts the partition now, online: the live records of every sealed
    /// data file are copied into new files in the background (the active
    /// file is sealed first), which then replace the old ones atomically.
    /// Reads and writes go on meanwhile; writes made during the copy win.
    /// The old files are deleted once no snapshot reads them.
    ///
    /// Returns a report with `skipped` set, doing nothing, when no dead byte
    /// can be reclaimed, when the saving would be below the partition's
    /// [`min_space_saving`](crate::CompactionOptions::min_space_saving), or
    /// when the file system lacks the space for the copy. If a compaction
    /// is running already (the scheduler's, say), this waits for it and
    /// returns its report. While it runs the partition is not evicted.
    ///
    /// # Errors
    /// [`Error::CompactionTimedOut`] (past the partition's
    /// [`timeout`](crate::CompactionOptions::timeout)) and
    /// [`Error::CompactionCancelled`] (the partition was dropped or closed),
    /// [`Error::Io`] and [`Error::Corrupt`] (a damaged input): in every case
    /// the compaction was rolled back and the partition is on its old
    /// files. [`Error::Poisoned`], [`Error::PartitionDropped`],
    /// [`Error::Closed`].
    ///
    /// # Examples
    /// See [`CompactionReport`].
    pub async fn compact(&self) -> Result<CompactionReport> {
        self.request(|reply| Request::Compact { reply }).await
    }

    /// A consistent point-in-time view of the partition (opening it if it
    /// was evicted). The view stays readable after the partition is evicted
    /// or the database closed, until dropped.
    ///
    /// # Errors
    /// [`Error::PartitionDropped`], [`Error::Closed`], or why reopening failed.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot::new(self.version().await?))
    }

    /// Validates a value against the size limit and the schema, and copies it.
    pub(crate) fn check_value(&self, value: &[u8]) -> Result<Bytes> {
        let max = self.slot.cfg.max_value_len;
        if value.len() > max {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max,
            });
        }
        self.slot.options.check_value(&self.slot.name, value)?;
        Ok(Bytes::copy_from_slice(value))
    }

    pub(crate) async fn write(&self, set: WriteSet) -> Result<usize> {
        let len = set.encoded_len();
        let max = MAX_BATCH_BYTES;
        if len > max {
            return Err(Error::BatchTooLarge { len, max });
        }
        self.slot.stats.writes.fetch_add(1, Relaxed);
        self.request(|reply| Request::Write { set, reply }).await
    }

    /// Sends a request to the partition's actor under a lease (opening the
    /// partition if needed) and waits for the answer. If the actor ends
    /// without answering (the thread died), the answer is `Closed`, never a
    /// hang.
    async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request) -> Result<T> {
        self.check_open()?;
        let lease = self.sup.lease(&self.slot).await?;
        self.ask(&lease.inc, make).await
    }

    /// Compacts through an incarnation the caller holds a lease on (the
    /// scheduler's way: it never opens a partition to compact it).
    pub(crate) async fn compact_on(&self, inc: &Incarnation) -> Result<CompactionReport> {
        self.ask(inc, |reply| Request::Compact { reply }).await
    }

    /// Sends a request to `inc` (under a lease the caller holds) and waits
    /// for the answer, or for the actor's end (`Closed`).
    async fn ask<T>(
        &self,
        inc: &Incarnation,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request,
    ) -> Result<T> {
        let (reply, mut rx) = oneshot::channel();
        let req = match inc.tx.try_send(make(reply)) {
            Ok(()) => None,
            Err(flume::TrySendError::Full(req)) => Some(req),
            Err(flume::TrySendError::Disconnected(_)) => return Err(Error::Closed),
        };
        if let Some(req) = req {
            // A full mailbox makes this wait: backpressure, not unbounded memory.
            self.slot.stats.mailbox_full.fetch_add(1, Relaxed);
            inc.tx.send_async(req).await.map_err(|_| Error::Closed)?;
        }
        let mut stopped = inc.stopped.clone();
        tokio::select! {
            biased;
            r = &mut rx => r.map_err(|_| Error::Closed)?,
            // Nothing is ever sent on the watch: `changed` resolves only when
            // the actor's sender drops. A reply sent just before still counts.
            _ = stopped.changed() => rx.try_recv().map_err(|_| Error::Closed)?,
        }
    }
}

fn check_key_len(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}

/// Validates a key and copies it for the writer.
pub(crate) fn check_key(key: &[u8]) -> Result<Bytes> {
    check_key_len(key)?;
    Ok(Bytes::copy_from_slice(key))
}
