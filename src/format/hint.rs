//! Hint files: a compact list of a sealed data file's records, so opening a
//! partition need not read every value.
//!
//! ```text
//! header (40 bytes)
//!  0  8  magic "CASKHINT"
//!  8  4  hint format version (HINT_VERSION)
//! 12  4  data file id
//! 16  8  data file length covered
//! 24  8  data file salt
//! 32  4  reserved, zero
//! 36  4  CRC32 of bytes 0..36
//! entries, one per committed record of the data file, in file order
//!     seq_delta  varint, zigzag: seq − previous entry's seq (first: − 0), wrapping
//!     flags      1 byte
//!     key_len    varint, 1 ..= max key
//!     value_len  varint: record_len − record::HEADER_LEN − key_len
//!     key
//! trailer (12 bytes)
//!     8 entry count, 4 CRC32 of every preceding byte of the file
//! ```
//! Varints are LEB128 (`integer-encoding`), at most 10 bytes, and must be
//! minimal. Entries carry no offset: the records of a data file are
//! contiguous, so the first starts at [`data_file::HEADER_LEN`] and each next
//! one where the previous one ends; the last must end at the covered length.
//! An entry is 4 bytes plus the key for a typical record (consecutive seqs,
//! key and value under 128 bytes).
//!
//! Any mismatch (checksum, version, data-file id / length / salt, a bad
//! varint, an entry reaching past the data file) makes the loader ignore the
//! hint and scan the data file instead: a bad hint never stops an open and
//! never yields wrong data (reads verify each record's own checksum and key).

use integer_encoding::VarInt;

use super::{FormatError, crc_of, data_file, record, u32_at, u64_at};

const MAGIC: &[u8; 8] = b"CASKHINT";
/// The version written at bytes 8..12 of a hint. Separate from
/// [`FORMAT_VERSION`](super::FORMAT_VERSION): 1 was the fixed-width entry
/// layout (with offsets), 2 the varint one. A hint of another version is
/// ignored, and the data file is scanned (and, when sealed, re-hinted).
pub(crate) const HINT_VERSION: u32 = 2;
const HEADER_LEN: usize = 40;
const TRAILER_LEN: usize = 12;
/// Longest LEB128 encoding of a u64.
const MAX_VARINT: usize = 10;

/// One record of the data file, as listed in its hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HintEntry<'a> {
    pub(crate) seq: u64,
    pub(crate) flags: u8,
    /// Not stored: implied by the previous entries (records are contiguous).
    pub(crate) offset: u64,
    pub(crate) record_len: u32,
    pub(crate) key: &'a [u8],
}

/// Builds a hint file's bytes.
#[derive(Debug)]
pub(crate) struct HintWriter {
    buf: Vec<u8>,
    count: u64,
    /// Seq of the last entry pushed (0 before the first).
    prev_seq: u64,
    /// Where the next entry's record must start.
    next_offset: u64,
    /// Every entry pushed so far was encodable (contiguous, lengths in
    /// range). A caller bug otherwise: it panics in debug builds, and in
    /// release builds the finished hint is made one that `read` rejects.
    valid: bool,
}

impl HintWriter {
    /// Starts a hint for data file `file_id` of length `data_len` and salt `salt`.
    pub(crate) fn new(file_id: u32, data_len: u64, salt: u64) -> Self {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&HINT_VERSION.to_le_bytes());
        buf.extend_from_slice(&file_id.to_le_bytes());
        buf.extend_from_slice(&data_len.to_le_bytes());
        buf.extend_from_slice(&salt.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        let crc = crc_of(&[&buf]);
        buf.extend_from_slice(&crc.to_le_bytes());
        HintWriter {
            buf,
            count: 0,
            prev_seq: 0,
            next_offset: data_file::HEADER_LEN as u64,
            valid: true,
        }
    }

    /// Adds one entry. Entries must describe contiguous records, in file
    /// order, the first at [`data_file::HEADER_LEN`]; `record_len` must cover
    /// the record header and the (non-empty) key.
    pub(crate) fn push(&mut self, e: &HintEntry<'_>) {
        debug_assert_eq!(e.offset, self.next_offset, "hint entries must be contiguous");
        let value_len = u64::from(e.record_len).checked_sub(record::HEADER_LEN as u64 + e.key.len() as u64);
        debug_assert!(
            value_len.is_some() && !e.key.is_empty(),
            "hint entry record_len {} too small for a key of {} bytes",
            e.record_len,
            e.key.len()
        );
        if e.offset != self.next_offset || value_len.is_none() || e.key.is_empty() {
            self.valid = false;
        }
        self.next_offset = e.offset.saturating_add(u64::from(e.record_len));
        let delta = e.seq.wrapping_sub(self.prev_seq) as i64;
        self.prev_seq = e.seq;
        self.put_varint(delta);
        self.buf.push(e.flags);
        self.put_varint(e.key.len() as u64);
        self.put_varint(value_len.unwrap_or(0));
        self.buf.extend_from_slice(e.key);
        self.count += 1;
    }

