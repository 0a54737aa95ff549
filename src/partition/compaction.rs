//! The background half of hot-swap compaction: copying the live records of
//! the sealed data files into new files.
//!
//! The writer begins a compaction (`writer::compact`): it seals the active
//! file, so the inputs are immutable, and hands this job a snapshot of the
//! index (an O(1) clone). The job runs on its own
//! thread — never on the actor, never on a tokio worker — and:
//!
//! 1. walks the snapshot's entries — exactly the live records — sorted by
//!    input and offset, reading each record once through a forward window
//!    and verifying its CRCs and key (tombstones and overwritten values are
//!    never read: every older file is an input, so no older record can come
//!    back);
//! 2. re-encodes each kept record (same key, value and sequence number, the
//!    output file's salt, no batch flag: a sealed batch is complete) into
//!    output files, rolling over at `max_file_size`, and builds their hints
//!    and the index repointed at them;
//! 3. `sync_all`s every output, stores its hint (atomic replace) and syncs
//!    the directory — only then can a manifest list them.
//! 4. catches up: the keys the writer logged meanwhile (drained from the
//!    touched log as the copy goes) take their entry from the current
//!    published version, so the actor's install replays only the last few.
//!
//! On any failure, cancellation or timeout the job deletes its outputs
//! before returning the error (and a crash leaves them unlisted: the next
//! open deletes them). Installing the result is the writer's job.

use std::collections::HashSet;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::{MAX_KEY_LEN, MAX_VALUE_CEILING};
use crate::error::{Error, Result};
use crate::format::data_file;
use crate::format::hint::{HintEntry, HintWriter};
use crate::format::record;
use crate::index::{Index, Key, Location};
use crate::snapshot::{DataFile, SnapshotCell, Version};
use crate::storage::Backend;

use super::files::{create_data_file, store_hint};
use super::scan::Window;
use super::writer::TouchedLog;

/// Output bytes buffered before one positional write.
const FLUSH_AT: usize = 1 << 20;

/// At most this many catch-up rounds after the copy...
const CATCH_UP_ROUNDS: usize = 4;
/// ...stopping once a round replayed fewer keys than this.
const CATCH_UP_DONE: usize = 1024;

