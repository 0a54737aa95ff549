//! The actor's side of compaction: at most one copy per partition runs on
//! its own thread; the actor begins it, polls for its end between groups,
//! installs or rolls it back, and answers everyone who asked for it.
//!
//! The copy reports through a slot and a flag, then nudges the mailbox with
//! a non-blocking `try_send` (through a weak sender, so a copy never keeps
//! a partition open). The flag is set before the nudge: a nudge lost to a
//! full mailbox is harmless, since the actor then has requests to process
//! and checks the flag before waiting again. Everything except the copy
//! (beginning, installing, deleting a failed copy's leftovers) runs on the
//! actor, in order with group commits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::oneshot;

use crate::compaction::CompactionReport;
use crate::error::{Error, Result};
use crate::events::{Event, EventSender};
use crate::stats::Counters;

use super::actor::Request;
use super::compaction::CompactionOutput;
use super::writer::{Begin, Writer};

/// Who is waiting for the running compaction's report.
type Waiters = Vec<oneshot::Sender<Result<CompactionReport>>>;

/// A copy running in the background.
struct Running {
    thread: Option<std::thread::JoinHandle<()>>,
    result: Arc<Mutex<Option<Result<CompactionOutput>>>>,
    done: Arc<AtomicBool>,
    cancel: Arc<AtomicBool>,
    waiters: Waiters,
    started: Instant,
}

/// See the module documentation.
pub(crate) struct Compactor {
    name: String,
    running: Option<Running>,
    mailbox: flume::WeakSender<Request>,
    events: Option<EventSender>,
    stats: Arc<Counters>,
    /// Run copies on a thread of their own (off on the simulated disk, where
    /// they run inline on the actor, in a deterministic order of I/O).
    background: bool,
    /// The copy thread's nice value.
    nice: i32,
    /// A `CancelCompaction` arrived (sent only once the partition's gate is
    /// sealed for a drop or close): later requests are refused, so a
    /// compaction asked for just before the seal cannot start after it.
    refused: bool,
}

impl Compactor {
    pub(crate) fn new(
        name: &str,
        mailbox: flume::WeakSender<Request>,
        events: Option<EventSender>,
        stats: Arc<Counters>,
        background: bool,
        nice: i32,
    ) -> Self {
        Compactor {
            name: name.to_owned(),
            running: None,
            mailbox,
            events,
            stats,
            background,
            nice,
            refused: false,
        }
    }

    fn emit(&self, event: Event) {
        if let Some(events) = &self.events {
            events.emit(event);
        }
    }

