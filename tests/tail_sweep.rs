//! Tail sweep (issue 6, section 4): the active data file of a small
//! database cut at every offset, and with bytes appended after its valid end
//! (zeros, random garbage, a copy of the last write set with one bit
//! flipped, a torn copy of its last record, each record of a sealed file of
//! the same partition, each record of another partition, garbage followed by
//! a valid copy): reopening keeps exactly the valid prefix — every write set
//! wholly before the cut with its values, nothing after it, no torn batch in
//! part — the file is truncated to that prefix, the partition then takes
//! writes, and a power loss right after them keeps them.
//!
//! The database is built once on a `SimDisk`; each case damages a fork of
//! it. Expectations come from the ledger (`common/ledger.rs`).
//! `CASKADE_SWEEP_SOAK=1` adds more garbage tails and longer workloads.
//!
//! Summary line: `reliability: harness=tails cases=N ...`.

mod crash_harness;
#[path = "common/ledger.rs"]
mod ledger;
#[path = "common/watch.rs"]
mod watch;

use std::path::PathBuf;
use std::time::Instant;

use caskade::{Partition, PartitionOptions, SimDisk};
use crash_harness::open;
use ledger::{Cut, Diff, FILE_HEADER, Ledger, Op, State, data_path, records};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// The partition whose active file is damaged, and the other one.
const P: &str = "p";
const Q: &str = "q";

fn soak() -> bool {
    std::env::var_os("CASKADE_SWEEP_SOAK").is_some_and(|v| v == "1")
}

/// A closed database: `p` with a sealed file and an active one holding
/// puts, deletes and batches; `q` with a few records.
struct Fixture {
    disk: SimDisk,
    ledger: Ledger,
    p_dir: PathBuf,
    q_dir: PathBuf,
    sealed: u32,
    active: u32,
    /// The active file's bytes.
    bytes: Vec<u8>,
}

/// The write sets appended to `p`'s active file, `rounds` times over.
fn tail_workload(rounds: usize) -> Vec<Vec<Op>> {
    let mut sets = Vec::new();
    for r in 0..rounds {
        let v = |s: &str| format!("{s}-{r}");
        sets.extend([
            vec![Op::put("a", v("1"))],
            vec![Op::put("b", "")],
            vec![Op::put("s03", v("over"))],
            vec![Op::put("c", "ccc"), Op::put("a", v("a2")), Op::del("b")],
            vec![Op::del("s05")],
            vec![Op::put("e", v("a longer value of forty bytes or so....."))],
            vec![Op::del("a"), Op::put("c", v("c3"))],
            vec![Op::put("f", "ffff")],
            vec![Op::put("g", "g"), Op::del("zz"), Op::put("h", v("hh"))],
            vec![Op::put("a", v("a4"))],
            vec![Op::del("c")],
            vec![
                Op::put("b", v("b5")),
                Op::put("e", "e5"),
                Op::put("f", ""),
                Op::put("i", "iii"),
                Op::del("h"),
            ],
            vec![Op::put("j", "j1")],
            vec![Op::put("j", v("j2"))],
            vec![Op::del("e")],
            vec![Op::put("k", "k"), Op::put("l", v("ll"))],
            vec![Op::put("m", "")],
            vec![Op::del("m")],
            vec![Op::put("s07", v("new"))],
            vec![Op::put("o", "o"), Op::del("a"), Op::put("p", v("last"))],
        ]);
    }
    sets
}

