//! Phase 1 of `caskade compaction`: fill and overwrite with the scheduler
//! on, wait until it settled, and measure the partition's directory (also
//! its peak, sampled by a thread).

use super::*;

/// Phase 1: fill and overwrite with the scheduler on, wait for it to
/// settle, measure the footprint.
pub(super) async fn space(a: &CompactionArgs, dir: &Path, progress: &dyn Fn(&str)) -> Result<Fill, BoxError> {
    let sched = CompactionScheduler::default()
        .quiet_period(Duration::ZERO)
        .jitter(Duration::ZERO)
        .check_interval(a.check_interval);
    let builder = Db::builder(dir)
        .durability(Durability::OsBuffered)
        .compaction_scheduler(sched);
    let db = a.variants()[0].apply(builder).open().await?;
    let mut events = db.events();
    let opts = PartitionOptions::default().compaction(a.thresholds());
    let p = db.create_partition(PARTITION, opts).await?;
    let peak = Peak::watch(partition_dir(&db)?)?;
    let start = Instant::now();
    let mut rates = Vec::new();
    for generation in 0..=u64::from(a.overwrites) {
        let what = if generation == 0 {
            "fill".to_string()
        } else {
            format!("overwrite round {generation}/{}", a.overwrites)
        };
        progress(&format!(
            "space: {what}: {} keys in batches of {} (scheduler on)",
            a.keys, a.batch
        ));
        let t = Instant::now();
        write_keys(&p, a, 0, a.keys, &value(a.value_size, generation)).await?;
        rates.push(a.keys as f64 / t.elapsed().as_secs_f64().max(1e-9));
    }
    let writes = start.elapsed();
    progress("space: wait for the scheduler to settle");
    let t = Instant::now();
    let settled = settle(&db, &p, a).await?;
    let settle_time = t.elapsed();
    let peak = peak.stop();
    let mut compactions = Vec::new();
    let mut failed = 0;
    while let Some(e) = events.try_recv() {
        match e {
            Event::CompactionCompleted { report, .. } => compactions.push(report),
            Event::CompactionFailed { .. } => failed += 1,
            _ => {}
        }
    }
    check_sample(&p, a, Some(u64::from(a.overwrites))).await?;
    let disk = measure_disk(&db, &p)?;
    let stats = p.stats();
    let near = near_threshold(&db, &p, a, progress).await?;
    drop(p);
    db.close().await?;
    Ok(Fill {
        rates,
        writes,
        settle: settle_time,
        settled,
        compactions,
        failed,
        scheduled: stats.compactions,
        peak,
        disk,
        near,
    })
}

/// The most a settled partition holds: overwrites keys until the dead bytes
/// are just (3 %) below the smallest amount the scheduler acts on, waits
/// [`SETTLED_CHECKS`] check intervals, and measures the directory; with
/// whether a compaction started anyway. `None` if the partition is that
/// close already, or the thresholds need more than one overwrite of every key.
pub(super) async fn near_threshold(
    db: &Db,
    p: &Partition,
    a: &CompactionArgs,
    progress: &dyn Fn(&str),
) -> Result<Option<(Disk, bool)>, BoxError> {
    let (t, s) = (a.thresholds(), p.stats());
    let live = s.live_bytes as f64;
    // Due when dead >= each absolute threshold and dead >= r * (live + dead).
    let r = t.min_dead_ratio;
    let by_ratio = if r < 1.0 {
        r / (1.0 - r) * live
    } else {
        f64::INFINITY
    };
    let bound = by_ratio
        .max(t.min_dead_bytes as f64)
        .max(t.min_space_saving as f64);
    let record = live / s.keys.max(1) as f64;
    let keys = ((0.97 * bound - s.dead_bytes as f64) / record).floor();
    if !(keys >= 1.0 && keys <= a.keys as f64) {
        return Ok(None);
    }
    let keys = keys as u64;
    progress(&format!(
        "space: overwrite {keys} keys: dead bytes just below the thresholds, wait"
    ));
    let before = p.stats().compactions;
    write_keys(p, a, 0, keys, &value(a.value_size, u64::from(a.overwrites) + 1)).await?;
    tokio::time::sleep(a.check_interval * (SETTLED_CHECKS + 1)).await;
    settle(db, p, a).await?;
    let started = p.stats().compactions != before;
    Ok(Some((measure_disk(db, p)?, started)))
}

