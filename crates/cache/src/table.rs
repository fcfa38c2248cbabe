// A shard's hash table: open addressing with linear probing over 8-byte
// buckets, each holding a 32-bit tag of the key's hash beside a `u32` index
// into the shard's slab of slots.
//
// Why not hashbrown: hashbrown keeps its control bytes apart from its
// buckets, so a table of indexes into a slab costs a hit three cache misses
// (control group, index, slot). Here the tag and the index share one word,
// so a hit reads one run of buckets (usually within one cache line) and then
// its slot: two misses, as with slots stored inline. A bucket whose tag
// differs is rejected without touching its slot, so a miss (or a collision)
// reads no slot at all, short of a 1-in-4-billion tag match.
//
// The bucket count need not be a power of two: a tag maps to its home
// bucket by a multiply-shift (`tag × len >> 32`), so the table is sized to
// what it holds (`with_capacity` aims at 75% full; it grows by a third past
// 80%) instead of doubling, which left hashbrown's tables under half full
// at exactly 1M entries. Removal shifts the following run back (no
// tombstones), so lookups stay short after any number of removals. The home
// bucket depends only on the tag, so growing and shifting never rehash a
// key.
//
// A bucket is `tag << 32 | (index + 1)`; 0 is an empty bucket.

/// Load factor `with_capacity` sizes for.
const TARGET_LOAD: (usize, usize) = (3, 4);
/// Load factor past which the table grows.
const MAX_LOAD: (usize, usize) = (4, 5);
const MIN_BUCKETS: usize = 8;

#[derive(Debug, Default)]
pub(crate) struct Table {
    buckets: Box<[u64]>,
    len: usize,
}

/// The tag of a hash: its high half (shards are picked by the low bits).
#[inline]
#[allow(clippy::cast_possible_truncation)]
fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

#[inline]
fn bucket(tag: u32, index: u32) -> u64 {
    (u64::from(tag) << 32) | (u64::from(index) + 1)
}

#[inline]
#[allow(clippy::cast_possible_truncation)]
fn index_of(bucket: u64) -> u32 {
    (bucket as u32).wrapping_sub(1)
}

/// Buckets for `n` entries at the target load.
fn buckets_for(n: usize) -> usize {
    (n.saturating_mul(TARGET_LOAD.1) / TARGET_LOAD.0).max(MIN_BUCKETS)
}

impl Table {
    /// A table that holds `n` entries before it grows.
    pub(crate) fn with_capacity(n: usize) -> Self {
        if n == 0 {
            return Self::default();
        }
        Self {
            buckets: vec![0; buckets_for(n)].into_boxed_slice(),
            len: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The home bucket of `tag`.
    #[inline]
    #[allow(clippy::cast_possible_truncation)] // < buckets.len()
    fn home(&self, tag: u32) -> usize {
        ((u64::from(tag) * self.buckets.len() as u64) >> 32) as usize
    }

    #[inline]
    fn next(&self, pos: usize) -> usize {
        if pos + 1 == self.buckets.len() { 0 } else { pos + 1 }
    }

    /// The index stored under `hash` that `eq` accepts.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.position(hash, &mut eq)
            .map(|pos| index_of(self.buckets[pos]))
    }

    /// The first `Some` that `f` makes of an index stored under `hash`.
    #[inline]
    pub(crate) fn find_map<T>(&self, hash: u64, mut f: impl FnMut(u32) -> Option<T>) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let want = tag(hash);
        let mut pos = self.home(want);
        loop {
            let b = self.buckets[pos];
            if b == 0 {
                return None;
            }
            if tag(b) == want
                && let Some(found) = f(index_of(b))
            {
                return Some(found);
            }
            pos = self.next(pos);
        }
    }

    /// The bucket holding an index under `hash` that `eq` accepts.
    #[inline]
    fn position(&self, hash: u64, eq: &mut impl FnMut(u32) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let want = tag(hash);
        let mut pos = self.home(want);
        loop {
            let b = self.buckets[pos];
            if b == 0 {
                return None;
            }
            if tag(b) == want && eq(index_of(b)) {
                return Some(pos);
            }
            pos = self.next(pos);
        }
    }