async fn fixture() -> caskade::Result<Fixture> {
    let disk = SimDisk::with_seed(11);
    let db = open(&disk).await?;
    let p = db
        .create_partition(P, PartitionOptions::default().max_file_size(4096))
        .await?;
    let q = db.partition(Q).await?;
    let dir = |name: &str| db.describe_partition(name).unwrap().dir.unwrap();
    let (p_dir, q_dir) = (dir(P), dir(Q));
    let mut ledger = Ledger::default();
    // Fill the first file until the partition rotates.
    let mut i = 0;
    while ledger.files(P).len() < 2 {
        let op = Op::put(format!("s{i:02}"), format!("sealed value {i} {}", "#".repeat(60)));
        ledger.write(&disk, &p_dir, P, &p, vec![op]).await?;
        i += 1;
    }
    for set in tail_workload(if soak() { 4 } else { 1 }) {
        ledger.write(&disk, &p_dir, P, &p, set).await?;
    }
    for set in [
        vec![Op::put("q-1", "from q")],
        vec![Op::put("q-2", "from q too")],
        vec![Op::put("q-3", "z"), Op::del("q-1")],
    ] {
        ledger.write(&disk, &q_dir, Q, &q, set).await?;
    }
    db.close().await?;
    let files = ledger.files(P);
    assert_eq!(
        files.len(),
        2,
        "the tail workload stays in one active file: {files:?}"
    );
    ledger.verify_places(&disk, &p_dir, P);
    ledger.verify_places(&disk, &q_dir, Q);
    let bytes = disk.read_file(data_path(&p_dir, files[1])).unwrap();
    Ok(Fixture {
        disk,
        ledger,
        p_dir,
        q_dir,
        sealed: files[0],
        active: files[1],
        bytes,
    })
}

/// One damaged active file: its content, and the offset the ledger's cut
/// is taken at (the truncation offset, or the end of the valid file for an
/// appended tail).
struct Case {
    what: String,
    content: Vec<u8>,
    cut: u64,
}

fn cases(fx: &Fixture) -> Vec<Case> {
    let b = &fx.bytes;
    let full = b.len() as u64;
    let mut out: Vec<Case> = (0..=b.len())
        .map(|t| Case {
            what: format!("truncated at {t}"),
            content: b[..t].to_vec(),
            cut: t as u64,
        })
        .collect();
    let mut tail = |what: String, tail: &[u8]| {
        out.push(Case {
            what,
            content: [&b[..], tail].concat(),
            cut: full,
        })
    };
    for n in [1, 8, 24, 25, 26, 64, 512] {
        tail(format!("{n} zeros appended"), &vec![0; n]);
    }
    let mut rng = StdRng::seed_from_u64(5);
    for i in 0..if soak() { 1000 } else { 40 } {
        let n = rng.random_range(1..=300);
        let garbage: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        tail(format!("garbage #{i} ({n} bytes) appended"), &garbage);
    }
    // The last write set (a batch), copied with one bit flipped.
    let last_start = fx.ledger.places(P, fx.active).iter().rev().nth(1).unwrap().end as usize;
    let last_set = &b[last_start..];
    for bit in 0..last_set.len() * 8 {
        let mut copy = last_set.to_vec();
        copy[bit / 8] ^= 1 << (bit % 8);
        tail(
            format!("copy of the last write set with bit {bit} flipped"),
            &copy,
        );
    }
    let recs = records(b);
    let last = recs.last().unwrap();
    let last_rec = &b[last.offset as usize..][..last.len as usize];
    // A torn append of a copy of the last write set (a batch): complete
    // records of an unfinished batch, then a cut one.
    for n in 1..last_set.len() {
        tail(
            format!("first {n} bytes of a copy of the last write set"),
            &last_set[..n],
        );
    }
    for (name, dir, id) in [(P, &fx.p_dir, fx.sealed), (Q, &fx.q_dir, fx.ledger.files(Q)[0])] {
        let other = fx.disk.read_file(data_path(dir, id)).unwrap();
        for r in records(&other) {
            let rec = &other[r.offset as usize..][..r.len as usize];
            tail(format!("record at {} of {name}'s file {id}", r.offset), rec);
            tail(
                format!(
                    "record at {} of {name}'s file {id}, then a copy of the last record",
                    r.offset
                ),
                &[rec, last_rec].concat(),
            );
        }
    }
    // Hostile input: records with this file's salt (so their checksums
    // hold) but a sequence number no partition can have reached (≥ 2^63).
    // The control case, a forged record with a plausible seq, is accepted
    // like any append and is not swept here.
    let salt = ledger::file_salt(b);
    for seq in [1 << 63, u64::MAX - 1, u64::MAX] {
        let forged = ledger::forge_record(salt, seq, 0, b"forged", b"hostile");
        tail(format!("forged record of seq {seq}"), &forged);
        let tomb = ledger::forge_record(salt, seq, 1, b"s01", b"");
        tail(format!("forged tombstone of seq {seq}"), &tomb);
    }
    for n in [1, 7, 25, 60] {
        let garbage: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        tail(
            format!("{n} bytes of garbage, then a valid copy of the last record"),
            &[&garbage[..], last_rec].concat(),
        );
    }
    // A cut anywhere in the last three write sets, then garbage: the torn
    // part stays dropped whatever follows it.
    let from = fx.ledger.places(P, fx.active).iter().rev().nth(3).unwrap().end as usize;
    for t in from..b.len() {
        let garbage: Vec<u8> = (0..16).map(|_| rng.random()).collect();
        out.push(Case {
            what: format!("truncated at {t}, then 16 bytes of garbage"),
            content: [&b[..t], &garbage[..]].concat(),
            cut: t as u64,
        });
    }
    out
}

