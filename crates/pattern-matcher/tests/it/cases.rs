//! Runs the data-driven cases of `tests/data/cases.toml`.

use std::collections::HashMap;

use brisk_pattern_matcher::{Dictionary, Matcher, Relevance, Rule, Span};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    dictionaries: HashMap<String, String>,
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    dictionary: String,
    text: String,
    matches: Vec<String>,
    spans: Option<Vec<[usize; 2]>>,
    score: [f64; 2],
    relevant: Option<bool>,
    vetoed: Option<bool>,
    negated: Option<Vec<bool>>,
    rules: Option<Vec<String>>,
    threshold: Option<f64>,
    window: Option<usize>,
}

/// Entity, keyword, context and exclusion matches in text order, as
/// `(start, "kind:name=text", span)`.
fn listed(r: &Relevance, text: &str) -> Vec<(String, Span)> {
    let mut all: Vec<(usize, usize, String, Span)> = Vec::new();
    for m in &r.entities {
        all.push((
            m.span.start,
            0,
            format!("entity:{}={}", m.entity, m.span.text(text)),
            m.span,
        ));
    }
    for m in &r.keywords {
        all.push((
            m.span.start,
            1,
            format!("keyword:{}={}", m.keyword, m.span.text(text)),
            m.span,
        ));
    }
    for m in &r.context {
        all.push((
            m.span.start,
            2,
            format!("context:{}={}", m.term, m.span.text(text)),
            m.span,
        ));
    }
    for m in &r.exclusions {
        all.push((
            m.span.start,
            3,
            format!("exclusion:{}={}", m.term, m.span.text(text)),
            m.span,
        ));
    }
    all.sort_by_key(|(start, kind, _, _)| (*start, *kind));
    all.into_iter().map(|(_, _, s, span)| (s, span)).collect()
}

fn rule_name(rule: Rule) -> String {
    serde_json::to_value(rule).unwrap().as_str().unwrap().to_owned()
}

#[test]
fn data_driven_cases() {
    let file: File = toml::from_str(include_str!("../data/cases.toml")).expect("cases.toml parses");
    assert!(file.case.len() >= 60, "only {} cases", file.case.len());
    let dictionaries: HashMap<&str, Dictionary> = file
        .dictionaries
        .iter()
        .map(|(name, toml)| {
            let dict = Dictionary::from_toml_str(toml).unwrap_or_else(|e| panic!("dictionary {name}: {e}"));
            (name.as_str(), dict)
        })
        .collect();
    let mut failures = Vec::new();
    for case in &file.case {
        let dict = dictionaries
            .get(case.dictionary.as_str())
            .unwrap_or_else(|| panic!("{}: no dictionary {:?}", case.name, case.dictionary))
            .clone();
        let mut builder = Matcher::builder(dict);
        if let Some(t) = case.threshold {
            builder = builder.threshold(t);
        }
        if let Some(w) = case.window {
            builder = builder.proximity_window(w);
        }
        let matcher = builder.build().unwrap();
        let text = case.text.as_str();
        let r = matcher.score(text);
        let got = listed(&r, text);
        let mut problems = Vec::new();
        let names: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
        if names != case.matches {
            problems.push(format!("matches {names:?}, expected {:?}", case.matches));
        }
        if let Some(spans) = &case.spans {
            let got_spans: Vec<[usize; 2]> = got.iter().map(|(_, s)| [s.start, s.end]).collect();
            if &got_spans != spans {
                problems.push(format!("spans {got_spans:?}, expected {spans:?}"));
            }
        }
        for (_, span) in &got {
            if !text.is_char_boundary(span.start) || !text.is_char_boundary(span.end) || span.end > text.len()
            {
                problems.push(format!("span {span} not on char boundaries"));
            }
        }
        let [lo, hi] = case.score;
        if !(lo..=hi).contains(&r.score) {
            problems.push(format!("score {}, expected {lo}..={hi}", r.score));
        }
        let sum: f64 = r.signals.iter().map(|s| s.points).sum();
        if (sum - r.score).abs() > 1e-9 {
            problems.push(format!("signals add up to {sum}, score is {}", r.score));
        }
        if case.relevant.is_some_and(|want| want != r.relevant) {
            problems.push(format!("relevant {}", r.relevant));
        }
        if case.vetoed.is_some_and(|want| want != r.vetoed) {
            problems.push(format!("vetoed {}", r.vetoed));
        }
        if let Some(negated) = &case.negated {
            let got: Vec<bool> = r.keywords.iter().map(|k| k.negated).collect();
            if &got != negated {
                problems.push(format!("negated {got:?}, expected {negated:?}"));
            }
        }
        for rule in case.rules.iter().flatten() {
            if !r.signals.iter().any(|s| &rule_name(s.rule) == rule) {
                problems.push(format!("no {rule} signal in {:?}", r.signals));
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{} ({text:?}): {}", case.name, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
