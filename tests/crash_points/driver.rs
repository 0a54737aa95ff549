//! Runs workload steps on a database and reads back what it holds: shared
//! by the crash-point enumeration and the I/O fault matrix.
#![allow(dead_code)] // each test binary uses a part

use std::collections::BTreeSet;
use std::path::Path;

use caskade::{CompactionScheduler, Db, Durability, Error, Partition, SimDisk};

use super::crash_harness::{ROOT, assert_only_listed, eager, open, read_state};
use super::history::{Fate, State, Step, explain};

/// A database on a simulated disk, open or not (a failed open or reopen
/// leaves it closed: every later step is refused).
pub struct Session {
    disk: SimDisk,
    durability: Durability,
    db: Option<Db>,
}

/// Opens the database on `disk` with `durability` and no scheduled
/// compaction.
async fn open_with(disk: &SimDisk, durability: Durability) -> caskade::Result<Db> {
    Db::builder(ROOT)
        .simulated_disk(disk.clone())
        .compaction_scheduler(CompactionScheduler::disabled())
        .durability(durability)
        .open()
        .await
}

/// The result of one step: what became of it, and its error if it failed.
pub struct Done {
    pub fate: Fate,
    pub error: Option<Error>,
    /// The error came from opening the partition, before the step's own I/O.
    pub open_failed: bool,
}

impl Session {
    /// Opens the database on `disk` (a failed open gives a closed session).
    pub async fn open(disk: &SimDisk) -> Self {
        Self::open_with(disk, Durability::Always).await
    }

    /// [`Session::open`] with another durability policy.
    pub async fn open_with(disk: &SimDisk, durability: Durability) -> Self {
        let db = open_with(disk, durability).await.ok();
        Session {
            disk: disk.clone(),
            durability,
            db,
        }
    }

    /// Whether the database is open.
    pub fn is_open(&self) -> bool {
        self.db.is_some()
    }

    /// The open database.
    pub fn db(&self) -> Option<&Db> {
        self.db.as_ref()
    }

    /// Runs one step.
    pub async fn step(&mut self, step: &Step) -> Done {
        let Some(db) = self.db.as_ref() else {
            return Done {
                fate: Fate::Refused,
                error: Some(Error::Closed),
                open_failed: false,
            };
        };
        if let Step::Reopen | Step::TearTail(_) = step {
            let dir = match step {
                Step::TearTail(p) => match db.describe_partition(p) {
                    Ok(info) => info.dir,
                    Err(e) => return not_opened(e),
                },
                _ => None,
            };
            let closed = self.db.take().expect("open").close().await;
            if let (Ok(()), Some(dir)) = (&closed, dir) {
                tear_tail(&self.disk, &dir);
            }
            self.db = open_with(&self.disk, self.durability).await.ok();
            return match (closed, self.db.is_some()) {
                (Ok(()), true) => Done {
                    fate: Fate::Acked,
                    error: None,
                    open_failed: false,
                },
                (Err(e), _) => Done {
                    fate: Fate::Doubtful,
                    error: Some(e),
                    open_failed: false,
                },
                (Ok(()), false) => Done {
                    fate: Fate::Doubtful,
                    error: Some(Error::Closed),
                    open_failed: false,
                },
            };
        }
        exec(db, step).await
    }

    /// Closes the database (errors ignored: the disk may be failing); waits
    /// for its actors, so no thread of this session touches the disk after.
    pub async fn close(mut self) {
        if let Some(db) = self.db.take() {
            let _ = db.close().await;
        }
    }
}

/// Size of a data file's header (`format/data_file.rs`).
const DATA_FILE_HEADER: usize = 32;

/// Appends 11 zero bytes (less than a record header: a record cut short
/// by the end of the file) to the newest data file in `dir`, durably and
/// without counting an operation, if it holds records.
fn tear_tail(disk: &SimDisk, dir: &Path) {
    let newest = disk
        .list_files()
        .into_iter()
        .filter(|f| f.parent() == Some(dir) && f.extension().is_some_and(|e| e == "data"))
        .max();
    if let Some(f) = newest {
        let mut bytes = disk.read_file(&f).expect("listed");
        if bytes.len() <= DATA_FILE_HEADER {
            // No record appended yet: perhaps its partition never opened
            // (its manifest was never made durable). A crash cannot tear it.
            return;
        }
        bytes.extend_from_slice(&[0; 11]);
        disk.write_file(&f, &bytes).expect("rewrite");
    }
}

fn fate_of(r: &Result<(), Error>) -> Fate {
    match r {
        Ok(()) => Fate::Acked,
        // Refused before any I/O.
        Err(
            Error::Poisoned { .. }
            | Error::PartitionNotFound { .. }
            | Error::PartitionExists { .. }
            | Error::PartitionDropped { .. }
            | Error::Closed,
        ) => Fate::Refused,
        Err(_) => Fate::Doubtful,
    }
}

fn done(r: Result<(), Error>) -> Done {
    Done {
        fate: fate_of(&r),
        error: r.err(),
        open_failed: false,
    }
}

