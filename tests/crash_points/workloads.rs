//! The workloads whose every crash point is explored. Each is small enough
//! to be re-run once per I/O step, and large enough to rotate files (4 KiB
//! files), write hints, compact, and create and drop partitions.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::history::Step;

fn val(tag: &str, i: usize) -> String {
    // ~100 bytes, unique per write, so that a value from the wrong write shows.
    format!("{tag}-{i}-{}", "v".repeat(90))
}

fn key(i: usize) -> String {
    format!("k{i:02}")
}

fn put(p: &str, k: usize, tag: &str, i: usize) -> Step {
    Step::Put(p.into(), key(k), val(tag, i))
}

/// Durable puts and deletes over 12 keys, enough to rotate the active file
/// four times (overwrites, deletes of present and absent keys).
pub fn puts() -> Vec<Step> {
    let mut s = vec![Step::Create("p".into())];
    for i in 0..140 {
        s.push(match i % 7 {
            3 => Step::Delete("p".into(), key((i * 5) % 12)),
            _ => put("p", (i * 7) % 12, "put", i),
        });
    }
    s
}

/// Atomic batches (puts and deletes, a key written twice in one batch) and
/// groups of concurrent puts that share one fsync.
pub fn batches() -> Vec<Step> {
    let mut s = vec![Step::Create("p".into())];
    for i in 0..28 {
        if i % 2 == 0 {
            let ops = (0..6)
                .map(|j| {
                    let k = key((i * 3 + j) % 10);
                    match j {
                        4 => (key((i + 1) % 10), None),
                        5 => (key((i * 3) % 10), Some(val("again", i))),
                        _ => (k, Some(val("batch", i * 10 + j))),
                    }
                })
                .collect();
            s.push(Step::Batch("p".into(), ops));
        } else {
            let puts = (0..4)
                .map(|j| (key(10 + j + (i % 3)), val("group", i * 10 + j)))
                .collect();
            s.push(Step::Group("p".into(), puts));
        }
    }
    s
}

/// Puts across rotations with reopens in between (recovery from hints and
/// from the rotated active file, and of a torn tail), then more writes on
/// the reopened files.
pub fn rotation() -> Vec<Step> {
    let mut s = vec![Step::Create("p".into())];
    for i in 0..120 {
        s.push(put("p", i % 16, "rot", i));
        if i % 30 == 29 {
            s.push(Step::Reopen);
        }
        if i % 30 == 14 {
            s.push(Step::TearTail("p".into()));
        }
        if i % 9 == 4 {
            s.push(Step::Delete("p".into(), key((i + 3) % 16)));
        }
    }
    s
}

/// Overwrites and deletes, a compaction, writes during the compacted
/// state, a second compaction, and a reopen.
pub fn compaction() -> Vec<Step> {
    let mut s = vec![Step::Create("p".into())];
    for i in 0..96 {
        s.push(put("p", i % 12, "fill", i));
    }
    for k in [1, 4, 7] {
        s.push(Step::Delete("p".into(), key(k)));
    }
    s.push(Step::Compact("p".into()));
    for i in 0..10 {
        s.push(put("p", i % 5, "after", i));
    }
    s.push(Step::Delete("p".into(), key(2)));
    s.push(Step::Compact("p".into()));
    s.push(Step::Reopen);
    s.push(put("p", 9, "last", 0));
    s
}

/// Partition churn: create, fill, drop, re-create under the same name (a
/// new, empty partition), drop another, reopen — three rounds.
pub fn partitions() -> Vec<Step> {
    let mut s = vec![Step::Create("a".into()), Step::Create("b".into())];
    for round in 0..3 {
        let tag = |t: &str| format!("{t}{round}");
        for i in 0..8 {
            s.push(put(["a", "b"][i % 2], i, &tag("first"), i));
        }
        s.push(Step::Drop("a".into()));
        s.push(Step::Create("c".into()));
        s.push(put("c", 0, &tag("c"), 0));
        s.push(Step::Create("a".into()));
        s.push(put("a", 1, &tag("second"), 1));
        s.push(Step::Drop("b".into()));
        s.push(Step::Reopen);
        s.push(put("a", 2, &tag("second"), 2));
        s.push(Step::Drop("c".into()));
        s.push(Step::Create("b".into()));
        s.push(put("b", 3, &tag("second"), 3));
    }
    s
}

/// `len` steps of every kind at random (from `seed`) over three partitions: puts,
/// deletes, batches, groups, compactions, drops and re-creates, reopens.
pub fn mixed(seed: u64, len: usize) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let names = ["x", "y", "z"];
    let mut live = [true; 3];
    let mut s: Vec<Step> = names.iter().map(|n| Step::Create((*n).into())).collect();
    for i in 0..len {
        let w = rng.random_range(0..3);
        let p = names[w];
        if !live[w] {
            s.push(Step::Create(p.into()));
            live[w] = true;
            continue;
        }
        let k = rng.random_range(0..10);
        s.push(match rng.random_range(0..100) {
            0..45 => put(p, k, "mixed", i),
            45..60 => Step::Delete(p.into(), key(k)),
            60..72 => Step::Batch(
                p.into(),
                (0..4)
                    .map(|j| (key((k + j) % 10), (j != 2).then(|| val("mb", i * 10 + j))))
                    .collect(),
            ),
            72..84 => Step::Group(
                p.into(),
                (0..3).map(|j| (key(10 + j), val("mg", i * 10 + j))).collect(),
            ),
            84..91 => Step::Compact(p.into()),
            91..96 => {
                live[w] = false;
                Step::Drop(p.into())
            }
            96..98 => Step::TearTail(p.into()),
            _ => Step::Reopen,
        });
    }
    s
}

/// Every workload, by name.
pub fn all() -> Vec<(&'static str, Vec<Step>)> {
    vec![
        ("puts", puts()),
        ("batches", batches()),
        ("rotation", rotation()),
        ("compaction", compaction()),
        ("partitions", partitions()),
        ("mixed-a", mixed(6, 90)),
        ("mixed-b", mixed(7, 90)),
        ("mixed-c", mixed(8, 90)),
    ]
}
