//! The in-memory index: key → location of the key's live record, in two
//! layers.
//!
//! - The **delta** is a persistent hash map (`im::HashMap`, the maintained
//!   `imbl` fork): cloning it is O(1) and shares structure, so every group
//!   commit publishes a new version without copying, and readers keep old
//!   versions alive as long as they need them. Its cost is on the write side
//!   (the first insert into a leaf a published version shares copies the
//!   path to it, ~3 µs) and in memory (~240 B per entry).
//! - The **base** ([`Base`]) is an immutable flat hash table of ~50 B per
//!   entry, shared by versions through an `Arc`. Recovery and compaction
//!   build it directly, in O(n), instead of inserting entry by entry.
//!
//! Writes go to the delta; a delete of a key the base holds leaves a
//! *shadow* (a location of length 0, which no record has) in the delta.
//! When the delta outgrows an eighth of the base, the writer folds it into a
//! new base (O(n), on the thread that inserted). A lookup asks the delta
//! first, then the base.
//!
//! Entry size is the lever on the delta's cost, hence the 24-byte [`Key`]
//! with small keys inline and the 16-byte [`Location`].

mod base;
mod load;
#[cfg(test)]
mod tests;

pub(crate) use base::{Base, BaseBuilder};
pub(crate) use load::Load;

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;

/// Keys up to this many bytes are stored inline in the index entry.
const INLINE: usize = 22;

/// An index key: inline up to 22 bytes, otherwise a shared heap slice.
#[derive(Clone)]
pub(crate) enum Key {
    /// Small key stored in place; `len <= INLINE`.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// Larger key.
    Heap(Arc<[u8]>),
}

impl Key {
    /// Copies `bytes` into a key.
    pub(crate) fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE {
            let mut inline = [0u8; INLINE];
            inline[..bytes.len()].copy_from_slice(bytes);
            Key::Inline {
                len: bytes.len() as u8,
                bytes: inline,
            }
        } else {
            Key::Heap(Arc::from(bytes))
        }
    }

    /// The key's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..*len as usize],
            Key::Heap(b) => b,
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?})", self.as_bytes())
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for Key {}

impl Hash for Key {
    // Must hash exactly like `[u8]`, so lookups by `&[u8]` (via `Borrow`) find it.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Where a key's live record is: file, byte offset, encoded length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) file_id: u32,
    pub(crate) len: u32,
    pub(crate) offset: u64,
}

/// The hasher of both layers: foldhash with a per-process random seed, so
/// keys cannot be crafted offline to collide.
pub(crate) type Hasher = foldhash::fast::RandomState;

/// The persistent layer.
type Delta = im::GenericHashMap<Key, Location, Hasher, im::shared_ptr::DefaultSharedPtr>;

/// A delta location marking a key of the base as deleted.
const SHADOW: Location = Location {
    file_id: 0,
    len: 0,
    offset: 0,
};

/// The delta folds into the base once it holds more than this many entries
/// and more than an eighth of the base.
const FOLD_MIN: usize = 4096;

