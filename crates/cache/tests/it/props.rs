use brisk_cache::Cache;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Get(u8),
    Insert(u8, u8),
    Remove(u8),
    Invalidate,
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<u8>().prop_map(Op::Get),
        6 => (any::<u8>(), any::<u8>()).prop_map(|(k, w)| Op::Insert(k, w)),
        2 => any::<u8>().prop_map(Op::Remove),
        1 => Just(Op::Invalidate),
        1 => Just(Op::Clear),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn weight_never_exceeds_capacity_and_stats_add_up(
        max in 1u64..200,
        ops in proptest::collection::vec(op(), 1..400),
    ) {
        let cache: Cache<u8, u8> = Cache::builder()
            .max_weight(max)
            .weigher(|_, v: &u8| u32::from(*v % 50) + 1)
            .build()
            .unwrap();
        let mut gets = 0u64;
        let mut rejected = 0u64;
        for op in ops {
            match op {
                Op::Get(k) => { gets += 1; cache.get(&k); }
                Op::Insert(k, w) => {
                    if u64::from(w % 50) + 1 > max { rejected += 1; }
                    cache.insert(k, w);
                }
                Op::Remove(k) => { cache.remove(&k); }
                Op::Invalidate => cache.invalidate_all(),
                Op::Clear => cache.clear(),
            }
            prop_assert!(cache.weight() <= max, "weight {} over {}", cache.weight(), max);
        }
        let s = cache.stats();
        prop_assert_eq!(s.requests(), gets);
        prop_assert_eq!(s.rejected, rejected);
        prop_assert_eq!(s.entries, cache.entry_count());
        prop_assert_eq!(
            s.inserts,
            s.entries + s.evicted_size + s.evicted_expired + s.evicted_invalidated + s.removed
        );
        cache.purge();
        let s = cache.stats();
        prop_assert_eq!(s.entries, cache.entry_count());
    }
}
