//! A small client of Chrome's remote debugging protocol (CDP) for the
//! browser test: it launches headless Chromium with a throwaway profile and
//! speaks CDP over the browser's WebSocket with tokio-tungstenite (already a
//! dev-dependency), so the test needs no browser-automation crate and no
//! Node.
//!
//! # Cleanup on every path
//!
//! Chromium runs in its own process group (its zygote, renderers and
//! utility processes inherit it), so the whole browser is killed at once and
//! its profile removed only once none of it can write there any more. `Drop`
//! does that: kill the group (the browser's own pid is not reaped yet, so the
//! group id cannot have been reused), wait until no live process is left in
//! it, reap, remove the profile. If the test process dies without running
//! `Drop` (an abort, a kill), a watchdog `sh` in another process group, which
//! blocks reading a pipe from this process (as brisk-testkit's servers do),
//! reads EOF and does the same. `Drop` first writes `done` to that pipe, so
//! the watchdog then exits without touching anything.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::Ws;

/// How long Chromium gets to print its debugging address.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one CDP command may take (generous: two loaded cores).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How many of Chromium's last stderr lines a failure message shows.
const STDERR_TAIL: usize = 30;

/// The Chromium binary: `BRISK_CHROMIUM` if set, else `chromium` or
/// `chromium-browser` on `PATH` (Debian's package installs
/// `/usr/bin/chromium`).
pub(crate) fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BRISK_CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A running headless Chromium with a throwaway profile, and a CDP
/// connection to it.
pub(crate) struct Chromium {
    child: Child,
    /// Whether `child` has exited and been reaped (by [`Chromium::close`]).
    exited: bool,
    profile: PathBuf,
    /// The write end of the watchdog's stdin; closing it tears down.
    watchdog_pipe: Option<ChildStdin>,
    watchdog: Child,
    stderr: Arc<Mutex<VecDeque<String>>>,
    cdp: Arc<Connection>,
}

impl Chromium {
    /// Starts `binary` headless on a free debugging port and connects to it.
    pub(crate) async fn launch(binary: &Path) -> Result<Self, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let profile = std::env::temp_dir().join(format!(
            "brisk-chromium-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile)
            .map_err(|e| format!("creating the profile directory {}: {e}", profile.display()))?;

        let mut command = Command::new(binary);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--disable-quic",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--no-default-browser-check",
                "--no-proxy-server",
                "--password-store=basic",
                "--hide-scrollbars",
                "--mute-audio",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            // Chromium keeps crash reports and caches under these, not the
            // profile: point them into it, so nothing is left in $HOME.
            .env("XDG_CONFIG_HOME", profile.join("xdg-config"))
            .env("XDG_CACHE_HOME", profile.join("xdg-cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&profile);
                return Err(format!("starting {}: {e}", binary.display()));
            }
        };
        let (watchdog, watchdog_pipe) = match spawn_watchdog(child.id(), &profile) {
            Ok(w) => w,
            Err(e) => {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&profile);
                return Err(e);
            }
        };

        // Chromium prints `DevTools listening on ws://…` on stderr; a thread
        // finds it, then keeps draining stderr (so Chromium never blocks on
        // a full pipe) and keeps the last lines for failure messages.
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (url_tx, url_rx) = oneshot::channel();
        let pipe = child.stderr.take().expect("stderr is piped");
        let tail = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut url_tx = Some(url_tx);
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("DevTools listening on ")
                    && let Some(tx) = url_tx.take()
                {
                    let _ = tx.send(url.trim().to_owned());
                }
                let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                tail.push_back(line);
                if tail.len() > STDERR_TAIL {
                    tail.pop_front();
                }
            }
        });

        // From here on, Drop cleans up whatever fails.
        let mut browser = Self {
            child,
            exited: false,
            profile,
            watchdog_pipe: Some(watchdog_pipe),
            watchdog,
            stderr,
            cdp: Arc::new(Connection::placeholder()),
        };
        let url = match tokio::time::timeout(LAUNCH_TIMEOUT, url_rx).await {
            Ok(Ok(url)) => url,
            Ok(Err(_)) => {
                return Err(format!(
                    "Chromium exited before printing its DevTools address; its stderr:\n{}",
                    browser.stderr_tail()
                ));
            }
            Err(_) => {
                return Err(format!(
                    "Chromium printed no DevTools address within {LAUNCH_TIMEOUT:?}; its stderr:\n{}",
                    browser.stderr_tail()
                ));
            }
        };
        browser.cdp = Arc::new(
            Connection::open(&url)
                .await
                .map_err(|e| format!("{e}; Chromium's stderr:\n{}", browser.stderr_tail()))?,
        );
        Ok(browser)
    }

    /// Chromium's last lines on stderr, for failure messages.
    pub(crate) fn stderr_tail(&self) -> String {
        let tail = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Opens a new tab of `width` × `height` CSS pixels, attached with the
    /// Page, Runtime and Log domains enabled, so its errors are recorded from
    /// the first navigation on.
    pub(crate) async fn new_page(&self, width: u32, height: u32) -> Result<Page, String> {
        let target = self
            .cdp
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await?;
        let target_id = target["targetId"]
            .as_str()
            .ok_or_else(|| format!("Target.createTarget answered {target}"))?;
        let attached = self
            .cdp
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| format!("Target.attachToTarget answered {attached}"))?
            .to_owned();
        let page = Page {
            cdp: Arc::clone(&self.cdp),
            session,
        };
        for domain in ["Page", "Runtime", "Log"] {
            page.call(&format!("{domain}.enable"), json!({})).await?;
        }
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await?;
        Ok(page)
    }
}

