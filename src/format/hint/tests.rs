//! Unit and property tests of the hint-file encoding.
use super::*;
use proptest::prelude::*;

const DATA_START: u64 = data_file::HEADER_LEN as u64;

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

/// A hint of data file 3 (salt 99, length `data_len`) with raw entry
/// bytes and a given count, both checksums right: for the decoder's own
/// checks, behind the CRC.
fn forge(version: u32, entries: &[u8], count: u64, data_len: u64) -> Vec<u8> {
    let mut b = HintWriter::new(3, data_len, 99).buf;
    b[8..12].copy_from_slice(&version.to_le_bytes());
    let crc = crc_of(&[&b[..36]]);
    b[36..40].copy_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(entries);
    b.extend_from_slice(&count.to_le_bytes());
    let crc = crc_of(&[&b]);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Pushes `(seq, flags, key, record_len)` entries contiguously; returns
/// the hint and the data length it covers.
fn build(entries: &[(u64, u8, Vec<u8>, u32)]) -> (Vec<u8>, u64) {
    let mut w = HintWriter::new(3, 0, 99);
    let mut offset = DATA_START;
    for (seq, flags, key, record_len) in entries {
        w.push(&HintEntry {
            seq: *seq,
            flags: *flags,
            offset,
            record_len: *record_len,
            key,
        });
        offset += u64::from(*record_len);
    }
    (w.with_data_len(offset).finish(), offset)
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
    let mut got = Vec::new();
    let n = read(&b, 3, len, 99, 64, |e| {
        got.push((e.seq, e.flags, e.offset, e.record_len, e.key.to_vec()))
    })
    .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        got,
        vec![
            (1, 0, 32, 40, b"alpha".to_vec()),
            (2, 1, 72, 30, b"beta".to_vec())
        ]
    );
}

#[test]
fn empty_hint_round_trips() {
    let b = HintWriter::new(3, DATA_START, 99).finish();
    assert_eq!(b.len(), HEADER_LEN + TRAILER_LEN);
    assert_eq!(read(&b, 3, DATA_START, 99, 64, |_| panic!()), Ok(0));
    assert!(read(&b, 3, DATA_START + 1, 99, 64, |_| panic!()).is_err());
}

