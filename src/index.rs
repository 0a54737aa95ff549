//! The in-memory index: a persistent hash map from key to the location of the
//! key's live record.
//!
//! `im::HashMap` (the maintained `imbl` fork) is persistent: cloning it is
//! O(1) and shares structure, so every group commit publishes a new version
//! without copying the map, and readers keep old versions alive as long as
//! they need them. The cost is on the write side: the first insert into a
//! leaf that a published version shares copies the path to it. Entry size is
//! the lever on that cost, hence the 24-byte [`Key`] with small keys inline
//! and the 16-byte [`Location`].

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
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
    fn hash<H: Hasher>(&self, state: &mut H) {
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

/// The index type: a persistent HAMT with a fast seeded hasher (foldhash:
/// per-process random seed, so keys cannot be crafted offline to collide).
pub(crate) type Index =
    im::GenericHashMap<Key, Location, foldhash::fast::RandomState, im::shared_ptr::DefaultSharedPtr>;

/// An empty index.
pub(crate) fn new_index() -> Index {
    Index::with_hasher(foldhash::fast::RandomState::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_stays_small() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        assert_eq!(std::mem::size_of::<Location>(), 16);
    }

    #[test]
    fn inline_and_heap_keys_look_up_by_slice() {
        let mut index = new_index();
        let loc = |n| Location {
            file_id: n,
            len: 1,
            offset: 0,
        };
        let long = vec![7u8; 100];
        index.insert(Key::new(b"short"), loc(1));
        index.insert(Key::new(&long), loc(2));
        index.insert(Key::new(&[0u8; 22]), loc(3));
        index.insert(Key::new(&[0u8; 21]), loc(4));
        assert_eq!(index.get(&b"short"[..]), Some(&loc(1)));
        assert_eq!(index.get(&long[..]), Some(&loc(2)));
        assert_eq!(index.get(&[0u8; 22][..]), Some(&loc(3)));
        assert_eq!(index.get(&[0u8; 21][..]), Some(&loc(4)));
        assert_eq!(index.get(&b"shor"[..]), None);
        assert!(matches!(Key::new(&[1; 22]), Key::Inline { .. }));
        assert!(matches!(Key::new(&[1; 23]), Key::Heap(_)));
    }
}