/// The index of one partition version. Cloning is O(1).
#[derive(Clone)]
pub(crate) struct Index {
    base: Arc<Base>,
    delta: Delta,
    len: usize,
    fold_min: usize,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("len", &self.len)
            .field("base", &self.base)
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
        Index {
            base: Arc::new(Base::empty(hasher.clone())),
            delta: Delta::with_hasher(hasher),
            len: 0,
            fold_min: FOLD_MIN,
        }
    }

    /// An index of `entries`, whose keys must be distinct, built in one pass.
    pub(crate) fn from_entries<K: AsRef<[u8]>>(
        hasher: Hasher,
        entries: impl ExactSizeIterator<Item = (K, Location)>,
        key_bytes: usize,
    ) -> Self {
        let mut builder = BaseBuilder::new(hasher.clone(), entries.len(), key_bytes);
        let mut delta = Delta::with_hasher(hasher);
        let mut len = 0;
        for (key, loc) in entries {
            debug_assert!(loc.len != 0, "a live location has a length");
            if builder.is_full() {
                // More keys than one base holds: the rest stay in the delta.
                delta.insert(Key::new(key.as_ref()), loc);
            } else {
                builder.push(key.as_ref(), loc);
            }
            len += 1;
        }
        Index {
            base: Arc::new(builder.finish()),
            delta,
            len,
            fold_min: FOLD_MIN,
        }
    }

    /// An index holding exactly `base`.
    pub(crate) fn from_base(base: Base) -> Self {
        Index {
            delta: Delta::with_hasher(base.hasher().clone()),
            len: base.len(),
            base: Arc::new(base),
            fold_min: FOLD_MIN,
        }
    }

    /// The hasher, for building an index of the same kind.
    pub(crate) fn hasher(&self) -> &Hasher {
        self.delta.hasher()
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
        if !self.delta.is_empty()
            && let Some(loc) = self.delta.get(key)
        {
            return (loc.len != 0).then_some(*loc);
        }
        self.base.get(key)
    }

    /// Whether `key` is live.
    pub(crate) fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Points `key` at `loc`; returns the location it replaced.
    pub(crate) fn insert(&mut self, key: Key, loc: Location) -> Option<Location> {
        debug_assert!(loc.len != 0, "a live location has a length");
        let old = match self.delta.insert(key.clone(), loc) {
            Some(prev) if prev.len != 0 => Some(prev),
            Some(_shadow) => None,
            None => self.base.get(key.as_bytes()),
        };
        if old.is_none() {
            self.len += 1;
        }
        self.maybe_fold();
        old
    }

    /// Removes `key`; returns the location it had.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Location> {
        let in_base = self.base.get(key);
        let old = match self.delta.get(key) {
            Some(loc) if loc.len == 0 => return None,
            Some(loc) => *loc,
            None => in_base?,
        };
        if in_base.is_some() {
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
            delta: self.delta.iter(),
            left: self.len,
        }
    }

    /// Entries in the delta (shadows included).
    #[cfg(test)]
    pub(crate) fn delta_len(&self) -> usize {
        self.delta.len()
    }

    /// Folds the delta into a new base once it is large enough.
    fn maybe_fold(&mut self) {
        let d = self.delta.len();
        if d > self.fold_min && d > self.base.len() / 8 && self.len <= base::MAX_ENTRIES {
            self.fold();
        }
    }

    /// Builds a new base of every live entry and empties the delta. O(n);
    /// the old base lives on in the versions that hold it.
    pub(crate) fn fold(&mut self) {
        let base = &self.base;
        let mut shadowed = vec![0u64; base.len().div_ceil(64)];
        let mut key_bytes = base.key_bytes();
        for (key, _) in self.delta.iter() {
            if let Some(e) = base.find(key.as_bytes()) {
                shadowed[e / 64] |= 1 << (e % 64);
            }
            key_bytes += key.as_bytes().len();
        }
        let mut builder = BaseBuilder::new(self.hasher().clone(), self.len, key_bytes);
        for e in 0..base.len() {
            if shadowed[e / 64] & (1 << (e % 64)) == 0 {
                builder.push(base.key(e), base.loc(e));
            }
        }
        for (key, loc) in self.delta.iter() {
            if loc.len != 0 {
                builder.push(key.as_bytes(), *loc);
            }
        }
        self.base = Arc::new(builder.finish());
        self.delta = Delta::with_hasher(self.hasher().clone());
    }
}

/// Iterator over an [`Index`]'s live entries: the base's entries the delta
/// does not override, then the delta's live entries.
pub(crate) struct Iter<'a> {
    index: &'a Index,
    next_base: usize,
    delta: im::hashmap::Iter<'a, Key, Location, im::shared_ptr::DefaultSharedPtr>,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], Location);

    fn next(&mut self) -> Option<Self::Item> {
        let base = &self.index.base;
        while self.next_base < base.len() {
            let e = self.next_base;
            self.next_base += 1;
            let key = base.key(e);
            if self.index.delta.is_empty() || !self.index.delta.contains_key(key) {
                self.left -= 1;
                return Some((key, base.loc(e)));
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
