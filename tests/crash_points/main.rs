//! Crash-point enumeration on the simulated disk (issue 6, section 1).
//!
//! Each workload ([`workloads`]) runs once to count its I/O operations `n`;
//! then for every `k` in `0..=n` it runs again on a fresh disk that stops
//! after `k` operations ([`SimDisk::halt_after`]: later operations fail and
//! change nothing), loses power (keeping only fsynced bytes and directory
//! entries, plus a torn prefix of unsynced appends), and reopens. The
//! reopened database must:
//!
//! - show a state [`history::candidates`] allows: every acknowledged step
//!   (under `Durability::Always`) and at most the one step in doubt — nothing
//!   lost, nothing deleted back, no partition dropped back;
//! - hold no data or hint file its manifest does not list, no temporary
//!   file, no directory of a partition the catalog does not list;
//! - keep what it showed after a further power loss (recovery makes the
//!   bytes it kept durable), and take a write in every partition that
//!   survives another power loss.
//!
//! Each crash point is also tried as a process crash (`kill -9`: the page
//! cache survives, so unsynced writes may be recovered).
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
mod history;
mod workloads;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use caskade::{Db, Partition, SimDisk};
use crash_harness::{ROOT, assert_only_listed, eager, open, read_state};
use history::{Outcome, State, Step, candidates, explain};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Panics anywhere in the process (engine threads included).
static PANICS: AtomicU64 = AtomicU64::new(0);

/// Runs `steps` on `disk` until a step fails; closes the database.
async fn run(disk: &SimDisk, steps: &[Step]) -> Outcome {
    let mut out = Outcome::default();
    let Ok(db) = open(disk).await else {
        out.failed = Some(0);
        return out;
    };
    out.opened = true;
    let mut db = Some(db);
    for (i, step) in steps.iter().enumerate() {
        let ok = match db.as_ref() {
            Some(d) => exec(d, step, &mut out.acked_members).await,
            None => false,
        };
        let ok = ok
            && match step {
                Step::Reopen => {
                    let closed = db.take().expect("open").close().await.is_ok();
                    db = open(disk).await.ok();
                    closed && db.is_some()
                }
                _ => true,
            };
        if !ok {
            out.failed = Some(i);
            break;
        }
        out.acked += 1;
    }
    if let Some(db) = db {
        // Halted: the close fails and changes nothing, but it waits for the
        // actors, so no thread of this run touches the disk after the crash.
        let _ = db.close().await;
    }
    out
}

/// Runs one step; `false` if it (or, for a group, any member) failed.
async fn exec(db: &Db, step: &Step, acked: &mut Vec<bool>) -> bool {
    acked.clear();
    let handle = |p: &str| {
        let p = p.to_owned();
        async move { db.partition(&p).await }
    };
    match step {
        Step::Create(p) => db.create_partition(p, eager()).await.is_ok(),
        Step::Drop(p) => db.drop_partition(p).await.is_ok(),
        Step::Put(p, k, v) => match handle(p).await {
            Ok(h) => h.put(k, v).await.is_ok(),
            Err(_) => false,
        },
        Step::Delete(p, k) => match handle(p).await {
            Ok(h) => h.delete(k).await.is_ok(),
            Err(_) => false,
        },
        Step::Batch(p, ops) => match handle(p).await {
            Ok(h) => {
                let mut b = h.batch();
                for (k, v) in ops {
                    match v {
                        Some(v) => b.put(k, v),
                        None => b.delete(k),
                    };
                }
                b.commit().await.is_ok()
            }
            Err(_) => false,
        },
        Step::Group(p, puts) => match handle(p).await {
            Ok(h) => {
                acked.clear();
                let tasks: Vec<_> = puts
                    .iter()
                    .map(|(k, v)| {
                        let (h, k, v) = (h.clone(), k.clone(), v.clone());
                        tokio::spawn(async move { h.put(k, v).await.is_ok() })
                    })
                    .collect();
                for t in tasks {
                    acked.push(t.await.unwrap_or(false));
                }
                acked.iter().all(|&a| a)
            }
            Err(_) => false,
        },
        Step::Compact(p) => match handle(p).await {
            Ok(h) => h.compact().await.is_ok(),
            Err(_) => false,
        },
        Step::Reopen => true,
    }
}

