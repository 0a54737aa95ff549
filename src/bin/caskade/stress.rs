//! `caskade stress`: random operations on a real database directory, each
//! reported to the parent process on stdout — the child of the kill -9
//! harness (`tests/kill9.rs`), which kills it with `SIGKILL` at random
//! moments and checks every acknowledged write.
//!
//! The child prints `open`, opens the database at `--dir` (recovery) and
//! every partition in it, prints `ready <recovery_ms>`, creates the stable
//! partitions `s0 .. s<N-1>` that are missing, then runs:
//!
//! - `--tasks` writer tasks on the stable partitions: puts (values of 0 B to
//!   80 KiB, most small), deletes, atomic batches of 2–6 puts and deletes,
//!   and explicit compactions. Task `t` writes only keys `k<t>_<n>`, one
//!   operation at a time, so the order of writes to a key is the order of
//!   their `begin` lines;
//! - one churn task on partitions `c0` and `c1`: create, puts, deletes,
//!   batches, compactions and drop, so they are dropped and recreated.
//!
//! Each operation is announced with `begin <id> ...` before it is issued and
//! confirmed with `ack <id>` after it returned `Ok` (the line protocol is in
//! [`protocol`]). Values encode partition, key, `--seed`, operation id and a
//! checksum, so a torn, stale or misplaced value is recognisable. Small data
//! files (32 KiB), an eager compaction scheduler and fewer open partitions
//! than partitions add rotations, background compactions and evictions.
//!
//! Any error is unexpected — no two tasks touch the same key and partitions
//! are created and dropped only by their own task — and ends the process
//! with a message on stderr and exit status 1. With `--ops N` it stops after
//! N operations, closes the database and prints `done`; without, it runs
//! until killed.

// Shared with the parent (`tests/kill9.rs`), which uses the parser and the
// value decoder that the child itself does not need.
#[allow(dead_code)]
pub mod protocol;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use caskade::{CompactionOptions, CompactionScheduler, Db, Partition, PartitionOptions};
use clap::Args;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::plan::PutDurability;
use crate::workload::BoxError;
use protocol::{BatchOp, Line, Op};

/// The partitions the churn task creates and drops.
pub const CHURN_PARTITIONS: [&str; 2] = ["c0", "c1"];
/// Keys each writer task owns (per stable partition).
const KEYS_PER_TASK: usize = 24;
/// Keys of the churn partitions.
const CHURN_KEYS: usize = 12;
/// Data file size of every partition: rotations every few dozen writes.
const FILE_SIZE: u64 = 32 << 10;

/// Options of `caskade stress`.
#[derive(Debug, Clone, Args)]
pub struct StressArgs {
    /// The database directory (created if missing, recovered if not).
    #[arg(long)]
    pub dir: PathBuf,
    /// Seed of the random operations; also written into every value.
    #[arg(long)]
    pub seed: u64,
    /// Stable partitions (`s0`, `s1`, ...), written by every writer task.
    #[arg(long, default_value_t = 2)]
    pub partitions: usize,
    /// Stop after this many operations, close the database and print
    /// `done` (default: run until killed).
    #[arg(long)]
    pub ops: Option<u64>,
    /// buffered (OsBuffered), interval:<ms> or always (fdatasync per group commit).
    #[arg(long, value_name = "MODE", default_value = "always")]
    pub durability: PutDurability,
    /// Writer tasks on the stable partitions.
    #[arg(long, default_value_t = 4)]
    pub tasks: usize,
}

