//! The `record` target: a data file decoded record by record with the
//! format decoder, and scanned whole by recovery's scan, which must agree.

use std::path::Path;
use std::sync::Arc;

use crate::config::{MAX_KEY_LEN, MAX_VALUE_CEILING};
use crate::format::data_file::{self, DataFileHeader};
use crate::format::{record, u32_at, u64_at};
use crate::partition::scan::{self, ScanMode};
use crate::snapshot::DataFile;
use crate::storage::Backend;

/// A record as both decoders report it: seq, flags, key, offset, length.
type Found = (u64, u8, Vec<u8>, u64, u64);

/// Decodes `data` as a data file and returns how many values decoded (the
/// header, then each record; the scan adds none).
pub(super) fn decode(data: &[u8]) -> usize {
    let Some(head) = data.first_chunk::<{ data_file::HEADER_LEN }>() else {
        return 0;
    };
    let mut decoded = 0;
    if let Ok(h) = DataFileHeader::decode(head, u32_at(head, 12)) {
        let again = h.encode();
        assert_eq!(DataFileHeader::decode(&again, h.file_id), Ok(h));
        // The reserved field (bytes 24..28) is not checked on decoding, so
        // only a header whose field is zero is the encoder's byte for byte.
        if u32_at(head, 24) == 0 {
            assert_eq!(&again, head, "data file header re-encodes differently");
        }
        decoded += 1;
    }
    // The header's salt, whether or not the header verifies, so that the
    // fuzzer reaches the records either way.
    let salt = u64_at(head, 16);
    let (found, end) = records(data, salt);
    cross_check_scan(data, salt, &found, end);
    decoded + found.len()
}

/// Records from just after the header until one fails to decode, each
/// checked to re-encode to exactly its bytes; and where the last one ends.
fn records(data: &[u8], salt: u64) -> (Vec<(Found, bool)>, usize) {
    let mut found = Vec::new();
    let mut at = data_file::HEADER_LEN;
    while let Ok(rec) = record::decode(&data[at..], salt, MAX_KEY_LEN, MAX_VALUE_CEILING) {
        let h = rec.header;
        let len = usize::try_from(h.record_len()).expect("the record is in memory");
        let mut again = Vec::new();
        record::encode(&mut again, salt, h.seq, h.flags, rec.key, rec.value);
        assert_eq!(
            again,
            &data[at..at + len],
            "record at {at} re-encodes differently"
        );
        let this = (h.seq, h.flags, rec.key.to_vec(), at as u64, len as u64);
        found.push((this, h.batch_continues()));
        at += len;
    }
    (found, at)
}

/// Scans `data` as recovery does, as the active file and as a sealed one:
/// the committed records are those the record decoder found up to the last
/// one that ends a batch; a sealed file scans only when every byte decoded
/// and no batch is left open.
fn cross_check_scan(data: &[u8], salt: u64, found: &[(Found, bool)], end: usize) {
    let committed = found.iter().rposition(|(_, cont)| !cont).map_or(0, |i| i + 1);
    let want: Vec<&Found> = found[..committed].iter().map(|(f, _)| f).collect();
    let valid_end = want.last().map_or(data_file::HEADER_LEN as u64, |f| f.3 + f.4);
    let disk = crate::SimDisk::new();
    let path = Path::new("/00000001.data");
    disk.write_file(path, data).expect("a fresh disk");
    let fs: Backend = Arc::new(disk);
    let handle = fs.open(path, false).expect("the file just written");
    let file = DataFile::new(1, path.to_path_buf(), salt, handle);
    let len = data.len() as u64;
    for mode in [ScanMode::Active, ScanMode::Sealed] {
        let mut got = Vec::new();
        let result = scan::scan(&file, len, mode, |r| {
            let (offset, len) = (r.location.offset, u64::from(r.location.len));
            got.push((r.seq, r.flags, r.key.to_vec(), offset, len));
        });
        let clean = end == data.len() && committed == found.len();
        match (mode, result) {
            (ScanMode::Active, Ok(e)) => {
                assert_eq!(got.iter().collect::<Vec<_>>(), want, "scanned records");
                assert_eq!((e.valid_end, e.records), (valid_end, want.len() as u64));
            }
            (ScanMode::Sealed, Ok(e)) => {
                assert!(clean, "a sealed file with a bad tail scans");
                assert_eq!(got.iter().collect::<Vec<_>>(), want, "scanned records");
                assert_eq!((e.valid_end, e.records), (len, want.len() as u64));
            }
            (ScanMode::Sealed, Err(crate::Error::Corrupt { .. })) if !clean => {}
            (mode, Err(e)) => panic!("{mode:?} scan failed: {e}"),
        }
    }
}
