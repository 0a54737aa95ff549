//! # caskade
//!
//! An embedded, async key-value storage engine of the Bitcask family,
//! organised into partitions.
//!
//! - A **partition** is a named keyspace in its own directory, written by a
//!   single actor (a dedicated thread fed by a bounded mailbox) that appends
//!   checksummed records, group-commits them with one `fdatasync` per batch,
//!   and publishes a new index version *before* acknowledging.
//! - The **index** is a persistent hash map (`imbl`) of recent writes over
//!   an immutable flat table that background folds rebuild; readers load the
//!   current version and read a value with one positional read, never
//!   waiting for the writer.
//! - **Recovery** loads hint files for sealed data files, scans the active one
//!   and truncates a torn tail; a damaged sealed file is reported, never
//!   silently skipped.
//! - A **supervisor** opens partitions on first use and keeps the number open
//!   bounded, evicting the least recently used or idle ones; eviction is
//!   invisible to [`Partition`] handles. A durable **catalog** records which
//!   partitions exist, with their [`PartitionOptions`] (schema, memory-only
//!   persistence, durability).
//! - **Offline tools**: [`OfflineDb`] checks a closed database's checksums
//!   and index consistency, and reports its partitions' files, live and dead
//!   bytes and keys, without changing anything (`caskade check` / `inspect`).
//!
//! caskade is not a SQL database, has no range scans (keys are hashed), and
//! keeps every live key in memory.
//!
//! ## Guarantees
//! - With the default [`Durability::Always`], an acknowledged write survives
//!   power loss; under every policy it survives a process crash.
//! - Read-your-writes: when a write returns, every later read through any
//!   handle sees it.
//! - A [`Batch`] is all-or-nothing, for readers and across crashes.
//! - After an I/O failure a partition refuses writes ([`Error::Poisoned`]);
//!   reads go on; reopening recovers.
//!
//! ## Example
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> caskade::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let db = caskade::Db::open(dir.path()).await?;
//! let users = db.partition("users").await?;
//! users.put("ada", "lovelace").await?;
//! assert_eq!(users.get("ada").await?.as_deref(), Some(&b"lovelace"[..]));
//! db.close().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod catalog;
mod compaction;
mod config;
mod db;
mod error;
mod events;
mod format;
/// Entry points of the fuzz targets in `fuzz/` and of their corpus replay;
/// not a supported API.
#[doc(hidden)]
pub mod fuzzing;
mod index;
mod inspect;
mod name;
mod options;
mod partition;
mod snapshot;
mod stats;
mod storage;
mod supervisor;
mod sync;

#[cfg(caskade_loom)]
#[doc(hidden)]
#[path = "loom_api.rs"]
pub mod __loom;

pub use bytes::Bytes;
pub use compaction::{CompactionReport, SkipReason};
pub use config::{Durability, MAX_KEY_LEN};
pub use db::{Db, DbBuilder, PartitionInfo};
pub use error::{Error, Result};
pub use events::{EVENT_BUFFER, Event, Events};
pub use inspect::{
    CheckReport, FileFigures, InspectReport, OfflineDb, PartitionFigures, Problem, ProblemKind, Severity,
};
pub use options::{CompactionOptions, PartitionOptions, Persistence, Schema};
pub use partition::{Batch, Partition, Snapshot, SnapshotIter};
pub use stats::{DbStats, PartitionStats};
pub use storage::sim::{SimDisk, SimFault, SimOp};
pub use supervisor::scheduler::CompactionScheduler;

/// Compiles the README's example as a doctest, so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