/// Everything the copy needs, handed over by the writer.
#[derive(Debug)]
pub(crate) struct CompactionJob {
    pub(crate) name: String,
    pub(crate) fs: Backend,
    pub(crate) dir: PathBuf,
    /// The index when the compaction began: a record is live iff it points at it.
    pub(crate) index: Index,
    /// The partition's published versions, for the catch-up.
    pub(crate) cell: crate::sync::Arc<SnapshotCell<Version>>,
    /// Keys the writer wrote (and published) since the beginning.
    pub(crate) touched: TouchedLog,
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
    /// Keys drained from the touched log, to take from a newer version.
    touched: HashSet<Key, foldhash::fast::RandomState>,
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
            index: Index::default(),
            records: 0,
            written: 0,
            touched: HashSet::default(),
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

/// One live record to copy: where it is in the inputs, and which entry of
/// the copy's list it belongs to.
#[derive(Clone, Copy)]
struct Pick {
    input: u32,
    entry: u32,
    offset: u64,
}

impl Copy<'_> {
    /// Copies the live records of every input.
    ///
    /// The live records are exactly the snapshot's entries, so the copy
    /// walks the snapshot once (in its own order, no lookups), sorts the
    /// entries by input and offset, reads each record once through a
    /// forward window (verifying its checksums and key), and writes the new
    /// location into the entry list; the repointed index is then built
    /// from that list in one pass, as a fresh base
    /// (`Index::from_entries`). Dead records (overwritten values,
    /// tombstones) are never decoded.
    fn all(&mut self) -> Result<()> {
        let job = self.job;
        let corrupt = |what: String| Error::corrupt(&job.dir, 0, what);
        let mut position = std::collections::HashMap::with_capacity(job.inputs.len());
        for (i, (file, _)) in job.inputs.iter().enumerate() {
            position.insert(file.id, i as u32);
        }
        let mut entries: Vec<(&[u8], Location)> = Vec::with_capacity(job.index.len());
        let mut picks: Vec<Pick> = Vec::with_capacity(job.index.len());
        for (key, loc) in job.index.iter() {
            let Some(&input) = position.get(&loc.file_id) else {
                return Err(corrupt(format!(
                    "index entry points into file {}, not a compaction input",
                    loc.file_id
                )));
            };
            let entry = u32::try_from(entries.len())
                .map_err(|_| corrupt("too many keys in one partition to compact".into()))?;
            picks.push(Pick {
                input,
                entry,
                offset: loc.offset,
            });
            entries.push((key, loc));
        }
        job.check()?;
        picks.sort_unstable_by_key(|p| (p.input, p.offset));
        for run in picks.chunk_by(|a, b| a.input == b.input) {
            let (file, len) = &job.inputs[run[0].input as usize];
            let mut window = Window::new(file, *len);
            for (n, pick) in run.iter().enumerate() {
                if n % 4096 == 4095 {
                    job.check()?;
                    self.drain_touched();
                }
                let (key, loc) = &mut entries[pick.entry as usize];
                let end = loc.offset.checked_add(u64::from(loc.len));
                if end.is_none_or(|end| end > *len) {
                    return Err(Error::corrupt(
                        &file.path,
                        loc.offset,
                        "index entry points past the end of its file",
                    ));
                }
                let bytes = window.get(loc.offset, loc.len as usize)?;
                let rec = record::decode(bytes, file.salt, MAX_KEY_LEN, MAX_VALUE_CEILING)
                    .map_err(|e| Error::corrupt(&file.path, loc.offset, e.0))?;
                if rec.header.record_len() != u64::from(loc.len)
                    || rec.header.is_tombstone()
                    || rec.key != *key
                {
                    return Err(Error::corrupt(
                        &file.path,
                        loc.offset,
                        "record does not match its index entry",
                    ));
                }
                let seq = rec.header.seq;
                let (key_bytes, value) = (rec.key, rec.value);
                *loc = self.push(key_bytes, value, seq)?;
            }
        }
        job.check()?;
        let key_bytes = entries.iter().map(|(k, _)| k.len()).sum();
        self.index = Index::from_entries(job.index.hasher().clone(), entries.into_iter(), key_bytes);
        Ok(())
    }

    /// Appends one live record to the current output.
    fn push(&mut self, key: &[u8], value: &[u8], seq: u64) -> Result<Location> {
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
        self.records += 1;
        if out.buf.len() >= FLUSH_AT {
            let n = out.flush()?;
            self.flushed(n)?;
        }
        Ok(location)
    }

    /// Counts `n` bytes written and sleeps as needed to keep the copy under
    /// its rate limit — in slices, so a cancellation (a close, a drop) or
    /// the timeout is noticed within 50 ms.
    fn flushed(&mut self, n: u64) -> Result<()> {
        self.written += n;
        self.job.check()?;
        self.drain_touched();
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
            self.drain_touched();
            std::thread::sleep((due - elapsed).min(Duration::from_millis(50)));
        }
    }

    /// Moves the keys the writer logged into this copy's own set (so the
    /// log stays short and a key written many times is replayed once).
    fn drain_touched(&mut self) {
        let drained = std::mem::take(&mut *self.job.touched.lock().unwrap_or_else(|p| p.into_inner()));
        self.touched.extend(drained);
    }

    /// Replays onto the repointed index the writes made during the copy:
    /// each drained key takes its entry (or its absence) from the current
    /// published version, which holds every write already logged (the
    /// writer logs a key after publishing it). A few rounds chase the
    /// writes made meanwhile; the install replays what is still logged.
    fn catch_up(&mut self) -> Result<()> {
        for _ in 0..CATCH_UP_ROUNDS {
            self.drain_touched();
            let drained = self.touched.len();
            if drained == 0 {
                break;
            }
            let version = self.job.cell.load();
            if version.retired {
                // The partition closed: this copy will never be installed.
                return Err(Error::CompactionCancelled {
                    partition: self.job.name.clone(),
                });
            }
            for key in self.touched.drain() {
                match version.index.get(key.as_bytes()) {
                    Some(loc) => {
                        self.index.insert(key, loc);
                    }
                    None => {
                        self.index.remove(key.as_bytes());
                    }
                }
            }
            if drained < CATCH_UP_DONE {
                break;
            }
        }
        Ok(())
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
            self.catch_up()?;
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