/// A step that failed opening its partition: nothing of it was written.
fn not_opened(e: Error) -> Done {
    Done {
        fate: Fate::Refused,
        error: Some(e),
        open_failed: true,
    }
}

/// The open partition `p`, without creating it if it is missing.
async fn handle(db: &Db, p: &str) -> Result<Partition, Error> {
    if !db.list_partitions().iter().any(|n| n == p) {
        return Err(Error::PartitionNotFound { name: p.to_owned() });
    }
    db.partition(p).await
}

async fn exec(db: &Db, step: &Step) -> Done {
    match step {
        Step::Create(p) => done(db.create_partition(p, eager()).await.map(drop)),
        Step::Drop(p) => done(db.drop_partition(p).await),
        Step::Put(p, k, v) => match handle(db, p).await {
            Ok(h) => done(h.put(k, v).await),
            Err(e) => not_opened(e),
        },
        Step::Delete(p, k) => match handle(db, p).await {
            Ok(h) => done(h.delete(k).await.map(drop)),
            Err(e) => not_opened(e),
        },
        Step::Batch(p, ops) => match handle(db, p).await {
            Ok(h) => {
                let mut b = h.batch();
                for (k, v) in ops {
                    match v {
                        Some(v) => b.put(k, v),
                        None => b.delete(k),
                    };
                }
                done(b.commit().await)
            }
            Err(e) => not_opened(e),
        },
        Step::Group(p, puts) => match handle(db, p).await {
            Ok(h) => {
                let tasks: Vec<_> = puts
                    .iter()
                    .map(|(k, v)| {
                        let (h, k, v) = (h.clone(), k.clone(), v.clone());
                        tokio::spawn(async move { h.put(k, v).await })
                    })
                    .collect();
                let (mut acked, mut error) = (Vec::new(), None);
                for t in tasks {
                    match t.await.expect("a put task panicked") {
                        Ok(()) => acked.push(true),
                        Err(e) => {
                            // A member refused before any I/O is not in doubt,
                            // but counting it as doubtful only widens the check.
                            acked.push(false);
                            error.get_or_insert(e);
                        }
                    }
                }
                match error {
                    None => Done {
                        fate: Fate::Acked,
                        error: None,
                        open_failed: false,
                    },
                    Some(e) => Done {
                        fate: Fate::Members(acked),
                        error: Some(e),
                        open_failed: false,
                    },
                }
            }
            Err(e) => not_opened(e),
        },
        Step::Compact(p) => match handle(db, p).await {
            Ok(h) => done(h.compact().await.map(drop)),
            Err(e) => not_opened(e),
        },
        Step::Reopen | Step::TearTail(_) => unreachable!("Session::step reopens"),
    }
}

/// Every partition's contents, read through snapshots.
pub async fn read_all(db: &Db) -> caskade::Result<(State, Vec<Partition>)> {
    let mut state = State::new();
    let mut handles = Vec::new();
    for name in db.list_partitions() {
        let p = db.partition(&name).await?;
        state.insert(name, read_state(&p).await?);
        handles.push(p);
    }
    Ok((state, handles))
}

/// Every partition that opens, read through snapshots, and the names of
/// those that failed to open.
pub async fn read_open(db: &Db) -> caskade::Result<(State, Vec<String>)> {
    let (mut state, mut unopened) = (State::new(), Vec::new());
    for name in db.list_partitions() {
        match db.partition(&name).await {
            Ok(p) => {
                state.insert(name, read_state(&p).await?);
            }
            Err(_) => unopened.push(name),
        }
    }
    Ok((state, unopened))
}

/// Opens the database and reads every partition: the recovery.
pub async fn recover(disk: &SimDisk) -> caskade::Result<(Db, State, Vec<Partition>)> {
    let db = open(disk).await?;
    let (state, handles) = read_all(&db).await?;
    Ok((db, state, handles))
}

/// Files that no manifest or catalog entry accounts for (a data or hint
/// file a manifest does not list, or a temporary file, panics).
pub fn stray_files(disk: &SimDisk, db: &Db, ctx: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new(ROOT);
    let mut dirs = Vec::new();
    for name in db.list_partitions() {
        let dir = db
            .describe_partition(&name)
            .expect("listed")
            .dir
            .expect("durable");
        assert_only_listed(disk, &dir, ctx);
        dirs.push(dir);
    }
    let known = |f: &Path| match f.strip_prefix(root).ok().and_then(Path::parent) {
        None => true, // outside the database
        Some(p) if p.as_os_str().is_empty() => ["CATALOG", "LOCK"].iter().any(|n| f.ends_with(n)),
        Some(_) => dirs.iter().any(|d| f.parent() == Some(d.as_path())),
    };
    disk.list_files().into_iter().filter(|f| !known(f)).collect()
}

/// What went wrong in the crash states explored.
#[derive(Debug, Default)]
pub struct Tally {
    pub states: u64,
    pub recovery_crashes: u64,
    pub acked_checked: u64,
    pub lost: u64,
    pub resurrected: u64,
    pub wrong: u64,
    pub stray_files: u64,
    pub unrecoverable: u64,
    pub failures: Vec<String>,
}

