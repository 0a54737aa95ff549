//! A lone delete of an absent key writes no record. During a compaction it
//! must not leave its key behind in the compaction's write tracking: found
//! by the kill -9 harness (`tests/kill9.rs`), where the actor thread then
//! panicked on the debug assertion "every committed group was published"
//! when it installed the compaction, and the partition was gone.

use caskade::{CompactionOptions, CompactionScheduler, Db, Durability, PartitionOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_deletes_of_absent_keys_during_a_compaction() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path())
        .durability(Durability::OsBuffered)
        .compaction_scheduler(CompactionScheduler::disabled())
        // The slowest copy allowed: the compaction below runs for ~0.5 s.
        .compaction_rate_limit(1 << 20)
        .open()
        .await?;
    let options = PartitionOptions::default()
        .max_file_size(64 << 10)
        .compaction(CompactionOptions::default().min_space_saving(0));
    let p = db.create_partition("p", options).await?;
    // Every key written twice: half the bytes dead, ~500 KiB live to copy.
    for round in 0..2u8 {
        for chunk in 0..20 {
            let mut batch = p.batch();
            for i in 0..100 {
                batch.put(format!("k{chunk}_{i}"), [round; 250]);
            }
            batch.commit().await?;
        }
    }
    let compaction = tokio::spawn({
        let p = p.clone();
        async move { p.compact().await }
    });
    let mut deletes = 0;
    while !compaction.is_finished() {
        assert!(!p.delete("absent").await?, "the key was never written");
        deletes += 1;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let report = compaction.await.expect("compaction task")?;
    assert!(
        report.skipped.is_none() && report.files_compacted > 0,
        "{report:?}"
    );
    assert!(deletes > 10, "the deletes ran during the copy: {deletes}");
    // The actor is alive and the partition consistent.
    p.put("after", "ok").await?;
    assert_eq!(p.get("k3_7").await?.as_deref(), Some(&[1u8; 250][..]));
    assert_eq!(p.get("absent").await?, None);
    db.close().await
}
