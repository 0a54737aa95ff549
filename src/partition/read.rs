//! The read path: one index lookup in a published version, one positional
//! read, one checksum verification. Never touches the actor.

use bytes::Bytes;

use crate::config::{MAX_KEY_LEN, MAX_VALUE_CEILING};
use crate::error::{Error, Result};
use crate::format::record::{self, HEADER_LEN};
use crate::index::Location;
use crate::snapshot::Version;

/// Reads the record at `loc` and returns its key and value (slices of one
/// buffer). `expect_key`, if given, must match the stored key.
pub(crate) fn read_record(v: &Version, loc: Location, expect_key: Option<&[u8]>) -> Result<(Bytes, Bytes)> {
    let Some(file) = v.files.get(&loc.file_id) else {
        return Err(Error::corrupt(
            format!("file {}", loc.file_id),
            loc.offset,
            "index points into a file the version does not hold",
        ));
    };
    let mut buf = vec![0u8; loc.len as usize];
    file.handle
        .read_exact_at(&mut buf, loc.offset)
        .map_err(|e| Error::io("read", &file.path, e))?;
    let rec = record::decode(&buf, file.salt, MAX_KEY_LEN, MAX_VALUE_CEILING)
        .map_err(|e| Error::corrupt(&file.path, loc.offset, e.0))?;
    if rec.header.record_len() != u64::from(loc.len) || rec.header.is_tombstone() {
        return Err(Error::corrupt(
            &file.path,
            loc.offset,
            "record does not match its index entry",
        ));
    }
    if expect_key.is_some_and(|k| k != rec.key) {
        return Err(Error::corrupt(&file.path, loc.offset, "record holds another key"));
    }
    let key_end = HEADER_LEN + rec.key.len();
    let value_len = rec.value.len();
    let buf = Bytes::from(buf);
    Ok((
        buf.slice(HEADER_LEN..key_end),
        buf.slice(key_end..key_end + value_len),
    ))
}

/// Looks `key` up in `v` and reads its value.
pub(crate) fn get(v: &Version, key: &[u8]) -> Result<Option<Bytes>> {
    match v.index.get(key) {
        None => Ok(None),
        Some(loc) => read_record(v, loc, Some(key)).map(|(_, value)| Some(value)),
    }
}
