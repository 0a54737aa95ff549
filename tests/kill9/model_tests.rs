//! The kill -9 model on hand-written transcripts: each kind of violation is
//! reported as such, and what is allowed passes.

use crate::model::{Findings, Model, Observed};
use crate::protocol::{self, Line};

const SEED: u64 = 5;

fn lines(text: &str) -> Vec<Line> {
    text.lines()
        .map(|l| protocol::parse(l.trim()).expect("test line parses"))
        .collect()
}

/// A model after one child that created `s0`, then ran `ops` (lines after `ready`).
fn run(ops: &str, observed: &Observed) -> Findings {
    let mut model = Model::default();
    let cycle = model
        .apply(
            SEED,
            &lines(&format!("open\nready 1\nbegin 0 create s0\nack 0\n{ops}")),
        )
        .expect("valid transcript");
    model.check(cycle, observed)
}

/// An observation of `s0` holding `entries` (key, id, pad) written by `SEED`.
fn holding(entries: &[(&str, u64, usize)]) -> Observed {
    let mut o = Observed::default();
    let part = o.parts.entry("s0".into()).or_default();
    for &(key, id, pad) in entries {
        part.insert(key.into(), protocol::value("s0", key, SEED, id, pad));
    }
    o
}

fn counts(f: &Findings) -> [u64; 4] {
    [f.lost, f.resurrected, f.torn, f.phantom]
}

#[test]
fn the_exact_state_passes() {
    let f = run(
        "begin 1 put s0 k 3\nack 1\nbegin 2 put s0 j 0\nack 2\n",
        &holding(&[("k", 1, 3), ("j", 2, 0)]),
    );
    assert_eq!((counts(&f), f.keys_checked), ([0; 4], 2));
}

#[test]
fn a_missing_or_stale_acknowledged_put_is_lost() {
    let ops = "begin 1 put s0 k 3\nack 1\nbegin 2 put s0 k 4\nack 2\n";
    assert_eq!(counts(&run(ops, &holding(&[]))), [1, 0, 0, 0]);
    assert_eq!(counts(&run(ops, &holding(&[("k", 1, 3)]))), [1, 0, 0, 0]);
    let mut gone = holding(&[]);
    gone.parts.clear();
    assert_eq!(
        counts(&run(ops, &gone)),
        [1, 0, 0, 0],
        "the acknowledged create is lost"
    );
}

#[test]
fn a_deleted_key_or_dropped_partition_back_is_resurrected() {
    let ops = "begin 1 put s0 k 3\nack 1\nbegin 2 del s0 k\nack 2\n";
    assert_eq!(counts(&run(ops, &holding(&[("k", 1, 3)]))), [0, 1, 0, 0]);
    let dropped = "begin 1 put s0 k 3\nack 1\nbegin 2 drop s0\nack 2\n";
    assert_eq!(counts(&run(dropped, &holding(&[]))), [0, 1, 0, 0]);
    assert_eq!(counts(&run(dropped, &Observed::default())), [0; 4]);
}

#[test]
fn garbled_misplaced_and_never_begun_values_are_caught() {
    let ops = "begin 1 put s0 k 3\nack 1\n";
    let mut o = holding(&[("k", 1, 3)]);
    o.parts.get_mut("s0").unwrap().get_mut("k").unwrap()[2] ^= 1;
    assert_eq!(counts(&run(ops, &o)), [0, 0, 1, 0], "a flipped bit");
    let mut o = holding(&[]);
    o.parts
        .get_mut("s0")
        .unwrap()
        .insert("k".into(), protocol::value("s0", "j", SEED, 1, 3));
    assert_eq!(counts(&run(ops, &o)), [0, 0, 1, 0], "another key's value");
    assert_eq!(
        counts(&run(ops, &holding(&[("k", 9, 3)]))),
        [0, 0, 0, 1],
        "id 9 never begun"
    );
    assert_eq!(
        counts(&run(ops, &holding(&[("k", 1, 3), ("z", 1, 0)]))),
        [0, 0, 0, 1],
        "key z never written"
    );
}

#[test]
fn an_operation_in_flight_may_go_either_way_but_then_stays() {
    let mut model = Model::default();
    let t = "open\nready 1\nbegin 0 create s0\nack 0\nbegin 1 put s0 k 3\n";
    let cycle = model.apply(SEED, &lines(t)).unwrap();
    let f = model.check(cycle, &holding(&[("k", 1, 3)]));
    assert_eq!((counts(&f), f.unacked_applied), ([0; 4], 1));
    // Resolved as applied: a later recovery without it has lost it.
    let cycle = model.apply(SEED + 1, &lines("open\n")).unwrap();
    assert_eq!(counts(&model.check(cycle, &holding(&[]))), [1, 0, 0, 0]);

    let f = run("begin 1 put s0 k 3\n", &holding(&[]));
    assert_eq!((counts(&f), f.unacked_dropped), ([0; 4], 1));
}

#[test]
fn a_batch_applied_in_part_is_torn() {
    let batch = "begin 1 batch s0 +k:1 +j:2 -i\n";
    assert_eq!(counts(&run(batch, &holding(&[("k", 1, 1), ("j", 1, 2)]))), [0; 4]);
    assert_eq!(counts(&run(batch, &holding(&[]))), [0; 4]);
    // k new, j not: torn; resolved as applied, so j is also lost.
    assert_eq!(counts(&run(batch, &holding(&[("k", 1, 1)]))), [1, 0, 1, 0]);
}

#[test]
fn transcripts_that_break_the_protocol_are_rejected() {
    for bad in [
        "open\nbegin 0 create s0\n",
        "open\nready 1\nack 3\n",
        "open\nready 1\nbegin 0 put s0 k 1\n",
        "open\nready 1\nbegin 0 create s0\nbegin 1 put s0 k 1\n",
        "open\nready 1\nbegin 0 create s0\nack 0\nbegin 1 put s0 k 1\nbegin 2 del s0 k\n",
        "open\nready 1\nbegin 0 create s0\nack 0\nbegin 0 put s0 k 1\n",
        "open\nready 1\nbegin 0 create s0\nack 0\nbegin 1 create s0\n",
    ] {
        assert!(
            Model::default().apply(SEED, &lines(bad)).is_err(),
            "{bad:?} accepted"
        );
    }
}
