//! Statistics follow the operations exactly: per-partition counters and
//! sizes against a model computed independently (a record is a 25-byte
//! header + key + value; a data file starts with a 32-byte header), and the
//! database-wide open/evict counters.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use caskade::{Db, DbBuilder, Durability, Error, Partition, PartitionStats};

const RECORD_HEADER: u64 = 25;
const FILE_HEADER: u64 = 32;

/// What the statistics should say, maintained beside the operations.
struct Expect {
    /// Live key → size of the record it points at.
    live: HashMap<String, u64>,
    /// Bytes in data files.
    total: u64,
    reads: u64,
    writes: u64,
    groups: u64,
    published: u64,
}

impl Expect {
    fn new() -> Self {
        // Opening publishes the first version of an empty data file.
        Expect {
            live: HashMap::new(),
            total: FILE_HEADER,
            reads: 0,
            writes: 0,
            groups: 0,
            published: 1,
        }
    }

    /// One record appended: a put (`Some`) or a tombstone.
    fn record(&mut self, key: &str, value: Option<&str>) {
        let len = RECORD_HEADER + key.len() as u64 + value.map_or(0, |v| v.len() as u64);
        self.total += len;
        match value {
            Some(_) => self.live.insert(key.to_owned(), len),
            None => self.live.remove(key),
        };
    }

    /// One write request, committed as a group of its own.
    fn commit(&mut self, wrote: bool) {
        self.writes += 1;
        self.groups += 1;
        self.published += u64::from(wrote);
    }

    fn check(&self, p: &Partition, step: &str) {
        let s = p.stats();
        let live: u64 = self.live.values().sum();
        let want = (self.reads, self.writes, self.reads + self.writes);
        assert_eq!((s.reads, s.writes, s.operations), want, "{step}: {s:?}");
        let want = (self.live.len() as u64, live, self.total - live);
        assert_eq!((s.keys, s.live_bytes, s.dead_bytes), want, "{step}: {s:?}");
        // Sequential requests: every group commit holds one.
        let want = (self.groups, self.groups, self.groups.min(1));
        assert_eq!(
            (s.group_commits, s.grouped_requests, s.max_group),
            want,
            "{step}: {s:?}"
        );
        let want = (self.published, 1, 1, 0);
        assert_eq!(
            (s.snapshots_published, s.files, s.opens, s.evictions),
            want,
            "{step}: {s:?}"
        );
        assert!(s.open && s.mailbox_full_waits == 0, "{step}: {s:?}");
    }
}

fn builder(dir: &Path, durability: Durability) -> DbBuilder {
    Db::builder(dir).durability(durability)
}

/// Whether read latencies were recorded and are ordered.
fn latencies_ok(s: &PartitionStats) -> bool {
    s.read_p50 > Duration::ZERO && s.read_p50 <= s.read_p99
}

fn data_files(dir: &PathBuf) -> (u64, u64) {
    let (mut count, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().ends_with(".data") {
            count += 1;
            bytes += entry.metadata().unwrap().len();
        }
    }
    (count, bytes)
}

