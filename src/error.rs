//! The one public error type.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in caskade.
///
/// Variants carry the context needed to act on them (the file, the offset, the
/// operation). `Error` is `Clone` because one failed group commit answers every
/// request of the group with the same error; I/O errors are shared through an
/// [`Arc`] for that reason.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed.
    #[error("{op} {path:?} failed: {source}")]
    Io {
        /// The operation, e.g. `"write"`, `"sync_data"`, `"rename"`.
        op: &'static str,
        /// The file or directory the operation was applied to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// A file holds bytes that fail their checksum or do not parse.
    #[error("corrupt file {file:?} at offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the first bad byte range found.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// Another `Db` (in this or another process) holds the directory's lock.
    #[error("database directory {path:?} is locked by another open Db")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// An earlier write or fsync of this partition failed; writes are refused
    /// until the database is reopened. Reads keep working.
    #[error("partition {partition:?} is poisoned by an earlier I/O failure; reopen the database")]
    Poisoned {
        /// The partition's name.
        partition: String,
    },
    /// The key is longer than [`MAX_KEY_LEN`](crate::MAX_KEY_LEN).
    #[error("key of {len} bytes exceeds the limit of {max} bytes")]
    KeyTooLarge {
        /// Length of the rejected key.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value is longer than the configured maximum.
    #[error("value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLarge {
        /// Length of the rejected value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A batch is larger than the configured maximum.
    #[error("batch of {len} bytes exceeds the limit of {max} bytes")]
    BatchTooLarge {
        /// Encoded size of the rejected batch.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Keys must be at least one byte long.
    #[error("empty keys are not allowed")]
    EmptyKey,
    /// The partition name is not acceptable.
    #[error("invalid partition name {name:?}: {reason}")]
    InvalidPartitionName {
        /// The rejected name (possibly shortened).
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// No partition has this name.
    #[error("partition {name:?} does not exist")]
    PartitionNotFound {
        /// The name asked for.
        name: String,
    },
    /// `create_partition` of a name that exists already.
    #[error("partition {name:?} exists already")]
    PartitionExists {
        /// The name asked for.
        name: String,
    },
    /// The partition this handle refers to was dropped. A partition created
    /// later under the same name is a different one: get a new handle.
    #[error("partition {name:?} was dropped")]
    PartitionDropped {
        /// The dropped partition's name.
        name: String,
    },
    /// The value does not fit the partition's [`Schema`](crate::Schema);
    /// nothing was written.
    #[error("value rejected by the schema of partition {partition:?}: {reason}")]
    SchemaViolation {
        /// The partition's name.
        partition: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// `incr` found a value that is not a canonical decimal 64-bit integer;
    /// nothing was written.
    #[error("value is not an integer")]
    NotAnInteger,
    /// `incr` would overflow a 64-bit signed integer; nothing was written.
    #[error("incrementing {current} by {by} overflows a 64-bit integer")]
    IntegerOverflow {
        /// The stored value.
        current: i64,
        /// The increment asked for.
        by: i64,
    },
    /// A compaction ran past its [`timeout`](crate::CompactionOptions::timeout)
    /// and was rolled back: the partition is on its old files.
    #[error("compaction of partition {partition:?} exceeded its timeout of {timeout:?} and was rolled back")]
    CompactionTimedOut {
        /// The partition's name.
        partition: String,
        /// The timeout it exceeded.
        timeout: std::time::Duration,
    },
    /// A compaction was abandoned (the partition is being closed, evicted or
    /// dropped) and rolled back: the partition is on its old files.
    #[error("compaction of partition {partition:?} was cancelled and rolled back")]
    CompactionCancelled {
        /// The partition's name.
        partition: String,
    },
    /// The database or partition was closed.
    #[error("the database is closed")]
    Closed,
    /// The directory is not a caskade database (it holds neither a catalog
    /// nor a partitions directory): returned by the offline tools
    /// ([`OfflineDb`](crate::OfflineDb)), which never create one.
    #[error("{path:?} is not a caskade database directory")]
    NotADatabase {
        /// The directory.
        path: PathBuf,
    },
    /// A builder setting is out of range.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// Wraps an `io::Error` with the operation and path it came from.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// A corruption error.
    pub(crate) fn corrupt(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}
