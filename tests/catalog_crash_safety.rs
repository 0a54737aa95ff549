//! The catalog under power loss and I/O faults (simulated disk): an
//! acknowledged create or drop survives power loss, a drop interrupted
//! before its files were removed is completed at the next open, and a create
//! or drop whose catalog append failed leaves a consistent database.

use std::path::{Path, PathBuf};

use caskade::{Db, Error, PartitionOptions, Schema, SimDisk, SimFault, SimOp};

async fn open(disk: &SimDisk) -> caskade::Result<Db> {
    Db::builder("/db").simulated_disk(disk.clone()).open().await
}

fn files_under(disk: &SimDisk, dir: &Path) -> Vec<PathBuf> {
    disk.list_files()
        .into_iter()
        .filter(|f| f.starts_with(dir))
        .collect()
}

/// How the process ends before the reopen.
#[derive(Debug, Clone, Copy)]
enum Crash {
    Process,
    Power,
}

impl Crash {
    fn apply(self, disk: &SimDisk) {
        match self {
            Crash::Process => disk.process_crash(),
            Crash::Power => disk.power_loss(true),
        }
    }
}

#[tokio::test]
async fn acknowledged_create_survives_power_loss() -> caskade::Result<()> {
    let ints = PartitionOptions::default().schema(Schema::Int);
    for torn in [false, true] {
        let disk = SimDisk::with_seed(u64::from(torn));
        let db = open(&disk).await?;
        db.create_partition("ints", ints).await?;
        db.partition("plain").await?;
        db.put("written", "k", "v").await?;
        disk.power_loss(torn);
        drop(db);
        let db = open(&disk).await?;
        assert_eq!(db.list_partitions(), ["ints", "plain", "written"], "torn {torn}");
        assert_eq!(db.describe_partition("ints")?.options, ints);
        assert_eq!(db.get("written", "k").await?.as_deref(), Some(&b"v"[..]));
        assert_eq!(db.partition("ints").await?.incr("n", 2).await?, 2);
        db.close().await?;
    }
    Ok(())
}

#[tokio::test]
async fn acknowledged_drop_survives_power_loss() -> caskade::Result<()> {
    let disk = SimDisk::with_seed(3);
    let db = open(&disk).await?;
    for name in ["a", "b"] {
        for i in 0..20 {
            db.put(name, format!("k{i}"), name).await?;
        }
    }
    let dir_a = db.describe_partition("a")?.dir.unwrap();
    assert!(!files_under(&disk, &dir_a).is_empty());
    db.drop_partition("a").await?;
    disk.power_loss(true);
    drop(db);
    let db = open(&disk).await?;
    assert_eq!(db.list_partitions(), ["b"]);
    assert_eq!(files_under(&disk, &dir_a), Vec::<PathBuf>::new());
    assert_eq!(db.get("b", "k19").await?.as_deref(), Some(&b"b"[..]));
    let a = db.partition("a").await?;
    assert_eq!(a.get("k0").await?, None, "a re-created partition is empty");
    assert_ne!(db.describe_partition("a")?.dir.unwrap(), dir_a);
    db.close().await
}

#[tokio::test]
async fn drop_whose_files_stayed_is_completed_at_next_open() -> caskade::Result<()> {
    for crash in [Crash::Process, Crash::Power] {
        let disk = SimDisk::with_seed(5);
        let db = open(&disk).await?;
        db.put("a", "k", "v").await?;
        db.put("b", "k", "v").await?;
        let dir_a = db.describe_partition("a")?.dir.unwrap();
        // The drop is recorded, but removing its files fails.
        disk.fail(SimOp::Remove, 1, SimFault::Eio, true);
        db.drop_partition("a").await?;
        disk.clear_faults();
        assert_eq!(db.list_partitions(), ["b"]);
        assert!(
            !files_under(&disk, &dir_a).is_empty(),
            "{crash:?}: the fault did not hit"
        );
        crash.apply(&disk);
        drop(db);
        let db = open(&disk).await?;
        assert_eq!(db.list_partitions(), ["b"], "{crash:?}");
        assert_eq!(files_under(&disk, &dir_a), Vec::<PathBuf>::new(), "{crash:?}");
        assert_eq!(db.get("b", "k").await?.as_deref(), Some(&b"v"[..]));
        db.close().await?;
    }
    Ok(())
}

