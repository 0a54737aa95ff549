//! The I/O fault matrix on the simulated disk (issue 6, section 3).
//!
//! For each workload of the crash-point enumeration, each kind of operation
//! (write, sync_data, sync_all, rename, set_len, open, read, create,
//! remove, create_dir, sync_dir), each fault (`EIO`, `ENOSPC`, and a short
//! write for writes), once and persistently, and the k-th operation of that
//! kind for a spread of k (every k with `CASKADE_FAULT_SOAK=1`): the
//! workload runs to its end, and
//!
//! - **the error reaches the caller, nothing is acknowledged that was not
//!   durable**: a step that returned `Ok` although the fault fired during it
//!   (the engine absorbed it: a failed hint, a failed removal of a dead
//!   file...) is checked at once on a copy of the disk that loses power —
//!   the acknowledged history must be there;
//! - **the writer is poisoned**: after a write failed with an I/O error,
//!   every later write to that partition is refused with
//!   `Error::Poisoned` until the database is reopened;
//! - **reads keep working**: after every step, every partition reads back
//!   exactly the acknowledged state (unless reads themselves are failing);
//! - **the reopened state is a valid prefix**: with faults cleared, after a
//!   power loss or a process crash, the database recovers to a state the
//!   history allows (acknowledged steps, each failed one applied or not),
//!   with no stray file, keeping what it shows and taking new writes.
//!
//! Prints `reliability: harness=io_faults cases=...` (with `--nocapture`):
//! `cargo test --test io_faults -- --nocapture`.

#[path = "../crash_harness/mod.rs"]
mod crash_harness;
#[path = "../crash_points/driver.rs"]
mod driver;
#[path = "../crash_points/history.rs"]
mod history;
#[path = "../crash_points/workloads.rs"]
mod workloads;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

use caskade::{Error, SimDisk, SimFault, SimOp};
use driver::{PANICS, Session, Tally, check, count_panics, on_every_workload, read_open};
use history::{Fate, Step, explain, possible};

/// The kinds faulted, with the faults tried on each.
const MATRIX: [(SimOp, &[SimFault]); 11] = [
    (
        SimOp::Write,
        &[SimFault::Eio, SimFault::Enospc, SimFault::ShortWrite],
    ),
    (SimOp::SyncData, &[SimFault::Eio, SimFault::Enospc]),
    (SimOp::SyncAll, &[SimFault::Eio, SimFault::Enospc]),
    (SimOp::Rename, &[SimFault::Eio, SimFault::Enospc]),
    (SimOp::SetLen, &[SimFault::Eio, SimFault::Enospc]),
    (SimOp::Open, &[SimFault::Eio]),
    (SimOp::Read, &[SimFault::Eio]),
    (SimOp::Create, &[SimFault::Eio, SimFault::Enospc]),
    (SimOp::Remove, &[SimFault::Eio]),
    (SimOp::CreateDir, &[SimFault::Eio, SimFault::Enospc]),
    (SimOp::SyncDir, &[SimFault::Eio]),
];

/// What the matrix observed, beyond the crash checks' tally.
#[derive(Debug, Default)]
struct Counts {
    cases: u64,
    faults: u64,
    errors_reported: u64,
    absorbed: BTreeMap<String, u64>,
    poison_checked: u64,
    reads_checked: u64,
    read_errors: u64,
    unpoisoned: u64,
    /// Operations of each kind in the fault-free runs (the k's range).
    per_kind: BTreeMap<String, u64>,
    unopened: u64,
    visible_wrong: u64,
}

/// The partition a step writes to.
fn written(step: &Step) -> Option<&str> {
    match step {
        Step::Put(p, ..) | Step::Delete(p, _) | Step::Batch(p, _) | Step::Group(p, _) => Some(p),
        _ => None,
    }
}

/// What a live process may show after the steps with these fates, the
/// last reopen at step `reopen`: acknowledged steps; failed writes only if
/// they came before that reopen (recovery found them on disk); failed
/// creates and drops of partitions either way (a create whose partition
/// then failed to open is there).
fn visible(steps: &[Step], fates: &[Fate], reopen: usize) -> Vec<Fate> {
    let fate = |(i, (step, fate)): (usize, (&Step, &Fate))| match fate {
        Fate::Members(m) if i > reopen => Fate::Only(m.clone()),
        Fate::Doubtful if i > reopen && !matches!(step, Step::Create(_) | Step::Drop(_)) => Fate::Refused,
        f => f.clone(),
    };
    steps.iter().zip(fates).enumerate().map(fate).collect()
}

