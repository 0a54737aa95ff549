//! Readers racing one writer (with file rotations) see only written values, never go back, and read their writes.

mod common;
use common::partition_dir;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use caskade::{Bytes, Db, Durability, Partition};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KEYS: usize = 50;
const ROUNDS: u64 = 60;
const READERS: u64 = 8;
/// Each reader reads at least this often, and goes on until the writer is done.
const MIN_READS: u64 = 2_000;

/// The writer's progress, shared with the readers.
struct Progress {
    /// Per key: the round whose `put` has returned (0: none yet).
    acked: Vec<AtomicU64>,
    /// Per key: the round whose `put` has been started.
    started: Vec<AtomicU64>,
    /// The key of the latest acknowledged put.
    last_key: AtomicUsize,
    done: AtomicBool,
}

fn key(k: usize) -> String {
    format!("key-{k:02}")
}

/// Value of round `r` for key `k`: the key index, the round, and padding
/// that depends on both, so a value read under the wrong key or torn is caught.
fn value(k: usize, r: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(40);
    v.extend_from_slice(&(k as u32).to_be_bytes());
    v.extend_from_slice(&r.to_be_bytes());
    v.extend((0..28).map(|i| (k as u64 * 31 + r * 7 + i) as u8));
    v
}

/// Decodes a value read for key `k`, checking that it is one the writer produces.
fn round_of(k: usize, v: &Bytes) -> u64 {
    assert_eq!(v.len(), 40, "{}: value of wrong length: {v:?}", key(k));
    let of_key = u32::from_be_bytes(v[..4].try_into().unwrap()) as usize;
    assert_eq!(of_key, k, "{}: value of another key: {v:?}", key(k));
    let r = u64::from_be_bytes(v[4..12].try_into().unwrap());
    assert!(
        (1..=ROUNDS).contains(&r),
        "{}: round {r} was never written",
        key(k)
    );
    assert_eq!(&v[..], &value(k, r)[..], "{}: damaged value of round {r}", key(k));
    r
}

async fn reader(id: u64, p: Partition, progress: Arc<Progress>) -> caskade::Result<u64> {
    let mut rng = StdRng::seed_from_u64(id);
    let mut last_seen = [0u64; KEYS];
    let mut non_empty = 0;
    let mut n = 0;
    // Bounded by iterations: MIN_READS, then until the writer's last round.
    while n < MIN_READS || !progress.done.load(Ordering::Acquire) {
        n += 1;
        // Half the reads go to the key just written, where a lost
        // read-your-write would show; the rest anywhere.
        let k = if rng.random_bool(0.5) {
            progress.last_key.load(Ordering::Relaxed)
        } else {
            rng.random_range(0..KEYS)
        };
        // Read the floor BEFORE the read starts: a put acknowledged by then
        // must be visible (Acquire pairs with the writer's Release store).
        let floor = progress.acked[k].load(Ordering::Acquire);
        let got = if n % 4 == 0 {
            p.snapshot().await.unwrap().get(key(k))?
        } else {
            p.get(key(k)).await?
        };
        let ceiling = progress.started[k].load(Ordering::Acquire);
        let r = match got {
            None => 0,
            Some(v) => {
                non_empty += 1;
                round_of(k, &v)
            }
        };
        assert!(
            r >= floor,
            "reader {id}: {} at round {r}, but round {floor} was acknowledged",
            key(k)
        );
        assert!(
            r <= ceiling,
            "reader {id}: {} at round {r}, before its put started",
            key(k)
        );
        assert!(
            r >= last_seen[k],
            "reader {id}: {} went back from {} to {r}",
            key(k),
            last_seen[k]
        );
        last_seen[k] = r;
        if n % 16 == 0 {
            tokio::task::yield_now().await;
        }
    }
    Ok(non_empty)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_see_only_written_values_in_order() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path())
        .durability(Durability::OsBuffered)
        .max_file_size(4096)
        .open()
        .await?;
    let p = db.partition("p").await?;
    let progress = Arc::new(Progress {
        acked: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
        started: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
        last_key: AtomicUsize::new(0),
        done: AtomicBool::new(false),
    });
    let readers: Vec<_> = (0..READERS)
        .map(|id| tokio::spawn(reader(id, p.clone(), Arc::clone(&progress))))
        .collect();

    let writer = p.clone();
    for r in 1..=ROUNDS {
        for k in 0..KEYS {
            progress.started[k].store(r, Ordering::Release);
            writer.put(key(k), value(k, r)).await?;
            // Release: a reader that sees `r` here also sees the publication.
            progress.acked[k].store(r, Ordering::Release);
            progress.last_key.store(k, Ordering::Relaxed);
            // Let the readers on this worker run between two puts.
            tokio::task::yield_now().await;
        }
    }
    progress.done.store(true, Ordering::Release);
    let mut non_empty = 0;
    for r in readers {
        non_empty += r.await.expect("reader panicked")?;
    }
    assert!(non_empty > 0, "the readers never found a value");

    for k in 0..KEYS {
        let v = p.get(key(k)).await?.expect("every key was written");
        assert_eq!(round_of(k, &v), ROUNDS, "{}", key(k));
    }
    let data_files = std::fs::read_dir(partition_dir(&db, "p"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "data")
        })
        .count();
    assert!(
        data_files >= 5,
        "the writes must rotate files: {data_files} data files"
    );
    db.close().await
}
