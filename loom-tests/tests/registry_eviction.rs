#![cfg(caskade_loom)]
//! Model 3: registry get-or-open vs idle eviction, over the engine's real
//! partition `Gate`.
//!
//! Threads stand in for the supervisor's tasks, doing what
//! `Supervisor::lease`, `Supervisor::open` and `Supervisor::evict` do with
//! the gate: a request leases the open incarnation and pushes into its
//! mailbox, or opens one under the slot's `turn` lock and tries again; the
//! evictor, under the same lock, retires the incarnation if it is idle,
//! stops its actor (the mailbox is closed and everything in it processed)
//! and marks it retired. The evictor takes the lock where the real one uses
//! `try_lock`: a refused `try_lock` is a skipped eviction, so this explores
//! a superset of its schedules.
//!
//! Invariants: no request is pushed into a mailbox after its actor stopped
//! reading it (a lost request); at most one incarnation owns the
//! partition's files at any moment; every request pushed is processed
//! exactly once; no deadlock (loom reports one if every thread blocks).

use caskade::__loom::{Admission, Gate};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// What an actor has not read yet, and whether it stopped reading.
#[derive(Debug, Default)]
struct Mailbox {
    queued: Vec<u32>,
    closed: bool,
}

/// One actor incarnation, as requests reach it.
#[derive(Debug)]
struct Incarnation {
    /// Which opening started it (0, 1, ...).
    id: usize,
    mailbox: Mutex<Mailbox>,
}

impl Incarnation {
    /// Sends request `req` to the actor.
    fn push(&self, req: u32) {
        let mut mb = self.mailbox.lock().unwrap();
        assert!(
            !mb.closed,
            "request {req} sent to stopped incarnation {} (lost)",
            self.id
        );
        mb.queued.push(req);
    }
}

/// One partition slot as the supervisor keeps it.
#[derive(Debug, Default)]
struct Slot {
    gate: Gate<Arc<Incarnation>>,
    /// Held while opening or retiring (`Slot::turn`).
    turn: Mutex<()>,
    /// Incarnations owning the files: started and not yet stopped.
    owners: AtomicUsize,
    /// Incarnations started so far.
    started: AtomicUsize,
    /// Requests the actors processed, in order.
    processed: Mutex<Vec<u32>>,
}

impl Slot {
    /// Starts an actor (it owns the files from here on). Called holding `turn`.
    fn start(&self) -> Arc<Incarnation> {
        // AcqRel: `owners` is also read by the final check on the main thread.
        let before = self.owners.fetch_add(1, Ordering::AcqRel);
        assert_eq!(before, 0, "a second incarnation owns the partition's files");
        Arc::new(Incarnation {
            id: self.started.fetch_add(1, Ordering::Relaxed),
            mailbox: Mutex::default(),
        })
    }

    /// Stops `inc`'s actor: it processes what is queued and reads no more.
    fn stop(&self, inc: &Incarnation) {
        let mut mb = inc.mailbox.lock().unwrap();
        assert!(!mb.closed, "incarnation {} stopped twice", inc.id);
        mb.closed = true;
        self.processed.lock().unwrap().append(&mut mb.queued);
        drop(mb);
        self.owners.fetch_sub(1, Ordering::AcqRel);
    }

    /// `Supervisor::open`: opens an incarnation unless one is open.
    fn open(&self) {
        if self.gate.is_open() {
            return;
        }
        let _turn = self.turn.lock().unwrap();
        match self.gate.admission() {
            Admission::Leased(()) => return,
            Admission::Reopen => {}
            other => panic!("open: {other:?} without a drop or close"),
        }
        let inc = self.start();
        assert!(
            self.gate.install(inc),
            "install refused to the holder of the turn"
        );
    }

    /// `Supervisor::lease` and the send: lease, push, give the lease back.
    fn request(&self, req: u32) {
        loop {
            match self.gate.lease(|| ()) {
                Admission::Leased(inc) => {
                    inc.push(req);
                    self.gate.release();
                    return;
                }
                Admission::Reopen => self.open(),
                other => panic!("request {req}: {other:?} without a drop or close"),
            }
        }
    }

    /// `Supervisor::evict`: retires the incarnation if no request is in flight.
    fn evict(&self) -> bool {
        let _turn = self.turn.lock().unwrap();
        let Some(inc) = self.gate.retire_if_idle() else {
            return false;
        };
        self.stop(&inc);
        self.gate.retired();
        true
    }
}

/// Runs `requests` request threads against an evictor making `evictions`
/// attempts; the partition starts open if `open_first`.
fn model(open_first: bool, requests: u32, evictions: usize) {
    loom::model(move || {
        let slot = Arc::new(Slot::default());
        if open_first {
            slot.open();
        }
        let evictor = {
            let slot = Arc::clone(&slot);
            thread::spawn(move || (0..evictions).filter(|_| slot.evict()).count())
        };
        let senders: Vec<_> = (0..requests)
            .map(|req| {
                let slot = Arc::clone(&slot);
                thread::spawn(move || slot.request(req))
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        let evicted = evictor.join().unwrap();

        assert_eq!(slot.gate.in_flight(), 0, "a lease was never given back");
        let started = slot.started.load(Ordering::Relaxed);
        assert!(started >= 1, "requests were served without an incarnation");
        // Every incarnation started was either evicted or is the open one.
        assert_eq!(started, evicted + usize::from(slot.gate.is_open()));
        // The final drain: close the database and stop what is still open.
        if let Some(inc) = slot.gate.seal(false) {
            slot.stop(&inc);
        }
        assert_eq!(slot.owners.load(Ordering::Acquire), 0);
        assert!(matches!(slot.gate.lease(|| ()), Admission::Shut));
        let mut processed = slot.processed.lock().unwrap().clone();
        processed.sort_unstable();
        let want: Vec<u32> = (0..requests).collect();
        assert_eq!(processed, want, "every request processed exactly once");
    });
}

/// Two requests on an open partition against three eviction attempts:
/// each request may find it open, retiring (and wait for the turn) or
/// closed (and reopen it, while the other request may be reopening too),
/// and a reopened incarnation may be evicted again.
#[test]
fn requests_vs_evictions_on_open_partition() {
    model(true, 2, 3);
}

/// Get-or-open: two requests find the partition closed and race to open
/// it (one opens, the other uses it) against two eviction attempts.
#[test]
fn get_or_open_vs_eviction() {
    model(false, 2, 2);
}
