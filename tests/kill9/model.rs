//! The reference model of the kill -9 harness: what every partition and key
//! must hold, built from the children's `begin` / `ack` lines and kept
//! across all cycles, and the check of an observed database against it.
//!
//! Each key is written by one task, one operation at a time, and each churn
//! partition is created and dropped by one task, so at a kill every key (and
//! partition) has at most one operation in flight. The model holds the
//! state after every acknowledged operation; an operation in flight may or
//! may not have happened. The check resolves each one from what recovery
//! shows — all of it or none of it, else it is a torn batch — and then
//! compares everything: a key must hold exactly the bytes of its last write
//! (or be absent after a delete), a partition must exist exactly when its
//! last create (not its drop) stands.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::protocol::{self, BatchOp, Line, Op};

/// A write: which value a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Written {
    seed: u64,
    id: u64,
    pad: usize,
}

#[derive(Debug, Default)]
struct PartModel {
    exists: bool,
    keys: BTreeMap<String, Written>,
}

/// What recovery shows: partition → key → value, and the reads that failed.
#[derive(Debug, Default)]
pub struct Observed {
    /// Every partition's live entries.
    pub parts: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Errors reading a live key's value.
    pub read_errors: Vec<String>,
}

/// The model of every partition, across cycles.
#[derive(Debug, Default)]
pub struct Model {
    parts: BTreeMap<String, PartModel>,
    /// Ids begun by each child (by seed): `id < n` was begun.
    children: HashMap<u64, u64>,
    /// The last child's seed and every (id, partition, key) it began a
    /// write of: a value it wrote is checked against these exactly (an older
    /// child's would have been caught by the check after its own cycle).
    last: (u64, HashSet<(u64, String, String)>),
}

/// One cycle's transcript, applied: what stays to be resolved.
#[derive(Debug)]
pub struct Cycle {
    seed: u64,
    /// Operations begun and never acknowledged, by id.
    pending: Vec<(u64, Op)>,
    /// Acknowledged writes (puts, deletes, batches, creates, drops).
    pub acked: u64,
    /// Acknowledged compactions.
    pub compactions: u64,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct Findings {
    /// An acknowledged write (or create) missing or replaced by an older one.
    pub lost: u64,
    /// A deleted key or dropped partition back.
    pub resurrected: u64,
    /// A value that fails to decode or sits under the wrong key, an
    /// unreadable record, or a batch applied in part.
    pub torn: u64,
    /// A value, key or partition no operation ever wrote.
    pub phantom: u64,
    /// Keys compared.
    pub keys_checked: u64,
    /// Operations in flight at the kill that turned out applied / not applied.
    pub unacked_applied: u64,
    /// See `unacked_applied`.
    pub unacked_dropped: u64,
    /// The first violations, described.
    pub problems: Vec<String>,
}

impl Findings {
    /// Violations of any kind.
    pub fn violations(&self) -> u64 {
        self.lost + self.resurrected + self.torn + self.phantom
    }

    fn problem(&mut self, what: String) {
        if self.problems.len() < 20 {
            self.problems.push(what);
        }
    }
}

/// The key-level effects of a write: each key's value after it (`None`: deleted).
fn effects(seed: u64, id: u64, op: &Op) -> Vec<(&str, Option<Written>)> {
    let put = |pad| Some(Written { seed, id, pad });
    match op {
        Op::Put { key, pad, .. } => vec![(key.as_str(), put(*pad))],
        Op::Delete { key, .. } => vec![(key.as_str(), None)],
        Op::Batch { ops, .. } => ops
            .iter()
            .map(|o| match o {
                BatchOp::Put { key, pad } => (key.as_str(), put(*pad)),
                BatchOp::Delete { key } => (key.as_str(), None),
            })
            .collect(),
        Op::Compact { .. } | Op::Create { .. } | Op::Drop { .. } => Vec::new(),
    }
}

fn bytes(part: &str, key: &str, w: &Written) -> Vec<u8> {
    protocol::value(part, key, w.seed, w.id, w.pad)
}

impl Model {
    fn exists(&self, part: &str) -> bool {
        self.parts.get(part).is_some_and(|p| p.exists)
    }

