//! Shared by `compaction_crash.rs` and `compaction_faults.rs`: a database on
//! a `SimDisk` with explicit compactions only, a model of what the
//! acknowledged writes allow, and the checks every reopen must pass (the
//! state is allowed by the model, no data or hint file the manifest does not
//! list, the partition takes writes and compacts again).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use caskade::{
    CompactionOptions, CompactionScheduler, Db, Error, Partition, PartitionOptions, SimDisk, SimFault, SimOp,
};

pub const ROOT: &str = "/db";

/// Every kind of operation the simulated disk counts.
pub const KINDS: [SimOp; 13] = [
    SimOp::Create,
    SimOp::Open,
    SimOp::Write,
    SimOp::Read,
    SimOp::SetLen,
    SimOp::SyncData,
    SimOp::SyncAll,
    SimOp::Rename,
    SimOp::Remove,
    SimOp::CreateDir,
    SimOp::SyncDir,
    SimOp::List,
    SimOp::Lock,
];

/// Operations performed so far, per kind (in [`KINDS`] order).
pub type Counts = [u64; KINDS.len()];

pub fn counts(disk: &SimDisk) -> Counts {
    KINDS.map(|k| disk.op_count(k))
}

/// 4 KiB files, and every compaction runs (no minimum saving).
pub fn eager() -> PartitionOptions {
    PartitionOptions::default()
        .max_file_size(4096)
        .compaction(CompactionOptions::default().min_space_saving(0))
}

/// Opens the database on `disk` (default durability: `Always`), with no
/// scheduled compaction.
pub async fn open(disk: &SimDisk) -> caskade::Result<Db> {
    Db::builder(ROOT)
        .simulated_disk(disk.clone())
        .compaction_scheduler(CompactionScheduler::disabled())
        .open()
        .await
}

/// One write of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(String, String),
    Delete(String),
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Put(k, _) | Op::Delete(k) => k,
        }
    }

    fn value(&self) -> Option<String> {
        match self {
            Op::Put(_, v) => Some(v.clone()),
            Op::Delete(_) => None,
        }
    }
}

pub fn value(key: &str, round: u32) -> String {
    format!("{key}-r{round}-{}", "x".repeat(60))
}

/// Writes before a compaction: 128 records over 60 keys (three full 4 KiB
/// files and an active one), with overwrites and deletes.
pub fn fill() -> Vec<Op> {
    let key = |i: u32| format!("k{i:03}");
    let mut ops: Vec<Op> = (0..60).map(|i| Op::Put(key(i), value(&key(i), 0))).collect();
    ops.extend((0..60).step_by(2).map(|i| Op::Put(key(i), value(&key(i), 1))));
    ops.extend((0..60).step_by(7).map(|i| Op::Delete(key(i))));
    ops.extend((0..20).map(|i| Op::Put(key(i), value(&key(i), 2))));
    ops.extend((1..60).step_by(7).map(|i| Op::Delete(key(i))));
    ops
}

/// Makes every later operation fail, so that closing a database leaves the
/// disk as it is (a crash, without a racing shutdown).
pub fn freeze(disk: &SimDisk) {
    for kind in KINDS {
        disk.fail(kind, 1, SimFault::Eio, true);
    }
}

/// The kind of operation an `Error::Io` names.
pub fn kind_of(e: &Error) -> Option<SimOp> {
    let Error::Io { op, .. } = e else { return None };
    let names = [
        "create",
        "open",
        "write",
        "read",
        "set_len",
        "sync_data",
        "sync_all",
        "rename",
        "remove",
        "create_dir",
        "sync_dir",
        "list",
        "lock",
    ];
    names.iter().position(|n| n == op).map(|i| KINDS[i])
}

/// What each key may hold after a crash: the value of its last acknowledged
/// write, or that of a later unacknowledged one (absent keys: `None`).
#[derive(Debug, Clone, Default)]
pub struct Model(BTreeMap<String, Vec<Option<String>>>);

