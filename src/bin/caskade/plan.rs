//! What a benchmark run does: the [`Plan`] (workloads, sizes, task counts,
//! durations) and the deterministic key, value and random-index generators
//! every phase shares, so the raw limits and the engine phases write the
//! same bytes.

use std::time::Duration;

use caskade::Durability;

/// One workload of `caskade bench` (`--workloads`). They run in this order,
/// whatever the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Workload {
    /// Raw limits with std::fs: L1 buffered append, L3/L3x2 random pread, and L2
    /// append + fdatasync (interleaved with `durable`)
    Limits,
    /// Load --keys keys in atomic batches of --batch (OsBuffered), then sync; also
    /// runs whenever get, put, mixed, reopen or memory does
    Fill,
    /// Random gets of loaded keys from each of --get-tasks (and 1 task via spawn_blocking)
    Get,
    /// Overwrites of random loaded keys under --durability from each of --put-tasks
    Put,
    /// Readers (the largest of --get-tasks minus 1) plus one writer (--durability) at once
    Mixed,
    /// Close, then open (Always), recover --keys keys and time the first get
    Reopen,
    /// Durable puts (Always, group commit) of new keys from each of --durable-tasks
    Durable,
    /// Space amplification: --overwrites rounds over every key (scheduler off), then
    /// Partition::compact()
    Space,
    /// Index memory per key: RSS growth over the fill / keys
    Memory,
}

impl Workload {
    /// Every workload, in the order they run.
    pub const ALL: [Workload; 9] = [
        Workload::Limits,
        Workload::Fill,
        Workload::Get,
        Workload::Put,
        Workload::Mixed,
        Workload::Reopen,
        Workload::Durable,
        Workload::Space,
        Workload::Memory,
    ];

    /// The name `--workloads` takes.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Limits => "limits",
            Workload::Fill => "fill",
            Workload::Get => "get",
            Workload::Put => "put",
            Workload::Mixed => "mixed",
            Workload::Reopen => "reopen",
            Workload::Durable => "durable",
            Workload::Space => "space",
            Workload::Memory => "memory",
        }
    }
}

/// The durability of the non-durable put phases (`put`, the writer of
/// `mixed`): `--durability buffered | interval:<ms> | always`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PutDurability {
    /// `Durability::OsBuffered` (the default).
    #[default]
    Buffered,
    /// `Durability::Interval` of this period.
    Interval(Duration),
    /// `Durability::Always`.
    Always,
}

impl PutDurability {
    /// The engine's setting.
    pub fn engine(self) -> Durability {
        match self {
            PutDurability::Buffered => Durability::OsBuffered,
            PutDurability::Interval(d) => Durability::Interval(d),
            PutDurability::Always => Durability::Always,
        }
    }

    /// As shown in phase names: `OsBuffered`, `Interval 5 ms`, `Always`.
    pub fn show(self) -> String {
        match self {
            PutDurability::Buffered => "OsBuffered".into(),
            PutDurability::Interval(d) => format!("Interval {} ms", d.as_millis()),
            PutDurability::Always => "Always".into(),
        }
    }

    /// As given on the command line: `buffered`, `interval:5`, `always`.
    pub fn arg(self) -> String {
        match self {
            PutDurability::Buffered => "buffered".into(),
            PutDurability::Interval(d) => format!("interval:{}", d.as_millis()),
            PutDurability::Always => "always".into(),
        }
    }
}

impl std::str::FromStr for PutDurability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "buffered" => Ok(PutDurability::Buffered),
            "always" => Ok(PutDurability::Always),
            _ => {
                let ms = s
                    .strip_prefix("interval:")
                    .ok_or_else(|| format!("`{s}` is not one of buffered, interval:<ms>, always"))?;
                match ms.parse::<u64>() {
                    Ok(ms) if ms > 0 => Ok(PutDurability::Interval(Duration::from_millis(ms))),
                    _ => Err(format!(
                        "interval:<ms> needs a positive whole number of milliseconds, not `{ms}`"
                    )),
                }
            }
        }
    }
}

