//! A batch is all-or-nothing: for concurrent readers, across a torn power loss, and when its write fails.

mod common;
use common::partition_dir;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use caskade::{Db, Durability, Error, Partition, SimDisk, SimFault, SimOp};

async fn open(disk: &SimDisk, durability: Durability) -> caskade::Result<(Db, Partition)> {
    let db = Db::builder("/db")
        .simulated_disk(disk.clone())
        .durability(durability)
        .open()
        .await?;
    let p = db.partition("p").await?;
    Ok((db, p))
}

/// Length of the first data file of partition `p` of the open `db`.
fn data_len(disk: &SimDisk, db: &Db) -> usize {
    let data = partition_dir(db, "p").join("00000001.data");
    disk.read_file(&data).expect("the first data file exists").len()
}

/// Checks one snapshot of the visibility workload: either nothing yet, or
/// `k0..k9` all equal to some `n` and exactly one marker, `m{n}`. Returns `n`.
async fn check_snapshot(p: &Partition) -> Option<u64> {
    let snap = p.snapshot().await.unwrap();
    if snap.is_empty() {
        return None;
    }
    let mut seen = std::collections::BTreeMap::new();
    for entry in snap.iter() {
        let (k, v) = entry.expect("snapshot read");
        seen.insert(k, v);
    }
    assert_eq!(seen.len(), 11, "half a batch visible: {seen:?}");
    let n = u64::from_be_bytes(seen[&b"k0"[..]][..].try_into().unwrap());
    for i in 0..10 {
        let key = format!("k{i}");
        assert_eq!(
            seen[key.as_bytes()][..],
            n.to_be_bytes()[..],
            "{key} differs from k0 = {n}"
        );
        // `get` on the snapshot must agree with its iteration.
        let got = snap.get(&key).expect("snapshot get");
        assert_eq!(got.as_deref(), Some(&n.to_be_bytes()[..]), "snapshot get {key}");
    }
    assert!(
        seen.contains_key(format!("m{n}").as_bytes()),
        "marker of batch {n} missing: {seen:?}"
    );
    Some(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_see_half_a_batch() -> caskade::Result<()> {
    const BATCHES: u64 = 400;
    let disk = SimDisk::new();
    let (db, p) = open(&disk, Durability::Always).await?;
    let done = Arc::new(AtomicBool::new(false));
    // Rounds of reads done, so the writer can let readers in on a loaded machine.
    let rounds = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (p, done, rounds) = (p.clone(), Arc::clone(&done), Arc::clone(&rounds));
        readers.push(tokio::spawn(async move {
            let mut last = 0;
            let mut intermediate = 0u32;
            // Bounded: the writer stops after BATCHES commits.
            while !done.load(Ordering::Acquire) {
                if let Some(n) = check_snapshot(&p).await {
                    assert!(n >= last, "snapshot went back from batch {last} to {n}");
                    intermediate += u32::from(n < BATCHES);
                    last = n;
                }
                // Consecutive `get`s load ever newer versions: never decreasing.
                let mut prev = 0;
                for i in 0..10 {
                    if let Some(v) = p.get(format!("k{i}")).await.expect("get") {
                        let n = u64::from_be_bytes(v[..].try_into().unwrap());
                        assert!(n >= prev, "k{i} = {n} after an earlier key read {prev}");
                        prev = n;
                    }
                }
                rounds.fetch_add(1, Ordering::Release);
                tokio::task::yield_now().await;
            }
            intermediate
        }));
    }
    for n in 1..=BATCHES {
        let mut b = p.batch();
        for i in 0..10 {
            b.put(format!("k{i}"), n.to_be_bytes());
        }
        b.delete(format!("m{}", n - 1)).put(format!("m{n}"), "");
        b.commit().await?;
        tokio::task::yield_now().await;
        if n % 50 == 0 && n < BATCHES {
            // Some reader finishes a round between two batches, whatever
            // the scheduling: it sees an intermediate state.
            let seen = rounds.load(Ordering::Acquire);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while rounds.load(Ordering::Acquire) < seen + 2 && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
    }
    done.store(true, Ordering::Release);
    let mut intermediate = 0;
    for r in readers {
        intermediate += r.await.expect("reader panicked");
    }
    assert!(
        intermediate > 0,
        "readers must see states between the first and the last batch"
    );
    assert_eq!(check_snapshot(&p).await, Some(BATCHES));
    db.close().await
}

#[derive(Debug, Default)]
struct Outcomes {
    none_clean: u32,
    none_torn: u32,
    all: u32,
}

/// One power-loss run: checks its outcome and tallies it.
async fn power_loss_mid_batch(seed: u64, outcomes: &mut Outcomes) -> caskade::Result<()> {
    const OPS: usize = 200;
    let disk = SimDisk::with_seed(seed);
    let (db, p) = open(&disk, Durability::OsBuffered).await?;
    for i in 0..10 {
        p.put(format!("s{i}"), format!("synced-{i}")).await?;
    }
    p.sync().await?;
    let before = data_len(&disk, &db);
    let mut b = p.batch();
    b.put("s0", "overwritten").delete("s1");
    for i in 0..OPS - 2 {
        b.put(format!("b{i}"), format!("batch-{seed}-{i}"));
    }
    b.commit().await?;
    let committed = data_len(&disk, &db);
    // Every fifth seed syncs the batch: then it must survive whole.
    let synced_batch = seed % 5 == 4;
    if synced_batch {
        p.sync().await?;
    }
    disk.power_loss(true);
    let after_crash = data_len(&disk, &db);
    assert!(
        (before..=committed).contains(&after_crash),
        "seed {seed}: {after_crash} bytes"
    );
    drop((p, db));

    let (db, p) = open(&disk, Durability::OsBuffered).await?;
    let present: Vec<bool> = batch_keys_present(&p, OPS - 2).await?;
    let s0 = p.get("s0").await?;
    let s1 = p.get("s1").await?;
    for i in 2..10 {
        let want = format!("synced-{i}");
        assert_eq!(
            p.get(format!("s{i}")).await?.as_deref(),
            Some(want.as_bytes()),
            "seed {seed}"
        );
    }
    let applied = present.iter().filter(|&&x| x).count();
    if after_crash == committed {
        assert_eq!(
            applied,
            OPS - 2,
            "seed {seed}: whole batch on disk but not applied"
        );
        assert_eq!(s0.as_deref(), Some(&b"overwritten"[..]), "seed {seed}");
        assert_eq!(s1, None, "seed {seed}: the batch's delete was lost");
        outcomes.all += 1;
    } else {
        assert!(!synced_batch, "seed {seed}: a synced batch was torn");
        assert_eq!(applied, 0, "seed {seed}: {applied} ops of a torn batch applied");
        assert_eq!(s0.as_deref(), Some(&b"synced-0"[..]), "seed {seed}");
        assert_eq!(s1.as_deref(), Some(&b"synced-1"[..]), "seed {seed}");
        // Recovery cut the torn tail back to the last whole record.
        assert_eq!(
            data_len(&disk, &db),
            before,
            "seed {seed}: torn tail not truncated"
        );
        if after_crash > before {
            outcomes.none_torn += 1;
        } else {
            outcomes.none_clean += 1;
        }
    }
    // The recovered partition takes writes where the valid prefix ends.
    p.put("after", "x").await?;
    p.sync().await?;
    disk.power_loss(false);
    drop((p, db));
    let (db, p) = open(&disk, Durability::OsBuffered).await?;
    assert_eq!(p.get("after").await?.as_deref(), Some(&b"x"[..]), "seed {seed}");
    db.close().await
}

async fn batch_keys_present(p: &Partition, n: usize) -> caskade::Result<Vec<bool>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(p.contains_key(format!("b{i}")).await?);
    }
    Ok(out)
}

