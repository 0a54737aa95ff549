//! Smoke test: eviction is invisible to handle holders.

use caskade::{Db, Durability, PartitionOptions, Persistence, Schema};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_survive_eviction() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path())
        .durability(Durability::OsBuffered)
        .max_open_partitions(2)
        .open()
        .await?;
    let mut handles = Vec::new();
    for i in 0..6 {
        let p = db.partition(&format!("tenant {i}")).await?;
        p.put("k", format!("v{i}")).await?;
        handles.push(p);
    }
    let s = db.stats();
    assert!(s.open_partitions <= 2, "{s:?}");
    assert!(s.evictions >= 4, "{s:?}");
    for (i, p) in handles.iter().enumerate() {
        assert_eq!(p.get("k").await?.as_deref(), Some(format!("v{i}").as_bytes()));
        p.put("k2", "x").await?;
    }
    let s = db.stats();
    assert!(s.reopens >= 4, "{s:?}");
    assert!(s.open_partitions <= 2, "{s:?}");
    let c = db
        .create_partition("counters", PartitionOptions::default().schema(Schema::Int))
        .await?;
    assert_eq!(c.incr("n", 5).await?, 5);
    assert!(c.put("n", "x").await.is_err());
    let m = db
        .create_partition(
            "mem",
            PartitionOptions::default().persistence(Persistence::Memory),
        )
        .await?;
    m.put("a", "b").await?;
    assert_eq!(m.get("a").await?.as_deref(), Some(&b"b"[..]));
    db.drop_partition("tenant 0").await?;
    assert!(matches!(
        handles[0].get("k").await,
        Err(caskade::Error::PartitionDropped { .. })
    ));
    let again = db.partition("tenant 0").await?;
    assert_eq!(again.get("k").await?, None);
    let names = db.list_partitions();
    db.close().await?;
    let db = Db::open(dir.path()).await?;
    assert_eq!(db.list_partitions(), names);
    assert_eq!(db.get("tenant 3", "k").await?.as_deref(), Some(&b"v3"[..]));
    assert_eq!(db.get("mem", "a").await?, None, "memory-only contents are gone");
    assert_eq!(db.describe_partition("counters")?.options.schema, Schema::Int);
    db.close().await
}
