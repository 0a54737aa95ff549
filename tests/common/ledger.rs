//! The ledger: every write set a test applied, where its records ended up
//! (data file id and end offset, observed on the disk after the write), and
//! the state each partition must hold after any prefix of that history.
//! The sweeps derive every expectation from it instead of hard-coding one.
//!
//! Also an independent decoder of the few on-disk facts the sweeps need
//! (manifest file list, record boundaries of a data file), written from the
//! layouts documented in `src/format/` and cross-checked against what the
//! ledger observed, so a change of format fails loudly here.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use caskade::{Partition, SimDisk};

/// A partition's contents: key → value.
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// Data-file header length (src/format/data_file.rs).
pub const FILE_HEADER: u64 = 32;
/// Record header length (src/format/record.rs): key_len at 17, value_len at 21.
pub const RECORD_HEADER: u64 = 25;

/// One write of a write set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

impl Op {
    /// A put of UTF-8 key and value.
    pub fn put(k: impl AsRef<[u8]>, v: impl AsRef<[u8]>) -> Op {
        Op::Put(k.as_ref().to_vec(), v.as_ref().to_vec())
    }

    /// A delete.
    pub fn del(k: impl AsRef<[u8]>) -> Op {
        Op::Delete(k.as_ref().to_vec())
    }

    fn key(&self) -> &[u8] {
        match self {
            Op::Put(k, _) | Op::Delete(k) => k,
        }
    }

    fn apply(&self, state: &mut State) {
        match self {
            Op::Put(k, v) => state.insert(k.clone(), v.clone()),
            Op::Delete(k) => state.remove(k),
        };
    }
}

/// Where a write set's records end: in data file `file`, at offset `end`
/// (the end of the previous one if it wrote nothing, e.g. a lone delete of
/// an absent key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub file: u32,
    pub end: u64,
}

/// A loss recovery declared: data file `file` was cut at offset `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub file: u32,
    pub at: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    partition: String,
    ops: Vec<Op>,
    place: Place,
}

/// The history of write sets, in the order they were acknowledged.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    entries: Vec<Entry>,
}

impl Ledger {
    /// Applies `ops` to `p` (one op alone, several as one atomic batch),
    /// then records where its records landed by reading the partition's
    /// manifest and active file in `dir` on `disk`.
    pub async fn write(
        &mut self,
        disk: &SimDisk,
        dir: &Path,
        name: &str,
        p: &Partition,
        ops: Vec<Op>,
    ) -> caskade::Result<()> {
        match &ops[..] {
            [Op::Put(k, v)] => p.put(k, v).await?,
            [Op::Delete(k)] => drop(p.delete(k).await?),
            _ => {
                let mut b = p.batch();
                for op in &ops {
                    match op {
                        Op::Put(k, v) => b.put(k, v),
                        Op::Delete(k) => b.delete(k),
                    };
                }
                b.commit().await?;
            }
        }
        let file = *manifest_files(disk, dir)
            .last()
            .expect("a manifest lists the active file");
        let end = disk
            .read_file(data_path(dir, file))
            .expect("the active file exists")
            .len() as u64;
        self.entries.push(Entry {
            partition: name.to_owned(),
            ops,
            place: Place { file, end },
        });
        Ok(())
    }

    /// The state of partition `name` after the whole history.
    pub fn state(&self, name: &str) -> State {
        self.state_cut(name, None)
    }

    /// The state of `name` if its data file `cut.file` was cut at `cut.at`:
    /// every write set up to the first one that does not lie wholly before
    /// the cut (a batch counts only whole).
    pub fn state_cut(&self, name: &str, cut: Option<Cut>) -> State {
        let mut state = State::new();
        for e in self.entries.iter().filter(|e| e.partition == name) {
            if cut.is_some_and(|c| e.place.file == c.file && e.place.end > c.at) {
                break;
            }
            e.ops.iter().for_each(|op| op.apply(&mut state));
        }
        state
    }

