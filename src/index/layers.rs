//! [`Index`]: the layers (delta, frozen delta, base) behind one map interface.

use std::sync::Arc;

use super::base::{self, Base, BaseBuilder};
use super::fold::Fold;
#[cfg(test)]
use super::fold::merge;
use super::{Hasher, Key, Location};

/// A persistent layer.
pub(crate) type Delta = im::GenericHashMap<Key, Location, Hasher, im::shared_ptr::DefaultSharedPtr>;

/// A delta location marking a key of a lower layer as deleted.
pub(crate) const SHADOW: Location = Location {
    file_id: 0,
    len: 0,
    offset: 0,
};

/// The delta is frozen for a fold once it holds more than this many
/// entries and more than an eighth of the base.
pub(super) const FOLD_MIN: usize = 4096;

/// The index of one partition version. Cloning is O(1) (a clone does not
/// take part in the fold its original may be running).
pub(crate) struct Index {
    pub(super) base: Arc<Base>,
    /// The delta being merged into the base in the background, if any.
    pub(super) frozen: Option<Delta>,
    pub(super) delta: Delta,
    pub(super) len: usize,
    pub(super) fold_min: usize,
    /// The merge of `base` and `frozen` under way.
    pub(super) fold: Option<Box<Fold>>,
}

impl Clone for Index {
    fn clone(&self) -> Self {
        Index {
            base: Arc::clone(&self.base),
            frozen: self.frozen.clone(),
            delta: self.delta.clone(),
            len: self.len,
            fold_min: self.fold_min,
            fold: None,
        }
    }
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("len", &self.len)
            .field("base", &self.base)
            .field("frozen", &self.frozen.as_ref().map(Delta::len))
            .field("delta", &self.delta.len())
            .finish()
    }
}

impl Default for Index {
    fn default() -> Self {
        Index::with_hasher(Hasher::default())
    }
}

impl Index {
    /// An empty index hashing with `hasher`.
    pub(crate) fn with_hasher(hasher: Hasher) -> Self {
        Index::from_base(Base::empty(hasher))
    }

    /// An index holding exactly `base`.
    pub(crate) fn from_base(base: Base) -> Self {
        Index {
            delta: Delta::with_hasher(base.hasher().clone()),
            frozen: None,
            len: base.len(),
            base: Arc::new(base),
            fold_min: FOLD_MIN,
            fold: None,
        }
    }

    /// An index of `entries`, whose keys must be distinct, built in one pass.
    pub(crate) fn from_entries<K: AsRef<[u8]>>(
        hasher: Hasher,
        entries: impl ExactSizeIterator<Item = (K, Location)>,
        key_bytes: usize,
    ) -> Self {
        let mut builder = BaseBuilder::new(hasher, entries.len(), key_bytes);
        let mut rest = Vec::new();
        for (key, loc) in entries {
            debug_assert!(loc.len != 0, "a live location has a length");
            if builder.is_full() {
                // More keys than one base holds: the rest go to the delta.
                rest.push((Key::new(key.as_ref()), loc));
            } else {
                builder.push(key.as_ref(), loc);
            }
        }
        let mut index = Index::from_base(builder.finish());
        index.fold_min = usize::MAX;
        for (key, loc) in rest {
            index.insert(key, loc);
        }
        index.fold_min = FOLD_MIN;
        index
    }

    /// The hasher, for building an index of the same kind.
    pub(crate) fn hasher(&self) -> &Hasher {
        self.base.hasher()
    }

