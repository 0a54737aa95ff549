//! The catalog: the durable list of partitions (id, name, options), kept as
//! a log in `<root>/CATALOG` (layout in `format/catalog.rs`).
//!
//! Creating a partition appends a create record and `fdatasync`s before the
//! partition exists for anyone; dropping appends a drop record before any of
//! its files are removed. When more than half the records are dead the log
//! is rewritten with the atomic-replace recipe. Ids are never reused (a
//! rewrite starts with the next id), so a leftover directory of a dropped
//! partition can never be mistaken for a new one.
//!
//! Only a torn append (the log ends inside a record, or in zeros) is cut
//! off at open; any other damage is [`Error::Corrupt`]: silently forgetting
//! a partition would make its directory look like an orphan. A "torn" end
//! followed by the directory of a partition the kept records never created
//! is damage too (a length field made too large), not a torn append.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::catalog::{
    CATALOG_NAME, CATALOG_TMP, CatalogRecord, Decoded, HEADER_LEN, decode_header, decode_record,
    encode_header,
};
use crate::name::{self, PARTITIONS_DIR};
use crate::options::PartitionOptions;
use crate::partition::files::{read_all, replace_atomically, sync_parent};
use crate::storage::{Backend, Storage, StorageFile};

/// Largest catalog file accepted at open (about a million partitions).
pub(crate) const MAX_CATALOG_LEN: u64 = 1 << 30;
/// A rewrite happens when dead records exceed both this and the live ones.
const REWRITE_MIN_DEAD: usize = 1024;

/// One live partition as the catalog records it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CatalogEntry {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) options: PartitionOptions,
}

/// The open catalog log. Methods do blocking I/O; the caller serialises them.
#[derive(Debug)]
pub(crate) struct Catalog {
    fs: Backend,
    root: PathBuf,
    path: PathBuf,
    file: Arc<dyn StorageFile>,
    salt: u64,
    end: u64,
    next_id: u64,
    live: HashMap<u64, CatalogEntry>,
    dead: usize,
    /// Set when an append or rewrite failed: its outcome on disk is
    /// unknown, so no further change is made until the database reopens.
    failed: bool,
}

