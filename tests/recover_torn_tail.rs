//! Recovery of a torn active file: every prefix recovers exactly the records it
//! fully holds (a batch only whole), and bytes after the valid end (zeros,
//! garbage, damaged or foreign records) are dropped and truncated away. (What
//! recovery keeps of the dropped bytes: `recover_kept_copies.rs`.)

mod common;
use common::{copy_tree, partition_subdir};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use caskade::Db;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Data-file header and record-header sizes of the on-disk format
/// (see src/format/data_file.rs and src/format/record.rs).
const FILE_HEADER: u64 = 32;
const RECORD_HEADER: u64 = 25;
/// The active (only) data file of partition `p`, in its directory.
const ACTIVE: &str = "00000001.data";
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

/// A closed database to copy, and the keys to check in the copies.
struct Template {
    root: PathBuf,
    /// The active file of partition `p`, relative to the root.
    active: PathBuf,
    /// Every key ever used.
    universe: Vec<Vec<u8>>,
}

struct Fixture {
    _dir: tempfile::TempDir,
    /// A closed database whose partition `p` holds every write set.
    template: Template,
    /// The data file of partition `other`, relative to the root.
    other_data: PathBuf,
    /// The active file's bytes.
    bytes: Vec<u8>,
    /// `(end offset, model)` after each write set, starting with the empty file.
    states: Vec<(u64, Model)>,
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
    let active = partition_subdir(&db, "p").join(ACTIVE);
    let other_data = partition_subdir(&db, "other").join("00000001.data");
    db.close().await?;

    let bytes = std::fs::read(template.join(&active)).unwrap();
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
        template: Template {
            root: template,
            active,
            universe,
        },
        other_data,
        bytes,
        states,
    })
}

impl Fixture {
    fn full_state(&self) -> (u64, Model) {
        self.states.last().unwrap().clone()
    }

    /// The last record of the other partition's data file.
    fn foreign_record(&self) -> Vec<u8> {
        let other = std::fs::read(self.template.root.join(&self.other_data)).unwrap();
        let len = (RECORD_HEADER as usize) + FORGED.len() + "from another file".len();
        other[other.len() - len..].to_vec()
    }
}

/// Restores a copy of `template` whose active file holds `active`, opens
/// it, and checks the recovered state and the truncated file length.
async fn check_recovery(
    template: &Template,
    active: &[u8],
    want: &Model,
    want_len: u64,
    what: &str,
) -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    copy_tree(&template.root, &root);
    std::fs::write(root.join(&template.active), active).unwrap();

    let db = Db::open(&root).await?;
    let p = db.partition("p").await?;
    for k in &template.universe {
        let got = p.get(k).await?.map(|b| b.to_vec());
        assert_eq!(
            got.as_ref(),
            want.get(k),
            "{what}: key {:?}",
            String::from_utf8_lossy(k)
        );
    }
    assert_eq!(
        p.snapshot().await.unwrap().len(),
        want.len(),
        "{what}: live key count"
    );
    let len = std::fs::metadata(root.join(&template.active)).unwrap().len();
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
            check_recovery(&fx.template, prefix, &model, end, &what).await
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
        check_recovery(&fx.template, &bytes, &model, end, &what).await?;
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
        check_recovery(&fx.template, &bytes, &model, end, &what).await?;
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
        check_recovery(&fx.template, &bytes, &model, end, &what).await?;
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
    check_recovery(&fx.template, &bytes, &model, end, "foreign record").await?;

    // After recovery the partition appends at the valid end: a new write and
    // the old state survive one more reopen, and the foreign key never appears.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    copy_tree(&fx.template.root, &root);
    std::fs::write(root.join(&fx.template.active), &bytes).unwrap();
    let db = Db::open(&root).await?;
    db.partition("p").await?.put("after", "recovery").await?;
    db.close().await?;
    let mut want = model.clone();
    want.insert(b"after".to_vec(), b"recovery".to_vec());
    let mut universe = fx.template.universe.clone();
    universe.push(b"after".to_vec());
    let want_len = end + RECORD_HEADER + 5 + 8;
    let recovered = std::fs::read(root.join(&fx.template.active)).unwrap();
    assert_eq!(
        &recovered[..end as usize],
        &fx.bytes[..],
        "valid prefix kept byte for byte"
    );
    let active = fx.template.active.clone();
    let after = Template {
        root,
        active,
        universe,
    };
    check_recovery(&after, &recovered, &want, want_len, "after a write").await
}
