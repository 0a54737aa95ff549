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
    // The replaced files are deleted in the background once nothing reads them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while p.stats().obsolete_files > 0 {
        assert!(std::time::Instant::now() < deadline, "replaced files not deleted");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_live_record_fails_the_compaction_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let p = db.create_partition("p", eager()).await.unwrap();
    for k in 0..200u32 {
        p.put(format!("key-{k:04}"), format!("value-{k:04}-{}", "v".repeat(60)))
            .await
            .unwrap();
    }
    // Dead bytes in later files; key-0010's record in the first file stays live.
    for k in 100..200u32 {
        p.put(format!("key-{k:04}"), "new").await.unwrap();
    }
    let pdir = common::partition_dir(&db, "p");
    db.close().await.unwrap();
    let first = pdir.join(&common::data_files(&pdir)[0]);
    let mut bytes = std::fs::read(&first).unwrap();
    let at = bytes
        .windows(8)
        .position(|w| w == b"key-0010")
        .expect("key-0010 in the first file");
    // A byte of the value (the key is followed by "value-0010-...").
    bytes[at + 8 + 3] ^= 0x20;
    std::fs::write(&first, &bytes).unwrap();
    let files_before = common::data_files(&pdir);

    // The open trusts the hint, so only a read of the record sees the damage.
    let db = open(dir.path()).await;
    let p = db.partition("p").await.unwrap();
    match p.compact().await {
        Err(caskade::Error::Corrupt { file, .. }) => assert_eq!(file, first),
        other => panic!("expected Corrupt naming {}, got {other:?}", first.display()),
    }
    // Every input is still there, and besides them at most the new active
    // file of the sealing rotation: the outputs are gone.
    let after = common::data_files(&pdir);
    assert!(
        files_before.iter().all(|f| after.contains(f)),
        "{files_before:?} -> {after:?}"
    );
    assert!(
        after.len() <= files_before.len() + 1,
        "{files_before:?} -> {after:?}"
    );
    assert_eq!(
        std::fs::read(&first).unwrap(),
        bytes,
        "the damaged file is left as it was"
    );
    let stats = p.stats();
    assert_eq!((stats.compactions, stats.failed_compactions), (0, 1));
    for k in (0..200u32).filter(|&k| k != 10) {
        let want = if k >= 100 {
            "new".to_string()
        } else {
            format!("value-{k:04}-{}", "v".repeat(60))
        };
        assert_eq!(
            p.get(format!("key-{k:04}")).await.unwrap().as_deref(),
            Some(want.as_bytes())
        );
    }
    assert!(matches!(
        p.get("key-0010").await,
        Err(caskade::Error::Corrupt { .. })
    ));
    p.put("after", "works").await.unwrap();
    assert_eq!(p.get("after").await.unwrap().as_deref(), Some(&b"works"[..]));
    db.close().await.unwrap();
    // No output was left behind: every data file is an input or written after.
    let db = open(dir.path()).await;
    let p = db.partition("p").await.unwrap();
    assert_eq!(p.get("after").await.unwrap().as_deref(), Some(&b"works"[..]));
    db.close().await.unwrap();
}
