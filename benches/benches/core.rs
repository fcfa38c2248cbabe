//! brisk-core benchmarks.
//!
//! `content_hash`: hashing 1,000 tweet-sized texts (40–280 bytes) with
//! `ContentHash` (xxh3-128) beside the stable hashers a user might pick
//! instead for keys that must not change across processes and releases:
//! - `twox-hash` XXH3-128 (the same algorithm, another implementation);
//! - `siphasher` SipHash-1-3 128-bit (std's `DefaultHasher` algorithm, but
//!   with fixed keys, since std's is not stable across releases);
//! - `blake3` (cryptographic, 256-bit);
//! - `xxhash-rust` xxh3-64 (a 64-bit key, for reference).
//!
//! Run: `cargo bench -p brisk-benches --bench core`

use std::hash::Hasher;
use std::hint::black_box;

use brisk_core::ContentHash;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn content_hash(c: &mut Criterion) {
    let texts = brisk_benches::tweet_like_texts(1000, 7);
    let bytes: u64 = texts.iter().map(|t| t.len() as u64).sum();
    let mut group = c.benchmark_group("content_hash_1000_tweets");
    group.throughput(Throughput::Bytes(bytes));

    group.bench_function("brisk ContentHash (xxh3-128)", |b| {
        b.iter(|| {
            let mut acc = 0u128;
            for t in &texts {
                acc ^= ContentHash::of(black_box(t)).as_u128();
            }
            acc
        });
    });
    group.bench_function("twox-hash XXH3-128", |b| {
        b.iter(|| {
            let mut acc = 0u128;
            for t in &texts {
                acc ^= twox_hash::XxHash3_128::oneshot(black_box(t.as_bytes()));
            }
            acc
        });
    });
    group.bench_function("siphasher SipHash-1-3 128", |b| {
        b.iter(|| {
            let mut acc = 0u128;
            for t in &texts {
                let mut h = siphasher::sip128::SipHasher13::new_with_keys(1, 2);
                h.write(black_box(t.as_bytes()));
                acc ^= siphasher::sip128::Hasher128::finish128(&h).as_u128();
            }
            acc
        });
    });
    group.bench_function("blake3 256", |b| {
        b.iter(|| {
            let mut acc = 0u8;
            for t in &texts {
                acc ^= blake3::hash(black_box(t.as_bytes())).as_bytes()[0];
            }
            acc
        });
    });
    group.bench_function("xxhash-rust xxh3-64", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for t in &texts {
                acc ^= xxhash_rust::xxh3::xxh3_64(black_box(t.as_bytes()));
            }
            acc
        });
    });
    group.finish();
}

criterion_group!(benches, content_hash);
criterion_main!(benches);
