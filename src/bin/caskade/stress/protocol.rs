//! The line protocol between `caskade stress` (the child) and the kill -9
//! harness (`tests/kill9.rs`, the parent), and the self-checking values the
//! child writes.
//!
//! This file is compiled into both: the binary declares it as
//! `stress::protocol`, the test includes it with `#[path]`, so the two sides
//! cannot drift apart. It uses only `std` and `crc32fast`.
//!
//! # Lines (child → parent, one per `write`, each shorter than `PIPE_BUF`)
//! ```text
//! open                          about to open the database (recovery starts)
//! ready <recovery_ms>           opened, every existing partition recovered
//! begin <id> put <part> <key> <pad>
//! begin <id> del <part> <key>
//! begin <id> batch <part> +<key>:<pad> -<key> ...
//! begin <id> compact <part>
//! begin <id> create <part>
//! begin <id> drop <part>
//! ack <id>                      the operation <id> returned Ok
//! done                          the --ops budget is spent, the database closed
//! ```
//! `begin` is written before the operation is issued, `ack` after it
//! returned `Ok`. Names and keys are single tokens without `|`, `:` or
//! blanks. A put's value is [`value`]`(part, key, seed, id, pad)`, `seed`
//! being the child's `--seed`: the parent rebuilds the exact bytes from the
//! `begin` line.

use std::fmt;

/// One operation the child announces with `begin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `Partition::put` of the value [`value`] builds from the pad length.
    Put {
        /// Partition name.
        part: String,
        /// Key.
        key: String,
        /// Padding bytes in the value (its size, less the fixed fields).
        pad: usize,
    },
    /// `Partition::delete`.
    Delete {
        /// Partition name.
        part: String,
        /// Key.
        key: String,
    },
    /// One atomic `Batch` of puts and deletes of distinct keys.
    Batch {
        /// Partition name.
        part: String,
        /// The batch's operations, in order.
        ops: Vec<BatchOp>,
    },
    /// `Partition::compact`.
    Compact {
        /// Partition name.
        part: String,
    },
    /// `Db::create_partition`.
    Create {
        /// Partition name.
        part: String,
    },
    /// `Db::drop_partition`.
    Drop {
        /// Partition name.
        part: String,
    },
}

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// A put of [`value`]`(part, key, seed, id, pad)`.
    Put {
        /// Key.
        key: String,
        /// Padding length of the value.
        pad: usize,
    },
    /// A delete.
    Delete {
        /// Key.
        key: String,
    },
}

impl BatchOp {
    /// The key this operation writes.
    pub fn key(&self) -> &str {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } => key,
        }
    }
}

impl Op {
    /// The partition the operation applies to.
    pub fn part(&self) -> &str {
        match self {
            Op::Put { part, .. }
            | Op::Delete { part, .. }
            | Op::Batch { part, .. }
            | Op::Compact { part }
            | Op::Create { part }
            | Op::Drop { part } => part,
        }
    }
}

/// One line of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The child is about to open the database.
    Open,
    /// The database is open and every existing partition recovered.
    Ready {
        /// Milliseconds from `open` to `ready`.
        recovery_ms: u64,
    },
    /// Operation `id` is about to be issued.
    Begin {
        /// Unique within one child.
        id: u64,
        /// What is issued.
        op: Op,
    },
    /// Operation `id` returned `Ok`.
    Ack {
        /// The `begin`'s id.
        id: u64,
    },
    /// The child finished its `--ops` budget and closed the database.
    Done,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Put { part, key, pad } => write!(f, "put {part} {key} {pad}"),
            Op::Delete { part, key } => write!(f, "del {part} {key}"),
            Op::Batch { part, ops } => {
                write!(f, "batch {part}")?;
                for op in ops {
                    match op {
                        BatchOp::Put { key, pad } => write!(f, " +{key}:{pad}")?,
                        BatchOp::Delete { key } => write!(f, " -{key}")?,
                    }
                }
                Ok(())
            }
            Op::Compact { part } => write!(f, "compact {part}"),
            Op::Create { part } => write!(f, "create {part}"),
            Op::Drop { part } => write!(f, "drop {part}"),
        }
    }
}

