//! Crash-point enumeration on the simulated disk (issue 6, section 1).
//!
//! Each workload ([`workloads`]) runs once to count its I/O operations `n`;
//! then for every `k` in `0..=n` it runs again on a fresh disk that stops
//! after `k` operations ([`SimDisk::halt_after`]: later operations fail and
//! change nothing), loses power (keeping only fsynced bytes and directory
//! entries, plus a torn prefix of unsynced appends), and reopens. The
//! reopened database must:
//!
//! - show a state [`history::possible`] allows: every acknowledged step
//!   (under `Durability::Always`) and at most the one step in doubt — nothing
//!   lost, nothing deleted back, no partition dropped back;
//! - hold no data or hint file its manifest does not list, no temporary
//!   file, no directory of a partition the catalog does not list;
//! - keep what it showed after a further power loss (recovery makes the
//!   bytes it kept durable), and take a write in every partition that
//!   survives another power loss.
//!
//! Each crash point is also tried as a process crash (`kill -9`: the page
//! cache survives, so unsynced writes may be recovered), under
//! `Durability::Always` and under `Durability::OsBuffered` (which never
//! fsyncs before acknowledging, but writes first: a process crash loses no
//! acknowledged write under any policy).
//!
//! A second crash during recovery: at every crash point the recovery itself
//! is stopped at a random one of its operations (at three with
//! `CASKADE_CRASH_SOAK=1`), power is lost again, and the third open
//! must pass the same checks against the same candidates.
//!
//! Prints `reliability: harness=crash_points states=...` (with
//! `--nocapture`): `cargo test --test crash_points -- --nocapture`.

#[path = "../crash_harness/mod.rs"]
mod crash_harness;
mod driver;
mod history;
mod workloads;

use std::sync::atomic::Ordering;
use std::time::Instant;

use caskade::{Durability, SimDisk};
use driver::{PANICS, Session, Tally, check, count_panics, on_every_workload, recover};
use history::{Fate, Step, possible};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Runs `steps` on `disk` until a step fails; closes the database. The
/// fates: acknowledged up to the failed step, which is in doubt, and
/// refused after it.
async fn run(disk: &SimDisk, steps: &[Step], durability: Durability) -> (Vec<Fate>, Option<usize>) {
    let mut fates = vec![Fate::Refused; steps.len()];
    let mut session = Session::open_with(disk, durability).await;
    if !session.is_open() {
        return (fates, Some(0));
    }
    let mut failed = None;
    for (i, step) in steps.iter().enumerate() {
        let done = session.step(step).await;
        fates[i] = done.fate;
        if done.error.is_some() {
            failed = Some(i);
            break;
        }
    }
    // Halted: the close fails and changes nothing, but it waits for the
    // actors, so no thread of this run touches the disk after the crash.
    session.close().await;
    (fates, failed)
}

/// Explores every crash point of one workload.
async fn explore(name: &str, wi: u64, steps: &[Step], soak: bool, t: &mut Tally) {
    let disk = SimDisk::with_seed(wi);
    let (_, failed) = run(&disk, steps, Durability::Always).await;
    assert_eq!(
        failed, None,
        "{name}: the workload fails without a crash at step {failed:?}"
    );
    let n = disk.total_ops();
    let mut rng = StdRng::seed_from_u64(wi);
    for k in 0..=n {
        // Power loss at step k, and a second crash during its recovery.
        let disk = SimDisk::with_seed(wi << 32 | k);
        disk.halt_after(k);
        let (fates, failed) = run(&disk, steps, Durability::Always).await;
        disk.power_loss(true);
        disk.clear_faults();
        let allowed = possible(steps, &fates);
        let ctx = format!("{name}: power loss after op {k}/{n} (step {failed:?})");
        let ops = check(&disk.fork(rng.random()), &allowed, t, &ctx).await;
        if ops > 1 {
            for _ in 0..if soak { 3 } else { 1 } {
                let again = disk.fork(rng.random());
                let j = rng.random_range(1..ops);
                again.halt_after(j);
                if let Ok((db, _, _)) = recover(&again).await {
                    let _ = db.close().await;
                }
                again.power_loss(true);
                again.clear_faults();
                t.recovery_crashes += 1;
                let ctx = format!("{ctx}, then after recovery op {j}/{ops}");
                check(&again, &allowed, t, &ctx).await;
            }
        }
        // A process crash (kill -9) at step k: the page cache survives.
        let disk = SimDisk::with_seed(wi << 32 | k);
        disk.halt_after(k);
        let (fates, failed) = run(&disk, steps, Durability::Always).await;
        disk.process_crash();
        disk.clear_faults();
        let ctx = format!("{name}: process crash after op {k}/{n} (step {failed:?})");
        check(&disk, &possible(steps, &fates), t, &ctx).await;
        // The same under `OsBuffered`: no fsync before acknowledging, but the
        // bytes are written first, so a process crash loses nothing acknowledged.
        let disk = SimDisk::with_seed(wi << 32 | k);
        disk.halt_after(k);
        let (fates, failed) = run(&disk, steps, Durability::OsBuffered).await;
        disk.process_crash();
        disk.clear_faults();
        let ctx = format!("{name}: process crash after op {k}/{n} (step {failed:?}), OsBuffered");
        check(&disk, &possible(steps, &fates), t, &ctx).await;
    }
}

#[test]
fn every_crash_point_recovers_a_valid_prefix() {
    count_panics();
    let soak = std::env::var_os("CASKADE_CRASH_SOAK").is_some();
    let started = Instant::now();
    let all = on_every_workload(|name, wi, steps| async move {
        let mut t = Tally::default();
        let began = Instant::now();
        explore(name, wi, &steps, soak, &mut t).await;
        println!(
            "crash_points: workload={name} steps={} states={} recovery_crashes={} in {:.1}s",
            steps.len(),
            t.states,
            t.recovery_crashes,
            began.elapsed().as_secs_f64()
        );
        t
    });
    let sum = |f: fn(&Tally) -> u64| all.iter().map(f).sum::<u64>();
    let panics = PANICS.load(Ordering::SeqCst);
    println!(
        "reliability: harness=crash_points workloads={} states={} recovery_crashes={} acked_checked={} \
         lost={} resurrected={} wrong={} stray_files={} unrecoverable={} panics={panics} secs={:.1}",
        all.len(),
        sum(|t| t.states),
        sum(|t| t.recovery_crashes),
        sum(|t| t.acked_checked),
        sum(|t| t.lost),
        sum(|t| t.resurrected),
        sum(|t| t.wrong),
        sum(|t| t.stray_files),
        sum(|t| t.unrecoverable),
        started.elapsed().as_secs_f64()
    );
    let failures: Vec<&String> = all.iter().flat_map(|t| &t.failures).collect();
    assert!(
        failures.is_empty(),
        "{} failures, first ones:\n{failures:#?}",
        failures.len()
    );
    assert_eq!(panics, 0, "panics");
    assert!(sum(|t| t.states) >= 5_000, "too few crash states explored");
}
