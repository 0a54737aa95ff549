//! A quick version of `caskade bench` (100k keys, short phases), built from
//! the binary's own workload code so there is one implementation.
//!
//! `cargo bench --bench concurrent_load` runs it (`-- --json` for JSON).
//! Run any other way (e.g. `cargo test --benches`, which passes no
//! `--bench` flag) it only does a smoke run at toy sizes, without progress
//! output, so test runs stay fast while still exercising every workload.

#[path = "../src/bin/caskade/bench.rs"]
mod bench;
#[path = "../src/bin/caskade/footprint.rs"]
mod footprint;
#[path = "../src/bin/caskade/limits.rs"]
mod limits;
#[path = "../src/bin/caskade/plan.rs"]
mod plan;
#[path = "../src/bin/caskade/progress.rs"]
mod progress;
#[path = "../src/bin/caskade/recorder.rs"]
mod recorder;
#[path = "../src/bin/caskade/report.rs"]
mod report;
#[path = "../src/bin/caskade/stats.rs"]
mod stats;
#[path = "../src/bin/caskade/workload.rs"]
mod workload;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use plan::{Plan, PutDurability, Workload};
use progress::Progress;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let json = args.iter().any(|a| a == "--json");
    let plan = if full {
        Plan {
            workloads: Workload::ALL.to_vec(),
            keys: 100_000,
            key_size: 16,
            value_size: 100,
            get_tasks: vec![1, 16],
            put_tasks: vec![1, 64],
            durable_tasks: vec![1, 16],
            durability: PutDurability::Buffered,
            workers: 2,
            duration: Duration::from_secs(1),
            durable_ops: 500,
            rounds: 2,
            batch: 1000,
            overwrites: 3,
        }
    } else {
        Plan {
            workloads: Workload::ALL.to_vec(),
            keys: 2_000,
            key_size: 16,
            value_size: 100,
            get_tasks: vec![1, 4],
            put_tasks: vec![1, 4],
            durable_tasks: vec![1, 4],
            durability: PutDurability::Buffered,
            workers: 2,
            duration: Duration::from_millis(20),
            durable_ops: 5,
            rounds: 2,
            batch: 500,
            overwrites: 3,
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan.workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("concurrent_load: cannot build the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let line = |msg: &str| eprintln!("[{:>6.1} s] {msg}", started.elapsed().as_secs_f64());
    // The smoke run stays quiet: no lines, no bars in test output.
    let progress = if full {
        Progress::new(&line)
    } else {
        Progress::quiet()
    };
    match plan
        .validate()
        .map_err(Into::into)
        .and_then(|()| bench::run(&plan, &rt, None, &progress))
    {
        Ok(r) if json => print!("{}", report::json(&r)),
        Ok(r) => print!("{}", report::table(&r)),
        Err(e) => {
            eprintln!("concurrent_load: error: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
