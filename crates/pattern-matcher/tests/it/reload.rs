//! Hot reload under concurrent readers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use brisk_pattern_matcher::{Dictionary, Entity, Matcher};

fn dict(version: u64) -> Dictionary {
    // Each version watches exactly one entity, named after it.
    Dictionary::builder()
        .entity(
            Entity::new(format!("v{version}"))
                .alias(format!("term{version}"))
                .weight(60.0),
        )
        .build()
        .unwrap()
}

#[test]
fn readers_keep_matching_while_the_dictionary_is_swapped() {
    const RELOADS: u64 = 200;
    let matcher = Arc::new(Matcher::new(dict(1)).unwrap());
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (matcher, reads) = (matcher.clone(), reads.clone());
            thread::spawn(move || {
                let text: String = (1..=RELOADS + 1).map(|v| format!("term{v} ")).collect();
                let mut last_version = 0;
                // Until the last reload is seen.
                while last_version < RELOADS + 1 {
                    let r = matcher.score(&text);
                    // Every text is scored against exactly one dictionary:
                    // one entity, matched once, with its full weight.
                    assert_eq!(r.entities.len(), 1, "{r:?}");
                    assert_eq!(r.score, 60.0);
                    let version: u64 = r.entities[0].entity[1..].parse().unwrap();
                    assert!(
                        version >= last_version,
                        "went back from {last_version} to {version}"
                    );
                    last_version = version;
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                last_version
            })
        })
        .collect();
    while reads.load(Ordering::Relaxed) < 30 {
        thread::yield_now();
    }
    for v in 2..=RELOADS + 1 {
        assert_eq!(matcher.reload(&dict(v)).unwrap(), v);
        if v % 20 == 0 {
            thread::yield_now();
        }
    }
    for r in readers {
        assert_eq!(r.join().unwrap(), RELOADS + 1);
    }
    let stats = matcher.stats();
    assert_eq!(stats.reloads, RELOADS);
    assert_eq!(stats.version, RELOADS + 1);
    assert!(stats.texts >= 30);
}

#[test]
fn a_failed_reload_keeps_the_old_dictionary() {
    let path = std::env::temp_dir().join(format!("brisk-pm-{}-reload.toml", std::process::id()));
    std::fs::write(&path, "[[entities]]\nid = \"a\"\naliases = [\"alpha\"]\n").unwrap();
    let matcher = Matcher::new(dict(1)).unwrap();
    assert_eq!(matcher.reload_from_path(&path).unwrap(), 2);
    assert_eq!(matcher.score("alpha").entities.len(), 1);
    std::fs::write(&path, "[[entities]]\nid = \"a\"\naliases = [\"\"]\n").unwrap();
    let err = matcher.reload_from_path(&path).unwrap_err();
    assert_eq!(err.problems().len(), 1);
    assert_eq!(matcher.score("alpha").entities.len(), 1);
    assert_eq!(matcher.stats().version, 2);
}
