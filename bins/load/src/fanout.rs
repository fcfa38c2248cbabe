//! The suite's concurrent-requests line from several processes.
//
// One process may hold at most 20,000 open files on this machine (root
// cannot raise the hard limit), and the suite's server runs in-process: with
// 10,000 requests at once, the server's 10,000 accepted sockets and the
// client's 10,000 connecting ones would not fit in one process. So above
// `IN_PROCESS_MAX` requests the clients run in child processes (the current
// executable re-run with the hidden `suite-client` subcommand), each opening
// its share of the connections, from loopback source addresses 127.0.0.N
// bound explicitly (`PER_SOURCE` each), so that no source/destination pair
// runs short of ephemeral ports across rounds.
//
// The protocol over the child's stdin/stdout is a line each way: the child
// writes `ready` once it runs; for every `go` it reads, it opens its
// connections, sends one `POST /api/generate` on each at once, and writes
// one JSON [`RoundResult`] when all have answered. End of input ends it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::LoadError;

/// The most concurrent requests the suite sends from its own process.
pub(crate) const IN_PROCESS_MAX: usize = 1_000;
/// Connections per client process.
pub(crate) const PER_CHILD: usize = 2_500;
/// Connections per loopback source address.
pub(crate) const PER_SOURCE: usize = 2_000;
/// A connect that took this long waited for a SYN retransmit: the server's
/// listen backlog was full.
const SLOW_CONNECT: Duration = Duration::from_millis(900);

/// The answers of one round of concurrent requests (one process's share).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct RoundResult {
    /// Answered `200`: generated posts.
    pub generated: usize,
    /// Answered `422 no_novel_output`.
    pub no_novel: usize,
    /// Anything else, by what it was (`503: {...}`, `timeout`, ...).
    pub errors: BTreeMap<String, usize>,
    /// Connects that took over 0.9 s (a SYN retransmit).
    pub slow_connects: usize,
}

