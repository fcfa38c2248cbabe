//! The corpus index behind the novelty test and topic seeding.
//
// Design: the corpus is kept once, as one flat vector of token ids with a
// BOUNDARY id before every post and after the last (about 4 bytes per
// token). A foldhash map from each bigram to the positions where it starts
// (a posting list) finds every place an output's window could match; from
// there the match is extended by comparing ids in the flat vector, and it
// stops at a post's end because outputs never contain BOUNDARY. So the
// longest run an output shares with any corpus post costs one map lookup
// per output position plus short comparisons: no scan of the corpus, and
// no set of every window length up to 16. Per-token occurrence lists give
// topic seeding its starting points, and walking bigram postings backwards
// gives it a reverse chain for free.

use crate::chain::{FastMap, fast_map};
use crate::vocab::BOUNDARY;

#[derive(Clone, Debug)]
pub(crate) struct Index {
    corpus: Vec<u32>,
    /// Where each post's first token is in `corpus`.
    starts: Vec<u32>,
    bigrams: FastMap<u64, Vec<u32>>,
    /// Positions of each token id.
    occurrences: Vec<Vec<u32>>,
}

#[inline]
fn bi_key(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

impl Index {
    pub(crate) fn new() -> Self {
        Self {
            corpus: vec![BOUNDARY],
            starts: Vec::new(),
            bigrams: fast_map(),
            occurrences: Vec::new(),
        }
    }

    /// Adds a post (ids without boundaries).
    pub(crate) fn add(&mut self, ids: &[u32]) {
        let start = u32::try_from(self.corpus.len()).expect("corpus below 2^32 tokens");
        self.starts.push(start);
        self.corpus.extend_from_slice(ids);
        self.corpus.push(BOUNDARY);
        for (i, &id) in ids.iter().enumerate() {
            let pos = start + u32::try_from(i).expect("post below 2^32 tokens");
            let slot = id as usize;
            if self.occurrences.len() <= slot {
                self.occurrences.resize_with(slot + 1, Vec::new);
            }
            self.occurrences[slot].push(pos);
            if let Some(&next) = ids.get(i + 1) {
                self.bigrams.entry(bi_key(id, next)).or_default().push(pos);
            }
        }
    }

    pub(crate) fn posts(&self) -> usize {
        self.starts.len()
    }

    pub(crate) fn tokens(&self) -> usize {
        self.corpus.len() - self.starts.len() - 1
    }

    /// The ids of post `i`.
    pub(crate) fn post(&self, i: usize) -> &[u32] {
        let start = self.starts[i] as usize;
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.corpus.len() - 1, |&s| s as usize - 1);
        &self.corpus[start..end]
    }

    /// How many times `id` occurs.
    pub(crate) fn count(&self, id: u32) -> usize {
        self.occurrences.get(id as usize).map_or(0, Vec::len)
    }

    /// The longest run of consecutive ids `out` shares with any post,
    /// stopping early once a run reaches `stop`.
    pub(crate) fn longest_shared_run(&self, out: &[u32], stop: usize) -> usize {
        let mut best = usize::from(out.iter().any(|&id| self.count(id) > 0));
        if out.len() < 2 {
            return best;
        }
        for i in 0..out.len() - 1 {
            if out.len() - i <= best {
                break;
            }
            let Some(list) = self.bigrams.get(&bi_key(out[i], out[i + 1])) else {
                continue;
            };
            for &p in list {
                let p = p as usize;
                let mut k = 2;
                while i + k < out.len() && self.corpus[p + k] == out[i + k] {
                    k += 1;
                }
                if k > best {
                    best = k;
                    if best >= stop || i + k == out.len() {
                        break;
                    }
                }
            }
            if best >= stop {
                break;
            }
        }
        best
    }

    /// A random token before a place where `context` (at least one id)
    /// occurs, or `None` when `context` never occurs; BOUNDARY means the
    /// context starts a post. Counts-proportional: each occurrence is
    /// equally likely.
    pub(crate) fn sample_predecessor(&self, context: &[u32], rng: &mut fastrand::Rng) -> Option<u32> {
        let positions: &[u32] = if context.len() >= 2 {
            self.bigrams.get(&bi_key(context[0], context[1]))?
        } else {
            self.occurrences.get(*context.first()? as usize)?
        };
        // Reservoir-sample among the positions where the whole context matches.
        let mut seen = 0u32;
        let mut pick = None;
        for &p in positions {
            let p = p as usize;
            if context.len() > 2 && self.corpus.get(p..p + context.len()) != Some(context) {
                continue;
            }
            seen += 1;
            if rng.u32(..seen) == 0 {
                pick = Some(self.corpus[p - 1]);
            }
        }
        pick
    }

    /// A random position of one of `ids`, each occurrence equally likely.
    pub(crate) fn sample_occurrence(&self, ids: &[u32], rng: &mut fastrand::Rng) -> Option<u32> {
        let total: usize = ids.iter().map(|&id| self.count(id)).sum();
        if total == 0 {
            return None;
        }
        let mut r = rng.usize(..total);
        for &id in ids {
            let n = self.count(id);
            if r < n {
                return Some(self.corpus[self.occurrences[id as usize][r] as usize]);
            }
            r -= n;
        }
        None
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let lists: usize = self.bigrams.values().map(|l| l.capacity() * 4 + 16).sum();
        let occ: usize = self.occurrences.iter().map(|l| l.capacity() * 4).sum();
        self.corpus.capacity() * 4
            + self.starts.capacity() * 4
            + self.bigrams.capacity() * (8 + 24 + 1)
            + lists
            + self.occurrences.capacity() * 24
            + occ
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_run_stays_inside_posts() {
        let mut idx = Index::new();
        idx.add(&[2, 3, 4, 5]);
        idx.add(&[6, 7, 8]);
        assert_eq!(idx.post(0), &[2, 3, 4, 5]);
        assert_eq!(idx.post(1), &[6, 7, 8]);
        assert_eq!(idx.tokens(), 7);
        assert_eq!(idx.longest_shared_run(&[9, 3, 4, 5, 6, 7], 100), 3);
        // 5 ends post 0 and 6 starts post 1: the run does not cross.
        assert_eq!(idx.longest_shared_run(&[4, 5, 6, 7, 8], 100), 3);
        assert_eq!(idx.longest_shared_run(&[9, 10], 100), 0);
        assert!(idx.longest_shared_run(&[2, 3, 4, 5], 2) >= 2);
        let mut rng = fastrand::Rng::with_seed(3);
        assert_eq!(idx.sample_predecessor(&[3, 4], &mut rng), Some(2));
        assert_eq!(idx.sample_predecessor(&[2], &mut rng), Some(BOUNDARY));
        assert_eq!(idx.sample_occurrence(&[7], &mut rng), Some(7));
    }
}
