//! Reopening a partition spread over many rotated data files restores exactly the
//! state written, whether its hint files are intact, missing, or damaged.

mod common;
use common::{open_small_files, partition_dir};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use caskade::Partition;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const PARTITION: &str = "p";

/// A tiny deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("key-{i:03}").into_bytes()
}

fn value(rng: &mut Rng, tag: u64) -> Vec<u8> {
    // Every 7th value is empty: an empty value is a value, not a delete.
    if rng.below(7) == 0 {
        return Vec::new();
    }
    let len = rng.below(160) as usize;
    let mut v = format!("v{tag}-").into_bytes();
    v.extend((0..len).map(|i| b'a' + ((tag as usize + i) % 26) as u8));
    v
}

/// Applies `steps` random operations (puts, overwrites, deletes, empty values,
/// multi-op batches) to `p` and to `model`.
async fn workload(p: &Partition, model: &mut Model, seed: u64, steps: u64) -> caskade::Result<()> {
    let mut rng = Rng(seed);
    for step in 0..steps {
        let k = key(rng.below(120));
        match rng.below(10) {
            0..=5 => {
                let v = value(&mut rng, step);
                p.put(&k, &v).await?;
                model.insert(k, v);
            }
            6 | 7 => {
                let existed = p.delete(&k).await?;
                assert_eq!(existed, model.remove(&k).is_some(), "delete result for {k:?}");
            }
            _ => {
                let mut b = p.batch();
                for _ in 0..2 + rng.below(3) {
                    let k = key(rng.below(120));
                    if rng.below(3) == 0 {
                        b.delete(&k);
                        model.remove(&k);
                    } else {
                        let v = value(&mut rng, step);
                        b.put(&k, &v);
                        model.insert(k, v);
                    }
                }
                b.commit().await?;
            }
        }
    }
    Ok(())
}

/// Every key of the universe reads as the model says, and the partition holds
/// no other key.
async fn assert_matches(p: &Partition, model: &Model) -> caskade::Result<()> {
    for i in 0..120 {
        let k = key(i);
        let got = p.get(&k).await?.map(|b| b.to_vec());
        assert_eq!(
            got.as_ref(),
            model.get(&k),
            "key {:?}",
            String::from_utf8_lossy(&k)
        );
        assert_eq!(p.contains_key(&k).await?, model.contains_key(&k));
    }
    let snap = p.snapshot().await.unwrap();
    assert_eq!(snap.len(), model.len());
    let mut all = Model::new();
    for entry in snap.iter() {
        let (k, v) = entry?;
        all.insert(k.to_vec(), v.to_vec());
    }
    assert_eq!(&all, model, "snapshot contents");
    Ok(())
}

