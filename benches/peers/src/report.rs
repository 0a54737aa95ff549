//! Output: the side-by-side table (engine columns per workload, with the
//! ratios and latencies under each figure), the details behind it, the
//! notes on method, and the same as JSON (`--json`).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::engine::EngineKind;
use crate::fmt::{fmt_bytes, fmt_duration, fmt_rate, fmt_ratio, fmt_value};
use crate::plan::Plan;
use crate::results::{Better, Row, Unit};
use crate::stats::{Latency, Measurement};
use crate::suite::{EngineRun, Limits};
use crate::system::DirSize;

/// Width of one engine column.
const COL: usize = 21;
/// Width of the workload column.
const NAME: usize = 44;
/// Width of the metric column.
const LABEL: usize = 18;

/// The machine and the run's circumstances.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs available.
    pub cpus: usize,
    /// 1-minute load average before and after the run.
    pub load_before: Option<f64>,
    /// As above, after.
    pub load_after: Option<f64>,
    /// The root data directory.
    pub dir: String,
    /// Wall time of the whole run, in seconds.
    pub total_s: f64,
}

/// One raw limit, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct LimitOut {
    /// `L1` ...
    pub id: &'static str,
    /// What it measures.
    pub name: String,
    /// Operations (records).
    pub ops: u64,
    /// Wall time in seconds.
    pub elapsed_s: f64,
    /// Records per second.
    pub ops_per_sec: f64,
    /// Latency percentiles per operation (per 1 MiB read for L4).
    pub latency: Latency,
    /// Remark.
    pub note: String,
}

/// Per-engine details behind the rows.
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    /// The engine.
    pub engine: EngineKind,
    /// RSS before opening, bytes.
    pub rss_before: u64,
    /// RSS after the fill, bytes.
    pub rss_after: u64,
    /// Keys/s of each overwrite round.
    pub overwrite_rates: Vec<f64>,
    /// The directory after the overwrites.
    pub space: DirSize,
    /// caskade: compactions its scheduler started before the reopen.
    pub scheduled_compactions: Option<u64>,
    /// caskade: the directory after `compact()`.
    pub compacted: Option<DirSize>,
    /// caskade: what the compaction reported.
    pub compaction: Option<String>,
}

/// Everything the run prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The settings.
    pub plan: Plan,
    /// The machine.
    pub machine: Machine,
    /// The raw limits.
    pub limits: Vec<LimitOut>,
    /// The workloads, engines side by side.
    pub rows: Vec<Row>,
    /// Per-engine details.
    pub details: Vec<Detail>,
    /// Notes on method.
    pub notes: Vec<String>,
}

fn limit(id: &'static str, name: String, m: &Measurement, note: String) -> LimitOut {
    LimitOut {
        id,
        name,
        ops: m.ops,
        elapsed_s: m.elapsed.as_secs_f64(),
        ops_per_sec: m.ops_per_sec(),
        latency: Latency::of(&m.latency),
        note,
    }
}

impl Report {
    /// Assembles the report.
    pub fn new(plan: &Plan, machine: Machine, limits: &Limits, runs: &[EngineRun]) -> Self {
        let size = plan.record_size();
        let l4_speed = (limits.l4.ops * size as u64) as f64 / limits.l4.elapsed.as_secs_f64().max(1e-9);
        let limits_out = vec![
            limit(
                "L1",
                format!("buffered append of {size} B records, one fsync at the end"),
                &limits.l1,
                format!("final fsync {}", fmt_duration(limits.l1_fsync)),
            ),
            limit(
                "L2",
                format!("append {size} B + fdatasync per op, 1 writer"),
                &limits.l2,
                format!("interleaved with the durable phases in {} rounds", plan.rounds),
            ),
            limit(
                "L3",
                format!("random pread of {size} B, page cache, 1 thread"),
                &limits.l3,
                String::new(),
            ),
            limit(
                "L3x2",
                format!("random pread of {size} B, page cache, 2 threads"),
                &limits.l3x2,
                String::new(),
            ),
            limit(
                "L4",
                "sequential read of the L1 file, 1 MiB reads, page cache".into(),
                &limits.l4,
                format!(
                    "{} for the data set, {}/s",
                    fmt_duration(limits.l4.elapsed),
                    fmt_bytes(l4_speed)
                ),
            ),
        ];
        let details = runs
            .iter()
            .map(|r| Detail {
                engine: r.engine,
                rss_before: r.rss_before,
                rss_after: r.rss_after,
                overwrite_rates: r.overwrites.iter().map(Measurement::ops_per_sec).collect(),
                space: r.space,
                scheduled_compactions: r.scheduled_compactions,
                compacted: r.compacted.as_ref().map(|(s, _)| *s),
                compaction: r.compacted.as_ref().map(|(_, why)| why.clone()),
            })
            .collect();
        Report {
            plan: plan.clone(),
            machine,
            limits: limits_out,
            rows: crate::results::rows(plan, limits, runs),
            details,
            notes: notes(plan),
        }
    }

