//! The logical history of a workload and what a crash may leave of it.
//!
//! A workload is a list of [`Step`]s run one after another; the state it
//! builds is a map from partition name to that partition's key-value pairs.
//! Each step of a run has a [`Fate`]: acknowledged (so it must survive,
//! under `Durability::Always`), refused, or in doubt (it failed after
//! starting I/O). [`possible`] lists the states a reopened database may
//! show: the acknowledged steps in order, with or without each doubtful
//! one (for a group of concurrent puts: with any subset of its
//! unacknowledged members). When a disk stops during step `i`, the steps
//! before `i` are acknowledged and `i` is in doubt.
#![allow(dead_code)] // each test binary uses a part

use std::collections::{BTreeMap, BTreeSet};

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
    /// Close the database, leave a record cut short at the end of the
    /// partition's newest data file (as a crash mid-append would), open it
    /// again: recovery truncates it (`set_len`); no logical change.
    TearTail(String),
}

impl Step {
    /// Applies the whole step to `state`; `false` if it cannot apply there
    /// (a partition used before it exists, created twice, dropped twice):
    /// such a branch of history is impossible.
    pub fn apply(&self, state: &mut State) -> bool {
        match self {
            Step::Create(p) => state.insert(p.clone(), BTreeMap::new()).is_none(),
            Step::Drop(p) => state.remove(p).is_some(),
            Step::Put(p, k, v) => put(state, p, k, v),
            Step::Delete(p, k) => state.get_mut(p).map(|kv| kv.remove(k)).is_some(),
            Step::Batch(p, ops) => ops.iter().all(|(k, v)| match v {
                Some(v) => put(state, p, k, v),
                None => state.get_mut(p).map(|kv| kv.remove(k)).is_some(),
            }),
            Step::Group(p, puts) => puts.iter().all(|(k, v)| put(state, p, k, v)),
            Step::Compact(p) | Step::TearTail(p) => state.contains_key(p),
            Step::Reopen => true,
        }
    }
}

fn put(state: &mut State, p: &str, k: &str, v: &str) -> bool {
    state
        .get_mut(p)
        .map(|kv| kv.insert(k.to_owned(), v.to_owned()))
        .is_some()
}

/// What became of one step of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Acknowledged: applied, durably.
    Acked,
    /// Refused before any I/O, or never issued: not applied.
    Refused,
    /// Failed: it may or may not have been applied.
    Doubtful,
    /// A group of puts: which members were acknowledged (the others are
    /// in doubt, each on its own).
    Members(Vec<bool>),
    /// A group of puts of which exactly the acknowledged members applied
    /// (what a live process shows: failed members are never published).
    Only(Vec<bool>),
}

/// Every state the history allows: acknowledged steps applied in order,
/// each doubtful one (or doubtful group member) applied or not.
///
/// # Panics
/// If more than 4,096 states are possible (too many doubts for a check).
pub fn possible(steps: &[Step], fates: &[Fate]) -> Vec<State> {
    let mut states = BTreeSet::from([State::new()]);
    let applied = |states: &BTreeSet<State>, step: &Step| -> BTreeSet<State> {
        let mut out = BTreeSet::new();
        for s in states {
            let mut s = s.clone();
            if step.apply(&mut s) {
                out.insert(s);
            }
        }
        out
    };
    for (step, fate) in steps.iter().zip(fates) {
        states = match fate {
            Fate::Acked => applied(&states, step),
            Fate::Refused => states,
            Fate::Doubtful => {
                let mut both = applied(&states, step);
                both.extend(states);
                both
            }
            Fate::Members(acked) | Fate::Only(acked) => {
                let Step::Group(p, puts) = step else {
                    panic!("members of a non-group {step:?}")
                };
                let doubt = matches!(fate, Fate::Members(_));
                for ((k, v), &ok) in puts.iter().zip(acked) {
                    if !ok && !doubt {
                        continue;
                    }
                    let one = Step::Put(p.clone(), k.clone(), v.clone());
                    let mut next = applied(&states, &one);
                    if !ok {
                        next.extend(states);
                    }
                    states = next;
                }
                states
            }
        };
        assert!(states.len() <= 4096, "too many possible states");
    }
    states.into_iter().collect()
}

/// A readable account of how `got` differs from each candidate, for a
/// failure message.
pub fn explain(got: &State, allowed: &[State]) -> String {
    let mut out = String::new();
    for (n, want) in allowed.iter().enumerate() {
        out.push_str(&format!("candidate {n}:"));
        for p in got.keys().chain(want.keys()).collect::<BTreeSet<_>>() {
            match (got.get(p), want.get(p)) {
                (Some(_), None) => out.push_str(&format!(" partition {p} should be gone;")),
                (None, Some(_)) => out.push_str(&format!(" partition {p} missing;")),
                (Some(g), Some(w)) => {
                    for k in g.keys().chain(w.keys()).collect::<BTreeSet<_>>() {
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
