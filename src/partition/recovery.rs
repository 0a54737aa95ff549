//! Opening a partition directory: the recovery procedure.
//!
//! 1. Read the manifest (none: a new partition, see [`create_fresh`]).
//! 2. Remove what it does not list: data files, their hints, `*.tmp`.
//! 3. Sealed files: load the hint; if it is missing or does not match, scan
//!    the data file strictly (a bad record is `Corrupt`) and rewrite the hint.
//! 4. The active file: scan to the end of the valid prefix; if the scan
//!    stopped at a damaged record (not at a provably torn end), first copy the
//!    rest durably to `<data file>.dropped-<offset>-<n>`; truncate; `sync_all`.
//! 5. `sync_dir` the partition directory.
//! 6. Merge all records by sequence number (never by file order) into the
//!    index: every record is gathered in flat arrays as it is read, and
//!    [`Load`] keeps each key's record of the highest sequence number in one
//!    pass at the end, building the index's compact base directly.
//!
//! The active file is scanned unless it has a hint for its exact length
//! (written when the partition was closed cleanly, e.g. evicted): then
//! nothing was appended since, and the hint is loaded like a sealed file's.
//!
//! Recovery never destroys anything before its replacement is durable: the
//! only removals are files that no durable manifest lists, and truncation
//! drops either a provably torn end (an unfinished batch, at most one record
//! cut short by the end of the file: no acknowledged write) or bytes it has
//! just copied.

use std::path::Path;
use std::sync::Arc;

use crate::config::MAX_KEY_LEN;
use crate::error::{Error, Result};
use crate::format::data_file::{self, FileName, classify};
use crate::format::hint::{self, HintWriter};
use crate::format::manifest::{MANIFEST_NAME, Manifest};
use crate::index::{Hasher, Index, Load, Location};
use crate::snapshot::{DataFile, FileSet};
use crate::storage::Storage;

use super::files::{create_data_file, hint_entry, open_data_file, read_all, store_hint, write_manifest};
use super::reaper::Reaper;
use super::scan::{ScanEnd, ScanMode, is_tombstone, scan};

/// What recovery hands to the writer.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) manifest: Manifest,
    pub(crate) files: FileSet,
    pub(crate) index: Index,
    /// Append offset in the active file.
    pub(crate) active_end: u64,
    pub(crate) next_seq: u64,
    /// Bytes of torn tail dropped from the active file.
    pub(crate) dropped_tail: u64,
    /// Sealed files whose hint could not be used.
    pub(crate) scanned_sealed: usize,
    /// Bytes of the records the index points at.
    pub(crate) live_bytes: u64,
    /// The active file was loaded from a hint for its whole length.
    pub(crate) active_hinted: bool,
}

/// Gathers the records of every file, in any order, for the index.
#[derive(Debug)]
struct Builder {
    load: Load,
}

impl Builder {
    fn new() -> Self {
        Builder {
            load: Load::new(Hasher::default()),
        }
    }

    fn add(&mut self, key: &[u8], seq: u64, flags: u8, loc: Location) {
        self.load.add(key, seq, (!is_tombstone(flags)).then_some(loc));
    }
}

/// Creates the files of a brand-new partition in `dir` (which exists):
/// data file 1, then the manifest listing it.
pub(crate) fn create_fresh(fs: &dyn Storage, dir: &Path) -> Result<()> {
    let file = create_data_file(fs, dir, 1)?;
    drop(file);
    write_manifest(
        fs,
        dir,
        &Manifest {
            generation: 1,
            next_file_id: 2,
            files: vec![1],
        },
    )
}

/// Recovers the partition in `dir`. `clean`: this process closed the
/// partition cleanly (synced, files closed) since it last recovered it, so
/// the active file and the directory are durable already and the syncs of
/// steps 4 and 5 are skipped (unless a tail had to be cut).
/// Obsolete files the `reaper` still owes deleting (an old snapshot holds
/// them) are left to it.
pub(crate) fn recover(fs: &dyn Storage, dir: &Path, clean: bool, reaper: &Reaper) -> Result<Recovered> {
    recover_with(fs, dir, clean, reaper)
}

