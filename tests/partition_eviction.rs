//! Eviction under load: the open-partition bound and the idle timeout never
//! lose a request or an acknowledged write, a partition with a request in
//! flight is never evicted, idle eviction is off unless asked for, and
//! memory-only partitions are never evicted. (Reopen/evict churn of one
//! directory: `partition_churn.rs`.)
//!
//! The paused tokio clock drives only the idle timer: actors are real OS
//! threads doing real file I/O, so waits for them use a real-time deadline.

use rand::{Rng as _, SeedableRng, rngs::StdRng};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use caskade::{Db, Durability, Partition, PartitionOptions, Persistence};

const REAL_DEADLINE: Duration = Duration::from_secs(30);

/// What one task wrote: its own keys (no other task touches them) and the
/// sum of its increments of each partition's shared counter.
#[derive(Default)]
struct Model {
    values: HashMap<(usize, String), Option<String>>,
    incr: HashMap<usize, i64>,
}

async fn worker(parts: Arc<Vec<Partition>>, t: usize, ops: usize) -> caskade::Result<Model> {
    let mut rng = StdRng::seed_from_u64(t as u64 + 1);
    let mut m = Model::default();
    let mut last_counter: HashMap<usize, i64> = HashMap::new();
    for n in 0..ops {
        let p = rng.random_range(0..parts.len() as u64) as usize;
        let part = &parts[p];
        let key = format!("t{t}/{}", rng.random_range(0..6));
        let slot = (p, key.clone());
        match rng.random_range(0..100) {
            0..35 => {
                let v = format!("t{t} op{n}");
                part.put(&key, &v).await?;
                m.values.insert(slot, Some(v));
            }
            35..45 => {
                let present = m.values.get(&slot).is_some_and(Option::is_some);
                assert_eq!(part.delete(&key).await?, present, "delete {slot:?}");
                m.values.insert(slot, None);
            }
            45..70 => {
                let want = m.values.get(&slot).cloned().flatten();
                assert_eq!(part.get(&key).await?.as_deref(), bytes(&want), "get {slot:?}");
            }
            70..88 => {
                let by = t as i64 + 1;
                let now = part.incr("counter", by).await?;
                let last = last_counter.insert(p, now).unwrap_or(0);
                assert!(now >= last + by, "counter of {p} went from {last} to {now}");
                *m.incr.entry(p).or_default() += by;
            }
            88..94 => {
                let (k2, v) = (
                    format!("t{t}/b{}", rng.random_range(0..3)),
                    format!("t{t} batch{n}"),
                );
                let mut b = part.batch();
                b.put(&key, &v).put(&k2, &v);
                b.commit().await?;
                m.values.insert(slot, Some(v.clone()));
                m.values.insert((p, k2), Some(v));
            }
            _ => tokio::time::sleep(Duration::from_millis(rng.random_range(0..60))).await,
        }
    }
    Ok(m)
}

fn bytes(v: &Option<String>) -> Option<&[u8]> {
    v.as_ref().map(|v| v.as_bytes())
}

/// Incarnations opened and not yet evicted (stopped).
fn running(db: &Db) -> u64 {
    let s = db.stats();
    s.opens - s.evictions
}

