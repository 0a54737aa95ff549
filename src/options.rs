//! [`PartitionOptions`]: what a partition is created with, persisted in the
//! catalog for its whole life.

use std::time::Duration;

use crate::config::{Config, Durability};
use crate::error::{Error, Result};

/// What values a partition accepts (GoKV's value types).
///
/// # Examples
/// ```
/// use caskade::{PartitionOptions, Schema};
/// let counters = PartitionOptions::default().schema(Schema::Int);
/// assert_eq!(counters.schema, Schema::Int);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Schema {
    /// Any bytes (the default).
    #[default]
    Bytes,
    /// 64-bit signed integers, stored as canonical decimal text (`-42`, no
    /// `+`, no leading zeros): `get` returns that text,
    /// [`Partition::get_int`](crate::Partition::get_int) the number.
    Int,
    /// Valid UTF-8 text.
    Utf8,
}

/// Where a partition's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Persistence {
    /// In data files, made durable per the partition's [`Durability`] (the default).
    #[default]
    Durable,
    /// In memory only (GoKV's persist mode off): no data files. The
    /// partition itself (name, options) is in the catalog and survives a
    /// restart, but its contents live only while the `Db` is open: they are
    /// gone after [`Db::close`](crate::Db::close), a crash or
    /// [`Db::drop_partition`](crate::Db::drop_partition). A memory-only
    /// partition is never evicted (eviction would lose its data); it counts
    /// toward the open partitions but is never chosen as a victim.
    Memory,
}

/// When compaction of a partition is worth doing, and how long it may take.
///
/// The scheduler starts a compaction when both `min_dead_ratio` and
/// `min_dead_bytes` are reached; every compaction (scheduled or
/// [`Partition::compact`](crate::Partition::compact)) is skipped if it would
/// save less than `min_space_saving`, and rolled back past `timeout`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use caskade::CompactionOptions;
/// let c = CompactionOptions::default();
/// assert!(c.min_dead_ratio > 0.0 && c.min_dead_ratio < 1.0);
/// let eager = c
///     .min_dead_ratio(0.3)
///     .min_dead_bytes(1 << 20)
///     .min_space_saving(0)
///     .timeout(Duration::from_secs(60));
/// assert_eq!(eager.min_space_saving, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CompactionOptions {
    /// Dead bytes as a fraction of all bytes before compaction starts (0..=1).
    /// Default 0.2: a partition's data files then stay within about 1.25× its
    /// live data (1 / (1 − ratio); hints add about 0.14× for 16-byte keys and
    /// 100-byte values), and each compaction copies at most 4 bytes per byte
    /// reclaimed. Raise it to copy less and keep more dead data (Bitcask's
    /// fragmentation trigger defaults to 0.6).
    pub min_dead_ratio: f64,
    /// Dead bytes needed before compaction starts, so small partitions are
    /// not rewritten for a few dead records. Default 16 MiB.
    pub min_dead_bytes: u64,
    /// A compaction expected to save less than this is skipped. Default 16 MiB.
    pub min_space_saving: u64,
    /// A compaction running longer is aborted and rolled back. Default 1 hour.
    pub timeout: Duration,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            min_dead_ratio: 0.2,
            min_dead_bytes: 16 << 20,
            min_space_saving: 16 << 20,
            timeout: Duration::from_secs(3600),
        }
    }
}

impl CompactionOptions {
    /// Sets [`CompactionOptions::min_dead_ratio`].
    #[must_use]
    pub fn min_dead_ratio(mut self, ratio: f64) -> Self {
        self.min_dead_ratio = ratio;
        self
    }

    /// Sets [`CompactionOptions::min_dead_bytes`].
    #[must_use]
    pub fn min_dead_bytes(mut self, bytes: u64) -> Self {
        self.min_dead_bytes = bytes;
        self
    }

    /// Sets [`CompactionOptions::min_space_saving`].
    #[must_use]
    pub fn min_space_saving(mut self, bytes: u64) -> Self {
        self.min_space_saving = bytes;
        self
    }

    /// Sets [`CompactionOptions::timeout`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether the scheduler should compact a partition with these sizes.
    pub(crate) fn due(&self, live_bytes: u64, dead_bytes: u64) -> bool {
        let total = live_bytes + dead_bytes;
        dead_bytes > 0
            && dead_bytes >= self.min_dead_bytes
            && dead_bytes as f64 >= self.min_dead_ratio * total as f64
            && dead_bytes >= self.min_space_saving
    }
}

