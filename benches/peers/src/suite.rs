//! The order of a run, in one process and under one root directory:
//!
//! 1. raw limits L1 (append), L4 (sequential read), L3, L3x2 (preads);
//! 2. memory: each engine in turn: resident memory, open a fresh store
//!    `<root>/<engine>-memory`, fill, resident memory again; every store
//!    stays open until the last engine is measured (so no engine's freed
//!    memory shrinks the next one's growth), then all close and their
//!    directories are removed;
//! 3. each engine in turn, on a fresh directory `<root>/<engine>`: open
//!    (buffered), fill; random gets per task count; non-durable puts per
//!    task count; mixed; close; timed reopen; overwrite rounds; close;
//!    directory size; for caskade, reopen, `Partition::compact`, close and
//!    the size again;
//! 4. the durable phases: every engine's fresh store `<root>/<engine>-durable`
//!    open at once, in `plan.rounds` rounds of (an L2 slice, then for each
//!    task count each engine's slice, the engine order rotated every round),
//!    so the raw `fdatasync` limit and every engine see the same drift of
//!    fsync latency on a shared disk.
//!
//! Before the limits, each engine's stage and each durable round, the data
//! directory's file system is synced (`syncfs`, untimed), so no phase pays
//! for the write-back of an earlier one's dirty pages.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::engine::{EngineConfig, EngineKind, Mode, Runner, Store};
use crate::limits;
use crate::plan::{Plan, fill_key};
use crate::progress::Progress;
use crate::stats::Measurement;
use crate::system::{DirSize, dir_size, rss_bytes, sync_fs};
use crate::workload;

/// The raw limits of the run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// L1: buffered append, fsync at the end.
    pub l1: Measurement,
    /// The final fsync of L1.
    pub l1_fsync: Duration,
    /// L2: append + fdatasync per operation (the rounds absorbed).
    pub l2: Measurement,
    /// L3: random pread, one thread.
    pub l3: Measurement,
    /// L3x2: random pread, two threads.
    pub l3x2: Measurement,
    /// L4: sequential read of the L1 file.
    pub l4: Measurement,
}

/// Everything measured for one engine.
#[derive(Debug, Clone)]
pub struct EngineRun {
    /// The engine.
    pub engine: EngineKind,
    /// Resident memory before opening its store (memory stage).
    pub rss_before: u64,
    /// Resident memory after the fill and its sync (memory stage).
    pub rss_after: u64,
    /// The fill (round 0).
    pub fill: Measurement,
    /// Random gets per task count.
    pub gets: Vec<(usize, Measurement)>,
    /// Non-durable puts per task count.
    pub puts: Vec<(usize, Measurement)>,
    /// Mixed phase: (gets, puts).
    pub mixed: (Measurement, Measurement),
    /// Open to the first successful get, after a close.
    pub reopen: Duration,
    /// The overwrite rounds.
    pub overwrites: Vec<Measurement>,
    /// The directory after the overwrites, closed.
    pub space: DirSize,
    /// caskade only: compactions its scheduler started during the phases
    /// before the reopen (fill to mixed).
    pub scheduled_compactions: Option<u64>,
    /// caskade only: the directory after `compact()` and close, and what
    /// the compaction reported.
    pub compacted: Option<(DirSize, String)>,
    /// Durable puts per task count (filled by the durable stage).
    pub durable: Vec<(usize, Measurement)>,
}

/// Phases of a run (for the progress bar).
pub fn phase_count(plan: &Plan) -> u64 {
    let per_engine = 1 + plan.get_tasks.len() + plan.put_tasks.len() + 2 + plan.overwrite_rounds as usize + 1;
    let per_engine = per_engine + 1; // the memory stage
    let caskade = usize::from(plan.engines.contains(&EngineKind::Caskade));
    let durable = plan.rounds as usize * (1 + plan.durable_tasks.len() * plan.engines.len());
    (4 + per_engine * plan.engines.len() + caskade + durable) as u64
}

