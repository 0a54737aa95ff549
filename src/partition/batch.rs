//! [`Batch`]: several puts and deletes applied atomically.

use crate::error::{Error, Result};

use super::handle::{Partition, check_key};
use super::writer::{Op, WriteSet};

/// An atomic group of puts and deletes on one partition.
///
/// Either every operation of a committed batch is applied or none is, for
/// readers (one publication) and across a crash (recovery drops a batch
/// whose last record is missing). Operations apply in order, so a later op on
/// the same key wins. Invalid keys or values are reported by
/// [`Batch::commit`], and then nothing is written.
///
/// # Examples
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> caskade::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = caskade::Db::open(dir.path()).await?;
/// let p = db.partition("accounts").await?;
/// p.put("alice", "10").await?;
/// let mut b = p.batch();
/// b.put("bob", "10");
/// b.delete("alice");
/// b.commit().await?;
/// assert!(!p.contains_key("alice").await?);
/// # db.close().await }
/// ```
#[derive(Debug)]
#[must_use = "a batch does nothing until committed"]
pub struct Batch {
    partition: Partition,
    ops: Vec<Op>,
    /// The first invalid input, reported at commit.
    error: Option<Error>,
}

impl Batch {
    pub(crate) fn new(partition: Partition) -> Self {
        Batch {
            partition,
            ops: Vec::new(),
            error: None,
        }
    }

    /// Adds a put of `key` → `value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        let op = check_key(key.as_ref()).and_then(|key| {
            let value = self.partition.check_value(value.as_ref())?;
            Ok(Op::Put { key, value })
        });
        self.push(op)
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let op = check_key(key.as_ref()).map(|key| Op::Delete { key });
        self.push(op)
    }

    fn push(&mut self, op: Result<Op>) -> &mut Self {
        match op {
            Ok(op) => self.ops.push(op),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Number of operations added.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no operation was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Applies every operation atomically. An empty batch is a no-op.
    ///
    /// # Errors
    /// The first invalid key or value added ([`Error::EmptyKey`],
    /// [`Error::KeyTooLarge`], [`Error::ValueTooLarge`], [`Error::SchemaViolation`]) or
    /// [`Error::BatchTooLarge`], with nothing written; otherwise as
    /// [`Partition::put`].
    pub async fn commit(self) -> Result<()> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.ops.is_empty() {
            return Ok(());
        }
        self.partition.write(WriteSet { ops: self.ops }).await.map(drop)
    }
}
