//! Scale: 10,000 partitions created and used through a bound of 64 open ones
//! on the real file system. Open file descriptors and threads stay bounded by
//! the open partitions, not the known ones, and memory grows by little per
//! known partition (no index, actor or file kept for an evicted partition).
//!
//! This file holds a single test on purpose: it measures process-wide
//! resources (`/proc/self`), which other tests running in parallel threads of
//! the same binary would disturb.

use std::time::{Duration, Instant};

use caskade::{Db, Durability};

const PARTITIONS: usize = 10_000;
const MAX_OPEN: usize = 64;
const CHECKPOINT: usize = 1_000;
/// Descriptors one open partition may hold: its active data file, with
/// room for a directory or manifest handle held during recovery.
const FDS_PER_OPEN: usize = 4;
/// Descriptors and threads tolerated beyond the partitions' own: the
/// runtime's blocking pool, a hint thread, an actor still unwinding after
/// answering its shutdown.
const SLACK: usize = 32;
/// Resident growth tolerated per known partition after the first
/// `CHECKPOINT` (measured: about 2.3 KiB — a slot, its counters and latency
/// histogram, its catalog entry). A thread stack or a write buffer kept per
/// partition would exceed it; a version kept (index and open files) would
/// also show in the descriptor count, a thread in the thread count.
const RSS_PER_PARTITION: u64 = 4096;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// A numeric field of /proc/self/status (`VmRSS` is in KiB).
fn status(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = text
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line[field.len() + 1..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unparsable {line:?}"))
}

fn rss_bytes() -> u64 {
    status("VmRSS") * 1024
}

fn threads() -> usize {
    status("Threads") as usize
}

fn name(i: usize) -> String {
    format!("tenant/{i:05}")
}

fn value(i: usize) -> String {
    format!("value of partition {i}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow (1-5 min, one fsync-bound partition creation after another): run by .ci/run with --ignored"]
async fn ten_thousand_partitions_through_64_open() -> caskade::Result<()> {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path())
        .durability(Durability::OsBuffered)
        .max_open_partitions(MAX_OPEN)
        .open()
        .await?;
    let (fds0, threads0, rss0) = (open_fds(), threads(), rss_bytes());
    let fd_bound = fds0 + MAX_OPEN * FDS_PER_OPEN + SLACK;
    let thread_bound = threads0 + MAX_OPEN + SLACK;
    println!(
        "baseline: {fds0} fds, {threads0} threads, {} KiB resident",
        rss0 / 1024
    );
    println!("bounds: fds <= {fd_bound}, threads <= {thread_bound}");

    let mut rss_at_first = 0;
    let mut lap = Instant::now();
    let (mut max_fds, mut max_threads) = (0, 0);
    for i in 0..PARTITIONS {
        let p = db.partition(&name(i)).await?;
        p.put("k", value(i)).await?;
        assert_eq!(
            p.get("k").await?.as_deref(),
            Some(value(i).as_bytes()),
            "partition {i}"
        );
        drop(p);
        let s = db.stats();
        assert!(
            s.open_partitions as usize <= MAX_OPEN,
            "after partition {i}: {s:?}"
        );
        if (i + 1) % CHECKPOINT != 0 {
            continue;
        }
        let known = i + 1;
        let (fds, thr, rss) = (open_fds(), threads(), rss_bytes());
        (max_fds, max_threads) = (max_fds.max(fds), max_threads.max(thr));
        let per_partition = if known == CHECKPOINT {
            rss_at_first = rss;
            (rss.saturating_sub(rss0)) / known as u64
        } else {
            rss.saturating_sub(rss_at_first) / (known - CHECKPOINT) as u64
        };
        println!(
            "{known:>6} partitions: {fds} fds, {thr} threads, {} KiB resident \
             ({per_partition} B per partition {}), {} open, {} evictions, last {CHECKPOINT} in {:?}",
            rss / 1024,
            if known == CHECKPOINT {
                "since baseline"
            } else {
                "since the first checkpoint"
            },
            s.open_partitions,
            s.evictions,
            lap.elapsed(),
        );
        lap = Instant::now();
        assert!(
            fds <= fd_bound,
            "{fds} open fds with {known} partitions (bound {fd_bound})"
        );
        assert!(
            thr <= thread_bound,
            "{thr} threads with {known} partitions (bound {thread_bound})"
        );
        if known > CHECKPOINT {
            assert!(
                per_partition < RSS_PER_PARTITION,
                "resident memory grew {per_partition} B per partition beyond the first {CHECKPOINT}"
            );
        }
    }
    let created_in = started.elapsed();
    println!(
        "created and used {PARTITIONS} partitions in {created_in:?} ({:?} per partition); \
         peak {max_fds} fds, {max_threads} threads",
        created_in / PARTITIONS as u32
    );

    // Every partition was opened once; each one past the bound evicted the
    // least recently used one (all idle: no handle was kept).
    let s = db.stats();
    assert_eq!(s.partitions, PARTITIONS as u64, "{s:?}");
    assert_eq!(s.opens, PARTITIONS as u64, "{s:?}");
    assert_eq!(s.reopens, 0, "{s:?}");
    assert_eq!(s.evictions, (PARTITIONS - MAX_OPEN) as u64, "{s:?}");
    assert_eq!(s.idle_evictions, 0, "no idle timeout was set: {s:?}");
    assert_eq!(s.open_partitions, MAX_OPEN as u64, "{s:?}");
    let on_disk = std::fs::read_dir(dir.path().join("partitions")).unwrap().count();
    assert_eq!(on_disk, PARTITIONS, "partition directories");

    // Statistics of evicted partitions are kept (no I/O, nothing reopened).
    let mut open = 0;
    for i in 0..PARTITIONS {
        let stats = db.describe_partition(&name(i))?.stats;
        assert_eq!(stats.keys, 1, "partition {i}: {stats:?}");
        assert_eq!(stats.writes, 1, "partition {i}: {stats:?}");
        assert_eq!(
            stats.live_bytes,
            (25 + 1 + value(i).len()) as u64,
            "partition {i}"
        );
        assert_eq!(stats.opens, 1, "partition {i}: {stats:?}");
        open += usize::from(stats.open);
        assert_eq!(
            stats.evictions,
            u64::from(!stats.open),
            "partition {i}: {stats:?}"
        );
    }
    assert_eq!(open, MAX_OPEN, "partitions reporting themselves open");

    // Spot checks reopen evicted partitions (which evicts others).
    let mut expected_reopens = 0;
    for i in (0..PARTITIONS).step_by(97) {
        let was_open = db.describe_partition(&name(i))?.stats.open;
        expected_reopens += u64::from(!was_open);
        assert_eq!(
            db.get(&name(i), "k").await?.as_deref(),
            Some(value(i).as_bytes()),
            "partition {i}"
        );
        assert!(
            db.describe_partition(&name(i))?.stats.open,
            "partition {i} open after a get"
        );
        assert!(db.stats().open_partitions as usize <= MAX_OPEN);
    }
    let s = db.stats();
    assert!(expected_reopens > 0);
    assert_eq!(s.reopens, expected_reopens, "{s:?}");
    assert_eq!(s.opens, PARTITIONS as u64 + expected_reopens, "{s:?}");
    assert_eq!(
        s.evictions,
        (PARTITIONS - MAX_OPEN) as u64 + expected_reopens,
        "{s:?}"
    );
    let (fds, thr) = (open_fds(), threads());
    assert!(
        fds <= fd_bound && thr <= thread_bound,
        "{fds} fds, {thr} threads after spot checks"
    );

    // Closing ends every actor and closes every file.
    db.close().await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while threads() > threads0 + 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (fds, thr) = (open_fds(), threads());
    println!(
        "after close: {fds} fds, {thr} threads; whole test {:?}",
        started.elapsed()
    );
    // The runtime's blocking pool may have grown by a thread or two.
    assert!(
        thr <= threads0 + 4,
        "{thr} threads after close (baseline {threads0})"
    );
    assert!(
        fds < fds0,
        "{fds} fds after close (baseline {fds0}, which included the lock)"
    );
    let removing = Instant::now();
    dir.close().unwrap();
    println!("removing the directory took {:?}", removing.elapsed());
    Ok(())
}