/// Runs one case: the workload with one armed fault, checked as it goes,
/// then the reopen.
async fn case(
    steps: &[Step],
    (kind, fault, k, persistent): (SimOp, SimFault, u64, bool),
    seed: u64,
    c: &mut Counts,
    t: &mut Tally,
    ctx: &str,
) {
    c.cases += 1;
    let disk = SimDisk::with_seed(seed);
    disk.fail(kind, k, fault, persistent);
    let mut fates = vec![Fate::Refused; steps.len()];
    let mut session = Session::open(&disk).await;
    let mut poisoned = BTreeSet::new();
    let mut last_reopen = 0;
    for (i, step) in steps.iter().enumerate() {
        // Each write in doubt doubles the states the reopen may show: the
        // workload ends after 10 of them (the rest is never issued).
        let doubts: usize = fates
            .iter()
            .map(|f| match f {
                Fate::Doubtful => 1,
                Fate::Members(m) => m.iter().filter(|&&a| !a).count(),
                _ => 0,
            })
            .sum();
        if !session.is_open() || doubts >= 10 {
            break;
        }
        let before = disk.faults_injected();
        let done = session.step(step).await;
        let fired = disk.faults_injected() > before;
        fates[i] = done.fate.clone();
        let ctx = format!("{ctx} step {i} {step:?}");
        match (&done.error, fired) {
            (Some(_), true) => c.errors_reported += 1,
            (None, true) => {
                let what = format!("{step:?}");
                let what = what.split('(').next().unwrap_or_default();
                *c.absorbed.entry(format!("{kind:?} in {what}")).or_default() += 1;
                // Absorbed: what was acknowledged must be durable anyway.
                let copy = disk.fork(seed ^ i as u64);
                copy.clear_faults();
                copy.power_loss(true);
                let allowed = possible(&steps[..=i], &fates[..=i]);
                check(&copy, &allowed, t, &format!("{ctx}: absorbed fault, power loss")).await;
            }
            _ => {}
        }
        // Poisoning.
        if let Some(p) = written(step) {
            if poisoned.contains(p) {
                c.poison_checked += 1;
                if !matches!(done.error, Some(Error::Poisoned { .. })) {
                    c.unpoisoned += 1;
                    t.fail(format!(
                        "{ctx}: write to a poisoned partition gave {:?}",
                        done.error
                    ));
                }
            } else if !done.open_failed && matches!(done.error, Some(Error::Io { .. })) {
                poisoned.insert(p.to_owned());
            }
        }
        match step {
            Step::Reopen | Step::TearTail(_) if session.is_open() => {
                poisoned.clear();
                last_reopen = i;
            }
            // A failed drop hands the partition back to a new actor, which
            // recovers it from disk: not poisoned any more.
            Step::Drop(p) => {
                poisoned.remove(p);
                last_reopen = i;
            }
            _ => {}
        }
        if done.open_failed {
            // The next open of that partition is a recovery.
            last_reopen = i;
        }
        // Reads: exactly the acknowledged state.
        if let Some(db) = session.db() {
            match read_open(db).await {
                Ok((got, unopened)) => {
                    c.reads_checked += 1;
                    c.unopened += unopened.len() as u64;
                    let mut want = possible(&steps[..=i], &visible(&steps[..=i], &fates[..=i], last_reopen));
                    // A partition that cannot open now (the fault) is not compared.
                    for s in &mut want {
                        s.retain(|p, _| !unopened.contains(p));
                    }
                    if !want.contains(&got) {
                        c.visible_wrong += 1;
                        t.fail(format!("{ctx}: reads show\n{}", explain(&got, &want)));
                    }
                }
                Err(e) if kind == SimOp::Read || kind == SimOp::Open => {
                    let _ = e;
                    c.read_errors += 1;
                }
                Err(e) => {
                    c.visible_wrong += 1;
                    t.fail(format!("{ctx}: reads fail: {e:?}"));
                }
            }
        }
    }
    session.close().await;
    c.faults += disk.faults_injected();
    disk.clear_faults();
    if seed.is_multiple_of(2) {
        disk.power_loss(true);
    } else {
        disk.process_crash();
    }
    let allowed = possible(steps, &fates);
    t.acked_checked += fates.iter().filter(|f| **f == Fate::Acked).count() as u64;
    check(&disk, &allowed, t, &format!("{ctx}: reopen")).await;
}

