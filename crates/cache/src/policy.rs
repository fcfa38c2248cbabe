// The admission and eviction policy: W-TinyLFU with an adaptive window.
//
// Why this policy: on the traces brisk is measured on (an OLTP database
// trace and a looping scan), plain LRU is poor (16.7% at 256 entries on
// OLTP, 0% on the loop) because one pass of cold keys flushes everything.
// TinyLFU admits a new entry only if it is estimated to be more popular than
// the entry it would displace, so scans pass through without flushing the hot
// set. A small LRU "window" in front lets bursts of new keys build up a
// frequency before they must win a duel, and a hill climber resizes that
// window from the observed hit ratio (Einziger et al., "Adaptive Software
// Cache Management", Middleware 2018; the same design as Caffeine and, in a
// simpler form, moka).
//
// Layout: every resident entry owns a node in one arena (`Vec<Node>`) with
// `u32` links, in one of three LRU lists:
//
//   window ──overflow──▶ probation ──hit──▶ protected (80% of main)
//                          ▲                    │
//                          └─────overflow───────┘
//
// Nodes are indices so that the map's slots can point at them with 4 bytes,
// and a node carries the key's hash (not the key): the cache finds the slot
// to evict through the hash and the node index, so keys are stored once. A
// node is 20 bytes (the hash as two `u32`s, so that it needs no 8-byte
// alignment) plus a byte for its queue in a parallel array.
//
// The policy is single-threaded and lives behind the cache's one policy
// mutex. Reads never take that mutex: a hit bumps its entry's reference
// counter (refs.rs: a byte in the entry's slot, which the policy reaches
// through the `Cells` it is handed) with a relaxed store. The lists are
// therefore kept as CLOCK-style queues rather than strict LRU: the policy
// looks at a node's counter only when the node reaches the cold end of its
// queue (on every path that may evict it), and then
//
//   - replays the hits into the frequency sketch (and the climber's sample),
//   - gives a window or protected node that was hit a second chance (back to
//     the hot end of its queue), and promotes a probation node that was hit
//     to the protected segment, as an LRU hit would have.
//
// Before a duel both sides' pending hits are replayed, so admission compares
// up-to-date frequencies. Second chances per call are bounded, so a burst of
// readers re-touching nodes cannot keep a writer in the loop.

use crate::refs::{COUNT, Cells};
use crate::sketch::FrequencySketch;

pub(crate) const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Queue {
    Window,
    Probation,
    Protected,
    Free,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    hash_lo: u32,
    hash_hi: u32,
    prev: u32,
    next: u32,
    weight: u32,
}

impl Node {
    #[inline]
    fn hash(&self) -> u64 {
        (u64::from(self.hash_hi) << 32) | u64::from(self.hash_lo)
    }
}

#[derive(Clone, Copy, Debug)]
struct List {
    head: u32, // least recently used
    tail: u32, // most recently used
    weight: u64,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        weight: 0,
    };
}

/// An entry the policy removed: the caller deletes its slot from the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Evicted {
    pub(crate) node: u32,
    pub(crate) hash: u64,
}

/// Tuning knobs, fixed at build time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PolicyConfig {
    pub(crate) max_weight: u64,
    /// Share of `max_weight` the window starts with.
    pub(crate) initial_window: f64,
    /// Whether the hill climber resizes the window.
    pub(crate) adaptive: bool,
    /// Expected number of entries (sizes the frequency sketch).
    pub(crate) expected_entries: u64,
}

