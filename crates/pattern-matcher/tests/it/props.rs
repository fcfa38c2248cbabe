//! Property tests: spans, score range, monotonicity, tokens, early
//! termination, and dictionaries that never panic.

use brisk_pattern_matcher::{
    ContextTerm, Dictionary, Entity, Exclusion, Keyword, Matcher, Relevance, tokenize,
};
use proptest::prelude::*;

/// Pieces texts are made of: aliases and keywords in several cases, near
/// misses, Unicode, emoji, URLs, punctuation and negations.
const PIECES: &[&str] = &[
    "ABC",
    "abc",
    "$ABC",
    "#abc",
    "@abc",
    "ABCD",
    "ABC Corp",
    "Corporation",
    "earnings",
    "EARNINGS",
    "launch",
    "prelaunch",
    "not",
    "no",
    "never",
    "giveaway",
    "parody",
    "nasdaq",
    "Café",
    "CAFÉ",
    "Zoë",
    "東京",
    "タワー",
    "München",
    "MÜNCHEN",
    "ǅ",
    "İ",
    "ß",
    "\u{212A}",
    "🚀",
    "👩\u{200D}💻",
    "🇫🇷",
    "1️⃣",
    "https://abc.com/earnings",
    "www.x.io",
    "!",
    "?",
    ",",
    "'s",
    "-",
    "_",
    "\n",
    " ",
    "  ",
    "\u{301}",
    "12%",
    "1/",
    "🧵",
];

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec((0..PIECES.len(), prop::bool::ANY), 0..24).prop_map(|parts| {
        let mut s = String::new();
        for (i, space) in parts {
            s.push_str(PIECES[i]);
            if space {
                s.push(' ');
            }
        }
        s
    })
}

fn dictionary(weights: [f64; 6], veto: bool) -> Dictionary {
    let mut exclusion = Exclusion::term("giveaway").penalty(weights[5]);
    if veto {
        exclusion = exclusion.veto();
    }
    Dictionary::builder()
        .entity(
            Entity::new("abc")
                .alias("ABC")
                .alias("ABC Corp")
                .alias("$ABC")
                .alias("#abc")
                .weight(weights[0]),
        )
        .entity(
            Entity::new("cafe")
                .alias("Café Zoë")
                .alias("東京")
                .alias("München")
                .weight(weights[1]),
        )
        .entity(
            Entity::new("kelvin")
                .alias("k")
                .pattern(r"\$[A-Z]{3}\b")
                .weight(weights[1]),
        )
        .keyword(Keyword::term("earnings", weights[2]))
        .keyword(Keyword::term("launch", weights[3]))
        .keyword(Keyword::regex(r"(?i)ta\w+", weights[3]))
        .context(ContextTerm::term("nasdaq").boost(weights[4]))
        .exclusion(exclusion)
        .exclusion(Exclusion::term("parody").penalty(weights[5]))
        .build()
        .unwrap()
}

fn weights() -> impl Strategy<Value = [f64; 6]> {
    prop::array::uniform6(0.0..=100.0f64)
}

fn all_spans(r: &Relevance) -> Vec<brisk_pattern_matcher::Span> {
    r.entities
        .iter()
        .map(|m| m.span)
        .chain(r.keywords.iter().map(|m| m.span))
        .chain(r.context.iter().map(|m| m.span))
        .chain(r.exclusions.iter().map(|m| m.span))
        .chain(r.negations.iter().map(|m| m.span))
        .collect()
}

fn fold(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn spans_lie_on_char_boundaries_of_the_original(text in text(), w in weights()) {
        let m = Matcher::new(dictionary(w, false)).unwrap();
        let r = m.score(&text);
        for span in all_spans(&r) {
            prop_assert!(span.start < span.end && span.end <= text.len(), "{span} in {text:?}");
            prop_assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end), "{span} in {text:?}");
        }
        // Literal entity matches are the alias, up to case (İ folds to two
        // chars, so a match may cover part of one: skip those texts).
        if !text.contains('İ') {
            let aliases = ["abc", "abc corp", "$abc", "#abc", "café zoë", "東京", "münchen", "k"];
            for e in &r.entities {
                let got = fold(e.span.text(&text));
                let regex = e.span.text(&text).starts_with('$') && e.span.len() == 4;
                prop_assert!(aliases.contains(&got.as_str()) || regex, "{got:?} in {text:?}");
            }
        }
    }

    #[test]
    fn score_stays_within_0_and_100(text in text(), w in weights(), veto in prop::bool::ANY) {
        let m = Matcher::builder(dictionary(w, veto)).proximity_boost(100.0).build().unwrap();
        let r = m.score(&text);
        prop_assert!((0.0..=100.0).contains(&r.score), "{} for {text:?}", r.score);
        let sum: f64 = r.signals.iter().map(|s| s.points).sum();
        prop_assert!((sum - r.score).abs() < 1e-9);
        prop_assert_eq!(r.relevant, !r.vetoed && r.score >= 50.0);
    }

    #[test]
    fn score_is_monotone_in_keyword_weight(
        text in text(),
        w in weights(),
        a in 0.0..=100.0f64,
        b in 0.0..=100.0f64,
        veto in prop::bool::ANY,
    ) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut w_lo = w;
        w_lo[2] = lo;
        let mut w_hi = w;
        w_hi[2] = hi;
        let s_lo = Matcher::new(dictionary(w_lo, veto)).unwrap().score(&text).score;
        let s_hi = Matcher::new(dictionary(w_hi, veto)).unwrap().score(&text).score;
        prop_assert!(s_lo <= s_hi + 1e-9, "{s_lo} > {s_hi} for {text:?}");
    }

    #[test]
    fn early_termination_gives_the_same_score(text in text(), w in weights(), veto in prop::bool::ANY) {
        let full = Matcher::new(dictionary(w, veto)).unwrap().score(&text);
        let early = Matcher::builder(dictionary(w, veto)).early_termination(true).build().unwrap().score(&text);
        prop_assert_eq!(full.score, early.score);
        prop_assert_eq!(full.relevant, early.relevant);
        if !early.stopped_early {
            prop_assert_eq!(full, early);
        }
    }

    #[test]
    fn tokens_are_ordered_disjoint_and_cover_every_visible_char(text in text()) {
        let tokens = tokenize(&text);
        let mut last = 0;
        for t in &tokens {
            prop_assert!(t.span.start >= last && t.span.end > t.span.start);
            prop_assert!(text.is_char_boundary(t.span.start) && text.is_char_boundary(t.span.end));
            let gap_is_blank = text[last..t.span.start]
                .chars()
                .all(|c| c.is_whitespace() || matches!(c, '\u{200B}' | '\u{FEFF}'));
            prop_assert!(gap_is_blank, "gap before {:?} in {:?}", t, text);
            last = t.span.end;
        }
        prop_assert!(text[last..].chars().all(char::is_whitespace));
    }

    #[test]
    fn any_dictionary_text_errors_instead_of_panicking(s in "\\PC{0,200}") {
        let _ = Dictionary::from_toml_str(&s);
        let _ = Dictionary::from_json_str(&s);
        let with_header = format!("[[entities]]\nid = \"x\"\naliases = [{s:?}]\n");
        if let Ok(d) = Dictionary::from_toml_str(&with_header) {
            prop_assert_eq!(d.entities().len(), 1);
        }
    }
}
