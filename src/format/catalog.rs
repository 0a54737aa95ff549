//! The catalog's byte layout: which partitions exist, their ids and options.
//!
//! ```text
//! header (32 bytes)
//!  0  8  magic "CASKCATL"
//!  8  4  format version
//! 12  4  reserved (0)
//! 16  8  salt (random per file; seeds every record CRC)
//! 24  4  reserved (0)
//! 28  4  CRC32 of bytes 0..28
//! record
//!  0  4  CRC32 of (salt, bytes 4..8+len)
//!  4  4  len: body length (1 ..= MAX_BODY)
//!  8  1  kind: 1 create, 2 drop, 3 next-id
//!  9  .. create:  id u64, options (PartitionOptions, 51 bytes), name_len u16, name
//!        drop:    id u64
//!        next-id: the next id to hand out, u64
//! ```
//! The catalog is a log: creating or dropping a partition appends one
//! record and `fdatasync`s; a rewrite (atomic replace) starts with a next-id
//! record and keeps only live partitions.

use crate::name::MAX_NAME_LEN;
use crate::options::{self, PartitionOptions};

use super::{FORMAT_VERSION, FormatError, crc_of, u32_at, u64_at};

/// The catalog's file name, in the root directory.
pub(crate) const CATALOG_NAME: &str = "CATALOG";
/// Its temporary name while being rewritten.
pub(crate) const CATALOG_TMP: &str = "CATALOG.tmp";
/// Header length.
pub(crate) const HEADER_LEN: usize = 32;
/// Record header length (CRC and length).
pub(crate) const RECORD_HEAD: usize = 8;
/// Longest record body.
pub(crate) const MAX_BODY: usize = 1 + 8 + options::ENCODED_LEN + 2 + MAX_NAME_LEN;
const MAGIC: &[u8; 8] = b"CASKCATL";

/// One catalog change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CatalogRecord {
    /// Partition `id` named `name` was created with `options`.
    Create {
        id: u64,
        name: String,
        options: PartitionOptions,
    },
    /// Partition `id` was dropped.
    Drop { id: u64 },
    /// Ids below this were handed out (written first by a rewrite, so
    /// dropped ids are never reused).
    NextId(u64),
}

