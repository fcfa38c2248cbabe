//! Trains brisk-generator on a corpus file and prints 10 new posts with
//! their confidence.
//!
//! ```text
//! cargo run --release -p brisk-examples --example generator_train -- [FILE] [--text-column N] [--seed S]
//! ```
//!
//! `FILE` is read by its extension: `.jsonl` holds one JSON object per line
//! with a `text` field (a brisk-core `Post` or just `{"text": ...}`; a
//! Post's engagement weighs it); `.tsv` takes column `N` (1-based, default
//! the last column); anything else is one post per line. Without `FILE` a
//! small built-in corpus is used. Each output line is
//! `confidence fluency novelty structure_fit | text`.
//! Exit status: 0, or 2 on a bad argument, file or corpus.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use brisk_core::{Post, Timestamp};
use brisk_generator::{GenerateOptions, Generator};

const BUILT_IN: &[&str] = &[
    "Shipping the new release today 🚀 #rust",
    "Shipping small changes every day beats one big rewrite.",
    "The new release makes the build twice as fast.",
    "Small teams ship faster when the build is fast.",
    "Why is the build so slow on Mondays?",
    "The build is fast again after the cache fix 🚀",
    "Coffee first, then the code review ☕",
    "Code review is where small teams learn the most.",
    "Unpopular opinion: most rewrites are not worth it.",
    "3 things I learned shipping a cache this week 🧵",
    "1/ Measure before you optimise. The profiler is never wrong.",
    "2/ The cache fix was one line. Finding it took two days.",
    "3/ Write the benchmark first, then make it fast.",
    "What is the one tool you would never ship without?",
    "Never ship on a Friday. Unless the tests are green 😅",
    "The tests are green, the coffee is hot, the release is out.",
    "A fast build is a feature. Treat it like one.",
    "Reading the profiler output with my morning coffee ☕",
    "Every slow test is a tax on the whole team.",
    "The whole team shipped the release before lunch 🎉",
    "Hot take: the best code review is a short one.",
    "If the benchmark is noisy, the machine is busy. Check the load.",
    "Optimise the hot path, ignore the rest.",
    "The hot path was a hash map all along #rust",
    "Tiny commits, tiny reviews, fast releases.",
    "Why do we still wait ten minutes for a build?",
    "\"Make it work, make it right, make it fast\" still holds.",
    "Green tests and a fast build: a good Monday 🚀",
    "Learned more from one profiler run than from a week of guessing.",
    "The release notes are up: https://example.com/notes #rust",
];

#[derive(Debug, Default, PartialEq)]
struct Args {
    file: Option<String>,
    text_column: Option<usize>,
    seed: u64,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        seed: 42,
        ..Args::default()
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--text-column" => {
                let v = args.next().ok_or("--text-column needs a number")?;
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("--text-column: {v:?} is not a number"))?;
                if n == 0 {
                    return Err("--text-column counts from 1".into());
                }
                out.text_column = Some(n);
            }
            "--seed" => {
                let v = args.next().ok_or("--seed needs a number")?;
                out.seed = v.parse().map_err(|_| format!("--seed: {v:?} is not a number"))?;
            }
            other if other.starts_with("--") => return Err(format!("unknown argument {other:?}")),
            file => out.file = Some(file.to_owned()),
        }
    }
    Ok(out)
}

/// The posts of a corpus file (see the module docs for the formats).
fn read_posts(path: &str, text_column: Option<usize>) -> Result<Vec<Post>, String> {
    let data = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut posts = Vec::new();
    for (n, line) in data.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let post = if path.ends_with(".jsonl") {
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{path}:{}: {e}", n + 1))?;
            match serde_json::from_value::<Post>(value.clone()) {
                Ok(post) => post,
                Err(_) => {
                    let text = value
                        .get("text")
                        .and_then(serde_json::Value::as_str)
                        .ok_or_else(|| format!("{path}:{}: no \"text\" field", n + 1))?;
                    Post::new(n.to_string(), text, Timestamp::UNIX_EPOCH)
                }
            }
        } else if path.ends_with(".tsv") {
            let fields: Vec<&str> = line.split('\t').collect();
            let col = text_column.unwrap_or(fields.len());
            let text = fields
                .get(col - 1)
                .ok_or_else(|| format!("{path}:{}: no column {col}", n + 1))?;
            Post::new(n.to_string(), *text, Timestamp::UNIX_EPOCH)
        } else {
            Post::new(n.to_string(), line, Timestamp::UNIX_EPOCH)
        };
        posts.push(post);
    }
    Ok(posts)
}