    /// A request to compact: joins the running compaction, or begins one
    /// (answering at once if there is nothing worth doing).
    pub(crate) fn request(&mut self, writer: &mut Writer, reply: oneshot::Sender<Result<CompactionReport>>) {
        if self.refused {
            let _ = reply.send(Err(Error::CompactionCancelled {
                partition: self.name.clone(),
            }));
            return;
        }
        if let Some(running) = &mut self.running {
            running.waiters.push(reply);
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let job = match writer.begin_compaction(Arc::clone(&cancel)) {
            Ok(Begin::Started(job)) => job,
            Ok(Begin::Skipped(report)) => {
                tracing::debug!(partition = %self.name, reason = ?report.skipped, "compaction skipped");
                // The requester may have stopped waiting.
                let _ = reply.send(Ok(report));
                return;
            }
            Err(e) => {
                // Failed to begin (poisoned, the sealing rotation, statvfs):
                // a failure operators see like any other.
                self.fail(vec![reply], e, Instant::now());
                return;
            }
        };
        let (files, bytes) = writer.compaction_inputs().unwrap_or_default();
        self.emit(Event::CompactionStarted {
            partition: self.name.clone(),
            files,
            bytes,
        });
        self.stats.compacting.store(true, Ordering::Relaxed);
        let result = Arc::new(Mutex::new(None));
        let done = Arc::new(AtomicBool::new(false));
        let mut running = Running {
            thread: None,
            result: Arc::clone(&result),
            done: Arc::clone(&done),
            cancel,
            waiters: vec![reply],
            started: Instant::now(),
        };
        let mailbox = self.mailbox.clone();
        let copy = move || {
            let outcome = job.run();
            *result.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
            done.store(true, Ordering::Release);
            if let Some(tx) = mailbox.upgrade() {
                // Full: the actor is busy and checks `done` before waiting.
                let _ = tx.try_send(Request::CompactionReady);
            }
        };
        if self.background {
            let nice = self.nice;
            match std::thread::Builder::new()
                .name(format!("caskade:compact:{}", self.name))
                .spawn(move || {
                    lower_priority(nice);
                    copy();
                }) {
                Ok(handle) => running.thread = Some(handle),
                Err(e) => {
                    writer.abandon_compaction();
                    self.stats.compacting.store(false, Ordering::Relaxed);
                    let e = Error::io("spawn compaction thread for", &self.name, e);
                    self.fail(running.waiters, e, running.started);
                    return;
                }
            }
        } else {
            copy();
        }
        self.running = Some(running);
        self.poll(writer);
    }

    /// Installs (or rolls back) the running compaction if its copy is done.
    pub(crate) fn poll(&mut self, writer: &mut Writer) {
        if !self
            .running
            .as_ref()
            .is_some_and(|r| r.done.load(Ordering::Acquire))
        {
            return;
        }
        let running = self.running.take().expect("checked above");
        self.finish(writer, running);
    }

    /// Abandons the running compaction, if any: the copy stops at its next
    /// check and deletes its outputs; waiters get `CompactionCancelled`
    /// (or the report, if the copy had finished already: it is installed).
    pub(crate) fn cancel(&mut self, writer: &mut Writer) {
        self.refused = true;
        if let Some(running) = self.running.take() {
            running.cancel.store(true, Ordering::Release);
            self.finish(writer, running);
        }
    }

    fn finish(&mut self, writer: &mut Writer, mut running: Running) {
        if let Some(thread) = running.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(partition = %self.name, "compaction thread panicked");
        }
        self.stats.compacting.store(false, Ordering::Relaxed);
        let outcome = running
            .result
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| {
                Err(Error::CompactionCancelled {
                    partition: self.name.clone(),
                })
            });
        let installed = match outcome {
            // Also when cancelled after the copy finished: installing costs
            // one manifest switch, and the copy's work is not wasted.
            Ok(out) => writer.install_compaction(out),
            Err(e) => {
                writer.abandon_compaction();
                Err(e)
            }
        };
        match installed {
            Ok(report) => {
                self.stats.compacted(&report);
                self.emit(Event::CompactionCompleted {
                    partition: self.name.clone(),
                    report: report.clone(),
                });
                for w in running.waiters {
                    // A requester that stopped waiting needs no answer.
                    let _ = w.send(Ok(report.clone()));
                }
            }
            Err(e) => self.fail(running.waiters, e, running.started),
        }
    }

    fn fail(&self, waiters: Waiters, e: Error, started: Instant) {
        self.stats.compactions_failed.fetch_add(1, Ordering::Relaxed);
        self.emit(Event::CompactionFailed {
            partition: self.name.clone(),
            error: e.clone(),
            after: started.elapsed(),
        });
        for w in waiters {
            let _ = w.send(Err(e.clone()));
        }
    }
}

impl Drop for Compactor {
    /// Only reached with a copy still running if the actor is unwinding
    /// from a panic: stop the copy and wait for it (it deletes its outputs),
    /// so no copy outlives its actor and touches a later incarnation's files.
    fn drop(&mut self) {
        if let Some(mut running) = self.running.take() {
            running.cancel.store(true, Ordering::Release);
            if let Some(thread) = running.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// Gives the calling thread the nice value `nice` (Linux: `setpriority` on
/// its thread id), so the copy yields the CPU to reads and writes. A failure
/// only costs that preference.
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice > 0 {
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
            tracing::debug!(error = %e, "could not lower the compaction thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn lower_priority_sets_the_thread_nice_value_only() {
        let nice_of = |stat: &str| -> i32 {
            // Field 19 of /proc/<tid>/stat, counted after the ")" ending the name.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            rest.split(' ').nth(16).unwrap().parse().unwrap()
        };
        let own = || std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let before = nice_of(&own());
        let inside = std::thread::spawn(move || {
            super::lower_priority(before + 5);
            nice_of(&own())
        })
        .join()
        .unwrap();
        assert_eq!(inside, before + 5);
        assert_eq!(nice_of(&own()), before, "only the copy's thread is lowered");
    }
}
