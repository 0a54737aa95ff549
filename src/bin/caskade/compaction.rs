//! `caskade compaction`: the compaction benchmark of issue 4, in one process
//! and one data directory.
//!
//! 1. **Space.** Partition `compaction` is filled with `--keys` keys in
//!    batches of `--batch`, then every key is overwritten `--overwrites`
//!    times, with the compaction scheduler on (quiet period 0, jitter 0,
//!    checked every `--check-interval`) and the partition's thresholds from
//!    `--min-dead-ratio`, `--min-dead-bytes` and `--min-space-saving` (the
//!    engine's defaults unless given). Then the run waits until the
//!    scheduler has settled (no compaction running, the partition below its
//!    thresholds and every replaced file deleted, for several check
//!    intervals; at most `--settle-timeout`) and measures the partition's
//!    directory: data and hint bytes, against the live bytes (what the keys'
//!    current records take) and the raw size (keys × (key + value)). A
//!    thread samples the directory every 50 ms meanwhile: the peak footprint.
//! 2. **Load with and without a compaction.** The database is reopened with
//!    the scheduler off. A *window* runs `--readers` tasks of random `get`s
//!    (every value's length checked) and `--writers` tasks of random
//!    overwrites (`--durability`), every operation timed; each window is
//!    preceded by a batched overwrite of `--overwrite-fraction` of the keys
//!    (the next slice each time), so that a compaction has dead bytes to
//!    reclaim. A **baseline** phase is windows of plain load; a
//!    **compacting** phase is windows that each last exactly one
//!    `Partition::compact` (from the call to its return: seal, copy,
//!    install). Both phases add windows until they have measured
//!    `--duration`; baseline windows last as long as the latest compaction
//!    did, so both phases see the same mix of overwrite steps and load.
//!    Phases alternate (baseline, then a compacting phase per variant,
//!    baseline, ...) for `--rounds` rounds, and one more baseline closes
//!    the run, against the machine's noise: each round's compacting phases
//!    are compared with the two baselines around them (merged), and the
//!    medians over the rounds are checked against the targets. A *variant*
//!    is a pair of database-wide compaction knobs, `--rate-limits` ×
//!    `--nices` (`compaction_rate_limit`, `compaction_thread_nice`): the
//!    database is reopened with each one for its compacting phase, so
//!    alternatives are measured side by side in one run.
//!
//!    While a window runs, a sampler thread reads the CPU time of the
//!    process's threads from `/proc/self/task` every 50 ms: the tokio
//!    workers, the partition's actor (the writer) and the compaction copy.
//! 3. **Floor.** A last explicit compaction with no load, then the directory
//!    is measured again: the smallest footprint (live records plus hints).
//!
//! Targets (issue 4): disk ≤ 1.5 × live bytes after the scheduler settled;
//! get p99 during a compaction ≤ 2 × without; write throughput during a
//! compaction ≥ 0.7 × without.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use caskade::{
    CompactionOptions, CompactionReport, CompactionScheduler, Db, DbBuilder, Durability, Event, Partition,
    PartitionOptions,
};
use clap::{Args, ValueEnum};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::plan::{SplitMix, bytes_needed, fill_key};
use crate::report::fmt_duration;
use crate::stats::Recorder;
use crate::workload::{BoxError, YIELD_EVERY};

mod cpu;
mod load;
mod report;
mod space;
#[cfg(test)]
mod tests;

use load::*;
pub use report::{Disk, Fill, Phase, Report, json, table};
use space::*;

/// The partition every phase uses.
const PARTITION: &str = "bench";
/// Most compactions (or baseline windows) in one phase.
const MAX_WINDOWS: usize = 50;
/// Consecutive quiet checks after which the scheduler counts as settled.
const SETTLED_CHECKS: u32 = 5;

/// When the load's writers' puts become durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WriteDurability {
    /// `Durability::OsBuffered`: written, synced by the OS.
    Buffered,
    /// `Durability::Always`: an `fdatasync` per group commit.
    Always,
}

impl WriteDurability {
    fn engine(self) -> Durability {
        match self {
            WriteDurability::Buffered => Durability::OsBuffered,
            WriteDurability::Always => Durability::Always,
        }
    }

    /// As shown in reports.
    pub fn name(self) -> &'static str {
        match self {
            WriteDurability::Buffered => "buffered",
            WriteDurability::Always => "always",
        }
    }
}

/// A compaction rate limit: bytes per second, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit(pub Option<u64>);

impl RateLimit {
    /// `none`, or the limit in MiB/s.
    pub fn show(self) -> String {
        match self.0 {
            None => "none".into(),
            Some(b) => format!("{} MiB/s", fmt_mib(b)),
        }
    }
}

/// The database-wide compaction knobs of one compacting phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// `DbBuilder::compaction_rate_limit`.
    pub limit: RateLimit,
    /// `DbBuilder::compaction_thread_nice`.
    pub nice: i32,
}

