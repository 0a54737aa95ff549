//! Damage inside a sealed data file is reported as `Error::Corrupt` naming the
//! file and offset — at open when the file must be scanned, at `get` when its
//! hint is trusted — and never turns into a wrong value or a silent skip.

mod common;
use common::{copy_tree, open_small_files, partition_subdir};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use caskade::Error;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Data-file header and record-header sizes of the on-disk format
/// (see src/format/data_file.rs and src/format/record.rs).
const FILE_HEADER: usize = 32;
const RECORD_HEADER: usize = 25;

/// One record found by walking a data file: offset, length, key.
struct Rec {
    offset: usize,
    len: usize,
    key: Vec<u8>,
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// Walks an undamaged data file record by record (key_len at 17, value_len at 21).
fn records(bytes: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut at = FILE_HEADER;
    while at < bytes.len() {
        let (klen, vlen) = (u32_at(bytes, at + 17), u32_at(bytes, at + 21));
        let key = bytes[at + RECORD_HEADER..at + RECORD_HEADER + klen].to_vec();
        out.push(Rec {
            offset: at,
            len: RECORD_HEADER + klen + vlen,
            key,
        });
        at += RECORD_HEADER + klen + vlen;
    }
    assert_eq!(at, bytes.len(), "walk ends exactly at the end of the file");
    out
}

fn data_path(part: &Path, id: u32) -> PathBuf {
    part.join(format!("{id:08}.data"))
}

fn hint_path(part: &Path, id: u32) -> PathBuf {
    part.join(format!("{id:08}.hint"))
}

struct Fixture {
    _dir: tempfile::TempDir,
    template: PathBuf,
    /// The partition's directory, relative to the root.
    part: PathBuf,
    model: Model,
    /// Data file ids; the last is the active file.
    ids: Vec<u32>,
}

/// A closed database with several sealed files; every record is live (each
/// key is written once), so every record is what some `get` reads.
async fn fixture() -> caskade::Result<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("db");
    let db = open_small_files(&template).await?;
    let p = db.partition("p").await?;
    let mut model = Model::new();
    for i in 0..200u32 {
        let k = format!("key-{i:04}").into_bytes();
        let v = format!("value {i} {}", "#".repeat(40 + (i as usize * 7) % 90)).into_bytes();
        p.put(&k, &v).await?;
        model.insert(k, v);
    }
    let part = partition_subdir(&db, "p");
    db.close().await?;
    let ids: Vec<u32> = (1..)
        .take_while(|&id| data_path(&template.join(&part), id).exists())
        .collect();
    assert!(ids.len() >= 4, "need several sealed files, got {ids:?}");
    Ok(Fixture {
        _dir: dir,
        template,
        part,
        model,
        ids,
    })
}

impl Fixture {
    /// The partition's directory in the database at `root` (a copy).
    fn part_dir(&self, root: &Path) -> PathBuf {
        root.join(&self.part)
    }

    /// A fresh copy of the database, and the damaged record of its second data
    /// file (a sealed file) with the byte `pick` chooses within it flipped.
    fn damaged_copy(&self, pick: Pick) -> (tempfile::TempDir, u32, Rec, usize) {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&self.template, dir.path());
        let id = self.ids[1];
        let path = data_path(&self.part_dir(dir.path()), id);
        let mut bytes = std::fs::read(&path).unwrap();
        let mut recs = records(&bytes);
        let rec = recs.swap_remove(recs.len() / 2);
        let flip = rec.offset + pick(&rec);
        assert!(flip < rec.offset + rec.len);
        bytes[flip] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        (dir, id, rec, flip)
    }
}

/// Chooses the byte to flip, as an offset within a record.
type Pick = fn(&Rec) -> usize;

