use std::collections::HashMap;

use proptest::prelude::*;

use super::layers::FOLD_MIN;
use super::*;

fn loc(n: u32) -> Location {
    Location {
        file_id: n,
        len: 1 + n % 7,
        offset: u64::from(n) * 3,
    }
}

#[test]
fn entry_stays_small() {
    assert_eq!(std::mem::size_of::<Key>(), 24);
    assert_eq!(std::mem::size_of::<Location>(), 16);
}

#[test]
fn inline_and_heap_keys_look_up_by_slice() {
    let mut index = Index::default();
    let long = vec![7u8; 100];
    index.insert(Key::new(b"short"), loc(1));
    index.insert(Key::new(&long), loc(2));
    index.insert(Key::new(&[0u8; 22]), loc(3));
    index.insert(Key::new(&[0u8; 21]), loc(4));
    assert_eq!(index.get(&b"short"[..]), Some(loc(1)));
    assert_eq!(index.get(&long[..]), Some(loc(2)));
    assert_eq!(index.get(&[0u8; 22][..]), Some(loc(3)));
    assert_eq!(index.get(&[0u8; 21][..]), Some(loc(4)));
    assert_eq!(index.get(&b"shor"[..]), None);
    assert!(matches!(Key::new(&[1; 22]), Key::Inline { .. }));
    assert!(matches!(Key::new(&[1; 23]), Key::Heap(_)));
}

#[test]
fn a_base_finds_every_key_and_no_other() {
    let keys: Vec<Vec<u8>> = (0..10_000u32).map(|i| format!("key-{i}").into_bytes()).collect();
    let index = Index::from_entries(
        Hasher::default(),
        keys.iter().enumerate().map(|(i, k)| (k, loc(i as u32))),
        0,
    );
    assert_eq!(index.len(), keys.len());
    assert_eq!(index.delta_len(), 0);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(index.get(k), Some(loc(i as u32)), "{k:?}");
    }
    for i in 10_000..20_000u32 {
        assert_eq!(index.get(format!("key-{i}").as_bytes()), None);
    }
    assert_eq!(index.get(b""), None);
    assert_eq!(index.iter().count(), keys.len());
}

#[test]
fn an_empty_base_answers_nothing() {
    let index = Index::from_entries(Hasher::default(), std::iter::empty::<(&[u8], Location)>(), 0);
    assert!(index.is_empty());
    assert_eq!(index.get(b"a"), None);
    assert_eq!(index.iter().next(), None);
}

#[test]
fn the_delta_folds_into_the_base_in_the_background_and_old_versions_keep_their_view() {
    let mut index = Index::default();
    let mut versions = Vec::new();
    let mut installed = false;
    let mut i = 0u32;
    // Insert until a background fold started and a later write installed it.
    while !installed {
        index.insert(Key::new(&i.to_be_bytes()), loc(i));
        if i.is_multiple_of(1000) {
            versions.push((i, index.clone()));
        }
        if index.folding() {
            for _ in 0..1000 {
                std::thread::sleep(std::time::Duration::from_millis(2));
                i += 1;
                index.insert(Key::new(&i.to_be_bytes()), loc(i));
                if !index.folding() {
                    installed = true;
                    break;
                }
            }
            assert!(installed, "the fold never finished: {index:?}");
        }
        i += 1;
        assert!(i < 100_000, "no fold started: {index:?}");
    }
    let n = i;
    assert!(n as usize > FOLD_MIN);
    assert!(index.delta_len() < FOLD_MIN, "{index:?}");
    for i in (0..n).step_by(2) {
        assert_eq!(index.remove(&i.to_be_bytes()), Some(loc(i)));
    }
    index.fold();
    assert_eq!(index.delta_len(), 0);
    assert_eq!(index.len(), (n / 2) as usize);
    for i in 0..n + 10 {
        let want = (i % 2 == 1 && i < n).then(|| loc(i));
        assert_eq!(index.get(&i.to_be_bytes()), want, "key {i}");
    }
    assert_eq!(index.iter().count(), (n / 2) as usize);
    for (at, v) in &versions {
        assert_eq!(v.len(), *at as usize + 1);
        assert_eq!(v.get(&at.to_be_bytes()), Some(loc(*at)));
        assert_eq!(v.get(&(at + 1).to_be_bytes()), None);
        assert_eq!(v.iter().count(), *at as usize + 1);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u32),
    Remove(u8),
    Fold,
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), any::<u32>()).prop_map(|(k, l)| Op::Insert(k, l)),
        3 => any::<u8>().prop_map(Op::Remove),
        1 => Just(Op::Fold),
        1 => Just(Op::Snapshot),
    ]
}

