//! The registry of open partitions: name → slot, where a slot is opened at
//! most once even when many tasks ask for it at the same moment.
//!
//! The map's lock is held only to find or insert a slot, never across I/O:
//! opening (recovery) runs inside the slot's `OnceCell`, so other partitions'
//! lookups never wait on it. The supervisor (eviction, drop) will extend the
//! slot with its lifecycle state.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

use crate::error::{Error, Result};
use crate::partition::Partition;

/// One partition's place in the registry.
#[derive(Debug, Default)]
struct Slot {
    open: OnceCell<Partition>,
}

/// Name → slot.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl Registry {
    /// The open partition `name`, opening it with `open` if needed. Concurrent
    /// callers share one opening; a failed opening leaves the slot empty so a
    /// later call can try again.
    pub(crate) async fn get_or_open<F, Fut>(&self, name: &str, open: F) -> Result<Partition>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Partition>>,
    {
        let slot = {
            // The lock guards only the map; a panic elsewhere cannot leave it
            // half-updated, so a poisoned lock is still usable.
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(slots.entry(name.to_owned()).or_default())
        };
        slot.open.get_or_try_init(open).await.cloned()
    }

    /// Empties the registry and returns every partition that was open,
    /// waiting for openings in progress to finish first.
    pub(crate) async fn drain(&self) -> Vec<Partition> {
        let slots: Vec<Arc<Slot>> = {
            let mut map = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            map.drain().map(|(_, s)| s).collect()
        };
        let mut open = Vec::with_capacity(slots.len());
        for slot in slots {
            // Waits for an opening in progress; an empty slot stays empty.
            if let Ok(p) = slot
                .open
                .get_or_try_init(|| async { Err::<Partition, _>(Error::Closed) })
                .await
            {
                open.push(p.clone());
            }
        }
        open
    }
}
