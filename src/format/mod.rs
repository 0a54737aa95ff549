//! The on-disk format: byte layouts of data files, records, hint files and
//! manifests (documented in ARCHITECTURE.md). All integers are fixed-width
//! little-endian, except the varints of hint entries; every structure carries
//! a CRC32 (`crc32fast`).
//!
//! Decoders validate lengths against limits and the bytes available before
//! allocating anything, and return [`FormatError`], a small crate-private
//! error that callers map to [`Error::Corrupt`](crate::Error::Corrupt) with the
//! file and offset.

pub(crate) mod catalog;
pub(crate) mod data_file;
pub(crate) mod hint;
pub(crate) mod manifest;
pub(crate) mod record;

/// The format version written into every file header (hint files have their
/// own, [`hint::HINT_VERSION`]).
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Why bytes failed to decode. Mapped to `Error::Corrupt` at the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FormatError(pub(crate) &'static str);

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Little-endian field readers over a slice whose length the caller checked.
pub(crate) fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

/// See [`u32_at`].
pub(crate) fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

/// CRC32 of `parts` concatenated.
pub(crate) fn crc_of(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}
