//! [`Intake`]: how the actor waits for requests.
//!
//! The actor sleeps in `recv` until a request arrives (or the interval-sync
//! deadline passes), then drains what is queued. One adaptive wait is added:
//! the **commit delay** under `Durability::Always` (PostgreSQL's
//! `commit_delay`, made adaptive). Writers answered by one group commit come
//! back at slightly different moments; committing as soon as the first
//! returns splits them into two half-size groups, each paying a full
//! `fdatasync`. So when a group is smaller than the previous one, the actor
//! waits — blocked, not spinning — for the others, at most half of the last
//! commit's duration (capped at [`MAX_COMMIT_DELAY`]).
//!
//! Spinning was tried and rejected: polling the mailbox before sleeping
//! halves a lone writer's round trip on an idle machine, but on 2 cores a
//! spinning actor competes with the runtime's busy workers and cut a writer's
//! throughput among 15 busy readers from ~43k to ~1k puts/s (BENCHMARKS.md).

use std::time::{Duration, Instant};

use flume::{Receiver, RecvTimeoutError};

use super::actor::Request;

/// Upper bound of the commit delay, whatever the last commit took.
const MAX_COMMIT_DELAY: Duration = Duration::from_micros(500);

/// What waiting for the next group's first request produced.
#[derive(Debug)]
pub(crate) enum Arrival {
    /// A request.
    Request(Request),
    /// The interval-sync deadline passed first.
    Deadline,
    /// Every sender is gone.
    Disconnected,
}

/// The actor's waiting policy and the little history it adapts to.
#[derive(Debug)]
pub(crate) struct Intake {
    delay_commits: bool,
    group_started: Instant,
    last_group: usize,
    last_commit: Duration,
}

impl Intake {
    /// A policy; commit delays only make sense when every commit syncs.
    pub(crate) fn new(delay_commits: bool) -> Self {
        Intake {
            delay_commits,
            group_started: Instant::now(),
            last_group: 1,
            last_commit: Duration::ZERO,
        }
    }

    /// Waits for the first request of a group, or until `deadline`.
    pub(crate) fn first(&mut self, rx: &Receiver<Request>, deadline: Option<Instant>) -> Arrival {
        let arrival = match deadline {
            Some(d) => match rx.recv_deadline(d) {
                Ok(r) => Arrival::Request(r),
                Err(RecvTimeoutError::Timeout) => Arrival::Deadline,
                Err(RecvTimeoutError::Disconnected) => Arrival::Disconnected,
            },
            None => rx.recv().map_or(Arrival::Disconnected, Arrival::Request),
        };
        self.group_started = Instant::now();
        arrival
    }

    /// The next request of the group being gathered (`have` so far), if one
    /// is queued, or — under the commit delay — arrives soon enough.
    pub(crate) fn more(&self, rx: &Receiver<Request>, have: usize) -> Option<Request> {
        if let Ok(r) = rx.try_recv() {
            return Some(r);
        }
        if !self.delay_commits || have >= self.last_group {
            return None;
        }
        let until = self.group_started + (self.last_commit / 2).min(MAX_COMMIT_DELAY);
        // Timeout or disconnected: the group is complete.
        rx.recv_deadline(until).ok()
    }

    /// Records a finished group commit of `size` requests that took `took`.
    pub(crate) fn committed(&mut self, size: usize, took: Duration) {
        self.last_group = size.max(1);
        self.last_commit = took;
    }
}
