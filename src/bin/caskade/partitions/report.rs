//! What `caskade partitions` measured ([`Report`], [`Run`]) and its table
//! and JSON, both drawn from the same lists of [`Cell`]s so that they
//! cannot disagree.

use std::path::PathBuf;
use std::time::Duration;

use super::{COLD_TARGET, KEY_SIZE, PartitionsArgs};
use crate::grid::{Cell, grid};
use crate::report::{fmt_duration, fmt_rate, quote};
use crate::stats::Recorder;

/// Everything a run measured.
#[derive(Debug)]
pub struct Report {
    /// The settings.
    pub args: PartitionsArgs,
    /// Where it ran (deleted afterwards unless given with `--dir`).
    pub data_dir: PathBuf,
    /// File system type of the data directory; load average before and after.
    pub machine: [String; 3],
    /// Cold opens with hint files, one per round, in round order.
    pub cold: Vec<Duration>,
    /// Hint files in the cold partition's directory after its first eviction.
    pub hints: usize,
    /// The cold open after the hint files were deleted (the scan path).
    pub scan: Duration,
    /// The skewed-access runs: with eviction, then with every partition open.
    pub runs: [Run; 2],
    /// Wall time of the whole run.
    pub total: Duration,
}

impl Report {
    /// Min, median and max of the cold opens with hints.
    pub fn cold_summary(&self) -> [Duration; 3] {
        let mut s = self.cold.clone();
        s.sort_unstable();
        [s[0], s[s.len() / 2], s[s.len() - 1]]
    }

    /// Whether the median cold open meets [`COLD_TARGET`].
    pub fn cold_met(&self) -> bool {
        self.cold_summary()[1] <= COLD_TARGET
    }

    /// Throughput with eviction / without.
    pub fn ratio(&self) -> f64 {
        let [with, without] = &self.runs;
        with.rate(with.ops()) / without.rate(without.ops()).max(1e-9)
    }
}

/// One skewed-access run.
#[derive(Debug, Default)]
pub struct Run {
    /// The database's `max_open_partitions`.
    pub max_open: usize,
    /// From the start to the last task's last reply.
    pub elapsed: Duration,
    /// Per-get latencies (their count is the gets done).
    pub gets: Recorder,
    /// Per-put latencies.
    pub puts: Recorder,
    /// Evictions during the run (`DbStats` delta).
    pub evictions: u64,
    /// Reopens of evicted partitions during the run (`DbStats` delta).
    pub reopens: u64,
    /// `DbStats::open_partitions` after the run.
    pub open_at_end: u64,
}

impl Run {
    /// Gets plus puts.
    pub fn ops(&self) -> u64 {
        self.gets.count() + self.puts.count()
    }

