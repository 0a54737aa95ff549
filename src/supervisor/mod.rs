//! The supervisor: opens partitions on demand and keeps the number of open
//! ones bounded, evicting the least recently used (`lru` crate) when the
//! bound is reached and idle ones after a timeout.
//!
//! Eviction is invisible to users: a handle holds the partition's [`Slot`],
//! not its actor, and an operation on an evicted partition reopens it.
//! - Only an incarnation with no lease held is retired (see [`gate`]), so no
//!   request is ever lost to eviction.
//! - Retiring and opening hold the slot's `turn`, and an actor holds the
//!   directory's `owner` permit until its files are closed: at most one actor
//!   owns a partition directory at any moment.
//! - No lock is held across file I/O except a slot's own `turn`: the LRU
//!   mutex guards only memory, so one partition opening or closing never
//!   blocks another partition's operations.
//!
//! Recency is tracked without touching the LRU on the hot path: each
//! operation bumps its partition's counters anyway, and when looking for a
//! victim the supervisor moves an entry whose counters changed since it last
//! looked to the front instead of evicting it (a second chance, as in CLOCK).

pub(crate) mod gate;
pub(crate) mod scheduler;
pub(crate) mod slot;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lru::LruCache;
use tokio::time::Instant;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::events::{Event, EventSender, Events};
use crate::partition::actor::{self, ActorSpec, Request};
use crate::stats::DbStats;
use crate::storage::{Backend, StorageLock};
use crate::sync::AtomicBool;

use gate::Admission;
use scheduler::{CompactionScheduler, Scheduler};
use slot::{Incarnation, Slot};

/// An open, evictable partition in the LRU.
#[derive(Debug)]
struct Tracked {
    slot: Arc<Slot>,
    /// Its activity counter when the supervisor last looked.
    seen: u64,
    /// Since when the counter has not moved.
    idle_since: Instant,
}

/// Why an eviction did not happen.
#[derive(Debug, PartialEq, Eq)]
enum Eviction {
    Done,
    /// A request is in flight or an opening is under way: try later.
    Busy,
    /// The partition is not open any more (dropped, closed).
    Gone,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Supervisor {
    pub(crate) root: PathBuf,
    pub(crate) fs: Backend,
    pub(crate) cfg: Arc<Config>,
    /// The database lock; each actor holds a share until its files are closed.
    pub(crate) lock: Mutex<Option<Arc<Box<dyn StorageLock>>>>,
    /// Set when the `Db` closes.
    pub(crate) closed: Arc<AtomicBool>,
    max_open: usize,
    idle_timeout: Option<Duration>,
    lru: Mutex<LruCache<u64, Tracked>>,
    /// Open memory-only partitions (never evicted, so not in the LRU).
    pinned: AtomicUsize,
    opens: AtomicU64,
    reopens: AtomicU64,
    evictions: AtomicU64,
    idle_evictions: AtomicU64,
    /// The first failure of an eviction's final close (acknowledged writes
    /// may be lost): reported by `Db::close`.
    deferred: Mutex<Option<Error>>,
    /// Where events go; taken when the `Db` has closed, so subscriptions end.
    events: Mutex<Option<EventSender>>,
    pub(crate) scheduler: Scheduler,
}

/// A request's permission to use an open incarnation; given back on drop.
#[derive(Debug)]
pub(crate) struct Lease<'a> {
    slot: &'a Slot,
    pub(crate) inc: Arc<Incarnation>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.slot.release();
    }
}

impl Supervisor {
    pub(crate) fn new(
        root: PathBuf,
        fs: Backend,
        cfg: Arc<Config>,
        lock: Box<dyn StorageLock>,
        max_open: usize,
        idle_timeout: Option<Duration>,
        scheduler: CompactionScheduler,
    ) -> Supervisor {
        Supervisor {
            root,
            fs,
            cfg,
            lock: Mutex::new(Some(Arc::new(lock))),
            closed: Arc::new(AtomicBool::new(false)),
            max_open,
            idle_timeout,
            lru: Mutex::new(LruCache::unbounded()),
            pinned: AtomicUsize::new(0),
            opens: AtomicU64::new(0),
            reopens: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            idle_evictions: AtomicU64::new(0),
            deferred: Mutex::new(None),
            events: Mutex::new(Some(EventSender::default())),
            scheduler: Scheduler::new(scheduler),
        }
    }

    fn event_sender(&self) -> Option<EventSender> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Sends an event to the subscribers (none once closed).
    fn emit(&self, event: Event) {
        if let Some(events) = self.event_sender() {
            events.emit(event);
        }
    }

