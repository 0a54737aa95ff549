//! Hot-swap compaction under load: readers and writers run while the
//! partition is compacted again and again. No read misses a key, goes back
//! to an older version or errors; no acknowledged write is lost (also after
//! a reopen); replaced files are deleted once nothing reads them, and not
//! before (a snapshot taken before a compaction keeps reading them);
//! concurrent `compact()` calls share one compaction.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use caskade::{
    Bytes, CompactionOptions, CompactionReport, CompactionScheduler, Db, Durability, Partition,
    PartitionOptions, SkipReason,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KEYS: usize = 256;
const WRITERS: usize = 2;
const READERS: u64 = 3;
const COMPACTIONS: usize = 8;
/// Writes made between two compactions, so each has dead bytes to reclaim.
const WRITES_BETWEEN: u64 = 300;
const VALUE_LEN: usize = 64;

fn eager() -> PartitionOptions {
    PartitionOptions::default()
        .max_file_size(16 << 10)
        .compaction(CompactionOptions::default().min_space_saving(0))
}

async fn open(root: &std::path::Path) -> Db {
    Db::builder(root)
        .durability(Durability::OsBuffered)
        .compaction_scheduler(CompactionScheduler::disabled())
        .open()
        .await
        .unwrap()
}

fn key(k: usize) -> String {
    format!("key-{k:03}")
}

/// Version `v` of key `k`: the key, the version, and padding derived from
/// both (a value read under the wrong key, or damaged, is caught).
fn value(k: usize, v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(VALUE_LEN);
    out.extend_from_slice(&(k as u32).to_be_bytes());
    out.extend_from_slice(&v.to_be_bytes());
    out.extend((0..VALUE_LEN - 12).map(|i| (k as u64 * 131 + v * 17 + i as u64) as u8));
    out
}

fn version_of(k: usize, got: Option<Bytes>) -> u64 {
    let got = got.unwrap_or_else(|| panic!("{}: missing", key(k)));
    assert_eq!(got.len(), VALUE_LEN, "{}: bad length {got:?}", key(k));
    let v = u64::from_be_bytes(got[4..12].try_into().unwrap());
    assert_eq!(
        &got[..],
        &value(k, v)[..],
        "{}: damaged value (version {v})",
        key(k)
    );
    v
}

/// Shared progress: per key, the version whose put has started and the one
/// whose put has returned.
struct Progress {
    started: Vec<AtomicU64>,
    acked: Vec<AtomicU64>,
    writes: AtomicU64,
    stop: AtomicBool,
}

/// Writes increasing versions of its own keys (`k % WRITERS == w`), and
/// puts and deletes its churn key (tombstones for the compactions to drop).
/// Returns whether the churn key is present at the end.
async fn writer(w: usize, p: Partition, pr: Arc<Progress>) -> caskade::Result<bool> {
    let mut rng = StdRng::seed_from_u64(100 + w as u64);
    let mine: Vec<usize> = (0..KEYS).filter(|k| k % WRITERS == w).collect();
    let churn = format!("churn-{w}");
    let mut churn_present = false;
    let mut n = 0u64;
    while !pr.stop.load(Ordering::Acquire) {
        let k = mine[rng.random_range(0..mine.len())];
        let v = pr.acked[k].load(Ordering::Relaxed) + 1;
        pr.started[k].store(v, Ordering::Release);
        p.put(key(k), value(k, v)).await?;
        pr.acked[k].store(v, Ordering::Release);
        pr.writes.fetch_add(1, Ordering::Relaxed);
        n += 1;
        if n.is_multiple_of(10) {
            if churn_present {
                assert!(p.delete(&churn).await?, "{churn} was present");
            } else {
                p.put(&churn, "x".repeat(40)).await?;
            }
            churn_present = !churn_present;
        }
    }
    Ok(churn_present)
}

