//! The background half of hot-swap compaction: copying the live records of
//! the sealed data files into new files.
//!
//! The writer begins a compaction (`writer::compact`): it seals the active
//! file, so the inputs are immutable, and hands this job a snapshot of the
//! index (an O(1) clone of the persistent map). The job runs on its own
//! thread — never on the actor, never on a tokio worker — and:
//!
//! 1. scans every input strictly (each record's CRCs verified), keeping a
//!    record only if the snapshot's index points exactly at it (tombstones
//!    and overwritten values are dropped: every older file is an input, so
//!    no older record can come back);
//! 2. re-encodes each kept record (same key, value and sequence number, the
//!    output file's salt, no batch flag: a sealed batch is complete) into
//!    output files, rolling over at `max_file_size`, and builds their hints
//!    and the index repointed at them;
//! 3. `sync_all`s every output, stores its hint (atomic replace) and syncs
//!    the directory — only then can a manifest list them.
//!
//! On any failure, cancellation or timeout the job deletes its outputs
//! before returning the error (and a crash leaves them unlisted: the next
//! open deletes them). Installing the result is the writer's job.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::data_file;
use crate::format::hint::{HintEntry, HintWriter};
use crate::format::record;
use crate::index::{Index, Key, Location};
use crate::snapshot::DataFile;
use crate::storage::Backend;

use super::files::{create_data_file, store_hint};
use super::scan::{ScanMode, is_tombstone, scan};

/// Output bytes buffered before one positional write.
const FLUSH_AT: usize = 1 << 20;

/// Everything the copy needs, handed over by the writer.
#[derive(Debug)]
pub(crate) struct CompactionJob {
    pub(crate) name: String,
    pub(crate) fs: Backend,
    pub(crate) dir: PathBuf,
    /// The index when the compaction began: a record is live iff it points at it.
    pub(crate) index: Index,
    /// The sealed files to replace, with their lengths, oldest first.
    pub(crate) inputs: Vec<(Arc<DataFile>, u64)>,
    /// File ids reserved for the outputs.
    pub(crate) output_ids: Range<u32>,
    pub(crate) max_file_size: u64,
    pub(crate) started: Instant,
    pub(crate) timeout: Duration,
    /// Bytes per second the copy may write (`None`: as fast as it can).
    pub(crate) rate: Option<u64>,
    /// Set by the actor to abandon the copy.
    pub(crate) cancel: Arc<AtomicBool>,
}

/// The outputs of a finished copy, durable and not yet listed anywhere.
#[derive(Debug)]
pub(crate) struct CompactionOutput {
    /// The output files with their lengths, in the order written.
    pub(crate) files: Vec<(Arc<DataFile>, u64)>,
    /// The index as of the beginning, every entry repointed at its copy.
    pub(crate) index: Index,
    pub(crate) records: u64,
}

impl CompactionOutput {
    /// Deletes the outputs (a rollback); failures are logged, the next
    /// open removes what is left (no manifest lists them).
    pub(crate) fn discard(self, fs: &Backend, dir: &std::path::Path) {
        let ids: Vec<u32> = self.files.iter().map(|(f, _)| f.id).collect();
        drop(self);
        remove_outputs(fs, dir, &ids);
    }
}

/// One output file being filled.
struct Output {
    file: Arc<DataFile>,
    len: u64,
    hint: HintWriter,
    /// Encoded records not yet written, starting at `len - buf.len()`.
    buf: Vec<u8>,
}

impl Output {
    /// Writes the buffered records; returns how many bytes that was.
    fn flush(&mut self) -> Result<u64> {
        if self.buf.is_empty() {
            return Ok(0);
        }
        let at = self.len - self.buf.len() as u64;
        self.file
            .handle
            .write_all_at(&self.buf, at)
            .map_err(|e| Error::io("write", &self.file.path, e))?;
        let n = self.buf.len() as u64;
        self.buf.clear();
        Ok(n)
    }
}

/// The copy in progress: the outputs so far and the repointed index.
struct Copy<'j> {
    job: &'j CompactionJob,
    next_id: u32,
    current: Option<Output>,
    done: Vec<Output>,
    /// Every output created, for the rollback.
    created: Vec<u32>,
    index: Index,
    records: u64,
    written: u64,
}

impl CompactionJob {
    /// Runs the copy. On error the outputs are gone already.
    pub(crate) fn run(self) -> Result<CompactionOutput> {
        let span = tracing::info_span!("compaction", partition = %self.name, inputs = self.inputs.len());
        let _entered = span.enter();
        let mut copy = Copy {
            job: &self,
            next_id: self.output_ids.start,
            current: None,
            done: Vec::new(),
            created: Vec::new(),
            index: self.index.clone(),
            records: 0,
            written: 0,
        };
        match copy.all() {
            Ok(()) => copy.finish(),
            Err(e) => {
                let created = std::mem::take(&mut copy.created);
                drop(copy);
                remove_outputs(&self.fs, &self.dir, &created);
                Err(e)
            }
        }
    }

    /// Fails if the copy must stop: cancelled, or past its timeout.
    fn check(&self) -> Result<()> {
        if self.cancel.load(Ordering::Acquire) {
            return Err(Error::CompactionCancelled {
                partition: self.name.clone(),
            });
        }
        if self.started.elapsed() > self.timeout {
            return Err(Error::CompactionTimedOut {
                partition: self.name.clone(),
                timeout: self.timeout,
            });
        }
        Ok(())
    }
}