/// Bytes flipped inside a record: in the header (seq), the key, the value.
fn picks() -> [(&'static str, Pick); 3] {
    [
        ("header", |_| 10),
        ("key", |r| RECORD_HEADER + r.key.len() / 2),
        ("value", |r| {
            RECORD_HEADER + r.key.len() + (r.len - RECORD_HEADER - r.key.len()) / 2
        }),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_record_without_hint_fails_the_open() -> caskade::Result<()> {
    let fx = fixture().await?;
    for (what, pick) in picks() {
        let (dir, id, rec, flip) = fx.damaged_copy(pick);
        let pdir = fx.part_dir(dir.path());
        std::fs::remove_file(hint_path(&pdir, id)).unwrap();
        let damaged = std::fs::read(data_path(&pdir, id)).unwrap();

        let db = open_small_files(dir.path()).await?;
        for attempt in 0..2 {
            match db.partition("p").await {
                Err(Error::Corrupt { file, offset, .. }) => {
                    assert_eq!(file, data_path(&pdir, id), "{what}: the damaged file is named");
                    let offset = offset as usize;
                    assert!(
                        (rec.offset..=flip).contains(&offset),
                        "{what}: offset {offset} not within [{}, {flip}]",
                        rec.offset
                    );
                }
                other => panic!("{what}, attempt {attempt}: expected Corrupt, got {other:?}"),
            }
        }
        db.close().await?;
        // Nothing was repaired, truncated or hinted behind the user's back.
        assert_eq!(std::fs::read(data_path(&pdir, id)).unwrap(), damaged, "{what}");
        assert!(
            !hint_path(&pdir, id).exists(),
            "{what}: no hint for a corrupt file"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_record_with_hint_fails_only_its_get() -> caskade::Result<()> {
    let fx = fixture().await?;
    for (what, pick) in picks() {
        let (dir, id, rec, _) = fx.damaged_copy(pick);
        let pdir = fx.part_dir(dir.path());
        let db = open_small_files(dir.path()).await?;
        // The hint is trusted for locations, so the open does not read the record.
        let p = db.partition("p").await?;
        for (k, v) in &fx.model {
            let got = p.get(k).await;
            if *k == rec.key {
                match got {
                    Err(Error::Corrupt { file, offset, .. }) => {
                        assert_eq!(file, data_path(&pdir, id), "{what}");
                        assert_eq!(offset, rec.offset as u64, "{what}: the record's offset");
                    }
                    other => panic!("{what}: expected Corrupt for the damaged key, got {other:?}"),
                }
            } else {
                assert_eq!(got?.as_deref(), Some(&v[..]), "{what}: key {k:?}");
            }
        }
        let snap = p.snapshot().await.unwrap();
        let errors = snap.iter().filter(Result::is_err).count();
        assert_eq!(
            (snap.len(), errors),
            (fx.model.len(), 1),
            "{what}: snapshot iteration"
        );
        // Damage in a sealed file does not stop the partition from writing.
        p.put("new", "write").await?;
        assert_eq!(p.get("new").await?.as_deref(), Some(&b"write"[..]));
        db.close().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_data_file_header_fails_the_open() -> caskade::Result<()> {
    let fx = fixture().await?;
    let active = *fx.ids.last().unwrap();
    // (file, byte of its 32-byte header, remove its hint): magic, version,
    // file id, salt, header CRC; sealed with and without hint; the active file.
    let cases = [
        (fx.ids[1], 0, false),
        (fx.ids[1], 9, false),
        (fx.ids[1], 13, false),
        (fx.ids[1], 20, false),
        (fx.ids[1], 29, false),
        (fx.ids[2], 17, true),
        (active, 18, false),
    ];
    for (id, byte, remove_hint) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&fx.template, dir.path());
        let pdir = fx.part_dir(dir.path());
        let path = data_path(&pdir, id);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[byte] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        if remove_hint {
            std::fs::remove_file(hint_path(&pdir, id)).unwrap();
        }
        let db = open_small_files(dir.path()).await?;
        match db.partition("p").await {
            Err(Error::Corrupt { file, offset, .. }) => {
                assert_eq!((file, offset), (path.clone(), 0), "file {id} byte {byte}");
            }
            other => panic!("file {id} byte {byte}: expected Corrupt, got {other:?}"),
        }
        db.close().await?;
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "file {id} left as it was");
    }
    Ok(())
}