// Hill-climber constants (Caffeine's, which the paper above tuned).
const PROTECTED_SHARE: f64 = 0.8;
const STEP_PERCENT: f64 = 0.0625;
const STEP_DECAY: f64 = 0.98;
const RESTART_THRESHOLD: f64 = 0.05;
// A candidate must be estimated at least this much more frequent than its
// victim to replace it. With a margin of 0, a looping scan churns: the
// victim (the least recently used resident) is always the key the loop
// reaches next, so it has not been counted this round yet and loses by one
// to the candidate that just was. A margin of 1 keeps the resident set
// stable (50.5% on the loop trace at 512 entries, the optimum, against 49.4%)
// and costs nothing measurable on OLTP. Hash flooding is not a concern
// that needs Caffeine's random admission here: the hasher is seeded at
// random per cache, so an attacker cannot aim at a victim's counters.
const ADMIT_MARGIN: u8 = 1;
// The climber ignores hit-rate changes smaller than this between samples:
// on periodic workloads the sampled hit rate wobbles by about a point with
// the phase of the sample against the period, and chasing that noise grows
// the window for nothing (measured on the loop trace).
const DEAD_BAND: f64 = 0.02;
// Second chances (a node that was hit goes back to the hot end of its
// queue instead of moving on) per `maintain` call: twice the number of
// entries, at least this. Each is paid for by at least one hit, so the bound
// only matters if readers keep re-touching nodes while a writer walks the
// queues. A fixed bound of 256 cost about half a point on the loop trace.
const MIN_SECOND_CHANCES: u32 = 256;

#[derive(Debug)]
pub(crate) struct Policy {
    nodes: Vec<Node>,
    queues: Vec<Queue>,
    free: Vec<u32>,
    window: List,
    probation: List,
    protected: List,
    sketch: FrequencySketch,
    max_weight: u64,
    window_max: u64,
    protected_max: u64,
    len: u64,
    // hill climber
    adaptive: bool,
    hits_in_sample: u64,
    misses_in_sample: u64,
    /// The cache's hit count when it last reported it.
    hits_seen: u64,
    /// Inserts since the cache last reported its hit count.
    inserts_unreported: u32,
    sample_size: u64,
    previous_hit_rate: f64,
    step: f64,
}

#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
fn share(total: u64, fraction: f64) -> u64 {
    (total as f64 * fraction).round() as u64
}

impl Policy {
    pub(crate) fn new(config: PolicyConfig) -> Self {
        let max = config.max_weight;
        let window_max = share(max, config.initial_window).min(max);
        #[allow(clippy::cast_precision_loss)]
        let step = -(STEP_PERCENT * max as f64);
        Self {
            nodes: Vec::new(),
            queues: Vec::new(),
            free: Vec::new(),
            window: List::EMPTY,
            probation: List::EMPTY,
            protected: List::EMPTY,
            sketch: FrequencySketch::new(config.expected_entries),
            max_weight: max,
            window_max,
            protected_max: share(max - window_max, PROTECTED_SHARE),
            len: 0,
            adaptive: config.adaptive,
            hits_in_sample: 0,
            misses_in_sample: 0,
            hits_seen: 0,
            inserts_unreported: 0,
            sample_size: config.expected_entries.max(64).saturating_mul(10),
            previous_hit_rate: 0.0,
            step,
        }
    }

    /// Total weight of resident entries.
    pub(crate) fn weight(&self) -> u64 {
        self.window.weight + self.probation.weight + self.protected.weight
    }

    /// Number of resident entries.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The sketch's frequency estimate for `hash`.
    #[cfg(test)]
    pub(crate) fn frequency(&self, hash: u64) -> u8 {
        self.sketch.frequency(hash)
    }

    /// Replays the pending hits of every resident node into the sketch.
    #[cfg(test)]
    pub(crate) fn sync_refs(&mut self, cells: &dyn Cells) {
        for i in 0..self.nodes.len() {
            if self.queues[i] != Queue::Free {
                #[allow(clippy::cast_possible_truncation)]
                self.take_refs(i as u32, cells);
            }
        }
    }

    /// The current window size, in weight.
    #[cfg(test)]
    pub(crate) fn window_max(&self) -> u64 {
        self.window_max
    }

    fn list(&mut self, q: Queue) -> &mut List {
        match q {
            Queue::Window => &mut self.window,
            Queue::Probation => &mut self.probation,
            Queue::Protected => &mut self.protected,
            Queue::Free => unreachable!("a free node is in no list"),
        }
    }