impl Copy<'_> {
    /// Copies the live records of every input.
    fn all(&mut self) -> Result<()> {
        let job = self.job;
        for (file, len) in &job.inputs {
            job.check()?;
            let mut failed: Option<Error> = None;
            let mut seen = 0u64;
            scan(file, *len, ScanMode::Sealed, |r| {
                if failed.is_some() {
                    return;
                }
                seen += 1;
                let live = !is_tombstone(r.flags) && job.index.get(r.key) == Some(&r.location);
                let step = if seen.is_multiple_of(4096) {
                    job.check()
                } else {
                    Ok(())
                };
                if let Err(e) = step.and_then(|()| {
                    if live {
                        self.push(r.key, r.value, r.seq)
                    } else {
                        Ok(())
                    }
                }) {
                    failed = Some(e);
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
        job.check()?;
        if self.records != job.index.len() as u64 {
            // Every index entry points into an input: each must have been found.
            return Err(Error::corrupt(
                &job.dir,
                0,
                format!(
                    "compaction found {} of {} live records in its inputs",
                    self.records,
                    job.index.len()
                ),
            ));
        }
        Ok(())
    }

    /// Appends one live record to the current output.
    fn push(&mut self, key: &[u8], value: &[u8], seq: u64) -> Result<()> {
        let full = self
            .current
            .as_ref()
            .is_some_and(|o| o.len >= self.job.max_file_size);
        if full || self.current.is_none() {
            self.roll()?;
        }
        let out = self.current.as_mut().expect("an output after roll");
        let start = out.buf.len();
        record::encode(&mut out.buf, out.file.salt, seq, 0, key, value);
        let rec_len = (out.buf.len() - start) as u64;
        let location = Location {
            file_id: out.file.id,
            // A record is bounded by MAX_BATCH_BYTES, far below u32::MAX.
            len: rec_len as u32,
            offset: out.len,
        };
        out.hint.push(&HintEntry {
            seq,
            flags: 0,
            offset: location.offset,
            record_len: location.len,
            key,
        });
        out.len += rec_len;
        self.index.insert(Key::new(key), location);
        self.records += 1;
        if out.buf.len() >= FLUSH_AT {
            let n = out.flush()?;
            self.flushed(n)?;
        }
        Ok(())
    }

    /// Counts `n` bytes written and sleeps as needed to keep the copy under
    /// its rate limit — in slices, so a cancellation (a close, a drop) or
    /// the timeout is noticed within 50 ms.
    fn flushed(&mut self, n: u64) -> Result<()> {
        self.written += n;
        self.job.check()?;
        let Some(rate) = self.job.rate.filter(|&r| r > 0) else {
            return Ok(());
        };
        let due = Duration::from_secs_f64(self.written as f64 / rate as f64);
        loop {
            let elapsed = self.job.started.elapsed();
            if due <= elapsed {
                return Ok(());
            }
            self.job.check()?;
            std::thread::sleep((due - elapsed).min(Duration::from_millis(50)));
        }
    }

    /// Finishes the current output (if any) and starts the next one.
    fn roll(&mut self) -> Result<()> {
        if let Some(mut out) = self.current.take() {
            let n = out.flush()?;
            self.flushed(n)?;
            self.done.push(out);
        }
        let id = self.next_id;
        if !self.job.output_ids.contains(&id) {
            return Err(Error::corrupt(
                &self.job.dir,
                0,
                "compaction ran out of reserved file ids",
            ));
        }
        self.next_id += 1;
        self.created.push(id);
        let file = create_data_file(&*self.job.fs, &self.job.dir, id)?;
        let hint = HintWriter::new(id, 0, file.salt);
        self.current = Some(Output {
            file: Arc::new(file),
            len: data_file::HEADER_LEN as u64,
            hint,
            buf: Vec::with_capacity(FLUSH_AT + 64 * 1024),
        });
        Ok(())
    }

    /// Makes every output durable: data (`sync_all`: its length too), hint,
    /// then the directory's entries.
    fn finish(mut self) -> Result<CompactionOutput> {
        let job = self.job;
        let result = (|| {
            if let Some(out) = self.current.take() {
                self.done.push(out);
            }
            let mut files = Vec::with_capacity(self.done.len());
            let done = std::mem::take(&mut self.done);
            for mut out in done {
                let n = out.flush()?;
                self.flushed(n)?;
                let path = &out.file.path;
                out.file
                    .handle
                    .sync_all()
                    .map_err(|e| Error::io("sync_all", path, e))?;
                let hint = out.hint.with_data_len(out.len);
                store_hint(&*job.fs, &job.dir, out.file.id, hint)?;
                files.push((out.file, out.len));
            }
            job.fs
                .sync_dir(&job.dir)
                .map_err(|e| Error::io("sync_dir", &job.dir, e))?;
            job.check()?;
            Ok(files)
        })();
        match result {
            Ok(files) => Ok(CompactionOutput {
                files,
                index: std::mem::take(&mut self.index),
                records: self.records,
            }),
            Err(e) => {
                let created = std::mem::take(&mut self.created);
                drop(self);
                remove_outputs(&job.fs, &job.dir, &created);
                Err(e)
            }
        }
    }
}

/// Deletes output files (data, hint, hint temporary) of an abandoned
/// compaction. Best effort: what is left is unlisted, and the next open
/// removes it.
pub(crate) fn remove_outputs(fs: &Backend, dir: &std::path::Path, ids: &[u32]) {
    for &id in ids {
        let hint = data_file::hint_name(id);
        for name in [data_file::data_name(id), format!("{hint}.tmp"), hint] {
            let path = dir.join(name);
            match fs.remove(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "could not delete a compaction output; the next open does")
                }
            }
        }
    }
}