impl Chromium {
    /// Closes the browser the polite way (`Browser.close`), so it ends its
    /// own processes and reaps them: killed, they would be left as zombies
    /// where PID 1 reaps nothing, as in many containers. `Drop` then only
    /// removes the profile (and kills whatever did not exit in time).
    pub(crate) async fn close(mut self) {
        let _ = self.cdp.call(None, "Browser.close", json!({})).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                self.exited = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.cdp.close();
        let group = self.child.id();
        // Once the browser is reaped its pid may be reused, but not while a
        // process of its group lives: kill the group only then.
        if !self.exited || group_has_live_process(group) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status();
        }
        if !self.exited {
            let _ = self.child.kill();
        }
        // Renderers and utility processes take a moment to die; until they
        // have, one of them could still write into the profile.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while group_has_live_process(group) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !self.exited {
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
        if let Some(mut pipe) = self.watchdog_pipe.take() {
            let _ = pipe.write_all(b"done\n");
        }
        let _ = self.watchdog.wait();
    }
}

/// Whether a process other than a zombie is in process group `group`.
fn group_has_live_process(group: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1);
        state != Some("Z") && pgrp == Some(group.to_string().as_str())
    })
}

/// A `sh` in its own process group that blocks reading a pipe from this
/// process. Reading EOF without a `done` line first (this process is gone)
/// it kills Chromium's process group, waits for it to empty, and removes the
/// profile directory.
fn spawn_watchdog(group: u32, profile: &Path) -> Result<(Child, ChildStdin), String> {
    // `kill -SIG -PGID` without `--`: dash's `kill` takes no `--`.
    let dir = profile.display().to_string().replace('\'', r"'\''");
    let script = format!(
        "read -r line; [ \"$line\" = done ] && exit 0; \
         kill -KILL -{group} 2>/dev/null; \
         i=0; while kill -0 -{group} 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
         rm -rf '{dir}'"
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting the watchdog sh: {e}"))?;
    let pipe = child.stdin.take().expect("stdin is piped");
    Ok((child, pipe))
}

type Pending = HashMap<u64, oneshot::Sender<Result<Value, String>>>;

/// One CDP WebSocket: commands matched to answers by id, events kept in
/// arrival order.
struct Connection {
    sink: tokio::sync::Mutex<Option<SplitSink<Ws, Message>>>,
    pending: Arc<Mutex<Pending>>,
    events: Arc<Mutex<Vec<Value>>>,
    next_id: AtomicU64,
    reader: Option<JoinHandle<()>>,
}

impl Connection {
    /// A connection that never connected, for a [`Chromium`] being launched.
    fn placeholder() -> Self {
        Self {
            sink: tokio::sync::Mutex::new(None),
            pending: Arc::default(),
            events: Arc::default(),
            next_id: AtomicU64::new(1),
            reader: None,
        }
    }

    async fn open(url: &str) -> Result<Self, String> {
        let (ws, _) = tokio::time::timeout(CALL_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| format!("connecting to DevTools at {url} timed out"))?
            .map_err(|e| format!("connecting to DevTools at {url}: {e}"))?;
        let (sink, mut stream) = ws.split();
        let pending: Arc<Mutex<Pending>> = Arc::default();
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (p, e) = (Arc::clone(&pending), Arc::clone(&events));
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Ok(text) = msg.to_text() else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                if let Some(id) = v["id"].as_u64() {
                    let waiter = p.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
                    if let Some(waiter) = waiter {
                        let answer = match v.get("error") {
                            Some(err) => Err(err.to_string()),
                            None => Ok(v["result"].clone()),
                        };
                        let _ = waiter.send(answer);
                    }
                } else {
                    e.lock().unwrap_or_else(PoisonError::into_inner).push(v);
                }
            }
            // Closed: every waiting call fails now rather than at its timeout.
            p.lock().unwrap_or_else(PoisonError::into_inner).clear();
        });
        Ok(Self {
            sink: tokio::sync::Mutex::new(Some(sink)),
            pending,
            events,
            next_id: AtomicU64::new(1),
            reader: Some(reader),
        })
    }

    /// Sends `method` (to the page `session`, or to the browser) and waits
    /// for its answer.
    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            msg["sessionId"] = json!(session);
        }
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx);
        {
            let mut sink = self.sink.lock().await;
            let sink = sink
                .as_mut()
                .ok_or_else(|| format!("{method}: no DevTools connection"))?;
            sink.send(Message::text(msg.to_string()))
                .await
                .map_err(|e| format!("{method}: sending: {e}"))?;
        }
        match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer.map_err(|e| format!("{method} failed: {e}")),
            Ok(Err(_)) => Err(format!("{method}: the DevTools connection closed")),
            Err(_) => {
                self.pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
                Err(format!("{method}: no answer within {CALL_TIMEOUT:?}"))
            }
        }
    }

    fn close(&self) {
        if let Some(reader) = &self.reader {
            reader.abort();
        }
    }
}