impl Variant {
    /// `limit none, nice 10`.
    pub fn show(self) -> String {
        format!("limit {}, nice {}", self.limit.show(), self.nice)
    }

    /// `builder` with these knobs.
    fn apply(self, builder: DbBuilder) -> DbBuilder {
        let builder = builder.compaction_thread_nice(self.nice);
        match self.limit.0 {
            Some(rate) => builder.compaction_rate_limit(rate),
            None => builder,
        }
    }
}

/// Options of `caskade compaction`.
#[derive(Debug, Clone, Args)]
pub struct CompactionArgs {
    /// Keys of the partition.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Bytes per key.
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Times every key is overwritten after the fill (scheduler on).
    #[arg(long, default_value_t = 3)]
    pub overwrites: u32,
    /// Keys per batch of the fill, the overwrite rounds and the overwrite steps.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Reader tasks of the load (random gets).
    #[arg(long, default_value_t = 15)]
    pub readers: usize,
    /// Writer tasks of the load (random overwrites).
    #[arg(long, default_value_t = 1)]
    pub writers: usize,
    /// Durability of the load's writes.
    #[arg(long, value_enum, default_value_t = WriteDurability::Buffered)]
    pub durability: WriteDurability,
    /// Worker threads of the tokio multi-thread runtime.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Seconds of load each phase measures (baseline, or during compactions).
    #[arg(long, default_value = "5", value_parser = crate::parse_seconds)]
    pub duration: Duration,
    /// Rounds of (baseline, compacting) phases.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Fraction of the keys overwritten (batched) before each load window.
    #[arg(long, default_value_t = 0.25)]
    pub overwrite_fraction: f64,
    /// Compaction rate limits to measure, comma-separated: `none` or bytes
    /// per second with an optional K/M/G suffix (binary), e.g. `none,32M`.
    /// The first one (with the first `--nices`) also applies to the space phase.
    #[arg(long, value_delimiter = ',', default_value = "none", value_parser = parse_rate)]
    pub rate_limits: Vec<RateLimit>,
    /// Nice values of the compaction thread to measure (0 ..= 19),
    /// comma-separated; every rate limit is measured with every one.
    #[arg(long, value_delimiter = ',', default_value = "10")]
    pub nices: Vec<i32>,
    /// The partition's `min_dead_ratio` (0..=1).
    #[arg(long, default_value_t = CompactionOptions::default().min_dead_ratio)]
    pub min_dead_ratio: f64,
    /// The partition's `min_dead_bytes` (K/M/G suffix allowed).
    #[arg(long, default_value = "16M", value_parser = parse_size)]
    pub min_dead_bytes: u64,
    /// The partition's `min_space_saving` (K/M/G suffix allowed).
    #[arg(long, default_value = "16M", value_parser = parse_size)]
    pub min_space_saving: u64,
    /// The scheduler's check interval in the space phase, seconds.
    #[arg(long, default_value = "0.1", value_parser = crate::parse_seconds)]
    pub check_interval: Duration,
    /// Longest wait for the scheduler to settle, seconds.
    #[arg(long, default_value = "30", value_parser = crate::parse_seconds)]
    pub settle_timeout: Duration,
    /// Skip the last explicit compaction (the floor of the footprint).
    #[arg(long)]
    pub no_floor: bool,
    /// Keep the data in this (new or empty) directory instead of a temporary one.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl CompactionArgs {
    fn validate(&self) -> Result<(), String> {
        let sizes = [self.batch, self.readers + self.writers, self.workers, self.rounds];
        if self.keys == 0 || sizes.contains(&0) || self.duration.is_zero() {
            return Err(
                "--keys, --batch, --workers, --rounds, --duration and readers + writers must be positive"
                    .into(),
            );
        }
        if self.key_size == 0 || self.key_size > caskade::MAX_KEY_LEN {
            return Err(format!("--key-size must be 1 ..= {}", caskade::MAX_KEY_LEN));
        }
        if self.key_size < bytes_needed(self.keys - 1) {
            return Err(format!(
                "--key-size {} cannot hold {} distinct keys",
                self.key_size, self.keys
            ));
        }
        if !(self.overwrite_fraction > 0.0 && self.overwrite_fraction <= 1.0) {
            return Err("--overwrite-fraction must be in (0, 1]".into());
        }
        if !(0.0..=1.0).contains(&self.min_dead_ratio) {
            return Err("--min-dead-ratio must be in 0 ..= 1".into());
        }
        if self.rate_limits.is_empty() {
            return Err("--rate-limits needs at least one value".into());
        }
        if self.rate_limits.iter().any(|r| r.0.is_some_and(|b| b < 1 << 20)) {
            return Err("a compaction rate limit must be at least 1 MiB/s (1M)".into());
        }
        if self.nices.is_empty() || self.nices.iter().any(|n| !(0..=19).contains(n)) {
            return Err("--nices needs values in 0 ..= 19".into());
        }
        if self.check_interval.is_zero() {
            return Err("--check-interval must be positive".into());
        }
        Ok(())
    }

