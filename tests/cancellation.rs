//! Async cancellation (issue 6, section 5): futures of puts, deletes and
//! batches dropped at random points (after a random number of polls), and
//! a runtime shut down in the middle of writes. A dropped future only drops the caller's
//! wait: the actor writes whole records, in the order they were sent. So
//! afterwards every key holds its last acknowledged value or a later one
//! that was sent, recovery finds no torn record (no `.dropped-*` copy of a
//! cut tail), and acknowledged writes survive a power loss.
//!
//! Prints `reliability: harness=cancellation ...` with `--nocapture`.

mod crash_harness;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use caskade::{Db, Partition, SimDisk};
use crash_harness::{open, read_state};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

static PANICS: AtomicU64 = AtomicU64::new(0);
static CANCELLED: AtomicU64 = AtomicU64::new(0);
static ACKED_CHECKED: AtomicU64 = AtomicU64::new(0);

/// Per key, in the order one task sent them: each write's value (`None`:
/// a delete) and whether it was acknowledged.
type Log = BTreeMap<String, Vec<(Option<String>, bool)>>;

/// Polls `fut` until it is ready or the task has yielded `polls` times
/// waiting for it, then drops it (`None`).
async fn cut<F: std::future::Future>(polls: u32, fut: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        r = fut => Some(r),
        _ = async {
            for _ in 0..polls {
                tokio::task::yield_now().await;
            }
        } => None,
    }
}

/// Writes of task `t`: its own keys, each future dropped after a random
/// number of polls (every fourth one awaited in full); records what was
/// sent and what was acknowledged.
async fn writer(p: Partition, t: usize, ops: usize, seed: u64, log: Arc<Mutex<Log>>, alive: Arc<()>) {
    let _alive = alive;
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..ops {
        let key = format!("t{t}-k{}", rng.random_range(0..8));
        let value = format!("t{t}-{i}-{}", "c".repeat(rng.random_range(10..200)));
        let polls = rng.random_range(0..6);
        let kind = rng.random_range(0..10);
        let other = format!("t{t}-k{}", rng.random_range(8..12));
        let writes: Vec<(String, Option<String>)> = match kind {
            0 => vec![(key.clone(), None)],
            1 => vec![
                (key.clone(), Some(value.clone())),
                (other.clone(), Some(value.clone())),
            ],
            _ => vec![(key.clone(), Some(value.clone()))],
        };
        // Logged as sent before it is issued: the task may be dropped while
        // it waits (a runtime shut down), with the request already sent.
        let slots: Vec<(String, usize)> = {
            let mut log = log.lock().unwrap();
            let slot = |(k, v): &(String, Option<String>)| {
                let w = log.entry(k.clone()).or_default();
                w.push((v.clone(), false));
                (k.clone(), w.len() - 1)
            };
            writes.iter().map(slot).collect()
        };
        let result = match kind {
            0 => cut(polls, p.delete(&key)).await.map(|r| r.map(drop)),
            1 => {
                let mut b = p.batch();
                b.put(&key, &value).put(&other, &value);
                cut(polls, b.commit()).await
            }
            _ if i % 4 == 0 => Some(p.put(&key, &value).await),
            _ => cut(polls, p.put(&key, &value)).await,
        };
        let acked = match result {
            Some(Ok(())) => true,
            // The database's own runtime is shutting down under it: a sent
            // request may still be applied.
            Some(Err(caskade::Error::Closed)) => false,
            Some(Err(e)) => panic!("write failed: {e:?}"),
            None => {
                CANCELLED.fetch_add(1, Ordering::Relaxed);
                false
            }
        };
        let mut log = log.lock().unwrap();
        for (k, i) in slots {
            log.get_mut(&k).expect("logged")[i].1 = acked;
        }
    }
}

/// Checks that every key holds its last acknowledged write or a later one.
fn check(state: &BTreeMap<String, String>, log: &Log, ctx: &str) {
    for (k, writes) in log {
        let last_ack = writes.iter().rposition(|w| w.1);
        let allowed: Vec<Option<&str>> = match last_ack {
            Some(i) => writes[i..].iter().map(|w| w.0.as_deref()).collect(),
            None => std::iter::once(None)
                .chain(writes.iter().map(|w| w.0.as_deref()))
                .collect(),
        };
        let got = state.get(k).map(String::as_str);
        assert!(
            allowed.contains(&got),
            "{ctx}: {k} holds {got:?}; allowed {allowed:?}"
        );
        ACKED_CHECKED.fetch_add(u64::from(last_ack.is_some()), Ordering::Relaxed);
    }
    for k in state.keys() {
        assert!(log.contains_key(k), "{ctx}: {k} was never written");
    }
}

fn dropped_copies(disk: &SimDisk) -> Vec<std::path::PathBuf> {
    let files = disk.list_files().into_iter();
    files
        .filter(|f| f.to_string_lossy().contains(".dropped"))
        .collect()
}