impl fmt::Display for Line {
    /// The line without its newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Open => write!(f, "open"),
            Line::Ready { recovery_ms } => write!(f, "ready {recovery_ms}"),
            Line::Begin { id, op } => write!(f, "begin {id} {op}"),
            Line::Ack { id } => write!(f, "ack {id}"),
            Line::Done => write!(f, "done"),
        }
    }
}

/// A line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// The offending line.
    pub line: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad protocol line {:?}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ProtocolError {}

/// Parses one line (without its newline).
///
/// # Errors
/// [`ProtocolError`] for an unknown verb, a missing or extra field, a number
/// that does not parse or a name with a reserved character.
pub fn parse(line: &str) -> Result<Line, ProtocolError> {
    let bad = |reason| ProtocolError {
        line: line.to_owned(),
        reason,
    };
    let mut words = line.split(' ');
    let verb = words.next().unwrap_or_default();
    let parsed = match verb {
        "open" => Line::Open,
        "done" => Line::Done,
        "ready" => Line::Ready {
            recovery_ms: number(words.next()).ok_or_else(|| bad("bad recovery time"))?,
        },
        "ack" => Line::Ack {
            id: number(words.next()).ok_or_else(|| bad("bad id"))?,
        },
        "begin" => {
            let id = number(words.next()).ok_or_else(|| bad("bad id"))?;
            let op = parse_op(&mut words).map_err(bad)?;
            Line::Begin { id, op }
        }
        _ => return Err(bad("unknown verb")),
    };
    match words.next() {
        Some(_) => Err(bad("trailing fields")),
        None => Ok(parsed),
    }
}

fn parse_op<'a>(words: &mut impl Iterator<Item = &'a str>) -> Result<Op, &'static str> {
    let kind = words.next().ok_or("missing operation")?;
    let part = name(words.next()).ok_or("bad partition name")?;
    let op = match kind {
        "put" => Op::Put {
            part,
            key: name(words.next()).ok_or("bad key")?,
            pad: number(words.next()).ok_or("bad pad")?,
        },
        "del" => Op::Delete {
            part,
            key: name(words.next()).ok_or("bad key")?,
        },
        "batch" => {
            let ops = words
                .map(batch_op)
                .collect::<Option<Vec<_>>>()
                .ok_or("bad batch op")?;
            if ops.is_empty() {
                return Err("empty batch");
            }
            Op::Batch { part, ops }
        }
        "compact" => Op::Compact { part },
        "create" => Op::Create { part },
        "drop" => Op::Drop { part },
        _ => return Err("unknown operation"),
    };
    Ok(op)
}

fn batch_op(word: &str) -> Option<BatchOp> {
    if let Some(rest) = word.strip_prefix('+') {
        let (key, pad) = rest.split_once(':')?;
        Some(BatchOp::Put {
            key: name(Some(key))?,
            pad: pad.parse().ok()?,
        })
    } else {
        let key = name(Some(word.strip_prefix('-')?))?;
        Some(BatchOp::Delete { key })
    }
}

fn number<T: std::str::FromStr>(word: Option<&str>) -> Option<T> {
    word?.parse().ok()
}

/// A name or key: non-empty, none of the separators of lines and values.
fn name(word: Option<&str>) -> Option<String> {
    let word = word?;
    let ok = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'|' | b':' | b'+' | b'-'));
    ok.then(|| word.to_owned())
}

/// Which write a value came from, as decoded from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueTag {
    /// The partition it was written to.
    pub part: String,
    /// The key it was written under.
    pub key: String,
    /// The writing child's `--seed`.
    pub seed: u64,
    /// The writing operation's id.
    pub id: u64,
}

/// The value the child writes for operation `id` of the child `seed` to
/// `part`/`key`: `part|key|seed|id|<pad letters>|<crc32 of all before, hex>`.
/// Every byte is determined by the arguments, so a torn, garbled or
/// misplaced value is detected by [`decode`] or by comparison.
pub fn value(part: &str, key: &str, seed: u64, id: u64, pad: usize) -> Vec<u8> {
    let mut v = format!("{part}|{key}|{seed}|{id}|").into_bytes();
    v.extend((0..pad).map(|i| pad_byte(seed, id, i)));
    v.push(b'|');
    let crc = crc32fast::hash(&v);
    v.extend_from_slice(format!("{crc:08x}").as_bytes());
    v
}

