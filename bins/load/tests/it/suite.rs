//! `brisk-load suite` end to end, at the reduced size: every line present
//! with a positive figure and a finite ratio. No timing targets here: those
//! live in the suite's own output and in benches.

use std::process::Command;

fn suite(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_brisk-load"))
        .arg("suite")
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn check_line(lines: &[serde_json::Value], starts: &str, unit: &str) -> f64 {
    let line = lines
        .iter()
        .find(|l| l["line"].as_str().is_some_and(|s| s.starts_with(starts)))
        .unwrap_or_else(|| panic!("no line starting {starts:?} in {lines:#?}"));
    assert_eq!(line["unit"], unit, "{line}");
    assert_eq!(line["scale"], "small", "{line}");
    let old = line["old"].as_f64().unwrap();
    let brisk = line["brisk"]
        .as_f64()
        .unwrap_or_else(|| panic!("no brisk figure: {line}"));
    let ratio = line["ratio"].as_f64().unwrap();
    assert!(old > 0.0 && brisk > 0.0, "{line}");
    assert!(ratio.is_finite() && ratio > 0.0, "{line}");
    let expected = if unit == "%" { brisk / old } else { old / brisk };
    assert!((ratio - expected).abs() <= 1e-9 * expected.max(1.0), "{line}");
    brisk
}

#[test]
fn the_quick_suite_prints_every_line_with_a_positive_figure() {
    let lines = json_lines(&suite(&["--quick", "--json"]));
    check_line(&lines, "pattern analysis, 200 tweets", "ms");
    check_line(&lines, "one generated tweet, average", "ms");
    let hit = check_line(&lines, "cache hit rate", "%");
    assert!(hit <= 100.0, "{hit}");
    check_line(&lines, "20 batched inserts (SQLite)", "ms");
    check_line(&lines, "10 concurrent generate requests through the server", "ms");
    check_line(&lines, "memory with 200 posts loaded", "MB");
    assert_eq!(lines.len(), 6, "{lines:#?}");
    for l in &lines {
        let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        for k in ["line", "old", "brisk", "unit", "ratio"] {
            assert!(keys.contains(&k), "{k} missing in {l}");
        }
    }
}

#[test]
fn the_suite_table_has_a_row_per_line_and_an_unknown_scale_is_named() {
    let out = suite(&["--scale", "small"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("line"), "{table}");
    assert!(table.contains("~85 ms") && table.contains("> 85%"), "{table}");
    assert!(!table.contains("not available"), "{table}");

    let out = suite(&["--scale", "huge"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--scale") && err.contains("huge"), "{err}");
}

#[test]
fn with_a_postgres_url_the_insert_line_also_runs_on_postgres() {
    let Some(db) = brisk_testkit::postgres() else {
        return;
    };
    let lines = json_lines(&suite(&["--quick", "--json", "--database-url", db.url()]));
    check_line(&lines, "20 batched inserts (SQLite)", "ms");
    check_line(&lines, "20 batched inserts (PostgreSQL)", "ms");
}

#[test]
fn the_concurrent_requests_can_come_from_client_processes() {
    // What `--scale large` does for its 10,000 requests (one process may
    // hold only so many open files), here with 10 requests from 2 processes.
    let lines = json_lines(&suite(&["--quick", "--json", "--client-processes", "2"]));
    check_line(&lines, "10 concurrent generate requests through the server", "ms");
    let line = lines
        .iter()
        .find(|l| l["line"].as_str().is_some_and(|s| s.contains("concurrent")))
        .unwrap();
    let note = line["note"].as_str().unwrap();
    assert!(note.contains("from 2 client processes"), "{note}");
    // 3 rounds of 10: every request answered, as a post or a 422.
    let answered: usize = ["answers were posts", "were 422"]
        .iter()
        .map(|tail| {
            let before = &note[..note.find(tail).unwrap_or_else(|| panic!("{tail:?} in {note}"))];
            before
                .split_whitespace()
                .last()
                .unwrap()
                .replace(',', "")
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(answered, 30, "{note}");
}
