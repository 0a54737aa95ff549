//! Offline tools over a closed database directory: [`OfflineDb::check`]
//! verifies every checksum and the consistency of what the files say;
//! [`OfflineDb::inspect`] reports partitions, files, live and dead bytes
//! and keys. Both back the `caskade check` and `caskade inspect` commands.
//!
//! They read the directory the way recovery does — through the storage
//! seam and the decoders of `format/` — but never change it: no file is
//! created, written, truncated, renamed or removed, and nothing is synced.
//! What recovery would repair (cut a torn tail, remove an orphan) is
//! reported as a [`Severity::Warning`]; damage as a [`Severity::Error`].
//!
//! An [`OfflineDb`] holds the database's lock (`LOCK`) while it lives, so
//! no `Db` can open the directory meanwhile, and it refuses a directory a
//! `Db` has open ([`Error::Locked`]).
//!
//! What is checked:
//! - the catalog: header and record checksums, a log that contradicts
//!   itself (a name or id created twice, a drop of an unknown id), a torn
//!   append; that every partition directory is one the catalog lists;
//! - per partition directory: the manifest's checksum; that each listed
//!   data file exists; every record's header and body checksum in every
//!   listed file (in the active file, whether an invalid end is a torn
//!   write or damage); every hint's checksum and structure, and that each
//!   of its entries matches the record at its offset; files the manifest
//!   does not list and temporaries;
//! - the index: built from the data files alone and the way recovery
//!   builds it (from the hints where it would use them), newest sequence
//!   number per key winning, tombstones removing — both must agree.

mod catalog;
mod figures;
mod partition;
mod problem;

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use figures::{FileFigures, InspectReport, PartitionFigures};
pub use problem::{CheckReport, Problem, ProblemKind, Severity};

use crate::db::LOCK_NAME;
use crate::error::{Error, Result};
use crate::format::catalog::{CATALOG_NAME, CATALOG_TMP};
use crate::name::{self, PARTITIONS_DIR};
use crate::options::Persistence;
use crate::storage::fs::RealFs;
use crate::storage::sim::SimDisk;
use crate::storage::{Backend, StorageLock};

/// A closed database directory, opened read-only and locked, for
/// [`check`](OfflineDb::check) and [`inspect`](OfflineDb::inspect).
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> caskade::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = caskade::Db::open(dir.path()).await?;
/// db.put("users", "ada", "lovelace").await?;
/// db.close().await?;
///
/// let offline = caskade::OfflineDb::open(dir.path())?;
/// assert!(offline.check().is_clean());
/// assert_eq!(offline.inspect().partition("users").unwrap().keys, 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OfflineDb {
    fs: Backend,
    root: PathBuf,
    /// Held for its `Drop`; `None` if the directory has no `LOCK` (no `Db`
    /// ever opened it, and creating one would be a write).
    _lock: Option<Box<dyn StorageLock>>,
}

impl OfflineDb {
    /// Opens the database directory `path` on the real file system.
    ///
    /// # Errors
    /// [`Error::Io`] if `path` cannot be listed (e.g. it does not exist),
    /// [`Error::NotADatabase`] if it holds neither a catalog nor a
    /// partitions directory, [`Error::Locked`] if a `Db` has it open.
    pub fn open(path: impl AsRef<Path>) -> Result<OfflineDb> {
        OfflineDb::open_on(Arc::new(RealFs), path.as_ref())
    }

    /// Opens the database directory `path` on a simulated disk (a path on
    /// that disk). Errors as [`OfflineDb::open`].
    ///
    /// # Errors
    /// As [`OfflineDb::open`].
    pub fn open_simulated(path: impl AsRef<Path>, disk: &SimDisk) -> Result<OfflineDb> {
        OfflineDb::open_on(Arc::new(disk.clone()), path.as_ref())
    }