impl Model {
    /// Applies `op` to `p` and records its outcome.
    pub async fn apply(&mut self, p: &Partition, op: &Op) -> caskade::Result<()> {
        let r = match op {
            Op::Put(k, v) => p.put(k, v).await,
            Op::Delete(k) => p.delete(k).await.map(drop),
        };
        let allowed = self.0.entry(op.key().to_owned()).or_insert_with(|| vec![None]);
        match &r {
            Ok(()) => *allowed = vec![op.value()],
            // Refused before any I/O.
            Err(Error::Poisoned { .. }) => {}
            Err(_) if !allowed.contains(&op.value()) => allowed.push(op.value()),
            Err(_) => {}
        }
        r
    }

    /// Records `op`, acknowledged but maybe not durable, as a doubt.
    pub fn doubt(&mut self, op: &Op) {
        let allowed = self.0.entry(op.key().to_owned()).or_insert_with(|| vec![None]);
        if !allowed.contains(&op.value()) {
            allowed.push(op.value());
        }
    }

    /// Asserts that `state` is one the model allows.
    pub fn check(&self, state: &BTreeMap<String, String>, ctx: &str) {
        for (k, allowed) in &self.0 {
            let got = state.get(k).cloned();
            assert!(
                allowed.contains(&got),
                "{ctx}: key {k} holds {got:?}, allowed {allowed:?}"
            );
        }
        for k in state.keys() {
            assert!(self.0.contains_key(k), "{ctx}: key {k} was never written");
        }
    }
}

/// Every entry of `p`, read through a snapshot.
pub async fn read_state(p: &Partition) -> caskade::Result<BTreeMap<String, String>> {
    let snap = p.snapshot().await?;
    let mut state = BTreeMap::new();
    for entry in snap.iter() {
        let (k, v) = entry?;
        let utf8 = |b: &[u8]| String::from_utf8(b.to_vec()).expect("the workloads write UTF-8");
        state.insert(utf8(&k), utf8(&v));
    }
    assert_eq!(state.len(), snap.len());
    Ok(state)
}

/// The file ids the partition's manifest lists, decoded here independently
/// of the engine (magic, version, count, generation, next id, ids, CRC32).
pub fn manifest_ids(disk: &SimDisk, dir: &Path) -> Vec<u32> {
    manifest(disk, dir).0
}

/// The manifest's file ids and its next file id.
pub fn manifest(disk: &SimDisk, dir: &Path) -> (Vec<u32>, u32) {
    let b = disk
        .read_file(dir.join("MANIFEST"))
        .unwrap_or_else(|| panic!("no manifest in {dir:?}: {:?}", disk.list_files()));
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    assert!(b.len() >= 36 && &b[..8] == b"CASKMANI", "not a manifest: {b:?}");
    let count = u32_at(12) as usize;
    assert_eq!(b.len(), 28 + 4 * count + 4, "manifest length for {count} files");
    let crc = u32_at(b.len() - 4);
    assert_eq!(crc, crc32fast::hash(&b[..b.len() - 4]), "manifest checksum");
    let ids: Vec<u32> = (0..count).map(|i| u32_at(28 + 4 * i)).collect();
    let next = u32_at(24);
    assert!(ids.iter().all(|&id| id < next), "ids {ids:?} vs next id {next}");
    (ids, next)
}

/// The names of the files in `dir`.
pub fn names_in(disk: &SimDisk, dir: &Path) -> Vec<String> {
    let names = disk.list_files().into_iter();
    names
        .filter_map(|path| Some(path.strip_prefix(dir).ok()?.to_str()?.to_owned()))
        .collect()
}