#[test]
fn mismatches_and_damage_rejected_before_any_entry() {
    let (b, len) = sample();
    assert!(read(&b, 4, len, 99, 64, |_| panic!()).is_err());
    assert!(read(&b, 3, len + 1, 99, 64, |_| panic!()).is_err());
    assert!(read(&b, 3, len, 98, 64, |_| panic!()).is_err());
    // Keys longer than the reader's limit.
    assert!(read(&b, 3, len, 99, 4, |_| panic!()).is_err());
    for i in 0..b.len() {
        for bit in 0..8 {
            let mut bad = b.clone();
            bad[i] ^= 1 << bit;
            assert!(
                read(&bad, 3, len, 99, 64, |_| panic!()).is_err(),
                "byte {i} bit {bit}"
            );
        }
    }
    for cut in 0..b.len() {
        assert!(
            read(&b[..cut], 3, len, 99, 64, |_| panic!()).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn other_versions_rejected() {
    // The sample's entries, under a header of another version with
    // checksums that verify.
    let (b, len) = sample();
    let entries = &b[HEADER_LEN..b.len() - TRAILER_LEN];
    assert_eq!(
        read(&forge(HINT_VERSION, entries, 2, len), 3, len, 99, 64, |_| {}),
        Ok(2)
    );
    for version in [0, 1, crate::format::FORMAT_VERSION, HINT_VERSION + 1] {
        if version == HINT_VERSION {
            continue;
        }
        let old = forge(version, entries, 2, len);
        assert_eq!(
            read(&old, 3, len, 99, 64, |_| panic!()),
            Err(FormatError("unsupported hint version"))
        );
    }
}

#[test]
fn hostile_entries_rejected_behind_a_good_checksum() {
    // One entry for key "k" (record of 26 bytes): delta 1, flags, key_len, value_len, key.
    let good = [2u8, 0, 1, 0, b'k'];
    let len = DATA_START + 26;
    assert_eq!(
        read(&forge(HINT_VERSION, &good, 1, len), 3, len, 99, 64, |_| {}),
        Ok(1)
    );
    let cases: &[(&str, &[u8], u64)] = &[
        ("overlong seq varint", &[0x82, 0x00, 0, 1, 0, b'k'], len),
        ("overlong key_len", &[2, 0, 0x81, 0x00, 0, b'k'], len),
        ("overlong value_len", &[2, 0, 1, 0x80, 0x00, b'k'], len),
        ("seq varint past the end", &[0x82], len),
        ("seq varint of 11 bytes", &[0xff; 11], len),
        (
            "seq varint overflowing u64",
            &[
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 1, 0, b'k',
            ],
            len,
        ),
        ("flags missing", &[2], len),
        ("key_len missing", &[2, 0], len),
        ("key_len past the end", &[2, 0, 0x81], len),
        ("value_len missing", &[2, 0, 1], len),
        ("key_len zero", &[2, 0, 0, 1], DATA_START + 26),
        ("key_len above max", &[2, 0, 65, 0], DATA_START + 25 + 65),
        (
            "key_len overflowing u32",
            &[2, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0],
            len,
        ),
        ("key cut short", &[2, 0, 3, 0, b'k'], DATA_START + 28),
        (
            "value_len overflowing u32",
            &[2, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x10, b'k'],
            len,
        ),
        (
            "record_len overflowing u32",
            &[2, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, b'k'],
            len,
        ),
        ("record past the data file", &[2, 0, 1, 1, b'k'], len),
        ("trailing garbage", &[2, 0, 1, 0, b'k', 0], len),
    ];
    for &(what, entries, data_len) in cases {
        for count in [0, 1, 2] {
            let b = forge(HINT_VERSION, entries, count, data_len);
            assert!(read(&b, 3, data_len, 99, 64, |_| panic!()).is_err(), "{what}");
        }
    }
}

#[test]
fn seqs_wrap_around() {
    let max = record::MAX_SEQ;
    let entries = vec![
        (max, 0, b"a".to_vec(), 26),
        (0, 0, b"b".to_vec(), 26),
        (max, 0, b"c".to_vec(), 26),
        (1 << 62, 1, b"d".to_vec(), 26),
        (max - 1, 2, b"e".to_vec(), 26),
        (7, 3, b"f".to_vec(), u32::MAX),
    ];
    let (b, len) = build(&entries);
    let mut got = Vec::new();
    read(&b, 3, len, 99, 64, |e| {
        got.push((e.seq, e.flags, e.key.to_vec(), e.record_len))
    })
    .unwrap();
    assert_eq!(got, entries);
}

#[test]
fn seqs_above_the_maximum_are_rejected() {
    for seq in [record::MAX_SEQ + 1, u64::MAX] {
        let (b, len) = build(&[(1, 0, b"a".to_vec(), 26), (seq, 0, b"b".to_vec(), 26)]);
        assert!(read(&b, 3, len, 99, 64, |_| panic!()).is_err(), "seq {seq}");
    }
}

#[test]
fn entry_is_compact() {
    // A 16-byte key, a 100-byte value (a 141-byte record), consecutive seqs.
    let key = [7u8; 16];
    let entries = |n: u64| -> Vec<(u64, u8, Vec<u8>, u32)> {
        (0..n).map(|i| (1000 + i, 0, key.to_vec(), 141)).collect()
    };
    const N: u64 = 1000;
    let (small, _) = build(&entries(10));
    let (large, len) = build(&entries(10 + N));
    let grown = (large.len() - small.len()) as u64;
    assert!(grown <= 22 * N, "{grown} bytes for {N} entries");
    // seq delta 1, flags 1, key_len 1, value_len 1, key 16.
    assert_eq!(grown, 20 * N);
    assert_eq!(read(&large, 3, len, 99, 64, |_| {}), Ok(10 + N));
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "contiguous")]
fn non_contiguous_push_panics_in_debug() {
    let mut w = HintWriter::new(3, 0, 99);
    w.push(&HintEntry {
        seq: 1,
        flags: 0,
        offset: DATA_START + 1,
        record_len: 40,
        key: b"alpha",
    });
}

#[test]
#[cfg(not(debug_assertions))]
fn non_contiguous_push_makes_a_rejected_hint() {
    let mut w = HintWriter::new(3, 0, 99);
    w.push(&HintEntry {
        seq: 1,
        flags: 0,
        offset: DATA_START + 1,
        record_len: 40,
        key: b"alpha",
    });
    let b = w.with_data_len(DATA_START + 40).finish();
    assert!(read(&b, 3, DATA_START + 40, 99, 64, |_| panic!()).is_err());
    assert!(read(&b, 3, DATA_START + 41, 99, 64, |_| panic!()).is_err());
}

const MAX_KEY: usize = 300;

fn seq() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..=record::MAX_SEQ,
        0..64u64,
        (record::MAX_SEQ - 64)..=record::MAX_SEQ,
        (1u64 << 62) - 32..(1u64 << 62) + 32,
    ]
}

