//! The writer's half of hot-swap compaction: beginning one (seal the active
//! file, snapshot the index, start tracking writes) and installing its
//! result (switch the manifest, repoint the index, publish, retire the
//! inputs).
//!
//! Installation is a compare-and-swap on each key's location, done in bulk:
//! the copy repointed every entry of the index *as it was when the
//! compaction began*; every key written since goes into the touched log
//! (after the version holding the write is published), and for those keys
//! a newer entry (or its absence) replaces the copy's. A key not written
//! since still points where it pointed at the beginning, so the swap
//! succeeds exactly for the keys whose record was copied and not
//! superseded: writes made during a compaction always win.
//!
//! Most of that replay happens on the copy thread: it drains the log while
//! it copies and, once done, takes each drained key's entry from the
//! current published version (which holds every write already in the log).
//! The actor replays only what is left in the log at the install — the
//! writes of the last moments — so its pause does not grow with the length
//! of the compaction.

use std::sync::Arc as StdArc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::compaction::{CompactionReport, SkipReason};
use crate::error::{Error, Result};
use crate::format::data_file;
use crate::format::manifest::{MANIFEST_NAME, MANIFEST_TMP};
use crate::index::Key;
use crate::partition::compaction::{CompactionJob, CompactionOutput};
use crate::partition::files::replace_staged;
use crate::partition::reaper::Obsolete;
use crate::sync::{Arc, Mutex};

use super::{Op, Writer};

/// Free space a compaction keeps beyond its outputs' size.
const SPACE_MARGIN: u64 = 8 << 20;

/// What [`Writer::begin_compaction`] decided.
#[derive(Debug)]
pub(crate) enum Begin {
    /// Nothing worth doing (or no room to do it).
    Skipped(CompactionReport),
    /// The copy to run in the background.
    Started(CompactionJob),
}

/// A running compaction, as the writer tracks it.
#[derive(Debug)]
pub(crate) struct Tracking {
    /// The files being replaced: a prefix of the manifest's list.
    inputs: Vec<u32>,
    input_bytes: u64,
    /// Keys of the group being committed, not yet published.
    pending: Vec<Key>,
    /// Every key written since the compaction began and published, not yet
    /// drained by the copy.
    touched: TouchedLog,
    started: Instant,
}

/// The keys written during a compaction, shared by the writer (which
/// appends after publishing) and the copy (which drains it).
pub(crate) type TouchedLog = Arc<Mutex<Vec<Key>>>;

impl Tracking {
    /// Records that `op`'s key is being written.
    pub(super) fn touch(&mut self, op: &Op) {
        let key = match op {
            Op::Put { key, .. } | Op::Delete { key } => &key[..],
        };
        self.pending.push(Key::new(key));
    }

    /// Moves the keys of a group just published into the touched log. Only
    /// after the publication: the copy reads a drained key's entry from the
    /// current version, which must already hold the write.
    pub(super) fn published(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut log = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        log.append(&mut self.pending);
    }
}

impl Writer {
    /// Begins a compaction of every sealed file: decides whether it is worth
    /// doing, seals the active file (so every input is immutable and every
    /// live record is in an input), reserves the outputs' file ids and
    /// starts tracking writes. `cancel` is the flag the actor sets to
    /// abandon the copy.
    ///
    /// # Errors
    /// [`Error::Poisoned`]; the sealing rotation failed (the writer is then
    /// poisoned, as for any rotation).
    pub(crate) fn begin_compaction(&mut self, cancel: StdArc<AtomicBool>) -> Result<Begin> {
        if self.poisoned.is_some() {
            return Err(self.poisoned_error());
        }
        if self.compacting.is_some() {
            return Err(Error::InvalidConfig {
                reason: "a compaction is already running".into(),
            });
        }
        let opts = self.cfg.compaction;
        let headers = data_file::HEADER_LEN as u64 * self.files.len() as u64;
        let reclaimable = self.total_bytes.saturating_sub(self.live_bytes + headers);
        if reclaimable == 0 {
            return Ok(Begin::Skipped(CompactionReport::skipped(
                &self.name,
                SkipReason::NothingToReclaim,
            )));
        }
        if reclaimable < opts.min_space_saving {
            return Ok(Begin::Skipped(CompactionReport::skipped(
                &self.name,
                SkipReason::BelowMinSaving {
                    reclaimable,
                    min_space_saving: opts.min_space_saving,
                },
            )));
        }
        let needed = self.live_bytes + self.live_bytes / 8 + SPACE_MARGIN;
        let available = self
            .fs
            .available_space(&self.dir)
            .map_err(|e| Error::io("statvfs", &self.dir, e))?;
        if available < needed {
            return Ok(Begin::Skipped(CompactionReport::skipped(
                &self.name,
                SkipReason::LowDiskSpace { needed, available },
            )));
        }
        // Reserve the outputs' ids first, so the sealing rotation's manifest
        // already carries the bumped next id: no later incarnation hands one
        // of them out (each output but the last holds ≥ `max_file_size`).
        let per_file = self
            .cfg
            .max_file_size
            .saturating_sub(data_file::HEADER_LEN as u64)
            .max(1);
        let count = u32::try_from(self.live_bytes / per_file + 2).unwrap_or(u32::MAX);
        let first = self.manifest.next_file_id;
        let end = first.checked_add(count).ok_or_else(|| Error::InvalidConfig {
            reason: "file ids exhausted".into(),
        })?;
        self.manifest.next_file_id = end;
        if self.active_end > data_file::HEADER_LEN as u64 {
            self.rotate().map_err(|e| self.poison(e))?;
        }
        let started = Instant::now();
        let sealed = &self.manifest.files[..self.manifest.files.len() - 1];
        let mut inputs = Vec::with_capacity(sealed.len());
        let mut input_bytes = 0;
        for id in sealed {
            let file = StdArc::clone(&self.files[id]);
            let len = file.handle.len().map_err(|e| Error::io("stat", &file.path, e))?;
            input_bytes += len;
            inputs.push((file, len));
        }
        let touched = TouchedLog::default();
        self.compacting = Some(Tracking {
            inputs: sealed.to_vec(),
            input_bytes,
            pending: Vec::new(),
            touched: Arc::clone(&touched),
            started,
        });
        tracing::info!(partition = %self.name, files = inputs.len(), bytes = input_bytes, "compaction started");
        Ok(Begin::Started(CompactionJob {
            name: self.name.clone(),
            fs: StdArc::clone(&self.fs),
            dir: self.dir.clone(),
            index: self.index.clone(),
            cell: self.cell(),
            touched,
            inputs,
            output_ids: first..end,
            max_file_size: self.cfg.max_file_size,
            started,
            timeout: opts.timeout,
            rate: self.cfg.compaction_rate,
            cancel,
        }))
    }

