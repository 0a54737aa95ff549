//! [`Base`]: the compact, immutable bulk of a partition's index.
//!
//! A flat open-addressing table built once, in O(n), from entries with
//! distinct keys: by recovery from the hints, by a compaction from its
//! repointed entries, and by [`Index`](super::Index) when it folds its
//! persistent delta in. It is never modified after it is built, so published
//! versions share it through an `Arc` without any copying.
//!
//! Layout (about 50 bytes per entry for 16-byte keys, against ~240 in the
//! persistent map):
//! - `locs[i]`: entry `i`'s [`Location`] (16 B);
//! - `keys[starts[i]..starts[i + 1]]`: entry `i`'s key, all keys in one
//!   arena — or, when every key has the same length `w` (the common case),
//!   `keys[i * w..(i + 1) * w]`, and `starts` is dropped;
//! - `covered`: one bit per entry, set (never cleared) when a write puts
//!   the entry's key into a layer above the base. A lookup that finds its
//!   key in the base with the bit clear is done: no layer above holds the
//!   key. The writer sets the bit before it publishes the version whose
//!   delta holds the key, and readers load versions through the snapshot
//!   cell's lock, so a reader of that version sees the bit; a reader of an
//!   older version may see it too and merely looks further.
//! - `slots`: linear probing at a load factor of at most 3/4; a slot holds
//!   `tag << 40 | (i + 1)` (0 = empty), `tag` being the low 24 bits of the
//!   key's hash, so a probe compares keys only when the tags match.
//!
//! The home slot is the hash's high bits scaled to the table's length
//! (`(hash * len) >> 64`), so the table needs no power-of-two size.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::slab::Slab;
use super::{Hasher, Location};

/// Bits of a slot that hold an entry number plus one.
const ENTRY_BITS: u32 = 40;

/// Most entries one base holds: entry numbers run to `MAX_ENTRIES - 1`, so
/// an entry number plus one fits in [`ENTRY_BITS`] with room to spare.
pub(crate) const MAX_ENTRIES: usize = (1 << ENTRY_BITS) - 2;

/// The slot of entry `i` whose key hashes to `hash`.
pub(crate) fn slot_of(hash: u64, i: usize) -> u64 {
    (hash << ENTRY_BITS) | (i as u64 + 1)
}

/// The entry a (non-empty) slot names.
pub(crate) fn slot_entry(slot: u64) -> usize {
    ((slot & ((1 << ENTRY_BITS) - 1)) - 1) as usize
}

/// Whether `slot` may name a key hashing to `hash` (the tags match).
pub(crate) fn slot_matches(slot: u64, hash: u64) -> bool {
    (slot ^ (hash << ENTRY_BITS)) >> ENTRY_BITS == 0
}

/// A table of slots for `n` entries (load factor at most 3/4).
pub(crate) fn table_len(n: usize) -> usize {
    if n == 0 { 0 } else { n + n.div_ceil(3) + 1 }
}

/// The home slot of `hash` in a table of `n` slots.
pub(crate) fn home(hash: u64, n: usize) -> usize {
    ((u128::from(hash) * n as u128) >> 64) as usize
}

/// An immutable hash table from key to [`Location`].
pub(crate) struct Base {
    hasher: Hasher,
    slots: Slab<u64>,
    locs: Slab<Location>,
    /// Empty when every key is `width` bytes long.
    starts: Slab<u64>,
    width: usize,
    keys: Slab<u8>,
    covered: Box<[AtomicU64]>,
}

impl std::fmt::Debug for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Base")
            .field("entries", &self.locs.len())
            .field("slots", &self.slots.len())
            .field("key_bytes", &self.keys.len())
            .finish()
    }
}

