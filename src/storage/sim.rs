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
//! Operations of a [`SimOp`] kind are counted, then checked against armed
//! faults. `len` and `exists` have no kind: never counted, never faulted.
//! Operations on stale handles are not counted and consume no fault.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::{fmt, mem};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Storage, StorageFile, StorageLock};

// Linux errno values (no libc dependency needed).
const EIO: i32 = 5;
const EBADF: i32 = 9;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const EFBIG: i32 = 27;
const ENOSPC: i32 = 28;

/// Largest simulated file: bigger ones fail with `EFBIG` rather than
/// allocating absurd amounts of memory.
const MAX_FILE_LEN: u64 = 1 << 32;

/// Inode number; never reused, not even across crashes.
type Ino = u64;
const ROOT: Ino = 0;

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
    /// `Storage::remove`.
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
const OP_KINDS: usize = SimOp::Lock as usize + 1;

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

fn os(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned())
}

fn not_found() -> io::Error {
    io::ErrorKind::NotFound.into()
}

struct Armed {
    op: SimOp,
    /// Fires when the op's counter reaches `at` (and beyond, if `persistent`).
    at: u64,
    fault: SimFault,
    persistent: bool,
}

struct FileNode {
    /// Live content.
    data: Vec<u8>,
    /// Content after a power loss.
    durable: Vec<u8>,
    /// Invariant: `same_upto <= min(data.len(), durable.len())` and
    /// `data[..same_upto] == durable[..same_upto]`. Every change lowers it to
    /// the first byte it may alter, so a sync copies only `data[same_upto..]`:
    /// O(bytes appended since the last sync) for an append-only file.
    /// `same_upto == durable.len() < data.len()` means the unsynced changes
    /// are pure appends (the only case a torn power loss keeps a part of).
    same_upto: usize,
    /// Handles of the current epoch on this inode; they keep it alive after
    /// its last entry is gone.
    open: usize,
}

impl FileNode {
    /// A file whose live and durable images are both `data`.
    fn new(data: Vec<u8>) -> Self {
        FileNode {
            durable: data.clone(),
            same_upto: data.len(),
            data,
            open: 0,
        }
    }

    fn sync(&mut self) {
        self.durable.truncate(self.same_upto);
        self.durable.extend_from_slice(&self.data[self.same_upto..]);
        self.same_upto = self.data.len();
    }

    fn write(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
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

#[derive(Default)]
struct DirNode {
    live: BTreeMap<String, Ino>,
    durable: BTreeMap<String, Ino>,
}

/// Where a path leads: the root, or (parent directory, name, the entry's
/// inode if it exists).
enum Target {
    Root,
    Entry(Ino, String, Option<Ino>),
}

struct State {
    /// Invariant: every inode named by a live or durable entry of a directory
    /// in `dirs` is in `files` or `dirs` (garbage collection follows both
    /// kinds of entries); the root is always in `dirs`.
    files: BTreeMap<Ino, FileNode>,
    dirs: BTreeMap<Ino, DirNode>,
    next_ino: Ino,
    /// Bumped by every crash; handles of older epochs are stale.
    epoch: u64,
    /// Held locks: inode → token of the holding guard.
    locks: HashMap<Ino, u64>,
    /// Lock tokens are never reused, so the drop of a guard whose lock a crash
    /// released never releases a lock taken after the crash.
    next_token: u64,
    rng: StdRng,
    counts: [u64; OP_KINDS],
    armed: Vec<Armed>,
    injected: u64,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("files", &self.files.len())
            .field("dirs", &self.dirs.len())
            .field("epoch", &self.epoch)
            .field("total_ops", &self.counts.iter().sum::<u64>())
            .finish_non_exhaustive()
    }
}

impl State {
    /// Counts one operation of kind `op`; the fault it must fail with, if any.
    fn begin(&mut self, op: SimOp) -> Option<SimFault> {
        self.counts[op as usize] += 1;
        let n = self.counts[op as usize];
        let hit = |a: &Armed| a.op == op && (a.at == n || (a.persistent && a.at < n));
        let fired = self.armed.iter().find(|a| hit(a)).map(|a| a.fault);
        // One-shot faults whose turn has come are spent.
        self.armed.retain(|a| a.op != op || a.persistent || a.at > n);
        self.injected += u64::from(fired.is_some());
        fired
    }

