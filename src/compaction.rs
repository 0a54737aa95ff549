//! What a compaction reports: [`CompactionReport`] and [`SkipReason`].
//!
//! Compaction itself lives with the partition's writer
//! (`partition::compaction` copies, `partition::writer::compact` begins and
//! installs); the scheduler that starts it lives in the supervisor.

use std::time::Duration;

/// What one compaction of a partition did, or why it did nothing.
///
/// `bytes_before` and `bytes_after` measure the files the compaction
/// replaced and the files it wrote in their place (data files, headers
/// included; hints not counted); files written by the partition meanwhile
/// are in neither.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> caskade::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use caskade::{CompactionOptions, PartitionOptions};
/// let db = caskade::Db::open(dir.path()).await?;
/// let eager = CompactionOptions::default().min_space_saving(0);
/// let p = db
///     .create_partition("p", PartitionOptions::default().compaction(eager))
///     .await?;
/// for round in 0..3 {
///     p.put("k", format!("value {round}")).await?;
/// }
/// let report = p.compact().await?;
/// assert!(report.performed());
/// assert_eq!(report.records_copied, 1);
/// assert!(report.bytes_after < report.bytes_before);
/// assert_eq!(p.get("k").await?.as_deref(), Some(&b"value 2"[..]));
/// // Nothing left to reclaim: a no-op report.
/// assert!(!p.compact().await?.performed());
/// # db.close().await }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionReport {
    /// The partition's name.
    pub partition: String,
    /// Why nothing was done; `None` when the compaction ran.
    pub skipped: Option<SkipReason>,
    /// Bytes of the data files replaced.
    pub bytes_before: u64,
    /// Bytes of the data files written in their place.
    pub bytes_after: u64,
    /// `bytes_before - bytes_after`.
    pub space_saved: u64,
    /// Live records copied.
    pub records_copied: u64,
    /// Data files replaced (and deleted once no snapshot reads them).
    pub files_compacted: usize,
    /// Data files written.
    pub files_written: usize,
    /// From the start of the compaction to its installation.
    pub duration: Duration,
}

impl CompactionReport {
    /// Whether the compaction ran (`skipped` is `None`).
    pub fn performed(&self) -> bool {
        self.skipped.is_none()
    }

    /// The report of a compaction that did nothing.
    pub(crate) fn skipped(partition: &str, reason: SkipReason) -> Self {
        CompactionReport {
            partition: partition.to_owned(),
            skipped: Some(reason),
            bytes_before: 0,
            bytes_after: 0,
            space_saved: 0,
            records_copied: 0,
            files_compacted: 0,
            files_written: 0,
            duration: Duration::ZERO,
        }
    }
}

/// Why a compaction did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// No data file holds a dead byte.
    NothingToReclaim,
    /// Compacting would save less than the partition's
    /// [`min_space_saving`](crate::CompactionOptions::min_space_saving).
    BelowMinSaving {
        /// Bytes a compaction could reclaim now.
        reclaimable: u64,
        /// The threshold.
        min_space_saving: u64,
    },
    /// The file system has less free space than the copy needs.
    LowDiskSpace {
        /// Bytes the copy needs (the live data, plus a margin).
        needed: u64,
        /// Bytes available.
        available: u64,
    },
}
