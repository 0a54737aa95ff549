//! sled 0.34, as its docs show: `Config::new().path(..).open()`, `insert`,
//! `get`, `Batch` + `apply_batch` for atomic batches, and `flush` (which
//! makes sled's log stable) after a write that must be durable. Without a
//! `flush`, sled's background flusher writes every 500 ms (its default).
//!
//! Caveat (read in sled 0.34.7's `pagecache/iobuf.rs`): `flush` makes the
//! log stable with `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)`, not
//! `fsync`/`fdatasync` — no device cache flush, no metadata — and only
//! the periodic flusher calls `sync_all`. So sled's "durable" puts are
//! weaker than the other engines' (and cheaper) on a disk with a volatile
//! write cache; the report says so.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::engine::{EngineConfig, Mode};
use crate::plan::Records;

/// An open sled database (its default tree).
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    mode: Mode,
    path: PathBuf,
}

impl SledStore {
    /// Opens `dir/sled` with a cache of `cfg.cache_bytes` (sled's default
    /// is 1 GiB).
    ///
    /// # Errors
    /// sled's error.
    pub fn open(dir: &Path, mode: Mode, cfg: EngineConfig) -> Result<Self> {
        let path = dir.join("sled");
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(cfg.cache_bytes)
            .open()
            .with_context(|| format!("sled: opening {}", dir.display()))?;
        Ok(SledStore { db, mode, path })
    }

    /// The length of `key`'s value.
    pub async fn get(&self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self.db.get(key).context("sled: get")?.map(|v| v.len()))
    }

    /// `insert`, then `flush` in durable mode.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db.insert(key, value).context("sled: insert")?;
        if self.mode == Mode::Durable {
            self.db.flush().context("sled: flush")?;
        }
        Ok(())
    }

    /// One `Batch` through `apply_batch` (flushed in durable mode).
    pub async fn write_batch(&self, records: &Records) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (k, v) in records.iter() {
            batch.insert(k, v);
        }
        self.db.apply_batch(batch).context("sled: apply_batch")?;
        if self.mode == Mode::Durable {
            self.db.flush().context("sled: flush")?;
        }
        Ok(())
    }

    /// `flush`.
    pub async fn sync(&self) -> Result<()> {
        self.db.flush().context("sled: flush")?;
        Ok(())
    }

    /// Flushes, drops the database, then waits (at most 10 s) until sled's
    /// background threads released its lock file: sled 0.34's drop does not
    /// wait for them (spacejam/sled#1289), so an immediate reopen in the same
    /// process may otherwise fail with `WouldBlock`. The wait is part of the
    /// close, not of the timed reopen.
    pub async fn close(self) -> Result<()> {
        self.sync().await?;
        let SledStore { db, path, .. } = self;
        drop(db);
        let lock = File::open(path.join("db")).context("sled: opening its lock file")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match lock.try_lock() {
                Ok(()) => return Ok(()),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TryLockError::WouldBlock) => bail!("sled: its lock was not released 10 s after close"),
                Err(TryLockError::Error(e)) => return Err(e).context("sled: locking its lock file"),
            }
        }
    }
}