    /// [`State::begin`] for operations that a fault simply fails.
    fn enter(&mut self, op: SimOp) -> io::Result<()> {
        match self.begin(op) {
            Some(SimFault::Enospc) => Err(os(ENOSPC)),
            Some(_) => Err(os(EIO)),
            None => Ok(()),
        }
    }

    fn live(&self, dir: Ino) -> io::Result<&BTreeMap<String, Ino>> {
        self.dirs.get(&dir).map(|d| &d.live).ok_or_else(|| os(ENOTDIR))
    }

    fn live_mut(&mut self, dir: Ino) -> &mut BTreeMap<String, Ino> {
        &mut self.dirs.get_mut(&dir).expect("parent is a directory").live
    }

    /// Resolves `path` through live entries: `NotFound` if an ancestor is
    /// missing, `ENOTDIR` if one is a file.
    fn target(&self, path: &Path) -> io::Result<Target> {
        let mut names = parse(path)?;
        let Some(name) = names.pop() else {
            return Ok(Target::Root);
        };
        let mut parent = ROOT;
        for n in &names {
            parent = *self.live(parent)?.get(n).ok_or_else(not_found)?;
        }
        let ino = self.live(parent)?.get(&name).copied();
        Ok(Target::Entry(parent, name, ino))
    }

    /// The existing directory at `path`.
    fn existing_dir(&self, path: &Path) -> io::Result<Ino> {
        match self.target(path)? {
            Target::Root => Ok(ROOT),
            Target::Entry(_, _, Some(ino)) if self.dirs.contains_key(&ino) => Ok(ino),
            Target::Entry(_, _, Some(_)) => Err(os(ENOTDIR)),
            Target::Entry(_, _, None) => Err(not_found()),
        }
    }

    /// Links a new empty file (or directory) as `name` in `parent`.
    fn link_new(&mut self, parent: Ino, name: String, dir: bool) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        if dir {
            self.dirs.insert(ino, DirNode::default());
        } else {
            self.files.insert(ino, FileNode::new(Vec::new()));
        }
        self.live_mut(parent).insert(name, ino);
        ino
    }

    /// Drops the inodes reachable neither from the root (through live or
    /// durable entries) nor from a handle. O(inodes + entries).
    fn gc(&mut self) {
        let mut keep: BTreeSet<Ino> = self
            .files
            .iter()
            .filter(|(_, f)| f.open > 0)
            .map(|(&i, _)| i)
            .collect();
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            if keep.insert(ino)
                && let Some(d) = self.dirs.get(&ino)
            {
                stack.extend(d.live.values().chain(d.durable.values()));
            }
        }
        self.files.retain(|ino, _| keep.contains(ino));
        self.dirs.retain(|ino, _| keep.contains(ino));
    }

    /// Makes every existing handle stale and releases every lock.
    fn crash(&mut self) {
        self.epoch += 1;
        self.locks.clear();
        self.files.values_mut().for_each(|f| f.open = 0);
    }
}

/// The names along `path` from the root (a relative path is taken from the
/// root too); `.` and repeated separators vanish, `..` is rejected.
fn parse(path: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(s) => {
                names.push(s.to_str().ok_or_else(|| invalid("non-UTF-8 path"))?.to_owned());
            }
            _ => return Err(invalid("`..` and path prefixes are not supported")),
        }
    }
    Ok(names)
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
        };
        SimDisk {
            state: Arc::new(Mutex::new(state)),
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

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.st().armed.clear();
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

    fn handle(&self, st: &mut State, ino: Ino, writable: bool) -> Arc<dyn StorageFile> {
        st.files.get_mut(&ino).expect("a file").open += 1;
        Arc::new(SimFile {
            disk: self.clone(),
            ino,
            epoch: st.epoch,
            writable,
        })
    }
}

