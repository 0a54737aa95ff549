//! [`Intake`]: how the actor waits for requests.
//!
//! Two adaptive waits, both bounded and both off unless recent traffic shows
//! they pay:
//! - **Spin before sleeping.** Waking a sleeping thread costs tens of
//!   microseconds on a busy VM, more than a whole non-durable write. When the
//!   previous request arrived within [`SPIN`] of the writer going idle, the
//!   next wait first polls the mailbox (yielding the CPU between polls) for up
//!   to [`SPIN`] before blocking. An idle partition never spins.
//! - **Commit delay** (under `Durability::Always`, like PostgreSQL's
//!   `commit_delay`). Writers answered by one group commit come back at
//!   slightly different moments; committing as soon as the first returns
//!   splits them into two half-size groups, each paying a full `fdatasync`.
//!   When a group is smaller than the previous one, the writer waits for the
//!   others for at most half of the last commit's duration.

use std::time::{Duration, Instant};

use flume::{Receiver, RecvTimeoutError, TryRecvError};

use super::actor::Request;

/// Longest spin before blocking on the mailbox.
const SPIN: Duration = Duration::from_micros(50);
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
    spin: bool,
    idle_since: Instant,
    group_started: Instant,
    last_group: usize,
    last_commit: Duration,
}

impl Intake {
    /// A policy; commit delays only make sense when every commit syncs.
    pub(crate) fn new(delay_commits: bool) -> Self {
        let now = Instant::now();
        Intake {
            delay_commits,
            spin: false,
            idle_since: now,
            group_started: now,
            last_group: 1,
            last_commit: Duration::ZERO,
        }
    }

    /// Waits for the first request of a group, or until `deadline`.
    pub(crate) fn first(&mut self, rx: &Receiver<Request>, deadline: Option<Instant>) -> Arrival {
        let arrival = self
            .spin_for_first(rx, deadline)
            .unwrap_or_else(|| match deadline {
                Some(d) => match rx.recv_deadline(d) {
                    Ok(r) => Arrival::Request(r),
                    Err(RecvTimeoutError::Timeout) => Arrival::Deadline,
                    Err(RecvTimeoutError::Disconnected) => Arrival::Disconnected,
                },
                None => rx.recv().map_or(Arrival::Disconnected, Arrival::Request),
            });
        let now = Instant::now();
        if matches!(arrival, Arrival::Request(_)) {
            self.spin = now.duration_since(self.idle_since) <= SPIN;
            self.group_started = now;
        }
        arrival
    }

    fn spin_for_first(&self, rx: &Receiver<Request>, deadline: Option<Instant>) -> Option<Arrival> {
        if !self.spin {
            return None;
        }
        let until = deadline.map_or(self.idle_since + SPIN, |d| d.min(self.idle_since + SPIN));
        loop {
            match rx.try_recv() {
                Ok(r) => return Some(Arrival::Request(r)),
                Err(TryRecvError::Disconnected) => return Some(Arrival::Disconnected),
                Err(TryRecvError::Empty) if Instant::now() >= until => return None,
                Err(TryRecvError::Empty) => std::thread::yield_now(),
            }
        }
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
        loop {
            match rx.try_recv() {
                Ok(r) => return Some(r),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) if Instant::now() >= until => return None,
                Err(TryRecvError::Empty) => std::thread::yield_now(),
            }
        }
    }

    /// Records a finished group commit of `size` requests that took `took`;
    /// the writer is idle from now on.
    pub(crate) fn committed(&mut self, size: usize, took: Duration) {
        self.last_group = size.max(1);
        self.last_commit = took;
        self.idle_since = Instant::now();
    }

    /// The writer went idle without a commit (a sync, a deadline).
    pub(crate) fn idle(&mut self) {
        self.idle_since = Instant::now();
    }
}
