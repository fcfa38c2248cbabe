//! Dictionary sources and validation.

use brisk_pattern_matcher::{
    ContextTerm, Dictionary, DictionaryError, Entity, Exclusion, Keyword, Matcher, Pattern, ProblemKind,
};

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("brisk-pm-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn every_problem_is_reported_with_its_place() {
    let toml = r#"
negations = ["not", ""]

[[entities]]
id = "abc"
aliases = ["ABC", "  "]

[[entities]]
id = "other"
aliases = ["abc"]
weight = -1

[[entities]]
id = "abc"
patterns = ["(unclosed"]

[[entities]]
id = "nothing"

[[keywords]]
term = ""

[[keywords]]
pattern = "[z-a]"
weight = 101

[[keywords]]
term = "both"
pattern = "both"

[[context]]
term = "crypto"
boost = 1e9

[[exclusions]]
term = "spam"
penalty = -5
"#;
    let path = temp_file("bad.toml", toml);
    let err = Dictionary::from_path(&path).unwrap_err();
    let problems = err.problems();
    let summary: Vec<(String, String, String)> = problems
        .iter()
        .map(|p| {
            (
                p.location.entry.clone(),
                p.location.field.clone(),
                p.kind.to_string(),
            )
        })
        .collect();
    let expect = |entry: &str, field: &str, needle: &str| {
        assert!(
            summary
                .iter()
                .any(|(e, f, k)| e == entry && f == field && k.contains(needle)),
            "missing {entry} {field} {needle} in {summary:#?}"
        );
    };
    expect(r#"entities[0] "abc""#, "aliases[1]", "is empty");
    expect(
        r#"entities[1] "other""#,
        "aliases[0]",
        r#"already claimed by entity "abc""#,
    );
    expect(r#"entities[1] "other""#, "weight", "out of range");
    expect(r#"entities[2] "abc""#, "id", "used twice");
    expect(r#"entities[2] "abc""#, "patterns[0]", "does not compile");
    expect(r#"entities[3] "nothing""#, "aliases", "no alias");
    expect(r#"keywords[0] """#, "term", "is empty");
    expect(r#"keywords[1] "[z-a]""#, "pattern", "does not compile");
    expect(r#"keywords[1] "[z-a]""#, "weight", "101 is out of range");
    expect("keywords[2]", "term", "exactly one of");
    expect(r#"context[0] "crypto""#, "boost", "out of range");
    expect(r#"exclusions[0] "spam""#, "penalty", "out of range");
    expect("negations", "[1]", "is empty");
    assert_eq!(problems.len(), 13, "{summary:#?}");
    for p in problems {
        assert_eq!(
            p.location.source.as_deref(),
            Some(path.display().to_string().as_str())
        );
    }
    let message = err.to_string();
    assert!(
        message.starts_with("13 invalid dictionary entries: "),
        "{message}"
    );
    assert!(message.contains("bad.toml: entities[0]"), "{message}");
}

#[test]
fn builder_validates_too() {
    let err = Dictionary::builder()
        .entity(Entity::new("a").alias("X"))
        .entity(Entity::new("b").alias("x"))
        .keyword(Keyword::term("k", f64::NAN))
        .context(ContextTerm::regex("(").boost(5.0))
        .exclusion(Exclusion::term(" ").penalty(10.0))
        .build()
        .unwrap_err();
    let kinds: Vec<&ProblemKind> = err.problems().iter().map(|p| &p.kind).collect();
    assert!(
        matches!(kinds[0], ProblemKind::DuplicateAlias { alias, claimed_by } if alias == "x" && claimed_by == "a")
    );
    assert!(matches!(kinds[1], ProblemKind::WeightOutOfRange { value, .. } if value.is_nan()));
    assert!(matches!(kinds[2], ProblemKind::InvalidRegex { pattern, .. } if pattern == "("));
    assert_eq!(kinds[3], &ProblemKind::EmptyPattern);
    assert_eq!(kinds.len(), 4);
}

#[test]
fn same_alias_twice_in_one_entity_is_fine() {
    let dict = Dictionary::builder()
        .entity(Entity::new("a").alias("X").alias("x"))
        .build()
        .unwrap();
    let m = Matcher::new(dict).unwrap();
    assert_eq!(m.score("x").entities.len(), 1);
}

#[test]
fn toml_syntax_errors_have_a_line() {
    let err = Dictionary::from_toml_str("[[entities]]\nid = \"a\"\naliases = [\"x\"\n").unwrap_err();
    let DictionaryError::Parse {
        line, source_name, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(source_name, "<toml>");
    assert!(*line >= 3, "{err}");
    let err = Dictionary::from_toml_str("[[entities]]\nid = \"a\"\nalias = [\"x\"]\n").unwrap_err();
    let DictionaryError::Parse { line, message, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*line, 3, "{err}");
    assert!(message.contains("alias"), "{message}");
}

#[test]
fn json_and_files() {
    let json = r#"{
        "entities": [{"id": "abc", "aliases": ["ABC", "$ABC"], "weight": 40}],
        "keywords": [{"term": "earnings", "weight": 30, "category": "finance"}, {"pattern": "(?i)q[1-4]"}],
        "context": [{"term": "nasdaq", "boost": 5}],
        "exclusions": [{"term": "giveaway", "veto": true}],
        "negations": ["not"]
    }"#;
    let dict = Dictionary::from_json_str(json).unwrap();
    assert_eq!(dict.entities()[0].weight, 40.0);
    assert_eq!(dict.keywords()[1].pattern, Pattern::Regex("(?i)q[1-4]".into()));
    assert_eq!(dict.keywords()[1].weight, Keyword::DEFAULT_WEIGHT);
    assert_eq!(dict.context()[0].boost, 5.0);
    assert!(dict.exclusions()[0].veto);
    assert_eq!(dict.negations(), ["not"]);
    assert_eq!(dict.pattern_count(), 7);

    let path = temp_file("dict.json", json);
    let from_file = Dictionary::from_path(&path).unwrap();
    assert_eq!(from_file.source(), Some(path.display().to_string().as_str()));
    assert_eq!(from_file.entities(), dict.entities());

    let err = Dictionary::from_json_str("{\"entities\": [{\"id\": 5}]}").unwrap_err();
    assert!(matches!(err, DictionaryError::Parse { line: 1, .. }), "{err}");

    let err = Dictionary::from_path(temp_file("dict.yaml", "")).unwrap_err();
    assert!(matches!(err, DictionaryError::UnknownFormat { .. }), "{err}");
    let err = Dictionary::from_path("/nonexistent/brisk/dict.toml").unwrap_err();
    assert!(matches!(err, DictionaryError::Io { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/brisk/dict.toml"), "{err}");
}

#[test]
fn default_and_custom_negations() {
    let dict = Dictionary::from_toml_str("").unwrap();
    assert!(dict.negations().iter().any(|n| n == "not"));
    let dict = Dictionary::from_toml_str("negations = []").unwrap();
    assert!(dict.negations().is_empty());
    let m = Matcher::new(
        Dictionary::builder()
            .keyword(Keyword::term("good", 40.0))
            .negations(["hardly"])
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(m.score("hardly good").score, 10.0);
    assert_eq!(m.score("not good").score, 40.0);
}

#[test]
fn a_literal_can_be_keyword_and_context() {
    let dict = Dictionary::builder()
        .entity(Entity::new("btc").alias("bitcoin"))
        .keyword(Keyword::term("crypto", 10.0))
        .context(ContextTerm::term("crypto").boost(5.0))
        .build()
        .unwrap();
    let r = Matcher::new(dict).unwrap().score("bitcoin is crypto");
    assert_eq!(r.keywords.len(), 1);
    assert_eq!(r.context.len(), 1);
    // 30 + 10 + proximity 20 * 4 / 5 + 5
    assert_eq!(r.score, 61.0);
}
