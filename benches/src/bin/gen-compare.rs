//! Trains brisk-generator and markovify (state size 2) on the same corpus,
//! generates the same number of outputs with each and prints them side by
//! side.
//!
//! ```text
//! python3 -m venv /tmp/mkv && /tmp/mkv/bin/pip install markovify
//! cargo run --release -p brisk-benches --bin gen-compare -- \
//!     --corpus ../shared/data/corpus/vader_tweets.tsv --format tsv --text-column 3 \
//!     [--outputs 1000] [--json] [--python /tmp/mkv/bin/python]
//! ```
//!
//! Formats: `tsv` (column `--text-column`, 1-based, default the last),
//! `lines` (one post per line) and `jsonl` (a `text` field per line).
//! Newlines inside posts become spaces for both systems.
//!
//! Per system: µs per output (generation time over all requested outputs,
//! failures included; markovify's measured inside Python, so interpreter
//! start-up is excluded), acceptance (outputs produced within 10 attempts
//! over outputs requested), overlap failures (the share of produced outputs
//! that fail brisk's overlap test: a run of more than
//! `min(15, round(0.7 × n))` consecutive brisk tokens shared with a post),
//! distinct-2 (distinct token bigrams over all token bigrams of the
//! outputs) and mean confidence (brisk's scorer applied to both systems'
//! outputs). brisk's p50 and p99 per call are printed too.
//!
//! With `--json`: one object per line with `system`, `us_per_output`,
//! `acceptance`, `overlap_failures`, `distinct2`, `mean_confidence` (and
//! `train_ms`, `p50_us`, `p99_us` where measured). Python is
//! `--python`, else `$MARKOVIFY_PYTHON`, else `/tmp/mkv/bin/python` if it
//! exists, else `python3`; without markovify only brisk's row is printed
//! and the exit status is 1.

use std::collections::HashSet;
use std::process::{Command, ExitCode};
use std::time::Instant;

use brisk_generator::{GenerateOptions, Generator};

#[derive(Debug)]
struct Args {
    corpus: String,
    format: String,
    text_column: Option<usize>,
    outputs: usize,
    json: bool,
    python: Option<String>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut corpus = None;
    let mut format = None;
    let mut text_column = None;
    let mut outputs = 1000;
    let mut json = false;
    let mut python = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--corpus" => corpus = Some(value("--corpus")?),
            "--format" => {
                let f = value("--format")?;
                if !matches!(f.as_str(), "tsv" | "lines" | "jsonl") {
                    return Err(format!("--format: {f:?} is not tsv, lines or jsonl"));
                }
                format = Some(f);
            }
            "--text-column" => {
                let v = value("--text-column")?;
                let n: usize = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--text-column: {v:?} is not a column number (from 1)"))?;
                text_column = Some(n);
            }
            "--outputs" => {
                let v = value("--outputs")?;
                outputs = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--outputs: {v:?} is not a positive number"))?;
            }
            "--python" => python = Some(value("--python")?),
            "--json" => json = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        corpus: corpus.ok_or("--corpus FILE is required")?,
        format: format.ok_or("--format tsv|lines|jsonl is required")?,
        text_column,
        outputs,
        json,
        python,
    })
}

fn read_posts(args: &Args) -> Result<Vec<String>, String> {
    let data = std::fs::read_to_string(&args.corpus).map_err(|e| format!("{}: {e}", args.corpus))?;
    let mut posts = Vec::new();
    for (n, line) in data.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let text = match args.format.as_str() {
            "tsv" => {
                let fields: Vec<&str> = line.split('\t').collect();
                let col = args.text_column.unwrap_or(fields.len());
                match fields.get(col - 1) {
                    Some(t) => (*t).to_owned(),
                    None => continue,
                }
            }
            "jsonl" => {
                let v: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", args.corpus, n + 1))?;
                v.get("text")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            }
            _ => line.to_owned(),
        };
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() {
            posts.push(text);
        }
    }
    if posts.is_empty() {
        return Err(format!("{}: no posts", args.corpus));
    }
    Ok(posts)
}

#[derive(Debug)]
struct Row {
    system: &'static str,
    us_per_output: f64,
    acceptance: f64,
    overlap_failures: f64,
    distinct2: f64,
    mean_confidence: f64,
    train_ms: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
}

/// Overlap failures, distinct-2 and mean confidence of `outputs`, all
/// measured with brisk's tokenizer, overlap rule and scorer.
#[allow(clippy::cast_precision_loss)]
fn judge(g: &Generator, outputs: &[String]) -> (f64, f64, f64) {
    let mut fails = 0usize;
    let mut conf = 0.0;
    let mut bigrams = HashSet::new();
    let mut total = 0usize;
    for text in outputs {
        let c = g.confidence(text);
        fails += usize::from(!c.novel);
        conf += c.score;
        let toks: Vec<&str> = brisk_pattern_matcher::tokens(text)
            .map(|t| t.text(text))
            .collect();
        for w in toks.windows(2) {
            total += 1;
            bigrams.insert((w[0], w[1]));
        }
    }
    let n = outputs.len().max(1) as f64;
    let distinct2 = if total == 0 {
        0.0
    } else {
        bigrams.len() as f64 / total as f64
    };
    (fails as f64 / n, distinct2, conf / n)
}

