//! File recipes of a partition directory: creating a data file, replacing a
//! small file atomically, writing a hint. Each follows
//! `storage-recipes.md`: nothing is acknowledged or listed before the bytes
//! and the directory entry that hold it are durable.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::data_file::{self, DataFileHeader};
use crate::format::hint::{HintEntry, HintWriter};
use crate::format::manifest::{MANIFEST_NAME, MANIFEST_TMP, Manifest};
use crate::snapshot::DataFile;
use crate::storage::Storage;

use super::scan::{ScanMode, ScannedRecord, scan};

/// Creates data file `id` with a fresh random salt, writes and fsyncs its
/// header. Its directory entry becomes durable with the next `sync_dir`
/// (the manifest replacement that lists it does one).
pub(crate) fn create_data_file(fs: &dyn Storage, dir: &Path, id: u32) -> Result<DataFile> {
    let path = dir.join(data_file::data_name(id));
    let header = DataFileHeader {
        file_id: id,
        salt: rand::random(),
    };
    let handle = fs.create(&path).map_err(|e| Error::io("create", &path, e))?;
    handle
        .write_all_at(&header.encode(), 0)
        .map_err(|e| Error::io("write", &path, e))?;
    handle.sync_all().map_err(|e| Error::io("sync_all", &path, e))?;
    Ok(DataFile::new(id, path, header.salt, handle))
}

/// Opens data file `id` and verifies its header.
pub(crate) fn open_data_file(
    fs: &dyn Storage,
    dir: &Path,
    id: u32,
    writable: bool,
) -> Result<(DataFile, u64)> {
    let path = dir.join(data_file::data_name(id));
    let handle = fs
        .open(&path, writable)
        .map_err(|e| Error::io("open", &path, e))?;
    let len = handle.len().map_err(|e| Error::io("stat", &path, e))?;
    let mut head = [0u8; data_file::HEADER_LEN];
    if len < head.len() as u64 {
        return Err(Error::corrupt(&path, 0, "data file shorter than its header"));
    }
    handle
        .read_exact_at(&mut head, 0)
        .map_err(|e| Error::io("read", &path, e))?;
    let header = DataFileHeader::decode(&head, id).map_err(|e| Error::corrupt(&path, 0, e.0))?;
    Ok((DataFile::new(id, path, header.salt, handle), len))
}

/// Replaces `dir/name` with `bytes` atomically: write `dir/tmp_name`, fsync
/// it, rename it over `name`, fsync the directory. Nothing is retried: a
/// failed fsync is returned as is.
pub(crate) fn replace_atomically(
    fs: &dyn Storage,
    dir: &Path,
    name: &str,
    tmp_name: &str,
    bytes: &[u8],
) -> Result<()> {
    replace_staged(fs, dir, name, tmp_name, bytes).map_err(|f| f.error)
}

/// Why an atomic replace failed, and whether the old file is surely intact.
#[derive(Debug)]
pub(crate) struct ReplaceFailed {
    /// The rename happened: the new contents may be what the next open
    /// reads (whether the rename is durable is unknown).
    pub(crate) renamed: bool,
    pub(crate) error: Error,
}

/// [`replace_atomically`], telling a failure before the rename (the old
/// file is untouched; the temporary is removed, best effort) from one after.
pub(crate) fn replace_staged(
    fs: &dyn Storage,
    dir: &Path,
    name: &str,
    tmp_name: &str,
    bytes: &[u8],
) -> std::result::Result<(), ReplaceFailed> {
    let tmp = dir.join(tmp_name);
    let dst = dir.join(name);
    let before = |error: Error| {
        // A leftover temporary is removed at the next open anyway.
        let _ = fs.remove(&tmp);
        ReplaceFailed {
            renamed: false,
            error,
        }
    };
    let file = fs
        .create(&tmp)
        .map_err(|e| before(Error::io("create", &tmp, e)))?;
    file.write_all_at(bytes, 0)
        .map_err(|e| before(Error::io("write", &tmp, e)))?;
    file.sync_all()
        .map_err(|e| before(Error::io("sync_all", &tmp, e)))?;
    drop(file);
    fs.rename(&tmp, &dst)
        .map_err(|e| before(Error::io("rename", &tmp, e)))?;
    fs.sync_dir(dir).map_err(|e| ReplaceFailed {
        renamed: true,
        error: Error::io("sync_dir", dir, e),
    })
}

/// Durably replaces the partition's manifest.
pub(crate) fn write_manifest(fs: &dyn Storage, dir: &Path, manifest: &Manifest) -> Result<()> {
    replace_atomically(fs, dir, MANIFEST_NAME, MANIFEST_TMP, &manifest.encode())
}

/// Writes the hint file of a sealed data file, scanning it strictly (a
/// sealed file with a bad record is corrupt, and gets no hint).
pub(crate) fn write_hint(fs: &dyn Storage, dir: &Path, file: &DataFile, len: u64) -> Result<()> {
    let mut hint = HintWriter::new(file.id, len, file.salt);
    scan(file, len, ScanMode::Sealed, |rec| hint.push(&hint_entry(&rec)))?;
    store_hint(fs, dir, file.id, hint)
}

/// The hint entry describing a scanned record.
pub(crate) fn hint_entry<'a>(rec: &ScannedRecord<'a>) -> HintEntry<'a> {
    HintEntry {
        seq: rec.seq,
        flags: rec.flags,
        offset: rec.location.offset,
        record_len: rec.location.len,
        key: rec.key,
    }
}

/// Durably stores a finished hint for data file `id`.
pub(crate) fn store_hint(fs: &dyn Storage, dir: &Path, id: u32, hint: HintWriter) -> Result<()> {
    let name = data_file::hint_name(id);
    let tmp = format!("{name}.tmp");
    replace_atomically(fs, dir, &name, &tmp, &hint.finish())
}

/// Reads a whole small file (manifest, hint) into memory.
pub(crate) fn read_all(fs: &dyn Storage, path: &Path, max_len: u64) -> Result<Vec<u8>> {
    let file = fs.open(path, false).map_err(|e| Error::io("open", path, e))?;
    let len = file.len().map_err(|e| Error::io("stat", path, e))?;
    if len > max_len {
        return Err(Error::corrupt(
            path,
            0,
            format!("file of {len} bytes exceeds {max_len}"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, 0)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(buf)
}

/// Creates `dir` if it is missing and makes its entry durable by syncing its
/// parent directory — also when it already existed: an earlier attempt may
/// have created it and then failed (or crashed) before that sync, and nothing
/// else would ever sync the parent. A symbolic link standing there is refused.
pub(crate) fn ensure_dir(fs: &dyn Storage, dir: &Path) -> Result<()> {
    match fs.create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io("create_dir", dir, e)),
    }
    sync_parent(fs, dir)
}

/// Syncs the directory holding `path` (`.` for a bare relative name).
pub(crate) fn sync_parent(fs: &dyn Storage, path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs.sync_dir(parent).map_err(|e| Error::io("sync_dir", parent, e))
}
