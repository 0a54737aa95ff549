//! Checking one partition directory without changing it: the manifest,
//! every listed data file record by record, every hint entry against its
//! record, leftovers, and the index recovery would build (from the hints)
//! against the one the data files alone give.

use std::collections::{BTreeMap, HashSet};
use std::io::ErrorKind;
use std::path::Path;

use crate::config::MAX_KEY_LEN;
use crate::error::Error;
use crate::format::data_file::{self, FileName, classify};
use crate::format::hint;
use crate::format::manifest::{MANIFEST_NAME, Manifest};
use crate::format::u64_at;
use crate::index::{Hasher, Index, Load, Location};
use crate::partition::files::{open_data_file, read_all};
use crate::partition::scan::{ScanMode, is_tombstone, scan};
use crate::snapshot::DataFile;
use crate::storage::Storage;

use super::figures::{FileFigures, PartitionFigures};
use super::problem::{CheckReport, Problem, ProblemKind};
use super::problem_of;

/// Largest manifest read (as recovery).
const MAX_MANIFEST_LEN: u64 = 64 << 20;

/// One record as the data file or its hint describes it.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    seq: u64,
    flags: u8,
    location: Location,
    key: Vec<u8>,
}

/// The two indexes being built: from the data files alone, and the way
/// recovery builds it (hints where recovery would use them).
struct Indexes {
    data: Load,
    recovery: Load,
}

impl Indexes {
    fn add(load: &mut Load, entries: &[Entry]) {
        for e in entries {
            load.add(&e.key, e.seq, (!is_tombstone(e.flags)).then_some(e.location));
        }
    }
}

/// Checks the partition in `dir` (which exists), filling `fig` and adding
/// to `report`.
pub(super) fn check(fs: &dyn Storage, dir: &Path, fig: &mut PartitionFigures, report: &mut CheckReport) {
    let mut names = match fs.list(dir) {
        Ok(names) => names,
        Err(e) => {
            report.problems.push(unreadable(dir, &Error::io("list", dir, e)));
            return;
        }
    };
    names.sort();
    report.partitions += 1;
    if !names.iter().any(|n| n == MANIFEST_NAME) {
        return without_manifest(fs, dir, &names, report);
    }
    let manifest_path = dir.join(MANIFEST_NAME);
    let manifest = match read_all(fs, &manifest_path, MAX_MANIFEST_LEN)
        .and_then(|b| Manifest::decode(&b).map_err(|e| Error::corrupt(&manifest_path, 0, e.0)))
    {
        Ok(m) => m,
        Err(e) => {
            report
                .problems
                .push(problem_of(ProblemKind::ManifestCorrupt, &manifest_path, &e));
            return;
        }
    };
    fig.generation = Some(manifest.generation);
    leftovers(dir, &names, &manifest, report);

    let mut indexes = Indexes {
        data: Load::new(Hasher::default()),
        recovery: Load::new(Hasher::default()),
    };
    let mut damaged = false;
    let last = manifest.files.len() - 1;
    for (i, &id) in manifest.files.iter().enumerate() {
        let mut file = FileFigures {
            id,
            active: i == last,
            ..FileFigures::default()
        };
        damaged |= !check_file(fs, dir, &names, &mut file, &mut indexes, report);
        fig.files.push(file);
    }
    let (data_index, live_bytes) = indexes.data.finish();
    let mut live: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for (_, loc) in data_index.iter() {
        let l = live.entry(loc.file_id).or_default();
        l.0 += 1;
        l.1 += u64::from(loc.len);
    }
    for f in &mut fig.files {
        let (records, bytes) = live.get(&f.id).copied().unwrap_or_default();
        f.live_records = records;
        f.live_bytes = bytes;
        f.dead_bytes = f.size.saturating_sub(data_file::HEADER_LEN as u64 + bytes);
        fig.records += f.records;
        fig.tombstones += f.tombstones;
        fig.dead_bytes += f.dead_bytes;
        fig.data_bytes += f.size;
        fig.hint_bytes += f.hint_size.unwrap_or(0);
    }
    fig.keys = data_index.len() as u64;
    fig.live_bytes = live_bytes;
    // With a damaged data file the data index lacks what could not be read,
    // while a hint may still list it: the comparison would only repeat the
    // damage already reported.
    if !damaged {
        let (recovery_index, _) = indexes.recovery.finish();
        if let Some(detail) = compare(&data_index, &recovery_index) {
            report
                .problems
                .push(Problem::new(ProblemKind::IndexMismatch, dir, None, detail));
        }
    }
}

