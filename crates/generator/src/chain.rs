//! The n-gram chain: from the last `order` token ids to a weighted list of
//! next tokens.
//
// Design: a state (the last `order` ids, padded with BOUNDARY at the start
// of a post) is packed into one `u128` (32 bits per id, so order ≤ 4) and
// hashed with foldhash. Each state maps to a small vector of
// `(next id, cumulative weight)` pairs in insertion order. Sampling at
// temperature 1 draws one float and binary-searches the cumulative weights:
// no allocation, no per-step arithmetic over the list. Other temperatures
// reweight on the fly (`w^(1/T)`), one pass to sum and one to pick.
// Adding a transition is a linear search in the state's list (lists are
// short: most states have one or two successors) and, for a known
// successor, a bump of the cumulative weights after it: training is
// incremental by construction.

use std::collections::HashMap;

use crate::vocab::BOUNDARY;

/// The largest supported order.
pub(crate) const MAX_ORDER: usize = 4;

pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

pub(crate) fn fast_map<K, V>() -> FastMap<K, V> {
    HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x5eed))
}

/// The packed key of the state after `key` with `next` appended.
#[inline]
pub(crate) fn push_key(key: u128, next: u32, mask: u128) -> u128 {
    ((key << 32) | u128::from(next)) & mask
}

/// The mask that keeps the last `order` ids of a key.
pub(crate) fn key_mask(order: usize) -> u128 {
    if order >= MAX_ORDER {
        u128::MAX
    } else {
        (1u128 << (32 * order)) - 1
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Chain {
    mask: u128,
    states: FastMap<u128, Vec<(u32, f32)>>,
    /// States other than the start with at least two distinct successors.
    branching: usize,
}

impl Chain {
    pub(crate) fn new(order: usize) -> Self {
        Self {
            mask: key_mask(order),
            states: fast_map(),
            branching: 0,
        }
    }

    pub(crate) fn mask(&self) -> u128 {
        self.mask
    }

    /// Adds the transitions of one post (ids without boundaries).
    pub(crate) fn add(&mut self, ids: &[u32], weight: f32) {
        let mut key = 0u128;
        for &id in ids.iter().chain(std::iter::once(&BOUNDARY)) {
            self.add_transition(key, id, weight);
            key = push_key(key, id, self.mask);
        }
    }

    fn add_transition(&mut self, key: u128, next: u32, weight: f32) {
        let list = self.states.entry(key).or_default();
        if let Some(pos) = list.iter().position(|&(id, _)| id == next) {
            for entry in &mut list[pos..] {
                entry.1 += weight;
            }
        } else {
            let total = list.last().map_or(0.0, |&(_, c)| c);
            list.push((next, total + weight));
            // The start state branches in any corpus of two posts; only
            // branching past it lets an output leave the post it began in.
            if list.len() == 2 && key != 0 {
                self.branching += 1;
            }
        }
    }

    pub(crate) fn branching_states(&self) -> usize {
        self.branching
    }

    pub(crate) fn successors(&self, key: u128) -> Option<&[(u32, f32)]> {
        self.states.get(&key).map(Vec::as_slice)
    }

    /// Whether `next` can follow the state `key`.
    #[inline]
    pub(crate) fn can_follow(&self, key: u128, next: u32) -> bool {
        self.states
            .get(&key)
            .is_some_and(|l| l.iter().any(|&(id, _)| id == next))
    }

    /// Draws the next id after `key`, never `avoid` (pass
    /// [`crate::vocab::UNKNOWN`] to allow all). `None` at a dead end.
    #[inline]
    pub(crate) fn sample(
        &self,
        key: u128,
        rng: &mut fastrand::Rng,
        inv_temperature: f32,
        avoid: u32,
    ) -> Option<u32> {
        let list = self.states.get(&key)?;
        sample_list(list, rng, inv_temperature, avoid)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let table = self.states.capacity() * (16 + 24 + 1);
        let lists: usize = self.states.values().map(|l| l.capacity() * 8 + 16).sum();
        table + lists
    }
}

#[inline]
fn sample_list(list: &[(u32, f32)], rng: &mut fastrand::Rng, inv_t: f32, avoid: u32) -> Option<u32> {
    let total = list.last()?.1;
    #[allow(clippy::float_cmp)] // exactly 1.0 is the documented fast path
    let plain = inv_t == 1.0;
    if plain && !list.iter().any(|&(id, _)| id == avoid) {
        let r = rng.f32() * total;
        let i = list.partition_point(|&(_, c)| c <= r).min(list.len() - 1);
        return Some(list[i].0);
    }
    // Reweighted: w' = w^(1/T), skipping `avoid`.
    let weight = |i: usize| {
        let prev = if i == 0 { 0.0 } else { list[i - 1].1 };
        let w = list[i].1 - prev;
        if plain { w } else { w.powf(inv_t) }
    };
    let mut sum = 0.0f32;
    for (i, &(id, _)) in list.iter().enumerate() {
        if id != avoid {
            sum += weight(i);
        }
    }
    if sum <= 0.0 || !sum.is_finite() {
        return None;
    }
    let mut r = rng.f32() * sum;
    let mut last = None;
    for (i, &(id, _)) in list.iter().enumerate() {
        if id == avoid {
            continue;
        }
        let w = weight(i);
        last = Some(id);
        if r < w {
            return Some(id);
        }
        r -= w;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::UNKNOWN;

    #[test]
    fn cumulative_weights_and_sampling() {
        let mut c = Chain::new(2);
        c.add(&[5, 6, 7], 1.0);
        c.add(&[5, 6, 8], 3.0);
        c.add(&[5, 6, 7], 1.0);
        let key = push_key(push_key(0, 5, c.mask()), 6, c.mask());
        assert_eq!(c.successors(key).unwrap(), &[(7, 2.0), (8, 5.0)]);
        let mut rng = fastrand::Rng::with_seed(1);
        let n = 10_000;
        let sevens = (0..n)
            .filter(|_| c.sample(key, &mut rng, 1.0, UNKNOWN) == Some(7))
            .count();
        assert!((3_500..4_500).contains(&sevens), "{sevens}");
        assert!((0..100).all(|_| c.sample(key, &mut rng, 1.0, 7) == Some(8)));
        // Low temperature sharpens towards the heavier successor.
        let cold = (0..n)
            .filter(|_| c.sample(key, &mut rng, 4.0, UNKNOWN) == Some(7))
            .count();
        assert!(cold < sevens / 2, "{cold}");
        assert_eq!(c.branching_states(), 1);
    }
}
