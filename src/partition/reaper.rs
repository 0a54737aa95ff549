//! Deleting the data files a compaction replaced, once nothing can read them.
//!
//! A compaction's inputs stay readable after the manifest stops listing
//! them: published versions (and user snapshots) still hold their open
//! handles and may read from them. So the writer does not unlink them; it
//! marks each one obsolete, and the file is deleted when the last
//! [`DataFile`](crate::snapshot::DataFile) handle to it drops — after the last
//! read that could touch it.
//!
//! The [`Reaper`] is the partition's (it outlives each incarnation of the
//! actor): it remembers which obsolete files are still held, so that a
//! recovery running meanwhile (the partition was evicted and reopened while
//! a user kept an old snapshot) leaves those to the reaper instead of
//! removing them itself — every obsolete file is deleted exactly once.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::format::data_file;
use crate::storage::Backend;
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering};

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Reaper {
    /// Obsolete files still held open by some version: their deletion is
    /// owed by this reaper, and recovery must leave them alone.
    pending: Mutex<BTreeSet<u32>>,
    /// Obsolete files deleted so far.
    deleted: AtomicUsize,
}

impl Reaper {
    /// Records that file `id` is obsolete and will be deleted by its handle's drop.
    pub(crate) fn owe(&self, id: u32) {
        self.lock().insert(id);
    }

    /// Whether the reaper owes the deletion of file `id` (recovery skips it).
    pub(crate) fn owes(&self, id: u32) -> bool {
        self.lock().contains(&id)
    }

    /// Obsolete files deleted so far.
    pub(crate) fn deleted(&self) -> usize {
        self.deleted.load(Ordering::Acquire)
    }

    /// Obsolete files not deleted yet (still held by some version).
    pub(crate) fn owed(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, BTreeSet<u32>> {
        // Guards only a set; no update can panic halfway.
        match self.pending.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Deletes obsolete file `id` (data and hint) and settles the debt.
    fn delete(&self, fs: &Backend, dir: &std::path::Path, id: u32) {
        for name in [data_file::data_name(id), data_file::hint_name(id)] {
            let path = dir.join(name);
            match fs.remove(&path) {
                Ok(()) => {}
                // No hint, or the directory went with a dropped partition.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // The manifest no longer lists it: the next open removes it.
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "could not delete obsolete file")
                }
            }
        }
        self.lock().remove(&id);
        self.deleted.fetch_add(1, Ordering::AcqRel);
        tracing::debug!(dir = %dir.display(), file = id, "obsolete data file deleted");
    }
}

/// What a data file's handle does when its last holder drops it, once the
/// file is obsolete.
#[derive(Debug)]
pub(crate) struct Obsolete {
    pub(crate) fs: Backend,
    pub(crate) dir: PathBuf,
    pub(crate) reaper: Arc<Reaper>,
    /// Delete in the background (tokio's blocking pool when the last holder
    /// is a runtime thread, a reader task; else a short-lived thread); off
    /// on the simulated disk and under loom, where the deletion happens
    /// inline, in a deterministic order.
    pub(crate) background: bool,
}

impl Obsolete {
    /// Deletes file `id` in the background (inline on the simulated disk
    /// and under loom).
    pub(crate) fn delete(self, id: u32) {
        let background = self.background;
        let job = Deletion(Some((self, id)));
        if cfg!(caskade_loom) || !background {
            drop(job);
            return;
        }
        // An unlink can take tens of milliseconds (a 64 MiB file on a
        // `discard` mount): never on a runtime worker, nor on the
        // partition's actor, whose writes would wait for it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            drop(rt.spawn_blocking(move || drop(job)));
            return;
        }
        // Not on a runtime (the actor): a short-lived thread of its own. If
        // it cannot start, the job dropped with the closure deletes inline.
        let _ = std::thread::Builder::new()
            .name("caskade:reap".into())
            .spawn(move || drop(job));
    }
}

/// A deletion still to do, done when dropped: where the blocking pool runs
/// it, or inline if a runtime shutting down drops it unrun — the reaper
/// never owes a file forever.
struct Deletion(Option<(Obsolete, u32)>);

impl Drop for Deletion {
    fn drop(&mut self) {
        if let Some((how, id)) = self.0.take() {
            how.reaper.delete(&how.fs, &how.dir, id);
        }
    }
}