    fn unlink(&mut self, i: u32) {
        let Node {
            prev, next, weight, ..
        } = self.nodes[i as usize];
        let queue = self.queues[i as usize];
        if prev == NIL {
            self.list(queue).head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.list(queue).tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        self.list(queue).weight -= u64::from(weight);
    }

    fn push_tail(&mut self, q: Queue, i: u32) {
        let tail = self.list(q).tail;
        {
            let n = &mut self.nodes[i as usize];
            n.prev = tail;
            n.next = NIL;
        }
        self.queues[i as usize] = q;
        let weight = u64::from(self.nodes[i as usize].weight);
        if tail == NIL {
            self.list(q).head = i;
        } else {
            self.nodes[tail as usize].next = i;
        }
        let list = self.list(q);
        list.tail = i;
        list.weight += weight;
    }

    fn move_to(&mut self, q: Queue, i: u32) {
        self.unlink(i);
        self.push_tail(q, i);
    }

    /// Whether `node` is resident and holds `hash`.
    fn is_live(&self, node: u32, hash: u64) -> bool {
        self.nodes
            .get(node as usize)
            .is_some_and(|n| self.queues[node as usize] != Queue::Free && n.hash() == hash)
    }

    /// Records an access to `node` by the policy's holder (ignored unless
    /// the node is resident with `hash`): counted in the sketch at once.
    pub(crate) fn on_hit(&mut self, node: u32, hash: u64, cells: &dyn Cells) {
        if self.is_live(node, hash) {
            self.count(hash, cells);
            self.hits_in_sample += 1;
            self.climb();
        }
    }

    /// Whether the climber wants the cache's hit count
    /// ([`report_hits`](Self::report_hits)) before this insert: every 32
    /// inserts, when the climber is on.
    pub(crate) fn wants_hits(&mut self) -> bool {
        if !self.adaptive {
            return false;
        }
        self.inserts_unreported += 1;
        self.inserts_unreported >= 32
    }

    /// The cache's total hit count so far (exact, from its counters): the
    /// climber's hit rate uses it rather than the reference counters, which
    /// saturate and are read late.
    ///
    /// Hits come in lumps (every 32 inserts, or after a run of hits with no
    /// insert at all), so a lump that overflows the sample is split: the
    /// sample is closed with the part that fits and the rest starts the
    /// next one. Otherwise a sample that happens to swallow one more run of
    /// hits than the last looks several points better, and the climber
    /// chases that (measured on the loop trace, whose hits come in runs of
    /// 512).
    pub(crate) fn report_hits(&mut self, total: u64) {
        let mut new = total.saturating_sub(self.hits_seen);
        self.hits_seen = total;
        self.inserts_unreported = 0;
        loop {
            let room = self
                .sample_size
                .saturating_sub(self.hits_in_sample + self.misses_in_sample);
            if new < room {
                self.hits_in_sample += new;
                return;
            }
            self.hits_in_sample += room;
            new -= room;
            self.climb();
        }
    }

    /// Takes node `i`'s pending hits and replays them into the sketch and
    /// returns how many there were.
    fn take_refs(&mut self, i: u32, cells: &dyn Cells) -> u8 {
        let hash = self.nodes[i as usize].hash();
        let cell = cells.take(i, hash);
        if cell & COUNT != 0 {
            for _ in 0..cell & COUNT {
                self.count(hash, cells);
            }
        }
        cell
    }

    /// Counts one access to `hash` in the sketch. Before the sketch halves
    /// its counters, every node's pending hits are replayed: they happened
    /// before the halving and must age with it, or residents would look
    /// more popular than newcomers with the same access rate (measured: up
    /// to a point of hit ratio lost on the loop trace).
    fn count(&mut self, hash: u64, cells: &dyn Cells) {
        if self.sketch.resets_next() {
            let (nodes, queues, sketch) = (&self.nodes, &self.queues, &mut self.sketch);
            cells.drain(&mut |i, cell| {
                let i = i as usize;
                if cell & COUNT != 0 && queues.get(i).is_some_and(|&q| q != Queue::Free) {
                    let node_hash = nodes[i].hash();
                    for _ in 0..cell & COUNT {
                        sketch.increment_late(node_hash);
                    }
                }
            });
        }
        self.sketch.increment(hash);
    }

    /// Whether node `i` was hit since the policy last looked, spending one
    /// of `budget`'s second chances if so.
    fn was_hit(&mut self, i: u32, budget: &mut u32, cells: &dyn Cells) -> bool {
        if self.take_refs(i, cells) == 0 || *budget == 0 {
            return false;
        }
        *budget -= 1;
        true
    }

    /// Gives `node` its second chance if it was hit since the policy last
    /// looked (spending one of `budget`'s): a probation node is promoted to
    /// protected, a window or protected node goes back to its queue's hot
    /// end. Returns whether it was hit.
    fn second_chance(&mut self, node: u32, budget: &mut u32, cells: &dyn Cells) -> bool {
        if !self.was_hit(node, budget, cells) {
            return false;
        }
        let queue = match self.queues[node as usize] {
            Queue::Probation => Queue::Protected,
            q => q,
        };
        self.move_to(queue, node);
        if queue == Queue::Protected {
            self.demote_protected_overflow(budget, cells);
        }
        true
    }

    fn demote_protected_overflow(&mut self, budget: &mut u32, cells: &dyn Cells) {
        while self.protected.weight > self.protected_max && self.protected.head != NIL {
            let n = self.protected.head;
            if self.was_hit(n, budget, cells) {
                self.move_to(Queue::Protected, n);
            } else {
                self.move_to(Queue::Probation, n);
            }
        }
    }

    /// Adds a new entry in the window; returns its node. Call
    /// [`maintain`](Self::maintain) afterwards.
    pub(crate) fn insert(&mut self, hash: u64, weight: u32, cells: &dyn Cells) -> u32 {
        self.count(hash, cells);
        self.misses_in_sample += 1;
        #[allow(clippy::cast_possible_truncation)] // the two halves
        let node = Node {
            hash_lo: hash as u32,
            hash_hi: (hash >> 32) as u32,
            prev: NIL,
            next: NIL,
            weight,
        };
        let i = if let Some(i) = self.free.pop() {
            self.nodes[i as usize] = node;
            i
        } else {
            let i = u32::try_from(self.nodes.len()).expect("more than 4 billion cache entries");
            assert!(i != NIL, "more than 4 billion cache entries");
            self.nodes.push(node);
            self.queues.push(Queue::Free);
            i
        };
        self.push_tail(Queue::Window, i);
        self.len += 1;
        if self.len > self.sample_size / 10 {
            self.sketch.ensure_capacity(self.len);
        }
        self.climb();
        i
    }

    /// Changes the weight of a resident entry (its value was replaced) and
    /// counts it as an access.
    pub(crate) fn update(&mut self, node: u32, hash: u64, weight: u32, cells: &dyn Cells) {
        if !self.is_live(node, hash) {
            return;
        }
        let queue = self.queues[node as usize];
        self.unlink(node);
        self.nodes[node as usize].weight = weight;
        self.push_tail(queue, node);
        self.on_hit(node, hash, cells);
    }

    /// Removes an entry (explicit removal, or its slot was dropped).
    pub(crate) fn remove(&mut self, node: u32) {
        if self.queues.get(node as usize).is_none_or(|&q| q == Queue::Free) {
            return;
        }
        self.unlink(node);
        self.queues[node as usize] = Queue::Free;
        self.free.push(node);
        self.len -= 1;
    }

    /// Forgets every entry (but keeps frequency history: it is still true).
    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.queues.clear();
        self.free.clear();
        self.window = List::EMPTY;
        self.probation = List::EMPTY;
        self.protected = List::EMPTY;
        self.len = 0;
    }

