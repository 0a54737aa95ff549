//! The compaction scheduler: part of the supervisor's periodic tick.
//!
//! Each tick it looks at every open, evictable partition's dead bytes and
//! dead ratio (the writer publishes them with every version). A partition
//! past its [`CompactionOptions`](crate::CompactionOptions) thresholds
//! becomes *due* after a random delay (up to `jitter`, so partitions filled
//! together do not all compact together); a due partition is compacted when
//! fewer than `max_concurrent` compactions run. Nothing starts during the
//! `quiet_period` after the `Db` opened.
//!
//! A scheduled compaction holds a lease for its whole run, taken only from
//! an open gate: a partition being evicted is never compacted (nor reopened
//! to be compacted), and eviction, which retires only lease-free
//! incarnations, waits for a running compaction. Drop and close cancel it.
//! Free space is checked by the writer before it begins; a skipped or
//! failed compaction makes the partition wait `RETRY` before the next try.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::partition::Partition;

use super::Supervisor;
use super::gate::Admission;
use super::slot::Slot;

/// How long a partition whose compaction was skipped or failed waits.
const RETRY: Duration = Duration::from_secs(30);

/// Settings of the compaction scheduler; see
/// [`DbBuilder::compaction_scheduler`](crate::DbBuilder::compaction_scheduler).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use caskade::CompactionScheduler;
/// let s = CompactionScheduler::default()
///     .max_concurrent(2)
///     .quiet_period(Duration::from_secs(5))
///     .jitter(Duration::from_millis(100));
/// assert!(s.enabled);
/// assert!(!CompactionScheduler::disabled().enabled);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionScheduler {
    /// Whether compactions start on their own. Default `true`.
    pub enabled: bool,
    /// Most compactions running at once in the `Db`. Default 1.
    pub max_concurrent: usize,
    /// How often partitions are checked. Default 1 s.
    pub check_interval: Duration,
    /// No compaction starts this soon after the `Db` opened. Default 10 s.
    pub quiet_period: Duration,
    /// A partition past its thresholds starts after a random delay of up to
    /// this. Default 1 s.
    pub jitter: Duration,
}

impl Default for CompactionScheduler {
    fn default() -> Self {
        CompactionScheduler {
            enabled: true,
            max_concurrent: 1,
            check_interval: Duration::from_secs(1),
            quiet_period: Duration::from_secs(10),
            jitter: Duration::from_secs(1),
        }
    }
}

impl CompactionScheduler {
    /// A scheduler that never starts a compaction
    /// ([`Partition::compact`] still works).
    pub fn disabled() -> Self {
        CompactionScheduler {
            enabled: false,
            ..Self::default()
        }
    }

    /// Sets [`CompactionScheduler::max_concurrent`].
    #[must_use]
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n;
        self
    }

    /// Sets [`CompactionScheduler::check_interval`].
    #[must_use]
    pub fn check_interval(mut self, every: Duration) -> Self {
        self.check_interval = every;
        self
    }

    /// Sets [`CompactionScheduler::quiet_period`].
    #[must_use]
    pub fn quiet_period(mut self, quiet: Duration) -> Self {
        self.quiet_period = quiet;
        self
    }

    /// Sets [`CompactionScheduler::jitter`].
    #[must_use]
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }
}

/// The scheduler's state, kept by the supervisor.
#[derive(Debug)]
pub(crate) struct Scheduler {
    pub(crate) opts: CompactionScheduler,
    opened: Instant,
    pub(crate) running: AtomicUsize,
    pub(crate) started: AtomicU64,
    /// Partition id → when it may start (jitter, or a retry after a skip).
    due: Mutex<HashMap<u64, Instant>>,
    /// Partitions with a scheduled compaction in flight (from the spawn, before
    /// the actor marks it compacting, until the report): one slot each.
    claimed: Mutex<HashSet<u64>>,
}

impl Scheduler {
    pub(crate) fn new(opts: CompactionScheduler) -> Self {
        Scheduler {
            opts,
            opened: Instant::now(),
            running: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            due: Mutex::new(HashMap::new()),
            claimed: Mutex::new(HashSet::new()),
        }
    }

