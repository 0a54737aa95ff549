//! The logical history of a workload and what a crash may leave of it.
//!
//! A workload is a list of [`Step`]s run one after another; the state it
//! builds is a map from partition name to that partition's key-value pairs.
//! When the disk stops during step `i`, every step before `i` was
//! acknowledged (so it must survive, under `Durability::Always`) and step `i`
//! is in doubt: [`candidates`] lists the states the reopened database may
//! show — the prefix without step `i`, and with it (for a group of
//! concurrent puts: with any subset of its unacknowledged members).

use std::collections::BTreeMap;

/// Partition name → key → value.
pub type State = BTreeMap<String, BTreeMap<String, String>>;

/// One step of a workload.
#[derive(Debug, Clone)]
pub enum Step {
    /// `Db::create_partition` (small files, eager compaction).
    Create(String),
    /// `Db::drop_partition`.
    Drop(String),
    /// One durable put.
    Put(String, String, String),
    /// One durable delete.
    Delete(String, String),
    /// An atomic batch: `Some(value)` puts, `None` deletes.
    Batch(String, Vec<(String, Option<String>)>),
    /// Puts of distinct keys issued concurrently (one group commit).
    Group(String, Vec<(String, String)>),
    /// `Partition::compact()`: no logical change.
    Compact(String),
    /// Close the database and open it again: no logical change.
    Reopen,
}

impl Step {
    /// Applies the whole step to `state`.
    pub fn apply(&self, state: &mut State) {
        match self {
            Step::Create(p) => {
                state.entry(p.clone()).or_default();
            }
            Step::Drop(p) => {
                state.remove(p);
            }
            Step::Put(p, k, v) => put(state, p, k, v),
            Step::Delete(p, k) => {
                part(state, p).remove(k);
            }
            Step::Batch(p, ops) => {
                for (k, v) in ops {
                    match v {
                        Some(v) => put(state, p, k, v),
                        None => {
                            part(state, p).remove(k);
                        }
                    }
                }
            }
            Step::Group(p, puts) => puts.iter().for_each(|(k, v)| put(state, p, k, v)),
            Step::Compact(_) | Step::Reopen => {}
        }
    }
}

fn part<'a>(state: &'a mut State, p: &str) -> &'a mut BTreeMap<String, String> {
    state
        .get_mut(p)
        .unwrap_or_else(|| panic!("workload bug: {p} used before it is created"))
}

fn put(state: &mut State, p: &str, k: &str, v: &str) {
    part(state, p).insert(k.to_owned(), v.to_owned());
}

/// How far a run got before the disk stopped.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The first step that failed (`None`: every step was acknowledged).
    /// The database's own open counts as a step before step 0: if it failed,
    /// `failed` is `Some(0)` and `opened` is false.
    pub failed: Option<usize>,
    /// Whether the first open of the database succeeded.
    pub opened: bool,
    /// For a failed [`Step::Group`]: which members were acknowledged.
    pub acked_members: Vec<bool>,
    /// Steps acknowledged.
    pub acked: usize,
}

/// The states a reopened database may show after `outcome`.
pub fn candidates(steps: &[Step], outcome: &Outcome) -> Vec<State> {
    let mut base = State::new();
    let Some(i) = outcome.failed else {
        steps.iter().for_each(|s| s.apply(&mut base));
        return vec![base];
    };
    steps[..i].iter().for_each(|s| s.apply(&mut base));
    if !outcome.opened {
        return vec![base];
    }
    match &steps[i] {
        Step::Group(p, puts) => {
            // Acknowledged members are durable; the others may or may not be.
            let acked = |j: usize| outcome.acked_members.get(j).copied().unwrap_or(false);
            for (j, (k, v)) in puts.iter().enumerate() {
                if acked(j) {
                    put(&mut base, p, k, v);
                }
            }
            let doubtful: Vec<&(String, String)> = puts
                .iter()
                .enumerate()
                .filter(|(j, _)| !acked(*j))
                .map(|(_, kv)| kv)
                .collect();
            (0u32..1 << doubtful.len())
                .map(|mask| {
                    let mut s = base.clone();
                    for (j, (k, v)) in doubtful.iter().enumerate() {
                        if mask & (1 << j) != 0 {
                            put(&mut s, p, k, v);
                        }
                    }
                    s
                })
                .collect()
        }
        step => {
            let mut with = base.clone();
            step.apply(&mut with);
            if with == base {
                vec![base]
            } else {
                vec![base, with]
            }
        }
    }
}

/// A readable account of how `got` differs from each candidate, for a
/// failure message.
pub fn explain(got: &State, allowed: &[State]) -> String {
    let mut out = String::new();
    for (n, want) in allowed.iter().enumerate() {
        out.push_str(&format!("candidate {n}:"));
        for p in got
            .keys()
            .chain(want.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            match (got.get(p), want.get(p)) {
                (Some(_), None) => out.push_str(&format!(" partition {p} should be gone;")),
                (None, Some(_)) => out.push_str(&format!(" partition {p} missing;")),
                (Some(g), Some(w)) => {
                    for k in g
                        .keys()
                        .chain(w.keys())
                        .collect::<std::collections::BTreeSet<_>>()
                    {
                        if g.get(k) != w.get(k) {
                            out.push_str(&format!(" {p}/{k}: got {:?} want {:?};", g.get(k), w.get(k)));
                        }
                    }
                }
                (None, None) => {}
            }
        }
        out.push('\n');
    }
    out
}