/// The settings of one benchmark run, independent of how they were given
/// (command line or the `concurrent_load` bench target).
#[derive(Debug, Clone)]
pub struct Plan {
    /// The workloads to run (in [`Workload::ALL`] order when run).
    pub workloads: Vec<Workload>,
    /// Keys loaded by the fill phase (and records appended by the raw limit L1).
    pub keys: u64,
    /// Bytes per key.
    pub key_size: usize,
    /// Bytes per value.
    pub value_size: usize,
    /// Task counts of the get phases.
    pub get_tasks: Vec<usize>,
    /// Task counts of the (non-durable) put phases.
    pub put_tasks: Vec<usize>,
    /// Task counts of the durable put phases.
    pub durable_tasks: Vec<usize>,
    /// Durability of the put phases and of the mixed phase's writer.
    pub durability: PutDurability,
    /// Worker threads of the tokio runtime.
    pub workers: usize,
    /// Length of each timed phase (raw reads, gets, puts, mixed).
    pub duration: Duration,
    /// Operations per task of the durable phases, and of the raw limit L2.
    pub durable_ops: u64,
    /// Rounds the durable phases and L2 are interleaved in.
    pub rounds: u64,
    /// Keys per batch of the fill phase (and of the space workload's writes).
    pub batch: usize,
    /// Overwrite rounds of every key in the space workload.
    pub overwrites: u32,
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

    /// Whether workload `w` is in the plan.
    pub fn runs(&self, w: Workload) -> bool {
        self.workloads.contains(&w)
    }

    /// Whether the fill runs: chosen, or needed by a workload on its keys.
    pub fn needs_fill(&self) -> bool {
        use Workload::{Fill, Get, Memory, Mixed, Put, Reopen};
        [Fill, Get, Put, Mixed, Reopen, Memory]
            .iter()
            .any(|&w| self.runs(w))
    }

    /// The workloads that run, in the order they run (the fill included
    /// when another workload needs it).
    pub fn schedule(&self) -> Vec<Workload> {
        Workload::ALL
            .into_iter()
            .filter(|&w| self.runs(w) || (w == Workload::Fill && self.needs_fill()))
            .collect()
    }

    /// Reader tasks of the mixed phase: the largest get task count minus
    /// the writer (at least 1).
    pub fn mixed_readers(&self) -> usize {
        max(&self.get_tasks).saturating_sub(1).max(1)
    }

    /// The largest durable task count (at least 1).
    pub fn max_durable_tasks(&self) -> usize {
        max(&self.durable_tasks)
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
        if self.workloads.is_empty() {
            return Err("--workloads must name at least one workload".into());
        }
        for (list, name) in [
            (&self.get_tasks, "--get-tasks"),
            (&self.put_tasks, "--put-tasks"),
            (&self.durable_tasks, "--durable-tasks"),
        ] {
            if list.is_empty() || list.contains(&0) {
                return Err(format!("{name} must list positive task counts"));
            }
        }
        if self.runs(Workload::Space) && self.overwrites == 0 {
            return Err("--overwrites must be positive for the space workload".into());
        }
        if self.key_size == 0 || self.key_size > caskade::MAX_KEY_LEN {
            return Err(format!("--key-size must be 1 ..= {}", caskade::MAX_KEY_LEN));
        }
        // Durable phases write keys past `keys`: task * durable_ops + j.
        let most = self.max_durable_tasks() as u64 * self.durable_ops;
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
        self.value_of(0)
    }

    /// The value of overwrite round `generation` (0: the fill's): the
    /// pattern shifted by `generation`, so each round's values differ.
    pub fn value_of(&self, generation: u64) -> Vec<u8> {
        (0..self.value_size as u64)
            .map(|i| b'a' + ((i + generation) % 26) as u8)
            .collect()
    }
}

/// The largest of `list` (at least 1).
fn max(list: &[usize]) -> usize {
    list.iter().copied().max().unwrap_or(1).max(1)
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