/// Checks data file `file.id` and its hint; `false` if the data file is
/// missing or damaged.
fn check_file(
    fs: &dyn Storage,
    dir: &Path,
    names: &[String],
    file: &mut FileFigures,
    indexes: &mut Indexes,
    report: &mut CheckReport,
) -> bool {
    let path = dir.join(data_file::data_name(file.id));
    let (data, len) = match open_data_file(fs, dir, file.id, false) {
        Ok(opened) => opened,
        Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
            let what = if file.active {
                "the active data file"
            } else {
                "a sealed data file"
            };
            report.problems.push(Problem::new(
                ProblemKind::MissingFile,
                &path,
                None,
                format!("the manifest lists {what} that does not exist"),
            ));
            return false;
        }
        Err(e) => {
            report
                .problems
                .push(problem_of(ProblemKind::DataCorrupt, &path, &e));
            return false;
        }
    };
    file.size = len;
    report.data_files += 1;
    let (records, intact) = read_records(&data, len, file.active, report);
    file.records = records.len() as u64;
    file.tombstones = records.iter().filter(|r| is_tombstone(r.flags)).count() as u64;
    report.records += file.records;
    Indexes::add(&mut indexes.data, &records);

    let hint_name = data_file::hint_name(file.id);
    let hint_path = dir.join(&hint_name);
    if !names.contains(&hint_name) {
        if !file.active {
            report.problems.push(Problem::new(
                ProblemKind::HintMissing,
                &hint_path,
                None,
                "a sealed data file has no hint: the next open scans it and writes one",
            ));
        }
        Indexes::add(&mut indexes.recovery, &records);
        return intact;
    }
    // As recovery: a valid hint is never larger than its data file plus
    // its own header and trailer.
    let bytes = match read_all(fs, &hint_path, len + 64) {
        Ok(bytes) => bytes,
        Err(e) => {
            report
                .problems
                .push(problem_of(ProblemKind::HintCorrupt, &hint_path, &e));
            Indexes::add(&mut indexes.recovery, &records);
            return intact;
        }
    };
    file.hint_size = Some(bytes.len() as u64);
    report.hint_files += 1;
    match read_hint(&bytes, &data, len, file.active) {
        Ok((entries, covers_file)) => {
            report.hint_entries += entries.len() as u64;
            if let Some(p) = compare_hint(&hint_path, &entries, &records, intact) {
                report.problems.push(p);
            }
            // Recovery loads a hint only if it covers the file's length.
            let used = if covers_file { &entries } else { &records };
            Indexes::add(&mut indexes.recovery, used);
        }
        Err(reason) => {
            report
                .problems
                .push(Problem::new(ProblemKind::HintCorrupt, &hint_path, None, reason));
            Indexes::add(&mut indexes.recovery, &records);
        }
    }
    intact
}

/// Every record of `data` the way recovery reads them (for the active
/// file: its valid prefix), verifying both checksums; `false` if damage
/// (not a torn end) was found.
fn read_records(data: &DataFile, len: u64, active: bool, report: &mut CheckReport) -> (Vec<Entry>, bool) {
    let mut records = Vec::new();
    let mut collect = |r: crate::partition::scan::ScannedRecord<'_>| {
        records.push(Entry {
            seq: r.seq,
            flags: r.flags,
            location: r.location,
            key: r.key.to_vec(),
        });
    };
    if !active {
        return match scan(data, len, ScanMode::Sealed, &mut collect) {
            Ok(_) => (records, true),
            Err(e) => {
                report
                    .problems
                    .push(problem_of(ProblemKind::DataCorrupt, &data.path, &e));
                (records, false)
            }
        };
    }
    let end = match scan(data, len, ScanMode::Active, &mut collect) {
        Ok(end) => end,
        Err(e) => {
            report.problems.push(unreadable(&data.path, &e));
            return (records, false);
        }
    };
    if end.valid_end == len {
        return (records, true);
    }
    // Where and why the scan stopped: a strict scan fails there.
    let (offset, reason) = match scan(data, len, ScanMode::Sealed, |_| {}) {
        Err(Error::Corrupt { offset, reason, .. }) => (offset, reason),
        Err(e) => {
            report.problems.push(unreadable(&data.path, &e));
            return (records, false);
        }
        Ok(_) => (end.valid_end, "unfinished end".to_owned()),
    };
    let cut = len - end.valid_end;
    if end.torn_end {
        report.problems.push(Problem::new(
            ProblemKind::TornTail,
            &data.path,
            Some(end.valid_end),
            format!("torn end ({reason} at {offset}): the next open cuts the last {cut} bytes"),
        ));
        (records, true)
    } else {
        report.problems.push(Problem::new(
            ProblemKind::DataCorrupt,
            &data.path,
            Some(offset),
            format!(
                "{reason}; the next open cuts {cut} bytes from {} (keeping a copy)",
                end.valid_end
            ),
        ));
        (records, false)
    }
}

