//! `brisk-load ws`: idle connections and broadcast latency against a
//! brisk-ws-hub server (protocol v1, see docs/ws-hub.md).
//
// One process may hold at most 20,000 open files here, so a run is capped
// at 18,000 connections. Loopback has one destination address, and each
// (source, destination) pair has ~28k ephemeral ports, so connections are
// spread over the source addresses 127.0.0.2, 127.0.0.3, ... (10,000 each
// by default). Each client connection keeps a 512-byte read buffer instead
// of tungstenite's 128 KiB, so 15,000 of them fit in the load process; it is
// also cheaper per message than a larger one, since tungstenite zero-fills
// its whole buffer before every read (at 4 KiB that memset was 18% of the
// client's CPU in a 15,000-subscriber broadcast).
//
// Beyond one process (`client_processes`), a broadcast's reading
// connections are opened by child processes (see ws_clients.rs), and may
// go to several targets (hubs joined by Redis): connection i goes to
// target i mod n, the publisher to the first. Each message carries its
// publish time as wall-clock nanoseconds since the epoch (`t_ns`), so that
// any process on the machine can compute its delivery latency.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::engine::histogram;

mod clients;

use crate::report::{Percentiles, Summary, Verdict, WindowReport, WsReport};
use crate::{LoadError, Report, Sla, StopSignal, Target};
pub use clients::run_ws_client;

/// The most connections one process opens (a process may hold 20,000
/// files); a broadcast with client processes opens at most this many in
/// each.
pub const MAX_CONNECTIONS: usize = 18_000;

/// The most client processes a broadcast starts.
pub const MAX_CLIENT_PROCESSES: usize = 32;

/// The hub's default inbound limit (20 messages/s) as a spacing: one
/// publisher connection sends at most once per this.
const PUBLISH_SPACING: Duration = Duration::from_millis(50);

/// The most publisher connections a broadcast uses (so `--interval` ≥ 1 ms).
const MAX_PUBLISHERS: usize = 50;

type Ws = WebSocketStream<TcpStream>;

/// A configured WebSocket run against a brisk-ws-hub endpoint.
///
/// ```no_run
/// use std::time::Duration;
/// use brisk_load::{Target, WsRun};
///
/// # async fn demo() -> Result<(), brisk_load::LoadError> {
/// let run = WsRun::new(Target::parse("ws://127.0.0.1:9001/ws", false)?).connections(1_000);
/// let report = run.broadcast(10, Duration::from_secs(1), Duration::from_secs(3)).await?;
/// println!("{}", report.to_table());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct WsRun {
    targets: Vec<Target>,
    connections: usize,
    per_source: usize,
    topic: String,
    topics: usize,
    stats_path: Option<String>,
    settle: Duration,
    connect_timeout: Duration,
    sla: Sla,
    stop: StopSignal,
    slow_readers: usize,
    payload_bytes: usize,
    client_processes: usize,
    client_exe: Option<PathBuf>,
}

/// The receive buffer a slow reader asks for (the kernel doubles it), so
/// that its backlog reaches the server's queue after a few messages.
const SLOW_RCVBUF: u32 = 4096;

/// Each client connection's read buffer (see the top of this file).
const CLIENT_READ_BUFFER: usize = 512;

/// How often the server's stats are sampled during a broadcast.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// How long a broadcast waits for the hub to confirm its subscriptions.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
struct Incoming<'a> {
    // Borrowed: no allocation per frame read (the hub never escapes it).
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    data: Option<Payload>,
    #[serde(default)]
    count: Option<u64>,
}

#[derive(Deserialize)]
struct Payload {
    seq: Option<u32>,
    /// The publish time: wall-clock nanoseconds since the Unix epoch.
    t_ns: Option<u64>,
}

/// What one reading connection saw (sent from a client process to the
/// parent as JSON).
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct ConnResult {
    /// (seq, latency µs) of every delivery.
    pub(crate) deliveries: Vec<(u32, u64)>,
    pub(crate) missed: u64,
    /// Whether the hub confirmed the subscription.
    pub(crate) subscribed: bool,
    /// The connection's topic number (see [`WsRun::topics`]).
    #[serde(default)]
    pub(crate) topic: u32,
}

/// The reading connections of one process, opened and subscribing.
pub(crate) struct Readers {
    tasks: Vec<tokio::task::JoinHandle<ConnResult>>,
    /// How many the hub has confirmed so far.
    pub(crate) subscribed: Arc<AtomicU64>,
    /// How many failed to open.
    pub(crate) failed: u64,
    /// The first failure's reason.
    pub(crate) first_error: Option<String>,
    stop: StopSignal,
}

impl Readers {
    /// How many opened.
    pub(crate) fn opened(&self) -> u64 {
        self.tasks.len() as u64
    }

    /// Stops every connection and returns what each saw.
    pub(crate) async fn finish(self) -> Vec<ConnResult> {
        self.stop.stop();
        let mut results = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            results.push(t.await.unwrap_or_default());
        }
        results
    }
}

