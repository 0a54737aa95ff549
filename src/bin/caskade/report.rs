//! Rendering a [`Report`]: the phase table, the reopen, memory and space
//! figures, the targets of the issue (MET / MISSED), and the same results
//! as JSON.

use std::fmt::Write as _;
use std::time::Duration;

use crate::bench::Report;
use crate::footprint::{Footprint, Memory, Space};
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
    /// How values are shown: `x L3`, `x L2`, `ms`, `x raw`, `B/key`.
    pub unit: &'static str,
    /// Whether the goal is a floor (`>=`) rather than a ceiling (`<=`).
    pub at_least: bool,
}

impl Target {
    /// Whether the measured value reaches the goal (`None`: not measured).
    pub fn met(&self) -> Option<bool> {
        self.measured.map(|m| {
            if self.at_least {
                m >= self.goal
            } else {
                m <= self.goal
            }
        })
    }

    /// `v` in the target's unit.
    pub fn show(&self, v: f64) -> String {
        match self.unit {
            "ms" | "B/key" => format!("{v:.1} {}", self.unit),
            unit => format!("{v:.2}{unit}"),
        }
    }

    /// `>=` or `<=`.
    pub fn relation(&self) -> &'static str {
        if self.at_least { ">=" } else { "<=" }
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

/// The targets of issue 5 that one `caskade bench` run can judge (the
/// ones against the best peer need `benches/peers`), evaluated on `r`.
pub fn targets(r: &Report) -> Vec<Target> {
    // The targets are stated for the default shape of the data.
    let default_shape = r.plan.keys == 1_000_000 && r.plan.key_size == 16 && r.plan.value_size == 100;
    let shaped = |v: Option<f64>| v.filter(|_| default_shape);
    vec![
        Target {
            name: "random get, 1 task, vs L3 (raw pread)",
            measured: phase(r, "get_t1").and_then(|m| ratio(r, m)),
            goal: 0.5,
            unit: "x L3",
            at_least: true,
        },
        Target {
            name: "durable put, 16 tasks, vs L2 (append+fdatasync)",
            measured: phase(r, "durable_put_t16").and_then(|m| ratio(r, m)),
            goal: 10.0,
            unit: "x L2",
            at_least: true,
        },
        Target {
            name: "cold open of 1M keys, to the first get",
            measured: shaped(r.reopen.map(|d| d.as_secs_f64() * 1e3)),
            goal: 250.0,
            unit: "ms",
            at_least: false,
        },
        Target {
            name: "disk after 3 overwrites and compact(), vs raw",
            measured: shaped(
                r.space
                    .as_ref()
                    .filter(|s| s.overwrites == 3)
                    .map(|s| s.after.vs_raw(s.raw_bytes)),
            ),
            goal: 1.5,
            unit: "x raw",
            at_least: false,
        },
        Target {
            name: "index memory (RSS growth over the fill / keys)",
            measured: shaped(r.memory.as_ref().map(Memory::per_key)),
            goal: 100.0,
            unit: "B/key",
            at_least: false,
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
    let list = |l: &[usize]| l.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let workloads: Vec<&str> = p.schedule().iter().map(|w| w.name()).collect();
    let _ = writeln!(
        s,
        "workloads {}\nkeys {}, key {} B, value {} B; tasks: get {}, put {}, durable {}; puts {}; \
         {} tokio workers, {} per timed phase, {} durable ops per task in {} rounds\n",
        workloads.join(","),
        p.keys,
        p.key_size,
        p.value_size,
        list(&p.get_tasks),
        list(&p.put_tasks),
        list(&p.durable_tasks),
        p.durability.show(),
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
    if let Some(d) = r.reopen {
        let _ = writeln!(
            s,
            "\nreopen {} keys (after close: open with Always, recover, first get): {}",
            p.keys,
            fmt_duration(d)
        );
    }
    if let Some(m) = &r.memory {
        s.push_str(&memory_line(m));
    }
    if let Some(sp) = &r.space {
        s.push_str(&space_table(sp));
    }
    let _ = writeln!(s, "\ntargets:");
    for t in targets(r) {
        let (value, verdict) = match (t.measured, t.met()) {
            (Some(v), Some(met)) => (t.show(v), if met { "MET" } else { "MISSED" }),
            _ => ("not measured".into(), "-"),
        };
        let _ = writeln!(
            s,
            "  {:<50} {:>16}  target {} {:<14} {verdict}",
            t.name,
            value,
            t.relation(),
            t.show(t.goal)
        );
    }
    let _ = writeln!(s, "\ntotal run time {}", fmt_duration(r.total));
    s
}

/// The memory figure: RSS growth over the fill, per key.
fn memory_line(m: &Memory) -> String {
    format!(
        "\nindex memory: {:.1} B per key (RSS {} -> {} over the fill of {} keys: +{})\n",
        m.per_key(),
        fmt_bytes(m.rss_before),
        fmt_bytes(m.rss_after),
        m.keys,
        fmt_bytes(m.growth())
    )
}

/// The space figures: footprint before and after the compaction.
fn space_table(sp: &Space) -> String {
    let mut s = format!(
        "\nspace amplification: {} keys written {} times (fill + {} overwrite rounds, scheduler off); \
         raw = keys x (key + value) = {}\n",
        sp.keys,
        u64::from(sp.overwrites) + 1,
        sp.overwrites,
        fmt_bytes(sp.raw_bytes)
    );
    let _ = writeln!(
        s,
        "  {:<22} {:>11} {:>11} {:>11} {:>6} {:>11} {:>11} {:>9} {:>9}",
        "state", "data+hint", "data", "hint", "files", "live", "dead", "vs raw", "vs live"
    );
    let row = |name: &str, f: &Footprint| {
        format!(
            "  {name:<22} {:>11} {:>11} {:>11} {:>6} {:>11} {:>11} {:>8.2}x {:>8.2}x\n",
            fmt_bytes(f.bytes()),
            fmt_bytes(f.data_bytes),
            fmt_bytes(f.hint_bytes),
            f.data_files + f.hint_files,
            fmt_bytes(f.live_bytes),
            fmt_bytes(f.dead_bytes),
            f.vs_raw(sp.raw_bytes),
            f.vs_live()
        )
    };
    s.push_str(&row(&format!("after {} overwrites", sp.overwrites), &sp.before));
    s.push_str(&row("after compact()", &sp.after));
    let _ = writeln!(
        s,
        "  compact() took {}, copied {} live records",
        fmt_duration(sp.compaction),
        sp.records_copied
    );
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
    let list = |l: &[usize]| l.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
    let workloads: Vec<String> = p.schedule().iter().map(|w| quote(w.name())).collect();
    let _ = writeln!(
        s,
        "  \"plan\": {{\"workloads\": [{}], \"keys\": {}, \"key_size\": {}, \"value_size\": {}, \
         \"get_tasks\": [{}], \"put_tasks\": [{}], \"durable_tasks\": [{}], \"durability\": {}, \
         \"workers\": {}, \"duration_ns\": {}, \"durable_ops\": {}, \"rounds\": {}, \"batch\": {}, \
         \"overwrites\": {}}},",
        workloads.join(", "),
        p.keys,
        p.key_size,
        p.value_size,
        list(&p.get_tasks),
        list(&p.put_tasks),
        list(&p.durable_tasks),
        quote(&p.durability.arg()),
        p.workers,
        p.duration.as_nanos(),
        p.durable_ops,
        p.rounds,
        p.batch,
        p.overwrites
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
    let null = || "null".to_string();
    let _ = writeln!(
        s,
        "  \"reopen_ns\": {},",
        r.reopen.map_or_else(null, |d| d.as_nanos().to_string())
    );
    let _ = writeln!(
        s,
        "  \"memory\": {},",
        r.memory.as_ref().map_or_else(null, memory_json)
    );
    let _ = writeln!(
        s,
        "  \"space\": {},",
        r.space.as_ref().map_or_else(null, space_json)
    );
    s.push_str("  \"targets\": [\n");
    let targets: Vec<String> = targets(r)
        .iter()
        .map(|t| {
            format!(
                "    {{\"name\": {}, \"unit\": {}, \"relation\": {}, \"measured\": {}, \"goal\": {}, \"met\": {}}}",
                quote(t.name),
                quote(t.unit),
                quote(t.relation()),
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

fn memory_json(m: &Memory) -> String {
    format!(
        "{{\"keys\": {}, \"rss_before_bytes\": {}, \"rss_after_bytes\": {}, \"growth_bytes\": {}, \
         \"bytes_per_key\": {:.2}}}",
        m.keys,
        m.rss_before,
        m.rss_after,
        m.growth(),
        m.per_key()
    )
}

fn space_json(sp: &Space) -> String {
    let f = |f: &Footprint| {
        format!(
            "{{\"bytes\": {}, \"data_bytes\": {}, \"hint_bytes\": {}, \"data_files\": {}, \
             \"hint_files\": {}, \"live_bytes\": {}, \"dead_bytes\": {}, \"vs_raw\": {:.4}, \"vs_live\": {:.4}}}",
            f.bytes(),
            f.data_bytes,
            f.hint_bytes,
            f.data_files,
            f.hint_files,
            f.live_bytes,
            f.dead_bytes,
            f.vs_raw(sp.raw_bytes),
            f.vs_live()
        )
    };
    format!(
        "{{\"keys\": {}, \"overwrites\": {}, \"raw_bytes\": {}, \"compaction_ns\": {}, \
         \"records_copied\": {}, \"after_overwrites\": {}, \"after_compaction\": {}}}",
        sp.keys,
        sp.overwrites,
        sp.raw_bytes,
        sp.compaction.as_nanos(),
        sp.records_copied,
        f(&sp.before),
        f(&sp.after)
    )
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

/// `812 B`, `12.3 KiB`, `45.6 MiB`, `1.23 GiB`.
pub fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    if b < 1024.0 {
        format!("{b:.0} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
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
