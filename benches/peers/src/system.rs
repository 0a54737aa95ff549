//! What the run reads from the system: the process's resident memory, the
//! size of a directory tree, the load average and the CPU count.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// The process's resident set size in bytes (`VmRSS` of `/proc/self/status`).
///
/// # Errors
/// If the file cannot be read or holds no `VmRSS` line.
pub fn rss_bytes() -> Result<u64> {
    let status = fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    parse_vm_rss(&status).context("no VmRSS line in /proc/self/status")
}

/// The `VmRSS:  <n> kB` line of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The size of every regular file under a directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DirSize {
    /// Sum of the files' lengths.
    pub bytes: u64,
    /// Sum of the blocks allocated to them (`st_blocks` × 512; smaller for
    /// sparse files, larger for preallocated ones).
    pub allocated: u64,
    /// Number of files.
    pub files: u64,
}

/// Sums the sizes of every regular file under `dir`, recursively.
///
/// # Errors
/// Any I/O error other than a file vanishing meanwhile.
pub fn dir_size(dir: &Path) -> Result<DirSize> {
    let mut total = DirSize::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let entry = entry?;
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total.bytes += meta.len();
                total.allocated += meta.blocks() * 512;
                total.files += 1;
            }
        }
    }
    Ok(total)
}

/// Syncs the file system holding `dir` (`syncfs`): writes back every dirty
/// page of it, so the next phase does not pay for an earlier one's.
///
/// # Errors
/// If `dir` cannot be opened or the sync fails.
pub fn sync_fs(dir: &Path) -> Result<()> {
    let d = fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    rustix::fs::syncfs(&d).with_context(|| format!("syncfs of {}", dir.display()))
}

/// The 1-minute load average (`/proc/loadavg`), if readable.
pub fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Number of CPUs available to the process.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss_in_kilobytes() {
        let status = "Name:\tpeers\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert!(rss_bytes().unwrap() > 0);
    }

    #[test]
    fn dir_size_counts_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("a"), [0u8; 100]).unwrap();
        fs::write(dir.path().join("sub/b"), [0u8; 28]).unwrap();
        let size = dir_size(dir.path()).unwrap();
        assert_eq!((size.bytes, size.files), (128, 2));
    }
}