/// Arms `fault` on the next `op` and creates `x`, which must fail on the
/// catalog; then checks nothing half-exists in this process.
async fn failed_create(disk: &SimDisk, db: &Db, op: SimOp, fault: SimFault) {
    disk.fail(op, 1, fault, false);
    let r = db
        .create_partition("x", PartitionOptions::default().schema(Schema::Int))
        .await;
    match &r {
        Err(Error::Io { path, .. }) => assert!(path.ends_with("CATALOG"), "{r:?}"),
        other => panic!("{op:?}/{fault:?}: expected an I/O error on the catalog, got {other:?}"),
    }
    assert_eq!(disk.faults_injected(), 1);
    assert_eq!(db.list_partitions(), ["a"]);
    assert!(matches!(
        db.describe_partition("x"),
        Err(Error::PartitionNotFound { .. })
    ));
}

#[tokio::test]
async fn interrupted_create_leaves_a_consistent_catalog() -> caskade::Result<()> {
    let faults = [
        (SimOp::SyncData, SimFault::Eio),
        (SimOp::Write, SimFault::ShortWrite),
        (SimOp::Write, SimFault::Enospc),
    ];
    for (op, fault) in faults {
        for crash in [Crash::Process, Crash::Power] {
            let case = format!("{op:?}/{fault:?}/{crash:?}");
            let disk = SimDisk::with_seed(11);
            let db = open(&disk).await?;
            db.put("a", "k", "v").await?;
            failed_create(&disk, &db, op, fault).await;
            // Existing partitions keep working.
            db.put("a", "k2", "v2").await?;
            crash.apply(&disk);
            drop(db);
            let db = open(&disk).await?;
            let names = db.list_partitions();
            assert!(names == ["a"] || names == ["a", "x"], "{case}: {names:?}");
            if names.len() == 2 {
                assert_eq!(db.describe_partition("x")?.options.schema, Schema::Int, "{case}");
            }
            assert_eq!(db.get("a", "k").await?.as_deref(), Some(&b"v"[..]), "{case}");
            assert_eq!(db.get("a", "k2").await?.as_deref(), Some(&b"v2"[..]), "{case}");
            // The catalog takes changes again, and they are durable.
            db.partition("x").await?.put_int("n", 1).await?;
            db.put("y", "k", "y").await?;
            disk.power_loss(true);
            drop(db);
            let db = open(&disk).await?;
            assert_eq!(db.list_partitions(), ["a", "x", "y"], "{case}");
            assert_eq!(db.partition("x").await?.get_int("n").await?, Some(1), "{case}");
            assert_eq!(db.get("y", "n").await?, None, "{case}");
            db.close().await?;
        }
    }
    Ok(())
}

/// A create whose catalog sync failed, then `crash`: if the reopened
/// database lists the partition, writes acknowledged to it must survive a
/// power loss, and no later partition may inherit its directory.
async fn partition_from_a_failed_create_stays(crash: Crash) -> caskade::Result<()> {
    let disk = SimDisk::with_seed(11);
    let db = open(&disk).await?;
    db.put("a", "k", "v").await?;
    failed_create(&disk, &db, SimOp::SyncData, SimFault::Eio).await;
    crash.apply(&disk);
    drop(db);
    let db = open(&disk).await?;
    let listed = db.list_partitions() == ["a", "x"];
    // No other catalog change comes in between.
    db.partition("x").await?.put_int("n", 1).await?;
    disk.power_loss(true);
    drop(db);
    let db = open(&disk).await?;
    let z = db.partition("z").await?;
    assert_eq!(
        z.get("n").await?,
        None,
        "{crash:?}: a new partition holds x's data"
    );
    let names = db.list_partitions();
    assert_eq!(
        names,
        ["a", "x", "z"],
        "{crash:?}: x (listed after the crash: {listed}) lost"
    );
    assert_eq!(db.partition("x").await?.get_int("n").await?, Some(1));
    db.close().await
}

