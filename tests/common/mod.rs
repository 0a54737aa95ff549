//! Helpers shared by the integration tests (each test file that needs them
//! declares `mod common;`; not every file uses every helper).
#![allow(dead_code)]

use std::path::Path;

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
