//! Invalid input — empty or oversized keys, oversized values, batches holding
//! one bad op, bad partition names, bad builder settings — is rejected with
//! its typed error and writes or creates nothing; the largest valid key and
//! value are accepted and round-trip.

mod common;
use common::partition_dir;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use caskade::{Db, DbBuilder, Durability, Error, MAX_KEY_LEN, Partition, PartitionOptions};

const MAX_VALUE: usize = 1024;

async fn open(root: &Path) -> caskade::Result<Db> {
    Db::builder(root)
        .max_value_len(MAX_VALUE)
        .max_file_size(4096)
        .open()
        .await
}

/// Total size of the data files in partition directory `dir`.
fn data_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
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
    let snap = p.snapshot().await.unwrap();
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
    let pdir = partition_dir(&db, "p");
    p.put("base", "x").await?;
    let size = data_bytes(&pdir);

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

    assert_eq!(data_bytes(&pdir), size, "a rejected write appends nothing");
    assert_state(&p, &[("base", "x")]).await?;
    p.sync().await?;
    db.close().await?;
    assert_eq!(data_bytes(&pdir), size);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn largest_key_and_value_round_trip() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let key = vec![b'K'; MAX_KEY_LEN];
    let value = vec![b'V'; MAX_VALUE];
    let db = open(dir.path()).await?;
    let p = db.partition("p").await?;
    let hint = partition_dir(&db, "p").join("00000001.hint");
    p.put(&key, &value).await?;
    assert_eq!(p.get(&key).await?.as_deref(), Some(&value[..]));
    assert!(p.contains_key(&key).await?);
    // The record is larger than max_file_size: the next write rotates, so
    // the key ends up in a sealed file and its hint.
    p.put("after", "rotation").await?;
    db.close().await?;
    assert!(hint.exists());

    for drop_hints in [false, true] {
        if drop_hints {
            std::fs::remove_file(&hint).unwrap();
        }
        let db = open(dir.path()).await?;
        let p = db.partition("p").await?;
        assert_eq!(
            partition_dir(&db, "p").join("00000001.hint"),
            hint,
            "same directory"
        );
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
    let pdir = partition_dir(&db, "p");
    let size = data_bytes(&pdir);
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
            assert_eq!(data_bytes(&pdir), size, "{what} at {position}: nothing written");
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
    let (too_long, too_long_wide) = ("z".repeat(256), "é".repeat(128)); // 256 bytes each
    // (name, as the error shows it: control characters escaped, at most 80 characters)
    let bad = [
        ("", String::new()),
        ("a\0", r"a\0".to_owned()),
        ("a\nb", r"a\nb".to_owned()),
        ("\u{1b}[31m", r"\u{1b}[31m".to_owned()),
        ("\u{7f}", r"\u{7f}".to_owned()),
        ("\u{85}", r"\u{85}".to_owned()),
        (too_long.as_str(), "z".repeat(80)),
        (too_long_wide.as_str(), "é".repeat(80)),
    ];
    for (name, want) in bad {
        for create in [false, true] {
            let r = match create {
                false => db.partition(name).await,
                true => db.create_partition(name, PartitionOptions::default()).await,
            };
            match r {
                Err(Error::InvalidPartitionName { name: shown, .. }) => {
                    assert_eq!(shown, want, "{name:?}");
                    assert!(!shown.chars().any(char::is_control), "{shown:?}");
                }
                other => panic!("{name:?}: expected InvalidPartitionName, got {other:?}"),
            }
        }
        assert!(matches!(
            db.describe_partition(name),
            Err(Error::PartitionNotFound { .. })
        ));
    }
    assert!(db.list_partitions().is_empty());
    assert_eq!(tree(dir.path()), before, "nothing created in or next to the root");

    // The longest valid name works (so the check above is not vacuous).
    db.partition(&"z".repeat(255)).await?.put("k", "v").await?;
    assert!(partition_dir(&db, &"z".repeat(255)).is_dir());
    db.close().await
}

/// Names that would be dangerous as paths are just names: each partition
/// gets its own directory inside the root, and the names survive a reopen
/// byte for byte.
#[tokio::test(flavor = "multi_thread")]
async fn path_like_names_stay_inside_the_root() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    let long_wide = format!("{}z", "é".repeat(127)); // 255 bytes
    let long = "z".repeat(255);
    let names = [
        "../x", "..", ".", "/etc", "/abs", "a/b", "a\\b", "CON", "nul", "Users", "users", "a b", "é",
        "e\u{301}", &long, &long_wide,
    ];
    let db = Db::open(&root).await?;
    let mut dirs = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        db.partition(name).await?.put("k", i.to_string()).await?;
        assert!(
            dirs.insert(partition_dir(&db, name)),
            "{name:?} shares a directory"
        );
    }
    db.close().await?;
    let outside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, ["db"], "nothing created next to the root");
    let on_disk: BTreeSet<PathBuf> = std::fs::read_dir(root.join("partitions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(on_disk, dirs, "one directory per partition, nothing else");

    let db = Db::open(&root).await?;
    let mut sorted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    sorted.sort_unstable();
    assert_eq!(db.list_partitions(), sorted);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            db.get(name, "k").await?.as_deref(),
            Some(i.to_string().as_bytes()),
            "{name:?}"
        );
    }
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
