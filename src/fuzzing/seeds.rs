//! The seed corpus of the fuzz targets: valid encodings made by the real
//! encoders, and hand-picked edge cases (empty, truncated, huge lengths
//! behind valid checksums, garbage). Deterministic (fixed salts), so the
//! files under `fuzz/corpus/<target>/seed-*` can be checked against it.
//!
//! `seed_corpus_is_current` fails when the files differ from what this
//! module generates; `CASKADE_WRITE_SEEDS=1 cargo test --lib
//! fuzzing::seeds` rewrites them instead. Inputs the fuzzer found live next
//! to them under other names and are left alone.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::checksum;
use crate::PartitionOptions;
use crate::format::catalog::{CatalogRecord, encode_header};
use crate::format::data_file::DataFileHeader;
use crate::format::hint::{HintEntry, HintWriter};
use crate::format::manifest::Manifest;
use crate::format::record::{self, FLAG_BATCH_CONT, FLAG_TOMBSTONE};

/// The targets, as named under `fuzz/fuzz_targets/`.
const TARGETS: [&str; 5] = ["record", "hint", "manifest", "catalog", "name"];
const SALT: u64 = 0x5eed_0fc0_ffee;

type Seed = (&'static str, String, Vec<u8>);

fn truncated(b: &[u8]) -> Vec<u8> {
    b[..b.len() - 1].to_vec()
}

/// The common edge cases of every binary target.
fn garbage(target: &'static str, out: &mut Vec<Seed>) {
    out.push((target, "edge-empty".into(), Vec::new()));
    out.push((target, "edge-zeros".into(), vec![0; 100]));
    out.push((target, "edge-ff".into(), vec![0xff; 100]));
}

fn record_seeds(out: &mut Vec<Seed>) {
    let head = DataFileHeader {
        file_id: 1,
        salt: SALT,
    }
    .encode()
    .to_vec();
    let mut file = head.clone();
    record::encode(&mut file, SALT, 1, 0, b"ada", b"lovelace");
    record::encode(&mut file, SALT, 2, FLAG_BATCH_CONT, b"k1", b"batched");
    record::encode(&mut file, SALT, 3, 0, b"k2", b"");
    record::encode(&mut file, SALT, 4, FLAG_TOMBSTONE, b"ada", b"");
    record::encode(&mut file, SALT, record::MAX_SEQ, 0, &[0xab; 300], &[7; 200]);
    out.push(("record", "seed-valid-file".into(), file.clone()));
    // The largest sequence number plus one: refused (it would overflow).
    let mut over = head.clone();
    record::encode(&mut over, SALT, record::MAX_SEQ + 1, 0, b"k", b"v");
    out.push(("record", "edge-seq-over-max".into(), over));
    out.push(("record", "edge-header-only".into(), head.clone()));
    out.push(("record", "edge-truncated".into(), truncated(&file)));
    // One record whose field at `at` is set to `bytes`, checksums fixed.
    let forged = |at: usize, bytes: &[u8]| {
        let mut b = head.clone();
        record::encode(&mut b, SALT, 9, 0, b"key", b"value");
        b[32 + at..32 + at + bytes.len()].copy_from_slice(bytes);
        checksum::fix_data_file(&b)
    };
    out.push(("record", "edge-huge-key-len".into(), forged(17, &[0xff; 4])));
    out.push(("record", "edge-huge-value-len".into(), forged(21, &[0xff; 4])));
    out.push(("record", "edge-zero-key-len".into(), forged(17, &[0; 4])));
    out.push(("record", "edge-unknown-flags".into(), forged(16, &[0x80])));
    out.push((
        "record",
        "edge-tombstone-value".into(),
        forged(16, &[FLAG_TOMBSTONE]),
    ));
    let mut other = head;
    record::encode(&mut other, SALT ^ 1, 1, 0, b"key", b"value");
    out.push(("record", "edge-other-salt".into(), other));
    garbage("record", out);
}

fn hint_of(data_len: u64, entries: &[(u64, u8, u32, &[u8])]) -> Vec<u8> {
    let mut w = HintWriter::new(4, data_len, SALT);
    let mut offset = 32;
    for &(seq, flags, record_len, key) in entries {
        w.push(&HintEntry {
            seq,
            flags,
            offset,
            record_len,
            key,
        });
        offset += u64::from(record_len);
    }
    w.finish()
}

fn hint_seeds(out: &mut Vec<Seed>) {
    let entries: [(u64, u8, u32, &[u8]); 4] = [
        (5, 0, 36, b"ada"),
        (6, FLAG_BATCH_CONT, 40, b"k1"),
        (2, FLAG_TOMBSTONE, 28, b"ada"),
        (record::MAX_SEQ, 0, 25 + 300 + 70_000, &[0xab; 300]),
    ];
    let len = 32 + entries.iter().map(|e| u64::from(e.2)).sum::<u64>();
    let hint = hint_of(len, &entries);
    out.push(("hint", "seed-valid".into(), hint.clone()));
    out.push(("hint", "seed-no-entries".into(), hint_of(32, &[])));
    let over = [(record::MAX_SEQ + 1, 0, 27, &b"k"[..])];
    out.push(("hint", "edge-seq-over-max".into(), hint_of(32 + 27, &over)));
    out.push(("hint", "edge-truncated".into(), truncated(&hint)));
    // Entry bytes replaced by `entries`, count `count`, checksums fixed.
    let forged = |entries: &[u8], count: u64| {
        let mut b = hint_of(len, &[])[..40].to_vec();
        b.extend_from_slice(entries);
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        checksum::fix_hint(&b)
    };
    let mut overflowing = vec![0xff; 10];
    overflowing.push(0x7f);
    out.push(("hint", "edge-overflowing-varint".into(), forged(&overflowing, 1)));
    out.push((
        "hint",
        "edge-overlong-varint".into(),
        forged(&[0x80, 0x00, 0, 1, 0, b'k'], 1),
    ));
    let huge_key = [2, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, b'k'];
    out.push(("hint", "edge-huge-key-len".into(), forged(&huge_key, 1)));
    let huge_value = [2, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, b'k'];
    out.push(("hint", "edge-huge-value-len".into(), forged(&huge_value, 1)));
    out.push(("hint", "edge-huge-count".into(), forged(&[], u64::MAX)));
    garbage("hint", out);
}

fn manifest_seeds(out: &mut Vec<Seed>) {
    let one = Manifest {
        generation: 1,
        next_file_id: 2,
        files: vec![1],
    };
    let compacted = Manifest {
        generation: 9,
        next_file_id: 9,
        files: vec![7, 8, 5],
    };
    let many = Manifest {
        generation: u64::MAX,
        next_file_id: u32::MAX,
        files: (0..200).map(|i| i * 3).collect(),
    };
    out.push(("manifest", "seed-one-file".into(), one.encode()));
    out.push(("manifest", "seed-compacted".into(), compacted.encode()));
    out.push(("manifest", "seed-many".into(), many.encode()));
    out.push((
        "manifest",
        "edge-truncated".into(),
        truncated(&compacted.encode()),
    ));
    let forged = |at: usize, bytes: &[u8]| {
        let mut b = compacted.encode();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        checksum::fix_manifest(&b)
    };
    out.push(("manifest", "edge-huge-count".into(), forged(12, &[0xff; 4])));
    out.push(("manifest", "edge-zero-count".into(), forged(12, &[0; 4])));
    out.push((
        "manifest",
        "edge-repeated-id".into(),
        forged(32, &7u32.to_le_bytes()),
    ));
    out.push((
        "manifest",
        "edge-id-not-below-next".into(),
        forged(24, &8u32.to_le_bytes()),
    ));
    garbage("manifest", out);
}

fn catalog_seeds(out: &mut Vec<Seed>) {
    let options = crate::options::samples();
    let mut log = encode_header(SALT).to_vec();
    let add = |r: CatalogRecord, log: &mut Vec<u8>| r.encode(SALT, log);
    add(CatalogRecord::NextId(3), &mut log);
    for (i, options) in options.into_iter().enumerate() {
        let id = 3 + i as u64;
        let name = format!("tenant é {i}");
        add(CatalogRecord::Create { id, name, options }, &mut log);
    }
    add(CatalogRecord::Drop { id: 4 }, &mut log);
    let name = "n".repeat(crate::name::MAX_NAME_LEN);
    let options = PartitionOptions::default();
    add(CatalogRecord::Create { id: 9, name, options }, &mut log);
    out.push(("catalog", "seed-valid".into(), log.clone()));
    out.push(("catalog", "edge-header-only".into(), encode_header(SALT).to_vec()));
    out.push(("catalog", "edge-torn-tail".into(), truncated(&log)));
    let mut zeros = log.clone();
    zeros.extend_from_slice(&[0; 40]);
    out.push(("catalog", "edge-zero-tail".into(), zeros));
    let mut huge = encode_header(SALT).to_vec();
    huge.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1]);
    out.push(("catalog", "edge-huge-len".into(), checksum::fix_catalog(&huge)));
    let mut twice = encode_header(SALT).to_vec();
    let create = CatalogRecord::Create {
        id: 2,
        name: "a".into(),
        options: PartitionOptions::default(),
    };
    add(create.clone(), &mut twice);
    add(create, &mut twice);
    add(CatalogRecord::Drop { id: 8 }, &mut twice);
    out.push(("catalog", "edge-create-twice".into(), twice));
    garbage("catalog", out);
}

