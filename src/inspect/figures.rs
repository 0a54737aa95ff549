//! What `inspect` shows: per partition its files, records, live and dead
//! bytes and keys ([`InspectReport`], [`PartitionFigures`], [`FileFigures`]).

use std::path::PathBuf;

use super::problem::Problem;

/// One data file of a partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FileFigures {
    /// The data file's id (its name is `<id as 8 digits>.data`).
    pub id: u32,
    /// Whether it is the active (appendable) file: the manifest's last.
    pub active: bool,
    /// Its size in bytes (header included).
    pub size: u64,
    /// Valid records read from it (tombstones included).
    pub records: u64,
    /// Of which tombstones.
    pub tombstones: u64,
    /// Records the index points at.
    pub live_records: u64,
    /// Bytes of those records.
    pub live_bytes: u64,
    /// Everything else after the header: overwritten and deleted values,
    /// tombstones, a torn tail — what a compaction reclaims.
    pub dead_bytes: u64,
    /// The size of its hint file, if it has one.
    pub hint_size: Option<u64>,
}

/// One partition directory.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct PartitionFigures {
    /// The catalog id (the directory is its 16 hex digits).
    pub id: u64,
    /// The name the catalog gives it; `None` if the catalog does not list
    /// the directory (or could not be read that far).
    pub name: Option<String>,
    /// A memory-only partition (no files).
    pub memory_only: bool,
    /// Its directory (for a memory-only partition, where it would be).
    pub dir: PathBuf,
    /// The manifest's generation, if it was read.
    pub generation: Option<u64>,
    /// The data files in manifest order (the active file last).
    pub files: Vec<FileFigures>,
    /// Live keys: the keys recovery would index.
    pub keys: u64,
    /// Sum of the files' records.
    pub records: u64,
    /// Sum of the files' tombstones.
    pub tombstones: u64,
    /// Bytes of the records the index points at.
    pub live_bytes: u64,
    /// Bytes of data files that are neither headers nor live records.
    pub dead_bytes: u64,
    /// Sum of the data files' sizes.
    pub data_bytes: u64,
    /// Sum of the hint files' sizes.
    pub hint_bytes: u64,
}

/// The result of [`OfflineDb::inspect`](super::OfflineDb::inspect).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct InspectReport {
    /// The database directory.
    pub root: PathBuf,
    /// Every partition, by id: those the catalog lists (with or without a
    /// directory) and every other partition directory found.
    pub partitions: Vec<PartitionFigures>,
    /// What [`OfflineDb::check`](super::OfflineDb::check) would report.
    pub problems: Vec<Problem>,
}

impl InspectReport {
    /// The partition named `name`, if the catalog lists one.
    pub fn partition(&self, name: &str) -> Option<&PartitionFigures> {
        self.partitions.iter().find(|p| p.name.as_deref() == Some(name))
    }
}