/// Keys of mixed sizes (short ones inline, long ones on the heap), or all
/// of one size (the base then keeps no key offsets).
fn key_of(k: u8, uniform: bool) -> Vec<u8> {
    if uniform {
        vec![k; 4]
    } else if k.is_multiple_of(3) {
        vec![k; 30]
    } else {
        vec![k; 1 + usize::from(k % 5)]
    }
}

fn key(k: u8) -> Vec<u8> {
    key_of(k, false)
}

fn check(index: &Index, model: &HashMap<Vec<u8>, Location>) {
    assert_eq!(index.len(), model.len());
    for k in 0..=255u8 {
        for uniform in [false, true] {
            let key = key_of(k, uniform);
            assert_eq!(index.get(&key), model.get(&key).copied(), "key {key:?}");
            assert_eq!(index.contains_key(&key), model.contains_key(&key));
        }
    }
    let listed: HashMap<Vec<u8>, Location> = index.iter().map(|(k, l)| (k.to_vec(), l)).collect();
    assert_eq!(listed.len(), index.iter().count(), "iteration repeats a key");
    assert_eq!(&listed, model);
}

proptest! {
    #[test]
    fn the_index_behaves_as_a_map_and_clones_never_change(
        ops in prop::collection::vec(op(), 1..400),
        fold_min in 0usize..20,
        uniform in any::<bool>(),
    ) {
        let key = |k| key_of(k, uniform);
        let mut index = Index { fold_min, ..Index::default() };
        let mut model: HashMap<Vec<u8>, Location> = HashMap::new();
        let mut snapshots = Vec::new();
        for op in ops {
            match op {
                Op::Insert(k, l) => {
                    let l = loc(l);
                    prop_assert_eq!(index.insert(Key::new(&key(k)), l), model.insert(key(k), l));
                }
                Op::Remove(k) => {
                    prop_assert_eq!(index.remove(&key(k)), model.remove(&key(k)));
                }
                Op::Fold => index.fold(),
                Op::Snapshot => snapshots.push((index.clone(), model.clone())),
            }
        }
        check(&index, &model);
        for (index, model) in &snapshots {
            check(index, model);
        }
    }
}

proptest! {
    #[test]
    fn a_load_keeps_the_newest_record_of_each_key_in_any_order(
        records in prop::collection::vec((any::<u8>(), any::<bool>()), 0..300),
        order in any::<prop::sample::Index>(),
    ) {
        // Sequence numbers are distinct; feed the records in a rotated order.
        let mut records: Vec<(u8, u64, Option<Location>)> = records
            .into_iter()
            .enumerate()
            .map(|(seq, (k, live))| (k, seq as u64 + 1, live.then(|| loc(seq as u32))))
            .collect();
        let mut model: HashMap<Vec<u8>, (u64, Option<Location>)> = HashMap::new();
        for &(k, seq, l) in &records {
            model.insert(key(k), (seq, l));
        }
        if !records.is_empty() {
            let at = order.index(records.len());
            records.rotate_left(at);
            records[..at].reverse();
        }
        let mut load = Load::new(Hasher::default());
        for &(k, seq, l) in &records {
            load.add(&key(k), seq, l);
        }
        let (index, live_bytes) = load.finish();
        let live: HashMap<Vec<u8>, Location> = model
            .into_iter()
            .filter_map(|(k, (_, l))| l.map(|l| (k, l)))
            .collect();
        prop_assert_eq!(live_bytes, live.values().map(|l| u64::from(l.len)).sum::<u64>());
        check(&index, &live);
    }
}

