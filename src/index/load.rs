//! [`Load`]: building an index from records in any order, in bulk.
//!
//! Recovery feeds every record of every file (from hints or scans) with its
//! sequence number; the record with the highest sequence number of a key
//! wins, whatever the order of files. Instead of updating a hash map per
//! record, the loader appends each record to flat arrays (key arena,
//! location, sequence number) and resolves duplicates in one probing pass
//! over an open-addressing table of entry numbers, then copies the winners
//! that are live into a [`Base`] (or, when no key repeats and nothing is
//! deleted, makes the arrays the base as they are). Cost: one append per
//! record and one probe per record, no allocation per key; memory: ~40 B
//! per record plus the key until [`Load::finish`] (the arrays are reserved
//! file by file for the most records a file can hold, as address space:
//! only the pages written count).

use std::hash::BuildHasher;

use super::base::{self, Base, BaseBuilder, MAX_ENTRIES};
use super::keys::KeyArena;
use super::slab::Slab;
use super::{Hasher, Index, Key, Location, SHADOW};
use crate::format::record;

/// Records gathered for one index.
#[derive(Debug)]
pub(crate) struct Load {
    hasher: Hasher,
    keys: KeyArena,
    /// [`SHADOW`] for a tombstone.
    locs: Slab<Location>,
    seqs: Slab<u64>,
    /// Every record so far came with a higher sequence number than all
    /// before it (the normal case: files in order, each appended in order).
    ordered: bool,
    max_seq: u64,
}

impl Load {
    /// An empty loader.
    pub(crate) fn new(hasher: Hasher) -> Self {
        Load {
            hasher,
            keys: KeyArena::with_capacity(0, 0),
            locs: Slab::with_capacity(0),
            seqs: Slab::with_capacity(0),
            ordered: true,
            max_seq: 0,
        }
    }

    /// Makes room at once for the records of a data file of `bytes` bytes
    /// (whether its hint or the file itself is read): large slabs are
    /// mappings, where reserving more than is used costs address space
    /// only, and growing record by record would copy and unmap.
    pub(crate) fn reserve_for(&mut self, bytes: u64) {
        // A record is at least its header and a one-byte key; its key is
        // shorter than the file.
        let min_record = (record::HEADER_LEN + 1) as u64;
        let records = usize::try_from(bytes / min_record).unwrap_or(usize::MAX / 64);
        let key_bytes = usize::try_from(bytes).unwrap_or(usize::MAX / 64);
        self.keys.reserve(records, key_bytes);
        self.locs.reserve(records);
        self.seqs.reserve(records);
    }

    /// Adds the record of `key` with sequence number `seq`: a live value at
    /// `loc`, or a tombstone (`None`).
    pub(crate) fn add(&mut self, key: &[u8], seq: u64, loc: Option<Location>) {
        self.keys.push(key);
        self.locs.push(loc.unwrap_or(SHADOW));
        self.seqs.push(seq);
        self.ordered &= seq > self.max_seq;
        self.max_seq = self.max_seq.max(seq);
    }

    /// The highest sequence number added (0 if none).
    pub(crate) fn max_seq(&self) -> u64 {
        self.max_seq
    }

    /// Record `i`'s key.
    fn key(&self, i: usize) -> &[u8] {
        self.keys.get(i)
    }

    /// The index of the winning record of every key that is live, and the
    /// sum of their record lengths.
    pub(crate) fn finish(self) -> (Index, u64) {
        let n = self.locs.len();
        if n > MAX_ENTRIES {
            return self.finish_in_delta();
        }
        // Winners by key, in the slot format of a base.
        let size = base::table_len(n);
        let mut slab = Slab::<u64>::zeroed(size);
        let table = slab.as_mut_slice();
        let (seqs, locs) = (self.seqs.as_slice(), self.locs.as_slice());
        let mut replaced = false;
        for i in 0..n {
            let key = self.key(i);
            let hash = self.hasher.hash_one(key);
            let mut at = base::home(hash, size);
            loop {
                let slot = table[at];
                if slot == 0 {
                    table[at] = base::slot_of(hash, i);
                    break;
                }
                let other = base::slot_entry(slot);
                if base::slot_matches(slot, hash) && self.key(other) == key {
                    // In order, the later record is the newer one.
                    if self.ordered || seqs[i] > seqs[other] {
                        table[at] = base::slot_of(hash, i);
                    }
                    replaced = true;
                    break;
                }
                at += 1;
                if at == size {
                    at = 0;
                }
            }
        }
        let live_bytes = locs.iter().map(|l| u64::from(l.len)).sum::<u64>();
        if !replaced && !locs.iter().any(|l| l.len == 0) {
            // Every record is its key's only one and live (a fresh fill, a
            // compacted partition): the arrays are the base as they are.
            let base = Base::from_parts(self.hasher, slab, self.locs, self.keys);
            return (Index::from_base(base), live_bytes);
        }
        // Winners in record order (neighbours in a file stay neighbours).
        let mut won = vec![0u64; n.div_ceil(64)];
        for &slot in table.iter().filter(|&&s| s != 0) {
            let i = base::slot_entry(slot);
            won[i / 64] |= 1 << (i % 64);
        }
        drop(slab);
        let winners: Vec<usize> = (0..n)
            .filter(|&i| won[i / 64] & (1 << (i % 64)) != 0 && locs[i].len != 0)
            .collect();
        let key_bytes = winners.iter().map(|&i| self.key(i).len()).sum();
        let mut live_bytes = 0u64;
        let mut builder = BaseBuilder::new(self.hasher.clone(), winners.len(), key_bytes);
        for &i in &winners {
            live_bytes += u64::from(locs[i].len);
            builder.push(self.key(i), locs[i]);
        }
        (Index::from_base(builder.finish()), live_bytes)
    }

    /// More records than a base can number: merge them in the delta (slow,
    /// but no partition ever holds that many in memory).
    fn finish_in_delta(self) -> (Index, u64) {
        let mut index = Index::with_hasher(self.hasher.clone());
        let mut newest: std::collections::HashMap<&[u8], usize, Hasher> =
            std::collections::HashMap::with_hasher(self.hasher.clone());
        for i in 0..self.locs.len() {
            let slot = newest.entry(self.key(i)).or_insert(i);
            if self.seqs[i] > self.seqs[*slot] {
                *slot = i;
            }
        }
        let mut live_bytes = 0;
        for (key, i) in newest {
            if self.locs[i].len != 0 {
                live_bytes += u64::from(self.locs[i].len);
                index.insert(Key::new(key), self.locs[i]);
            }
        }
        (index, live_bytes)
    }
}
