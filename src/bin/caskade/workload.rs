//! The engine workloads: fill, random gets, puts (non-durable and durable)
//! and a mixed phase, each from N tokio tasks, every operation timed.
//!
//! Timing: each task reads the clock once per operation and records the time
//! since its previous reading, so a sample covers the awaited call plus the
//! few nanoseconds of key generation and recording.
//!
//! A `get` whose record is in the page cache completes without ever
//! returning `Pending` (and consumes no tokio coop budget), so a task doing
//! only gets would never give its worker to another task. When a phase runs
//! several tasks, readers therefore `yield_now` every [`YIELD_EVERY`]
//! operations (the clock restarts after the yield, so the yield is not
//! counted as latency): a real task would hit an await point on its own I/O
//! just as often. A lone reader does not yield: each yield makes tokio wake
//! the idle second worker (a futex wake), which cost ~10% of the 1-task get
//! rate in profiles and is runtime overhead, not engine overhead.

use std::sync::Arc;
use std::time::Instant;

use caskade::Partition;
use indicatif::ProgressBar;
use tokio::task::JoinHandle;

use crate::plan::{Plan, SplitMix, fill_key};
use crate::stats::{Limit, Measurement, Recorder};

/// The error type of the benchmark: any failure ends the run.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Gets between two voluntary yields of a reader task.
pub const YIELD_EVERY: u32 = 32;

/// What a task returns: its latencies and when it finished.
type TaskResult = Result<(Recorder, Instant), BoxError>;

/// When a task stops.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// At this instant.
    At(Instant),
    /// After this many operations.
    After(u64),
}

/// Which keys a writer uses.
#[derive(Debug, Clone)]
enum Pick {
    /// Uniformly random among `0..n` (overwrites of loaded keys).
    Random(SplitMix, u64),
    /// `first`, `first + 1`, ... (new keys).
    Sequential(u64),
}

/// Loads `plan.keys` keys with batches of `plan.batch`, then `sync`s.
/// One latency sample per batch; ops are keys. Advances `bar` by the keys
/// of each batch.
///
/// # Errors
/// Any engine error.
pub async fn fill(plan: &Plan, p: &Partition, bar: ProgressBar) -> Result<Measurement, BoxError> {
    let mut lat = Recorder::new();
    let start = Instant::now();
    write_all(plan, p, &plan.value(), &mut lat, &bar).await?;
    let before_sync = Instant::now();
    p.sync().await?;
    let end = Instant::now();
    Ok(Measurement {
        id: "fill".into(),
        name: format!("fill, batches of {}, OsBuffered", plan.batch),
        tasks: 1,
        ops: plan.keys,
        elapsed: end - start,
        latency: lat,
        unit: format!("batch of {}", plan.batch),
        limit: Some(Limit::L1),
        note: format!("final sync {}", crate::report::fmt_duration(end - before_sync)),
    })
}

/// Writes every key `0..plan.keys` once with `value`, in atomic batches of
/// `plan.batch`, recording one latency sample per batch into `lat` and
/// advancing `bar` by the keys of each.
///
/// # Errors
/// Any engine error.
pub async fn write_all(
    plan: &Plan,
    p: &Partition,
    value: &[u8],
    lat: &mut Recorder,
    bar: &ProgressBar,
) -> Result<(), BoxError> {
    let mut key = plan.key_buf();
    let mut last = Instant::now();
    let mut next = 0;
    while next < plan.keys {
        let end = (next + plan.batch as u64).min(plan.keys);
        let mut b = p.batch();
        for i in next..end {
            fill_key(i, &mut key);
            b.put(&key, value);
        }
        b.commit().await?;
        lat.lap(&mut last);
        bar.inc(end - next);
        next = end;
    }
    Ok(())
}

/// Random gets of loaded keys from `tasks` tasks for `plan.duration`.
///
/// # Errors
/// Any engine error, or a missing or wrong-sized value.
pub async fn gets(plan: &Plan, p: &Partition, tasks: usize) -> Result<Measurement, BoxError> {
    read_phase(plan, p, tasks, false).await
}

/// The same random gets from one task, each read on tokio's blocking pool
/// (`spawn_blocking` of a snapshot read): what `get` would cost if it never
/// read on the calling task — the alternative ARCHITECTURE.md weighs.
///
/// # Errors
/// As [`gets`].
pub async fn offloaded_gets(plan: &Plan, p: &Partition) -> Result<Measurement, BoxError> {
    read_phase(plan, p, 1, true).await
}

