//! Per-operation latency recording ([`Recorder`], an HDR histogram per
//! task) and the result of one timed phase ([`Measurement`]).

use std::time::Duration;

use serde::Serialize;

/// The caskade benchmark's recorder, the same file: both measure alike.
#[path = "../../../src/bin/caskade/recorder.rs"]
mod recorder;
pub use recorder::Recorder;

/// Latency percentiles of a phase, in nanoseconds (for the report and JSON).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Maximum.
    pub max_ns: u64,
}

impl Latency {
    /// The percentiles of `rec`.
    pub fn of(rec: &Recorder) -> Self {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Latency {
            p50_ns: ns(rec.quantile(0.5)),
            p99_ns: ns(rec.quantile(0.99)),
            p999_ns: ns(rec.quantile(0.999)),
            max_ns: ns(rec.max()),
        }
    }
}

/// The result of one timed phase of one engine (or of a raw limit).
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Operations (keys, for batched phases) completed.
    pub ops: u64,
    /// Wall time, from the first operation to the last task's last reply.
    pub elapsed: Duration,
    /// Latencies, one sample per operation (or per batch for batched phases).
    pub latency: Recorder,
}

impl Measurement {
    /// A measurement of `ops` operations over `elapsed` with these latencies.
    pub fn new(ops: u64, elapsed: Duration, latency: Recorder) -> Self {
        Measurement {
            ops,
            elapsed,
            latency,
        }
    }

    /// Adds another slice of the same phase (measured in rounds): ops,
    /// elapsed time and latencies accumulate.
    pub fn absorb(&mut self, other: Measurement) {
        self.ops += other.ops;
        self.elapsed += other.elapsed;
        self.latency.merge(&other.latency);
    }

    /// Operations per second over the whole phase (0 if no time elapsed).
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.ops as f64 / secs } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorb_adds_ops_time_and_samples() {
        let mut rec = Recorder::new();
        rec.record(Duration::from_micros(10));
        let mut a = Measurement::new(100, Duration::from_secs(1), rec.clone());
        a.absorb(Measurement::new(300, Duration::from_secs(1), rec));
        assert_eq!(a.ops, 400);
        assert_eq!(a.latency.count(), 2);
        assert!((a.ops_per_sec() - 200.0).abs() < 1e-9);
        assert_eq!(
            Measurement::new(5, Duration::ZERO, Recorder::new()).ops_per_sec(),
            0.0
        );
    }

    #[test]
    fn percentiles_are_ordered() {
        let mut rec = Recorder::new();
        for us in 1..=1000 {
            rec.record(Duration::from_micros(us));
        }
        let l = Latency::of(&rec);
        assert!(l.p50_ns <= l.p99_ns && l.p99_ns <= l.p999_ns && l.p999_ns <= l.max_ns);
        assert!((490_000..=510_000).contains(&l.p50_ns), "{l:?}");
    }
}
