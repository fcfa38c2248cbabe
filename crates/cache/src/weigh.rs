//! Sizes of keys and values in bytes, for `max_memory_bytes`.

use std::mem::size_of;
use std::sync::Arc;

/// Bytes an entry is counted for beyond its key and value by
/// [`CacheBuilder::max_memory_bytes`](crate::CacheBuilder::max_memory_bytes):
/// the slot's bookkeeping (node, generation, cost, namespace, reference
/// counter), its share of the hash table, its policy node and its share of
/// the frequency sketch.
///
/// Measured for `u64 → u64` without expiry: 56 bytes at 1M entries and 57
/// at 900k. Entries with a deadline (a TTL or time-to-idle) add 16 bytes
/// for it, so a memory budget of a cache with expiry undercounts by up to
/// about 10 bytes per entry; see `docs/benchmarks.md`.
pub const ENTRY_OVERHEAD_BYTES: usize = 64;

/// A value whose memory footprint can be estimated: its inline size plus
/// what it owns on the heap.
///
/// Used by [`CacheBuilder::max_memory_bytes`](crate::CacheBuilder::max_memory_bytes),
/// which weighs each entry as `key.mem_size() + value.mem_size() +`
/// [`ENTRY_OVERHEAD_BYTES`]. An `Arc` counts its whole pointee, even if other
/// owners share it (an upper bound).
///
/// ```
/// use brisk_cache::MemSize;
///
/// assert_eq!(7u64.mem_size(), 8);
/// assert_eq!(String::from("hello").mem_size(), 24 + 5);
/// ```
pub trait MemSize {
    /// Heap bytes owned by this value (0 for plain data).
    fn heap_size(&self) -> usize {
        0
    }

    /// Inline plus heap bytes.
    fn mem_size(&self) -> usize
    where
        Self: Sized,
    {
        size_of::<Self>() + self.heap_size()
    }
}

macro_rules! plain {
    ($($t:ty),*) => { $(impl MemSize for $t {})* };
}
plain!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    bool,
    char,
    ()
);
plain!(brisk_core::ContentHash);

impl MemSize for String {
    fn heap_size(&self) -> usize {
        self.capacity()
    }
}

impl MemSize for Box<str> {
    fn heap_size(&self) -> usize {
        self.len()
    }
}

impl MemSize for Arc<str> {
    fn heap_size(&self) -> usize {
        self.len() + 2 * size_of::<usize>()
    }
}

impl MemSize for Arc<[u8]> {
    fn heap_size(&self) -> usize {
        self.len() + 2 * size_of::<usize>()
    }
}

impl<T: MemSize> MemSize for Vec<T> {
    fn heap_size(&self) -> usize {
        (self.capacity() - self.len()) * size_of::<T>() + self.iter().map(MemSize::mem_size).sum::<usize>()
    }
}

impl<T: MemSize> MemSize for Box<T> {
    fn heap_size(&self) -> usize {
        (**self).mem_size()
    }
}

impl<T: MemSize> MemSize for Arc<T> {
    fn heap_size(&self) -> usize {
        (**self).mem_size() + 2 * size_of::<usize>()
    }
}

impl<T: MemSize> MemSize for Option<T> {
    fn heap_size(&self) -> usize {
        self.as_ref().map_or(0, MemSize::heap_size)
    }
}

impl<A: MemSize, B: MemSize> MemSize for (A, B) {
    fn heap_size(&self) -> usize {
        self.0.heap_size() + self.1.heap_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(1u32.mem_size(), 4);
        let v: Vec<u16> = Vec::with_capacity(10);
        assert_eq!(v.mem_size(), 24 + 20);
        assert_eq!(Some(String::from("ab")).heap_size(), 2);
        assert_eq!((1u8, String::from("xyz")).heap_size(), 3);
        let a: Arc<str> = Arc::from("abcd");
        assert_eq!(a.heap_size(), 4 + 16);
    }
}