#[tokio::test]
async fn failed_create_then_power_loss_is_consistent() -> caskade::Result<()> {
    partition_from_a_failed_create_stays(Crash::Power).await
}

#[tokio::test]
async fn failed_create_then_process_crash_is_consistent() -> caskade::Result<()> {
    partition_from_a_failed_create_stays(Crash::Process).await
}

#[tokio::test]
async fn catalog_refuses_changes_after_a_failed_append_until_reopen() -> caskade::Result<()> {
    let disk = SimDisk::with_seed(13);
    let db = open(&disk).await?;
    db.put("a", "k", "v").await?;
    failed_create(&disk, &db, SimOp::SyncData, SimFault::Eio).await;
    assert!(db.partition("y").await.is_err(), "a change after a failed append");
    assert!(db.drop_partition("a").await.is_err());
    assert_eq!(db.list_partitions(), ["a"]);
    assert_eq!(db.get("a", "k").await?.as_deref(), Some(&b"v"[..]));
    db.close().await?;
    let db = open(&disk).await?;
    db.put("y", "k", "y").await?;
    db.drop_partition("a").await?;
    let names = db.list_partitions();
    assert!(names == ["y"] || names == ["x", "y"], "{names:?}");
    db.close().await
}

/// A drop whose catalog sync failed leaves the partition in place (as
/// documented); a write acknowledged to it afterwards survives `crash`.
async fn failed_drop_keeps_the_partition(crash: Crash) -> caskade::Result<()> {
    let disk = SimDisk::with_seed(17);
    let db = open(&disk).await?;
    let a = db.partition("a").await?;
    a.put("k", "v").await?;
    disk.fail(SimOp::SyncData, 1, SimFault::Eio, false);
    let r = db.drop_partition("a").await;
    assert!(
        matches!(&r, Err(Error::Io { path, .. }) if path.ends_with("CATALOG")),
        "{r:?}"
    );
    assert_eq!(db.list_partitions(), ["a"]);
    assert_eq!(a.get("k").await?.as_deref(), Some(&b"v"[..]));
    // Acknowledged under the default durability: synced.
    a.put("after", "acknowledged").await?;
    crash.apply(&disk);
    drop((a, db));
    let db = open(&disk).await?;
    assert_eq!(
        db.list_partitions(),
        ["a"],
        "{crash:?}: the failed drop took effect"
    );
    let a = db.partition("a").await?;
    assert_eq!(a.get("k").await?.as_deref(), Some(&b"v"[..]));
    assert_eq!(a.get("after").await?.as_deref(), Some(&b"acknowledged"[..]));
    db.close().await
}

#[tokio::test]
async fn failed_drop_then_power_loss_keeps_the_partition() -> caskade::Result<()> {
    failed_drop_keeps_the_partition(Crash::Power).await
}

#[tokio::test]
async fn failed_drop_then_process_crash_keeps_the_partition() -> caskade::Result<()> {
    failed_drop_keeps_the_partition(Crash::Process).await
}

#[tokio::test]
async fn directory_at_a_future_id_is_never_inherited() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path()).await?;
    db.put("a", "secret", "a's data").await?;
    let a_dir = db.describe_partition("a")?.dir.unwrap();
    db.close().await?;
    // A copy of a's files where the next id's directory will be, as a create
    // whose catalog record was lost leaves it (see above).
    let id = u64::from_str_radix(a_dir.file_name().unwrap().to_str().unwrap(), 16).unwrap();
    let future = a_dir.with_file_name(format!("{:016x}", id + 1));
    std::fs::create_dir(&future).unwrap();
    for f in std::fs::read_dir(&a_dir).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), future.join(f.file_name())).unwrap();
    }
    let db = Db::open(tmp.path()).await?;
    // A new partition is empty, or its creation fails; it never shows the files.
    if let Ok(b) = db.partition("b").await {
        assert_eq!(
            b.get("secret").await?,
            None,
            "a new partition inherited a stray directory"
        );
    }
    db.close().await
}