fn name_seeds(out: &mut Vec<Seed>) {
    let names: [(&str, &[u8]); 14] = [
        ("plain", b"users"),
        ("unicode", "tenant é/日本".as_bytes()),
        ("dots", b".."),
        ("empty", b""),
        ("nul", b"a\0"),
        ("c1-control", "a\u{85}".as_bytes()),
        ("dir-name", b"00000000000000ff"),
        ("dir-name-upper", b"00000000000000FF"),
        ("data-file", b"00000042.data"),
        ("hint-file", b"00000042.hint"),
        ("manifest", b"MANIFEST"),
        ("temp", b"00000042.hint.tmp"),
        ("invalid-utf8", &[0xff, 0xfe, b'a']),
        ("overlong-utf8", &[0xc0, 0x80]),
    ];
    for (label, bytes) in names {
        out.push(("name", format!("seed-{label}"), bytes.to_vec()));
    }
    out.push(("name", "seed-longest".into(), "é".repeat(127).into_bytes()));
    out.push(("name", "edge-too-long".into(), vec![b'z'; 256]));
}

/// Every seed, as (target, file name, bytes).
fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    record_seeds(&mut out);
    hint_seeds(&mut out);
    manifest_seeds(&mut out);
    catalog_seeds(&mut out);
    name_seeds(&mut out);
    out
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// The generated files of a corpus directory (seeds and edge cases).
fn generated_in(target: &str) -> BTreeSet<String> {
    let Ok(dir) = std::fs::read_dir(corpus_dir(target)) else {
        return BTreeSet::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("seed-") || n.starts_with("edge-"))
        .collect()
}

