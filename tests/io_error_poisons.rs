//! An I/O failure on the write path poisons the partition: writes refused, reads served, reopen recovers.

use std::time::{Duration, Instant};

use caskade::{Bytes, Db, Durability, Error, Partition, SimDisk, SimFault, SimOp};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Restart {
    /// `kill -9`: the page cache (every written byte) survives.
    ProcessCrash,
    /// `Db::close`, then a power loss without torn writes.
    CloseThenPowerLoss,
}

async fn open(disk: &SimDisk, max_file_size: u64) -> caskade::Result<(Db, Partition)> {
    let db = Db::builder("/db")
        .simulated_disk(disk.clone())
        .max_file_size(max_file_size)
        .open()
        .await?;
    let p = db.partition("p").await?;
    Ok((db, p))
}

async fn restart(disk: &SimDisk, db: Db, p: Partition, how: Restart) -> caskade::Result<(Db, Partition)> {
    match how {
        Restart::ProcessCrash => {
            disk.process_crash();
            drop((p, db));
        }
        Restart::CloseThenPowerLoss => {
            drop(p);
            db.close().await?;
            disk.power_loss(false);
        }
    }
    open(disk, 4096).await
}

fn is_poisoned(r: caskade::Result<impl std::fmt::Debug>) -> bool {
    matches!(r, Err(Error::Poisoned { ref partition }) if partition == "p")
}

/// Every write path refuses with `Poisoned`; reads still answer from `acked`.
async fn assert_poisoned(p: &Partition, acked: &[(String, String)], ctx: &str) -> caskade::Result<()> {
    assert!(is_poisoned(p.put("later", "x").await), "{ctx}: put");
    assert!(is_poisoned(p.delete(&acked[0].0).await), "{ctx}: delete");
    assert!(
        is_poisoned(p.delete("absent").await),
        "{ctx}: delete of an absent key"
    );
    let mut b = p.batch();
    b.put("b1", "x").put("b2", "y");
    assert!(is_poisoned(b.commit().await), "{ctx}: batch");
    assert!(is_poisoned(p.sync().await), "{ctx}: sync");
    assert_acked(p, acked, ctx).await?;
    assert!(
        !p.contains_key("later").await? && !p.contains_key("b1").await?,
        "{ctx}"
    );
    Ok(())
}

async fn assert_acked(p: &Partition, acked: &[(String, String)], ctx: &str) -> caskade::Result<()> {
    for (k, v) in acked {
        assert_eq!(
            p.get(k).await?.as_deref(),
            Some(v.as_bytes()),
            "{ctx}: acknowledged {k}"
        );
    }
    Ok(())
}