/// Waits until no compaction runs, the partition is below its thresholds
/// and no replaced file awaits deletion, [`SETTLED_CHECKS`] checks in a row
/// (one per check interval); `false` after `--settle-timeout`.
pub(super) async fn settle(db: &Db, p: &Partition, a: &CompactionArgs) -> Result<bool, BoxError> {
    let deadline = Instant::now() + a.settle_timeout;
    let t = a.thresholds();
    let mut quiet = 0;
    while Instant::now() < deadline {
        let s = p.stats();
        let total = s.live_bytes + s.dead_bytes;
        let due = s.dead_bytes > 0
            && s.dead_bytes >= t.min_dead_bytes
            && s.dead_bytes as f64 >= t.min_dead_ratio * total as f64
            && s.dead_bytes >= t.min_space_saving;
        let idle = !s.compacting && db.stats().running_compactions == 0 && s.obsolete_files == 0;
        quiet = if idle && !due { quiet + 1 } else { 0 };
        if quiet >= SETTLED_CHECKS {
            return Ok(true);
        }
        tokio::time::sleep(a.check_interval).await;
    }
    Ok(false)
}

/// Checks a sample of keys: each holds a value of the right size and, if
/// `generation` is given, exactly the value of that generation.
pub(super) async fn check_sample(
    p: &Partition,
    a: &CompactionArgs,
    generation: Option<u64>,
) -> Result<(), BoxError> {
    let want = generation.map(|g| value(a.value_size, g));
    let mut rng = SplitMix::new(0xC4EC);
    let mut key = vec![0u8; a.key_size];
    for _ in 0..a.keys.min(10_000) {
        let i = rng.below(a.keys);
        fill_key(i, &mut key);
        match p.get(&key).await? {
            Some(v) if want.as_ref().map_or(v.len() == a.value_size, |w| v[..] == w[..]) => {}
            other => {
                let got = other.map(|v| v.len());
                return Err(
                    format!("key #{i}: {got:?} bytes, not the value of generation {generation:?}").into(),
                );
            }
        }
    }
    Ok(())
}

/// The partition's directory and statistics now.
pub(super) fn measure_disk(db: &Db, p: &Partition) -> Result<Disk, BoxError> {
    let mut disk = scan_dir(&partition_dir(db)?)?;
    let s = p.stats();
    (disk.keys, disk.live_bytes, disk.dead_bytes) = (s.keys, s.live_bytes, s.dead_bytes);
    Ok(disk)
}

/// The partition's directory.
pub(super) fn partition_dir(db: &Db) -> Result<PathBuf, BoxError> {
    let dir = db.describe_partition(PARTITION)?.dir;
    Ok(dir.ok_or("the partition has no directory")?)
}

/// The sizes of the files in `dir` (statistics left at zero).
pub(super) fn scan_dir(dir: &Path) -> std::io::Result<Disk> {
    let f = crate::footprint::scan(dir)?;
    Ok(Disk {
        data_bytes: f.data_bytes,
        hint_bytes: f.hint_bytes,
        data_files: f.data_files,
        hint_files: f.hint_files,
        ..Disk::default()
    })
}

/// The largest footprint (data + hints) of a directory, sampled by a
/// thread every 50 ms until stopped.
pub(super) struct Peak {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Peak {
    fn watch(dir: PathBuf) -> std::io::Result<Peak> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("bench:peak".into())
            .spawn(move || {
                let mut peak = 0;
                while !flag.load(Relaxed) {
                    // A file deleted mid-listing: the next sample counts.
                    if let Ok(d) = scan_dir(&dir) {
                        peak = peak.max(d.footprint());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                peak
            })?;
        Ok(Peak { stop, thread })
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Relaxed);
        self.thread.join().unwrap_or(0)
    }
}
