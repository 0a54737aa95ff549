//! Per-operation latency recording ([`Recorder`], an HDR histogram per task)
//! and the result of one phase ([`Measurement`]).

use std::time::Duration;

pub use crate::recorder::Recorder;

/// The raw limits a phase is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Buffered sequential append, one fsync at the end.
    L1,
    /// Append one record + `fdatasync`, one writer.
    L2,
    /// Random `pread` of one record from the page cache, one thread.
    L3,
    /// The same from two threads.
    L3x2,
}

impl Limit {
    /// The id of the raw phase that measures this limit.
    pub fn id(self) -> &'static str {
        match self {
            Limit::L1 => "L1",
            Limit::L2 => "L2",
            Limit::L3 => "L3",
            Limit::L3x2 => "L3x2",
        }
    }
}

/// The result of one phase.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Stable identifier, e.g. `get_t16` (used by targets and JSON).
    pub id: String,
    /// Human-readable description.
    pub name: String,
    /// Concurrent tasks or threads.
    pub tasks: usize,
    /// Operations (keys, for batched phases) completed.
    pub ops: u64,
    /// Wall time of the phase, from the first operation to the last reply.
    pub elapsed: Duration,
    /// Latencies, one sample per operation (or per batch, see `unit`).
    pub latency: Recorder,
    /// What one latency sample covers (`op` or e.g. `batch of 1000`).
    pub unit: String,
    /// The raw limit this phase is compared with.
    pub limit: Option<Limit>,
    /// Free-form remark (e.g. the time of a final fsync).
    pub note: String,
}

impl Measurement {
    /// Adds another slice of the same phase (measured in rounds): ops,
    /// elapsed time and latencies accumulate.
    pub fn absorb(&mut self, other: Measurement) {
        self.ops += other.ops;
        self.elapsed += other.elapsed;
        self.latency.merge(&other.latency);
    }

    /// Operations per second over the whole phase.
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.ops as f64 / secs } else { 0.0 }
    }
}