/// Now as wall-clock nanoseconds since the Unix epoch (the same clock in
/// every process on the machine).
fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl WsRun {
    /// A run against `target` (`ws://127.0.0.1:PORT/ws`).
    #[must_use]
    pub fn new(target: Target) -> Self {
        Self {
            targets: vec![target],
            connections: 1_000,
            per_source: 10_000,
            topic: "bench".to_owned(),
            topics: 1,
            stats_path: Some("/stats".to_owned()),
            settle: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(10),
            sla: Sla {
                p99_ms: 50.0,
                max_error_rate: 0.0,
            },
            stop: StopSignal::new(),
            slow_readers: 0,
            payload_bytes: 0,
            client_processes: 0,
            client_exe: None,
        }
    }

    /// Several targets instead of the one given to [`WsRun::new`]:
    /// connection i goes to `targets[i % targets.len()]`, and a broadcast
    /// publishes to the first (so the others receive through whatever
    /// joins the hubs, such as Redis fan-out). Server stats are read from
    /// each. Must not be empty.
    #[must_use]
    pub fn targets(mut self, targets: Vec<Target>) -> Self {
        self.targets = targets;
        self
    }

    /// The targets.
    #[must_use]
    pub fn target_list(&self) -> &[Target] {
        &self.targets
    }

    /// For `broadcast`: open the reading connections from this many child
    /// processes (this executable re-run with the hidden `ws-client`
    /// subcommand), each with an even share of at most
    /// [`MAX_CONNECTIONS`], so a run may exceed one process's open-files
    /// limit. The publisher and any slow readers stay in this process.
    /// Default 0: every connection in this process.
    #[must_use]
    pub fn client_processes(mut self, n: usize) -> Self {
        self.client_processes = n;
        self
    }

    /// The executable the client processes run (it must have the
    /// `ws-client` subcommand, as `brisk-load` does). Default: this
    /// process's own executable.
    #[must_use]
    pub fn client_exe(mut self, exe: impl Into<PathBuf>) -> Self {
        self.client_exe = Some(exe.into());
        self
    }

    /// Connections that subscribe, wait for the acknowledgement and then
    /// never read their socket again (with 4 KiB receive buffers), opened
    /// beside the reading ones. Their deliveries are not counted; the
    /// report says how many subscribed and what the server's queues and
    /// RSS did meanwhile. Default 0.
    #[must_use]
    pub fn slow_readers(mut self, n: usize) -> Self {
        self.slow_readers = n;
        self
    }

    /// Pads each published message's data with this many bytes (a
    /// `"pad"` string), so slow readers' socket buffers fill sooner.
    /// Default 0.
    #[must_use]
    pub fn payload_bytes(mut self, n: usize) -> Self {
        self.payload_bytes = n;
        self
    }

    /// The number of connections. Default 1,000; at most 18,000.
    #[must_use]
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = n;
        self
    }

    /// Connections per loopback source address (127.0.0.2, .3, ...).
    /// Default 10,000.
    #[must_use]
    pub fn per_source(mut self, n: usize) -> Self {
        self.per_source = n;
        self
    }

    /// The topic to subscribe and publish to. Default `bench`.
    #[must_use]
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = topic.into();
        self
    }

    /// Spread a broadcast over `n` topics: with `n` > 1, connection i
    /// subscribes to `{topic}-{i mod n}` and message k goes to
    /// `{topic}-{k mod n}`, so each message is expected by the connections
    /// of its topic only (loss and duplicates are counted that way).
    /// Default 1: every connection on [`topic`](Self::topic).
    #[must_use]
    pub fn topics(mut self, n: usize) -> Self {
        self.topics = n;
        self
    }

    /// The topic number of connection (or message) `i`.
    fn topic_index(&self, i: usize) -> u32 {
        u32::try_from(i % self.topics.max(1)).unwrap_or(0)
    }

    /// The name of topic number `k`.
    fn topic_name(&self, k: u32) -> String {
        if self.topics <= 1 {
            self.topic.clone()
        } else {
            format!("{}-{k}", self.topic)
        }
    }

    /// The server's stats path for RSS (JSON with `rss_bytes`, as the
    /// `ws_hub` example serves, or Prometheus text with
    /// `process_resident_memory_bytes`); `None` to skip. Default `/stats`.
    #[must_use]
    pub fn stats_path(mut self, path: Option<String>) -> Self {
        self.stats_path = path;
        self
    }

    /// How long to wait after opening before reading the idle RSS.
    /// Default 3 s.
    #[must_use]
    pub fn settle(mut self, d: Duration) -> Self {
        self.settle = d;
        self
    }

    /// The SLA for delivery latency and loss. Default p99 ≤ 50 ms, no loss.
    #[must_use]
    pub fn sla(mut self, sla: Sla) -> Self {
        self.sla = sla;
        self
    }

    /// A signal that stops the run early (Ctrl-C).
    #[must_use]
    pub fn stop_signal(mut self, stop: StopSignal) -> Self {
        self.stop = stop;
        self
    }

    /// The connections this process opens itself (the rest are in client
    /// processes).
    fn local_connections(&self) -> usize {
        if self.client_processes == 0 {
            self.connections
        } else {
            0
        }
    }

    fn validate(&self) -> Result<(), LoadError> {
        if self.targets.is_empty() {
            return Err(LoadError::setting("--target", "give at least one target"));
        }
        if self.client_processes > MAX_CLIENT_PROCESSES {
            return Err(LoadError::setting(
                "--client-processes",
                format!(
                    "must be 0 to {MAX_CLIENT_PROCESSES}, got {}",
                    self.client_processes
                ),
            ));
        }
        if self.client_processes > 0 && self.targets.iter().any(|t| !crate::is_loopback(&t.addr())) {
            // The client processes accept loopback targets only.
            return Err(LoadError::setting(
                "--client-processes",
                "works with loopback targets only",
            ));
        }
        if self.client_processes == 0 && !(1..=MAX_CONNECTIONS).contains(&self.connections) {
            return Err(LoadError::setting(
                "--connections",
                format!(
                    "must be 1 to {MAX_CONNECTIONS} in one process (a process may hold at most 20,000 open files; use --client-processes for more), got {}",
                    self.connections
                ),
            ));
        }
        if self.client_processes > 0
            && (self.connections < self.client_processes
                || self.connections.div_ceil(self.client_processes) > MAX_CONNECTIONS)
        {
            return Err(LoadError::setting(
                "--connections",
                format!(
                    "must be {} to {} with {} client processes (at most {MAX_CONNECTIONS} each), got {}",
                    self.client_processes,
                    self.client_processes * MAX_CONNECTIONS,
                    self.client_processes,
                    self.connections
                ),
            ));
        }
        if self.local_connections() + self.slow_readers > MAX_CONNECTIONS {
            return Err(LoadError::setting(
                "--slow-readers",
                format!(
                    "the connections this process opens (--slow-readers, plus --connections without client processes) must be at most {MAX_CONNECTIONS}, got {}",
                    self.local_connections() + self.slow_readers
                ),
            ));
        }
        if !(1..=10_000).contains(&self.topics) {
            return Err(LoadError::setting(
                "--topics",
                format!("must be 1 to 10,000, got {}", self.topics),
            ));
        }
        if self.payload_bytes > 60_000 {
            return Err(LoadError::setting(
                "--payload-bytes",
                "must be at most 60,000 (the hub's message limit is 64 KiB)",
            ));
        }
        if !(1..=30_000).contains(&self.per_source) {
            return Err(LoadError::setting("--per-source", "must be 1 to 30,000"));
        }
        if (self.connections + self.slow_readers + MAX_PUBLISHERS).div_ceil(self.per_source) > 250 {
            return Err(LoadError::setting(
                "--per-source",
                "too small: more than 250 source addresses",
            ));
        }
        crate::fanout::raise_file_limit(self.local_connections() + self.slow_readers + 512);
        Ok(())
    }

    /// One server's RSS and stats document, from its stats path.
    async fn read_rss(&self, target: &Target) -> (Option<f64>, Option<serde_json::Value>) {
        let Some(path) = &self.stats_path else {
            return (None, None);
        };
        let Ok((200, body)) = crate::client::get(target.addr(), target.authority(), path).await else {
            return (None, None);
        };
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
            return (v.get("rss_bytes").and_then(serde_json::Value::as_f64), Some(v));
        }
        (
            crate::metrics::prometheus_value(
                &String::from_utf8_lossy(&body),
                "process_resident_memory_bytes",
            ),
            None,
        )
    }

    /// Every target's RSS and stats: the sum of the RSS (`None` unless
    /// every server gave one), each server's, and the stats document (the
    /// server's own with one target, an array of them with several).
    async fn read_rss_all(&self) -> (Option<f64>, Vec<Option<f64>>, Option<serde_json::Value>) {
        let mut each = Vec::with_capacity(self.targets.len());
        let mut docs = Vec::with_capacity(self.targets.len());
        for t in &self.targets {
            let (rss, doc) = self.read_rss(t).await;
            each.push(rss);
            docs.push(doc);
        }
        let sum = each.iter().try_fold(0.0, |acc, r| r.map(|r| acc + r));
        let stats = if docs.len() == 1 {
            docs.pop().flatten()
        } else if docs.iter().any(Option::is_some) {
            Some(serde_json::Value::Array(
                docs.into_iter()
                    .map(|d| d.unwrap_or(serde_json::Value::Null))
                    .collect(),
            ))
        } else {
            None
        };
        (sum, each, stats)
    }

    /// The target of connection `i`.
    fn target_of(&self, i: usize) -> &Target {
        &self.targets[i % self.targets.len()]
    }

    /// The targets as one string (comma-separated).
    fn targets_text(&self) -> String {
        self.targets
            .iter()
            .map(Target::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Opens connections `range` (their index picks the source address),
    /// with `rcvbuf` as their receive buffer when given, and hands each to
    /// `each` as soon as it is open (so it is read from then on: a
    /// connection left unread while thousands more open would miss the
    /// hub's heartbeat). Returns what `each` returned, the count that
    /// failed, and the first failure's reason.
    async fn open_range<T>(
        &self,
        range: std::ops::Range<usize>,
        source_base: usize,
        rcvbuf: Option<u32>,
        mut each: impl FnMut(usize, Ws) -> T,
    ) -> (Vec<T>, u64, Option<String>) {
        let mut open = Vec::with_capacity(range.len());
        let mut failed = 0;
        let mut first_error = None;
        let batch = 200;
        let mut start = range.start;
        while start < range.end && !self.stop.is_stopped() {
            let end = (start + batch).min(range.end);
            let results = futures_util::future::join_all((start..end).map(|i| {
                tokio::time::timeout(
                    self.connect_timeout,
                    self.open_with(self.target_of(i), i, source_base, rcvbuf),
                )
            }))
            .await;
            for (i, r) in (start..end).zip(results) {
                match r {
                    Ok(Ok(ws)) => open.push(each(i, ws)),
                    Ok(Err(e)) => {
                        failed += 1;
                        first_error.get_or_insert(e);
                    }
                    Err(_) => {
                        failed += 1;
                        first_error.get_or_insert_with(|| "timed out".to_owned());
                    }
                }
            }
            start = end;
        }
        (open, failed, first_error)
    }

    /// The first source address's last octet for this run: 2 onward, at a
    /// random offset, so that back-to-back runs do not reuse the ports the
    /// previous run left in `TIME_WAIT` (~28k per source address).
    fn source_base(&self) -> usize {
        let blocks = (self.connections + self.slow_readers + MAX_PUBLISHERS).div_ceil(self.per_source);
        2 + fastrand::usize(0..=252usize.saturating_sub(blocks))
    }

    async fn open_with(
        &self,
        target: &Target,
        i: usize,
        source_base: usize,
        rcvbuf: Option<u32>,
    ) -> Result<Ws, String> {
        let addr = target.addr();
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| e.to_string())?;
        // Back-to-back runs leave tens of thousands of client ports in
        // TIME_WAIT; SO_REUSEADDR lets bind() take them again (Linux reuses
        // TIME_WAIT tuples on loopback, tcp_tw_reuse's default).
        socket.set_reuseaddr(true).map_err(|e| e.to_string())?;
        if let Some(size) = rcvbuf {
            // Before connect, so the window the client offers starts small.
            socket.set_recv_buffer_size(size).map_err(|e| e.to_string())?;
        }
        if let IpAddr::V4(ip) = addr.ip()
            && ip.is_loopback()
        {
            let n =
                u8::try_from(source_base + i / self.per_source).map_err(|_| "too many source addresses")?;
            socket
                .bind(SocketAddr::new(Ipv4Addr::new(127, 0, 0, n).into(), 0))
                .map_err(|e| e.to_string())?;
        }
        let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let url = format!("ws://{}{}", target.authority(), target.base_path());
        let config = WebSocketConfig::default()
            .read_buffer_size(CLIENT_READ_BUFFER)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .map_err(|e| e.to_string())?;
        Ok(ws)
    }

    fn base_report(&self, mode: &str) -> Report {
        Report {
            kind: "ws".to_owned(),
            scenario: mode.to_owned(),
            target: self.targets_text(),
            sla: self.sla,
            ..Report::default()
        }
    }

    /// `idle`: opens the connections, waits `settle`, and reports the
    /// server's RSS growth per connection (from the stats path).
    ///
    /// # Errors
    ///
    /// [`LoadError::Setting`] for out-of-range settings.
    pub async fn idle(&self) -> Result<Report, LoadError> {
        self.validate()?;
        if self.client_processes > 0 {
            return Err(LoadError::setting(
                "--client-processes",
                "is for broadcast; idle opens its connections in this process",
            ));
        }
        let started = Instant::now();
        let (rss_before, _, _) = self.read_rss_all().await;
        let local = StopSignal::new();
        let (tasks, failed, first_error) = self
            .open_range(0..self.connections, self.source_base(), None, |_, ws| {
                tokio::spawn(pump(ws, None, Arc::new(AtomicU64::new(0)), local.clone()))
            })
            .await;
        let opened = tasks.len() as u64;
        tokio::select! {
            () = tokio::time::sleep(self.settle) => {}
            () = self.stop.stopped() => {}
        }
        let (rss_after, _, stats) = self.read_rss_all().await;
        local.stop();
        for t in tasks {
            let _ = t.await;
        }
        let mut report = self.base_report("idle");
        if let Some(e) = first_error {
            report
                .notes
                .push(format!("{failed} connections failed to open; the first: {e}"));
        }
        report.partial = self.stop.is_stopped();
        if report.partial {
            report
                .notes
                .push("stopped early (Ctrl-C or --max-time): a partial report".to_owned());
        }
        report.summary.duration_s = started.elapsed().as_secs_f64();
        report.summary.planned = self.connections as u64;
        report.summary.completed = opened;
        report.summary.ok = opened;
        report.summary.errors = failed;
        report.summary.error_rate = ratio(failed, self.connections as u64);
        report.verdict = if failed == 0 && !report.partial {
            Verdict {
                pass: true,
                reasons: Vec::new(),
            }
        } else {
            Verdict {
                pass: false,
                reasons: vec![format!("{failed} connections failed to open")],
            }
        };
        if rss_before.is_none() {
            report
                .notes
                .push("no server RSS: the stats path is absent or has no rss_bytes".to_owned());
        }
        #[allow(clippy::cast_precision_loss)]
        let growth = match (rss_before, rss_after) {
            (Some(b), Some(a)) if opened > 0 => Some((a - b) / opened as f64),
            _ => None,
        };
        report.ws = Some(WsReport {
            mode: "idle".to_owned(),
            connections: self.connections as u64,
            opened,
            failed,
            rss_before_bytes: rss_before,
            rss_after_bytes: rss_after,
            rss_growth_per_connection_bytes: growth,
            server_stats: stats,
            ..WsReport::default()
        });
        Ok(report)
    }

    /// Opens reading connections `range` in this process, each subscribing
    /// to the topic and recording its deliveries until [`Readers::finish`].
    async fn open_readers(&self, range: std::ops::Range<usize>, source_base: usize) -> Readers {
        let stop = StopSignal::new();
        let subscribed = Arc::new(AtomicU64::new(0));
        let (tasks, failed, first_error) = self
            .open_range(range, source_base, None, |i, ws| {
                let k = self.topic_index(i);
                tokio::spawn(pump(
                    ws,
                    Some((self.topic_name(k), k)),
                    Arc::clone(&subscribed),
                    stop.clone(),
                ))
            })
            .await;
        Readers {
            tasks,
            subscribed,
            failed,
            first_error,
            stop,
        }
    }

    /// Waits until each counter reaches its goal: [`SUBSCRIBE_WAIT`] at
    /// most, or until the stop signal.
    async fn wait_subscribed(&self, counters: &[(&AtomicU64, u64)]) {
        let until = Instant::now() + SUBSCRIBE_WAIT;
        while counters.iter().any(|(c, want)| c.load(Ordering::Relaxed) < *want)
            && Instant::now() < until
            && !self.stop.is_stopped()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `broadcast`: subscribes every connection to the topic, publishes
    /// `messages` messages `interval` apart from one more connection to the
    /// first target (each with a sequence number and its wall-clock send
    /// time), waits `drain`, and reports delivery latency percentiles, loss
    /// and duplicates. With [`client_processes`](Self::client_processes),
    /// the reading connections are opened and read by child processes,
    /// which send their deliveries back at the end.
    ///
    /// # Errors
    ///
    /// [`LoadError::Setting`] for out-of-range settings;
    /// [`LoadError::Io`] when a client process cannot be started or fails.
    pub async fn broadcast(
        &self,
        messages: u32,
        interval: Duration,
        drain: Duration,
    ) -> Result<Report, LoadError> {
        self.validate()?;
        if !(1..=100_000).contains(&messages) {
            return Err(LoadError::setting("--messages", "must be 1 to 100,000"));
        }
        if interval < Duration::from_millis(1) {
            return Err(LoadError::setting("--interval", "must be at least 1 ms"));
        }
        // The hub's default inbound limit is 20 messages/s per connection:
        // below 50 ms, publish round-robin from enough connections that each
        // stays at or under it.
        let publishers = usize::try_from(PUBLISH_SPACING.as_nanos().div_ceil(interval.as_nanos()))
            .unwrap_or(MAX_PUBLISHERS)
            .clamp(1, MAX_PUBLISHERS);
        if publishers == MAX_PUBLISHERS && interval * 50 < PUBLISH_SPACING {
            return Err(LoadError::setting(
                "--interval",
                "must be at least 1 ms (50 publishers at 20 messages/s each)",
            ));
        }
        let started = Instant::now();
        let mut notes = Vec::new();
        let source_base = self.source_base();
        let local = StopSignal::new();
        // The reading connections: in this process, or in client processes
        // (which wait for their subscriptions before they say they are ready).
        let (readers, clients) = if self.client_processes == 0 {
            (
                Some(self.open_readers(0..self.connections, source_base).await),
                None,
            )
        } else {
            let child_error = |e: String| LoadError::io("the ws client processes", std::io::Error::other(e));
            let exe = crate::fanout::client_exe(self.client_exe.as_ref()).map_err(child_error)?;
            let clients = clients::WsClients::start(&exe, self, source_base)
                .await
                .map_err(child_error)?;
            notes.push(format!(
                "{} client processes opened the reading connections",
                clients.len()
            ));
            (None, Some(clients))
        };
        // Slow readers: subscribed, then never read (their deliveries pile
        // up in their socket buffers, then in the server's queue).
        let slow_range = self.connections..self.connections + self.slow_readers;
        let slow_subscribed = Arc::new(AtomicU64::new(0));
        let (slow_tasks, slow_failed, slow_error) = self
            .open_range(slow_range, source_base, Some(SLOW_RCVBUF), |i, ws| {
                tokio::spawn(stall(
                    ws,
                    self.topic_name(self.topic_index(i)),
                    Arc::clone(&slow_subscribed),
                    local.clone(),
                ))
            })
            .await;
        if let Some(e) = slow_error {
            notes.push(format!(
                "{slow_failed} slow readers failed to open; the first: {e}"
            ));
        }
        let slow_want = slow_tasks.len() as u64;
        let ready = match (&readers, &clients) {
            (Some(r), _) => {
                self.wait_subscribed(&[(&r.subscribed, r.opened()), (&slow_subscribed, slow_want)])
                    .await;
                clients::Ready {
                    opened: r.opened(),
                    subscribed: r.subscribed.load(Ordering::Relaxed),
                    failed: r.failed,
                    first_error: r.first_error.clone(),
                }
            }
            (None, Some(c)) => {
                self.wait_subscribed(&[(&slow_subscribed, slow_want)]).await;
                c.ready.clone()
            }
            (None, None) => clients::Ready::default(),
        };
        if let Some(e) = &ready.first_error {
            notes.push(format!(
                "{} connections failed to open; the first: {e}",
                ready.failed
            ));
        }
        let subs = ready.subscribed;
        let mut failed = ready.failed + (ready.opened - subs);
        let mut published = 0u32;
        let mut sent_us: Vec<u64> = Vec::with_capacity(messages as usize);
        let publish_start = started.elapsed();
        let mut sinks = Vec::with_capacity(publishers);
        let mut drains = Vec::with_capacity(publishers);
        for k in 0..publishers {
            match self
                .open_with(
                    &self.targets[0],
                    self.connections + self.slow_readers + k,
                    source_base,
                    None,
                )
                .await
            {
                Ok(ws) => {
                    // Each publisher's acknowledgements are read (and
                    // dropped) by a task of its own.
                    let (sink, mut stream) = ws.split();
                    let stop = local.clone();
                    drains.push(tokio::spawn(async move {
                        loop {
                            tokio::select! {
                                m = stream.next() => if m.is_none() { break },
                                () = stop.stopped() => break,
                            }
                        }
                    }));
                    sinks.push(sink);
                }
                Err(e) => {
                    failed += 1;
                    notes.push(format!("a publisher could not connect: {e}"));
                }
            }
        }
        if publishers > 1 {
            notes.push(format!(
                "{} publisher connections, round-robin (each at most 20 messages/s)",
                sinks.len()
            ));
        }
        let pad = "x".repeat(self.payload_bytes);
        // Every server's stats once a second while publishing and
        // draining: the peak RSS and queue depth (with slow readers, their
        // backlog).
        let sampler = {
            let run = self.clone();
            let stop = local.clone();
            tokio::spawn(async move {
                let mut samples = vec![Vec::new(); run.targets.len()];
                loop {
                    for (t, out) in run.targets.iter().zip(&mut samples) {
                        if let (_, Some(v)) = run.read_rss(t).await {
                            out.push(v);
                        }
                    }
                    tokio::select! {
                        () = tokio::time::sleep(STATS_EVERY) => {}
                        () = stop.stopped() => break,
                    }
                }
                samples
            })
        };
        if sinks.len() == publishers {
            let mut tick = tokio::time::interval(interval);
            // Late ticks are not bunched up: no publisher goes over its rate.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while published < messages && !self.stop.is_stopped() {
                tokio::select! {
                    _ = tick.tick() => {
                        let t_ns = wall_ns();
                        let data = if pad.is_empty() {
                            serde_json::json!({"seq": published, "t_ns": t_ns})
                        } else {
                            serde_json::json!({"seq": published, "t_ns": t_ns, "pad": pad})
                        };
                        let topic = self.topic_name(self.topic_index(published as usize));
                        let msg = serde_json::json!({
                            "v": 1, "type": "publish", "topic": topic, "data": data,
                        });
                        let sink = &mut sinks[published as usize % publishers];
                        if sink.send(Message::text(msg.to_string())).await.is_err() {
                            notes.push("a publisher's connection closed".to_owned());
                            break;
                        }
                        sent_us.push(t_ns / 1_000);
                        published += 1;
                    }
                    () = self.stop.stopped() => break,
                }
            }
            tokio::select! {
                () = tokio::time::sleep(drain) => {}
                () = self.stop.stopped() => {}
            }
        }
        // The servers as they stand after the drain, every connection still open.
        let (rss, each_rss, stats) = self.read_rss_all().await;
        for mut sink in sinks {
            let _ = sink.close().await;
        }
        local.stop();
        for d in drains {
            let _ = d.await;
        }
        let samples = sampler.await.unwrap_or_default();
        for t in slow_tasks {
            let _ = t.await;
        }
        let results = match (readers, clients) {
            (Some(r), _) => r.finish().await,
            (None, Some(c)) => c
                .finish()
                .await
                .map_err(|e| LoadError::io("the ws client processes", std::io::Error::other(e)))?,
            (None, None) => Vec::new(),
        };
        for (i, (target, samples)) in self.targets.iter().zip(&samples).enumerate() {
            let peak = |key: &str| {
                samples
                    .iter()
                    .filter_map(|v| v.get(key).and_then(serde_json::Value::as_f64))
                    .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
            };
            let Some(peak_rss) = peak("rss_bytes") else {
                continue;
            };
            let mut note = if self.targets.len() == 1 {
                "server during the run".to_owned()
            } else {
                format!("server {}", target.as_str())
            };
            let _ = write!(
                note,
                " ({} samples): peak RSS {:.1} MB, peak queued {} messages",
                samples.len(),
                peak_rss / 1e6,
                peak("queued").unwrap_or(0.0)
            );
            if self.targets.len() > 1
                && let Some(Some(after)) = each_rss.get(i)
            {
                let _ = write!(note, "; RSS after the drain {:.1} MB", after / 1e6);
            }
            notes.push(note);
        }
        if self.slow_readers > 0 {
            let count =
                |key: &str| stat_sum(stats.as_ref(), key).map_or_else(|| "?".to_owned(), |v| format!("{v}"));
            notes.push(format!(
                "{} slow readers opened, {} subscribed, then never read (4 KiB receive buffers, not counted in deliveries); after the drain the server had {} connections, {} drops, {} slow disconnects, {} queued",
                slow_want,
                slow_subscribed.load(Ordering::Relaxed),
                count("connections"),
                count("drops"),
                count("slow_disconnects"),
                count("queued"),
            ));
        }
        let mut report = self.broadcast_report(
            &results,
            subs,
            failed,
            &sent_us,
            interval,
            started.elapsed() - publish_start,
            rss,
            stats,
        );
        report.notes.extend(notes);
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    fn broadcast_report(
        &self,
        results: &[ConnResult],
        subs: u64,
        failed: u64,
        sent_us: &[u64],
        interval: Duration,
        elapsed: Duration,
        rss: Option<f64>,
        stats: Option<serde_json::Value>,
    ) -> Report {
        let published = u32::try_from(sent_us.len()).unwrap_or(u32::MAX);
        // The delivery window: from the first publish to the last delivery.
        let mut last_arrival_us = 0u64;
        let mut all = histogram(3);
        let mut per_msg: Vec<Histogram<u64>> = (0..published).map(|_| histogram(2)).collect();
        let mut delivered_per_msg = vec![0u64; published as usize];
        let (mut delivered, mut lost, mut duplicated, mut missed) = (0u64, 0u64, 0u64, 0u64);
        let mut seen = vec![false; published as usize];
        // Message k goes to topic k mod topics: the messages each topic's
        // subscribers expect, and the subscribers each topic has.
        let topics = self.topics.max(1);
        let mut msgs_of_topic = vec![0u64; topics];
        for k in 0..published as usize {
            msgs_of_topic[k % topics] += 1;
        }
        let mut subs_of_topic = vec![0u64; topics];
        let mut misrouted = 0u64;
        // Connections that never subscribed are counted as failed, not as
        // losing every message.
        for r in results.iter().filter(|r| r.subscribed) {
            let topic = r.topic as usize % topics;
            subs_of_topic[topic] += 1;
            seen.iter_mut().for_each(|s| *s = false);
            let mut distinct = 0u64;
            for &(seq, us) in &r.deliveries {
                let Some(slot) = seen.get_mut(seq as usize) else {
                    continue;
                };
                delivered += 1;
                if *slot || seq as usize % topics != topic {
                    // A second copy, or a message of another topic.
                    misrouted += u64::from(!*slot);
                    duplicated += 1;
                    continue;
                }
                *slot = true;
                distinct += 1;
                last_arrival_us = last_arrival_us.max(sent_us[seq as usize] + us);
                all.saturating_record(us.max(1));
                per_msg[seq as usize].saturating_record(us.max(1));
                delivered_per_msg[seq as usize] += 1;
            }
            lost += msgs_of_topic[topic] - distinct;
            missed += r.missed;
        }

        let mut report = self.base_report("broadcast");
        if misrouted > 0 {
            report.notes.push(format!(
                "{misrouted} deliveries of a topic the connection had not subscribed to (counted as duplicated)"
            ));
        }
        if topics > 1 {
            report.notes.push(format!(
                "{topics} topics: connection i subscribed to {}-(i mod {topics}), message k went to {}-(k mod {topics})",
                self.topic, self.topic
            ));
        }
        report.partial = self.stop.is_stopped();
        if report.partial {
            report
                .notes
                .push("stopped early (Ctrl-C or --max-time): a partial report".to_owned());
        }
        let latency = Percentiles::of(&all);
        let planned: u64 = subs_of_topic.iter().zip(&msgs_of_topic).map(|(s, m)| s * m).sum();
        let error_rate = ratio(lost, planned);
        let duration_s = elapsed.as_secs_f64();
        // Deliveries per second over the delivery window (first publish to
        // last delivery), not over the run with its drain wait.
        #[allow(clippy::cast_precision_loss)]
        let window_s = sent_us
            .first()
            .map_or(0.0, |first| last_arrival_us.saturating_sub(*first) as f64 / 1e6);
        #[allow(clippy::cast_precision_loss)]
        let throughput = if window_s > 0.0 {
            delivered as f64 / window_s
        } else {
            0.0
        };
        report.notes.push(format!(
            "{delivered} deliveries in {window_s:.3} s from the first publish to the last delivery: {throughput:.0} deliveries/s"
        ));
        report.summary = Summary {
            planned,
            completed: delivered,
            ok: delivered - duplicated,
            errors: lost,
            error_rate,
            duration_s,
            throughput_rps: throughput,
            latency_ms: latency,
            service_ms: latency,
            statuses: [
                ("delivered", delivered),
                ("lost", lost),
                ("duplicated", duplicated),
                ("missed", missed),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            by_request: std::collections::BTreeMap::new(),
        };
        report.verdict = Verdict::check(&self.sla, latency.p99, error_rate, delivered);
        if duplicated > 0 {
            report.verdict.pass = false;
            report
                .verdict
                .reasons
                .push(format!("{duplicated} duplicated deliveries"));
        }
        if failed > 0 {
            report
                .notes
                .push(format!("{failed} connections failed to open or subscribe"));
        }
        report.window_s = interval.as_secs_f64();
        report.windows = per_msg
            .iter()
            .zip(&delivered_per_msg)
            .enumerate()
            .map(|(i, (h, &n))| {
                let p = Percentiles::of(h);
                let some = !h.is_empty();
                let want = subs_of_topic[i % topics];
                #[allow(clippy::cast_precision_loss)]
                WindowReport {
                    t_s: i as f64 * interval.as_secs_f64(),
                    target_rps: want as f64 / interval.as_secs_f64(),
                    completed_rps: n as f64 / interval.as_secs_f64(),
                    errors: want.saturating_sub(n),
                    p50_ms: some.then_some(p.p50),
                    p99_ms: some.then_some(p.p99),
                    max_ms: some.then_some(p.max),
                }
            })
            .collect();
        report.ws = Some(WsReport {
            mode: "broadcast".to_owned(),
            connections: self.connections as u64,
            opened: subs,
            failed,
            messages: u64::from(published),
            delivered,
            lost,
            duplicated,
            missed,
            rss_after_bytes: rss,
            server_stats: stats,
            ..WsReport::default()
        });
        report
    }
}

/// A stats key summed over the servers: `stats` is one server's document,
/// or an array of them.
fn stat_sum(stats: Option<&serde_json::Value>, key: &str) -> Option<u64> {
    match stats? {
        serde_json::Value::Array(docs) => docs
            .iter()
            .map(|d| d.get(key).and_then(serde_json::Value::as_u64))
            .sum(),
        doc => doc.get(key).and_then(serde_json::Value::as_u64),
    }
}

#[allow(clippy::cast_precision_loss)]
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Reads one connection until `stop`: subscribes first when given a topic,
/// answers pings (tungstenite does on read), and records deliveries.
async fn pump(
    mut ws: Ws,
    topic: Option<(String, u32)>,
    subscribed: Arc<AtomicU64>,
    stop: StopSignal,
) -> ConnResult {
    let mut out = ConnResult::default();
    if let Some((topic, k)) = &topic {
        out.topic = *k;
        let sub = serde_json::json!({"v": 1, "type": "subscribe", "topic": topic});
        if ws.send(Message::text(sub.to_string())).await.is_err() {
            return out;
        }
    }
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            () = stop.stopped() => break,
        };
        let Some(Ok(msg)) = msg else { break };
        let Message::Text(text) = msg else { continue };
        if topic.is_none() {
            continue;
        }
        let now = wall_ns();
        let Ok(m) = serde_json::from_str::<Incoming<'_>>(text.as_str()) else {
            continue;
        };
        match m.kind.as_ref() {
            "message" => {
                if let Some(Payload {
                    seq: Some(seq),
                    t_ns: Some(t),
                }) = m.data
                {
                    out.deliveries.push((seq, now.saturating_sub(t) / 1_000));
                }
            }
            "subscribed" => {
                subscribed.fetch_add(1, Ordering::Relaxed);
                out.subscribed = true;
            }
            "missed" => out.missed += m.count.unwrap_or(0),
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    out
}

/// A slow reader: subscribes, reads until the acknowledgement, then never
/// reads again until `stop` (and then drops the socket without a close
/// handshake, which would need reading).
async fn stall(mut ws: Ws, topic: String, subscribed: Arc<AtomicU64>, stop: StopSignal) {
    let sub = serde_json::json!({"v": 1, "type": "subscribe", "topic": topic});
    if ws.send(Message::text(sub.to_string())).await.is_err() {
        return;
    }
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            () = stop.stopped() => return,
        };
        let text = match msg {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return,
        };
        if serde_json::from_str::<Incoming<'_>>(text.as_str()).is_ok_and(|m| m.kind == "subscribed") {
            subscribed.fetch_add(1, Ordering::Relaxed);
            break;
        }
    }
    stop.stopped().await;
    drop(ws);
}
