//! Power loss at every step of a compaction (and of the writes after it):
//! the reopened partition holds every acknowledged write and no deleted key,
//! no data or hint file its manifest does not list, and takes writes and
//! compactions again.
//!
//! A crash after step `k` is a run in which, on every kind of operation, a
//! persistent fault starts right after the count that kind had at step `k`:
//! from there on nothing reaches the disk (a failed operation changes
//! nothing), and closing the database before the power loss adds nothing.
//! Those counts are not observable directly, so they are rebuilt one step
//! at a time. The runs are deterministic (the simulated disk compacts on
//! the partition's thread), so from the crash after step `k` a probe that
//! allows one more operation of kind `K` is the crash after step `k + 1`
//! (exactly `k + 1` operations succeed) if step `k + 1` is of kind `K`. If
//! it is not, the probe fails step `k + 1` as before and still "fits" only
//! when an operation of kind `K` that the failure caused (a clean-up) used
//! the allowance; [`next_step`] settles those ties.

mod crash_harness;

use std::time::Instant;

use caskade::{Db, Error, Partition, SimDisk, SimFault, SimOp, Snapshot};
use crash_harness::{
    Counts, KINDS, Model, Op, check_reopen, counts, eager, fill, kind_of, open, partition_dir, value,
};

/// Writes after the compaction: new keys, an overwrite, a delete, and a
/// key deleted before the compaction written again.
fn after() -> Vec<Op> {
    vec![
        Op::Put("n0".into(), value("n0", 3)),
        Op::Put("k003".into(), value("k003", 3)),
        Op::Delete("k004".into()),
        Op::Put("k007".into(), value("k007", 3)),
        Op::Put("n1".into(), value("n1", 3)),
    ]
}

/// The workload's variants.
#[derive(Debug, Clone, Copy)]
enum Variant {
    /// Compact, then write.
    Plain,
    /// A snapshot taken before the compaction is dropped after two of the
    /// writes that follow it: the replaced files are deleted then.
    HeldSnapshot,
}

/// One run of the workload, stopped after the first step that hit a fault.
struct Run {
    disk: SimDisk,
    db: Db,
    p: Partition,
    snap: Option<Snapshot>,
    model: Model,
    /// Counts when the faults were armed (after the fill).
    armed: Counts,
    /// Counts when the run stopped.
    ended: Counts,
    /// The first error a step returned.
    error: Option<Error>,
    /// Operations that did not fail.
    succeeded: u64,
    injected: u64,
}

/// Runs the workload on a fresh disk; with `cut`, every operation of kind
/// `KINDS[i]` after the first `cut[i]` fails.
async fn run(seed: u64, variant: Variant, cut: Option<&Counts>) -> Run {
    let disk = SimDisk::with_seed(seed);
    let db = open(&disk).await.unwrap();
    let p = db.create_partition("p", eager()).await.unwrap();
    let mut model = Model::default();
    for op in fill() {
        model.apply(&p, &op).await.unwrap();
    }
    let armed = counts(&disk);
    if let Some(cut) = cut {
        for (i, &kind) in KINDS.iter().enumerate() {
            disk.fail(kind, cut[i] - armed[i] + 1, SimFault::Eio, true);
        }
    }
    let mut snap = match variant {
        Variant::Plain => None,
        Variant::HeldSnapshot => Some(p.snapshot().await.unwrap()),
    };
    let post = after();
    let mut error = None;
    // Step 0 compacts, step 3 drops the snapshot, the others write.
    for step in 0..post.len() + 2 {
        let before = disk.faults_injected();
        match step {
            0 => match p.compact().await {
                Ok(report) => assert!(report.performed(), "{report:?}"),
                Err(e) => error = Some(e),
            },
            3 => drop(snap.take()),
            n => {
                let op = &post[n - 1 - usize::from(n > 3)];
                if let Err(e) = model.apply(&p, op).await {
                    error = Some(e);
                }
            }
        }
        if disk.faults_injected() > before {
            break;
        }
    }
    let ended = counts(&disk);
    assert!(cut.is_some() || error.is_none(), "{error:?}");
    Run {
        error,
        succeeded: disk.total_ops() - disk.faults_injected(),
        injected: disk.faults_injected(),
        disk,
        db,
        p,
        snap,
        model,
        armed,
        ended,
    }
}

/// How the process ends at the crash point.
#[derive(Debug, Clone, Copy)]
enum Crash {
    /// Power loss; `torn` keeps a random prefix of unsynced appends.
    Power { torn: bool },
    /// `kill -9`: what was written survives, synced or not.
    Process,
}

impl Run {
    /// Crashes (the run's faults still armed, so closing the database
    /// changes nothing on the disk), reopens and checks.
    async fn crash(self, how: Crash, ctx: &str) {
        let dir = partition_dir(&self.db);
        drop((self.snap, self.p));
        // Every operation of the close fails: it cannot add to the crash state.
        let _ = self.db.close().await;
        match how {
            Crash::Power { torn } => self.disk.power_loss(torn),
            Crash::Process => self.disk.process_crash(),
        }
        self.disk.clear_faults();
        check_reopen(&self.disk, &dir, &self.model, &format!("{ctx}, {how:?}")).await;
    }
}

