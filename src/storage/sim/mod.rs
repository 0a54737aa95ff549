//! [`SimDisk`]: an in-memory `Storage` that injects I/O faults and simulates
//! power loss and process crashes, for the engine's tests.
//!
//! # Model
//!
//! The disk is a tree of inodes behind one mutex. Every inode has a *live*
//! image (what processes see: the page cache) and a *durable* image (what
//! survives a power loss):
//!
//! * a directory's durable entries are a copy of its live entries taken by
//!   its last successful `Storage::sync_dir` (creations, renames, removals
//!   are all entry changes);
//! * a file's durable bytes are its live bytes as of its last successful
//!   `sync_data`/`sync_all`. A file sync never makes an entry durable.
//!
//! A power loss rebuilds the disk by walking durable entries from the root:
//! a synced file whose entry was never synced is gone, as is everything below
//! a directory whose own entry was never synced. A rename across directories
//! with only one of them synced can leave both names durable; they then share
//! one inode (a hard link). A failed sync makes nothing durable, and the next
//! successful one persists everything still unsynced.
//!
//! Entries point to inodes, so handles follow Unix: a handle keeps working on
//! its inode after its entry is renamed or removed, and `create` of an
//! existing file truncates that inode (an unsynced change: a power loss
//! without a later sync brings the old synced bytes back).
//!
//! Handles carry the epoch they were opened in; a crash bumps the epoch, and
//! a stale handle then fails everything with `EIO` without touching the disk.
//! Operations of a [`SimOp`] kind are counted, then checked against a halt
//! ([`SimDisk::halt_after`]: crash-point enumeration) and armed faults.
//! `len` has no kind: never counted, never faulted.
//! Operations on stale handles are not counted and consume no fault.

mod fault;
mod file;
mod inode;
mod namespace;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use fault::{SimFault, SimOp};

use fault::{Armed, OP_KINDS};
use inode::{DirNode, FileNode, ROOT};
use namespace::{State, Target, parse};

// Linux errno values (no libc dependency needed).
const EIO: i32 = 5;
const EBADF: i32 = 9;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const EFBIG: i32 = 27;
const ENOSPC: i32 = 28;

fn os(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned())
}

fn not_found() -> io::Error {
    io::ErrorKind::NotFound.into()
}

/// An in-memory disk implementing the storage seam, with fault injection and
/// power-loss simulation. Clones share one disk.
#[derive(Clone, Debug)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

impl Default for SimDisk {
    fn default() -> Self {
        Self::new()
    }
}

