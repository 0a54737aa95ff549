//! `caskade`: the command-line tool of the caskade storage engine.
//!
//! # `caskade bench`
//!
//! Measures the engine against the raw limits of the machine, in one process
//! and one data directory so that the ratios are meaningful on a shared,
//! noisy machine. `--workloads` (default: all) picks from:
//!
//! - `limits`: raw limits with `std::fs`: **L1** buffered append of
//!   `key + value` records with one fsync at the end, **L2** append +
//!   `fdatasync` per operation, **L3** random `pread` of one record from
//!   the page cache (1 thread, and **L3x2** with 2 threads);
//! - `fill`: `--keys` keys in atomic batches of `--batch`
//!   (`Durability::OsBuffered`), then `sync`;
//! - `get`: random `get` per `--get-tasks` count (default 1, 2, 4, 16), and
//!   one task reading on the blocking pool;
//! - `put`: overwrites of random keys per `--put-tasks` count (1, 64) under
//!   `--durability` (`buffered`, `interval:<ms>` or `always`);
//! - `mixed`: readers plus one writer on the same partition;
//! - `reopen`: close, then open, recover and the first `get`;
//! - `durable`: durable puts (`Durability::Always`, group commit) of new keys
//!   per `--durable-tasks` count (1, 16, 64) on fresh partitions;
//! - `space`: disk bytes (`*.data` + `*.hint`) after `--overwrites` (3)
//!   rounds over every key with the scheduler off, against the raw and the
//!   live bytes, then again after `Partition::compact()`;
//! - `memory`: RSS growth over the fill, per key (the index's cost).
//!
//! Everything runs on a tokio multi-thread runtime (`--workers`, default 2).
//! The raw limits L1 and L3 run first; L2 is interleaved with the durable
//! puts in `--rounds` rounds, because fsync latency on a shared disk drifts
//! by several times within a minute.
//!
//! Each phase reports ops/s, per-operation latency p50/p99/p99.9/max (HDR
//! histograms) and its ratio to the relevant raw limit; then the memory and
//! space figures, and the issue's targets as MET or MISSED. `--json` prints
//! the same results as JSON on stdout. Progress goes to stderr: a line per
//! phase, and a progress bar (indicatif) under it for the long ones when
//! stderr is a terminal.
//!
//! ```text
//! cargo run --release -- bench
//! cargo run --release -- bench --keys 200000 --get-tasks 1,4,16 --duration 5 --json
//! cargo run --release -- bench --workloads get,put --durability interval:5
//! cargo run --release -- bench --dir ./bench-data    # keep the data
//! ```
//!
//! # `caskade partitions`
//!
//! Cold opens of an evicted partition, and many partitions under skewed
//! (Zipf) access with and without eviction: see the `partitions` module.
//!
//! # `caskade compaction`
//!
//! Disk footprint after overwrites with the compaction scheduler on, and
//! reads and writes with and without a compaction running: see the
//! `compaction` module.
//!
//! # `caskade check <dir>` and `caskade inspect <dir>`
//!
//! Read-only operator tools over a closed database: `check` verifies every
//! checksum and the index's consistency (exit 0 clean, 1 problems found, 2
//! could not check); `inspect` shows partitions, files, live and dead bytes
//! and keys. Both take `--json`: see the `check` and `inspect` modules.
//!
//! # `caskade stress`
//!
//! The child process of the kill -9 harness (`tests/kill9.rs`): random
//! puts, deletes, atomic batches, compactions and partition create / drop
//! on a real directory (`Durability::Always` by default), each announced on
//! stdout with `begin <id> ...` before it is issued and `ack <id>` after it
//! returned `Ok`, until killed (or `--ops` operations). Any engine error
//! exits with status 1. See the `stress` module.
//!
//! ```text
//! caskade stress --dir ./stress-data --seed 7 --ops 1000
//! caskade stress --dir ./stress-data --seed 8 --partitions 3 --durability buffered
//! ```

mod bench;
mod check;
mod compaction;
mod footprint;
mod grid;
mod inspect;
mod limits;
mod partitions;
mod plan;
mod progress;
mod recorder;
mod report;
mod stats;
mod stress;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: glibc grows and trims each thread's
/// arena with one `mprotect` (the process-wide `mmap_lock`, for writing) per
/// step — some 200,000 per compaction from the copy thread alone, and as
/// many from a busy partition's actor — so a low-priority copy preempted
/// inside one stalls every other thread's allocation (ARCHITECTURE.md,
/// "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::plan::{Plan, PutDurability, Workload};
use crate::progress::Progress;

/// The caskade command-line tool.
#[derive(Debug, Parser)]
#[command(name = "caskade", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmark the engine against the raw limits of this machine.
    Bench(BenchArgs),
    /// Benchmark cold opens of evicted partitions and many partitions under skewed access.
    Partitions(partitions::PartitionsArgs),
    /// Benchmark compaction: disk footprint, and reads and writes during a compaction.
    Compaction(compaction::CompactionArgs),
    /// Verify every checksum of a closed database and its index's consistency (read-only).
    Check(check::CheckArgs),
    /// Show the partitions, files, live and dead bytes and keys of a closed database (read-only).
    Inspect(inspect::InspectArgs),
    /// Run random operations, reporting each acknowledgement on stdout (kill -9 harness child).
    Stress(stress::StressArgs),
}

