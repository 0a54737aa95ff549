//! fjall 3, as its README shows: `Database::builder(path).open()`, one
//! keyspace (`db.keyspace(name, KeyspaceCreateOptions::default)`),
//! `insert` / `get`, atomic batches with `db.batch()` + `commit`. A write
//! reaches the OS's buffers by default; a durable put is followed by
//! `db.persist(PersistMode::SyncData)` (an `fdatasync` of the journal), a
//! durable batch carries `durability(Some(PersistMode::SyncData))`.
//! The block cache is set to `cfg.cache_bytes` (fjall's default is 32 MiB;
//! its README advises 20–25 % of memory, or more when the data set fits).

use std::path::Path;

use anyhow::{Context, Result};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::engine::{EngineConfig, Mode};
use crate::plan::Records;

/// An open fjall database and its one keyspace.
#[derive(Clone)]
pub struct FjallStore {
    db: Database,
    keyspace: Keyspace,
    mode: Mode,
}

impl FjallStore {
    /// Opens (or creates) `dir/fjall`.
    ///
    /// # Errors
    /// fjall's error.
    pub fn open(dir: &Path, mode: Mode, cfg: EngineConfig) -> Result<Self> {
        let db = Database::builder(dir.join("fjall"))
            .cache_size(cfg.cache_bytes)
            .open()
            .with_context(|| format!("fjall: opening {}", dir.display()))?;
        let keyspace = db
            .keyspace(super::NAME, KeyspaceCreateOptions::default)
            .context("fjall: opening the keyspace")?;
        Ok(FjallStore { db, keyspace, mode })
    }

    /// The length of `key`'s value.
    pub async fn get(&self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self.keyspace.get(key).context("fjall: get")?.map(|v| v.len()))
    }

    /// `insert`, then `persist(SyncData)` in durable mode.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.keyspace.insert(key, value).context("fjall: insert")?;
        if self.mode == Mode::Durable {
            self.db.persist(PersistMode::SyncData).context("fjall: persist")?;
        }
        Ok(())
    }

    /// One `OwnedWriteBatch` (with `SyncData` durability in durable mode).
    pub async fn write_batch(&self, records: &Records) -> Result<()> {
        let mut batch = self.db.batch();
        if self.mode == Mode::Durable {
            batch = batch.durability(Some(PersistMode::SyncData));
        }
        for (k, v) in records.iter() {
            batch.insert(&self.keyspace, k, v);
        }
        batch.commit().context("fjall: batch commit")
    }

    /// `persist(SyncAll)`.
    pub async fn sync(&self) -> Result<()> {
        self.db.persist(PersistMode::SyncAll).context("fjall: persist")
    }

    /// Persists, then drops the keyspace and the database.
    pub async fn close(self) -> Result<()> {
        self.sync().await?;
        let FjallStore { db, keyspace, .. } = self;
        drop(keyspace);
        drop(db);
        Ok(())
    }
}
