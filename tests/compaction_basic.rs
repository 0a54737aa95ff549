//! Compaction: reclaiming space, keeping every live value, dropping
//! tombstones safely (the resurrected-delete regression of basho/bitcask#82
//! and rosedblabs/rosedb#258), no-op reports, and reopening after it.

mod common;

use std::collections::BTreeMap;

use caskade::{CompactionOptions, CompactionScheduler, Db, Durability, PartitionOptions, SkipReason};

fn eager() -> PartitionOptions {
    PartitionOptions::default()
        .max_file_size(4096)
        .compaction(CompactionOptions::default().min_space_saving(0))
}

async fn open(root: &std::path::Path) -> Db {
    Db::builder(root)
        .durability(Durability::OsBuffered)
        .compaction_scheduler(CompactionScheduler::disabled())
        .open()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_reclaims_space_and_keeps_every_live_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let p = db.create_partition("p", eager()).await.unwrap();
    let mut model = BTreeMap::new();
    for round in 0..4u32 {
        for k in 0..200u32 {
            let v = format!("value-{round}-{k}-{}", "x".repeat(40));
            p.put(format!("key-{k}"), &v).await.unwrap();
            model.insert(format!("key-{k}"), v);
        }
    }
    for k in (0..200u32).step_by(3) {
        assert!(p.delete(format!("key-{k}")).await.unwrap());
        model.remove(&format!("key-{k}"));
    }
    let before = p.stats();
    assert!(before.dead_bytes > before.live_bytes, "{before:?}");
    let pdir = common::partition_dir(&db, "p");
    let files_before = common::data_files(&pdir).len();

    let report = p.compact().await.unwrap();
    assert!(report.performed(), "{report:?}");
    assert_eq!(report.records_copied, model.len() as u64);
    assert!(report.space_saved > 0 && report.bytes_after < report.bytes_before);
    assert_eq!(report.space_saved, report.bytes_before - report.bytes_after);
    let after = p.stats();
    assert_eq!(after.live_bytes, before.live_bytes);
    assert_eq!(after.keys, model.len() as u64);
    assert_eq!(after.compactions, 1);
    assert!(after.last_compaction.is_some());
    // Space: live data plus, per file, a header and at most one record of slack.
    let on_disk: u64 = common::data_files(&pdir)
        .iter()
        .map(|n| std::fs::metadata(pdir.join(n)).unwrap().len())
        .sum();
    assert!(
        on_disk as f64 <= 1.1 * after.live_bytes as f64 + 4096.0,
        "{on_disk} bytes on disk for {} live",
        after.live_bytes
    );
    assert!(common::data_files(&pdir).len() < files_before);

    for (k, v) in &model {
        assert_eq!(p.get(k).await.unwrap().as_deref(), Some(v.as_bytes()), "{k}");
    }
    for k in (0..200u32).step_by(3) {
        assert_eq!(p.get(format!("key-{k}")).await.unwrap(), None);
    }
    // Nothing left to reclaim.
    let again = p.compact().await.unwrap();
    assert_eq!(again.skipped, Some(SkipReason::NothingToReclaim), "{again:?}");
    db.close().await.unwrap();

    let db = open(dir.path()).await;
    let p = db.partition("p").await.unwrap();
    assert_eq!(p.stats().keys, model.len() as u64);
    for (k, v) in &model {
        assert_eq!(p.get(k).await.unwrap().as_deref(), Some(v.as_bytes()), "{k}");
    }
    db.close().await.unwrap();
}

/// basho/bitcask#82, rosedblabs/rosedb#258: delete, compact, restart — the
/// key must stay deleted (the tombstone may go only with every older record
/// of the key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_compact_restart_keeps_the_key_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let p = db.create_partition("p", eager()).await.unwrap();
    for i in 0..100u32 {
        p.put(format!("k{i}"), "x".repeat(100)).await.unwrap();
    }
    p.put("victim", "old value").await.unwrap();
    for i in 0..100u32 {
        p.put(format!("k{i}"), "y".repeat(100)).await.unwrap();
    }
    assert!(p.delete("victim").await.unwrap());
    // More writes after the delete, so its tombstone is sealed too.
    for i in 0..50u32 {
        p.put(format!("z{i}"), "z".repeat(100)).await.unwrap();
    }
    let report = p.compact().await.unwrap();
    assert!(report.performed());
    assert_eq!(p.get("victim").await.unwrap(), None);
    db.close().await.unwrap();

    for _ in 0..2 {
        let db = open(dir.path()).await;
        let p = db.partition("p").await.unwrap();
        assert_eq!(p.get("victim").await.unwrap(), None, "deleted key came back");
        assert_eq!(p.stats().keys, 150);
        // A second compaction, then another restart.
        p.put("k0", "again").await.unwrap();
        p.compact().await.unwrap();
        assert_eq!(p.get("victim").await.unwrap(), None, "deleted key came back");
        db.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_min_saving_is_a_no_op_report() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let opts = PartitionOptions::default().compaction(CompactionOptions::default().min_space_saving(1 << 30));
    let p = db.create_partition("p", opts).await.unwrap();
    p.put("k", "1").await.unwrap();
    p.put("k", "2").await.unwrap();
    let files = p.stats().files;
    let report = p.compact().await.unwrap();
    assert!(
        matches!(report.skipped, Some(SkipReason::BelowMinSaving { min_space_saving, .. }) if min_space_saving == 1 << 30),
        "{report:?}"
    );
    assert_eq!(report.records_copied, 0);
    // Nothing was sealed or rewritten.
    assert_eq!(p.stats().files, files);
    db.close().await.unwrap();
}
