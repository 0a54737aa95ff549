//! The results as rows of one table: one [`Row`] per workload, one
//! [`Cell`] per engine, and the ratios of every figure — to its raw limit
//! (`x_limit` = value ÷ limit) and to the best peer (`x_best_peer` = value
//! ÷ the best of sled, redb and fjall: the highest for rows where higher is
//! better, the lowest where lower is better; so the best peer shows 1.00).

use serde::Serialize;

use crate::engine::EngineKind;
use crate::plan::Plan;
use crate::stats::{Latency, Measurement};
use crate::suite::{EngineRun, Limits};

/// Which direction of a figure is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Throughput.
    Higher,
    /// Time, space, memory.
    Lower,
}

/// What a row's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Operations (or keys) per second.
    OpsPerSec,
    /// Seconds.
    Seconds,
    /// Bytes on disk ÷ raw bytes (keys × (key + value)).
    RawRatio,
    /// Bytes per key.
    BytesPerKey,
}

/// The raw limit a row is compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitRef {
    /// `L1`, `L2`, `L3`, `L3x2` or `L4`.
    pub id: &'static str,
    /// The limit in the row's unit.
    pub value: f64,
}

/// One engine's figure in one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// The engine.
    pub engine: EngineKind,
    /// The figure, in the row's unit.
    pub value: f64,
    /// Operations of a timed phase.
    pub ops: Option<u64>,
    /// Latency percentiles of a timed phase.
    pub latency: Option<Latency>,
    /// `value` ÷ the row's limit.
    pub x_limit: Option<f64>,
    /// `value` ÷ the best peer's value.
    pub x_best_peer: Option<f64>,
}

impl Cell {
    /// A cell of a timed phase: ops/s and latencies.
    pub fn rate(engine: EngineKind, m: &Measurement) -> Self {
        Cell {
            ops: Some(m.ops),
            latency: Some(Latency::of(&m.latency)),
            ..Cell::value(engine, m.ops_per_sec())
        }
    }

    /// A cell of a single figure.
    pub fn value(engine: EngineKind, value: f64) -> Self {
        Cell {
            engine,
            value,
            ops: None,
            latency: None,
            x_limit: None,
            x_best_peer: None,
        }
    }
}

/// One workload: a figure per engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Stable identifier, e.g. `get_t16`.
    pub id: String,
    /// Human-readable description.
    pub name: String,
    /// The values' unit.
    pub unit: Unit,
    /// Which direction is good.
    pub better: Better,
    /// The raw limit compared with, if any.
    pub limit: Option<LimitRef>,
    /// What one latency sample covers, for timed phases.
    pub latency_per: Option<String>,
    /// One cell per engine, in the run's order.
    pub cells: Vec<Cell>,
}

impl Row {
    fn new(id: impl Into<String>, name: impl Into<String>, unit: Unit, better: Better) -> Self {
        Row {
            id: id.into(),
            name: name.into(),
            unit,
            better,
            limit: None,
            latency_per: None,
            cells: Vec::new(),
        }
    }

    fn limit(mut self, id: &'static str, value: f64) -> Self {
        self.limit = Some(LimitRef { id, value });
        self
    }

    fn per(mut self, what: &str) -> Self {
        self.latency_per = Some(what.to_owned());
        self
    }

    fn cells(mut self, cells: impl IntoIterator<Item = Cell>) -> Self {
        self.cells = cells.into_iter().collect();
        self.compute_ratios();
        self
    }

    /// The best peer's value (`None` without a peer with a positive value).
    pub fn best_peer(&self) -> Option<f64> {
        let peers = self
            .cells
            .iter()
            .filter(|c| c.engine.is_peer() && c.value > 0.0)
            .map(|c| c.value);
        match self.better {
            Better::Higher => peers.reduce(f64::max),
            Better::Lower => peers.reduce(f64::min),
        }
    }

    /// Fills every cell's `x_limit` and `x_best_peer`.
    pub fn compute_ratios(&mut self) {
        let best = self.best_peer();
        let limit = self.limit.as_ref().map(|l| l.value).filter(|&v| v > 0.0);
        for c in &mut self.cells {
            c.x_limit = limit.map(|l| c.value / l);
            c.x_best_peer = best.map(|b| c.value / b);
        }
    }
}

