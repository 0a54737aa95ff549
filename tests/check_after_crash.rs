//! `check` raises no false alarm after a crash: a workload (puts,
//! overwrites, deletes, batches, rotation, a compaction, a partition
//! created and dropped) is cut by a persistent I/O failure at its k-th
//! operation of a kind, then the disk loses power (unsynced appends torn
//! at random, or all lost) or the process is killed (nothing lost). Whatever state that leaves, `check` reports no error —
//! only warnings, for what recovery repairs — and after one reopen of
//! every partition it reports nothing at all.
//!
//! `CASKADE_CHECK_CRASH_STEP` (default 1) tries only every n-th k.

use caskade::{
    CompactionScheduler, Db, Durability, Error, OfflineDb, PartitionOptions, ProblemKind, Severity, SimDisk,
    SimFault, SimOp,
};

const ROOT: &str = "/db";

async fn open(disk: &SimDisk) -> caskade::Result<Db> {
    Db::builder(ROOT)
        .simulated_disk(disk.clone())
        .max_file_size(4096)
        .compaction_scheduler(CompactionScheduler::disabled())
        .open()
        .await
}

/// The workload; stops at the first error (the injected fault).
async fn workload(db: &Db) -> caskade::Result<()> {
    let buffered = PartitionOptions::default().durability(Durability::OsBuffered);
    let p = db.create_partition("p", buffered).await?;
    let q = db.partition("q").await?;
    for i in 0..90u32 {
        p.put(format!("key-{i:03}"), format!("value {i} {}", "v".repeat(40)))
            .await?;
        if i % 10 == 0 {
            q.put(format!("q-{i}"), "durable").await?;
        }
    }
    for i in (0..90u32).step_by(4) {
        p.delete(format!("key-{i:03}")).await?;
    }
    let mut b = p.batch();
    for i in 0..5u32 {
        b.put(format!("key-{i:03}"), "batched");
    }
    b.commit().await?;
    p.compact().await?;
    let t = db.partition("tmp").await?;
    t.put("k", "v").await?;
    db.drop_partition("tmp").await?;
    for i in 0..20u32 {
        p.put(format!("late-{i}"), "after the compaction").await?;
    }
    Ok(())
}

/// Problems `check` finds, as (kind, severity, path) text; `None` if no
/// database directory survived (its creation failed or was not durable).
fn problems(disk: &SimDisk) -> Option<Vec<(ProblemKind, Severity, String)>> {
    let offline = match OfflineDb::open_simulated(ROOT, disk) {
        Ok(offline) => offline,
        Err(Error::NotADatabase { .. }) => return None,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("no Db holds the lock after the crash: {e}"),
    };
    let report = offline.check();
    let found = report
        .problems
        .iter()
        .map(|p| {
            (
                p.kind,
                p.severity(),
                format!("{} @{:?}: {}", p.path.display(), p.offset, p.detail),
            )
        })
        .collect();
    Some(found)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_false_alarm_after_a_crash_at_any_operation() {
    // How many operations of each kind a full run makes.
    let disk = SimDisk::new();
    let db = open(&disk).await.unwrap();
    workload(&db).await.unwrap();
    db.close().await.unwrap();
    assert_eq!(problems(&disk), Some(vec![]), "a clean run");
    let kinds = [
        (SimOp::Write, SimFault::Eio),
        (SimOp::Write, SimFault::ShortWrite),
        (SimOp::SyncData, SimFault::Eio),
        (SimOp::SyncAll, SimFault::Eio),
        (SimOp::Rename, SimFault::Eio),
        (SimOp::Create, SimFault::Enospc),
        (SimOp::SetLen, SimFault::Eio),
        (SimOp::SyncDir, SimFault::Eio),
        (SimOp::Remove, SimFault::Eio),
        (SimOp::CreateDir, SimFault::Eio),
    ];
    let totals: Vec<u64> = kinds.iter().map(|&(op, _)| disk.op_count(op)).collect();

    let step: u64 = std::env::var("CASKADE_CHECK_CRASH_STEP").map_or(1, |s| s.parse().unwrap());
    let (mut states, mut warnings, mut no_db) = (0u64, 0u64, 0u64);
    let mut wrong: Vec<String> = Vec::new();
    for (&(op, fault), &total) in kinds.iter().zip(&totals) {
        for (k, crash) in (1..=total)
            .step_by(step.max(1) as usize)
            .flat_map(|k| [0, 1, 2].map(|c| (k, c)))
        {
            let disk = SimDisk::with_seed(k);
            disk.fail(op, k, fault, true);
            if let Ok(db) = open(&disk).await {
                let _ = workload(&db).await;
                // Close is part of the run (it may fail on the fault).
                let _ = db.close().await;
            }
            match crash {
                0 => disk.power_loss(true),
                1 => disk.power_loss(false),
                _ => disk.process_crash(),
            }
            disk.clear_faults();
            states += 1;
            let Some(found) = problems(&disk) else {
                no_db += 1;
                continue;
            };
            warnings += found.len() as u64;
            let errors: Vec<_> = found.iter().filter(|(_, s, _)| *s == Severity::Error).collect();
            if !errors.is_empty() {
                wrong.push(format!("{op:?} {fault:?} #{k} crash {crash}: {errors:?}"));
                continue;
            }
            // Recovery repairs every warning.
            let db = open(&disk).await.unwrap();
            for name in db.list_partitions() {
                db.partition(&name).await.unwrap().get("key-001").await.unwrap();
            }
            db.close().await.unwrap();
            let left = problems(&disk).unwrap_or_default();
            if !left.is_empty() {
                wrong.push(format!(
                    "{op:?} {fault:?} #{k} crash {crash}: after reopening: {left:?}"
                ));
            }
        }
    }
    println!(
        "reliability: harness=check_after_crash states={states} no_db={no_db} warnings={warnings} false_alarms={}",
        wrong.len()
    );
    assert!(wrong.is_empty(), "{} wrong:\n{}", wrong.len(), wrong.join("\n"));
}
