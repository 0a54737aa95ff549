//! The per-partition manifest: which data files are live.
//!
//! ```text
//! offset size field
//!  0     8    magic "CASKMANI"
//!  8     4    format version
//! 12     4    file count n (1 ..= MAX_FILES)
//! 16     8    generation (incremented by every rewrite)
//! 24     4    next file id
//! 28     4n   file ids, distinct, oldest data first; the last is the
//!             active file (compaction outputs get new ids but hold older
//!             records, so they are listed before the files written since)
//! 28+4n  4    CRC32 of all preceding bytes
//! ```
//! Replaced atomically: `MANIFEST.tmp`, fsync, rename, fsync the directory.

use super::{FORMAT_VERSION, FormatError, crc_of, u32_at, u64_at};

/// The manifest's file name.
pub(crate) const MANIFEST_NAME: &str = "MANIFEST";
/// The temporary name used while replacing it.
pub(crate) const MANIFEST_TMP: &str = "MANIFEST.tmp";
/// Upper bound on live files per partition; bounds the decoder's allocation.
pub(crate) const MAX_FILES: usize = 1 << 20;
const MAGIC: &[u8; 8] = b"CASKMANI";
const FIXED: usize = 28;

/// The decoded manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) generation: u64,
    pub(crate) next_file_id: u32,
    /// Live data files, distinct, in the order their records were written
    /// (compaction outputs before the files written since); the last one is
    /// the active file.
    pub(crate) files: Vec<u32>,
}

impl Manifest {
    /// The active (appendable) file.
    pub(crate) fn active(&self) -> u32 {
        // `decode` and every constructor guarantee at least one file.
        *self.files.last().expect("a manifest lists at least one file")
    }

    /// Encodes the manifest.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(FIXED + 4 * self.files.len() + 4);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(&(self.files.len() as u32).to_le_bytes());
        b.extend_from_slice(&self.generation.to_le_bytes());
        b.extend_from_slice(&self.next_file_id.to_le_bytes());
        for id in &self.files {
            b.extend_from_slice(&id.to_le_bytes());
        }
        let crc = crc_of(&[&b]);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and verifies a manifest.
    pub(crate) fn decode(b: &[u8]) -> Result<Self, FormatError> {
        if b.len() < FIXED + 8 || &b[..8] != MAGIC {
            return Err(FormatError("not a caskade manifest"));
        }
        let count = u32_at(b, 12) as usize;
        if count == 0 || count > MAX_FILES || b.len() != FIXED + 4 * count + 4 {
            return Err(FormatError("manifest length does not match its file count"));
        }
        let body = &b[..b.len() - 4];
        if u32_at(b, b.len() - 4) != crc_of(&[body]) {
            return Err(FormatError("manifest checksum mismatch"));
        }
        if u32_at(b, 8) != FORMAT_VERSION {
            return Err(FormatError("unsupported manifest format version"));
        }
        let files: Vec<u32> = (0..count).map(|i| u32_at(b, FIXED + 4 * i)).collect();
        let next_file_id = u32_at(b, 24);
        let mut sorted = files.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) || sorted[count - 1] >= next_file_id {
            return Err(FormatError("manifest file ids repeated or not below the next id"));
        }
        Ok(Manifest {
            generation: u64_at(b, 16),
            next_file_id,
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_byte_checked() {
        let m = Manifest {
            generation: 3,
            next_file_id: 10,
            files: vec![1, 4, 9],
        };
        let b = m.encode();
        assert_eq!(Manifest::decode(&b), Ok(m.clone()));
        assert_eq!(m.active(), 9);
        for i in 0..b.len() {
            let mut bad = b.clone();
            bad[i] ^= 0x01;
            assert!(Manifest::decode(&bad).is_err(), "byte {i}");
        }
        assert!(Manifest::decode(&b[..b.len() - 1]).is_err());
        assert!(Manifest::decode(&[]).is_err());
    }

    #[test]
    fn compaction_order_accepted_repeats_refused() {
        // Outputs (ids 7, 8) listed before the file written since (5).
        let m = Manifest {
            generation: 4,
            next_file_id: 9,
            files: vec![7, 8, 5],
        };
        assert_eq!(Manifest::decode(&m.encode()), Ok(m.clone()));
        assert_eq!(m.active(), 5);
        let repeated = Manifest {
            files: vec![7, 5, 7],
            ..m.clone()
        };
        assert!(Manifest::decode(&repeated.encode()).is_err());
        let beyond = Manifest {
            files: vec![9, 5],
            ..m
        };
        assert!(Manifest::decode(&beyond.encode()).is_err());
    }

    #[test]
    fn huge_count_rejected_without_allocating() {
        let mut b = Manifest {
            generation: 1,
            next_file_id: 2,
            files: vec![1],
        }
        .encode();
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Manifest::decode(&b).is_err());
    }
}