/// Reopens and checks the state and that recovery cut no torn record.
async fn reopen_and_check(disk: &SimDisk, log: &Log, ctx: &str) -> Db {
    let db = open(disk)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: reopen: {e:?}"));
    let p = db.partition("p").await.unwrap();
    check(&read_state(&p).await.unwrap(), log, ctx);
    assert_eq!(
        dropped_copies(disk),
        Vec::<std::path::PathBuf>::new(),
        "{ctx}: a torn record was cut"
    );
    db
}

fn install_panic_counter() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
}

/// Dropped futures on a multi-thread runtime, then a process crash and a
/// power loss.
async fn dropped_futures(round: u64) {
    let disk = SimDisk::with_seed(round);
    let db = open(&disk).await.unwrap();
    let p = db.partition("p").await.unwrap();
    let log = Arc::new(Mutex::new(Log::new()));
    let tasks: Vec<_> = (0..6)
        .map(|t| {
            let w = writer(
                p.clone(),
                t,
                60,
                round * 100 + t as u64,
                Arc::clone(&log),
                Arc::new(()),
            );
            tokio::spawn(w)
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    let ctx = format!("round {round}");
    // Readers see it at once; `sync` drains what dropped futures had sent.
    check(&read_state(&p).await.unwrap(), &log, &format!("{ctx}, live"));
    p.sync().await.unwrap();
    let live = read_state(&p).await.unwrap();
    drop(p);
    disk.process_crash();
    drop(db);
    let db = reopen_and_check(&disk, &log, &format!("{ctx}, after kill -9")).await;
    let p = db.partition("p").await.unwrap();
    assert_eq!(
        read_state(&p).await.unwrap(),
        live,
        "{ctx}: the synced state changed"
    );
    drop(p);
    db.close().await.unwrap();
    disk.power_loss(true);
    let db = reopen_and_check(&disk, &log, &format!("{ctx}, after a power loss")).await;
    db.close().await.unwrap();
}

fn dropped_futures_on_a_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for round in 0..ROUNDS {
        rt.block_on(dropped_futures(round));
    }
}

/// Writers on their own runtime, shut down after a random delay while the
/// database lives on in another; then the database is closed cleanly, or
/// dropped with the runtime it was opened in and the process killed.
fn runtime_shut_down_mid_write() {
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    for round in 0..ROUNDS {
        let disk = SimDisk::with_seed(round);
        let log = Arc::new(Mutex::new(Log::new()));
        let writers = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let own_db = round % 2 == 1;
        // Odd rounds: the database is opened on the runtime that is shut down.
        let db = if own_db {
            writers.block_on(open(&disk))
        } else {
            main.block_on(open(&disk))
        }
        .unwrap();
        let p = main.block_on(db.partition("p")).unwrap();
        let alive = Arc::new(());
        for t in 0..4 {
            let seed = round * 100 + t as u64;
            writers.spawn(writer(
                p.clone(),
                t,
                1000,
                seed,
                Arc::clone(&log),
                Arc::clone(&alive),
            ));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(1..30)));
        writers.shutdown_timeout(Duration::ZERO);
        // A task in the middle of a poll finishes that poll after the
        // shutdown returns: wait until every writer is gone.
        while Arc::strong_count(&alive) > 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let log = log.lock().unwrap().clone();
        let ctx = format!("round {round}");
        assert!(!log.is_empty(), "{ctx}: nothing was written before the shutdown");
        main.block_on(async {
            check(&read_state(&p).await.unwrap(), &log, &format!("{ctx}, live"));
            if own_db {
                // Its runtime is gone: the process dies with it.
                p.sync().await.unwrap();
                drop(p);
                drop(db);
                disk.process_crash();
            } else {
                drop(p);
                db.close().await.unwrap();
                disk.power_loss(true);
            }
            let db = reopen_and_check(&disk, &log, &format!("{ctx}, reopened")).await;
            db.close().await.unwrap();
        });
    }
}

/// Rounds of each scenario.
const ROUNDS: u64 = 50;

#[test]
fn cancelled_writes_leave_whole_records_and_keep_acknowledged_ones() {
    install_panic_counter();
    dropped_futures_on_a_runtime();
    let cancelled = CANCELLED.load(Ordering::Relaxed);
    runtime_shut_down_mid_write();
    println!(
        "reliability: harness=cancellation rounds={} cancelled_futures={cancelled} runtime_shutdowns={ROUNDS} \
         acked_checked={} lost=0 torn=0 panics={}",
        2 * ROUNDS,
        ACKED_CHECKED.load(Ordering::Relaxed),
        PANICS.load(Ordering::SeqCst)
    );
    assert!(cancelled > 0, "no future was ever cancelled");
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}
