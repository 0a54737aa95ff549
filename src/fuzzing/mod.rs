//! Entry points for the fuzz targets under `fuzz/` and for the corpus replay
//! of `tests/fuzz_corpus.rs`. Not part of the supported API.
//!
//! Each function runs one of the engine's real decoders on arbitrary bytes.
//! The decoders themselves never panic: they return typed errors. These
//! functions add the checks a fuzzer needs and *do* panic when one fails:
//! whatever decodes must re-encode to something that decodes to the same
//! value (and, where the encoding is canonical, to the same bytes).
//!
//! Every structure is checksummed, so random bytes almost never get past
//! the first CRC. Each function therefore decodes the input twice: as it
//! is, and as a copy whose checksums were recomputed over the bytes they
//! cover, so the fuzzer also reaches the length, flag and structure checks
//! behind them.
//!
//! Each function returns how many values (records, entries, a manifest, a
//! name) decoded and round-tripped, over both passes; the replay uses it to
//! tell a corpus of valid seeds from one of noise.

mod checksum;
#[cfg(test)]
mod seeds;

use std::path::Path;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::config::{MAX_KEY_LEN, MAX_VALUE_CEILING};
use crate::format::catalog::{self as catalog_format, CatalogRecord, Decoded};
use crate::format::data_file::{self, DataFileHeader};
use crate::format::hint::{self, HintEntry, HintWriter};
use crate::format::manifest::Manifest;
use crate::format::{record, u32_at, u64_at};
use crate::name::{self, PARTITIONS_DIR};
use crate::storage::Backend;

/// Decodes `data` as a data file: the 32-byte header, then records one after
/// another (with the salt at bytes 16..24, whether or not the header
/// verifies) until one fails, as recovery scans a file. Every record that
/// decodes must re-encode to exactly its bytes.
///
/// # Panics
///
/// On a round-trip mismatch (a decoder bug), never on bad input.
pub fn decode_record(data: &[u8]) -> usize {
    records(data) + records(&checksum::fix_data_file(data))
}

fn records(data: &[u8]) -> usize {
    let Some(head) = data.first_chunk::<{ data_file::HEADER_LEN }>() else {
        return 0;
    };
    let mut decoded = 0;
    if let Ok(h) = DataFileHeader::decode(head, u32_at(head, 12)) {
        assert_eq!(&h.encode(), head, "data file header re-encodes differently");
        decoded += 1;
    }
    let salt = u64_at(head, 16);
    let mut at = data_file::HEADER_LEN;
    while let Ok(rec) = record::decode(&data[at..], salt, MAX_KEY_LEN, MAX_VALUE_CEILING) {
        let len = usize::try_from(rec.header.record_len()).expect("the record is in memory");
        let mut again = Vec::new();
        record::encode(
            &mut again,
            salt,
            rec.header.seq,
            rec.header.flags,
            rec.key,
            rec.value,
        );
        assert_eq!(
            again,
            &data[at..at + len],
            "record at {at} re-encodes differently"
        );
        at += len;
        decoded += 1;
    }
    decoded
}

/// An owned [`HintEntry`], to compare two decodings.
#[derive(Debug, PartialEq, Eq)]
struct OwnedEntry {
    seq: u64,
    flags: u8,
    offset: u64,
    record_len: u32,
    key: Vec<u8>,
}

/// Decodes `data` as a hint file describing the data file its own header
/// names (id, length and salt at bytes 12..32), so the fuzzer reaches the
/// entries. Whatever decodes must be rebuilt by the hint writer into a hint
/// that decodes to the same entries, byte for byte the input when its
/// reserved field is zero.
///
/// # Panics
///
/// On a round-trip mismatch (a decoder bug), never on bad input.
pub fn decode_hint(data: &[u8]) -> usize {
    hint_entries(data) + hint_entries(&checksum::fix_hint(data))
}

fn read_hint(data: &[u8], id: u32, len: u64, salt: u64) -> Option<Vec<OwnedEntry>> {
    let mut entries = Vec::new();
    let count = hint::read(data, id, len, salt, MAX_KEY_LEN, |e| {
        entries.push(OwnedEntry {
            seq: e.seq,
            flags: e.flags,
            offset: e.offset,
            record_len: e.record_len,
            key: e.key.to_vec(),
        });
    })
    .ok()?;
    assert_eq!(count, entries.len() as u64, "hint count differs from its entries");
    Some(entries)
}

fn hint_entries(data: &[u8]) -> usize {
    if data.len() < 32 {
        return 0;
    }
    let (id, len, salt) = (u32_at(data, 12), u64_at(data, 16), u64_at(data, 24));
    let Some(entries) = read_hint(data, id, len, salt) else {
        return 0;
    };
    let mut w = HintWriter::new(id, len, salt);
    for e in &entries {
        w.push(&HintEntry {
            seq: e.seq,
            flags: e.flags,
            offset: e.offset,
            record_len: e.record_len,
            key: &e.key,
        });
    }
    let again = w.finish();
    let reread = read_hint(&again, id, len, salt);
    assert_eq!(
        reread.as_ref(),
        Some(&entries),
        "re-encoded hint decodes differently"
    );
    if u32_at(data, 32) == 0 {
        assert_eq!(again, data, "hint re-encodes to other bytes");
    }
    entries.len()
}

