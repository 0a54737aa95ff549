//! Engine events: compactions and the supervisor's evictions and reopens,
//! delivered to every subscriber of [`Db::events`](crate::Db::events).
//!
//! Delivery is broadcast-style (`tokio::sync::broadcast`): sending never
//! blocks or allocates per subscriber, and a subscriber that falls more
//! than [`EVENT_BUFFER`] events behind loses the oldest ones (counted by
//! [`Events::missed`]) — a slow subscriber never slows the engine. Every
//! event is also emitted as a `tracing` event.

use std::time::Duration;

use tokio::sync::broadcast;

use crate::compaction::CompactionReport;
use crate::error::Error;

/// Events a subscriber can fall behind by before it loses the oldest.
pub const EVENT_BUFFER: usize = 1024;

/// Something the engine did in the background.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A compaction began copying.
    CompactionStarted {
        /// The partition.
        partition: String,
        /// Data files it replaces.
        files: usize,
        /// Their bytes.
        bytes: u64,
    },
    /// A compaction was installed.
    CompactionCompleted {
        /// The partition.
        partition: String,
        /// What it did (files, space saved, duration).
        report: CompactionReport,
    },
    /// A compaction failed, timed out or was cancelled, and was rolled back.
    CompactionFailed {
        /// The partition.
        partition: String,
        /// Why.
        error: Error,
        /// How long it ran.
        after: Duration,
    },
    /// The supervisor evicted a partition (closed its files, released its
    /// index); it reopens on its next use.
    PartitionEvicted {
        /// The partition.
        partition: String,
        /// Evicted for being idle (otherwise: to make room).
        idle: bool,
    },
    /// A partition opened again after an eviction (or a close).
    PartitionReopened {
        /// The partition.
        partition: String,
        /// How long the opening (recovery) took.
        took: Duration,
    },
}

/// A subscription to a database's [`Event`]s; see [`Db::events`](crate::Db::events).
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> caskade::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use caskade::{CompactionOptions, Event, PartitionOptions};
/// let db = caskade::Db::open(dir.path()).await?;
/// let mut events = db.events();
/// let eager = CompactionOptions::default().min_space_saving(0);
/// let p = db
///     .create_partition("p", PartitionOptions::default().compaction(eager))
///     .await?;
/// p.put("k", "1").await?;
/// p.put("k", "2").await?;
/// p.compact().await?;
/// assert!(matches!(events.recv().await, Some(Event::CompactionStarted { .. })));
/// assert!(matches!(events.recv().await, Some(Event::CompactionCompleted { .. })));
/// # db.close().await }
/// ```
#[derive(Debug)]
pub struct Events {
    rx: broadcast::Receiver<Event>,
    missed: u64,
}

impl Events {
    /// The next event; `None` once the database is closed (or dropped) and
    /// every event sent before was received. Events lost to falling behind
    /// are skipped and counted in [`Events::missed`].
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            match self.rx.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(n)) => self.missed += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        loop {
            match self.rx.try_recv() {
                Ok(e) => return Some(e),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.missed += n,
                Err(_) => return None,
            }
        }
    }

    /// Events this subscriber lost by falling behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

/// The sending side, shared by the supervisor and every partition actor.
/// Sending is synchronous and never blocks, so plain threads use it.
#[derive(Debug, Clone)]
pub(crate) struct EventSender(broadcast::Sender<Event>);

impl Default for EventSender {
    fn default() -> Self {
        EventSender(broadcast::channel(EVENT_BUFFER).0)
    }
}

impl EventSender {
    /// A new subscription, receiving the events sent from now on.
    pub(crate) fn subscribe(&self) -> Events {
        Events {
            rx: self.0.subscribe(),
            missed: 0,
        }
    }

    /// Sends `event` to every subscriber (none is fine) and traces it.
    pub(crate) fn emit(&self, event: Event) {
        match &event {
            Event::CompactionStarted {
                partition,
                files,
                bytes,
            } => {
                tracing::info!(partition = %partition, files, bytes, "event: compaction started");
            }
            Event::CompactionCompleted { partition, report } => tracing::info!(
                partition = %partition,
                files = report.files_compacted,
                space_saved = report.space_saved,
                took_ms = report.duration.as_millis() as u64,
                "event: compaction completed"
            ),
            Event::CompactionFailed { partition, error, .. } => {
                tracing::warn!(partition = %partition, error = %error, "event: compaction failed");
            }
            Event::PartitionEvicted { partition, idle } => {
                tracing::debug!(partition = %partition, idle, "event: partition evicted");
            }
            Event::PartitionReopened { partition, took } => {
                tracing::debug!(partition = %partition, took_us = took.as_micros() as u64, "event: partition reopened");
            }
        }
        // No subscriber is not an error.
        let _ = self.0.send(event);
    }
}
