//! [`Slab`]: a fixed-capacity array of plain values for the index base.
//!
//! Large slabs live in an anonymous memory mapping of their own (`memmap2`),
//! small ones on the heap. A base is replaced by a new one at every fold,
//! and a replaced base of a million keys holds ~50 MB: in a mapping, that
//! memory goes back to the OS the moment the last version holding it drops,
//! instead of lingering in the allocator's free lists (mimalloc and glibc
//! both keep large freed blocks for a while). The mapping starts zeroed, so
//! a zeroed slab costs no writes.

use bytemuck::Pod;
use memmap2::MmapMut;

/// Slabs of at least this many bytes are mapped.
const MAP_FROM: usize = 1 << 20;

/// An array of `T`, in a mapping when large.
pub(crate) enum Slab<T: Pod> {
    /// Small, or built from a vector.
    Heap(Vec<T>),
    /// A mapping with room for `cap` values, of which `len` are set.
    Mapped { map: MmapMut, len: usize, cap: usize },
}

impl<T: Pod> Slab<T> {
    /// An empty slab with room for `cap` values (more may be pushed, at the
    /// cost of a copy).
    pub(crate) fn with_capacity(cap: usize) -> Self {
        match Self::map(cap) {
            Some(map) => Slab::Mapped { map, len: 0, cap },
            None => Slab::Heap(Vec::with_capacity(cap)),
        }
    }

    /// `len` zeroed values.
    pub(crate) fn zeroed(len: usize) -> Self {
        match Self::map(len) {
            Some(map) => Slab::Mapped { map, len, cap: len },
            None => Slab::Heap(vec![T::zeroed(); len]),
        }
    }

    /// A mapping for `cap` values, if that is large enough to map (and the
    /// mapping succeeds; otherwise the heap serves).
    fn map(cap: usize) -> Option<MmapMut> {
        let bytes = cap.checked_mul(std::mem::size_of::<T>())?;
        if bytes < MAP_FROM {
            return None;
        }
        MmapMut::map_anon(bytes).ok()
    }

    /// Makes room for `additional` more values (a mapping, if that makes
    /// the slab large).
    pub(crate) fn reserve(&mut self, additional: usize) {
        let (len, cap) = match self {
            Slab::Heap(v) => (v.len(), v.capacity()),
            Slab::Mapped { len, cap, .. } => (*len, *cap),
        };
        let need = len.saturating_add(additional);
        if need <= cap {
            return;
        }
        // At least double, so that reserving file after file copies each
        // value O(1) times. Small, or no mapping to be had: growth by
        // doubling will do (a large reservation is never made on the heap).
        let cap = need.max(cap.saturating_mul(2));
        if let Some(map) = Self::map(cap) {
            let mut grown = Slab::Mapped { map, len: 0, cap };
            grown.extend_from_slice(self.as_slice());
            *self = grown;
        }
    }

    /// Appends `value`.
    pub(crate) fn push(&mut self, value: T) {
        self.extend_from_slice(std::slice::from_ref(&value));
    }

    /// Appends every value of `values`. Growing past the capacity doubles
    /// it (moving a heap slab that grew large into a mapping).
    pub(crate) fn extend_from_slice(&mut self, values: &[T]) {
        self.reserve(values.len());
        match self {
            Slab::Heap(v) => v.extend_from_slice(values),
            Slab::Mapped { map, len, cap } if *len + values.len() <= *cap => {
                let size = std::mem::size_of::<T>();
                map[*len * size..(*len + values.len()) * size].copy_from_slice(bytemuck::cast_slice(values));
                *len += values.len();
            }
            Slab::Mapped { len, cap, .. } => {
                // No new mapping could be made: continue on the heap.
                let mut v = Vec::with_capacity((*len + values.len()).max(cap.saturating_mul(2)));
                v.extend_from_slice(self.as_slice());
                v.extend_from_slice(values);
                *self = Slab::Heap(v);
            }
        }
    }

    /// The values.
    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            Slab::Heap(v) => v,
            Slab::Mapped { map, len, .. } => bytemuck::cast_slice(&map[..*len * std::mem::size_of::<T>()]),
        }
    }

    /// The values, to change in place.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            Slab::Heap(v) => v,
            Slab::Mapped { map, len, .. } => {
                bytemuck::cast_slice_mut(&mut map[..*len * std::mem::size_of::<T>()])
            }
        }
    }

    /// Number of values.
    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }
}

impl<T: Pod> std::fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Slab::Heap(_) => "heap",
            Slab::Mapped { .. } => "mapped",
        };
        write!(f, "Slab({kind}, {})", self.len())
    }
}

impl<T: Pod> std::ops::Deref for Slab<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}