    /// Claims `id`'s scheduler slot; `false` if a scheduled compaction of it
    /// is in flight already.
    fn claim(&self, id: u64) -> bool {
        self.claimed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id)
    }

    /// Gives back what [`Scheduler::claim`] took.
    fn unclaim(&self, id: u64) {
        self.claimed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    fn due(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        // Guards only memory.
        self.due.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `slot` should start now; schedules it (with jitter) if it
    /// just crossed its thresholds, forgets it if it is below them.
    fn ready(&self, slot: &Slot, now: Instant) -> bool {
        let stats = &slot.stats;
        let live = stats.live_bytes.load(Relaxed);
        // File headers are not reclaimable (begin counts them the same way).
        let headers = crate::format::data_file::HEADER_LEN as u64 * stats.files.load(Relaxed);
        let dead = stats.total_bytes.load(Relaxed).saturating_sub(live + headers);
        let mut due = self.due();
        if !slot.options.compaction.due(live, dead) {
            // A retry wait outlives dipping below the thresholds.
            due.retain(|&id, at| id != slot.id || *at > now);
            return false;
        }
        if stats.compacting.load(Relaxed) {
            return false;
        }
        let at = *due.entry(slot.id).or_insert_with(|| {
            let jitter = self.opts.jitter.mul_f64(rand::random::<f64>());
            // A huge jitter means "much later", never a panic.
            now.checked_add(jitter).unwrap_or(now + RETRY * 1000)
        });
        at <= now
    }

    fn retry_later(&self, id: u64) {
        self.due().insert(id, Instant::now() + RETRY);
    }
}

impl Supervisor {
    /// Starts the compactions that are due (see the module documentation).
    pub(crate) fn schedule_compactions(self: &Arc<Self>) {
        let sched = &self.scheduler;
        if !sched.opts.enabled || self.closed.load(crate::sync::Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        if now.duration_since(sched.opened) < sched.opts.quiet_period {
            return;
        }
        let open: Vec<Arc<Slot>> = self.open_slots();
        for slot in open {
            if sched.running.load(Relaxed) >= sched.opts.max_concurrent {
                return;
            }
            if !sched.ready(&slot, now) {
                continue;
            }
            // Only an open gate: never reopen (or hold up the eviction of)
            // a partition to compact it.
            if !sched.claim(slot.id) {
                continue;
            }
            let inc = match slot.lease() {
                Admission::Leased(inc) => inc,
                _ => {
                    sched.unclaim(slot.id);
                    continue;
                }
            };
            sched.running.fetch_add(1, Relaxed);
            sched.started.fetch_add(1, Relaxed);
            let sup = Arc::clone(self);
            tokio::spawn(async move {
                let in_flight = InFlight(&sup.scheduler, slot.id);
                let held = Held(&slot);
                let outcome = Partition::new(Arc::clone(&slot), Arc::clone(&sup))
                    .compact_on(&inc)
                    .await;
                drop(held);
                drop(in_flight);
                match outcome {
                    Ok(report) if report.performed() => {
                        sup.scheduler.due().remove(&slot.id);
                    }
                    Ok(report) => {
                        tracing::debug!(partition = %slot.name, reason = ?report.skipped, "scheduled compaction skipped");
                        sup.scheduler.retry_later(slot.id);
                    }
                    Err(e) => {
                        tracing::warn!(partition = %slot.name, error = %e, "scheduled compaction failed");
                        sup.scheduler.retry_later(slot.id);
                    }
                }
            });
        }
    }
}

/// A scheduled compaction's slot and claim, given back on drop (also if
/// its task panics or is dropped with the runtime).
struct InFlight<'a>(&'a Scheduler, u64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Relaxed);
        self.0.unclaim(self.1);
    }
}

/// A lease taken straight from the gate, given back on drop.
struct Held<'a>(&'a Slot);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_holds_at_most_one_scheduler_slot() {
        let s = Scheduler::new(CompactionScheduler::default().max_concurrent(4));
        assert!(s.claim(7));
        assert!(!s.claim(7), "a second claim while one is in flight");
        assert!(s.claim(8), "other partitions are independent");
        s.running.fetch_add(1, Relaxed);
        drop(InFlight(&s, 7));
        assert_eq!(s.running.load(Relaxed), 0, "the slot is given back");
        assert!(s.claim(7), "claimable again once given back");
    }
}