    /// Number of files and bytes the running compaction replaces.
    pub(crate) fn compaction_inputs(&self) -> Option<(usize, u64)> {
        self.compacting.as_ref().map(|t| (t.inputs.len(), t.input_bytes))
    }

    /// Forgets the running compaction (its copy failed or was abandoned; the
    /// copy removed its outputs).
    pub(crate) fn abandon_compaction(&mut self) {
        self.compacting = None;
    }

    /// Installs a finished copy: durably switches the manifest to list the
    /// outputs instead of the inputs, repoints the index (writes made
    /// meanwhile win), publishes, and marks the inputs obsolete (each is
    /// deleted when the last version holding it is dropped).
    ///
    /// # Errors
    /// [`Error::Poisoned`] (the outputs are deleted); the manifest switch
    /// failed: before its rename the outputs are deleted and the partition
    /// goes on, unpoisoned, on its old files; after it, the writer is
    /// poisoned and every file is kept (the next open finds one manifest or
    /// the other, each complete, and removes what it does not list).
    pub(crate) fn install_compaction(&mut self, out: CompactionOutput) -> Result<CompactionReport> {
        let Some(tracking) = self.compacting.take() else {
            out.discard(&self.fs, &self.dir);
            return Err(Error::InvalidConfig {
                reason: "no compaction to install".into(),
            });
        };
        if self.poisoned.is_some() {
            out.discard(&self.fs, &self.dir);
            return Err(self.poisoned_error());
        }
        // The last input's hint may still be being written.
        self.finish_hint_job();
        let n = tracking.inputs.len();
        debug_assert_eq!(self.manifest.files[..n], tracking.inputs[..]);
        let mut manifest = self.manifest.clone();
        manifest.generation += 1;
        manifest.files = out
            .files
            .iter()
            .map(|(f, _)| f.id)
            .chain(self.manifest.files[n..].iter().copied())
            .collect();
        if let Err(failed) = replace_staged(
            &*self.fs,
            &self.dir,
            MANIFEST_NAME,
            MANIFEST_TMP,
            &manifest.encode(),
        ) {
            if failed.renamed {
                return Err(self.poison(failed.error));
            }
            out.discard(&self.fs, &self.dir);
            return Err(failed.error);
        }
        self.manifest = manifest;

        let CompactionOutput {
            files: outputs,
            mut index,
            records,
        } = out;
        let rest = std::mem::take(&mut *tracking.touched.lock().unwrap_or_else(|p| p.into_inner()));
        debug_assert!(tracking.pending.is_empty(), "every committed group was published");
        for key in rest.into_iter().chain(tracking.pending) {
            match self.index.get(key.as_bytes()) {
                Some(loc) => {
                    index.insert(key, loc);
                }
                None => {
                    index.remove(key.as_bytes());
                }
            }
        }
        self.index = index;
        let mut files = (*self.files).clone();
        for id in &tracking.inputs {
            if let Some(file) = files.remove(id) {
                file.make_obsolete(Obsolete {
                    fs: StdArc::clone(&self.fs),
                    dir: self.dir.clone(),
                    reaper: crate::sync::Arc::clone(&self.reaper),
                    background: self.cfg.background_hints,
                });
            }
        }
        let output_bytes: u64 = outputs.iter().map(|(_, len)| len).sum();
        for (file, _) in &outputs {
            files.insert(file.id, StdArc::clone(file));
        }
        self.files = StdArc::new(files);
        self.total_bytes = self.total_bytes.saturating_sub(tracking.input_bytes) + output_bytes;
        self.publish();
        let report = CompactionReport {
            partition: self.name.clone(),
            skipped: None,
            bytes_before: tracking.input_bytes,
            bytes_after: output_bytes,
            space_saved: tracking.input_bytes.saturating_sub(output_bytes),
            records_copied: records,
            files_compacted: n,
            files_written: outputs.len(),
            duration: tracking.started.elapsed(),
        };
        tracing::info!(
            partition = %self.name,
            files = n,
            written = report.files_written,
            saved = report.space_saved,
            took_ms = report.duration.as_millis() as u64,
            "compaction installed"
        );
        Ok(report)
    }
}
