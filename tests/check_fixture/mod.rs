//! Shared by `check_inspect.rs`: a closed database on a simulated disk
//! written by a known workload (counted independently of the files), paths
//! and record offsets of its files, and a check that proves itself
//! read-only.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use caskade::{
    CompactionScheduler, Db, OfflineDb, PartitionOptions, Persistence, ProblemKind, SimDisk, SimOp,
};

pub const ROOT: &str = "/db";

/// A problem as the tests compare it: kind, path, offset.
pub type Found = (ProblemKind, PathBuf, Option<u64>);
pub const FILE_HEADER: usize = 32;
pub const RECORD_HEADER: usize = 25;

/// What the workload wrote to partition `p`, counted independently of the
/// files.
#[derive(Debug, Default)]
pub struct Written {
    pub records: u64,
    pub tombstones: u64,
    /// Bytes of every record written.
    pub bytes: u64,
    /// Key → value of the live keys.
    pub model: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Written {
    pub fn live_bytes(&self) -> u64 {
        let rec = |k: &Vec<u8>, v: &Vec<u8>| (RECORD_HEADER + k.len() + v.len()) as u64;
        self.model.iter().map(|(k, v)| rec(k, v)).sum()
    }
}

pub struct Fixture {
    pub disk: SimDisk,
    /// Partition `p`'s directory.
    pub part: PathBuf,
    pub written: Written,
}

pub async fn open(disk: &SimDisk) -> Db {
    Db::builder(ROOT)
        .simulated_disk(disk.clone())
        .max_file_size(4096)
        .compaction_scheduler(CompactionScheduler::disabled())
        .open()
        .await
        .unwrap()
}

/// A closed database: partition `p` with several sealed files, overwrites,
/// deletes and a batch; `q` with two keys; `m` memory-only.
pub async fn fixture() -> Fixture {
    let disk = SimDisk::new();
    let db = open(&disk).await;
    let p = db.partition("p").await.unwrap();
    let mut w = Written::default();
    let put = |w: &mut Written, k: Vec<u8>, v: Vec<u8>| {
        w.records += 1;
        w.bytes += (RECORD_HEADER + k.len() + v.len()) as u64;
        w.model.insert(k, v);
    };
    for i in 0..120usize {
        let (k, v) = (format!("key-{i:03}"), format!("value {i} {}", "x".repeat(i % 50)));
        p.put(&k, &v).await.unwrap();
        put(&mut w, k.into_bytes(), v.into_bytes());
    }
    for i in (0..120usize).step_by(3) {
        let (k, v) = (format!("key-{i:03}"), format!("second {i}"));
        p.put(&k, &v).await.unwrap();
        put(&mut w, k.into_bytes(), v.into_bytes());
    }
    for i in (0..130usize).step_by(7) {
        let k = format!("key-{i:03}");
        p.delete(&k).await.unwrap();
        // A delete of an absent key writes nothing.
        if w.model.remove(k.as_bytes()).is_some() {
            w.records += 1;
            w.tombstones += 1;
            w.bytes += (RECORD_HEADER + k.len()) as u64;
        }
    }
    let mut b = p.batch();
    for i in 0..3 {
        b.put(format!("batch-{i}"), "b");
    }
    b.commit().await.unwrap();
    for i in 0..3 {
        put(&mut w, format!("batch-{i}").into_bytes(), b"b".to_vec());
    }
    let part = db.describe_partition("p").unwrap().dir.unwrap();
    let q = db.partition("q").await.unwrap();
    q.put("a", "1").await.unwrap();
    q.put("b", "2").await.unwrap();
    let memory = PartitionOptions::default().persistence(Persistence::Memory);
    db.create_partition("m", memory)
        .await
        .unwrap()
        .put("k", "v")
        .await
        .unwrap();
    db.close().await.unwrap();
    Fixture {
        disk,
        part,
        written: w,
    }
}

pub fn data(part: &Path, id: u32) -> PathBuf {
    part.join(format!("{id:08}.data"))
}

pub fn hint(part: &Path, id: u32) -> PathBuf {
    part.join(format!("{id:08}.hint"))
}

/// The data file ids of `part`, sorted (the last is the active file: no
/// compaction ran).
pub fn data_ids(disk: &SimDisk, part: &Path) -> Vec<u32> {
    let mut ids: Vec<u32> = disk
        .list_files()
        .iter()
        .filter(|f| f.parent() == Some(part))
        .filter_map(|f| f.file_name()?.to_str()?.strip_suffix(".data")?.parse().ok())
        .collect();
    ids.sort();
    ids
}

/// Offsets of the records of an undamaged data file.
pub fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let (mut out, mut at) = (Vec::new(), FILE_HEADER);
    while at < bytes.len() {
        out.push(at);
        at += RECORD_HEADER + u32_at(at + 17) + u32_at(at + 21);
    }
    out
}

/// Offset of the last record of an undamaged catalog (32-byte header;
/// records of 8 bytes plus the body length at 4..8).
pub fn last_catalog_record(bytes: &[u8]) -> usize {
    let (mut at, mut last) = (32, 32);
    while at < bytes.len() {
        last = at;
        at += 8 + u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
    }
    last
}

/// Every file's content: to prove a check changed nothing.
pub fn contents(disk: &SimDisk) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    disk.list_files()
        .into_iter()
        .map(|f| (f.clone(), disk.read_file(&f)))
        .collect()
}

/// Operations that change a disk: none may happen during a check.
pub const WRITING_OPS: [SimOp; 9] = [
    SimOp::Create,
    SimOp::Write,
    SimOp::SetLen,
    SimOp::SyncData,
    SimOp::SyncAll,
    SimOp::Rename,
    SimOp::Remove,
    SimOp::CreateDir,
    SimOp::SyncDir,
];

/// Checks and inspects, proving that nothing was changed; returns the
/// problems as (kind, path, offset).
pub fn run_check(disk: &SimDisk) -> Vec<Found> {
    let before = contents(disk);
    let counts: Vec<u64> = WRITING_OPS.iter().map(|&op| disk.op_count(op)).collect();
    let offline = OfflineDb::open_simulated(ROOT, disk).unwrap();
    let report = offline.check();
    let inspected = offline.inspect();
    drop(offline);
    let after: Vec<u64> = WRITING_OPS.iter().map(|&op| disk.op_count(op)).collect();
    assert_eq!(
        counts, after,
        "check or inspect changed the disk ({WRITING_OPS:?})"
    );
    assert!(contents(disk) == before, "check or inspect changed a file");
    assert_eq!(report.problems, inspected.problems, "check and inspect agree");
    report
        .problems
        .iter()
        .map(|p| (p.kind, p.path.clone(), p.offset))
        .collect()
}