impl Catalog {
    /// Opens the catalog of `root`, creating it for a new database, cutting
    /// off a torn append, and removing the directories of partitions it does
    /// not list (leftovers of a drop or of a create that never committed).
    pub(crate) fn open(backend: &Backend, root: &Path) -> Result<Catalog> {
        let fs = &**backend;
        let path = root.join(CATALOG_NAME);
        let tmp = root.join(CATALOG_TMP);
        match fs.remove(&tmp) {
            Ok(()) => sync_parent(fs, &tmp)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &tmp, e)),
        }
        let partitions = root.join(PARTITIONS_DIR);
        let dirs = fs
            .list(&partitions)
            .map_err(|e| Error::io("list", &partitions, e))?;
        let bytes = match read_all(fs, &path, MAX_CATALOG_LEN) {
            Ok(b) => b,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                if dirs.iter().any(|d| name::parse_dir_name(d).is_some()) {
                    return Err(Error::corrupt(
                        &path,
                        0,
                        "the catalog is missing but partition directories exist",
                    ));
                }
                let mut fresh = encode_header(rand::random()).to_vec();
                let salt = decode_header(&fresh).expect("just encoded");
                CatalogRecord::NextId(1).encode(salt, &mut fresh);
                replace_atomically(fs, root, CATALOG_NAME, CATALOG_TMP, &fresh)?;
                fresh
            }
            Err(e) => return Err(e),
        };
        let mut cat = Catalog::parse(backend, root, path, &bytes, &dirs)?;
        // What was read may be only in the page cache (an append whose sync
        // failed before a crash): make it durable before anything builds on it.
        cat.file
            .sync_all()
            .map_err(|e| Error::io("sync_all", &cat.path, e))?;
        cat.remove_orphans(fs, &dirs)?;
        // A directory under an id never handed out (a create whose record was
        // lost) is left alone, and never reused for a new partition.
        if let Some(max) = dirs.iter().filter_map(|d| name::parse_dir_name(d)).max() {
            cat.next_id = cat.next_id.max(max.saturating_add(1));
        }
        Ok(cat)
    }

    /// Decodes the log; `dirs` are the entries of the partitions directory.
    fn parse(fs: &Backend, root: &Path, path: PathBuf, bytes: &[u8], dirs: &[String]) -> Result<Catalog> {
        let salt = decode_header(bytes).map_err(|e| Error::corrupt(&path, 0, e.0))?;
        let mut live: HashMap<u64, CatalogEntry> = HashMap::new();
        let mut names: HashMap<String, u64> = HashMap::new();
        let (mut next_id, mut dead, mut at) = (1u64, 0usize, HEADER_LEN);
        // Ids are created in increasing order, in the log and in a rewrite.
        let mut last_created = 0u64;
        while at < bytes.len() {
            let bad = |reason: &str| Error::corrupt(&path, at as u64, reason.to_owned());
            let (rec, len) = match decode_record(&bytes[at..], salt) {
                Decoded::Record(rec, len) => (rec, len),
                Decoded::Truncated => break,
                Decoded::Bad(_) if bytes[at..].iter().all(|&b| b == 0) => break,
                Decoded::Bad(reason) => return Err(bad(reason)),
            };
            match rec {
                CatalogRecord::Create { id, name, options } => {
                    if id <= last_created || names.contains_key(&name) {
                        return Err(bad("catalog creates a partition id or name twice"));
                    }
                    // Ids are handed out below u64::MAX (see `create`).
                    let Some(after) = id.checked_add(1) else {
                        return Err(bad("catalog partition id out of range"));
                    };
                    last_created = id;
                    next_id = next_id.max(after);
                    names.insert(name.clone(), id);
                    live.insert(id, CatalogEntry { id, name, options });
                }
                CatalogRecord::Drop { id } => {
                    let Some(entry) = live.remove(&id) else {
                        return Err(bad("catalog drops a partition it does not list"));
                    };
                    names.remove(&entry.name);
                    dead += 2;
                }
                CatalogRecord::NextId(id) => next_id = next_id.max(id),
            }
            at += len;
        }
        // A torn append is a create or drop whose append never completed: a
        // create's directory is made only after its record is durable. So a
        // directory under an id the kept records never handed out means the
        // "torn" record was a complete one with a damaged length, and
        // cutting it would forget that partition (and every later record).
        let unlisted = dirs
            .iter()
            .filter_map(|d| name::parse_dir_name(d))
            .find(|&id| id >= next_id);
        if at < bytes.len()
            && let Some(id) = unlisted
        {
            return Err(Error::corrupt(
                &path,
                at as u64,
                format!(
                    "damaged catalog record: partition directory {id} exists but no record before it hands out its id"
                ),
            ));
        }
        let file = fs.open(&path, true).map_err(|e| Error::io("open", &path, e))?;
        if at < bytes.len() {
            tracing::warn!(
                offset = at,
                len = bytes.len(),
                "catalog: cutting off a torn append"
            );
            file.set_len(at as u64)
                .map_err(|e| Error::io("set_len", &path, e))?;
            file.sync_all().map_err(|e| Error::io("sync_all", &path, e))?;
        }
        Ok(Catalog {
            fs: Arc::clone(fs),
            root: root.to_path_buf(),
            path,
            file,
            salt,
            end: at as u64,
            next_id,
            live,
            dead,
            failed: false,
        })
    }

    /// Removes every partition directory whose id was handed out but is not
    /// live. Unknown entries (other names, ids never handed out) are left
    /// alone: caskade deletes only what it can prove is its own garbage.
    fn remove_orphans(&self, fs: &dyn Storage, dirs: &[String]) -> Result<()> {
        for d in dirs {
            match name::parse_dir_name(d) {
                Some(id) if id < self.next_id && !self.live.contains_key(&id) => {
                    let dir = self.root.join(PARTITIONS_DIR).join(d);
                    tracing::info!(dir = %dir.display(), "removing the directory of a dropped partition");
                    remove_partition_dir(fs, &dir)?;
                }
                Some(_) => {}
                None => tracing::warn!(entry = %d, "ignoring an unknown entry in the partitions directory"),
            }
        }
        Ok(())
    }

    /// Every live partition.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.live.values()
    }

    /// Durably records a new partition and returns its entry.
    pub(crate) fn create(&mut self, name: &str, options: PartitionOptions) -> Result<CatalogEntry> {
        // Only a forged next-id record or directory name gets here.
        let Some(after) = self.next_id.checked_add(1) else {
            return Err(Error::corrupt(
                &self.path,
                self.end,
                "catalog has no partition id left",
            ));
        };
        let entry = CatalogEntry {
            id: self.next_id,
            name: name.to_owned(),
            options,
        };
        self.append(&CatalogRecord::Create {
            id: entry.id,
            name: entry.name.clone(),
            options,
        })?;
        self.next_id = after;
        self.live.insert(entry.id, entry.clone());
        Ok(entry)
    }

    /// Durably records that partition `id` is dropped.
    pub(crate) fn drop_partition(&mut self, id: u64) -> Result<()> {
        self.append(&CatalogRecord::Drop { id })?;
        self.live.remove(&id);
        self.dead += 2;
        // The drop is durable already: a failed rewrite is not its failure
        // (further changes are refused until the database reopens).
        if self.dead >= REWRITE_MIN_DEAD
            && self.dead > self.live.len()
            && let Err(e) = self.rewrite()
        {
            tracing::error!(error = %e, "catalog rewrite failed; partition changes refused until reopen");
        }
        Ok(())
    }

    fn check(&self) -> Result<()> {
        if self.failed {
            return Err(Error::Poisoned {
                partition: "(catalog)".into(),
            });
        }
        Ok(())
    }

    fn append(&mut self, rec: &CatalogRecord) -> Result<()> {
        self.check()?;
        let mut buf = Vec::new();
        rec.encode(self.salt, &mut buf);
        let written = self
            .file
            .write_all_at(&buf, self.end)
            .map_err(|e| Error::io("write", &self.path, e))
            .and_then(|()| {
                self.file
                    .sync_data()
                    .map_err(|e| Error::io("sync_data", &self.path, e))
            });
        if let Err(e) = written {
            self.failed = true;
            // Undo the append, so that neither a later open nor a later sync
            // makes a change take effect that was reported as failed.
            let undone = self.file.set_len(self.end).and_then(|()| self.file.sync_all());
            if let Err(u) = undone {
                tracing::error!(error = %u, "could not undo a failed catalog append");
            }
            tracing::error!(error = %e, "catalog append failed; partition changes refused until reopen");
            return Err(e);
        }
        self.end += buf.len() as u64;
        Ok(())
    }

    /// Replaces the log with one holding only the live partitions.
    fn rewrite(&mut self) -> Result<()> {
        let salt = rand::random();
        let mut buf = encode_header(salt).to_vec();
        CatalogRecord::NextId(self.next_id).encode(salt, &mut buf);
        let mut live: Vec<&CatalogEntry> = self.live.values().collect();
        live.sort_by_key(|e| e.id);
        for e in live {
            CatalogRecord::Create {
                id: e.id,
                name: e.name.clone(),
                options: e.options,
            }
            .encode(salt, &mut buf);
        }
        // The file behind `self.file` may or may not be replaced after a
        // failure: appending to it could be lost, so stop changing the catalog.
        self.failed = true;
        replace_atomically(&*self.fs, &self.root, CATALOG_NAME, CATALOG_TMP, &buf)?;
        self.file = (self.fs.open(&self.path, true)).map_err(|e| Error::io("open", &self.path, e))?;
        self.salt = salt;
        self.end = buf.len() as u64;
        self.dead = 0;
        self.failed = false;
        tracing::info!(partitions = self.live.len(), "catalog rewritten");
        Ok(())
    }
}