/// The options a partition is created with; persisted with it.
///
/// Fields left `None` follow the [`DbBuilder`](crate::DbBuilder)'s setting
/// at each open; set ones are fixed for the partition's life.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> caskade::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use caskade::{Durability, PartitionOptions, Persistence, Schema};
/// let db = caskade::Db::open(dir.path()).await?;
/// let opts = PartitionOptions::default()
///     .schema(Schema::Utf8)
///     .durability(Durability::OsBuffered);
/// let p = db.create_partition("notes", opts).await?;
/// p.put("today", "sunny").await?;
/// assert!(p.put("bad", [0xff]).await.is_err());
/// let cache = db
///     .create_partition("cache", PartitionOptions::default().persistence(Persistence::Memory))
///     .await?;
/// cache.put("k", "v").await?;
/// # db.close().await }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct PartitionOptions {
    /// What values are accepted. Default [`Schema::Bytes`].
    pub schema: Schema,
    /// Files or memory. Default [`Persistence::Durable`].
    pub persistence: Persistence,
    /// When writes become durable; `None` (the default) follows the `Db`'s setting.
    pub durability: Option<Durability>,
    /// Data file size before rotation (4 KiB ..= 1 GiB); `None` (the
    /// default) follows the `Db`'s setting.
    pub max_file_size: Option<u64>,
    /// Compaction thresholds.
    pub compaction: CompactionOptions,
}

impl PartitionOptions {
    /// Sets [`PartitionOptions::schema`].
    #[must_use]
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = schema;
        self
    }

    /// Sets [`PartitionOptions::persistence`].
    #[must_use]
    pub fn persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = persistence;
        self
    }

    /// Sets [`PartitionOptions::durability`].
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = Some(durability);
        self
    }

    /// Sets [`PartitionOptions::max_file_size`].
    #[must_use]
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = Some(bytes);
        self
    }

    /// Sets [`PartitionOptions::compaction`].
    #[must_use]
    pub fn compaction(mut self, compaction: CompactionOptions) -> Self {
        self.compaction = compaction;
        self
    }

    /// The partition's effective settings: the `Db`'s, overridden by these.
    pub(crate) fn apply(&self, db: &Config) -> Config {
        let mut cfg = db.clone();
        if let Some(d) = self.durability {
            cfg.durability = d;
        }
        if let Some(size) = self.max_file_size {
            cfg.max_file_size = size;
        }
        cfg.compaction = self.compaction;
        if self.persistence == Persistence::Memory {
            // Nothing to sync, and no thread per sealed file.
            cfg.durability = Durability::OsBuffered;
            cfg.background_hints = false;
        }
        cfg
    }

    /// Checks every option.
    pub(crate) fn validate(&self, db: &Config) -> Result<()> {
        self.apply(db).validate()?;
        let c = &self.compaction;
        if !(0.0..=1.0).contains(&c.min_dead_ratio) {
            return Err(Error::InvalidConfig {
                reason: format!("min_dead_ratio {} is outside 0 ..= 1", c.min_dead_ratio),
            });
        }
        if c.timeout.is_zero() {
            return Err(Error::InvalidConfig {
                reason: "compaction timeout must be positive".into(),
            });
        }
        Ok(())
    }

    /// Checks `value` against the schema.
    pub(crate) fn check_value(&self, partition: &str, value: &[u8]) -> Result<()> {
        let violation = |reason: &'static str| Error::SchemaViolation {
            partition: partition.to_owned(),
            reason,
        };
        match self.schema {
            Schema::Bytes => Ok(()),
            Schema::Utf8 => std::str::from_utf8(value)
                .map(drop)
                .map_err(|_| violation("value is not valid UTF-8")),
            Schema::Int => parse_int(value)
                .map(drop)
                .ok_or_else(|| violation("value is not a canonical decimal 64-bit integer")),
        }
    }
}

