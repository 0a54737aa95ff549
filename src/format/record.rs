//! Records: the unit appended to a data file.
//!
//! ```text
//! offset size field
//!  0     4    header_crc  CRC32(salt ‖ bytes 4..25)
//!  4     4    body_crc    CRC32(salt ‖ bytes 8..25 ‖ key ‖ value)
//!  8     8    seq         per-partition sequence number
//! 16     1    flags       bit 0 tombstone, bit 1 batch-continues; others 0
//! 17     4    key_len     1 ..= MAX_KEY_LEN
//! 21     4    value_len   0 ..= max value (0 for tombstones)
//! 25          key, then value
//! ```
//! The file's random salt is mixed into both CRCs, so a record copied from
//! another file fails its checksum. A record whose flags carry
//! [`FLAG_BATCH_CONT`] is part of a batch whose last record follows; a batch
//! cut short by a crash is discarded whole at recovery.

use super::{FormatError, crc_of, u32_at, u64_at};

/// Size of the fixed record header.
pub(crate) const HEADER_LEN: usize = 25;
/// The record deletes its key; it has no value.
pub(crate) const FLAG_TOMBSTONE: u8 = 1;
/// More records of the same atomic batch follow this one.
pub(crate) const FLAG_BATCH_CONT: u8 = 2;
const KNOWN_FLAGS: u8 = FLAG_TOMBSTONE | FLAG_BATCH_CONT;
/// Highest sequence number a record may carry (2^63 − 1). No partition
/// writes 2^63 records, so a larger one is damage or hostile input; refusing
/// it keeps `max_seq + 1` and every later increment from overflowing.
pub(crate) const MAX_SEQ: u64 = (1 << 63) - 1;

/// The decoded, checksum-verified fixed header of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) body_crc: u32,
    pub(crate) seq: u64,
    pub(crate) flags: u8,
    pub(crate) key_len: u32,
    pub(crate) value_len: u32,
}

impl RecordHeader {
    /// Total encoded length of the record.
    pub(crate) fn record_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.key_len) + u64::from(self.value_len)
    }

    /// Whether the record is a delete.
    pub(crate) fn is_tombstone(&self) -> bool {
        self.flags & FLAG_TOMBSTONE != 0
    }

    /// Whether more records of the same batch follow.
    pub(crate) fn batch_continues(&self) -> bool {
        self.flags & FLAG_BATCH_CONT != 0
    }

    /// Decodes and verifies a header. Checks the header CRC first, then the
    /// flags and the lengths against `max_key` / `max_value`, so a corrupt
    /// length never reaches an allocation.
    pub(crate) fn decode(
        buf: &[u8; HEADER_LEN],
        salt: u64,
        max_key: usize,
        max_value: usize,
    ) -> Result<Self, FormatError> {
        let stored = u32_at(buf, 0);
        if stored != crc_of(&[&salt.to_le_bytes(), &buf[4..]]) {
            return Err(FormatError("record header checksum mismatch"));
        }
        let header = RecordHeader {
            body_crc: u32_at(buf, 4),
            seq: u64_at(buf, 8),
            flags: buf[16],
            key_len: u32_at(buf, 17),
            value_len: u32_at(buf, 21),
        };
        if header.flags & !KNOWN_FLAGS != 0 {
            return Err(FormatError("unknown record flags"));
        }
        if header.seq > MAX_SEQ {
            return Err(FormatError("record sequence number out of range"));
        }
        if header.key_len == 0 || header.key_len as usize > max_key {
            return Err(FormatError("record key length out of range"));
        }
        if header.value_len as usize > max_value {
            return Err(FormatError("record value length out of range"));
        }
        if header.is_tombstone() && header.value_len != 0 {
            return Err(FormatError("tombstone with a value"));
        }
        Ok(header)
    }

    /// Verifies the body CRC over the header fields, key and value.
    pub(crate) fn verify_body(
        &self,
        salt: u64,
        header: &[u8; HEADER_LEN],
        key: &[u8],
        value: &[u8],
    ) -> Result<(), FormatError> {
        if crc_of(&[&salt.to_le_bytes(), &header[8..], key, value]) != self.body_crc {
            return Err(FormatError("record body checksum mismatch"));
        }
        Ok(())
    }
}