impl Base {
    /// A base of prepared arrays: `slots` must name every entry of `locs`
    /// (whose keys are distinct) at a load factor of at most 3/4, hashed
    /// with `hasher`; `starts` has one more element than `locs`.
    pub(crate) fn from_parts(
        hasher: Hasher,
        slots: Slab<u64>,
        locs: Slab<Location>,
        starts: Slab<u64>,
        keys: Slab<u8>,
    ) -> Self {
        debug_assert_eq!(starts.len(), locs.len() + 1);
        debug_assert!(slots.len() >= table_len(locs.len()));
        let width = match starts.get(1) {
            Some(&w) if w > 0 && starts.windows(2).all(|p| p[1] - p[0] == w) => w as usize,
            _ => 0,
        };
        let starts = if width > 0 { Slab::with_capacity(0) } else { starts };
        let covered = (0..locs.len().div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        Base {
            hasher,
            slots,
            locs,
            starts,
            width,
            keys,
            covered,
        }
    }

    /// An empty base.
    pub(crate) fn empty(hasher: Hasher) -> Self {
        BaseBuilder::new(hasher, 0, 0).finish()
    }

    /// The hasher of the table.
    pub(crate) fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.locs.len()
    }

    /// The number of the entry holding `key`, if any.
    pub(crate) fn find(&self, key: &[u8]) -> Option<usize> {
        let slots = self.slots.as_slice();
        let n = slots.len();
        if n == 0 {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        let mut at = home(hash, n);
        loop {
            let slot = slots[at];
            if slot == 0 {
                return None;
            }
            if slot_matches(slot, hash) {
                let entry = slot_entry(slot);
                if self.key(entry) == key {
                    return Some(entry);
                }
            }
            at += 1;
            if at == n {
                at = 0;
            }
        }
    }

    /// Entry `i`'s key.
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        let keys = self.keys.as_slice();
        if self.width > 0 {
            return &keys[i * self.width..(i + 1) * self.width];
        }
        let starts = self.starts.as_slice();
        &keys[starts[i] as usize..starts[i + 1] as usize]
    }

    /// Marks entry `i`'s key as present in a layer above the base.
    pub(crate) fn cover(&self, i: usize) {
        self.covered[i / 64].fetch_or(1 << (i % 64), Relaxed);
    }

    /// Whether a layer above the base may hold entry `i`'s key.
    pub(crate) fn is_covered(&self, i: usize) -> bool {
        self.covered[i / 64].load(Relaxed) & (1 << (i % 64)) != 0
    }

    /// Entry `i`'s location.
    pub(crate) fn loc(&self, i: usize) -> Location {
        self.locs.as_slice()[i]
    }

    /// Bytes of all keys.
    pub(crate) fn key_bytes(&self) -> usize {
        self.keys.len()
    }
}

/// Collects entries with distinct keys, then builds a [`Base`] in one pass.
#[derive(Debug)]
pub(crate) struct BaseBuilder {
    hasher: Hasher,
    locs: Slab<Location>,
    starts: Slab<u64>,
    keys: Slab<u8>,
}

impl BaseBuilder {
    /// A builder expecting about `entries` entries and `key_bytes` bytes of keys.
    pub(crate) fn new(hasher: Hasher, entries: usize, key_bytes: usize) -> Self {
        let entries = entries.min(MAX_ENTRIES);
        let mut starts = Slab::with_capacity(entries + 1);
        starts.push(0);
        BaseBuilder {
            hasher,
            locs: Slab::with_capacity(entries),
            starts,
            keys: Slab::with_capacity(key_bytes),
        }
    }

    /// Whether the builder holds [`MAX_ENTRIES`] entries.
    pub(crate) fn is_full(&self) -> bool {
        self.locs.len() >= MAX_ENTRIES
    }

    /// Adds an entry. The caller guarantees that no other entry has `key`
    /// and that the builder is not full.
    pub(crate) fn push(&mut self, key: &[u8], loc: Location) {
        debug_assert!(!self.is_full());
        self.keys.extend_from_slice(key);
        self.starts.push(self.keys.len() as u64);
        self.locs.push(loc);
    }

    /// Builds the table.
    pub(crate) fn finish(self) -> Base {
        let n = self.locs.len();
        let size = table_len(n);
        let mut table = Slab::<u64>::zeroed(size);
        let slots = table.as_mut_slice();
        let (keys, starts) = (self.keys.as_slice(), self.starts.as_slice());
        for i in 0..n {
            let key = &keys[starts[i] as usize..starts[i + 1] as usize];
            let hash = self.hasher.hash_one(key);
            let mut at = home(hash, size);
            while slots[at] != 0 {
                at += 1;
                if at == size {
                    at = 0;
                }
            }
            slots[at] = slot_of(hash, i);
        }
        Base::from_parts(self.hasher, table, self.locs, self.starts, self.keys)
    }
}