/// Checks one read of key `k`: present, at least the version acknowledged
/// before the read began (`floor`), at most one whose put has started, and
/// never older than what this reader saw before.
fn check(k: usize, got: Option<Bytes>, floor: u64, pr: &Progress, last: &mut [u64]) {
    let v = version_of(k, got);
    assert!(
        v >= floor,
        "{}: stale version {v}, {floor} was acknowledged",
        key(k)
    );
    let started = pr.started[k].load(Ordering::Acquire);
    assert!(v <= started, "{}: version {v} never written", key(k));
    assert!(v >= last[k], "{}: went back from {} to {v}", key(k), last[k]);
    last[k] = v;
}

async fn reader(id: u64, p: Partition, pr: Arc<Progress>) -> caskade::Result<u64> {
    let mut rng = StdRng::seed_from_u64(id);
    let mut last = vec![0u64; KEYS];
    let mut reads = 0u64;
    while !pr.stop.load(Ordering::Acquire) {
        reads += 1;
        if reads.is_multiple_of(40) {
            let ks: Vec<usize> = (0..16).map(|_| rng.random_range(0..KEYS)).collect();
            let floors: Vec<u64> = ks.iter().map(|&k| pr.acked[k].load(Ordering::Acquire)).collect();
            let got = p.get_many(ks.iter().map(|&k| key(k))).await?;
            for ((k, floor), got) in ks.into_iter().zip(floors).zip(got) {
                check(k, got, floor, &pr, &mut last);
            }
        } else if reads.is_multiple_of(401) {
            let snap = p.snapshot().await?;
            for k in 0..KEYS {
                version_of(k, snap.get(key(k))?);
            }
        } else {
            let k = rng.random_range(0..KEYS);
            let floor = pr.acked[k].load(Ordering::Acquire);
            let got = p.get(key(k)).await?;
            check(k, got, floor, &pr, &mut last);
        }
    }
    Ok(reads)
}

