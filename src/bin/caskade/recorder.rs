//! [`Recorder`]: per-operation latencies of one task in an HDR histogram.
//! Shared by the `caskade` benchmarks and `benches/peers` (which includes
//! this file by path), so both measure latency the same way.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Highest latency the histograms track: one minute, in nanoseconds.
const MAX_NS: u64 = 60_000_000_000;

/// Per-operation latencies of one task, in nanoseconds, 3 significant digits.
#[derive(Debug, Clone)]
pub struct Recorder {
    hist: Histogram<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Recorder {
            // Bounds are constants within hdrhistogram's limits.
            hist: Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds"),
        }
    }

    /// Records one operation that took `d` (clamped into the tracked range).
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(MAX_NS).clamp(1, MAX_NS);
        self.hist.saturating_record(ns);
    }

    /// Records one operation that started at `*last` and ended now, and moves
    /// `*last` to now: one clock read per operation. Returns now.
    pub fn lap(&mut self, last: &mut Instant) -> Instant {
        let now = Instant::now();
        self.record(now - *last);
        *last = now;
        now
    }

    /// Adds another task's recordings.
    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot fail.
        self.hist.add(&other.hist).expect("histograms with equal bounds");
    }

    /// Operations recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Latency at quantile `q` (0..=1).
    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_nanos(self.hist.value_at_quantile(q))
    }

    /// Largest recorded latency.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.hist.max())
    }
}