    /// Number of live keys.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is live.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The location of `key`'s live record.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Location> {
        let found = self.base.find(key);
        if let Some(e) = found
            && !self.base.is_covered(e)
        {
            // No layer above holds the key (see `Base`'s `covered` bits).
            return Some(self.base.loc(e));
        }
        if !self.delta.is_empty()
            && let Some(loc) = self.delta.get(key)
        {
            return live(*loc);
        }
        self.below_delta(key, found)
    }

    /// `key`'s location in the layers under the delta, `found` being its
    /// entry in the base.
    fn below_delta(&self, key: &[u8], found: Option<usize>) -> Option<Location> {
        if let Some(frozen) = &self.frozen
            && let Some(loc) = frozen.get(key)
        {
            return live(*loc);
        }
        found.map(|e| self.base.loc(e))
    }

    /// `key`'s entry in the base, marked as covered by the delta (the
    /// caller is about to put the key there).
    fn cover(&self, key: &[u8]) -> Option<usize> {
        let found = self.base.find(key);
        if let Some(e) = found {
            self.base.cover(e);
        }
        found
    }

    /// Whether `key` is live.
    pub(crate) fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Points `key` at `loc`; returns the location it replaced.
    pub(crate) fn insert(&mut self, key: Key, loc: Location) -> Option<Location> {
        debug_assert!(loc.len != 0, "a live location has a length");
        self.poll_fold();
        let found = self.cover(key.as_bytes());
        let old = match self.delta.get(key.as_bytes()) {
            Some(prev) => live(*prev),
            None => self.below_delta(key.as_bytes(), found),
        };
        self.delta.insert(key, loc);
        if old.is_none() {
            self.len += 1;
        }
        self.maybe_fold();
        old
    }

    /// Removes `key`; returns the location it had.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Location> {
        self.poll_fold();
        let found = self.cover(key);
        let below = self.below_delta(key, found);
        let old = match self.delta.get(key) {
            Some(loc) => live(*loc)?,
            None => below?,
        };
        if below.is_some() {
            self.delta.insert(Key::new(key), SHADOW);
        } else {
            self.delta.remove(key);
        }
        self.len -= 1;
        self.maybe_fold();
        Some(old)
    }

    /// Every live entry, in no particular order.
    pub(crate) fn iter(&self) -> Iter<'_> {
        Iter {
            index: self,
            next_base: 0,
            frozen: self.frozen.as_ref().map(|f| f.iter()),
            delta: self.delta.iter(),
            left: self.len,
        }
    }

    /// Entries in the delta (shadows included).
    #[cfg(test)]
    pub(crate) fn delta_len(&self) -> usize {
        self.delta.len()
    }

    /// Whether a fold is under way.
    pub(crate) fn folding(&self) -> bool {
        self.frozen.is_some()
    }

    /// Installs a finished fold without a write; whether it did.
    pub(crate) fn settle(&mut self) -> bool {
        let was = self.folding();
        self.poll_fold();
        was && !self.folding()
    }

    /// Installs the merged base if the background fold finished. A clone
    /// taken mid-fold has the frozen layer but not the fold: it starts its
    /// own, so a clone that is written to can still fold.
    fn poll_fold(&mut self) {
        if let Some(merged) = self.fold.as_ref().and_then(|f| f.try_take()) {
            self.install(merged);
        } else if self.fold.is_none()
            && let Some(frozen) = &self.frozen
        {
            self.fold = Some(Box::new(Fold::start(Arc::clone(&self.base), frozen.clone())));
        }
    }

    /// Replaces base and frozen delta by their merge, covering the keys
    /// the delta took meanwhile.
    fn install(&mut self, merged: Arc<Base>) {
        debug_assert!(
            self.fold.as_ref().is_none_or(|f| f.merges(&self.base)),
            "a fold's result replaces the base it was started on"
        );
        for (key, _) in self.delta.iter() {
            if let Some(e) = merged.find(key.as_bytes()) {
                merged.cover(e);
            }
        }
        self.base = merged;
        self.frozen = None;
        self.fold = None;
    }

    /// Freezes the delta and starts its merge once it is large enough.
    fn maybe_fold(&mut self) {
        let d = self.delta.len();
        if self.frozen.is_none()
            && d > self.fold_min
            && d > self.base.len() / 8
            && self.len <= base::MAX_ENTRIES
        {
            let fresh = Delta::with_hasher(self.hasher().clone());
            let frozen = std::mem::replace(&mut self.delta, fresh);
            self.fold = Some(Box::new(Fold::start(Arc::clone(&self.base), frozen.clone())));
            self.frozen = Some(frozen);
        }
    }

    /// Merges every layer into a new base now, on this thread (waiting for
    /// a background fold under way first).
    #[cfg(test)]
    pub(crate) fn fold(&mut self) {
        if let Some(fold) = self.fold.take() {
            self.install(fold.wait());
        }
        if let Some(frozen) = self.frozen.take() {
            self.base = Arc::new(merge(&self.base, &frozen));
        }
        self.base = Arc::new(merge(&self.base, &self.delta));
        self.delta = Delta::with_hasher(self.hasher().clone());
    }
}

/// `loc`, unless it is a shadow.
fn live(loc: Location) -> Option<Location> {
    (loc.len != 0).then_some(loc)
}

/// Iterator over an [`Index`]'s live entries: each layer's entries that no
/// layer above overrides, the base's first.
pub(crate) struct Iter<'a> {
    index: &'a Index,
    next_base: usize,
    frozen: Option<im::hashmap::Iter<'a, Key, Location, im::shared_ptr::DefaultSharedPtr>>,
    delta: im::hashmap::Iter<'a, Key, Location, im::shared_ptr::DefaultSharedPtr>,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], Location);

    fn next(&mut self) -> Option<Self::Item> {
        let index = self.index;
        let overridden_by_delta = |key: &[u8]| !index.delta.is_empty() && index.delta.contains_key(key);
        let base = &index.base;
        while self.next_base < base.len() {
            let e = self.next_base;
            self.next_base += 1;
            let key = base.key(e);
            let covered = base.is_covered(e)
                && (index.frozen.as_ref().is_some_and(|f| f.contains_key(key)) || overridden_by_delta(key));
            if !covered {
                self.left -= 1;
                return Some((key, base.loc(e)));
            }
        }
        if let Some(frozen) = &mut self.frozen {
            for (key, loc) in frozen.by_ref() {
                if loc.len != 0 && !overridden_by_delta(key.as_bytes()) {
                    self.left -= 1;
                    return Some((key.as_bytes(), *loc));
                }
            }
        }
        for (key, loc) in self.delta.by_ref() {
            if loc.len != 0 {
                self.left -= 1;
                return Some((key.as_bytes(), *loc));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}