    /// Applies one child's transcript: every acknowledged operation, in order.
    ///
    /// # Errors
    /// A transcript that breaks the protocol: an operation before `ready`,
    /// an id begun twice or acknowledged without a `begin`, an operation
    /// on a key or partition that has one in flight, a write to a
    /// partition that does not exist, a create of one that does.
    pub fn apply(&mut self, seed: u64, lines: &[Line]) -> Result<Cycle, String> {
        if self.children.contains_key(&seed) {
            return Err(format!("seed {seed} used twice"));
        }
        let mut begun: HashMap<u64, Op> = HashMap::new();
        let mut written = HashSet::new();
        let mut seen_ids = HashSet::new();
        let mut busy: HashSet<(String, String)> = HashSet::new();
        // Operations in flight per partition, and partitions with a create
        // or drop in flight (nothing else may start on those).
        let mut busy_parts: HashMap<String, usize> = HashMap::new();
        let mut exclusive: HashSet<String> = HashSet::new();
        let (mut ready, mut acked, mut compactions, mut next_id) = (false, 0, 0, 0);
        for line in lines {
            match line {
                Line::Open | Line::Done => {}
                Line::Ready { .. } => ready = true,
                Line::Begin { id, op } => {
                    if !ready || !seen_ids.insert(*id) {
                        return Err(format!("begin {id} before ready or twice"));
                    }
                    next_id = next_id.max(id + 1);
                    let part = op.part().to_owned();
                    let in_flight = busy_parts.get(&part).copied().unwrap_or(0);
                    if exclusive.contains(&part) || !self.may_begin(op, in_flight) {
                        return Err(format!("begin {id} {op}: partition busy or in the wrong state"));
                    }
                    *busy_parts.entry(part.clone()).or_default() += 1;
                    if matches!(op, Op::Create { .. } | Op::Drop { .. }) {
                        exclusive.insert(part.clone());
                    }
                    for (key, _) in effects(seed, *id, op) {
                        if !busy.insert((part.clone(), key.to_owned())) {
                            return Err(format!("begin {id} {op}: key {key} has a write in flight"));
                        }
                        written.insert((*id, part.clone(), key.to_owned()));
                    }
                    begun.insert(*id, op.clone());
                }
                Line::Ack { id } => {
                    let op = begun
                        .remove(id)
                        .ok_or_else(|| format!("ack {id} without begin"))?;
                    let part = op.part().to_owned();
                    for (key, _) in effects(seed, *id, &op) {
                        busy.remove(&(part.clone(), key.to_owned()));
                    }
                    exclusive.remove(&part);
                    if let Some(n) = busy_parts.get_mut(&part) {
                        *n -= 1;
                    }
                    match op {
                        Op::Compact { .. } => compactions += 1,
                        _ => acked += 1,
                    }
                    self.commit(seed, *id, &op);
                }
            }
        }
        self.children.insert(seed, next_id);
        self.last = (seed, written);
        let mut pending: Vec<(u64, Op)> = begun.into_iter().collect();
        pending.sort_by_key(|(id, _)| *id);
        Ok(Cycle {
            seed,
            pending,
            acked,
            compactions,
        })
    }

    /// Whether `op` may start on a partition with `in_flight` operations
    /// in flight: a create only of a partition that does not exist, a drop
    /// only of one that does, each alone; anything else only on a partition
    /// that exists.
    fn may_begin(&self, op: &Op, in_flight: usize) -> bool {
        let exists = self.exists(op.part());
        match op {
            Op::Create { .. } => in_flight == 0 && !exists,
            Op::Drop { .. } => in_flight == 0 && exists,
            _ => exists,
        }
    }

    fn commit(&mut self, seed: u64, id: u64, op: &Op) {
        let p = self.parts.entry(op.part().to_owned()).or_default();
        match op {
            Op::Create { .. } => p.exists = true,
            Op::Drop { .. } => {
                p.exists = false;
                p.keys.clear();
            }
            _ => {
                for (key, effect) in effects(seed, id, op) {
                    match effect {
                        Some(w) => p.keys.insert(key.to_owned(), w),
                        None => p.keys.remove(key),
                    };
                }
            }
        }
    }

