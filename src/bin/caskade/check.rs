//! `caskade check <dir>`: verifies every record, hint, manifest and catalog
//! checksum of a closed database and the consistency of its index
//! ([`caskade::OfflineDb::check`]), read-only.
//!
//! Exit codes (shared with `caskade inspect`): 0 no error found (warnings
//! — what the next open repairs by design, such as a torn tail — are
//! listed but allowed, unless `--strict`), 1 problems found, 2 the
//! directory could not be checked (missing, not a database, open by a
//! `Db`, bad arguments).
//!
//! ```text
//! caskade check ./data
//! caskade check ./data --json
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use caskade::{CheckReport, OfflineDb, Problem, Severity};
use clap::Args;

use crate::report::quote;

/// Exit code: no problem (of the severity that counts).
pub const EXIT_CLEAN: u8 = 0;
/// Exit code: problems found.
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit code: the directory could not be checked.
pub const EXIT_CANNOT_CHECK: u8 = 2;

/// Options of `caskade check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The database directory (closed: a directory a `Db` has open is refused).
    pub dir: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 on warnings too (torn tails, leftover files).
    #[arg(long)]
    pub strict: bool,
}

/// Runs `caskade check`, printing the report on stdout.
pub fn run(args: &CheckArgs) -> ExitCode {
    let offline = match open(&args.dir, "check") {
        Ok(o) => o,
        Err(code) => return code,
    };
    let report = offline.check();
    print!("{}", if args.json { json(&report) } else { table(&report) });
    ExitCode::from(exit_code(&report.problems, args.strict))
}

/// Opens `dir` for `command`, or prints why not and gives exit code 2.
pub fn open(dir: &Path, command: &str) -> Result<OfflineDb, ExitCode> {
    OfflineDb::open(dir).map_err(|e| {
        eprintln!("caskade {command}: cannot check {}: {e}", dir.display());
        ExitCode::from(EXIT_CANNOT_CHECK)
    })
}

/// 1 if any problem is an error (or, if `strict`, any at all), else 0.
pub fn exit_code(problems: &[Problem], strict: bool) -> u8 {
    let counts = |p: &&Problem| strict || p.severity() == Severity::Error;
    if problems.iter().any(|p| counts(&p)) {
        EXIT_PROBLEMS
    } else {
        EXIT_CLEAN
    }
}

/// The human-readable report.
pub fn table(r: &CheckReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "caskade check {}", r.root.display());
    let _ = writeln!(
        s,
        "  verified: {} partition directories, {} data files, {} records, {} hint files ({} entries)",
        r.partitions, r.data_files, r.records, r.hint_files, r.hint_entries
    );
    s.push_str(&problems_table(&r.root, &r.problems));
    s
}

/// The problems as a table (paths relative to `root`) and a summary line.
pub fn problems_table(root: &Path, problems: &[Problem]) -> String {
    let mut s = String::new();
    let errors = problems
        .iter()
        .filter(|p| p.severity() == Severity::Error)
        .count();
    let warnings = problems.len() - errors;
    if !problems.is_empty() {
        let rows: Vec<[String; 5]> = problems
            .iter()
            .map(|p| {
                [
                    p.severity().as_str().to_owned(),
                    p.kind.as_str().to_owned(),
                    shown(root, &p.path),
                    p.offset.map_or_else(|| "-".into(), |o| o.to_string()),
                    p.detail.clone(),
                ]
            })
            .collect();
        let head = ["SEVERITY", "KIND", "PATH", "OFFSET", "DETAIL"];
        let width = |i: usize| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        };
        let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
        let _ = writeln!(
            s,
            "  {:w0$}  {:w1$}  {:w2$}  {:>w3$}  {}",
            head[0], head[1], head[2], head[3], head[4]
        );
        for r in &rows {
            let _ = writeln!(
                s,
                "  {:w0$}  {:w1$}  {:w2$}  {:>w3$}  {}",
                r[0], r[1], r[2], r[3], r[4]
            );
        }
    }
    let verdict = match (errors, warnings) {
        (0, 0) => "clean",
        (0, _) => "clean (warnings: the next open repairs them)",
        _ => "DAMAGED",
    };
    let _ = writeln!(s, "result: {errors} errors, {warnings} warnings: {verdict}");
    s
}

/// `path` relative to `root` when it is inside it.
pub fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// The same report as one JSON object.
pub fn json(r: &CheckReport) -> String {
    let errors = r.errors().count();
    format!(
        "{{\"root\": {}, \"clean\": {}, \"errors\": {}, \"warnings\": {}, \"partitions\": {}, \
         \"data_files\": {}, \"records\": {}, \"hint_files\": {}, \"hint_entries\": {}, \"problems\": {}}}\n",
        quote(&r.root.display().to_string()),
        errors == 0,
        errors,
        r.problems.len() - errors,
        r.partitions,
        r.data_files,
        r.records,
        r.hint_files,
        r.hint_entries,
        problems_json(&r.problems)
    )
}

/// A JSON array of problems.
pub fn problems_json(problems: &[Problem]) -> String {
    let items: Vec<String> = problems
        .iter()
        .map(|p| {
            format!(
                "{{\"severity\": {}, \"kind\": {}, \"path\": {}, \"offset\": {}, \"detail\": {}}}",
                quote(p.severity().as_str()),
                quote(p.kind.as_str()),
                quote(&p.path.display().to_string()),
                p.offset.map_or_else(|| "null".into(), |o| o.to_string()),
                quote(&p.detail)
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}
