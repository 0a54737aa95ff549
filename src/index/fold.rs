//! Folding a delta into a base: the O(n) merge, and the background thread
//! that runs it so that no writer waits for it.
//!
//! The merge reads only immutable data (an `Arc` of the old base and a
//! frozen clone of the delta), so it needs no lock; its result travels back
//! over a channel and is installed by the next write of the index that
//! started it ([`Index`](super::Index) polls, never waits). Under loom the
//! merge runs inline: the models' indexes are far below the fold threshold,
//! and a stray OS thread would make them nondeterministic.

use std::sync::Arc;

use flume::{Receiver, TryRecvError};

use super::base::{Base, BaseBuilder};
use super::layers::Delta;

/// A merge under way.
#[derive(Debug)]
pub(crate) struct Fold {
    done: Receiver<Arc<Base>>,
    /// Held until the merge is installed, in case the thread dies.
    inputs: (Arc<Base>, Delta),
}

impl Fold {
    /// Starts merging `frozen` into `base` on a thread of its own (inline
    /// if no thread can be started).
    pub(crate) fn start(base: Arc<Base>, frozen: Delta) -> Self {
        let (tx, done) = flume::bounded(1);
        let job = (Arc::clone(&base), frozen.clone());
        let spawned = if cfg!(caskade_loom) {
            None
        } else {
            std::thread::Builder::new()
                .name("caskade:fold".into())
                .spawn(move || {
                    let _span =
                        tracing::debug_span!("index_fold", entries = job.0.len(), delta = job.1.len())
                            .entered();
                    let merged = Arc::new(merge(&job.0, &job.1));
                    // The index may be gone (a compaction replaced it).
                    drop(tx.send(merged));
                })
                .ok()
        };
        if spawned.is_none() {
            let (tx, done) = flume::bounded(1);
            drop(tx.send(Arc::new(merge(&base, &frozen))));
            return Fold {
                done,
                inputs: (base, frozen),
            };
        }
        Fold {
            done,
            inputs: (base, frozen),
        }
    }

    /// The merged base, if the merge finished.
    pub(crate) fn try_take(&self) -> Option<Arc<Base>> {
        match self.done.try_recv() {
            Ok(base) => Some(base),
            Err(TryRecvError::Empty) => None,
            // The thread died (it cannot panic short of an allocation
            // failure): merge here rather than lose the frozen delta.
            Err(TryRecvError::Disconnected) => Some(Arc::new(merge(&self.inputs.0, &self.inputs.1))),
        }
    }

    /// Waits for the merged base.
    #[cfg(test)]
    pub(crate) fn wait(self) -> Arc<Base> {
        match self.done.recv() {
            Ok(base) => base,
            Err(flume::RecvError::Disconnected) => Arc::new(merge(&self.inputs.0, &self.inputs.1)),
        }
    }
}

/// A new base holding `base`'s entries that `delta` does not override and
/// `delta`'s live entries. O(base + delta).
pub(crate) fn merge(base: &Base, delta: &Delta) -> Base {
    let mut shadowed = vec![0u64; base.len().div_ceil(64)];
    let mut dropped = 0;
    let mut live = 0;
    let mut key_bytes = base.key_bytes();
    for (key, loc) in delta.iter() {
        if let Some(e) = base.find(key.as_bytes()) {
            shadowed[e / 64] |= 1 << (e % 64);
            dropped += 1;
            key_bytes -= key.as_bytes().len();
        }
        if loc.len != 0 {
            live += 1;
            key_bytes += key.as_bytes().len();
        }
    }
    let mut builder = BaseBuilder::new(base.hasher().clone(), base.len() - dropped + live, key_bytes);
    for e in 0..base.len() {
        if shadowed[e / 64] & (1 << (e % 64)) == 0 {
            builder.push(base.key(e), base.loc(e));
        }
    }
    for (key, loc) in delta.iter() {
        if loc.len != 0 {
            builder.push(key.as_bytes(), *loc);
        }
    }
    builder.finish()
}