/// Reads every key of `universe` with `get` and the whole partition through
/// a snapshot; both must agree with `want`.
async fn check_state(p: &Partition, want: &State, universe: &[Vec<u8>]) -> Result<Diff, String> {
    let mut diff = Diff::default();
    for k in universe {
        let got = p.get(k).await.map_err(|e| format!("get {k:?}: {e}"))?;
        diff.read(k, want.get(k).map(Vec::as_slice), got.as_deref());
    }
    let snap = p.snapshot().await.map_err(|e| format!("snapshot: {e}"))?;
    let mut seen = State::new();
    for entry in snap.iter() {
        let (k, v) = entry.map_err(|e| format!("snapshot iteration: {e}"))?;
        seen.insert(k.to_vec(), v.to_vec());
    }
    diff.add(Diff::of(want, &seen));
    Ok(diff)
}

/// What one case found.
#[derive(Default)]
struct Outcome {
    diff: Diff,
    /// The open refused the file (only allowed for a cut inside its header).
    refused: bool,
    /// The recovered file is not exactly the valid prefix, or another check failed.
    problem: Option<String>,
    kept_copy: bool,
}

async fn run_case(fx: &Fixture, case: &Case, seed: u64) -> Outcome {
    let mut out = Outcome::default();
    let disk = fx.disk.fork(seed);
    let active = data_path(&fx.p_dir, fx.active);
    disk.write_file(&active, &case.content).unwrap();
    let mut want = fx.ledger.state_cut(
        P,
        Some(Cut {
            file: fx.active,
            at: case.cut,
        }),
    );
    let valid_end = fx.ledger.valid_end(P, fx.active, case.cut) as usize;
    let mut universe: Vec<Vec<u8>> = fx.ledger.universe(P).into_iter().collect();
    let fail = |out: &mut Outcome, msg: String| {
        out.problem.get_or_insert(msg);
    };

    let db = match open(&disk).await {
        Ok(db) => db,
        Err(e) => {
            fail(&mut out, format!("open: {e}"));
            return out;
        }
    };
    let p = match db.partition(P).await {
        Ok(p) if case.content.len() < FILE_HEADER as usize => {
            drop(p);
            fail(&mut out, "a data file without a whole header was accepted".into());
            return out;
        }
        Ok(p) => p,
        Err(caskade::Error::Corrupt { .. }) if case.content.len() < FILE_HEADER as usize => {
            out.refused = true;
            // The refusal was the check; how the close goes is not.
            let _ = db.close().await;
            return out;
        }
        Err(e) => {
            fail(&mut out, format!("partition open: {e}"));
            return out;
        }
    };
    match check_state(&p, &want, &universe).await {
        Ok(d) => out.diff.add(d),
        Err(e) => fail(&mut out, e),
    }
    match db.partition(Q).await {
        Ok(q) => {
            let q_universe: Vec<Vec<u8>> = fx.ledger.universe(Q).into_iter().collect();
            match check_state(&q, &fx.ledger.state(Q), &q_universe).await {
                Ok(d) => out.diff.add(d),
                Err(e) => fail(&mut out, format!("q: {e}")),
            }
        }
        Err(e) => fail(&mut out, format!("q open: {e}")),
    }
    let recovered = disk.read_file(&active).unwrap_or_default();
    if recovered != case.content[..valid_end.min(case.content.len())] {
        fail(
            &mut out,
            format!(
                "file is {} bytes after recovery, valid prefix {valid_end}",
                recovered.len()
            ),
        );
    }
    let copy = PathBuf::from(format!("{}.dropped-{valid_end}-0", active.display()));
    if let Some(kept) = disk.read_file(&copy) {
        out.kept_copy = true;
        if kept != case.content[valid_end..] {
            fail(&mut out, "the kept copy is not the cut tail".into());
        }
    }

    // The partition takes writes at the valid end, and they are durable.
    let writes = after_writes(&want, case.cut);
    for op in &writes {
        let r = match op {
            Op::Put(k, v) => p.put(k, v).await,
            Op::Delete(k) => p.delete(k).await.map(drop),
        };
        if let Err(e) = r {
            fail(&mut out, format!("write after recovery: {e}"));
            return out;
        }
        match op {
            Op::Put(k, v) => {
                want.insert(k.clone(), v.clone());
                universe.push(k.clone());
            }
            Op::Delete(k) => drop(want.remove(k)),
        }
    }
    disk.power_loss(true);
    drop((p, db));
    match reopen_state(&disk, &want, &universe).await {
        Ok(d) => out.diff.add(d),
        Err(e) => fail(&mut out, format!("after the power loss: {e}")),
    }
    out
}

