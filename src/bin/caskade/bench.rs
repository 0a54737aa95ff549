//! One benchmark run: the raw limits, then every engine phase, in one
//! process and one data directory, collected into a [`Report`].
//!
//! Order: L1, L3, L3x2 (std::fs); open a `Durability::OsBuffered` database,
//! fill, gets per task count, buffered puts per task count, mixed; close,
//! reopen the same directory with `Durability::Always` (timed to the first
//! `get`); then in `plan.rounds` rounds: a slice of L2 (std::fs), then a
//! slice of durable puts per task count on fresh partitions; close. L2 and
//! the durable puts are interleaved because fsync latency on a shared disk
//! drifts by several times within a run: interleaving exposes both to the
//! same drift, so their ratio stays meaningful.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use caskade::{Db, Durability, Partition};
use tokio::runtime::Runtime;

use crate::limits;
use crate::plan::{Plan, fill_key};
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
    /// After closing the loaded database: from `open` until the first `get` returned.
    pub reopen: Duration,
    /// Wall time of the whole run.
    pub total: Duration,
    /// Load average (1 min) before and after the run: how busy the machine was.
    pub load: (String, String),
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

/// Runs every phase of `plan` on `rt`. With `dir`, data is written there (it
/// must be absent or empty) and kept; otherwise in a temporary directory.
///
/// # Errors
/// Any I/O or engine error, or an invalid `dir`.
pub fn run(
    plan: &Plan,
    rt: &Runtime,
    dir: Option<&Path>,
    progress: &dyn Fn(&str),
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
    progress(&format!(
        "data directory {} ({})",
        root.display(),
        machine.fs_type
    ));
    let raw = root.join("raw");
    std::fs::create_dir_all(&raw)?;
    let append_path = raw.join("append.dat");
    progress("L1: buffered append + one fsync");
    let mut phases = vec![limits::append(plan, &append_path)?];
    progress("L3: random pread from the page cache, 1 thread");
    phases.push(limits::random_read(plan, &append_path, 1)?);
    progress("L3x2: random pread from the page cache, 2 threads");
    phases.push(limits::random_read(plan, &append_path, 2)?);
    std::fs::remove_file(&append_path)?;
    let (engine, reopen) = rt.block_on(engine(plan, &root.join("db"), &raw, progress))?;
    phases.extend(engine);
    std::fs::remove_dir(&raw)?;
    Ok(Report {
        plan: plan.clone(),
        machine,
        data_dir: root,
        phases,
        reopen,
        total: started.elapsed(),
        load: (load_before, load_average()),
    })
}

/// The engine phases (and L2, in `raw`); returns them and the reopen time.
async fn engine(
    plan: &Plan,
    dir: &Path,
    raw: &Path,
    progress: &dyn Fn(&str),
) -> Result<(Vec<Measurement>, Duration), BoxError> {
    let mut out = Vec::new();
    let db = Db::builder(dir).durability(Durability::OsBuffered).open().await?;
    let p = db.partition(PARTITION).await?;
    progress(&format!("fill: {} keys in batches of {}", plan.keys, plan.batch));
    let fill = {
        let (plan, p) = (plan.clone(), p.clone());
        tokio::spawn(async move { workload::fill(&plan, &p).await }).await??
    };
    out.push(fill);
    expect_len(&p, plan.keys)?;
    for &t in &plan.tasks {
        progress(&format!("get: {t} task(s)"));
        out.push(workload::gets(plan, &p, t).await?);
    }
    progress("get via spawn_blocking: 1 task");
    out.push(workload::offloaded_gets(plan, &p).await?);
    for &t in &plan.tasks {
        progress(&format!("put (OsBuffered): {t} task(s)"));
        out.push(workload::buffered_puts(plan, &p, t).await?);
    }
    if plan.mixed {
        let readers = plan.max_tasks().saturating_sub(1).max(1);
        progress(&format!("mixed: {readers} reader task(s) + 1 writer task"));
        let (get, put) = workload::mixed(plan, &p, readers).await?;
        out.extend([get, put]);
    }
    expect_len(&p, plan.keys)?;
    drop(p);
    db.close().await?;

    progress("reopen (Durability::Always) to the first get");
    let start = Instant::now();
    let db = Db::builder(dir).durability(Durability::Always).open().await?;
    let p = db.partition(PARTITION).await?;
    let mut key = plan.key_buf();
    fill_key(0, &mut key);
    let first = p.get(&key).await?;
    let reopen = start.elapsed();
    if first.is_none_or(|v| v.len() != plan.value_size) {
        return Err("after reopening, key #0 is missing or has the wrong size".into());
    }
    expect_len(&p, plan.keys)?;
    out.extend(durable(plan, &db, raw, progress).await?);
    db.close().await?;
    Ok((out, reopen))
}

/// L2 and the durable puts per task count, interleaved in `plan.rounds`
/// rounds, each on a fresh partition of `db`. Returns L2 first.
async fn durable(
    plan: &Plan,
    db: &Db,
    raw: &Path,
    progress: &dyn Fn(&str),
) -> Result<Vec<Measurement>, BoxError> {
    let mut parts = Vec::new();
    for &t in &plan.tasks {
        let p = db.partition(&format!("durable-t{t}")).await?;
        expect_len(&p, 0)?;
        parts.push((t, p));
    }
    let sync_path = raw.join("sync.dat");
    let mut out: Vec<Measurement> = Vec::new();
    for round in 0..plan.rounds {
        progress(&format!(
            "round {}/{}: L2 (append + fdatasync), then durable put (Always) with {:?} task(s)",
            round + 1,
            plan.rounds,
            plan.tasks
        ));
        let (_, ops) = plan.durable_round(round);
        let mut slices = vec![limits::append_sync(plan, &sync_path, ops)?];
        std::fs::remove_file(&sync_path)?;
        for (t, p) in &parts {
            slices.push(workload::durable_puts(plan, p, *t, round).await?);
        }
        if out.is_empty() {
            out = slices;
        } else {
            for (total, slice) in out.iter_mut().zip(slices) {
                total.absorb(slice);
            }
        }
    }
    if let Some(l2) = out.first_mut() {
        l2.note = format!("interleaved with the durable puts in {} rounds", plan.rounds);
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