/// Runs the stress workload on a 2-worker tokio runtime.
///
/// # Errors
/// Invalid options, a failure to open the database, any failed operation,
/// or stdout closed.
pub fn run(args: &StressArgs) -> Result<(), BoxError> {
    if args.partitions == 0 || args.tasks == 0 {
        return Err("--partitions and --tasks must be at least 1".into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(stress(args));
    // Nothing left to wait for after an error: the process exits now.
    rt.shutdown_background();
    result
}

/// The options every partition is created with: small files, and
/// compaction whenever anything is dead.
fn partition_options() -> PartitionOptions {
    let eager = CompactionOptions::default()
        .min_dead_ratio(0.3)
        .min_dead_bytes(0)
        .min_space_saving(0);
    PartitionOptions::default()
        .max_file_size(FILE_SIZE)
        .compaction(eager)
}

/// What every task shares.
struct Ctx {
    db: Db,
    seed: u64,
    next_id: AtomicU64,
    /// Operations left to issue (`u64::MAX`: no limit).
    budget: AtomicU64,
}

impl Ctx {
    /// Takes one operation from the budget; `false` once it is spent.
    fn take(&self) -> bool {
        self.budget
            .fetch_update(Relaxed, Relaxed, |left| match left {
                u64::MAX => Some(u64::MAX),
                0 => None,
                n => Some(n - 1),
            })
            .is_ok()
    }

    /// Announces `op`, issues it on `handle` (the partition it names; none
    /// for create and drop), and acknowledges it once it returned `Ok`.
    /// Returns the handle a create opened.
    async fn execute(&self, op: Op, handle: Option<&Partition>) -> Result<Option<Partition>, BoxError> {
        let id = self.next_id.fetch_add(1, Relaxed);
        emit(&Line::Begin { id, op: op.clone() })?;
        let result = self.issue(id, &op, handle).await;
        let created = result.map_err(|e| format!("operation {id} ({op}) failed: {e}"))?;
        emit(&Line::Ack { id })?;
        Ok(created)
    }

    async fn issue(
        &self,
        id: u64,
        op: &Op,
        handle: Option<&Partition>,
    ) -> Result<Option<Partition>, BoxError> {
        let value = |key: &str, pad| protocol::value(op.part(), key, self.seed, id, pad);
        let handle = || handle.ok_or("no handle for the partition");
        match op {
            Op::Put { key, pad, .. } => handle()?.put(key, value(key, *pad)).await?,
            Op::Delete { key, .. } => drop(handle()?.delete(key).await?),
            Op::Batch { ops, .. } => {
                let mut batch = handle()?.batch();
                for op in ops {
                    match op {
                        BatchOp::Put { key, pad } => batch.put(key, value(key, *pad)),
                        BatchOp::Delete { key } => batch.delete(key),
                    };
                }
                batch.commit().await?;
            }
            Op::Compact { .. } => drop(handle()?.compact().await?),
            Op::Create { part } => {
                return Ok(Some(self.db.create_partition(part, partition_options()).await?));
            }
            Op::Drop { part } => self.db.drop_partition(part).await?,
        }
        Ok(None)
    }
}

/// Writes one protocol line to stdout with one `write` (shorter than
/// `PIPE_BUF`, so atomic on a pipe) and flushes it.
fn emit(line: &Line) -> std::io::Result<()> {
    let text = format!("{line}\n");
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

async fn stress(args: &StressArgs) -> Result<(), BoxError> {
    emit(&Line::Open)?;
    let started = Instant::now();
    let scheduler = CompactionScheduler::default()
        .quiet_period(Duration::ZERO)
        .check_interval(Duration::from_millis(100))
        .jitter(Duration::from_millis(50));
    let db = Db::builder(&args.dir)
        .durability(args.durability.engine())
        .max_open_partitions(args.partitions + 1)
        .compaction_scheduler(scheduler)
        .open()
        .await
        .map_err(|e| format!("open {:?}: {e}", args.dir))?;
    let mut handles = HashMap::new();
    for name in db.list_partitions() {
        let p = db
            .partition(&name)
            .await
            .map_err(|e| format!("open partition {name}: {e}"))?;
        handles.insert(name, p);
    }
    let recovery_ms = started.elapsed().as_millis() as u64;
    emit(&Line::Ready { recovery_ms })?;

    let ctx = Arc::new(Ctx {
        db: db.clone(),
        seed: args.seed,
        next_id: AtomicU64::new(0),
        budget: AtomicU64::new(args.ops.unwrap_or(u64::MAX)),
    });
    let mut stable = Vec::with_capacity(args.partitions);
    for i in 0..args.partitions {
        let part = format!("s{i}");
        let handle = match handles.remove(&part) {
            Some(h) => h,
            None => {
                let created = ctx.execute(Op::Create { part }, None).await?;
                created.ok_or("create returned no handle")?
            }
        };
        stable.push(handle);
    }
    let stable = Arc::new(stable);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..args.tasks {
        let (ctx, stable) = (Arc::clone(&ctx), Arc::clone(&stable));
        let rng = SmallRng::seed_from_u64(args.seed ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9));
        tasks.spawn(writer(ctx, stable, t, rng));
    }
    let churn: HashMap<String, Partition> = CHURN_PARTITIONS
        .iter()
        .filter_map(|&c| handles.remove_entry(c))
        .collect();
    tasks.spawn(churner(
        Arc::clone(&ctx),
        churn,
        SmallRng::seed_from_u64(args.seed),
    ));
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| format!("task failed: {e}"))??;
    }
    drop((ctx, stable));
    db.close().await?;
    emit(&Line::Done)?;
    Ok(())
}

