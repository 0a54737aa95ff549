//! `caskade inspect <dir>`: the partitions of a closed database, their data
//! files, records, tombstones, live and dead bytes and keys
//! ([`caskade::OfflineDb::inspect`]), read-only, with the problems
//! `caskade check` would report. Exit codes as `caskade check`
//! (`--partition` naming no partition: 2).
//!
//! ```text
//! caskade inspect ./data
//! caskade inspect ./data --partition users --json
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use caskade::{FileFigures, InspectReport, PartitionFigures};
use clap::Args;

use crate::check::{EXIT_CANNOT_CHECK, exit_code, open, problems_json, problems_table, shown};
use crate::report::{fmt_bytes, quote};

/// Options of `caskade inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The database directory (closed: a directory a `Db` has open is refused).
    pub dir: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Show only this partition (by name); the problems listed, and the
    /// exit code, are still those of the whole database.
    #[arg(long, value_name = "NAME")]
    pub partition: Option<String>,
}

/// Runs `caskade inspect`, printing the report on stdout.
pub fn run(args: &InspectArgs) -> ExitCode {
    let offline = match open(&args.dir, "inspect") {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut report = offline.inspect();
    if let Some(name) = &args.partition {
        report
            .partitions
            .retain(|p| p.name.as_deref() == Some(name.as_str()));
        if report.partitions.is_empty() {
            eprintln!("caskade inspect: no partition named {name:?}");
            return ExitCode::from(EXIT_CANNOT_CHECK);
        }
    }
    print!("{}", if args.json { json(&report) } else { table(&report) });
    ExitCode::from(exit_code(&report.problems, false))
}

/// The human-readable report.
pub fn table(r: &InspectReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "caskade inspect {}", r.root.display());
    for p in &r.partitions {
        let name = p
            .name
            .as_deref()
            .map_or_else(|| "(not in the catalog)".to_owned(), quote);
        let _ = write!(s, "partition {name} id {} dir {}", p.id, shown(&r.root, &p.dir));
        if p.memory_only {
            s.push_str(" memory-only\n");
            continue;
        }
        if let Some(g) = p.generation {
            let _ = write!(s, " manifest generation {g}");
        }
        let _ = writeln!(
            s,
            "\n  {} keys, {} records ({} tombstones), live {}, dead {}, data {}, hints {}",
            p.keys,
            p.records,
            p.tombstones,
            fmt_bytes(p.live_bytes),
            fmt_bytes(p.dead_bytes),
            fmt_bytes(p.data_bytes),
            fmt_bytes(p.hint_bytes)
        );
        if p.files.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "  {:<15} {:>12} {:>9} {:>7} {:>9} {:>12} {:>12} {:>10}",
            "FILE", "SIZE", "RECORDS", "TOMBS", "LIVE", "LIVE BYTES", "DEAD BYTES", "HINT"
        );
        for f in &p.files {
            let name = format!("{:08}.data{}", f.id, if f.active { "*" } else { "" });
            let _ = writeln!(
                s,
                "  {:<15} {:>12} {:>9} {:>7} {:>9} {:>12} {:>12} {:>10}",
                name,
                f.size,
                f.records,
                f.tombstones,
                f.live_records,
                f.live_bytes,
                f.dead_bytes,
                f.hint_size.map_or_else(|| "-".into(), |h| h.to_string())
            );
        }
    }
    if r.partitions.iter().any(|p| p.files.iter().any(|f| f.active)) {
        s.push_str("  (* the active file; sizes in bytes)\n");
    }
    s.push_str(&problems_table(&r.root, &r.problems));
    s
}

/// The same report as one JSON object.
pub fn json(r: &InspectReport) -> String {
    let parts: Vec<String> = r.partitions.iter().map(partition_json).collect();
    format!(
        "{{\"root\": {}, \"partitions\": [{}], \"problems\": {}}}\n",
        quote(&r.root.display().to_string()),
        parts.join(", "),
        problems_json(&r.problems)
    )
}

fn partition_json(p: &PartitionFigures) -> String {
    let files: Vec<String> = p.files.iter().map(file_json).collect();
    format!(
        "{{\"id\": {}, \"name\": {}, \"memory_only\": {}, \"dir\": {}, \"generation\": {}, \"keys\": {}, \
         \"records\": {}, \"tombstones\": {}, \"live_bytes\": {}, \"dead_bytes\": {}, \"data_bytes\": {}, \
         \"hint_bytes\": {}, \"files\": [{}]}}",
        p.id,
        p.name.as_deref().map_or_else(|| "null".into(), quote),
        p.memory_only,
        quote(&p.dir.display().to_string()),
        p.generation.map_or_else(|| "null".into(), |g| g.to_string()),
        p.keys,
        p.records,
        p.tombstones,
        p.live_bytes,
        p.dead_bytes,
        p.data_bytes,
        p.hint_bytes,
        files.join(", ")
    )
}

fn file_json(f: &FileFigures) -> String {
    format!(
        "{{\"id\": {}, \"active\": {}, \"size\": {}, \"records\": {}, \"tombstones\": {}, \
         \"live_records\": {}, \"live_bytes\": {}, \"dead_bytes\": {}, \"hint_size\": {}}}",
        f.id,
        f.active,
        f.size,
        f.records,
        f.tombstones,
        f.live_records,
        f.live_bytes,
        f.dead_bytes,
        f.hint_size.map_or_else(|| "null".into(), |h| h.to_string())
    )
}