/// A new key, an overwrite and a delete of keys the recovered state holds.
fn after_writes(state: &State, case_cut: u64) -> Vec<Op> {
    let mut ops = vec![Op::put(format!("after-{case_cut}"), "written after recovery")];
    if let Some(k) = state.keys().next() {
        ops.push(Op::Put(k.clone(), b"overwritten after recovery".to_vec()));
    }
    if let Some(k) = state.keys().nth(1) {
        ops.push(Op::Delete(k.clone()));
    }
    ops
}

async fn reopen_state(disk: &SimDisk, want: &State, universe: &[Vec<u8>]) -> Result<Diff, String> {
    let db = open(disk).await.map_err(|e| format!("reopen: {e}"))?;
    let p = db.partition(P).await.map_err(|e| format!("partition: {e}"))?;
    let d = check_state(&p, want, universe).await?;
    drop(p);
    db.close().await.map_err(|e| format!("close: {e}"))?;
    Ok(d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cut_and_tail_keeps_exactly_the_valid_prefix() {
    watch::start();
    let started = Instant::now();
    let fx = std::sync::Arc::new(fixture().await.expect("fixture"));
    let cases = cases(&fx);
    let n_cases = cases.len();
    let (mut diff, mut refused, mut kept, mut problems) = (Diff::default(), 0, 0, Vec::new());
    for (i, case) in cases.into_iter().enumerate() {
        let fx2 = std::sync::Arc::clone(&fx);
        let what = case.what.clone();
        let joined = tokio::spawn(async move { run_case(&fx2, &case, i as u64).await }).await;
        let out = match joined {
            Ok(out) => out,
            Err(e) => {
                problems.push(format!("{what}: the case panicked: {e}"));
                continue;
            }
        };
        refused += usize::from(out.refused);
        kept += usize::from(out.kept_copy);
        if let Some(p) = out.problem {
            problems.push(format!("{what}: {p}"));
        }
        if let Some(first) = &out.diff.first {
            problems.push(format!("{what}: {first}"));
        }
        diff.add(out.diff);
    }
    println!(
        "reliability: harness=tails cases={} refused={refused} kept_copies={kept} wrong={} lost={} resurrected={} panics={} max_alloc={} secs={:.1}",
        n_cases,
        diff.wrong,
        diff.lost,
        diff.resurrected,
        watch::panics(),
        watch::max_alloc(),
        started.elapsed().as_secs_f64()
    );
    for p in problems.iter().take(10) {
        eprintln!("{p}");
    }
    assert!(
        problems.is_empty() && diff.is_clean(),
        "{} cases failed",
        problems.len()
    );
    assert_eq!(watch::panics(), 0, "panics");
    assert!(
        watch::max_alloc() < watch::ALLOC_LIMIT,
        "an allocation of {} bytes",
        watch::max_alloc()
    );
}