/// The k's tried for a kind performed `n` times by the fault-free run.
fn spread(n: u64, soak: bool) -> Vec<u64> {
    if soak || n <= 10 {
        return (1..=n).collect();
    }
    let mut ks: BTreeSet<u64> = (0..10).map(|i| 1 + i * (n - 1) / 9).collect();
    ks.insert(2);
    ks.into_iter().collect()
}

async fn matrix(name: &str, wi: u64, steps: &[Step], soak: bool, c: &mut Counts, t: &mut Tally) {
    let disk = SimDisk::with_seed(wi);
    let mut session = Session::open(&disk).await;
    for step in steps {
        let done = session.step(step).await;
        assert!(
            done.error.is_none(),
            "{name}: {step:?} fails without a fault: {:?}",
            done.error
        );
    }
    session.close().await;
    let mut seed = wi << 32;
    for (kind, faults) in MATRIX {
        let n = disk.op_count(kind);
        *c.per_kind.entry(format!("{kind:?}")).or_default() += n;
        for &fault in faults {
            for persistent in [false, true] {
                for k in spread(n, soak) {
                    seed += 1;
                    let ctx = format!("{name}: {fault:?} on {kind:?} #{k}/{n} persistent={persistent}");
                    case(steps, (kind, fault, k, persistent), seed, c, t, &ctx).await;
                }
            }
        }
    }
}

#[test]
fn every_fault_is_reported_poisons_and_recovers_to_a_valid_prefix() {
    count_panics();
    let soak = std::env::var_os("CASKADE_FAULT_SOAK").is_some();
    let started = Instant::now();
    let all = on_every_workload(|name, wi, steps| async move {
        let (mut c, mut t) = (Counts::default(), Tally::default());
        let began = Instant::now();
        matrix(name, wi, &steps, soak, &mut c, &mut t).await;
        println!(
            "io_faults: workload={name} cases={} faults={} in {:.1}s",
            c.cases,
            c.faults,
            began.elapsed().as_secs_f64()
        );
        (c, t)
    });
    let sum_c = |f: fn(&Counts) -> u64| all.iter().map(|(c, _)| f(c)).sum::<u64>();
    let sum_t = |f: fn(&Tally) -> u64| all.iter().map(|(_, t)| f(t)).sum::<u64>();
    let mut absorbed = BTreeMap::<String, u64>::new();
    for (c, _) in &all {
        for (k, n) in &c.absorbed {
            *absorbed.entry(k.clone()).or_default() += n;
        }
    }
    let mut per_kind = BTreeMap::<String, u64>::new();
    for (c, _) in &all {
        for (k, n) in &c.per_kind {
            *per_kind.entry(k.clone()).or_default() += n;
        }
    }
    println!("io_faults: operations per kind in the fault-free runs: {per_kind:?}");
    assert!(
        per_kind.values().all(|&n| n > 0),
        "a kind is never exercised: {per_kind:?}"
    );
    let panics = PANICS.load(Ordering::SeqCst);
    println!("io_faults: absorbed (fault fired, step acknowledged, checked durable): {absorbed:?}");
    println!(
        "reliability: harness=io_faults cases={} faults={} errors_reported={} absorbed={} poison_checked={} \
         unpoisoned={} reads_checked={} read_errors={} unopened={} visible_wrong={} reopens={} acked_checked={} lost={} \
         resurrected={} wrong={} stray_files={} unrecoverable={} panics={panics} secs={:.1}",
        sum_c(|c| c.cases),
        sum_c(|c| c.faults),
        sum_c(|c| c.errors_reported),
        absorbed.values().sum::<u64>(),
        sum_c(|c| c.poison_checked),
        sum_c(|c| c.unpoisoned),
        sum_c(|c| c.reads_checked),
        sum_c(|c| c.read_errors),
        sum_c(|c| c.unopened),
        sum_c(|c| c.visible_wrong),
        sum_t(|t| t.states),
        sum_t(|t| t.acked_checked),
        sum_t(|t| t.lost),
        sum_t(|t| t.resurrected),
        sum_t(|t| t.wrong),
        sum_t(|t| t.stray_files),
        sum_t(|t| t.unrecoverable),
        started.elapsed().as_secs_f64()
    );
    let failures: Vec<&String> = all.iter().flat_map(|(_, t)| &t.failures).collect();
    assert!(
        failures.is_empty(),
        "{} failures, first ones:\n{failures:#?}",
        failures.len()
    );
    assert_eq!(panics, 0, "panics");
    assert!(
        sum_c(|c| c.poison_checked) > 0,
        "no write ever met a poisoned partition"
    );
}