    fn put_varint(&mut self, v: impl VarInt) {
        let mut tmp = [0u8; MAX_VARINT];
        let n = v.encode_var(&mut tmp);
        self.buf.extend_from_slice(&tmp[..n]);
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
        // An entry count no hint can have: `read` rejects the hint, so a
        // caller's bug costs a scan, never a wrong location.
        let count = if self.valid { self.count } else { u64::MAX };
        self.buf.extend_from_slice(&count.to_le_bytes());
        let crc = crc_of(&[&self.buf]);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

/// Verifies a whole hint file against the data file it should describe and
/// calls `each` for every entry in order. Verification of the checksum,
/// header and every entry happens before the first call, so `each` never
/// sees entries of a damaged hint.
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
    if u32_at(b, 8) != HINT_VERSION {
        return Err(FormatError("unsupported hint version"));
    }
    if u32_at(b, 12) != file_id || u64_at(b, 16) != data_len || u64_at(b, 24) != salt {
        return Err(FormatError("hint does not describe this data file"));
    }
    let count = u64_at(b, b.len() - TRAILER_LEN);
    let entries = &b[HEADER_LEN..b.len() - TRAILER_LEN];
    // First pass: structure only, so a hint is either used whole or not at all.
    let mut cur = Cursor::new(entries, data_len, max_key);
    let mut seen = 0u64;
    while !cur.done() {
        cur.next()?;
        seen += 1;
    }
    if seen != count || cur.offset != data_len {
        return Err(FormatError("hint entry count or coverage mismatch"));
    }
    // Second pass: the same decoding over verified bytes, which cannot fail.
    let mut cur = Cursor::new(entries, data_len, max_key);
    while !cur.done() {
        each(cur.next()?);
    }
    Ok(count)
}

/// Decoding state over a hint's entry bytes.
struct Cursor<'a> {
    entries: &'a [u8],
    at: usize,
    seq: u64,
    /// Where the next entry's record starts.
    offset: u64,
    data_len: u64,
    max_key: usize,
}

impl<'a> Cursor<'a> {
    fn new(entries: &'a [u8], data_len: u64, max_key: usize) -> Self {
        Cursor {
            entries,
            at: 0,
            seq: 0,
            offset: data_file::HEADER_LEN as u64,
            data_len,
            max_key,
        }
    }

    fn done(&self) -> bool {
        self.at >= self.entries.len()
    }

    /// A minimal LEB128 varint of type `T` (so one that overflows `T`, is
    /// longer than needed or runs past the entries is rejected).
    fn varint<T: VarInt>(&mut self) -> Result<T, FormatError> {
        let rest = self.entries.get(self.at..).unwrap_or_default();
        let (v, n) = T::decode_var(rest).ok_or(FormatError("truncated or overflowing hint varint"))?;
        if v.required_space() != n {
            return Err(FormatError("overlong hint varint"));
        }
        self.at += n;
        Ok(v)
    }

    fn next(&mut self) -> Result<HintEntry<'a>, FormatError> {
        let delta: i64 = self.varint()?;
        // Seqs are stored as wrapping differences: any u64 sequence round-trips.
        let seq = self.seq.wrapping_add(delta as u64);
        if seq > record::MAX_SEQ {
            return Err(FormatError("hint sequence number out of range"));
        }
        let flags = *self
            .entries
            .get(self.at)
            .ok_or(FormatError("truncated hint entry"))?;
        self.at += 1;
        let key_len: u32 = self.varint()?;
        let key_len = key_len as usize;
        if key_len == 0 || key_len > self.max_key {
            return Err(FormatError("hint key length out of range"));
        }
        let value_len: u32 = self.varint()?;
        let record_len = u32::try_from(record::HEADER_LEN + key_len)
            .ok()
            .and_then(|fixed| fixed.checked_add(value_len))
            .ok_or(FormatError("hint record length out of range"))?;
        let key = self
            .at
            .checked_add(key_len)
            .and_then(|end| self.entries.get(self.at..end))
            .ok_or(FormatError("truncated hint key"))?;
        let end = self
            .offset
            .checked_add(u64::from(record_len))
            .filter(|&end| end <= self.data_len)
            .ok_or(FormatError("hint entry outside its data file"))?;
        let e = HintEntry {
            seq,
            flags,
            offset: self.offset,
            record_len,
            key,
        };
        self.at += key_len;
        self.seq = seq;
        self.offset = end;
        Ok(e)
    }
}

#[cfg(test)]
mod tests;
