//! `caskade partitions`: the partition-lifecycle costs of issue 3, in one
//! process and one data directory.
//!
//! 1. **Cold open.** Partition `cold` holds `--cold-keys` keys. In each of
//!    `--rounds` rounds it is evicted (the database allows one open
//!    partition, and opening partition `other` takes the slot; the run fails
//!    unless `DbStats::evictions` grew and `cold` reports itself closed),
//!    then one `get` of a random key is timed: it reopens the partition
//!    (evicting the empty `other`, loading the hint files, building the
//!    index) and reads. One more round deletes `cold`'s `*.hint` files while
//!    it is evicted and times the scan path. The page cache stays warm: this
//!    is the CPU cost of an open, not the cost of reading a cold disk.
//! 2. **Skewed access.** `--partitions` partitions of `--keys-per-partition`
//!    keys; for `--duration`, `--tasks` tasks each pick a partition by
//!    Zipf(`--partitions`, `--zipf-s`) (rank 1, the hottest, is `p00000`) and
//!    a random key, then `get` it and check the value, or — for
//!    `--write-percent` of the operations — `put` the same value. Run with at
//!    most `--max-open` partitions open, then, after reopening the database,
//!    with every partition open: the throughput ratio is the cost of eviction.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use caskade::{Db, Durability, Partition};
use clap::Args;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use tokio::runtime::Runtime;

use crate::plan::{SplitMix, fill_key};
use crate::report::fmt_duration;
use crate::workload::{BoxError, YIELD_EVERY};

mod report;

pub use report::{Report, Run, json, table};

/// Bytes per key.
const KEY_SIZE: usize = 16;
/// Keys per batch when filling.
const BATCH: u64 = 1000;
/// The goal for the median cold open.
const COLD_TARGET: Duration = Duration::from_millis(50);

/// Options of `caskade partitions`.
#[derive(Debug, Clone, Args)]
pub struct PartitionsArgs {
    /// Keys of the partition whose cold open is timed (16-byte keys).
    #[arg(long, default_value_t = 100_000)]
    pub cold_keys: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Timed cold opens with hint files (one more runs without them).
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
    /// Partitions of the skewed-access runs.
    #[arg(long, default_value_t = 1000)]
    pub partitions: usize,
    /// Keys per partition of the skewed-access runs.
    #[arg(long, default_value_t = 1000)]
    pub keys_per_partition: u64,
    /// `max_open_partitions` of the run with eviction.
    #[arg(long, default_value_t = 64)]
    pub max_open: usize,
    /// Seconds per skewed-access run.
    #[arg(long, default_value = "10", value_parser = crate::parse_seconds)]
    pub duration: Duration,
    /// Tasks of the skewed-access runs (and of the fill).
    #[arg(long, default_value_t = 16)]
    pub tasks: usize,
    /// Worker threads of the tokio multi-thread runtime.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Exponent of the Zipf distribution of partitions (0 = uniform).
    #[arg(long, default_value_t = 1.0)]
    pub zipf_s: f64,
    /// Percentage of operations that are puts instead of gets.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub write_percent: u32,
    /// Keep the data in this (new or empty) directory instead of a temporary one.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl PartitionsArgs {
    fn validate(&self) -> Result<(), String> {
        let counts = [self.cold_keys, self.keys_per_partition, self.rounds as u64];
        let sizes = [self.partitions, self.max_open, self.tasks, self.workers];
        if counts.contains(&0) || sizes.contains(&0) || self.duration.is_zero() {
            return Err("every count and --duration must be positive".into());
        }
        if !(self.zipf_s.is_finite() && self.zipf_s >= 0.0) {
            return Err("--zipf-s must be a finite number >= 0".into());
        }
        Ok(())
    }
}