async fn read_phase(
    plan: &Plan,
    p: &Partition,
    tasks: usize,
    offload: bool,
) -> Result<Measurement, BoxError> {
    let start = Instant::now();
    let deadline = start + plan.duration;
    let handles = (0..tasks)
        .map(|t| {
            let seed = 0x2000 + t as u64;
            tokio::spawn(get_loop(
                p.clone(),
                plan.clone(),
                seed,
                deadline,
                tasks > 1,
                offload,
            ))
        })
        .collect();
    let (lat, end) = join(handles, start).await?;
    let (id, name) = if offload {
        (
            "get_offloaded_t1".to_owned(),
            "get via spawn_blocking, 1 task".to_owned(),
        )
    } else {
        (format!("get_t{tasks}"), format!("get, random, {tasks} task(s)"))
    };
    Ok(Measurement {
        id,
        name,
        tasks,
        ops: lat.count(),
        elapsed: end - start,
        latency: lat,
        unit: "op".into(),
        limit: Some(if tasks == 1 { Limit::L3 } else { Limit::L3x2 }),
        note: String::new(),
    })
}

/// Overwrites of random loaded keys from `tasks` tasks for `plan.duration`,
/// on a partition of a database of `plan.durability`.
///
/// # Errors
/// Any engine error.
pub async fn puts(plan: &Plan, p: &Partition, tasks: usize) -> Result<Measurement, BoxError> {
    let start = Instant::now();
    let stop = Stop::At(start + plan.duration);
    let value: Arc<[u8]> = plan.value().into();
    let handles = (0..tasks)
        .map(|t| {
            let pick = Pick::Random(SplitMix::new(0x3000 + t as u64), plan.keys);
            tokio::spawn(put_loop(
                p.clone(),
                plan.key_size,
                Arc::clone(&value),
                pick,
                stop,
                None,
            ))
        })
        .collect();
    let (lat, end) = join(handles, start).await?;
    Ok(Measurement {
        id: format!("put_t{tasks}"),
        name: format!("put, {}, {tasks} task(s)", plan.durability.show()),
        tasks,
        ops: lat.count(),
        elapsed: end - start,
        latency: lat,
        unit: "op".into(),
        limit: Some(Limit::L1),
        note: "overwrites".into(),
    })
}

/// Round `round` of the durable puts (see [`Plan::durable_round`]): each of
/// `tasks` tasks puts its next new keys on `p`, a fresh partition of a
/// `Durability::Always` database (group commit). Every put advances `bar`.
///
/// # Errors
/// Any engine error.
pub async fn durable_puts(
    plan: &Plan,
    p: &Partition,
    tasks: usize,
    round: u64,
    bar: &ProgressBar,
) -> Result<Measurement, BoxError> {
    let (first, count) = plan.durable_round(round);
    let start = Instant::now();
    let value: Arc<[u8]> = plan.value().into();
    let handles = (0..tasks)
        .map(|t| {
            let pick = Pick::Sequential(t as u64 * plan.durable_ops + first);
            let stop = Stop::After(count);
            let bar = Some(bar.clone());
            tokio::spawn(put_loop(
                p.clone(),
                plan.key_size,
                Arc::clone(&value),
                pick,
                stop,
                bar,
            ))
        })
        .collect();
    let (lat, end) = join(handles, start).await?;
    Ok(Measurement {
        id: format!("durable_put_t{tasks}"),
        name: format!("put, Always (durable), {tasks} task(s)"),
        tasks,
        ops: lat.count(),
        elapsed: end - start,
        latency: lat,
        unit: "op".into(),
        limit: Some(Limit::L2),
        note: format!("fresh partition `{}`", p.name()),
    })
}

