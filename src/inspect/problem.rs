//! What `check` finds: [`Problem`]s of a typed [`ProblemKind`], each an
//! [`Severity::Error`] (damage: something a reader or recovery would refuse,
//! or lose) or a [`Severity::Warning`] (a leftover that recovery repairs by
//! design, losing nothing acknowledged), and the [`CheckReport`] gathering
//! them.

use std::fmt;
use std::path::PathBuf;

/// How serious a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Left by an interrupted operation and repaired by the next open
    /// without losing anything acknowledged (a torn tail, an orphan file).
    Warning,
    /// Damage: bytes that fail their checksum or contradict each other.
    Error,
}

impl Severity {
    /// `"warning"` or `"error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The kind of a [`Problem`]. Each kind has one [`Severity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// Partition directories exist but `CATALOG` does not (error).
    CatalogMissing,
    /// The catalog's header or a record fails its checksum or does not
    /// parse, or the log contradicts itself (error; `offset` is the record's).
    CatalogCorrupt,
    /// The catalog ends in a torn append, which the next open cuts off
    /// (warning; `offset` is where the cut would be).
    CatalogTornTail,
    /// A partition directory under an id the catalog never handed out: its
    /// create record is lost (error).
    UncataloguedPartition,
    /// The directory of a dropped partition, removed by the next open (warning).
    DroppedPartition,
    /// A partition directory whose data files hold records has no
    /// `MANIFEST` (error).
    ManifestMissing,
    /// The manifest fails its checksum or does not parse (error); the
    /// partition's files are not checked further.
    ManifestCorrupt,
    /// A data file the manifest lists does not exist (error).
    MissingFile,
    /// A data file's header or a record fails verification (error;
    /// `offset` is the first bad record's). In the active file: a damaged
    /// record that is not a provably torn end — recovery would cut from
    /// there, keeping a copy.
    DataCorrupt,
    /// The active file ends in a torn write (an unfinished batch, a record
    /// cut short): recovery cuts it, nothing acknowledged is in it
    /// (warning; `offset` is the end of the valid prefix).
    TornTail,
    /// A sealed data file has no hint: the next open scans it and writes
    /// one (warning).
    HintMissing,
    /// A hint fails its checksum, header or structure checks, or names
    /// another data file or length (error).
    HintCorrupt,
    /// A hint verifies but one of its entries disagrees with the record at
    /// its offset (error; `offset` is the record's).
    HintMismatch,
    /// A data or hint file the manifest does not list, removed by the next
    /// open (warning).
    UnlistedFile,
    /// A `*.tmp` left by an interrupted atomic replace, removed by the next
    /// open (warning).
    TempFile,
    /// A `<data file>.dropped-<offset>-<n>` copy of bytes an earlier
    /// recovery cut from an active file: worth a look, never deleted
    /// (warning).
    KeptTail,
    /// The index recovery would build from the hints differs from the one
    /// built from the data files alone (error).
    IndexMismatch,
    /// A file or directory could not be read (error; `detail` has the
    /// operating system's error).
    Unreadable,
}

impl ProblemKind {
    /// The severity of every problem of this kind.
    pub fn severity(self) -> Severity {
        use ProblemKind::*;
        match self {
            CatalogTornTail | DroppedPartition | TornTail | HintMissing | UnlistedFile | TempFile
            | KeptTail => Severity::Warning,
            CatalogMissing
            | CatalogCorrupt
            | UncataloguedPartition
            | ManifestMissing
            | ManifestCorrupt
            | MissingFile
            | DataCorrupt
            | HintCorrupt
            | HintMismatch
            | IndexMismatch
            | Unreadable => Severity::Error,
        }
    }

    /// A stable snake-case name (`"data_corrupt"`), as in the JSON output.
    pub fn as_str(self) -> &'static str {
        use ProblemKind::*;
        match self {
            CatalogMissing => "catalog_missing",
            CatalogCorrupt => "catalog_corrupt",
            CatalogTornTail => "catalog_torn_tail",
            UncataloguedPartition => "uncatalogued_partition",
            DroppedPartition => "dropped_partition",
            ManifestMissing => "manifest_missing",
            ManifestCorrupt => "manifest_corrupt",
            MissingFile => "missing_file",
            DataCorrupt => "data_corrupt",
            TornTail => "torn_tail",
            HintMissing => "hint_missing",
            HintCorrupt => "hint_corrupt",
            HintMismatch => "hint_mismatch",
            UnlistedFile => "unlisted_file",
            TempFile => "temp_file",
            KeptTail => "kept_tail",
            IndexMismatch => "index_mismatch",
            Unreadable => "unreadable",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing `check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// What is wrong.
    pub kind: ProblemKind,
    /// The file or directory concerned.
    pub path: PathBuf,
    /// The byte offset in `path`, when the problem is at one place.
    pub offset: Option<u64>,
    /// A human-readable explanation.
    pub detail: String,
}

impl Problem {
    pub(crate) fn new(
        kind: ProblemKind,
        path: impl Into<PathBuf>,
        offset: Option<u64>,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            kind,
            path: path.into(),
            offset,
            detail: detail.into(),
        }
    }

    /// The severity of its kind.
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.severity().as_str(),
            self.kind,
            self.path.display()
        )?;
        if let Some(at) = self.offset {
            write!(f, " @{at}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// The result of [`OfflineDb::check`](super::OfflineDb::check): every
/// problem found and how much was verified.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CheckReport {
    /// The database directory.
    pub root: PathBuf,
    /// Every problem, in the order found (catalog, then partitions by id).
    pub problems: Vec<Problem>,
    /// Partition directories checked.
    pub partitions: u64,
    /// Data files read.
    pub data_files: u64,
    /// Records whose checksums were verified.
    pub records: u64,
    /// Hint files read.
    pub hint_files: u64,
    /// Hint entries compared with their records.
    pub hint_entries: u64,
}

impl CheckReport {
    /// The problems of severity [`Severity::Error`].
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity() == Severity::Error)
    }

    /// The problems of severity [`Severity::Warning`].
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity() == Severity::Warning)
    }

    /// No problem of severity [`Severity::Error`] (warnings allowed).
    pub fn is_clean(&self) -> bool {
        self.errors().next().is_none()
    }
}