impl SimDisk {
    /// An empty disk (just the root `/`); torn-write randomness uses seed 0.
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// An empty disk whose torn-write randomness is seeded with `seed`.
    pub fn with_seed(seed: u64) -> Self {
        let state = State {
            files: BTreeMap::new(),
            dirs: BTreeMap::from([(ROOT, DirNode::default())]),
            next_ino: ROOT + 1,
            epoch: 0,
            locks: HashMap::new(),
            next_token: 0,
            rng: StdRng::seed_from_u64(seed),
            counts: [0; OP_KINDS],
            armed: Vec::new(),
            injected: 0,
            halt_at: None,
            available: u64::MAX,
        };
        SimDisk {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// A new, independent disk holding a deep copy of this one's files and
    /// directories, live and durable images alike, so a test can build a
    /// database once and damage a fresh copy per case. The copy has no open
    /// handles, no locks, no armed faults and zeroed operation counts; its
    /// torn-write randomness is seeded with `seed`, and it is not halted.
    /// Later changes to either disk never reach the other.
    ///
    /// # Examples
    ///
    /// ```
    /// let disk = caskade::SimDisk::new();
    /// let copy = disk.fork(7);
    /// assert_eq!(copy.list_files(), disk.list_files());
    /// ```
    pub fn fork(&self, seed: u64) -> SimDisk {
        let st = self.st();
        let mut files = st.files.clone();
        // Handles belong to the original's users, not to the copy.
        files.values_mut().for_each(|f| f.open = 0);
        let mut copy = State {
            files,
            dirs: st.dirs.clone(),
            next_ino: st.next_ino,
            epoch: st.epoch,
            locks: HashMap::new(),
            next_token: st.next_token,
            rng: StdRng::seed_from_u64(seed),
            counts: [0; OP_KINDS],
            armed: Vec::new(),
            injected: 0,
            halt_at: None,
            available: st.available,
        };
        // Inodes only the original's handles kept alive are not part of it.
        copy.gc();
        SimDisk {
            state: Arc::new(Mutex::new(copy)),
        }
    }

    fn st(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not wedge the other users of the disk.
        // No operation panics halfway, so the state is consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Arms a fault: the `nth` (1-based, counted from this call) operation of
    /// kind `op` fails with `fault`; if `persistent`, every later operation of
    /// that kind fails too, until [`SimDisk::clear_faults`]. When several
    /// armed faults match one operation, the one armed first applies.
    ///
    /// # Panics
    ///
    /// If `nth` is 0.
    pub fn fail(&self, op: SimOp, nth: u64, fault: SimFault, persistent: bool) {
        assert!(nth >= 1, "SimDisk::fail: nth is 1-based");
        let mut st = self.st();
        let at = st.counts[op as usize] + nth;
        st.armed.push(Armed {
            op,
            at,
            fault,
            persistent,
        });
    }

    /// Sets the free space the disk reports to compaction's space check
    /// (it does not limit writes; [`SimFault::Enospc`] does that).
    pub fn set_available_space(&self, bytes: u64) {
        self.st().available = bytes;
    }

    /// Stops the machine after `n` more operations: from the `n + 1`-th
    /// operation on (of any kind, counted as [`SimDisk::total_ops`] counts),
    /// every operation fails with `EIO` and changes nothing, until
    /// [`SimDisk::clear_faults`]. With `n` running over every step of a
    /// workload and a [`SimDisk::power_loss`] afterwards, this enumerates
    /// its crash points: the disk is left exactly as the first `n`
    /// operations made it. Armed one-shot faults do not fire while halted.
    ///
    /// # Examples
    ///
    /// ```
    /// let disk = caskade::SimDisk::new();
    /// disk.halt_after(0);
    /// assert_eq!(disk.total_ops(), 0);
    /// ```
    pub fn halt_after(&self, n: u64) {
        let mut st = self.st();
        st.halt_at = Some(st.counts.iter().sum::<u64>() + n);
    }

    /// Disarms every fault, and lifts a [`SimDisk::halt_after`].
    pub fn clear_faults(&self) {
        let mut st = self.st();
        st.armed.clear();
        st.halt_at = None;
    }

    /// How many operations have failed by injection so far.
    pub fn faults_injected(&self) -> u64 {
        self.st().injected
    }

    /// Operations of kind `op` performed so far, failed ones included.
    pub fn op_count(&self, op: SimOp) -> u64 {
        self.st().counts[op as usize]
    }

    /// Operations of every kind performed so far.
    pub fn total_ops(&self) -> u64 {
        self.st().counts.iter().sum()
    }

    /// Simulates a power loss: afterwards the disk holds only what was durable
    /// (directory entries as of each directory's last `sync_dir`, file bytes
    /// as of each file's last `sync_data`/`sync_all`). If `torn`, a file whose
    /// unsynced changes were pure appends also keeps a random prefix (from
    /// none to all) of the unsynced bytes. Every existing handle becomes stale
    /// (`EIO`) and every lock is released.
    pub fn power_loss(&self, torn: bool) {
        let mut st = self.st();
        let st = &mut *st;
        st.crash();
        // Survivors: the inodes reachable from the root by durable entries.
        let mut reachable = BTreeSet::new();
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            if reachable.insert(ino)
                && let Some(d) = st.dirs.get(&ino)
            {
                stack.extend(d.durable.values());
            }
        }
        st.dirs.retain(|ino, _| reachable.contains(ino));
        for d in st.dirs.values_mut() {
            d.live = d.durable.clone();
        }
        // BTreeMap order keeps the RNG draws deterministic for a seed.
        for (ino, f) in mem::take(&mut st.files) {
            if !reachable.contains(&ino) {
                continue;
            }
            let mut data = f.durable;
            let synced = data.len();
            if torn && f.same_upto == synced && f.data.len() > synced {
                let kept = st.rng.random_range(0..=f.data.len() - synced);
                data.extend_from_slice(&f.data[synced..synced + kept]);
            }
            st.files.insert(ino, FileNode::new(data));
        }
    }

    /// Simulates a process crash (`kill -9`): nothing written is lost (the OS
    /// keeps its page cache), but every existing handle becomes stale (`EIO`)
    /// and every lock is released.
    pub fn process_crash(&self) {
        let mut st = self.st();
        st.crash();
        st.gc();
    }

    /// The live content of the file at `path`, `None` if no file is there.
    /// Not an operation: never counted, never failed.
    pub fn read_file(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let st = self.st();
        match st.target(path.as_ref()).ok()? {
            Target::Entry(_, _, Some(ino)) => st.files.get(&ino).map(|f| f.data.clone()),
            _ => None,
        }
    }

    /// Creates the file at `path` or replaces its content in place (handles
    /// see the new bytes), and makes the result durable at once, including
    /// the entries leading to it. Not an operation: never counted, never
    /// failed by injection. `NotFound` if the parent directory is missing.
    pub fn write_file(&self, path: impl AsRef<Path>, data: &[u8]) -> io::Result<()> {
        let mut st = self.st();
        let Target::Entry(parent, name, ino) = st.target(path.as_ref())? else {
            return Err(os(EISDIR));
        };
        match ino {
            Some(ino) => {
                let f = st.files.get_mut(&ino).ok_or_else(|| os(EISDIR))?;
                *f = FileNode {
                    open: f.open,
                    ..FileNode::new(data.to_vec())
                };
            }
            None => {
                let ino = st.link_new(parent, name, false);
                st.files.insert(ino, FileNode::new(data.to_vec()));
            }
        }
        // Make every entry on the way durable: root → … → parent → file.
        let mut dir = ROOT;
        for n in parse(path.as_ref())? {
            let d = st.dirs.get_mut(&dir).expect("resolved above");
            let child = d.live[&n];
            d.durable.insert(n, child);
            dir = child;
        }
        st.gc();
        Ok(())
    }

    /// Every file path currently present (live view), sorted.
    pub fn list_files(&self) -> Vec<PathBuf> {
        let st = self.st();
        let mut out = Vec::new();
        let mut stack = vec![(ROOT, PathBuf::from("/"))];
        while let Some((ino, path)) = stack.pop() {
            for (name, &child) in &st.dirs[&ino].live {
                if st.dirs.contains_key(&child) {
                    stack.push((child, path.join(name)));
                } else {
                    out.push(path.join(name));
                }
            }
        }
        out.sort();
        out
    }
}
