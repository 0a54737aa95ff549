//! The gate of one partition: which actor incarnation requests go to, and
//! how many requests are in flight through it.
//!
//! This is the synchronous core of eviction, drop and close, small enough
//! for loom to check exhaustively (models 3 and 5 in `loom-tests/`):
//!
//! - a request takes a *lease* (counted in `in_flight`) before it sends to
//!   the actor, and gives it back after the reply;
//! - eviction retires the incarnation only when no lease is held, and a
//!   retiring incarnation grants none, so no request is ever sent to an
//!   actor that is shutting down for eviction;
//! - drop and close *seal* the gate (no new lease) and then wait until the
//!   leases already granted are given back, so every request sent before is
//!   answered before the actor stops.
//!
//! Why both a mutex and a counter: the count is bumped before the state is
//! checked under the mutex, and eviction reads the count under the same
//! mutex. Either the lease's check comes first (then eviction sees the
//! count) or eviction's does (then the lease sees `Retiring`) — so a lease is
//! never granted on an incarnation that eviction has taken.

use crate::sync::{AtomicUsize, Mutex, Ordering};

/// Where a partition's incarnation stands.
#[derive(Debug)]
enum State<T> {
    /// No actor; the next request opens one.
    Closed,
    /// Serving through `T`.
    Open(T),
    /// Being evicted: requests wait for the evictor, then reopen.
    Retiring,
    /// Dropped: requests fail for good.
    Dropped,
    /// The database closed: requests fail for good.
    Shut,
}

/// The answer to [`Gate::lease`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission<T> {
    /// A lease on the open incarnation; give it back with [`Gate::release`].
    Leased(T),
    /// No actor runs (or one is retiring): open one, then try again.
    Reopen,
    /// The partition was dropped.
    Dropped,
    /// The database is closed.
    Shut,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Gate<T> {
    state: Mutex<State<T>>,
    in_flight: AtomicUsize,
}

impl<T: Clone> Default for Gate<T> {
    fn default() -> Self {
        Gate {
            state: Mutex::new(State::Closed),
            in_flight: AtomicUsize::new(0),
        }
    }
}

impl<T: Clone> Gate<T> {
    fn state(&self) -> crate::sync::MutexGuard<'_, State<T>> {
        // Every transition is a single assignment: a panic elsewhere cannot
        // leave the state half-updated, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a lease if an incarnation is open. A refused request gives
    /// its count back; if that was the last one, `on_idle` runs (a drop or
    /// close waiting for the last lease must hear of it, or it waits forever).
    pub(crate) fn lease(&self, on_idle: impl FnOnce()) -> Admission<T> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let answer = match &*self.state() {
            State::Open(t) => return Admission::Leased(t.clone()),
            State::Closed | State::Retiring => Admission::Reopen,
            State::Dropped => Admission::Dropped,
            State::Shut => Admission::Shut,
        };
        if self.release() {
            on_idle();
        }
        answer
    }

    /// Gives a lease back; `true` if it was the last one.
    pub(crate) fn release(&self) -> bool {
        self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// Leases held now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Whether an incarnation is open.
    pub(crate) fn is_open(&self) -> bool {
        matches!(*self.state(), State::Open(_))
    }

    /// What a request would get now, without taking a lease.
    pub(crate) fn admission(&self) -> Admission<()> {
        match &*self.state() {
            State::Open(_) => Admission::Leased(()),
            State::Closed | State::Retiring => Admission::Reopen,
            State::Dropped => Admission::Dropped,
            State::Shut => Admission::Shut,
        }
    }

    /// Installs a freshly opened incarnation; `false` (and nothing changes)
    /// unless the gate was closed.
    pub(crate) fn install(&self, t: T) -> bool {
        let mut st = self.state();
        if matches!(*st, State::Closed) {
            *st = State::Open(t);
            true
        } else {
            false
        }
    }

    /// Starts evicting: takes the open incarnation if no lease is held.
    /// Follow with [`Gate::retired`] once its actor stopped.
    pub(crate) fn retire_if_idle(&self) -> Option<T> {
        let mut st = self.state();
        if self.in_flight.load(Ordering::SeqCst) != 0 || !matches!(*st, State::Open(_)) {
            return None;
        }
        match std::mem::replace(&mut *st, State::Retiring) {
            State::Open(t) => Some(t),
            _ => unreachable!("checked above"),
        }
    }

    /// The retired incarnation's actor has stopped: the next request reopens.
    pub(crate) fn retired(&self) {
        let mut st = self.state();
        if matches!(*st, State::Retiring) {
            *st = State::Closed;
        }
    }

    /// Refuses every new lease from now on, for good: `dropped` (the
    /// partition is being dropped) or the database is closing. Returns the
    /// open incarnation, if any; the caller waits for `in_flight` to reach
    /// zero before stopping it. Not called while retiring (the caller holds
    /// the partition's opening lock, as the evictor does).
    pub(crate) fn seal(&self, dropped: bool) -> Option<T> {
        let next = if dropped { State::Dropped } else { State::Shut };
        match std::mem::replace(&mut *self.state(), next) {
            State::Open(t) => Some(t),
            _ => None,
        }
    }

    /// Undoes a [`Gate::seal`] for a drop that could not be recorded: the
    /// partition stays, closed (the next request reopens it).
    pub(crate) fn unseal(&self) {
        let mut st = self.state();
        if matches!(*st, State::Dropped) {
            *st = State::Closed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_only_without_leases() {
        let g: Gate<u32> = Gate::default();
        assert_eq!(g.lease(|| ()), Admission::Reopen);
        assert_eq!(g.in_flight(), 0, "a refused lease is given back");
        assert!(g.install(1));
        assert!(!g.install(2), "one incarnation at a time");
        assert_eq!(g.lease(|| ()), Admission::Leased(1));
        assert_eq!(g.retire_if_idle(), None, "a lease is held");
        assert!(g.release());
        assert_eq!(g.retire_if_idle(), Some(1));
        assert_eq!(g.lease(|| ()), Admission::Reopen, "retiring grants no lease");
        assert!(!g.install(3), "no reopen before the old actor stopped");
        g.retired();
        assert!(g.install(3));
        assert_eq!(g.seal(true), Some(3));
        assert_eq!(g.lease(|| ()), Admission::Dropped);
        g.unseal();
        assert_eq!(g.lease(|| ()), Admission::Reopen);
        assert_eq!(g.seal(false), None);
        assert_eq!(g.lease(|| ()), Admission::Shut);
        assert_eq!(g.in_flight(), 0);
    }
}
