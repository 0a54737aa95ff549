//! Invalid input — empty or oversized keys, oversized values, batches holding
//! one bad op, bad partition names, bad builder settings — is rejected with
//! its typed error and writes or creates nothing; the largest valid key and
//! value are accepted and round-trip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use caskade::{Db, DbBuilder, Durability, Error, MAX_KEY_LEN, Partition};

const MAX_VALUE: usize = 1024;

async fn open(root: &Path) -> caskade::Result<Db> {
    Db::builder(root)
        .max_value_len(MAX_VALUE)
        .max_file_size(4096)
        .open()
        .await
}

/// Total size of the partition's data files.
fn data_bytes(root: &Path) -> u64 {
    std::fs::read_dir(root.join("partitions/p"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".data"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Every path under `dir` with its size (0 for directories).
fn tree(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            out.insert(entry.path(), 0);
            out.extend(tree(&entry.path()));
        } else {
            out.insert(entry.path(), meta.len());
        }
    }
    out
}

fn is_empty_key<T: std::fmt::Debug>(r: caskade::Result<T>) {
    assert!(matches!(r, Err(Error::EmptyKey)), "expected EmptyKey, got {r:?}");
}

fn is_key_too_large<T: std::fmt::Debug>(r: caskade::Result<T>) {
    match r {
        Err(Error::KeyTooLarge { len, max }) => assert_eq!((len, max), (MAX_KEY_LEN + 1, MAX_KEY_LEN)),
        other => panic!("expected KeyTooLarge, got {other:?}"),
    }
}

fn is_value_too_large<T: std::fmt::Debug>(r: caskade::Result<T>) {
    match r {
        Err(Error::ValueTooLarge { len, max }) => assert_eq!((len, max), (MAX_VALUE + 1, MAX_VALUE)),
        other => panic!("expected ValueTooLarge, got {other:?}"),
    }
}

async fn assert_state(p: &Partition, want: &[(&str, &str)]) -> caskade::Result<()> {
    let snap = p.snapshot();
    assert_eq!(snap.len(), want.len());
    for (k, v) in want {
        assert_eq!(p.get(k).await?.as_deref(), Some(v.as_bytes()), "key {k}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_keys_and_values_are_rejected_and_write_nothing() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await?;
    let p = db.partition("p").await?;
    p.put("base", "x").await?;
    let size = data_bytes(dir.path());

    is_empty_key(p.put("", "v").await);
    is_empty_key(p.delete("").await);
    is_empty_key(p.get("").await);
    is_empty_key(p.contains_key("").await);

    let long = vec![b'k'; MAX_KEY_LEN + 1];
    is_key_too_large(p.put(&long, "v").await);
    is_key_too_large(p.delete(&long).await);
    is_key_too_large(p.get(&long).await);
    is_key_too_large(p.contains_key(&long).await);

    is_value_too_large(p.put("base", vec![7u8; MAX_VALUE + 1]).await);
    is_value_too_large(p.put("new", vec![7u8; MAX_VALUE + 1]).await);

    assert_eq!(data_bytes(dir.path()), size, "a rejected write appends nothing");
    assert_state(&p, &[("base", "x")]).await?;
    p.sync().await?;
    db.close().await?;
    assert_eq!(data_bytes(dir.path()), size);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn largest_key_and_value_round_trip() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let key = vec![b'K'; MAX_KEY_LEN];
    let value = vec![b'V'; MAX_VALUE];
    let db = open(dir.path()).await?;
    let p = db.partition("p").await?;
    p.put(&key, &value).await?;
    assert_eq!(p.get(&key).await?.as_deref(), Some(&value[..]));
    assert!(p.contains_key(&key).await?);
    // The record is larger than max_file_size: the next write rotates, so
    // the key ends up in a sealed file and its hint.
    p.put("after", "rotation").await?;
    db.close().await?;
    assert!(dir.path().join("partitions/p/00000001.hint").exists());

    for drop_hints in [false, true] {
        if drop_hints {
            std::fs::remove_file(dir.path().join("partitions/p/00000001.hint")).unwrap();
        }
        let db = open(dir.path()).await?;
        let p = db.partition("p").await?;
        assert_eq!(
            p.get(&key).await?.as_deref(),
            Some(&value[..]),
            "hint dropped: {drop_hints}"
        );
        assert_eq!(p.get("after").await?.as_deref(), Some(&b"rotation"[..]));
        db.close().await?;
    }

    let db = open(dir.path()).await?;
    let p = db.partition("p").await?;
    assert!(p.delete(&key).await?);
    db.close().await?;
    let db = open(dir.path()).await?;
    assert_eq!(db.partition("p").await?.get(&key).await?, None);
    db.close().await
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_with_one_bad_op_applies_none() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await?;
    let p = db.partition("p").await?;
    p.put("a", "1").await?;
    p.put("b", "2").await?;
    let size = data_bytes(dir.path());
    let long = vec![b'k'; MAX_KEY_LEN + 1];
    let big = vec![0u8; MAX_VALUE + 1];

    let bad_ops = [
        "empty key put",
        "empty key delete",
        "long key put",
        "long key delete",
        "big value put",
    ];
    for what in bad_ops {
        for position in 0..3 {
            let mut b = p.batch();
            for i in 0..3 {
                if i == position {
                    match what {
                        "empty key put" => b.put("", "v"),
                        "empty key delete" => b.delete(""),
                        "long key put" => b.put(&long, "v"),
                        "long key delete" => b.delete(&long),
                        _ => b.put("c", &big),
                    };
                }
                b.put(format!("c{i}"), "new");
                b.delete("a");
                b.put("b", "changed");
            }
            let r = b.commit().await;
            match what {
                "empty key put" | "empty key delete" => is_empty_key(r),
                "long key put" | "long key delete" => is_key_too_large(r),
                _ => is_value_too_large(r),
            }
            assert_eq!(
                data_bytes(dir.path()),
                size,
                "{what} at {position}: nothing written"
            );
            assert_state(&p, &[("a", "1"), ("b", "2")]).await?;
        }
    }
    // With two bad ops, the first one added is reported.
    let mut b = p.batch();
    b.put("ok", "1").delete("").put("c", &big);
    is_empty_key(b.commit().await);

    db.close().await?;
    let db = open(dir.path()).await?;
    assert_state(&db.partition("p").await?, &[("a", "1"), ("b", "2")]).await?;
    db.close().await
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_partition_names_create_nothing() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    let db = Db::open(&root).await?;
    let before = tree(dir.path());
    let too_long = "z".repeat(65);
    let bad = [
        "",
        ".",
        "..",
        "../escape",
        "/abs",
        "a/b",
        "a\\b",
        "Users",
        "a b",
        "a.b",
        "é",
        "a\0",
        &too_long,
    ];
    for name in bad {
        match db.partition(name).await {
            Err(Error::InvalidPartitionName { name: shown, .. }) => assert_eq!(shown, name),
            other => panic!("{name:?}: expected InvalidPartitionName, got {other:?}"),
        }
    }
    assert_eq!(tree(dir.path()), before, "nothing created in or next to the root");

    // The longest valid name works (so the check above is not vacuous).
    db.partition(&"z".repeat(64)).await?.put("k", "v").await?;
    assert!(root.join("partitions").join("z".repeat(64)).is_dir());
    db.close().await
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_builder_settings_are_rejected() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    type Setting = fn(DbBuilder) -> DbBuilder;
    let bad: [(&str, Setting); 9] = [
        ("max_file_size 0", |b| b.max_file_size(0)),
        ("max_file_size 4095", |b| b.max_file_size(4095)),
        ("max_file_size 1 GiB + 1", |b| b.max_file_size((1 << 30) + 1)),
        ("max_value_len 1 GiB + 1", |b| b.max_value_len((1 << 30) + 1)),
        ("interval 0", |b| {
            b.durability(Durability::Interval(Duration::ZERO))
        }),
        ("interval > 1 h", |b| {
            b.durability(Durability::Interval(Duration::from_secs(3601)))
        }),
        ("mailbox 0", |b| b.mailbox_capacity(0)),
        ("group requests 0", |b| b.max_group_requests(0)),
        ("group bytes 0", |b| b.max_group_bytes(0)),
    ];
    for (what, set) in bad {
        match set(Db::builder(&root)).open().await {
            Err(Error::InvalidConfig { .. }) => {}
            other => panic!("{what}: expected InvalidConfig, got {other:?}"),
        }
        assert!(!root.exists(), "{what}: a rejected open creates nothing");
    }
    // The limits themselves are accepted.
    let db = Db::builder(&root)
        .max_file_size(4096)
        .durability(Durability::Interval(Duration::from_secs(3600)))
        .max_value_len(1 << 30)
        .mailbox_capacity(1)
        .open()
        .await?;
    db.close().await
}