/// Waits (bounded, in real time) until `done` holds, letting virtual time pass.
async fn poll_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + REAL_DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_load_with_bound_and_idle_timeout() -> caskade::Result<()> {
    const DURABLE: usize = 20;
    const MAX_OPEN: usize = 4;
    const TASKS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path())
        .durability(Durability::OsBuffered)
        .max_open_partitions(MAX_OPEN)
        .idle_timeout(Duration::from_millis(100))
        .open()
        .await?;
    let mut parts = Vec::new();
    for i in 0..DURABLE {
        parts.push(db.partition(&format!("p{i}")).await?);
    }
    let memory = PartitionOptions::default().persistence(Persistence::Memory);
    parts.push(db.create_partition("mem", memory).await?);
    let parts = Arc::new(parts);

    let tasks: Vec<_> = (0..TASKS)
        .map(|t| tokio::spawn(worker(Arc::clone(&parts), t, 120)))
        .collect();
    let mut peak_open = 0;
    poll_until("the load", || {
        let open = db.stats().open_partitions;
        peak_open = peak_open.max(open);
        tasks.iter().all(|h| h.is_finished())
    })
    .await;
    let mut model = Model::default();
    for h in tasks {
        let m = h.await.expect("task panicked")?;
        model.values.extend(m.values);
        for (p, by) in m.incr {
            *model.incr.entry(p).or_default() += by;
        }
    }
    let s = db.stats();
    println!("after the load: {s:?}, peak open {peak_open}");
    // Over the bound only while every open partition had a request in flight.
    assert!(peak_open as usize <= MAX_OPEN + TASKS, "peak open {peak_open}");
    assert!(s.evictions > 0 && s.reopens > 0, "{s:?}");

    // Every acknowledged write is there (reading reopens evicted partitions).
    for ((p, key), want) in &model.values {
        assert_eq!(parts[*p].get(key).await?.as_deref(), bytes(want), "{key} in p{p}");
    }
    for (p, part) in parts.iter().enumerate() {
        let want = model.incr.get(&p).copied();
        assert_eq!(part.get_int("counter").await?, want, "counter of partition {p}");
    }
    // Idle again: the openings above brought the count back to the bound.
    let s = db.stats();
    assert!(s.open_partitions as usize <= MAX_OPEN, "{s:?}");
    let (mem, ms) = (&parts[DURABLE], parts[DURABLE].stats());
    assert!(ms.open && ms.evictions == 0, "{ms:?}");

    // No activity past the timeout: every durable partition is evicted. p0
    // is open and just used (nothing else runs on this thread in between).
    parts[0].put("last", "write").await?;
    let before = db.stats();
    assert!(parts[0].stats().open);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every incarnation but the memory partition's has stopped.
    poll_until("idle evictions", || running(&db) == 1).await;
    let s = db.stats();
    assert_eq!(s.open_partitions, 1, "{s:?}");
    assert!(s.idle_evictions > before.idle_evictions, "{s:?}");
    assert_eq!(
        s.evictions - before.evictions,
        s.idle_evictions - before.idle_evictions,
        "only idle evictions without openings: {s:?}"
    );
    assert!(parts[..DURABLE].iter().all(|p| !p.stats().open));
    assert!(mem.stats().open, "memory-only partitions stay open");
    assert_eq!(parts[0].get("last").await?.as_deref(), Some(&b"write"[..]));
    let want = model.incr.get(&DURABLE).copied();
    assert_eq!(mem.get_int("counter").await?, want);
    db.close().await
}

/// Polls `fut` once: it takes its lease and sends its request; unless the
/// reply was already there (then `false`), it stays pending, holding the
/// lease, until polled again.
async fn start<F: Future + Unpin>(fut: &mut F) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx).is_pending())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_with_request_in_flight_is_not_evicted() -> caskade::Result<()> {
    const QUEUED: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path())
        .durability(Durability::Always)
        .mailbox_capacity(1)
        .max_open_partitions(1)
        .open()
        .await?;
    let a = db.partition("a").await?;
    a.put("warm", "up").await?;
    // A write whose requester holds its lease: the actor may have answered,
    // but the request is in flight until the reply is taken. (A commit syncs,
    // so the first poll all but always finds no reply yet.)
    let mut held = Box::pin(a.put("held", "1"));
    let mut tries = 1;
    while !start(&mut held).await {
        assert!(tries < 10, "every write was answered before its first poll ended");
        (held, tries) = (Box::pin(a.put("held", "1")), tries + 1);
    }
    // And many more queued behind a one-request mailbox.
    let puts: Vec<_> = (0..QUEUED)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move { a.put(format!("k{i}"), format!("v{i}")).await })
        })
        .collect();
    // `a` is the least recently used partition each time one of these opens.
    for name in ["b", "c", "d"] {
        db.partition(name).await?.put("k", name).await?;
        let s = a.stats();
        assert!(s.open && s.evictions == 0, "`a` evicted while busy: {s:?}");
    }
    assert_eq!(db.stats().evictions, 2, "b and c were idle when c and d opened");
    held.await?;
    for (i, put) in puts.into_iter().enumerate() {
        put.await
            .expect("task panicked")
            .unwrap_or_else(|e| panic!("put {i}: {e}"));
    }
    assert_eq!(a.get("held").await?.as_deref(), Some(&b"1"[..]));
    for i in 0..QUEUED {
        let want = Some(format!("v{i}"));
        assert_eq!(a.get(format!("k{i}")).await?.as_deref(), bytes(&want));
    }
    let s = a.stats();
    assert!(s.mailbox_full_waits > 0, "the mailbox was never full: {s:?}");
    // Everything is idle now: the next opening evicts down to the bound.
    db.partition("e").await?.put("k", "e").await?;
    let s = db.stats();
    assert_eq!((s.open_partitions, s.evictions), (1, 4), "{s:?}");
    assert_eq!(a.stats().evictions, 1);
    for name in ["b", "c", "d", "e"] {
        assert_eq!(db.get(name, "k").await?.as_deref(), Some(name.as_bytes()));
    }
    assert_eq!(a.get("k0").await?.as_deref(), Some(&b"v0"[..]), "reopened");
    db.close().await
}

