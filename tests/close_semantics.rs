//! Closing: every request gets an answer (never a hang), and `close` reports
//! a failure that may have cost acknowledged writes.

use std::time::{Duration, Instant};

use caskade::{Db, Durability, SimDisk, SimFault, SimOp};

/// Under `Interval`, a failed background fsync may lose acknowledged writes;
/// nobody was told when it happened, so `close` must say so.
#[tokio::test]
async fn failed_background_sync_is_reported_by_close() -> caskade::Result<()> {
    let disk = SimDisk::new();
    let db = Db::builder("/db")
        .simulated_disk(disk.clone())
        .durability(Durability::Interval(Duration::from_millis(5)))
        .open()
        .await?;
    let p = db.partition("p").await?;
    disk.fail(SimOp::SyncData, 1, SimFault::Eio, false);
    p.put("k", "v").await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while disk.faults_injected() == 0 {
        assert!(Instant::now() < deadline, "the interval sync never ran");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let closed = db.close().await;
    assert!(
        matches!(closed, Err(caskade::Error::Io { op: "sync_data", .. })),
        "close must report the failed sync, got {closed:?}"
    );
    Ok(())
}

/// Under `Always`, a failed write hits only the unacknowledged write, whose
/// requester got the error: close succeeds and everything acknowledged is there.
#[tokio::test]
async fn reported_write_failure_does_not_fail_close() -> caskade::Result<()> {
    let disk = SimDisk::new();
    let db = Db::builder("/db").simulated_disk(disk.clone()).open().await?;
    let p = db.partition("p").await?;
    p.put("a", "1").await?;
    disk.fail(SimOp::Write, 1, SimFault::Eio, false);
    assert!(p.put("b", "2").await.is_err());
    db.close().await?;
    disk.power_loss(false);
    let db = Db::builder("/db").simulated_disk(disk.clone()).open().await?;
    let p = db.partition("p").await?;
    assert_eq!(p.get("a").await?.as_deref(), Some(&b"1"[..]));
    assert_eq!(p.get("b").await?, None);
    db.close().await
}

/// Writers racing with close all get an answer (done or `Closed`), even with
/// a one-slot mailbox where requests queue behind the shutdown.
#[test]
fn writes_racing_close_are_all_answered() {
    for iter in 0..100 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let hung = rt.block_on(async {
            let disk = SimDisk::with_seed(iter);
            let db = Db::builder("/db")
                .simulated_disk(disk)
                .mailbox_capacity(1)
                .open()
                .await
                .unwrap();
            let p = db.partition("p").await.unwrap();
            let mut tasks = Vec::new();
            for t in 0..8u32 {
                let p = p.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0u32.. {
                        if p.put(t.to_be_bytes(), i.to_be_bytes()).await.is_err() {
                            break;
                        }
                    }
                }));
            }
            tokio::task::yield_now().await;
            db.close().await.unwrap();
            let mut hung = 0;
            for t in tasks {
                if tokio::time::timeout(Duration::from_secs(5), t).await.is_err() {
                    hung += 1;
                }
            }
            drop(p);
            hung
        });
        rt.shutdown_background();
        assert_eq!(
            hung, 0,
            "iteration {iter}: {hung} writer task(s) never got an answer"
        );
    }
}
