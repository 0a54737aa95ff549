//! Rendering a [`Report`]: the table, the targets of the issue (MET /
//! MISSED), and the same results as JSON.

use std::fmt::Write as _;
use std::time::Duration;

use crate::bench::Report;
use crate::stats::{Limit, Measurement};

/// One performance target and how the run fared against it.
#[derive(Debug, Clone)]
pub struct Target {
    /// What is measured.
    pub name: &'static str,
    /// The measured value, if the run measured it.
    pub measured: Option<f64>,
    /// The value to reach.
    pub goal: f64,
    /// How values are shown: `ops/s` or `x L2`.
    pub unit: &'static str,
}

impl Target {
    /// Whether the measured value reaches the goal (`None`: not measured).
    pub fn met(&self) -> Option<bool> {
        self.measured.map(|m| m >= self.goal)
    }

    pub fn show(&self, v: f64) -> String {
        match self.unit {
            "ops/s" => format!("{} ops/s", fmt_rate(v)),
            unit => format!("{v:.2}{unit}"),
        }
    }
}

/// The phase with id `id`.
fn phase<'a>(r: &'a Report, id: &str) -> Option<&'a Measurement> {
    r.phases.iter().find(|m| m.id == id)
}

/// The rate of raw limit `l`, if it was measured.
pub fn limit_rate(r: &Report, l: Limit) -> Option<f64> {
    phase(r, l.id()).map(Measurement::ops_per_sec)
}

/// Rate of `m` divided by the rate of its raw limit, if both were measured.
pub fn ratio(r: &Report, m: &Measurement) -> Option<f64> {
    let limit = limit_rate(r, m.limit?)?;
    (limit > 0.0).then(|| m.ops_per_sec() / limit)
}

/// The targets, evaluated on `r`.
pub fn targets(r: &Report) -> Vec<Target> {
    let rate = |id: &str| phase(r, id).map(Measurement::ops_per_sec);
    vec![
        Target {
            name: "random get, 1 task",
            measured: rate("get_t1"),
            goal: 1_000_000.0,
            unit: "ops/s",
        },
        Target {
            name: "durable put, 16 tasks, vs L2 (append+fdatasync)",
            measured: phase(r, "durable_put_t16").and_then(|m| ratio(r, m)),
            goal: 8.0,
            unit: "x L2",
        },
        Target {
            name: "put, OsBuffered, 1 task",
            measured: rate("put_t1"),
            goal: 250_000.0,
            unit: "ops/s",
        },
    ]
}

/// The human-readable report: machine, settings, the phase table, reopen
/// time and targets.
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let p = &r.plan;
    // `write!` to a String cannot fail.
    let _ = writeln!(
        s,
        "caskade bench: {} CPUs, {} RAM, kernel {}, data dir on {}; load avg {} -> {}",
        m.cpus, m.memory, m.kernel, m.fs_type, r.load.0, r.load.1
    );
    let _ = writeln!(
        s,
        "keys {}, key {} B, value {} B, tasks {:?}, {} tokio workers, {} per timed phase, \
         {} durable ops per task in {} rounds\n",
        p.keys,
        p.key_size,
        p.value_size,
        p.tasks,
        p.workers,
        fmt_duration(p.duration),
        p.durable_ops,
        p.rounds
    );
    let head = [
        "phase", "tasks", "ops", "ops/s", "p50", "p99", "p99.9", "max", "vs limit", "note",
    ];
    let rows: Vec<[String; 10]> = r
        .phases
        .iter()
        .map(|ph| {
            let vs = match (ph.limit, ratio(r, ph)) {
                (Some(l), Some(x)) => format!("{x:.3}x {}", l.id()),
                _ => "-".into(),
            };
            let mut note = ph.note.clone();
            if ph.unit != "op" {
                let sep = if note.is_empty() { "" } else { "; " };
                note = format!("latency per {}{sep}{note}", ph.unit);
            }
            let q = |x| fmt_duration(ph.latency.quantile(x));
            [
                ph.name.clone(),
                ph.tasks.to_string(),
                ph.ops.to_string(),
                fmt_rate(ph.ops_per_sec()),
                q(0.5),
                q(0.99),
                q(0.999),
                fmt_duration(ph.latency.max()),
                vs,
                note,
            ]
        })
        .collect();
    let mut width = head.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            let pad = w - c.chars().count();
            // Left-align the name and the note, right-align the numbers.
            if i == 0 || i == 9 {
                l.push_str(c);
                l.push_str(&" ".repeat(pad));
            } else {
                l.push_str(&" ".repeat(pad));
                l.push_str(c);
            }
            l.push_str("  ");
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(s, "{}", line(&head.map(String::from)));
    let _ = writeln!(s, "{}", "-".repeat(width.iter().sum::<usize>() + 2 * 9));
    for row in &rows {
        let _ = writeln!(s, "{}", line(row));
    }
    let _ = writeln!(
        s,
        "\nreopen {} keys (after close: open with Always, recover, first get): {}",
        p.keys,
        fmt_duration(r.reopen)
    );
    let _ = writeln!(s, "\ntargets:");
    for t in targets(r) {
        let (value, verdict) = match (t.measured, t.met()) {
            (Some(v), Some(met)) => (t.show(v), if met { "MET" } else { "MISSED" }),
            _ => ("not measured".into(), "-"),
        };
        let _ = writeln!(
            s,
            "  {:<50} {:>16}  target >= {:<14} {verdict}",
            t.name,
            value,
            t.show(t.goal)
        );
    }
    let _ = writeln!(s, "\ntotal run time {}", fmt_duration(r.total));
    s
}

