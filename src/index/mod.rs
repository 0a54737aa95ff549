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
//! Writes go to the delta; a delete of a key a lower layer holds leaves a
//! *shadow* (a location of length 0, which no record has) in the delta.
//! When the delta outgrows an eighth of the base, it is **frozen** (an O(1)
//! clone kept as a middle layer), a fresh delta takes the writes, and a
//! background thread merges base and frozen delta into a new base
//! ([`fold`]); the next write after the merge finished installs it. A lookup
//! probes the base first: a hit whose *covered* bit is clear is final (no
//! layer above holds the key); otherwise it asks the delta, then the frozen
//! delta, then takes the base's answer.
//!
//! Entry size is the lever on the delta's cost, hence the 24-byte [`Key`]
//! with small keys inline and the 16-byte [`Location`].

mod base;
mod fold;
mod keys;
mod layers;
mod load;
mod slab;
#[cfg(test)]
mod tests;

use layers::SHADOW;
pub(crate) use layers::{Index, Iter};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct Location {
    pub(crate) file_id: u32,
    pub(crate) len: u32,
    pub(crate) offset: u64,
}

/// The hasher of both layers: foldhash with a per-process random seed, so
/// keys cannot be crafted offline to collide.
pub(crate) type Hasher = foldhash::fast::RandomState;
