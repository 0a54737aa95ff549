//! A quick version of `caskade bench` (100k keys, short phases), built from
//! the binary's own workload code so there is one implementation.
//!
//! `cargo bench --bench concurrent_load` runs it (`-- --json` for JSON).
//! Run any other way (e.g. `cargo test --benches`, which passes no
//! `--bench` flag) it only does a smoke run at toy sizes, so test runs stay
//! fast while still exercising every phase.

#[path = "../src/bin/caskade/bench.rs"]
mod bench;
#[path = "../src/bin/caskade/limits.rs"]
mod limits;
#[path = "../src/bin/caskade/plan.rs"]
mod plan;
#[path = "../src/bin/caskade/report.rs"]
mod report;
#[path = "../src/bin/caskade/stats.rs"]
mod stats;
#[path = "../src/bin/caskade/workload.rs"]
mod workload;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use plan::Plan;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let json = args.iter().any(|a| a == "--json");
    let plan = if full {
        Plan {
            keys: 100_000,
            key_size: 16,
            value_size: 100,
            tasks: vec![1, 16],
            workers: 2,
            duration: Duration::from_secs(1),
            durable_ops: 500,
            rounds: 2,
            batch: 1000,
            mixed: true,
        }
    } else {
        Plan {
            keys: 2_000,
            key_size: 16,
            value_size: 100,
            tasks: vec![1, 4],
            workers: 2,
            duration: Duration::from_millis(20),
            durable_ops: 5,
            rounds: 2,
            batch: 500,
            mixed: true,
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
    let progress = |msg: &str| eprintln!("[{:>6.1} s] {msg}", started.elapsed().as_secs_f64());
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
