//! What the engine costs in memory and on disk:
//!
//! - **memory** ([`Memory`]): the process's resident set (`VmRSS` of
//!   `/proc/self/status`) right before and right after the fill; the growth
//!   divided by the keys is the in-memory index's cost per key (plus what
//!   the allocator keeps of the fill's transient buffers);
//! - **space** ([`space`]): on a database of its own (`OsBuffered`, the
//!   compaction scheduler disabled), fill every key and overwrite every key
//!   `plan.overwrites` times in batches, then measure the partition
//!   directory's `*.data` + `*.hint` bytes against the raw bytes
//!   (keys × (key + value)) and against `PartitionStats::live_bytes`; then
//!   `Partition::compact()` once, wait until the replaced files are deleted,
//!   and measure again.

use std::path::Path;
use std::time::{Duration, Instant};

use caskade::{CompactionOptions, CompactionScheduler, Db, Durability, Partition, PartitionOptions};

use crate::plan::{Plan, SplitMix, fill_key};
use crate::progress::Progress;
use crate::stats::{Measurement, Recorder};
use crate::workload::{self, BoxError};

/// The partition of the space workload.
const PARTITION: &str = "space";

/// The resident set over the fill.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    /// Keys loaded.
    pub keys: u64,
    /// Resident bytes right before the fill.
    pub rss_before: u64,
    /// Resident bytes right after it (and its sync).
    pub rss_after: u64,
}

impl Memory {
    /// Resident bytes the fill added (0 if the set shrank).
    pub fn growth(&self) -> u64 {
        self.rss_after.saturating_sub(self.rss_before)
    }

    /// [`Memory::growth`] per key.
    pub fn per_key(&self) -> f64 {
        self.growth() as f64 / self.keys.max(1) as f64
    }
}

/// The resident set size of this process, from `/proc/self/status`.
///
/// # Errors
/// If the file cannot be read or has no `VmRSS` line.
pub fn rss_bytes() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    parse_vm_rss(&status).ok_or_else(|| "no VmRSS in /proc/self/status".into())
}

/// The `VmRSS:  1234 kB` line of a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kb = kb.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kb * 1024)
}

/// The partition directory at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Footprint {
    /// Bytes of `*.data` files.
    pub data_bytes: u64,
    /// Bytes of `*.hint` files.
    pub hint_bytes: u64,
    /// `*.data` files.
    pub data_files: u64,
    /// `*.hint` files.
    pub hint_files: u64,
    /// `PartitionStats::live_bytes`: the records the live keys point at.
    pub live_bytes: u64,
    /// `PartitionStats::dead_bytes`.
    pub dead_bytes: u64,
}

impl Footprint {
    /// Data plus hint bytes.
    pub fn bytes(&self) -> u64 {
        self.data_bytes + self.hint_bytes
    }

    /// [`Footprint::bytes`] over `raw` (keys × (key + value)).
    pub fn vs_raw(&self, raw: u64) -> f64 {
        self.bytes() as f64 / raw.max(1) as f64
    }

    /// [`Footprint::bytes`] over the live bytes.
    pub fn vs_live(&self) -> f64 {
        self.bytes() as f64 / self.live_bytes.max(1) as f64
    }
}

/// The result of the space workload.
#[derive(Debug, Clone)]
pub struct Space {
    /// Keys written (each `overwrites + 1` times).
    pub keys: u64,
    /// Overwrite rounds after the fill.
    pub overwrites: u32,
    /// keys × (key + value).
    pub raw_bytes: u64,
    /// After the overwrites (scheduler off, nothing compacted).
    pub before: Footprint,
    /// After `compact()` and the deletion of the files it replaced.
    pub after: Footprint,
    /// How long `compact()` took (call to return).
    pub compaction: Duration,
    /// Live records it copied.
    pub records_copied: u64,
}

