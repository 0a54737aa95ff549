//! [`Storage`] over the real file system (`std::fs`, Unix).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use super::{Storage, StorageFile, StorageLock};

/// `O_NOFOLLOW`: opening a symbolic link fails with `ELOOP` instead of
/// following it, so a link planted in a partition directory cannot redirect I/O.
const O_NOFOLLOW: i32 = libc::O_NOFOLLOW;

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RealFs;

#[derive(Debug)]
struct RealFile(File);

#[derive(Debug)]
struct RealLock(#[allow(dead_code, reason = "held for its Drop, which unlocks")] File);

impl StorageLock for RealLock {}

impl StorageFile for RealFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
}

impl Storage for RealFs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(O_NOFOLLOW)
            .open(path)?;
        Ok(Arc::new(RealFile(file)))
    }

    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn StorageFile>> {
        // O_NONBLOCK: a FIFO planted under a data file's name must not block
        // the open forever; it is then rejected as not a regular file. The flag
        // has no effect on regular files.
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .custom_flags(O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
        }
        Ok(Arc::new(RealFile(file)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        // rmdir(2) never follows a symbolic link: it fails with ENOTDIR.
        std::fs::remove_dir(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        match std::fs::create_dir(path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Only a real directory "already exists": a symbolic link (even
                // to a directory) or a file standing there would redirect or
                // break every later operation below it.
                let meta = std::fs::symlink_metadata(path)?;
                if meta.file_type().is_symlink() || !meta.is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        "a symbolic link or file stands where a directory belongs",
                    ));
                }
                Err(e)
            }
            other => other,
        }
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        // Opening a directory read-only and calling fsync on it is the POSIX way
        // to make its entries durable.
        File::open(path)?.sync_all()
    }

    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        // statvfs(2), through fs4 (rustix): no unsafe code here.
        fs4::available_space(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        // `read_dir` would follow a symbolic link standing at `dir`.
        if std::fs::symlink_metadata(dir)?.file_type().is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "a symbolic link stands where a directory belongs",
            ));
        }
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            // Names that are not UTF-8 were not written by caskade; they are
            // reported lossily so callers can still see (and ignore) them.
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(O_NOFOLLOW)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(RealLock(file))),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}