/// Runs both benchmarks on `rt`, in `args.dir` (absent or empty) or a temporary directory.
///
/// # Errors
/// Invalid settings or `--dir`, any I/O or engine error, a wrong value, or
/// an eviction that did not happen.
pub fn run(args: &PartitionsArgs, rt: &Runtime, progress: &dyn Fn(&str)) -> Result<Report, BoxError> {
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
            temp = tempfile::Builder::new().prefix("caskade-partitions-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&root)?;
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let fs_type = crate::bench::fs_type(&root, &mounts);
    progress(&format!("data directory {} ({fs_type})", root.display()));
    let (cold, hints, scan) = rt.block_on(cold_open(args, &root.join("cold"), progress))?;
    let runs = rt.block_on(skewed(args, &root.join("many"), progress))?;
    let (args, machine) = (args.clone(), [fs_type, load_before, load_average()]);
    let total = started.elapsed();
    Ok(Report {
        args,
        data_dir: root,
        machine,
        cold,
        hints,
        scan,
        runs,
        total,
    })
}

/// A `Durability::OsBuffered` database with at most `max_open` partitions open.
async fn open_db(dir: &Path, max_open: usize) -> caskade::Result<Db> {
    let builder = Db::builder(dir).durability(Durability::OsBuffered);
    builder.max_open_partitions(max_open).open().await
}

/// Fills partition `cold`, then times its reopen in each round.
async fn cold_open(
    a: &PartitionsArgs,
    dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<(Vec<Duration>, usize, Duration), BoxError> {
    let (db, keys, rounds) = (open_db(dir, 1).await?, a.cold_keys, a.rounds);
    let cold = db.partition("cold").await?;
    progress(&format!("cold: fill {keys} keys in batches of {BATCH}, sync"));
    let value = value(a.value_size);
    fill(&cold, keys, &value).await?;
    cold.sync().await?;
    let info = db.describe_partition("cold")?;
    let part_dir = info.dir.ok_or("`cold` has no directory")?;
    let (mut rng, mut key) = (SplitMix::new(0xC01D), [0u8; KEY_SIZE]);
    let (mut samples, mut hint_files, mut scan) = (Vec::new(), 0, Duration::ZERO);
    for round in 0..=rounds {
        let before = db.stats().evictions;
        db.partition("other").await?; // takes the one open slot
        let after = db.stats().evictions;
        if after <= before || cold.stats().open {
            return Err(format!("`cold` was not evicted (evictions {before} -> {after})").into());
        }
        let mut hints = Vec::new();
        for entry in std::fs::read_dir(&part_dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|x| x == "hint") {
                hints.push(path);
            }
        }
        if round == 0 {
            hint_files = hints.len();
        }
        let (n, next) = (hints.len(), round + 1);
        if round == rounds {
            progress(&format!("cold: evicted; delete {n} hint file(s), time the scan"));
            hints.iter().try_for_each(std::fs::remove_file)?;
        } else {
            progress(&format!(
                "cold: round {next}/{rounds}: evicted; time the first get"
            ));
        }
        let i = rng.below(keys);
        fill_key(i, &mut key);
        let t = Instant::now();
        let got = cold.get(key).await?;
        let took = t.elapsed();
        check(got.as_deref(), &value, "cold", i)?;
        if !cold.stats().open {
            return Err("`cold` is not open after a get".into());
        }
        match round == rounds {
            true => scan = took,
            false => samples.push(took),
        }
    }
    drop(cold);
    db.close().await?;
    Ok((samples, hint_files, scan))
}

/// Fills the partitions, then runs the skewed access with eviction and,
/// after reopening the database, with every partition open.
async fn skewed(a: &PartitionsArgs, dir: &Path, progress: &dyn Fn(&str)) -> Result<[Run; 2], BoxError> {
    let names: Arc<[String]> = (0..a.partitions).map(|i| format!("p{i:05}")).collect();
    let value: Arc<[u8]> = value(a.value_size).into();
    let (n, keys, max) = (a.partitions, a.keys_per_partition, a.max_open);
    let db = open_db(dir, max).await?;
    progress(&format!(
        "many: fill {n} partitions x {keys} keys, max_open {max}"
    ));
    let parts = fill_many(&db, &names, a, &value).await?;
    // Open the hottest partitions (Zipf rank 1 is p00000), the hottest last.
    let mut key = [0u8; KEY_SIZE];
    fill_key(0, &mut key);
    for p in parts.iter().take(max).rev() {
        check(p.get(key).await?.as_deref(), &value, p.name(), 0)?;
    }
    let (tasks, s, pct, secs) = (a.tasks, a.zipf_s, a.write_percent, fmt_duration(a.duration));
    let what = format!("{tasks} task(s), Zipf s={s}, {pct}% puts");
    progress(&format!("many: {what}, max_open {max}, {secs}"));
    let evicting = measure(&db, parts, a, &value, max).await?;
    db.close().await?;
    let db = open_db(dir, n).await?;
    progress(&format!("many: reopen with max_open {n}, open every partition"));
    let mut parts = Vec::with_capacity(n);
    for name in names.iter() {
        parts.push(db.partition(name).await?);
    }
    progress(&format!("many: {what}, every partition open, {secs}"));
    let all = measure(&db, parts, a, &value, n).await?;
    db.close().await?;
    Ok([evicting, all])
}

/// Creates and fills every partition of `names` from `a.tasks` tasks;
/// returns their handles in order, after checking each one's key count.
async fn fill_many(
    db: &Db,
    names: &Arc<[String]>,
    a: &PartitionsArgs,
    value: &Arc<[u8]>,
) -> Result<Vec<Partition>, BoxError> {
    let shared = Arc::new((
        db.clone(),
        Arc::clone(names),
        AtomicUsize::new(0),
        Arc::clone(value),
    ));
    let keys = a.keys_per_partition;
    let mut tasks = Vec::new();
    for _ in 0..a.tasks {
        let shared = Arc::clone(&shared);
        tasks.push(tokio::spawn(async move {
            let (db, names, next, value) = &*shared;
            let mut done = Vec::new();
            // Relaxed: the counter only hands out distinct indices.
            while let Some(name) = names.get(next.fetch_add(1, Relaxed)) {
                let p = db.partition(name).await?;
                fill(&p, keys, value).await?;
                done.push(p);
            }
            Ok::<_, BoxError>(done)
        }));
    }
    let mut parts = Vec::with_capacity(names.len());
    for t in tasks {
        parts.extend(t.await??);
    }
    parts.sort_by(|x, y| x.name().cmp(y.name()));
    if let Some(p) = parts.iter().find(|p| p.stats().keys != keys) {
        let (name, n) = (p.name(), p.stats().keys);
        return Err(format!("partition `{name}` holds {n} keys, not {keys}").into());
    }
    Ok(parts)
}

/// What every task of a skewed-access run shares.
#[derive(Debug, Clone)]
struct Load {
    parts: Arc<[Partition]>,
    zipf: Zipf<f64>,
    value: Arc<[u8]>,
    keys: u64,
    write_percent: u32,
    deadline: Instant,
}

/// One skewed-access run over `parts` for `a.duration`.
async fn measure(
    db: &Db,
    parts: Vec<Partition>,
    a: &PartitionsArgs,
    value: &Arc<[u8]>,
    max_open: usize,
) -> Result<Run, BoxError> {
    let zipf = Zipf::new(parts.len() as f64, a.zipf_s)?;
    let before = db.stats();
    let start = Instant::now();
    let load = Load {
        parts: parts.into(),
        zipf,
        value: Arc::clone(value),
        keys: a.keys_per_partition,
        write_percent: a.write_percent,
        deadline: start + a.duration,
    };
    let tasks: Vec<_> = (0..a.tasks as u64)
        .map(|t| tokio::spawn(access(load.clone(), t)))
        .collect();
    let (mut run, mut end) = (Run::default(), start);
    run.max_open = max_open;
    for t in tasks {
        let (r, finished) = t.await??;
        run.gets.merge(&r.gets);
        run.puts.merge(&r.puts);
        end = end.max(finished);
    }
    let after = db.stats();
    run.elapsed = end - start;
    run.evictions = after.evictions - before.evictions;
    run.reopens = after.reopens - before.reopens;
    run.open_at_end = after.open_partitions;
    Ok(run)
}

/// One task of a skewed-access run: its latencies and when it finished.
async fn access(l: Load, seed: u64) -> Result<(Run, Instant), BoxError> {
    let mut rng = SmallRng::seed_from_u64(0x5EED + seed);
    let (mut run, mut key, mut n) = (Run::default(), [0u8; KEY_SIZE], 0u32);
    loop {
        // A Zipf sample is an integer in 1..=partitions, as a float.
        let p = &l.parts[(l.zipf.sample(&mut rng) as usize).clamp(1, l.parts.len()) - 1];
        let i = rng.random_range(0..l.keys);
        fill_key(i, &mut key);
        let t = Instant::now();
        if rng.random_range(0..100) < l.write_percent {
            p.put(key, &l.value[..]).await?;
            run.puts.record(t.elapsed());
        } else {
            let got = p.get(key).await?;
            run.gets.record(t.elapsed());
            check(got.as_deref(), &l.value, p.name(), i)?;
        }
        let now = Instant::now();
        if now >= l.deadline {
            return Ok((run, now));
        }
        n = n.wrapping_add(1);
        if n.is_multiple_of(YIELD_EVERY) {
            tokio::task::yield_now().await;
        }
    }
}

/// Puts keys `0..keys` with `value` in batches of [`BATCH`].
async fn fill(p: &Partition, keys: u64, value: &[u8]) -> Result<(), BoxError> {
    let mut key = [0u8; KEY_SIZE];
    for first in (0..keys).step_by(BATCH as usize) {
        let mut b = p.batch();
        for i in first..(first + BATCH).min(keys) {
            fill_key(i, &mut key);
            b.put(key, value);
        }
        b.commit().await?;
    }
    Ok(())
}

/// Fails unless `got` is `value`.
fn check(got: Option<&[u8]>, value: &[u8], partition: &str, i: u64) -> Result<(), BoxError> {
    match got {
        Some(v) if v == value => Ok(()),
        other => Err(format!("key #{i} of `{partition}`: {:?} bytes", other.map(<[u8]>::len)).into()),
    }
}

/// `size` bytes of a fixed pattern.
fn value(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The 1-minute load average, or `?`.
fn load_average() -> String {
    let avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    avg.split_whitespace().next().unwrap_or("?").to_string()
}