    /// Checks the observed database against the model, first resolving
    /// the cycle's operations in flight; the model then equals what was
    /// observed (where the observation is allowed).
    pub fn check(&mut self, cycle: Cycle, observed: &Observed) -> Findings {
        let mut f = Findings::default();
        for (id, op) in &cycle.pending {
            self.resolve(cycle.seed, *id, op, observed, &mut f);
        }
        for e in &observed.read_errors {
            f.torn += 1;
            f.problem(format!("read error: {e}"));
        }
        let names: Vec<String> = self
            .parts
            .iter()
            .filter(|(_, p)| p.exists)
            .map(|(n, _)| n.clone())
            .chain(observed.parts.keys().cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for name in names {
            let known = self.parts.get(&name);
            match (known.filter(|p| p.exists), observed.parts.get(&name)) {
                (Some(_), None) => {
                    f.lost += 1;
                    f.problem(format!("partition {name} (acknowledged create) is missing"));
                }
                (None, Some(_)) if known.is_some() => {
                    f.resurrected += 1;
                    f.problem(format!("partition {name} (acknowledged drop) is back"));
                }
                (None, Some(_)) => {
                    f.phantom += 1;
                    f.problem(format!("partition {name} was never created"));
                }
                (Some(model), Some(obs)) => self.compare(&name, model, obs, &mut f),
                (None, None) => {}
            }
        }
        f
    }

    /// Decides whether operation `id`, in flight at the kill, happened.
    fn resolve(&mut self, seed: u64, id: u64, op: &Op, observed: &Observed, f: &mut Findings) {
        let part = op.part();
        let obs = observed.parts.get(part);
        let applied = match op {
            Op::Compact { .. } => return,
            Op::Create { .. } => obs.is_some(),
            Op::Drop { .. } => obs.is_none(),
            _ => {
                let model = self.parts.get(part);
                let (mut new, mut old) = (0, 0);
                for (key, effect) in effects(seed, id, op) {
                    let got = obs.and_then(|o| o.get(key));
                    let before = model.and_then(|m| m.keys.get(key));
                    let same = |w: Option<&Written>| got.cloned() == w.map(|w| bytes(part, key, w));
                    match (same(effect.as_ref()), same(before)) {
                        (true, false) => new += 1,
                        (false, true) => old += 1,
                        _ => {}
                    }
                }
                if new > 0 && old > 0 {
                    f.torn += 1;
                    f.problem(format!(
                        "batch {seed}/{id} ({op}) applied in part: {new} keys new, {old} old"
                    ));
                }
                new > 0
            }
        };
        if applied {
            f.unacked_applied += 1;
            self.commit(seed, id, op);
        } else {
            f.unacked_dropped += 1;
        }
    }

    /// Whether the write `tag` names was begun (for the last child: as a
    /// write of that very key; for earlier ones: an id the child used).
    fn begun(&self, tag: &protocol::ValueTag) -> bool {
        let (seed, written) = &self.last;
        if tag.seed == *seed {
            return written.contains(&(tag.id, tag.part.clone(), tag.key.clone()));
        }
        self.children.get(&tag.seed).is_some_and(|&n| tag.id < n)
    }

    fn compare(&self, name: &str, model: &PartModel, obs: &BTreeMap<String, Vec<u8>>, f: &mut Findings) {
        let keys: std::collections::BTreeSet<&String> = model.keys.keys().chain(obs.keys()).collect();
        for key in keys {
            f.keys_checked += 1;
            let want = model.keys.get(key);
            let Some(got) = obs.get(key) else {
                f.lost += 1;
                f.problem(format!("{name}/{key}: acknowledged {want:?} is missing"));
                continue;
            };
            if want.is_some_and(|w| bytes(name, key, w) == *got) {
                continue;
            }
            let shown = String::from_utf8_lossy(&got[..got.len().min(60)]).into_owned();
            let Some(tag) = protocol::decode(got) else {
                f.torn += 1;
                f.problem(format!(
                    "{name}/{key}: torn or garbled value {shown:?} (want {want:?})"
                ));
                continue;
            };
            if tag.part != name || tag.key != *key {
                f.torn += 1;
                f.problem(format!(
                    "{name}/{key}: holds the value of {}/{}",
                    tag.part, tag.key
                ));
            } else if !self.begun(&tag) {
                f.phantom += 1;
                f.problem(format!(
                    "{name}/{key}: value of {}/{} was never begun",
                    tag.seed, tag.id
                ));
            } else if want.is_none() {
                f.resurrected += 1;
                f.problem(format!(
                    "{name}/{key}: deleted, holds {}/{} again",
                    tag.seed, tag.id
                ));
            } else {
                f.lost += 1;
                f.problem(format!(
                    "{name}/{key}: holds {}/{} instead of {want:?}",
                    tag.seed, tag.id
                ));
            }
        }
    }
}
