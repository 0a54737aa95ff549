//! Fault injection: the kinds of operation ([`SimOp`]), the failures an
//! armed fault produces ([`SimFault`]), and the counting that fires them.

use std::io;

use super::namespace::State;
use super::{EIO, ENOSPC, os};

/// A kind of storage operation, for counting and fault injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SimOp {
    /// `Storage::create`.
    Create,
    /// `Storage::open`.
    Open,
    /// `StorageFile::write_all_at`.
    Write,
    /// `StorageFile::read_exact_at`.
    Read,
    /// `StorageFile::set_len`.
    SetLen,
    /// `StorageFile::sync_data`.
    SyncData,
    /// `StorageFile::sync_all`.
    SyncAll,
    /// `Storage::rename`.
    Rename,
    /// `Storage::remove` and `Storage::remove_dir`.
    Remove,
    /// `Storage::create_dir`.
    CreateDir,
    /// `Storage::sync_dir`.
    SyncDir,
    /// `Storage::list`.
    List,
    /// `Storage::lock`.
    Lock,
}

/// Number of [`SimOp`] kinds (the discriminants are `0..OP_KINDS`).
pub(super) const OP_KINDS: usize = SimOp::Lock as usize + 1;

/// The failure an armed fault produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimFault {
    /// The operation fails with `EIO` and changes nothing.
    Eio,
    /// The operation fails with `ENOSPC` and changes nothing.
    Enospc,
    /// For [`SimOp::Write`]: the first half of the buffer (rounded down) is
    /// written, then the write fails with `WriteZero`. Other kinds: as `Eio`.
    ShortWrite,
}

pub(super) struct Armed {
    pub(super) op: SimOp,
    /// Fires when the op's counter reaches `at` (and beyond, if `persistent`).
    pub(super) at: u64,
    pub(super) fault: SimFault,
    pub(super) persistent: bool,
}

impl State {
    /// Counts one operation of kind `op`; the fault it must fail with, if any.
    pub(super) fn begin(&mut self, op: SimOp) -> Option<SimFault> {
        self.counts[op as usize] += 1;
        if self.halt_at.is_some_and(|h| self.counts.iter().sum::<u64>() > h) {
            self.injected += 1;
            return Some(SimFault::Eio);
        }
        let n = self.counts[op as usize];
        let hit = |a: &Armed| a.op == op && (a.at == n || (a.persistent && a.at < n));
        let fired = self.armed.iter().find(|a| hit(a)).map(|a| a.fault);
        // One-shot faults whose turn has come are spent.
        self.armed.retain(|a| a.op != op || a.persistent || a.at > n);
        self.injected += u64::from(fired.is_some());
        fired
    }

    /// [`State::begin`] for operations that a fault simply fails.
    pub(super) fn enter(&mut self, op: SimOp) -> io::Result<()> {
        match self.begin(op) {
            Some(SimFault::Enospc) => Err(os(ENOSPC)),
            Some(_) => Err(os(EIO)),
            None => Ok(()),
        }
    }
}
