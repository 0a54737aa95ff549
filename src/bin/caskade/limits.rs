//! The raw limits of the machine, measured with `std::fs` in the benchmark's
//! own data directory and in the same process as the engine phases, so the
//! ratios between them mean something on a noisy machine:
//!
//! - **L1** buffered sequential append of `key + value` records
//!   (a 1 MiB `BufWriter`), one `fsync` at the end;
//! - **L2** append one record, then `fdatasync`, per operation, one writer;
//! - **L3** random positional read (`pread`) of one record of the L1 file
//!   from the page cache, one thread (and **L3x2**: two threads).
//!
//! [`crate::bench`] runs L1 and L3 right before the engine phases they are
//! compared with, and L2 *interleaved* with the durable puts (in rounds), so
//! that both see the same background load.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use indicatif::ProgressBar;

use crate::plan::{Plan, SplitMix, fill_key};
use crate::stats::{Measurement, Recorder};

fn create(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Fills `rec` with record `i`: key `i` followed by the value.
fn record(i: u64, key_size: usize, value: &[u8], rec: &mut [u8]) {
    fill_key(i, &mut rec[..key_size]);
    rec[key_size..].copy_from_slice(value);
}

/// L1: `plan.keys` records through a 1 MiB buffer into `path`, then one `fsync`.
///
/// # Errors
/// Any I/O error.
pub fn append(plan: &Plan, path: &Path) -> std::io::Result<Measurement> {
    let value = plan.value();
    let mut rec = vec![0u8; plan.record_size()];
    let mut w = BufWriter::with_capacity(1 << 20, create(path)?);
    let mut lat = Recorder::new();
    let start = Instant::now();
    let mut last = start;
    for i in 0..plan.keys {
        record(i, plan.key_size, &value, &mut rec);
        w.write_all(&rec)?;
        lat.lap(&mut last);
    }
    let file = w.into_inner().map_err(|e| e.into_error())?;
    let before_sync = Instant::now();
    file.sync_all()?;
    let end = Instant::now();
    Ok(Measurement {
        id: "L1".into(),
        name: format!("L1 raw append {} B, fsync at end", plan.record_size()),
        tasks: 1,
        ops: plan.keys,
        elapsed: end - start,
        latency: lat,
        unit: "op".into(),
        limit: None,
        note: format!("final fsync {}", crate::report::fmt_duration(end - before_sync)),
    })
}

/// L2: `ops` × (append one record to `path`, `fdatasync`), advancing `bar`
/// by each. The durable phases call it once per round and
/// [`Measurement::absorb`] the results.
///
/// # Errors
/// Any I/O error.
pub fn append_sync(plan: &Plan, path: &Path, ops: u64, bar: &ProgressBar) -> std::io::Result<Measurement> {
    let value = plan.value();
    let mut rec = vec![0u8; plan.record_size()];
    let mut file = create(path)?;
    file.sync_all()?;
    let mut lat = Recorder::new();
    let start = Instant::now();
    let mut last = start;
    for i in 0..ops {
        record(i, plan.key_size, &value, &mut rec);
        file.write_all(&rec)?;
        file.sync_data()?;
        lat.lap(&mut last);
        bar.inc(1);
    }
    Ok(Measurement {
        id: "L2".into(),
        name: format!("L2 raw append {} B + fdatasync", plan.record_size()),
        tasks: 1,
        ops,
        elapsed: last - start,
        latency: lat,
        unit: "op".into(),
        limit: None,
        note: String::new(),
    })
}

/// L3 / L3x2: random `pread`s of one record from the L1 file at `path` for
/// `plan.duration`, on `threads` threads.
///
/// # Errors
/// Any I/O error.
pub fn random_read(plan: &Plan, path: &Path, threads: usize) -> std::io::Result<Measurement> {
    let file = File::open(path)?;
    let size = plan.record_size();
    let records = file.metadata()?.len() / size as u64;
    if records == 0 {
        return Err(std::io::Error::other("L1 file holds no record"));
    }
    let start = Instant::now();
    let deadline = start + plan.duration;
    let results: Vec<std::io::Result<(Recorder, Instant)>> = std::thread::scope(|s| {
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
                    .unwrap_or_else(|_| Err(std::io::Error::other("reader panicked")))
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
    let (id, name) = if threads == 1 {
        ("L3".to_string(), format!("L3 raw pread {size} B, page cache"))
    } else {
        (
            format!("L3x{threads}"),
            format!("L3x{threads} raw pread {size} B, {threads} threads"),
        )
    };
    Ok(Measurement {
        id,
        name,
        tasks: threads,
        ops: lat.count(),
        elapsed: end - start,
        latency: lat,
        unit: "op".into(),
        limit: None,
        note: String::new(),
    })
}

fn read_loop(
    file: &File,
    size: usize,
    records: u64,
    seed: u64,
    deadline: Instant,
) -> std::io::Result<(Recorder, Instant)> {
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
