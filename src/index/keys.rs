//! [`KeyArena`]: the keys of a base (or of a bulk load) in one arena.
//!
//! Key `i` is `bytes[starts[i]..starts[i + 1]]`, or, while every key has
//! the same length `w` (the common case), `bytes[i * w..(i + 1) * w]`: no
//! offset to read, which saves a cache miss per probe, and [`seal`]
//! drops the offsets.
//!
//! [`seal`]: KeyArena::seal

use super::slab::Slab;

/// Whether the keys pushed so far share one length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Width {
    /// No key yet.
    None,
    /// Every key has this many bytes.
    Uniform(usize),
    /// Two lengths differ.
    Mixed,
}

/// Keys appended one after another.
#[derive(Debug)]
pub(crate) struct KeyArena {
    bytes: Slab<u8>,
    /// One more than keys (a leading 0); empty once sealed with one width.
    starts: Slab<u64>,
    width: Width,
}

impl KeyArena {
    /// An arena with room for `keys` keys of `bytes` bytes in all.
    pub(crate) fn with_capacity(keys: usize, bytes: usize) -> Self {
        let mut starts = Slab::with_capacity(keys.saturating_add(1));
        starts.push(0);
        KeyArena {
            bytes: Slab::with_capacity(bytes),
            starts,
            width: Width::None,
        }
    }

    /// Makes room for `keys` more keys of `bytes` more bytes.
    pub(crate) fn reserve(&mut self, keys: usize, bytes: usize) {
        self.bytes.reserve(bytes);
        self.starts.reserve(keys);
    }

    /// Appends `key` (never after [`KeyArena::seal`]).
    pub(crate) fn push(&mut self, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.starts.push(self.bytes.len() as u64);
        self.width = match self.width {
            Width::None => Width::Uniform(key.len()),
            Width::Uniform(w) if w == key.len() => Width::Uniform(w),
            _ => Width::Mixed,
        };
    }

    /// Key `i`.
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        let bytes = self.bytes.as_slice();
        match self.width {
            Width::Uniform(w) if w > 0 => &bytes[i * w..(i + 1) * w],
            _ => {
                let starts = self.starts.as_slice();
                &bytes[starts[i] as usize..starts[i + 1] as usize]
            }
        }
    }

    /// Bytes of all keys.
    pub(crate) fn total_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Drops the offsets if every key has one (non-zero) length: the arena
    /// takes no more keys.
    pub(crate) fn seal(mut self) -> Self {
        if matches!(self.width, Width::Uniform(w) if w > 0) {
            self.starts = Slab::with_capacity(0);
        }
        self
    }
}