/// Encodes a catalog header with `salt`.
pub(crate) fn encode_header(salt: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&salt.to_le_bytes());
    let crc = crc_of(&[&h[..28]]);
    h[28..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decodes a header, returning its salt.
pub(crate) fn decode_header(h: &[u8]) -> Result<u64, FormatError> {
    if h.len() < HEADER_LEN || &h[..8] != MAGIC {
        return Err(FormatError("not a caskade catalog"));
    }
    if u32_at(h, 28) != crc_of(&[&h[..28]]) {
        return Err(FormatError("catalog header checksum mismatch"));
    }
    if u32_at(h, 8) != FORMAT_VERSION {
        return Err(FormatError("unsupported catalog format version"));
    }
    Ok(u64_at(h, 16))
}

impl CatalogRecord {
    /// Appends the encoded record.
    pub(crate) fn encode(&self, salt: u64, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; RECORD_HEAD]);
        match self {
            CatalogRecord::Create { id, name, options } => {
                out.push(1);
                out.extend_from_slice(&id.to_le_bytes());
                options.encode(out);
                // Names are validated to at most MAX_NAME_LEN (255) bytes.
                out.extend_from_slice(&(name.len() as u16).to_le_bytes());
                out.extend_from_slice(name.as_bytes());
            }
            CatalogRecord::Drop { id } => {
                out.push(2);
                out.extend_from_slice(&id.to_le_bytes());
            }
            CatalogRecord::NextId(id) => {
                out.push(3);
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        let len = (out.len() - start - RECORD_HEAD) as u32;
        out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
        let crc = crc_of(&[&salt.to_le_bytes(), &out[start + 4..]]);
        out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The result of decoding the record at the start of `b`.
#[derive(Debug, PartialEq)]
pub(crate) enum Decoded {
    /// A valid record and its encoded length.
    Record(CatalogRecord, usize),
    /// The bytes end inside the record (a torn append).
    Truncated,
    /// The record is damaged.
    Bad(&'static str),
}

/// Decodes one record from the start of `b` (which is non-empty).
pub(crate) fn decode_record(b: &[u8], salt: u64) -> Decoded {
    if b.len() < RECORD_HEAD {
        return Decoded::Truncated;
    }
    let len = u32_at(b, 4) as usize;
    if len == 0 || len > MAX_BODY {
        return Decoded::Bad("catalog record length out of range");
    }
    let Some(rec) = b.get(..RECORD_HEAD + len) else {
        return Decoded::Truncated;
    };
    if u32_at(rec, 0) != crc_of(&[&salt.to_le_bytes(), &rec[4..]]) {
        return Decoded::Bad("catalog record checksum mismatch");
    }
    let body = &rec[RECORD_HEAD..];
    let parsed = match (body[0], body.len()) {
        (2, 9) => Some(CatalogRecord::Drop { id: u64_at(body, 1) }),
        (3, 9) => Some(CatalogRecord::NextId(u64_at(body, 1))),
        (1, n) if n >= 1 + 8 + options::ENCODED_LEN + 2 => {
            let opts_end = 9 + options::ENCODED_LEN;
            let name_len = usize::from(u16::from_le_bytes([body[opts_end], body[opts_end + 1]]));
            let name = body.get(opts_end + 2..).filter(|n| n.len() == name_len);
            match (PartitionOptions::decode(&body[9..opts_end]), name) {
                // A name `create` would refuse (empty, control characters)
                // is damage too, not a partition.
                (Some(options), Some(name)) => std::str::from_utf8(name)
                    .ok()
                    .filter(|name| crate::name::validate(name).is_ok())
                    .map(|name| CatalogRecord::Create {
                        id: u64_at(body, 1),
                        name: name.to_owned(),
                        options,
                    }),
                _ => None,
            }
        }
        _ => None,
    };
    match parsed {
        Some(r) => Decoded::Record(r, rec.len()),
        None => Decoded::Bad("malformed catalog record"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Schema;

    #[test]
    fn records_round_trip_and_every_byte_is_checked() {
        let salt = 0x1234_5678_9abc_def0;
        let recs = [
            CatalogRecord::Create {
                id: 7,
                name: "tenant é/..".into(),
                options: PartitionOptions::default().schema(Schema::Int),
            },
            CatalogRecord::Drop { id: 7 },
            CatalogRecord::NextId(9),
        ];
        for r in recs {
            let mut b = Vec::new();
            r.encode(salt, &mut b);
            assert_eq!(decode_record(&b, salt), Decoded::Record(r.clone(), b.len()));
            assert_eq!(decode_record(&b[..b.len() - 1], salt), Decoded::Truncated);
            assert!(matches!(decode_record(&b, salt ^ 1), Decoded::Bad(_)), "salt");
            for i in 0..b.len() {
                let mut bad = b.clone();
                bad[i] ^= 0x10;
                assert!(
                    !matches!(decode_record(&bad, salt), Decoded::Record(..)),
                    "{r:?}: flipped byte {i} accepted"
                );
            }
        }
        for refused in ["", "a\0", "\u{1b}[31m"] {
            let mut b = Vec::new();
            let (id, name, options) = (1, refused.into(), PartitionOptions::default());
            CatalogRecord::Create { id, name, options }.encode(salt, &mut b);
            let bad = Decoded::Bad("malformed catalog record");
            assert_eq!(decode_record(&b, salt), bad, "{refused:?}");
        }
        let h = encode_header(salt);
        assert_eq!(decode_header(&h), Ok(salt));
        for i in 0..HEADER_LEN {
            let mut bad = h;
            bad[i] ^= 1;
            assert!(decode_header(&bad).is_err(), "header byte {i}");
        }
    }
}
