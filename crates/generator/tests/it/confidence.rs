//! Confidence: range, ordering, parts.

use brisk_generator::{GenerateOptions, Generator};

use crate::corpus;

#[test]
fn confidence_is_in_range_and_beats_shuffled_words() {
    let texts = corpus::texts(500, 31);
    let mut g = Generator::builder().build().unwrap();
    g.train_texts(&texts).unwrap();
    let out = g.generate_many(60, &GenerateOptions::new().seed(1)).unwrap();
    let mut rng = fastrand::Rng::with_seed(2);
    let (mut real, mut shuffled, mut n) = (0.0, 0.0, 0.0);
    for o in &out {
        let c = o.confidence;
        for part in [c.score, c.fluency, c.novelty, c.structure_fit] {
            assert!((0.0..=1.0).contains(&part), "{c:?}");
        }
        let mut words: Vec<&str> = o.text.split(' ').collect();
        if words.len() < 4 {
            continue;
        }
        rng.shuffle(&mut words);
        let s = g.confidence(&words.join(" "));
        assert!((0.0..=1.0).contains(&s.score));
        real += c.score;
        shuffled += s.score;
        n += 1.0;
        assert!(c.fluency >= s.fluency, "{:?} vs {:?}", o.text, words.join(" "));
    }
    assert!(n > 30.0);
    assert!(
        real / n > shuffled / n + 0.2,
        "real {} shuffled {}",
        real / n,
        shuffled / n
    );
}

#[test]
fn confidence_of_any_text_is_in_range() {
    let mut g = Generator::builder().build().unwrap();
    g.train_texts(corpus::texts(100, 5)).unwrap();
    for text in [
        "",
        "🚀",
        "totally unseen words here",
        "Just shipped the garden!!",
        "a\n\nb",
    ] {
        let c = g.confidence(text);
        assert!((0.0..=1.0).contains(&c.score), "{text:?}: {c:?}");
        assert!((0.0..=1.0).contains(&c.fluency));
    }
    assert_eq!(g.confidence("").score, 0.0);
    // Unseen words are novel but not fluent.
    let c = g.confidence("totally unseen words here");
    assert!(c.novel && c.longest_shared_run == 0 && c.fluency < 0.2, "{c:?}");
}
