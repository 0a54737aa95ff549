//! Value schemas (Int, Utf8, Bytes) reject what does not fit and write
//! nothing; `incr` behaves like Redis `INCRBY` (decimal text, typed errors,
//! no lost updates); the bulk operations `get_many`, `delete_many` and
//! `exists_many` count like Redis `MGET`, `DEL` and `EXISTS`.

use std::path::Path;
use std::time::{Duration, Instant};

use caskade::{Db, Durability, Error, MAX_KEY_LEN, Partition, PartitionOptions, Schema, SimDisk};

/// Total bytes of the files in `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// What must not change when a write is refused.
fn footprint(db: &Db, p: &Partition) -> (u64, u64, u64) {
    let s = p.stats();
    let dir = db.describe_partition(p.name()).unwrap().dir.unwrap();
    (s.keys, s.group_commits, disk_bytes(&dir))
}

fn is_violation<T>(r: &caskade::Result<T>, partition: &str) -> bool {
    matches!(r, Err(Error::SchemaViolation { partition: p, .. }) if p == partition)
}

#[tokio::test]
async fn int_schema_accepts_canonical_integers_only() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path()).await?;
    let p = db
        .create_partition("ints", PartitionOptions::default().schema(Schema::Int))
        .await?;
    for ok in ["12", "0", "-42", &i64::MAX.to_string(), &i64::MIN.to_string()] {
        p.put("k", ok).await?;
        assert_eq!(p.get("k").await?.as_deref(), Some(ok.as_bytes()));
        assert_eq!(p.get_int("k").await?, Some(ok.parse().unwrap()));
    }
    p.put("k", "12").await?;
    let before = footprint(&db, &p);
    let bad = [
        "x",
        "1.5",
        "01",
        "+1",
        "",
        "-0",
        "-",
        " 1",
        "1 ",
        "1e3",
        "0x10",
        "\u{661}",
        "9223372036854775808",
        "-9223372036854775809",
    ];
    for v in bad {
        assert!(is_violation(&p.put("k", v).await, "ints"), "{v:?} accepted");
        assert!(is_violation(&p.put("new", v).await, "ints"), "{v:?} accepted");
    }
    let mut b = p.batch();
    b.put("other", "5").put("new", "1.5");
    assert!(is_violation(&b.commit().await, "ints"));
    assert_eq!(p.get("k").await?.as_deref(), Some(&b"12"[..]));
    assert!(!p.contains_key("new").await? && !p.contains_key("other").await?);
    assert_eq!(footprint(&db, &p), before, "a refused write changed something");
    // put_int / get_int.
    for n in [-7, 0, i64::MAX, i64::MIN] {
        p.put_int("m", n).await?;
        assert_eq!(p.get("m").await?.as_deref(), Some(n.to_string().as_bytes()));
        assert_eq!(p.get_int("m").await?, Some(n));
    }
    assert_eq!(p.get_int("missing").await?, None);
    db.close().await?;
    let db = Db::open(tmp.path()).await?;
    let p = db.partition("ints").await?;
    assert_eq!(p.get_int("k").await?, Some(12));
    assert!(
        is_violation(&p.put("k", "x").await, "ints"),
        "schema lost at reopen"
    );
    db.close().await
}

#[tokio::test]
async fn utf8_schema_rejects_invalid_utf8_also_in_batches() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path()).await?;
    let p = db
        .create_partition("text", PartitionOptions::default().schema(Schema::Utf8))
        .await?;
    for ok in ["h\u{e9}llo", "\u{65e5}\u{672c}", "", "\u{1f980}"] {
        p.put("v", ok).await?;
        assert_eq!(p.get("v").await?.as_deref(), Some(ok.as_bytes()));
    }
    p.put_int("n", -3).await?;
    p.put("keep", "kept").await?;
    let before = footprint(&db, &p);
    let bad: [&[u8]; 5] = [
        &[0xff],
        &[0xc3],
        &[0xed, 0xa0, 0x80],
        b"ok\xffok",
        &[0xf4, 0x90, 0x80, 0x80],
    ];
    for v in bad {
        assert!(is_violation(&p.put("v", v).await, "text"), "{v:?} accepted");
    }
    // One bad value refuses the whole batch.
    let mut b = p.batch();
    b.put("a", "fine")
        .delete("keep")
        .put("b", [0xff])
        .put("c", "fine");
    assert!(is_violation(&b.commit().await, "text"));
    assert_eq!(p.get_many(["a", "b", "c"]).await?, [None, None, None]);
    assert_eq!(p.get("keep").await?.as_deref(), Some(&b"kept"[..]));
    assert_eq!(p.get("v").await?.as_deref(), Some("\u{1f980}".as_bytes()));
    assert_eq!(footprint(&db, &p), before, "a refused write changed something");
    db.close().await
}