async fn fault_on_put(op: SimOp, fault: SimFault, how: Restart) -> caskade::Result<()> {
    let ctx = format!("{op:?}/{fault:?}/{how:?}");
    let disk = SimDisk::new();
    let (db, p) = open(&disk, 4096).await?;
    let mut acked = Vec::new();
    for i in 0..20 {
        let (k, v) = (format!("k{i}"), format!("value-{i}"));
        p.put(&k, &v).await?;
        acked.push((k, v));
    }
    let mut b = p.batch();
    b.put("k0", "batched").delete("k1");
    b.commit().await?;
    acked[0].1 = "batched".into();
    acked.remove(1);

    disk.fail(op, 1, fault, false);
    let err = p.put("k2", "failed").await.expect_err("the faulted put fails");
    assert!(matches!(err, Error::Io { .. }), "{ctx}: {err:?}");
    assert_eq!(disk.faults_injected(), 1, "{ctx}");
    // No version was published for the failed write.
    assert_eq!(p.get("k2").await?.as_deref(), Some(&b"value-2"[..]), "{ctx}");
    assert_eq!(
        p.snapshot().await.unwrap().get("k2")?.as_deref(),
        Some(&b"value-2"[..]),
        "{ctx}"
    );
    disk.clear_faults();
    assert_poisoned(&p, &acked, &ctx).await?;
    // Sticky: still poisoned on a second round.
    assert!(is_poisoned(p.put("k3", "again").await), "{ctx}");

    let (db, p) = restart(&disk, db, p, how).await?;
    // `k2`, the failed put's key, is checked on its own below.
    acked.retain(|(k, _)| k != "k2");
    assert_acked(&p, &acked, &ctx).await?;
    let k2 = p.get("k2").await?;
    if op == SimOp::Write || how == Restart::CloseThenPowerLoss {
        // Nothing of the failed write became durable (a short write leaves a
        // torn record, which recovery cuts off).
        assert_eq!(k2, Some(Bytes::from_static(b"value-2")), "{ctx}");
    } else {
        // A failed sync after a complete write: either outcome is allowed.
        assert!(
            matches!(k2.as_deref(), Some(b"value-2" | b"failed")),
            "{ctx}: {k2:?}"
        );
    }
    assert!(
        !p.contains_key("later").await? && !p.contains_key("b1").await?,
        "{ctx}"
    );
    // Writable again, and durably so.
    p.put("later", "ok").await?;
    p.delete("k3").await?;
    let (db, p) = restart(&disk, db, p, how).await?;
    assert_eq!(p.get("later").await?.as_deref(), Some(&b"ok"[..]), "{ctx}");
    assert!(!p.contains_key("k3").await?, "{ctx}");
    db.close().await
}

#[tokio::test]
async fn write_eio_poisons() -> caskade::Result<()> {
    fault_on_put(SimOp::Write, SimFault::Eio, Restart::ProcessCrash).await?;
    fault_on_put(SimOp::Write, SimFault::Eio, Restart::CloseThenPowerLoss).await
}

#[tokio::test]
async fn write_enospc_poisons() -> caskade::Result<()> {
    fault_on_put(SimOp::Write, SimFault::Enospc, Restart::ProcessCrash).await?;
    fault_on_put(SimOp::Write, SimFault::Enospc, Restart::CloseThenPowerLoss).await
}

#[tokio::test]
async fn short_write_poisons() -> caskade::Result<()> {
    fault_on_put(SimOp::Write, SimFault::ShortWrite, Restart::ProcessCrash).await?;
    fault_on_put(SimOp::Write, SimFault::ShortWrite, Restart::CloseThenPowerLoss).await
}

#[tokio::test]
async fn sync_data_eio_poisons() -> caskade::Result<()> {
    fault_on_put(SimOp::SyncData, SimFault::Eio, Restart::ProcessCrash).await?;
    fault_on_put(SimOp::SyncData, SimFault::Eio, Restart::CloseThenPowerLoss).await
}

/// A fault in one step of a file rotation (tiny `max_file_size`).
async fn fault_on_rotation(op: SimOp, failed_op: &str, how: Restart) -> caskade::Result<()> {
    let ctx = format!("rotation {op:?}/{how:?}");
    let disk = SimDisk::new();
    let (db, p) = open(&disk, 4096).await?;
    let value = "v".repeat(100);
    // Armed after the partition's creation: the next such op is a rotation's.
    disk.fail(op, 1, SimFault::Eio, false);
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..200 {
        let k = format!("k{i}");
        match p.put(&k, format!("{value}{i}")).await {
            Ok(()) => acked.push((k, format!("{value}{i}"))),
            Err(e) => {
                failure = Some((i, e));
                break;
            }
        }
    }
    let (i, err) = failure.expect("a rotation must happen within 200 puts of 130 bytes");
    assert!(i > 20, "{ctx}: failed at put {i}, before the file could be full");
    assert!(
        matches!(err, Error::Io { op, .. } if op == failed_op),
        "{ctx}: {err:?}"
    );
    assert!(
        !p.contains_key(format!("k{i}")).await?,
        "{ctx}: failed put visible"
    );
    disk.clear_faults();
    assert_poisoned(&p, &acked, &ctx).await?;

    let (db, p) = restart(&disk, db, p, how).await?;
    assert_acked(&p, &acked, &ctx).await?;
    assert_eq!(
        p.snapshot().await.unwrap().len(),
        acked.len(),
        "{ctx}: only acknowledged keys"
    );
    // The reopened partition rotates fine and keeps everything.
    for j in 0..100 {
        let k = format!("n{j}");
        p.put(&k, &value).await?;
        acked.push((k, value.clone()));
    }
    let (db, p) = restart(&disk, db, p, how).await?;
    assert_acked(&p, &acked, &ctx).await?;
    let data_files = disk
        .list_files()
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "data"))
        .count();
    assert!(
        data_files >= 3,
        "{ctx}: rotations after reopen: {:?}",
        disk.list_files()
    );
    db.close().await
}

