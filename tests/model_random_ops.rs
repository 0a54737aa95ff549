//! Seeded random operations, crashes and reopens checked against a `BTreeMap` model.
//!
//! Reproduce a failure with the seed and step printed in its message; the
//! sequence of operations depends only on the seed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use caskade::{Bytes, Db, Durability, Partition, SimDisk};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Where and how the database under test lives.
struct Setup {
    disk: Option<SimDisk>,
    root: PathBuf,
    durability: Durability,
    inline_read_limit: usize,
}

impl Setup {
    async fn open(&self) -> caskade::Result<(Db, Partition)> {
        let mut b = Db::builder(&self.root)
            .durability(self.durability)
            .max_file_size(4096)
            .inline_read_limit(self.inline_read_limit);
        if let Some(disk) = &self.disk {
            b = b.simulated_disk(disk.clone());
        }
        let db = b.open().await?;
        let p = db.partition("model").await?;
        Ok((db, p))
    }
}

/// A small key space (so operations collide); a few keys are too long to
/// be stored inline in the index.
fn key_of(i: usize) -> Vec<u8> {
    if i % 8 == 7 {
        format!("a-key-long-enough-to-live-on-the-heap-{i}").into_bytes()
    } else {
        format!("k{i}").into_bytes()
    }
}
const KEY_SPACE: usize = 24;

fn random_value(rng: &mut StdRng) -> Vec<u8> {
    let len = match rng.random_range(0..100) {
        0..10 => 0,
        10..98 => rng.random_range(1..64),
        _ => rng.random_range(200..1500),
    };
    (0..len).map(|_| rng.random()).collect()
}

async fn contents(p: &Partition) -> caskade::Result<Model> {
    let snap = p.snapshot().await.unwrap();
    let mut out = Model::new();
    for entry in snap.iter() {
        let (k, v) = entry?;
        assert!(out.insert(k.to_vec(), v.to_vec()).is_none(), "key iterated twice");
    }
    assert_eq!(snap.len(), out.len());
    Ok(out)
}

/// Panics with a short diff unless the partition's content equals `want`.
fn assert_state(got: &Model, want: &Model, ctx: &str) {
    if got == want {
        return;
    }
    let keys: BTreeSet<_> = got.keys().chain(want.keys()).collect();
    let show = |v: Option<&Vec<u8>>| v.map(|v| Bytes::copy_from_slice(v));
    let diff: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .take(6)
        .map(|k| {
            let (g, w) = (show(got.get(k)), show(want.get(k)));
            format!("{:?}: got {g:?}, want {w:?}", Bytes::copy_from_slice(k))
        })
        .collect();
    panic!("{ctx}: partition differs from the model: {diff:#?}");
}

/// Full check after a reopen: iteration, `get` and `contains_key` of every key.
async fn check_all(p: &Partition, model: &Model, ctx: &str) -> caskade::Result<()> {
    assert_state(&contents(p).await?, model, ctx);
    for i in 0..KEY_SPACE {
        let k = key_of(i);
        let want = model.get(&k).map(|v| Bytes::copy_from_slice(v));
        assert_eq!(p.get(&k).await?, want, "{ctx}: get {i}");
        assert_eq!(p.contains_key(&k).await?, want.is_some(), "{ctx}: contains {i}");
    }
    Ok(())
}

