//! [`Snapshot`]: a point-in-time, read-only view of a partition.

use bytes::Bytes;

use crate::error::Result;
use crate::snapshot::Version;
use crate::sync::Arc;

use super::read;

/// A consistent, point-in-time view of one partition.
///
/// It sees exactly the writes acknowledged before it was taken, however many
/// writes (or file rotations) happen afterwards; the files it reads stay open
/// as long as it lives. Reads on a snapshot are synchronous positional reads:
/// in async code, iterate a large snapshot inside `tokio::task::spawn_blocking`.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> caskade::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = caskade::Db::open(dir.path()).await?;
/// let p = db.partition("users").await?;
/// p.put("a", "1").await?;
/// let snap = p.snapshot().await?;
/// p.put("b", "2").await?;
/// assert_eq!(snap.len(), 1);
/// for entry in snap.iter() {
///     let (key, value) = entry?;
///     assert_eq!((&key[..], &value[..]), (&b"a"[..], &b"1"[..]));
/// }
/// # db.close().await }
/// ```
#[derive(Debug, Clone)]
pub struct Snapshot {
    version: Arc<Version>,
}

impl Snapshot {
    pub(crate) fn new(version: Arc<Version>) -> Self {
        Snapshot { version }
    }

    /// The value of `key` as of this snapshot.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the read fails,
    /// [`Error::Corrupt`](crate::Error::Corrupt) if the record fails its checksum.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        read::get(&self.version, key.as_ref())
    }

    /// Whether `key` is live in this snapshot (no I/O).
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> bool {
        self.version.index.contains_key(key.as_ref())
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.version.index.len()
    }

    /// Whether the snapshot holds no key.
    pub fn is_empty(&self) -> bool {
        self.version.index.is_empty()
    }

    /// Iterates every live entry, in no particular order, reading each value.
    pub fn iter(&self) -> SnapshotIter<'_> {
        SnapshotIter {
            version: &self.version,
            inner: self.version.index.iter(),
        }
    }
}

/// Iterator over a [`Snapshot`]'s entries; yields `Result<(key, value)>`
/// because every value is read from its file.
pub struct SnapshotIter<'a> {
    version: &'a Version,
    inner: crate::index::Iter<'a>,
}

impl std::fmt::Debug for SnapshotIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotIter").finish_non_exhaustive()
    }
}

impl Iterator for SnapshotIter<'_> {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        let (key, loc) = self.inner.next()?;
        Some(read::read_record(self.version, loc, Some(key)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}