#[tokio::test]
async fn create_failure_during_rotation_poisons() -> caskade::Result<()> {
    fault_on_rotation(SimOp::Create, "create", Restart::ProcessCrash).await?;
    fault_on_rotation(SimOp::Create, "create", Restart::CloseThenPowerLoss).await
}

#[tokio::test]
async fn rename_failure_during_rotation_poisons() -> caskade::Result<()> {
    fault_on_rotation(SimOp::Rename, "rename", Restart::ProcessCrash).await?;
    fault_on_rotation(SimOp::Rename, "rename", Restart::CloseThenPowerLoss).await
}

#[tokio::test]
async fn sync_dir_failure_during_rotation_poisons() -> caskade::Result<()> {
    fault_on_rotation(SimOp::SyncDir, "sync_dir", Restart::ProcessCrash).await?;
    fault_on_rotation(SimOp::SyncDir, "sync_dir", Restart::CloseThenPowerLoss).await
}

/// A failed sync nobody waits for (the interval timer's) poisons as well: the
/// next write reports `Poisoned`; a process crash then loses nothing.
#[tokio::test]
async fn failed_interval_sync_poisons() -> caskade::Result<()> {
    let disk = SimDisk::new();
    let db = Db::builder("/db")
        .simulated_disk(disk.clone())
        .durability(Durability::Interval(Duration::from_millis(10)))
        .open()
        .await?;
    let p = db.partition("p").await?;
    disk.fail(SimOp::SyncData, 1, SimFault::Eio, false);
    let mut acked = Vec::new();
    for i in 0..10 {
        let (k, v) = (format!("k{i}"), format!("value-{i}"));
        p.put(&k, &v).await?;
        acked.push((k, v));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while disk.faults_injected() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(disk.faults_injected(), 1, "the interval sync never ran");
    disk.clear_faults();
    assert_poisoned(&p, &acked, "interval").await?;
    let (db, p) = restart(&disk, db, p, Restart::ProcessCrash).await?;
    assert_acked(&p, &acked, "interval").await?;
    p.put("later", "ok").await?;
    db.close().await
}

/// A write cut short by a full disk leaves an unfinished record; reopening
/// must not need free space to recover from it.
#[tokio::test]
async fn partial_write_on_a_full_disk_still_reopens() -> caskade::Result<()> {
    let disk = SimDisk::new();
    let db = Db::builder("/db").simulated_disk(disk.clone()).open().await?;
    let p = db.partition("p").await?;
    for i in 0..10u32 {
        p.put(i.to_be_bytes(), [1u8; 200]).await?;
    }
    disk.fail(SimOp::Write, 1, SimFault::ShortWrite, false);
    assert!(p.put("torn", [2u8; 200]).await.is_err());
    // From now on every write fails with ENOSPC.
    disk.fail(SimOp::Write, 1, SimFault::Enospc, true);
    disk.process_crash();
    drop((p, db));
    let db = Db::builder("/db").simulated_disk(disk.clone()).open().await?;
    let p = db.partition("p").await?;
    for i in 0..10u32 {
        assert_eq!(p.get(i.to_be_bytes()).await?.as_deref(), Some(&[1u8; 200][..]));
    }
    assert_eq!(p.get("torn").await?, None);
    disk.clear_faults();
    db.close().await
}
