//! The rest of the public API: analysis, batches, bytes, memoization,
//! early termination, options, stats.

use brisk_core::{StatsReport, StatsSource};
use brisk_pattern_matcher::{
    Automaton, BuildError, Casing, Dictionary, Entity, Exclusion, HookKind, Keyword, Matcher, Rule, TextError,
};

fn dict() -> Dictionary {
    Dictionary::builder()
        .entity(Entity::new("abc").alias("ABC").alias("$ABC"))
        .entity(Entity::new("xyz").alias("XYZ").weight(60.0))
        .keyword(Keyword::term("earnings", 30.0).category("finance"))
        .keyword(Keyword::term("beat", 40.0))
        .exclusion(Exclusion::term("spam").penalty(10.0))
        .build()
        .unwrap()
}

#[test]
fn analyze_combines_relevance_and_structure() {
    let m = Matcher::new(dict()).unwrap();
    let text = "5 reasons $ABC earnings matter 🚀🚀\n\n#stocks @desk https://x.io 2/3";
    let a = m.analyze(text);
    assert_eq!(a.relevance.entities[0].span.text(text), "$ABC");
    assert_eq!(a.relevance.entities[0].token, 2);
    assert_eq!(a.relevance.keywords[0].category.as_deref(), Some("finance"));
    let s = &a.structure;
    assert_eq!(s.hook, HookKind::NumberOrList);
    assert_eq!(s.emoji.len(), 2);
    assert_eq!(
        (s.hashtags.len(), s.mentions.len(), s.urls.len(), s.cashtags.len()),
        (1, 1, 1, 1)
    );
    assert_eq!(s.thread.unwrap().index, Some(2));
    assert_eq!(s.lines.count, 3);
    assert_eq!(s.lines.blank, 1);
    assert_eq!(s.casing, Casing::Lower);
    assert!(!s.is_question());
    assert_eq!(s.chars, text.chars().count());
    assert_eq!(a.relevance, m.score(text));
}

#[test]
fn batches_match_single_calls() {
    let m = Matcher::builder(dict()).parallel_min_batch(2).build().unwrap();
    let texts: Vec<String> = (0..50)
        .map(|i| format!("ABC {i} earnings {}", "spam ".repeat(i % 3)))
        .collect();
    let batch = m.analyze_batch(&texts);
    assert_eq!(batch.len(), 50);
    for (t, a) in texts.iter().zip(&batch) {
        assert_eq!(a, &m.analyze(t));
    }
    assert_eq!(m.stats().texts, 100);
    let relevant = batch.iter().filter(|a| a.relevance.relevant).count() as u64;
    assert_eq!(m.stats().relevant, 2 * relevant);
}

#[test]
fn bytes_are_checked_or_decoded_lossily() {
    let m = Matcher::new(dict()).unwrap();
    assert_eq!(m.score_bytes(b"ABC earnings").unwrap().score, 80.0);
    assert_eq!(
        m.score_bytes(b"ABC \xC3"),
        Err(TextError::InvalidUtf8 { valid_up_to: 4 })
    );
    assert_eq!(
        m.analyze_bytes(b"\xFFABC").unwrap_err(),
        TextError::InvalidUtf8 { valid_up_to: 0 }
    );
    let (text, r) = m.score_bytes_lossy(b"\xFFABC earnings");
    assert_eq!(text, "\u{FFFD}ABC earnings");
    assert_eq!(r.entities[0].span.text(&text), "ABC");
    assert_eq!(r.score, 80.0);
}

#[test]
fn memoization_serves_repeated_texts() {
    let m = Matcher::builder(dict()).memoize(2).build().unwrap();
    let first = m.score("ABC earnings");
    assert_eq!(m.score("ABC earnings"), first);
    assert_eq!(m.stats().memo_hits, 1);
    let _ = m.score("XYZ");
    let _ = m.score("something else"); // table full: cleared, then stored
    assert_eq!(m.score("ABC earnings"), first);
    assert_eq!(m.stats().memo_hits, 1);
    // A reload starts a new table.
    m.reload(
        &Dictionary::builder()
            .entity(Entity::new("abc").alias("earnings"))
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        m.score("ABC earnings").entities[0].span.text("ABC earnings"),
        "earnings"
    );
}

#[test]
fn early_termination_stops_once_capped() {
    let m = Matcher::builder(dict()).early_termination(true).build().unwrap();
    let text = "XYZ beat, ABC earnings and more ABC earnings spam";
    let early = m.score(text);
    let full = Matcher::new(dict()).unwrap().score(text);
    assert!(early.stopped_early);
    assert!(!full.stopped_early);
    assert_eq!(early.score, 100.0);
    assert_eq!(full.score, 100.0);
    assert!(early.entities.len() < full.entities.len());
    // A veto could come later: never stop early then.
    let veto = Dictionary::builder()
        .entity(Entity::new("a").alias("a").weight(100.0))
        .exclusion(Exclusion::term("b").veto())
        .build()
        .unwrap();
    let m = Matcher::builder(veto).early_termination(true).build().unwrap();
    let r = m.score("a a a b");
    assert!(!r.stopped_early && r.vetoed && r.score == 0.0);
}

