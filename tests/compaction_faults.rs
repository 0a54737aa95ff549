//! Compaction under injected I/O errors (one fault at every operation it
//! makes), a timeout, and the space it leaves: the error reaches the caller
//! or was harmless, nothing acknowledged is lost, a rolled-back compaction
//! leaves no output behind, a switched manifest poisons, and every reopen
//! is clean.

mod crash_harness;

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, Instant};

use caskade::{CompactionOptions, Durability, Error, Partition, SimDisk, SimFault, SimOp, SkipReason};
use crash_harness::{
    KINDS, Model, Op, assert_only_listed, check_reopen, counts, data_bytes, eager, files_in, fill, freeze,
    kind_of, manifest, open, partition_dir, read_state, value,
};

/// How the database ends before the reopen.
#[derive(Debug, Clone, Copy)]
enum Restart {
    /// `Db::close`, then a reopen (no power loss).
    Clean,
    /// A torn power loss right after the failed compaction.
    PowerLoss,
}

/// The ids of the data files in `dir`.
fn data_ids(disk: &SimDisk, dir: &Path) -> BTreeSet<u32> {
    files_in(disk, dir)
        .into_iter()
        .filter(|f| f.1)
        .map(|f| f.0)
        .collect()
}

/// A partition filled with [`fill`] on a fresh disk, the model of what it
/// holds, and that of what survives a power loss: under `OsBuffered` the
/// last ten writes are not synced.
async fn filled(seed: u64, durability: Durability) -> (SimDisk, caskade::Db, Partition, Model, Model) {
    let disk = SimDisk::with_seed(seed);
    let db = open(&disk).await.unwrap();
    let p = db
        .create_partition("p", eager().durability(durability))
        .await
        .unwrap();
    let mut model = Model::default();
    let ops = fill();
    let (synced, unsynced) = ops.split_at(ops.len() - 10);
    for op in synced {
        model.apply(&p, op).await.unwrap();
    }
    p.sync().await.unwrap();
    let mut durable = model.clone();
    for op in unsynced {
        model.apply(&p, op).await.unwrap();
        durable.doubt(op);
    }
    if durability == Durability::Always {
        durable = model.clone();
    }
    (disk, db, p, model, durable)
}

/// Whether `e` carries the failure `fault` injects.
fn is_injected(e: &Error, fault: SimFault) -> bool {
    let Error::Io { source, .. } = e else { return false };
    match fault {
        SimFault::Eio => source.raw_os_error() == Some(5),
        SimFault::Enospc => source.raw_os_error() == Some(28),
        SimFault::ShortWrite => source.kind() == ErrorKind::WriteZero,
        _ => false,
    }
}

/// One injected fault: the `nth` operation of kind `op` that `compact()`
/// makes fails with `fault`, once.
#[derive(Debug, Clone, Copy)]
struct Case {
    op: SimOp,
    nth: u64,
    fault: SimFault,
    durability: Durability,
}