#[tokio::test]
async fn power_loss_mid_batch_applies_all_or_nothing() -> caskade::Result<()> {
    let mut outcomes = Outcomes::default();
    for seed in 0..50 {
        power_loss_mid_batch(seed, &mut outcomes).await?;
    }
    // Without these the test would prove nothing about torn batches.
    assert!(outcomes.none_torn > 0, "no seed tore the batch: {outcomes:?}");
    assert!(outcomes.all > 0, "no seed kept the whole batch: {outcomes:?}");
    Ok(())
}

/// A batch whose write fails (half of it reaches the file) is invisible, and
/// stays absent after a power loss or a process crash (then the half batch is
/// still in the file and recovery must drop it).
async fn failed_batch_write(process_crash: bool) -> caskade::Result<()> {
    let disk = SimDisk::new();
    let (db, p) = open(&disk, Durability::Always).await?;
    for i in 0..10 {
        p.put(format!("old{i}"), format!("v{i}")).await?;
    }
    let before = data_len(&disk, &db);
    disk.fail(SimOp::Write, 1, SimFault::ShortWrite, false);
    let mut b = p.batch();
    b.put("old0", "changed").delete("old1");
    for i in 0..50 {
        b.put(format!("new{i}"), format!("value-{i}"));
    }
    let err = b.commit().await.expect_err("the batch's write fails");
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(
        data_len(&disk, &db) > before,
        "a short write leaves half the batch in the file"
    );
    let check = |p: Partition, extra: usize| async move {
        assert_eq!(p.get("old0").await?.as_deref(), Some(&b"v0"[..]));
        assert_eq!(p.get("old1").await?.as_deref(), Some(&b"v1"[..]));
        let snap = p.snapshot().await.unwrap();
        assert_eq!(snap.len(), 10 + extra, "only the ten old keys (and `later`)");
        for i in 0..50 {
            assert!(!p.contains_key(format!("new{i}")).await?, "new{i} visible");
            assert!(!snap.contains_key(format!("new{i}")));
        }
        caskade::Result::Ok(())
    };
    check(p.clone(), 0).await?;
    if process_crash {
        disk.process_crash();
    } else {
        disk.power_loss(false);
    }
    drop((p, db));
    let (db, p) = open(&disk, Durability::Always).await?;
    check(p.clone(), 0).await?;
    for i in 2..10 {
        assert_eq!(
            p.get(format!("old{i}")).await?.as_deref(),
            Some(format!("v{i}").as_bytes())
        );
    }
    p.put("later", "ok").await?;
    db.close().await?;
    let (db, p) = open(&disk, Durability::Always).await?;
    assert_eq!(p.get("later").await?.as_deref(), Some(&b"ok"[..]));
    check(p, 1).await?;
    db.close().await
}

#[tokio::test]
async fn failed_batch_write_is_invisible_and_absent_after_power_loss() -> caskade::Result<()> {
    failed_batch_write(false).await
}

#[tokio::test]
async fn failed_batch_write_is_absent_after_process_crash() -> caskade::Result<()> {
    failed_batch_write(true).await
}
