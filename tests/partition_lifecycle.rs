//! The partition lifecycle: create (with options, or on first use),
//! describe, drop (durable, with handles held), re-create, options kept
//! across reopen, memory-only partitions, and the database-level shortcuts.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use caskade::{Db, Durability, Error, Partition, PartitionOptions, Persistence, Schema};

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn data_files(dir: &Path) -> usize {
    entries(dir).iter().filter(|n| n.ends_with(".data")).count()
}

fn is_dropped<T: std::fmt::Debug>(r: &caskade::Result<T>, name: &str) -> bool {
    matches!(r, Err(Error::PartitionDropped { name: n }) if n == name)
}

#[tokio::test]
async fn create_open_or_create_and_describe() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path()).await?;
    let opts = PartitionOptions::default()
        .schema(Schema::Int)
        .durability(Durability::Interval(Duration::from_millis(40)))
        .max_file_size(8192);
    let c = db.create_partition("counters", opts).await?;
    assert_eq!(*c.options(), opts);
    let r = db
        .create_partition("counters", PartitionOptions::default())
        .await
        .map(drop);
    assert!(
        matches!(&r, Err(Error::PartitionExists { name }) if name == "counters"),
        "{r:?}"
    );
    // partition() opens the existing one (same data, its options unchanged).
    let again = db.partition("counters").await?;
    assert_eq!(*again.options(), opts);
    c.put_int("n", 7).await?;
    assert_eq!(again.get_int("n").await?, Some(7));
    assert!(matches!(
        again.put("n", "x").await,
        Err(Error::SchemaViolation { .. })
    ));
    // ... and creates a missing one with default options.
    assert_eq!(db.list_partitions(), ["counters"]);
    let fresh = db.partition("fresh").await?;
    assert_eq!(db.list_partitions(), ["counters", "fresh"]);
    assert_eq!(*fresh.options(), PartitionOptions::default());
    for i in 0..10 {
        fresh.put(format!("k{i}"), "v").await?;
    }
    fresh.put("k0", "overwritten").await?;
    fresh.delete("k9").await?;
    let info = db.describe_partition("fresh")?;
    assert_eq!(info.name, "fresh");
    assert_eq!(info.options, PartitionOptions::default());
    assert_eq!(info.stats.keys, 9);
    assert_eq!(info.stats.writes, 12);
    assert!(info.stats.open);
    let dir = info.dir.expect("durable partitions have a directory");
    assert_eq!(dir.parent(), Some(tmp.path().join("partitions").as_path()));
    assert!(dir.is_dir() && data_files(&dir) >= 1, "{}", dir.display());
    assert_eq!(db.describe_partition("counters")?.options, opts);
    let r = db.describe_partition("missing");
    assert!(
        matches!(&r, Err(Error::PartitionNotFound { name }) if name == "missing"),
        "{r:?}"
    );
    assert_eq!(
        db.list_partitions(),
        ["counters", "fresh"],
        "describe created a partition"
    );
    db.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_of_one_name_make_one_partition() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path()).await?;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                match i % 2 {
                    0 => db.partition("one").await.map(drop),
                    _ => db
                        .create_partition("one", PartitionOptions::default())
                        .await
                        .map(drop),
                }
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => created += 1,
            Err(Error::PartitionExists { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    // Every partition() call succeeds; at most one create_partition does.
    assert!((8..=9).contains(&created), "{created} succeeded");
    assert_eq!(db.list_partitions(), ["one"]);
    assert_eq!(entries(&tmp.path().join("partitions")).len(), 1);
    db.close().await
}

#[tokio::test]
async fn drop_is_durable_and_removes_files() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path()).await?;
    db.put("stay", "k", "s").await?;
    let p = db.partition("gone").await?;
    for i in 0..20 {
        p.put(format!("k{i}"), "v").await?;
    }
    let dir = db.describe_partition("gone")?.dir.unwrap();
    assert!(dir.is_dir());
    db.drop_partition("gone").await?;
    assert!(!dir.exists(), "files stay after drop");
    assert_eq!(db.list_partitions(), ["stay"]);
    assert!(matches!(
        db.describe_partition("gone"),
        Err(Error::PartitionNotFound { .. })
    ));
    assert!(matches!(
        db.drop_partition("gone").await,
        Err(Error::PartitionNotFound { .. })
    ));
    assert_eq!(db.get("gone", "k0").await?, None);
    db.close().await?;
    let db = Db::open(tmp.path()).await?;
    assert_eq!(db.list_partitions(), ["stay"]);
    assert!(!dir.exists());
    assert_eq!(entries(&tmp.path().join("partitions")).len(), 1);
    assert_eq!(db.get("stay", "k").await?.as_deref(), Some(&b"s"[..]));
    assert_eq!(db.get("gone", "k0").await?, None);
    db.close().await
}

