//! What `caskade compaction` measured ([`Report`], [`Fill`], [`Disk`],
//! [`Phase`]), the comparisons and targets drawn from it, and its table
//! and JSON, both built from the same lists of cells so they cannot disagree.

use std::path::PathBuf;
use std::time::Duration;

use caskade::CompactionReport;

use super::cpu::Role;
use super::{CompactionArgs, RateLimit, Variant, fmt_mib};
use crate::grid::{Cell, grid};
use crate::report::{fmt_duration, fmt_rate, quote};
use crate::stats::Recorder;

mod cells;
use cells::*;

/// Target: disk ≤ this × live bytes after the scheduler settled.
pub const DISK_TARGET: f64 = 1.5;
/// Target: get p99 during a compaction ≤ this × without.
pub const P99_TARGET: f64 = 2.0;
/// Target: write throughput during a compaction ≥ this × without.
pub const WRITE_TARGET: f64 = 0.7;

/// Everything a run measured.
#[derive(Debug)]
pub struct Report {
    /// The settings.
    pub args: CompactionArgs,
    /// Where it ran (deleted afterwards unless given with `--dir`).
    pub data_dir: PathBuf,
    /// File system type of the data directory; load average before and after.
    pub machine: [String; 3],
    /// The space phase.
    pub fill: Fill,
    /// The load phases, in the order run.
    pub phases: Vec<Phase>,
    /// The directory after a last compaction without load (unless
    /// `--no-floor`), and whether that compaction ran (it is skipped below
    /// `min_space_saving`).
    pub floor: Option<(Disk, bool)>,
    /// Wall time of the whole run.
    pub total: Duration,
}

/// The space phase: fill and overwrites with the scheduler on.
#[derive(Debug, Default)]
pub struct Fill {
    /// Keys per second of the fill, then of each overwrite round.
    pub rates: Vec<f64>,
    /// Wall time of the fill and the overwrite rounds.
    pub writes: Duration,
    /// Wait for the scheduler to settle afterwards.
    pub settle: Duration,
    /// Whether it settled before `--settle-timeout`.
    pub settled: bool,
    /// The scheduler's completed compactions (from `Db::events`), in order.
    pub compactions: Vec<CompactionReport>,
    /// Compactions that failed.
    pub failed: u64,
    /// `PartitionStats::compactions` at the end.
    pub scheduled: u64,
    /// The largest footprint (data + hints) seen during the writes and the
    /// settling (sampled every 50 ms).
    pub peak: u64,
    /// The directory once settled.
    pub disk: Disk,
    /// The directory after overwriting keys until the dead bytes were just
    /// below the thresholds (the most a settled partition holds), and
    /// whether a compaction started anyway; `None` if not measured.
    pub near: Option<(Disk, bool)>,
}

/// A partition's directory and size statistics at one moment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Bytes of `*.data` files.
    pub data_bytes: u64,
    /// Bytes of `*.hint` files.
    pub hint_bytes: u64,
    /// `*.data` files.
    pub data_files: u64,
    /// `*.hint` files.
    pub hint_files: u64,
    /// Live keys (`PartitionStats::keys`).
    pub keys: u64,
    /// `PartitionStats::live_bytes`: what the keys' current records take.
    pub live_bytes: u64,
    /// `PartitionStats::dead_bytes`.
    pub dead_bytes: u64,
}

impl Disk {
    /// Data plus hint bytes: the footprint the target is about.
    pub fn footprint(&self) -> u64 {
        self.data_bytes + self.hint_bytes
    }

    /// Footprint / live bytes.
    pub fn ratio(&self) -> f64 {
        self.footprint() as f64 / self.live_bytes.max(1) as f64
    }

    /// Data bytes alone / live bytes.
    pub fn data_ratio(&self) -> f64 {
        self.data_bytes as f64 / self.live_bytes.max(1) as f64
    }
}

/// One load phase: baseline (`variant` `None`) or compacting.
#[derive(Debug, Default)]
pub struct Phase {
    /// Round, from 1.
    pub round: usize,
    /// `None`: baseline; otherwise the knobs of its compactions.
    pub variant: Option<Variant>,
    /// Load windows (each after an overwrite step).
    pub windows: usize,
    /// Summed length of the windows (start to the last task's last reply).
    pub elapsed: Duration,
    /// Summed time of the overwrite steps (not measured as load).
    pub step_time: Duration,
    /// CPU time of the process during the windows.
    pub cpu: Duration,
    /// The same by thread role (`cpu::Role` order: workers, actor, copy, other).
    pub threads: super::cpu::ByRole,
    /// Per-get latencies.
    pub gets: Recorder,
    /// Per-put latencies.
    pub puts: Recorder,
    /// The compactions, one per window.
    pub compactions: Vec<CompactionReport>,
}

