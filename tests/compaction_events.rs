//! Engine events (compactions started, completed and failed; partitions
//! evicted and reopened; a subscriber that never reads does not block the
//! engine; subscriptions end at close), and a compaction meeting eviction
//! (which waits for it), close and drop (which cancel it) and the rate limit.

mod common;
mod compaction_common;

use compaction_common::*;
use std::time::{Duration, Instant};

use caskade::{
    CompactionOptions, CompactionScheduler, Db, EVENT_BUFFER, Error, Event, Partition, PartitionOptions,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_completed_and_failed_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let db = builder(dir.path(), CompactionScheduler::disabled())
        .open()
        .await
        .unwrap();
    let mut events = db.events();
    let p = db.create_partition("p", due_opts()).await.unwrap();
    fill(&p, 3).await;
    let report = p.compact().await.unwrap();
    assert!(report.performed());
    let seen = drain(&mut events);
    assert!(
        matches!(&seen[..], [
            Event::CompactionStarted { partition: a, files, bytes },
            Event::CompactionCompleted { partition: b, report: r },
        ] if a == "p" && b == "p" && *files == report.files_compacted
            && *bytes == report.bytes_before && *r == report),
        "{seen:?}"
    );

    let timeout = Duration::from_nanos(1);
    let mut opts = due_opts();
    opts.compaction = opts.compaction.timeout(timeout);
    let q = db.create_partition("q", opts).await.unwrap();
    fill(&q, 3).await;
    let err = q.compact().await.unwrap_err();
    assert!(
        matches!(&err, Error::CompactionTimedOut { partition, .. } if partition == "q"),
        "{err:?}"
    );
    let seen = drain(&mut events);
    assert!(
        matches!(&seen[..], [
            Event::CompactionStarted { partition: a, .. },
            Event::CompactionFailed { partition: b, error: Error::CompactionTimedOut { .. }, .. },
        ] if a == "q" && b == "q"),
        "{seen:?}"
    );
    let s = q.stats();
    assert_eq!(
        (s.compactions, s.failed_compactions, s.compacting),
        (0, 1, false),
        "{s:?}"
    );
    // Rolled back: the partition goes on, on its old files, and nothing is left over.
    check_values(&q, 2).await;
    q.put("after", "x").await.unwrap();
    let qdir = common::partition_dir(&db, "q");
    let on_disk = std::fs::read_dir(&qdir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".data")
        })
        .count();
    assert_eq!(on_disk as u64, q.stats().files);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_evictions_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let db = builder(dir.path(), CompactionScheduler::disabled())
        .max_open_partitions(1)
        .open()
        .await
        .unwrap();
    let mut events = db.events();
    let a = db
        .create_partition("a", PartitionOptions::default())
        .await
        .unwrap();
    a.put("k", "a").await.unwrap();
    let b = db
        .create_partition("b", PartitionOptions::default())
        .await
        .unwrap();
    let names = |seen: Vec<Event>| -> Vec<String> {
        seen.into_iter()
            .map(|e| match e {
                Event::PartitionEvicted {
                    partition,
                    idle: false,
                } => format!("evicted {partition}"),
                Event::PartitionReopened { partition, .. } => format!("reopened {partition}"),
                e => panic!("{e:?}"),
            })
            .collect()
    };
    assert_eq!(names(drain(&mut events)), ["evicted a"]);
    for _ in 0..3 {
        assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(names(drain(&mut events)), ["evicted b", "reopened a"]);
        b.put("k", "b").await.unwrap();
        assert_eq!(names(drain(&mut events)), ["evicted a", "reopened b"]);
    }
    // The subscription ends with the close; one taken after it (through a
    // clone of the handle) has ended already.
    let after = db.clone();
    db.close().await.unwrap();
    let ended = tokio::time::timeout(WAIT, events.recv()).await.unwrap();
    assert!(ended.is_none(), "{ended:?}");
    assert!(
        tokio::time::timeout(WAIT, after.events().recv())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_does_not_block_the_engine() {
    const FAILURES: usize = 600;
    let dir = tempfile::tempdir().unwrap();
    let db = builder(dir.path(), CompactionScheduler::disabled())
        .open()
        .await
        .unwrap();
    let mut lazy = db.events();
    let mut eager = db.events();
    let reader = tokio::spawn(async move {
        let mut n = 0u64;
        while eager.recv().await.is_some() {
            n += 1;
        }
        (n, eager.missed())
    });
    let mut opts = due_opts();
    opts.compaction = opts.compaction.timeout(Duration::from_nanos(1));
    let q = db.create_partition("q", opts).await.unwrap();
    fill(&q, 3).await;
    // Each failed compaction sends two events (started, failed).
    tokio::time::timeout(Duration::from_secs(60), async {
        for _ in 0..FAILURES {
            assert!(matches!(q.compact().await, Err(Error::CompactionTimedOut { .. })));
        }
    })
    .await
    .expect("the engine waited for a subscriber");
    assert_eq!(q.stats().failed_compactions, FAILURES as u64);
    let kept = drain(&mut lazy);
    let sent = 2 * FAILURES as u64;
    assert!(lazy.missed() > 0, "missed nothing of {sent}");
    assert_eq!(kept.len(), EVENT_BUFFER, "kept the newest {EVENT_BUFFER}");
    assert_eq!(kept.len() as u64 + lazy.missed(), sent);
    assert!(
        matches!(kept.last(), Some(Event::CompactionFailed { .. })),
        "{:?}",
        kept.last()
    );
    db.close().await.unwrap();
    assert!(tokio::time::timeout(WAIT, lazy.recv()).await.unwrap().is_none());
    let (n, missed) = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
    assert_eq!(n + missed, sent);
}

/// Opens `root` with one open partition at most and compactions copying at 1 MiB/s.
async fn open_slow(root: &std::path::Path) -> Db {
    builder(root, CompactionScheduler::disabled())
        .max_open_partitions(1)
        .compaction_rate_limit(1 << 20)
        .open()
        .await
        .unwrap()
}

const BIG_KEYS: usize = 768;

fn big(k: usize) -> Vec<u8> {
    let mut v = vec![(k % 251) as u8; 4096];
    v[..8].copy_from_slice(&(k as u64).to_be_bytes());
    v
}

/// 3 MiB live in 1 MiB files, plus dead bytes.
async fn fill_big(p: &Partition) {
    for k in 0..BIG_KEYS {
        p.put(format!("b{k}"), big(k + 1)).await.unwrap();
    }
    for k in 0..BIG_KEYS {
        p.put(format!("b{k}"), big(k)).await.unwrap();
    }
}

async fn check_big(p: &Partition) {
    for k in 0..BIG_KEYS {
        let got = p.get(format!("b{k}")).await.unwrap();
        assert!(got.as_deref() == Some(&big(k)[..]), "b{k}");
    }
}

fn big_opts() -> PartitionOptions {
    PartitionOptions::default()
        .max_file_size(1 << 20)
        .compaction(CompactionOptions::default().min_space_saving(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_waits_for_a_running_compaction_and_close_cancels_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_slow(dir.path()).await;
    let b = db
        .create_partition("b", PartitionOptions::default())
        .await
        .unwrap();
    b.put("k", "b").await.unwrap();
    let a = db.create_partition("a", big_opts()).await.unwrap();
    fill_big(&a).await;
    let mut events = db.events();
    let compaction = tokio::spawn({
        let a = a.clone();
        async move { a.compact().await }
    });
    eventually("a compacts", || a.stats().compacting).await;
    // Opening b must not evict a while its compaction runs.
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some(&b"b"[..]));
    b.put("k2", "b").await.unwrap();
    let evicted_a = |e: &Event| matches!(e, Event::PartitionEvicted { partition, .. } if partition == "a");
    let mut seen = drain(&mut events);
    assert!(
        !seen.iter().any(evicted_a),
        "a evicted during its compaction: {seen:?}"
    );
    assert!(
        a.stats().compacting,
        "the compaction ended before b opened: make it slower"
    );
    assert!(a.stats().open);
    assert_eq!(a.get("b3").await.unwrap().as_deref(), Some(&big(3)[..]));
    let report = compaction.await.unwrap().expect("compaction of a");
    assert!(report.performed());
    // Now a can go: b's next uses (or the tick) bring the bound back.
    let deadline = Instant::now() + WAIT;
    while !seen.iter().any(evicted_a) {
        assert!(Instant::now() < deadline, "a was never evicted: {seen:?}");
        b.get("k").await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen.extend(drain(&mut events));
    }
    let at = |want: &dyn Fn(&Event) -> bool| seen.iter().position(want);
    let completed = at(&|e| matches!(e, Event::CompactionCompleted { partition, .. } if partition == "a"));
    let evicted = at(&evicted_a);
    assert!(completed.is_some() && completed < evicted, "{seen:?}");
    check_big(&a).await;

    // Close during a compaction: cancelled, promptly.
    fill_big(&a).await;
    let compaction = tokio::spawn({
        let a = a.clone();
        async move { a.compact().await }
    });
    eventually("a compacts again", || a.stats().compacting).await;
    let started = Instant::now();
    db.close().await.unwrap();
    let took = started.elapsed();
    let outcome = compaction.await.unwrap();
    assert!(
        matches!(outcome, Err(Error::CompactionCancelled { .. } | Error::Closed)),
        "{outcome:?}"
    );
    assert!(took < Duration::from_secs(2), "close took {took:?}");

    let db = open_slow(dir.path()).await;
    let a = db.partition("a").await.unwrap();
    check_big(&a).await;
    let adir = common::partition_dir(&db, "a");
    let data = std::fs::read_dir(&adir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".data"))
        .count();
    assert_eq!(data as u64, a.stats().files, "leftovers of the cancelled copy");
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_partition_cancels_a_running_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_slow(dir.path()).await;
    let mut events = db.events();
    let a = db.create_partition("a", big_opts()).await.unwrap();
    fill_big(&a).await;
    let adir = common::partition_dir(&db, "a");
    let compaction = tokio::spawn({
        let a = a.clone();
        async move { a.compact().await }
    });
    eventually("a compacts", || a.stats().compacting).await;
    let started = Instant::now();
    db.drop_partition("a").await.unwrap();
    let took = started.elapsed();
    let outcome = compaction.await.unwrap();
    assert!(
        matches!(
            outcome,
            Err(Error::CompactionCancelled { .. } | Error::PartitionDropped { .. })
        ),
        "{outcome:?}"
    );
    assert!(took < Duration::from_secs(2), "drop took {took:?}");
    assert!(!adir.exists(), "{adir:?} outlived the drop");
    let seen = drain(&mut events);
    let cancelled = |e: &Event| {
        matches!(e, Event::CompactionFailed { partition, error: Error::CompactionCancelled { .. }, .. }
            if partition == "a")
    };
    assert!(seen.iter().any(cancelled), "{seen:?}");
    assert!(matches!(a.get("b0").await, Err(Error::PartitionDropped { .. })));
    // A new partition of the same name starts empty.
    let a = db.create_partition("a", big_opts()).await.unwrap();
    assert_eq!(a.get("b0").await.unwrap(), None);
    db.close().await.unwrap();
}

/// `compaction_rate_limit`: the copy writes at most that many bytes per
/// second, whatever the size of its output files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_bounds_the_copy() {
    // 2 MiB in 1 MiB files, 1.5 MiB in 256 KiB files (smaller than a flush).
    for (file_size, keys) in [(1 << 20, 512), (256 << 10, 384)] {
        let dir = tempfile::tempdir().unwrap();
        let db = open_slow(dir.path()).await;
        let mut opts = big_opts();
        opts.max_file_size = Some(file_size);
        let a = db.create_partition("a", opts).await.unwrap();
        for k in 0..keys {
            a.put(format!("b{k}"), big(k + 1)).await.unwrap();
            a.put(format!("b{k}"), big(k)).await.unwrap();
        }
        let report = a.compact().await.unwrap();
        assert!(report.bytes_after >= keys as u64 * 4096, "{report:?}");
        // 1 MiB/s; the last MiB may go unpaced.
        let paced = (report.bytes_after - (1 << 20)) as f64 / f64::from(1 << 20);
        let least = Duration::from_secs_f64(0.9 * paced);
        assert!(
            report.duration >= least,
            "files of {file_size} bytes: {} bytes copied in {:?}, limit 1 MiB/s",
            report.bytes_after,
            report.duration
        );
        db.close().await.unwrap();
    }
}

