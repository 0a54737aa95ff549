//! Helpers shared by the scheduler and events tests: partition options
//! that make a few hundred overwrites due for compaction, a filler, value
//! checks and waits.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use caskade::{
    CompactionOptions, CompactionScheduler, Db, DbBuilder, Durability, Event, Events, Partition,
    PartitionOptions,
};

pub const KEYS: usize = 200;

pub const MIN_DEAD: u64 = 32 << 10;

pub const WAIT: Duration = Duration::from_secs(15);

pub fn due_opts() -> PartitionOptions {
    PartitionOptions::default().max_file_size(16 << 10).compaction(
        CompactionOptions::default()
            .min_dead_ratio(0.5)
            .min_dead_bytes(MIN_DEAD)
            .min_space_saving(0),
    )
}

pub fn builder(root: &std::path::Path, sched: CompactionScheduler) -> DbBuilder {
    Db::builder(root)
        .durability(Durability::OsBuffered)
        .compaction_scheduler(sched)
}

pub fn value(k: usize, round: usize) -> String {
    format!("{k:04}-{round:04}-{}", "v".repeat(90))
}

/// Writes every key `rounds` times; returns the most dead bytes seen.
pub async fn fill(p: &Partition, rounds: usize) -> u64 {
    let mut peak = 0;
    for round in 0..rounds {
        for k in 0..KEYS {
            p.put(format!("k{k}"), value(k, round)).await.unwrap();
        }
        peak = peak.max(p.stats().dead_bytes);
    }
    peak
}

pub async fn check_values(p: &Partition, round: usize) {
    for k in 0..KEYS {
        let got = p.get(format!("k{k}")).await.unwrap();
        assert_eq!(
            got.as_deref(),
            Some(value(k, round).as_bytes()),
            "{}: k{k}",
            p.name()
        );
    }
}

pub fn drain(events: &mut Events) -> Vec<Event> {
    std::iter::from_fn(|| events.try_recv()).collect()
}

pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
