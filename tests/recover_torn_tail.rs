//! Recovery of a torn active file: every prefix recovers exactly the records it
//! fully holds (a batch only whole), and bytes after the valid end (zeros,
//! garbage, damaged or foreign records) are dropped and truncated away.

mod common;
use common::copy_tree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use caskade::Db;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Data-file header and record-header sizes of the on-disk format
/// (see src/format/data_file.rs and src/format/record.rs).
const FILE_HEADER: u64 = 32;
const RECORD_HEADER: u64 = 25;
const ACTIVE: &str = "partitions/p/00000001.data";
/// A key no write set touches; used by the foreign record.
const FORGED: &str = "forged";

enum Op {
    Put(&'static str, &'static str),
    Del(&'static str),
}
use Op::{Del, Put};

/// The write sets appended to the active file, in order; a set of more than
/// one op is an atomic batch. Lone deletes only target present keys (a lone
/// delete of an absent key writes nothing).
fn write_sets() -> Vec<Vec<Op>> {
    vec![
        vec![Put("a", "1")],
        vec![Put("b", "")],
        vec![Put("c", "ccc")],
        vec![Put("d", "dd"), Put("a", "a-two"), Del("b")],
        vec![Del("c")],
        vec![Put("e", "a longer value of forty bytes or so.....")],
        vec![Del("a"), Put("c", "c3")],
        vec![Put("f", "ffff")],
        vec![Put("g", "g"), Del("zz"), Put("h", "hh")],
        vec![Put("a", "a4")],
        vec![Del("d")],
        vec![
            Put("b", "b5"),
            Put("e", "e5"),
            Put("f", ""),
            Put("i", "iii"),
            Del("h"),
        ],
        vec![Put("j", "j1")],
        vec![Put("j", "j2")],
        vec![Del("e")],
        vec![Put("k", "k"), Put("l", "ll")],
        vec![Put("m", "")],
        vec![Del("m")],
        vec![Put("n", "n")],
        vec![Put("o", "o"), Del("a"), Put("p", "last")],
    ]
}

fn record_len(op: &Op) -> u64 {
    RECORD_HEADER
        + match op {
            Put(k, v) => (k.len() + v.len()) as u64,
            Del(k) => k.len() as u64,
        }
}

fn apply(model: &mut Model, op: &Op) {
    match op {
        Put(k, v) => model.insert(k.as_bytes().to_vec(), v.as_bytes().to_vec()),
        Del(k) => model.remove(k.as_bytes()),
    };
}

struct Fixture {
    _dir: tempfile::TempDir,
    /// A closed database whose partition `p` holds every write set.
    template: PathBuf,
    /// The active file's bytes.
    bytes: Vec<u8>,
    /// `(end offset, model)` after each write set, starting with the empty file.
    states: Vec<(u64, Model)>,
    /// Every key ever used.
    universe: Vec<Vec<u8>>,
}

async fn fixture() -> caskade::Result<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("db");
    let db = Db::open(&template).await?;
    let p = db.partition("p").await?;
    let mut model = Model::new();
    let mut end = FILE_HEADER;
    let mut states = vec![(end, model.clone())];
    for set in write_sets() {
        if let [op] = &set[..] {
            match op {
                Put(k, v) => p.put(k, v).await?,
                Del(k) => assert!(p.delete(k).await?, "lone delete of absent {k}"),
            }
        } else {
            let mut b = p.batch();
            for op in &set {
                match op {
                    Put(k, v) => b.put(k, v),
                    Del(k) => b.delete(k),
                };
            }
            b.commit().await?;
        }
        set.iter().for_each(|op| apply(&mut model, op));
        end += set.iter().map(record_len).sum::<u64>();
        states.push((end, model.clone()));
    }
    // Another partition (another file, another salt) whose last record puts
    // FORGED at a sequence number above every one of `p`.
    let other = db.partition("other").await?;
    for i in 0..40 {
        other.put(format!("x{i}"), "filler").await?;
    }
    other.put(FORGED, "from another file").await?;
    db.close().await?;

    let bytes = std::fs::read(template.join(ACTIVE)).unwrap();
    assert_eq!(bytes.len() as u64, end, "records laid out as the format says");
    assert!(states.len() > 20 && end > 600, "enough records to be meaningful");
    let mut universe: Vec<Vec<u8>> = write_sets()
        .iter()
        .flatten()
        .map(|op| match op {
            Put(k, _) | Del(k) => k.as_bytes().to_vec(),
        })
        .collect();
    universe.push(FORGED.as_bytes().to_vec());
    universe.sort();
    universe.dedup();
    Ok(Fixture {
        _dir: dir,
        template,
        bytes,
        states,
        universe,
    })
}