/// Verifies a hint whole against its data file and returns its entries,
/// and whether it covers the file's whole length (only then does recovery
/// use it). The active file's hint may describe a shorter, older length
/// (written at a clean close; appends came since): it is checked at that
/// length.
fn read_hint(bytes: &[u8], data: &DataFile, len: u64, active: bool) -> Result<(Vec<Entry>, bool), String> {
    let read_at = |covered: u64| {
        let mut entries = Vec::new();
        hint::read(bytes, data.id, covered, data.salt, MAX_KEY_LEN, |e| {
            entries.push(Entry {
                seq: e.seq,
                flags: e.flags,
                location: Location {
                    file_id: data.id,
                    len: e.record_len,
                    offset: e.offset,
                },
                key: e.key.to_vec(),
            });
        })
        .map(|_| entries)
    };
    match read_at(len) {
        Ok(entries) => Ok((entries, true)),
        Err(e) if !active || bytes.len() < 24 => Err(e.0.to_owned()),
        Err(e) => {
            let covered = u64_at(bytes, 16);
            if covered >= len {
                return Err(e.0.to_owned());
            }
            read_at(covered)
                .map(|entries| (entries, false))
                .map_err(|e| e.0.to_owned())
        }
    }
}

/// The first disagreement between a verified hint's entries and the
/// records read from its data file. `intact`: the records are all of the
/// file's (not cut short by damage), so extra entries are a disagreement.
fn compare_hint(path: &Path, entries: &[Entry], records: &[Entry], intact: bool) -> Option<Problem> {
    let mismatch = |offset: u64, detail: String| {
        Some(Problem::new(
            ProblemKind::HintMismatch,
            path,
            Some(offset),
            detail,
        ))
    };
    for (i, e) in entries.iter().enumerate() {
        let Some(r) = records.get(i) else {
            if !intact {
                return None;
            }
            let detail = format!("hint entry {i} describes a record the data file does not hold");
            return mismatch(e.location.offset, detail);
        };
        if e != r {
            let detail = format!(
                "hint entry {i} (seq {}, flags {}, {} bytes, key of {} bytes) differs from the record \
                 (seq {}, flags {}, {} bytes, key of {} bytes)",
                e.seq,
                e.flags,
                e.location.len,
                e.key.len(),
                r.seq,
                r.flags,
                r.location.len,
                r.key.len()
            );
            return mismatch(r.location.offset, detail);
        }
    }
    None
}

/// `None` if both indexes map the same keys to the same locations.
fn compare(data: &Index, recovery: &Index) -> Option<String> {
    let differing = data
        .iter()
        .filter(|(k, loc)| recovery.get(k) != Some(*loc))
        .count();
    let extra = recovery.iter().filter(|(k, _)| !data.contains_key(k)).count();
    (differing + extra > 0).then(|| {
        format!(
            "the index built from the hints differs from the data files': {differing} keys point \
             elsewhere or are missing, {extra} keys are only in the hints' index"
        )
    })
}

/// Warnings for the files the next open would remove (or keep aside).
fn leftovers(dir: &Path, names: &[String], manifest: &Manifest, report: &mut CheckReport) {
    let listed: HashSet<u32> = manifest.files.iter().copied().collect();
    for name in names {
        let path = dir.join(name);
        let problem = match classify(name) {
            FileName::Data(id) | FileName::Hint(id) if !listed.contains(&id) => Problem::new(
                ProblemKind::UnlistedFile,
                path,
                None,
                "the manifest does not list this file: the next open removes it",
            ),
            FileName::Temp => Problem::new(
                ProblemKind::TempFile,
                path,
                None,
                "left by an interrupted atomic replace: the next open removes it",
            ),
            FileName::Other if name.contains(".data.dropped-") => Problem::new(
                ProblemKind::KeptTail,
                path,
                None,
                "bytes an earlier recovery cut from the active file (may hold acknowledged writes)",
            ),
            _ => continue,
        };
        report.problems.push(problem);
    }
}

/// A partition directory without a manifest: its creation was interrupted
/// (fine, if no data file holds a record) or the manifest was lost.
fn without_manifest(fs: &dyn Storage, dir: &Path, names: &[String], report: &mut CheckReport) {
    for name in names {
        let path = dir.join(name);
        match classify(name) {
            FileName::Data(_) => {
                let len = fs.open(&path, false).and_then(|f| f.len());
                match len {
                    Ok(len) if len <= data_file::HEADER_LEN as u64 => {}
                    Ok(_) => report.problems.push(Problem::new(
                        ProblemKind::ManifestMissing,
                        dir.join(MANIFEST_NAME),
                        None,
                        format!("the manifest is missing but {name} holds records"),
                    )),
                    Err(e) => report
                        .problems
                        .push(unreadable(&path, &Error::io("open", &path, e))),
                }
            }
            FileName::Temp => report.problems.push(Problem::new(
                ProblemKind::TempFile,
                path,
                None,
                "left by an interrupted atomic replace: the next open removes it",
            )),
            _ => {}
        }
    }
}

fn unreadable(path: &Path, e: &Error) -> Problem {
    Problem::new(ProblemKind::Unreadable, path, None, e.to_string())
}
