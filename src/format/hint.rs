//! Hint files: a compact list of a sealed data file's records, so opening a
//! partition need not read every value.
//!
//! ```text
//! header (40 bytes)
//!  0  8  magic "CASKHINT"
//!  8  4  format version
//! 12  4  data file id
//! 16  8  data file length covered
//! 24  8  data file salt
//! 32  4  reserved, zero
//! 36  4  CRC32 of bytes 0..36
//! entries, one per committed record of the data file, in file order
//!     8 seq, 1 flags, 4 key_len, 8 offset, 4 record_len, key
//! trailer (12 bytes)
//!     8 entry count, 4 CRC32 of every preceding byte of the file
//! ```
//! Any mismatch (checksum, data-file id / length / salt, an entry pointing
//! outside the data file) makes the loader ignore the hint and scan the data
//! file instead: a bad hint never stops an open and never yields wrong data
//! (reads verify each record's own checksum and key).

use super::{FORMAT_VERSION, FormatError, crc_of, data_file, u32_at, u64_at};

const MAGIC: &[u8; 8] = b"CASKHINT";
const HEADER_LEN: usize = 40;
const ENTRY_FIXED: usize = 25;
const TRAILER_LEN: usize = 12;

/// One record of the data file, as listed in its hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HintEntry<'a> {
    pub(crate) seq: u64,
    pub(crate) flags: u8,
    pub(crate) offset: u64,
    pub(crate) record_len: u32,
    pub(crate) key: &'a [u8],
}

/// Builds a hint file's bytes.
#[derive(Debug)]
pub(crate) struct HintWriter {
    buf: Vec<u8>,
    count: u64,
}