/// Data file ids in the partition directory, ascending.
fn data_ids(dir: &Path) -> Vec<u32> {
    let mut ids: Vec<u32> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".data").map(|s| s.parse().unwrap())
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// Hint file name → bytes.
fn hints(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".hint"))
        .map(|e| {
            let name = e.file_name().into_string().unwrap();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn hint_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.hint"))
}

/// What [`build`] returns: the model, the hints rotation wrote (one per
/// sealed file), and the partition's directory.
type Built = (Model, BTreeMap<String, Vec<u8>>, PathBuf);

/// Writes the workload into a fresh database and closes it.
async fn build(root: &Path) -> caskade::Result<Built> {
    let db = open_small_files(root).await?;
    let p = db.partition(PARTITION).await?;
    let mut model = Model::new();
    workload(&p, &mut model, 0x9e37_79b9_7f4a_7c15, 900).await?;
    assert_matches(&p, &model).await?;
    let dir = partition_dir(&db, PARTITION);
    db.close().await?;

    let ids = data_ids(&dir);
    assert!(
        ids.len() >= 5,
        "the workload must rotate into >= 5 data files, got {ids:?}"
    );
    let hints = hints(&dir);
    let sealed: BTreeSet<String> = ids[..ids.len() - 1]
        .iter()
        .map(|id| format!("{id:08}.hint"))
        .collect();
    assert_eq!(
        hints.keys().cloned().collect::<BTreeSet<_>>(),
        sealed,
        "one hint per sealed file"
    );
    Ok((model, hints, dir))
}

/// Reopens, checks the state, keeps writing (sequence numbers must continue
/// above every recovered one), and checks again after one more reopen.
async fn reopen_check_continue(root: &Path, pdir: &Path, model: &mut Model) -> caskade::Result<()> {
    let db = open_small_files(root).await?;
    let p = db.partition(PARTITION).await?;
    assert_eq!(
        partition_dir(&db, PARTITION),
        pdir,
        "the partition keeps its directory"
    );
    assert_matches(&p, model).await?;
    workload(&p, model, 0x0123_4567_89ab_cdef, 150).await?;
    assert_matches(&p, model).await?;
    db.close().await?;

    let db = open_small_files(root).await?;
    let p = db.partition(PARTITION).await?;
    assert_matches(&p, model).await?;
    db.close().await
}

#[tokio::test(flavor = "multi_thread")]
async fn reopen_with_hints() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let (mut model, before, pdir) = build(dir.path()).await?;
    let db = open_small_files(dir.path()).await?;
    let p = db.partition(PARTITION).await?;
    assert_matches(&p, &model).await?;
    db.close().await?;
    assert_eq!(hints(&pdir), before, "an open with good hints leaves them alone");
    reopen_check_continue(dir.path(), &pdir, &mut model).await
}

#[tokio::test(flavor = "multi_thread")]
async fn reopen_without_hints_scans_and_rewrites_them() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let (mut model, before, pdir) = build(dir.path()).await?;
    for name in before.keys() {
        std::fs::remove_file(pdir.join(name)).unwrap();
    }
    assert!(hints(&pdir).is_empty());

    let db = open_small_files(dir.path()).await?;
    let p = db.partition(PARTITION).await?;
    // The hints are rewritten by the open itself, before any write; a hint's
    // bytes are a function of its data file, so they equal the originals.
    assert_eq!(hints(&pdir), before, "the open rewrites every sealed file's hint");
    assert_matches(&p, &model).await?;
    db.close().await?;
    reopen_check_continue(dir.path(), &pdir, &mut model).await
}

#[tokio::test(flavor = "multi_thread")]
async fn reopen_with_damaged_hints_ignores_them() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let (mut model, before, pdir) = build(dir.path()).await?;
    let ids = data_ids(&pdir);

    // A byte flipped in the middle of one hint.
    let flipped = hint_path(&pdir, ids[0]);
    let mut b = std::fs::read(&flipped).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&flipped, &b).unwrap();
    // Another hint truncated (its trailer lost, part of its last entry too).
    let truncated = hint_path(&pdir, ids[1]);
    let len = std::fs::metadata(&truncated).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(len - 15)
        .unwrap();
    // A third one replaced by a well-formed hint of another data file.
    std::fs::copy(hint_path(&pdir, ids[3]), hint_path(&pdir, ids[2])).unwrap();
    // A fourth one still well-formed but naming another key in its last entry
    // (the byte before the 12-byte trailer is the last key's last byte): only
    // its checksum tells.
    let renamed = hint_path(&pdir, ids[4]);
    let mut b = std::fs::read(&renamed).unwrap();
    let at = b.len() - 13;
    b[at] ^= 0x01;
    std::fs::write(&renamed, &b).unwrap();
    assert_ne!(hints(&pdir), before);

    let db = open_small_files(dir.path()).await?;
    let p = db.partition(PARTITION).await?;
    assert_matches(&p, &model).await?;
    assert_eq!(
        hints(&pdir),
        before,
        "damaged hints are rewritten from their data files"
    );
    db.close().await?;
    reopen_check_continue(dir.path(), &pdir, &mut model).await
}
