//! The writer: the synchronous core of a partition's actor.
//!
//! It owns the partition's files and its private copy of the index. A group
//! commit ([`Writer::commit`]) encodes every record of the group into one
//! buffer, writes it with one positional write, applies the durability policy
//! once, and publishes a new [`Version`] — all before the caller replies. No
//! runtime is involved, so tests and loom models drive it directly.
//!
//! Invariants:
//! - a version is published only after its records are written (and, under
//!   [`Durability::Always`], synced);
//! - after any failed write or sync the writer is poisoned for good: nothing
//!   more is written or published, no sync is retried;
//! - an atomic batch never spans two files and its records are contiguous.

use std::path::PathBuf;
use std::sync::Arc as StdArc;
use std::time::Instant;

use bytes::Bytes;

use crate::config::{Config, Durability};
use crate::error::{Error, Result};
use crate::format::data_file;
use crate::format::manifest::Manifest;
use crate::format::record::{self, FLAG_BATCH_CONT, FLAG_TOMBSTONE};
use crate::index::{Index, Key, Location};
use crate::snapshot::{DataFile, FileSet, SnapshotCell, Version};
use crate::stats::Counters;
use crate::storage::Backend;
use crate::sync::Arc;

use super::files::{create_data_file, write_hint, write_manifest};
use super::reaper::Reaper;
use super::recovery::{Recovered, recover};

mod compact;

pub(crate) use compact::{Begin, TouchedLog};

/// How often an idle actor checks whether an index fold finished.
const FOLD_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Active files at least this large get a hint when the writer closes
/// cleanly: scanning them at the next open would cost more than the hint.
pub(crate) const ACTIVE_HINT_MIN: u64 = 1 << 20;

/// One mutation.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Set `key` to `value` (an empty value is a value, not a delete).
    Put { key: Bytes, value: Bytes },
    /// Remove `key`.
    Delete { key: Bytes },
}

impl Op {
    /// Encoded size of the op's record.
    pub(crate) fn encoded_len(&self) -> usize {
        record::HEADER_LEN
            + match self {
                Op::Put { key, value } => key.len() + value.len(),
                Op::Delete { key } => key.len(),
            }
    }
}

/// The ops of one request: one op, or an atomic batch.
#[derive(Debug, Clone)]
pub(crate) struct WriteSet {
    pub(crate) ops: Vec<Op>,
}

impl WriteSet {
    /// Encoded size of all its records.
    pub(crate) fn encoded_len(&self) -> usize {
        self.ops.iter().map(Op::encoded_len).sum()
    }
}

/// The single writer of one partition.
#[derive(Debug)]
pub(crate) struct Writer {
    name: String,
    fs: Backend,
    dir: PathBuf,
    cfg: StdArc<Config>,
    manifest: Manifest,
    active: StdArc<DataFile>,
    active_end: u64,
    /// When the oldest write not yet covered by a sync was made.
    unsynced_since: Option<Instant>,
    next_seq: u64,
    index: Index,
    files: StdArc<FileSet>,
    generation: u64,
    cell: Arc<SnapshotCell<Version>>,
    stats: StdArc<Counters>,
    /// Bytes of the records the index points at.
    live_bytes: u64,
    /// Bytes of every data file (header included).
    total_bytes: u64,
    /// The length of the active file its hint describes, if it has one.
    active_hint_len: Option<u64>,
    /// The failure that poisoned the writer, if any (sticky), and whether
    /// acknowledged writes were unsynced when it struck (so may be lost).
    poisoned: Option<(Error, bool)>,
    /// Whether writes were acknowledged without a sync covering them yet
    /// (only under `Interval` and `OsBuffered`).
    acked_unsynced: bool,
    /// The background thread writing the last sealed file's hint.
    hint_job: Option<std::thread::JoinHandle<()>>,
    buf: Vec<u8>,
    /// Deletes the files compactions replaced, once no version reads them.
    reaper: Arc<Reaper>,
    /// The compaction running in the background, if any: what it replaces
    /// and which keys were written since it began.
    compacting: Option<compact::Tracking>,
}

