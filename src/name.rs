//! Partition names and the directories they map to.
//!
//! For now a name is allow-listed: 1 to 64 bytes of `a-z`, `0-9`, `_`, `-`.
//! Such a name is its own directory name under `<root>/partitions/`, cannot
//! contain a separator or a dot (so no `..`), and cannot collide with another
//! name on a case-insensitive file system. A catalog with a reversible
//! encoding of arbitrary UTF-8 names replaces this rule later.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The longest accepted name, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 64;
/// The directory under the root that holds one directory per partition.
pub(crate) const PARTITIONS_DIR: &str = "partitions";

/// Checks `name` against the allow-list.
pub(crate) fn validate(name: &str) -> Result<()> {
    let reject = |reason| {
        let shown: String = name.chars().take(80).collect();
        Err(Error::InvalidPartitionName { name: shown, reason })
    };
    if name.is_empty() {
        return reject("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return reject("longer than 64 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return reject("only a-z, 0-9, '_' and '-' are allowed");
    }
    Ok(())
}

/// The directory of partition `name` (which must be valid).
pub(crate) fn partition_dir(root: &Path, name: &str) -> PathBuf {
    debug_assert!(validate(name).is_ok());
    root.join(PARTITIONS_DIR).join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list() {
        for ok in ["users", "a", "tenant-42", "x_y", &"z".repeat(64)] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/etc",
            "a/b",
            "Users",
            "CON",
            "é",
            "a b",
            "a\0",
            &"z".repeat(65),
        ] {
            assert!(
                matches!(validate(bad), Err(Error::InvalidPartitionName { .. })),
                "{bad:?} accepted"
            );
        }
    }
}
