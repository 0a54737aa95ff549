//! What each durability policy keeps across power loss and process crashes, and when it syncs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use caskade::{Db, Durability, Partition, SimDisk, SimOp};

type Model = BTreeMap<String, String>;

async fn open(disk: &SimDisk, d: Durability, max_file_size: u64) -> caskade::Result<(Db, Partition)> {
    let db = Db::builder("/db")
        .simulated_disk(disk.clone())
        .durability(d)
        .max_file_size(max_file_size)
        .open()
        .await?;
    let p = db.partition("p").await?;
    Ok((db, p))
}

/// The partition's whole content, read through a snapshot.
async fn contents(p: &Partition) -> caskade::Result<Model> {
    p.snapshot()
        .await?
        .iter()
        .map(|e| e.map(|(k, v)| (text(&k), text(&v))))
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Panics with a short diff unless `got == want`.
fn assert_same(got: &Model, want: &Model, ctx: &str) {
    if got == want {
        return;
    }
    let keys: std::collections::BTreeSet<_> = got.keys().chain(want.keys()).collect();
    let diff: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .take(8)
        .map(|k| format!("{k}: got {:?}, want {:?}", got.get(k), want.get(k)))
        .collect();
    panic!("{ctx}: state differs from the model: {diff:#?}");
}

/// Puts, overwrites, deletes and batches over 100 keys; returns the model.
async fn workload(p: &Partition, tag: &str) -> caskade::Result<Model> {
    let mut model = Model::new();
    for i in 0..400u32 {
        let key = format!("k{}", i * 7 % 100);
        let value = format!("{tag}-{i}");
        match i % 10 {
            3 => {
                assert_eq!(p.delete(&key).await?, model.remove(&key).is_some());
            }
            7 => {
                let other = format!("k{}", (i * 13 + 1) % 100);
                let mut b = p.batch();
                b.put(&key, &value).delete(&other);
                b.commit().await?;
                model.insert(key, value);
                model.remove(&other);
            }
            _ => {
                p.put(&key, &value).await?;
                model.insert(key, value);
            }
        }
    }
    Ok(model)
}

fn data_files(disk: &SimDisk) -> usize {
    let files = disk.list_files();
    files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "data"))
        .count()
}

#[tokio::test]
async fn always_keeps_every_acknowledged_write_across_power_loss() -> caskade::Result<()> {
    for seed in 0..6 {
        let disk = SimDisk::with_seed(seed);
        let (db, p) = open(&disk, Durability::Always, 4096).await?;
        let model = workload(&p, "always").await?;
        disk.power_loss(true);
        drop((p, db));
        let (db, p) = open(&disk, Durability::Always, 4096).await?;
        assert_same(&contents(&p).await?, &model, &format!("seed {seed}"));
        assert!(data_files(&disk) >= 3, "seed {seed}: the workload must rotate");
        db.close().await?;
    }
    Ok(())
}

#[tokio::test]
async fn os_buffered_keeps_synced_writes_and_a_prefix_of_the_rest() -> caskade::Result<()> {
    const TAIL: usize = 200;
    let (mut lost_some, mut kept_some) = (0, 0);
    for seed in 0..20 {
        let disk = SimDisk::with_seed(seed);
        let (db, p) = open(&disk, Durability::OsBuffered, 64 << 20).await?;
        let synced = workload(&p, "synced").await?;
        p.sync().await?;
        for i in 0..TAIL {
            p.put(format!("t{i}"), format!("tail-{i}")).await?;
        }
        disk.power_loss(true);
        drop((p, db));

        let (db, p) = open(&disk, Durability::OsBuffered, 64 << 20).await?;
        let mut state = contents(&p).await?;
        let mut survivors = 0;
        for i in 0..TAIL {
            let got = state.remove(&format!("t{i}"));
            if got.is_some() {
                assert_eq!(
                    i, survivors,
                    "seed {seed}: t{i} survived but an earlier put did not"
                );
                assert_eq!(got, Some(format!("tail-{i}")), "seed {seed}");
                survivors += 1;
            }
        }
        assert_same(&state, &synced, &format!("seed {seed}: synced writes"));
        lost_some += u32::from(survivors < TAIL);
        kept_some += u32::from(survivors > 0);
        db.close().await?;
    }
    // Otherwise neither the loss nor the prefix property was exercised.
    assert!(
        lost_some > 0 && kept_some > 0,
        "lost {lost_some}, kept {kept_some}"
    );
    Ok(())
}

/// Polls `cond` every millisecond until it holds or `limit` passes.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    cond()
}

#[tokio::test]
async fn interval_syncs_without_being_asked() -> caskade::Result<()> {
    let disk = SimDisk::with_seed(3);
    let d = Durability::Interval(Duration::from_millis(30));
    let (db, p) = open(&disk, d, 64 << 20).await?;
    let before = disk.op_count(SimOp::SyncData);
    for i in 0..20 {
        p.put(format!("k{i}"), "burst").await?;
    }
    let synced = eventually(Duration::from_secs(2), || disk.op_count(SimOp::SyncData) > before).await;
    assert!(synced, "no sync within 2 s of a burst under a 30 ms interval");

    // Nothing unsynced now, so the next sync must come after the next write
    // and make it durable.
    p.sync().await?;
    let before = disk.op_count(SimOp::SyncData);
    p.put("last", "one").await?;
    let synced = eventually(Duration::from_secs(2), || disk.op_count(SimOp::SyncData) > before).await;
    assert!(synced, "the lone write was never synced");
    disk.power_loss(true);
    drop((p, db));
    let (db, p) = open(&disk, d, 64 << 20).await?;
    assert_eq!(p.get("last").await?.as_deref(), Some(&b"one"[..]));
    for i in 0..20 {
        assert!(p.contains_key(format!("k{i}")).await?, "k{i}");
    }
    db.close().await
}