fn entry() -> impl Strategy<Value = (u64, u8, Vec<u8>, u32)> {
    (
        seq(),
        any::<u8>(),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..=16),
            proptest::collection::vec(any::<u8>(), 1..=MAX_KEY),
            proptest::collection::vec(any::<u8>(), MAX_KEY..=MAX_KEY),
        ],
        prop_oneof![0..200u32, any::<u32>()],
    )
        .prop_map(|(seq, flags, key, value_len)| {
            let fixed = (record::HEADER_LEN + key.len()) as u32;
            let record_len = fixed.saturating_add(value_len);
            (seq, flags, key, record_len)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_entries_round_trip(
        mut entries in proptest::collection::vec(entry(), 0..40),
        ascending in any::<bool>(),
    ) {
        if ascending {
            // The common case: increasing seqs (small deltas).
            let base = entries.first().map_or(0, |e| e.0 % 1_000_000);
            for (i, e) in entries.iter_mut().enumerate() {
                e.0 = base + i as u64;
            }
        }
        let (b, len) = build(&entries);
        let mut got = Vec::new();
        let mut next = DATA_START;
        let n = read(&b, 3, len, 99, MAX_KEY, |e| {
            assert_eq!(e.offset, next);
            next += u64::from(e.record_len);
            got.push((e.seq, e.flags, e.key.to_vec(), e.record_len));
        });
        prop_assert_eq!(n, Ok(entries.len() as u64));
        prop_assert_eq!(got, entries);
        // Never larger than the data it describes, plus header and trailer.
        prop_assert!(b.len() as u64 <= len + 64);
    }

    #[test]
    fn random_damage_never_panics(
        entries in proptest::collection::vec(entry(), 1..8),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let (b, len) = build(&entries);
        let entry_bytes = &b[HEADER_LEN..b.len() - TRAILER_LEN];
        let mut bad = entry_bytes.to_vec();
        let i = at.index(bad.len());
        prop_assume!(bad[i] != byte);
        bad[i] = byte;
        // Behind a good checksum: only the decoder's checks stand.
        let forged = forge(HINT_VERSION, &bad, entries.len() as u64, len);
        let mut calls = 0;
        if read(&forged, 3, len, 99, MAX_KEY, |_| calls += 1).is_err() {
            prop_assert_eq!(calls, 0);
        }
        // With the real checksum, always rejected.
        let mut raw = b.clone();
        raw[HEADER_LEN + i] = byte;
        prop_assert!(read(&raw, 3, len, 99, MAX_KEY, |_| panic!()).is_err());
    }
}