impl RoundResult {
    pub(crate) fn add(&mut self, other: Self) {
        self.generated += other.generated;
        self.no_novel += other.no_novel;
        self.slow_connects += other.slow_connects;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

/// One `POST /api/generate` on a fresh connection, from `source` if given;
/// the status code (200, or 422 for no novel output) and whether the
/// connect was slow.
pub(crate) async fn generate_request(
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
) -> Result<(u16, bool), String> {
    let body = r#"{"n":1}"#;
    let request = format!(
        "POST /api/generate HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let io = async {
        let started = Instant::now();
        let mut stream = match source {
            Some(ip) => {
                let socket = tokio::net::TcpSocket::new_v4()?;
                // Earlier rounds leave ports in TIME_WAIT; loopback reuses them.
                socket.set_reuseaddr(true)?;
                socket.bind(SocketAddr::new(IpAddr::V4(ip), 0))?;
                socket.connect(addr).await?
            }
            None => tokio::net::TcpStream::connect(addr).await?,
        };
        let slow = started.elapsed() >= SLOW_CONNECT;
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>((response, slow))
    };
    let (response, slow) = tokio::time::timeout(Duration::from_secs(60), io)
        .await
        .map_err(|_| "timeout".to_owned())?
        .map_err(|e| e.kind().to_string())?;
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {:?}", &text[..text.len().min(40)]))?;
    match status {
        // The generator's honest "no novel post for this seed": an answer.
        422 if text.contains("no_novel_output") => Ok((422, slow)),
        200 => Ok((200, slow)),
        other => Err(format!("{other}: {}", text.lines().last().unwrap_or_default())),
    }
}

/// Sends `count` requests at once, request `i` (from `first`) from source
/// address 127.0.0.(`source_base` + i / `per_source`), or from the default
/// source when `per_source` is 0; waits for every answer.
pub(crate) async fn round(
    addr: SocketAddr,
    first: usize,
    count: usize,
    per_source: usize,
    source_base: usize,
) -> RoundResult {
    let tasks: Vec<_> = (first..first + count)
        .map(|i| {
            let source = (per_source > 0).then(|| {
                let octet = u8::try_from(source_base + i / per_source).unwrap_or(u8::MAX);
                Ipv4Addr::new(127, 0, 0, octet)
            });
            tokio::spawn(generate_request(addr, source))
        })
        .collect();
    let mut out = RoundResult::default();
    for t in tasks {
        match t.await {
            Ok(Ok((status, slow))) => {
                if status == 200 {
                    out.generated += 1;
                } else {
                    out.no_novel += 1;
                }
                out.slow_connects += usize::from(slow);
            }
            Ok(Err(e)) => *out.errors.entry(e).or_default() += 1,
            Err(e) => *out.errors.entry(e.to_string()).or_default() += 1,
        }
    }
    out
}

/// The child side (`brisk-load suite-client`): writes `ready`, then for
/// every `go` line on stdin sends `count` concurrent `POST /api/generate`
/// to `addr` (request numbers `first`.., from 127.0.0.(`source_base` +
/// i / `per_source`)) and writes the round's answers as one JSON line.
/// Returns at the end of stdin.
///
/// This is the suite's own plumbing, run by [`run_suite`](crate::run_suite)
/// in child processes; it is public only so the binary can call it.
///
/// # Errors
///
/// [`LoadError::Io`] when stdin or stdout fail, [`LoadError::Setting`]
/// when `addr` is not on loopback or the source addresses run past
/// 127.0.0.255.
pub async fn run_suite_client(
    addr: SocketAddr,
    first: usize,
    count: usize,
    per_source: usize,
    source_base: usize,
) -> Result<(), LoadError> {
    if !crate::is_loopback(&addr) {
        return Err(LoadError::setting("--addr", format!("{addr} is not on loopback")));
    }
    if per_source == 0 || source_base + (first + count).div_ceil(per_source) > 256 {
        return Err(LoadError::setting(
            "--per-source",
            "the source addresses would run past 127.0.0.255",
        ));
    }
    raise_file_limit(count + 64);
    let mut stdout = tokio::io::stdout();
    let io = |e| LoadError::io("the suite client's pipe", e);
    stdout.write_all(b"ready\n").await.map_err(io)?;
    stdout.flush().await.map_err(io)?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await.map_err(io)? {
        if line.trim() != "go" {
            continue;
        }
        let result = round(addr, first, count, per_source, source_base).await;
        let mut json = serde_json::to_string(&result).unwrap_or_default();
        json.push('\n');
        stdout.write_all(json.as_bytes()).await.map_err(io)?;
        stdout.flush().await.map_err(io)?;
    }
    Ok(())
}

/// Client processes, each holding its share of a round's connections.
pub(crate) struct Clients {
    children: Vec<(Child, ChildStdin, tokio::io::Lines<BufReader<ChildStdout>>)>,
}

impl Clients {
    /// Starts `processes` children of `exe` for `total` requests a round
    /// to `addr`, and waits until each runs.
    pub(crate) async fn start(
        exe: &Path,
        addr: SocketAddr,
        total: usize,
        processes: usize,
    ) -> Result<Self, String> {
        let processes = processes.clamp(1, total.max(1));
        let share = total.div_ceil(processes);
        // A random first source address, so that back-to-back runs do not
        // meet the ports the previous one left in TIME_WAIT.
        let blocks = total.div_ceil(PER_SOURCE);
        let source_base = 2 + fastrand::usize(0..=253usize.saturating_sub(blocks));
        // Dropped on an early return: the children are killed then.
        let mut clients = Self {
            children: Vec::with_capacity(processes),
        };
        for p in 0..processes {
            let first = p * share;
            let count = share.min(total - first.min(total));
            if count == 0 {
                break;
            }
            let mut child = tokio::process::Command::new(exe)
                .args([
                    "suite-client".to_owned(),
                    format!("--addr={addr}"),
                    format!("--first={first}"),
                    format!("--count={count}"),
                    format!("--per-source={PER_SOURCE}"),
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
        for (child, _, lines) in &mut clients.children {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .map_err(|_| "a client process did not start within 30 s".to_owned())?
                .map_err(|e| format!("reading a client process: {e}"))?;
            if line.as_deref() != Some("ready") {
                let status = child.wait().await.map(|s| s.to_string()).unwrap_or_default();
                return Err(format!("a client process did not start ({status})"));
            }
        }
        Ok(clients)
    }

    /// How many processes run.
    pub(crate) fn len(&self) -> usize {
        self.children.len()
    }

    /// One round: every process sends its share at once; returns the time
    /// from the go signal until the last process has every answer.
    pub(crate) async fn round(&mut self) -> Result<(Duration, RoundResult), String> {
        let start = Instant::now();
        for (_, stdin, _) in &mut self.children {
            stdin
                .write_all(b"go\n")
                .await
                .map_err(|e| format!("writing to a client process: {e}"))?;
            stdin
                .flush()
                .await
                .map_err(|e| format!("writing to a client process: {e}"))?;
        }
        let mut total = RoundResult::default();
        for (_, _, lines) in &mut self.children {
            let line = lines
                .next_line()
                .await
                .map_err(|e| format!("reading a client process: {e}"))?
                .ok_or("a client process ended mid-round")?;
            let part: RoundResult = serde_json::from_str(&line)
                .map_err(|e| format!("a client process's answer {line:?}: {e}"))?;
            total.add(part);
        }
        Ok((start.elapsed(), total))
    }

    /// Ends the processes (end of input) and waits for them.
    pub(crate) async fn finish(self) {
        for (mut child, stdin, _) in self.children {
            drop(stdin);
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}

/// The executable the suite re-runs for its client processes: the given
/// one, else this process's own.
pub(crate) fn client_exe(given: Option<&PathBuf>) -> Result<PathBuf, String> {
    match given {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe().map_err(|e| format!("finding this executable: {e}")),
    }
}

/// Raises the soft open-files limit toward `want` (up to the hard limit).
pub(crate) fn raise_file_limit(want: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    let want = want as u64;
    if lim.current.is_some_and(|c| c < want) {
        let new = lim.maximum.map_or(want, |m| m.min(want));
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(new),
                maximum: lim.maximum,
            },
        );
    }
}
