//! Saving and loading.

use brisk_generator::{FORMAT_VERSION, GenerateOptions, Generator, GeneratorError};

use crate::corpus;

#[test]
fn round_trip_gives_the_same_model() {
    let mut g = Generator::builder().order(3).build().unwrap();
    g.train(&corpus::posts(600, 13)).unwrap();
    let bytes = g.to_bytes();
    // Compact: well under 4 bytes per token.
    assert!(
        bytes.len() < g.tokens() * 3,
        "{} bytes for {} tokens",
        bytes.len(),
        g.tokens()
    );
    let path = std::env::temp_dir().join(format!("brisk-gen-{}.model", std::process::id()));
    g.save(std::fs::File::create(&path).unwrap()).unwrap();
    let loaded = Generator::load(std::fs::File::open(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded.to_bytes(), bytes);
    assert_eq!(loaded.order(), 3);
    assert_eq!((loaded.posts(), loaded.tokens()), (g.posts(), g.tokens()));
    assert_eq!(loaded.style(), g.style());
    let opts = GenerateOptions::new().seed(99);
    assert_eq!(
        loaded.generate_many(10, &opts).unwrap(),
        g.generate_many(10, &opts).unwrap()
    );
    let text = "Loving the garden after a long week 🚀";
    assert_eq!(loaded.confidence(text), g.confidence(text));
}

#[test]
fn incompatible_or_damaged_data_is_a_clear_error() {
    let mut g = Generator::builder().build().unwrap();
    g.train_texts(corpus::texts(50, 1)).unwrap();
    let bytes = g.to_bytes();

    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let err = Generator::from_bytes(&newer).unwrap_err();
    assert!(
        matches!(err, GeneratorError::IncompatibleVersion { found, supported }
        if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION)
    );
    assert!(
        err.to_string().contains("incompatible model format version 2"),
        "{err}"
    );

    let err = Generator::from_bytes(b"definitely not a model").unwrap_err();
    assert!(err.to_string().contains("bad magic"), "{err}");

    let err = Generator::from_bytes(&bytes[..bytes.len() / 2]).unwrap_err();
    assert!(matches!(err, GeneratorError::InvalidModel(_)), "{err}");

    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        Generator::from_bytes(&longer),
        Err(GeneratorError::InvalidModel(_))
    ));
}