/// The recovery procedure (see the module's documentation).
fn recover_with(fs: &dyn Storage, dir: &Path, clean: bool, reaper: &Reaper) -> Result<Recovered> {
    let names = fs.list(dir).map_err(|e| Error::io("list", dir, e))?;
    let manifest_path = dir.join(MANIFEST_NAME);
    if !names.iter().any(|n| n == MANIFEST_NAME) {
        adopt_unlisted(fs, dir, &names)?;
        create_fresh(fs, dir)?;
        // `create_fresh` synced the new data file and (replacing the
        // manifest) the directory: recovery need not sync them again.
        return recover_with(fs, dir, true, reaper);
    }
    let bytes = read_all(fs, &manifest_path, 64 << 20)?;
    let manifest = Manifest::decode(&bytes).map_err(|e| Error::corrupt(&manifest_path, 0, e.0))?;
    remove_unlisted(fs, dir, &names, &manifest, reaper)?;

    let mut build = Builder::new();
    let mut files = FileSet::new();
    let mut scanned_sealed = 0;
    let active_id = manifest.active();
    for &id in &manifest.files[..manifest.files.len() - 1] {
        let (file, len) = open_data_file(fs, dir, id, false)?;
        build.load.reserve_for(len);
        let hinted = names.contains(&data_file::hint_name(id))
            && load_hint(fs, dir, &file, len, |key, seq, flags, loc| {
                build.add(key, seq, flags, loc)
            });
        if !hinted {
            scanned_sealed += 1;
            tracing::warn!(file = %file.path.display(), "hint missing or unusable; scanning the data file");
            // One pass: merge the records and build the replacement hint.
            let mut hint = HintWriter::new(id, len, file.salt);
            scan(&file, len, ScanMode::Sealed, |r| {
                hint.push(&hint_entry(&r));
                build.add(r.key, r.seq, r.flags, r.location)
            })?;
            if let Err(e) = store_hint(fs, dir, id, hint) {
                // A hint is only a cache: the next open scans again.
                tracing::warn!(error = %e, "could not rewrite hint");
            }
        }
        files.insert(id, Arc::new(file));
    }

    let (active, len) = open_data_file(fs, dir, active_id, true)?;
    build.load.reserve_for(len);
    let hinted = names.contains(&data_file::hint_name(active_id))
        && load_hint(fs, dir, &active, len, |key, seq, flags, loc| {
            build.add(key, seq, flags, loc)
        });
    let end = match hinted {
        true => ScanEnd {
            valid_end: len,
            records: 0,
            torn_end: true,
        },
        false => scan(&active, len, ScanMode::Active, |r| {
            build.add(r.key, r.seq, r.flags, r.location)
        })?,
    };
    let dropped_tail = len - end.valid_end;
    let active_hint = data_file::hint_name(active_id);
    if dropped_tail > 0 && names.contains(&active_hint) {
        // A hint for an older length of this file: once the file is cut and
        // grows again it could match that length with other contents.
        let path = dir.join(&active_hint);
        remove_if_there(fs, &path)?;
    }
    if dropped_tail > 0 {
        tracing::warn!(file = %active.path.display(), bytes = dropped_tail, "truncating torn tail of the active file");
        if !end.torn_end {
            preserve_tail(fs, dir, &names, &active, end.valid_end, len)?;
        }
        active
            .handle
            .set_len(end.valid_end)
            .map_err(|e| Error::io("set_len", &active.path, e))?;
    }
    // Always, not only after a truncation: after a process crash the active
    // file may hold records that were written but never synced. From here on
    // they are served to readers and the writer starts with nothing unsynced,
    // so they must be made durable now. (Not after this process's own clean
    // close: that synced everything, and nothing was cut since.)
    let synced = clean && dropped_tail == 0;
    if !synced {
        active
            .handle
            .sync_all()
            .map_err(|e| Error::io("sync_all", &active.path, e))?;
    }
    files.insert(active_id, Arc::new(active));
    // The directory's entries (the manifest, the data files) may be visible
    // only in the page cache, e.g. after a process crash between a rename and
    // its directory sync. Writes acknowledged from now on rely on them.
    if !synced {
        fs.sync_dir(dir).map_err(|e| Error::io("sync_dir", dir, e))?;
    }

    let max_seq = build.load.max_seq();
    let (index, live_bytes) = build.load.finish();
    Ok(Recovered {
        manifest,
        files,
        index,
        active_end: end.valid_end,
        next_seq: max_seq + 1,
        dropped_tail,
        scanned_sealed,
        live_bytes,
        active_hinted: hinted,
    })
}

/// Feeds the entries of `file`'s hint to `each`, if the hint exists and
/// verifies whole against the data file; `false` means "scan instead".
fn load_hint(
    fs: &dyn Storage,
    dir: &Path,
    file: &DataFile,
    len: u64,
    mut each: impl FnMut(&[u8], u64, u8, Location),
) -> bool {
    let path = dir.join(data_file::hint_name(file.id));
    // A valid hint is never larger than its data file plus its own header
    // and trailer (each entry is smaller than the record it describes).
    let Ok(bytes) = read_all(fs, &path, len + 64) else {
        return false;
    };
    // `hint::read` verifies the whole file before the first callback.
    hint::read(&bytes, file.id, len, file.salt, MAX_KEY_LEN, |e| {
        let loc = Location {
            file_id: file.id,
            len: e.record_len,
            offset: e.offset,
        };
        each(e.key, e.seq, e.flags, loc);
    })
    .is_ok()
}

