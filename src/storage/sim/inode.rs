//! Inodes: a file's live and durable bytes, a directory's live and durable
//! entries.

use std::collections::BTreeMap;
use std::io;

use super::{EFBIG, os};

/// Largest simulated file: bigger ones fail with `EFBIG` rather than
/// allocating absurd amounts of memory.
pub(super) const MAX_FILE_LEN: u64 = 1 << 32;

/// Inode number; never reused, not even across crashes.
pub(super) type Ino = u64;
pub(super) const ROOT: Ino = 0;

#[derive(Clone)]
pub(super) struct FileNode {
    /// Live content.
    pub(super) data: Vec<u8>,
    /// Content after a power loss.
    pub(super) durable: Vec<u8>,
    /// Invariant: `same_upto <= min(data.len(), durable.len())` and
    /// `data[..same_upto] == durable[..same_upto]`. Every change lowers it to
    /// the first byte it may alter, so a sync copies only `data[same_upto..]`:
    /// O(bytes appended since the last sync) for an append-only file.
    /// `same_upto == durable.len() < data.len()` means the unsynced changes
    /// are pure appends (the only case a torn power loss keeps a part of).
    pub(super) same_upto: usize,
    /// Handles of the current epoch on this inode; they keep it alive after
    /// its last entry is gone.
    pub(super) open: usize,
}

impl FileNode {
    /// A file whose live and durable images are both `data`.
    pub(super) fn new(data: Vec<u8>) -> Self {
        FileNode {
            durable: data.clone(),
            same_upto: data.len(),
            data,
            open: 0,
        }
    }

    pub(super) fn sync(&mut self) {
        self.durable.truncate(self.same_upto);
        self.durable.extend_from_slice(&self.data[self.same_upto..]);
        self.same_upto = self.data.len();
    }

    pub(super) fn write(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= MAX_FILE_LEN);
        let end = end.ok_or_else(|| os(EFBIG))? as usize;
        if buf.is_empty() {
            return Ok(()); // Like pwrite(2) of 0 bytes: no extension.
        }
        let off = offset as usize;
        if self.data.len() < end {
            // Zero-fills any gap; it lies at or above the old length, so at
            // or above `same_upto`.
            self.data.resize(end, 0);
        }
        self.data[off..end].copy_from_slice(buf);
        self.same_upto = self.same_upto.min(off);
        Ok(())
    }
}

#[derive(Clone, Default)]
pub(super) struct DirNode {
    pub(super) live: BTreeMap<String, Ino>,
    pub(super) durable: BTreeMap<String, Ino>,
}