#[test]
fn signals_explain_the_score() {
    let m = Matcher::new(dict()).unwrap();
    let r = m.score("ABC did not beat earnings, spam");
    let rules: Vec<(Rule, &str, f64)> = r
        .signals
        .iter()
        .map(|s| (s.rule, s.subject.as_ref(), s.points))
        .collect();
    // tokens: ABC0 did1 not2 beat3 earnings4 ,5 spam6
    // beat: d=3 -> 40 + 12, negated (not at 2): keeps 25% = 13
    // earnings: d=4 -> 30 + 8, "not" is 2 tokens before: keeps 25% = 9.5
    assert_eq!(
        rules,
        [
            (Rule::Entity, "abc", 30.0),
            (Rule::Keyword, "beat", 40.0),
            (Rule::Proximity, "beat", 12.0),
            (Rule::Negation, "beat", -39.0),
            (Rule::Keyword, "earnings", 30.0),
            (Rule::Proximity, "earnings", 8.0),
            (Rule::Negation, "earnings", -28.5),
            (Rule::Exclusion, "spam", -10.0),
        ]
    );
    assert_eq!(r.signals[2].other.as_deref(), Some("abc"));
    assert_eq!(r.score, 42.5);
    assert_eq!(r.negations[0].term.as_ref(), "not");
}

#[test]
fn options_are_validated() {
    let bad = [
        Matcher::builder(dict()).threshold(f64::NAN).build(),
        Matcher::builder(dict()).threshold(-1.0).build(),
        Matcher::builder(dict()).proximity_window(65).build(),
        Matcher::builder(dict()).proximity_boost(101.0).build(),
        Matcher::builder(dict()).negation_window(17).build(),
        Matcher::builder(dict()).negation_factor(1.5).build(),
        Matcher::builder(dict()).memoize(10_000_001).build(),
        Matcher::builder(dict()).parallel_min_batch(0).build(),
    ];
    let fields: Vec<String> = bad
        .into_iter()
        .map(|r| match r {
            Err(BuildError::Config(e)) => e.field().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        fields,
        [
            "matcher.threshold",
            "matcher.threshold",
            "matcher.proximity_window",
            "matcher.proximity_boost",
            "matcher.negation_window",
            "matcher.negation_factor",
            "matcher.memoize",
            "matcher.parallel_min_batch"
        ]
    );
    // Window 0 turns proximity off; negation window 0 turns negation off.
    let m = Matcher::builder(dict())
        .proximity_window(0)
        .negation_window(0)
        .build()
        .unwrap();
    assert_eq!(m.score("ABC not earnings").score, 60.0);
}

#[test]
fn both_automata_agree() {
    let texts = [
        "ABC earnings",
        "$ABC beat XYZ",
        "abcd ABCs ABC's",
        "no ABC earnings spam",
    ];
    let dfa = Matcher::builder(dict())
        .automaton(Automaton::Dfa)
        .build()
        .unwrap();
    let nfa = Matcher::builder(dict())
        .automaton(Automaton::Nfa)
        .build()
        .unwrap();
    for t in texts {
        assert_eq!(dfa.score(t), nfa.score(t), "{t}");
    }
}

#[test]
fn stats_are_reported() {
    let m = Matcher::new(dict()).unwrap();
    let _ = m.score("ABC earnings");
    let report = StatsReport::collect(&m);
    assert_eq!(report.value("brisk_pattern_matcher_texts_total"), Some(1.0));
    assert_eq!(report.value("brisk_pattern_matcher_relevant_total"), Some(1.0));
    assert_eq!(
        report.value("brisk_pattern_matcher_patterns"),
        Some(dict().pattern_count() as f64)
    );
    assert!(report.value("brisk_pattern_matcher_memory_bytes").unwrap() > 0.0);
    fn is_source(_: &dyn StatsSource) {}
    is_source(&m);
    assert!(format!("{m:?}").contains("version: 1"));
}

#[test]
fn empty_dictionary_matches_nothing() {
    let m = Matcher::new(
        Dictionary::builder()
            .negations(Vec::<String>::new())
            .build()
            .unwrap(),
    )
    .unwrap();
    let r = m.score("anything at all");
    assert_eq!(r.score, 0.0);
    assert!(r.entities.is_empty() && r.signals.is_empty());
}

/// Keyword terms are reported as written: a term written in lowercase is
/// read back from the match (in ASCII and in Unicode-folded text), any
/// other is stored; terms that fold to one literal share it.
#[test]
fn keyword_terms_are_reported_as_written() {
    use brisk_pattern_matcher::ContextTerm;
    let dict = Dictionary::builder()
        .keyword(Keyword::term("bitcoin", 10.0).category("coins"))
        .keyword(Keyword::term("Bitcoin", 20.0))
        .keyword(Keyword::term("ünïcode", 30.0))
        .keyword(Keyword::term(" spaced ", 5.0))
        .keyword(Keyword::regex(r"\bbtc\d+\b", 15.0))
        .context(ContextTerm::term("bitcoin"))
        .build()
        .unwrap();
    let m = Matcher::new(dict).unwrap();
    for text in [
        "BITCOIN and ÜNÏCODE, spaced btc42",
        "bitcoin ünïcode Spaced BTC42 btc42 İ",
    ] {
        for _ in 0..2 {
            let r = m.score(text);
            let terms: Vec<&str> = r.keywords.iter().map(|k| k.keyword.as_ref()).collect();
            assert_eq!(
                terms,
                ["bitcoin", "Bitcoin", "ünïcode", " spaced ", r"\bbtc\d+\b"],
                "{text}"
            );
            assert_eq!(r.keywords[0].category.as_deref(), Some("coins"));
            assert_eq!(r.keywords[1].category, None);
            assert_eq!(r.keywords[1].weight, 20.0);
            assert_eq!(r.keywords[2].span.text(text).to_lowercase(), "ünïcode");
            assert_eq!(r.context.len(), 1);
        }
    }
}
