#![cfg(caskade_loom)]
//! Model 1: snapshot publication vs readers.
//!
//! Invariants checked in every interleaving loom explores:
//! - a reader never sees generations go backwards (two loads in program
//!   order return non-decreasing generations);
//! - every loaded version is internally consistent: each index entry names a
//!   file the same version holds open, and reading any key through it gives
//!   exactly the state of that generation (no torn or future state);
//! - a version a reader holds is never freed under it, and an old version is
//!   freed as soon as its last reader drops it (checked with per-generation
//!   drop flags and `Arc::strong_count`; loom's leak check at the end of
//!   each execution catches any `Arc` that is never freed).

use caskade::__loom::{Cell, Version, Writer};
use caskade::SimDisk;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

/// Generations published by the payload model: 1 (initial), 2 and 3.
const GENS: usize = 3;

/// A tiny payload that records its own drop.
struct Payload {
    generation: u64,
    freed: Arc<[AtomicBool; GENS + 1]>,
}

impl Drop for Payload {
    fn drop(&mut self) {
        let was = self.freed[self.generation as usize].swap(true, Ordering::AcqRel);
        assert!(!was, "generation {} freed twice", self.generation);
    }
}

fn payload(generation: u64, freed: &Arc<[AtomicBool; GENS + 1]>) -> Arc<Payload> {
    Arc::new(Payload {
        generation,
        freed: Arc::clone(freed),
    })
}

/// Loads twice and checks monotonicity and that held values stay alive.
fn reader(cell: &Cell<Payload>) {
    let a = cell.load();
    let b = cell.load();
    assert!(
        a.generation <= b.generation,
        "generation went backwards: {} then {}",
        a.generation,
        b.generation
    );
    for p in [&a, &b] {
        assert!((1..=GENS as u64).contains(&p.generation));
        assert!(
            !p.freed[p.generation as usize].load(Ordering::Acquire),
            "generation {} freed while a reader holds it",
            p.generation
        );
    }
}

/// The bare cell: one publisher, two readers.
#[test]
fn cell_publish_vs_readers() {
    loom::model(|| {
        let freed = Arc::new([(); GENS + 1].map(|()| AtomicBool::new(false)));
        let cell = Arc::new(Cell::new(Payload {
            generation: 1,
            freed: Arc::clone(&freed),
        }));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let cell = Arc::clone(&cell);
                thread::spawn(move || reader(&cell))
            })
            .collect();
        for g in 2..=GENS as u64 {
            cell.publish(payload(g, &freed));
        }
        readers.into_iter().for_each(|r| r.join().unwrap());

        // Every reader is gone: each superseded generation has been freed,
        // the current one lives on in the cell alone.
        for g in 1..GENS {
            assert!(freed[g].load(Ordering::Acquire), "generation {g} leaked");
        }
        assert!(!freed[GENS].load(Ordering::Acquire));
        let current = cell.load();
        assert_eq!(current.generation, GENS as u64);
        assert_eq!(Arc::strong_count(&current), 2, "cell + this load only");
        drop(current);
        drop(cell);
        assert!(freed[GENS].load(Ordering::Acquire), "last generation not freed");
    });
}

/// What a version of generation `g` must contain in the writer model.
fn check_version(v: &Version) {
    assert!(
        v.is_consistent(),
        "generation {}: index names a file it does not hold",
        v.generation()
    );
    let g = v.generation();
    let want_a: Option<&[u8]> = (g >= 2).then_some(b"1");
    let want_b: Option<&[u8]> = (g >= 3).then_some(b"2");
    assert_eq!(v.get(b"a").unwrap().as_deref(), want_a, "generation {g}, key a");
    assert_eq!(v.get(b"b").unwrap().as_deref(), want_b, "generation {g}, key b");
    assert_eq!(v.len(), (g - 1) as usize);
}

/// The real writer, rotating to a new data file before every commit (so each
/// version holds a different file set), against two readers loading twice.
#[test]
fn writer_publish_vs_readers() {
    loom::model(|| {
        let disk = SimDisk::new();
        // max_file_size 1: every commit first seals the active file.
        let mut w = Writer::open(&disk, "/p", 1).unwrap();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let cell = w.cell();
                thread::spawn(move || {
                    let a = cell.load();
                    let b = cell.load();
                    assert!(a.generation() <= b.generation(), "generation went backwards");
                    check_version(&a);
                    check_version(&b);
                    b
                })
            })
            .collect();
        w.put(b"a", b"1").unwrap();
        w.put(b"b", b"2").unwrap();
        let held: Vec<Version> = readers.into_iter().map(|r| r.join().unwrap()).collect();

        let current = w.cell().load();
        assert_eq!(current.generation(), 3);
        check_version(&current);
        assert_eq!(current.file_ids(), [1, 2, 3]);
        // Each version is referenced exactly by its holders (plus the cell and
        // `current` for the newest): nothing keeps a superseded one alive.
        for h in &held {
            let holders = held.iter().filter(|o| o.generation() == h.generation()).count();
            let extra = if h.generation() == 3 { 2 } else { 0 };
            assert_eq!(h.strong_count(), holders + extra, "generation {}", h.generation());
        }
        drop(held);
        assert_eq!(current.strong_count(), 2, "cell + this load only");
    });
}