/// Opens the database and reads every partition: the recovery.
async fn recover(disk: &SimDisk) -> caskade::Result<(Db, State, Vec<Partition>)> {
    let db = open(disk).await?;
    let mut state = State::new();
    let mut handles = Vec::new();
    for name in db.list_partitions() {
        let p = db.partition(&name).await?;
        state.insert(name, read_state(&p).await?);
        handles.push(p);
    }
    Ok((db, state, handles))
}

/// What went wrong in the crash states explored.
#[derive(Debug, Default)]
struct Tally {
    states: u64,
    recovery_crashes: u64,
    acked_checked: u64,
    lost: u64,
    resurrected: u64,
    wrong: u64,
    stray_files: u64,
    unrecoverable: u64,
    failures: Vec<String>,
}

impl Tally {
    fn fail(&mut self, msg: String) {
        if self.failures.len() < 8 {
            self.failures.push(msg);
        }
    }
}

/// Classifies how `got` breaks the candidates: a value every candidate
/// agrees on but `got` lacks is lost; a key or partition no candidate has
/// is resurrected; anything else is wrong.
fn classify(got: &State, allowed: &[State], t: &mut Tally) {
    let mut keys = BTreeSet::new();
    for s in allowed.iter().chain([got]) {
        for (p, kv) in s {
            keys.insert((p.clone(), None));
            keys.extend(kv.keys().map(|k| (p.clone(), Some(k.clone()))));
        }
    }
    let at = |s: &State, (p, k): &(String, Option<String>)| match k {
        None => s.get(p).map(|_| String::new()),
        Some(k) => s.get(p).and_then(|kv| kv.get(k)).cloned(),
    };
    let (mut lost, mut back) = (0, 0);
    for key in &keys {
        let want: BTreeSet<Option<String>> = allowed.iter().map(|s| at(s, key)).collect();
        let g = at(got, key);
        if want.contains(&g) {
            continue;
        }
        match (want.len(), want.iter().next()) {
            (1, Some(Some(_))) => lost += 1,
            (_, _) if want.iter().all(Option::is_none) => back += 1,
            _ => t.wrong += 1,
        }
    }
    t.lost += lost;
    t.resurrected += back;
    if lost + back == 0 {
        // Each key matches some candidate, but not all the same one.
        t.wrong += 1;
    }
}

/// Files that no manifest or catalog entry accounts for.
fn check_files(disk: &SimDisk, db: &Db, t: &mut Tally, ctx: &str) {
    let root = Path::new(ROOT);
    let mut dirs = Vec::new();
    for name in db.list_partitions() {
        let dir = db
            .describe_partition(&name)
            .expect("listed")
            .dir
            .expect("durable");
        assert_only_listed(disk, &dir, ctx);
        dirs.push(dir);
    }
    for f in disk.list_files() {
        let Ok(rel) = f.strip_prefix(root) else { continue };
        let known = match rel.parent() {
            Some(p) if p.as_os_str().is_empty() => ["CATALOG", "LOCK"].iter().any(|n| rel == Path::new(n)),
            _ => dirs.iter().any(|d| f.parent() == Some(d.as_path())),
        };
        if !known {
            t.stray_files += 1;
            t.fail(format!("{ctx}: stray file {f:?}"));
        }
    }
}