    /// A subscription to the database's events (one that ends at once if
    /// the database has closed).
    pub(crate) fn events(&self) -> Events {
        self.event_sender().unwrap_or_default().subscribe()
    }

    /// Ends every subscription once the events sent so far are received
    /// (the `Db` closed: its actors, which hold the other senders, are gone).
    pub(crate) fn close_events(&self) {
        drop(self.events.lock().unwrap_or_else(PoisonError::into_inner).take());
    }

    /// The open, evictable partitions.
    pub(crate) fn open_slots(&self) -> Vec<Arc<Slot>> {
        self.lru().iter().map(|(_, t)| Arc::clone(&t.slot)).collect()
    }

    fn lru(&self) -> std::sync::MutexGuard<'_, LruCache<u64, Tracked>> {
        // Guards only memory; every update is complete before it can panic.
        self.lru.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A lease on the partition's open incarnation, opening it if needed.
    ///
    /// # Errors
    /// [`Error::PartitionDropped`], [`Error::Closed`], or why opening failed.
    pub(crate) async fn lease<'a>(&self, slot: &'a Arc<Slot>) -> Result<Lease<'a>> {
        loop {
            match slot.lease() {
                Admission::Leased(inc) => return Ok(Lease { slot, inc }),
                Admission::Reopen => self.open(slot).await?,
                Admission::Dropped => return Err(dropped(slot)),
                Admission::Shut => return Err(Error::Closed),
            }
        }
    }

    /// Opens the partition unless it is open (waiting for an eviction or
    /// another opening of it in progress).
    ///
    /// # Errors
    /// As [`Supervisor::lease`].
    pub(crate) async fn open(&self, slot: &Arc<Slot>) -> Result<()> {
        if slot.gate.is_open() {
            return Ok(());
        }
        let turn = slot.turn.lock().await;
        // `close` may have begun: no new actor (it seals every slot, each
        // under its turn, so one that began before us waits for us).
        if self.closed.load(crate::sync::Ordering::Acquire) {
            return Err(Error::Closed);
        }
        match slot.gate.admission() {
            Admission::Leased(()) => return Ok(()),
            Admission::Reopen => {}
            Admission::Dropped => return Err(dropped(slot)),
            Admission::Shut => return Err(Error::Closed),
        }
        if !slot.pinned() {
            self.make_room().await;
        }
        // Waits while an earlier actor (one whose opening was abandoned)
        // still owns the directory. The semaphore is never closed.
        let owner = Arc::clone(&slot.owner)
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let lock = self
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::Closed)?;
        let (tx, rx) = flume::bounded(slot.cfg.mailbox_capacity);
        let mailbox = tx.downgrade();
        let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
        let (stopped_tx, stopped) = tokio::sync::watch::channel(());
        let spec = ActorSpec {
            name: slot.name.clone(),
            fs: Arc::clone(&slot.fs),
            dir: slot.dir.clone(),
            cfg: Arc::clone(&slot.cfg),
            cell: crate::sync::Arc::clone(&slot.cell),
            stats: Arc::clone(&slot.stats),
            clean: slot.clean.swap(false, Relaxed),
            lock,
            owner,
            stopped: stopped_tx,
            reaper: crate::sync::Arc::clone(&slot.reaper),
            mailbox,
            events: self.event_sender(),
        };
        let started = std::time::Instant::now();
        actor::spawn(spec, rx, opened_tx)?;
        opened_rx.await.map_err(|_| Error::Closed)??;
        let inc = Arc::new(Incarnation { tx, stopped });
        if !slot.gate.install(Arc::clone(&inc)) {
            // Unreachable while we hold the turn (drop and close take it to
            // seal); stop the actor rather than leave it unowned.
            let _ = shutdown(&inc, true).await;
            return Err(Error::Closed);
        }
        let reopen = slot.stats.opens.fetch_add(1, Relaxed) > 0;
        self.opens.fetch_add(1, Relaxed);
        if reopen {
            self.reopens.fetch_add(1, Relaxed);
        }
        if slot.pinned() {
            self.pinned.fetch_add(1, Relaxed);
        } else {
            self.lru().put(
                slot.id,
                Tracked {
                    seen: slot.stats.activity(),
                    slot: Arc::clone(slot),
                    idle_since: Instant::now(),
                },
            );
        }
        let took = started.elapsed();
        tracing::info!(
            partition = %slot.name,
            reopen,
            took_us = took.as_micros() as u64,
            "partition opened"
        );
        if reopen {
            self.emit(Event::PartitionReopened {
                partition: slot.name.clone(),
                took,
            });
        }
        drop(turn);
        Ok(())
    }

    /// Evicts least recently used partitions until one more can open.
    async fn make_room(&self) {
        self.shrink_to(self.max_open - 1).await;
    }

    /// Evicts least recently used partitions until at most `bound` are open
    /// (or every remaining one is busy: then it gives up, logging it).
    async fn shrink_to(&self, bound: usize) {
        // Busy entries are out of the LRU while we look for others; the guard
        // puts them back even if this future is dropped.
        let mut busy = Busy {
            sup: self,
            held: Vec::new(),
        };
        loop {
            let victim = {
                let mut lru = self.lru();
                if lru.len() + busy.held.len() + self.pinned.load(Relaxed) <= bound {
                    break;
                }
                pick_victim(&mut lru)
            };
            let Some(t) = victim else {
                tracing::warn!(
                    max_open = self.max_open,
                    "every open partition is busy: over the bound until the next tick"
                );
                break;
            };
            match self.evict(&t.slot, false).await {
                Eviction::Done | Eviction::Gone => {}
                Eviction::Busy => busy.held.push(t),
            }
        }
    }

    /// Puts entries back into the LRU if their partition is still open.
    fn track_again(&self, entries: impl IntoIterator<Item = Tracked>) {
        let mut lru = self.lru();
        for t in entries {
            // A partition stopped meanwhile (dropped, closing) is gone for good.
            if t.slot.gate.is_open() {
                lru.put(t.slot.id, t);
            }
        }
    }

    /// Keeps an error of an eviction's final close for `Db::close` to report.
    fn defer(&self, e: Error) {
        self.deferred
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(e);
    }

    /// The first error an eviction's final close reported, if any (taken).
    pub(crate) fn take_deferred(&self) -> Option<Error> {
        self.deferred
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Retires the slot's incarnation if no request is in flight: the actor
    /// drains, syncs, closes its files and releases the index.
    async fn evict(&self, slot: &Slot, idle: bool) -> Eviction {
        let Ok(turn) = slot.turn.try_lock() else {
            return Eviction::Busy;
        };
        let Some(inc) = slot.gate.retire_if_idle() else {
            return if slot.gate.is_open() {
                Eviction::Busy
            } else {
                Eviction::Gone
            };
        };
        // If this future is dropped mid-way (a caller's timeout), the guard
        // still reopens the gate: the old actor keeps its directory's owner
        // permit until its files are closed, so a new one waits for it.
        let reopenable = Retired(slot);
        match shutdown(&inc, true).await {
            // Read by the next opening, which holds the turn after us.
            Ok(clean) => slot.clean.store(clean, Relaxed),
            Err(e) => {
                tracing::error!(partition = %slot.name, error = %e, "final sync of an evicted partition failed");
                self.defer(e);
            }
        }
        drop(reopenable);
        drop(turn);
        slot.stats.evictions.fetch_add(1, Relaxed);
        self.evictions.fetch_add(1, Relaxed);
        if idle {
            self.idle_evictions.fetch_add(1, Relaxed);
        }
        tracing::info!(partition = %slot.name, idle, "partition evicted");
        self.emit(Event::PartitionEvicted {
            partition: slot.name.clone(),
            idle,
        });
        Eviction::Done
    }

    /// The periodic work: back under the bound if busy partitions forced an
    /// opening over it, then the idle timeout, then the compactions due.
    pub(crate) async fn tick(self: &Arc<Self>) {
        self.shrink_to(self.max_open).await;
        self.evict_idle().await;
        self.schedule_compactions();
    }

    /// Evicts every partition idle for the timeout.
    async fn evict_idle(&self) {
        let Some(timeout) = self.idle_timeout else {
            return;
        };
        let now = Instant::now();
        let victims: Vec<Tracked> = {
            let mut lru = self.lru();
            let mut ids = Vec::new();
            for (&id, t) in lru.iter_mut() {
                let activity = t.slot.stats.activity();
                if activity != t.seen || t.slot.gate.in_flight() > 0 {
                    t.seen = activity;
                    t.idle_since = now;
                } else if now.duration_since(t.idle_since) >= timeout {
                    ids.push(id);
                }
            }
            ids.iter().filter_map(|id| lru.pop(id)).collect()
        };
        let mut busy = Busy {
            sup: self,
            held: Vec::new(),
        };
        for mut t in victims {
            if self.evict(&t.slot, true).await == Eviction::Busy {
                t.idle_since = now;
                busy.held.push(t);
            }
        }
    }

    /// Stops the partition for good — dropped, or the database closing:
    /// no new request is admitted, the requests in flight are answered, then
    /// the actor drains, syncs and closes its files.
    ///
    /// # Errors
    /// The actor's final sync failed (or a poisoning put acknowledged
    /// writes at risk).
    pub(crate) async fn stop(&self, slot: &Slot, dropped: bool) -> Result<()> {
        let turn = slot.turn.lock().await;
        let inc = slot.gate.seal(dropped);
        if let Some(inc) = &inc {
            // A running compaction holds a lease: cancel it rather than wait
            // for it (an actor already gone needs no cancelling).
            let _ = inc.tx.send_async(Request::CancelCompaction).await;
        }
        slot.drained().await;
        let mut result = Ok(());
        if let Some(inc) = inc {
            result = shutdown(&inc, dropped).await.map(drop);
            if slot.pinned() {
                self.pinned.fetch_sub(1, Relaxed);
            } else {
                self.lru().pop(&slot.id);
            }
        }
        drop(turn);
        result
    }

    /// Undoes [`Supervisor::stop`] for a drop that could not be recorded.
    pub(crate) fn reinstate(&self, slot: &Slot) {
        slot.gate.unseal();
    }

    /// Database-wide statistics (`partitions` is filled in by the caller).
    pub(crate) fn stats(&self, partitions: usize) -> DbStats {
        DbStats {
            partitions: partitions as u64,
            open_partitions: (self.lru().len() + self.pinned.load(Relaxed)) as u64,
            opens: self.opens.load(Relaxed),
            reopens: self.reopens.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            idle_evictions: self.idle_evictions.load(Relaxed),
            scheduled_compactions: self.scheduler.started.load(Relaxed),
            running_compactions: self.scheduler.running.load(Relaxed) as u64,
        }
    }
}