/// Copies the bytes recovery is about to cut from the active file (from
/// `valid_end` to `len`) into `<data file>.dropped-<valid_end>-<n>` (the first
/// `n` not taken, so an earlier copy is never overwritten) and makes the copy
/// durable first. Called when the scan stopped at a damaged record: anything
/// may follow it, including acknowledged writes, and recovery never destroys
/// what it cannot prove worthless. (A provably torn end — an unfinished batch
/// and at most one record cut short by the end of the file — is cut without a
/// copy, so a full disk cannot keep a partition from reopening after a failed
/// write.) Tails of zeros (nothing was written there) are not kept. Streams in
/// 1 MiB chunks.
fn preserve_tail(
    fs: &dyn Storage,
    dir: &Path,
    names: &[String],
    active: &DataFile,
    valid_end: u64,
    len: u64,
) -> Result<()> {
    const CHUNK: u64 = 1 << 20;
    let mut buf = Vec::new();
    let read = |at: u64, buf: &mut Vec<u8>| -> Result<()> {
        buf.resize((len - at).min(CHUNK) as usize, 0);
        active
            .handle
            .read_exact_at(buf, at)
            .map_err(|e| Error::io("read", &active.path, e))
    };
    let mut nonzero = false;
    let mut at = valid_end;
    while at < len && !nonzero {
        read(at, &mut buf)?;
        nonzero = buf.iter().any(|&b| b != 0);
        at += buf.len() as u64;
    }
    if !nonzero {
        return Ok(());
    }
    let stem = format!("{}.dropped-{valid_end}", data_file::data_name(active.id));
    // Terminates: `names` is finite.
    let mut n = 0u64;
    while names.contains(&format!("{stem}-{n}")) {
        n += 1;
    }
    let name = format!("{stem}-{n}");
    let path = dir.join(&name);
    let copy = fs.create(&path).map_err(|e| Error::io("create", &path, e))?;
    let mut at = valid_end;
    while at < len {
        read(at, &mut buf)?;
        copy.write_all_at(&buf, at - valid_end)
            .map_err(|e| Error::io("write", &path, e))?;
        at += buf.len() as u64;
    }
    copy.sync_all().map_err(|e| Error::io("sync_all", &path, e))?;
    fs.sync_dir(dir).map_err(|e| Error::io("sync_dir", dir, e))?;
    tracing::warn!(copy = %path.display(), bytes = len - valid_end, "kept a copy of the dropped tail");
    Ok(())
}

/// No manifest: the partition's creation was interrupted before its first
/// manifest became durable, so no write was ever acknowledged. Leftover data
/// files may be removed only if they hold no record; anything else means the
/// manifest was lost, which is corruption, not something to clean up.
fn adopt_unlisted(fs: &dyn Storage, dir: &Path, names: &[String]) -> Result<()> {
    for name in names {
        let path = dir.join(name);
        match classify(name) {
            FileName::Data(_) => {
                let file = fs.open(&path, false).map_err(|e| Error::io("open", &path, e))?;
                let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
                if len > data_file::HEADER_LEN as u64 {
                    return Err(Error::corrupt(
                        dir.join(MANIFEST_NAME),
                        0,
                        format!("manifest missing but {name} holds records"),
                    ));
                }
                remove_if_there(fs, &path)?;
            }
            FileName::Hint(_) | FileName::Temp => {
                remove_if_there(fs, &path)?;
            }
            FileName::Manifest | FileName::Other => {}
        }
    }
    Ok(())
}

/// Removes data files and hints the manifest does not list (the outputs of
/// an interrupted compaction, or its inputs once its manifest is durable),
/// and temporaries; obsolete files the reaper owes deleting are its job.
fn remove_unlisted(
    fs: &dyn Storage,
    dir: &Path,
    names: &[String],
    manifest: &Manifest,
    reaper: &Reaper,
) -> Result<()> {
    let files: std::collections::HashSet<u32> = manifest.files.iter().copied().collect();
    let listed = |id: u32| files.contains(&id) || reaper.owes(id);
    let mut removed = false;
    for name in names {
        let orphan = match classify(name) {
            FileName::Data(id) | FileName::Hint(id) => !listed(id),
            FileName::Temp => true,
            FileName::Manifest | FileName::Other => false,
        };
        if orphan {
            let path = dir.join(name);
            tracing::info!(file = %path.display(), "removing file no manifest lists");
            remove_if_there(fs, &path)?;
            removed = true;
        }
    }
    if removed {
        fs.sync_dir(dir).map_err(|e| Error::io("sync_dir", dir, e))?;
    }
    Ok(())
}

/// Removes `path`; already gone is fine (the reaper may have deleted an
/// obsolete file between the listing and now).
fn remove_if_there(fs: &dyn Storage, path: &Path) -> Result<()> {
    match fs.remove(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}
