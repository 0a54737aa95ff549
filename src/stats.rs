//! Statistics: cheap atomic counters updated on the hot paths, and the
//! plain snapshots of them users read ([`PartitionStats`], [`DbStats`]).
//!
//! Every counter is a relaxed atomic: each one is exact, but a snapshot of
//! several is not taken atomically, so counters read together may be a few
//! operations apart (eventually consistent). Keys, live and dead bytes and
//! files are published by the writer after each group commit; they describe
//! the partition as of its last commit and are kept while it is evicted.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Power-of-two ranges, each split into this many linear sub-buckets.
const SUB: usize = 4;
/// Values below 2^MIN_POW share bucket 0; 2^MAX_POW and above the last one.
const MIN_POW: u32 = 6;
const MAX_POW: u32 = 36;
const BUCKETS: usize = (MAX_POW - MIN_POW) as usize * SUB + 1;

/// A lock-free log-linear histogram (four buckets per power of two, so a
/// quantile is within 25 % of the truth) of values such as nanoseconds.
/// `hdrhistogram` needs `&mut` to record; this one is shared by every reader.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Histogram {
    fn bucket(v: u64) -> usize {
        if v < 1 << MIN_POW {
            return 0;
        }
        let pow = 63 - v.leading_zeros();
        if pow >= MAX_POW {
            return BUCKETS - 1;
        }
        let sub = ((v >> (pow - 2)) & (SUB as u64 - 1)) as usize;
        1 + (pow - MIN_POW) as usize * SUB + sub
    }

    /// The largest value bucket `i` holds.
    fn upper(i: usize) -> u64 {
        if i == 0 {
            return (1 << MIN_POW) - 1;
        }
        let pow = MIN_POW + ((i - 1) / SUB) as u32;
        let sub = ((i - 1) % SUB) as u64;
        (1u64 << pow) + ((sub + 1) << (pow - 2)) - 1
    }

    /// Records one value.
    pub(crate) fn record(&self, v: u64) {
        self.buckets[Self::bucket(v)].fetch_add(1, Relaxed);
    }

    /// The value below which a fraction `q` of the recorded values fall
    /// (the upper bound of its bucket); 0 if nothing was recorded.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::upper(i);
            }
        }
        Self::upper(BUCKETS - 1)
    }
}

/// The live counters of one partition (shared by its handles and its actor).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) reads: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) snapshots: AtomicU64,
    pub(crate) mailbox_full: AtomicU64,
    pub(crate) group_commits: AtomicU64,
    pub(crate) grouped_requests: AtomicU64,
    pub(crate) max_group: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) fsync_nanos: AtomicU64,
    pub(crate) fsync_max_nanos: AtomicU64,
    pub(crate) keys: AtomicU64,
    pub(crate) live_bytes: AtomicU64,
    pub(crate) total_bytes: AtomicU64,
    pub(crate) files: AtomicU64,
    pub(crate) opens: AtomicU64,
    pub(crate) evictions: AtomicU64,
    /// Milliseconds since the Unix epoch of the last compaction; 0 = never.
    pub(crate) last_compaction_ms: AtomicU64,
    /// A compaction is copying now.
    pub(crate) compacting: std::sync::atomic::AtomicBool,
    pub(crate) compactions: AtomicU64,
    pub(crate) compactions_failed: AtomicU64,
    pub(crate) compaction_saved: AtomicU64,
    pub(crate) read_latency: Histogram,
}

impl Counters {
    /// Reads and writes so far: the supervisor's activity measure.
    pub(crate) fn activity(&self) -> u64 {
        self.reads.load(Relaxed).wrapping_add(self.writes.load(Relaxed))
    }

    /// Records one group commit of `requests` requests.
    pub(crate) fn group(&self, requests: usize) {
        self.group_commits.fetch_add(1, Relaxed);
        self.grouped_requests.fetch_add(requests as u64, Relaxed);
        self.max_group.fetch_max(requests as u64, Relaxed);
    }

    /// Records one fsync that took `took`.
    pub(crate) fn fsync(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.fsyncs.fetch_add(1, Relaxed);
        self.fsync_nanos.fetch_add(nanos, Relaxed);
        self.fsync_max_nanos.fetch_max(nanos, Relaxed);
    }

    /// Records a completed compaction.
    pub(crate) fn compacted(&self, report: &crate::compaction::CompactionReport) {
        self.compactions.fetch_add(1, Relaxed);
        self.compaction_saved.fetch_add(report.space_saved, Relaxed);
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64)
            .max(1);
        self.last_compaction_ms.store(ms, Relaxed);
    }

    /// Publishes the writer's view of the partition's size.
    pub(crate) fn shape(&self, keys: usize, live_bytes: u64, total_bytes: u64, files: usize) {
        self.keys.store(keys as u64, Relaxed);
        self.live_bytes.store(live_bytes, Relaxed);
        self.total_bytes.store(total_bytes, Relaxed);
        self.files.store(files as u64, Relaxed);
    }

    /// A snapshot for users.
    pub(crate) fn snapshot(&self, open: bool) -> PartitionStats {
        let ld = |a: &AtomicU64| a.load(Relaxed);
        let (reads, writes) = (ld(&self.reads), ld(&self.writes));
        let live = ld(&self.live_bytes);
        let ms = ld(&self.last_compaction_ms);
        PartitionStats {
            open,
            operations: reads + writes,
            reads,
            writes,
            keys: ld(&self.keys),
            live_bytes: live,
            dead_bytes: ld(&self.total_bytes).saturating_sub(live),
            files: ld(&self.files),
            snapshots_published: ld(&self.snapshots),
            mailbox_full_waits: ld(&self.mailbox_full),
            group_commits: ld(&self.group_commits),
            grouped_requests: ld(&self.grouped_requests),
            max_group: ld(&self.max_group),
            fsyncs: ld(&self.fsyncs),
            fsync_total: Duration::from_nanos(ld(&self.fsync_nanos)),
            fsync_max: Duration::from_nanos(ld(&self.fsync_max_nanos)),
            read_p50: Duration::from_nanos(self.read_latency.quantile(0.5)),
            read_p99: Duration::from_nanos(self.read_latency.quantile(0.99)),
            opens: ld(&self.opens),
            evictions: ld(&self.evictions),
            last_compaction: (ms != 0).then(|| UNIX_EPOCH + Duration::from_millis(ms)),
            compacting: self.compacting.load(Relaxed),
            compactions: ld(&self.compactions),
            failed_compactions: ld(&self.compactions_failed),
            compaction_space_saved: ld(&self.compaction_saved),
            obsolete_files: 0,
            obsolete_files_deleted: 0,
        }
    }
}

