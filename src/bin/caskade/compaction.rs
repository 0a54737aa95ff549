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
mod report;
#[cfg(test)]
mod tests;

pub use report::{Disk, Fill, Phase, Report, json, table};

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

/// Phase 1: fill and overwrite with the scheduler on, wait for it to
/// settle, measure the footprint.
async fn space(a: &CompactionArgs, dir: &Path, progress: &dyn Fn(&str)) -> Result<Fill, BoxError> {
    let sched = CompactionScheduler::default()
        .quiet_period(Duration::ZERO)
        .jitter(Duration::ZERO)
        .check_interval(a.check_interval);
    let builder = Db::builder(dir)
        .durability(Durability::OsBuffered)
        .compaction_scheduler(sched);
    let db = a.variants()[0].apply(builder).open().await?;
    let mut events = db.events();
    let opts = PartitionOptions::default().compaction(a.thresholds());
    let p = db.create_partition(PARTITION, opts).await?;
    let peak = Peak::watch(partition_dir(&db)?)?;
    let start = Instant::now();
    let mut rates = Vec::new();
    for generation in 0..=u64::from(a.overwrites) {
        let what = if generation == 0 {
            "fill".to_string()
        } else {
            format!("overwrite round {generation}/{}", a.overwrites)
        };
        progress(&format!(
            "space: {what}: {} keys in batches of {} (scheduler on)",
            a.keys, a.batch
        ));
        let t = Instant::now();
        write_keys(&p, a, 0, a.keys, &value(a.value_size, generation)).await?;
        rates.push(a.keys as f64 / t.elapsed().as_secs_f64().max(1e-9));
    }
    let writes = start.elapsed();
    progress("space: wait for the scheduler to settle");
    let t = Instant::now();
    let settled = settle(&db, &p, a).await?;
    let settle_time = t.elapsed();
    let peak = peak.stop();
    let mut compactions = Vec::new();
    let mut failed = 0;
    while let Some(e) = events.try_recv() {
        match e {
            Event::CompactionCompleted { report, .. } => compactions.push(report),
            Event::CompactionFailed { .. } => failed += 1,
            _ => {}
        }
    }
    check_sample(&p, a, Some(u64::from(a.overwrites))).await?;
    let disk = measure_disk(&db, &p)?;
    let stats = p.stats();
    let near = near_threshold(&db, &p, a, progress).await?;
    drop(p);
    db.close().await?;
    Ok(Fill {
        rates,
        writes,
        settle: settle_time,
        settled,
        compactions,
        failed,
        scheduled: stats.compactions,
        peak,
        disk,
        near,
    })
}

/// The most a settled partition holds: overwrites keys until the dead bytes
/// are just (3 %) below the smallest amount the scheduler acts on, waits
/// [`SETTLED_CHECKS`] check intervals, and measures the directory; with
/// whether a compaction started anyway. `None` if the partition is that
/// close already, or the thresholds need more than one overwrite of every key.
async fn near_threshold(
    db: &Db,
    p: &Partition,
    a: &CompactionArgs,
    progress: &dyn Fn(&str),
) -> Result<Option<(Disk, bool)>, BoxError> {
    let (t, s) = (a.thresholds(), p.stats());
    let live = s.live_bytes as f64;
    // Due when dead >= each absolute threshold and dead >= r * (live + dead).
    let r = t.min_dead_ratio;
    let by_ratio = if r < 1.0 {
        r / (1.0 - r) * live
    } else {
        f64::INFINITY
    };
    let bound = by_ratio
        .max(t.min_dead_bytes as f64)
        .max(t.min_space_saving as f64);
    let record = live / s.keys.max(1) as f64;
    let keys = ((0.97 * bound - s.dead_bytes as f64) / record).floor();
    if !(keys >= 1.0 && keys <= a.keys as f64) {
        return Ok(None);
    }
    let keys = keys as u64;
    progress(&format!(
        "space: overwrite {keys} keys: dead bytes just below the thresholds, wait"
    ));
    let before = p.stats().compactions;
    write_keys(p, a, 0, keys, &value(a.value_size, u64::from(a.overwrites) + 1)).await?;
    tokio::time::sleep(a.check_interval * (SETTLED_CHECKS + 1)).await;
    settle(db, p, a).await?;
    let started = p.stats().compactions != before;
    Ok(Some((measure_disk(db, p)?, started)))
}

