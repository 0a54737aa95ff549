#![cfg(caskade_loom)]
//! Model 6: poison is sticky.
//!
//! Invariant: after an injected write failure, no later commit or sync
//! succeeds (even once the fault is cleared, and without touching the disk
//! again), and no version is published for the failed write or any later
//! one; meanwhile a concurrent reader keeps reading the acknowledged data
//! from the last published version.

use caskade::__loom::{VersionCell, Writer};
use caskade::{Error, SimDisk, SimFault, SimOp};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

/// The acknowledged value of `k`.
const ACKED: &[u8] = b"acked";

/// A reader on its own handle, racing the whole writer thread: it sees the
/// empty first version or the acknowledged one, never anything later, and
/// once it has seen the acknowledgement, only the acknowledged one.
fn reader(cell: &VersionCell, acked: &AtomicBool) {
    for _ in 0..2 {
        let seen_ack = acked.load(Ordering::Acquire);
        let v = cell.load();
        let g = v.generation();
        assert!(g <= 2, "generation {g} published after the failure");
        assert!(v.is_consistent(), "generation {g} is inconsistent");
        let value = v.get(b"k").unwrap();
        if g == 1 {
            assert!(!seen_ack, "acknowledged write not visible");
            assert_eq!(value, None);
        } else {
            assert_eq!(value.as_deref(), Some(ACKED));
        }
    }
}

/// Drives the writer into `fault` and checks that it stays poisoned.
fn poison_with(fault: SimFault) {
    loom::model(move || {
        let disk = SimDisk::new();
        let mut w = Writer::open(&disk, "/p", 64 << 20).unwrap();
        let cell = w.cell();
        let acked = Arc::new(AtomicBool::new(false));
        let r = {
            let (cell, acked) = (w.cell(), Arc::clone(&acked));
            thread::spawn(move || reader(&cell, &acked))
        };
        let writer = {
            let (disk, acked) = (disk.clone(), Arc::clone(&acked));
            thread::spawn(move || {
                w.put(b"k", ACKED).unwrap(); // Generation 2.
                acked.store(true, Ordering::Release);

                disk.fail(SimOp::Write, 1, fault, false);
                let err = w.put(b"k", b"lost").unwrap_err();
                assert!(
                    matches!(err, Error::Io { .. }),
                    "first failure is the I/O error: {err:?}"
                );
                assert_eq!(disk.faults_injected(), 1);
                disk.clear_faults();
                let io = || (disk.op_count(SimOp::Write), disk.op_count(SimOp::SyncData));
                let before = io();
                let poisoned = |r: caskade::Result<()>| matches!(r, Err(Error::Poisoned { .. }));
                assert!(poisoned(w.put(b"k", b"later")));
                assert!(poisoned(w.put(b"other", b"x")));
                assert!(poisoned(w.delete(b"k").map(drop)));
                assert!(poisoned(w.commit_batch(&[(b"a", Some(b"1")), (b"k", None)])));
                assert!(poisoned(w.sync()));
                // Refused without any further I/O: nothing written, no sync retried.
                assert_eq!(io(), before);
                w
            })
        };

        r.join().unwrap();
        let w = writer.join().unwrap();
        // Afterwards too: the acknowledged version is the last one.
        reader(&cell, &acked);
        let v = cell.load();
        assert_eq!(v.generation(), 2);
        drop(w);
    });
}

/// The write fails with `EIO` and changes nothing on disk.
#[test]
fn eio_write_poisons_for_good() {
    poison_with(SimFault::Eio);
}

/// The write lands half its bytes, then fails: the torn bytes are never
/// indexed, so readers are unaffected.
#[test]
fn short_write_poisons_for_good() {
    poison_with(SimFault::ShortWrite);
}
