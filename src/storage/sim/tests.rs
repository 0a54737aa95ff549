//! Unit tests of the simulated disk.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use io::ErrorKind as K;

use super::namespace::Target;
use super::{EBADF, EINVAL, EIO, EISDIR, ENOSPC, ENOTDIR, SimDisk, SimFault, SimOp};
use crate::storage::{Storage, StorageFile};

fn p(s: &str) -> &Path {
    Path::new(s)
}

/// A disk with a durable, empty `/db`.
fn disk(seed: u64) -> SimDisk {
    let d = SimDisk::with_seed(seed);
    d.create_dir(p("/db")).unwrap();
    d.sync_dir(p("/")).unwrap();
    d
}

/// Creates `path` with a durable entry and `synced` as durable content.
fn durable_file(d: &SimDisk, path: &str, synced: &[u8]) -> Arc<dyn StorageFile> {
    let f = d.create(p(path)).unwrap();
    f.write_all_at(synced, 0).unwrap();
    f.sync_data().unwrap();
    d.sync_dir(Path::new(path).parent().unwrap()).unwrap();
    f
}

fn read_all(f: &dyn StorageFile) -> Vec<u8> {
    let mut buf = vec![0; f.len().unwrap() as usize];
    f.read_exact_at(&mut buf, 0).unwrap();
    buf
}

