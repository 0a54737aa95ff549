//! Phases 2 and 3 of `caskade compaction`: load windows with and without a
//! compaction (readers, writers, CPU sampling), and the floor.

use super::*;

/// Phase 2 (alternating baseline and compacting phases) and phase 3 (the floor).
pub(super) async fn loads(
    a: &CompactionArgs,
    dir: &Path,
    fill: &Fill,
    progress: &dyn Fn(&str),
) -> Result<(Vec<Phase>, Option<(Disk, bool)>), BoxError> {
    let variants = a.variants();
    let mut current = variants[0];
    let mut db = open_load_db(a, dir, current).await?;
    let mut p = db.partition(PARTITION).await?;
    let mut state = LoadState {
        next_key: 0,
        generation: u64::from(a.overwrites) + 1,
        window: 0,
        // Baseline windows last as long as the latest compaction.
        last_compaction: fill.compactions.last().map_or(a.duration / 3, |r| r.duration),
        cpu: cpu::Sampler::start(&format!("caskade:{PARTITION}")),
    };
    let mut phases = Vec::new();
    for round in 1..=a.rounds {
        phases.push(phase(a, &p, &mut state, round, None, progress).await?);
        for &v in &variants {
            if v != current {
                progress(&format!("reopen with compaction {}", v.show()));
                drop(p);
                db.close().await?;
                current = v;
                db = open_load_db(a, dir, current).await?;
                p = db.partition(PARTITION).await?;
            }
            phases.push(phase(a, &p, &mut state, round, Some(v), progress).await?);
        }
    }
    // Each round's compacting phases lie between two baselines.
    phases.push(phase(a, &p, &mut state, a.rounds + 1, None, progress).await?);
    let floor = if a.no_floor {
        None
    } else {
        progress("floor: one more compaction without load, measure the directory");
        // Skipped if it would save less than `min_space_saving`.
        let performed = p.compact().await?.performed();
        // The replaced files go when the last version holding them does.
        let deadline = Instant::now() + Duration::from_secs(10);
        while p.stats().obsolete_files > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some((measure_disk(&db, &p)?, performed))
    };
    // The load's writers overwrite random keys: only the sizes are known.
    check_sample(&p, a, None).await?;
    drop(p);
    db.close().await?;
    Ok((phases, floor))
}

/// What carries over from one load window to the next.
#[derive(Debug)]
pub(super) struct LoadState {
    /// First key of the next overwrite step.
    next_key: u64,
    /// Generation of the next overwrite step's value.
    generation: u64,
    /// Windows run so far (seeds the tasks' key streams).
    window: u64,
    /// Duration of the latest compaction.
    last_compaction: Duration,
    /// CPU time by thread role.
    cpu: cpu::Sampler,
}

/// One phase: windows (each after an overwrite step) until `a.duration` of
/// load was measured; with a `variant`, each window is one compaction.
pub(super) async fn phase(
    a: &CompactionArgs,
    p: &Partition,
    st: &mut LoadState,
    round: usize,
    variant: Option<Variant>,
    progress: &dyn Fn(&str),
) -> Result<Phase, BoxError> {
    let what = match variant {
        None => "baseline (no compaction)".to_string(),
        Some(v) => format!("compacting ({})", v.show()),
    };
    let when = match round > a.rounds {
        true => "closing".to_string(),
        false => format!("round {round}/{}", a.rounds),
    };
    progress(&format!(
        "{when}: {what}: {} reader(s), {} writer(s), {} of load",
        a.readers,
        a.writers,
        fmt_duration(a.duration)
    ));
    let mut ph = Phase {
        round,
        variant,
        ..Phase::default()
    };
    let step = a.step_keys();
    while ph.elapsed < a.duration && ph.windows < MAX_WINDOWS {
        let t = Instant::now();
        write_keys(p, a, st.next_key, step, &value(a.value_size, st.generation)).await?;
        ph.step_time += t.elapsed();
        st.next_key = (st.next_key + step) % a.keys;
        st.generation += 1;
        st.window += 1;
        let (cpu0, roles0) = (cpu::process(), st.cpu.totals());
        let load = Load::start(p, a, st.window);
        let t0 = Instant::now();
        let report = match variant {
            Some(_) => Some(compact(p).await?),
            None => {
                let len = st.last_compaction.min(a.duration - ph.elapsed);
                tokio::time::sleep(len.max(Duration::from_millis(1))).await;
                None
            }
        };
        let (gets, puts, end) = load.stop().await?;
        let roles = st.cpu.totals();
        ph.cpu += cpu::process().saturating_sub(cpu0);
        for (sum, (now, then)) in ph.threads.iter_mut().zip(roles.iter().zip(roles0)) {
            *sum += now.saturating_sub(then);
        }
        ph.elapsed += end.saturating_duration_since(t0);
        ph.gets.merge(&gets);
        ph.puts.merge(&puts);
        ph.windows += 1;
        if let Some(r) = report {
            st.last_compaction = r.duration;
            ph.compactions.push(r);
        }
    }
    Ok(ph)
}

