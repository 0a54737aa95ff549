//! Recovery never destroys bytes it drops from an active file: damage in the
//! middle ends the valid prefix and the rest is kept in a durable copy (a
//! later recovery never overwrites one), while a torn final record is cut
//! without a copy. (Torn tails themselves: `recover_torn_tail.rs`.)

mod common;
use common::partition_dir;

use std::path::Path;

use caskade::Db;

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
    let pdir = partition_dir(&db, "p");
    db.close().await?;
    let path = pdir.join("00000001.data");
    let original = std::fs::read(&path).unwrap();
    let rec = 25 + 4 + 100;
    let bad_at = 32 + 10 * rec;
    let mut bytes = original.clone();
    bytes[bad_at + 60] ^= 1;
    std::fs::write(&path, &bytes).unwrap();

    let db = Db::open(dir.path()).await?;
    let p = db.partition("p").await?;
    assert_eq!(
        p.snapshot().await.unwrap().len(),
        10,
        "records before the damage are served"
    );
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
    let pdir = partition_dir(&db, "p");
    db.close().await?;
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
    assert_eq!(db.partition("p").await?.snapshot().await.unwrap().len(), 5);
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
    let pdir = partition_dir(&db, "p");
    db.close().await?;
    let path = pdir.join("00000001.data");
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 40).unwrap();
    drop(file);
    let db = Db::open(dir.path()).await?;
    assert_eq!(db.partition("p").await?.snapshot().await.unwrap().len(), 4);
    db.close().await?;
    let names: Vec<String> = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("dropped")), "{names:?}");
    Ok(())
}