/// Trains on `posts` and returns the report: a header and 10 posts.
fn run(posts: &[Post], seed: u64) -> Result<String, String> {
    let started = Instant::now();
    let mut g = Generator::builder().build().map_err(|e| e.to_string())?;
    g.train(posts).map_err(|e| e.to_string())?;
    g.check_ready().map_err(|e| e.to_string())?;
    let trained = started.elapsed();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trained on {} posts ({} tokens, {} distinct) in {:.1} ms, model ~{} KB",
        g.posts(),
        g.tokens(),
        g.vocabulary_len(),
        trained.as_secs_f64() * 1e3,
        g.heap_bytes() / 1024
    );
    let started = Instant::now();
    let generated = g
        .generate_many(10, &GenerateOptions::new().seed(seed))
        .map_err(|e| e.to_string())?;
    let _ = writeln!(
        out,
        "generated 10 posts in {:.0} µs",
        started.elapsed().as_secs_f64() * 1e6
    );
    for p in &generated {
        let c = p.confidence;
        let _ = writeln!(
            out,
            "{:.2} {:.2} {:.2} {:.2} | {}",
            c.score,
            c.fluency,
            c.novelty,
            c.structure_fit,
            p.text.replace('\n', " ⏎ ")
        );
    }
    Ok(out)
}

fn built_in() -> Vec<Post> {
    BUILT_IN
        .iter()
        .enumerate()
        .map(|(i, t)| Post::new(i.to_string(), *t, Timestamp::UNIX_EPOCH))
        .collect()
}

fn main() -> ExitCode {
    let result = parse_args(std::env::args().skip(1)).and_then(|args| {
        let posts = match &args.file {
            Some(path) => read_posts(path, args.text_column)?,
            None => built_in(),
        };
        run(&posts, args.seed)
    });
    match result {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("generator_train: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_corpus_gives_ten_novel_posts() {
        let report = run(&built_in(), 7).unwrap();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 12, "{report}");
        assert!(lines[0].starts_with("trained on 30 posts"), "{report}");
        for line in &lines[2..] {
            let score: f64 = line.split(' ').next().unwrap().parse().unwrap();
            assert!(score > 0.0 && score <= 1.0, "{line}");
            let text = line.split(" | ").nth(1).unwrap();
            assert!(!BUILT_IN.contains(&text), "a copy: {text}");
        }
    }

    #[test]
    fn reads_tsv_and_jsonl() {
        let dir = std::env::temp_dir().join(format!("brisk-gen-example-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tsv = dir.join("c.tsv");
        std::fs::write(&tsv, "1\t0.5\tfirst post\n2\t0.1\tsecond post\n").unwrap();
        let posts = read_posts(tsv.to_str().unwrap(), Some(3)).unwrap();
        assert_eq!(posts[1].text, "second post");
        let jsonl = dir.join("c.jsonl");
        std::fs::write(&jsonl, "{\"text\":\"hello there\"}\n").unwrap();
        assert_eq!(
            read_posts(jsonl.to_str().unwrap(), None).unwrap()[0].text,
            "hello there"
        );
        assert!(read_posts(tsv.to_str().unwrap(), Some(9)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            parse_args(["x.tsv".to_owned(), "--text-column".to_owned(), "3".to_owned()]).unwrap(),
            Args {
                file: Some("x.tsv".into()),
                text_column: Some(3),
                seed: 42
            }
        );
        assert!(parse_args(["--text-column".to_owned(), "0".to_owned()]).is_err());
    }
}
