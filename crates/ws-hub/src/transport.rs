//! The WebSocket transport on axum: one task per connection, and direct
//! writes from publishers.
//
// The handler does the WebSocket handshake itself (RFC 6455: GET with
// `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and a key) so that,
// after hyper's upgrade, it can take the TCP stream back from hyper and
// share it (wire.rs): publishers write pre-encoded frames to it directly,
// and the connection's task only writes what the socket did not take at
// once. tungstenite, over the same socket, reads the client's frames and
// answers pings and closes. Memory per connection is set deliberately:
// tungstenite's defaults keep a 128 KiB read buffer per connection; the hub
// asks for `read_buffer_size` (1 KiB), writes its own frames without a
// write buffer, and sets the hard frame limit at four times
// `max_message_size`. Any other upgraded I/O (TLS, a server other than
// axum::serve) works too, behind a lock, without the direct writes' speed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use brisk_core::Priority;
use brisk_rate_limiter::RateLimiter;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::auth::Identity;
use crate::config::CloseCode;
use crate::error::HubError;
use crate::hub::{Connection, Recovery, Subscribed};
use crate::protocol::{self, AckValue, Incoming, PROTOCOL_VERSION};
use crate::queue::Flush;
use crate::wire::{Sock, SockIo, Wire};
use crate::{Hub, Position};

/// A [`Router`] serving the hub at `path` (for example `"/ws"`).
///
/// ```
/// let hub = brisk_ws_hub::Hub::builder().build()?;
/// let app: axum::Router = brisk_ws_hub::router(hub.clone(), "/ws");
/// // axum::serve(listener, app).with_graceful_shutdown(async move { ...; hub.shutdown() })
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn router(hub: Hub, path: &str) -> Router {
    Router::new().route(path, get(ws_handler)).with_state(hub)
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": code, "message": message});
    (status, axum::Json(body)).into_response()
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The axum handler behind [`router`], to mount in a router of your own
/// whose state is a [`Hub`].
///
/// Answers a request that is not a WebSocket upgrade (HTTP/1.1 `GET` with
/// `Upgrade: websocket`, version 13 and a key) with a 4xx JSON error,
/// refuses the upgrade with 503 while the hub is full or shutting down,
/// and with 401 when a `token` query parameter fails authentication.
pub async fn ws_handler(
    State(hub): State<Hub>,
    Query(params): Query<HashMap<String, String>>,
    mut req: Request,
) -> Response {
    if req.method() != Method::GET {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "a WebSocket upgrade is a GET",
        );
    }
    let headers = req.headers();
    if !has_token(headers, header::CONNECTION, "upgrade") || !has_token(headers, header::UPGRADE, "websocket")
    {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "expected Connection: upgrade and Upgrade: websocket",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v != "13")
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_websocket_version",
            "Sec-WebSocket-Version must be 13",
        );
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_websocket_key",
            "Sec-WebSocket-Key is missing",
        );
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    if req.extensions().get::<hyper::upgrade::OnUpgrade>().is_none() {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "not_upgradable",
            "this connection cannot be upgraded",
        );
    }
    let c = hub.config();
    if hub.is_shutting_down() || hub.connection_count() >= c.max_connections {
        return (StatusCode::SERVICE_UNAVAILABLE, "hub full or shutting down").into_response();
    }
    let identity = match (&c.authenticator, params.get("token")) {
        (Some(auth), Some(token)) => match auth.authenticate(token) {
            Ok(id) => Some(id),
            Err(e) => return (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
        },
        _ => None,
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let (sock, prefix) = unwrap_io(upgraded, hub.config().send_buffer_size);
        let hard_limit = hub.config().max_message_size.saturating_mul(4);
        let config = WebSocketConfig::default()
            .read_buffer_size(hub.config().read_buffer_size)
            .write_buffer_size(0)
            .max_write_buffer_size(hub.config().write_buffer_size.max(1024))
            .max_message_size(Some(hard_limit))
            .max_frame_size(Some(hard_limit));
        let wire = Arc::new(Wire::new(sock));
        let io = SockIo::new(wire.clone(), &prefix);
        // `prefix` is a slice of hyper's read buffer (8-16 KiB, even when
        // empty): held in this task it would stay allocated for the
        // connection's whole life, doubling its idle memory.
        drop(prefix);
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        serve(hub, wire, ws, identity).await;
    });
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, header::HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, header::HeaderValue::from_static("websocket"));
    if let Ok(v) = header::HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    res
}