#[tokio::test(start_paused = true)]
async fn idle_eviction_is_off_by_default() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path()).durability(Durability::OsBuffered);
    let db = db.open().await?;
    let mut parts = Vec::new();
    for name in ["a", "b", "c"] {
        let p = db.partition(name).await?;
        p.put("k", name).await?;
        parts.push(p);
    }
    for _ in 0..24 {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let s = db.stats();
    let evictions = (s.evictions, s.idle_evictions);
    assert_eq!((s.open_partitions, evictions), (3, (0, 0)), "{s:?}");
    for p in &parts {
        let st = p.stats();
        assert!(st.open && st.opens == 1 && st.evictions == 0, "{st:?}");
        assert_eq!(p.get("k").await?.as_deref(), Some(p.name().as_bytes()));
    }
    db.close().await
}

#[tokio::test(start_paused = true)]
async fn memory_partitions_are_never_evicted() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path())
        .durability(Durability::OsBuffered)
        .max_open_partitions(3)
        .idle_timeout(Duration::from_millis(100))
        .open()
        .await?;
    let memory = PartitionOptions::default().persistence(Persistence::Memory);
    let mems = [
        db.create_partition("m0", memory).await?,
        db.create_partition("m1", memory).await?,
    ];
    for (i, m) in mems.iter().enumerate() {
        for k in 0..50 {
            m.put(format!("k{k}"), format!("m{i} {k}")).await?;
        }
    }
    assert_eq!(db.stats().open_partitions, 2, "memory partitions count as open");
    for i in 0..8 {
        let p = db.partition(&format!("d{i}")).await?;
        p.put("k", "v").await?;
        let s = db.stats();
        assert_eq!(s.open_partitions, 3, "two memory, one durable: {s:?}");
    }
    // Past the idle timeout the last durable one goes too (the earlier
    // ones were evicted by the next opening, or by the idle timer while
    // virtual time ran ahead during an opening), the memory ones stay.
    let before = db.stats();
    tokio::time::sleep(Duration::from_millis(300)).await;
    poll_until("the idle eviction", || running(&db) == 2).await;
    let s = db.stats();
    assert_eq!((s.open_partitions, s.opens, s.evictions), (2, 10, 8), "{s:?}");
    assert!(s.idle_evictions > before.idle_evictions, "{s:?}");
    for (i, m) in mems.iter().enumerate() {
        let st = m.stats();
        assert!(st.open && st.opens == 1 && st.evictions == 0, "{st:?}");
        assert_eq!(st.keys, 50);
        for k in 0..50 {
            let got = m.get(format!("k{k}")).await?;
            assert_eq!(got.as_deref(), Some(format!("m{i} {k}").as_bytes()), "m{i} k{k}");
        }
    }
    db.close().await
}
