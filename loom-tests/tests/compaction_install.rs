#![cfg(caskade_loom)]
//! Model 4: compaction install vs writer and reader.
//!
//! The actor (the model's main thread) begins a compaction, commits a write
//! while the copy runs on its own thread, then installs the copy's output;
//! a reader on its own handle loads versions throughout and keeps an old one
//! across the install. Invariants checked in every interleaving:
//! - no lost update: a write made during the compaction (an overwrite and a
//!   delete) wins over the copy's older record, in the installed version and
//!   in every version a reader sees (values never go back in time, and every
//!   key not deleted stays present);
//!   the write races the copy's catch-up too (which takes logged keys from
//!   the current published version), so logging a key before publishing it
//!   fails this model;
//! - no read from an unlinked file: a reader holding a version can always
//!   finish its read, and every file the version holds (in particular the
//!   one it reads from) is still on disk while the version is held, even
//!   after the install replaced it;
//! - each obsolete file is deleted exactly once: once every version holding
//!   them is gone, every input's data file and hint are gone, the reaper has
//!   deleted exactly one file per input and owes nothing, and the disk saw
//!   exactly one removal per input file present at the install (none hit a
//!   missing file, none removed anything else).

use caskade::__loom::{Version, VersionCell, Writer, data_file_path, hint_file_path};
use caskade::{SimDisk, SimOp};
use loom::thread;

/// The partition's directory.
const DIR: &str = "/p";

/// Generation of the last setup commit: open publishes 1, then four puts.
const SETUP_GEN: u64 = 5;
/// Generation of the write made while the copy runs.
const WRITE_GEN: u64 = 6;
/// Generation the install publishes.
const INSTALL_GEN: u64 = 7;

/// The state every version of generation `g` must hold, key by key.
fn expected(g: u64) -> [(&'static [u8], Option<&'static [u8]>); 3] {
    match g {
        SETUP_GEN => [(b"a", Some(b"2")), (b"k", Some(b"1")), (b"d", Some(b"1"))],
        WRITE_GEN | INSTALL_GEN => [(b"a", Some(b"2")), (b"k", Some(b"2")), (b"d", None)],
        g => panic!("unexpected generation {g}"),
    }
}

/// Whether data file `id` is still on disk (linked in the directory).
fn on_disk(disk: &SimDisk, id: u32) -> bool {
    disk.read_file(data_file_path(DIR, id)).is_some()
}

/// Every file `v` holds is still on disk.
fn assert_held_files_on_disk(v: &Version, disk: &SimDisk, when: &str) {
    for id in v.file_ids() {
        assert!(
            on_disk(disk, id),
            "generation {}: file {id}, which it holds, was deleted {when}",
            v.generation()
        );
    }
}

/// Reads every key through `v` and checks it against its generation.
fn check(v: &Version, disk: &SimDisk) {
    let g = v.generation();
    assert!(
        v.is_consistent(),
        "generation {g}: index names a file it does not hold"
    );
    assert_held_files_on_disk(v, disk, "before the read");
    for (key, want) in expected(g) {
        let file = v.file_of(key);
        let got = v
            .get(key)
            .unwrap_or_else(|e| panic!("generation {g}: a held version could not finish its read: {e}"));
        assert_eq!(
            got.as_deref(),
            want,
            "generation {g}, key {}",
            String::from_utf8_lossy(key)
        );
        if let Some(id) = file {
            assert!(
                on_disk(disk, id),
                "generation {g}: read from file {id} after it was unlinked"
            );
        }
    }
    assert_held_files_on_disk(v, disk, "after the read");
}

/// Loads three times, reading the first version again after each later
/// load (so an old version is read while, or after, the install replaces
/// its files), then drops them all (maybe as the last holder of the inputs).
fn reader(cell: &VersionCell, disk: &SimDisk) {
    let first = cell.load();
    check(&first, disk);
    let mut last = first.generation();
    for _ in 0..2 {
        let next = cell.load();
        assert!(
            last <= next.generation(),
            "generation went backwards: {last} then {}",
            next.generation()
        );
        last = next.generation();
        check(&next, disk);
        check(&first, disk);
    }
}

#[test]
fn install_vs_writer_and_reader() {
    loom::model(|| {
        let disk = SimDisk::new();
        // max_file_size 1: every commit first seals the active file, so each
        // record is alone in its file and the compaction has several inputs.
        let mut w = Writer::open(&disk, DIR, 1).unwrap();
        w.put(b"a", b"1").unwrap();
        w.put(b"k", b"1").unwrap();
        w.put(b"d", b"1").unwrap();
        w.put(b"a", b"2").unwrap(); // a=1 is dead: something to reclaim.
        let r = {
            let (cell, disk) = (w.cell(), disk.clone());
            thread::spawn(move || reader(&cell, &disk))
        };

        let job = w.begin_compaction().unwrap().expect("dead bytes to reclaim");
        let inputs = job.input_ids();
        assert_eq!(inputs, [1, 2, 3, 4, 5], "the empty first file and one per put");
        let copier = thread::spawn(move || job.run());
        // Written while the copy runs: both must beat the copy's records.
        w.commit_batch(&[(b"k", Some(b"2")), (b"d", None)]).unwrap();
        let out = copier.join().unwrap().unwrap();
        let outputs = out.file_ids();

        // Nothing is obsolete yet; count what the reaper will have to remove.
        assert_eq!((w.reaper_deleted(), w.reaper_owed()), (0, 0));
        let paths = inputs
            .iter()
            .flat_map(|&id| [data_file_path(DIR, id), hint_file_path(DIR, id)]);
        let present = paths.filter(|p| disk.read_file(p).is_some()).count() as u64;
        assert!(present >= inputs.len() as u64, "every input's data file exists");
        let removes = disk.op_count(SimOp::Remove);

        let report = w.install(out).unwrap();
        assert_eq!(report.files_compacted, inputs.len());
        assert_eq!(report.records_copied, 3, "a=2, k=1, d=1 as of the beginning");
        r.join().unwrap();

        let current = w.cell().load();
        assert_eq!(current.generation(), INSTALL_GEN);
        check(&current, &disk);
        let held = current.file_ids();
        assert!(
            inputs.iter().all(|id| !held.contains(id)),
            "an input is still listed"
        );
        assert!(outputs.iter().all(|id| held.contains(id)), "an output is missing");
        drop(current);

        // Every version that held the inputs is gone: each was deleted, once.
        for &id in &inputs {
            assert!(!on_disk(&disk, id), "input {id} never deleted");
            assert!(
                disk.read_file(hint_file_path(DIR, id)).is_none(),
                "hint of input {id} never deleted"
            );
        }
        assert_eq!(w.reaper_deleted(), inputs.len(), "deletions");
        assert_eq!(w.reaper_owed(), 0, "deletions still owed");
        assert_eq!(
            disk.op_count(SimOp::Remove) - removes,
            present,
            "removals: one per input file present at the install"
        );
        drop(w);
    });
}
