//! kill -9: a `caskade stress` child runs random operations on a real
//! directory (puts, deletes, atomic batches, compactions, partition create
//! and drop; `Durability::Always` in most cycles, `OsBuffered` in a fifth)
//! and reports each `begin` and `ack` through a pipe. The parent kills it
//! with `SIGKILL` — in about a third of the cycles shortly after it printed
//! `open`, usually while it recovers the directory the previous kill left,
//! otherwise 5–150 ms into the load — and checks every acknowledged write
//! against a model kept across all cycles on the same directory, so damage
//! accumulates as in a crash-looping service.
//!
//! After each kill the parent recovers a copy of the directory (one cycle
//! in eight: the directory itself) with the library and compares every
//! partition and key with the model: an acknowledged put's key holds its
//! exact value or a later write's, an acknowledged delete's key is absent
//! or holds a later write, a batch is all or nothing, an acknowledged
//! create stands and an acknowledged drop stays dropped, no value is torn or
//! was never begun (`tests/kill9/model.rs`). A child that exits on its own
//! (an engine error or a panic) fails the test.
//!
//! Summary line (with `--nocapture`):
//! `reliability: harness=kill9 cycles=.. kills_during_recovery=.. acked_checked=.. lost=0 resurrected=0 torn=0 panics=0 ...`
//!
//! Soak runs: `CASKADE_KILL_CYCLES=10000 cargo test --release --test kill9 -- --nocapture`
//! (0.1–0.2 s per cycle); `CASKADE_KILL_SEED=<n>` replays the parent's
//! choices (the children's timing still varies); `CASKADE_STRESS_BIN=<path>`
//! runs another build of the child.

#[path = "kill9/child.rs"]
mod child;
#[path = "kill9/model.rs"]
mod model;
#[path = "kill9/model_tests.rs"]
mod model_tests;
#[path = "kill9/observe.rs"]
mod observe;
// The child's protocol module, shared so that the two sides cannot drift.
#[allow(dead_code)]
#[path = "../src/bin/caskade/stress/protocol.rs"]
mod protocol;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use child::{KillPlan, Transcript};
use model::{Findings, Model};

/// Kill cycles of a CI run (`CASKADE_KILL_CYCLES` overrides).
const CYCLES: u64 = 200;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

/// The child binary: cargo's build of `caskade` (in the test profile,
/// opt-level 1), or `CASKADE_STRESS_BIN` (e.g. a copy, for a soak run
/// while the tree is rebuilt).
fn exe() -> PathBuf {
    std::env::var_os("CASKADE_STRESS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_caskade")))
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Totals over all cycles.
#[derive(Debug, Default)]
struct Totals {
    cycles: u64,
    kills_during_recovery: u64,
    acked_checked: u64,
    compactions: u64,
    keys_checked: u64,
    unacked_applied: u64,
    unacked_dropped: u64,
    lost: u64,
    resurrected: u64,
    torn: u64,
    phantom: u64,
    panics: u64,
    recovery_ms_max: u64,
    /// Size of the database directory after the last cycle.
    db_bytes: u64,
}

impl Totals {
    fn add(&mut self, f: &Findings) {
        self.keys_checked += f.keys_checked;
        self.unacked_applied += f.unacked_applied;
        self.unacked_dropped += f.unacked_dropped;
        self.lost += f.lost;
        self.resurrected += f.resurrected;
        self.torn += f.torn;
        self.phantom += f.phantom;
    }

    fn summary(&self, elapsed: Duration) -> String {
        format!(
            "reliability: harness=kill9 cycles={} kills_during_recovery={} acked_checked={} \
             lost={} resurrected={} torn={} panics={} phantom={} keys_checked={} compactions={} \
             unacked_applied={} unacked_dropped={} recovery_ms_max={} db_bytes={} secs={:.1}",
            self.cycles,
            self.kills_during_recovery,
            self.acked_checked,
            self.lost,
            self.resurrected,
            self.torn,
            self.panics,
            self.phantom,
            self.keys_checked,
            self.compactions,
            self.unacked_applied,
            self.unacked_dropped,
            self.recovery_ms_max,
            self.db_bytes,
            elapsed.as_secs_f64(),
        )
    }
}

/// The child's failure, with its stderr, if it did not die of our SIGKILL.
fn died_on_its_own(t: &Transcript) -> Option<String> {
    (!t.killed()).then(|| format!("child exited on its own ({}); stderr:\n{}", t.status, t.stderr))
}

/// The parent's state across cycles.
struct Harness {
    rng: StdRng,
    /// The database directory every child works on.
    dir: PathBuf,
    /// Where the copies are recovered.
    copy: PathBuf,
    /// The children's stderr.
    stderr: PathBuf,
    rt: tokio::runtime::Runtime,
    model: Model,
    totals: Totals,
    /// Open → ready as the parent sees it; the recovery kills aim inside it.
    recovery: Duration,
}