impl Phase {
    /// Events per second of the windows.
    pub fn rate(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Get latency at quantile `q`.
    pub fn get_q(&self, q: f64) -> Duration {
        self.gets.quantile(q)
    }

    /// Cores the process used on average during the windows.
    pub fn cores(&self) -> f64 {
        self.cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Cores threads of `role` used on average during the windows.
    pub fn role_cores(&self, role: super::cpu::Role) -> f64 {
        self.threads[role as usize].as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Summed compaction time.
    pub fn compaction_time(&self) -> Duration {
        self.compactions.iter().map(|r| r.duration).sum()
    }

    /// MiB per second the compactions wrote (`bytes_after`) and read (`bytes_before`).
    pub fn compaction_mib_per_sec(&self) -> (f64, f64) {
        let secs = self.compaction_time().as_secs_f64().max(1e-9);
        let sum = |f: fn(&CompactionReport) -> u64| self.compactions.iter().map(f).sum::<u64>();
        let mib = f64::from(1 << 20);
        let (after, before) = (sum(|r| r.bytes_after), sum(|r| r.bytes_before));
        (after as f64 / mib / secs, before as f64 / mib / secs)
    }

    /// `baseline` or `compacting, limit X, nice N`.
    pub fn label(&self) -> String {
        match self.variant {
            None => "baseline".into(),
            Some(v) => format!("compacting, {}", v.show()),
        }
    }
}

/// A compacting phase against the baseline of its round.
#[derive(Debug, Clone, PartialEq)]
pub struct Ratio {
    /// Round, from 1.
    pub round: usize,
    /// The compacting phase's knobs.
    pub variant: Variant,
    /// Its get p99 / the baseline's.
    pub p99: f64,
    /// Its puts per second / the baseline's.
    pub writes: f64,
}

impl Report {
    /// The baseline of round `round`: the baseline phases just before and
    /// just after its compacting phases (rounds `round` and `round + 1`),
    /// merged: their get latencies, and puts per second over both.
    pub fn baseline(&self, round: usize) -> Option<(Recorder, f64)> {
        let around = |b: &&Phase| b.variant.is_none() && (b.round == round || b.round == round + 1);
        let phases: Vec<&Phase> = self.phases.iter().filter(around).collect();
        if phases.is_empty() {
            return None;
        }
        let mut gets = Recorder::new();
        let (mut puts, mut elapsed) = (0, Duration::ZERO);
        for b in phases {
            gets.merge(&b.gets);
            puts += b.puts.count();
            elapsed += b.elapsed;
        }
        Some((gets, puts as f64 / elapsed.as_secs_f64().max(1e-9)))
    }

    /// Every compacting phase against its round's [`Report::baseline`].
    pub fn ratios(&self) -> Vec<Ratio> {
        let mut out = Vec::new();
        for c in &self.phases {
            let (Some(variant), Some((gets, put_rate))) = (c.variant, self.baseline(c.round)) else {
                continue;
            };
            let p99 = c.get_q(0.99).as_secs_f64() / gets.quantile(0.99).as_secs_f64().max(1e-12);
            let writes = c.rate(c.puts.count()) / put_rate.max(1e-9);
            out.push(Ratio {
                round: c.round,
                variant,
                p99,
                writes,
            });
        }
        out
    }

    /// Per variant: the medians of the p99 and write ratios over the rounds.
    pub fn medians(&self) -> Vec<(Variant, f64, f64)> {
        let ratios = self.ratios();
        self.args
            .variants()
            .into_iter()
            .map(|v| {
                let of =
                    |f: fn(&Ratio) -> f64| median(ratios.iter().filter(|r| r.variant == v).map(f).collect());
                (v, of(|r| r.p99), of(|r| r.writes))
            })
            .collect()
    }

    /// The targets: (name, measured, shown goal, met).
    pub fn targets(&self) -> Vec<(String, String, String, bool)> {
        let d = self.fill.disk.ratio();
        let mut t = vec![(
            "disk (data + hints) / live bytes, scheduler settled".to_string(),
            format!("{d:.3}x"),
            format!("<= {DISK_TARGET:.2}x"),
            d <= DISK_TARGET,
        )];
        for (v, p99, writes) in self.medians() {
            t.push((
                format!("get p99 during / without compaction, {}", v.show()),
                format!("{p99:.3}x"),
                format!("<= {P99_TARGET:.2}x"),
                p99 <= P99_TARGET,
            ));
            t.push((
                format!("writes/s during / without compaction, {}", v.show()),
                format!("{writes:.3}x"),
                format!(">= {WRITE_TARGET:.2}x"),
                writes >= WRITE_TARGET,
            ));
        }
        t
    }
}

/// The median (mean of the middle two for an even count); NaN if empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The human-readable report.
pub fn table(r: &Report) -> String {
    let a = &r.args;
    let [fs, load0, load1] = &r.machine;
    let f = &r.fill;
    let mut s = format!(
        "caskade compaction: {} CPUs, data dir on {fs}; load avg {load0} -> {load1}\n\
         keys {}, key {} B, value {} B (raw {} MiB), {} overwrite rounds in batches of {}; \
         thresholds: min_dead_ratio {}, min_dead_bytes {} MiB, min_space_saving {} MiB\n\
         load: {} reader(s), {} writer(s) ({}), {} workers, {} per phase, {} rounds, \
         {} keys overwritten before each window; rate limits {}; nices {:?}\n\n",
        cpus(),
        a.keys,
        a.key_size,
        a.value_size,
        fmt_mib(a.raw_bytes()),
        a.overwrites,
        a.batch,
        a.min_dead_ratio,
        fmt_mib(a.min_dead_bytes),
        fmt_mib(a.min_space_saving),
        a.readers,
        a.writers,
        a.durability.name(),
        a.workers,
        fmt_duration(a.duration),
        a.rounds,
        a.step_keys(),
        a.rate_limits
            .iter()
            .map(|l| l.show())
            .collect::<Vec<_>>()
            .join(", "),
        a.nices,
    );
    let rates: Vec<String> = f.rates.iter().map(|&x| fmt_rate(x)).collect();
    s += &format!(
        "space: fill + {} overwrites with the scheduler on: {} keys/s (fill, then each round), {}; \
         settled: {} after {}\n",
        a.overwrites,
        rates.join(" / "),
        fmt_duration(f.writes),
        if f.settled { "yes" } else { "NO (timeout)" },
        fmt_duration(f.settle),
    );
    s += &format!(
        "scheduled compactions: {} completed ({} in the stats), {} failed; peak data+hints {} MiB \
         ({:.2}x the final live bytes)\n",
        f.compactions.len(),
        f.scheduled,
        f.failed,
        fmt_mib(f.peak),
        f.peak as f64 / f.disk.live_bytes.max(1) as f64
    );
    if !f.compactions.is_empty() {
        let names: Vec<String> = std::iter::once("  compaction".to_string())
            .chain((1..=f.compactions.len()).map(|i| format!("  #{i}")))
            .collect();
        let rows: Vec<Vec<Cell>> = f.compactions.iter().map(compaction_cells).collect();
        s += &grid(&names, &rows);
    }
    let mut names = vec!["directory".to_string(), "after the scheduler settled".to_string()];
    let mut rows = vec![disk_cells(&f.disk)];
    if let Some((near, started)) = &f.near {
        names.push(match started {
            false => "just below the thresholds (worst settled)".into(),
            true => "near the thresholds (a compaction ran)".into(),
        });
        rows.push(disk_cells(near));
    }
    if let Some((floor, performed)) = &r.floor {
        names.push(match performed {
            true => "floor: after one more compact(), no load".into(),
            false => "floor: compact() skipped (< min_space_saving)".into(),
        });
        rows.push(disk_cells(floor));
    }
    s += "\n";
    s += &grid(&names, &rows);
    s += &format!(
        "disk / raw keys x (key + value): {:.3}x settled\n\n",
        f.disk.footprint() as f64 / a.raw_bytes().max(1) as f64
    );
    let names: Vec<String> = std::iter::once("load phase".to_string())
        .chain(r.phases.iter().map(Phase::label))
        .collect();
    let rows: Vec<Vec<Cell>> = r.phases.iter().map(phase_cells).collect();
    s += &grid(&names, &rows);
    s += "\ncompacting / baseline of the same round (the baselines before and after it, merged):\n";
    for x in r.ratios() {
        s += &format!(
            "  round {}, {}: get p99 {:.3}x, writes/s {:.3}x\n",
            x.round,
            x.variant.show(),
            x.p99,
            x.writes
        );
    }
    s += "\ntargets (medians over the rounds):\n";
    for (name, measured, goal, met) in r.targets() {
        let verdict = if met { "MET" } else { "MISSED" };
        s += &format!("  {name:<62} {measured:>9}  target {goal:<9} {verdict}\n");
    }
    s += &format!("\ntotal run time {}\n", fmt_duration(r.total));
    s
}

/// The same results as one JSON object (durations in nanoseconds, sizes in bytes).
pub fn json(r: &Report) -> String {
    let [fs, load0, load1] = r.machine.each_ref().map(|s| quote(s));
    let machine = [
        ("cpus", cpus().to_string()),
        ("fs_type", fs),
        ("load_before", load0),
        ("load_after", load1),
    ];
    let f = &r.fill;
    let rates = array(f.rates.iter().map(|x| format!("{x:.1}")));
    let compactions = array(f.compactions.iter().map(|c| cells_object(compaction_cells(c))));
    let space = [
        ("keys_per_sec", rates),
        ("writes_ns", f.writes.as_nanos().to_string()),
        ("settle_ns", f.settle.as_nanos().to_string()),
        ("settled", f.settled.to_string()),
        ("compactions", compactions),
        ("compactions_in_stats", f.scheduled.to_string()),
        ("failed", f.failed.to_string()),
        ("peak_footprint_bytes", f.peak.to_string()),
        ("disk", cells_object(disk_cells(&f.disk))),
        (
            "near_threshold",
            f.near.as_ref().map_or_else(
                || "null".into(),
                |(d, started)| {
                    let head = [("compaction_started", started.to_string())];
                    object(
                        head.into_iter()
                            .chain(disk_cells(d).into_iter().map(|c| (c.1, c.3))),
                    )
                },
            ),
        ),
        (
            "disk_over_raw",
            format!(
                "{:.4}",
                f.disk.footprint() as f64 / r.args.raw_bytes().max(1) as f64
            ),
        ),
    ];
    let phases = r.phases.iter().map(|p| {
        let kind = if p.variant.is_some() {
            "compacting"
        } else {
            "baseline"
        };
        let head = std::iter::once(("kind", quote(kind))).chain(variant_fields(p.variant));
        let each = array(p.compactions.iter().map(|c| cells_object(compaction_cells(c))));
        let cells = phase_cells(p).into_iter().map(|c| (c.1, c.3));
        object(head.chain(cells).chain([("each_compaction", each)]))
    });
    let ratios = r.ratios().into_iter().map(|x| {
        let round = [("round", x.round.to_string())];
        object(round.into_iter().chain(variant_fields(Some(x.variant))).chain([
            ("get_p99_ratio", format!("{:.4}", x.p99)),
            ("write_ratio", format!("{:.4}", x.writes)),
        ]))
    });
    let medians = r.medians().into_iter().map(|(v, p99, w)| {
        let num = |v: f64| {
            if v.is_finite() {
                format!("{v:.4}")
            } else {
                "null".into()
            }
        };
        object(variant_fields(Some(v)).into_iter().chain([
            ("get_p99_ratio", num(p99)),
            ("get_p99_met", (p99 <= P99_TARGET).to_string()),
            ("write_ratio", num(w)),
            ("write_met", (w >= WRITE_TARGET).to_string()),
        ]))
    });
    let targets = object([
        ("disk_over_live", DISK_TARGET.to_string()),
        ("get_p99_ratio", P99_TARGET.to_string()),
        ("write_ratio", WRITE_TARGET.to_string()),
        ("disk_met", (f.disk.ratio() <= DISK_TARGET).to_string()),
    ]);
    let floor = r.floor.as_ref().map_or_else(
        || "null".into(),
        |(d, performed)| {
            let compacted = [("compacted", performed.to_string())];
            object(
                compacted
                    .into_iter()
                    .chain(disk_cells(d).into_iter().map(|c| (c.1, c.3))),
            )
        },
    );
    let join = |items: Vec<String>| format!("[\n    {}\n  ]", items.join(",\n    "));
    let top = [
        ("machine", object(machine)),
        ("settings", object(settings(r))),
        ("data_dir", quote(&r.data_dir.display().to_string())),
        ("space", object(space)),
        ("floor", floor),
        ("phases", join(phases.collect())),
        ("ratios", join(ratios.collect())),
        ("medians", join(medians.collect())),
        ("targets", targets),
        ("total_ns", r.total.as_nanos().to_string()),
    ];
    let lines: Vec<String> = top.iter().map(|(k, v)| format!("  {}: {v}", quote(k))).collect();
    format!("{{\n{}\n}}\n", lines.join(",\n"))
}