    /// Adds `index` under `hash` (the caller knows it is not there).
    pub(crate) fn insert(&mut self, hash: u64, index: u32) {
        assert!(index < u32::MAX, "more than 4 billion entries in a shard");
        if (self.len + 1) * MAX_LOAD.1 > self.buckets.len() * MAX_LOAD.0 {
            self.grow();
        }
        self.place(bucket(tag(hash), index));
        self.len += 1;
    }

    /// Puts a bucket in the first free place of its run.
    fn place(&mut self, b: u64) {
        let mut pos = self.home(tag(b));
        while self.buckets[pos] != 0 {
            pos = self.next(pos);
        }
        self.buckets[pos] = b;
    }

    #[cold]
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.buckets);
        let len = (old.len() + old.len() / 3).max(buckets_for(self.len + 1));
        self.buckets = vec![0; len].into_boxed_slice();
        for b in old.iter().copied().filter(|&b| b != 0) {
            self.place(b);
        }
    }

    /// Removes `index` from under `hash`; whether it was there.
    pub(crate) fn remove(&mut self, hash: u64, index: u32) -> bool {
        let Some(mut hole) = self.position(hash, &mut |i| i == index) else {
            return false;
        };
        // Shift back every following bucket of the run that may move into
        // the hole without passing its home bucket.
        let n = self.buckets.len();
        let mut pos = hole;
        loop {
            pos = self.next(pos);
            let b = self.buckets[pos];
            if b == 0 {
                break;
            }
            let home = self.home(tag(b));
            let from_home = (pos + n - home) % n;
            let from_hole = (pos + n - hole) % n;
            if from_home >= from_hole {
                self.buckets[hole] = b;
                hole = pos;
            }
        }
        self.buckets[hole] = 0;
        self.len -= 1;
        true
    }

    /// Makes the bucket of `from` under `hash` hold `to` instead (a slot
    /// moved in the slab).
    pub(crate) fn repoint(&mut self, hash: u64, from: u32, to: u32) {
        if let Some(pos) = self.position(hash, &mut |i| i == from) {
            self.buckets[pos] = bucket(tag(hash), to);
        }
    }

    /// Removes every entry, keeping the buckets.
    pub(crate) fn clear(&mut self) {
        self.buckets.fill(0);
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Hashes with few distinct tags, so runs are long and wrap around.
    fn crowded(i: u32) -> u64 {
        (u64::from(i % 7).wrapping_mul(0x9e37_79b9) << 32) | u64::from(i)
    }

    #[test]
    fn agrees_with_a_map_through_inserts_removals_and_growth() {
        let mut rng = fastrand::Rng::with_seed(7);
        for hash_of in [crowded as fn(u32) -> u64, |i| {
            u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        }] {
            let mut table = Table::with_capacity(4);
            let mut model: HashMap<u32, u64> = HashMap::new();
            for step in 0..20_000u32 {
                let key = rng.u32(0..2_000);
                let hash = hash_of(key);
                if rng.bool() {
                    if let std::collections::hash_map::Entry::Vacant(e) = model.entry(key) {
                        table.insert(hash, key);
                        e.insert(hash);
                    }
                } else {
                    assert_eq!(
                        table.remove(hash, key),
                        model.remove(&key).is_some(),
                        "step {step}"
                    );
                }
                assert_eq!(table.len(), model.len());
                if step % 1_000 == 0 {
                    for k in 0..2_000 {
                        let found = table.find(hash_of(k), |i| i == k);
                        assert_eq!(
                            found,
                            model.contains_key(&k).then_some(k),
                            "key {k} at step {step}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn repoint_moves_an_index_and_clear_empties() {
        let mut table = Table::with_capacity(16);
        table.insert(crowded(3), 3);
        table.insert(crowded(10), 10); // same tag as 3
        table.repoint(crowded(10), 10, 99);
        assert_eq!(table.find(crowded(10), |i| i == 10), None);
        assert_eq!(table.find(crowded(10), |i| i == 99), Some(99));
        assert_eq!(table.find(crowded(3), |i| i == 3), Some(3));
        table.clear();
        assert_eq!(table.len(), 0);
        assert_eq!(table.find(crowded(3), |_| true), None);
    }

    #[test]
    fn sized_for_its_capacity() {
        let table = Table::with_capacity(125_000);
        assert_eq!(table.buckets.len(), 166_666);
        assert!(Table::with_capacity(0).find(1, |_| true).is_none());
    }
}