    /// Events per second of the run.
    pub fn rate(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn int(head: &'static str, key: &'static str, v: u64) -> Cell {
    (head, key, v.to_string(), v.to_string())
}

fn rate(head: &'static str, key: &'static str, v: f64) -> Cell {
    (head, key, fmt_rate(v), format!("{v:.1}"))
}

fn time(head: &'static str, key: &'static str, v: Duration) -> Cell {
    (head, key, fmt_duration(v), v.as_nanos().to_string())
}

/// The cold-open rows: with hint files (and the target), after deleting them.
fn cold_rows(r: &Report) -> [Vec<Cell>; 2] {
    let [min, median, max] = r.cold_summary();
    let (met, target) = (r.cold_met(), fmt_duration(COLD_TARGET));
    let verdict = format!("<= {target} (median): {}", if met { "MET" } else { "MISSED" });
    let row = |rounds: usize, hints: usize, [min, median, max]: [Duration; 3]| {
        vec![
            int("rounds", "rounds", rounds as u64),
            int("hint files", "hint_files", hints as u64),
            time("min", "min_ns", min),
            time("median", "median_ns", median),
            time("max", "max_ns", max),
        ]
    };
    let mut hinted = row(r.cold.len(), r.hints, [min, median, max]);
    hinted.push(("target", "target_met", verdict, met.to_string()));
    [hinted, row(1, 0, [r.scan; 3])]
}

/// The settings, as (name, JSON value).
fn settings(r: &Report) -> Vec<(&'static str, String)> {
    let a = &r.args;
    let n = |k, v: &dyn ToString| (k, v.to_string());
    vec![
        n("cold_keys", &a.cold_keys),
        n("key_size", &KEY_SIZE),
        n("value_size", &a.value_size),
        n("rounds", &a.rounds),
        n("partitions", &a.partitions),
        n("keys_per_partition", &a.keys_per_partition),
        n("max_open", &a.max_open),
        n("seconds_per_run", &a.duration.as_secs_f64()),
        n("tasks", &a.tasks),
        n("workers", &a.workers),
        n("zipf_s", &a.zipf_s),
        n("write_percent", &a.write_percent),
    ]
}

/// The results of a skewed-access run. `reopens/op` bounds the fraction of
/// operations that found their partition evicted from below: each reopen
/// was caused by at least one of them.
fn run_cells(run: &Run) -> Vec<Cell> {
    let per_op = run.reopens as f64 / run.ops().max(1) as f64;
    let get = |q| run.gets.quantile(q);
    vec![
        int("max_open", "max_open", run.max_open as u64),
        int("ops", "ops", run.ops()),
        int("puts", "puts", run.puts.count()),
        rate("ops/s", "ops_per_sec", run.rate(run.ops())),
        time("get p50", "get_p50_ns", get(0.5)),
        time("get p99", "get_p99_ns", get(0.99)),
        time("get p99.9", "get_p999_ns", get(0.999)),
        time("get max", "get_max_ns", run.gets.max()),
        time("put p99", "put_p99_ns", run.puts.quantile(0.99)),
        int("evictions", "evictions", run.evictions),
        rate("evictions/s", "evictions_per_sec", run.rate(run.evictions)),
        int("reopens", "reopens", run.reopens),
        rate("reopens/s", "reopens_per_sec", run.rate(run.reopens)),
        (
            "reopens/op",
            "reopens_per_op",
            format!("{per_op:.4}"),
            format!("{per_op:.6}"),
        ),
        int("open at end", "open_at_end", run.open_at_end),
    ]
}

/// A JSON object of `fields` (values already JSON).
fn object(fields: impl IntoIterator<Item = (&'static str, String)>) -> String {
    let fields: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{}: {v}", quote(k)))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// Logical CPUs available to the process.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// The human-readable report.
pub fn table(r: &Report) -> String {
    let [fs, load0, load1] = &r.machine;
    let settings: Vec<String> = settings(r).iter().map(|(k, v)| format!("{k} {v}")).collect();
    let cold_names = [
        "cold open (evicted -> first get)",
        "with hint files",
        "hint files deleted (scan)",
    ];
    let cold = grid(&cold_names, &cold_rows(r));
    let run_names = ["skewed access (Zipf)", "with eviction", "without eviction"];
    let runs = grid(&run_names, &r.runs.each_ref().map(run_cells));
    format!(
        "caskade partitions: {} CPUs, data dir on {fs}; load avg {load0} -> {load1}\n{}\n\n{cold}\
         (page cache warm; the timed get also evicts the empty partition `other`)\n\n{runs}\n\
         throughput with eviction / without: {:.3}\n\ntotal run time {}\n",
        cpus(),
        settings.join(", "),
        r.ratio(),
        fmt_duration(r.total)
    )
}

/// The same results as one JSON object (durations in nanoseconds).
pub fn json(r: &Report) -> String {
    let [fs, load0, load1] = r.machine.each_ref().map(|s| quote(s));
    let machine = [
        ("cpus", cpus().to_string()),
        ("fs_type", fs),
        ("load_before", load0),
        ("load_after", load1),
    ];
    let samples: Vec<String> = r.cold.iter().map(|d| d.as_nanos().to_string()).collect();
    let [hinted, scan] = cold_rows(r).map(|row| row.into_iter().map(|c| (c.1, c.3)));
    let hinted = hinted.chain([
        ("target_median_ns", COLD_TARGET.as_nanos().to_string()),
        ("samples_ns", format!("[{}]", samples.join(", "))),
    ]);
    let runs = ["evicting", "all_open"].iter().zip(&r.runs).map(|(id, run)| {
        let cells = run_cells(run).into_iter().map(|c| (c.1, c.3));
        object(std::iter::once(("id", quote(id))).chain(cells))
    });
    let top = [
        ("machine", object(machine)),
        ("settings", object(settings(r))),
        ("data_dir", quote(&r.data_dir.display().to_string())),
        ("cold_open", object(hinted)),
        ("cold_open_hints_deleted", object(scan)),
        (
            "runs",
            format!("[\n    {}\n  ]", runs.collect::<Vec<_>>().join(",\n    ")),
        ),
        ("throughput_ratio", format!("{:.4}", r.ratio())),
        ("total_ns", r.total.as_nanos().to_string()),
    ];
    let lines: Vec<String> = top.iter().map(|(k, v)| format!("  {}: {v}", quote(k))).collect();
    format!("{{\n{}\n}}\n", lines.join(",\n"))
}