impl Fixture {
    fn full_state(&self) -> (u64, Model) {
        self.states.last().unwrap().clone()
    }

    /// The last record of the other partition's data file.
    fn foreign_record(&self) -> Vec<u8> {
        let other = std::fs::read(self.template.join("partitions/other/00000001.data")).unwrap();
        let len = (RECORD_HEADER as usize) + FORGED.len() + "from another file".len();
        other[other.len() - len..].to_vec()
    }
}

/// Restores a copy of the template whose active file holds `active`, opens
/// it, and checks the recovered state and the truncated file length.
async fn check_recovery(
    template: &Path,
    universe: &[Vec<u8>],
    active: &[u8],
    want: &Model,
    want_len: u64,
    what: &str,
) -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    copy_tree(template, &root);
    std::fs::write(root.join(ACTIVE), active).unwrap();

    let db = Db::open(&root).await?;
    let p = db.partition("p").await?;
    for k in universe {
        let got = p.get(k).await?.map(|b| b.to_vec());
        assert_eq!(
            got.as_ref(),
            want.get(k),
            "{what}: key {:?}",
            String::from_utf8_lossy(k)
        );
    }
    assert_eq!(p.snapshot().len(), want.len(), "{what}: live key count");
    let len = std::fs::metadata(root.join(ACTIVE)).unwrap().len();
    assert_eq!(len, want_len, "{what}: active file truncated to its valid prefix");
    db.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_truncation_recovers_the_complete_prefix() -> caskade::Result<()> {
    let fx = Arc::new(fixture().await?);
    let mut tasks = tokio::task::JoinSet::new();
    for cut in FILE_HEADER..=fx.bytes.len() as u64 {
        // The longest prefix of whole write sets the cut keeps: a batch counts
        // only if its last record is complete.
        let (end, model) = fx
            .states
            .iter()
            .rev()
            .find(|(end, _)| *end <= cut)
            .unwrap()
            .clone();
        let fx = Arc::clone(&fx);
        tasks.spawn(async move {
            let what = format!("cut at {cut}");
            let prefix = &fx.bytes[..cut as usize];
            check_recovery(&fx.template, &fx.universe, prefix, &model, end, &what).await
        });
        if tasks.len() >= 8 {
            tasks.join_next().await.unwrap().unwrap()?;
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap()?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn trailing_zeros_are_dropped() -> caskade::Result<()> {
    let fx = fixture().await?;
    let (end, model) = fx.full_state();
    for n in [1, 24, 25, 26, 300] {
        let mut bytes = fx.bytes.clone();
        bytes.resize(bytes.len() + n, 0);
        let what = format!("{n} zero bytes appended");
        check_recovery(&fx.template, &fx.universe, &bytes, &model, end, &what).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn trailing_garbage_is_dropped() -> caskade::Result<()> {
    let fx = fixture().await?;
    let (end, model) = fx.full_state();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for n in [7, 25, 64, 500] {
        let mut bytes = fx.bytes.clone();
        bytes.extend((0..n).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        }));
        let what = format!("{n} random bytes appended");
        check_recovery(&fx.template, &fx.universe, &bytes, &model, end, &what).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bit_flipped_copy_of_the_last_record_is_dropped() -> caskade::Result<()> {
    let fx = fixture().await?;
    let (end, model) = fx.full_state();
    let last_start = fx.bytes.len() - record_len(write_sets().last().unwrap().last().unwrap()) as usize;
    let last = &fx.bytes[last_start..];
    // Unchanged, the copy would be a valid record of this file; one flipped
    // bit anywhere in it (header, key or value) must make it invalid.
    for i in 0..last.len() {
        let mut copy = last.to_vec();
        copy[i] ^= 1 << (i % 8);
        let bytes = [&fx.bytes[..], &copy].concat();
        let what = format!("copy of the last record with byte {i} flipped appended");
        check_recovery(&fx.template, &fx.universe, &bytes, &model, end, &what).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn record_from_another_file_is_dropped() -> caskade::Result<()> {
    let fx = fixture().await?;
    let (end, model) = fx.full_state();
    let foreign = fx.foreign_record();
    assert_eq!(
        &foreign[RECORD_HEADER as usize..][..FORGED.len()],
        FORGED.as_bytes()
    );
    let bytes = [&fx.bytes[..], &foreign].concat();
    check_recovery(&fx.template, &fx.universe, &bytes, &model, end, "foreign record").await?;

    // After recovery the partition appends at the valid end: a new write and
    // the old state survive one more reopen, and the foreign key never appears.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    copy_tree(&fx.template, &root);
    std::fs::write(root.join(ACTIVE), &bytes).unwrap();
    let db = Db::open(&root).await?;
    db.partition("p").await?.put("after", "recovery").await?;
    db.close().await?;
    let mut want = model.clone();
    want.insert(b"after".to_vec(), b"recovery".to_vec());
    let mut universe = fx.universe.clone();
    universe.push(b"after".to_vec());
    let want_len = end + RECORD_HEADER + 5 + 8;
    let recovered = std::fs::read(root.join(ACTIVE)).unwrap();
    assert_eq!(
        &recovered[..end as usize],
        &fx.bytes[..],
        "valid prefix kept byte for byte"
    );
    check_recovery(&root, &universe, &recovered, &want, want_len, "after a write").await
}

/// A damaged record in the middle of the active file ends the valid prefix
/// like a torn tail does, but recovery never destroys the bytes it drops: it
/// keeps a durable copy next to the data file before truncating.
#[tokio::test]
async fn dropped_bytes_are_kept_in_a_copy() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await?;
    let p = db.partition("p").await?;
    for i in 0..100u32 {
        p.put(i.to_be_bytes(), [7u8; 100]).await?;
    }
    db.close().await?;
    let pdir = dir.path().join("partitions/p");
    let path = pdir.join("00000001.data");
    let original = std::fs::read(&path).unwrap();
    let rec = 25 + 4 + 100;
    let bad_at = 32 + 10 * rec;
    let mut bytes = original.clone();
    bytes[bad_at + 60] ^= 1;
    std::fs::write(&path, &bytes).unwrap();

    let db = Db::open(dir.path()).await?;
    let p = db.partition("p").await?;
    assert_eq!(p.snapshot().len(), 10, "records before the damage are served");
    db.close().await?;
    assert_eq!(std::fs::metadata(&path).unwrap().len(), bad_at as u64);
    let copy = std::fs::read(pdir.join(format!("00000001.data.dropped-{bad_at}-0"))).unwrap();
    assert_eq!(copy, bytes[bad_at..], "the dropped bytes are kept verbatim");
    Ok(())
}

/// Two recoveries stopping at the same offset keep both copies: a later
/// recovery never overwrites what an earlier one preserved.
#[tokio::test]
async fn a_second_recovery_never_overwrites_a_kept_copy() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await?;
    let p = db.partition("p").await?;
    for i in 0..20u32 {
        p.put(i.to_be_bytes(), [7u8; 100]).await?;
    }
    db.close().await?;
    let pdir = dir.path().join("partitions/p");
    let path = pdir.join("00000001.data");
    let rec = 25 + 4 + 100;
    let bad_at = 32 + 5 * rec;
    let flip = |path: &Path| {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[bad_at + 60] ^= 1;
        std::fs::write(path, &bytes).unwrap();
        bytes[bad_at..].to_vec()
    };
    let first = flip(&path);
    let db = Db::open(dir.path()).await?;
    let p = db.partition("p").await?;
    // The next writes land at the same offset; damage them the same way.
    for i in 100..110u32 {
        p.put(i.to_be_bytes(), [9u8; 100]).await?;
    }
    db.close().await?;
    let second = flip(&path);
    let db = Db::open(dir.path()).await?;
    assert_eq!(db.partition("p").await?.snapshot().len(), 5);
    db.close().await?;
    let kept = |n: u32| std::fs::read(pdir.join(format!("00000001.data.dropped-{bad_at}-{n}"))).unwrap();
    assert_eq!(kept(0), first, "the first copy must survive the second recovery");
    assert_eq!(kept(1), second);
    Ok(())
}

/// A record cut short by the end of the file (its header intact) is an
/// unfinished write, not damage: it is cut without a copy.
#[tokio::test]
async fn a_torn_final_record_is_cut_without_a_copy() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await?;
    let p = db.partition("p").await?;
    for i in 0..5u32 {
        p.put(i.to_be_bytes(), [7u8; 100]).await?;
    }
    db.close().await?;
    let pdir = dir.path().join("partitions/p");
    let path = pdir.join("00000001.data");
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 40).unwrap();
    drop(file);
    let db = Db::open(dir.path()).await?;
    assert_eq!(db.partition("p").await?.snapshot().len(), 4);
    db.close().await?;
    let names: Vec<String> = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("dropped")), "{names:?}");
    Ok(())
}
