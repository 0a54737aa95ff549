//! The storage seam on the simulated disk: [`Storage`] for [`SimDisk`], and
//! its file handles and locks.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::inode::{FileNode, Ino, MAX_FILE_LEN};
use super::namespace::{State, Target};
use super::{
    EBADF, EFBIG, EINVAL, EIO, EISDIR, ENOSPC, ENOTDIR, SimDisk, SimFault, SimOp, invalid, not_found, os,
};
use crate::storage::{Storage, StorageFile, StorageLock};

impl SimDisk {
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

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st();
        st.enter(SimOp::Remove)?;
        match st.target(path)? {
            Target::Entry(_, _, None) => Err(not_found()),
            Target::Entry(parent, name, Some(ino)) if st.dirs.contains_key(&ino) => {
                if !st.live(ino)?.is_empty() {
                    return Err(io::ErrorKind::DirectoryNotEmpty.into());
                }
                st.live_mut(parent).remove(&name);
                st.gc();
                Ok(())
            }
            Target::Root => Err(invalid("cannot remove the root")),
            _ => Err(os(ENOTDIR)),
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
            // A file stands there: like the real file system's contract,
            // only a real directory "already exists".
            Target::Entry(_, _, Some(ino)) if st.files.contains_key(&ino) => Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "a file stands where a directory belongs",
            )),
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

    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        let st = self.st();
        st.existing_dir(dir)?;
        Ok(st.available)
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
