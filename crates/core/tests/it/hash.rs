use brisk_core::ContentHash;
use proptest::prelude::*;

/// xxh3-128 (seed 0) vectors computed with the reference C implementation
/// (python-xxhash 3.x, `xxh3_128_hexdigest`), independent of the Rust crate
/// brisk uses. If one of these changes, every stored key changes: never edit
/// them to make a test pass.
const VECTORS: &[(&[u8], &str)] = &[
    (b"", "99aa06d3014798d86001c324468d497f"),
    (b"a", "a96faf705af16834e6c632b61e964e1f"),
    (b"hello world", "df8d09e93f874900a99b8775cc15b6c7"),
    (
        b"The quick brown fox jumps over the lazy dog",
        "ddd650205ca3e7fa24a1cc2e3a8a7651",
    ),
    (
        "caf\u{e9} \u{1F680} $ABC #abc @abc".as_bytes(),
        "bf10c4ec05323a12fe3461d6282ebe51",
    ),
];

#[test]
fn matches_reference_vectors() {
    for (input, hex) in VECTORS {
        assert_eq!(ContentHash::of_bytes(input).to_string(), *hex, "input {input:?}");
    }
}

#[test]
fn matches_reference_vectors_for_long_inputs() {
    // 300 and 1024 bytes take xxh3's long-input paths.
    assert_eq!(
        ContentHash::of(&"brisk ".repeat(50)).to_string(),
        "88b837bdd277f1191ffd361fd2baafee"
    );
    let bytes: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    assert_eq!(
        ContentHash::of_bytes(&bytes).to_string(),
        "83885e853bb6640ca870f92984398d22"
    );
}

#[test]
fn of_parts_matches_reference_vectors() {
    // xxh3-128 of (u64 LE length ++ bytes) per part, by the same reference.
    assert_eq!(
        ContentHash::of_parts(&["a", "bc"]).to_string(),
        "f310f4d71be93bc46456c91685adede6"
    );
    assert_eq!(
        ContentHash::of_parts(&["ab", "c"]).to_string(),
        "f2eda2708bcfd51cc05c0ee4c9f60440"
    );
    assert_eq!(
        ContentHash::of_parts(&["sentiment", "hello world"]).to_string(),
        "869d6d49627688a7c2f8c556c838b710"
    );
}

#[test]
fn text_and_serde_forms() {
    let h = ContentHash::of("hello world");
    assert_eq!(format!("{h:?}"), "ContentHash(df8d09e93f874900a99b8775cc15b6c7)");
    assert_eq!(
        serde_json::to_string(&h).unwrap(),
        "\"df8d09e93f874900a99b8775cc15b6c7\""
    );
    let back: ContentHash = serde_json::from_str("\"df8d09e93f874900a99b8775cc15b6c7\"").unwrap();
    assert_eq!(back, h);
    assert_eq!(ContentHash::from_be_bytes(h.to_be_bytes()), h);
    assert_eq!(h.low64(), 0xa99b_8775_cc15_b6c7);
    for bad in [
        "",
        "xyz",
        "df8d09e93f874900a99b8775cc15b6c",
        "gf8d09e93f874900a99b8775cc15b6c7",
        "+f8d09e93f874900a99b8775cc15b6c7",
    ] {
        let err = bad.parse::<ContentHash>().unwrap_err();
        assert_eq!(err.what(), "content hash", "{bad:?}");
    }
    assert!(serde_json::from_str::<ContentHash>("\"nope\"").is_err());
}

proptest! {
    #[test]
    fn hex_round_trips(value: u128) {
        let h = ContentHash::from_u128(value);
        let text = h.to_string();
        prop_assert_eq!(text.len(), 32);
        prop_assert_eq!(text.parse::<ContentHash>().unwrap(), h);
    }

    #[test]
    fn streaming_parts_equal_one_shot_of_the_framed_bytes(parts in proptest::collection::vec(".{0,40}", 0..6)) {
        let mut framed = Vec::new();
        for p in &parts {
            framed.extend_from_slice(&(p.len() as u64).to_le_bytes());
            framed.extend_from_slice(p.as_bytes());
        }
        prop_assert_eq!(ContentHash::of_parts(&parts), ContentHash::of_bytes(&framed));
    }

    #[test]
    fn equal_texts_hash_equal_and_a_changed_byte_changes_it(text in ".{1,200}", idx: usize) {
        prop_assert_eq!(ContentHash::of(&text), ContentHash::of(&text.clone()));
        let mut bytes = text.into_bytes();
        let i = idx % bytes.len();
        let original = ContentHash::of_bytes(&bytes);
        bytes[i] ^= 0x01;
        prop_assert_ne!(ContentHash::of_bytes(&bytes), original);
    }
}
