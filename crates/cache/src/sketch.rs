// A count-min sketch of 4-bit counters: TinyLFU's frequency estimate.
//
// Each `u64` word holds sixteen 4-bit counters. An item maps to four
// counters in one 64-byte block (one cache line), each increment bumps
// the four unless saturated at 15, and the estimate is their minimum. After
// `sample_size` increments every counter is halved ("aging"), so frequencies
// reflect the recent past and a once-popular key cannot squat forever.
//
// The table has one word per expected entry (rounded up to a power of two):
// 8 bytes per entry, 16 counters, which keeps the error low for the capacity
// it serves (the TinyLFU paper's recommendation) while staying small enough
// to sit in the CPU cache for typical sizes.

#[derive(Debug)]
pub(crate) struct FrequencySketch {
    table: Vec<u64>,
    mask: usize,
    sample_size: u64,
    additions: u64,
}

const SEEDS: [u64; 2] = [0xc3a5_c85c_97cb_3127, 0xb492_b66f_be98_f273];
const RESET_MASK: u64 = 0x7777_7777_7777_7777;

impl FrequencySketch {
    /// A sketch sized for about `capacity` distinct hot items.
    pub(crate) fn new(capacity: u64) -> Self {
        let words = usize::try_from(capacity.clamp(64, 1 << 26))
            .unwrap_or(1 << 26)
            .next_power_of_two();
        Self {
            table: vec![0; words],
            mask: words - 1,
            sample_size: (words as u64).saturating_mul(10),
            additions: 0,
        }
    }

    /// Grows the table if it is too small for `capacity` items (never
    /// shrinks), keeping every estimate: the table is tiled. An item's
    /// block is its hash masked to the table size, so in a table 2^k times
    /// larger it lands in one of the 2^k copies of its old block, at the
    /// same offsets. (Until 2026-12 growing started from an empty table,
    /// which forgot every key's history at once, and a hot key could then
    /// lose a duel to a cold one.)
    pub(crate) fn ensure_capacity(&mut self, capacity: u64) {
        let wanted = usize::try_from(capacity.clamp(64, 1 << 26))
            .unwrap_or(1 << 26)
            .next_power_of_two();
        if wanted > self.table.len() {
            self.table = self.table.repeat(wanted / self.table.len());
            self.mask = wanted - 1;
            self.sample_size = (wanted as u64).saturating_mul(10);
        }
    }

    /// The four (word, bit offset) counters of `hash`, all in one 64-byte
    /// block of eight words, so an increment or estimate touches one cache
    /// line (Caffeine's layout).
    #[inline]
    fn slots(&self, hash: u64) -> [(usize, u32); 4] {
        let h = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let h = h ^ (h >> 32);
        #[allow(clippy::cast_possible_truncation)] // masked to the table size
        let block = ((h as usize) & self.mask) & !7;
        let c = (hash ^ SEEDS[0]).wrapping_mul(SEEDS[1]);
        let c = c ^ (c >> 29);
        let mut out = [(0, 0); 4];
        for (i, slot) in out.iter_mut().enumerate() {
            #[allow(clippy::cast_possible_truncation)]
            let bits = (c >> (i * 16)) as u32;
            // Two words per row (i), one picked by a bit, a counter by four.
            let word = block + (i << 1) + (bits & 1) as usize;
            *slot = (word, ((bits >> 1) & 15) * 4);
        }
        out
    }

    /// The estimated frequency of `hash`, 0..=15.
    pub(crate) fn frequency(&self, hash: u64) -> u8 {
        let mut min = 15u64;
        for (i, shift) in self.slots(hash) {
            min = min.min((self.table[i] >> shift) & 15);
        }
        #[allow(clippy::cast_possible_truncation)] // at most 15
        let min = min as u8;
        min
    }

    /// Whether the next counted access halves every counter.
    pub(crate) fn resets_next(&self) -> bool {
        self.additions + 1 >= self.sample_size
    }

    /// Counts one access to `hash`.
    pub(crate) fn increment(&mut self, hash: u64) {
        if self.add(hash) {
            self.additions += 1;
            if self.additions >= self.sample_size {
                self.reset();
            }
        }
    }

    /// Counts one access to `hash` without counting towards the next
    /// halving (for accesses that happened before it; see policy.rs).
    pub(crate) fn increment_late(&mut self, hash: u64) {
        self.add(hash);
    }

    fn add(&mut self, hash: u64) -> bool {
        let mut added = false;
        for (i, shift) in self.slots(hash) {
            if (self.table[i] >> shift) & 15 < 15 {
                self.table[i] += 1 << shift;
                added = true;
            }
        }
        added
    }

    /// Halves every counter.
    fn reset(&mut self) {
        for word in &mut self.table {
            *word = (*word >> 1) & RESET_MASK;
        }
        self.additions /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_saturates() {
        let mut s = FrequencySketch::new(1024);
        assert_eq!(s.frequency(42), 0);
        for _ in 0..5 {
            s.increment(42);
        }
        assert_eq!(s.frequency(42), 5);
        for _ in 0..100 {
            s.increment(42);
        }
        assert_eq!(s.frequency(42), 15);
        assert!(s.frequency(43) < 15);
    }

    #[test]
    fn ages_after_sample() {
        let mut s = FrequencySketch::new(16);
        for _ in 0..15 {
            s.increment(7);
        }
        let before = s.frequency(7);
        // Enough distinct increments to trigger at least one reset.
        for k in 0..2000u64 {
            s.increment(k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        assert!(s.frequency(7) < before);
    }

    #[test]
    fn growing_keeps_every_estimate() {
        let mut s = FrequencySketch::new(64);
        let keys: Vec<u64> = (0..300u64)
            .map(|k| k.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5555)
            .collect();
        for (i, &k) in keys.iter().enumerate() {
            for _ in 0..i % 16 {
                s.increment(k);
            }
        }
        let before: Vec<u8> = keys.iter().map(|&k| s.frequency(k)).collect();
        assert!(before.iter().any(|&f| f >= 10), "some keys are counted");
        s.ensure_capacity(1000);
        assert_eq!(s.table.len(), 1024);
        let after: Vec<u8> = keys.iter().map(|&k| s.frequency(k)).collect();
        assert_eq!(after, before);
        // New counts go to the grown table and age with its larger sample.
        s.increment(keys[0]);
        assert_eq!(s.frequency(keys[0]), before[0] + 1);
        assert_eq!(s.sample_size, 10_240);
    }
}