/// A compaction that cannot even begin (here: the partition is poisoned by
/// a failed write) is reported like any failed one: an error to the caller,
/// a `CompactionFailed` event (and no `CompactionStarted`), a failure count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_that_cannot_begin_emits_a_failure() {
    let disk = caskade::SimDisk::new();
    let db = Db::builder("/db")
        .simulated_disk(disk.clone())
        .compaction_scheduler(CompactionScheduler::disabled())
        .open()
        .await
        .unwrap();
    let mut events = db.events();
    let p = db.create_partition("p", due_opts()).await.unwrap();
    fill(&p, 2).await;
    disk.fail(caskade::SimOp::Write, 1, caskade::SimFault::Eio, false);
    p.put("k0", "fails").await.expect_err("the faulted write fails");
    let err = p.compact().await.unwrap_err();
    assert!(
        matches!(&err, Error::Poisoned { partition } if partition == "p"),
        "{err:?}"
    );
    let seen = drain(&mut events);
    assert!(
        matches!(&seen[..], [Event::CompactionFailed { partition, error: Error::Poisoned { .. }, .. }] if partition == "p"),
        "{seen:?}"
    );
    let s = p.stats();
    assert_eq!(
        (s.compactions, s.failed_compactions, s.compacting),
        (0, 1, false),
        "{s:?}"
    );
    check_values(&p, 1).await;
    db.close().await.ok();
}