/// What was checked.
#[derive(Debug, Default)]
struct Tally {
    /// Steps (crash points).
    steps: usize,
    /// Crashes at a crash point (four per step: power loss with torn
    /// writes, without, with torn writes again on another seed, `kill -9`).
    crashes: usize,
    /// Steps whose kind more than one probe fitted (see [`next_step`]).
    ties: usize,
    /// Probes that fitted but lost a tie (an I/O failure, a clean-up, then
    /// the power loss): checked too.
    others: usize,
}

/// Picks the kind of step `k + 1` among the probes that fitted. A probe
/// for a wrong kind `K` fits when operation `k + 1` failed and a later
/// operation of kind `K`, made because of that failure, used `K`'s extra
/// allowance. Those are removals cleaning up after a failure (never a
/// removal of the normal path: those are the reaper's, and nothing else is
/// tried in the same call), and, when operation `k + 1` failed quietly
/// (a sealed file's hint is only a cache), the operations that went on
/// after it; the error then reported comes from one of these.
fn next_step(mut fits: Vec<(usize, Run)>, crashed: &Run, ctx: &str) -> ((usize, Run), Vec<Run>) {
    let kinds = |f: &[(usize, Run)]| f.iter().map(|(i, _)| KINDS[*i]).collect::<Vec<_>>();
    let all = kinds(&fits);
    let mut losers = Vec::new();
    let mut drop_if = |fits: &mut Vec<(usize, Run)>, kind: Option<SimOp>| {
        if fits.len() > 1 && fits.iter().any(|(i, _)| Some(KINDS[*i]) != kind) {
            let (keep, lose): (Vec<_>, Vec<_>) = fits.drain(..).partition(|(i, _)| Some(KINDS[*i]) != kind);
            *fits = keep;
            losers.extend(lose.into_iter().map(|(_, r)| r));
        }
    };
    drop_if(&mut fits, Some(SimOp::Remove));
    drop_if(&mut fits, crashed.error.as_ref().and_then(kind_of));
    assert_eq!(
        fits.len(),
        1,
        "{ctx}: cannot tell the next step among {all:?} (error {:?})",
        crashed.error
    );
    (fits.pop().unwrap(), losers)
}

/// Enumerates the crash points from the start of the compaction to the end
/// of the workload, checking a power loss at each.
async fn every_step(variant: Variant, tally: &mut Tally) {
    let reference = run(1, variant, None).await;
    let (start, end) = (reference.armed, reference.ended);
    assert_eq!(reference.injected, 0);
    reference.db.close().await.unwrap();
    let mut cut = start;
    let mut k: u64 = cut.iter().sum();
    let mut current = run(1, variant, Some(&cut)).await;
    let mut trace = Vec::new();
    loop {
        let ctx = format!(
            "{variant:?}, crash after step {k} ({} into the compaction)",
            trace.len()
        );
        assert_eq!(current.armed, start, "{ctx}: the workload is not deterministic");
        assert_eq!(
            current.succeeded, k,
            "{ctx}: operations after the crash point succeeded"
        );
        let mut fits = Vec::new();
        if cut != end {
            // The next step's kind is one the crashed run tried.
            for i in (0..KINDS.len()).filter(|&i| current.ended[i] > cut[i]) {
                let mut next = cut;
                next[i] += 1;
                let probe = run(1, variant, Some(&next)).await;
                if probe.succeeded == k + 1 {
                    fits.push((i, probe));
                } else {
                    probe.db.close().await.ok();
                }
            }
        }
        let next = match fits.len() {
            0 => None,
            1 => fits.pop(),
            _ => {
                tally.ties += 1;
                let (next, losers) = next_step(fits, &current, &ctx);
                for (n, loser) in losers.into_iter().enumerate() {
                    let how = Crash::Power { torn: true };
                    loser.crash(how, &format!("{ctx}, losing probe {n}")).await;
                    tally.others += 1;
                }
                Some(next)
            }
        };
        current.crash(Crash::Power { torn: true }, &ctx).await;
        let more = [
            (2, Crash::Power { torn: false }),
            (3, Crash::Power { torn: true }),
            (4, Crash::Process),
        ];
        for (seed, how) in more {
            let again = run(seed, variant, Some(&cut)).await;
            assert_eq!(again.succeeded, k, "{ctx}: seed {seed}");
            again.crash(how, &format!("{ctx}, seed {seed}")).await;
        }
        tally.crashes += 1 + more.len();
        tally.steps += 1;
        if cut == end {
            break;
        }
        let (i, probe) = next.unwrap_or_else(|| panic!("{ctx}: no kind fits the next step"));
        trace.push(KINDS[i]);
        cut[i] += 1;
        k += 1;
        current = probe;
    }
    println!("{variant:?}: {} steps: {trace:?}", trace.len());
}

#[tokio::test]
async fn power_loss_at_every_step_of_a_compaction() {
    let started = Instant::now();
    let mut tally = Tally::default();
    for variant in [Variant::Plain, Variant::HeldSnapshot] {
        every_step(variant, &mut tally).await;
    }
    println!(
        "{} crash points, {} crashes at them and {} power losses after a fault and its clean-up \
         ({} ties), in {:?}",
        tally.steps,
        tally.crashes,
        tally.others,
        tally.ties,
        started.elapsed()
    );
    // About 60 steps per variant: the seal, the copy, the switch, the
    // deletions and the writes.
    assert!(tally.steps >= 100 && tally.crashes >= 400, "{tally:?}");
}
