//! One benchmark run: the chosen workloads ([`Workload`]), in one process
//! and one data directory, collected into a [`Report`].
//!
//! Order (each step only if its workload runs): L1, L3, L3x2 (std::fs);
//! open a `Durability::OsBuffered` database (`db/`), fill (RSS sampled
//! before and after it for `memory`), gets per task count; buffered puts
//! per task count and mixed (reopened first with `--durability` if that is
//! not `buffered`); close, reopen the same directory with
//! `Durability::Always` (timed to the first `get`); then in `plan.rounds`
//! rounds: a slice of L2 (std::fs), then a slice of durable puts per task
//! count on fresh partitions; close. Last, the space workload on a database
//! of its own (`space/`). L2 and the durable puts are interleaved because
//! fsync latency on a shared disk drifts by several times within a run:
//! interleaving exposes both to the same drift, so their ratio stays
//! meaningful.
//!
//! The compaction scheduler is disabled in every database of the run: the
//! put phases leave plenty of dead bytes, and a compaction starting in the
//! middle of a later phase would measure the compaction, not the phase
//! (`caskade compaction` measures that).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use caskade::{CompactionScheduler, Db, Durability, Partition};
use tokio::runtime::Runtime;

use crate::footprint::{self, Memory, Space};
use crate::limits;
use crate::plan::{Plan, PutDurability, Workload, fill_key};
use crate::progress::Progress;
use crate::stats::Measurement;
use crate::workload::{self, BoxError};

/// The partition the fill, get, put and mixed phases use.
const PARTITION: &str = "bench";

/// Everything a run measured.
#[derive(Debug)]
pub struct Report {
    /// The settings of the run.
    pub plan: Plan,
    /// Where it ran.
    pub machine: Machine,
    /// The data directory (deleted after the run unless given with `--dir`).
    pub data_dir: PathBuf,
    /// Every phase, in the order run.
    pub phases: Vec<Measurement>,
    /// After closing the loaded database: from `open` until the first `get`
    /// returned (`reopen`).
    pub reopen: Option<Duration>,
    /// The resident set over the fill (`memory`).
    pub memory: Option<Memory>,
    /// Disk footprint after overwrites, before and after a compaction (`space`).
    pub space: Option<Space>,
    /// Wall time of the whole run.
    pub total: Duration,
    /// Load average (1 min) before and after the run: how busy the machine was.
    pub load: (String, String),
}

