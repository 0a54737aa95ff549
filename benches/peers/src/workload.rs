//! The workloads, one code for every engine: bulk fill and overwrite
//! rounds (atomic batches), random gets, puts (overwrites of random keys,
//! or new keys for the durable phases), the mixed phase, and the timed
//! reopen. Each runs its tasks through [`Runner::run`].
//!
//! Timing: each task reads the clock once per operation and records the
//! time since its previous reading, so a sample covers the call plus a few
//! nanoseconds of key generation and recording. ops/s = operations / wall
//! time from the phase's start to the last task's last operation.
//!
//! caskade's `get` of a page-cached record never returns `Pending`, so a
//! tokio task doing only gets would never give its worker to another task:
//! when a phase runs several caskade tasks, readers `yield_now` every
//! [`YIELD_EVERY`] gets (the clock restarts after the yield; as in
//! `caskade bench`). The peers' tasks are OS threads, preempted by the
//! kernel, and never yield.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use indicatif::ProgressBar;

use crate::engine::{EngineConfig, EngineKind, Mode, Runner, Store, TaskOut};
use crate::plan::{Plan, Records, SplitMix, fill_key, fill_value};
use crate::stats::{Measurement, Recorder};

/// Gets between two voluntary yields of a caskade reader task.
pub const YIELD_EVERY: u32 = 32;

/// The sizes a task needs (a `Copy` extract of the plan).
#[derive(Debug, Clone, Copy)]
struct Shape {
    keys: u64,
    key_size: usize,
    value_size: usize,
}

impl Shape {
    fn of(plan: &Plan) -> Self {
        Shape {
            keys: plan.keys,
            key_size: plan.key_size,
            value_size: plan.value_size,
        }
    }
}

/// When a task stops: at the deadline or after `max` operations, whichever
/// comes first (at least one operation is always done).
#[derive(Debug, Clone, Copy)]
struct Stop {
    deadline: Instant,
    max: u64,
}

impl Stop {
    /// At `deadline`.
    fn at(deadline: Instant) -> Self {
        Stop {
            deadline,
            max: u64::MAX,
        }
    }
}

/// Which keys a writer uses.
#[derive(Debug, Clone)]
enum Pick {
    /// Uniformly random among the loaded keys (overwrites).
    Random(SplitMix),
    /// `first`, `first + 1`, ... (new keys).
    Sequential(u64),
}

/// The seed of the value written to key `key` in overwrite round `round`
/// (round 0 is the fill; the raw limits write the round-0 values too).
pub fn value_seed(key: u64, round: u64) -> u64 {
    key ^ (round << 48)
}

/// Writes every key `0..plan.keys` once in atomic batches of `plan.batch`
/// from one task (round 0 = the fill, later rounds overwrite), then syncs;
/// the sync is inside the wall time. Ops are keys; one latency sample per
/// batch.
///
/// # Errors
/// Any engine error.
pub fn write_all_keys(
    runner: &Runner,
    store: &Store,
    plan: &Plan,
    round: u64,
    progress: &ProgressBar,
) -> Result<Measurement> {
    let (keys, batch, shape) = (plan.keys, plan.batch, Shape::of(plan));
    let start = Instant::now();
    let out = runner.run(store, 1, |store, _| {
        let progress = progress.clone();
        async move {
            let mut records = Records::new(shape.key_size, shape.value_size, batch);
            let mut latency = Recorder::new();
            let mut last = Instant::now();
            let mut next = 0;
            while next < keys {
                let end = (next + batch as u64).min(keys);
                records.clear();
                for i in next..end {
                    records.push(i, value_seed(i, round));
                }
                store.write_batch(&records).await?;
                latency.lap(&mut last);
                progress.inc(end - next);
                next = end;
            }
            Ok(TaskOut {
                latency,
                end: last,
                writer: true,
            })
        }
    })?;
    runner.block_on(store.sync())?;
    let mut m = merge(out, start, true);
    m.ops = keys;
    m.elapsed = start.elapsed();
    Ok(m)
}

/// Random gets of loaded keys from `tasks` tasks for `plan.duration`.
///
/// # Errors
/// Any engine error, or a missing or wrong-sized value.
pub fn gets(runner: &Runner, store: &Store, plan: &Plan, tasks: usize) -> Result<Measurement> {
    let shape = Shape::of(plan);
    let yields = store.kind() == EngineKind::Caskade && tasks > 1;
    let start = Instant::now();
    let deadline = start + plan.duration;
    let out = runner.run(store, tasks, |store, t| {
        get_loop(store, shape, 0x2000 + t as u64, deadline, yields)
    })?;
    Ok(merge(out, start, false))
}

/// Overwrites of random loaded keys from `tasks` tasks for `plan.duration`
/// (durable or not as the store was opened).
///
/// # Errors
/// Any engine error.
pub fn puts(runner: &Runner, store: &Store, plan: &Plan, tasks: usize) -> Result<Measurement> {
    let shape = Shape::of(plan);
    let start = Instant::now();
    let stop = Stop::at(start + plan.duration);
    let out = runner.run(store, tasks, |store, t| {
        put_loop(store, shape, Pick::Random(SplitMix::new(0x3000 + t as u64)), stop)
    })?;
    Ok(merge(out, start, true))
}