/// The TCP stream under hyper's upgrade (`axum::serve` wraps it in one more
/// private layer, which `hyper_util`'s `downcast` sees through), with the
/// bytes hyper had already read past the request; any other I/O as it is.
/// A TCP stream gets `send_buffer` as its `SO_SNDBUF` (0: left alone).
fn unwrap_io(upgraded: hyper::upgrade::Upgraded, send_buffer: usize) -> (Sock, Bytes) {
    let tcp = |io: TokioIo<TcpStream>| {
        let stream = io.into_inner();
        // Messages are small and latency-bound: no Nagle delay.
        let _ = stream.set_nodelay(true);
        if send_buffer > 0 {
            // Bounds the kernel memory a stalled reader holds (and stops
            // autotuning from growing it to megabytes).
            let _ = rustix::net::sockopt::set_socket_send_buffer_size(&stream, send_buffer);
        }
        Sock::Tcp(stream)
    };
    match hyper_util::server::conn::auto::upgrade::downcast::<TokioIo<TcpStream>>(upgraded) {
        Ok(parts) => (tcp(parts.io), parts.read_buf),
        Err(upgraded) => match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => (tcp(parts.io), parts.read_buf),
            Err(upgraded) => (
                Sock::Other(Mutex::new(Box::pin(TokioIo::new(upgraded)))),
                Bytes::new(),
            ),
        },
    }
}

type Ws = WebSocketStream<SockIo>;

async fn close(ws: &mut Ws, code: CloseCode, write_timeout: Duration) {
    let frame = CloseFrame {
        code: code.code().into(),
        reason: Utf8Bytes::from_static(code.reason()),
    };
    let _ = timeout(write_timeout, ws.close(Some(frame))).await;
}

fn text(frame: Bytes) -> Message {
    // Every frame the hub builds is JSON written by serde_json: UTF-8.
    match Utf8Bytes::try_from(frame) {
        Ok(t) => Message::Text(t),
        Err(_) => Message::Text(Utf8Bytes::from_static(
            r#"{"v":1,"type":"error","code":"internal"}"#,
        )),
    }
}

async fn serve(hub: Hub, wire: Arc<Wire>, mut ws: Ws, identity: Option<Identity>) {
    let write_timeout = hub.config().write_timeout;
    let identity = match (&hub.config().authenticator, identity) {
        (None, _) => None,
        (Some(_), Some(id)) => Some(id),
        (Some(_), None) => match authenticate(&hub, &mut ws).await {
            Ok(id) => Some(id),
            Err(code) => return close(&mut ws, code, write_timeout).await,
        },
    };
    let conn = match hub.connect(identity.as_ref().map(|i| i.user.as_str())) {
        Ok(conn) => conn,
        Err(e) => {
            let code = match e {
                HubError::TooManyConnectionsForUser { .. } => CloseCode::TooManyForUser,
                HubError::ShuttingDown => CloseCode::Restart,
                _ => CloseCode::TryAgainLater,
            };
            return close(&mut ws, code, write_timeout).await;
        }
    };
    conn.attach(wire);
    let can_publish = identity
        .as_ref()
        .map_or(hub.config().client_publish, |i| i.can_publish);
    conn.push_reply(&protocol::welcome_frame(conn.id(), conn.user()), true);
    let code = Session::new(conn, can_publish).run(&mut ws).await;
    if let Some(code) = code {
        close(&mut ws, code, write_timeout).await;
    }
}

async fn authenticate(hub: &Hub, ws: &mut Ws) -> Result<Identity, CloseCode> {
    let c = hub.config();
    let Some(auth) = c.authenticator.clone() else {
        return Err(CloseCode::Unauthenticated);
    };
    let deadline = Instant::now() + c.auth_timeout;
    let mut violations = 0;
    loop {
        let msg = match timeout(deadline.saturating_duration_since(Instant::now()), ws.next()).await {
            Ok(Some(Ok(msg))) => msg,
            Ok(_) => return Err(CloseCode::Normal),
            Err(_) => return Err(CloseCode::Unauthenticated),
        };
        let Message::Text(t) = msg else { continue };
        let token = serde_json::from_str::<Incoming<'_>>(&t)
            .ok()
            .filter(|m| m.kind == "auth")
            .and_then(|m| m.token.map(std::borrow::Cow::into_owned));
        match token {
            Some(token) => {
                return auth.authenticate(&token).map_err(|_| CloseCode::Unauthenticated);
            }
            None => {
                violations += 1;
                let frame =
                    protocol::error_frame("unauthenticated", "send {\"type\":\"auth\",\"token\":...} first");
                if violations >= c.max_violations || ws.send(text(frame)).await.is_err() {
                    return Err(CloseCode::Unauthenticated);
                }
            }
        }
    }
}