/// Waits until no compaction runs, the partition is below its thresholds
/// and no replaced file awaits deletion, [`SETTLED_CHECKS`] checks in a row
/// (one per check interval); `false` after `--settle-timeout`.
async fn settle(db: &Db, p: &Partition, a: &CompactionArgs) -> Result<bool, BoxError> {
    let deadline = Instant::now() + a.settle_timeout;
    let t = a.thresholds();
    let mut quiet = 0;
    while Instant::now() < deadline {
        let s = p.stats();
        let total = s.live_bytes + s.dead_bytes;
        let due = s.dead_bytes > 0
            && s.dead_bytes >= t.min_dead_bytes
            && s.dead_bytes as f64 >= t.min_dead_ratio * total as f64
            && s.dead_bytes >= t.min_space_saving;
        let idle = !s.compacting && db.stats().running_compactions == 0 && s.obsolete_files == 0;
        quiet = if idle && !due { quiet + 1 } else { 0 };
        if quiet >= SETTLED_CHECKS {
            return Ok(true);
        }
        tokio::time::sleep(a.check_interval).await;
    }
    Ok(false)
}

/// Checks a sample of keys: each holds a value of the right size and, if
/// `generation` is given, exactly the value of that generation.
async fn check_sample(p: &Partition, a: &CompactionArgs, generation: Option<u64>) -> Result<(), BoxError> {
    let want = generation.map(|g| value(a.value_size, g));
    let mut rng = SplitMix::new(0xC4EC);
    let mut key = vec![0u8; a.key_size];
    for _ in 0..a.keys.min(10_000) {
        let i = rng.below(a.keys);
        fill_key(i, &mut key);
        match p.get(&key).await? {
            Some(v) if want.as_ref().map_or(v.len() == a.value_size, |w| v[..] == w[..]) => {}
            other => {
                let got = other.map(|v| v.len());
                return Err(
                    format!("key #{i}: {got:?} bytes, not the value of generation {generation:?}").into(),
                );
            }
        }
    }
    Ok(())
}

/// The partition's directory and statistics now.
fn measure_disk(db: &Db, p: &Partition) -> Result<Disk, BoxError> {
    let mut disk = scan_dir(&partition_dir(db)?)?;
    let s = p.stats();
    (disk.keys, disk.live_bytes, disk.dead_bytes) = (s.keys, s.live_bytes, s.dead_bytes);
    Ok(disk)
}

/// The partition's directory.
fn partition_dir(db: &Db) -> Result<PathBuf, BoxError> {
    let dir = db.describe_partition(PARTITION)?.dir;
    Ok(dir.ok_or("the partition has no directory")?)
}

/// The sizes of the files in `dir` (statistics left at zero).
fn scan_dir(dir: &Path) -> std::io::Result<Disk> {
    let mut disk = Disk::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let len = match entry.metadata() {
            Ok(m) => m.len(),
            // Deleted by the reaper meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let path = entry.path();
        match path.extension().and_then(|x| x.to_str()) {
            Some("data") => {
                disk.data_bytes += len;
                disk.data_files += 1;
            }
            Some("hint") => {
                disk.hint_bytes += len;
                disk.hint_files += 1;
            }
            _ => disk.other_bytes += len,
        }
    }
    Ok(disk)
}