    /// The end of the valid prefix of `file` cut at `at`: the end of the
    /// last write set of `name` in that file lying wholly before `at`, or
    /// the file header.
    pub fn valid_end(&self, name: &str, file: u32, at: u64) -> u64 {
        self.places(name, file)
            .into_iter()
            .map(|p| p.end)
            .filter(|&end| end <= at)
            .max()
            .unwrap_or(FILE_HEADER)
    }

    /// Every key `name` was ever written under.
    pub fn universe(&self, name: &str) -> BTreeSet<Vec<u8>> {
        let ops = self.entries.iter().filter(|e| e.partition == name);
        ops.flat_map(|e| e.ops.iter().map(|op| op.key().to_vec()))
            .collect()
    }

    /// The places of the write sets of `name` in data file `file`.
    pub fn places(&self, name: &str, file: u32) -> Vec<Place> {
        let entries = self.entries.iter().filter(|e| e.partition == name);
        entries.map(|e| e.place).filter(|p| p.file == file).collect()
    }

    /// The data files `name`'s writes went to, in order.
    pub fn files(&self, name: &str) -> Vec<u32> {
        let mut files: Vec<u32> = Vec::new();
        for e in self.entries.iter().filter(|e| e.partition == name) {
            if files.last() != Some(&e.place.file) {
                files.push(e.place.file);
            }
        }
        files
    }

    /// Checks the ledger against an independent walk of the data files in
    /// `dir`: every write set ends on a record boundary of its file.
    pub fn verify_places(&self, disk: &SimDisk, dir: &Path, name: &str) {
        for file in self.files(name) {
            let bytes = disk.read_file(data_path(dir, file)).expect("data file");
            let ends: BTreeSet<u64> = records(&bytes).iter().map(|r| r.offset + r.len).collect();
            for p in self.places(name, file) {
                assert!(
                    p.end == FILE_HEADER || ends.contains(&p.end),
                    "{name}: write set ending at {} of file {file} is not on a record boundary",
                    p.end
                );
            }
        }
    }
}

/// The path of data file `id` in `dir`.
pub fn data_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.data"))
}

/// The path of hint file `id` in `dir`.
pub fn hint_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.hint"))
}

/// The file ids the manifest in `dir` lists (the last is the active file),
/// decoded independently of the engine (magic, version, count at 12, ids
/// from 28, CRC32 last).
pub fn manifest_files(disk: &SimDisk, dir: &Path) -> Vec<u32> {
    let b = disk.read_file(dir.join("MANIFEST")).expect("a manifest");
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    assert!(b.len() >= 36 && &b[..8] == b"CASKMANI", "not a manifest");
    let count = u32_at(12) as usize;
    assert_eq!(b.len(), 28 + 4 * count + 4, "manifest length");
    assert_eq!(
        u32_at(b.len() - 4),
        crc32fast::hash(&b[..b.len() - 4]),
        "manifest CRC"
    );
    (0..count).map(|i| u32_at(28 + 4 * i)).collect()
}

/// One record found by walking an undamaged data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub offset: u64,
    pub len: u64,
    pub key: Vec<u8>,
}

/// Walks an undamaged data file record by record.
pub fn records(bytes: &[u8]) -> Vec<Rec> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
    let mut out = Vec::new();
    let mut at = FILE_HEADER;
    while at < bytes.len() as u64 {
        let (klen, vlen) = (u32_at(at as usize + 17), u32_at(at as usize + 21));
        let key_at = (at + RECORD_HEADER) as usize;
        out.push(Rec {
            offset: at,
            len: RECORD_HEADER + klen + vlen,
            key: bytes[key_at..key_at + klen as usize].to_vec(),
        });
        at += RECORD_HEADER + klen + vlen;
    }
    assert_eq!(at, bytes.len() as u64, "walk ends at the end of the file");
    out
}

