//! brisk-ws-hub: topic pub/sub over WebSocket for live dashboards and
//! clients, with bounded per-connection queues, serialize-once fan-out,
//! history and recovery, auth, heartbeats, and (feature `redis`) fan-out
//! across processes.
//!
//! - [`Hub`]: topics and connections, independent of the transport.
//!   [`Hub::publish`] encodes a message once and queues the same
//!   [`bytes::Bytes`] for every subscriber; [`Hub::publish_to_user`] and
//!   [`Hub::publish_to_connection`] reach one user or one connection;
//!   [`Hub::subscriber_count`] is presence as a count, [`Hub::presence`]
//!   the optional full list.
//! - [`Connection`]: one client's subscriptions (at most 128 topics by
//!   default) and its bounded send queue, with a [`SlowConsumerPolicy`]:
//!   drop the oldest and tell the client how many it missed, or close it
//!   with 4008 once its queue stays full too long. High-priority messages
//!   go ahead of queued normal ones; queued messages are taken as one
//!   [`Delivery`] batch and written with one vectored write.
//! - History: each topic keeps its last N messages with offsets and an
//!   epoch; [`Connection::subscribe_from`] replays what a reconnecting
//!   client missed, or says [`Recovery::Impossible`].
//! - [`router`] / [`ws_handler`]: the axum transport, speaking the JSON
//!   protocol of `docs/ws-hub.md` (version [`PROTOCOL_VERSION`]), with
//!   heartbeats, an [`Authenticator`] hook ([`JwtAuthenticator`] for HS256),
//!   connection limits, a per-connection inbound rate limit
//!   (brisk-rate-limiter), error replies to bad frames, and graceful
//!   shutdown with close code 1012 ([`Hub::shutdown`]).
//! - [`HubStats`], also through [`brisk_core::StatsSource`]: connections,
//!   subscriptions, queue depth, messages and bytes out, drops, slow
//!   disconnects, delivery latency.
//!
//! # Example
//!
//! The hub without sockets: two subscribers, one slow.
//!
//! ```
//! use brisk_core::Priority;
//! use brisk_ws_hub::{Delivery, Hub, SlowConsumerPolicy};
//!
//! let hub = Hub::builder()
//!     .queue_capacity(2)
//!     .max_batch(2)
//!     .slow_consumer(SlowConsumerPolicy::DropOldest)
//!     .build()?;
//! let mut fast = hub.connect(Some("ann"))?;
//! let mut slow = hub.connect(Some("bob"))?;
//! fast.subscribe("alerts")?;
//! slow.subscribe("alerts")?;
//!
//! for n in 1..=3 {
//!     hub.publish("alerts", &serde_json::json!({"n": n}))?;
//!     let Some(Delivery::Frames(frames)) = fast.try_next_batch() else { panic!() };
//!     assert_eq!(frames.len(), 1); // the fast reader keeps up
//! }
//! hub.publish_with("alerts", &"urgent!", Priority::Urgent)?;
//!
//! // The slow reader's queue held 2: it learns that 2 were dropped, and the
//! // urgent message comes ahead of the normal one still queued.
//! let Some(Delivery::Frames(frames)) = slow.try_next_batch() else { panic!() };
//! let kinds: Vec<serde_json::Value> =
//!     frames.iter().map(|f| serde_json::from_slice(f)).collect::<Result<_, _>>()?;
//! assert_eq!(kinds[0]["type"], "missed");
//! assert_eq!(kinds[0]["count"], 2);
//! assert_eq!(kinds[1]["data"], "urgent!");
//! assert_eq!(kinds[2]["data"]["n"], 3);
//! assert_eq!(hub.subscriber_count("alerts"), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Serving it over WebSocket with axum:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use brisk_ws_hub::{Hub, JwtAuthenticator};
//!
//! let hub = Hub::builder().authenticator(JwtAuthenticator::hs256(b"secret")).build()?;
//! let app = brisk_ws_hub::router(hub.clone(), "/ws");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let shutdown = hub.clone();
//! # drop(stop);
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(async move {
//!         let _ = stopped.await; // a signal handler sends on `stop`
//!         shutdown.shutdown(); // 1012 to every client, after its queue drains
//!         shutdown.drained().await;
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! - `redis`: `RedisFanout`: publishes reach every hub process through Redis; Redis sequences them (one epoch and offset per
//!   topic for all processes) and keeps history in a stream (XADD MAXLEN).
//!   Pulls in the `redis` crate's async client.
//!
//! No feature is on by default: one hub process needs no server.
//!
//! # Implementation notes
//!
//! - **Serialize once.** A topic publish writes the whole WebSocket frame
//!   (header, then `{"v":1,"type":"message",...,"data":...}`) into one
//!   buffer while it holds the topic's sequence lock. The history ring and
//!   every subscriber share that `Bytes`.
//! - **Direct writes.** With the axum transport on a TCP stream, a publish
//!   to a topic of fewer than 1,024 subscribers writes the frame straight
//!   to each socket with nothing queued (a non-blocking write from the
//!   publishing thread: no task wake-up, no copy); bigger topics, and
//!   whatever a socket does not take at once, go through the connections'
//!   tasks, which write each batch with one vectored write.
//! - **Queues.** Each connection's queue is two `VecDeque`s (high, normal)
//!   behind a mutex only the publisher and that connection's writer take.
//!   A publish never waits for a socket; a slow client costs only its own
//!   bounded queue. The writer is woken once per empty-to-non-empty
//!   transition, not per message.
//! - **Ordering.** Messages of one topic reach every queue in offset
//!   order; high-priority messages overtake queued normal ones, so a client
//!   may see offsets out of order across priorities.
//! - **Per-connection memory.** tungstenite's default 128 KiB read buffer
//!   per connection is replaced by 1 KiB (`read_buffer_size`); messages
//!   need no write buffer (the queue and the socket's unwritten rest hold
//!   shared buffers, not copies).
//! - **Heartbeats** run on tokio's timer (tests pause it); the slow-consumer
//!   limit and latency use the hub's [`brisk_core::Clock`].

mod auth;
mod config;
mod error;
mod hub;
mod protocol;
mod queue;
#[cfg(feature = "redis")]
mod redis;
mod stats;
mod transport;
mod wire;

pub use auth::{AuthError, Authenticator, Identity, JwtAuthenticator};
pub use config::{CloseCode, HubBuilder, SlowConsumerPolicy};
pub use error::HubError;
pub use hub::{Connection, ConnectionId, Delivery, Hub, Position, Published, Recovery, Subscribed};
pub use protocol::PROTOCOL_VERSION;
#[cfg(feature = "redis")]
pub use redis::{RedisFanout, RedisFanoutBuilder};
pub use stats::HubStats;
pub use transport::{router, ws_handler};
