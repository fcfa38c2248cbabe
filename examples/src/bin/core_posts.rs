//! Validates posts and prints their content hashes.
//!
//! ```text
//! cargo run -p brisk-examples --bin core-posts                       # built-in samples
//! printf '%s\n' '{"id":"1","text":"hi","created_at":0}' | cargo run -p brisk-examples --bin core-posts -- -
//! ```
//!
//! With `-`, it reads one JSON post per line from standard input. It prints
//! one line per post: `ok <hash> <id>` or `rejected <rule> <field> <id>: <message>`,
//! then a summary, and exits with status 1 if any post was rejected.

use std::io::{self, BufRead};
use std::process::ExitCode;

use brisk_core::{ContentHash, Post, PostLimits, SystemClock, Timestamp};

fn samples() -> Vec<Post> {
    let now = Timestamp::now(&SystemClock);
    vec![
        Post::new("1", "Big news for $ABC: record quarter 🚀 #abc", now).with_author("@newsdesk"),
        Post::new("2", "Big news for $ABC: record quarter 🚀 #abc", now).with_author("@copycat"),
        Post::new("3", "   ", now),
        Post::new("4", "a".repeat(300), now),
        Post::new("5", "nul\0inside", now),
    ]
}

fn read_stdin() -> Result<Vec<Post>, String> {
    let mut posts = Vec::new();
    for (n, line) in io::stdin().lock().lines().enumerate() {
        let line = line.map_err(|e| format!("reading standard input: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let post = serde_json::from_str(&line).map_err(|e| format!("line {}: not a post: {e}", n + 1))?;
        posts.push(post);
    }
    Ok(posts)
}

fn main() -> ExitCode {
    let posts = match std::env::args().nth(1).as_deref() {
        Some("-") => match read_stdin() {
            Ok(posts) => posts,
            Err(e) => {
                eprintln!("core-posts: {e}");
                return ExitCode::from(2);
            }
        },
        Some(other) => {
            eprintln!("core-posts: unknown argument {other:?}; pass `-` to read JSON lines from stdin");
            return ExitCode::from(2);
        }
        None => samples(),
    };

    let limits = PostLimits::default().max_text_chars(280);
    let mut rejected = 0;
    let mut hashes: Vec<ContentHash> = Vec::new();
    for post in &posts {
        match post.validate(&limits) {
            Ok(()) => {
                let hash = post.content_hash();
                println!("ok {hash} {}", post.id);
                hashes.push(hash);
            }
            Err(e) => {
                rejected += 1;
                println!("rejected {} {} {}: {e}", e.rule(), e.field(), post.id);
            }
        }
    }
    hashes.sort_unstable();
    hashes.dedup();
    println!(
        "{} posts: {} valid ({} distinct texts), {rejected} rejected",
        posts.len(),
        posts.len() - rejected,
        hashes.len()
    );
    if rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
