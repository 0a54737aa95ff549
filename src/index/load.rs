//! [`Load`]: building an index from records in any order, in bulk.
//!
//! Recovery feeds every record of every file (from hints or scans) with its
//! sequence number; the record with the highest sequence number of a key
//! wins, whatever the order of files. Instead of updating a hash map per
//! record, the loader appends each record to flat arrays (key arena,
//! location, sequence number) and resolves duplicates in one probing pass
//! over an open-addressing table of entry numbers, then copies the winners
//! that are live into a [`Base`]. Cost: one append per record and one probe
//! per record, no allocation per key; memory: ~40 B per record until
//! [`Load::finish`].

use std::hash::BuildHasher;

use super::base::{self, Base, BaseBuilder, MAX_ENTRIES};
use super::slab::Slab;
use super::{Hasher, Index, Key, Location, SHADOW};

/// Records gathered for one index.
#[derive(Debug)]
pub(crate) struct Load {
    hasher: Hasher,
    keys: Slab<u8>,
    starts: Slab<u64>,
    /// [`SHADOW`] for a tombstone.
    locs: Slab<Location>,
    seqs: Slab<u64>,
}

impl Load {
    /// An empty loader.
    pub(crate) fn new(hasher: Hasher) -> Self {
        Load {
            hasher,
            keys: Slab::with_capacity(0),
            starts: Slab::zeroed(1),
            locs: Slab::with_capacity(0),
            seqs: Slab::with_capacity(0),
        }
    }

    /// Adds the record of `key` with sequence number `seq`: a live value at
    /// `loc`, or a tombstone (`None`).
    pub(crate) fn add(&mut self, key: &[u8], seq: u64, loc: Option<Location>) {
        self.keys.extend_from_slice(key);
        self.starts.push(self.keys.len() as u64);
        self.locs.push(loc.unwrap_or(SHADOW));
        self.seqs.push(seq);
    }

    /// Record `i`'s key.
    fn key(&self, i: usize) -> &[u8] {
        let starts = self.starts.as_slice();
        &self.keys.as_slice()[starts[i] as usize..starts[i + 1] as usize]
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
                    if seqs[i] > seqs[other] {
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
            let base = Base::from_parts(self.hasher, slab, self.locs, self.starts, self.keys);
            return (Index::from_base(base), live_bytes);
        }
        let mut winners: Vec<usize> = table
            .iter()
            .filter(|&&s| s != 0)
            .map(|&s| base::slot_entry(s))
            .filter(|&i| locs[i].len != 0)
            .collect();
        drop(slab);
        // Entries in record order: neighbours in a file stay neighbours.
        winners.sort_unstable();
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