/// `compact`, failing if it did nothing.
pub(super) async fn compact(p: &Partition) -> Result<CompactionReport, BoxError> {
    let r = p.compact().await?;
    match r.skipped {
        None => Ok(r),
        Some(why) => Err(format!("the compaction did nothing ({why:?}): raise --overwrite-fraction").into()),
    }
}

/// A task's latencies and when it finished.
type TaskResult = Result<(Recorder, Instant), BoxError>;

/// The load of one window: reader and writer tasks until stopped.
pub(super) struct Load {
    stop: Arc<AtomicBool>,
    readers: Vec<JoinHandle<TaskResult>>,
    writers: Vec<JoinHandle<TaskResult>>,
}

impl Load {
    /// Spawns the tasks of window `window`.
    fn start(p: &Partition, a: &CompactionArgs, window: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let value: Arc<[u8]> = value(a.value_size, u64::MAX).into();
        let seed = |kind: u64, t: usize| (window << 20) | (kind << 16) | t as u64;
        let (keys, key_size, value_size) = (a.keys, a.key_size, a.value_size);
        let yields = a.readers > 1;
        let readers = (0..a.readers)
            .map(|t| {
                let (p, stop, rng) = (p.clone(), Arc::clone(&stop), SplitMix::new(seed(1, t)));
                tokio::spawn(read_loop(p, stop, rng, keys, key_size, value_size, yields))
            })
            .collect();
        let writers = (0..a.writers)
            .map(|t| {
                let (p, stop, rng) = (p.clone(), Arc::clone(&stop), SplitMix::new(seed(2, t)));
                tokio::spawn(write_loop(p, stop, rng, keys, key_size, Arc::clone(&value)))
            })
            .collect();
        Load {
            stop,
            readers,
            writers,
        }
    }

    /// Stops the tasks; their merged get and put latencies and the last finish.
    async fn stop(self) -> Result<(Recorder, Recorder, Instant), BoxError> {
        self.stop.store(true, Relaxed);
        let (gets, read_end) = join(self.readers).await?;
        let (puts, write_end) = join(self.writers).await?;
        Ok((gets, puts, read_end.max(write_end)))
    }
}

/// Waits for every task: their merged latencies and the last finish (now if none).
pub(super) async fn join(handles: Vec<JoinHandle<TaskResult>>) -> TaskResult {
    let (mut lat, mut end) = (Recorder::new(), None::<Instant>);
    for h in handles {
        let (rec, finished) = h.await??;
        lat.merge(&rec);
        end = Some(end.map_or(finished, |e| e.max(finished)));
    }
    Ok((lat, end.unwrap_or_else(Instant::now)))
}

/// One reader: random gets until `stop`, every value's length checked;
/// yields every [`YIELD_EVERY`] gets if `yields` (the clock restarts after
/// a yield, so it is not counted as latency).
pub(super) async fn read_loop(
    p: Partition,
    stop: Arc<AtomicBool>,
    mut rng: SplitMix,
    keys: u64,
    key_size: usize,
    value_size: usize,
    yields: bool,
) -> TaskResult {
    let (mut key, mut lat, mut n) = (vec![0u8; key_size], Recorder::new(), 0u32);
    let mut last = Instant::now();
    loop {
        let i = rng.below(keys);
        fill_key(i, &mut key);
        match p.get(&key).await? {
            Some(v) if v.len() == value_size => {}
            other => {
                let got = other.map(|v| v.len());
                return Err(format!("get of key #{i}: {got:?} bytes, not {value_size}").into());
            }
        }
        let now = lat.lap(&mut last);
        if stop.load(Relaxed) {
            return Ok((lat, now));
        }
        n = n.wrapping_add(1);
        if yields && n.is_multiple_of(YIELD_EVERY) {
            tokio::task::yield_now().await;
            last = Instant::now();
        }
    }
}

/// One writer: puts of random keys until `stop`.
pub(super) async fn write_loop(
    p: Partition,
    stop: Arc<AtomicBool>,
    mut rng: SplitMix,
    keys: u64,
    key_size: usize,
    value: Arc<[u8]>,
) -> TaskResult {
    let (mut key, mut lat) = (vec![0u8; key_size], Recorder::new());
    let mut last = Instant::now();
    loop {
        fill_key(rng.below(keys), &mut key);
        p.put(&key, &value[..]).await?;
        let now = lat.lap(&mut last);
        if stop.load(Relaxed) {
            return Ok((lat, now));
        }
    }
}
