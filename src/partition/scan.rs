//! Sequential scan of a data file's records, used by recovery (for the active
//! file and for sealed files without a usable hint) and to build hints. Its
//! forward [`Window`] also serves the compaction's reads.
//!
//! The scan reads forward in 1 MiB windows, verifies each record's header
//! CRC and limits before reading its body, and never resynchronises: the
//! first bad record ends the scan (a torn tail of the active file) or fails
//! it (`Corrupt`, in a sealed file). Records of a batch whose last record is
//! missing are never reported.

use crate::config::{MAX_KEY_LEN, MAX_VALUE_CEILING};
use crate::error::{Error, Result};
use crate::format::data_file;
use crate::format::record::{self, HEADER_LEN, RecordHeader};
use crate::index::Location;
use crate::snapshot::DataFile;

const WINDOW: usize = 1 << 20;

/// How to treat a bad record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanMode {
    /// Immutable file: any bad or incomplete record is corruption.
    Sealed,
    /// The active file: a bad or incomplete record ends the valid prefix.
    Active,
}

/// One committed record found by the scan.
#[derive(Debug)]
pub(crate) struct ScannedRecord<'a> {
    pub(crate) seq: u64,
    pub(crate) flags: u8,
    pub(crate) key: &'a [u8],
    pub(crate) location: Location,
}

/// Where the valid prefix of a file ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanEnd {
    /// End of the last committed record (the file's valid length).
    pub(crate) valid_end: u64,
    /// Number of committed records reported.
    pub(crate) records: u64,
    /// Whether everything after `valid_end` is provably the unfinished end
    /// of the file: complete records of a batch whose last record is missing,
    /// then at most one record cut short by the end of the file (its header
    /// verified, its length past the end) or an incomplete header. Such bytes
    /// can hold no acknowledged write. `false` when the scan stopped at a
    /// damaged record, after which anything may follow.
    pub(crate) torn_end: bool,
}

/// Forward reads of one file through a 1 MiB buffer.
pub(crate) struct Window<'f> {
    file: &'f DataFile,
    len: u64,
    buf: Vec<u8>,
    start: u64,
}

impl<'f> Window<'f> {
    /// A window over the first `len` bytes of `file`.
    pub(crate) fn new(file: &'f DataFile, len: u64) -> Self {
        Window {
            file,
            len,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// Bytes `[at, at + n)`, reading them if needed. The caller guarantees
    /// `at + n <= len`, so `n` is bounded by the file's real size.
    pub(crate) fn get(&mut self, at: u64, n: usize) -> Result<&[u8]> {
        let end = at + n as u64;
        if at < self.start || end > self.start + self.buf.len() as u64 {
            let want = (self.len - at).min(WINDOW.max(n) as u64) as usize;
            self.buf.resize(want, 0);
            self.file
                .handle
                .read_exact_at(&mut self.buf, at)
                .map_err(|e| Error::io("read", &self.file.path, e))?;
            self.start = at;
        }
        let from = (at - self.start) as usize;
        Ok(&self.buf[from..from + n])
    }
}

/// A verified record of a batch not yet complete: reported (its bytes
/// taken from the window again, usually without a read) once the batch is.
struct Pending {
    seq: u64,
    flags: u8,
    key_len: usize,
    location: Location,
}

/// A whole record's bytes split into key and value.
fn key_value(bytes: &[u8], key_len: usize) -> (&[u8], &[u8]) {
    bytes[HEADER_LEN..].split_at(key_len)
}

/// Scans `file` (of length `len`) from just after its header, calling `each`
/// for every committed record in file order.
pub(crate) fn scan(
    file: &DataFile,
    len: u64,
    mode: ScanMode,
    mut each: impl FnMut(ScannedRecord<'_>),
) -> Result<ScanEnd> {
    let mut win = Window::new(file, len);
    let mut at = data_file::HEADER_LEN as u64;
    let mut end = ScanEnd {
        valid_end: at,
        records: 0,
        torn_end: true,
    };
    let mut pending: Vec<Pending> = Vec::new();
    let stop = |at: u64, reason: &str, end: ScanEnd, torn_end: bool| -> Result<ScanEnd> {
        match mode {
            ScanMode::Sealed => Err(Error::corrupt(&file.path, at, reason)),
            ScanMode::Active => Ok(ScanEnd { torn_end, ..end }),
        }
    };
    while at < len {
        if len - at < HEADER_LEN as u64 {
            return stop(at, "incomplete record header", end, true);
        }
        let head: [u8; HEADER_LEN] = win
            .get(at, HEADER_LEN)?
            .try_into()
            .expect("window returns exactly HEADER_LEN bytes");
        let header = match RecordHeader::decode(&head, file.salt, MAX_KEY_LEN, MAX_VALUE_CEILING) {
            Ok(h) => h,
            Err(e) => return stop(at, e.0, end, false),
        };
        let rec_len = header.record_len();
        if rec_len > len - at {
            return stop(at, "record extends past the end of the file", end, true);
        }
        let key_len = header.key_len as usize;
        let (key, value) = key_value(win.get(at, rec_len as usize)?, key_len);
        if let Err(e) = header.verify_body(file.salt, &head, key, value) {
            return stop(at, e.0, end, false);
        }
        let location = Location {
            file_id: file.id,
            len: rec_len as u32,
            offset: at,
        };
        at += rec_len;
        if header.batch_continues() {
            pending.push(Pending {
                seq: header.seq,
                flags: header.flags,
                key_len,
                location,
            });
            continue;
        }
        for p in pending.drain(..) {
            let (key, _) = key_value(win.get(p.location.offset, p.location.len as usize)?, p.key_len);
            each(ScannedRecord {
                seq: p.seq,
                flags: p.flags,
                key,
                location: p.location,
            });
            end.records += 1;
        }
        let (key, _) = key_value(win.get(location.offset, rec_len as usize)?, key_len);
        each(ScannedRecord {
            seq: header.seq,
            flags: header.flags,
            key,
            location,
        });
        end.records += 1;
        end.valid_end = at;
    }
    if !pending.is_empty() {
        return stop(end.valid_end, "batch without its last record", end, true);
    }
    Ok(end)
}

/// Whether a scanned record's flags mark a delete.
pub(crate) fn is_tombstone(flags: u8) -> bool {
    flags & record::FLAG_TOMBSTONE != 0
}
