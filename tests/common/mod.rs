//! Helpers shared by the integration tests (each test file that needs them
//! declares `mod common;`; not every file uses every helper).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use caskade::{Db, Durability};

/// Opens `root` with 4 KiB data files (so a few hundred records rotate
/// several times) and no fsync per commit (tests that need durability under
/// power loss use `SimDisk`).
pub async fn open_small_files(root: &Path) -> caskade::Result<Db> {
    Db::builder(root)
        .max_file_size(4096)
        .durability(Durability::OsBuffered)
        .open()
        .await
}

/// Copies a directory tree (a database) with `std::fs`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dst = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dst);
        } else {
            std::fs::copy(entry.path(), &dst).unwrap();
        }
    }
}

/// The directory of the durable partition `name` of the open `db`, checked
/// to be `<root>/partitions/<id as 16 lowercase hex digits>`.
pub fn partition_dir(db: &Db, name: &str) -> PathBuf {
    let dir = db
        .describe_partition(name)
        .expect("the partition exists")
        .dir
        .expect("a durable partition has a directory");
    assert_eq!(
        dir.parent(),
        Some(db.path().join("partitions").as_path()),
        "{name}: {dir:?}"
    );
    let leaf = dir.file_name().unwrap().to_str().unwrap();
    assert!(
        leaf.len() == 16
            && leaf
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{name}: directory {leaf:?} is not a 16-hex-digit id"
    );
    dir
}

/// [`partition_dir`] relative to the root: valid in copies of the database.
pub fn partition_subdir(db: &Db, name: &str) -> PathBuf {
    partition_dir(db, name)
        .strip_prefix(db.path())
        .unwrap()
        .to_path_buf()
}

/// The data files (`*.data`) in `dir`, sorted by name.
pub fn data_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".data"))
        .collect();
    names.sort();
    names
}
