//! The registry of open partitions: name → slot, where a slot is opened at
//! most once even when many tasks ask for it at the same moment.
//!
//! The map's lock is held only to find or insert a slot, never across I/O:
//! opening (recovery) runs inside the slot's `OnceCell`, so other partitions'
//! lookups never wait on it. The supervisor (eviction, drop) will extend the
//! slot with its lifecycle state.
//!
//! Each slot also has a one-permit semaphore, the directory's *ownership*: an
//! actor holds the permit from before recovery until after it closed its
//! files. An opening acquires it first, so even if an earlier opening was
//! abandoned (its future dropped while the actor kept recovering), at most one
//! actor owns a partition directory at any moment.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};
use crate::partition::Partition;

/// One partition's place in the registry.
#[derive(Debug)]
struct Slot {
    open: OnceCell<Partition>,
    owner: Arc<Semaphore>,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            open: OnceCell::new(),
            owner: Arc::new(Semaphore::new(1)),
        }
    }
}

/// Name → slot.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    by_name: HashMap<String, Arc<Slot>>,
    /// Set by `drain`: no slot is created afterwards, so no actor can start
    /// on a directory once closing began.
    closed: bool,
}

impl Registry {
    /// The open partition `name`, opening it with `open` if needed. `open`
    /// receives the directory's ownership permit, to hand to the actor.
    /// Concurrent callers share one opening; a failed opening leaves the slot
    /// empty so a later call can try again.
    pub(crate) async fn get_or_open<F, Fut>(&self, name: &str, open: F) -> Result<Partition>
    where
        F: FnOnce(OwnedSemaphorePermit) -> Fut,
        Fut: Future<Output = Result<Partition>>,
    {
        let slot = {
            // The lock guards only the map; a panic elsewhere cannot leave it
            // half-updated, so a poisoned lock is still usable.
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            if slots.closed {
                return Err(Error::Closed);
            }
            Arc::clone(slots.by_name.entry(name.to_owned()).or_default())
        };
        let owner = Arc::clone(&slot.owner);
        slot.open
            .get_or_try_init(|| async move {
                // Waits while an earlier actor still owns the directory. The
                // semaphore is never closed, so acquiring cannot fail.
                let permit = owner.acquire_owned().await.map_err(|_| Error::Closed)?;
                // `close` may have drained the registry (and released this
                // permit after its actor stopped) while we waited: no actor
                // may start after that.
                if self.slots.lock().unwrap_or_else(PoisonError::into_inner).closed {
                    return Err(Error::Closed);
                }
                open(permit).await
            })
            .await
            .cloned()
    }

    /// Closes the registry (later openings get `Closed`) and returns every
    /// partition that was open — waiting for openings in progress to finish
    /// first — and every slot's ownership semaphore, so the caller can wait
    /// until each directory's actor has really stopped.
    pub(crate) async fn drain(&self) -> (Vec<Partition>, Vec<Arc<Semaphore>>) {
        let slots: Vec<Arc<Slot>> = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.closed = true;
            slots.by_name.drain().map(|(_, s)| s).collect()
        };
        let mut open = Vec::with_capacity(slots.len());
        let mut owners = Vec::with_capacity(slots.len());
        for slot in slots {
            // Waits for an opening in progress; an empty slot stays empty.
            if let Ok(p) = slot
                .open
                .get_or_try_init(|| async { Err::<Partition, _>(Error::Closed) })
                .await
            {
                open.push(p.clone());
            }
            owners.push(Arc::clone(&slot.owner));
        }
        (open, owners)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After `drain` (close), no new slot — and so no second owner of a
    /// directory whose actor may still be running — can be created.
    #[tokio::test]
    async fn no_opening_after_drain() {
        let reg = Registry::default();
        let mut held = Vec::new();
        let first = reg
            .get_or_open("p", |permit| {
                held.push(permit);
                async { Err(Error::Closed) }
            })
            .await;
        assert!(first.is_err());
        let (open, owners) = reg.drain().await;
        assert!(open.is_empty());
        assert_eq!(owners.len(), 1);
        assert_eq!(
            owners[0].available_permits(),
            0,
            "the first owner still holds the directory"
        );
        let mut opened_again = false;
        let second = reg
            .get_or_open("p", |_| {
                opened_again = true;
                async { Err(Error::Closed) }
            })
            .await;
        assert!(matches!(second, Err(Error::Closed)) && !opened_again);
    }
}
