//! Generation: determinism, the novelty test, every constraint.

use std::collections::HashSet;

use brisk_generator::{GenerateOptions, Generator, GeneratorError, overlap_limit};
use brisk_pattern_matcher::{HookKind, analyze_structure};

use crate::corpus;

fn model() -> (Generator, Vec<String>) {
    let texts = corpus::texts(400, 7);
    let mut g = Generator::builder().build().unwrap();
    g.train_texts(&texts).unwrap();
    (g, texts)
}

#[test]
fn same_seed_same_output_other_seeds_differ() {
    let (g, _) = model();
    let opts = GenerateOptions::new().seed(1234);
    let a = g.generate(&opts).unwrap();
    let b = g.generate(&opts).unwrap();
    assert_eq!(a, b);
    let many_a = g.generate_many(20, &opts).unwrap();
    let many_b = g.generate_many(20, &opts).unwrap();
    assert_eq!(many_a, many_b);
    let others: HashSet<String> = (0..20)
        .map(|s| g.generate(&GenerateOptions::new().seed(s)).unwrap().text)
        .collect();
    assert!(others.len() > 10, "{others:?}");
}

#[test]
fn outputs_never_share_too_long_a_run() {
    let (g, texts) = model();
    let outputs = g.generate_many(150, &GenerateOptions::new().seed(9)).unwrap();
    for o in &outputs {
        let n = corpus::token_strings(&o.text).len();
        let run = corpus::brute_force_longest_run(&o.text, &texts);
        assert!(run <= overlap_limit(n), "{:?}: run {run} of {n} tokens", o.text);
        assert_eq!(run, o.confidence.longest_shared_run, "{:?}", o.text);
        assert!(o.confidence.novel);
        assert!(!texts.contains(&o.text));
    }
}

#[test]
fn planted_copy_is_rejected_never_returned() {
    let mut texts = corpus::texts(200, 3);
    // A post whose words appear nowhere else: any output about "zebracorn"
    // must follow it word for word, so it can only be a copy.
    let planted = "Zebracorn quietly juggles purple marmalade beneath seventeen velvet lighthouses tonight";
    texts.push(planted.to_owned());
    let mut g = Generator::builder().build().unwrap();
    g.train_texts(&texts).unwrap();
    let c = g.confidence(planted);
    assert!(!c.novel);
    assert_eq!(c.score, 0.0);
    assert_eq!(c.longest_shared_run, 10);
    let err = g
        .generate(&GenerateOptions::new().topic("zebracorn").seed(5))
        .unwrap_err();
    match err {
        GeneratorError::NoNovelOutput {
            attempts, overlap, ..
        } => {
            assert_eq!(attempts, 10);
            assert!(overlap > 0);
        }
        other => panic!("{other:?}"),
    }
    let err = g
        .generate(&GenerateOptions::new().topic("zebracorn").attempts(3).seed(5))
        .unwrap_err();
    assert!(
        err.to_string().contains("no novel output after 3 attempts"),
        "{err}"
    );
}

#[test]
fn generate_many_gives_distinct_outputs() {
    let (g, _) = model();
    let out = g.generate_many(100, &GenerateOptions::new().seed(2)).unwrap();
    assert_eq!(out.len(), 100);
    let distinct: HashSet<&str> = out.iter().map(|o| o.text.as_str()).collect();
    assert_eq!(distinct.len(), 100);
}

#[test]
fn max_chars_is_honoured() {
    let (g, _) = model();
    for max in [60, 80, 140, 280] {
        let out = g
            .generate_many(30, &GenerateOptions::new().max_chars(max).seed(max as u64))
            .unwrap();
        for o in out {
            assert!(o.text.chars().count() <= max, "{max}: {:?}", o.text);
        }
    }
}

#[test]
fn min_words_is_honoured() {
    let (g, _) = model();
    let out = g
        .generate_many(30, &GenerateOptions::new().min_words(14).seed(3))
        .unwrap();
    for o in out {
        assert!(analyze_structure(&o.text).words >= 14, "{:?}", o.text);
    }
}

#[test]
fn topics_are_honoured() {
    let (g, _) = model();
    let out = g
        .generate_many(20, &GenerateOptions::new().topic("coffee").seed(4))
        .unwrap();
    for o in &out {
        assert!(o.text.contains("coffee"), "{:?}", o.text);
    }
    // Case-insensitive, and as a hashtag.
    let o = g.generate(&GenerateOptions::new().topic("RUST").seed(5)).unwrap();
    assert!(o.text.to_lowercase().contains("rust"), "{:?}", o.text);
    // Two topics at once.
    let out = g
        .generate_many(
            5,
            &GenerateOptions::new()
                .topic("garden")
                .topic("rain")
                .seed(6)
                .attempts(50),
        )
        .unwrap();
    for o in &out {
        assert!(
            o.text.contains("garden") && o.text.contains("rain"),
            "{:?}",
            o.text
        );
    }
}