/// Entries taken out of the LRU that go back when this drops.
struct Busy<'a> {
    sup: &'a Supervisor,
    held: Vec<Tracked>,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.sup.track_again(self.held.drain(..));
    }
}

/// Reopens a retiring gate when dropped (see `Supervisor::evict`).
struct Retired<'a>(&'a Slot);

impl Drop for Retired<'_> {
    fn drop(&mut self) {
        self.0.gate.retired();
    }
}

/// The least recently used entry not used since it was last considered:
/// entries used since (or busy) get a second chance at the front. Two
/// passes: after the first, only entries used again meanwhile, or busy, are
/// spared.
fn pick_victim(lru: &mut LruCache<u64, Tracked>) -> Option<Tracked> {
    for _ in 0..2 * lru.len() {
        let (&id, t) = lru.peek_lru()?;
        let activity = t.slot.stats.activity();
        if activity == t.seen && t.slot.gate.in_flight() == 0 {
            return lru.pop(&id);
        }
        if let Some(t) = lru.get_mut(&id) {
            t.seen = activity;
        }
    }
    None
}

fn dropped(slot: &Slot) -> Error {
    Error::PartitionDropped {
        name: slot.name.clone(),
    }
}

/// Asks an incarnation's actor to stop and waits until it did; `true` if
/// it closed cleanly (not poisoned: everything synced). `Closed` if the actor
/// ended without answering (it panicked): its files may not be synced.
pub(crate) async fn shutdown(inc: &Incarnation, retire: bool) -> Result<bool> {
    let (reply, mut rx) = tokio::sync::oneshot::channel();
    let mut stopped = inc.stopped.clone();
    if inc
        .tx
        .send_async(Request::Shutdown { reply, retire })
        .await
        .is_err()
    {
        return Err(Error::Closed);
    }
    tokio::select! {
        biased;
        r = &mut rx => r.unwrap_or(Err(Error::Closed)),
        // The actor may answer and end between the two polls: a reply sent
        // before it ended still counts (as in `Partition::request`).
        _ = stopped.changed() => rx.try_recv().unwrap_or(Err(Error::Closed)),
    }
}

/// Runs [`Supervisor::tick`] every quarter of the idle timeout, or the
/// scheduler's check interval if shorter (at most every second), until the
/// database closes or is dropped.
pub(crate) fn spawn_idle_task(sup: &Arc<Supervisor>) {
    let weak = Arc::downgrade(sup);
    let mut period = sup.idle_timeout.map_or(Duration::from_secs(1), |t| t / 4);
    if sup.scheduler.opts.enabled {
        period = period.min(sup.scheduler.opts.check_interval);
    }
    let period = period.clamp(Duration::from_millis(1), Duration::from_secs(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(sup) = weak.upgrade() else { return };
            if sup.closed.load(crate::sync::Ordering::Acquire) {
                return;
            }
            sup.tick().await;
        }
    });
}
