//! The namespace: the disk's state behind its mutex, and path resolution
//! through live directory entries.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::path::{Component, Path};

use rand::rngs::StdRng;

use super::fault::{Armed, OP_KINDS};
use super::inode::{DirNode, FileNode, Ino, ROOT};
use super::{ENOTDIR, invalid, not_found, os};

/// Where a path leads: the root, or (parent directory, name, the entry's
/// inode if it exists).
pub(super) enum Target {
    Root,
    Entry(Ino, String, Option<Ino>),
}

pub(super) struct State {
    /// Invariant: every inode named by a live or durable entry of a directory
    /// in `dirs` is in `files` or `dirs` (garbage collection follows both
    /// kinds of entries); the root is always in `dirs`.
    pub(super) files: BTreeMap<Ino, FileNode>,
    pub(super) dirs: BTreeMap<Ino, DirNode>,
    pub(super) next_ino: Ino,
    /// Bumped by every crash; handles of older epochs are stale.
    pub(super) epoch: u64,
    /// Held locks: inode → token of the holding guard.
    pub(super) locks: HashMap<Ino, u64>,
    /// Lock tokens are never reused, so the drop of a guard whose lock a crash
    /// released never releases a lock taken after the crash.
    pub(super) next_token: u64,
    pub(super) rng: StdRng,
    pub(super) counts: [u64; OP_KINDS],
    pub(super) armed: Vec<Armed>,
    pub(super) injected: u64,
    /// Set by `SimDisk::halt_after`: once `counts` sum past it, every
    /// operation fails with `EIO` (the machine stopped there).
    pub(super) halt_at: Option<u64>,
    /// What `available_space` reports (`u64::MAX` unless a test set it).
    pub(super) available: u64,
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
    pub(super) fn live(&self, dir: Ino) -> io::Result<&BTreeMap<String, Ino>> {
        self.dirs.get(&dir).map(|d| &d.live).ok_or_else(|| os(ENOTDIR))
    }

    pub(super) fn live_mut(&mut self, dir: Ino) -> &mut BTreeMap<String, Ino> {
        &mut self.dirs.get_mut(&dir).expect("parent is a directory").live
    }

    /// Resolves `path` through live entries: `NotFound` if an ancestor is
    /// missing, `ENOTDIR` if one is a file.
    pub(super) fn target(&self, path: &Path) -> io::Result<Target> {
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
    pub(super) fn existing_dir(&self, path: &Path) -> io::Result<Ino> {
        match self.target(path)? {
            Target::Root => Ok(ROOT),
            Target::Entry(_, _, Some(ino)) if self.dirs.contains_key(&ino) => Ok(ino),
            Target::Entry(_, _, Some(_)) => Err(os(ENOTDIR)),
            Target::Entry(_, _, None) => Err(not_found()),
        }
    }

    /// Links a new empty file (or directory) as `name` in `parent`.
    pub(super) fn link_new(&mut self, parent: Ino, name: String, dir: bool) -> Ino {
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
    pub(super) fn gc(&mut self) {
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
    pub(super) fn crash(&mut self) {
        self.epoch += 1;
        self.locks.clear();
        self.files.values_mut().for_each(|f| f.open = 0);
    }
}

/// The names along `path` from the root (a relative path is taken from the
/// root too); `.` and repeated separators vanish, `..` is rejected.
pub(super) fn parse(path: &Path) -> io::Result<Vec<String>> {
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