/// The resident set size in bytes (Linux; 0 elsewhere).
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[allow(clippy::cast_precision_loss)]
fn run_brisk(posts: &[String], outputs: usize) -> Result<(Generator, Row), String> {
    let rss_before = rss_bytes();
    let started = Instant::now();
    let mut g = Generator::builder().build().map_err(|e| e.to_string())?;
    g.train_texts(posts).map_err(|e| e.to_string())?;
    let train_ms = started.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "gen-compare: brisk model of {} posts: heap_bytes ~{} KB, RSS growth while training {} KB, saved {} KB",
        g.posts(),
        g.heap_bytes() / 1024,
        rss_bytes().saturating_sub(rss_before) / 1024,
        g.to_bytes().len() / 1024
    );
    g.check_ready().map_err(|e| e.to_string())?;
    let opts = GenerateOptions::new().seed(42);
    let mut rng_seed = 42u64;
    let mut texts = Vec::with_capacity(outputs);
    let mut times = Vec::with_capacity(outputs);
    let all = Instant::now();
    for _ in 0..outputs {
        rng_seed = rng_seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let opts = opts.clone().seed(rng_seed);
        let t = Instant::now();
        let out = g.generate(&opts);
        times.push(t.elapsed().as_secs_f64() * 1e6);
        if let Ok(o) = out {
            texts.push(o.text);
        }
    }
    let total_us = all.elapsed().as_secs_f64() * 1e6;
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let (overlap_failures, distinct2, mean_confidence) = judge(&g, &texts);
    let row = Row {
        system: "brisk",
        us_per_output: total_us / outputs as f64,
        acceptance: texts.len() as f64 / outputs as f64,
        overlap_failures,
        distinct2,
        mean_confidence,
        train_ms,
        p50_us: Some(pct(0.5)),
        p99_us: Some(pct(0.99)),
    };
    Ok((g, row))
}

fn python(args: &Args) -> String {
    if let Some(p) = &args.python {
        return p.clone();
    }
    if let Ok(p) = std::env::var("MARKOVIFY_PYTHON") {
        return p;
    }
    if std::path::Path::new("/tmp/mkv/bin/python").exists() {
        return "/tmp/mkv/bin/python".into();
    }
    "python3".into()
}

#[allow(clippy::cast_precision_loss)]
fn run_markovify(args: &Args, g: &Generator) -> Result<Row, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/markovify.py");
    let mut cmd = Command::new(python(args));
    cmd.arg(script)
        .args(["--corpus", &args.corpus, "--format", &args.format])
        .args(["--outputs", &args.outputs.to_string()]);
    if let Some(c) = args.text_column {
        cmd.args(["--text-column", &c.to_string()]);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("running {}: {e}", python(args)))?;
    if !out.status.success() {
        return Err(format!(
            "markovify.py failed ({}): {}\nset it up with: python3 -m venv /tmp/mkv && /tmp/mkv/bin/pip install markovify",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("markovify.py output: {e}"))?;
    let texts: Vec<String> = v["outputs"]
        .as_array()
        .ok_or("markovify.py output: no outputs")?
        .iter()
        .filter_map(|o| o.as_str().map(str::to_owned))
        .collect();
    let seconds = v["seconds"].as_f64().ok_or("markovify.py output: no seconds")?;
    let (overlap_failures, distinct2, mean_confidence) = judge(g, &texts);
    Ok(Row {
        system: "markovify",
        us_per_output: seconds * 1e6 / args.outputs as f64,
        acceptance: texts.len() as f64 / args.outputs as f64,
        overlap_failures,
        distinct2,
        mean_confidence,
        train_ms: v["train_ms"].as_f64().unwrap_or(f64::NAN),
        p50_us: None,
        p99_us: None,
    })
}

fn print_rows(rows: &[Row], json: bool) {
    if json {
        for r in rows {
            let mut o = serde_json::json!({
                "system": r.system,
                "us_per_output": r.us_per_output,
                "acceptance": r.acceptance,
                "overlap_failures": r.overlap_failures,
                "distinct2": r.distinct2,
                "mean_confidence": r.mean_confidence,
                "train_ms": r.train_ms,
            });
            if let (Some(p50), Some(p99)) = (r.p50_us, r.p99_us) {
                o["p50_us"] = p50.into();
                o["p99_us"] = p99.into();
            }
            println!("{o}");
        }
        return;
    }
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}",
        "system", "us/output", "accept", "overlap", "distinct2", "confidence", "train_ms", "p50_us", "p99_us"
    );
    for r in rows {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        println!(
            "{:<10} {:>10.1} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.1} {:>9} {:>9}",
            r.system,
            r.us_per_output,
            r.acceptance,
            r.overlap_failures,
            r.distinct2,
            r.mean_confidence,
            r.train_ms,
            opt(r.p50_us),
            opt(r.p99_us)
        );
    }
    if let [b, m] = rows {
        println!(
            "brisk is {:.1}x faster per output; distinct-2 {:.3} vs {:.3}",
            m.us_per_output / b.us_per_output,
            b.distinct2,
            m.distinct2
        );
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gen-compare: {e}");
            return ExitCode::from(2);
        }
    };
    let posts = match read_posts(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("gen-compare: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!("gen-compare: {} posts from {}", posts.len(), args.corpus);
    let (g, brisk) = match run_brisk(&posts, args.outputs) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gen-compare: brisk: {e}");
            return ExitCode::from(2);
        }
    };
    match run_markovify(&args, &g) {
        Ok(m) => {
            print_rows(&[brisk, m], args.json);
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_rows(&[brisk], args.json);
            eprintln!("gen-compare: {e}");
            ExitCode::from(1)
        }
    }
}
