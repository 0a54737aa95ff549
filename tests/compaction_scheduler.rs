//! The compaction scheduler: compactions start on their own once a
//! partition is past its thresholds (and not when the scheduler is
//! disabled, during the quiet period, or without free space), at most
//! `max_concurrent` at once. (Events, and a compaction meeting eviction,
//! close and the rate limit: `compaction_events.rs`.)

mod compaction_common;

use compaction_common::*;
use std::time::Duration;

use caskade::{CompactionScheduler, Db, Event, Events, SimDisk, SkipReason};

fn fast() -> CompactionScheduler {
    CompactionScheduler::default()
        .quiet_period(Duration::ZERO)
        .jitter(Duration::ZERO)
        .check_interval(Duration::from_millis(10))
}

/// The next event matching `want`, skipping others; fails after `WAIT`.
async fn wait_for(events: &mut Events, what: &str, mut want: impl FnMut(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => panic!("no event {what} within {WAIT:?}"),
            Ok(None) => panic!("events ended before {what}"),
            Ok(Some(e)) if want(&e) => return e,
            Ok(Some(_)) => {}
        }
    }
}

fn is_compaction(e: &Event) -> bool {
    matches!(
        e,
        Event::CompactionStarted { .. } | Event::CompactionCompleted { .. } | Event::CompactionFailed { .. }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_compacts_a_partition_past_its_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let db = builder(dir.path(), fast()).open().await.unwrap();
    let mut events = db.events();
    let p = db.create_partition("p", due_opts()).await.unwrap();
    let peak = fill(&p, 8).await;
    assert!(
        peak >= MIN_DEAD,
        "the workload never made the partition due: {peak}"
    );
    let e = wait_for(&mut events, "completed", |e| {
        matches!(e, Event::CompactionCompleted { .. })
    })
    .await;
    let Event::CompactionCompleted { partition, report } = e else {
        unreachable!()
    };
    assert_eq!(partition, "p");
    assert!(report.performed() && report.space_saved > 0, "{report:?}");
    // It compacts for as long as the partition is due, then stops.
    eventually("the partition is below its thresholds", || {
        let s = p.stats();
        s.dead_bytes < MIN_DEAD && !s.compacting
    })
    .await;
    let s = p.stats();
    assert!(s.dead_bytes < peak, "{s:?}");
    assert!(
        s.compactions >= 1 && s.compaction_space_saved >= report.space_saved,
        "{s:?}"
    );
    assert!(s.last_compaction.is_some());
    assert_eq!(s.failed_compactions, 0);
    assert!(
        db.stats().scheduled_compactions >= s.compactions,
        "{:?}",
        db.stats()
    );
    check_values(&p, 7).await;
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_compaction_when_disabled_or_during_the_quiet_period() {
    let quiet = fast().quiet_period(Duration::from_secs(60));
    let disabled = CompactionScheduler::disabled().check_interval(Duration::from_millis(10));
    for sched in [disabled, quiet] {
        let dir = tempfile::tempdir().unwrap();
        let db = builder(dir.path(), sched).open().await.unwrap();
        let mut events = db.events();
        let p = db.create_partition("p", due_opts()).await.unwrap();
        fill(&p, 8).await;
        // Long enough for the scheduler of the test above, many times over.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let seen: Vec<Event> = drain(&mut events).into_iter().filter(is_compaction).collect();
        assert!(seen.is_empty(), "{sched:?}: {seen:?}");
        let s = p.stats();
        assert_eq!((s.compactions, s.compacting), (0, false), "{sched:?}");
        assert!(s.dead_bytes >= MIN_DEAD, "{sched:?}: not due: {s:?}");
        assert_eq!(db.stats().scheduled_compactions, 0, "{sched:?}");
        // The partition was due: a manual compaction works and reclaims.
        assert!(p.compact().await.unwrap().space_saved > 0, "{sched:?}");
        check_values(&p, 7).await;
        db.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_one_compacts_due_partitions_one_at_a_time() {
    const PARTS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let db = builder(dir.path(), CompactionScheduler::disabled())
        .open()
        .await
        .unwrap();
    for i in 0..PARTS {
        let p = db.create_partition(&format!("p{i}"), due_opts()).await.unwrap();
        fill(&p, 8).await;
    }
    db.close().await.unwrap();

    // Reopened with the scheduler on: every partition is due as it opens.
    let sched = fast().max_concurrent(1).check_interval(Duration::from_millis(1));
    let db = builder(dir.path(), sched).open().await.unwrap();
    let mut events = db.events();
    let mut parts = Vec::new();
    for i in 0..PARTS {
        parts.push(db.partition(&format!("p{i}")).await.unwrap());
    }
    let sampler = {
        let (db, parts) = (db.clone(), parts.clone());
        tokio::spawn(async move {
            let (mut running, mut compacting) = (0, 0);
            while parts.iter().any(|p| p.stats().compactions == 0) {
                running = running.max(db.stats().running_compactions);
                compacting = compacting.max(parts.iter().filter(|p| p.stats().compacting).count());
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            (running, compacting)
        })
    };
    let (mut outstanding, mut completed) = (None::<String>, Vec::new());
    while completed.len() < PARTS {
        match wait_for(&mut events, "compaction", is_compaction).await {
            Event::CompactionStarted { partition, .. } => {
                assert!(
                    outstanding.is_none(),
                    "{partition} started while {outstanding:?} runs"
                );
                outstanding = Some(partition);
            }
            Event::CompactionCompleted { partition, report } => {
                assert_eq!(outstanding.take().as_ref(), Some(&partition), "{report:?}");
                assert!(!completed.contains(&partition), "{partition} compacted twice");
                completed.push(partition);
            }
            e => panic!("{e:?}"),
        }
    }
    let (running, compacting) = tokio::time::timeout(WAIT, sampler).await.unwrap().unwrap();
    assert!(
        running <= 1 && compacting <= 1,
        "{running} running, {compacting} compacting"
    );
    completed.sort();
    assert_eq!(completed, (0..PARTS).map(|i| format!("p{i}")).collect::<Vec<_>>());
    for p in &parts {
        check_values(p, 7).await;
    }
    assert!(db.stats().scheduled_compactions >= PARTS as u64);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_compaction_without_free_space() {
    let disk = SimDisk::new();
    disk.set_available_space(0);
    let db = Db::builder("/db")
        .simulated_disk(disk.clone())
        .compaction_scheduler(fast())
        .open()
        .await
        .unwrap();
    let mut events = db.events();
    let p = db.create_partition("p", due_opts()).await.unwrap();
    fill(&p, 8).await;
    let report = p.compact().await.unwrap();
    assert!(
        matches!(report.skipped, Some(SkipReason::LowDiskSpace { needed, available: 0 }) if needed > 0),
        "{report:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen: Vec<Event> = drain(&mut events).into_iter().filter(is_compaction).collect();
    assert!(seen.is_empty(), "{seen:?}");
    let s = p.stats();
    assert_eq!((s.compactions, s.failed_compactions), (0, 0), "{s:?}");
    assert!(s.dead_bytes >= MIN_DEAD, "{s:?}");
    // With room again, the same compaction runs.
    disk.set_available_space(u64::MAX);
    assert!(p.compact().await.unwrap().performed());
    check_values(&p, 7).await;
    db.close().await.unwrap();
}