/// Options of `caskade bench`.
#[derive(Debug, Args)]
struct BenchArgs {
    /// Workloads to run (comma-separated; they run in the order listed below,
    /// whatever the order given).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "limits,fill,get,put,mixed,reopen,durable,space,memory"
    )]
    workloads: Vec<Workload>,
    /// Keys loaded by the fill phase (and raw records appended by L1).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Bytes per key.
    #[arg(long, default_value_t = 16)]
    key_size: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Task counts of the get phases (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "LIST", default_value = "1,2,4,16")]
    get_tasks: Vec<usize>,
    /// Task counts of the (non-durable) put phases (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "LIST", default_value = "1,64")]
    put_tasks: Vec<usize>,
    /// Task counts of the durable put phases (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "LIST", default_value = "1,16,64")]
    durable_tasks: Vec<usize>,
    /// One list for --get-tasks, --put-tasks and --durable-tasks at once.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        conflicts_with_all = ["get_tasks", "put_tasks", "durable_tasks"]
    )]
    tasks: Option<Vec<usize>>,
    /// Durability of the put phases and of the mixed phase's writer:
    /// buffered (OsBuffered), interval:<ms> (fdatasync at most <ms> after a
    /// write) or always (fdatasync per group commit).
    #[arg(long, value_name = "MODE", default_value = "buffered")]
    durability: PutDurability,
    /// Worker threads of the tokio multi-thread runtime.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Seconds per timed phase (raw reads, gets, puts, mixed).
    #[arg(long, default_value = "3", value_parser = parse_seconds)]
    duration: Duration,
    /// Durable puts per task in each durable phase (and fdatasyncs in L2).
    #[arg(long, default_value_t = 2000)]
    durable_ops: u64,
    /// Rounds in which L2 and the durable puts are interleaved (so both see
    /// the same background disk load).
    #[arg(long, default_value_t = 4)]
    rounds: u64,
    /// Keys per batch in the fill phase and the space workload.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Overwrite rounds of every key in the space workload.
    #[arg(long, default_value_t = 3)]
    overwrites: u32,
    /// Skip the mixed phase (the same as leaving `mixed` out of --workloads).
    #[arg(long)]
    no_mixed: bool,
    /// Keep the data in this (new or empty) directory instead of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the results as JSON instead of a table (progress stays on stderr).
    #[arg(long)]
    json: bool,
}

impl BenchArgs {
    fn plan(&self) -> Plan {
        let mut workloads: Vec<Workload> = self
            .workloads
            .iter()
            .copied()
            .filter(|&w| !(self.no_mixed && w == Workload::Mixed))
            .collect();
        workloads.sort();
        workloads.dedup();
        let list = |own: &Vec<usize>| self.tasks.clone().unwrap_or_else(|| own.clone());
        Plan {
            workloads,
            keys: self.keys,
            key_size: self.key_size,
            value_size: self.value_size,
            get_tasks: list(&self.get_tasks),
            put_tasks: list(&self.put_tasks),
            durable_tasks: list(&self.durable_tasks),
            durability: self.durability,
            workers: self.workers,
            duration: self.duration,
            durable_ops: self.durable_ops,
            rounds: self.rounds,
            batch: self.batch,
            overwrites: self.overwrites,
        }
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{e}"))
}

fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            // Closing spans report their busy/idle time: e.g. how long a rotation took.
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let (name, result) = match Cli::parse().command {
        Command::Bench(args) => ("bench", run_bench(&args)),
        Command::Partitions(args) => ("partitions", run_partitions(&args)),
        Command::Compaction(args) => ("compaction", run_compaction(&args)),
        // Their own exit codes: 0 clean, 1 problems found, 2 could not check.
        Command::Check(args) => return check::run(&args),
        Command::Inspect(args) => return inspect::run(&args),
        Command::Stress(args) => ("stress", stress::run(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("caskade {name}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_bench(args: &BenchArgs) -> Result<(), workload::BoxError> {
    let plan = args.plan();
    plan.validate()?;
    let dir = args.dir.as_deref();
    let report = with_runtime(plan.workers, |rt, line| {
        bench::run(&plan, rt, dir, &Progress::new(line))
    })?;
    print!(
        "{}",
        if args.json {
            report::json(&report)
        } else {
            report::table(&report)
        }
    );
    Ok(())
}

fn run_partitions(args: &partitions::PartitionsArgs) -> Result<(), workload::BoxError> {
    let report = with_runtime(args.workers, |rt, progress| partitions::run(args, rt, progress))?;
    print!(
        "{}",
        if args.json {
            partitions::json(&report)
        } else {
            partitions::table(&report)
        }
    );
    Ok(())
}

fn run_compaction(args: &compaction::CompactionArgs) -> Result<(), workload::BoxError> {
    let report = with_runtime(args.workers, |rt, progress| compaction::run(args, rt, progress))?;
    print!(
        "{}",
        if args.json {
            compaction::json(&report)
        } else {
            compaction::table(&report)
        }
    );
    Ok(())
}

/// Runs one benchmark on a multi-thread runtime of `workers` (at least 1)
/// worker threads, printing its progress lines, timestamped, to stderr
/// (`caskade bench` adds progress bars under them: `progress::Progress`).
fn with_runtime<R>(
    workers: usize,
    run: impl FnOnce(&tokio::runtime::Runtime, &dyn Fn(&str)) -> Result<R, workload::BoxError>,
) -> Result<R, workload::BoxError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()?;
    let started = Instant::now();
    let progress = |msg: &str| eprintln!("[{:>7.1} s] {msg}", started.elapsed().as_secs_f64());
    run(&rt, &progress)
}

#[cfg(test)]
mod bench_tests;
#[cfg(test)]
mod test_json;
#[cfg(test)]
mod tests;