impl Harness {
    /// One child: run, kill, recover, check.
    fn cycle(&mut self, cycle: u64) -> Result<(), String> {
        // Unique per cycle: values name the child that wrote them.
        let child_seed = (cycle << 32) | u64::from(self.rng.random::<u32>());
        let durability = if self.rng.random_bool(0.2) {
            "buffered"
        } else {
            "always"
        };
        let plan = if self.rng.random_bool(0.35) {
            KillPlan::DuringRecovery(self.recovery.mul_f64(self.rng.random_range(0.0..1.3)))
        } else {
            KillPlan::UnderLoad(Duration::from_millis(self.rng.random_range(5..150)))
        };
        let t = child::run(&exe(), &self.dir, child_seed, durability, plan, &self.stderr)?;
        let totals = &mut self.totals;
        totals.cycles += 1;
        if let Some(e) = died_on_its_own(&t) {
            totals.panics += u64::from(t.stderr.contains("panicked"));
            return Err(e);
        }
        totals.kills_during_recovery += u64::from(t.opened && !t.ready);
        if let Some(r) = t.recovery {
            self.recovery = (self.recovery * 3 + r) / 4;
        }
        for line in &t.lines {
            if let &protocol::Line::Ready { recovery_ms } = line {
                totals.recovery_ms_max = totals.recovery_ms_max.max(recovery_ms);
            }
        }
        let applied = self
            .model
            .apply(child_seed, &t.lines)
            .map_err(|e| format!("protocol: {e}"))?;
        totals.acked_checked += applied.acked;
        totals.compactions += applied.compactions;
        // Mostly a copy, so that the next child recovers what the kill left.
        let target = if self.rng.random_bool(0.125) {
            &self.dir
        } else {
            let _ = std::fs::remove_dir_all(&self.copy);
            observe::copy_dir(&self.dir, &self.copy).map_err(|e| format!("copy: {e}"))?;
            &self.copy
        };
        let observed = self
            .rt
            .block_on(observe::observe(target))
            .map_err(|e| format!("recovery failed: {e}"))?;
        let findings = self.model.check(applied, &observed);
        self.totals.add(&findings);
        if findings.violations() > 0 {
            let problems = findings.problems.join("\n  ");
            return Err(format!("child seed {child_seed}:\n  {problems}"));
        }
        Ok(())
    }
}

#[test]
fn acknowledged_writes_survive_kill9_cycles() {
    let cycles = env_u64("CASKADE_KILL_CYCLES").unwrap_or(CYCLES);
    let seed = env_u64("CASKADE_KILL_SEED").unwrap_or_else(rand::random);
    eprintln!("kill9: CASKADE_KILL_SEED={seed}");
    let root = tempfile::tempdir().unwrap();
    let mut h = Harness {
        rng: StdRng::seed_from_u64(seed),
        dir: root.path().join("db"),
        copy: root.path().join("check"),
        stderr: root.path().join("stderr"),
        rt: runtime(),
        model: Model::default(),
        totals: Totals::default(),
        recovery: Duration::from_millis(20),
    };
    let started = Instant::now();
    let failure = (0..cycles).find_map(|cycle| {
        if cycle > 0 && cycle % 1000 == 0 {
            // Progress of a soak run, on stderr.
            h.totals.db_bytes = dir_bytes(&h.dir);
            eprintln!("kill9: {}", h.totals.summary(started.elapsed()));
        }
        h.cycle(cycle).err().map(|e| format!("cycle {cycle}: {e}"))
    });
    h.totals.db_bytes = dir_bytes(&h.dir);
    println!("{}", h.totals.summary(started.elapsed()));
    if let Some(f) = failure {
        // The directory as the failing cycle left it, and the child's stderr, for a post-mortem.
        let kept = root.keep();
        panic!("kill9 (CASKADE_KILL_SEED={seed}) failed at {f}\n(directory kept: {kept:?})");
    }
    let t = &h.totals;
    assert!(
        t.kills_during_recovery > 0,
        "no kill landed during recovery: {t:?}"
    );
    assert!(t.unacked_applied > 0 && t.unacked_dropped > 0, "{t:?}");
}

/// With `--ops` the child stops, closes the database and exits 0 after
/// printing `done`; every operation was acknowledged and recovery shows
/// exactly the model's state.
#[test]
fn stress_with_an_ops_budget_finishes_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let out = std::process::Command::new(exe())
        .arg("stress")
        .arg("--dir")
        .arg(&dir)
        .args([
            "--seed",
            "7",
            "--ops",
            "300",
            "--partitions",
            "3",
            "--durability",
            "buffered",
        ])
        .output()
        .expect("run caskade stress");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    let text = String::from_utf8(out.stdout).expect("utf-8 protocol");
    let lines: Vec<protocol::Line> = text
        .lines()
        .map(|l| protocol::parse(l).expect("line parses"))
        .collect();
    assert_eq!(lines.last(), Some(&protocol::Line::Done));
    let mut model = Model::default();
    let cycle = model.apply(7, &lines).expect("valid transcript");
    // 300 operations plus the creates of the three stable partitions.
    assert_eq!(cycle.acked + cycle.compactions, 303);
    let observed = runtime().block_on(observe::observe(&dir)).expect("reopen");
    assert!(observed.parts.contains_key("s2"));
    let f = model.check(cycle, &observed);
    assert_eq!(
        (f.violations(), f.unacked_applied, f.unacked_dropped),
        (0, 0, 0),
        "{:?}",
        f.problems
    );
    assert!(f.keys_checked > 0);
}

/// An engine error ends the child with a non-zero status and a message:
/// here the directory is locked by this process's `Db`.
#[test]
fn stress_exits_nonzero_on_an_engine_error() {
    let root = tempfile::tempdir().unwrap();
    let rt = runtime();
    let db = rt.block_on(caskade::Db::open(root.path())).expect("open");
    let out = std::process::Command::new(exe())
        .arg("stress")
        .arg("--dir")
        .arg(root.path())
        .args(["--seed", "1", "--ops", "10"])
        .output()
        .expect("run caskade stress");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("caskade stress: error") && stderr.contains("locked"),
        "{stderr}"
    );
    rt.block_on(db.close()).expect("close");
}