/// The data (`true`) and hint (`false`) files in `dir`, by id.
pub fn files_in(disk: &SimDisk, dir: &Path) -> Vec<(u32, bool)> {
    let mut out = Vec::new();
    for name in names_in(disk, dir) {
        let name = name.as_str();
        let (stem, ext) = name.split_once('.').unwrap_or((name, ""));
        let id = || {
            assert!(
                stem.len() == 8 && stem.bytes().all(|b| b.is_ascii_digit()),
                "{name}"
            );
            stem.parse().unwrap()
        };
        match ext {
            "data" => out.push((id(), true)),
            "hint" => out.push((id(), false)),
            _ => {}
        }
    }
    out
}

/// Asserts that `dir` holds a data file for every id the manifest lists and
/// no data or hint file it does not list, nor a temporary file.
pub fn assert_only_listed(disk: &SimDisk, dir: &Path, ctx: &str) {
    let tmp: Vec<String> = names_in(disk, dir)
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "{ctx}: temporary files left: {tmp:?}");
    let ids = manifest_ids(disk, dir);
    let files = files_in(disk, dir);
    for (id, data) in &files {
        assert!(
            ids.contains(id),
            "{ctx}: {id:08} ({}) not in the manifest {ids:?}",
            ["hint", "data"][*data as usize]
        );
    }
    for id in &ids {
        assert!(
            files.contains(&(*id, true)),
            "{ctx}: listed data file {id:08} missing"
        );
    }
}

/// Bytes of the data files in `dir`.
pub fn data_bytes(disk: &SimDisk, dir: &Path) -> u64 {
    files_in(disk, dir)
        .into_iter()
        .filter(|f| f.1)
        .map(|(id, _)| disk.read_file(dir.join(format!("{id:08}.data"))).unwrap().len() as u64)
        .sum()
}

/// The directory of partition `p` of `db`.
pub fn partition_dir(db: &Db) -> PathBuf {
    db.describe_partition("p").unwrap().dir.unwrap()
}

/// Reopens after a crash and checks everything: the state is one `model`
/// allows, no unlisted file is left, the partition takes a write and a
/// delete and compacts again keeping the state, and all of it survives
/// another power loss. Returns the settled state.
pub async fn check_reopen(disk: &SimDisk, dir: &Path, model: &Model, ctx: &str) -> BTreeMap<String, String> {
    let fail = |what: &str, e: Error| -> ! { panic!("{ctx}: {what}: {e:?}") };
    let db = open(disk).await.unwrap_or_else(|e| fail("reopen", e));
    let p = db.partition("p").await.unwrap_or_else(|e| fail("partition", e));
    let mut state = read_state(&p).await.unwrap_or_else(|e| fail("read", e));
    model.check(&state, ctx);
    assert_only_listed(disk, dir, ctx);

    p.put("after-reopen", "x")
        .await
        .unwrap_or_else(|e| fail("put after reopen", e));
    state.insert("after-reopen".into(), "x".into());
    if let Some(victim) = state.keys().find(|k| k.starts_with('k')).cloned() {
        assert!(p.delete(&victim).await.unwrap_or_else(|e| fail("delete", e)));
        state.remove(&victim);
    }
    let report = p
        .compact()
        .await
        .unwrap_or_else(|e| fail("compact after reopen", e));
    assert!(report.performed(), "{ctx}: {report:?}");
    let compacted = read_state(&p)
        .await
        .unwrap_or_else(|e| fail("read after compacting", e));
    assert_eq!(compacted, state, "{ctx}: the second compaction changed the state");
    db.close().await.unwrap_or_else(|e| fail("close", e));
    disk.power_loss(true);

    let db = open(disk).await.unwrap_or_else(|e| fail("second reopen", e));
    let p = db.partition("p").await.unwrap_or_else(|e| fail("partition", e));
    let last = read_state(&p)
        .await
        .unwrap_or_else(|e| fail("read after the second reopen", e));
    assert_eq!(last, state, "{ctx}: after the second compaction and a power loss");
    assert_only_listed(disk, dir, ctx);
    db.close().await.unwrap_or_else(|e| fail("close", e));
    state
}
