//! The WebSocket transport on axum: one task per connection.
//
// Each connection is one task that selects over three things: its send
// queue (a batch of frames is fed to the socket and flushed once, so
// everything queued goes out in as few writes as the write buffer allows),
// the client's frames, and its heartbeat deadline. Memory per connection is
// set deliberately: tungstenite's defaults keep a 128 KiB read buffer per
// connection; the hub asks for `read_buffer_size` (1 KiB) and a
// `write_buffer_size` of 8 KiB, with the hard frame limit at four times
// `max_message_size`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use brisk_core::Priority;
use brisk_rate_limiter::RateLimiter;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, sleep_until, timeout};

use crate::auth::Identity;
use crate::config::CloseCode;
use crate::error::HubError;
use crate::hub::{Connection, Delivery, Recovery, Subscribed};
use crate::protocol::{self, AckValue, Incoming, PROTOCOL_VERSION};
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

/// The axum handler behind [`router`], to mount in a router of your own
/// whose state is a [`Hub`].
///
/// Refuses the upgrade with 503 while the hub is full or shutting down,
/// and with 401 when a `token` query parameter fails authentication.
pub async fn ws_handler(
    State(hub): State<Hub>,
    Query(params): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
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
    let hard_limit = c.max_message_size.saturating_mul(4);
    ws.read_buffer_size(c.read_buffer_size)
        .write_buffer_size(c.write_buffer_size)
        .max_write_buffer_size(c.write_buffer_size.max(hard_limit).saturating_mul(2))
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| serve(hub, socket, identity))
}

type Tx = SplitSink<WebSocket, Message>;
type Rx = SplitStream<WebSocket>;

async fn close(tx: &mut Tx, code: CloseCode) {
    let frame = CloseFrame {
        code: code.code(),
        reason: Utf8Bytes::from_static(code.reason()),
    };
    let _ = tx.send(Message::Close(Some(frame))).await;
    let _ = tx.close().await;
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

async fn serve(hub: Hub, socket: WebSocket, identity: Option<Identity>) {
    let (mut tx, mut rx) = socket.split();
    let identity = match (&hub.config().authenticator, identity) {
        (None, _) => None,
        (Some(_), Some(id)) => Some(id),
        (Some(_), None) => match authenticate(&hub, &mut tx, &mut rx).await {
            Ok(id) => Some(id),
            Err(code) => return close(&mut tx, code).await,
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
            return close(&mut tx, code).await;
        }
    };
    let can_publish = identity
        .as_ref()
        .map_or(hub.config().client_publish, |i| i.can_publish);
    conn.push_reply(protocol::welcome_frame(conn.id(), conn.user()), true);
    let code = Session::new(conn, can_publish).run(&mut tx, &mut rx).await;
    if let Some(code) = code {
        close(&mut tx, code).await;
    }
}

async fn authenticate(hub: &Hub, tx: &mut Tx, rx: &mut Rx) -> Result<Identity, CloseCode> {
    let c = hub.config();
    let Some(auth) = c.authenticator.clone() else {
        return Err(CloseCode::Unauthenticated);
    };
    let deadline = Instant::now() + c.auth_timeout;
    let mut violations = 0;
    loop {
        let msg = match timeout(deadline.saturating_duration_since(Instant::now()), rx.next()).await {
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
                if violations >= c.max_violations || tx.send(text(frame)).await.is_err() {
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
    async fn run(mut self, tx: &mut Tx, rx: &mut Rx) -> Option<CloseCode> {
        let (ping_interval, pong_timeout, write_timeout) = {
            let c = self.conn.hub().config();
            (c.ping_interval, c.pong_timeout, c.write_timeout)
        };
        let mut last_heard = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        loop {
            let deadline = match ping_sent {
                Some(at) => at + pong_timeout,
                None => last_heard + ping_interval,
            };
            tokio::select! {
                delivery = self.conn.next_batch() => match delivery {
                    Delivery::Frames(frames) => {
                        if !write_batch(tx, frames, write_timeout).await {
                            return None;
                        }
                    }
                    Delivery::Closed(code) => return Some(code),
                },
                msg = rx.next() => {
                    let Some(Ok(msg)) = msg else { return None };
                    last_heard = Instant::now();
                    ping_sent = None;
                    match self.on_message(msg).await {
                        Step::Continue => {}
                        Step::Close(code) => return Some(code),
                        Step::Gone => return None,
                    }
                }
                () = sleep_until(deadline) => {
                    if ping_sent.is_some() {
                        let hub = self.conn.hub();
                        hub.inner.counters.heartbeat_timeouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        return Some(CloseCode::HeartbeatTimeout);
                    }
                    ping_sent = Some(Instant::now());
                    let ping = tx.send(Message::Ping(Bytes::new()));
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
        self.conn.push_reply(protocol::error_frame(code, message), true);
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
            Message::Ping(_) | Message::Pong(_) => return Step::Continue,
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
                    .push_reply(protocol::ack_frame("unsubscribed", topic, &[]), false);
                Step::Continue
            }
            "publish" => self.publish(&m).await,
            "ping" => {
                self.conn.push_reply(protocol::simple_frame("pong", m.id), true);
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
                            .push_reply(protocol::ack_frame("recovery_impossible", topic, &fields), false);
                    }
                    Some(Recovery::Recovered { count }) => {
                        let fields = [("count", AckValue::Num(count as u64))];
                        self.conn
                            .push_reply(protocol::ack_frame("recovered", topic, &fields), false);
                    }
                    None => {}
                }
                let fields = [
                    ("epoch", AckValue::Str(&epoch)),
                    ("offset", AckValue::Num(offset)),
                    ("subscribers", AckValue::Num(subscribers as u64)),
                ];
                self.conn
                    .push_reply(protocol::ack_frame("subscribed", topic, &fields), false);
                Step::Continue
            }
            Err(e) => {
                self.conn
                    .push_reply(protocol::error_frame(error_code(&e), &e.to_string()), true);
                Step::Continue
            }
        }
    }

    async fn publish(&mut self, m: &Incoming<'_>) -> Step {
        if !self.can_publish {
            self.conn.push_reply(
                protocol::error_frame("forbidden", "this connection may not publish"),
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
                    .push_reply(protocol::ack_frame("published", topic, &fields), false);
            }
            Err(e) => {
                self.conn
                    .push_reply(protocol::error_frame(error_code(&e), &e.to_string()), true);
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

async fn write_batch(tx: &mut Tx, frames: Vec<Bytes>, write_timeout: Duration) -> bool {
    let write = async {
        for frame in frames {
            tx.feed(text(frame)).await?;
        }
        tx.flush().await
    };
    matches!(timeout(write_timeout, write).await, Ok(Ok(())))
}
