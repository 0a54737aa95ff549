//! What a benchmark run does: the [`Plan`] (sizes, task counts, durations)
//! and the deterministic key, value and random-index generators every phase
//! shares, so the raw limits and the engine phases write the same bytes.

use std::time::Duration;

/// The settings of one benchmark run, independent of how they were given
/// (command line or the `concurrent_load` bench target).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Keys loaded by the fill phase (and records appended by the raw limit L1).
    pub keys: u64,
    /// Bytes per key.
    pub key_size: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Task counts of the concurrent phases (get, put, durable put).
    pub tasks: Vec<usize>,
    /// Worker threads of the tokio runtime.
    pub workers: usize,
    /// Length of each timed phase (raw reads, gets, puts, mixed).
    pub duration: Duration,
    /// Operations per task of the durable phases, and of the raw limit L2.
    pub durable_ops: u64,
    /// Rounds the durable phases and L2 are interleaved in.
    pub rounds: u64,
    /// Keys per batch of the fill phase.
    pub batch: usize,
    /// Whether to run the mixed phase (readers plus one writer).
    pub mixed: bool,
}

impl Plan {
    /// Bytes of one raw record: a key followed by its value.
    pub fn record_size(&self) -> usize {
        self.key_size + self.value_size
    }

    /// Round `round` of the durable phases: the first operation number and
    /// how many operations each task does in it (the last round takes the
    /// remainder), so the rounds add up to `durable_ops`.
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

    /// The largest task count of the plan (at least 1).
    pub fn max_tasks(&self) -> usize {
        self.tasks.iter().copied().max().unwrap_or(1).max(1)
    }

    /// Checks that the plan can run: keys must be distinguishable at the
    /// given key size, counts positive.
    ///
    /// # Errors
    /// A message naming the offending setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.keys == 0 || self.batch == 0 || self.durable_ops == 0 || self.workers == 0 {
            return Err("--keys, --batch, --durable-ops and --workers must be positive".into());
        }
        if self.rounds == 0 || self.rounds > self.durable_ops {
            return Err("--rounds must be 1 ..= --durable-ops".into());
        }
        if self.tasks.is_empty() || self.tasks.contains(&0) {
            return Err("--tasks must list positive task counts".into());
        }
        if self.key_size == 0 || self.key_size > caskade::MAX_KEY_LEN {
            return Err(format!("--key-size must be 1 ..= {}", caskade::MAX_KEY_LEN));
        }
        // Durable phases write keys past `keys`: task * durable_ops + j.
        let most = self.max_tasks() as u64 * self.durable_ops;
        let largest = self.keys.max(most) - 1;
        let needed = bytes_needed(largest);
        if self.key_size < needed {
            return Err(format!(
                "--key-size {} cannot hold {} distinct keys (needs at least {needed} bytes)",
                self.key_size,
                largest + 1
            ));
        }
        if self.duration.is_zero() {
            return Err("--duration must be positive".into());
        }
        Ok(())
    }

    /// A key buffer of the plan's key size.
    pub fn key_buf(&self) -> Vec<u8> {
        vec![b'k'; self.key_size]
    }

    /// The value every phase writes: `value_size` bytes of a fixed pattern.
    pub fn value(&self) -> Vec<u8> {
        (0..self.value_size).map(|i| b'a' + (i % 26) as u8).collect()
    }
}

/// Minimal number of bytes holding `n` in big-endian (at least 1).
pub fn bytes_needed(n: u64) -> usize {
    (8 - (n.leading_zeros() / 8) as usize).max(1)
}

/// Writes key number `i` into `out` (whose length is the key size): `k`
/// padding, then `i` big-endian in the last (up to 8) bytes. Distinct `i` that fit give
/// distinct keys; the index hashes keys, so their order does not matter.
pub fn fill_key(i: u64, out: &mut [u8]) {
    let be = i.to_be_bytes();
    let n = out.len().min(8);
    let split = out.len() - n;
    out[..split].fill(b'k');
    out[split..].copy_from_slice(&be[8 - n..]);
}

/// SplitMix64: a tiny, fast, deterministic generator for random key indices
/// (a few ns per number, so it does not distort per-operation latency).
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