impl Tally {
    pub fn fail(&mut self, msg: String) {
        if self.failures.len() < 8 {
            self.failures.push(msg);
        }
    }
}

/// Classifies how `got` breaks the candidates: a value every candidate
/// agrees on but `got` lacks is lost; a key or partition no candidate has
/// is resurrected; anything else is wrong.
pub fn classify(got: &State, allowed: &[State], t: &mut Tally) {
    let mut keys = BTreeSet::new();
    for s in allowed.iter().chain([got]) {
        for (p, kv) in s {
            keys.insert((p.clone(), None));
            keys.extend(kv.keys().map(|k| (p.clone(), Some(k.clone()))));
        }
    }
    let at = |s: &State, (p, k): &(String, Option<String>)| match k {
        None => s.get(p).map(|_| String::new()),
        Some(k) => s.get(p).and_then(|kv| kv.get(k)).cloned(),
    };
    let (mut lost, mut back) = (0, 0);
    for key in &keys {
        let want: BTreeSet<Option<String>> = allowed.iter().map(|s| at(s, key)).collect();
        let g = at(got, key);
        if want.contains(&g) {
            continue;
        }
        match (want.len(), want.iter().next()) {
            (1, Some(Some(_))) => lost += 1,
            (_, _) if want.iter().all(Option::is_none) => back += 1,
            _ => t.wrong += 1,
        }
    }
    t.lost += lost;
    t.resurrected += back;
    if lost + back == 0 {
        // Each key matches some candidate, but not all the same one.
        t.wrong += 1;
    }
}

/// Reopens a crashed disk and checks it; returns the recovery's operation
/// count (0 if it failed).
pub async fn check(disk: &SimDisk, allowed: &[State], t: &mut Tally, ctx: &str) -> u64 {
    t.states += 1;
    let before = disk.total_ops();
    let (db, got, handles) = match recover(disk).await {
        Ok(r) => r,
        Err(e) => {
            t.unrecoverable += 1;
            t.fail(format!("{ctx}: recovery failed: {e:?}"));
            return 0;
        }
    };
    let ops = disk.total_ops() - before;
    if allowed.contains(&got) {
        t.acked_checked += allowed[0].values().map(|kv| kv.len() as u64 + 1).sum::<u64>();
    } else {
        classify(&got, allowed, t);
        t.fail(format!("{ctx}: state not allowed\n{}", explain(&got, allowed)));
    }
    for f in stray_files(disk, &db, ctx) {
        t.stray_files += 1;
        t.fail(format!("{ctx}: stray file {f:?}"));
    }
    // What recovery showed readers is durable: a power loss now keeps it
    // (after a process crash, kept bytes may have been in the page cache only).
    drop(handles);
    let _ = db.close().await;
    disk.power_loss(true);
    let (db, again, handles) = match recover(disk).await {
        Ok(r) => r,
        Err(e) => {
            t.unrecoverable += 1;
            t.fail(format!("{ctx}: reopen after recovery and a power loss: {e:?}"));
            return ops;
        }
    };
    if again != got {
        t.lost += 1;
        t.fail(format!(
            "{ctx}: what recovery showed did not survive a power loss\n{}",
            explain(&again, std::slice::from_ref(&got))
        ));
    }
    // The recovered database takes writes that survive another power loss.
    let mut want = again;
    for p in &handles {
        if let Err(e) = p.put("after-crash", "x").await {
            t.unrecoverable += 1;
            t.fail(format!("{ctx}: write after recovery: {e:?}"));
            return ops;
        }
        want.get_mut(p.name())
            .expect("read")
            .insert("after-crash".into(), "x".into());
    }
    drop(handles);
    let _ = db.close().await;
    disk.power_loss(true);
    match recover(disk).await {
        Ok((db, again, _)) => {
            if again != want {
                t.lost += 1;
                t.fail(format!(
                    "{ctx}: after the write and a second power loss\n{}",
                    explain(&again, &[want])
                ));
            }
            let _ = db.close().await;
        }
        Err(e) => {
            t.unrecoverable += 1;
            t.fail(format!("{ctx}: reopen after the write: {e:?}"));
        }
    }
    ops
}

/// Panics anywhere in the process (engine threads included) since
/// [`count_panics`] installed its hook.
pub static PANICS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts every panic in [`PANICS`] (and still prints it).
pub fn count_panics() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        default_hook(info);
    }));
}

/// Runs `job` on every workload of [`super::workloads::all`] (with its
/// index, for seeds), on two threads with a runtime each; the results in
/// no particular order.
pub fn on_every_workload<R, F, Fut>(job: F) -> Vec<R>
where
    R: Send,
    F: Fn(&'static str, u64, Vec<Step>) -> Fut + Sync,
    Fut: std::future::Future<Output = R>,
{
    let queue = std::sync::Mutex::new(
        super::workloads::all()
            .into_iter()
            .enumerate()
            .collect::<Vec<_>>(),
    );
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                while let Some((i, (name, steps))) = queue.lock().unwrap().pop() {
                    let r = rt.block_on(job(name, i as u64, steps));
                    results.lock().unwrap().push(r);
                }
            });
        }
    });
    results.into_inner().unwrap()
}