/// A canonical decimal integer fitting an `i64` (`0`, `-42`; no `+`, no
/// leading zeros, no `-0`): the values an Int partition holds, and the
/// values `incr` accepts, as Redis does.
pub(crate) fn parse_int(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

/// The options' catalog encoding: fixed-width little-endian fields.
pub(crate) const ENCODED_LEN: usize = 1 + 1 + 1 + 8 + 8 + 8 + 8 + 8 + 8;

impl PartitionOptions {
    /// Appends the catalog encoding.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(match self.schema {
            Schema::Bytes => 0,
            Schema::Int => 1,
            Schema::Utf8 => 2,
        });
        out.push(match self.persistence {
            Persistence::Durable => 0,
            Persistence::Memory => 1,
        });
        let (tag, nanos) = match self.durability {
            None => (0, 0),
            Some(Durability::Always) => (1, 0),
            Some(Durability::Interval(d)) => (2, u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            Some(Durability::OsBuffered) => (3, 0),
        };
        out.push(tag);
        out.extend_from_slice(&nanos.to_le_bytes());
        out.extend_from_slice(&self.max_file_size.unwrap_or(0).to_le_bytes());
        let c = &self.compaction;
        out.extend_from_slice(&c.min_dead_ratio.to_bits().to_le_bytes());
        out.extend_from_slice(&c.min_dead_bytes.to_le_bytes());
        out.extend_from_slice(&c.min_space_saving.to_le_bytes());
        out.extend_from_slice(
            &u64::try_from(c.timeout.as_millis())
                .unwrap_or(u64::MAX)
                .to_le_bytes(),
        );
    }

    /// Decodes [`PartitionOptions::encode`]'s output; `None` if malformed.
    pub(crate) fn decode(b: &[u8]) -> Option<PartitionOptions> {
        if b.len() != ENCODED_LEN {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let schema = match b[0] {
            0 => Schema::Bytes,
            1 => Schema::Int,
            2 => Schema::Utf8,
            _ => return None,
        };
        let persistence = match b[1] {
            0 => Persistence::Durable,
            1 => Persistence::Memory,
            _ => return None,
        };
        let durability = match b[2] {
            0 => None,
            1 => Some(Durability::Always),
            2 => Some(Durability::Interval(Duration::from_nanos(u64_at(3)))),
            3 => Some(Durability::OsBuffered),
            _ => return None,
        };
        let max_file_size = Some(u64_at(11)).filter(|&n| n != 0);
        let compaction = CompactionOptions {
            min_dead_ratio: f64::from_bits(u64_at(19)),
            min_dead_bytes: u64_at(27),
            min_space_saving: u64_at(35),
            timeout: Duration::from_millis(u64_at(43)),
        };
        Some(PartitionOptions {
            schema,
            persistence,
            durability,
            max_file_size,
            compaction,
        })
    }
}

/// Options that set every encoded field at least once (the default, and
/// two that differ from it everywhere): for round-trip tests and the fuzz
/// seed corpus.
#[cfg(test)]
pub(crate) fn samples() -> [PartitionOptions; 3] {
    [
        PartitionOptions::default(),
        PartitionOptions::default()
            .schema(Schema::Int)
            .persistence(Persistence::Memory)
            .durability(Durability::Interval(Duration::from_millis(7)))
            .max_file_size(1 << 20),
        PartitionOptions::default()
            .schema(Schema::Utf8)
            .durability(Durability::OsBuffered),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        for o in samples() {
            let mut buf = Vec::new();
            o.encode(&mut buf);
            assert_eq!(buf.len(), ENCODED_LEN);
            assert_eq!(PartitionOptions::decode(&buf), Some(o));
        }
        assert_eq!(PartitionOptions::decode(&[9; ENCODED_LEN]), None);
    }

    #[test]
    fn schema_checks() {
        let int = PartitionOptions::default().schema(Schema::Int);
        for ok in ["0", "-1", "42", "9223372036854775807", "-9223372036854775808"] {
            assert!(int.check_value("p", ok.as_bytes()).is_ok(), "{ok}");
        }
        for bad in ["", "-", "+1", "01", "-0", "1.5", " 1", "9223372036854775808", "x"] {
            assert!(int.check_value("p", bad.as_bytes()).is_err(), "{bad:?}");
        }
        let utf8 = PartitionOptions::default().schema(Schema::Utf8);
        assert!(utf8.check_value("p", "héllo".as_bytes()).is_ok());
        assert!(utf8.check_value("p", &[0xc3]).is_err());
        assert_eq!(parse_int(b"-17"), Some(-17));
        assert_eq!(parse_int(b"007"), None, "Redis refuses leading zeros too");
        assert_eq!(parse_int(b"+7"), None);
    }
}