/// `readers` tasks of random gets and one task of random overwrites
/// (`plan.durability`) on the same partition for `plan.duration`. Returns the
/// readers' and the writer's measurements.
///
/// # Errors
/// Any engine error.
pub async fn mixed(
    plan: &Plan,
    p: &Partition,
    readers: usize,
) -> Result<(Measurement, Measurement), BoxError> {
    let start = Instant::now();
    let deadline = start + plan.duration;
    let pick = Pick::Random(SplitMix::new(0x4000), plan.keys);
    let writer = tokio::spawn(put_loop(
        p.clone(),
        plan.key_size,
        plan.value().into(),
        pick,
        Stop::At(deadline),
        None,
    ));
    let handles = (0..readers)
        .map(|t| {
            tokio::spawn(get_loop(
                p.clone(),
                plan.clone(),
                0x5000 + t as u64,
                deadline,
                true,
                false,
            ))
        })
        .collect();
    let (read_lat, read_end) = join(handles, start).await?;
    let (write_lat, write_end) = join(vec![writer], start).await?;
    let get = Measurement {
        id: format!("mixed_get_r{readers}"),
        name: format!("mixed: get, {readers} reader task(s)"),
        tasks: readers,
        ops: read_lat.count(),
        elapsed: read_end - start,
        latency: read_lat,
        unit: "op".into(),
        limit: Some(Limit::L3x2),
        note: "while 1 task puts".into(),
    };
    let put = Measurement {
        id: "mixed_put".into(),
        name: format!("mixed: put, {}, 1 writer task", plan.durability.show()),
        tasks: 1,
        ops: write_lat.count(),
        elapsed: write_end - start,
        latency: write_lat,
        unit: "op".into(),
        limit: Some(Limit::L1),
        note: format!("while {readers} task(s) get"),
    };
    Ok((get, put))
}

/// Waits for every task; merges their latencies and returns the last finish
/// time (at least `start`).
async fn join(handles: Vec<JoinHandle<TaskResult>>, start: Instant) -> TaskResult {
    let mut lat = Recorder::new();
    let mut end = start;
    for h in handles {
        let (rec, finished) = h.await??;
        lat.merge(&rec);
        end = end.max(finished);
    }
    Ok((lat, end))
}

/// One reader task: random gets until `deadline`, checking every value;
/// yields every [`YIELD_EVERY`] gets if `yields`; each read on the blocking
/// pool (through a snapshot) if `offload`.
async fn get_loop(
    p: Partition,
    plan: Plan,
    seed: u64,
    deadline: Instant,
    yields: bool,
    offload: bool,
) -> TaskResult {
    let snapshot = match offload {
        true => Some(p.snapshot().await?),
        false => None,
    };
    let mut rng = SplitMix::new(seed);
    let mut key = plan.key_buf();
    let mut lat = Recorder::new();
    let mut n: u32 = 0;
    let mut last = Instant::now();
    loop {
        let i = rng.below(plan.keys);
        fill_key(i, &mut key);
        let value = match &snapshot {
            Some(snap) => {
                let (snap, k) = (snap.clone(), key.clone());
                tokio::task::spawn_blocking(move || snap.get(&k)).await??
            }
            None => p.get(&key).await?,
        };
        match value {
            Some(v) if v.len() == plan.value_size => {}
            other => {
                let got = other.map(|v| v.len());
                return Err(
                    format!("get of key #{i} returned {got:?} bytes, not {}", plan.value_size).into(),
                );
            }
        }
        let now = lat.lap(&mut last);
        if now >= deadline {
            return Ok((lat, now));
        }
        n = n.wrapping_add(1);
        if yields && n.is_multiple_of(YIELD_EVERY) {
            tokio::task::yield_now().await;
            last = Instant::now();
        }
    }
}

/// One writer task: puts of `value` under keys chosen by `pick` until
/// `stop`, advancing `bar` (if any) by each.
async fn put_loop(
    p: Partition,
    key_size: usize,
    value: Arc<[u8]>,
    mut pick: Pick,
    stop: Stop,
    bar: Option<ProgressBar>,
) -> TaskResult {
    let mut key = vec![0u8; key_size];
    let mut lat = Recorder::new();
    let mut last = Instant::now();
    let mut done = 0u64;
    loop {
        if let Stop::After(n) = stop
            && done >= n
        {
            return Ok((lat, last));
        }
        let i = match &mut pick {
            Pick::Random(rng, n) => rng.below(*n),
            Pick::Sequential(first) => *first + done,
        };
        fill_key(i, &mut key);
        p.put(&key, &value).await?;
        let now = lat.lap(&mut last);
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        done += 1;
        if let Stop::At(deadline) = stop
            && now >= deadline
        {
            return Ok((lat, now));
        }
    }
}
