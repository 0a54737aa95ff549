//! Directory entries an acknowledged write depends on are durable: a crash
//! between a rename (or mkdir) and its directory fsync, followed by a
//! restart, an acknowledged write and a power loss, loses nothing.

use caskade::{Db, SimDisk, SimFault, SimOp};

async fn open(disk: &SimDisk) -> caskade::Result<Db> {
    Db::builder("/db").simulated_disk(disk.clone()).open().await
}

async fn assert_survives_power_loss(disk: &SimDisk) -> caskade::Result<()> {
    let db = open(disk).await?;
    let p = db.partition("p").await?;
    p.put("k", "acked-under-Always").await?;
    disk.power_loss(false);
    drop((p, db));
    let db = open(disk).await?;
    let p = db.partition("p").await?;
    assert_eq!(
        p.get("k").await?.as_deref(),
        Some(&b"acked-under-Always"[..]),
        "acknowledged write lost: a directory entry it depends on was never synced"
    );
    db.close().await
}

/// Crash after the new partition's MANIFEST rename, before its directory sync.
#[tokio::test]
async fn crash_before_manifest_dir_sync_then_restart() -> caskade::Result<()> {
    let disk = SimDisk::new();
    let db = open(&disk).await?;
    // SyncDir #1: /db/partitions (the entry of p); #2: p after the MANIFEST rename.
    disk.fail(SimOp::SyncDir, 2, SimFault::Eio, false);
    assert!(
        db.partition("p").await.is_err(),
        "the injected failure must stop the opening"
    );
    disk.process_crash();
    drop(db);
    assert_survives_power_loss(&disk).await
}

/// The partition directory was created but its parent's sync failed; a retry
/// in the same process must sync the parent even though the directory exists.
#[tokio::test]
async fn retried_open_syncs_the_parent_of_an_existing_dir() -> caskade::Result<()> {
    let disk = SimDisk::new();
    let db = open(&disk).await?;
    disk.fail(SimOp::SyncDir, 1, SimFault::Eio, false);
    assert!(
        db.partition("p").await.is_err(),
        "the injected failure must stop the opening"
    );
    let p = db.partition("p").await?;
    p.put("k", "acked-under-Always").await?;
    disk.power_loss(false);
    drop((p, db));
    let db = open(&disk).await?;
    let p = db.partition("p").await?;
    assert_eq!(p.get("k").await?.as_deref(), Some(&b"acked-under-Always"[..]));
    db.close().await
}

/// Crash in the middle of creating the root and partitions directories.
#[tokio::test]
async fn crash_while_creating_the_root() -> caskade::Result<()> {
    for nth in 1..=2 {
        let disk = SimDisk::new();
        disk.fail(SimOp::SyncDir, nth, SimFault::Eio, false);
        assert!(
            open(&disk).await.is_err(),
            "sync_dir #{nth} failure must stop the open"
        );
        disk.process_crash();
        assert_survives_power_loss(&disk).await?;
    }
    Ok(())
}
