//! At most one actor owns a partition directory: many tasks reopening
//! partitions while others evict them (a bound of one open partition) lose
//! no write and no increment, get no `Locked` or `Io` error, and leave files
//! that a fresh open recovers to the same state.

use rand::{Rng as _, SeedableRng, rngs::StdRng};
use std::sync::Arc;

use caskade::{Db, Durability};

/// Rounds in which every task works on the same partition, alternating two
/// with a bound of one: each round's first request reopens its partition
/// (several tasks racing for it) and evicts the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reopens_alternating_two_partitions() -> caskade::Result<()> {
    const TASKS: usize = 4;
    const ROUNDS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path())
        .durability(Durability::OsBuffered)
        .max_open_partitions(1)
        .open()
        .await?;
    let parts = Arc::new([db.partition("x").await?, db.partition("y").await?]);
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (parts, barrier) = (Arc::clone(&parts), Arc::clone(&barrier));
            tokio::spawn(async move {
                for r in 0..ROUNDS {
                    let p = &parts[r % 2];
                    p.incr("counter", 1).await?;
                    p.put(format!("t{t}"), format!("round {r}")).await?;
                    barrier.wait().await;
                }
                caskade::Result::Ok(())
            })
        })
        .collect();
    for t in tasks {
        // Error::Locked or Error::Io here would mean two actors met.
        t.await.expect("task panicked")?;
    }
    let s = db.stats();
    // Opening y evicted x before the rounds began; then each round reopened
    // its partition once (however many tasks raced) and evicted the other.
    assert_eq!(s.opens, 2 + ROUNDS as u64, "{s:?}");
    assert_eq!(s.evictions, 1 + ROUNDS as u64, "{s:?}");
    assert_eq!(s.open_partitions, 1, "{s:?}");
    for (i, p) in parts.iter().enumerate() {
        let rounds: Vec<_> = (0..ROUNDS).filter(|r| r % 2 == i).collect();
        let want = (TASKS * rounds.len()) as i64;
        assert_eq!(p.get_int("counter").await?, Some(want), "{}", p.name());
        let last = format!("round {}", rounds.last().unwrap());
        for t in 0..TASKS {
            assert_eq!(p.get(format!("t{t}")).await?.as_deref(), Some(last.as_bytes()));
        }
    }
    db.close().await
}

/// Random churn: more partitions than tasks and a bound of one, so some
/// partition is always closed and nearly every request reopens one while
/// others are being evicted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_actor_per_directory_under_random_churn() -> caskade::Result<()> {
    const TASKS: usize = 4;
    const PARTS: usize = 6;
    const OPS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Db::builder(dir.path())
            .durability(Durability::OsBuffered)
            .max_open_partitions(1)
            .open()
    };
    let db = open().await?;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(100 + t as u64);
                let mut incr = [0i64; PARTS];
                for n in 0..OPS {
                    let i = rng.random_range(0..PARTS as u64) as usize;
                    let p = db.partition(&format!("p{i}")).await?;
                    p.incr("counter", 1).await?;
                    incr[i] += 1;
                    let (key, value) = (format!("t{t}/{n}"), format!("p{i} t{t} n{n}"));
                    p.put(&key, &value).await?;
                    assert_eq!(p.get(&key).await?.as_deref(), Some(value.as_bytes()));
                }
                caskade::Result::Ok(incr)
            })
        })
        .collect();
    let mut incr = [0i64; PARTS];
    for t in tasks {
        // Error::Locked or Error::Io here would mean two actors met.
        for (total, n) in incr.iter_mut().zip(t.await.expect("task panicked")?) {
            *total += n;
        }
    }
    let s = db.stats();
    println!("after the churn: {s:?}");
    assert!(s.evictions >= 10 && s.reopens >= 10, "too little churn: {s:?}");
    let check = |db: Db| async move {
        let mut keys = 0;
        for (i, want) in incr.iter().enumerate() {
            let p = db.partition(&format!("p{i}")).await?;
            let got = p.get_int("counter").await?.unwrap_or(0);
            assert_eq!(got, *want, "lost increments in p{i}");
            keys += p.stats().keys - u64::from(*want > 0);
        }
        assert_eq!(keys, (TASKS * OPS) as u64, "puts in all partitions");
        for t in 0..TASKS {
            let mut rng = StdRng::seed_from_u64(100 + t as u64);
            for n in 0..OPS {
                let i = rng.random_range(0..PARTS as u64);
                let got = db.get(&format!("p{i}"), format!("t{t}/{n}")).await?;
                assert_eq!(got.as_deref(), Some(format!("p{i} t{t} n{n}").as_bytes()));
            }
        }
        db.close().await
    };
    check(db).await?;
    // The files themselves are intact: a fresh open recovers the same state.
    check(open().await?).await
}
