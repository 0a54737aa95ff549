//! Corruption sweep (issue 6, section 4): every byte of every file of a
//! small database — sealed data files and their hints, active files, each
//! partition's `MANIFEST`, the `CATALOG` — flipped (one bit), zeroed and set
//! to 0xFF, one case at a time. Each reopen must not panic (an `Err` is
//! fine), make no huge allocation, and every read of every key ever written
//! must return the right value, an error, or "not found" only where the
//! engine declared a loss: recovery cut the active file and kept the cut
//! bytes as `<data file>.dropped-<offset>-<n>`, so the partition holds the
//! state of the history before that offset (ledger, `common/ledger.rs`).
//! A deleted key never returns a value; a dropped partition never comes back;
//! a partition is never silently forgotten.
//!
//! The database is built once on a `SimDisk`; each case damages a fork.
//! A case damaging a partition's file reads every key of that partition;
//! one damaging the catalog reads every key of every partition; every case
//! checks that the catalog still lists exactly the live partitions.
//! `CASKADE_SWEEP_SOAK=1` sweeps a larger database and reads every key of
//! every partition in every case.
//!
//! Summary line: `reliability: harness=corruption cases=N reads=N ...`.

mod crash_harness;
#[path = "common/ledger.rs"]
mod ledger;
#[path = "common/watch.rs"]
mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use caskade::{PartitionOptions, SimDisk};
use crash_harness::open;
use ledger::{Cut, Diff, Ledger, Op, State, declared_cut};

/// The live partitions, in creation order; `DROPPED` is created and
/// dropped between the second and the last, so the catalog's last record
/// is a create.
const LIVE: [&str; 3] = ["a", "b", "c"];
const DROPPED: &str = "d";

fn soak() -> bool {
    std::env::var_os("CASKADE_SWEEP_SOAK").is_some_and(|v| v == "1")
}

struct Fixture {
    disk: SimDisk,
    ledger: Ledger,
    dirs: BTreeMap<&'static str, PathBuf>,
}

fn value(key: &str, round: u32) -> String {
    format!("{key} round {round} {}", "v".repeat(90))
}

/// Partition `a`: 4 KiB files, filled until it has `sealed` sealed files,
/// with overwrites, deletes and batches throughout; `b` and `c`: one active
/// file each; `d`: written, then dropped.
async fn fixture(sealed: usize) -> caskade::Result<Fixture> {
    let disk = SimDisk::with_seed(21);
    let db = open(&disk).await?;
    let small = PartitionOptions::default().max_file_size(4096);
    let a = db.create_partition("a", small).await?;
    let b = db.partition("b").await?;
    let d = db.partition(DROPPED).await?;
    d.put("d-key", "from a dropped partition").await?;
    drop(d);
    db.drop_partition(DROPPED).await?;
    let c = db.partition("c").await?;
    let mut dirs = BTreeMap::new();
    for name in LIVE {
        dirs.insert(name, db.describe_partition(name).unwrap().dir.unwrap());
    }
    let mut ledger = Ledger::default();
    let mut i = 0u32;
    while ledger.files("a").len() < sealed + 1 {
        let k = |j: u32| format!("a{j:03}");
        let set = match i % 6 {
            // Overwrite an older key, delete another, or batch both.
            3 => vec![Op::put(k(i / 2), value(&k(i / 2), i))],
            4 if i > 8 => vec![Op::del(k(i - 7))],
            5 => vec![
                Op::put(k(i), value(&k(i), i)),
                Op::del(k(i / 3)),
                Op::put(k(i + 1000), "b"),
            ],
            _ => vec![Op::put(k(i), value(&k(i), i))],
        };
        ledger.write(&disk, &dirs["a"], "a", &a, set).await?;
        i += 1;
    }
    // A few more in the active file, touching keys of the sealed files.
    for j in [1u32, 2, 5] {
        let k = format!("a{j:03}");
        ledger
            .write(&disk, &dirs["a"], "a", &a, vec![Op::put(&k, value(&k, 99))])
            .await?;
    }
    ledger
        .write(&disk, &dirs["a"], "a", &a, vec![Op::del("a000")])
        .await?;
    let small_sets = |p: &str| {
        vec![
            vec![Op::put(format!("{p}1"), "one")],
            vec![Op::put(format!("{p}2"), "two"), Op::put(format!("{p}3"), "three")],
            vec![Op::del(format!("{p}1"))],
            vec![Op::put(format!("{p}2"), "two again")],
            vec![Op::put(format!("{p}4"), ""), Op::del(format!("{p}3"))],
        ]
    };
    for set in small_sets("b") {
        ledger.write(&disk, &dirs["b"], "b", &b, set).await?;
    }
    for set in small_sets("c") {
        ledger.write(&disk, &dirs["c"], "c", &c, set).await?;
    }
    drop((a, b, c));
    db.close().await?;
    for name in LIVE {
        ledger.verify_places(&disk, &dirs[name], name);
    }
    Ok(Fixture { disk, ledger, dirs })
}

