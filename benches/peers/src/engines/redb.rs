//! redb 4, as its docs show: one `TableDefinition<&[u8], &[u8]>`, every
//! write in a write transaction — a batch is one transaction, a put is one
//! transaction of one insert — committed with the default
//! `Durability::Immediate` in durable mode (durable when `commit` returns)
//! and with `Durability::None` in buffered mode (redb 4's non-durable
//! commit: made durable by the next `Immediate` commit, which `sync` is).
//! Each get is one read transaction (`ReadableDatabase::begin_read`), so it
//! sees the latest commit, as a get of the other engines does.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use redb::{Database, Durability, ReadableDatabase, TableDefinition, WriteTransaction};

use crate::engine::{EngineConfig, Mode};
use crate::plan::Records;

/// The one table.
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new(super::NAME);

/// An open redb database.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    mode: Mode,
}

impl RedbStore {
    /// Opens (or creates) `dir/data.redb` with a cache of `cfg.cache_bytes`
    /// (redb's default is 1 GiB), and creates the table.
    ///
    /// # Errors
    /// redb's error.
    pub fn open(dir: &Path, mode: Mode, cfg: EngineConfig) -> Result<Self> {
        let cache = usize::try_from(cfg.cache_bytes).unwrap_or(usize::MAX);
        let db = Database::builder()
            .set_cache_size(cache)
            .create(dir.join("data.redb"))
            .with_context(|| format!("redb: opening {}", dir.display()))?;
        let store = RedbStore {
            db: Arc::new(db),
            mode,
        };
        // Create the table, so a read before the first write finds it.
        let txn = store.begin(Mode::Durable)?;
        txn.open_table(TABLE).context("redb: open_table")?;
        txn.commit().context("redb: commit")?;
        Ok(store)
    }

    /// A write transaction committing with `mode`'s durability.
    fn begin(&self, mode: Mode) -> Result<WriteTransaction> {
        let mut txn = self.db.begin_write().context("redb: begin_write")?;
        if mode == Mode::Buffered {
            txn.set_durability(Durability::None)
                .context("redb: set_durability")?;
        }
        Ok(txn)
    }

    /// Writes `records` in one transaction of the store's mode.
    fn write<'a>(&self, records: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Result<()> {
        let txn = self.begin(self.mode)?;
        {
            let mut table = txn.open_table(TABLE).context("redb: open_table")?;
            for (k, v) in records {
                table.insert(k, v).context("redb: insert")?;
            }
        }
        txn.commit().context("redb: commit")
    }

    /// The length of `key`'s value (one read transaction).
    pub async fn get(&self, key: &[u8]) -> Result<Option<usize>> {
        let txn = self.db.begin_read().context("redb: begin_read")?;
        let table = txn.open_table(TABLE).context("redb: open_table")?;
        Ok(table.get(key).context("redb: get")?.map(|v| v.value().len()))
    }

    /// One transaction of one insert.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(std::iter::once((key, value)))
    }

    /// One transaction of the batch's inserts.
    pub async fn write_batch(&self, records: &Records) -> Result<()> {
        self.write(records.iter())
    }

    /// An empty `Durability::Immediate` commit: makes earlier
    /// `Durability::None` commits durable.
    pub async fn sync(&self) -> Result<()> {
        self.begin(Mode::Durable)?.commit().context("redb: commit")
    }

    /// Syncs and drops the database.
    pub async fn close(self) -> Result<()> {
        self.sync().await?;
        drop(self.db);
        Ok(())
    }
}