/// Runs every workload of `plan` on `rt`. With `dir`, data is written there
/// (it must be absent or empty) and kept; otherwise in a temporary directory.
///
/// # Errors
/// Any I/O or engine error, or an invalid `dir`.
pub fn run(
    plan: &Plan,
    rt: &Runtime,
    dir: Option<&Path>,
    progress: &Progress<'_>,
) -> Result<Report, BoxError> {
    let started = Instant::now();
    let load_before = load_average();
    let temp;
    let root = match dir {
        Some(d) => {
            if d.exists() && std::fs::read_dir(d)?.next().is_some() {
                return Err(format!(
                    "--dir {} is not empty; give a new or empty directory",
                    d.display()
                )
                .into());
            }
            std::fs::create_dir_all(d)?;
            d.to_path_buf()
        }
        None => {
            temp = tempfile::Builder::new().prefix("caskade-bench-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let machine = machine(&root);
    progress.line(&format!(
        "data directory {} ({})",
        root.display(),
        machine.fs_type
    ));
    let names: Vec<&str> = plan.schedule().iter().map(|w| w.name()).collect();
    progress.line(&format!("workloads: {}", names.join(", ")));
    let raw = root.join("raw");
    std::fs::create_dir_all(&raw)?;
    let mut phases = Vec::new();
    if plan.runs(Workload::Limits) {
        let append_path = raw.join("append.dat");
        progress.line("L1: buffered append + one fsync");
        phases.push(limits::append(plan, &append_path)?);
        for threads in [1, 2] {
            let id = if threads == 1 { "L3" } else { "L3x2" };
            progress.line(&format!(
                "{id}: random pread from the page cache, {threads} thread(s)"
            ));
            let _bar = progress.timed(plan.duration);
            phases.push(limits::random_read(plan, &append_path, threads)?);
        }
        std::fs::remove_file(&append_path)?;
    }
    let engine = rt.block_on(engine(plan, &root.join("db"), &raw, progress))?;
    phases.extend(engine.phases);
    std::fs::remove_dir(&raw)?;
    let space = if plan.runs(Workload::Space) {
        let (overwrites, space) = rt.block_on(footprint::space(plan, &root.join("space"), progress))?;
        phases.push(overwrites);
        Some(space)
    } else {
        None
    };
    Ok(Report {
        plan: plan.clone(),
        machine,
        data_dir: root,
        phases,
        reopen: engine.reopen,
        memory: engine.memory,
        space,
        total: started.elapsed(),
        load: (load_before, load_average()),
    })
}

/// What the engine phases of `db/` measured.
#[derive(Debug, Default)]
struct Engine {
    phases: Vec<Measurement>,
    reopen: Option<Duration>,
    memory: Option<Memory>,
}

/// Opens the database in `dir` with `durability`, the scheduler disabled.
async fn open(dir: &Path, durability: Durability) -> caskade::Result<Db> {
    Db::builder(dir)
        .durability(durability)
        .compaction_scheduler(CompactionScheduler::disabled())
        .open()
        .await
}

/// The engine phases on `dir` (and L2, in `raw`).
async fn engine(plan: &Plan, dir: &Path, raw: &Path, progress: &Progress<'_>) -> Result<Engine, BoxError> {
    let mut out = Engine::default();
    if plan.needs_fill() {
        loaded(plan, dir, progress, &mut out).await?;
    }
    let mut db = None;
    if plan.runs(Workload::Reopen) {
        progress.line("reopen (Durability::Always) to the first get");
        let spinner = progress.spinner("open, recover, first get");
        let start = Instant::now();
        let d = open(dir, Durability::Always).await?;
        let p = d.partition(PARTITION).await?;
        let mut key = plan.key_buf();
        fill_key(0, &mut key);
        let first = p.get(&key).await?;
        out.reopen = Some(start.elapsed());
        drop(spinner);
        if first.is_none_or(|v| v.len() != plan.value_size) {
            return Err("after reopening, key #0 is missing or has the wrong size".into());
        }
        expect_len(&p, plan.keys)?;
        db = Some(d);
    }
    if plan.runs(Workload::Durable) && db.is_none() {
        db = Some(open(dir, Durability::Always).await?);
    }
    if plan.runs(Workload::Durable) || plan.runs(Workload::Limits) {
        out.phases
            .extend(durable(plan, db.as_ref(), raw, progress).await?);
    }
    if let Some(db) = db {
        db.close().await?;
    }
    Ok(out)
}

/// Fill (with the RSS around it), gets, puts and mixed on the `bench`
/// partition of `dir`; closes the database.
async fn loaded(plan: &Plan, dir: &Path, progress: &Progress<'_>, out: &mut Engine) -> Result<(), BoxError> {
    let mut db = open(dir, Durability::OsBuffered).await?;
    let mut p = db.partition(PARTITION).await?;
    progress.line(&format!("fill: {} keys in batches of {}", plan.keys, plan.batch));
    let rss_before = footprint::rss_bytes()?;
    let fill = {
        let bar = progress.count(plan.keys, "keys");
        let (plan, p, bar) = (plan.clone(), p.clone(), bar.handle().clone());
        tokio::spawn(async move { workload::fill(&plan, &p, bar).await }).await??
    };
    let rss_after = footprint::rss_bytes()?;
    if plan.runs(Workload::Memory) {
        out.memory = Some(Memory {
            keys: plan.keys,
            rss_before,
            rss_after,
        });
    }
    out.phases.push(fill);
    expect_len(&p, plan.keys)?;
    if plan.runs(Workload::Get) {
        for &t in &plan.get_tasks {
            progress.line(&format!("get: {t} task(s)"));
            let _bar = progress.timed(plan.duration);
            out.phases.push(workload::gets(plan, &p, t).await?);
        }
        progress.line("get via spawn_blocking: 1 task");
        let _bar = progress.timed(plan.duration);
        out.phases.push(workload::offloaded_gets(plan, &p).await?);
    }
    let writes = plan.runs(Workload::Put) || plan.runs(Workload::Mixed);
    if writes && plan.durability != PutDurability::Buffered {
        progress.line(&format!("reopen with {} for the puts", plan.durability.show()));
        drop(p);
        db.close().await?;
        db = open(dir, plan.durability.engine()).await?;
        p = db.partition(PARTITION).await?;
    }
    if plan.runs(Workload::Put) {
        for &t in &plan.put_tasks {
            progress.line(&format!("put ({}): {t} task(s)", plan.durability.show()));
            let _bar = progress.timed(plan.duration);
            out.phases.push(workload::puts(plan, &p, t).await?);
        }
    }
    if plan.runs(Workload::Mixed) {
        let readers = plan.mixed_readers();
        progress.line(&format!("mixed: {readers} reader task(s) + 1 writer task"));
        let _bar = progress.timed(plan.duration);
        let (get, put) = workload::mixed(plan, &p, readers).await?;
        out.phases.extend([get, put]);
    }
    expect_len(&p, plan.keys)?;
    drop(p);
    db.close().await?;
    Ok(())
}

/// L2 (with `limits`) and the durable puts per task count (with `durable`,
/// each on a fresh partition of `db`), interleaved in `plan.rounds` rounds.
/// Returns L2 first.
async fn durable(
    plan: &Plan,
    db: Option<&Db>,
    raw: &Path,
    progress: &Progress<'_>,
) -> Result<Vec<Measurement>, BoxError> {
    let l2 = plan.runs(Workload::Limits);
    let mut parts = Vec::new();
    if let Some(db) = db.filter(|_| plan.runs(Workload::Durable)) {
        for &t in &plan.durable_tasks {
            let p = db.partition(&format!("durable-t{t}")).await?;
            expect_len(&p, 0)?;
            parts.push((t, p));
        }
    }
    let sync_path = raw.join("sync.dat");
    let mut out: Vec<Measurement> = Vec::new();
    for round in 0..plan.rounds {
        let (_, ops) = plan.durable_round(round);
        let what = match (l2, parts.is_empty()) {
            (true, false) => format!(
                "L2 (append + fdatasync), then durable put (Always) with {:?} task(s)",
                plan.durable_tasks
            ),
            (true, true) => "L2 (append + fdatasync)".to_owned(),
            (false, _) => format!("durable put (Always) with {:?} task(s)", plan.durable_tasks),
        };
        progress.line(&format!("round {}/{}: {what}", round + 1, plan.rounds));
        let total = u64::from(l2) * ops + parts.iter().map(|(t, _)| *t as u64 * ops).sum::<u64>();
        let bar = progress.count(total, "ops");
        let mut slices = Vec::new();
        if l2 {
            slices.push(limits::append_sync(plan, &sync_path, ops, bar.handle())?);
            std::fs::remove_file(&sync_path)?;
        }
        for (t, p) in &parts {
            slices.push(workload::durable_puts(plan, p, *t, round, bar.handle()).await?);
        }
        if out.is_empty() {
            out = slices;
        } else {
            for (total, slice) in out.iter_mut().zip(slices) {
                total.absorb(slice);
            }
        }
    }
    if let Some(l2) = out.first_mut().filter(|m| m.id == "L2") {
        l2.note = format!("interleaved with the durable puts in {} rounds", plan.rounds);
        if !plan.runs(Workload::Durable) {
            l2.note = format!("in {} rounds", plan.rounds);
        }
    }
    for (t, p) in &parts {
        expect_len(p, *t as u64 * plan.durable_ops)?;
    }
    Ok(out)
}

/// Checks that `p` holds exactly `n` keys.
fn expect_len(p: &Partition, n: u64) -> Result<(), BoxError> {
    // Published with the last acknowledged commit, so exact here.
    let len = p.stats().keys;
    if len != n {
        return Err(format!("partition `{}` holds {len} keys, expected {n}", p.name()).into());
    }
    Ok(())
}

/// The machine, as far as `/proc` tells.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// Total memory.
    pub memory: String,
    /// File system type of the data directory.
    pub fs_type: String,
}

/// CPUs, kernel, memory and the data directory's file system type.
fn machine(root: &Path) -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(
            || "unknown".into(),
            |kb| format!("{:.1} GiB", kb as f64 / (1 << 20) as f64),
        );
    Machine {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        memory,
        fs_type: fs_type(root, &read("/proc/mounts")),
    }
}

/// The type and mount options of the longest mount point in `mounts` (the
/// text of `/proc/mounts`) that contains `path`, e.g. `ext4 (rw,relatime)`.
pub fn fs_type(path: &Path, mounts: &str) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, point, kind) = (f.next()?, f.next()?, f.next()?);
            let opts = f.next().unwrap_or("?");
            path.starts_with(point)
                .then(|| (point.len(), format!("{kind} ({opts})")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".into(), |(_, kind)| kind)
}

/// The 1-minute load average, or `?`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