/// The files swept: everything the database wrote except its lock file.
fn swept_files(disk: &SimDisk) -> Vec<(PathBuf, Vec<u8>)> {
    let files = disk.list_files().into_iter().filter(|f| !f.ends_with("LOCK"));
    files.map(|f| (f.clone(), disk.read_file(&f).unwrap())).collect()
}

/// The three damages of one byte.
fn damages(old: u8, at: usize) -> [(&'static str, u8); 3] {
    [("flip", old ^ (1 << (at % 8))), ("zero", 0x00), ("ones", 0xFF)]
}

/// What the sweep counted.
#[derive(Default)]
struct Tally {
    cases: usize,
    reads: usize,
    read_errors: usize,
    /// Reads that found nothing, or an older value, where a loss was declared.
    declared_lost: usize,
    /// Opens of the database or of a partition that returned an error.
    refused: usize,
    diff: Diff,
    /// Live partitions missing from the list, dropped ones listed.
    lost_partitions: usize,
    resurrected_partitions: usize,
    problems: Vec<String>,
}

impl Tally {
    /// Adds the outcome of one finished case.
    fn absorb(&mut self, done: Result<(String, Tally), tokio::task::JoinError>) {
        let (what, t) = match done {
            Ok(done) => done,
            Err(e) => {
                self.problems.push(format!("a case panicked: {e}"));
                return;
            }
        };
        self.reads += t.reads;
        self.read_errors += t.read_errors;
        self.declared_lost += t.declared_lost;
        self.refused += t.refused;
        self.lost_partitions += t.lost_partitions;
        self.resurrected_partitions += t.resurrected_partitions;
        if t.lost_partitions + t.resurrected_partitions > 0 {
            self.problems
                .push(format!("{what}: a partition was forgotten or came back"));
        }
        self.problems
            .extend(t.problems.into_iter().map(|p| format!("{what}: {p}")));
        self.diff.add(t.diff);
    }
}

/// The partitions whose keys a case damaging `file` reads: its own
/// partition's (every partition's for the catalog, or in a soak run).
fn readers(fx: &Fixture, file: &Path) -> Vec<&'static str> {
    let owner = LIVE.into_iter().find(|n| file.starts_with(&fx.dirs[n]));
    match owner {
        Some(name) if !soak() => vec![name],
        _ => LIVE.to_vec(),
    }
}

/// The id of the data file at `path`, if it is one (`<8 digits>.data`).
fn data_id(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".data")?.parse().ok()
}

/// Checks where recovery declared a loss in partition `name` after the
/// byte `at` of `file` was damaged: only in a damaged active file, exactly
/// where the damaged write set starts — and there always, since every
/// damaged record fails a checksum.
fn check_cut(fx: &Fixture, name: &str, file: &Path, at: usize, cut: Option<Cut>) -> Option<String> {
    let active = *fx.ledger.files(name).last().unwrap();
    let damaged_active =
        file.starts_with(&fx.dirs[name]) && data_id(file) == Some(active) && at as u64 >= ledger::FILE_HEADER;
    let want = damaged_active.then(|| Cut {
        file: active,
        at: fx.ledger.valid_end(name, active, at as u64),
    });
    (cut != want).then(|| format!("loss declared at {cut:?}, expected {want:?}"))
}

