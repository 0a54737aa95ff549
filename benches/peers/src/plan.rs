//! What one run does — the [`Plan`] (sizes, task counts, durations) — and
//! the deterministic generators every phase shares: keys, values and
//! random indices, and [`Records`], a flat buffer of one batch.
//!
//! Values are pseudo-random bytes, a fresh pattern per write, so engines
//! that compress (fjall uses LZ4 by default) store about as many bytes as
//! the others and the space figures compare like with like.

use std::time::Duration;

use serde::Serialize;

use crate::engine::EngineKind;

/// The settings of one run, validated (see `options`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Keys loaded by the fill (and records of the raw limits).
    pub keys: u64,
    /// Bytes per key.
    pub key_size: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Keys per atomic batch (fill and overwrite rounds).
    pub batch: usize,
    /// Length of each timed phase.
    #[serde(rename = "duration_s", serialize_with = "seconds")]
    pub duration: Duration,
    /// Task counts of the random-get phases.
    pub get_tasks: Vec<usize>,
    /// Task counts of the non-durable put phases.
    pub put_tasks: Vec<usize>,
    /// Task counts of the durable put phases.
    pub durable_tasks: Vec<usize>,
    /// Most durable puts per task (over all rounds; each round's slice also
    /// ends after [`Plan::durable_slice`]).
    pub durable_ops: u64,
    /// Rounds the durable phases are interleaved with the raw `fdatasync` limit in.
    pub rounds: u64,
    /// Reader tasks of the mixed phase (plus one writer).
    pub mixed_readers: usize,
    /// Overwrite rounds of every key before the space is measured.
    pub overwrite_rounds: u64,
    /// tokio worker threads (caskade's tasks).
    pub workers: usize,
    /// Block/page cache given to each peer, in bytes.
    pub cache_bytes: u64,
    /// The engines to run, in this order.
    pub engines: Vec<EngineKind>,
}

impl Plan {
    /// Bytes of one raw record: a key followed by its value.
    pub fn record_size(&self) -> usize {
        self.key_size + self.value_size
    }

    /// Round `round` of the durable phases: the first operation number of
    /// each task and how many it does (the last round takes the remainder).
    pub fn durable_round(&self, round: u64) -> (u64, u64) {
        let per = self.durable_ops / self.rounds;
        let first = round * per;
        let count = if round + 1 == self.rounds {
            self.durable_ops - first
        } else {
            per
        };
        (first, count)
    }

    /// The longest a slice of a durable phase (one round of one task count
    /// of one engine) runs: the phase duration spread over the rounds.
    pub fn durable_slice(&self) -> Duration {
        self.duration / u32::try_from(self.rounds).unwrap_or(u32::MAX).max(1)
    }

    /// The first key number of the durable phase with `tasks[index]` tasks:
    /// each phase writes new keys of its own, after those of the phases before.
    pub fn durable_base(&self, index: usize) -> u64 {
        self.durable_tasks[..index]
            .iter()
            .map(|&t| t as u64 * self.durable_ops)
            .sum()
    }

    /// Key numbers used by the durable phases (`0..` this).
    pub fn durable_keys(&self) -> u64 {
        self.durable_base(self.durable_tasks.len())
    }
}

/// Serializes a duration as (fractional) seconds.
fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Minimal number of bytes holding `n` in big-endian (at least 1).
pub fn bytes_needed(n: u64) -> usize {
    (8 - (n.leading_zeros() / 8) as usize).max(1)
}

/// Writes key number `i` into `out` (whose length is the key size): `k`
/// padding, then `i` big-endian in the last (up to 8) bytes. Distinct `i`
/// that fit give distinct keys.
pub fn fill_key(i: u64, out: &mut [u8]) {
    let be = i.to_be_bytes();
    let n = out.len().min(8);
    let split = out.len() - n;
    out[..split].fill(b'k');
    out[split..].copy_from_slice(&be[8 - n..]);
}

/// Fills `out` with pseudo-random bytes derived from `seed` (incompressible).
pub fn fill_value(seed: u64, out: &mut [u8]) {
    let mut rng = SplitMix::new(seed);
    for chunk in out.chunks_mut(8) {
        let bytes = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// SplitMix64: a tiny, fast, deterministic generator (a few ns per number,
/// so it does not distort per-operation latency).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator for stream `seed` (each task uses its own).
    pub fn new(seed: u64) -> Self {
        SplitMix(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random number in `0..n` (`n > 0`; the modulo bias is negligible here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// One batch of records in one flat buffer: `key ‖ value` per record.
#[derive(Debug, Clone)]
pub struct Records {
    key_size: usize,
    value_size: usize,
    bytes: Vec<u8>,
}

impl Records {
    /// An empty batch for records of these sizes.
    pub fn new(key_size: usize, value_size: usize, capacity: usize) -> Self {
        Records {
            key_size,
            value_size,
            bytes: Vec::with_capacity(capacity * (key_size + value_size)),
        }
    }

    /// Empties the batch (keeping its buffer).
    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    /// Appends key number `key` with a value generated from `value_seed`.
    pub fn push(&mut self, key: u64, value_seed: u64) {
        let start = self.bytes.len();
        self.bytes.resize(start + self.key_size + self.value_size, 0);
        let (k, v) = self.bytes[start..].split_at_mut(self.key_size);
        fill_key(key, k);
        fill_value(value_seed, v);
    }

    /// The records as `(key, value)` slices.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.bytes
            .chunks_exact(self.key_size + self.value_size)
            .map(|r| r.split_at(self.key_size))
    }
}