/// Waits (real time) until `cond` holds, failing after `limit`.
async fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_and_writers_during_repeated_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let p = db.create_partition("p", eager()).await.unwrap();
    let pr = Arc::new(Progress {
        started: (0..KEYS).map(|_| AtomicU64::new(1)).collect(),
        acked: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
        writes: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    // Every key exists before the phase begins.
    for k in 0..KEYS {
        p.put(key(k), value(k, 1)).await.unwrap();
        pr.acked[k].store(1, Ordering::Release);
    }

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(w, p.clone(), Arc::clone(&pr))))
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|r| tokio::spawn(reader(r, p.clone(), Arc::clone(&pr))))
        .collect();
    let mut reports: Vec<CompactionReport> = Vec::new();
    let started = Instant::now();
    for _ in 0..COMPACTIONS {
        let from = pr.writes.load(Ordering::Relaxed);
        eventually(Duration::from_secs(20), "the writers made progress", || {
            pr.writes.load(Ordering::Relaxed) >= from + WRITES_BETWEEN
        })
        .await;
        let report = p.compact().await.expect("compaction during reads and writes");
        assert!(report.performed(), "{report:?}");
        assert!(
            report.files_compacted >= 1 && report.files_written >= 1,
            "{report:?}"
        );
        assert!(report.records_copied <= (KEYS + WRITERS) as u64, "{report:?}");
        assert_eq!(report.space_saved, report.bytes_before - report.bytes_after);
        reports.push(report);
    }
    let during = started.elapsed();
    pr.stop.store(true, Ordering::Release);
    let mut churn = Vec::new();
    for w in writers {
        churn.push(w.await.unwrap().expect("a write failed"));
    }
    for r in readers {
        let reads = r.await.unwrap().expect("a read failed");
        assert!(reads >= 100, "a reader ran only {reads} reads in {during:?}");
    }
    let stats = p.stats();
    assert_eq!(stats.compactions, COMPACTIONS as u64);
    assert_eq!(stats.failed_compactions, 0);
    assert!(!stats.compacting);
    let saved: u64 = reports.iter().map(|r| r.space_saved).sum();
    assert_eq!(stats.compaction_space_saved, saved);

    // No lost write.
    let check_all = |p: Partition, pr: Arc<Progress>, churn: Vec<bool>| async move {
        for k in 0..KEYS {
            let want = pr.acked[k].load(Ordering::Acquire);
            assert_eq!(version_of(k, p.get(key(k)).await.unwrap()), want, "{}", key(k));
        }
        for (w, present) in churn.iter().enumerate() {
            assert_eq!(p.get(format!("churn-{w}")).await.unwrap().is_some(), *present);
        }
        let live = KEYS + churn.iter().filter(|c| **c).count();
        assert_eq!(p.stats().keys, live as u64);
    };
    check_all(p.clone(), Arc::clone(&pr), churn.clone()).await;

    // Every replaced file is deleted once no reader holds it.
    let replaced: u64 = reports.iter().map(|r| r.files_compacted as u64).sum();
    eventually(Duration::from_secs(10), "no obsolete file is left", || {
        p.stats().obsolete_files == 0
    })
    .await;
    assert_eq!(p.stats().obsolete_files_deleted, replaced);
    let pdir = common::partition_dir(&db, "p");
    assert_eq!(
        common::data_files(&pdir).len() as u64,
        p.stats().files,
        "{:?}",
        common::data_files(&pdir)
    );
    db.close().await.unwrap();

    let db = open(dir.path()).await;
    let p = db.partition("p").await.unwrap();
    check_all(p.clone(), pr, churn).await;
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_keeps_reading_the_files_a_compaction_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let p = db.create_partition("p", eager()).await.unwrap();
    for v in 1..=3 {
        for k in 0..KEYS {
            p.put(key(k), value(k, v)).await.unwrap();
        }
    }
    let pdir = common::partition_dir(&db, "p");
    let old_files = common::data_files(&pdir);
    assert!(old_files.len() > 2, "{old_files:?}");
    let snap = p.snapshot().await.unwrap();
    // Newer versions after the snapshot, then the compaction.
    for k in 0..KEYS {
        p.put(key(k), value(k, 4)).await.unwrap();
    }
    let report = p.compact().await.unwrap();
    assert!(report.performed(), "{report:?}");

    // The snapshot holds the replaced files it reads.
    let held = p.stats().obsolete_files;
    assert!(
        held > 0 && held <= report.files_compacted as u64,
        "{held} obsolete files held, {} replaced",
        report.files_compacted
    );
    let on_disk = common::data_files(&pdir);
    for name in &old_files {
        assert!(on_disk.contains(name), "{name} deleted while a snapshot reads it");
    }
    assert_eq!(snap.len(), KEYS);
    for k in 0..KEYS {
        assert_eq!(
            version_of(k, snap.get(key(k)).unwrap()),
            3,
            "snapshot: {}",
            key(k)
        );
        assert_eq!(version_of(k, p.get(key(k)).await.unwrap()), 4, "{}", key(k));
    }
    let mut seen = 0;
    for entry in snap.iter() {
        let (k, v) = entry.unwrap();
        let k: usize = std::str::from_utf8(&k[4..]).unwrap().parse().unwrap();
        assert_eq!(version_of(k, Some(v)), 3);
        seen += 1;
    }
    assert_eq!(seen, KEYS);
    // Still held after another round of writes and a second compaction.
    for k in 0..KEYS {
        p.put(key(k), value(k, 5)).await.unwrap();
    }
    assert!(p.compact().await.unwrap().performed());
    assert!(p.stats().obsolete_files >= held);
    assert_eq!(version_of(7, snap.get(key(7)).unwrap()), 3);

    drop(snap);
    eventually(
        Duration::from_secs(10),
        "the snapshot's files are deleted",
        || p.stats().obsolete_files == 0,
    )
    .await;
    let on_disk = common::data_files(&pdir);
    for name in &old_files {
        assert!(
            !on_disk.contains(name),
            "{name} outlived the last snapshot reading it"
        );
    }
    assert_eq!(on_disk.len() as u64, p.stats().files, "{on_disk:?}");
    for k in 0..KEYS {
        assert_eq!(version_of(k, p.get(key(k)).await.unwrap()), 5, "{}", key(k));
    }
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_compact_calls_share_one_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let p = db.create_partition("p", eager()).await.unwrap();
    let mut performed = 0u64;
    for round in 1..=5u64 {
        for k in 0..KEYS {
            p.put(key(k), value(k, round)).await.unwrap();
            p.put(key(k), value(k, round + 100)).await.unwrap();
        }
        let (a, b, c) = tokio::join!(p.compact(), p.compact(), p.compact());
        let reports = [a, b, c].map(|r| r.expect("a racing compact() failed"));
        let ran: Vec<&CompactionReport> = reports.iter().filter(|r| r.performed()).collect();
        assert!(!ran.is_empty(), "round {round}: none ran: {reports:?}");
        for r in &ran {
            // Every report of a compaction that ran is the same one.
            assert_eq!(*r, ran[0], "round {round}: two compactions ran: {reports:?}");
        }
        for r in reports.iter().filter(|r| !r.performed()) {
            assert_eq!(
                r.skipped,
                Some(SkipReason::NothingToReclaim),
                "round {round}: {r:?}"
            );
        }
        performed += 1;
        assert_eq!(p.stats().compactions, performed, "round {round}: {reports:?}");
        assert_eq!(ran[0].records_copied, KEYS as u64);
        for k in 0..KEYS {
            assert_eq!(version_of(k, p.get(key(k)).await.unwrap()), round + 100);
        }
    }
    assert_eq!(p.stats().failed_compactions, 0);
    db.close().await.unwrap();
}

