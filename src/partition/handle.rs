//! [`Partition`]: the cloneable handle users hold.

use std::sync::Arc as StdArc;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::config::{Config, MAX_BATCH_BYTES, MAX_KEY_LEN};
use crate::error::{Error, Result};
use crate::snapshot::{SnapshotCell, Version};
use crate::sync::{Arc, AtomicBool, Ordering};

use super::actor::Request;
use super::batch::Batch;
use super::read;
use super::view::Snapshot;
use super::writer::{Op, WriteSet};

/// State shared by every handle of one open partition.
#[derive(Debug)]
pub(crate) struct PartitionShared {
    pub(crate) name: String,
    pub(crate) tx: flume::Sender<Request>,
    pub(crate) cell: Arc<SnapshotCell<Version>>,
    pub(crate) cfg: StdArc<Config>,
    /// Set when the `Db` closes; shared by all its partitions.
    pub(crate) closed: StdArc<AtomicBool>,
    /// Changes (its sender drops) when the actor thread has ended.
    pub(crate) stopped: tokio::sync::watch::Receiver<()>,
}

/// A handle to one partition: cheap to clone, usable from many tasks.
///
/// Writes go to the partition's single writer through a bounded mailbox and
/// are acknowledged after they are written (and, under the default
/// [`Durability::Always`](crate::Durability::Always), synced) and *published*:
/// when a write method returns, every later read through any handle observes
/// the write. Reads never wait for the writer.
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
/// # db.close().await }
/// ```
#[derive(Debug, Clone)]
pub struct Partition {
    shared: StdArc<PartitionShared>,
}

impl Partition {
    pub(crate) fn new(shared: StdArc<PartitionShared>) -> Self {
        Partition { shared }
    }

    pub(crate) fn shared(&self) -> &PartitionShared {
        &self.shared
    }

    /// The partition's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    fn check_open(&self) -> Result<()> {
        // Acquire pairs with the Release store in `Db::close`.
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Sets `key` to `value`. An empty value is a value, not a delete.
    ///
    /// When this returns, every later read through any handle observes the write.
    ///
    /// # Errors
    /// [`Error::EmptyKey`], [`Error::KeyTooLarge`], [`Error::ValueTooLarge`]
    /// (nothing is written); [`Error::Io`] if the write or sync failed (the
    /// partition is then poisoned); [`Error::Poisoned`]; [`Error::Closed`].
    pub async fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let op = Op::Put {
            key: check_key(key.as_ref())?,
            value: self.check_value(value.as_ref())?,
        };
        self.write(WriteSet { ops: vec![op] }).await.map(drop)
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