    fn evict(&mut self, node: u32, out: &mut Vec<Evicted>) {
        out.push(Evicted {
            node,
            hash: self.nodes[node as usize].hash(),
        });
        self.remove(node);
    }

    fn admit(&mut self, candidate: u32, victim: u32, cells: &dyn Cells) -> bool {
        // Both sides' pending hits count (the candidate's were taken when it
        // left the window, but a reader may have hit it since).
        self.take_refs(candidate, cells);
        self.take_refs(victim, cells);
        let cf = self.sketch.frequency(self.nodes[candidate as usize].hash());
        let vf = self.sketch.frequency(self.nodes[victim as usize].hash());
        cf > vf.saturating_add(ADMIT_MARGIN)
    }

    /// The coldest entry of the main space other than `not`.
    fn main_victim(&self, not: u32) -> Option<u32> {
        let mut i = self.probation.head;
        while i != NIL {
            if i != not {
                return Some(i);
            }
            i = self.nodes[i as usize].next;
        }
        (self.protected.head != NIL).then_some(self.protected.head)
    }

    /// Brings the weight back under the maximum: window overflow moves to
    /// the main space, and each entry that moves duels the main space's
    /// victim on frequency; the loser is evicted. Appends what was evicted.
    ///
    /// Nodes hit since the policy last looked at them get a second chance
    /// on the way (a window node goes back to the window's hot end, a
    /// probation node is promoted, a protected node goes back to the
    /// protected hot end), up to a bounded number per call.
    pub(crate) fn maintain(&mut self, out: &mut Vec<Evicted>, cells: &dyn Cells) {
        let mut budget = u32::try_from(self.len.saturating_mul(2))
            .unwrap_or(u32::MAX)
            .max(MIN_SECOND_CHANCES);
        while self.window.weight > self.window_max && self.window.head != NIL {
            let candidate = self.window.head;
            if self.second_chance(candidate, &mut budget, cells) {
                continue;
            }
            self.move_to(Queue::Probation, candidate);
            while self.weight() > self.max_weight {
                let Some(victim) = self.main_victim(candidate) else {
                    self.evict(candidate, out);
                    break;
                };
                if self.second_chance(victim, &mut budget, cells) {
                    continue;
                }
                if self.admit(candidate, victim, cells) {
                    self.evict(victim, out);
                } else {
                    self.evict(candidate, out);
                    break;
                }
            }
        }
        self.demote_protected_overflow(&mut budget, cells);
        // Still too heavy (a weight grew, or the climber grew the window, so
        // a new entry stayed there and the main space must shrink): evict
        // from the cold end of each space in turn. A node hit since the
        // policy last looked gets its second chance here too: its hits may
        // never have reached the sketch (a probation node in the middle of
        // the queue is not looked at while candidates lose their duels to
        // the head), so without it a hot key could go as if never read.
        while self.weight() > self.max_weight {
            let Some(victim) = [self.probation.head, self.protected.head, self.window.head]
                .into_iter()
                .find(|&i| i != NIL)
            else {
                break;
            };
            if !self.second_chance(victim, &mut budget, cells) {
                self.evict(victim, out);
            }
        }
    }
    /// Resizes the window from the hit rate of the last sample.
    fn climb(&mut self) {
        let requests = self.hits_in_sample + self.misses_in_sample;
        if !self.adaptive || requests < self.sample_size {
            return;
        }
        #[allow(clippy::cast_precision_loss)]
        let hit_rate = self.hits_in_sample as f64 / requests as f64;
        let delta = hit_rate - self.previous_hit_rate;
        let amount = if delta.abs() < DEAD_BAND {
            0.0
        } else if delta >= 0.0 {
            self.step
        } else {
            -self.step
        };
        #[allow(clippy::cast_precision_loss)]
        let restart = STEP_PERCENT * self.max_weight as f64;
        self.step = if amount == 0.0 {
            self.step * STEP_DECAY
        } else if delta.abs() >= RESTART_THRESHOLD {
            restart.copysign(amount)
        } else {
            amount * STEP_DECAY
        };
        self.previous_hit_rate = hit_rate;
        self.hits_in_sample = 0;
        self.misses_in_sample = 0;

        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let target = (self.window_max as f64 + amount).round();
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_sign_loss,
            clippy::cast_possible_truncation
        )]
        let window_max = target.clamp(0.0, self.max_weight as f64) as u64;
        self.window_max = window_max;
        self.protected_max = share(self.max_weight - window_max, PROTECTED_SHARE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refs::NodeCells;

    const NONE: NodeCells = NodeCells(Vec::new());

    fn policy(max: u64) -> Policy {
        Policy::new(PolicyConfig {
            max_weight: max,
            initial_window: 0.01,
            adaptive: false,
            expected_entries: max,
        })
    }

    fn h(k: u64) -> u64 {
        k.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef
    }

    #[test]
    fn stays_within_weight() {
        let mut p = policy(10);
        let mut out = Vec::new();
        for k in 0..100 {
            p.insert(h(k), 1, &NONE);
            p.maintain(&mut out, &NONE);
            assert!(p.weight() <= 10);
        }
        assert_eq!(p.len(), 10);
        assert_eq!(out.len(), 90);
    }

    #[test]
    fn frequent_keys_survive_a_scan() {
        let mut p = policy(100);
        let mut out = Vec::new();
        let mut hot = Vec::new();
        for k in 0..50 {
            hot.push((p.insert(h(k), 1, &NONE), h(k)));
            p.maintain(&mut out, &NONE);
        }
        for _ in 0..5 {
            for &(n, hash) in &hot {
                p.on_hit(n, hash, &NONE);
            }
        }
        out.clear();
        for k in 1000..1600 {
            p.insert(h(k), 1, &NONE);
            p.maintain(&mut out, &NONE);
        }
        let evicted_hot = out
            .iter()
            .filter(|e| hot.iter().any(|&(n, hh)| n == e.node && hh == e.hash))
            .count();
        assert_eq!(evicted_hot, 0, "a scan of cold keys evicted hot ones");
    }

    #[test]
    fn stale_hits_are_ignored_and_weights_shift() {
        let mut p = policy(10);
        let mut out = Vec::new();
        let n = p.insert(h(1), 3, &NONE);
        p.maintain(&mut out, &NONE);
        p.on_hit(n, h(2), &NONE); // wrong hash: ignored
        p.update(n, h(1), 12, &NONE);
        p.maintain(&mut out, &NONE);
        assert_eq!(out, vec![Evicted { node: n, hash: h(1) }]);
        assert_eq!(p.weight(), 0);
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn growing_the_window_spares_a_hit_entry() {
        // A window of 0: every entry passes straight to probation.
        let mut p = policy(10);
        assert_eq!(p.window_max(), 0);
        let cells = NodeCells::new(16);
        let mut out = Vec::new();
        let nodes: Vec<u32> = (0..10)
            .map(|k| {
                let n = p.insert(h(k), 1, &cells);
                p.maintain(&mut out, &cells);
                n
            })
            .collect();
        assert!(out.is_empty());
        // The probation head is read (its hits wait in its cell; the sketch
        // has not seen them), then the climber grows the window, so the next
        // entry stays there and the main space must give one up.
        crate::refs::touch(&cells.0[nodes[0] as usize]);
        p.window_max = 1;
        p.protected_max = share(9, PROTECTED_SHARE);
        p.insert(h(10), 1, &cells);
        p.maintain(&mut out, &cells);
        assert_eq!(
            out,
            vec![Evicted {
                node: nodes[1],
                hash: h(1)
            }],
            "the entry that was read must get its second chance"
        );
        assert_eq!(p.weight(), 10);
    }

    #[test]
    fn climber_moves_the_window() {
        let mut p = Policy::new(PolicyConfig {
            max_weight: 100,
            initial_window: 0.5,
            adaptive: true,
            expected_entries: 100,
        });
        let before = p.window_max();
        let mut out = Vec::new();
        // Samples (1,000 events) alternate between all misses and all hits,
        // so the hit rate swings far outside the dead band.
        let mut k = 0u64;
        for round in 0..10 {
            if round % 2 == 0 {
                for _ in 0..1000 {
                    k += 1;
                    p.insert(h(k), 1, &NONE);
                    p.maintain(&mut out, &NONE);
                }
            } else {
                let node = p.insert(h(u64::MAX - round), 1, &NONE);
                for _ in 0..1000 {
                    p.on_hit(node, h(u64::MAX - round), &NONE);
                }
                p.maintain(&mut out, &NONE);
            }
        }
        assert_ne!(p.window_max(), before);
    }
}