fn pad_byte(seed: u64, id: u64, i: usize) -> u8 {
    let mix = seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64).wrapping_mul(31);
    b'a' + (mix % 26) as u8
}

/// Decodes and verifies a value built by [`value`]; `None` if it is not one
/// (torn, garbled, truncated or padded wrongly).
pub fn decode(v: &[u8]) -> Option<ValueTag> {
    let split = v.len().checked_sub(8)?;
    let (body, crc) = v.split_at(split);
    let crc = std::str::from_utf8(crc).ok()?;
    if body.last() != Some(&b'|') || u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(body) {
        return None;
    }
    let text = std::str::from_utf8(&body[..body.len() - 1]).ok()?;
    let mut fields = text.split('|');
    let part = name(fields.next())?;
    let key = name(fields.next())?;
    let seed = number(fields.next())?;
    let id = number(fields.next())?;
    let pad = fields.next()?;
    let pad_ok = pad.bytes().enumerate().all(|(i, b)| b == pad_byte(seed, id, i));
    (pad_ok && fields.next().is_none()).then_some(ValueTag { part, key, seed, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(line: Line) {
        assert_eq!(parse(&line.to_string()), Ok(line));
    }

    #[test]
    fn every_line_round_trips() {
        round_trip(Line::Open);
        round_trip(Line::Done);
        round_trip(Line::Ready { recovery_ms: 17 });
        round_trip(Line::Ack { id: u64::MAX });
        let part = "s0".to_owned();
        let key = "k1_3".to_owned();
        for op in [
            Op::Put {
                part: part.clone(),
                key: key.clone(),
                pad: 70_000,
            },
            Op::Delete {
                part: part.clone(),
                key: key.clone(),
            },
            Op::Batch {
                part: part.clone(),
                ops: vec![
                    BatchOp::Put {
                        key: key.clone(),
                        pad: 0,
                    },
                    BatchOp::Delete { key: "k1_4".into() },
                ],
            },
            Op::Compact { part: part.clone() },
            Op::Create { part: "c1".into() },
            Op::Drop { part: "c1".into() },
        ] {
            round_trip(Line::Begin { id: 42, op });
        }
    }

    #[test]
    fn a_batch_line_parses_to_its_ops() {
        let line = parse("begin 7 batch s1 +k0_1:12 -k0_2").unwrap();
        let Line::Begin {
            id: 7,
            op: Op::Batch { part, ops },
        } = line
        else {
            panic!("{line:?}");
        };
        assert_eq!(part, "s1");
        assert_eq!(
            ops[0],
            BatchOp::Put {
                key: "k0_1".into(),
                pad: 12
            }
        );
        assert_eq!(ops[1], BatchOp::Delete { key: "k0_2".into() });
    }

    #[test]
    fn malformed_lines_are_rejected() {
        for bad in [
            "",
            "hello",
            "ready",
            "ready soon",
            "ack",
            "ack -1",
            "ack 1 2",
            "begin x put s0 k 1",
            "begin 1",
            "begin 1 put s0 k",
            "begin 1 put s0 k 1 extra",
            "begin 1 put s0 k|x 1",
            "begin 1 batch s0",
            "begin 1 batch s0 k",
            "begin 1 batch s0 +k",
            "begin 1 batch s0 +k:x",
            "begin 1 batch s0 -",
            "begin 1 frobnicate s0",
            "begin 1 create",
            "open now",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn values_decode_and_any_damage_is_detected() {
        let v = value("s0", "k2_9", 99, 12345, 40);
        let tag = decode(&v).expect("a fresh value decodes");
        assert_eq!(
            (tag.part.as_str(), tag.key.as_str(), tag.seed, tag.id),
            ("s0", "k2_9", 99, 12345)
        );
        assert!(decode(&value("c1", "k", 0, 0, 0)).is_some());
        for cut in 0..v.len() {
            assert_eq!(decode(&v[..cut]), None, "prefix of {cut} bytes");
        }
        for i in 0..v.len() {
            let mut bad = v.clone();
            bad[i] ^= 0x01;
            assert_eq!(decode(&bad), None, "bit flip at {i}");
        }
        let mut longer = v.clone();
        longer.push(b'a');
        assert_eq!(decode(&longer), None);
    }
}
