//! Published versions of a partition and the cell readers load them from.
//!
//! The writer builds a new [`Version`] after every successful group commit
//! and publishes it *before* replying; readers load the current `Arc` and
//! work on it without ever waiting for the writer. A version holds the index
//! and the open handles of every file the index points into, so a reader can
//! always finish its read, even if a later version dropped a file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::index::Index;
use crate::partition::reaper::Obsolete;
use crate::storage::StorageFile;
use crate::sync::{Arc, RwLock};

/// A cell holding the current published value.
///
/// Readers take the read lock only to clone the `Arc`; the writer takes the
/// write lock only to swap it. Neither holds the lock across any other work,
/// so the lock is never contended for longer than a pointer copy. (loom can
/// check this shape as is; a hand-rolled atomic pointer could not be.)
#[derive(Debug)]
pub(crate) struct SnapshotCell<T> {
    current: RwLock<Arc<T>>,
}

impl<T> SnapshotCell<T> {
    /// A cell holding `initial`.
    pub(crate) fn new(initial: T) -> Self {
        SnapshotCell {
            current: RwLock::new(Arc::new(initial)),
        }
    }

    /// The current value.
    pub(crate) fn load(&self) -> Arc<T> {
        // A poisoned lock can only come from a panic while cloning or swapping
        // an `Arc`, which leaves the pointer intact: keep serving it.
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Replaces the current value; the old one lives on while readers hold it.
    pub(crate) fn publish(&self, next: Arc<T>) {
        let old = {
            let mut g = match self.current.write() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            std::mem::replace(&mut *g, next)
        };
        // Dropped outside the lock: freeing a large old version must not stall readers.
        drop(old);
    }
}

/// An open data file as readers see it.
#[derive(Debug)]
pub(crate) struct DataFile {
    pub(crate) id: u32,
    pub(crate) path: PathBuf,
    pub(crate) salt: u64,
    pub(crate) handle: std::sync::Arc<dyn StorageFile>,
    /// Set when a compaction replaced the file: the last holder's drop
    /// deletes it (see `partition::reaper`).
    pub(crate) obsolete: std::sync::OnceLock<Obsolete>,
}

impl DataFile {
    /// A handle to data file `id`.
    pub(crate) fn new(id: u32, path: PathBuf, salt: u64, handle: std::sync::Arc<dyn StorageFile>) -> Self {
        DataFile {
            id,
            path,
            salt,
            handle,
            obsolete: std::sync::OnceLock::new(),
        }
    }

    /// Marks the file obsolete: it is deleted when its last holder drops it.
    pub(crate) fn make_obsolete(&self, how: Obsolete) {
        how.reaper.owe(self.id);
        if let Err(how) = self.obsolete.set(how) {
            // Already obsolete: the first marking deletes it.
            drop(how);
        }
    }
}

impl Drop for DataFile {
    fn drop(&mut self) {
        if let Some(how) = self.obsolete.take() {
            how.delete(self.id);
        }
    }
}

/// The data files a version can read, by id.
pub(crate) type FileSet = BTreeMap<u32, std::sync::Arc<DataFile>>;

/// One published state of a partition.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    /// Incremented by every publication (checked by the loom models).
    #[cfg_attr(not(caskade_loom), allow(dead_code, reason = "read only by loom models"))]
    pub(crate) generation: u64,
    /// Key → location of its live record.
    pub(crate) index: Index,
    /// Every file `index` points into (invariant: each location's file is here).
    pub(crate) files: std::sync::Arc<FileSet>,
    /// No actor serves this partition (never opened, evicted or dropped):
    /// the version is empty and a reader must open the partition first.
    pub(crate) retired: bool,
}

impl Version {
    /// The empty placeholder published while no actor serves the partition
    /// (its index and files are released).
    pub(crate) fn retired() -> Version {
        Version {
            generation: 0,
            index: Index::default(),
            files: std::sync::Arc::new(FileSet::new()),
            retired: true,
        }
    }
}