/// Runs `case` and checks what follows. Returns whether the compaction
/// succeeded.
async fn fault_in_compaction(case: Case, restart: Restart) -> bool {
    let Case {
        op,
        nth,
        fault,
        durability,
    } = case;
    let ctx = format!("{op:?} #{nth} {fault:?} under {durability:?}, {restart:?}");
    let (disk, db, p, mut model, mut durable) = filled(nth, durability).await;
    let dir = partition_dir(&db);
    let (before, next_id) = manifest(&disk, &dir);
    let files_before = data_ids(&disk, &dir);
    disk.fail(op, nth, fault, false);
    let result = p.compact().await;
    assert_eq!(disk.faults_injected(), 1, "{ctx}: the fault did not fire");
    let (listed, _) = manifest(&disk, &dir);
    // The manifest as the seal leaves it: the active file sealed, a new one
    // (whose id comes after the ids reserved for the outputs).
    let sealed_active = (listed.len() == before.len() + 1 && listed[..before.len()] == before[..])
        .then(|| listed[before.len()]);
    if let Some(active) = sealed_active {
        assert!(
            active >= next_id,
            "{ctx}: new active file {active} below the next id {next_id}"
        );
    }
    let probe = Op::Put("probe".into(), value("probe", 9));
    let write = model.apply(&p, &probe).await;
    match durability {
        Durability::Always => durable = model.clone(),
        _ => durable.doubt(&probe),
    }
    let poisoned = match write {
        Ok(()) => false,
        Err(Error::Poisoned { ref partition }) if partition == "p" => true,
        Err(e) => panic!("{ctx}: a write after the compaction: {e:?}"),
    };
    match &result {
        Ok(report) => {
            assert!(report.performed(), "{ctx}: {report:?}");
            assert!(!poisoned, "{ctx}: poisoned after a successful compaction");
            assert!(!listed.iter().any(|id| before.contains(id)), "{ctx}: {listed:?}");
            if op != SimOp::Remove {
                // The replaced files are gone already (a failed removal
                // leaves one to the next open).
                assert_only_listed(&disk, &dir, &ctx);
            }
        }
        Err(e) => {
            assert_eq!(kind_of(e), Some(op), "{ctx}: not the injected error: {e:?}");
            assert!(is_injected(e, fault), "{ctx}: {e:?}");
            // The first directory sync of a compaction is that of the
            // seal's manifest: the new active file's entry may not be
            // durable, so nothing more may be written to it.
            let seal_sync = op == SimOp::SyncDir && nth == 1;
            if listed == before || seal_sync {
                // The seal failed (before or after its manifest's rename).
                assert!(poisoned, "{ctx}: a failed seal must poison");
            }
            if let Some(active) = sealed_active.filter(|_| !poisoned) {
                // Rolled back before the switch: no output is left.
                let left: BTreeSet<u32> = data_ids(&disk, &dir);
                let expected: BTreeSet<u32> = files_before.iter().copied().chain([active]).collect();
                assert_eq!(left, expected, "{ctx}: outputs left behind");
                assert_only_listed(&disk, &dir, &ctx);
            } else if listed != before {
                // The seal's or the switch's manifest was renamed and the
                // directory sync failed: poisoned, every file kept.
                assert!(
                    poisoned && op == SimOp::SyncDir,
                    "{ctx}: manifest {listed:?}, poisoned {poisoned}"
                );
                assert!(
                    files_before.is_subset(&data_ids(&disk, &dir)),
                    "{ctx}: a file was deleted"
                );
            }
        }
    }
    let state = read_state(&p)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: read: {e:?}"));
    model.check(&state, &ctx);
    if result.is_err() && !poisoned {
        // The partition goes on: a compaction now succeeds.
        let report = p
            .compact()
            .await
            .unwrap_or_else(|e| panic!("{ctx}: compact again: {e:?}"));
        assert!(report.performed(), "{ctx}: {report:?}");
        model.check(&read_state(&p).await.unwrap(), &ctx);
        assert_only_listed(&disk, &dir, &ctx);
    }
    drop(p);
    match restart {
        Restart::Clean => {
            let closed = db.close().await;
            assert!(poisoned || closed.is_ok(), "{ctx}: close: {closed:?}");
        }
        Restart::PowerLoss => {
            freeze(&disk);
            let _ = db.close().await;
            disk.power_loss(true);
            disk.clear_faults();
        }
    }
    check_reopen(&disk, &dir, &durable, &ctx).await;
    result.is_ok()
}

#[tokio::test]
async fn one_io_error_at_every_operation_of_a_compaction() {
    let started = Instant::now();
    let mut cases = Vec::new();
    // Under `OsBuffered` the seal syncs the active file first (`sync_data`).
    for durability in [Durability::Always, Durability::OsBuffered] {
        // How many operations of each kind a compaction of this workload makes.
        let (disk, _db, p, _, _) = filled(0, durability).await;
        let before = counts(&disk);
        assert!(p.compact().await.unwrap().performed());
        let during: Vec<u64> = counts(&disk).iter().zip(before).map(|(a, b)| a - b).collect();
        let per_kind: Vec<_> = KINDS.iter().zip(&during).filter(|(_, n)| **n > 0).collect();
        println!("operations of a compaction under {durability:?}: {per_kind:?}");
        for (i, &op) in KINDS.iter().enumerate() {
            let faults: &[SimFault] = match op {
                SimOp::SyncData => &[SimFault::Eio, SimFault::Enospc],
                // The others under `Always` only: the same operations again.
                _ if durability != Durability::Always => &[],
                SimOp::Write => &[SimFault::Eio, SimFault::Enospc, SimFault::ShortWrite],
                SimOp::Create | SimOp::SyncAll => &[SimFault::Eio, SimFault::Enospc],
                _ => &[SimFault::Eio],
            };
            for nth in 1..=during[i] {
                cases.extend(faults.iter().map(|&fault| Case {
                    op,
                    nth,
                    fault,
                    durability,
                }));
            }
        }
        // Reading, creating, writing, syncing, renaming and removing all happen.
        for kind in [
            SimOp::Read,
            SimOp::Create,
            SimOp::Write,
            SimOp::SyncAll,
            SimOp::Rename,
            SimOp::SyncDir,
        ] {
            assert!(
                during[KINDS.iter().position(|&k| k == kind).unwrap()] > 0,
                "{kind:?}"
            );
        }
    }
    assert!(
        cases.iter().any(|c| c.op == SimOp::SyncData),
        "no sync_data in a compaction"
    );
    let mut harmless = Vec::new();
    for &case in &cases {
        let mut succeeded = Vec::new();
        for restart in [Restart::Clean, Restart::PowerLoss] {
            succeeded.push(fault_in_compaction(case, restart).await);
        }
        assert!(succeeded[0] == succeeded[1], "{case:?}: not deterministic");
        if succeeded[0] {
            harmless.push((case.op, case.nth, case.fault));
        }
    }
    println!(
        "{} faults, each with 2 restarts, in {:?}; the compaction failed for all but {}: {harmless:?}",
        cases.len(),
        started.elapsed(),
        harmless.len()
    );
    assert!(!harmless.is_empty() && harmless.len() < cases.len() / 2);
}