/// Runs everything under `root`: returns the limits and one run per engine
/// (in `plan.engines` order).
///
/// # Errors
/// The first failure, with its phase named.
pub fn run(plan: &Plan, root: &Path, progress: &Progress) -> Result<(Limits, Vec<EngineRun>)> {
    let runner = Runner::new(plan.workers)?;
    let raw = root.join("raw");
    std::fs::create_dir_all(&raw).with_context(|| format!("creating {}", raw.display()))?;
    let records = raw.join("records");
    sync_fs(root)?;
    progress.phase("L1: raw buffered append, fsync at the end");
    let (l1, l1_fsync) = limits::append(plan, &records).context("L1")?;
    progress.phase("L4: raw sequential read of the L1 file");
    let l4 = limits::sequential_read(plan, &records).context("L4")?;
    progress.phase("L3: raw random pread, 1 thread");
    let l3 = limits::random_read(plan, &records, 1).context("L3")?;
    progress.phase("L3x2: raw random pread, 2 threads");
    let l3x2 = limits::random_read(plan, &records, 2).context("L3x2")?;

    let memory = memory_stage(&runner, plan, root, progress).context("memory")?;
    let mut runs = Vec::new();
    for (&engine, (rss_before, rss_after)) in plan.engines.iter().zip(memory) {
        let dir = root.join(engine.name());
        sync_fs(root)?;
        let mut run =
            engine_stage(&runner, plan, engine, &dir, progress).with_context(|| engine.name().to_owned())?;
        (run.rss_before, run.rss_after) = (rss_before, rss_after);
        runs.push(run);
    }
    let l2 = durable_stage(&runner, plan, root, &mut runs, progress)?;
    Ok((
        Limits {
            l1,
            l1_fsync,
            l2,
            l3,
            l3x2,
            l4,
        },
        runs,
    ))
}

/// Stage 2: (RSS before, RSS after) the open and fill of each engine.
fn memory_stage(runner: &Runner, plan: &Plan, root: &Path, progress: &Progress) -> Result<Vec<(u64, u64)>> {
    let cfg = EngineConfig {
        cache_bytes: plan.cache_bytes,
        caskade_scheduler: true,
    };
    let mut open = Vec::new();
    let mut out = Vec::new();
    for &engine in &plan.engines {
        let name = engine.name();
        progress.phase(&format!("{name}: memory: open + fill {} keys", plan.keys));
        let dir = root.join(format!("{name}-memory"));
        let before = rss_bytes()?;
        let store = runner.block_on(Store::open(engine, &dir, Mode::Buffered, cfg))?;
        batched(runner, &store, plan, 0, progress).with_context(|| format!("{name}: fill"))?;
        out.push((before, rss_bytes()?));
        open.push((store, dir));
    }
    for (store, dir) in open {
        runner.block_on(store.close())?;
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(out)
}

/// Stage 3 for one engine (its memory figures are filled in by the caller).
fn engine_stage(
    runner: &Runner,
    plan: &Plan,
    engine: EngineKind,
    dir: &Path,
    progress: &Progress,
) -> Result<EngineRun> {
    let name = engine.name();
    let cfg = EngineConfig {
        cache_bytes: plan.cache_bytes,
        caskade_scheduler: true,
    };
    progress.phase(&format!(
        "{name}: open, fill {} keys in batches of {}",
        plan.keys, plan.batch
    ));
    let store = runner.block_on(Store::open(engine, dir, Mode::Buffered, cfg))?;
    let fill = batched(runner, &store, plan, 0, progress).context("fill")?;
    let mut gets = Vec::new();
    for &t in &plan.get_tasks {
        progress.phase(&format!("{name}: random get, {t} task(s)"));
        gets.push((t, workload::gets(runner, &store, plan, t).context("get")?));
    }
    let mut puts = Vec::new();
    for &t in &plan.put_tasks {
        progress.phase(&format!("{name}: non-durable put, {t} task(s)"));
        puts.push((t, workload::puts(runner, &store, plan, t).context("put")?));
    }
    progress.phase(&format!(
        "{name}: mixed, {} readers + 1 writer",
        plan.mixed_readers
    ));
    let mixed = workload::mixed(runner, &store, plan).context("mixed")?;
    let scheduled_compactions = match &store {
        Store::Caskade(c) => Some(c.scheduled_compactions()),
        _ => None,
    };
    runner.block_on(store.close()).context("close")?;

    progress.phase(&format!("{name}: reopen to the first get"));
    let cfg = EngineConfig {
        caskade_scheduler: false,
        ..cfg
    };
    let (store, reopen) = workload::reopen(runner, engine, dir, cfg, plan).context("reopen")?;
    let mut overwrites = Vec::new();
    for round in 1..=plan.overwrite_rounds {
        progress.phase(&format!(
            "{name}: overwrite round {round}/{} of every key",
            plan.overwrite_rounds
        ));
        overwrites.push(batched(runner, &store, plan, round, progress).context("overwrite")?);
    }
    runner.block_on(store.close()).context("close")?;
    progress.phase(&format!("{name}: space"));
    let space = dir_size(dir)?;
    let compacted = match engine {
        EngineKind::Caskade => {
            progress.phase("caskade: compact(), close, space");
            Some(compact_caskade(runner, dir, cfg)?)
        }
        _ => None,
    };
    Ok(EngineRun {
        engine,
        rss_before: 0,
        rss_after: 0,
        fill,
        gets,
        puts,
        mixed,
        reopen,
        overwrites,
        space,
        scheduled_compactions,
        compacted,
        durable: Vec::new(),
    })
}

/// A fill (`round` 0) or an overwrite round, with a bar of keys.
fn batched(
    runner: &Runner,
    store: &Store,
    plan: &Plan,
    round: u64,
    progress: &Progress,
) -> Result<Measurement> {
    let bar = progress.keys(plan.keys);
    let m = workload::write_all_keys(runner, store, plan, round, &bar);
    bar.finish_and_clear();
    m
}

/// Reopens caskade's store, compacts it once, closes it: the size then and
/// what the compaction reported.
fn compact_caskade(runner: &Runner, dir: &Path, cfg: EngineConfig) -> Result<(DirSize, String)> {
    let store = runner.block_on(Store::open(EngineKind::Caskade, dir, Mode::Buffered, cfg))?;
    let Store::Caskade(c) = &store else {
        bail!("not a caskade store")
    };
    let report = runner.block_on(c.compact())?;
    let summary = match &report.skipped {
        Some(why) => format!("compaction skipped: {why:?}"),
        None => format!(
            "compacted {} files into {} in {:.2} s, {} records copied",
            report.files_compacted,
            report.files_written,
            report.duration.as_secs_f64(),
            report.records_copied
        ),
    };
    runner.block_on(store.close())?;
    let at_close = dir_size(dir)?;
    let (settled, waited) = settle(dir)?;
    let summary = format!(
        "{summary}; at close {:.1} MiB in {} files, settled after {:.2} s",
        at_close.allocated as f64 / 1048576.0,
        at_close.files,
        waited.as_secs_f64()
    );
    Ok((settled, summary))
}

/// Waits until the size of `dir` has not changed for 500 ms (at most 10 s):
/// caskade deletes replaced files when their last handle drops, on a
/// thread of their own, which may still run when `close` returns.
fn settle(dir: &Path) -> Result<(DirSize, Duration)> {
    let start = std::time::Instant::now();
    let mut last = dir_size(dir)?;
    let mut stable_since = start;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = dir_size(dir)?;
        if now != last {
            (last, stable_since) = (now, std::time::Instant::now());
        } else if stable_since.elapsed() >= Duration::from_millis(500)
            || start.elapsed() >= Duration::from_secs(10)
        {
            return Ok((last, stable_since - start));
        }
    }
}

