//! Folding a delta into a base: the O(n) merge, and the background thread
//! that runs it so that no writer waits for it.
//!
//! The merge reads only immutable data (an `Arc` of the old base and a
//! frozen clone of the delta), so it needs no lock; its result is left in
//! a one-shot slot (`OnceLock`) and installed by the next write of the
//! index that started it ([`Index`](super::Index) polls, never waits).
//! The slot and the thread are plain `std`: loom does not model them (the
//! hand-off is a single write-once publication). Under loom the merge runs
//! inline: the models' indexes are far below the fold threshold, and a
//! stray OS thread would make them nondeterministic.

use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use super::base::{Base, BaseBuilder};
use super::layers::Delta;

/// A merge under way.
#[derive(Debug)]
pub(crate) struct Fold {
    done: Arc<OnceLock<Arc<Base>>>,
    /// The merging thread (`None`: the merge ran inline).
    thread: Option<JoinHandle<()>>,
    /// Held until the merge is installed, in case the thread dies.
    inputs: (Arc<Base>, Delta),
}

impl Fold {
    /// Starts merging `frozen` into `base` on a thread of its own (inline
    /// if no thread can be started).
    pub(crate) fn start(base: Arc<Base>, frozen: Delta) -> Self {
        let done = Arc::new(OnceLock::new());
        let thread = if cfg!(caskade_loom) {
            None
        } else {
            let (slot, job) = (Arc::clone(&done), (Arc::clone(&base), frozen.clone()));
            std::thread::Builder::new()
                .name("caskade:fold".into())
                .spawn(move || {
                    let _span =
                        tracing::debug_span!("index_fold", entries = job.0.len(), delta = job.1.len())
                            .entered();
                    // The index may be gone meanwhile (a compaction replaced it).
                    let _ = slot.set(Arc::new(merge(&job.0, &job.1)));
                })
                .ok()
        };
        if thread.is_none() {
            let _ = done.set(Arc::new(merge(&base, &frozen)));
        }
        Fold {
            done,
            thread,
            inputs: (base, frozen),
        }
    }

    /// The merged base, if the merge finished.
    pub(crate) fn try_take(&self) -> Option<Arc<Base>> {
        let finished = self.thread.as_ref().is_none_or(JoinHandle::is_finished);
        // Read after `is_finished`: a thread that ended without a result
        // (it cannot panic short of an allocation failure) leaves the merge
        // to this thread rather than lose the frozen delta.
        match self.done.get() {
            Some(merged) => Some(Arc::clone(merged)),
            None => finished.then(|| self.merge_inline()),
        }
    }

    /// Waits for the merged base.
    #[cfg(test)]
    pub(crate) fn wait(mut self) -> Arc<Base> {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        match self.done.get() {
            Some(merged) => Arc::clone(merged),
            None => self.merge_inline(),
        }
    }

    /// Whether this fold merges into `base`.
    pub(crate) fn merges(&self, base: &Arc<Base>) -> bool {
        Arc::ptr_eq(&self.inputs.0, base)
    }

    fn merge_inline(&self) -> Arc<Base> {
        Arc::new(merge(&self.inputs.0, &self.inputs.1))
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
