//! The index's background fold (ARCHITECTURE.md, "The index"): a partition
//! that stops writing while a fold runs still installs and publishes the
//! merged base, and every key reads back across folds and a reopen.

use std::time::Duration;

use caskade::Db;

const KEYS: u32 = 30_000;

fn key(i: u32) -> String {
    format!("key-{i:08}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_partition_installs_its_finished_fold() -> caskade::Result<()> {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::builder(dir.path()).open().await?;
    let p = db.partition("folds").await?;
    // Batches of new keys: the delta outgrows 4,096 entries and an eighth
    // of the base again and again, and folds start. Each batch is one group
    // commit and publishes one version; a version published while no write
    // arrives is the idle actor installing a fold that finished after the
    // last write (the merge of a larger base outlasts a batch's inserts).
    let mut expected = p.stats().snapshots_published;
    let mut settled = 0;
    let mut written = 0;
    while written < KEYS {
        let mut batch = p.batch();
        for i in written..written + 1000 {
            batch.put(key(i), i.to_le_bytes());
        }
        batch.commit().await?;
        written += 1000;
        expected += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let published = p.stats().snapshots_published;
        assert!(published - expected <= 1, "at most one settle per fold");
        settled += published - expected;
        expected = published;
    }
    assert!(settled > 0, "no fold was ever installed without a write");
    let quiet = p.stats().snapshots_published;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(p.stats().snapshots_published, quiet, "nothing left to install");
    for i in (0..KEYS).step_by(7) {
        assert_eq!(
            p.get(key(i)).await?.as_deref(),
            Some(&i.to_le_bytes()[..]),
            "{}",
            key(i)
        );
    }
    assert_eq!(p.snapshot().await?.len(), KEYS as usize);
    db.close().await?;

    let db = Db::builder(dir.path()).open().await?;
    let p = db.partition("folds").await?;
    assert_eq!(p.snapshot().await?.len(), KEYS as usize);
    for i in (0..KEYS).step_by(13) {
        assert_eq!(p.get(key(i)).await?.as_deref(), Some(&i.to_le_bytes()[..]));
    }
    db.close().await
}