#[test]
fn slabs_keep_their_values_across_the_move_into_a_mapping() {
    use super::slab::Slab;
    let mut slab = Slab::<u64>::with_capacity(0);
    let mut model = Vec::new();
    for i in 0..300_000u64 {
        if i.is_multiple_of(1000) {
            let run: Vec<u64> = (i..i + 7).collect();
            slab.extend_from_slice(&run);
            model.extend_from_slice(&run);
        }
        slab.push(i * 3);
        model.push(i * 3);
    }
    assert!(matches!(slab, Slab::Mapped { .. }), "{slab:?}");
    assert_eq!(slab.as_slice(), &model[..]);
    let mut zeroed = Slab::<Location>::zeroed(200_000);
    assert!(matches!(zeroed, Slab::Mapped { .. }));
    assert!(zeroed.iter().all(|l| *l == SHADOW));
    zeroed.as_mut_slice()[199_999] = loc(9);
    zeroed.push(loc(10));
    assert_eq!(zeroed.len(), 200_001);
    assert_eq!(zeroed[199_999], loc(9));
    assert_eq!(zeroed[200_000], loc(10));
    let big = Index::from_entries(
        Hasher::default(),
        (0..100_000u32).map(|i| (i.to_le_bytes(), loc(i))),
        400_000,
    );
    assert_eq!(big.get(&77_777u32.to_le_bytes()), Some(loc(77_777)));
    assert_eq!(big.get(&100_000u32.to_le_bytes()), None);
}

#[test]
fn a_large_load_resolves_duplicates_and_tombstones() {
    // 300k records over 100k keys, in a scrambled order of sequence numbers.
    let n = 300_000u64;
    let mut model: HashMap<Vec<u8>, (u64, Option<Location>)> = HashMap::new();
    let mut load = Load::new(Hasher::default());
    for i in 0..n {
        let seq = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) | 1;
        let k = (i * 7919 % 100_000).to_le_bytes().to_vec();
        let l = (i % 5 != 0).then(|| loc(i as u32));
        load.add(&k, seq, l);
        let e = model.entry(k).or_insert((0, None));
        if seq > e.0 {
            *e = (seq, l);
        }
    }
    let (index, live_bytes) = load.finish();
    let live: HashMap<Vec<u8>, Location> = model
        .into_iter()
        .filter_map(|(k, (_, l))| l.map(|l| (k, l)))
        .collect();
    assert_eq!(index.len(), live.len());
    assert_eq!(live_bytes, live.values().map(|l| u64::from(l.len)).sum::<u64>());
    for (k, l) in &live {
        assert_eq!(index.get(k), Some(*l));
    }
    for i in 100_000..101_000u64 {
        assert_eq!(index.get(&i.to_le_bytes()), None);
    }
    assert_eq!(index.iter().count(), live.len());
}

#[test]
fn a_load_in_sequence_order_lets_the_later_record_win() {
    // Records in increasing sequence order (the fast path): overwrites,
    // deletes, and keys of one length or of several.
    for uniform in [true, false] {
        let mut load = Load::new(Hasher::default());
        let mut model: HashMap<Vec<u8>, Location> = HashMap::new();
        for seq in 1..=5000u64 {
            let k = key_of((seq % 200) as u8, uniform);
            let l = (seq % 7 != 0).then(|| loc(seq as u32));
            load.add(&k, seq, l);
            match l {
                Some(l) => model.insert(k, l),
                None => model.remove(&k),
            };
        }
        let (index, _) = load.finish();
        check(&index, &model);
    }
}

#[test]
fn a_clone_taken_mid_fold_can_still_fold() {
    let mut index = Index::default();
    let mut i = 0u32;
    while !index.folding() {
        index.insert(Key::new(&i.to_be_bytes()), loc(i));
        i += 1;
        assert!(i < 100_000, "no fold started: {index:?}");
    }
    // The clone has the frozen layer but not the fold under way.
    let mut copy = index.clone();
    let mut model: HashMap<Vec<u8>, Location> = (0..i).map(|k| (k.to_be_bytes().to_vec(), loc(k))).collect();
    for _ in 0..1000 {
        std::thread::sleep(std::time::Duration::from_millis(2));
        copy.insert(Key::new(&i.to_be_bytes()), loc(i));
        model.insert(i.to_be_bytes().to_vec(), loc(i));
        i += 1;
        if !copy.folding() {
            break;
        }
    }
    assert!(!copy.folding(), "the clone never folded: {copy:?}");
    assert_eq!(copy.len(), model.len());
    for (k, l) in &model {
        assert_eq!(copy.get(k), Some(*l));
    }
}