impl HintWriter {
    /// Starts a hint for data file `file_id` of length `data_len` and salt `salt`.
    pub(crate) fn new(file_id: u32, data_len: u64, salt: u64) -> Self {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf.extend_from_slice(&file_id.to_le_bytes());
        buf.extend_from_slice(&data_len.to_le_bytes());
        buf.extend_from_slice(&salt.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        let crc = crc_of(&[&buf]);
        buf.extend_from_slice(&crc.to_le_bytes());
        HintWriter { buf, count: 0 }
    }

    /// Adds one entry.
    pub(crate) fn push(&mut self, e: &HintEntry<'_>) {
        self.buf.extend_from_slice(&e.seq.to_le_bytes());
        self.buf.push(e.flags);
        self.buf.extend_from_slice(&(e.key.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&e.offset.to_le_bytes());
        self.buf.extend_from_slice(&e.record_len.to_le_bytes());
        self.buf.extend_from_slice(e.key);
        self.count += 1;
    }

    /// Sets the data file length the hint covers (for a hint built while
    /// its data file was still being written).
    #[must_use]
    pub(crate) fn with_data_len(mut self, data_len: u64) -> Self {
        self.buf[16..24].copy_from_slice(&data_len.to_le_bytes());
        let crc = crc_of(&[&self.buf[..36]]);
        self.buf[36..40].copy_from_slice(&crc.to_le_bytes());
        self
    }

    /// Appends the trailer and returns the file's bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&self.count.to_le_bytes());
        let crc = crc_of(&[&self.buf]);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

/// Verifies a whole hint file against the data file it should describe and
/// calls `each` for every entry in order. Verification of the checksum and
/// header happens before the first call, so `each` never sees entries of a
/// damaged hint.
pub(crate) fn read(
    b: &[u8],
    file_id: u32,
    data_len: u64,
    salt: u64,
    max_key: usize,
    mut each: impl FnMut(HintEntry<'_>),
) -> Result<u64, FormatError> {
    if b.len() < HEADER_LEN + TRAILER_LEN || &b[..8] != MAGIC {
        return Err(FormatError("not a caskade hint file"));
    }
    let body = &b[..b.len() - 4];
    if u32_at(b, b.len() - 4) != crc_of(&[body]) || u32_at(b, 36) != crc_of(&[&b[..36]]) {
        return Err(FormatError("hint checksum mismatch"));
    }
    if u32_at(b, 8) != FORMAT_VERSION
        || u32_at(b, 12) != file_id
        || u64_at(b, 16) != data_len
        || u64_at(b, 24) != salt
    {
        return Err(FormatError("hint does not describe this data file"));
    }
    let count = u64_at(b, b.len() - TRAILER_LEN);
    let entries = &b[HEADER_LEN..b.len() - TRAILER_LEN];
    // First pass: structure only, so a hint is either used whole or not at all.
    let mut seen = 0u64;
    let mut at = 0usize;
    let mut next_offset = data_file::HEADER_LEN as u64;
    while at < entries.len() {
        let e = entry_at(entries, at, max_key)?;
        if e.offset != next_offset || e.offset + u64::from(e.record_len) > data_len {
            return Err(FormatError("hint entry outside its data file"));
        }
        next_offset = e.offset + u64::from(e.record_len);
        at += ENTRY_FIXED + e.key.len();
        seen += 1;
    }
    if seen != count || next_offset != data_len {
        return Err(FormatError("hint entry count or coverage mismatch"));
    }
    let mut at = 0usize;
    while at < entries.len() {
        let e = entry_at(entries, at, max_key)?;
        at += ENTRY_FIXED + e.key.len();
        each(e);
    }
    Ok(count)
}

fn entry_at(entries: &[u8], at: usize, max_key: usize) -> Result<HintEntry<'_>, FormatError> {
    let fixed = entries
        .get(at..at + ENTRY_FIXED)
        .ok_or(FormatError("truncated hint entry"))?;
    let key_len = u32_at(fixed, 9) as usize;
    if key_len == 0 || key_len > max_key {
        return Err(FormatError("hint key length out of range"));
    }
    let key = entries
        .get(at + ENTRY_FIXED..at + ENTRY_FIXED + key_len)
        .ok_or(FormatError("truncated hint key"))?;
    let record_len = u32_at(fixed, 21);
    if (record_len as usize) < super::record::HEADER_LEN + key_len {
        return Err(FormatError("hint record length too small"));
    }
    Ok(HintEntry {
        seq: u64_at(fixed, 0),
        flags: fixed[8],
        offset: u64_at(fixed, 13),
        record_len,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u8>, u64) {
        let mut w = HintWriter::new(3, 32 + 40 + 30, 99);
        w.push(&HintEntry {
            seq: 1,
            flags: 0,
            offset: 32,
            record_len: 40,
            key: b"alpha",
        });
        w.push(&HintEntry {
            seq: 2,
            flags: 1,
            offset: 72,
            record_len: 30,
            key: b"beta",
        });
        (w.finish(), 32 + 40 + 30)
    }

    #[test]
    fn data_len_set_afterwards_verifies() {
        let mut w = HintWriter::new(3, 0, 99);
        w.push(&HintEntry {
            seq: 1,
            flags: 0,
            offset: 32,
            record_len: 40,
            key: b"alpha",
        });
        let b = w.with_data_len(72).finish();
        assert_eq!(read(&b, 3, 72, 99, 64, |_| {}), Ok(1));
        assert!(read(&b, 3, 0, 99, 64, |_| {}).is_err());
    }

    #[test]
    fn round_trip() {
        let (b, len) = sample();
        let mut keys = Vec::new();
        let n = read(&b, 3, len, 99, 64, |e| keys.push((e.seq, e.key.to_vec()))).unwrap();
        assert_eq!(n, 2);
        assert_eq!(keys, vec![(1, b"alpha".to_vec()), (2, b"beta".to_vec())]);
    }

    #[test]
    fn mismatches_and_damage_rejected_before_any_entry() {
        let (b, len) = sample();
        assert!(read(&b, 4, len, 99, 64, |_| panic!()).is_err());
        assert!(read(&b, 3, len + 1, 99, 64, |_| panic!()).is_err());
        assert!(read(&b, 3, len, 98, 64, |_| panic!()).is_err());
        for i in 0..b.len() {
            let mut bad = b.clone();
            bad[i] ^= 0x04;
            assert!(read(&bad, 3, len, 99, 64, |_| panic!()).is_err(), "byte {i}");
        }
        assert!(read(&b[..b.len() - 1], 3, len, 99, 64, |_| panic!()).is_err());
    }
}
