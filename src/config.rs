//! Settings chosen in [`DbBuilder`](crate::DbBuilder) and their limits.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::options::CompactionOptions;

/// The largest key, in bytes (64 KiB). Keys must be at least one byte long.
pub const MAX_KEY_LEN: usize = 64 * 1024;

/// When acknowledged writes reach stable storage.
///
/// In every mode the bytes are written to the data file (`write(2)`) before a
/// write is acknowledged, so a process crash (`kill -9`) never loses an
/// acknowledged write. The modes differ in what survives an OS crash or power
/// loss.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let _ = caskade::Durability::Interval(Duration::from_millis(50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `fdatasync` before every acknowledgement (once per group commit):
    /// an acknowledged write survives power loss. The default.
    #[default]
    Always,
    /// `fdatasync` at most this long after the first unsynced write
    /// (a fixed deadline, not a timer that later writes push back): power loss
    /// may lose up to one interval of acknowledged writes.
    Interval(Duration),
    /// Leave syncing to the OS (and to [`Partition::sync`](crate::Partition::sync),
    /// file rotation and close): power loss may lose any acknowledged write
    /// since the last of these.
    OsBuffered,
}

/// Validated settings of one `Db`.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) durability: Durability,
    pub(crate) max_file_size: u64,
    pub(crate) max_value_len: usize,
    pub(crate) mailbox_capacity: usize,
    pub(crate) max_group_requests: usize,
    pub(crate) max_group_bytes: usize,
    pub(crate) inline_read_limit: usize,
    /// Write sealed files' hints on a background thread (the default); off
    /// on the simulated disk, so fault injection counts operations in a
    /// deterministic order.
    pub(crate) background_hints: bool,
    /// The partition's compaction settings (its options').
    pub(crate) compaction: CompactionOptions,
    /// Compaction copies at most this many bytes per second (`None`: no limit).
    pub(crate) compaction_rate: Option<u64>,
    /// The compaction thread's nice value (0 ..= 19; Linux only).
    pub(crate) compaction_nice: i32,
}

/// The compaction thread's default nice value: background work yields the
/// CPU to readers and the writer when they compete for it.
pub(crate) const DEFAULT_COMPACTION_NICE: i32 = 10;
/// Defaults, also quoted in the builder's docs.
pub(crate) const DEFAULT_MAX_FILE_SIZE: u64 = 64 << 20;
pub(crate) const DEFAULT_MAX_VALUE_LEN: usize = 16 << 20;
pub(crate) const DEFAULT_MAILBOX_CAPACITY: usize = 1024;
pub(crate) const DEFAULT_MAX_GROUP_REQUESTS: usize = 1024;
pub(crate) const DEFAULT_MAX_GROUP_BYTES: usize = 8 << 20;
pub(crate) const DEFAULT_INLINE_READ_LIMIT: usize = 64 << 10;
/// Largest encoded request (batch) the writer accepts: 1 GiB plus one
/// record of overhead, enough for one value of the largest allowed size.
/// Rotation is checked before each group and a group never spans files, so a
/// data file may exceed `max_file_size` by up to one group (`max_group_bytes`
/// plus the request that crossed it).
pub(crate) const MAX_BATCH_BYTES: usize = MAX_VALUE_CEILING + MAX_KEY_LEN + crate::format::record::HEADER_LEN;
/// Hard ceilings: record lengths and offsets must fit the on-disk `u32`
/// fields with room to spare.
pub(crate) const MAX_VALUE_CEILING: usize = 1 << 30;
const MAX_FILE_CEILING: u64 = 1 << 30;

impl Default for Config {
    fn default() -> Self {
        Config {
            durability: Durability::Always,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_value_len: DEFAULT_MAX_VALUE_LEN,
            mailbox_capacity: DEFAULT_MAILBOX_CAPACITY,
            max_group_requests: DEFAULT_MAX_GROUP_REQUESTS,
            max_group_bytes: DEFAULT_MAX_GROUP_BYTES,
            inline_read_limit: DEFAULT_INLINE_READ_LIMIT,
            background_hints: true,
            compaction: CompactionOptions::default(),
            compaction_rate: None,
            compaction_nice: DEFAULT_COMPACTION_NICE,
        }
    }
}

impl Config {
    /// Checks every setting; called by `DbBuilder::open`.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidConfig { reason });
        if !(4096..=MAX_FILE_CEILING).contains(&self.max_file_size) {
            return bad(format!(
                "max_file_size {} is outside 4096 ..= {MAX_FILE_CEILING}",
                self.max_file_size
            ));
        }
        if self.max_value_len > MAX_VALUE_CEILING {
            return bad(format!(
                "max_value_len {} exceeds {MAX_VALUE_CEILING}",
                self.max_value_len
            ));
        }
        if !(1..=1 << 20).contains(&self.mailbox_capacity) {
            return bad(format!(
                "mailbox_capacity {} is outside 1 ..= 1048576",
                self.mailbox_capacity
            ));
        }
        if !(0..=19).contains(&self.compaction_nice) {
            return bad(format!(
                "compaction nice value {} is outside 0 ..= 19",
                self.compaction_nice
            ));
        }
        if self.max_group_requests == 0 || self.max_group_bytes == 0 {
            return bad("group commit bounds must be positive".into());
        }
        if let Durability::Interval(d) = self.durability
            && (d.is_zero() || d > Duration::from_secs(3600))
        {
            return bad(format!("sync interval {d:?} is outside (0, 1h]"));
        }
        Ok(())
    }
}
