//! caskade, as its README shows: `Db::builder(dir).durability(..)`, one
//! partition, `put` / `get` / `batch().commit()`. Durable puts run under
//! `Durability::Always` (each acknowledged put is covered by an
//! `fdatasync`; concurrent tasks share one per group commit), buffered
//! ones under `Durability::OsBuffered`; `sync` is `Partition::sync`.

use std::path::Path;

use anyhow::{Context, Result};
use caskade::{CompactionReport, CompactionScheduler, Db, Durability, Partition};

use crate::engine::{EngineConfig, Mode};
use crate::plan::Records;

/// An open caskade database and its one partition.
#[derive(Clone)]
pub struct CaskadeStore {
    db: Db,
    part: Partition,
}

impl CaskadeStore {
    /// Opens `dir` with the durability of `mode`; with the compaction
    /// scheduler off unless `cfg.caskade_scheduler`.
    ///
    /// # Errors
    /// caskade's error.
    pub async fn open(dir: &Path, mode: Mode, cfg: EngineConfig) -> Result<Self> {
        let durability = match mode {
            Mode::Buffered => Durability::OsBuffered,
            Mode::Durable => Durability::Always,
        };
        let mut builder = Db::builder(dir).durability(durability);
        if !cfg.caskade_scheduler {
            builder = builder.compaction_scheduler(CompactionScheduler::disabled());
        }
        let db = builder
            .open()
            .await
            .with_context(|| format!("caskade: opening {}", dir.display()))?;
        let part = db
            .partition(super::NAME)
            .await
            .context("caskade: opening the partition")?;
        Ok(CaskadeStore { db, part })
    }

    /// The length of `key`'s value.
    pub async fn get(&self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self.part.get(key).await.context("caskade: get")?.map(|v| v.len()))
    }

    /// One put (durable or not as the database was opened).
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.part.put(key, value).await.context("caskade: put")
    }

    /// One atomic `Batch`.
    pub async fn write_batch(&self, records: &Records) -> Result<()> {
        let mut batch = self.part.batch();
        for (k, v) in records.iter() {
            batch.put(k, v);
        }
        batch.commit().await.context("caskade: batch commit")
    }

    /// `Partition::sync`.
    pub async fn sync(&self) -> Result<()> {
        self.part.sync().await.context("caskade: sync")
    }

    /// Compacts the partition now (`Partition::compact`).
    pub async fn compact(&self) -> Result<CompactionReport> {
        self.part.compact().await.context("caskade: compact")
    }

    /// Compactions the scheduler started since the open.
    pub fn scheduled_compactions(&self) -> u64 {
        self.db.stats().scheduled_compactions
    }

    /// `Db::close`: drains, fsyncs, unlocks.
    pub async fn close(self) -> Result<()> {
        let CaskadeStore { db, part } = self;
        drop(part);
        db.close().await.context("caskade: close")
    }
}