    /// The value of `key`, or `None`. One index lookup and one positional read
    /// of the record (checksum verified); never waits for the writer.
    ///
    /// # Errors
    /// [`Error::EmptyKey`], [`Error::KeyTooLarge`], [`Error::Io`],
    /// [`Error::Corrupt`], [`Error::Closed`].
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let key = key.as_ref();
        check_key_len(key)?;
        self.check_open()?;
        // A page-cache read never returns `Pending`: without this, a task
        // looping over `get` would never yield its worker to other tasks.
        tokio::task::coop::consume_budget().await;
        let version = self.shared.cell.load();
        match version.index.get(key) {
            None => Ok(None),
            Some(loc) if loc.len as usize <= self.shared.cfg.inline_read_limit => {
                read::read_record(&version, *loc, Some(key)).map(|(_, v)| Some(v))
            }
            Some(&loc) => {
                // Large values are read on the blocking pool, off the runtime's workers.
                let key = key.to_vec();
                tokio::task::spawn_blocking(move || read::read_record(&version, loc, Some(&key)))
                    .await
                    .map_err(|e| Error::io("read", "(blocking task)", std::io::Error::other(e)))?
                    .map(|(_, v)| Some(v))
            }
        }
    }

    /// Whether `key` is present (an index lookup, no I/O).
    ///
    /// # Errors
    /// [`Error::EmptyKey`], [`Error::KeyTooLarge`], [`Error::Closed`].
    pub async fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        check_key_len(key.as_ref())?;
        self.check_open()?;
        Ok(self.shared.cell.load().index.contains_key(key.as_ref()))
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
    /// [`Error::Poisoned`], [`Error::Closed`].
    pub async fn sync(&self) -> Result<()> {
        self.check_open()?;
        let (reply, rx) = oneshot::channel();
        self.send(Request::Sync { reply }).await?;
        self.reply(rx).await
    }

    /// A consistent point-in-time view of the partition.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.shared.cell.load())
    }

    pub(crate) fn check_value(&self, value: &[u8]) -> Result<Bytes> {
        let max = self.shared.cfg.max_value_len;
        if value.len() > max {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max,
            });
        }
        Ok(Bytes::copy_from_slice(value))
    }

    pub(crate) async fn write(&self, set: WriteSet) -> Result<usize> {
        self.check_open()?;
        let len = set.encoded_len();
        let max = MAX_BATCH_BYTES;
        if len > max {
            return Err(Error::BatchTooLarge { len, max });
        }
        let (reply, rx) = oneshot::channel();
        self.send(Request::Write { set, reply }).await?;
        self.reply(rx).await
    }

    /// Waits for the actor's answer. If the actor ends without answering
    /// (the request was queued behind a shutdown, or the thread died), the
    /// answer is `Closed`, never a hang.
    async fn reply<T>(&self, mut rx: oneshot::Receiver<Result<T>>) -> Result<T> {
        let mut stopped = self.shared.stopped.clone();
        tokio::select! {
            biased;
            r = &mut rx => r.map_err(|_| Error::Closed)?,
            // Nothing is ever sent on the watch: `changed` resolves only when
            // the actor's sender drops. A reply sent just before still counts.
            _ = stopped.changed() => rx.try_recv().map_err(|_| Error::Closed)?,
        }
    }

    async fn send(&self, req: Request) -> Result<()> {
        // A full mailbox makes this wait: backpressure, not unbounded memory.
        self.shared.tx.send_async(req).await.map_err(|_| Error::Closed)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::partition::actor::{self, ActorSpec};
    use crate::storage::Backend;
    use crate::storage::sim::SimDisk;

    /// A write queued behind a shutdown is never processed; its requester
    /// must get `Closed`, not wait forever, while other handles stay alive.
    #[tokio::test]
    async fn write_queued_behind_shutdown_is_answered_closed() {
        let fs: Backend = StdArc::new(SimDisk::new());
        fs.create_dir(std::path::Path::new("/db")).unwrap();
        let lock = StdArc::new(fs.lock(std::path::Path::new("/db/LOCK")).unwrap());
        let owner = StdArc::new(tokio::sync::Semaphore::new(1))
            .acquire_owned()
            .await
            .unwrap();
        let (tx, rx) = flume::bounded(16);
        let (opened_tx, opened_rx) = oneshot::channel();
        let (stopped_tx, stopped) = tokio::sync::watch::channel(());
        let cfg = StdArc::new(Config::default());
        // Queued before the actor starts serving (it recovers first).
        let (shutdown_reply, shutdown_done) = oneshot::channel();
        tx.send(Request::Shutdown {
            reply: shutdown_reply,
        })
        .unwrap();
        let spec = ActorSpec {
            name: "p".into(),
            fs,
            dir: "/db/p".into(),
            cfg: StdArc::clone(&cfg),
            lock,
            owner,
            stopped: stopped_tx,
        };
        actor::spawn(spec, rx, opened_tx).unwrap();
        let p = Partition::new(StdArc::new(PartitionShared {
            name: "p".into(),
            tx,
            cell: opened_rx.await.unwrap().unwrap(),
            cfg,
            closed: StdArc::new(AtomicBool::new(false)),
            stopped,
        }));
        let put = p.put("k", "v");
        let r = tokio::time::timeout(Duration::from_secs(5), put).await;
        shutdown_done.await.unwrap().unwrap();
        assert!(
            matches!(r, Ok(Err(Error::Closed)) | Ok(Ok(()))),
            "a request queued behind shutdown hung or failed oddly: {r:?}"
        );
        assert!(
            matches!(p.sync().await, Err(Error::Closed)),
            "after the actor stopped"
        );
        // `p` (holding the mailbox's sender) is still alive here.
        drop(p);
    }
}