/// One tab, attached through a flat CDP session.
pub(crate) struct Page {
    cdp: Arc<Connection>,
    session: String,
}

impl Page {
    /// Sends a CDP command to this tab.
    pub(crate) async fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        self.cdp.call(Some(&self.session), method, params).await
    }

    /// Navigates to `url`; fails if the navigation itself failed.
    pub(crate) async fn navigate(&self, url: &str) -> Result<(), String> {
        let r = self.call("Page.navigate", json!({"url": url})).await?;
        match r["errorText"].as_str() {
            Some(e) if !e.is_empty() => Err(format!("navigating to {url}: {e}")),
            _ => Ok(()),
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise it returns)
    /// and returns its value as JSON; a thrown exception is an error.
    pub(crate) async fn eval(&self, expression: &str) -> Result<Value, String> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            let what = ex["exception"]["description"]
                .as_str()
                .or_else(|| ex["text"].as_str())
                .unwrap_or("an exception");
            return Err(format!("evaluating `{expression}` threw: {what}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Evaluates `expression` every 250 ms until `done` accepts its value,
    /// and returns that value; panics after `timeout` naming `what`, with the
    /// last value and the page's errors.
    pub(crate) async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        expression: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let last = match self.eval(expression).await {
                Ok(v) if done(&v) => return v,
                other => other,
            };
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; `{expression}` last gave {last:?}; \
                     page errors: {:#?}",
                    self.errors()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The page's uncaught exceptions, `console.error`/`console.assert`
    /// calls and error-level log entries (failed loads, CSP violations), in
    /// order.
    pub(crate) fn errors(&self) -> Vec<String> {
        let events = self.cdp.events.lock().unwrap_or_else(PoisonError::into_inner);
        events
            .iter()
            .filter(|e| e["sessionId"] == self.session.as_str())
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.exceptionThrown" => {
                        let d = &p["exceptionDetails"];
                        Some(format!(
                            "uncaught exception: {} ({}:{})",
                            d["exception"]["description"]
                                .as_str()
                                .or_else(|| d["text"].as_str())
                                .unwrap_or("?"),
                            d["url"].as_str().unwrap_or("?"),
                            d["lineNumber"]
                        ))
                    }
                    "Runtime.consoleAPICalled" if matches!(p["type"].as_str(), Some("error" | "assert")) => {
                        let args: Vec<String> = p["args"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|a| match a.get("value") {
                                Some(Value::String(s)) => s.clone(),
                                Some(v) => v.to_string(),
                                None => a["description"].as_str().unwrap_or("?").to_owned(),
                            })
                            .collect();
                        Some(format!(
                            "console.{}: {}",
                            p["type"].as_str().unwrap_or("?"),
                            args.join(" ")
                        ))
                    }
                    "Log.entryAdded" if p["entry"]["level"] == "error" => Some(format!(
                        "log ({}): {} {}",
                        p["entry"]["source"].as_str().unwrap_or("?"),
                        p["entry"]["text"].as_str().unwrap_or("?"),
                        p["entry"]["url"].as_str().unwrap_or("")
                    )),
                    _ => None,
                }
            })
            .collect()
    }

    /// A PNG of the whole page (beyond the viewport).
    pub(crate) async fn screenshot_png(&self) -> Result<Vec<u8>, String> {
        let metrics = self.call("Page.getLayoutMetrics", json!({})).await?;
        let size = &metrics["cssContentSize"];
        let (width, height) = (
            size["width"].as_f64().unwrap_or(1280.0),
            size["height"].as_f64().unwrap_or(900.0),
        );
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                }),
            )
            .await?;
        let data = shot["data"]
            .as_str()
            .ok_or_else(|| format!("Page.captureScreenshot answered no data: {shot}"))?;
        decode_base64(data)
    }
}

/// Standard base64 (with padding) to bytes; CDP sends screenshots this way.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    fn value(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = value(c).ok_or_else(|| format!("not base64: byte {c:#x}"))?;
            acc |= v << (18 - 6 * i);
        }
        let [_, a, b, c] = acc.to_be_bytes();
        out.extend_from_slice(&[a, b, c][..chunk.len().saturating_sub(1)]);
    }
    Ok(out)
}

#[test]
fn base64_decodes_what_chromium_sends() {
    assert_eq!(decode_base64("").unwrap(), b"");
    assert_eq!(decode_base64("Zg==").unwrap(), b"f");
    assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
    assert_eq!(decode_base64("Zm9v").unwrap(), b"foo");
    assert_eq!(decode_base64("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
    assert!(decode_base64("Zm9v!").is_err());
}
