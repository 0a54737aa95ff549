//! Reading `CATALOG` without changing it: the same decoding as
//! [`Catalog::open`](crate::catalog::Catalog) (`format/catalog.rs`), but a
//! torn append is reported instead of cut off, and damage is a
//! [`Problem`] instead of an error.

use std::collections::{BTreeMap, HashSet};
use std::io::ErrorKind;
use std::path::Path;

use crate::catalog::MAX_CATALOG_LEN;
use crate::error::Error;
use crate::format::catalog::{
    CATALOG_NAME, CatalogRecord, Decoded, HEADER_LEN, decode_header, decode_record,
};
use crate::options::PartitionOptions;
use crate::partition::files::read_all;
use crate::storage::Storage;

use super::problem::{Problem, ProblemKind};
use super::problem_of;

/// What the catalog says, as far as it could be read.
#[derive(Debug, Default)]
pub(super) struct CatalogView {
    /// Live partitions by id: name and options.
    pub(super) live: BTreeMap<u64, (String, PartitionOptions)>,
    /// Ids below this were handed out.
    pub(super) next_id: u64,
    /// The log was read to its end (a torn append aside), so a directory it
    /// does not list really is not in it.
    pub(super) complete: bool,
}

/// Reads `<root>/CATALOG`, adding what is wrong with it to `problems`.
/// `dirs_exist`: partition directories exist (a missing catalog is then
/// damage, not a new database).
pub(super) fn read(
    fs: &dyn Storage,
    root: &Path,
    dirs_exist: bool,
    problems: &mut Vec<Problem>,
) -> CatalogView {
    let path = root.join(CATALOG_NAME);
    let mut view = CatalogView {
        next_id: 1,
        ..CatalogView::default()
    };
    let bytes = match read_all(fs, &path, MAX_CATALOG_LEN) {
        Ok(bytes) => bytes,
        Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
            if dirs_exist {
                problems.push(Problem::new(
                    ProblemKind::CatalogMissing,
                    &path,
                    None,
                    "the catalog is missing but partition directories exist",
                ));
            } else {
                view.complete = true;
            }
            return view;
        }
        Err(e) => {
            problems.push(problem_of(ProblemKind::CatalogCorrupt, &path, &e));
            return view;
        }
    };
    let salt = match decode_header(&bytes) {
        Ok(salt) => salt,
        Err(e) => {
            problems.push(Problem::new(ProblemKind::CatalogCorrupt, &path, Some(0), e.0));
            return view;
        }
    };
    let mut names: HashSet<String> = HashSet::new();
    let mut last_created = 0u64;
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        let corrupt =
            |reason: &str| Problem::new(ProblemKind::CatalogCorrupt, &path, Some(at as u64), reason);
        let torn = || {
            let cut = bytes.len() - at;
            Problem::new(
                ProblemKind::CatalogTornTail,
                &path,
                Some(at as u64),
                format!("torn append: the next open cuts the last {cut} bytes"),
            )
        };
        let (rec, len) = match decode_record(&bytes[at..], salt) {
            Decoded::Record(rec, len) => (rec, len),
            Decoded::Truncated => {
                problems.push(torn());
                break;
            }
            Decoded::Bad(_) if bytes[at..].iter().all(|&b| b == 0) => {
                problems.push(torn());
                break;
            }
            Decoded::Bad(reason) => {
                problems.push(corrupt(reason));
                return view;
            }
        };
        match rec {
            CatalogRecord::Create { id, name, options } => {
                if id <= last_created || names.contains(&name) {
                    problems.push(corrupt("catalog creates a partition id or name twice"));
                    return view;
                }
                let Some(next) = id.checked_add(1) else {
                    problems.push(corrupt("catalog creates a partition with the largest id"));
                    return view;
                };
                last_created = id;
                view.next_id = view.next_id.max(next);
                names.insert(name.clone());
                view.live.insert(id, (name, options));
            }
            CatalogRecord::Drop { id } => {
                let Some((name, _)) = view.live.remove(&id) else {
                    problems.push(corrupt("catalog drops a partition it does not list"));
                    return view;
                };
                names.remove(&name);
            }
            CatalogRecord::NextId(id) => view.next_id = view.next_id.max(id),
        }
        at += len;
    }
    view.complete = true;
    view
}
