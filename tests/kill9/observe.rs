//! Reading back what a killed child left: open the directory with the
//! library (running recovery), list every partition and read every live
//! entry through a snapshot.

use std::io;
use std::path::Path;

use caskade::{CompactionScheduler, Db};

use crate::model::Observed;

/// Copies the directory tree `from` to `to` (regular files and directories;
/// the database has nothing else). The child is dead, so nothing changes
/// meanwhile, and what the copy reads is what a reopening process would:
/// the page cache, whatever was synced.
pub fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Opens the database at `dir`, recovering it, and reads everything.
///
/// # Errors
/// The database or a partition fails to open (recovery failed), or close fails.
pub async fn observe(dir: &Path) -> Result<Observed, String> {
    let db = Db::builder(dir)
        .compaction_scheduler(CompactionScheduler::disabled())
        .open()
        .await
        .map_err(|e| format!("reopen {dir:?}: {e}"))?;
    let mut observed = Observed::default();
    for name in db.list_partitions() {
        let p = db
            .partition(&name)
            .await
            .map_err(|e| format!("open partition {name}: {e}"))?;
        let snapshot = p
            .snapshot()
            .await
            .map_err(|e| format!("snapshot of {name}: {e}"))?;
        let entries = observed.parts.entry(name.clone()).or_default();
        for entry in snapshot.iter() {
            match entry {
                Ok((key, value)) => {
                    entries.insert(String::from_utf8_lossy(&key).into_owned(), value.to_vec());
                }
                Err(e) => observed.read_errors.push(format!("{name}: {e}")),
            }
        }
    }
    db.close().await.map_err(|e| format!("close {dir:?}: {e}"))?;
    Ok(observed)
}