async fn run(seed: u64, setup: Setup, steps: usize) -> caskade::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Model::new();
    let (mut db, mut p) = setup.open().await?;
    let sim = setup.disk.clone();
    let mut reopens = 0;
    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        let key = key_of(rng.random_range(0..KEY_SPACE));
        match rng.random_range(0..100) {
            0..28 => {
                let v = random_value(&mut rng);
                p.put(&key, &v).await?;
                model.insert(key, v);
            }
            28..40 => {
                let existed = p.delete(&key).await?;
                assert_eq!(existed, model.remove(&key).is_some(), "{ctx}: delete's answer");
            }
            40..48 => {
                let mut b = p.batch();
                for _ in 0..rng.random_range(0..8) {
                    let k = key_of(rng.random_range(0..KEY_SPACE));
                    if rng.random_bool(0.3) {
                        b.delete(&k);
                        model.remove(&k);
                    } else {
                        let v = random_value(&mut rng);
                        b.put(&k, &v);
                        model.insert(k, v);
                    }
                }
                b.commit().await?;
            }
            48..52 => {
                // Concurrent writes to distinct keys: group commits of several sets.
                let keys: BTreeSet<usize> = (0..6).map(|_| rng.random_range(0..KEY_SPACE)).collect();
                let mut tasks = Vec::new();
                for i in keys {
                    let (p, k) = (p.clone(), key_of(i));
                    if rng.random_bool(0.25) {
                        let existed = model.remove(&k).is_some();
                        tasks.push(tokio::spawn(async move { Ok(p.delete(&k).await? == existed) }));
                    } else {
                        let v = random_value(&mut rng);
                        model.insert(k.clone(), v.clone());
                        tasks.push(tokio::spawn(async move { p.put(&k, &v).await.map(|()| true) }));
                    }
                }
                for t in tasks {
                    assert!(
                        t.await.expect("writer task")?,
                        "{ctx}: concurrent delete's answer"
                    );
                }
            }
            52..67 => {
                let want = model.get(&key).map(|v| Bytes::copy_from_slice(v));
                assert_eq!(p.get(&key).await?, want, "{ctx}: get");
            }
            67..75 => {
                assert_eq!(
                    p.contains_key(&key).await?,
                    model.contains_key(&key),
                    "{ctx}: contains"
                );
            }
            75..79 => {
                // A snapshot is isolated from later writes.
                let snap = p.snapshot().await.unwrap();
                let before = model.clone();
                for _ in 0..3 {
                    let (k, v) = (key_of(rng.random_range(0..KEY_SPACE)), random_value(&mut rng));
                    p.put(&k, &v).await?;
                    model.insert(k, v);
                }
                let mut seen = Model::new();
                for entry in snap.iter() {
                    let (k, v) = entry?;
                    seen.insert(k.to_vec(), v.to_vec());
                }
                assert_state(&seen, &before, &format!("{ctx}: old snapshot"));
                assert_state(&contents(&p).await?, &model, &format!("{ctx}: new snapshot"));
            }
            79..83 => p.sync().await?,
            83..86 => {
                drop(p);
                db.close().await?;
                (db, p) = setup.open().await?;
                reopens += 1;
                check_all(&p, &model, &format!("{ctx}: after close + reopen")).await?;
            }
            86..89 if sim.is_some() => {
                sim.as_ref().unwrap().process_crash();
                drop((p, db));
                (db, p) = setup.open().await?;
                reopens += 1;
                check_all(&p, &model, &format!("{ctx}: after process crash")).await?;
            }
            89..91 if sim.is_some() => {
                // Everything acknowledged is durable: synced explicitly, or by policy.
                if setup.durability != Durability::Always {
                    p.sync().await?;
                }
                sim.as_ref().unwrap().power_loss(rng.random());
                drop((p, db));
                (db, p) = setup.open().await?;
                reopens += 1;
                check_all(&p, &model, &format!("{ctx}: after power loss")).await?;
            }
            _ => {
                let v = random_value(&mut rng);
                p.put(&key, &v).await?;
                model.insert(key, v);
            }
        }
    }
    assert!(reopens >= 3, "seed {seed}: only {reopens} reopens");
    drop(p);
    db.close().await?;
    let (db, p) = setup.open().await?;
    check_all(&p, &model, &format!("seed {seed}: final reopen")).await?;
    db.close().await
}

fn sim_setup(seed: u64, durability: Durability, inline_read_limit: usize) -> Setup {
    Setup {
        disk: Some(SimDisk::with_seed(seed)),
        root: PathBuf::from("/db"),
        durability,
        inline_read_limit,
    }
}

/// Four seeds under one policy; odd seeds read most values on the blocking pool.
async fn run_policy(durability: Durability, first_seed: u64) -> caskade::Result<()> {
    for seed in first_seed..first_seed + 4 {
        let inline = if seed % 2 == 0 { 64 << 10 } else { 48 };
        run(seed, sim_setup(seed, durability, inline), 2_500).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_ops_match_the_model_under_always() -> caskade::Result<()> {
    run_policy(Durability::Always, 0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_ops_match_the_model_under_os_buffered() -> caskade::Result<()> {
    run_policy(Durability::OsBuffered, 10).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_ops_match_the_model_under_interval() -> caskade::Result<()> {
    run_policy(Durability::Interval(Duration::from_millis(5)), 20).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_ops_match_the_model_on_the_real_file_system() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup {
        disk: None,
        root: dir.path().join("db"),
        durability: Durability::OsBuffered,
        inline_read_limit: 64 << 10,
    };
    run(100, setup, 2_000).await
}
