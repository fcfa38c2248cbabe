//! Bad input: every error names what is wrong.

use brisk_generator::{GenerateOptions, Generator, GeneratorError};
use brisk_pattern_matcher::HookKind;

use crate::corpus;

fn trained() -> Generator {
    let mut g = Generator::builder().build().unwrap();
    g.train_texts(corpus::texts(200, 17)).unwrap();
    g
}

fn constraint(err: GeneratorError) -> &'static str {
    match err {
        GeneratorError::ImpossibleConstraint { constraint, .. } => constraint,
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_corpus() {
    let g = Generator::builder().build().unwrap();
    assert!(matches!(
        g.generate(&GenerateOptions::new()),
        Err(GeneratorError::EmptyCorpus)
    ));
    let mut g = Generator::builder().build().unwrap();
    assert!(matches!(
        g.train_texts(["", "   \n "]),
        Err(GeneratorError::EmptyCorpus)
    ));
    assert!(matches!(
        Generator::from_posts(&[]),
        Err(GeneratorError::EmptyCorpus)
    ));
}

#[test]
fn corpus_too_small_for_the_order_suggests_a_lower_one() {
    let texts = [
        "the cat sat on a mat",
        "my dog ran to the park",
        "a bird sang in the tree",
    ];
    let mut g = Generator::builder().order(2).build().unwrap();
    g.train_texts(texts).unwrap();
    let err = g.generate(&GenerateOptions::new()).unwrap_err();
    assert!(
        matches!(
            err,
            GeneratorError::CorpusTooSmall {
                order: 2,
                posts: 3,
                suggested_order: Some(1),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("try order 1"), "{err}");
    // At order 1 the shared words ("the", "a") let outputs move between posts.
    let mut g = Generator::builder().order(1).build().unwrap();
    g.train_texts(texts).unwrap();
    assert!(g.check_ready().is_ok());
}

#[test]
fn impossible_constraints_name_the_constraint() {
    let g = trained();
    let err = g.generate(&GenerateOptions::new().max_chars(5)).unwrap_err();
    assert!(err.to_string().contains("max_chars"), "{err}");
    assert_eq!(constraint(err), "max_chars");
    let err = g
        .generate(&GenerateOptions::new().topic("xylophone"))
        .unwrap_err();
    assert!(err.to_string().contains("xylophone"), "{err}");
    assert_eq!(constraint(err), "topic");
    assert_eq!(
        constraint(
            g.generate(&GenerateOptions::new().topic("two words"))
                .unwrap_err()
        ),
        "topic"
    );
    assert_eq!(
        constraint(
            g.generate(&GenerateOptions::new().hook(HookKind::Quote))
                .unwrap_err()
        ),
        "hook"
    );
    assert_eq!(
        constraint(
            g.generate(&GenerateOptions::new().max_chars(100).min_words(60))
                .unwrap_err()
        ),
        "min_words"
    );
}

#[test]
fn invalid_settings_name_the_field() {
    for order in [0, 5] {
        match Generator::builder().order(order).build() {
            Err(GeneratorError::InvalidInput { field: "order", .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    let g = trained();
    for t in [0.0, -1.0, f32::NAN] {
        match g.generate(&GenerateOptions::new().temperature(t)) {
            Err(GeneratorError::InvalidInput {
                field: "temperature", ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        g.generate(&GenerateOptions::new().attempts(0)),
        Err(GeneratorError::InvalidInput {
            field: "attempts",
            ..
        })
    ));
    let mut g = Generator::builder().build().unwrap();
    assert!(matches!(
        g.train_weighted([("fine post", 1.0), ("bad weight", -2.0)]),
        Err(GeneratorError::InvalidInput { field: "weight", .. })
    ));
    assert_eq!(g.posts(), 1, "posts before the bad one are kept");
    let mut g = Generator::builder().build().unwrap();
    assert!(matches!(
        g.train_weighted([("first", f64::NAN)]),
        Err(GeneratorError::InvalidInput { field: "weight", .. })
    ));
}