/// Builds the table's rows from the limits and the engines' runs.
pub fn rows(plan: &Plan, limits: &Limits, runs: &[EngineRun]) -> Vec<Row> {
    let rate = |m: &Measurement| m.ops_per_sec();
    let (l1, l2, l3, l3x2) = (
        rate(&limits.l1),
        rate(&limits.l2),
        rate(&limits.l3),
        rate(&limits.l3x2),
    );
    let per_task =
        |list: &[(usize, Measurement)], t: usize| list.iter().find(|(n, _)| *n == t).map(|(_, m)| m.clone());
    let mut out = vec![
        Row::new(
            "fill",
            format!("bulk fill, batches of {}", plan.batch),
            Unit::OpsPerSec,
            Better::Higher,
        )
        .limit("L1", l1)
        .per(&format!("batch of {}", plan.batch))
        .cells(runs.iter().map(|r| Cell::rate(r.engine, &r.fill))),
    ];
    for &t in &plan.get_tasks {
        let (id, value) = if t == 1 { ("L3", l3) } else { ("L3x2", l3x2) };
        out.push(
            Row::new(
                format!("get_t{t}"),
                format!("random get, {t} task(s)"),
                Unit::OpsPerSec,
                Better::Higher,
            )
            .limit(id, value)
            .per("op")
            .cells(
                runs.iter()
                    .filter_map(|r| per_task(&r.gets, t).map(|m| Cell::rate(r.engine, &m))),
            ),
        );
    }
    for &t in &plan.put_tasks {
        out.push(
            Row::new(
                format!("put_t{t}"),
                format!("non-durable put, {t} task(s)"),
                Unit::OpsPerSec,
                Better::Higher,
            )
            .limit("L1", l1)
            .per("op")
            .cells(
                runs.iter()
                    .filter_map(|r| per_task(&r.puts, t).map(|m| Cell::rate(r.engine, &m))),
            ),
        );
    }
    for &t in &plan.durable_tasks {
        out.push(
            Row::new(
                format!("durable_put_t{t}"),
                format!("durable put, {t} task(s)"),
                Unit::OpsPerSec,
                Better::Higher,
            )
            .limit("L2", l2)
            .per("op")
            .cells(
                runs.iter()
                    .filter_map(|r| per_task(&r.durable, t).map(|m| Cell::rate(r.engine, &m))),
            ),
        );
    }
    let readers = plan.mixed_readers;
    out.push(
        Row::new(
            "mixed_get",
            format!("mixed: gets of {readers} readers"),
            Unit::OpsPerSec,
            Better::Higher,
        )
        .limit("L3x2", l3x2)
        .per("op")
        .cells(runs.iter().map(|r| Cell::rate(r.engine, &r.mixed.0))),
    );
    out.push(
        Row::new(
            "mixed_put",
            "mixed: puts of 1 writer",
            Unit::OpsPerSec,
            Better::Higher,
        )
        .limit("L1", l1)
        .per("op")
        .cells(runs.iter().map(|r| Cell::rate(r.engine, &r.mixed.1))),
    );
    out.push(
        Row::new(
            "reopen",
            "cold reopen to the first get",
            Unit::Seconds,
            Better::Lower,
        )
        .limit("L4", limits.l4.elapsed.as_secs_f64())
        .cells(runs.iter().map(|r| Cell::value(r.engine, r.reopen.as_secs_f64()))),
    );
    let raw = (plan.keys * plan.record_size() as u64) as f64;
    let rounds = plan.overwrite_rounds;
    out.push(
        Row::new(
            "space",
            format!("space, {rounds} overwrite rounds, no compaction"),
            Unit::RawRatio,
            Better::Lower,
        )
        .cells(
            runs.iter()
                .map(|r| Cell::value(r.engine, r.space.allocated as f64 / raw)),
        ),
    );
    if runs.iter().any(|r| r.compacted.is_some()) {
        let cells = runs.iter().map(|r| {
            let bytes = r
                .compacted
                .as_ref()
                .map_or(r.space.allocated, |(size, _)| size.allocated);
            Cell::value(r.engine, bytes as f64 / raw)
        });
        out.push(
            Row::new(
                "space_compacted",
                "space, caskade after compact()",
                Unit::RawRatio,
                Better::Lower,
            )
            .cells(cells),
        );
    }
    out.push(
        Row::new(
            "memory",
            "memory per key (RSS growth of open + fill)",
            Unit::BytesPerKey,
            Better::Lower,
        )
        .cells(runs.iter().map(|r| {
            let grown = r.rss_after.saturating_sub(r.rss_before) as f64;
            Cell::value(r.engine, grown / plan.keys as f64)
        })),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(better: Better, values: &[(EngineKind, f64)]) -> Row {
        Row::new("x", "x", Unit::OpsPerSec, better)
            .limit("L1", 200.0)
            .cells(values.iter().map(|&(e, v)| Cell::value(e, v)))
    }

    #[test]
    fn ratios_to_the_best_peer_and_the_limit() {
        use EngineKind::*;
        let r = row(
            Better::Higher,
            &[(Caskade, 300.0), (Sled, 50.0), (Redb, 150.0), (Fjall, 100.0)],
        );
        assert_eq!(r.best_peer(), Some(150.0));
        let caskade = &r.cells[0];
        assert_eq!(caskade.x_best_peer, Some(2.0));
        assert_eq!(caskade.x_limit, Some(1.5));
        assert_eq!(r.cells[2].x_best_peer, Some(1.0));
        assert_eq!(r.cells[1].x_limit, Some(0.25));
    }

    #[test]
    fn lower_is_better_picks_the_smallest_peer() {
        use EngineKind::*;
        let r = row(
            Better::Lower,
            &[(Caskade, 1.0), (Sled, 4.0), (Redb, 2.0), (Fjall, 0.0)],
        );
        // A zero peer value (nothing measured) is never the reference.
        assert_eq!(r.best_peer(), Some(2.0));
        assert_eq!(r.cells[0].x_best_peer, Some(0.5));
    }

    #[test]
    fn no_peer_means_no_peer_ratio() {
        let r = row(Better::Higher, &[(EngineKind::Caskade, 10.0)]);
        assert_eq!(r.best_peer(), None);
        assert_eq!(r.cells[0].x_best_peer, None);
        assert_eq!(r.cells[0].x_limit, Some(0.05));
    }
}