#[tokio::test]
async fn bytes_schema_accepts_anything() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path()).await?;
    let p = db.partition("raw").await?;
    assert_eq!(p.options().schema, Schema::Bytes);
    let all: Vec<u8> = (0..=255).collect();
    let values: [&[u8]; 6] = [&[], &[0xff], b"ok\xffok", &all, b"01", b"x"];
    for (i, v) in values.iter().enumerate() {
        p.put(format!("k{i}"), v).await?;
    }
    for (i, v) in values.iter().enumerate() {
        assert_eq!(p.get(format!("k{i}")).await?.as_deref(), Some(*v));
    }
    db.close().await
}

#[tokio::test]
async fn incr_is_decimal_like_redis_on_every_schema() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path()).await?;
    for schema in [Schema::Bytes, Schema::Int, Schema::Utf8] {
        let name = format!("{schema:?}");
        let p = db
            .create_partition(&name, PartitionOptions::default().schema(schema))
            .await?;
        assert_eq!(p.incr("a", 5).await?, 5, "{name}: a missing key counts as 0");
        assert_eq!(p.incr("a", -7).await?, -2);
        assert_eq!(p.get("a").await?.as_deref(), Some(&b"-2"[..]));
        assert_eq!(p.incr("zero", 0).await?, 0);
        assert_eq!(
            p.get("zero").await?.as_deref(),
            Some(&b"0"[..]),
            "{name}: INCRBY 0 stores 0"
        );
        p.put("b", "10").await?;
        assert_eq!(p.incr("b", 32).await?, 42);
        assert_eq!(p.get_int("b").await?, Some(42));
        // Overflow either way: refused, value unchanged.
        p.put_int("max", i64::MAX).await?;
        p.put_int("min", i64::MIN).await?;
        let before = footprint(&db, &p);
        let r = p.incr("max", 1).await;
        assert!(
            matches!(
                r,
                Err(Error::IntegerOverflow {
                    current: i64::MAX,
                    by: 1
                })
            ),
            "{r:?}"
        );
        let r = p.incr("min", -1).await;
        assert!(
            matches!(
                r,
                Err(Error::IntegerOverflow {
                    current: i64::MIN,
                    by: -1
                })
            ),
            "{r:?}"
        );
        let r = p.incr("a", i64::MIN).await;
        assert!(
            matches!(r, Err(Error::IntegerOverflow { current: -2, .. })),
            "{r:?}"
        );
        assert_eq!(footprint(&db, &p), before, "{name}: a refused incr wrote");
        assert_eq!(p.get_int("max").await?, Some(i64::MAX));
        assert_eq!(p.get_int("min").await?, Some(i64::MIN));
        assert_eq!(p.incr("min", i64::MAX).await?, -1);
        if schema != Schema::Int {
            for v in ["abc", "01", " 1", "1.0", "+1", "", "-0", "9223372036854775808"] {
                p.put("s", v).await?;
                let before = footprint(&db, &p);
                let r = p.incr("s", 1).await;
                assert!(
                    matches!(r, Err(Error::NotAnInteger)),
                    "{name}: incr of {v:?}: {r:?}"
                );
                assert_eq!(p.get("s").await?.as_deref(), Some(v.as_bytes()));
                assert_eq!(footprint(&db, &p), before);
                assert!(matches!(p.get_int("s").await, Err(Error::NotAnInteger)));
            }
        }
    }
    db.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_incr_never_loses_an_update() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::builder(tmp.path())
        .durability(Durability::OsBuffered)
        .open()
        .await?;
    let p = db.partition("counters").await?;
    let tasks: Vec<_> = (0..32i64)
        .map(|t| {
            let p = p.clone();
            tokio::spawn(async move {
                let mut seen = Vec::with_capacity(200);
                for i in 0..200 {
                    seen.push(p.incr("n", 1).await?);
                    // Interleaved: other keys, and a second counter by t + 1.
                    p.put(format!("t{t}"), i.to_string()).await?;
                    p.incr("weighted", t + 1).await?;
                }
                Ok::<_, Error>(seen)
            })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.extend(t.await.unwrap()?);
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=6400).collect::<Vec<i64>>(),
        "every increment saw a distinct value"
    );
    assert_eq!(p.get_int("n").await?, Some(6400));
    assert_eq!(p.get_int("weighted").await?, Some(200 * (1..=32).sum::<i64>()));
    for t in 0..32 {
        assert_eq!(p.get(format!("t{t}")).await?.as_deref(), Some(&b"199"[..]));
    }
    db.close().await?;
    let db = Db::open(tmp.path()).await?;
    assert_eq!(db.partition("counters").await?.get_int("n").await?, Some(6400));
    db.close().await
}

