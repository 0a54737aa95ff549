//! The cells, grids and JSON fragments the compaction report is printed from.

use super::*;

pub(super) fn int(head: &'static str, key: &'static str, v: u64) -> Cell {
    (head, key, v.to_string(), v.to_string())
}

pub(super) fn mib(head: &'static str, key: &'static str, bytes: u64) -> Cell {
    (head, key, fmt_mib(bytes), bytes.to_string())
}

pub(super) fn rate(head: &'static str, key: &'static str, v: f64) -> Cell {
    (head, key, fmt_rate(v), format!("{v:.1}"))
}

pub(super) fn time(head: &'static str, key: &'static str, v: Duration) -> Cell {
    (head, key, fmt_duration(v), v.as_nanos().to_string())
}

pub(super) fn float(head: &'static str, key: &'static str, v: f64, digits: usize) -> Cell {
    let json = if v.is_finite() {
        format!("{v:.4}")
    } else {
        "null".into()
    };
    (head, key, format!("{v:.digits$}"), json)
}

/// The cells of a directory measurement (sizes in MiB in the table, bytes in JSON).
pub(super) fn disk_cells(d: &Disk) -> Vec<Cell> {
    vec![
        mib("data MiB", "data_bytes", d.data_bytes),
        mib("hints MiB", "hint_bytes", d.hint_bytes),
        mib("data+hints MiB", "footprint_bytes", d.footprint()),
        mib("live MiB", "live_bytes", d.live_bytes),
        mib("dead MiB", "dead_bytes", d.dead_bytes),
        int("data files", "data_files", d.data_files),
        int("hint files", "hint_files", d.hint_files),
        int("keys", "keys", d.keys),
        float("disk/live", "disk_over_live", d.ratio(), 3),
        float("data/live", "data_over_live", d.data_ratio(), 3),
    ]
}

/// The cells of a load phase.
pub(super) fn phase_cells(p: &Phase) -> Vec<Cell> {
    let (written, read) = p.compaction_mib_per_sec();
    let compacting = p.variant.is_some();
    let opt = |head, key, v: f64, show: bool| -> Cell {
        if show {
            float(head, key, v, 1)
        } else {
            (head, key, "-".into(), "null".into())
        }
    };
    vec![
        int("round", "round", p.round as u64),
        int("windows", "windows", p.windows as u64),
        time("load time", "elapsed_ns", p.elapsed),
        rate("gets/s", "gets_per_sec", p.rate(p.gets.count())),
        time("get p50", "get_p50_ns", p.get_q(0.5)),
        time("get p99", "get_p99_ns", p.get_q(0.99)),
        time("get p99.9", "get_p999_ns", p.get_q(0.999)),
        time("get max", "get_max_ns", p.gets.max()),
        int("puts", "puts", p.puts.count()),
        rate("puts/s", "puts_per_sec", p.rate(p.puts.count())),
        time("put p50", "put_p50_ns", p.puts.quantile(0.5)),
        time("put p99", "put_p99_ns", p.puts.quantile(0.99)),
        time("put p99.9", "put_p999_ns", p.puts.quantile(0.999)),
        time("put max", "put_max_ns", p.puts.max()),
        float("cores", "cores_used", p.cores(), 2),
        float("workers", "worker_cores", p.role_cores(Role::Workers), 2),
        float("actor", "actor_cores", p.role_cores(Role::Actor), 2),
        float("copier", "copier_cores", p.role_cores(Role::Copier), 2),
        int("compactions", "compactions", p.compactions.len() as u64),
        time("compaction", "compaction_total_ns", p.compaction_time()),
        opt(
            "written MiB/s",
            "compaction_written_mib_per_sec",
            written,
            compacting,
        ),
        opt("read MiB/s", "compaction_read_mib_per_sec", read, compacting),
    ]
}

/// The cells of one compaction.
pub(super) fn compaction_cells(r: &CompactionReport) -> Vec<Cell> {
    let secs = r.duration.as_secs_f64().max(1e-9);
    let per_sec = r.bytes_after as f64 / f64::from(1 << 20) / secs;
    vec![
        time("took", "duration_ns", r.duration),
        mib("before MiB", "bytes_before", r.bytes_before),
        mib("after MiB", "bytes_after", r.bytes_after),
        int("records", "records_copied", r.records_copied),
        int("files in", "files_compacted", r.files_compacted as u64),
        int("files out", "files_written", r.files_written as u64),
        float("written MiB/s", "written_mib_per_sec", per_sec, 1),
    ]
}

/// A JSON object of `fields` (values already JSON).
pub(super) fn object(fields: impl IntoIterator<Item = (&'static str, String)>) -> String {
    let fields: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{}: {v}", quote(k)))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// A JSON array of already-JSON items.
pub(super) fn array(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(", "))
}

/// The cells as a JSON object.
pub(super) fn cells_object(cells: Vec<Cell>) -> String {
    object(cells.into_iter().map(|c| (c.1, c.3)))
}

/// A rate limit as JSON: bytes per second or null.
pub(super) fn limit_json(l: RateLimit) -> String {
    l.0.map_or_else(|| "null".into(), |b| b.to_string())
}

/// A variant's knobs as JSON fields.
pub(super) fn variant_fields(v: Option<Variant>) -> [(&'static str, String); 2] {
    [
        (
            "rate_limit",
            v.map_or_else(|| "null".into(), |v| limit_json(v.limit)),
        ),
        ("nice", v.map_or_else(|| "null".into(), |v| v.nice.to_string())),
    ]
}

/// The settings, as (name, JSON value).
pub(super) fn settings(r: &Report) -> Vec<(&'static str, String)> {
    let a = &r.args;
    let n = |k, v: &dyn ToString| (k, v.to_string());
    vec![
        n("keys", &a.keys),
        n("key_size", &a.key_size),
        n("value_size", &a.value_size),
        n("overwrites", &a.overwrites),
        n("batch", &a.batch),
        n("readers", &a.readers),
        n("writers", &a.writers),
        ("durability", quote(a.durability.name())),
        n("workers", &a.workers),
        n("seconds_per_phase", &a.duration.as_secs_f64()),
        n("rounds", &a.rounds),
        n("overwrite_fraction", &a.overwrite_fraction),
        n("step_keys", &a.step_keys()),
        ("rate_limits", array(a.rate_limits.iter().map(|&l| limit_json(l)))),
        ("nices", array(a.nices.iter().map(i32::to_string))),
        n("min_dead_ratio", &a.min_dead_ratio),
        n("min_dead_bytes", &a.min_dead_bytes),
        n("min_space_saving", &a.min_space_saving),
        n("check_interval_s", &a.check_interval.as_secs_f64()),
        n("raw_bytes", &a.raw_bytes()),
    ]
}

/// Logical CPUs available to the process.
pub(super) fn cpus() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}
