//! The `catalog` target: the log decoded record by record, and opened whole.

use std::path::Path;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::format::catalog::{self as catalog_format, Decoded};
use crate::name::PARTITIONS_DIR;
use crate::storage::Backend;

/// The log record by record: each record that decodes must re-encode to
/// one of the same length that decodes to the same value.
pub(super) fn records(data: &[u8]) -> usize {
    let Ok(salt) = catalog_format::decode_header(data) else {
        return 0;
    };
    let (mut at, mut decoded) = (catalog_format::HEADER_LEN, 0);
    while at < data.len() {
        let Decoded::Record(rec, len) = catalog_format::decode_record(&data[at..], salt) else {
            break;
        };
        let mut again = Vec::new();
        rec.encode(salt, &mut again);
        assert_eq!(
            again.len(),
            len,
            "catalog record at {at} re-encodes to another length"
        );
        // Compared through their encodings: options may hold a NaN ratio,
        // which is not equal to itself.
        let Decoded::Record(back, back_len) = catalog_format::decode_record(&again, salt) else {
            panic!("re-encoded catalog record at {at} does not decode");
        };
        let mut twice = Vec::new();
        back.encode(salt, &mut twice);
        assert_eq!((twice, back_len), (again, len), "catalog record at {at} changes");
        at += len;
        decoded += 1;
    }
    decoded
}

/// The live partitions of a catalog opened from `data`, sorted by id.
fn open_catalog(fs: &Backend) -> Option<Vec<(u64, String, Vec<u8>)>> {
    let cat = Catalog::open(fs, Path::new("/db")).ok()?;
    let mut live: Vec<_> = cat
        .entries()
        .map(|e| {
            let mut options = Vec::new();
            e.options.encode(&mut options);
            (e.id, e.name.clone(), options)
        })
        .collect();
    live.sort();
    Some(live)
}

/// The log opened whole as a catalog on a fresh in-memory disk: an error,
/// or partitions that a second open (after any cut tail) finds again; and
/// checked by the offline checker first (`caskade check`), without a panic.
pub(super) fn open(data: &[u8]) -> usize {
    let disk = crate::SimDisk::new();
    let fs: Backend = Arc::new(disk.clone());
    let root = Path::new("/db");
    // A fresh in-memory disk: these cannot fail.
    fs.create_dir(root).expect("fresh disk");
    fs.create_dir(&root.join(PARTITIONS_DIR)).expect("fresh disk");
    disk.write_file(root.join(catalog_format::CATALOG_NAME), data)
        .expect("fresh disk");
    // `caskade check` reads the same log its own way, changing nothing:
    // it must not panic either.
    if let Ok(offline) = crate::OfflineDb::open_simulated(root, &disk) {
        let _ = offline.check();
    }
    let Some(first) = open_catalog(&fs) else {
        return 0;
    };
    for (id, name, _) in &first {
        assert!(
            crate::name::validate(name).is_ok(),
            "partition {id} has name {name:?}"
        );
    }
    assert_eq!(
        open_catalog(&fs).as_ref(),
        Some(&first),
        "a reopened catalog differs"
    );
    first.len()
}
