//! Scores texts against a dictionary, one text per line of standard input.
//!
//! ```text
//! cargo run --release -p brisk-examples --example score -- --dictionary FILE [--threshold N] < texts.txt
//! ```
//!
//! `FILE` is a TOML or JSON dictionary (see docs/pattern-matcher.md). For
//! each line it prints one JSON object: `text_index` (from 0), `score`,
//! `relevant`, `vetoed`, the matched `entities` and `keywords` (with byte
//! spans and token positions) and the `signals` that explain the score. The
//! last line on standard error gives the throughput in texts per second.
//! Exit status: 0, or 2 on a bad argument or dictionary.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::Instant;

use brisk_pattern_matcher::{Dictionary, Matcher};
use serde_json::json;

#[derive(Debug, PartialEq)]
struct Args {
    dictionary: String,
    threshold: Option<f64>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut dictionary = None;
    let mut threshold = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dictionary" => dictionary = Some(args.next().ok_or("--dictionary needs a file")?),
            "--threshold" => {
                let value = args.next().ok_or("--threshold needs a number")?;
                let n = value
                    .parse()
                    .map_err(|_| format!("--threshold: {value:?} is not a number"))?;
                threshold = Some(n);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        dictionary: dictionary.ok_or("--dictionary FILE is required")?,
        threshold,
    })
}

fn build(args: &Args) -> Result<Matcher, String> {
    let dict = Dictionary::from_path(&args.dictionary).map_err(|e| e.to_string())?;
    let mut builder = Matcher::builder(dict);
    if let Some(t) = args.threshold {
        builder = builder.threshold(t);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Scores every line of `input`, writes one JSON object per line to `out`,
/// and returns how many texts were scored.
fn score_lines(matcher: &Matcher, input: impl BufRead, mut out: impl Write) -> Result<usize, String> {
    let mut n = 0;
    for line in input.lines() {
        let line = line.map_err(|e| format!("reading standard input: {e}"))?;
        let r = matcher.score(&line);
        let object = json!({
            "text_index": n,
            "score": r.score,
            "relevant": r.relevant,
            "vetoed": r.vetoed,
            "entities": r.entities,
            "keywords": r.keywords,
            "signals": r.signals,
        });
        writeln!(out, "{object}").map_err(|e| format!("writing standard output: {e}"))?;
        n += 1;
    }
    Ok(n)
}

fn main() -> ExitCode {
    let matcher = match parse_args(std::env::args().skip(1)).and_then(|args| build(&args)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("score: {e}");
            eprintln!("usage: score --dictionary FILE [--threshold N] < texts.txt");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let stdout = io::stdout().lock();
    match score_lines(&matcher, io::stdin().lock(), io::BufWriter::new(stdout)) {
        Ok(n) => {
            let secs = start.elapsed().as_secs_f64();
            let rate = if secs > 0.0 { n as f64 / secs } else { 0.0 };
            eprintln!(
                "scored {n} texts in {:.3} ms: {rate:.0} texts per second",
                secs * 1e3
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("score: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DICT: &str = r##"
[[entities]]
id = "abc"
aliases = ["ABC", "$ABC"]

[[keywords]]
term = "earnings"
weight = 30

[[exclusions]]
term = "giveaway"
veto = true
"##;

    #[test]
    fn scores_each_line_as_json() {
        let path = std::env::temp_dir().join(format!("brisk-example-score-{}.toml", std::process::id()));
        std::fs::write(&path, DICT).unwrap();
        let args = parse_args([
            "--dictionary".into(),
            path.display().to_string(),
            "--threshold".into(),
            "70".into(),
        ])
        .unwrap();
        assert_eq!(args.threshold, Some(70.0));
        let matcher = build(&args).unwrap();
        let mut out = Vec::new();
        let input = "$ABC earnings beat\nnothing here\nABC earnings giveaway\n";
        assert_eq!(score_lines(&matcher, input.as_bytes(), &mut out).unwrap(), 3);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["text_index"], 0);
        assert_eq!(lines[0]["score"], 80.0);
        assert_eq!(lines[0]["relevant"], true);
        assert_eq!(lines[0]["entities"][0]["entity"], "abc");
        assert_eq!(lines[0]["entities"][0]["span"]["end"], 4);
        assert_eq!(lines[0]["keywords"][0]["token"], 1);
        assert_eq!(lines[0]["signals"][2]["rule"], "proximity");
        assert_eq!(lines[1]["score"], 0.0);
        assert_eq!(lines[1]["relevant"], false);
        assert_eq!(lines[2]["vetoed"], true);
        assert_eq!(lines[2]["relevant"], false);
    }

    #[test]
    fn bad_arguments_are_reported() {
        assert!(
            parse_args([])
                .unwrap_err()
                .contains("--dictionary FILE is required")
        );
        assert!(
            parse_args(["--threshold".into(), "x".into()])
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            parse_args(["--what".into()])
                .unwrap_err()
                .contains("unknown argument")
        );
        let err = build(&Args {
            dictionary: "/nonexistent/dict.toml".into(),
            threshold: None,
        })
        .unwrap_err();
        assert!(err.contains("/nonexistent/dict.toml"), "{err}");
    }
}