#[test]
fn hook_kind_is_honoured() {
    let (g, _) = model();
    for hook in [HookKind::Question, HookKind::Other] {
        let out = g
            .generate_many(15, &GenerateOptions::new().hook(hook).seed(8).attempts(30))
            .unwrap();
        for o in out {
            assert_eq!(analyze_structure(&o.text).hook, hook, "{:?}", o.text);
        }
    }
}

#[test]
fn temperature_changes_how_adventurous_outputs_are() {
    let (g, _) = model();
    let mean_log_prob = |t: f32| {
        let out = g
            .generate_many(80, &GenerateOptions::new().temperature(t).seed(11))
            .unwrap();
        out.iter().map(|o| o.confidence.log_prob).sum::<f64>() / out.len() as f64
    };
    let cold = mean_log_prob(0.3);
    let hot = mean_log_prob(3.0);
    assert!(cold > hot, "cold {cold} hot {hot}");
}

#[test]
fn spacing_looks_like_the_corpus() {
    let (g, _) = model();
    for o in g.generate_many(60, &GenerateOptions::new().seed(12)).unwrap() {
        for bad in [" ,", " !", " ?", "  ", " ."] {
            assert!(!o.text.contains(bad), "{:?} has {bad:?}", o.text);
        }
        assert_eq!(o.text.trim(), o.text);
    }
}

#[test]
fn training_is_incremental() {
    let texts = corpus::texts(300, 21);
    let mut once = Generator::builder().build().unwrap();
    once.train_texts(&texts).unwrap();
    let mut twice = Generator::builder().build().unwrap();
    assert_eq!(twice.train_texts(&texts[..120]).unwrap(), 120);
    assert_eq!(twice.train_texts(&texts[120..]).unwrap(), 180);
    assert_eq!(twice.posts(), 300);
    assert_eq!(once.to_bytes(), twice.to_bytes());
    let opts = GenerateOptions::new().seed(77);
    assert_eq!(once.generate(&opts).unwrap(), twice.generate(&opts).unwrap());
}

#[test]
fn posts_weigh_by_engagement() {
    use brisk_core::{Engagement, Post, Timestamp};
    let at = Timestamp::from_unix_millis(0);
    let posts = [
        Post::new("1", "morning tea with lemon", at).with_engagement(Engagement::new(5000, 300, 20, 0)),
        Post::new("2", "morning coffee with milk", at),
        Post::new("3", "evening tea with friends", at),
        Post::new("4", "evening coffee with cake", at),
    ];
    let mut g = Generator::builder().holdout_every(0).build().unwrap();
    g.train(&posts).unwrap();
    let tea = g.confidence("morning tea with lemon").log_prob;
    let coffee = g.confidence("morning coffee with milk").log_prob;
    assert!(tea > coffee + 0.3, "tea {tea} coffee {coffee}");
    let mut flat = Generator::builder()
        .holdout_every(0)
        .engagement_weighting(false)
        .build()
        .unwrap();
    flat.train(&posts).unwrap();
    let tea = flat.confidence("morning tea with lemon").log_prob;
    let coffee = flat.confidence("morning coffee with milk").log_prob;
    assert!((tea - coffee).abs() < 1e-9, "tea {tea} coffee {coffee}");
}

#[test]
fn style_statistics_describe_the_corpus() {
    let (g, texts) = model();
    let s = g.style();
    assert_eq!(s.posts(), texts.len());
    let questions = texts.iter().filter(|t| t.contains('?')).count() as f64 / texts.len() as f64;
    assert!((s.question_share() - questions).abs() < 1e-9);
    let hashtags = texts.iter().filter(|t| t.contains('#')).count() as f64 / texts.len() as f64;
    assert!((s.hashtag_share() - hashtags).abs() < 1e-9);
    assert!(
        (s.hashtag_last_share() - hashtags).abs() < 1e-9,
        "hashtags only end posts here"
    );
    assert!(s.hook_share(HookKind::Question) > 0.05);
    assert!(s.mean_chars() > 30.0 && s.mean_tokens() > 5.0);
    assert!(g.heap_bytes() > 10_000);
}

#[test]
fn a_model_of_1000_posts_stays_small() {
    let mut g = Generator::builder().build().unwrap();
    g.train(&corpus::posts(1000, 99)).unwrap();
    assert_eq!(g.posts(), 1000);
    assert!(g.heap_bytes() < 5_000_000, "{} bytes", g.heap_bytes());
    assert!(g.to_bytes().len() < 100_000, "{} bytes saved", g.to_bytes().len());
}