    fn open_on(fs: Backend, root: &Path) -> Result<OfflineDb> {
        let names = fs.list(root).map_err(|e| Error::io("list", root, e))?;
        let has = |n: &str| names.iter().any(|x| x == n);
        if !has(CATALOG_NAME) && !has(PARTITIONS_DIR) {
            return Err(Error::NotADatabase {
                path: root.to_path_buf(),
            });
        }
        let lock = match has(LOCK_NAME) {
            true => {
                let path = root.join(LOCK_NAME);
                let lock = fs.lock(&path).map_err(|e| match e.kind() {
                    ErrorKind::WouldBlock => Error::Locked { path: path.clone() },
                    _ => Error::io("lock", &path, e),
                })?;
                Some(lock)
            }
            false => None,
        };
        Ok(OfflineDb {
            fs,
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    /// The database directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Verifies every checksum and the consistency of the catalog,
    /// manifests, data files, hints and indexes (see the module docs).
    /// Problems are reported, never returned as errors; nothing is changed.
    pub fn check(&self) -> CheckReport {
        self.survey().0
    }

    /// Partitions, files, records, live and dead bytes and keys, computed
    /// from the data files (with the problems [`OfflineDb::check`] finds).
    pub fn inspect(&self) -> InspectReport {
        let (check, partitions) = self.survey();
        InspectReport {
            root: self.root.clone(),
            partitions,
            problems: check.problems,
        }
    }

    /// The one walk behind both reports.
    fn survey(&self) -> (CheckReport, Vec<PartitionFigures>) {
        let fs = &*self.fs;
        let mut report = CheckReport {
            root: self.root.clone(),
            ..CheckReport::default()
        };
        let names = fs.list(&self.root).unwrap_or_else(|e| {
            report.problems.push(unreadable(&self.root, "list", e));
            Vec::new()
        });
        if names.iter().any(|n| n == CATALOG_TMP) {
            report.problems.push(Problem::new(
                ProblemKind::TempFile,
                self.root.join(CATALOG_TMP),
                None,
                "left by an interrupted catalog rewrite: the next open removes it",
            ));
        }
        let parts_dir = self.root.join(PARTITIONS_DIR);
        let mut dirs = BTreeSet::new();
        if names.iter().any(|n| n == PARTITIONS_DIR) {
            match fs.list(&parts_dir) {
                Ok(entries) => dirs.extend(entries.iter().filter_map(|d| name::parse_dir_name(d))),
                Err(e) => report.problems.push(unreadable(&parts_dir, "list", e)),
            }
        }
        let cat = catalog::read(fs, &self.root, !dirs.is_empty(), &mut report.problems);
        let mut figures: BTreeMap<u64, PartitionFigures> = cat
            .live
            .iter()
            .map(|(&id, (name, options))| {
                let fig = PartitionFigures {
                    id,
                    name: Some(name.clone()),
                    memory_only: options.persistence == Persistence::Memory,
                    dir: name::partition_dir(&self.root, id),
                    ..PartitionFigures::default()
                };
                (id, fig)
            })
            .collect();
        for &id in &dirs {
            let dir = name::partition_dir(&self.root, id);
            if !figures.contains_key(&id) && cat.complete {
                if id < cat.next_id {
                    // Removed at the next open: nothing in it is reachable.
                    report.problems.push(Problem::new(
                        ProblemKind::DroppedPartition,
                        &dir,
                        None,
                        "the directory of a dropped partition: the next open removes it",
                    ));
                    continue;
                }
                report.problems.push(Problem::new(
                    ProblemKind::UncataloguedPartition,
                    &dir,
                    None,
                    format!("no catalog record created partition id {id}; its data is unreachable"),
                ));
            }
            let fig = figures.entry(id).or_insert_with(|| PartitionFigures {
                id,
                dir: dir.clone(),
                ..PartitionFigures::default()
            });
            partition::check(fs, &dir, fig, &mut report);
        }
        (report, figures.into_values().collect())
    }
}

/// The problem an error reading a file stands for: damage of `kind` for a
/// checksum or size failure, [`ProblemKind::Unreadable`] for anything else.
fn problem_of(kind: ProblemKind, path: &Path, e: &Error) -> Problem {
    match e {
        Error::Corrupt { offset, reason, .. } => Problem::new(kind, path, Some(*offset), reason.clone()),
        other => Problem::new(ProblemKind::Unreadable, path, None, other.to_string()),
    }
}

fn unreadable(path: &Path, op: &'static str, e: std::io::Error) -> Problem {
    Problem::new(
        ProblemKind::Unreadable,
        path,
        None,
        Error::io(op, path, e).to_string(),
    )
}