/// Runs the space workload in `dir` (a new database). Returns the
/// measurement of the overwrite rounds (for the phase table) and the
/// footprints.
///
/// # Errors
/// Any engine or I/O error, a skipped compaction, or a key with the wrong value.
pub async fn space(
    plan: &Plan,
    dir: &Path,
    progress: &Progress<'_>,
) -> Result<(Measurement, Space), BoxError> {
    let db = Db::builder(dir)
        .durability(Durability::OsBuffered)
        .compaction_scheduler(CompactionScheduler::disabled())
        .open()
        .await?;
    // Compact whatever there is, however little (toy sizes in tests).
    let opts = PartitionOptions::default().compaction(CompactionOptions::default().min_space_saving(0));
    let p = db.create_partition(PARTITION, opts).await?;
    progress.line(&format!(
        "space: fill + {} overwrite round(s) of {} keys in batches of {} (OsBuffered, scheduler off)",
        plan.overwrites, plan.keys, plan.batch
    ));
    let rounds = u64::from(plan.overwrites);
    let bar = progress.count(plan.keys * (rounds + 1), "keys");
    workload::write_all(plan, &p, &plan.value_of(0), &mut Recorder::new(), bar.handle()).await?;
    let mut lat = Recorder::new();
    let start = Instant::now();
    for generation in 1..=rounds {
        workload::write_all(plan, &p, &plan.value_of(generation), &mut lat, bar.handle()).await?;
    }
    p.sync().await?;
    let elapsed = start.elapsed();
    drop(bar);
    check(plan, &p, rounds).await?;
    let before = footprint(&db, &p).await?;
    progress.line("space: Partition::compact()");
    let spinner = progress.spinner("compact()");
    let t = Instant::now();
    let report = p.compact().await?;
    let compaction = t.elapsed();
    if let Some(why) = &report.skipped {
        return Err(format!("the space workload's compaction was skipped: {why:?}").into());
    }
    // The replaced files go once no version reads them: wait for that.
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.stats().obsolete_files > 0 {
        if Instant::now() > deadline {
            return Err("the files replaced by the compaction were not deleted within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(spinner);
    check(plan, &p, rounds).await?;
    let after = footprint(&db, &p).await?;
    drop(p);
    db.close().await?;
    let measurement = Measurement {
        id: "overwrite".into(),
        name: format!("overwrite x{rounds}, batches of {}, OsBuffered", plan.batch),
        tasks: 1,
        ops: plan.keys * rounds,
        elapsed,
        latency: lat,
        unit: format!("batch of {}", plan.batch),
        limit: Some(crate::stats::Limit::L1),
        note: "space workload: every key, scheduler off".into(),
    };
    let space = Space {
        keys: plan.keys,
        overwrites: plan.overwrites,
        raw_bytes: plan.keys * plan.record_size() as u64,
        before,
        after,
        compaction,
        records_copied: report.records_copied,
    };
    Ok((measurement, space))
}

/// Checks the key count and a sample of keys: each holds exactly the value
/// of overwrite round `generation`.
async fn check(plan: &Plan, p: &Partition, generation: u64) -> Result<(), BoxError> {
    let keys = p.stats().keys;
    if keys != plan.keys {
        return Err(format!(
            "partition `{PARTITION}` holds {keys} keys, expected {}",
            plan.keys
        )
        .into());
    }
    let want = plan.value_of(generation);
    let mut rng = SplitMix::new(0x5ACE);
    let mut key = plan.key_buf();
    for _ in 0..plan.keys.min(1000) {
        let i = rng.below(plan.keys);
        fill_key(i, &mut key);
        if p.get(&key).await?.as_deref() != Some(&want[..]) {
            return Err(format!("key #{i} does not hold the value of overwrite round {generation}").into());
        }
    }
    Ok(())
}

/// The partition's footprint once its directory is stable (hint files are
/// written in the background after a rotation): three equal scans 100 ms
/// apart, or the last scan after 10 s.
async fn footprint(db: &Db, p: &Partition) -> Result<Footprint, BoxError> {
    let dir = db
        .describe_partition(PARTITION)?
        .dir
        .ok_or("the space partition has no directory")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = scan(&dir)?;
    let mut equal = 0;
    while equal < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = scan(&dir)?;
        equal = if now == last { equal + 1 } else { 0 };
        last = now;
    }
    let s = p.stats();
    (last.live_bytes, last.dead_bytes) = (s.live_bytes, s.dead_bytes);
    Ok(last)
}

/// Sizes and counts of the `*.data` and `*.hint` files in `dir`.
pub fn scan(dir: &Path) -> std::io::Result<Footprint> {
    let mut f = Footprint::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let len = match entry.metadata() {
            Ok(m) => m.len(),
            // Deleted meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        match entry.path().extension().and_then(|x| x.to_str()) {
            Some("data") => (f.data_bytes, f.data_files) = (f.data_bytes + len, f.data_files + 1),
            Some("hint") => (f.hint_bytes, f.hint_files) = (f.hint_bytes + len, f.hint_files + 1),
            _ => {}
        }
    }
    Ok(f)
}