/// Appends one encoded record to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, salt: u64, seq: u64, flags: u8, key: &[u8], value: &[u8]) {
    debug_assert!(flags & !KNOWN_FLAGS == 0);
    let start = out.len();
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(flags);
    // Lengths were validated against MAX_KEY_LEN and the value limit (both far
    // below u32::MAX) before a request reached the writer.
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    let salt = salt.to_le_bytes();
    let body_crc = crc_of(&[&salt, &out[start + 8..start + HEADER_LEN], key, value]);
    out[start + 4..start + 8].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc_of(&[&salt, &out[start + 4..start + HEADER_LEN]]);
    out[start..start + 4].copy_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// A whole record read back from a file: header verified, body verified.
#[derive(Debug)]
pub(crate) struct DecodedRecord<'a> {
    pub(crate) header: RecordHeader,
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// Decodes one complete record from `buf` (exactly the record's bytes or
/// more), verifying both checksums.
pub(crate) fn decode(
    buf: &[u8],
    salt: u64,
    max_key: usize,
    max_value: usize,
) -> Result<DecodedRecord<'_>, FormatError> {
    let head: &[u8; HEADER_LEN] = buf
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(FormatError("record shorter than its header"))?;
    let header = RecordHeader::decode(head, salt, max_key, max_value)?;
    let key_end = HEADER_LEN + header.key_len as usize;
    let end = key_end + header.value_len as usize;
    if buf.len() < end {
        return Err(FormatError("record shorter than its lengths"));
    }
    let key = &buf[HEADER_LEN..key_end];
    let value = &buf[key_end..end];
    header.verify_body(salt, head, key, value)?;
    Ok(DecodedRecord { header, key, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: u64 = 0x5eed_5a17;

    fn one(seq: u64, flags: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(&mut v, SALT, seq, flags, key, value);
        v
    }

    #[test]
    fn round_trip_put_tombstone_and_empty_value() {
        for (flags, value) in [(0, &b"value"[..]), (FLAG_TOMBSTONE, &b""[..]), (0, &b""[..])] {
            let buf = one(7, flags, b"key", value);
            assert_eq!(buf.len(), HEADER_LEN + 3 + value.len());
            let rec = decode(&buf, SALT, 1024, 1024).unwrap();
            assert_eq!((rec.header.seq, rec.key, rec.value), (7, &b"key"[..], value));
            assert_eq!(rec.header.is_tombstone(), flags == FLAG_TOMBSTONE);
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let buf = one(42, FLAG_BATCH_CONT, b"some key", b"some value");
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert!(decode(&bad, SALT, 1024, 1024).is_err(), "flip {i}:{bit} accepted");
            }
        }
    }

    #[test]
    fn seq_above_the_maximum_is_rejected() {
        assert!(decode(&one(MAX_SEQ, 0, b"k", b"v"), SALT, 1024, 1024).is_ok());
        for seq in [MAX_SEQ + 1, u64::MAX] {
            assert_eq!(
                decode(&one(seq, 0, b"k", b"v"), SALT, 1024, 1024).unwrap_err(),
                FormatError("record sequence number out of range")
            );
        }
    }

    #[test]
    fn other_salt_and_limits_rejected() {
        let buf = one(1, 0, b"k", b"0123456789");
        assert!(decode(&buf, SALT + 1, 1024, 1024).is_err());
        assert_eq!(
            decode(&buf, SALT, 1024, 9).unwrap_err(),
            FormatError("record value length out of range")
        );
        assert!(decode(&buf[..buf.len() - 1], SALT, 1024, 1024).is_err());
        assert!(decode(&[0u8; 40], SALT, 1024, 1024).is_err());
    }
}
