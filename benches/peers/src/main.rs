//! `peers`: caskade side by side with sled 0.34, redb 4 and fjall 3 on the
//! same workloads, together with the raw limits of the machine, in one
//! process run, printed as one table in which every figure is also a ratio
//! to its raw limit and to the best peer.
//!
//! ```text
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- [options]
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- --help
//! ```
//!
//! Code map: `options` (command line), `plan` (settings, key/value
//! generators), `engine` (the engine enum, the task runner), `engines/`
//! (one adapter per engine), `workload` (the phases), `limits` (raw
//! limits), `suite` (the order of the run), `results` (rows and ratios),
//! `report` (table and JSON), `fmt` (numbers), `stats`, `system`, `progress`.

mod engine;
mod engines;
mod fmt;
mod limits;
mod options;
mod plan;
mod progress;
mod report;
mod results;
mod stats;
mod suite;
mod system;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, error::ErrorKind};

use crate::options::Cli;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::report::{Machine, Report};

/// Every engine runs on the same allocator, as the `caskade` binary does
/// (ARCHITECTURE.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let plan = match cli.plan() {
        Ok(plan) => plan,
        Err(msg) => Cli::command().error(ErrorKind::ValueValidation, msg).exit(),
    };
    if let Some(dir) = &cli.dir
        && let Err(msg) = check_dir(dir)
    {
        Cli::command().error(ErrorKind::ValueValidation, msg).exit()
    }
    match run(&cli, &plan) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--dir` must be a new or empty directory (the run creates one
/// subdirectory per engine and keeps them).
fn check_dir(dir: &Path) -> Result<(), String> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(format!("--dir {} is not empty", dir.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("--dir {}: {e}", dir.display())),
    }
}

/// Runs everything and prints the report.
fn run(cli: &Cli, plan: &Plan) -> Result<()> {
    let _temp;
    let root: PathBuf = match &cli.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("caskade-peers-")
                .tempdir()
                .context("creating a temp dir")?;
            let path = temp.path().to_path_buf();
            _temp = temp;
            path
        }
    };
    let load_before = system::load_average();
    let start = Instant::now();
    let progress = Progress::new(suite::phase_count(plan));
    let outcome = suite::run(plan, &root, &progress);
    progress.finish();
    let (limits, runs) = outcome?;
    let machine = Machine {
        cpus: system::cpus(),
        load_before,
        load_after: system::load_average(),
        dir: root.display().to_string(),
        total_s: start.elapsed().as_secs_f64(),
    };
    let report = Report::new(plan, machine, &limits, &runs);
    if cli.json {
        println!("{}", report.json()?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole run on a tiny data set: every engine gets a cell in every
    /// row, and the ratios are filled.
    #[test]
    fn a_tiny_run_fills_every_row() {
        let args = [
            "peers",
            "--keys",
            "3000",
            "--batch",
            "500",
            "--duration",
            "0.05",
            "--get-tasks",
            "1,2",
            "--put-tasks",
            "1,4",
            "--durable-tasks",
            "1,3",
            "--durable-ops",
            "6",
            "--rounds",
            "2",
            "--mixed-readers",
            "3",
            "--overwrite-rounds",
            "1",
            "--cache-mb",
            "8",
        ];
        let plan = Cli::try_parse_from(args).unwrap().plan().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let progress = Progress::new(suite::phase_count(&plan));
        let (limits, runs) = suite::run(&plan, dir.path(), &progress).unwrap();
        assert_eq!(runs.len(), 4);
        // At most 6 durable puts per task, at least one per task and round.
        let ops: Vec<u64> = runs[1].durable.iter().map(|(_, m)| m.ops).collect();
        assert!((2..=6).contains(&ops[0]) && (6..=18).contains(&ops[1]), "{ops:?}");
        let machine = Machine {
            cpus: 2,
            load_before: None,
            load_after: None,
            dir: String::new(),
            total_s: 1.0,
        };
        let report = Report::new(&plan, machine, &limits, &runs);
        for row in &report.rows {
            assert_eq!(row.cells.len(), 4, "{}", row.id);
            // RSS growth of a tiny fill may be 0 for every peer: no reference.
            if row.id != "memory" {
                assert!(row.cells.iter().all(|c| c.x_best_peer.is_some()), "{}", row.id);
            }
        }
        assert!(report.rows.iter().any(|r| r.id == "space_compacted"));
        assert!(report.text().contains("durable put, 3 task(s)"));
        let json: serde_json::Value = serde_json::from_str(&report.json().unwrap()).unwrap();
        assert_eq!(json["rows"][0]["id"], "fill");
        assert!(check_dir(dir.path()).is_err());
    }
}