#[tokio::test]
async fn counters_and_sizes_follow_operations() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = builder(dir.path(), Durability::OsBuffered).open().await?;
    let p = db.partition("s").await?;
    let pdir = db.describe_partition("s")?.dir.unwrap();
    let mut e = Expect::new();
    e.check(&p, "opened");

    for i in 0..10 {
        let (k, v) = (format!("key{i}"), "v".repeat(10 * i + 1));
        p.put(&k, &v).await?;
        e.record(&k, Some(&v));
        e.commit(true);
    }
    e.check(&p, "puts");
    assert!(!latencies_ok(&p.stats()), "no get yet");

    for k in ["key0", "key3", "absent", "key9", "nope", "key1", "key2"] {
        let want = e.live.contains_key(k);
        assert_eq!(p.get(k).await?.is_some(), want, "{k}");
        e.reads += 1;
    }
    let many = p.get_many(["key4", "x", "key5"]).await?;
    assert_eq!(many.iter().flatten().count(), 2);
    assert!(p.contains_key("key6").await?);
    assert_eq!(p.exists_many(["key7", "key7", "y", "key8"]).await?, 3);
    e.reads += 3 + 1 + 4;
    e.check(&p, "reads");

    // Invalid input never reaches the partition and is not counted.
    assert!(matches!(p.put("", "x").await, Err(Error::EmptyKey)));
    assert!(matches!(p.get("").await, Err(Error::EmptyKey)));
    e.check(&p, "invalid input");

    p.put("key0", "overwritten").await?;
    e.record("key0", Some("overwritten"));
    e.commit(true);
    for k in ["key1", "key2", "key3"] {
        assert!(p.delete(k).await?);
        e.record(k, None);
        e.commit(true);
    }
    // A lone delete of an absent key is a group that writes nothing.
    assert!(!p.delete("absent").await?);
    e.commit(false);
    e.check(&p, "overwrite and deletes");

    // A batch writes every op, a later op on a key wins, and its deletes
    // always leave a tombstone (it may be the batch's last record).
    let mut b = p.batch();
    let ops = [
        ("b1", Some("x")),
        ("b1", Some("yy")),
        ("b2", Some("zzz")),
        ("key4", None),
        ("gone", None),
    ];
    for (k, v) in ops {
        match v {
            Some(v) => b.put(k, v),
            None => b.delete(k),
        };
        e.record(k, v);
    }
    b.commit().await?;
    e.commit(true);
    assert_eq!(p.delete_many(["key5", "never"]).await?, 1);
    e.record("key5", None);
    e.record("never", None);
    e.commit(true);
    e.check(&p, "batch and delete_many");

    assert_eq!(p.incr("n", 5).await?, 5);
    e.record("n", Some("5"));
    e.commit(true);
    assert_eq!(p.incr("n", -7).await?, -2);
    e.record("n", Some("-2"));
    e.commit(true);
    // A failed increment is a write request that commits nothing.
    assert!(matches!(p.incr("key0", 1).await, Err(Error::NotAnInteger)));
    e.writes += 1;
    e.check(&p, "increments");

    let s = p.stats();
    assert!(latencies_ok(&s), "{s:?}");
    assert_eq!(s.fsyncs, 0, "no write syncs under OsBuffered: {s:?}");
    assert_eq!(data_files(&pdir), (1, e.total), "bytes in the data file");
    assert_eq!(db.describe_partition("s")?.stats, s, "describe_partition");
    db.close().await
}

#[tokio::test]
async fn only_sync_makes_an_fsync_under_os_buffered() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = builder(dir.path(), Durability::OsBuffered).open().await?;
    let p = db.partition("s").await?;
    for i in 0..20 {
        p.put(format!("k{i}"), "v").await?;
    }
    assert_eq!(p.stats().fsyncs, 0);
    p.sync().await?;
    let s = p.stats();
    assert_eq!(s.fsyncs, 1, "{s:?}");
    assert!(
        s.fsync_total > Duration::ZERO && s.fsync_max == s.fsync_total,
        "{s:?}"
    );
    p.sync().await?;
    assert_eq!(p.stats().fsyncs, 1, "nothing new to sync");
    db.close().await
}

#[tokio::test]
async fn sync_is_not_counted_as_a_write() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = builder(dir.path(), Durability::OsBuffered).open().await?;
    let p = db.partition("s").await?;
    p.put("k", "v").await?;
    p.sync().await?;
    // "Write requests (put, delete, batch, incr, delete_many)".
    let s = p.stats();
    assert_eq!((s.writes, s.operations), (1, 1), "{s:?}");
    db.close().await
}

#[tokio::test]
async fn every_commit_syncs_under_always() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = builder(dir.path(), Durability::Always).open().await?;
    let p = db.partition("s").await?;
    for i in 0..10 {
        p.put(format!("k{i}"), "v").await?;
    }
    assert!(!p.delete("absent").await?, "writes nothing, so syncs nothing");
    let s = p.stats();
    let want = (10, 11, 11);
    assert_eq!((s.fsyncs, s.group_commits, s.snapshots_published), want, "{s:?}");
    assert!(
        s.fsync_max > Duration::ZERO && s.fsync_max <= s.fsync_total,
        "{s:?}"
    );
    p.sync().await?;
    assert_eq!(p.stats().fsyncs, 10, "everything was synced already");
    for i in 0..100 {
        assert!(p.get(format!("k{}", i % 10)).await?.is_some());
    }
    let s = p.stats();
    assert!(latencies_ok(&s), "{s:?}");
    db.close().await
}