impl Storage for SimDisk {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let mut st = self.st();
        st.enter(SimOp::Create)?;
        let ino = match st.target(path)? {
            Target::Entry(_, _, Some(ino)) => {
                // O_TRUNC of the existing inode: an unsynced change.
                let f = st.files.get_mut(&ino).ok_or_else(|| os(EISDIR))?;
                f.data.clear();
                f.same_upto = 0;
                ino
            }
            Target::Entry(parent, name, None) => st.link_new(parent, name, false),
            Target::Root => return Err(os(EISDIR)),
        };
        Ok(self.handle(&mut st, ino, true))
    }

    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn StorageFile>> {
        let mut st = self.st();
        st.enter(SimOp::Open)?;
        match st.target(path)? {
            Target::Entry(_, _, None) => Err(not_found()),
            Target::Entry(_, _, Some(ino)) if st.files.contains_key(&ino) => {
                Ok(self.handle(&mut st, ino, writable))
            }
            _ => Err(invalid("not a regular file")),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.st();
        st.enter(SimOp::Rename)?;
        let (Target::Entry(src_dir, src_name, src), Target::Entry(dst_dir, dst_name, dst)) =
            (st.target(from)?, st.target(to)?)
        else {
            return Err(os(EINVAL)); // Renaming the root, or onto it.
        };
        let src = src.ok_or_else(not_found)?;
        if dst == Some(src) {
            return Ok(()); // POSIX: both names already link the same inode.
        }
        if st.dirs.contains_key(&src) {
            // A directory cannot move into its own subtree.
            let mut stack = vec![src];
            while let Some(ino) = stack.pop() {
                if ino == dst_dir {
                    return Err(os(EINVAL));
                }
                stack.extend(st.dirs.get(&ino).into_iter().flat_map(|d| d.live.values()));
            }
            if let Some(dst) = dst
                && !st.live(dst)?.is_empty()
            {
                return Err(io::ErrorKind::DirectoryNotEmpty.into());
            }
        } else if dst.is_some_and(|d| st.dirs.contains_key(&d)) {
            return Err(os(EISDIR));
        }
        st.live_mut(src_dir).remove(&src_name);
        st.live_mut(dst_dir).insert(dst_name, src);
        st.gc();
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        st.enter(SimOp::Remove)?;
        match st.target(path)? {
            Target::Entry(_, _, None) => Err(not_found()),
            Target::Entry(parent, name, Some(ino)) if st.files.contains_key(&ino) => {
                st.live_mut(parent).remove(&name);
                st.gc();
                Ok(())
            }
            _ => Err(os(EISDIR)),
        }
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        st.enter(SimOp::CreateDir)?;
        match st.target(path)? {
            Target::Entry(parent, name, None) => {
                st.link_new(parent, name, true);
                Ok(())
            }
            _ => Err(io::ErrorKind::AlreadyExists.into()),
        }
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        st.enter(SimOp::SyncDir)?;
        // Stricter than the real FS (where fsync of a file path works too):
        // syncing a file here is `ENOTDIR`, to catch a wrong path.
        let ino = st.existing_dir(path)?;
        let d = st.dirs.get_mut(&ino).expect("a directory");
        d.durable = d.live.clone();
        st.gc();
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut st = self.st();
        st.enter(SimOp::List)?;
        let ino = st.existing_dir(dir)?;
        Ok(st.live(ino)?.keys().cloned().collect())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        let mut st = self.st();
        st.enter(SimOp::Lock)?;
        let ino = match st.target(path)? {
            Target::Entry(_, _, Some(ino)) if st.files.contains_key(&ino) => ino,
            Target::Entry(parent, name, None) => st.link_new(parent, name, false),
            _ => return Err(os(EISDIR)),
        };
        if st.locks.contains_key(&ino) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let token = st.next_token;
        st.next_token += 1;
        st.locks.insert(ino, token);
        Ok(Box::new(SimLock {
            disk: self.clone(),
            ino,
            token,
        }))
    }
}

/// A handle on one inode, valid in the epoch it was opened in.
#[derive(Debug)]
struct SimFile {
    disk: SimDisk,
    ino: Ino,
    epoch: u64,
    writable: bool,
}

impl SimFile {
    /// Runs `body` on the inode, unless the handle is stale (`EIO`, not
    /// counted). The operation is counted first; a fault fails it before
    /// `body` runs, except a short write, which `body` gets to carry out.
    fn run<T>(&self, op: SimOp, body: impl FnOnce(&mut FileNode, bool) -> io::Result<T>) -> io::Result<T> {
        let mut st = self.disk.st();
        if st.epoch != self.epoch {
            return Err(os(EIO));
        }
        let short = match st.begin(op) {
            Some(SimFault::ShortWrite) if op == SimOp::Write => true,
            Some(SimFault::Enospc) => return Err(os(ENOSPC)),
            Some(_) => return Err(os(EIO)),
            None => false,
        };
        // A live handle's inode is never collected (its `open` count is > 0).
        body(st.files.get_mut(&self.ino).expect("open inode"), short)
    }
}