struct Session {
    conn: Connection,
    can_publish: bool,
    limiter: Option<RateLimiter>,
    violations: u32,
}

enum Step {
    Continue,
    Close(CloseCode),
    Gone,
}

impl Session {
    fn new(conn: Connection, can_publish: bool) -> Self {
        let c = conn.hub().config();
        let limiter = RateLimiter::builder()
            .quota(c.inbound_quota.clone())
            .clock(c.clock.clone())
            .build()
            .ok();
        Self {
            conn,
            can_publish,
            limiter,
            violations: 0,
        }
    }

    /// Runs until the connection ends; returns the close code to send, if
    /// the socket is still there to send it.
    async fn run(mut self, ws: &mut Ws) -> Option<CloseCode> {
        let (ping_interval, pong_timeout, write_timeout) = {
            let c = self.conn.hub().config();
            (c.ping_interval, c.pong_timeout, c.write_timeout)
        };
        let mut last_heard = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        let mut deadline = last_heard + ping_interval;
        // One timer for the connection's life, moved only when the
        // deadline changes.
        let sleep = sleep_until(deadline);
        tokio::pin!(sleep);
        loop {
            let next = match ping_sent {
                Some(at) => at + pong_timeout,
                None => last_heard + ping_interval,
            };
            if next != deadline {
                deadline = next;
                sleep.as_mut().reset(deadline);
            }
            tokio::select! {
                flushed = writer(&self.conn, write_timeout) => match flushed {
                    Flush::Closed(code) => return Some(code),
                    Flush::Failed | Flush::Idle => return None,
                },
                msg = ws.next() => {
                    let Some(Ok(msg)) = msg else { return None };
                    last_heard = Instant::now();
                    ping_sent = None;
                    match self.on_message(msg).await {
                        Step::Continue => {}
                        Step::Close(code) => return Some(code),
                        Step::Gone => return None,
                    }
                }
                () = &mut sleep => {
                    if ping_sent.is_some() {
                        let hub = self.conn.hub();
                        hub.inner.counters.heartbeat_timeouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        return Some(CloseCode::HeartbeatTimeout);
                    }
                    ping_sent = Some(Instant::now());
                    let ping = ws.send(Message::Ping(Bytes::new()));
                    if !matches!(timeout(write_timeout, ping).await, Ok(Ok(()))) {
                        return None;
                    }
                }
            }
        }
    }

    fn violation(&mut self, code: &str, message: &str) -> Step {
        self.violations += 1;
        self.conn
            .hub()
            .inner
            .counters
            .violations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.conn.push_reply(&protocol::error_frame(code, message), true);
        if self.violations >= self.conn.hub().config().max_violations {
            Step::Close(CloseCode::Policy)
        } else {
            Step::Continue
        }
    }