#[tokio::test]
async fn files_grow_with_rotation() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = builder(dir.path(), Durability::OsBuffered).max_file_size(4096);
    let db = db.open().await?;
    let p = db.partition("s").await?;
    let pdir = db.describe_partition("s")?.dir.unwrap();
    let value = "x".repeat(100);
    let mut files = Vec::new();
    for round in 0..3 {
        for i in 0..60 {
            p.put(format!("k{i:02}"), &value).await?;
        }
        files.push(p.stats().files);
        let s = p.stats();
        let (count, bytes) = data_files(&pdir);
        let want = (count, bytes);
        assert_eq!(
            (s.files, s.live_bytes + s.dead_bytes),
            want,
            "round {round}: {s:?}"
        );
        assert_eq!(s.keys, 60);
        assert_eq!(s.live_bytes, 60 * (RECORD_HEADER + 3 + 100), "round {round}");
    }
    // 60 records of 128 bytes are ~1.9 files of 4 KiB per round.
    assert!(
        files[0] >= 2 && files[1] > files[0] && files[2] > files[1],
        "{files:?}"
    );
    let overwritten = 120 * (RECORD_HEADER + 3 + 100);
    assert!(p.stats().dead_bytes >= overwritten, "two rounds overwritten");
    db.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_mailbox_waits_and_group_commits() -> caskade::Result<()> {
    const WRITERS: usize = 64;
    let dir = tempfile::tempdir().unwrap();
    let db = builder(dir.path(), Durability::Always).mailbox_capacity(1);
    let db = db.open().await?;
    let p = db.partition("s").await?;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let p = p.clone();
            tokio::spawn(async move { p.put(format!("k{i}"), "v").await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task panicked")?;
    }
    let s = p.stats();
    println!("{WRITERS} concurrent writers: {s:?}");
    assert!(s.mailbox_full_waits > 0, "{s:?}");
    let n = WRITERS as u64;
    assert_eq!((s.writes, s.grouped_requests, s.keys), (n, n, n), "{s:?}");
    assert!(s.group_commits < n && s.max_group > 1, "no group formed: {s:?}");
    assert_eq!(s.snapshots_published, 1 + s.group_commits, "{s:?}");
    assert_eq!(s.fsyncs, s.group_commits, "one sync per group: {s:?}");
    db.close().await
}

#[tokio::test]
async fn eviction_counts_and_stats_kept_while_evicted() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = builder(dir.path(), Durability::OsBuffered).max_open_partitions(1);
    let db = db.open().await?;
    let a = db.partition("a").await?;
    for i in 0..5 {
        a.put(format!("k{i}"), "value").await?;
    }
    a.delete("k0").await?;
    assert!(a.get("k1").await?.is_some());
    let before = a.stats();
    assert!(before.open && before.dead_bytes > 0);

    let b = db.partition("b").await?;
    b.put("k", "v").await?;
    let s = db.stats();
    let want = (2, 1, 2, 0, 1, 0);
    let got = (
        s.partitions,
        s.open_partitions,
        s.opens,
        s.reopens,
        s.evictions,
        s.idle_evictions,
    );
    assert_eq!(got, want, "(partitions, open, opens, reopens, evictions, idle)");
    let evicted = a.stats();
    let counts = (evicted.open, evicted.opens, evicted.evictions);
    assert_eq!(counts, (false, 1, 1), "{evicted:?}");
    let same = |s: &PartitionStats| (s.keys, s.live_bytes, s.dead_bytes, s.files, s.reads, s.writes);
    assert_eq!(same(&evicted), same(&before), "kept while evicted");
    assert_eq!(
        db.describe_partition("a")?.stats,
        evicted,
        "describe does not reopen"
    );

    // Reading reopens it (evicting b); recovery recomputes the same sizes.
    assert_eq!(a.get("k4").await?.as_deref(), Some(&b"value"[..]));
    let r = a.stats();
    assert_eq!((r.open, r.opens, r.evictions), (true, 2, 1), "{r:?}");
    let record = RECORD_HEADER + 2 + 5;
    assert_eq!(
        (r.keys, r.live_bytes, r.dead_bytes),
        (4, 4 * record, before.dead_bytes)
    );
    assert_eq!(
        r.snapshots_published,
        before.snapshots_published + 1,
        "reopening publishes"
    );
    let s = db.stats();
    let want = (1, 3, 1, 2);
    assert_eq!(
        (s.open_partitions, s.opens, s.reopens, s.evictions),
        want,
        "{s:?}"
    );
    assert_eq!((b.stats().open, b.stats().evictions), (false, 1));
    db.close().await
}