/// Reopens a crashed disk and checks it; returns the recovery's operation
/// count (0 if it failed).
async fn check(disk: &SimDisk, allowed: &[State], t: &mut Tally, ctx: &str) -> u64 {
    t.states += 1;
    let before = disk.total_ops();
    let (db, got, handles) = match recover(disk).await {
        Ok(r) => r,
        Err(e) => {
            t.unrecoverable += 1;
            t.fail(format!("{ctx}: recovery failed: {e:?}"));
            return 0;
        }
    };
    let ops = disk.total_ops() - before;
    if allowed.contains(&got) {
        t.acked_checked += allowed[0].values().map(|kv| kv.len() as u64 + 1).sum::<u64>();
    } else {
        classify(&got, allowed, t);
        t.fail(format!("{ctx}: state not allowed\n{}", explain(&got, allowed)));
    }
    check_files(disk, &db, t, ctx);
    // What recovery showed readers is durable: a power loss now keeps it
    // (after a process crash, kept bytes may have been in the page cache only).
    drop(handles);
    let _ = db.close().await;
    disk.power_loss(true);
    let (db, again, handles) = match recover(disk).await {
        Ok(r) => r,
        Err(e) => {
            t.unrecoverable += 1;
            t.fail(format!("{ctx}: reopen after recovery and a power loss: {e:?}"));
            return ops;
        }
    };
    if again != got {
        t.lost += 1;
        t.fail(format!(
            "{ctx}: what recovery showed did not survive a power loss\n{}",
            explain(&again, std::slice::from_ref(&got))
        ));
    }
    // The recovered database takes writes that survive another power loss.
    let mut want = again;
    for p in &handles {
        if let Err(e) = p.put("after-crash", "x").await {
            t.unrecoverable += 1;
            t.fail(format!("{ctx}: write after recovery: {e:?}"));
            return ops;
        }
        want.get_mut(p.name())
            .expect("read")
            .insert("after-crash".into(), "x".into());
    }
    drop(handles);
    let _ = db.close().await;
    disk.power_loss(true);
    match recover(disk).await {
        Ok((db, again, _)) => {
            if again != want {
                t.lost += 1;
                t.fail(format!(
                    "{ctx}: after the write and a second power loss\n{}",
                    explain(&again, &[want])
                ));
            }
            let _ = db.close().await;
        }
        Err(e) => {
            t.unrecoverable += 1;
            t.fail(format!("{ctx}: reopen after the write: {e:?}"));
        }
    }
    ops
}

/// Explores every crash point of one workload.
async fn explore(name: &str, wi: u64, steps: &[Step], soak: bool, t: &mut Tally) {
    let disk = SimDisk::with_seed(wi);
    let full = run(&disk, steps).await;
    assert_eq!(
        full.failed, None,
        "{name}: the workload fails without a crash: {full:?}"
    );
    let n = disk.total_ops();
    let mut rng = StdRng::seed_from_u64(wi);
    for k in 0..=n {
        // Power loss at step k, and a second crash during its recovery.
        let disk = SimDisk::with_seed(wi << 32 | k);
        disk.halt_after(k);
        let out = run(&disk, steps).await;
        disk.power_loss(true);
        disk.clear_faults();
        let allowed = candidates(steps, &out);
        let ctx = format!("{name}: power loss after op {k}/{n} (step {:?})", out.failed);
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
        let out = run(&disk, steps).await;
        disk.process_crash();
        disk.clear_faults();
        let ctx = format!("{name}: process crash after op {k}/{n} (step {:?})", out.failed);
        check(&disk, &candidates(steps, &out), t, &ctx).await;
    }
}

#[test]
fn every_crash_point_recovers_a_valid_prefix() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let soak = std::env::var_os("CASKADE_CRASH_SOAK").is_some();
    let started = Instant::now();
    let queue = Arc::new(Mutex::new(
        workloads::all().into_iter().enumerate().collect::<Vec<_>>(),
    ));
    let tally = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (queue, tally) = (Arc::clone(&queue), Arc::clone(&tally));
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                loop {
                    let Some((wi, (name, steps))) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let mut t = Tally::default();
                    let began = Instant::now();
                    rt.block_on(explore(name, wi as u64, &steps, soak, &mut t));
                    println!(
                        "crash_points: workload={name} steps={} states={} recovery_crashes={} in {:.1}s",
                        steps.len(),
                        t.states,
                        t.recovery_crashes,
                        began.elapsed().as_secs_f64()
                    );
                    tally.lock().unwrap().push(t);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker panicked");
    }
    let all = std::mem::take(&mut *tally.lock().unwrap());
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
