//! Validates posts and prints their content hashes.
//!
//! ```text
//! cargo run -p brisk-examples --example core_posts                 # built-in samples
//! printf '%s\n' '{"id":"1","text":"hi","created_at":0}' | cargo run -p brisk-examples --example core_posts -- -
//! ```
//!
//! With `-`, it reads one JSON post per line from standard input. It prints
//! one line per post: `ok <hash> <id>` or `rejected <rule> <field> <id>: <message>`,
//! then a summary, and exits with status 1 if any post was rejected.

use std::io::{self, BufRead};
use std::process::ExitCode;

use brisk_core::{ContentHash, Post, PostLimits, SystemClock, Timestamp};

fn samples(now: Timestamp) -> Vec<Post> {
    vec![
        Post::new("1", "Big news for $ABC: record quarter 🚀 #abc", now).with_author("@newsdesk"),
        Post::new("2", "Big news for $ABC: record quarter 🚀 #abc", now).with_author("@copycat"),
        Post::new("3", "   ", now),
        Post::new("4", "a".repeat(300), now),
        Post::new("5", "nul\0inside", now),
    ]
}

fn parse_lines(input: impl BufRead) -> Result<Vec<Post>, String> {
    let mut posts = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("reading standard input: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let post = serde_json::from_str(&line).map_err(|e| format!("line {}: not a post: {e}", n + 1))?;
        posts.push(post);
    }
    Ok(posts)
}

/// The report lines for `posts`, and how many were rejected.
fn check(posts: &[Post], limits: &PostLimits) -> (Vec<String>, usize) {
    let mut lines = Vec::new();
    let mut rejected = 0;
    let mut hashes: Vec<ContentHash> = Vec::new();
    for post in posts {
        match post.validate(limits) {
            Ok(()) => {
                let hash = post.content_hash();
                lines.push(format!("ok {hash} {}", post.id));
                hashes.push(hash);
            }
            Err(e) => {
                rejected += 1;
                lines.push(format!("rejected {} {} {}: {e}", e.rule(), e.field(), post.id));
            }
        }
    }
    hashes.sort_unstable();
    hashes.dedup();
    lines.push(format!(
        "{} posts: {} valid ({} distinct texts), {rejected} rejected",
        posts.len(),
        posts.len() - rejected,
        hashes.len()
    ));
    (lines, rejected)
}

fn main() -> ExitCode {
    let posts = match std::env::args().nth(1).as_deref() {
        Some("-") => match parse_lines(io::stdin().lock()) {
            Ok(posts) => posts,
            Err(e) => {
                eprintln!("core_posts: {e}");
                return ExitCode::from(2);
            }
        },
        Some(other) => {
            eprintln!("core_posts: unknown argument {other:?}; pass `-` to read JSON lines from stdin");
            return ExitCode::from(2);
        }
        None => samples(Timestamp::now(&SystemClock)),
    };
    let (lines, rejected) = check(&posts, &PostLimits::default().max_text_chars(280));
    for line in lines {
        println!("{line}");
    }
    if rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_report_each_rule_and_dedupe_texts() {
        let (lines, rejected) = check(
            &samples(Timestamp::UNIX_EPOCH),
            &PostLimits::default().max_text_chars(280),
        );
        assert_eq!(rejected, 3);
        assert!(
            lines[0].starts_with("ok ") && lines[0].ends_with(" 1"),
            "{lines:?}"
        );
        assert_eq!(lines[0][3..35], lines[1][3..35], "same text, same hash");
        assert_eq!(lines[2], "rejected empty text 3: post text is empty");
        assert!(lines[3].starts_with("rejected too_long text 4"), "{lines:?}");
        assert!(lines[4].starts_with("rejected nul_byte text 5"), "{lines:?}");
        assert_eq!(lines[5], "5 posts: 2 valid (1 distinct texts), 3 rejected");
    }

    #[test]
    fn reads_json_lines() {
        let input = "{\"id\":\"a\",\"text\":\"hello world\",\"created_at\":0}\n\n";
        let posts = parse_lines(input.as_bytes()).unwrap();
        let (lines, rejected) = check(&posts, &PostLimits::default());
        assert_eq!(rejected, 0);
        assert_eq!(lines[0], "ok df8d09e93f874900a99b8775cc15b6c7 a");
        let err = parse_lines("{\"id\":1}".as_bytes()).unwrap_err();
        assert!(err.starts_with("line 1: not a post"), "{err}");
    }
}