/// A long (rate-limited) copy with many writes during it: most of them are
/// replayed by the copy's catch-up, the rest by the install, and every one
/// wins over the copied record — overwrites, deletes and new keys, also
/// after a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_a_long_copy_all_win() {
    const LIVE: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let open_limited = || async {
        Db::builder(dir.path())
            .durability(Durability::OsBuffered)
            .compaction_scheduler(CompactionScheduler::disabled())
            .compaction_rate_limit(1 << 20)
            .open()
            .await
            .unwrap()
    };
    let db = open_limited().await;
    let opts = PartitionOptions::default()
        .max_file_size(256 << 10)
        .compaction(CompactionOptions::default().min_space_saving(0));
    let p = db.create_partition("p", opts).await.unwrap();
    let mut model: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    for round in 0..2u64 {
        for k in 0..LIVE {
            p.put(key(k), value(k, round)).await.unwrap();
            model.insert(key(k), value(k, round));
        }
    }
    // ~2.3 MiB of live records at 1 MiB/s: the copy takes about two seconds.
    let compaction = tokio::spawn({
        let p = p.clone();
        async move { p.compact().await }
    });
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(7);
    let mut written = 0u64;
    while !compaction.is_finished() {
        let k = rng.random_range(0..LIVE + 1000);
        if rng.random_bool(0.1) {
            p.delete(key(k)).await.unwrap();
            model.remove(&key(k));
        } else {
            p.put(key(k), value(k, 100 + written)).await.unwrap();
            model.insert(key(k), value(k, 100 + written));
        }
        written += 1;
        if written.is_multiple_of(64) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let report = compaction.await.unwrap().unwrap();
    assert!(report.performed(), "{report:?}");
    assert!(
        written > 2 * 1024 && started.elapsed() > Duration::from_millis(500),
        "the copy was long enough for several catch-up rounds: {written} writes in {:?}",
        started.elapsed()
    );
    let check = |p: Partition, model: std::collections::BTreeMap<String, Vec<u8>>| async move {
        for k in 0..LIVE + 1000 {
            let got = p.get(key(k)).await.unwrap();
            assert_eq!(got.as_deref(), model.get(&key(k)).map(|v| &v[..]), "{}", key(k));
        }
        assert_eq!(p.stats().keys, model.len() as u64);
    };
    check(p.clone(), model.clone()).await;
    db.close().await.unwrap();
    let db = open_limited().await;
    check(db.partition("p").await.unwrap(), model).await;
    db.close().await.unwrap();
}