fn errno<T>(r: io::Result<T>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

/// Whether an entry (file or directory) is at `path` in the live view; the
/// root always is, a path below a missing directory never is. Reads the
/// namespace directly: not an operation, never counted, never failed.
fn exists(d: &SimDisk, path: &str) -> bool {
    match d.st().target(p(path)) {
        Ok(Target::Root | Target::Entry(_, _, Some(_))) => true,
        Ok(Target::Entry(_, _, None)) => false,
        Err(e) if e.kind() == K::NotFound => false,
        Err(e) => panic!("exists({path}): {e}"),
    }
}

#[test]
fn round_trip_and_path_errors() {
    let d = disk(0);
    let f = d.create(p("/db/a")).unwrap();
    f.write_all_at(b"hello", 0).unwrap();
    f.write_all_at(b"xy", 7).unwrap(); // Past EOF: the gap is zero-filled.
    assert_eq!(read_all(&*f), b"hello\0\0xy");
    let err = f.read_exact_at(&mut [0; 2], 8).unwrap_err();
    assert_eq!(err.kind(), K::UnexpectedEof);
    f.set_len(4).unwrap();
    let g = d.open(p("//db/./a"), false).unwrap();
    assert_eq!(read_all(&*g), b"hell");
    assert_eq!(errno(g.write_all_at(b"z", 0)), Some(EBADF));
    assert_eq!(d.open(p("/db/b"), true).unwrap_err().kind(), K::NotFound);
    assert_eq!(d.create(p("/no/a")).unwrap_err().kind(), K::NotFound);
    assert_eq!(d.create(p("/db/../a")).unwrap_err().kind(), K::InvalidInput);
    assert_eq!(errno(d.create(p("/db"))), Some(EISDIR));
    assert_eq!(d.open(p("/db"), false).unwrap_err().kind(), K::InvalidInput);
    assert_eq!(errno(d.create(p("/db/a/x"))), Some(ENOTDIR));
    assert_eq!(d.create_dir(p("/db")).unwrap_err().kind(), K::AlreadyExists);
    assert_eq!(d.list(p("/db")).unwrap(), ["a"]);
    assert_eq!(d.list(p("/no")).unwrap_err().kind(), K::NotFound);
    assert_eq!(d.rename(p("/db/b"), p("/db/c")).unwrap_err().kind(), K::NotFound);
    assert!(exists(&d, "/db/a") && exists(&d, "/"));
    assert!(!exists(&d, "/db/b") && !exists(&d, "/no/b"));
    assert_eq!(d.list_files(), [PathBuf::from("/db/a")]);
}

#[test]
fn power_loss_keeps_synced_bytes_only() {
    let d = disk(0);
    let f = durable_file(&d, "/db/a", b"durable");
    f.write_all_at(b" lost", 7).unwrap();
    assert_eq!(d.read_file("/db/a").unwrap(), b"durable lost");
    d.power_loss(false);
    assert_eq!(d.read_file("/db/a").unwrap(), b"durable");
    // An entry synced before any data sync survives, empty.
    let g = d.create(p("/db/b")).unwrap();
    d.sync_dir(p("/db")).unwrap();
    g.write_all_at(b"unsynced", 0).unwrap();
    d.power_loss(false);
    assert_eq!(d.read_file("/db/b").unwrap(), b"");
}

#[test]
fn incremental_sync_follows_overwrites_and_truncation() {
    let d = disk(0);
    let f = durable_file(&d, "/db/a", b"abcdef");
    f.write_all_at(b"XY", 1).unwrap();
    f.write_all_at(b"gh", 6).unwrap();
    f.sync_all().unwrap();
    f.set_len(9).unwrap(); // Zero extension, unsynced.
    d.power_loss(false);
    assert_eq!(d.read_file("/db/a").unwrap(), b"aXYdefgh");
    let f = d.open(p("/db/a"), true).unwrap();
    f.set_len(2).unwrap();
    f.sync_data().unwrap();
    f.write_all_at(b"Q", 4).unwrap();
    f.sync_data().unwrap();
    // Truncated, then re-extended, unsynced: not a pure append, so even
    // a torn power loss restores exactly the synced bytes.
    f.set_len(1).unwrap();
    f.write_all_at(b"zzzzzzzz", 1).unwrap();
    d.power_loss(true);
    assert_eq!(d.read_file("/db/a").unwrap(), b"aX\0\0Q");
}

#[test]
fn entries_need_a_dir_sync() {
    let d = disk(0);
    let f = d.create(p("/db/a")).unwrap();
    f.write_all_at(b"x", 0).unwrap();
    f.sync_all().unwrap(); // The data is durable, the entry is not.
    d.create_dir(p("/db/sub")).unwrap();
    durable_file(&d, "/db/sub/b", b"y"); // Synced into an unsynced directory.
    d.power_loss(false);
    assert_eq!(d.list_files(), Vec::<PathBuf>::new());
    assert_eq!(d.list(p("/db")).unwrap(), Vec::<String>::new());
    // Once the parent is synced too, both survive.
    durable_file(&d, "/db/a", b"x");
    d.create_dir(p("/db/sub")).unwrap();
    d.sync_dir(p("/db")).unwrap();
    durable_file(&d, "/db/sub/b", b"y");
    d.power_loss(false);
    assert_eq!(
        d.list_files(),
        [PathBuf::from("/db/a"), PathBuf::from("/db/sub/b")]
    );
}

#[test]
fn rename_is_durable_only_after_dir_sync() {
    for sync in [false, true] {
        let d = disk(0);
        durable_file(&d, "/db/a", b"old");
        let t = d.create(p("/db/tmp")).unwrap();
        t.write_all_at(b"new", 0).unwrap();
        t.sync_data().unwrap();
        d.rename(p("/db/tmp"), p("/db/a")).unwrap();
        t.write_all_at(b"!", 3).unwrap(); // The handle follows the inode.
        assert_eq!(d.read_file("/db/a").unwrap(), b"new!");
        assert!(!exists(&d, "/db/tmp"));
        if sync {
            d.sync_dir(p("/db")).unwrap();
        }
        d.power_loss(false);
        let want: &[u8] = if sync { b"new" } else { b"old" };
        assert_eq!(d.read_file("/db/a").unwrap(), want);
        assert_eq!(d.list(p("/db")).unwrap(), ["a"]);
    }
}

#[test]
fn removal_is_durable_only_after_dir_sync() {
    let d = disk(0);
    let f = durable_file(&d, "/db/a", b"data");
    d.remove(p("/db/a")).unwrap();
    assert!(!exists(&d, "/db/a"));
    assert_eq!(read_all(&*f), b"data"); // Open handles keep the inode.
    d.power_loss(false);
    assert_eq!(d.read_file("/db/a").unwrap(), b"data");
    let f = d.open(p("/db/a"), true).unwrap();
    d.remove(p("/db/a")).unwrap();
    d.sync_dir(p("/db")).unwrap();
    f.write_all_at(b"more", 4).unwrap();
    assert_eq!(d.st().files.len(), 1);
    drop(f); // The last reference: the inode is collected.
    assert_eq!(d.st().files.len(), 0);
    d.power_loss(false);
    assert_eq!(d.read_file("/db/a"), None);
}

#[test]
fn create_truncation_is_an_unsynced_change() {
    let d = disk(0);
    let f = durable_file(&d, "/db/a", b"old");
    let g = d.create(p("/db/a")).unwrap();
    assert_eq!((f.len().unwrap(), g.len().unwrap()), (0, 0));
    g.write_all_at(b"n", 0).unwrap();
    d.power_loss(true); // Not a pure append: no torn bytes either.
    assert_eq!(d.read_file("/db/a").unwrap(), b"old");
    d.create(p("/db/a")).unwrap().sync_data().unwrap();
    d.power_loss(false);
    assert_eq!(d.read_file("/db/a").unwrap(), b"");
}

#[test]
fn torn_power_loss_keeps_a_prefix_of_appends() {
    let full: Vec<u8> = (0..64u8).collect();
    let mut lens = BTreeSet::new();
    for seed in 0..40 {
        let run = |torn| {
            let d = disk(seed);
            let f = durable_file(&d, "/db/a", &full[..8]);
            f.write_all_at(&full[8..40], 8).unwrap();
            f.write_all_at(&full[40..], 40).unwrap();
            d.power_loss(torn);
            d.read_file("/db/a").unwrap()
        };
        let got = run(true);
        assert!(got.len() >= 8 && full.starts_with(&got), "seed {seed}: {got:?}");
        assert_eq!(run(true), got, "seed {seed} is not deterministic");
        assert_eq!(run(false), &full[..8]);
        lens.insert(got.len());
    }
    assert!(lens.iter().any(|&l| l > 8 && l < 64), "never partial: {lens:?}");
    assert!(lens.len() > 5, "too few distinct lengths: {lens:?}");
}

#[test]
fn stale_handles_fail_and_change_nothing() {
    let d = disk(0);
    let f = durable_file(&d, "/db/a", b"abc");
    d.power_loss(false);
    let ops = d.total_ops();
    d.fail(SimOp::Write, 1, SimFault::Enospc, false);
    assert_eq!(errno(f.write_all_at(b"x", 0)), Some(EIO));
    assert_eq!(errno(f.read_exact_at(&mut [0], 0)), Some(EIO));
    assert_eq!(errno(f.set_len(0)), Some(EIO));
    assert_eq!(errno(f.sync_data()), Some(EIO));
    assert_eq!(errno(f.sync_all()), Some(EIO));
    assert_eq!(errno(f.len()), Some(EIO));
    assert_eq!((d.total_ops(), d.faults_injected()), (ops, 0));
    drop(f);
    assert_eq!(d.read_file("/db/a").unwrap(), b"abc");
    let g = d.open(p("/db/a"), true).unwrap();
    assert_eq!(errno(g.write_all_at(b"x", 0)), Some(ENOSPC)); // Still armed.
    assert_eq!(read_all(&*g), b"abc");
}

#[test]
fn process_crash_keeps_page_cache_but_invalidates_handles() {
    let d = disk(0);
    let f = durable_file(&d, "/db/a", b"synced");
    f.write_all_at(b"+cached", 6).unwrap();
    let _new = d.create(p("/db/b")).unwrap();
    d.process_crash();
    assert_eq!(errno(f.read_exact_at(&mut [0], 0)), Some(EIO));
    assert_eq!(errno(f.write_all_at(b"x", 0)), Some(EIO));
    assert_eq!(d.read_file("/db/a").unwrap(), b"synced+cached");
    assert!(exists(&d, "/db/b"));
    // Durability is unchanged: a later power loss still drops both.
    d.power_loss(false);
    assert_eq!(d.read_file("/db/a").unwrap(), b"synced");
    assert!(!exists(&d, "/db/b"));
}

#[test]
fn faults_fire_on_the_nth_op_and_persist_if_asked() {
    let d = disk(0);
    let f = d.create(p("/db/a")).unwrap();
    f.write_all_at(b"1", 0).unwrap();
    d.fail(SimOp::Write, 2, SimFault::Eio, false); // Counted from here.
    f.write_all_at(b"2", 1).unwrap();
    assert_eq!(errno(f.write_all_at(b"3", 2)), Some(EIO));
    f.write_all_at(b"4", 2).unwrap();
    assert_eq!(read_all(&*f), b"124"); // The failed write changed nothing.
    d.fail(SimOp::Read, 2, SimFault::Enospc, true);
    f.read_exact_at(&mut [0], 0).unwrap();
    for _ in 0..3 {
        assert_eq!(errno(f.read_exact_at(&mut [0], 0)), Some(ENOSPC));
    }
    d.clear_faults();
    f.read_exact_at(&mut [0], 0).unwrap();
    assert_eq!(d.faults_injected(), 4);
    assert_eq!((d.op_count(SimOp::Write), d.op_count(SimOp::Read)), (4, 6));
    // Plus `disk`'s create_dir and sync_dir, and the create.
    assert_eq!(d.total_ops(), 1 + 1 + 1 + 4 + 6);
    d.fail(SimOp::Create, 1, SimFault::ShortWrite, false); // As EIO.
    assert_eq!(errno(d.create(p("/db/b"))), Some(EIO));
    d.fail(SimOp::Rename, 1, SimFault::Eio, false);
    assert_eq!(errno(d.rename(p("/db/a"), p("/db/c"))), Some(EIO));
    assert_eq!(d.list_files(), [PathBuf::from("/db/a")]);
}

#[test]
fn short_write_writes_a_prefix() {
    let d = disk(0);
    let f = d.create(p("/db/a")).unwrap();
    f.write_all_at(b"0123", 0).unwrap();
    d.fail(SimOp::Write, 1, SimFault::ShortWrite, false);
    let err = f.write_all_at(b"abcdefghij", 4).unwrap_err();
    assert_eq!(err.kind(), K::WriteZero);
    assert_eq!(read_all(&*f), b"0123abcde");
    d.fail(SimOp::SyncData, 1, SimFault::ShortWrite, false);
    assert_eq!(errno(f.sync_data()), Some(EIO));
}

#[test]
fn failed_syncs_make_nothing_durable() {
    for op in [SimOp::SyncData, SimOp::SyncAll] {
        let d = disk(0);
        let f = durable_file(&d, "/db/a", b"old");
        f.write_all_at(b"new", 3).unwrap();
        d.fail(op, 1, SimFault::Eio, false);
        let r = if op == SimOp::SyncData {
            f.sync_data()
        } else {
            f.sync_all()
        };
        assert_eq!(errno(r), Some(EIO));
        d.power_loss(true);
        // Torn is allowed to keep a prefix of the append, nothing more.
        let got = d.read_file("/db/a").unwrap();
        assert!(b"oldnew".starts_with(&got) && got.len() >= 3);
        d.power_loss(false);
        assert_eq!(d.read_file("/db/a").unwrap(), &got[..]);
    }
    let d = disk(0);
    durable_file(&d, "/db/a", b"x");
    d.create(p("/db/b")).unwrap();
    d.fail(SimOp::SyncDir, 1, SimFault::Eio, false);
    assert_eq!(errno(d.sync_dir(p("/db"))), Some(EIO));
    d.power_loss(false);
    assert_eq!(d.list(p("/db")).unwrap(), ["a"]);
}

#[test]
fn failed_sync_then_successful_sync_persists() {
    let d = disk(0);
    let f = durable_file(&d, "/db/a", b"ab");
    f.write_all_at(b"c", 2).unwrap();
    d.fail(SimOp::SyncData, 1, SimFault::Eio, false);
    f.sync_data().unwrap_err();
    f.sync_data().unwrap();
    d.power_loss(false);
    assert_eq!(d.read_file("/db/a").unwrap(), b"abc");
}

#[test]
fn locks_block_and_are_released_by_drop_and_crashes() {
    let d = disk(0);
    let g = d.lock(p("/db/LOCK")).unwrap();
    assert!(exists(&d, "/db/LOCK"));
    assert_eq!(d.lock(p("/db/LOCK")).unwrap_err().kind(), K::WouldBlock);
    drop(g);
    let stale = d.lock(p("/db/LOCK")).unwrap();
    d.sync_dir(p("/db")).unwrap();
    d.power_loss(false);
    let g = d.lock(p("/db/LOCK")).unwrap();
    drop(stale); // Must not release the lock taken after the crash.
    assert_eq!(d.lock(p("/db/LOCK")).unwrap_err().kind(), K::WouldBlock);
    d.process_crash();
    let _h = d.lock(p("/db/LOCK")).unwrap();
    drop(g);
    assert_eq!(d.lock(p("/db/LOCK")).unwrap_err().kind(), K::WouldBlock);
    assert_eq!(errno(d.lock(p("/db"))), Some(EISDIR));
}

#[test]
fn helpers_are_durable_and_uncounted() {
    let d = SimDisk::new();
    d.create_dir(p("/db")).unwrap(); // Entry not synced.
    let ops = d.total_ops();
    d.fail(SimOp::Write, 1, SimFault::Eio, true);
    d.write_file("/db/x", b"abc").unwrap();
    d.write_file("/db/w", b"1").unwrap();
    assert_eq!(d.write_file("/no/x", b"").unwrap_err().kind(), K::NotFound);
    assert_eq!(d.total_ops(), ops);
    d.power_loss(false);
    assert_eq!(d.list_files(), [PathBuf::from("/db/w"), PathBuf::from("/db/x")]);
    assert_eq!(d.read_file("/db/x").unwrap(), b"abc");
    assert_eq!(d.read_file("/db"), None);
    // Corrupting in place: existing handles see the new bytes.
    let f = d.open(p("/db/x"), false).unwrap();
    d.write_file("/db/x", b"XYZ!").unwrap();
    assert_eq!(read_all(&*f), b"XYZ!");
}

#[test]
fn directory_renames() {
    let d = disk(0);
    d.create_dir(p("/db/p")).unwrap();
    d.write_file("/db/p/f", b"x").unwrap();
    assert_eq!(errno(d.rename(p("/db"), p("/db/p/q"))), Some(EINVAL));
    assert_eq!(errno(d.rename(p("/db/p"), p("/db/p/f"))), Some(EINVAL));
    d.create_dir(p("/q")).unwrap();
    assert_eq!(errno(d.rename(p("/db/p/f"), p("/q"))), Some(EISDIR));
    d.rename(p("/db/p"), p("/q")).unwrap();
    assert_eq!(d.list_files(), [PathBuf::from("/q/f")]);
}

#[test]
fn threads_share_handles() {
    let d = disk(0);
    let f = durable_file(&d, "/db/a", b"");
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let f = Arc::clone(&f);
            std::thread::spawn(move || {
                for i in 0..500u64 {
                    f.write_all_at(&[t; 4], (i * 4 + u64::from(t)) * 4).unwrap();
                    f.sync_data().unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    d.power_loss(false);
    let data = d.read_file("/db/a").unwrap();
    assert_eq!(data.len(), 8000);
    assert!(data.chunks(4).enumerate().all(|(i, c)| c == [(i % 4) as u8; 4]));
}

#[test]
fn halt_stops_every_operation_after_n_until_cleared() {
    let d = disk(0);
    let f = durable_file(&d, "/db/a", b"one");
    let before = d.total_ops();
    d.halt_after(2);
    f.write_all_at(b"two", 3).unwrap();
    f.sync_data().unwrap();
    // Halted: nothing changes, whatever the kind.
    assert_eq!(errno(f.write_all_at(b"three", 6)), Some(EIO));
    assert_eq!(errno(d.create(p("/db/b"))), Some(EIO));
    assert_eq!(errno(d.sync_dir(p("/db"))), Some(EIO));
    assert_eq!(d.total_ops(), before + 5, "halted operations are still counted");
    assert_eq!(d.faults_injected(), 3);
    assert_eq!(d.read_file("/db/a").unwrap(), b"onetwo");
    assert!(!exists(&d, "/db/b"));
    d.power_loss(false);
    assert_eq!(d.read_file("/db/a").unwrap(), b"onetwo");
    d.clear_faults();
    assert!(d.create(p("/db/b")).is_ok());
}

#[test]
fn fork_is_a_deep_copy_without_handles_or_faults() {
    let d = disk(0);
    let f = durable_file(&d, "/db/a", b"synced");
    f.write_all_at(b"+live", 6).unwrap();
    let _lock = d.lock(p("/db/LOCK")).unwrap();
    d.fail(SimOp::Write, 1, SimFault::Eio, true);
    let copy = d.fork(1);
    assert_eq!(copy.list_files(), d.list_files());
    assert_eq!(copy.read_file("/db/a").unwrap(), b"synced+live");
    // Its own disk: no lock held, no fault armed, and changes stay apart.
    let _other = copy.lock(p("/db/LOCK")).unwrap();
    let g = copy.open(p("/db/a"), true).unwrap();
    g.write_all_at(b"!", 0).unwrap();
    assert_eq!(copy.read_file("/db/a").unwrap(), b"!ynced+live");
    assert_eq!(d.read_file("/db/a").unwrap(), b"synced+live");
    // Durable images are copied too.
    copy.power_loss(false);
    assert_eq!(copy.read_file("/db/a").unwrap(), b"synced");
    assert_eq!(
        errno(f.write_all_at(b"x", 0)),
        Some(EIO),
        "the original keeps its fault"
    );
}

#[test]
fn fork_copies_live_and_durable_images_independently() {
    let d = disk(1);
    let f = durable_file(&d, "/db/a", b"synced");
    f.write_all_at(b"+unsynced", 6).unwrap();
    d.fail(SimOp::Write, 1, SimFault::Eio, true);
    let copy = d.fork(2);
    assert_eq!(copy.read_file("/db/a").unwrap(), b"synced+unsynced");
    assert_eq!(copy.total_ops(), 0, "counts start at zero");
    // No armed fault and no handle came along; the copy is writable.
    let g = copy.open(p("/db/a"), true).unwrap();
    g.write_all_at(b"X", 0).unwrap();
    assert_eq!(
        d.read_file("/db/a").unwrap(),
        b"synced+unsynced",
        "the original is untouched"
    );
    // The original's handle still works on the original only.
    d.clear_faults();
    f.write_all_at(b"Y", 0).unwrap();
    assert_eq!(copy.read_file("/db/a").unwrap(), b"Xynced+unsynced");
    // The durable image was copied too.
    copy.power_loss(false);
    assert_eq!(copy.read_file("/db/a").unwrap(), b"synced");
}