impl StorageFile for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.run(SimOp::Read, |f, _| {
            let end = offset
                .checked_add(buf.len() as u64)
                .filter(|&e| e <= f.data.len() as u64);
            let end = end.ok_or(io::ErrorKind::UnexpectedEof)? as usize;
            buf.copy_from_slice(&f.data[offset as usize..end]);
            Ok(())
        })
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.run(SimOp::Write, |f, short| {
            if !self.writable {
                return Err(os(EBADF));
            }
            if short {
                f.write(&buf[..buf.len() / 2], offset)?;
                return Err(io::ErrorKind::WriteZero.into());
            }
            f.write(buf, offset)
        })
    }

    fn len(&self) -> io::Result<u64> {
        let st = self.disk.st();
        if st.epoch != self.epoch {
            return Err(os(EIO));
        }
        Ok(st.files[&self.ino].data.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.run(SimOp::SetLen, |f, _| {
            if !self.writable {
                return Err(os(EINVAL)); // As ftruncate(2) on a read-only fd.
            }
            if len > MAX_FILE_LEN {
                return Err(os(EFBIG));
            }
            // Growth appends zeros at or above `same_upto`; shrinking may cut
            // below it.
            f.data.resize(len as usize, 0);
            f.same_upto = f.same_upto.min(len as usize);
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.run(SimOp::SyncData, |f, _| {
            f.sync();
            Ok(())
        })
    }

    fn sync_all(&self) -> io::Result<()> {
        self.run(SimOp::SyncAll, |f, _| {
            f.sync();
            Ok(())
        })
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut st = self.disk.st();
        if st.epoch != self.epoch {
            return; // The crash already forgot this handle.
        }
        if let Some(f) = st.files.get_mut(&self.ino) {
            f.open -= 1;
            if f.open == 0 {
                st.gc();
            }
        }
    }
}

/// A held lock, released on drop unless a crash released it first (then the
/// token no longer matches and the drop does nothing).
#[derive(Debug)]
struct SimLock {
    disk: SimDisk,
    ino: Ino,
    token: u64,
}

impl StorageLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut st = self.disk.st();
        if st.locks.get(&self.ino) == Some(&self.token) {
            st.locks.remove(&self.ino);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use io::ErrorKind as K;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    /// A disk with a durable, empty `/db`.
    fn disk(seed: u64) -> SimDisk {
        let d = SimDisk::with_seed(seed);
        d.create_dir(p("/db")).unwrap();
        d.sync_dir(p("/")).unwrap();
        d
    }

    /// Creates `path` with a durable entry and `synced` as durable content.
    fn durable_file(d: &SimDisk, path: &str, synced: &[u8]) -> Arc<dyn StorageFile> {
        let f = d.create(p(path)).unwrap();
        f.write_all_at(synced, 0).unwrap();
        f.sync_data().unwrap();
        d.sync_dir(Path::new(path).parent().unwrap()).unwrap();
        f
    }

    fn read_all(f: &dyn StorageFile) -> Vec<u8> {
        let mut buf = vec![0; f.len().unwrap() as usize];
        f.read_exact_at(&mut buf, 0).unwrap();
        buf
    }

    fn errno<T>(r: io::Result<T>) -> Option<i32> {
        r.err().and_then(|e| e.raw_os_error())
    }

    #[test]
    fn round_trip_and_path_errors() {
        let d = disk(0);
        let f = d.create(p("/db/a")).unwrap();
        f.write_all_at(b"hello", 0).unwrap();
        f.write_all_at(b"xy", 7).unwrap(); // Past EOF: the gap is zero-filled.
        assert_eq!(read_all(&*f), b"hello\0\0xy");
        let err = f.read_exact_at(&mut [0; 2], 8).unwrap_err();
        assert_eq!(err.kind(), K::UnexpectedEof);
        f.set_len(4).unwrap();
        let g = d.open(p("//db/./a"), false).unwrap();
        assert_eq!(read_all(&*g), b"hell");
        assert_eq!(errno(g.write_all_at(b"z", 0)), Some(EBADF));
        assert_eq!(d.open(p("/db/b"), true).unwrap_err().kind(), K::NotFound);
        assert_eq!(d.create(p("/no/a")).unwrap_err().kind(), K::NotFound);
        assert_eq!(d.create(p("/db/../a")).unwrap_err().kind(), K::InvalidInput);
        assert_eq!(errno(d.create(p("/db"))), Some(EISDIR));
        assert_eq!(d.open(p("/db"), false).unwrap_err().kind(), K::InvalidInput);
        assert_eq!(errno(d.create(p("/db/a/x"))), Some(ENOTDIR));
        assert_eq!(d.create_dir(p("/db")).unwrap_err().kind(), K::AlreadyExists);
        assert_eq!(d.list(p("/db")).unwrap(), ["a"]);
        assert_eq!(d.list(p("/no")).unwrap_err().kind(), K::NotFound);
        assert_eq!(d.rename(p("/db/b"), p("/db/c")).unwrap_err().kind(), K::NotFound);
        assert!(d.exists(p("/db/a")).unwrap() && d.exists(p("/")).unwrap());
        assert!(!d.exists(p("/db/b")).unwrap() && !d.exists(p("/no/b")).unwrap());
        assert_eq!(d.list_files(), [PathBuf::from("/db/a")]);
    }

    #[test]
    fn power_loss_keeps_synced_bytes_only() {
        let d = disk(0);
        let f = durable_file(&d, "/db/a", b"durable");
        f.write_all_at(b" lost", 7).unwrap();
        assert_eq!(d.read_file("/db/a").unwrap(), b"durable lost");
        d.power_loss(false);
        assert_eq!(d.read_file("/db/a").unwrap(), b"durable");
        // An entry synced before any data sync survives, empty.
        let g = d.create(p("/db/b")).unwrap();
        d.sync_dir(p("/db")).unwrap();
        g.write_all_at(b"unsynced", 0).unwrap();
        d.power_loss(false);
        assert_eq!(d.read_file("/db/b").unwrap(), b"");
    }

    #[test]
    fn incremental_sync_follows_overwrites_and_truncation() {
        let d = disk(0);
        let f = durable_file(&d, "/db/a", b"abcdef");
        f.write_all_at(b"XY", 1).unwrap();
        f.write_all_at(b"gh", 6).unwrap();
        f.sync_all().unwrap();
        f.set_len(9).unwrap(); // Zero extension, unsynced.
        d.power_loss(false);
        assert_eq!(d.read_file("/db/a").unwrap(), b"aXYdefgh");
        let f = d.open(p("/db/a"), true).unwrap();
        f.set_len(2).unwrap();
        f.sync_data().unwrap();
        f.write_all_at(b"Q", 4).unwrap();
        f.sync_data().unwrap();
        // Truncated, then re-extended, unsynced: not a pure append, so even
        // a torn power loss restores exactly the synced bytes.
        f.set_len(1).unwrap();
        f.write_all_at(b"zzzzzzzz", 1).unwrap();
        d.power_loss(true);
        assert_eq!(d.read_file("/db/a").unwrap(), b"aX\0\0Q");
    }

    #[test]
    fn entries_need_a_dir_sync() {
        let d = disk(0);
        let f = d.create(p("/db/a")).unwrap();
        f.write_all_at(b"x", 0).unwrap();
        f.sync_all().unwrap(); // The data is durable, the entry is not.
        d.create_dir(p("/db/sub")).unwrap();
        durable_file(&d, "/db/sub/b", b"y"); // Synced into an unsynced directory.
        d.power_loss(false);
        assert_eq!(d.list_files(), Vec::<PathBuf>::new());
        assert_eq!(d.list(p("/db")).unwrap(), Vec::<String>::new());
        // Once the parent is synced too, both survive.
        durable_file(&d, "/db/a", b"x");
        d.create_dir(p("/db/sub")).unwrap();
        d.sync_dir(p("/db")).unwrap();
        durable_file(&d, "/db/sub/b", b"y");
        d.power_loss(false);
        assert_eq!(
            d.list_files(),
            [PathBuf::from("/db/a"), PathBuf::from("/db/sub/b")]
        );
    }

    #[test]
    fn rename_is_durable_only_after_dir_sync() {
        for sync in [false, true] {
            let d = disk(0);
            durable_file(&d, "/db/a", b"old");
            let t = d.create(p("/db/tmp")).unwrap();
            t.write_all_at(b"new", 0).unwrap();
            t.sync_data().unwrap();
            d.rename(p("/db/tmp"), p("/db/a")).unwrap();
            t.write_all_at(b"!", 3).unwrap(); // The handle follows the inode.
            assert_eq!(d.read_file("/db/a").unwrap(), b"new!");
            assert!(!d.exists(p("/db/tmp")).unwrap());
            if sync {
                d.sync_dir(p("/db")).unwrap();
            }
            d.power_loss(false);
            let want: &[u8] = if sync { b"new" } else { b"old" };
            assert_eq!(d.read_file("/db/a").unwrap(), want);
            assert_eq!(d.list(p("/db")).unwrap(), ["a"]);
        }
    }

    #[test]
    fn removal_is_durable_only_after_dir_sync() {
        let d = disk(0);
        let f = durable_file(&d, "/db/a", b"data");
        d.remove(p("/db/a")).unwrap();
        assert!(!d.exists(p("/db/a")).unwrap());
        assert_eq!(read_all(&*f), b"data"); // Open handles keep the inode.
        d.power_loss(false);
        assert_eq!(d.read_file("/db/a").unwrap(), b"data");
        let f = d.open(p("/db/a"), true).unwrap();
        d.remove(p("/db/a")).unwrap();
        d.sync_dir(p("/db")).unwrap();
        f.write_all_at(b"more", 4).unwrap();
        assert_eq!(d.st().files.len(), 1);
        drop(f); // The last reference: the inode is collected.
        assert_eq!(d.st().files.len(), 0);
        d.power_loss(false);
        assert_eq!(d.read_file("/db/a"), None);
    }

    #[test]
    fn create_truncation_is_an_unsynced_change() {
        let d = disk(0);
        let f = durable_file(&d, "/db/a", b"old");
        let g = d.create(p("/db/a")).unwrap();
        assert_eq!((f.len().unwrap(), g.len().unwrap()), (0, 0));
        g.write_all_at(b"n", 0).unwrap();
        d.power_loss(true); // Not a pure append: no torn bytes either.
        assert_eq!(d.read_file("/db/a").unwrap(), b"old");
        d.create(p("/db/a")).unwrap().sync_data().unwrap();
        d.power_loss(false);
        assert_eq!(d.read_file("/db/a").unwrap(), b"");
    }

    #[test]
    fn torn_power_loss_keeps_a_prefix_of_appends() {
        let full: Vec<u8> = (0..64u8).collect();
        let mut lens = BTreeSet::new();
        for seed in 0..40 {
            let run = |torn| {
                let d = disk(seed);
                let f = durable_file(&d, "/db/a", &full[..8]);
                f.write_all_at(&full[8..40], 8).unwrap();
                f.write_all_at(&full[40..], 40).unwrap();
                d.power_loss(torn);
                d.read_file("/db/a").unwrap()
            };
            let got = run(true);
            assert!(got.len() >= 8 && full.starts_with(&got), "seed {seed}: {got:?}");
            assert_eq!(run(true), got, "seed {seed} is not deterministic");
            assert_eq!(run(false), &full[..8]);
            lens.insert(got.len());
        }
        assert!(lens.iter().any(|&l| l > 8 && l < 64), "never partial: {lens:?}");
        assert!(lens.len() > 5, "too few distinct lengths: {lens:?}");
    }

    #[test]
    fn stale_handles_fail_and_change_nothing() {
        let d = disk(0);
        let f = durable_file(&d, "/db/a", b"abc");
        d.power_loss(false);
        let ops = d.total_ops();
        d.fail(SimOp::Write, 1, SimFault::Enospc, false);
        assert_eq!(errno(f.write_all_at(b"x", 0)), Some(EIO));
        assert_eq!(errno(f.read_exact_at(&mut [0], 0)), Some(EIO));
        assert_eq!(errno(f.set_len(0)), Some(EIO));
        assert_eq!(errno(f.sync_data()), Some(EIO));
        assert_eq!(errno(f.sync_all()), Some(EIO));
        assert_eq!(errno(f.len()), Some(EIO));
        assert_eq!((d.total_ops(), d.faults_injected()), (ops, 0));
        drop(f);
        assert_eq!(d.read_file("/db/a").unwrap(), b"abc");
        let g = d.open(p("/db/a"), true).unwrap();
        assert_eq!(errno(g.write_all_at(b"x", 0)), Some(ENOSPC)); // Still armed.
        assert_eq!(read_all(&*g), b"abc");
    }

    #[test]
    fn process_crash_keeps_page_cache_but_invalidates_handles() {
        let d = disk(0);
        let f = durable_file(&d, "/db/a", b"synced");
        f.write_all_at(b"+cached", 6).unwrap();
        let _new = d.create(p("/db/b")).unwrap();
        d.process_crash();
        assert_eq!(errno(f.read_exact_at(&mut [0], 0)), Some(EIO));
        assert_eq!(errno(f.write_all_at(b"x", 0)), Some(EIO));
        assert_eq!(d.read_file("/db/a").unwrap(), b"synced+cached");
        assert!(d.exists(p("/db/b")).unwrap());
        // Durability is unchanged: a later power loss still drops both.
        d.power_loss(false);
        assert_eq!(d.read_file("/db/a").unwrap(), b"synced");
        assert!(!d.exists(p("/db/b")).unwrap());
    }

    #[test]
    fn faults_fire_on_the_nth_op_and_persist_if_asked() {
        let d = disk(0);
        let f = d.create(p("/db/a")).unwrap();
        f.write_all_at(b"1", 0).unwrap();
        d.fail(SimOp::Write, 2, SimFault::Eio, false); // Counted from here.
        f.write_all_at(b"2", 1).unwrap();
        assert_eq!(errno(f.write_all_at(b"3", 2)), Some(EIO));
        f.write_all_at(b"4", 2).unwrap();
        assert_eq!(read_all(&*f), b"124"); // The failed write changed nothing.
        d.fail(SimOp::Read, 2, SimFault::Enospc, true);
        f.read_exact_at(&mut [0], 0).unwrap();
        for _ in 0..3 {
            assert_eq!(errno(f.read_exact_at(&mut [0], 0)), Some(ENOSPC));
        }
        d.clear_faults();
        f.read_exact_at(&mut [0], 0).unwrap();
        assert_eq!(d.faults_injected(), 4);
        assert_eq!((d.op_count(SimOp::Write), d.op_count(SimOp::Read)), (4, 6));
        // Plus `disk`'s create_dir and sync_dir, and the create.
        assert_eq!(d.total_ops(), 1 + 1 + 1 + 4 + 6);
        d.fail(SimOp::Create, 1, SimFault::ShortWrite, false); // As EIO.
        assert_eq!(errno(d.create(p("/db/b"))), Some(EIO));
        d.fail(SimOp::Rename, 1, SimFault::Eio, false);
        assert_eq!(errno(d.rename(p("/db/a"), p("/db/c"))), Some(EIO));
        assert_eq!(d.list_files(), [PathBuf::from("/db/a")]);
    }

    #[test]
    fn short_write_writes_a_prefix() {
        let d = disk(0);
        let f = d.create(p("/db/a")).unwrap();
        f.write_all_at(b"0123", 0).unwrap();
        d.fail(SimOp::Write, 1, SimFault::ShortWrite, false);
        let err = f.write_all_at(b"abcdefghij", 4).unwrap_err();
        assert_eq!(err.kind(), K::WriteZero);
        assert_eq!(read_all(&*f), b"0123abcde");
        d.fail(SimOp::SyncData, 1, SimFault::ShortWrite, false);
        assert_eq!(errno(f.sync_data()), Some(EIO));
    }

    #[test]
    fn failed_syncs_make_nothing_durable() {
        for op in [SimOp::SyncData, SimOp::SyncAll] {
            let d = disk(0);
            let f = durable_file(&d, "/db/a", b"old");
            f.write_all_at(b"new", 3).unwrap();
            d.fail(op, 1, SimFault::Eio, false);
            let r = if op == SimOp::SyncData {
                f.sync_data()
            } else {
                f.sync_all()
            };
            assert_eq!(errno(r), Some(EIO));
            d.power_loss(true);
            // Torn is allowed to keep a prefix of the append, nothing more.
            let got = d.read_file("/db/a").unwrap();
            assert!(b"oldnew".starts_with(&got) && got.len() >= 3);
            d.power_loss(false);
            assert_eq!(d.read_file("/db/a").unwrap(), &got[..]);
        }
        let d = disk(0);
        durable_file(&d, "/db/a", b"x");
        d.create(p("/db/b")).unwrap();
        d.fail(SimOp::SyncDir, 1, SimFault::Eio, false);
        assert_eq!(errno(d.sync_dir(p("/db"))), Some(EIO));
        d.power_loss(false);
        assert_eq!(d.list(p("/db")).unwrap(), ["a"]);
    }

    #[test]
    fn failed_sync_then_successful_sync_persists() {
        let d = disk(0);
        let f = durable_file(&d, "/db/a", b"ab");
        f.write_all_at(b"c", 2).unwrap();
        d.fail(SimOp::SyncData, 1, SimFault::Eio, false);
        f.sync_data().unwrap_err();
        f.sync_data().unwrap();
        d.power_loss(false);
        assert_eq!(d.read_file("/db/a").unwrap(), b"abc");
    }

    #[test]
    fn locks_block_and_are_released_by_drop_and_crashes() {
        let d = disk(0);
        let g = d.lock(p("/db/LOCK")).unwrap();
        assert!(d.exists(p("/db/LOCK")).unwrap());
        assert_eq!(d.lock(p("/db/LOCK")).unwrap_err().kind(), K::WouldBlock);
        drop(g);
        let stale = d.lock(p("/db/LOCK")).unwrap();
        d.sync_dir(p("/db")).unwrap();
        d.power_loss(false);
        let g = d.lock(p("/db/LOCK")).unwrap();
        drop(stale); // Must not release the lock taken after the crash.
        assert_eq!(d.lock(p("/db/LOCK")).unwrap_err().kind(), K::WouldBlock);
        d.process_crash();
        let _h = d.lock(p("/db/LOCK")).unwrap();
        drop(g);
        assert_eq!(d.lock(p("/db/LOCK")).unwrap_err().kind(), K::WouldBlock);
        assert_eq!(errno(d.lock(p("/db"))), Some(EISDIR));
    }

    #[test]
    fn helpers_are_durable_and_uncounted() {
        let d = SimDisk::new();
        d.create_dir(p("/db")).unwrap(); // Entry not synced.
        let ops = d.total_ops();
        d.fail(SimOp::Write, 1, SimFault::Eio, true);
        d.write_file("/db/x", b"abc").unwrap();
        d.write_file("/db/w", b"1").unwrap();
        assert_eq!(d.write_file("/no/x", b"").unwrap_err().kind(), K::NotFound);
        assert_eq!(d.total_ops(), ops);
        d.power_loss(false);
        assert_eq!(d.list_files(), [PathBuf::from("/db/w"), PathBuf::from("/db/x")]);
        assert_eq!(d.read_file("/db/x").unwrap(), b"abc");
        assert_eq!(d.read_file("/db"), None);
        // Corrupting in place: existing handles see the new bytes.
        let f = d.open(p("/db/x"), false).unwrap();
        d.write_file("/db/x", b"XYZ!").unwrap();
        assert_eq!(read_all(&*f), b"XYZ!");
    }

    #[test]
    fn directory_renames() {
        let d = disk(0);
        d.create_dir(p("/db/p")).unwrap();
        d.write_file("/db/p/f", b"x").unwrap();
        assert_eq!(errno(d.rename(p("/db"), p("/db/p/q"))), Some(EINVAL));
        assert_eq!(errno(d.rename(p("/db/p"), p("/db/p/f"))), Some(EINVAL));
        d.create_dir(p("/q")).unwrap();
        assert_eq!(errno(d.rename(p("/db/p/f"), p("/q"))), Some(EISDIR));
        d.rename(p("/db/p"), p("/q")).unwrap();
        assert_eq!(d.list_files(), [PathBuf::from("/q/f")]);
    }

    #[test]
    fn threads_share_handles() {
        let d = disk(0);
        let f = durable_file(&d, "/db/a", b"");
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let f = Arc::clone(&f);
                std::thread::spawn(move || {
                    for i in 0..500u64 {
                        f.write_all_at(&[t; 4], (i * 4 + u64::from(t)) * 4).unwrap();
                        f.sync_data().unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        d.power_loss(false);
        let data = d.read_file("/db/a").unwrap();
        assert_eq!(data.len(), 8000);
        assert!(data.chunks(4).enumerate().all(|(i, c)| c == [(i % 4) as u8; 4]));
    }
}