    /// The report as pretty JSON.
    ///
    /// # Errors
    /// Never in practice (every field serializes).
    pub fn json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let (p, m) = (&self.plan, &self.machine);
        let mut s = String::new();
        let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
        let _ = writeln!(
            s,
            "caskade-peers: {} CPUs, load average {} -> {}, data under {}, total run time {:.1} s",
            m.cpus,
            load(m.load_before),
            load(m.load_after),
            m.dir,
            m.total_s
        );
        let _ = writeln!(
            s,
            "keys {}, key {} B, value {} B (raw {}), batches of {}, {:.2} s per timed phase, \
            durable: {} puts per task in {} rounds, peers' cache {}, {} tokio workers for caskade\n",
            p.keys,
            p.key_size,
            p.value_size,
            fmt_bytes((p.keys * p.record_size() as u64) as f64),
            p.batch,
            p.duration.as_secs_f64(),
            p.durable_ops,
            p.rounds,
            fmt_bytes(p.cache_bytes as f64),
            p.workers
        );
        let _ = writeln!(s, "raw limits (std::fs, same process and directory)");
        let _ = writeln!(
            s,
            "  {:<5} {:<58} {:>9} {:>9} {:>9} {:>9}  note",
            "id", "what", "ops/s", "p50", "p99", "p99.9"
        );
        for l in &self.limits {
            let lat = |ns| fmt_duration(Duration::from_nanos(ns));
            let _ = writeln!(
                s,
                "  {:<5} {:<58} {:>9} {:>9} {:>9} {:>9}  {}",
                l.id,
                l.name,
                fmt_rate(l.ops_per_sec),
                lat(l.latency.p50_ns),
                lat(l.latency.p99_ns),
                lat(l.latency.p999_ns),
                l.note
            );
        }
        let engines: Vec<EngineKind> = self
            .rows
            .first()
            .map(|r| r.cells.iter().map(|c| c.engine).collect())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "\nworkloads (↑ higher is better, ↓ lower is better; x L = value ÷ its raw limit, \
            x best peer = value ÷ the best of the peers)"
        );
        let mut header = format!("{:<NAME$} {:<LABEL$}", "workload", "");
        for e in &engines {
            let _ = write!(header, " {:<COL$}", e.name());
        }
        let _ = writeln!(s, "{header}\n{}", "-".repeat(header.chars().count()));
        for row in &self.rows {
            render_row(&mut s, row);
        }
        let _ = writeln!(s, "\ncaskade against the best peer and its raw limit");
        let _ = writeln!(
            s,
            "  {:<NAME$} {:>10} {:>18} {:>12} {:>12}",
            "workload", "caskade", "best peer", "x best peer", "x limit"
        );
        for row in &self.rows {
            let Some(c) = row.cells.iter().find(|c| c.engine == EngineKind::Caskade) else {
                continue;
            };
            let best = row
                .cells
                .iter()
                .filter(|c| c.engine.is_peer())
                .find(|c| Some(c.value) == row.best_peer());
            let best = best.map_or("-".into(), |b| {
                format!("{} {}", b.engine.name(), fmt_value(row.unit, b.value))
            });
            let limit = match (&row.limit, c.x_limit) {
                (Some(l), Some(x)) => format!("{} {}", fmt_ratio(x), l.id),
                _ => "-".into(),
            };
            let _ = writeln!(
                s,
                "  {:<NAME$} {:>10} {:>18} {:>12} {:>12}",
                title(row),
                fmt_value(row.unit, c.value),
                best,
                c.x_best_peer.map_or("-".into(), fmt_ratio),
                limit
            );
        }
        let _ = writeln!(s, "\ndetails");
        for d in &self.details {
            let rates: Vec<String> = d.overwrite_rates.iter().map(|&r| fmt_rate(r)).collect();
            let _ = writeln!(
                s,
                "  {:<8} RSS {} -> {} (memory stage); overwrite rounds {} keys/s; directory {} on disk \
                 ({} apparent, {} files){}",
                d.engine.name(),
                fmt_bytes(d.rss_before as f64),
                fmt_bytes(d.rss_after as f64),
                rates.join(" / "),
                fmt_bytes(d.space.allocated as f64),
                fmt_bytes(d.space.bytes as f64),
                d.space.files,
                match (&d.compacted, &d.compaction) {
                    (Some(c), Some(why)) => format!(
                        "; after compact(): {} on disk ({} files): {why}; compactions started by the \
                         scheduler before the reopen: {}",
                        fmt_bytes(c.allocated as f64),
                        c.files,
                        d.scheduled_compactions.unwrap_or(0)
                    ),
                    _ => String::new(),
                }
            );
        }
        let _ = writeln!(s, "\nnotes");
        for n in &self.notes {
            let _ = writeln!(s, "  - {n}");
        }
        s
    }
}

/// The row's name with its direction.
fn title(row: &Row) -> String {
    let arrow = if row.better == Better::Higher {
        "↑"
    } else {
        "↓"
    };
    format!("{} {arrow}", row.name)
}