/// Removes a partition directory and the files in it, then syncs the
/// partitions directory. A symbolic link standing there is removed itself,
/// never followed.
pub(crate) fn remove_partition_dir(fs: &dyn Storage, dir: &Path) -> Result<()> {
    let names = match fs.list(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            fs.remove(dir).map_err(|e| Error::io("remove", dir, e))?;
            return sync_parent(fs, dir);
        }
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    for n in names {
        let path = dir.join(n);
        fs.remove(&path).map_err(|e| Error::io("remove", &path, e))?;
    }
    fs.remove_dir(dir).map_err(|e| Error::io("remove_dir", dir, e))?;
    sync_parent(fs, dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sim::SimDisk;

    fn disk() -> (SimDisk, Backend, PathBuf) {
        let disk = SimDisk::new();
        let fs: Backend = Arc::new(disk.clone());
        let root = PathBuf::from("/db");
        fs.create_dir(&root).unwrap();
        fs.create_dir(&root.join(PARTITIONS_DIR)).unwrap();
        (disk, fs, root)
    }

    fn names(cat: &Catalog) -> Vec<(u64, String)> {
        let mut v: Vec<_> = cat.entries().map(|e| (e.id, e.name.clone())).collect();
        v.sort();
        v
    }

    #[test]
    fn rewrite_keeps_live_entries_and_never_reuses_ids() {
        let (_disk, fs, root) = disk();
        let mut cat = Catalog::open(&fs, &root).unwrap();
        for i in 0..700 {
            cat.create(&format!("p{i}"), PartitionOptions::default()).unwrap();
        }
        for id in 1..=600 {
            cat.drop_partition(id).unwrap();
        }
        let before = fs.open(&root.join(CATALOG_NAME), false).unwrap().len().unwrap();
        assert!(before < 200 * 100, "rewritten: {before} bytes");
        let want = names(&cat);
        assert_eq!(want.len(), 100);
        drop(cat);
        let mut cat = Catalog::open(&fs, &root).unwrap();
        assert_eq!(names(&cat), want);
        let e = cat.create("new", PartitionOptions::default()).unwrap();
        assert_eq!(e.id, 701, "ids of dropped partitions are not reused");
    }

    #[test]
    fn torn_append_is_cut_and_other_damage_is_corrupt() {
        let (disk, fs, root) = disk();
        let mut cat = Catalog::open(&fs, &root).unwrap();
        cat.create("a", PartitionOptions::default()).unwrap();
        cat.create("b", PartitionOptions::default()).unwrap();
        drop(cat);
        let path = root.join(CATALOG_NAME);
        let good = disk.read_file(&path).unwrap();
        // A torn append: the start of a record, or zeros.
        // (The log starts with a 17-byte next-id record, then a create.)
        let create = HEADER_LEN + 17;
        for tail in [&good[create..create + 20], &[0u8; 40][..]] {
            let mut torn = good.clone();
            torn.extend_from_slice(tail);
            disk.write_file(&path, &torn).unwrap();
            let cat = Catalog::open(&fs, &root).unwrap();
            assert_eq!(names(&cat), [(1, "a".into()), (2, "b".into())]);
            assert_eq!(disk.read_file(&path).unwrap(), good, "the tail is cut");
        }
        // A damaged length making the last create look torn: its partition's
        // directory exists, so it is corruption, and nothing is cut.
        let last = good.len() - 71; // The create of "b": 8 + 63 bytes.
        let mut long = good.clone();
        long[last + 4] = 0xFF;
        disk.write_file(&path, &long).unwrap();
        fs.create_dir(&name::partition_dir(&root, 2)).unwrap();
        assert!(matches!(Catalog::open(&fs, &root), Err(Error::Corrupt { .. })));
        assert_eq!(disk.read_file(&path).unwrap(), long, "nothing was cut");
        // Without that directory (a create that never got further) it is
        // a torn append, and cut.
        fs.remove_dir(&name::partition_dir(&root, 2)).unwrap();
        let cat = Catalog::open(&fs, &root).unwrap();
        assert_eq!(names(&cat), [(1, "a".into())]);
        drop(cat);
        // A flipped byte inside the first record is not a torn append.
        let mut bad = good.clone();
        bad[HEADER_LEN + 12] ^= 1;
        disk.write_file(&path, &bad).unwrap();
        assert!(matches!(Catalog::open(&fs, &root), Err(Error::Corrupt { .. })));
        // A lost catalog next to partition directories is not an empty database.
        disk.write_file(&path, &good).unwrap();
        fs.create_dir(&name::partition_dir(&root, 1)).unwrap();
        fs.remove(&path).unwrap();
        assert!(matches!(Catalog::open(&fs, &root), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn the_largest_id_is_corrupt_not_a_panic() {
        let (disk, fs, root) = disk();
        drop(Catalog::open(&fs, &root).unwrap());
        let path = root.join(CATALOG_NAME);
        let fresh = disk.read_file(&path).unwrap();
        let salt = decode_header(&fresh).unwrap();
        let options = PartitionOptions::default();
        let (id, name) = (u64::MAX, "max".into());
        let mut log = fresh.clone();
        CatalogRecord::Create { id, name, options }.encode(salt, &mut log);
        disk.write_file(&path, &log).unwrap();
        assert!(matches!(Catalog::open(&fs, &root), Err(Error::Corrupt { .. })));
        // A next-id of u64::MAX opens, but leaves no id to hand out.
        let mut log = fresh;
        CatalogRecord::NextId(u64::MAX).encode(salt, &mut log);
        disk.write_file(&path, &log).unwrap();
        let mut cat = Catalog::open(&fs, &root).unwrap();
        assert!(matches!(cat.create("a", options), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn orphans_are_removed_and_unknown_entries_kept() {
        let (disk, fs, root) = disk();
        let mut cat = Catalog::open(&fs, &root).unwrap();
        let a = cat.create("a", PartitionOptions::default()).unwrap();
        let b = cat.create("b", PartitionOptions::default()).unwrap();
        cat.drop_partition(a.id).unwrap();
        drop(cat);
        for id in [a.id, b.id, 99] {
            let dir = name::partition_dir(&root, id);
            fs.create_dir(&dir).unwrap();
            disk.write_file(dir.join("00000001.data"), b"x").unwrap();
        }
        disk.write_file(root.join(PARTITIONS_DIR).join("README"), b"mine")
            .unwrap();
        let cat = Catalog::open(&fs, &root).unwrap();
        assert_eq!(names(&cat), [(b.id, "b".into())]);
        let left = fs.list(&root.join(PARTITIONS_DIR)).unwrap();
        assert!(
            !left.contains(&name::dir_name(a.id)),
            "the dropped partition's directory is removed"
        );
        assert!(left.contains(&name::dir_name(b.id)));
        assert!(
            left.contains(&name::dir_name(99)),
            "an id never handed out is not ours to delete"
        );
        assert!(left.contains(&"README".to_owned()));
    }
}
