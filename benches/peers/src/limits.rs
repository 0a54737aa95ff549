//! The raw limits of the machine, measured with `std::fs` in the run's own
//! directory and process, on records of `key + value` bytes (the fill's
//! keys and values):
//!
//! - **L1** buffered sequential append (a 1 MiB `BufWriter`), one `fsync`
//!   at the end (inside the wall time): the ceiling of a bulk fill and of
//!   non-durable puts;
//! - **L2** append one record + `fdatasync`, per operation, one writer:
//!   the cost of one durable write (measured in slices interleaved with
//!   the durable phases, see `suite`);
//! - **L3** random positional read (`pread`) of one record of the L1 file
//!   from the page cache, one thread, and **L3x2** from two threads: the
//!   ceiling of a random get;
//! - **L4** sequential read of the whole L1 file (1 MiB reads, page
//!   cache): the time to read the data set once, the reference for a
//!   reopen.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::plan::{Plan, SplitMix, fill_key, fill_value};
use crate::stats::{Measurement, Recorder};
use crate::workload::value_seed;

fn create(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// Fills `rec` with record `i`: key `i`, then its round-0 value.
fn record(i: u64, key_size: usize, rec: &mut [u8]) {
    let (k, v) = rec.split_at_mut(key_size);
    fill_key(i, k);
    fill_value(value_seed(i, 0), v);
}

/// L1: `plan.keys` records through a 1 MiB buffer into `path`, then one
/// `fsync`. Returns the measurement and the time of the final fsync.
///
/// # Errors
/// Any I/O error.
pub fn append(plan: &Plan, path: &Path) -> Result<(Measurement, Duration)> {
    let mut rec = vec![0u8; plan.record_size()];
    let mut w = BufWriter::with_capacity(1 << 20, create(path)?);
    let mut lat = Recorder::new();
    let start = Instant::now();
    let mut last = start;
    for i in 0..plan.keys {
        record(i, plan.key_size, &mut rec);
        w.write_all(&rec)?;
        lat.lap(&mut last);
    }
    let file = w.into_inner().map_err(|e| e.into_error())?;
    let before_sync = Instant::now();
    file.sync_all()?;
    let end = Instant::now();
    Ok((Measurement::new(plan.keys, end - start, lat), end - before_sync))
}

/// L2: `ops` × (append one record to a fresh file at `path`, `fdatasync`),
/// stopping early after `limit`. Called once per round; the rounds are
/// absorbed into one measurement.
///
/// # Errors
/// Any I/O error.
pub fn append_sync(plan: &Plan, path: &Path, ops: u64, limit: Duration) -> Result<Measurement> {
    let mut rec = vec![0u8; plan.record_size()];
    let mut file = create(path)?;
    file.sync_all()?;
    let mut lat = Recorder::new();
    let start = Instant::now();
    let deadline = start + limit;
    let mut last = start;
    for i in 0..ops {
        record(i, plan.key_size, &mut rec);
        file.write_all(&rec)?;
        file.sync_data()?;
        if lat.lap(&mut last) >= deadline {
            break;
        }
    }
    Ok(Measurement::new(lat.count(), last - start, lat))
}

/// L3 / L3x2: random `pread`s of one record of the L1 file at `path` for
/// `plan.duration`, on `threads` threads.
///
/// # Errors
/// Any I/O error, or an empty file.
pub fn random_read(plan: &Plan, path: &Path, threads: usize) -> Result<Measurement> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = plan.record_size();
    let records = file.metadata()?.len() / size as u64;
    if records == 0 {
        bail!("the L1 file holds no record");
    }
    let start = Instant::now();
    let deadline = start + plan.duration;
    let results: Vec<Result<(Recorder, Instant)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let file = &file;
                s.spawn(move || read_loop(file, size, records, t as u64, deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a reader thread panicked")))
            })
            .collect()
    });
    let mut lat = Recorder::new();
    let mut end = start;
    for r in results {
        let (rec, finished) = r?;
        lat.merge(&rec);
        end = end.max(finished);
    }
    Ok(Measurement::new(lat.count(), end - start, lat))
}

fn read_loop(
    file: &File,
    size: usize,
    records: u64,
    seed: u64,
    deadline: Instant,
) -> Result<(Recorder, Instant)> {
    let mut rng = SplitMix::new(0x1000 + seed);
    let mut buf = vec![0u8; size];
    let mut lat = Recorder::new();
    let mut last = Instant::now();
    loop {
        let r = rng.below(records);
        file.read_exact_at(&mut buf, r * size as u64)?;
        if lat.lap(&mut last) >= deadline {
            return Ok((lat, last));
        }
    }
}

/// L4: reads the whole L1 file at `path` sequentially in 1 MiB reads;
/// returns the time it took (ops = records).
///
/// # Errors
/// Any I/O error.
pub fn sequential_read(plan: &Plan, path: &Path) -> Result<Measurement> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut lat = Recorder::new();
    let mut total = 0u64;
    let start = Instant::now();
    let mut last = start;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        lat.lap(&mut last);
    }
    let records = total / plan.record_size() as u64;
    Ok(Measurement::new(records, start.elapsed(), lat))
}