#[test]
fn seed_corpus_is_current() {
    let write = std::env::var_os("CASKADE_WRITE_SEEDS").is_some_and(|v| v == "1");
    let all = seeds();
    for target in TARGETS {
        let dir = corpus_dir(target);
        let want: BTreeSet<String> = all
            .iter()
            .filter(|s| s.0 == target)
            .map(|s| s.1.clone())
            .collect();
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            for stale in generated_in(target).difference(&want) {
                std::fs::remove_file(dir.join(stale)).unwrap();
            }
        }
        assert_eq!(
            generated_in(target).union(&want).count(),
            want.len(),
            "{target}: stale seeds"
        );
    }
    for (target, name, bytes) in &all {
        let path = corpus_dir(target).join(name);
        if write {
            std::fs::write(&path, bytes).unwrap();
        }
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == *bytes,
            "{} differs from its generator: rerun with CASKADE_WRITE_SEEDS=1",
            path.display()
        );
    }
}

#[test]
fn valid_seeds_decode_and_edge_cases_do_not_panic() {
    for (target, name, bytes) in seeds() {
        let decoded = match target {
            "record" => super::decode_record(&bytes),
            "hint" => super::decode_hint(&bytes),
            "manifest" => super::decode_manifest(&bytes),
            "catalog" => super::decode_catalog(&bytes),
            _ => super::decode_name(&bytes),
        };
        if name.starts_with("seed-valid") {
            assert!(decoded > 0, "{target}/{name} did not decode");
        }
    }
}