#[tokio::test]
async fn interval_syncs_far_less_often_than_it_writes() -> caskade::Result<()> {
    const PUTS: u64 = 200;
    let every = Duration::from_millis(30);
    let disk = SimDisk::with_seed(4);
    let (db, p) = open(&disk, Durability::Interval(every), 64 << 20).await?;
    let before = disk.op_count(SimOp::SyncData);
    let start = Instant::now();
    for i in 0..PUTS {
        p.put(format!("k{}", i % 50), i.to_be_bytes()).await?;
        if i % 10 == 9 {
            // Pacing (not synchronisation): spread the burst over ~100 ms.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let syncs = disk.op_count(SimOp::SyncData) - before;
    let elapsed = start.elapsed();
    // Syncs are at least one interval apart, each due one interval after the
    // first write it covers.
    let bound = (elapsed.as_millis() / every.as_millis()) as u64 + 2;
    assert!(syncs <= bound, "{syncs} syncs in {elapsed:?} (bound {bound})");
    assert!(syncs * 4 <= PUTS, "{syncs} syncs for {PUTS} puts");
    assert!(
        eventually(Duration::from_secs(2), || disk.op_count(SimOp::SyncData) > before).await,
        "the burst is never synced"
    );
    db.close().await
}

#[tokio::test]
async fn process_crash_loses_nothing_under_any_policy() -> caskade::Result<()> {
    let policies = [
        Durability::Always,
        Durability::OsBuffered,
        Durability::Interval(Duration::from_millis(30)),
        // Never due during the test: the writes are in the page cache only.
        Durability::Interval(Duration::from_secs(3600)),
    ];
    for d in policies {
        let disk = SimDisk::new();
        let (db, p) = open(&disk, d, 4096).await?;
        let model = workload(&p, "crash").await?;
        disk.process_crash();
        drop((p, db));
        let (db, p) = open(&disk, d, 4096).await?;
        assert_same(&contents(&p).await?, &model, &format!("{d:?}"));
        assert!(data_files(&disk) >= 3, "{d:?}: the workload must rotate");
        db.close().await?;
    }
    Ok(())
}

/// Writes that survived a process crash are served after reopen, so a later
/// `sync` (or close, or the rotation that seals their file) must make them
/// durable.
async fn recovered_writes_made_durable(how: &str, seed: u64) -> caskade::Result<()> {
    let disk = SimDisk::with_seed(seed);
    let (db, p) = open(&disk, Durability::OsBuffered, 4096).await?;
    // 32 records of 128 bytes fill the first file past 4096 bytes, so the
    // next write rotates.
    let value = "v".repeat(100);
    for i in 0..32 {
        p.put(format!("k{i:02}"), &value).await?;
    }
    assert_eq!(data_files(&disk), 1);
    disk.process_crash();
    drop((p, db));
    let (db, p) = open(&disk, Durability::OsBuffered, 4096).await?;
    assert!(p.contains_key("k31").await?, "a process crash loses nothing");
    match how {
        "sync" => p.sync().await?,
        "close" => {
            drop(p);
            db.close().await?;
            disk.power_loss(true);
            return check_recovered(&disk, how, seed).await;
        }
        // The active file is full: this put seals it, then is synced itself.
        "rotate" => {
            p.put("x", "y").await?;
            assert_eq!(data_files(&disk), 2, "the put rotated");
            p.sync().await?;
        }
        _ => unreachable!(),
    }
    // Without a close, which would sync as well.
    disk.power_loss(true);
    drop((p, db));
    check_recovered(&disk, how, seed).await
}

async fn check_recovered(disk: &SimDisk, how: &str, seed: u64) -> caskade::Result<()> {
    let (db, p) = open(disk, Durability::OsBuffered, 4096).await?;
    for i in 0..32 {
        let k = format!("k{i:02}");
        assert!(p.contains_key(&k).await?, "{how}/seed {seed}: {k} lost");
    }
    db.close().await
}

#[tokio::test]
async fn sync_after_crash_recovery_makes_recovered_writes_durable() -> caskade::Result<()> {
    recovered_writes_made_durable("sync", 1).await
}

#[tokio::test]
async fn close_after_crash_recovery_makes_recovered_writes_durable() -> caskade::Result<()> {
    recovered_writes_made_durable("close", 1).await
}

#[tokio::test]
async fn rotation_after_crash_recovery_seals_a_durable_file() -> caskade::Result<()> {
    for seed in 0..10 {
        recovered_writes_made_durable("rotate", seed).await?;
    }
    Ok(())
}

/// `Interval` is a real interval: a sync is due one interval after the first
/// unsynced write, however many writes follow. A timer that each write
/// pushed back would never fire during a steady stream of writes spaced
/// closer than the interval.
#[tokio::test]
async fn interval_deadline_is_not_pushed_back_by_writes() -> caskade::Result<()> {
    let every = Duration::from_millis(20);
    let disk = SimDisk::with_seed(5);
    let (db, p) = open(&disk, Durability::Interval(every), 64 << 20).await?;
    let before = disk.op_count(SimOp::SyncData);
    let start = Instant::now();
    let mut i = 0u64;
    // Writes ~1 ms apart (far closer than 20 ms) for 300 ms: 15 intervals.
    while start.elapsed() < Duration::from_millis(300) {
        p.put(format!("k{}", i % 50), i.to_be_bytes()).await?;
        i += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let during = disk.op_count(SimOp::SyncData) - before;
    assert!(
        during >= 3,
        "only {during} syncs during a {:?} stream of {i} writes under a {every:?} interval",
        start.elapsed()
    );
    db.close().await
}
