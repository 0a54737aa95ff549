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

mod catalog;
mod checksum;
mod record;
#[cfg(test)]
mod seeds;

use crate::config::MAX_KEY_LEN;
use crate::format::catalog::{self as catalog_format, CatalogRecord, Decoded};
use crate::format::data_file;
use crate::format::hint::{self, HintEntry, HintWriter};
use crate::format::manifest::Manifest;
use crate::format::{u32_at, u64_at};
use crate::name;

/// Decodes `data` as a data file: the 32-byte header, then records one after
/// another (with the salt at bytes 16..24, whether or not the header
/// verifies) until one fails. Every record that decodes must re-encode to
/// exactly its bytes, and recovery's scan of the same bytes (as the active
/// file and as a sealed one) must report the same records, up to the last
/// one that completes a batch.
///
/// # Panics
///
/// On a round-trip mismatch (a decoder bug), never on bad input.
pub fn decode_record(data: &[u8]) -> usize {
    record::decode(data) + record::decode(&checksum::fix_data_file(data))
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
    catalog::records(data) + catalog::records(&fixed) + catalog::open(data) + catalog::open(&fixed)
}

/// Decodes `data` as a partition name, as the catalog does (UTF-8, then
/// validation), and as the directory and file names of a partition. A valid
/// name must survive a catalog record, an invalid one be refused by the
/// catalog decoder too; a directory or file name that parses must be the one
/// its id formats to.
///
/// # Panics
///
/// On a round-trip mismatch (a bug), never on bad input.
pub fn decode_name(data: &[u8]) -> usize {
    let Ok(text) = std::str::from_utf8(data) else {
        return 0;
    };
    // The name as a catalog create record brings it back from disk.
    let rec = CatalogRecord::Create {
        id: 1,
        name: text.to_owned(),
        options: crate::PartitionOptions::default(),
    };
    let mut b = Vec::new();
    rec.encode(7, &mut b);
    let back = catalog_format::decode_record(&b, 7);
    let mut decoded = 0;
    match name::validate(text) {
        Ok(()) => {
            let want = Decoded::Record(rec, b.len());
            assert_eq!(back, want, "a valid name does not survive the catalog");
            decoded += 1;
        }
        Err(e) => {
            // Formatting the error must not panic either (it quotes the name).
            assert!(!e.to_string().is_empty());
            let taken = matches!(back, Decoded::Record(..));
            assert!(!taken, "the catalog takes the invalid name {text:?}");
        }
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
