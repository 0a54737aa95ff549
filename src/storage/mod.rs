//! The storage seam: every file and directory operation caskade performs goes
//! through [`Storage`] and [`StorageFile`].
//!
//! Two implementations exist: [`fs::RealFs`] over `std::fs`, and
//! [`sim::SimDisk`], an in-memory disk that can fail the k-th operation of a
//! kind and simulate power loss (only fsynced bytes and fsynced directory
//! entries survive). Engine code never touches `std::fs` directly.

pub(crate) mod fs;
pub mod sim;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A file opened through a [`Storage`]. All I/O is positional, so one handle
/// is shared by the writer (appending at its own offset) and by readers.
pub(crate) trait StorageFile: Send + Sync + fmt::Debug {
    /// Fills `buf` from `offset`; an `UnexpectedEof` error if the file ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, extending the file as needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// The current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// `fdatasync`: makes the file's data durable.
    fn sync_data(&self) -> io::Result<()>;
    /// `fsync`: makes the file's data and metadata (its length) durable.
    fn sync_all(&self) -> io::Result<()>;
}

/// An exclusive lock on a file, released when dropped.
pub(crate) trait StorageLock: Send + Sync + fmt::Debug {}

/// File-system operations. Paths are absolute or relative to the process's
/// working directory (real) or to the simulated disk's root (simulation).
pub(crate) trait Storage: Send + Sync + fmt::Debug + 'static {
    /// Creates `path` (truncating an existing file) for reading and writing.
    /// The new directory entry is durable only after [`Storage::sync_dir`].
    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Opens an existing file for reading, and for writing too if `writable`.
    /// A symbolic link is never followed.
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn StorageFile>>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file (or a symbolic link, never its target).
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty directory; a symbolic link is never followed
    /// (`NotADirectory`).
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates one directory; `AlreadyExists` if a real directory is there,
    /// `NotADirectory` if a symbolic link or a file stands there.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Bytes available to this process on the file system holding `dir`
    /// (`statvfs`'s `f_bavail`): compaction checks it before copying.
    fn available_space(&self, dir: &Path) -> io::Result<u64>;
    /// The names of the entries of a directory, in no particular order. A
    /// symbolic link in place of `dir` is never followed (`NotADirectory`).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Takes an exclusive lock on `path`, creating the file if needed;
    /// `WouldBlock` if another holder has it (in this process or another).
    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>>;
}

/// The storage a `Db` runs on: the real file system or a simulated disk.
pub(crate) type Backend = Arc<dyn Storage>;