/// The largest footprint (data + hints) of a directory, sampled by a
/// thread every 50 ms until stopped.
struct Peak {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Peak {
    fn watch(dir: PathBuf) -> std::io::Result<Peak> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("bench:peak".into())
            .spawn(move || {
                let mut peak = 0;
                while !flag.load(Relaxed) {
                    // A file deleted mid-listing: the next sample counts.
                    if let Ok(d) = scan_dir(&dir) {
                        peak = peak.max(d.footprint());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                peak
            })?;
        Ok(Peak { stop, thread })
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// Phase 2 (alternating baseline and compacting phases) and phase 3 (the floor).
async fn loads(
    a: &CompactionArgs,
    dir: &Path,
    fill: &Fill,
    progress: &dyn Fn(&str),
) -> Result<(Vec<Phase>, Option<(Disk, bool)>), BoxError> {
    let variants = a.variants();
    let mut current = variants[0];
    let mut db = open_load_db(a, dir, current).await?;
    let mut p = db.partition(PARTITION).await?;
    let mut state = LoadState {
        next_key: 0,
        generation: u64::from(a.overwrites) + 1,
        window: 0,
        // Baseline windows last as long as the latest compaction.
        last_compaction: fill.compactions.last().map_or(a.duration / 3, |r| r.duration),
        cpu: cpu::Sampler::start(&format!("caskade:{PARTITION}")),
    };
    let mut phases = Vec::new();
    for round in 1..=a.rounds {
        phases.push(phase(a, &p, &mut state, round, None, progress).await?);
        for &v in &variants {
            if v != current {
                progress(&format!("reopen with compaction {}", v.show()));
                drop(p);
                db.close().await?;
                current = v;
                db = open_load_db(a, dir, current).await?;
                p = db.partition(PARTITION).await?;
            }
            phases.push(phase(a, &p, &mut state, round, Some(v), progress).await?);
        }
    }
    // Each round's compacting phases lie between two baselines.
    phases.push(phase(a, &p, &mut state, a.rounds + 1, None, progress).await?);
    let floor = if a.no_floor {
        None
    } else {
        progress("floor: one more compaction without load, measure the directory");
        // Skipped if it would save less than `min_space_saving`.
        let performed = p.compact().await?.performed();
        // The replaced files go when the last version holding them does.
        let deadline = Instant::now() + Duration::from_secs(10);
        while p.stats().obsolete_files > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some((measure_disk(&db, &p)?, performed))
    };
    // The load's writers overwrite random keys: only the sizes are known.
    check_sample(&p, a, None).await?;
    drop(p);
    db.close().await?;
    Ok((phases, floor))
}

/// What carries over from one load window to the next.
#[derive(Debug)]
struct LoadState {
    /// First key of the next overwrite step.
    next_key: u64,
    /// Generation of the next overwrite step's value.
    generation: u64,
    /// Windows run so far (seeds the tasks' key streams).
    window: u64,
    /// Duration of the latest compaction.
    last_compaction: Duration,
    /// CPU time by thread role.
    cpu: cpu::Sampler,
}

/// One phase: windows (each after an overwrite step) until `a.duration` of
/// load was measured; with a `variant`, each window is one compaction.
async fn phase(
    a: &CompactionArgs,
    p: &Partition,
    st: &mut LoadState,
    round: usize,
    variant: Option<Variant>,
    progress: &dyn Fn(&str),
) -> Result<Phase, BoxError> {
    let what = match variant {
        None => "baseline (no compaction)".to_string(),
        Some(v) => format!("compacting ({})", v.show()),
    };
    let when = match round > a.rounds {
        true => "closing".to_string(),
        false => format!("round {round}/{}", a.rounds),
    };
    progress(&format!(
        "{when}: {what}: {} reader(s), {} writer(s), {} of load",
        a.readers,
        a.writers,
        fmt_duration(a.duration)
    ));
    let mut ph = Phase {
        round,
        variant,
        ..Phase::default()
    };
    let step = a.step_keys();
    while ph.elapsed < a.duration && ph.windows < MAX_WINDOWS {
        let t = Instant::now();
        write_keys(p, a, st.next_key, step, &value(a.value_size, st.generation)).await?;
        ph.step_time += t.elapsed();
        st.next_key = (st.next_key + step) % a.keys;
        st.generation += 1;
        st.window += 1;
        let (cpu0, roles0) = (cpu::process(), st.cpu.totals());
        let load = Load::start(p, a, st.window);
        let t0 = Instant::now();
        let report = match variant {
            Some(_) => Some(compact(p).await?),
            None => {
                let len = st.last_compaction.min(a.duration - ph.elapsed);
                tokio::time::sleep(len.max(Duration::from_millis(1))).await;
                None
            }
        };
        let (gets, puts, end) = load.stop().await?;
        let roles = st.cpu.totals();
        ph.cpu += cpu::process().saturating_sub(cpu0);
        for (sum, (now, then)) in ph.threads.iter_mut().zip(roles.iter().zip(roles0)) {
            *sum += now.saturating_sub(then);
        }
        ph.elapsed += end.saturating_duration_since(t0);
        ph.gets.merge(&gets);
        ph.puts.merge(&puts);
        ph.windows += 1;
        if let Some(r) = report {
            st.last_compaction = r.duration;
            ph.compactions.push(r);
        }
    }
    Ok(ph)
}

/// `compact`, failing if it did nothing.
async fn compact(p: &Partition) -> Result<CompactionReport, BoxError> {
    let r = p.compact().await?;
    match r.skipped {
        None => Ok(r),
        Some(why) => Err(format!("the compaction did nothing ({why:?}): raise --overwrite-fraction").into()),
    }
}

/// A task's latencies and when it finished.
type TaskResult = Result<(Recorder, Instant), BoxError>;

/// The load of one window: reader and writer tasks until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    readers: Vec<JoinHandle<TaskResult>>,
    writers: Vec<JoinHandle<TaskResult>>,
}

impl Load {
    /// Spawns the tasks of window `window`.
    fn start(p: &Partition, a: &CompactionArgs, window: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let value: Arc<[u8]> = value(a.value_size, u64::MAX).into();
        let seed = |kind: u64, t: usize| (window << 20) | (kind << 16) | t as u64;
        let (keys, key_size, value_size) = (a.keys, a.key_size, a.value_size);
        let yields = a.readers > 1;
        let readers = (0..a.readers)
            .map(|t| {
                let (p, stop, rng) = (p.clone(), Arc::clone(&stop), SplitMix::new(seed(1, t)));
                tokio::spawn(read_loop(p, stop, rng, keys, key_size, value_size, yields))
            })
            .collect();
        let writers = (0..a.writers)
            .map(|t| {
                let (p, stop, rng) = (p.clone(), Arc::clone(&stop), SplitMix::new(seed(2, t)));
                tokio::spawn(write_loop(p, stop, rng, keys, key_size, Arc::clone(&value)))
            })
            .collect();
        Load {
            stop,
            readers,
            writers,
        }
    }

    /// Stops the tasks; their merged get and put latencies and the last finish.
    async fn stop(self) -> Result<(Recorder, Recorder, Instant), BoxError> {
        self.stop.store(true, Relaxed);
        let (gets, read_end) = join(self.readers).await?;
        let (puts, write_end) = join(self.writers).await?;
        Ok((gets, puts, read_end.max(write_end)))
    }
}

/// Waits for every task: their merged latencies and the last finish (now if none).
async fn join(handles: Vec<JoinHandle<TaskResult>>) -> TaskResult {
    let (mut lat, mut end) = (Recorder::new(), None::<Instant>);
    for h in handles {
        let (rec, finished) = h.await??;
        lat.merge(&rec);
        end = Some(end.map_or(finished, |e| e.max(finished)));
    }
    Ok((lat, end.unwrap_or_else(Instant::now)))
}

/// One reader: random gets until `stop`, every value's length checked;
/// yields every [`YIELD_EVERY`] gets if `yields` (the clock restarts after
/// a yield, so it is not counted as latency).
async fn read_loop(
    p: Partition,
    stop: Arc<AtomicBool>,
    mut rng: SplitMix,
    keys: u64,
    key_size: usize,
    value_size: usize,
    yields: bool,
) -> TaskResult {
    let (mut key, mut lat, mut n) = (vec![0u8; key_size], Recorder::new(), 0u32);
    let mut last = Instant::now();
    loop {
        let i = rng.below(keys);
        fill_key(i, &mut key);
        match p.get(&key).await? {
            Some(v) if v.len() == value_size => {}
            other => {
                let got = other.map(|v| v.len());
                return Err(format!("get of key #{i}: {got:?} bytes, not {value_size}").into());
            }
        }
        let now = lat.lap(&mut last);
        if stop.load(Relaxed) {
            return Ok((lat, now));
        }
        n = n.wrapping_add(1);
        if yields && n.is_multiple_of(YIELD_EVERY) {
            tokio::task::yield_now().await;
            last = Instant::now();
        }
    }
}

/// One writer: puts of random keys until `stop`.
async fn write_loop(
    p: Partition,
    stop: Arc<AtomicBool>,
    mut rng: SplitMix,
    keys: u64,
    key_size: usize,
    value: Arc<[u8]>,
) -> TaskResult {
    let (mut key, mut lat) = (vec![0u8; key_size], Recorder::new());
    let mut last = Instant::now();
    loop {
        fill_key(rng.below(keys), &mut key);
        p.put(&key, &value[..]).await?;
        let now = lat.lap(&mut last);
        if stop.load(Relaxed) {
            return Ok((lat, now));
        }
    }
}

/// The 1-minute load average, or `?`.
fn load_average() -> String {
    let avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    avg.split_whitespace().next().unwrap_or("?").to_string()
}
