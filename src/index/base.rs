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
//! - `keys`: every entry's key in one arena ([`KeyArena`]: no offsets when
//!   every key has one length, the common case);
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

use super::keys::KeyArena;
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
    keys: KeyArena,
    covered: Box<[AtomicU64]>,
}

impl std::fmt::Debug for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Base")
            .field("entries", &self.locs.len())
            .field("slots", &self.slots.len())
            .field("key_bytes", &self.keys.total_bytes())
            .finish()
    }
}

impl Base {
    /// A base of prepared arrays: `slots` must name every entry of `locs`
    /// (one per key of `keys`, all distinct) at a load factor of at most
    /// 3/4, hashed with `hasher`.
    pub(crate) fn from_parts(hasher: Hasher, slots: Slab<u64>, locs: Slab<Location>, keys: KeyArena) -> Self {
        debug_assert!(slots.len() >= table_len(locs.len()));
        let covered = (0..locs.len().div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        Base {
            hasher,
            slots,
            locs,
            keys: keys.seal(),
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
        self.keys.get(i)
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
        self.keys.total_bytes()
    }
}

/// Collects entries with distinct keys, then builds a [`Base`] in one pass.
#[derive(Debug)]
pub(crate) struct BaseBuilder {
    hasher: Hasher,
    locs: Slab<Location>,
    keys: KeyArena,
}

impl BaseBuilder {
    /// A builder expecting about `entries` entries and `key_bytes` bytes of keys.
    pub(crate) fn new(hasher: Hasher, entries: usize, key_bytes: usize) -> Self {
        let entries = entries.min(MAX_ENTRIES);
        BaseBuilder {
            hasher,
            locs: Slab::with_capacity(entries),
            keys: KeyArena::with_capacity(entries, key_bytes),
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
        self.keys.push(key);
        self.locs.push(loc);
    }

    /// Builds the table.
    pub(crate) fn finish(self) -> Base {
        let n = self.locs.len();
        let size = table_len(n);
        let mut table = Slab::<u64>::zeroed(size);
        let slots = table.as_mut_slice();
        for i in 0..n {
            let hash = self.hasher.hash_one(self.keys.get(i));
            let mut at = home(hash, size);
            while slots[at] != 0 {
                at += 1;
                if at == size {
                    at = 0;
                }
            }
            slots[at] = slot_of(hash, i);
        }
        Base::from_parts(self.hasher, table, self.locs, self.keys)
    }
}