/// Statistics of one partition; see [`Partition::stats`](crate::Partition::stats).
///
/// Counters start at zero when the `Db` opens. Each is exact, but they are
/// not read atomically together (eventually consistent). `keys`,
/// `live_bytes`, `dead_bytes` and `files` are as of the last group commit
/// (or open) and stay available while the partition is evicted.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PartitionStats {
    /// Whether the partition is open now (not evicted).
    pub open: bool,
    /// `reads + writes`.
    pub operations: u64,
    /// Keys looked up by `get`, `get_many`, `contains_key`, `exists_many`.
    pub reads: u64,
    /// Write requests (put, delete, batch, incr, delete_many).
    pub writes: u64,
    /// Live keys.
    pub keys: u64,
    /// Bytes of the records live keys point at.
    pub live_bytes: u64,
    /// Bytes in data files not used by live records (overwritten values,
    /// tombstones, headers): what compaction can reclaim.
    pub dead_bytes: u64,
    /// Data files.
    pub files: u64,
    /// Versions published (index swaps): one per open and one per group
    /// commit that wrote something.
    pub snapshots_published: u64,
    /// Writes that found the mailbox full and had to wait (backpressure).
    pub mailbox_full_waits: u64,
    /// Group commits.
    pub group_commits: u64,
    /// Requests in all group commits (`grouped_requests / group_commits` is
    /// the mean batch size).
    pub grouped_requests: u64,
    /// Largest group commit, in requests.
    pub max_group: u64,
    /// `fdatasync` calls on data files.
    pub fsyncs: u64,
    /// Time spent in them.
    pub fsync_total: Duration,
    /// The slowest one.
    pub fsync_max: Duration,
    /// Median `get` latency (within 25 %).
    pub read_p50: Duration,
    /// 99th percentile `get` latency (within 25 %).
    pub read_p99: Duration,
    /// Times the partition was opened (first open and reopens after eviction).
    pub opens: u64,
    /// Times it was evicted.
    pub evictions: u64,
    /// When it was last compacted, if ever since the `Db` opened.
    pub last_compaction: Option<SystemTime>,
    /// Whether a compaction is copying now.
    pub compacting: bool,
    /// Compactions completed (installed).
    pub compactions: u64,
    /// Compactions that failed, timed out or were cancelled (each rolled back).
    pub failed_compactions: u64,
    /// Bytes all completed compactions saved.
    pub compaction_space_saved: u64,
    /// Data files compactions replaced that are not deleted yet: a version
    /// (a reader, a snapshot) still holds them.
    pub obsolete_files: u64,
    /// Data files compactions replaced that have been deleted.
    pub obsolete_files_deleted: u64,
}

/// Statistics of a whole [`Db`](crate::Db); see [`Db::stats`](crate::Db::stats).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbStats {
    /// Partitions in the catalog.
    pub partitions: u64,
    /// Partitions open now (one low for a moment while an eviction finishes).
    pub open_partitions: u64,
    /// Opens of partitions (first opens and reopens).
    pub opens: u64,
    /// Reopens of partitions that had been evicted.
    pub reopens: u64,
    /// Evictions (for the open-partition bound or the idle timeout).
    pub evictions: u64,
    /// Of those, evictions because the partition was idle.
    pub idle_evictions: u64,
    /// Compactions the scheduler started.
    pub scheduled_compactions: u64,
    /// Compactions the scheduler is running now (explicit
    /// [`Partition::compact`](crate::Partition::compact) calls not counted).
    pub running_compactions: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_a_quarter() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), 0);
        for v in 1..=10_000u64 {
            h.record(v * 100);
        }
        for (q, want) in [(0.5, 500_000.0), (0.99, 990_000.0), (0.01, 10_000.0)] {
            let got = h.quantile(q) as f64;
            assert!(got >= want * 0.99 && got <= want * 1.25, "q{q}: {got} vs {want}");
        }
        for v in [0, 1, 63, 64, 65, 1000, u64::MAX] {
            let b = Histogram::bucket(v);
            assert!(b < BUCKETS);
            assert!(
                v <= Histogram::upper(b) || b == BUCKETS - 1,
                "{v} above its bucket"
            );
            assert!(b == 0 || v > Histogram::upper(b - 1), "{v} below its bucket");
        }
    }
}
