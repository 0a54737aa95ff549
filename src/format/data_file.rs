//! The data-file header and data-file names.
//!
//! ```text
//! offset size field
//!  0     8    magic "CASKDATA"
//!  8     4    format version
//! 12     4    file id
//! 16     8    salt (random per file, mixed into every record CRC)
//! 24     4    reserved, zero
//! 28     4    CRC32 of bytes 0..28
//! ```

use super::{FORMAT_VERSION, FormatError, crc_of, u32_at, u64_at};

/// Length of the data-file header; the first record starts here.
pub(crate) const HEADER_LEN: usize = 32;
const MAGIC: &[u8; 8] = b"CASKDATA";

/// The identity of a data file, as written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataFileHeader {
    pub(crate) file_id: u32,
    pub(crate) salt: u64,
}

impl DataFileHeader {
    /// Encodes the header.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.file_id.to_le_bytes());
        b[16..24].copy_from_slice(&self.salt.to_le_bytes());
        let crc = crc_of(&[&b[..28]]);
        b[28..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and verifies a header; `expected_id` is the id the file's name
    /// says it has.
    pub(crate) fn decode(b: &[u8; HEADER_LEN], expected_id: u32) -> Result<Self, FormatError> {
        if &b[..8] != MAGIC {
            return Err(FormatError("not a caskade data file (bad magic)"));
        }
        if u32_at(b, 28) != crc_of(&[&b[..28]]) {
            return Err(FormatError("data file header checksum mismatch"));
        }
        if u32_at(b, 8) != FORMAT_VERSION {
            return Err(FormatError("unsupported data file format version"));
        }
        let header = DataFileHeader {
            file_id: u32_at(b, 12),
            salt: u64_at(b, 16),
        };
        if header.file_id != expected_id {
            return Err(FormatError("data file id does not match its name"));
        }
        Ok(header)
    }
}

/// `00000042.data`
pub(crate) fn data_name(id: u32) -> String {
    format!("{id:08}.data")
}

/// `00000042.hint`
pub(crate) fn hint_name(id: u32) -> String {
    format!("{id:08}.hint")
}

/// What kind of file a directory entry of a partition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileName {
    /// A data file with its id.
    Data(u32),
    /// A hint file with its data file's id.
    Hint(u32),
    /// The manifest.
    Manifest,
    /// A temporary file of an interrupted atomic replace.
    Temp,
    /// Anything else (left alone).
    Other,
}

/// Classifies a directory entry name.
pub(crate) fn classify(name: &str) -> FileName {
    if name == super::manifest::MANIFEST_NAME {
        return FileName::Manifest;
    }
    if name.ends_with(".tmp") {
        return FileName::Temp;
    }
    let parse = |stem: &str| {
        (stem.len() == 8 && stem.bytes().all(|b| b.is_ascii_digit()))
            .then(|| stem.parse().ok())
            .flatten()
    };
    if let Some(id) = name.strip_suffix(".data").and_then(parse) {
        return FileName::Data(id);
    }
    if let Some(id) = name.strip_suffix(".hint").and_then(parse) {
        return FileName::Hint(id);
    }
    FileName::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_checks() {
        let h = DataFileHeader {
            file_id: 9,
            salt: 0xdead_beef_1234,
        };
        let b = h.encode();
        assert_eq!(DataFileHeader::decode(&b, 9), Ok(h));
        assert!(DataFileHeader::decode(&b, 8).is_err());
        for i in 0..HEADER_LEN {
            let mut bad = b;
            bad[i] ^= 0x10;
            assert!(DataFileHeader::decode(&bad, 9).is_err(), "byte {i}");
        }
    }

    #[test]
    fn names_classify() {
        assert_eq!(classify(&data_name(12)), FileName::Data(12));
        assert_eq!(classify(&hint_name(12)), FileName::Hint(12));
        assert_eq!(classify("MANIFEST"), FileName::Manifest);
        assert_eq!(classify("00000012.hint.tmp"), FileName::Temp);
        assert_eq!(classify("12.data"), FileName::Other);
        assert_eq!(classify("+0000012.data"), FileName::Other);
        assert_eq!(classify("LOCK"), FileName::Other);
    }
}