impl Writer {
    /// Recovers the partition in `dir` (which exists) and publishes its
    /// first version into `cell`. `clean`: see [`recover`].
    #[expect(
        clippy::too_many_arguments,
        reason = "each is one of the partition's parts, handed over once by the actor"
    )]
    pub(crate) fn open(
        name: &str,
        fs: Backend,
        dir: PathBuf,
        cfg: StdArc<Config>,
        cell: Arc<SnapshotCell<Version>>,
        stats: StdArc<Counters>,
        clean: bool,
        reaper: Arc<Reaper>,
    ) -> Result<Self> {
        let Recovered {
            manifest,
            files,
            index,
            active_end,
            next_seq,
            dropped_tail,
            scanned_sealed,
            live_bytes,
            active_hinted,
        } = recover(&*fs, &dir, clean, &reaper)?;
        tracing::info!(
            keys = index.len(),
            files = files.len(),
            dropped_tail,
            scanned_sealed,
            "partition recovered"
        );
        let active = StdArc::clone(&files[&manifest.active()]);
        let mut total_bytes = active_end;
        for f in files.values().filter(|f| f.id != active.id) {
            total_bytes += f.handle.len().map_err(|e| Error::io("stat", &f.path, e))?;
        }
        let files = StdArc::new(files);
        let mut writer = Writer {
            name: name.to_owned(),
            fs,
            dir,
            cfg,
            manifest,
            active,
            active_end,
            unsynced_since: None,
            next_seq,
            index,
            files,
            generation: 0,
            cell,
            stats,
            live_bytes,
            total_bytes,
            active_hint_len: active_hinted.then_some(active_end),
            poisoned: None,
            acked_unsynced: false,
            hint_job: None,
            buf: Vec::new(),
            reaper,
            compacting: None,
        };
        writer.publish();
        Ok(writer)
    }

    /// The cell readers load published versions from.
    pub(crate) fn cell(&self) -> Arc<SnapshotCell<Version>> {
        Arc::clone(&self.cell)
    }

    /// The current value of `key`, as the last published version has it.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let version = self.cell.load();
        match version.index.get(key) {
            None => Ok(None),
            Some(loc) => super::read::read_record(&version, loc, Some(key)).map(|(_, v)| Some(v)),
        }
    }

    fn poisoned_error(&self) -> Error {
        Error::Poisoned {
            partition: self.name.clone(),
        }
    }

    /// Marks the writer poisoned and passes the error through.
    fn poison(&mut self, e: Error) -> Error {
        tracing::error!(partition = %self.name, error = %e, "write path failed; partition poisoned");
        let at_risk = self.acked_unsynced;
        self.poisoned.get_or_insert_with(|| (e.clone(), at_risk));
        e
    }

    /// Commits a group of write sets: one write, one sync (per policy), one
    /// publication. Returns, per set, how many of its deletes removed an
    /// existing key. On error nothing of the group is published and the
    /// writer is poisoned (unless it was already, which is reported as such).
    pub(crate) fn commit(&mut self, sets: &[WriteSet]) -> Result<Vec<usize>> {
        if self.poisoned.is_some() {
            return Err(self.poisoned_error());
        }
        if self.active_end >= self.cfg.max_file_size {
            self.rotate().map_err(|e| self.poison(e))?;
        }
        let mut removed = Vec::with_capacity(sets.len());
        let base = self.active_end;
        let salt = self.active.salt;
        let file_id = self.active.id;
        self.buf.clear();
        for set in sets {
            let atomic = set.ops.len() > 1;
            let mut count = 0;
            for (i, op) in set.ops.iter().enumerate() {
                let cont = if atomic && i + 1 < set.ops.len() {
                    FLAG_BATCH_CONT
                } else {
                    0
                };
                let start = self.buf.len();
                match op {
                    Op::Put { key, value } => {
                        record::encode(&mut self.buf, salt, self.next_seq, cont, key, value);
                        let location = Location {
                            file_id,
                            // Bounded by MAX_BATCH_BYTES, far below u32::MAX.
                            len: (self.buf.len() - start) as u32,
                            offset: base + start as u64,
                        };
                        if let Some(old) = self.index.insert(Key::new(key), location) {
                            self.live_bytes -= u64::from(old.len);
                        }
                        self.live_bytes += u64::from(location.len);
                    }
                    Op::Delete { key } => {
                        let old = self.index.remove(&key[..]);
                        if let Some(old) = old {
                            self.live_bytes -= u64::from(old.len);
                        }
                        let existed = old.is_some();
                        // A lone delete of an absent key writes nothing; inside a
                        // batch the tombstone is written anyway, so the batch's
                        // last record (which commits it) always exists.
                        if !existed && !atomic {
                            continue;
                        }
                        count += usize::from(existed);
                        record::encode(
                            &mut self.buf,
                            salt,
                            self.next_seq,
                            cont | FLAG_TOMBSTONE,
                            key,
                            &[],
                        );
                    }
                }
                // Only ops that wrote a record: a group of lone deletes of
                // absent keys writes nothing and is not published, so its
                // keys would never leave the tracking's pending list.
                if let Some(tracking) = &mut self.compacting {
                    tracking.touch(op);
                }
                self.next_seq += 1;
            }
            removed.push(count);
        }
        if self.buf.is_empty() {
            return Ok(removed);
        }
        let path = &self.active.path;
        if let Err(e) = self.active.handle.write_all_at(&self.buf, base) {
            let e = Error::io("write", path, e);
            return Err(self.poison(e));
        }
        self.active_end += self.buf.len() as u64;
        self.total_bytes += self.buf.len() as u64;
        self.unsynced_since.get_or_insert_with(Instant::now);
        if self.cfg.durability == Durability::Always {
            self.sync()?;
        }
        self.publish();
        if let Some(tracking) = &mut self.compacting {
            tracking.published();
        }
        // The caller replies right after this: under `Always` the group is
        // synced already; otherwise it is acknowledged but not yet durable.
        self.acked_unsynced |= self.cfg.durability != Durability::Always;
        if self.buf.capacity() > self.cfg.max_group_bytes * 2 {
            self.buf = Vec::new();
        }
        Ok(removed)
    }

    fn publish(&mut self) {
        self.generation += 1;
        self.cell.publish(Arc::new(Version {
            generation: self.generation,
            index: self.index.clone(),
            files: StdArc::clone(&self.files),
            retired: false,
        }));
        let stats = &self.stats;
        stats.snapshots.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        stats.shape(
            self.index.len(),
            self.live_bytes,
            self.total_bytes,
            self.files.len(),
        );
    }

    /// Makes every written record durable (`fdatasync` of the active file;
    /// sealed files were synced when sealed).
    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.poisoned.is_some() {
            return Err(self.poisoned_error());
        }
        if self.unsynced_since.is_some() {
            let started = Instant::now();
            let synced = self.active.handle.sync_data();
            self.stats.fsync(started.elapsed());
            if let Err(e) = synced {
                let e = Error::io("sync_data", &self.active.path, e);
                return Err(self.poison(e));
            }
            self.unsynced_since = None;
            self.acked_unsynced = false;
        }
        Ok(())
    }

    /// Under [`Durability::Interval`], when the next sync is due.
    pub(crate) fn sync_deadline(&self) -> Option<Instant> {
        match self.cfg.durability {
            Durability::Interval(every) if self.poisoned.is_none() => self.unsynced_since.map(|t| t + every),
            _ => None,
        }
    }

    /// When the actor should wake without a request: the interval-sync
    /// deadline, or soon while an index fold runs (so that an idle
    /// partition installs the merged base, see [`Writer::settle_index`]).
    pub(crate) fn wake_deadline(&self) -> Option<Instant> {
        let fold = self.index.folding().then(|| Instant::now() + FOLD_POLL);
        match (self.sync_deadline(), fold) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Installs a finished index fold and publishes it, if nothing else
    /// did: a partition that stopped writing would otherwise keep the old
    /// base, the frozen delta and the merged base until its next write.
    /// Not when poisoned (the private index may then hold writes that were
    /// never acknowledged).
    pub(crate) fn settle_index(&mut self) {
        if self.poisoned.is_none() && self.index.settle() {
            self.publish();
        }
    }

    /// Syncs if the interval deadline has passed.
    pub(crate) fn sync_if_due(&mut self, now: Instant) -> Result<()> {
        match self.sync_deadline() {
            Some(due) if due <= now => self.sync(),
            _ => Ok(()),
        }
    }

    /// Seals the active file and starts a new one: sync the old file, create
    /// and sync the new file, durably replace the manifest (whose directory
    /// sync also makes the new file's entry durable), then start the job that
    /// writes the sealed file's hint.
    fn rotate(&mut self) -> Result<()> {
        let _span = tracing::debug_span!("rotate", partition = %self.name, file = self.active.id).entered();
        self.sync()?;
        let id = self.manifest.next_file_id;
        let next_id = id.checked_add(1).ok_or_else(|| Error::InvalidConfig {
            reason: "file ids exhausted".into(),
        })?;
        let file = create_data_file(&*self.fs, &self.dir, id)?;
        let mut manifest = self.manifest.clone();
        manifest.generation += 1;
        manifest.next_file_id = next_id;
        manifest.files.push(id);
        write_manifest(&*self.fs, &self.dir, &manifest)?;
        self.start_hint_job();
        self.manifest = manifest;
        let file = StdArc::new(file);
        let mut files = (*self.files).clone();
        files.insert(id, StdArc::clone(&file));
        self.files = StdArc::new(files);
        self.active = file;
        self.active_hint_len = None;
        self.active_end = data_file::HEADER_LEN as u64;
        self.total_bytes += data_file::HEADER_LEN as u64;
        Ok(())
    }

    /// Final sync before the actor exits (files close when the writer drops).
    /// A writer poisoned while acknowledged writes were not yet synced (a
    /// failed background sync under `Interval`, say) reports the failure that
    /// poisoned it: those writes may not be durable, and nobody was told yet.
    /// A failure that hit only unacknowledged writes was reported to their
    /// requesters already.
    ///
    /// After a clean sync, an active file larger than [`ACTIVE_HINT_MIN`]
    /// gets a hint for its current length, so the next open (after an
    /// eviction, say) loads the hint instead of scanning; any later append
    /// makes the hint's length stale, and recovery ignores it.
    pub(crate) fn close(mut self) -> Result<()> {
        self.finish_hint_job();
        match self.poisoned.take() {
            Some((cause, true)) => Err(cause),
            Some((_, false)) => Ok(()),
            None => {
                self.sync()?;
                let hinted = self.active_hint_len == Some(self.active_end);
                if self.active_end >= ACTIVE_HINT_MIN
                    && !hinted
                    && let Err(e) = write_hint(&*self.fs, &self.dir, &self.active, self.active_end)
                {
                    tracing::warn!(partition = %self.name, error = %e, "no hint for the active file; the next open scans it");
                }
                Ok(())
            }
        }
    }

    /// Writes the hint of the file being sealed (`self.active`, complete and
    /// synced) off the write path: the sealed file is immutable, and a hint is
    /// only a cache, so a failure is logged, not fatal. At most one job runs;
    /// the next rotation, `close` and `Drop` wait for it, so no job outlives
    /// the writer, which drops before the directory's ownership. Under loom
    /// and on the simulated disk the job runs inline (deterministic order of
    /// operations for model checking and fault injection).
    fn start_hint_job(&mut self) {
        self.finish_hint_job();
        let (fs, dir, file, len) = (
            StdArc::clone(&self.fs),
            self.dir.clone(),
            StdArc::clone(&self.active),
            self.active_end,
        );
        let name = self.name.clone();
        let job = move || {
            if let Err(e) = write_hint(&*fs, &dir, &file, len) {
                tracing::warn!(partition = %name, error = %e, "could not write hint of sealed file");
            }
        };
        if cfg!(caskade_loom) || !self.cfg.background_hints {
            job();
            return;
        }
        match std::thread::Builder::new().name("caskade:hint".into()).spawn(job) {
            Ok(handle) => self.hint_job = Some(handle),
            Err(e) => {
                tracing::warn!(partition = %self.name, error = %e, "no thread for the hint; the next open scans")
            }
        }
    }

    /// Waits for the running hint job, if any.
    fn finish_hint_job(&mut self) {
        if let Some(job) = self.hint_job.take()
            && job.join().is_err()
        {
            tracing::error!(partition = %self.name, "hint job panicked; the next open scans the file");
        }
    }

    /// Whether a failure poisoned the writer.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Live keys in the writer's index.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // No hint job outlives the writer, which owns the directory.
        self.finish_hint_job();
    }
}