/// The same results as one JSON object (durations in nanoseconds).
pub fn json(r: &Report) -> String {
    let m = &r.machine;
    let p = &r.plan;
    let mut s = String::from("{\n");
    let _ = writeln!(
        s,
        "  \"machine\": {{\"cpus\": {}, \"kernel\": {}, \"memory\": {}, \"fs_type\": {}, \
         \"load_before\": {}, \"load_after\": {}}},",
        m.cpus,
        quote(&m.kernel),
        quote(&m.memory),
        quote(&m.fs_type),
        quote(&r.load.0),
        quote(&r.load.1)
    );
    let tasks: Vec<String> = p.tasks.iter().map(usize::to_string).collect();
    let _ = writeln!(
        s,
        "  \"plan\": {{\"keys\": {}, \"key_size\": {}, \"value_size\": {}, \"tasks\": [{}], \
         \"workers\": {}, \"duration_ns\": {}, \"durable_ops\": {}, \"rounds\": {}, \"batch\": {}, \"mixed\": {}}},",
        p.keys,
        p.key_size,
        p.value_size,
        tasks.join(", "),
        p.workers,
        p.duration.as_nanos(),
        p.durable_ops,
        p.rounds,
        p.batch,
        p.mixed
    );
    let _ = writeln!(s, "  \"data_dir\": {},", quote(&r.data_dir.display().to_string()));
    s.push_str("  \"phases\": [\n");
    let phases: Vec<String> = r
        .phases
        .iter()
        .map(|ph| {
            let ns = |d: Duration| d.as_nanos();
            format!(
                "    {{\"id\": {}, \"name\": {}, \"tasks\": {}, \"ops\": {}, \"elapsed_ns\": {}, \
                 \"ops_per_sec\": {:.1}, \"latency_unit\": {}, \"p50_ns\": {}, \"p99_ns\": {}, \
                 \"p999_ns\": {}, \"max_ns\": {}, \"limit\": {}, \"ratio_to_limit\": {}, \"note\": {}}}",
                quote(&ph.id),
                quote(&ph.name),
                ph.tasks,
                ph.ops,
                ns(ph.elapsed),
                ph.ops_per_sec(),
                quote(&ph.unit),
                ns(ph.latency.quantile(0.5)),
                ns(ph.latency.quantile(0.99)),
                ns(ph.latency.quantile(0.999)),
                ns(ph.latency.max()),
                ph.limit.map_or_else(|| "null".into(), |l| quote(l.id())),
                ratio(r, ph).map_or_else(|| "null".into(), |x| format!("{x:.4}")),
                quote(&ph.note)
            )
        })
        .collect();
    s.push_str(&phases.join(",\n"));
    s.push_str("\n  ],\n");
    let _ = writeln!(s, "  \"reopen_ns\": {},", r.reopen.as_nanos());
    s.push_str("  \"targets\": [\n");
    let targets: Vec<String> = targets(r)
        .iter()
        .map(|t| {
            format!(
                "    {{\"name\": {}, \"unit\": {}, \"measured\": {}, \"goal\": {}, \"met\": {}}}",
                quote(t.name),
                quote(t.unit),
                t.measured.map_or_else(|| "null".into(), |v| format!("{v:.3}")),
                t.goal,
                t.met().map_or_else(|| "null".into(), |b| b.to_string())
            )
        })
        .collect();
    s.push_str(&targets.join(",\n"));
    s.push_str("\n  ],\n");
    let _ = writeln!(s, "  \"total_ns\": {}", r.total.as_nanos());
    s.push_str("}\n");
    s
}

/// A JSON string literal.
pub fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// `412 ns`, `12.3 µs`, `1.20 ms`, `2.35 s`.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// `1.23 M`, `456.7 k`, `812`.
pub fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}