/// Decodes `data` as a partition manifest. One that decodes must re-encode
/// to exactly its bytes.
///
/// # Panics
///
/// On a round-trip mismatch (a decoder bug), never on bad input.
pub fn decode_manifest(data: &[u8]) -> usize {
    manifest(data) + manifest(&checksum::fix_manifest(data))
}

fn manifest(data: &[u8]) -> usize {
    let Ok(m) = Manifest::decode(data) else {
        return 0;
    };
    let again = m.encode();
    assert_eq!(again, data, "manifest re-encodes to other bytes");
    assert_eq!(Manifest::decode(&again).as_ref(), Ok(&m));
    assert!(m.files.contains(&m.active()));
    1
}

/// Decodes `data` as the catalog log, twice: record by record with the
/// format decoder (every record that decodes must re-encode to one that
/// decodes to the same value), and whole, by opening a catalog holding
/// these bytes on a [`SimDisk`](crate::SimDisk) — which either fails with
/// an error or opens, and then opens again to the same partitions.
///
/// # Panics
///
/// On a round-trip mismatch or a reopen that differs (a bug), never on bad
/// input.
pub fn decode_catalog(data: &[u8]) -> usize {
    let fixed = checksum::fix_catalog(data);
    catalog_records(data) + catalog_records(&fixed) + catalog_open(data) + catalog_open(&fixed)
}

fn catalog_records(data: &[u8]) -> usize {
    let Ok(salt) = catalog_format::decode_header(data) else {
        return 0;
    };
    let (mut at, mut decoded) = (catalog_format::HEADER_LEN, 0);
    while at < data.len() {
        let Decoded::Record(rec, len) = catalog_format::decode_record(&data[at..], salt) else {
            break;
        };
        let mut again = Vec::new();
        rec.encode(salt, &mut again);
        assert_eq!(
            again.len(),
            len,
            "catalog record at {at} re-encodes to another length"
        );
        // Compared through their encodings: options may hold a NaN ratio,
        // which is not equal to itself.
        let Decoded::Record(back, back_len) = catalog_format::decode_record(&again, salt) else {
            panic!("re-encoded catalog record at {at} does not decode");
        };
        let mut twice = Vec::new();
        back.encode(salt, &mut twice);
        assert_eq!((twice, back_len), (again, len), "catalog record at {at} changes");
        at += len;
        decoded += 1;
    }
    decoded
}

/// The live partitions of a catalog opened from `data`, sorted by id.
fn open_catalog(fs: &Backend) -> Option<Vec<(u64, String, Vec<u8>)>> {
    let cat = Catalog::open(fs, Path::new("/db")).ok()?;
    let mut live: Vec<_> = cat
        .entries()
        .map(|e| {
            let mut options = Vec::new();
            e.options.encode(&mut options);
            (e.id, e.name.clone(), options)
        })
        .collect();
    live.sort();
    Some(live)
}

fn catalog_open(data: &[u8]) -> usize {
    let disk = crate::SimDisk::new();
    let fs: Backend = Arc::new(disk.clone());
    let root = Path::new("/db");
    // A fresh in-memory disk: these cannot fail.
    fs.create_dir(root).expect("fresh disk");
    fs.create_dir(&root.join(PARTITIONS_DIR)).expect("fresh disk");
    disk.write_file(root.join(catalog_format::CATALOG_NAME), data)
        .expect("fresh disk");
    let Some(first) = open_catalog(&fs) else {
        return 0;
    };
    assert_eq!(
        open_catalog(&fs).as_ref(),
        Some(&first),
        "a reopened catalog differs"
    );
    first.len()
}

/// Decodes `data` as a partition name, as the catalog does (UTF-8, then
/// validation), and as the directory and file names of a partition. A valid
/// name must survive a catalog record; a directory or file name that parses
/// must be the one its id formats to.
///
/// # Panics
///
/// On a round-trip mismatch (a bug), never on bad input.
pub fn decode_name(data: &[u8]) -> usize {
    let Ok(text) = std::str::from_utf8(data) else {
        return 0;
    };
    let mut decoded = 0;
    match name::validate(text) {
        Ok(()) => {
            let salt = 7;
            let rec = CatalogRecord::Create {
                id: 1,
                name: text.to_owned(),
                options: crate::PartitionOptions::default(),
            };
            let mut b = Vec::new();
            rec.encode(salt, &mut b);
            assert_eq!(
                catalog_format::decode_record(&b, salt),
                Decoded::Record(rec, b.len()),
                "a valid name does not survive the catalog"
            );
            decoded += 1;
        }
        // Formatting the error must not panic either (it quotes the name).
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Some(id) = name::parse_dir_name(text) {
        assert_eq!(name::dir_name(id), text, "partition directory name");
        decoded += 1;
    }
    match data_file::classify(text) {
        data_file::FileName::Data(id) => assert_eq!(data_file::data_name(id), text),
        data_file::FileName::Hint(id) => assert_eq!(data_file::hint_name(id), text),
        _ => return decoded,
    }
    decoded + 1
}
