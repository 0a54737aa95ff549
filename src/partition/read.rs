//! The read path: one index lookup in a published version, one positional
//! read, one checksum verification. Never touches the actor.

use bytes::{Buf, Bytes};

use crate::config::{MAX_KEY_LEN, MAX_VALUE_CEILING};
use crate::error::{Error, Result};
use crate::format::record::{self, HEADER_LEN};
use crate::index::Location;
use crate::snapshot::Version;

/// Reads the record at `loc` and returns its key and value (slices of one
/// buffer). `expect_key`, if given, must match the stored key.
pub(crate) fn read_record(v: &Version, loc: Location, expect_key: Option<&[u8]>) -> Result<(Bytes, Bytes)> {
    let (buf, key_len, value_len) = read_verified(v, loc, expect_key)?;
    let key_end = HEADER_LEN + key_len;
    Ok((
        buf.slice(HEADER_LEN..key_end),
        buf.slice(key_end..key_end + value_len),
    ))
}

/// Reads the record of `key` at `loc` and returns its value, as the tail of
/// the read buffer (no second allocation: the buffer is not shared).
pub(crate) fn read_value(v: &Version, loc: Location, key: &[u8]) -> Result<Bytes> {
    let (mut buf, key_len, value_len) = read_verified(v, loc, Some(key))?;
    buf.advance(HEADER_LEN + key_len);
    buf.truncate(value_len);
    Ok(buf)
}

/// Reads and verifies the record at `loc`: the buffer, the key's and the
/// value's lengths.
fn read_verified(v: &Version, loc: Location, expect_key: Option<&[u8]>) -> Result<(Bytes, usize, usize)> {
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
    let (key_len, value_len) = (rec.key.len(), rec.value.len());
    Ok((Bytes::from(buf), key_len, value_len))
}

/// Looks `key` up in `v` and reads its value.
pub(crate) fn get(v: &Version, key: &[u8]) -> Result<Option<Bytes>> {
    match v.index.get(key) {
        None => Ok(None),
        Some(loc) => read_value(v, loc, key).map(Some),
    }
}
