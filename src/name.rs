//! Partition names and the directories partitions live in.
//!
//! A name is any UTF-8 string of 1 to 255 bytes without control characters
//! (C0, DEL, C1; so no NUL, newline or escape sequences in logs). Names are
//! compared byte for byte: `Users` and `users`, or the NFC and NFD spellings
//! of `café`, are different partitions.
//!
//! A name never becomes a path. Each partition gets a numeric id from the
//! catalog, never reused, and lives in `<root>/partitions/<id as 16 hex
//! digits>`: no name can escape the root, collide with another on a
//! case-insensitive or normalising file system, or hit a reserved name such
//! as `CON`. The catalog maps the ids back to the real names.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The longest accepted name, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 255;
/// The directory under the root that holds one directory per partition.
pub(crate) const PARTITIONS_DIR: &str = "partitions";

/// Checks that `name` is an acceptable partition name.
pub(crate) fn validate(name: &str) -> Result<()> {
    let reject = |reason| {
        let shown: String = name.chars().take(80).flat_map(char::escape_debug).collect();
        Err(Error::InvalidPartitionName { name: shown, reason })
    };
    if name.is_empty() {
        return reject("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return reject("longer than 255 bytes");
    }
    if name.chars().any(char::is_control) {
        return reject("contains a control character");
    }
    Ok(())
}

/// The directory name of partition `id`.
pub(crate) fn dir_name(id: u64) -> String {
    format!("{id:016x}")
}

/// The id a partition directory name stands for, if it is one.
pub(crate) fn parse_dir_name(name: &str) -> Option<u64> {
    if name.len() != 16
        || !name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u64::from_str_radix(name, 16).ok()
}

/// The directory of partition `id`.
pub(crate) fn partition_dir(root: &Path, id: u64) -> PathBuf {
    root.join(PARTITIONS_DIR).join(dir_name(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_and_rejected_names() {
        let long = "é".repeat(127); // 254 bytes
        for ok in [
            "users",
            "a",
            "Tenant 42",
            "../x",
            "/etc",
            "a/b",
            ".",
            "..",
            "CON",
            "日本",
            &long,
        ] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a\0",
            "a\nb",
            "\u{1b}[31m",
            "\u{7f}",
            "\u{85}",
            &"z".repeat(256),
        ] {
            assert!(
                matches!(validate(bad), Err(Error::InvalidPartitionName { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn dir_names_round_trip_and_reject_others() {
        for id in [0, 1, 255, u64::MAX] {
            assert_eq!(parse_dir_name(&dir_name(id)), Some(id));
        }
        for other in [
            "",
            "users",
            "000000000000000A",
            "0000000000000001.tmp",
            "00000000000000001",
        ] {
            assert_eq!(parse_dir_name(other), None, "{other}");
        }
    }
}