/// Every operation through `p` fails with `PartitionDropped`.
async fn assert_all_dropped(p: &Partition) {
    let n = p.name().to_owned();
    assert!(is_dropped(&p.get("k").await, &n));
    assert!(is_dropped(&p.get_int("k").await, &n));
    assert!(is_dropped(&p.put("k", "v").await, &n));
    assert!(is_dropped(&p.put_int("k", 1).await, &n));
    assert!(is_dropped(&p.delete("k").await, &n));
    assert!(is_dropped(&p.incr("n", 1).await, &n));
    assert!(is_dropped(&p.snapshot().await, &n));
    assert!(is_dropped(&p.get_many(["k", "n"]).await, &n));
    assert!(is_dropped(&p.exists_many(["k"]).await, &n));
    assert!(is_dropped(&p.contains_key("k").await, &n));
    assert!(is_dropped(&p.delete_many(["k"]).await, &n));
    assert!(is_dropped(&p.sync().await, &n));
    let mut b = p.batch();
    b.put("k", "v");
    assert!(is_dropped(&b.commit().await, &n));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_with_handles_held_then_recreate() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::builder(tmp.path())
        .durability(Durability::OsBuffered)
        .open()
        .await?;
    let p = db.partition("p").await?;
    let clone = p.clone();
    p.put("k", "old").await?;
    p.incr("n", 5).await?;
    // A writer keeps going through the drop: each write succeeds or is refused
    // as dropped, nothing else.
    let done = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (p, done) = (p.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            for i in 0u64.. {
                match p.put(format!("w{i}"), "x").await {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(e) => return e,
                };
            }
            unreachable!()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while done.load(Ordering::Relaxed) < 20 {
        assert!(Instant::now() < deadline, "the writer made no progress");
        tokio::task::yield_now().await;
    }
    db.drop_partition("p").await?;
    let e = writer.await.unwrap();
    assert!(
        matches!(&e, Error::PartitionDropped { name } if name == "p"),
        "{e:?}"
    );
    assert_all_dropped(&p).await;
    assert_all_dropped(&clone).await;
    // The same name again: a new, empty partition; old handles still fail.
    let q = db.partition("p").await?;
    assert_eq!(q.get("k").await?, None);
    assert_eq!(q.get("w0").await?, None);
    assert_eq!(q.incr("n", 1).await?, 1, "the counter started over");
    q.put("k", "new").await?;
    assert_all_dropped(&p).await;
    assert_eq!(db.get("p", "k").await?.as_deref(), Some(&b"new"[..]));
    assert_eq!(db.describe_partition("p")?.stats.keys, 2);
    db.close().await?;
    let db = Db::open(tmp.path()).await?;
    let q = db.partition("p").await?;
    assert_eq!(q.get("k").await?.as_deref(), Some(&b"new"[..]));
    assert_eq!(q.get("w0").await?, None);
    assert_eq!(entries(&tmp.path().join("partitions")).len(), 1);
    db.close().await
}

#[tokio::test]
async fn options_persist_across_reopen() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let all = [
        (
            "ints",
            PartitionOptions::default()
                .schema(Schema::Int)
                .durability(Durability::Interval(Duration::from_millis(25)))
                .max_file_size(4096),
        ),
        (
            "text",
            PartitionOptions::default()
                .schema(Schema::Utf8)
                .durability(Durability::Always),
        ),
        ("follows", PartitionOptions::default()),
        ("big", PartitionOptions::default().max_file_size(1 << 20)),
        (
            "small",
            PartitionOptions::default()
                .max_file_size(4096)
                .durability(Durability::OsBuffered),
        ),
        (
            "mem",
            PartitionOptions::default()
                .persistence(Persistence::Memory)
                .schema(Schema::Utf8),
        ),
    ];
    let db = Db::open(tmp.path()).await?;
    for (name, opts) in all {
        db.create_partition(name, opts).await?;
    }
    db.close().await?;
    // Reopened with a different Db-wide durability: the partitions' own stay.
    let db = Db::builder(tmp.path())
        .durability(Durability::OsBuffered)
        .open()
        .await?;
    for (name, opts) in all {
        assert_eq!(db.describe_partition(name)?.options, opts, "{name}");
        assert_eq!(*db.partition(name).await?.options(), opts, "{name}");
    }
    let ints = db.partition("ints").await?;
    assert!(matches!(
        ints.put("k", "x").await,
        Err(Error::SchemaViolation { .. })
    ));
    let text = db.partition("text").await?;
    assert!(matches!(
        text.put("k", [0xff]).await,
        Err(Error::SchemaViolation { .. })
    ));
    // Durability: `text` (Always) syncs every write, `follows` (None) now
    // follows the Db's OsBuffered and does not.
    let follows = db.partition("follows").await?;
    for (p, synced) in [(&text, true), (&follows, false)] {
        let before = p.stats().fsyncs;
        for i in 0..5 {
            p.put(format!("k{i}"), "v").await?;
        }
        let delta = p.stats().fsyncs - before;
        assert_eq!(delta >= 5, synced, "{}: {delta} fsyncs for 5 writes", p.name());
    }
    // max_file_size: the same writes rotate `small`'s files, not `big`'s.
    for name in ["small", "big"] {
        let p = db.partition(name).await?;
        for i in 0..100 {
            p.put(format!("key-{i}"), [b'v'; 100]).await?;
        }
    }
    let files = |name| data_files(&db.describe_partition(name).unwrap().dir.unwrap());
    assert!(files("small") >= 3, "small: {} data files", files("small"));
    assert_eq!(files("big"), 1);
    db.close().await
}

