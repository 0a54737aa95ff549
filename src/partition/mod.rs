//! A partition: a named keyspace in its own directory, written by one actor
//! and read from published versions.

pub(crate) mod actor;
mod batch;
pub(crate) mod compaction;
mod compactor;
pub(crate) mod files;
mod handle;
mod intake;
pub(crate) mod read;
pub(crate) mod reaper;
pub(crate) mod recovery;
pub(crate) mod scan;
mod view;
pub(crate) mod writer;

pub use batch::Batch;
pub use handle::Partition;
pub use view::{Snapshot, SnapshotIter};