/// Stage 4: the durable phases of every engine, interleaved with L2.
fn durable_stage(
    runner: &Runner,
    plan: &Plan,
    root: &Path,
    runs: &mut [EngineRun],
    progress: &Progress,
) -> Result<Measurement> {
    let cfg = EngineConfig {
        cache_bytes: plan.cache_bytes,
        caskade_scheduler: true,
    };
    let mut stores = Vec::new();
    for run in runs.iter() {
        let dir = root.join(format!("{}-durable", run.engine.name()));
        stores.push(runner.block_on(Store::open(run.engine, &dir, Mode::Durable, cfg))?);
    }
    let l2_path = root.join("raw").join("l2");
    let mut l2: Option<Measurement> = None;
    for round in 0..plan.rounds {
        let (_, ops) = plan.durable_round(round);
        sync_fs(root)?;
        progress.phase(&format!(
            "round {}/{}: L2 raw append + fdatasync, {ops} ops",
            round + 1,
            plan.rounds
        ));
        let slice = limits::append_sync(plan, &l2_path, ops, plan.durable_slice()).context("L2")?;
        match &mut l2 {
            Some(m) => m.absorb(slice),
            None => l2 = Some(slice),
        }
        for (index, &tasks) in plan.durable_tasks.iter().enumerate() {
            for k in 0..stores.len() {
                let e = (k + round as usize) % stores.len();
                let name = runs[e].engine.name();
                progress.phase(&format!(
                    "round {}/{}: {name}: durable put, {tasks} task(s)",
                    round + 1,
                    plan.rounds
                ));
                let slice = workload::durable_puts(runner, &stores[e], plan, index, round)
                    .with_context(|| format!("{name}: durable put"))?;
                let run = &mut runs[e];
                match run.durable.iter_mut().find(|(t, _)| *t == tasks) {
                    Some((_, m)) => m.absorb(slice),
                    None => run.durable.push((tasks, slice)),
                }
            }
        }
    }
    // The durable puts must be readable: check the first key of the last phase.
    for (store, run) in stores.into_iter().zip(runs.iter()) {
        let mut key = vec![0u8; plan.key_size];
        fill_key(plan.durable_base(plan.durable_tasks.len() - 1), &mut key);
        let got = runner.block_on(store.get(&key))?;
        if got != Some(plan.value_size) {
            bail!("{}: a durable put reads back as {got:?} bytes", run.engine.name());
        }
        runner
            .block_on(store.close())
            .with_context(|| format!("{}: close", run.engine.name()))?;
    }
    l2.context("no durable round ran")
}