/// The loss recovery declared in partition directory `dir`: a kept copy
/// `<id>.data.dropped-<offset>-<n>` of bytes cut from data file `id`.
pub fn declared_cut(disk: &SimDisk, dir: &Path) -> Option<Cut> {
    let mut cuts = disk.list_files().into_iter().filter_map(|path| {
        let name = path.strip_prefix(dir).ok()?.to_str()?.to_owned();
        let (stem, rest) = name.split_once(".data.dropped-")?;
        let (at, _n) = rest.split_once('-')?;
        Some(Cut {
            file: stem.parse().ok()?,
            at: at.parse().ok()?,
        })
    });
    let first = cuts.next();
    first.map(|c| cuts.fold(c, |a, b| if b.at < a.at { b } else { a }))
}

/// How a state read back differs from the one expected.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    /// A key holds a value other than the expected one.
    pub wrong: usize,
    /// A key that should hold a value is not found.
    pub lost: usize,
    /// A key that should be absent (deleted or never written) has a value.
    pub resurrected: usize,
    /// The first difference, for the failure message.
    pub first: Option<String>,
}

impl Diff {
    /// Compares `got` with `want`, key by key.
    pub fn of(want: &State, got: &State) -> Diff {
        let mut d = Diff::default();
        let keys: BTreeSet<&Vec<u8>> = want.keys().chain(got.keys()).collect();
        for k in keys {
            d.read(k, want.get(k).map(Vec::as_slice), got.get(k).map(Vec::as_slice));
        }
        d
    }

    /// Records one read of `key`: `want` expected, `got` returned.
    pub fn read(&mut self, key: &[u8], want: Option<&[u8]>, got: Option<&[u8]>) {
        let counter = match (want, got) {
            (Some(w), Some(g)) if w == g => return,
            (None, None) => return,
            (Some(_), Some(_)) => &mut self.wrong,
            (Some(_), None) => &mut self.lost,
            (None, Some(_)) => &mut self.resurrected,
        };
        *counter += 1;
        if self.first.is_none() {
            let show = |v: Option<&[u8]>| v.map(|v| String::from_utf8_lossy(v).into_owned());
            self.first = Some(format!(
                "key {:?}: expected {:?}, got {:?}",
                String::from_utf8_lossy(key),
                show(want),
                show(got)
            ));
        }
    }

    /// Adds `other`'s counts (keeping the first difference seen).
    pub fn add(&mut self, other: Diff) {
        self.wrong += other.wrong;
        self.lost += other.lost;
        self.resurrected += other.resurrected;
        if self.first.is_none() {
            self.first = other.first;
        }
    }

    /// Whether nothing differed.
    pub fn is_clean(&self) -> bool {
        self.wrong + self.lost + self.resurrected == 0
    }
}

/// The salt of a data file, from its header (bytes 16..24).
pub fn file_salt(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[16..24].try_into().unwrap())
}

/// A record encoded independently of the engine (src/format/record.rs):
/// header CRC over salt and bytes 4..25, body CRC over salt, bytes 8..25,
/// key and value; seq at 8, flags at 16, key and value lengths at 17, 21.
/// With the right salt it is a valid record of that file: hostile input.
pub fn forge_record(salt: u64, seq: u64, flags: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; 8];
    r.extend_from_slice(&seq.to_le_bytes());
    r.push(flags);
    r.extend_from_slice(&(key.len() as u32).to_le_bytes());
    r.extend_from_slice(&(value.len() as u32).to_le_bytes());
    let crc = |parts: &[&[u8]]| {
        let mut h = crc32fast::Hasher::new();
        parts.iter().for_each(|p| h.update(p));
        h.finalize()
    };
    let salt = salt.to_le_bytes();
    let body = crc(&[&salt, &r[8..], key, value]);
    r[4..8].copy_from_slice(&body.to_le_bytes());
    let head = crc(&[&salt, &r[4..]]);
    r[..4].copy_from_slice(&head.to_le_bytes());
    r.extend_from_slice(key);
    r.extend_from_slice(value);
    r
}