/// A value's padding: mostly under 200 bytes, sometimes a few KiB, rarely
/// up to 80 KiB (records spanning pages, the likeliest to be torn).
fn pad(rng: &mut SmallRng) -> usize {
    match rng.random_range(0..100) {
        0..90 => rng.random_range(0..200),
        90..98 => rng.random_range(200..4000),
        _ => rng.random_range(16_000..80_000),
    }
}

/// A batch of 2–6 puts and deletes of distinct keys drawn by `key`.
fn batch(rng: &mut SmallRng, mut key: impl FnMut(&mut SmallRng) -> String) -> Vec<BatchOp> {
    let n = rng.random_range(2..=6);
    let mut ops: Vec<BatchOp> = Vec::with_capacity(n);
    while ops.len() < n {
        let key = key(rng);
        if ops.iter().any(|op| op.key() == key) {
            continue;
        }
        ops.push(match rng.random_bool(0.7) {
            true => BatchOp::Put { key, pad: pad(rng) },
            false => BatchOp::Delete { key },
        });
    }
    ops
}

/// Writer task `t`: random operations on its own keys of the stable partitions.
async fn writer(
    ctx: Arc<Ctx>,
    stable: Arc<Vec<Partition>>,
    t: usize,
    mut rng: SmallRng,
) -> Result<(), BoxError> {
    let key = move |rng: &mut SmallRng| format!("k{t}_{}", rng.random_range(0..KEYS_PER_TASK));
    while ctx.take() {
        let p = &stable[rng.random_range(0..stable.len())];
        let part = p.name().to_owned();
        let op = match rng.random_range(0..100) {
            0..50 => Op::Put {
                part,
                key: key(&mut rng),
                pad: pad(&mut rng),
            },
            50..65 => Op::Delete {
                part,
                key: key(&mut rng),
            },
            65..96 => Op::Batch {
                part,
                ops: batch(&mut rng, key),
            },
            _ => Op::Compact { part },
        };
        ctx.execute(op, Some(p)).await?;
    }
    Ok(())
}

/// The churn task: creates, fills, compacts and drops the churn partitions.
async fn churner(
    ctx: Arc<Ctx>,
    mut open: HashMap<String, Partition>,
    mut rng: SmallRng,
) -> Result<(), BoxError> {
    let key = |rng: &mut SmallRng| format!("kc_{}", rng.random_range(0..CHURN_KEYS));
    while ctx.take() {
        let part = CHURN_PARTITIONS[rng.random_range(0..CHURN_PARTITIONS.len())].to_owned();
        let Some(p) = open.get(&part) else {
            let created = ctx.execute(Op::Create { part: part.clone() }, None).await?;
            open.insert(part, created.ok_or("create returned no handle")?);
            continue;
        };
        let op = match rng.random_range(0..100) {
            0..55 => Op::Put {
                part,
                key: key(&mut rng),
                pad: pad(&mut rng),
            },
            55..70 => Op::Delete {
                part,
                key: key(&mut rng),
            },
            70..85 => Op::Batch {
                part,
                ops: batch(&mut rng, key),
            },
            85..90 => Op::Compact { part },
            _ => Op::Drop { part },
        };
        ctx.execute(op.clone(), Some(p)).await?;
        if let Op::Drop { part } = op {
            open.remove(&part);
        }
    }
    Ok(())
}
