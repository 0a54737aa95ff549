//! Checksum fix-ups: copies of fuzz inputs whose CRCs are recomputed over
//! the bytes they cover, as each format lays them out, so that mutated
//! lengths, flags and fields reach the checks behind the checksums. Each
//! fix-up touches only the CRC fields and only where the bytes they cover
//! exist; everything else is left as the fuzzer made it.

use crate::format::catalog::{HEADER_LEN as CATALOG_HEADER, MAX_BODY, RECORD_HEAD};
use crate::format::{crc_of, data_file, record, u32_at, u64_at};

/// Writes `crc` at `at`.
fn put(b: &mut [u8], at: usize, crc: u32) {
    b[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// A data file: the header CRC, then the body and header CRCs of each
/// record in turn, as far as the records' lengths lead (a record cut short
/// by the end of the input gets CRCs over what is there).
pub(super) fn fix_data_file(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    if b.len() < data_file::HEADER_LEN {
        return b;
    }
    let crc = crc_of(&[&b[..28]]);
    put(&mut b, 28, crc);
    let salt = u64_at(&b, 16).to_le_bytes();
    let mut at = data_file::HEADER_LEN;
    while at + record::HEADER_LEN <= b.len() {
        let lens = u64::from(u32_at(&b, at + 17)) + u64::from(u32_at(&b, at + 21));
        let end = (at as u64).saturating_add(record::HEADER_LEN as u64 + lens);
        let body_end = usize::try_from(end).map_or(b.len(), |e| e.min(b.len()));
        let body_crc = crc_of(&[&salt, &b[at + 8..body_end]]);
        put(&mut b, at + 4, body_crc);
        let header_crc = crc_of(&[&salt, &b[at + 4..at + record::HEADER_LEN]]);
        put(&mut b, at, header_crc);
        if end > b.len() as u64 {
            break;
        }
        at = body_end;
    }
    b
}

/// A hint file: the header CRC (bytes 0..36 at 36), then the whole-file CRC
/// in the last four bytes.
pub(super) fn fix_hint(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    if b.len() >= 40 {
        let crc = crc_of(&[&b[..36]]);
        put(&mut b, 36, crc);
    }
    if b.len() >= 52 {
        let end = b.len() - 4;
        let crc = crc_of(&[&b[..end]]);
        put(&mut b, end, crc);
    }
    b
}

/// A manifest: the CRC of everything before the last four bytes.
pub(super) fn fix_manifest(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    if b.len() >= 8 {
        let end = b.len() - 4;
        let crc = crc_of(&[&b[..end]]);
        put(&mut b, end, crc);
    }
    b
}

/// A catalog: the header CRC, then each record's CRC while its length is
/// in range and its body is there.
pub(super) fn fix_catalog(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    if b.len() < CATALOG_HEADER {
        return b;
    }
    let crc = crc_of(&[&b[..28]]);
    put(&mut b, 28, crc);
    let salt = u64_at(&b, 16).to_le_bytes();
    let mut at = CATALOG_HEADER;
    while at + RECORD_HEAD <= b.len() {
        let len = u32_at(&b, at + 4) as usize;
        let end = at + RECORD_HEAD + len;
        if len == 0 || len > MAX_BODY || end > b.len() {
            break;
        }
        let crc = crc_of(&[&salt, &b[at + 4..end]]);
        put(&mut b, at, crc);
        at = end;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::catalog::{CatalogRecord, Decoded, decode_record, encode_header};
    use crate::format::manifest::Manifest;

    #[test]
    fn fixing_a_valid_encoding_changes_nothing() {
        let mut data = data_file::DataFileHeader { file_id: 3, salt: 9 }
            .encode()
            .to_vec();
        record::encode(&mut data, 9, 1, 0, b"key", b"value");
        record::encode(&mut data, 9, 2, record::FLAG_TOMBSTONE, b"key", b"");
        assert_eq!(fix_data_file(&data), data);
        let m = Manifest {
            generation: 1,
            next_file_id: 4,
            files: vec![1, 3],
        };
        assert_eq!(fix_manifest(&m.encode()), m.encode());
        let mut cat = encode_header(5).to_vec();
        CatalogRecord::NextId(3).encode(5, &mut cat);
        assert_eq!(fix_catalog(&cat), cat);
    }

    #[test]
    fn a_changed_length_gets_checksums_that_verify() {
        let mut data = data_file::DataFileHeader { file_id: 3, salt: 9 }
            .encode()
            .to_vec();
        record::encode(&mut data, 9, 1, 0, b"key", b"value");
        data[32 + 21] = 4; // value_len 5 → 4: one trailing byte left over
        let fixed = fix_data_file(&data);
        let rec = record::decode(&fixed[32..], 9, 64, 64).unwrap();
        assert_eq!((rec.key, rec.value), (&b"key"[..], &b"valu"[..]));
        let mut cat = encode_header(5).to_vec();
        CatalogRecord::NextId(3).encode(5, &mut cat);
        cat[CATALOG_HEADER + 8] = 2; // next-id → drop
        let fixed = fix_catalog(&cat);
        let len = fixed.len() - CATALOG_HEADER;
        let back = decode_record(&fixed[CATALOG_HEADER..], 5);
        assert_eq!(back, Decoded::Record(CatalogRecord::Drop { id: 3 }, len));
    }
}