/// Renders one row: the figure, the ratios and (for timed phases) the
/// latencies, one line each, engines side by side.
fn render_row(s: &mut String, row: &Row) {
    let metric = match row.unit {
        Unit::OpsPerSec if row.id == "fill" => "keys/s",
        Unit::OpsPerSec => "ops/s",
        Unit::Seconds => "seconds",
        Unit::RawRatio => "x raw bytes",
        Unit::BytesPerKey => "bytes/key",
    };
    let line =
        |s: &mut String, first: String, label: String, cell: &dyn Fn(&crate::results::Cell) -> String| {
            let mut l = format!("{first:<NAME$} {label:<LABEL$}");
            for c in &row.cells {
                let _ = write!(l, " {:<COL$}", cell(c));
            }
            let _ = writeln!(s, "{}", l.trim_end());
        };
    line(s, title(row), metric.into(), &|c| fmt_value(row.unit, c.value));
    if let Some(l) = &row.limit {
        line(
            s,
            String::new(),
            format!("x {} {}", l.id, fmt_value(row.unit, l.value)),
            &|c| c.x_limit.map_or("-".into(), fmt_ratio),
        );
    }
    line(s, String::new(), "x best peer".into(), &|c| {
        c.x_best_peer.map_or("-".into(), fmt_ratio)
    });
    if let Some(per) = &row.latency_per {
        let ns = |n| fmt_duration(Duration::from_nanos(n));
        let label = if per == "op" {
            "p50 / p99"
        } else {
            "p50/p99 per batch"
        };
        line(s, String::new(), label.into(), &|c| {
            c.latency
                .map_or("-".into(), |l| format!("{} / {}", ns(l.p50_ns), ns(l.p99_ns)))
        });
        line(s, String::new(), "p99.9 / max".into(), &|c| {
            c.latency
                .map_or("-".into(), |l| format!("{} / {}", ns(l.p999_ns), ns(l.max_ns)))
        });
    }
}

/// The notes on method printed under the table.
fn notes(plan: &Plan) -> Vec<String> {
    let cache = fmt_bytes(plan.cache_bytes as f64);
    vec![
        format!("tasks: caskade's N tasks are N tokio tasks on a multi-thread runtime with {} workers; \
            the peers' N tasks are N OS threads (std::thread::scope), each running its task with pollster \
            (the peers never wait, so each thread is a plain loop of blocking calls)", plan.workers),
        format!("caskade's reader tasks yield to tokio every {} gets when a phase has several tasks (a page-cache \
            get never returns Pending); threads are preempted by the kernel", crate::workload::YIELD_EVERY),
        "every engine runs on the same global allocator: mimalloc".into(),
        "values are pseudo-random (incompressible) bytes, fresh per write; fjall compresses with LZ4 by default".into(),
        format!("caches: sled and redb at their default of 1 GiB set explicitly to {cache}, fjall's block cache raised \
            from its 32 MiB default to {cache} (its README: 20-25 % of memory or more if the data fits); caskade has \
            no cache of its own (index in memory, values through the OS page cache)"),
        "durability: caskade Durability::Always (group commit) vs OsBuffered; sled insert + flush; redb one write \
            transaction per put with the default Durability::Immediate vs Durability::None; fjall insert + \
            persist(SyncData) vs no persist. Batches: caskade Batch, sled Batch + apply_batch, redb one write \
            transaction, fjall OwnedWriteBatch".into(),
        "sled's flush (sled 0.34) makes its log stable with sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER), not \
            fsync/fdatasync: no device cache flush and no metadata sync (its background flusher fsyncs every 500 ms), \
            so on this VM's write-back disk cache sled's `durable` puts are weaker than the others' and than L2 (an \
            fdatasync of an appended, growing file, as caskade's and fjall's logs are)".into(),
        format!("durable phases run on fresh stores, every engine's open at once, in {} rounds interleaved with L2 \
            (the engine order rotates each round); {} new keys per task", plan.rounds, plan.durable_ops),
        "gets: one read transaction per get for redb; every value's length is checked".into(),
        "many tasks on 2 cores: a peer's 16- or 64-task phase is 16 or 64 OS threads contending for its locks \
            (a preempted lock holder stalls the rest: see the p99.9 and max), where caskade's tasks share 2 tokio \
            workers and queue for its partition's writer thread".into(),
        "reopen: after a clean close in the same process (files in the page cache): open + first successful get; \
            x L4 compares it with reading the raw data set once".into(),
        format!("space: disk usage (allocated blocks, as du counts; apparent sizes in the details) of the engine's directory after the fill, the put phases, {} overwrite \
            rounds of every key in batches, sync and close, divided by keys x (key + value); caskade's compaction \
            scheduler runs with its defaults until the reopen and is off after it, so `space` is without compaction \
            and `space_compacted` after one Partition::compact, a close, and until the directory stopped shrinking (caskade unlinks replaced files on a thread that can outlive close) (peers: background maintenance as shipped, repeated)",
            plan.overwrite_rounds),
        "memory: growth of the process's RSS (VmRSS) from before the open to after the fill and its sync, \
            divided by keys, in a memory stage of its own: each engine's store stays open while the next ones are \
            measured, so no engine's freed memory shrinks another's growth; peers' caches and write buffers count; \
            the fill and every other figure come from the main stage, on fresh stores".into(),
    ]
}