#[tokio::test]
async fn memory_only_partitions_keep_no_files_and_lose_contents_at_close() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let parts = tmp.path().join("partitions");
    let db = Db::builder(tmp.path()).max_open_partitions(1).open().await?;
    db.put("durable", "k", "d").await?;
    let before = entries(&parts);
    let mem_opts = PartitionOptions::default().persistence(Persistence::Memory);
    let m = db.create_partition("mem", mem_opts).await?;
    for i in 0..200 {
        m.put(format!("k{i}"), [b'x'; 64]).await?;
    }
    assert!(m.delete("k0").await?);
    assert_eq!(m.incr("n", 3).await?, 3);
    let mut b = m.batch();
    b.put("b1", "1").delete("k1");
    b.commit().await?;
    // Opening other partitions beyond the bound never evicts it.
    for i in 0..3 {
        db.put(&format!("other{i}"), "k", "v").await?;
    }
    assert_eq!(m.get("k5").await?.as_deref(), Some(&[b'x'; 64][..]));
    assert_eq!(m.get("k0").await?, None);
    assert_eq!(m.exists_many(["b1", "k1", "n"]).await?, 2);
    let info = db.describe_partition("mem")?;
    assert_eq!(info.dir, None);
    assert_eq!(info.stats.keys, 200);
    assert_eq!(info.options, mem_opts);
    let now = entries(&parts);
    assert_eq!(
        now.len(),
        before.len() + 3,
        "only the three durable ones got directories"
    );
    db.close().await?;
    let db = Db::open(tmp.path()).await?;
    assert!(db.list_partitions().contains(&"mem".to_owned()));
    assert_eq!(db.describe_partition("mem")?.options, mem_opts);
    let m = db.partition("mem").await?;
    assert_eq!(m.get("k5").await?, None, "memory-only contents survived close");
    assert_eq!(m.incr("n", 1).await?, 1);
    assert_eq!(db.get("durable", "k").await?.as_deref(), Some(&b"d"[..]));
    db.drop_partition("mem").await?;
    assert!(is_dropped(&m.get("n").await, "mem"));
    assert_eq!(entries(&parts), now);
    db.close().await
}

#[tokio::test]
async fn db_shortcuts_and_missing_partitions() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path()).await?;
    db.put("a", "k", "v1").await?;
    assert_eq!(db.list_partitions(), ["a"], "db.put creates the partition");
    assert_eq!(db.get("a", "k").await?.as_deref(), Some(&b"v1"[..]));
    db.put("a", "k", "v2").await?;
    assert_eq!(
        db.partition("a").await?.get("k").await?.as_deref(),
        Some(&b"v2"[..])
    );
    assert!(db.delete("a", "k").await?);
    assert!(!db.delete("a", "k").await?);
    assert_eq!(db.get("a", "k").await?, None);
    let catalog = std::fs::read(tmp.path().join("CATALOG")).unwrap();
    let dirs = entries(&tmp.path().join("partitions"));
    assert_eq!(db.get("nope", "k").await?, None);
    assert!(!db.delete("nope", "k").await?);
    assert_eq!(db.list_partitions(), ["a"], "get/delete created a partition");
    assert!(matches!(
        db.describe_partition("nope"),
        Err(Error::PartitionNotFound { .. })
    ));
    assert_eq!(std::fs::read(tmp.path().join("CATALOG")).unwrap(), catalog);
    assert_eq!(entries(&tmp.path().join("partitions")), dirs);
    // Invalid keys are refused on the shortcuts too.
    assert!(matches!(db.put("a", "", "v").await, Err(Error::EmptyKey)));
    assert!(matches!(db.get("a", "").await, Err(Error::EmptyKey)));
    db.close().await?;
    let db = Db::open(tmp.path()).await?;
    assert_eq!(db.list_partitions(), ["a"]);
    db.close().await
}