#[tokio::test]
async fn acknowledged_incr_survives_power_loss() -> caskade::Result<()> {
    let disk = SimDisk::with_seed(21);
    let db = Db::builder("/db").simulated_disk(disk.clone()).open().await?;
    let p = db.partition("c").await?;
    for _ in 0..10 {
        p.incr("n", 3).await?;
    }
    disk.power_loss(true);
    drop((p, db));
    let db = Db::builder("/db").simulated_disk(disk.clone()).open().await?;
    let p = db.partition("c").await?;
    assert_eq!(p.get_int("n").await?, Some(30));
    assert_eq!(p.incr("n", 1).await?, 31);
    db.close().await
}

#[tokio::test]
async fn get_many_and_exists_many() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path()).await?;
    let p = db.partition("p").await?;
    p.put("a", "1").await?;
    p.put("b", "2").await?;
    let got = p.get_many(["b", "missing", "a", "b"]).await?;
    let want: Vec<Option<&[u8]>> = vec![Some(b"2"), None, Some(b"1"), Some(b"2")];
    assert_eq!(got.iter().map(|v| v.as_deref()).collect::<Vec<_>>(), want);
    assert_eq!(p.get_many(Vec::<&str>::new()).await?, Vec::new());
    assert_eq!(
        p.exists_many(["a", "a", "missing", "b"]).await?,
        3,
        "duplicates count twice"
    );
    assert_eq!(p.exists_many(["missing"]).await?, 0);
    assert_eq!(p.exists_many(Vec::<&str>::new()).await?, 0);
    let long = vec![b'k'; MAX_KEY_LEN + 1];
    assert!(matches!(p.get_many([&b"a"[..], b""]).await, Err(Error::EmptyKey)));
    assert!(matches!(
        p.get_many([&b"a"[..], &long]).await,
        Err(Error::KeyTooLarge { .. })
    ));
    assert!(matches!(
        p.exists_many([&b"a"[..], b""]).await,
        Err(Error::EmptyKey)
    ));
    assert!(matches!(
        p.exists_many([&long[..]]).await,
        Err(Error::KeyTooLarge { .. })
    ));
    db.close().await
}

#[tokio::test]
async fn delete_many_counts_like_redis_del() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path()).await?;
    let p = db.partition("p").await?;
    for k in ["a", "b", "c"] {
        p.put(k, k).await?;
    }
    assert_eq!(p.delete_many(Vec::<&str>::new()).await?, 0);
    // An invalid key anywhere refuses the whole call.
    let before = footprint(&db, &p);
    assert!(matches!(
        p.delete_many([&b"a"[..], b"c", b""]).await,
        Err(Error::EmptyKey)
    ));
    let long = vec![b'k'; MAX_KEY_LEN + 1];
    assert!(matches!(
        p.delete_many([&b"a"[..], &long]).await,
        Err(Error::KeyTooLarge { .. })
    ));
    assert_eq!(
        p.exists_many(["a", "b", "c"]).await?,
        3,
        "an invalid call deleted keys"
    );
    assert_eq!(footprint(&db, &p), before);
    assert_eq!(
        p.delete_many(["a", "a", "missing", "b"]).await?,
        2,
        "present keys, once each"
    );
    assert_eq!(p.exists_many(["a", "b", "c"]).await?, 1);
    assert_eq!(p.delete_many(["a", "missing"]).await?, 0);
    db.close().await?;
    let db = Db::open(tmp.path()).await?;
    let p = db.partition("p").await?;
    assert_eq!(p.get_many(["a", "b", "c"]).await?, [None, None, Some("c".into())]);
    db.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_many_is_atomic_for_readers() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::builder(tmp.path())
        .durability(Durability::OsBuffered)
        .open()
        .await?;
    let p = db.partition("p").await?;
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    for round in 0..5 {
        let mut b = p.batch();
        for k in &keys {
            b.put(k, "v");
        }
        b.commit().await?;
        let reader = {
            let (p, keys) = (p.clone(), keys.clone());
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(5);
                let mut seen = Vec::new();
                loop {
                    let n = p.exists_many(&keys).await?;
                    let values = p.get_many(&keys).await?;
                    let m = values.iter().filter(|v| v.is_some()).count();
                    seen.extend([n, m]);
                    if (n == 0 && m == 0) || Instant::now() > deadline {
                        return Ok::<_, Error>(seen);
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        tokio::task::yield_now().await;
        assert_eq!(p.delete_many(&keys).await?, 100);
        let seen = reader.await.unwrap()?;
        assert_eq!(
            seen.last(),
            Some(&0),
            "round {round}: the reader never saw the delete"
        );
        assert!(
            seen.iter().all(|&n| n == 0 || n == 100),
            "round {round}: partial delete seen: {seen:?}"
        );
    }
    db.close().await
}