async fn run_case(fx: &Fixture, file: &Path, at: usize, bytes: Vec<u8>, seed: u64) -> Tally {
    let mut t = Tally::default();
    let disk = fx.disk.fork(seed);
    disk.write_file(file, &bytes).unwrap();
    let db = match open(&disk).await {
        Ok(db) => db,
        Err(_) => {
            t.refused += 1;
            return t;
        }
    };
    let listed = db.list_partitions();
    if listed.iter().any(|n| n == DROPPED) {
        t.resurrected_partitions += 1;
    }
    for name in LIVE {
        if !listed.iter().any(|n| n == name) {
            t.lost_partitions += 1;
        }
    }
    for name in readers(fx, file) {
        if !listed.iter().any(|n| n == name) {
            continue;
        }
        let p = match db.partition(name).await {
            Ok(p) => p,
            Err(_) => {
                t.refused += 1;
                continue;
            }
        };
        let cut = declared_cut(&disk, &fx.dirs[name]);
        if let Some(problem) = check_cut(fx, name, file, at, cut) {
            t.problems.push(format!("partition {name}: {problem}"));
        }
        let want = fx.ledger.state_cut(name, cut);
        let full = fx.ledger.state(name);
        let mut diff = Diff::default();
        for k in fx.ledger.universe(name) {
            t.reads += 1;
            match p.get(&k).await {
                Ok(got) => diff.read(&k, want.get(&k).map(Vec::as_slice), got.as_deref()),
                Err(_) => t.read_errors += 1,
            }
            t.declared_lost += usize::from(want.get(&k) != full.get(&k));
        }
        // Iteration yields only what the gets may return.
        if let Ok(snap) = p.snapshot().await {
            let mut seen = State::new();
            for (k, v) in snap.iter().flatten() {
                seen.insert(k.to_vec(), v.to_vec());
            }
            let want_seen: State = want.into_iter().filter(|(k, _)| seen.contains_key(k)).collect();
            diff.add(Diff::of(&want_seen, &seen));
        }
        if let Some(first) = &diff.first {
            t.problems.push(format!("partition {name}: {first}"));
        }
        t.diff.add(diff);
    }
    let _ = db.close().await; // A damaged database may fail to close; not the question here.
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_damaged_byte_reads_right_or_fails() {
    watch::start();
    let started = Instant::now();
    let fx = Arc::new(fixture(if soak() { 6 } else { 2 }).await.expect("fixture"));
    let files = swept_files(&fx.disk);
    let mut total = Tally::default();
    let (mut skipped, mut swept_bytes) = (0, 0);
    // Cases are independent (each on its own fork): a few run at once.
    let width = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let mut running = tokio::task::JoinSet::new();
    for (path, good) in &files {
        swept_bytes += good.len();
        for at in 0..good.len() {
            for (how, new) in damages(good[at], at) {
                if new == good[at] {
                    skipped += 1; // Not a change.
                    continue;
                }
                let mut bytes = good.clone();
                bytes[at] = new;
                let seed = total.cases as u64;
                total.cases += 1;
                let what = format!("{} byte {at} {how}", path.display());
                let (fx2, path2) = (Arc::clone(&fx), path.clone());
                running.spawn(async move { (what, run_case(&fx2, &path2, at, bytes, seed).await) });
                if running.len() >= width {
                    total.absorb(running.join_next().await.expect("a case runs"));
                }
            }
        }
    }
    while let Some(done) = running.join_next().await {
        total.absorb(done);
    }
    let d = &total.diff;
    println!(
        "reliability: harness=corruption files={} bytes={swept_bytes} cases={} reads={} read_errors={} refused={} declared_lost={} wrong={} resurrected={} lost={} lost_partitions={} resurrected_partitions={} panics={} max_alloc={} secs={:.1}",
        files.len(),
        total.cases,
        total.reads,
        total.read_errors,
        total.refused,
        total.declared_lost,
        d.wrong,
        d.resurrected,
        d.lost,
        total.lost_partitions,
        total.resurrected_partitions,
        watch::panics(),
        watch::max_alloc(),
        started.elapsed().as_secs_f64()
    );
    eprintln!("{skipped} damages left the byte unchanged and were skipped");
    for p in total.problems.iter().take(20) {
        eprintln!("{p}");
    }
    assert!(
        total.problems.is_empty() && d.is_clean(),
        "{} problems",
        total.problems.len()
    );
    assert_eq!(watch::panics(), 0, "panics");
    assert!(
        watch::max_alloc() < watch::ALLOC_LIMIT,
        "an allocation of {} bytes",
        watch::max_alloc()
    );
    assert!(total.reads > total.cases, "the sweep reads");
}
