//! The smoothed scorer: stupid backoff over 1- to 3-grams.
//
// Design: weighted counts in foldhash maps keyed by packed ids (a trigram
// in a u128, a bigram in a u64) and unigram counts in vectors indexed by
// id. Each post is padded with two BOUNDARY ids in front and one at the end,
// so the first tokens and the end of a post are predicted too. The score of
// `w` after `u v` (Brants et al. 2007, "stupid backoff", α = 0.4):
//
//   S(w | u v) = c(u v w) / c(u v ·)         if c(u v w) > 0
//              = 0.4 · c(v w) / c(v ·)       else if c(v w) > 0
//              = 0.16 · c(w) / N              else if c(w) > 0
//              = 0.064 / (N + V)              for a token never seen
//
// where `c(x ·)` counts `x` as a history and N is the total count. A text's
// fluency is the mean of ln S over its tokens and its end.

use crate::chain::{FastMap, fast_map};
use crate::vocab::{BOUNDARY, UNKNOWN};

const ALPHA: f64 = 0.4;

#[derive(Clone, Debug)]
pub(crate) struct Scorer {
    uni: Vec<f32>,
    hist1: Vec<f32>,
    bi: FastMap<u64, f32>,
    hist2: FastMap<u64, f32>,
    tri: FastMap<u128, f32>,
    total: f64,
}

#[inline]
fn bi_key(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

#[inline]
fn tri_key(a: u32, b: u32, c: u32) -> u128 {
    (u128::from(a) << 64) | (u128::from(b) << 32) | u128::from(c)
}

impl Scorer {
    pub(crate) fn new() -> Self {
        Self {
            uni: Vec::new(),
            hist1: Vec::new(),
            bi: fast_map(),
            hist2: fast_map(),
            tri: fast_map(),
            total: 0.0,
        }
    }

    fn grow(&mut self, id: u32) {
        let need = id as usize + 1;
        if self.uni.len() < need {
            self.uni.resize(need, 0.0);
            self.hist1.resize(need, 0.0);
        }
    }

    /// Adds one post (ids without boundaries).
    pub(crate) fn add(&mut self, ids: &[u32], weight: f32) {
        let (mut u, mut v) = (BOUNDARY, BOUNDARY);
        for &w in ids.iter().chain(std::iter::once(&BOUNDARY)) {
            self.grow(w.max(v));
            *self.tri.entry(tri_key(u, v, w)).or_default() += weight;
            *self.hist2.entry(bi_key(u, v)).or_default() += weight;
            *self.bi.entry(bi_key(v, w)).or_default() += weight;
            self.hist1[v as usize] += weight;
            self.uni[w as usize] += weight;
            self.total += f64::from(weight);
            (u, v) = (v, w);
        }
    }

    /// `ln S(w | u v)`.
    #[inline]
    fn log_score(&self, u: u32, v: u32, w: u32, vocab_len: usize) -> f64 {
        if w != UNKNOWN && v != UNKNOWN {
            if u != UNKNOWN
                && let Some(&c) = self.tri.get(&tri_key(u, v, w))
            {
                let h = self.hist2.get(&bi_key(u, v)).copied().unwrap_or(c);
                return (f64::from(c) / f64::from(h)).ln();
            }
            if let Some(&c) = self.bi.get(&bi_key(v, w)) {
                let h = f64::from(self.hist1.get(v as usize).copied().unwrap_or(c));
                return (ALPHA * f64::from(c) / h).ln();
            }
        }
        if let Some(&c) = self.uni.get(w as usize)
            && c > 0.0
        {
            return (ALPHA * ALPHA * f64::from(c) / self.total).ln();
        }
        #[allow(clippy::cast_precision_loss)] // vocabularies are far below 2^52
        let unseen = ALPHA * ALPHA * ALPHA / (self.total + vocab_len as f64).max(1.0);
        unseen.ln()
    }

    /// The mean `ln S` over the tokens of `ids` and their end.
    pub(crate) fn mean_log_prob(&self, ids: &[u32], vocab_len: usize) -> f64 {
        let (mut u, mut v) = (BOUNDARY, BOUNDARY);
        let mut sum = 0.0;
        for &w in ids.iter().chain(std::iter::once(&BOUNDARY)) {
            sum += self.log_score(u, v, w, vocab_len);
            (u, v) = (v, w);
        }
        #[allow(clippy::cast_precision_loss)] // post lengths are tiny
        let n = (ids.len() + 1) as f64;
        sum / n
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        (self.uni.capacity() + self.hist1.capacity()) * 4
            + (self.bi.capacity() + self.hist2.capacity()) * (8 + 4 + 1)
            + self.tri.capacity() * (16 + 4 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_order_scores_higher_than_shuffled() {
        let mut s = Scorer::new();
        for _ in 0..3 {
            s.add(&[2, 3, 4, 5], 1.0);
            s.add(&[2, 3, 6, 7], 1.0);
        }
        let fluent = s.mean_log_prob(&[2, 3, 4, 5], 8);
        let shuffled = s.mean_log_prob(&[5, 4, 2, 3], 8);
        let unknown = s.mean_log_prob(&[UNKNOWN, UNKNOWN], 8);
        assert!(
            fluent > shuffled && shuffled > unknown,
            "{fluent} {shuffled} {unknown}"
        );
        assert!(fluent <= 0.0);
    }
}
