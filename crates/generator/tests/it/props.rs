//! Properties over random seeds and constraints.

use brisk_generator::{GenerateOptions, Generator, GeneratorError, overlap_limit};
use proptest::prelude::*;
use std::sync::OnceLock;

use crate::corpus;

fn model() -> &'static Generator {
    static MODEL: OnceLock<Generator> = OnceLock::new();
    MODEL.get_or_init(|| {
        let mut g = Generator::builder().build().unwrap();
        g.train(&corpus::posts(300, 41)).unwrap();
        g
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn outputs_meet_their_constraints(seed in any::<u64>(), max in 40usize..300, words in 0usize..8, t in 0.2f32..3.0) {
        let opts = GenerateOptions::new().seed(seed).max_chars(max).min_words(words).temperature(t);
        match model().generate(&opts) {
            Ok(o) => {
                prop_assert!(o.text.chars().count() <= max);
                prop_assert!(brisk_pattern_matcher::analyze_structure(&o.text).words >= words);
                prop_assert!(o.confidence.novel);
                prop_assert!(o.confidence.longest_shared_run <= overlap_limit(o.confidence.tokens));
                prop_assert!((0.0..=1.0).contains(&o.confidence.score));
                prop_assert!(o.attempts >= 1 && o.attempts <= 10);
            }
            Err(GeneratorError::NoNovelOutput { attempts, .. }) => prop_assert_eq!(attempts, 10),
            Err(other) => prop_assert!(false, "{other}"),
        }
    }

    #[test]
    fn confidence_of_arbitrary_text_is_in_range(text in "\\PC{0,80}") {
        let c = model().confidence(&text);
        prop_assert!((0.0..=1.0).contains(&c.score));
        prop_assert!((0.0..=1.0).contains(&c.fluency));
        prop_assert!((0.0..=1.0).contains(&c.novelty));
        prop_assert!((0.0..=1.0).contains(&c.structure_fit));
    }
}

fn saved() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let mut g = Generator::builder().build().unwrap();
        g.train(&corpus::posts(40, 43)).unwrap();
        g.to_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Damaged data is an error or (when the damage is in a count) a
    /// different model; never a panic.
    #[test]
    fn damaged_models_never_panic(at in 0usize..100_000, byte in any::<u8>(), cut in any::<bool>()) {
        let mut data = saved().to_vec();
        let at = at % data.len();
        if cut {
            data.truncate(at);
            prop_assert!(Generator::from_bytes(&data).is_err());
        } else {
            data[at] = byte;
            if let Ok(g) = Generator::from_bytes(&data) {
                let _ = g.generate(&GenerateOptions::new().seed(1));
                let _ = g.confidence("some text");
            }
        }
    }
}