/// Round `round` of the durable phase `plan.durable_tasks[index]`: each
/// task puts its next new keys (`Plan::durable_base`, `Plan::durable_round`)
/// on a store opened in durable mode, and stops after its share of the
/// round or after `Plan::durable_slice`, whichever comes first (so slow
/// engines cannot make the run last for many minutes).
///
/// # Errors
/// Any engine error.
pub fn durable_puts(
    runner: &Runner,
    store: &Store,
    plan: &Plan,
    index: usize,
    round: u64,
) -> Result<Measurement> {
    let shape = Shape::of(plan);
    let tasks = plan.durable_tasks[index];
    let base = plan.durable_base(index);
    let (first, count) = plan.durable_round(round);
    let per_task = plan.durable_ops;
    let start = Instant::now();
    let stop = Stop {
        deadline: start + plan.durable_slice(),
        max: count,
    };
    let out = runner.run(store, tasks, |store, t| {
        let pick = Pick::Sequential(base + t as u64 * per_task + first);
        put_loop(store, shape, pick, stop)
    })?;
    Ok(merge(out, start, true))
}

/// `readers` tasks of random gets and one task of random overwrites on the
/// same store for `plan.duration`: returns (gets, puts).
///
/// # Errors
/// Any engine error.
pub fn mixed(runner: &Runner, store: &Store, plan: &Plan) -> Result<(Measurement, Measurement)> {
    let shape = Shape::of(plan);
    let yields = store.kind() == EngineKind::Caskade;
    let start = Instant::now();
    let deadline = start + plan.duration;
    let out = runner.run(store, plan.mixed_readers + 1, |store, t| {
        let task: std::pin::Pin<Box<dyn Future<Output = Result<TaskOut>> + Send>> = if t == 0 {
            Box::pin(put_loop(
                store,
                shape,
                Pick::Random(SplitMix::new(0x4000)),
                Stop::at(deadline),
            ))
        } else {
            Box::pin(get_loop(store, shape, 0x5000 + t as u64, deadline, yields))
        };
        task
    })?;
    let (writers, readers): (Vec<_>, Vec<_>) = out.into_iter().partition(|o| o.writer);
    Ok((merge(readers, start, false), merge(writers, start, true)))
}

/// Opens `kind`'s closed store in `dir` and reads key 0: returns the store
/// and the time from the start of the open to the first successful get.
///
/// # Errors
/// Any engine error, or key 0 missing.
pub fn reopen(
    runner: &Runner,
    kind: EngineKind,
    dir: &Path,
    cfg: EngineConfig,
    plan: &Plan,
) -> Result<(Store, Duration)> {
    let mut key = vec![0u8; plan.key_size];
    fill_key(0, &mut key);
    let start = Instant::now();
    let (store, got) = runner.block_on(async {
        let store = Store::open(kind, dir, Mode::Buffered, cfg).await?;
        let got = store.get(&key).await?;
        anyhow::Ok((store, got))
    })?;
    let took = start.elapsed();
    if got != Some(plan.value_size) {
        bail!(
            "{}: after reopening, key #0 has {got:?} bytes, not {}",
            kind.name(),
            plan.value_size
        );
    }
    Ok((store, took))
}

/// Merges the tasks' latencies; elapsed runs from `start` to the last end.
/// Counts the operations of writer tasks if `writers`, else of readers.
fn merge(out: Vec<TaskOut>, start: Instant, writers: bool) -> Measurement {
    let mut latency = Recorder::new();
    let mut end = start;
    for o in out.iter().filter(|o| o.writer == writers) {
        latency.merge(&o.latency);
        end = end.max(o.end);
    }
    Measurement::new(latency.count(), end - start, latency)
}

/// One reader task: random gets until `deadline`, checking every value's
/// length; yields every [`YIELD_EVERY`] gets if `yields`.
async fn get_loop(store: Store, shape: Shape, seed: u64, deadline: Instant, yields: bool) -> Result<TaskOut> {
    let mut rng = SplitMix::new(seed);
    let mut key = vec![0u8; shape.key_size];
    let mut latency = Recorder::new();
    let mut n: u32 = 0;
    let mut last = Instant::now();
    loop {
        let i = rng.below(shape.keys);
        fill_key(i, &mut key);
        let got = store.get(&key).await?;
        if got != Some(shape.value_size) {
            bail!(
                "{}: get of key #{i} returned {got:?} bytes, not {}",
                store.kind().name(),
                shape.value_size
            );
        }
        let now = latency.lap(&mut last);
        if now >= deadline {
            return Ok(TaskOut {
                latency,
                end: now,
                writer: false,
            });
        }
        n = n.wrapping_add(1);
        if yields && n.is_multiple_of(YIELD_EVERY) {
            tokio::task::yield_now().await;
            last = Instant::now();
        }
    }
}

/// One writer task: puts under keys chosen by `pick` until `stop`, each
/// with a fresh pseudo-random value.
async fn put_loop(store: Store, shape: Shape, mut pick: Pick, stop: Stop) -> Result<TaskOut> {
    let mut key = vec![0u8; shape.key_size];
    let mut value = vec![0u8; shape.value_size];
    let mut latency = Recorder::new();
    let mut last = Instant::now();
    let mut done = 0u64;
    loop {
        let (i, seed) = match &mut pick {
            Pick::Random(rng) => (rng.below(shape.keys), rng.next_u64()),
            Pick::Sequential(first) => (*first + done, *first + done),
        };
        fill_key(i, &mut key);
        fill_value(seed, &mut value);
        store.put(&key, &value).await?;
        let now = latency.lap(&mut last);
        done += 1;
        if done >= stop.max || now >= stop.deadline {
            return Ok(TaskOut {
                latency,
                end: now,
                writer: true,
            });
        }
    }
}
