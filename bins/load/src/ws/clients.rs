//! A broadcast's reading connections in child processes.
//
// One process may hold at most 20,000 open files here, so 45,000
// subscribers need several client processes. The parent re-runs its own
// executable with the hidden `ws-client` subcommand, once per process; child
// p opens connections [first, first + count) of the run (the index picks the
// target, i mod n, and the source address, as in one process), subscribes
// each, waits until the hub has confirmed them (30 s at most) and writes one
// JSON line, [`Ready`]. It then reads deliveries until a line (or the end of
// input) arrives on its stdin, and writes one JSON line, [`Finished`]: every
// connection's sequence numbers and latencies. Latencies are computed in the
// child from the wall-clock publish time each message carries, so they need
// no clock shared with the parent but the machine's.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::{ConnResult, MAX_CONNECTIONS, WsRun};
use crate::{LoadError, Target};

/// A client process's (or all of them together) connections once opened.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Ready {
    /// Connections that opened.
    pub(crate) opened: u64,
    /// Of those, the ones the hub confirmed.
    pub(crate) subscribed: u64,
    /// Connections that failed to open.
    pub(crate) failed: u64,
    /// The first failure's reason.
    pub(crate) first_error: Option<String>,
}

impl Ready {
    fn add(&mut self, other: Self) {
        self.opened += other.opened;
        self.subscribed += other.subscribed;
        self.failed += other.failed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// What a client process saw, sent at the end.
#[derive(Default, Serialize, Deserialize)]
struct Finished {
    results: Vec<ConnResult>,
}

/// The child side (`brisk-load ws-client`): opens connections `first` ..
/// `first + count` of a broadcast to `targets` (connection i to target
/// i mod n, from 127.0.0.(`source_base` + i / `per_source`)), subscribes
/// each to `topic` (or, with `topics` > 1, to `{topic}-{i mod topics}`),
/// writes one JSON line when they are subscribed, reads
/// deliveries until a line or the end of stdin, and writes one JSON line
/// with every connection's deliveries.
///
/// This is `brisk-load ws broadcast --client-processes`'s own plumbing;
/// it is public only so the binary can call it.
///
/// # Errors
///
/// [`LoadError::Io`] when stdin or stdout fail; [`LoadError::Setting`] or
/// a target error for arguments out of range.
pub async fn run_ws_client(
    targets: &[String],
    topic: &str,
    topics: usize,
    first: usize,
    count: usize,
    per_source: usize,
    source_base: usize,
) -> Result<(), LoadError> {
    let targets = targets
        .iter()
        .map(|t| Target::parse(t, false))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first_target) = targets.first().cloned() else {
        return Err(LoadError::setting("--target", "give at least one target"));
    };
    if !(1..=MAX_CONNECTIONS).contains(&count) {
        return Err(LoadError::setting(
            "--count",
            format!("must be 1 to {MAX_CONNECTIONS}"),
        ));
    }
    if per_source == 0 || source_base + (first + count).div_ceil(per_source) > 256 {
        return Err(LoadError::setting(
            "--per-source",
            "the source addresses would run past 127.0.0.255",
        ));
    }
    let run = WsRun::new(first_target)
        .targets(targets)
        .topic(topic)
        .topics(topics.max(1))
        .per_source(per_source)
        .stats_path(None);
    crate::fanout::raise_file_limit(count + 64);
    let readers = run.open_readers(first..first + count, source_base).await;
    run.wait_subscribed(&[(&readers.subscribed, readers.opened())])
        .await;
    let ready = Ready {
        opened: readers.opened(),
        subscribed: readers.subscribed.load(Ordering::Relaxed),
        failed: readers.failed,
        first_error: readers.first_error.clone(),
    };
    let io = |e| LoadError::io("the ws client's pipe", e);
    let mut stdout = tokio::io::stdout();
    write_line(&mut stdout, &ready).await.map_err(io)?;
    // Deliveries are read until the parent says stop (or goes away).
    let mut line = String::new();
    let _ = BufReader::new(tokio::io::stdin()).read_line(&mut line).await;
    let results = readers.finish().await;
    write_line(&mut stdout, &Finished { results }).await.map_err(io)?;
    Ok(())
}

async fn write_line(out: &mut tokio::io::Stdout, value: &impl Serialize) -> std::io::Result<()> {
    let mut json = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    json.push(b'\n');
    out.write_all(&json).await?;
    out.flush().await
}

/// The client processes of one broadcast.
pub(crate) struct WsClients {
    children: Vec<(Child, ChildStdin, tokio::io::Lines<BufReader<ChildStdout>>)>,
    /// Every process's connections, added up.
    pub(crate) ready: Ready,
}

impl WsClients {
    /// Starts `run.client_processes` children of `exe`, each with an even
    /// share of `run.connections`, and waits until each has opened and
    /// subscribed its connections (or the run's stop signal).
    pub(crate) async fn start(exe: &Path, run: &WsRun, source_base: usize) -> Result<Self, String> {
        let total = run.connections;
        let processes = run.client_processes.clamp(1, total.max(1));
        let share = total.div_ceil(processes);
        let targets = run.targets_text();
        // Dropped on an early return: the children are killed then.
        let mut clients = Self {
            children: Vec::with_capacity(processes),
            ready: Ready::default(),
        };
        for p in 0..processes {
            let first = p * share;
            let count = share.min(total - first.min(total));
            if count == 0 {
                break;
            }
            let mut child = tokio::process::Command::new(exe)
                .args([
                    "ws-client".to_owned(),
                    format!("--target={targets}"),
                    format!("--topic={}", run.topic),
                    format!("--topics={}", run.topics),
                    format!("--first={first}"),
                    format!("--count={count}"),
                    format!("--per-source={}", run.per_source),
                    format!("--source-base={source_base}"),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("starting the client process {}: {e}", exe.display()))?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err("a client process has no pipes".to_owned());
            };
            clients
                .children
                .push((child, stdin, BufReader::new(stdout).lines()));
        }
        // The children open their connections at the same time.
        for (child, _, lines) in &mut clients.children {
            let line = tokio::select! {
                l = lines.next_line() => l.map_err(|e| format!("reading a client process: {e}"))?,
                () = run.stop.stopped() => {
                    return Err("stopped while the client processes opened their connections".to_owned());
                }
            };
            let Some(line) = line else {
                let status = child.wait().await.map(|s| s.to_string()).unwrap_or_default();
                return Err(format!("a client process ended before it was ready ({status})"));
            };
            let ready: Ready = serde_json::from_str(&line)
                .map_err(|e| format!("a client process's ready line {line:?}: {e}"))?;
            clients.ready.add(ready);
        }
        Ok(clients)
    }

    /// How many processes run.
    pub(crate) fn len(&self) -> usize {
        self.children.len()
    }

    /// Tells every process to stop reading, collects what each saw, and
    /// waits for them to end.
    pub(crate) async fn finish(mut self) -> Result<Vec<ConnResult>, String> {
        for (_, stdin, _) in &mut self.children {
            // A child that has gone will fail to answer below.
            let _ = stdin.write_all(b"stop\n").await;
            let _ = stdin.flush().await;
        }
        let mut results = Vec::new();
        for (mut child, stdin, mut lines) in self.children {
            let line = lines
                .next_line()
                .await
                .map_err(|e| format!("reading a client process: {e}"))?
                .ok_or("a client process ended without its results")?;
            let finished: Finished =
                serde_json::from_str(&line).map_err(|e| format!("a client process's results: {e}"))?;
            results.extend(finished.results);
            drop(stdin);
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        Ok(results)
    }
}