#[tokio::test]
async fn timed_out_compaction_rolls_back() {
    let disk = SimDisk::with_seed(5);
    let db = open(&disk).await.unwrap();
    let hasty = CompactionOptions::default()
        .min_space_saving(0)
        .timeout(Duration::from_nanos(1));
    let p = db.create_partition("p", eager().compaction(hasty)).await.unwrap();
    let mut model = Model::default();
    for op in fill() {
        model.apply(&p, &op).await.unwrap();
    }
    let dir = partition_dir(&db);
    let (_, next_id) = manifest(&disk, &dir);
    let files_before = data_ids(&disk, &dir);
    let err = p.compact().await.expect_err("a compaction cannot finish in 1 ns");
    assert!(
        matches!(err, Error::CompactionTimedOut { ref partition, timeout } if partition == "p" && timeout == Duration::from_nanos(1)),
        "{err:?}"
    );
    let files_after = data_ids(&disk, &dir);
    assert!(
        files_after.is_superset(&files_before),
        "{files_before:?} → {files_after:?}"
    );
    let added: Vec<u32> = files_after.difference(&files_before).copied().collect();
    let (listed, _) = manifest(&disk, &dir);
    let active = *listed.last().unwrap();
    assert!(
        added.is_empty() || (added == [active] && active >= next_id),
        "outputs left: {added:?}"
    );
    assert_only_listed(&disk, &dir, "after the timeout");
    model.check(&read_state(&p).await.unwrap(), "after the timeout");
    assert!(!p.stats().compacting);
    assert_eq!(p.stats().failed_compactions, 1);
    // Not poisoned: writes go on.
    model
        .apply(&p, &Op::Put("later".into(), "v".into()))
        .await
        .unwrap();
    drop(p);
    db.close().await.unwrap();

    let db = open(&disk).await.unwrap();
    let p = db.partition("p").await.unwrap();
    model.check(&read_state(&p).await.unwrap(), "reopened");
    assert_only_listed(&disk, &dir, "reopened");
    assert_eq!(
        data_ids(&disk, &dir),
        files_after,
        "the reopen removed or added a data file"
    );
    db.close().await.unwrap();
}

#[tokio::test]
async fn compacted_partition_takes_little_more_than_its_live_data() {
    let disk = SimDisk::with_seed(9);
    let db = open(&disk).await.unwrap();
    let p = db.create_partition("p", eager()).await.unwrap();
    let dir = partition_dir(&db);
    let mut model = Model::default();
    for round in 0..30 {
        for k in 0..20 {
            let key = format!("k{k:02}");
            let op = Op::Put(key.clone(), value(&key, round));
            model.apply(&p, &op).await.unwrap();
        }
    }
    let bloated = data_bytes(&disk, &dir);
    let report = p.compact().await.unwrap();
    assert!(report.performed() && report.files_compacted >= 10, "{report:?}");
    let stats = p.stats();
    let on_disk = data_bytes(&disk, &dir);
    assert!(
        on_disk as f64 <= 1.1 * stats.live_bytes as f64 + 4096.0,
        "{on_disk} bytes of data files for {} live bytes (before: {bloated})",
        stats.live_bytes
    );
    assert_eq!(stats.keys, 20);
    assert_only_listed(&disk, &dir, "compacted");
    model.check(&read_state(&p).await.unwrap(), "compacted");
    drop(p);
    db.close().await.unwrap();
    check_reopen(&disk, &dir, &model, "reopened").await;
}

#[tokio::test]
async fn low_disk_space_skips_without_sealing() {
    let (disk, db, p, model, _) = filled(11, Durability::Always).await;
    let dir = partition_dir(&db);
    let before = (manifest(&disk, &dir), data_ids(&disk, &dir), counts(&disk));
    disk.set_available_space(1 << 20);
    let report = p.compact().await.unwrap();
    assert!(
        matches!(report.skipped, Some(SkipReason::LowDiskSpace { available, .. }) if available == 1 << 20),
        "{report:?}"
    );
    assert_eq!(
        (manifest(&disk, &dir), data_ids(&disk, &dir), counts(&disk)),
        before
    );
    disk.set_available_space(u64::MAX);
    assert!(p.compact().await.unwrap().performed());
    model.check(&read_state(&p).await.unwrap(), "compacted");
    drop(p);
    db.close().await.unwrap();
    check_reopen(&disk, &dir, &model, "reopened").await;
}
