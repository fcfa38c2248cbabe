//! Runs each example program and checks what it prints.

use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn core_posts_samples() {
    let out = Command::new(env!("CARGO_BIN_EXE_core-posts")).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    // Two samples share a text, three break one rule each.
    assert!(stdout.contains("rejected empty text 3"), "{stdout}");
    assert!(stdout.contains("rejected too_long text 4"), "{stdout}");
    assert!(stdout.contains("rejected nul_byte text 5"), "{stdout}");
    assert!(
        stdout.contains("5 posts: 2 valid (1 distinct texts), 3 rejected"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn core_posts_reads_json_lines() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_core-posts"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"id\":\"a\",\"text\":\"hello world\",\"created_at\":0}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("ok df8d09e93f874900a99b8775cc15b6c7 a"),
        "{stdout}"
    );
    assert!(out.status.success());
}