    async fn on_message(&mut self, msg: Message) -> Step {
        let t = match msg {
            Message::Text(t) => t,
            Message::Binary(_) => return self.violation("binary_unsupported", "the protocol is JSON text"),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Step::Continue,
            Message::Close(_) => return Step::Gone,
        };
        let max = self.conn.hub().config().max_message_size;
        if t.len() > max {
            return self.violation(
                "too_big",
                &format!("message of {} bytes over the limit of {max}", t.len()),
            );
        }
        if let Some(limiter) = &self.limiter
            && limiter.check(1).is_err()
        {
            return self.violation("rate_limited", "too many messages, slow down");
        }
        let m = match serde_json::from_str::<Incoming<'_>>(&t) {
            Ok(m) => m,
            Err(e) => return self.violation("bad_json", &e.to_string()),
        };
        if m.v.is_some_and(|v| v != PROTOCOL_VERSION) {
            return self.violation("unsupported_version", "this hub speaks protocol version 1");
        }
        match m.kind.as_ref() {
            "subscribe" | "recover" => self.subscribe(&m),
            "unsubscribe" => {
                let Some(topic) = m.topic.as_deref() else {
                    return self.violation("bad_request", "unsubscribe needs a topic");
                };
                let _ = self.conn.unsubscribe(topic);
                self.conn
                    .push_reply(&protocol::ack_frame("unsubscribed", topic, &[]), false);
                Step::Continue
            }
            "publish" => self.publish(&m).await,
            "ping" => {
                self.conn.push_reply(&protocol::simple_frame("pong", m.id), true);
                Step::Continue
            }
            "auth" => self.violation("bad_request", "already authenticated"),
            other => {
                let other = other.chars().take(32).collect::<String>();
                self.violation("unknown_type", &format!("unknown message type {other:?}"))
            }
        }
    }

    fn subscribe(&mut self, m: &Incoming<'_>) -> Step {
        let Some(topic) = m.topic.as_deref() else {
            return self.violation("bad_request", "subscribe needs a topic");
        };
        let result = match (m.epoch.as_deref(), m.offset) {
            (Some(epoch), Some(offset)) => self.conn.subscribe_from(topic, epoch, offset),
            _ => self.conn.subscribe(topic),
        };
        match result {
            Ok(Subscribed {
                position,
                subscribers,
                recovery,
            }) => {
                let Position { epoch, offset } = position;
                match recovery {
                    Some(Recovery::Impossible { now }) => {
                        let fields = [
                            ("epoch", AckValue::Str(&now.epoch)),
                            ("offset", AckValue::Num(now.offset)),
                        ];
                        self.conn
                            .push_reply(&protocol::ack_frame("recovery_impossible", topic, &fields), false);
                    }
                    Some(Recovery::Recovered { count }) => {
                        let fields = [("count", AckValue::Num(count as u64))];
                        self.conn
                            .push_reply(&protocol::ack_frame("recovered", topic, &fields), false);
                    }
                    None => {}
                }
                let fields = [
                    ("epoch", AckValue::Str(&epoch)),
                    ("offset", AckValue::Num(offset)),
                    ("subscribers", AckValue::Num(subscribers as u64)),
                ];
                self.conn
                    .push_reply(&protocol::ack_frame("subscribed", topic, &fields), false);
                Step::Continue
            }
            Err(e) => {
                self.conn
                    .push_reply(&protocol::error_frame(error_code(&e), &e.to_string()), true);
                Step::Continue
            }
        }
    }

    async fn publish(&mut self, m: &Incoming<'_>) -> Step {
        if !self.can_publish {
            self.conn.push_reply(
                &protocol::error_frame("forbidden", "this connection may not publish"),
                true,
            );
            return Step::Continue;
        }
        let (Some(topic), Some(data)) = (m.topic.as_deref(), m.data) else {
            return self.violation("bad_request", "publish needs a topic and data");
        };
        let priority = match m.priority.as_deref().map(str::parse::<Priority>) {
            None => Priority::Normal,
            Some(Ok(p)) => p,
            Some(Err(e)) => return self.violation("bad_request", &e.to_string()),
        };
        match self.conn.hub().publish_raw(topic, data, priority).await {
            Ok(p) => {
                let fields = [("offset", AckValue::Num(p.offset))];
                self.conn
                    .push_reply(&protocol::ack_frame("published", topic, &fields), false);
            }
            Err(e) => {
                self.conn
                    .push_reply(&protocol::error_frame(error_code(&e), &e.to_string()), true);
            }
        }
        Step::Continue
    }
}

fn error_code(e: &HubError) -> &'static str {
    match e {
        HubError::TooManyTopicsForConnection { .. } | HubError::TooManyTopics { .. } => "too_many_topics",
        HubError::InvalidTopic { .. } => "invalid_topic",
        HubError::Fanout(_) => "fanout_failed",
        _ => "error",
    }
}

/// The connection's writer: whenever something is queued, writes it (the
/// socket's pending bytes first, then batches from the queue). Returns
/// when the hub closed the connection and everything is written, or when
/// the socket fails or takes nothing for `write_timeout`.
async fn writer(conn: &Connection, write_timeout: Duration) -> Flush {
    loop {
        match timeout(write_timeout, std::future::poll_fn(|cx| conn.poll_flush(cx))).await {
            Ok(Flush::Idle) => conn.queued().await,
            Ok(done) => return done,
            Err(_) => return Flush::Failed,
        }
    }
}