    /// Every (rate limit, nice) pair, rate limits outermost.
    pub fn variants(&self) -> Vec<Variant> {
        let each = |&limit| self.nices.iter().map(move |&nice| Variant { limit, nice });
        self.rate_limits.iter().flat_map(each).collect()
    }

    /// The partition's compaction thresholds.
    pub fn thresholds(&self) -> CompactionOptions {
        CompactionOptions::default()
            .min_dead_ratio(self.min_dead_ratio)
            .min_dead_bytes(self.min_dead_bytes)
            .min_space_saving(self.min_space_saving)
    }

    /// Keys overwritten before each load window (at least one).
    pub fn step_keys(&self) -> u64 {
        ((self.keys as f64 * self.overwrite_fraction).round() as u64).clamp(1, self.keys)
    }

    /// keys × (key + value): the data without any format overhead.
    pub fn raw_bytes(&self) -> u64 {
        self.keys * (self.key_size + self.value_size) as u64
    }
}

/// `1234`, `64K`, `64M`, `1G` (binary multiples) → bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n: f64 = digits.parse().map_err(|e| format!("{s:?}: {e}"))?;
    if !(n.is_finite() && n >= 0.0) {
        return Err(format!("{s:?} is not a size"));
    }
    Ok((n * (1u64 << shift) as f64).round() as u64)
}

/// `none` (or `0`) → no limit; otherwise [`parse_size`].
fn parse_rate(s: &str) -> Result<RateLimit, String> {
    match s.trim() {
        "none" | "0" => Ok(RateLimit(None)),
        other => parse_size(other).map(|b| RateLimit(Some(b))),
    }
}

/// Bytes as MiB with one decimal.
pub fn fmt_mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / f64::from(1 << 20))
}

/// Runs the benchmark on `rt`, in `args.dir` (absent or empty) or a temporary directory.
///
/// # Errors
/// Invalid settings or `--dir`, any I/O or engine error, a wrong value, or a
/// compaction that found nothing to do.
pub fn run(args: &CompactionArgs, rt: &Runtime, progress: &dyn Fn(&str)) -> Result<Report, BoxError> {
    args.validate()?;
    let started = Instant::now();
    let load_before = load_average();
    let temp;
    let root = match &args.dir {
        Some(d) if d.exists() && std::fs::read_dir(d)?.next().is_some() => {
            return Err(format!("--dir {} is not empty", d.display()).into());
        }
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("caskade-compaction-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&root)?;
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let fs_type = crate::bench::fs_type(&root, &mounts);
    progress(&format!("data directory {} ({fs_type})", root.display()));
    let db_dir = root.join("db");
    let fill = rt.block_on(space(args, &db_dir, progress))?;
    let (phases, floor) = rt.block_on(loads(args, &db_dir, &fill, progress))?;
    let machine = [fs_type, load_before, load_average()];
    Ok(Report {
        args: args.clone(),
        data_dir: root,
        machine,
        fill,
        phases,
        floor,
        total: started.elapsed(),
    })
}

/// The value of generation `generation`: `value_size` bytes of a pattern,
/// the generation in the first (up to 8) bytes.
fn value(size: usize, generation: u64) -> Vec<u8> {
    let mut v: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let n = size.min(8);
    v[..n].copy_from_slice(&generation.to_le_bytes()[..n]);
    v
}

/// Puts keys `first, first + 1, ...` (`count` of them, modulo `keys`) with
/// `value` in batches of `batch`.
async fn write_keys(
    p: &Partition,
    a: &CompactionArgs,
    first: u64,
    count: u64,
    value: &[u8],
) -> Result<(), BoxError> {
    let mut key = vec![0u8; a.key_size];
    let mut done = 0;
    while done < count {
        let n = (count - done).min(a.batch as u64);
        let mut b = p.batch();
        for j in done..done + n {
            fill_key((first + j) % a.keys, &mut key);
            b.put(&key, value);
        }
        b.commit().await?;
        done += n;
    }
    Ok(())
}

/// The database of the load phases: scheduler off, `v`'s knobs for explicit compactions.
async fn open_load_db(a: &CompactionArgs, dir: &Path, v: Variant) -> caskade::Result<Db> {
    let b = Db::builder(dir)
        .durability(a.durability.engine())
        .compaction_scheduler(CompactionScheduler::disabled());
    v.apply(b).open().await
}

/// The 1-minute load average, or `?`.
fn load_average() -> String {
    let avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    avg.split_whitespace().next().unwrap_or("?").to_string()
}
