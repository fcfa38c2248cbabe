//! The transport-independent hub: topics, connections, publish, history.
//
// Locks, always taken in this order: a topic's `log` (its sequence and
// history), then its `subs`, then a connection's outbox. A publish holds the
// topic's log while it fans out, so messages of one topic reach every queue
// in offset order, and a subscribe-with-recovery holds it while it replays
// history and joins, so nothing falls between the two and nothing comes
// twice. Topics are independent: publishes to different topics run in
// parallel. The registry of connections (by id and by user) has its own
// mutex, taken only on connect, disconnect and direct publishes.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use brisk_core::Priority;
use bytes::Bytes;
use hashbrown::{HashMap, HashSet};
use serde::Serialize;
use tokio::sync::watch;

use crate::config::{CloseCode, HubBuilder, HubConfig};
use crate::error::HubError;
use crate::protocol::{self, Frame, check_topic};
use crate::queue::{Outbox, Pushed};
use crate::stats::Counters;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Topics with fewer subscribers than this are written to directly by the
/// publisher (see `queue.rs`); bigger ones through the connections' tasks.
/// Measured on 2 cores: one loopback socket write costs ~10 µs of kernel
/// time, so one thread writing to 15,000 sockets is slower than two worker
/// threads doing it, and per-message writes cannot coalesce under load.
const DIRECT_WRITES_BELOW: usize = 1024;
type Set<K> = HashSet<K, foldhash::fast::RandomState>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(PoisonError::into_inner)
}
fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(PoisonError::into_inner)
}

/// Where a topic stands: its epoch and the offset of its last message.
///
/// Offsets start at 1 within an epoch; `offset` 0 means nothing was
/// published yet. A new epoch (the topic was created again, or its history
/// was reset) makes every older position unrecoverable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The topic's epoch, an opaque string.
    pub epoch: String,
    /// The offset of the last message published (0: none yet).
    pub offset: u64,
}

/// What a subscription with recovery found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recovery {
    /// This many missed messages were queued ahead of new ones.
    Recovered {
        /// Messages replayed from history.
        count: usize,
    },
    /// The client's position is gone (another epoch, or older than the
    /// history keeps): it must reload the topic's state from elsewhere.
    Impossible {
        /// Where the topic stands now, to resume from after the reload.
        now: Position,
    },
}

/// What a successful subscribe returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribed {
    /// Where the topic stood when the subscription began: messages after
    /// `position.offset` will be delivered.
    pub position: Position,
    /// Subscribers of the topic, this one included.
    pub subscribers: usize,
    /// With [`Connection::subscribe_from`]: what recovery found.
    pub recovery: Option<Recovery>,
}

/// The result of a topic publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The message's offset in its topic.
    pub offset: u64,
    /// Connections it was queued for in this process.
    pub delivered: usize,
    /// With a cross-process fan-out: true when Redis was unreachable and
    /// the message reached this process's subscribers only.
    pub local_only: bool,
}

/// A connection's id, unique within a hub.
pub type ConnectionId = u64;

#[derive(Debug)]
struct Log {
    epoch: String,
    last: u64,
    history: VecDeque<(u64, Frame)>,
}

#[derive(Debug)]
struct Topic {
    name: Arc<str>,
    log: Mutex<Log>,
    subs: RwLock<Map<ConnectionId, Arc<ConnShared>>>,
}

#[derive(Debug)]
pub(crate) struct ConnShared {
    pub(crate) id: ConnectionId,
    pub(crate) user: Option<Arc<str>>,
    pub(crate) outbox: Outbox,
    topics: Mutex<Set<Arc<str>>>,
}

#[derive(Debug, Default)]
struct Registry {
    conns: Map<ConnectionId, Arc<ConnShared>>,
    users: Map<Arc<str>, Vec<ConnectionId>>,
}

pub(crate) struct Inner {
    pub(crate) config: HubConfig,
    pub(crate) counters: Counters,
    topics: RwLock<Map<Arc<str>, Arc<Topic>>>,
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
    pub(crate) shutdown: watch::Sender<bool>,
    #[cfg(feature = "redis")]
    pub(crate) fanout: std::sync::OnceLock<Arc<crate::redis::FanoutShared>>,
}

/// The hub: topics, connections and their queues. Cheap to clone (an
/// `Arc`); every clone is the same hub.
///
/// ```
/// use brisk_ws_hub::{Delivery, Hub};
///
/// let hub = Hub::builder().build()?;
/// let mut alice = hub.connect(Some("alice"))?;
/// alice.subscribe("alerts")?;
/// let published = hub.publish("alerts", &serde_json::json!({"level": "high"}))?;
/// assert_eq!(published.delivered, 1);
/// let Some(Delivery::Frames(frames)) = alice.try_next_batch() else { panic!() };
/// let msg: serde_json::Value = serde_json::from_slice(&frames[0])?;
/// assert_eq!(msg["data"]["level"], "high");
/// assert_eq!(msg["offset"], published.offset);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("connections", &self.inner.counters.connections.load(Relaxed))
            .field("topics", &self.topic_count())
            .finish_non_exhaustive()
    }
}

fn new_epoch() -> String {
    format!("{:016x}", fastrand::u64(..))
}

impl Hub {
    /// A builder with the defaults it documents.
    pub fn builder() -> HubBuilder {
        HubBuilder::default()
    }

    pub(crate) fn from_config(config: HubConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                counters: Counters::default(),
                topics: RwLock::new(Map::default()),
                registry: Mutex::new(Registry::default()),
                next_id: AtomicU64::new(1),
                shutting_down: AtomicBool::new(false),
                shutdown: watch::channel(false).0,
                #[cfg(feature = "redis")]
                fanout: std::sync::OnceLock::new(),
            }),
        }
    }

    pub(crate) fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    pub(crate) fn now(&self) -> Instant {
        self.inner.config.clock.now()
    }

    /// Registers a connection, for `user` when it is known.
    ///
    /// The transport calls this for each WebSocket; call it directly to
    /// drive the hub without sockets (tests, benchmarks, other transports).
    /// Dropping the [`Connection`] unsubscribes it and frees its queue.
    ///
    /// # Errors
    ///
    /// [`HubError::TooManyConnections`], [`HubError::TooManyConnectionsForUser`],
    /// [`HubError::ShuttingDown`].
    pub fn connect(&self, user: Option<&str>) -> Result<Connection, HubError> {
        let c = &self.inner.config;
        if self.inner.shutting_down.load(Relaxed) {
            return Err(HubError::ShuttingDown);
        }
        let mut reg = lock(&self.inner.registry);
        if reg.conns.len() >= c.max_connections {
            return Err(HubError::TooManyConnections {
                limit: c.max_connections,
            });
        }
        let user: Option<Arc<str>> = user.map(Arc::from);
        if let Some(u) = &user {
            let n = reg.users.get(u).map_or(0, Vec::len);
            if n >= c.max_connections_per_user {
                return Err(HubError::TooManyConnectionsForUser {
                    user: u.to_string(),
                    limit: c.max_connections_per_user,
                });
            }
        }
        let id = self.inner.next_id.fetch_add(1, Relaxed);
        let shared = Arc::new(ConnShared {
            id,
            user: user.clone(),
            outbox: Outbox::new(c.queue_capacity, c.slow_consumer),
            topics: Mutex::new(Set::default()),
        });
        reg.conns.insert(id, shared.clone());
        if let Some(u) = user {
            reg.users.entry(u).or_default().push(id);
        }
        drop(reg);
        self.inner.counters.connections.fetch_add(1, Relaxed);
        Ok(Connection {
            shared,
            hub: self.clone(),
        })
    }

    fn remove(&self, conn: &ConnShared) {
        let topics: Vec<Arc<str>> = lock(&conn.topics).drain().collect();
        for name in &topics {
            if let Some(topic) = self.topic(name) {
                write(&topic.subs).remove(&conn.id);
            }
        }
        self.inner
            .counters
            .subscriptions
            .fetch_sub(topics.len() as u64, Relaxed);
        let mut reg = lock(&self.inner.registry);
        reg.conns.remove(&conn.id);
        if let Some(u) = &conn.user
            && let Some(ids) = reg.users.get_mut(u)
        {
            ids.retain(|&i| i != conn.id);
            if ids.is_empty() {
                reg.users.remove(u);
            }
        }
        drop(reg);
        conn.outbox.clear();
        self.inner.counters.connections.fetch_sub(1, Relaxed);
    }

    fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        read(&self.inner.topics).get(name).cloned()
    }

    fn topic_or_create(&self, name: &str) -> Result<Arc<Topic>, HubError> {
        if let Some(t) = self.topic(name) {
            return Ok(t);
        }
        check_topic(name).map_err(|reason| HubError::InvalidTopic {
            topic: name.to_string(),
            reason: reason.into(),
        })?;
        let mut topics = write(&self.inner.topics);
        if let Some(t) = topics.get(name) {
            return Ok(t.clone());
        }
        if topics.len() >= self.inner.config.max_topics {
            return Err(HubError::TooManyTopics {
                limit: self.inner.config.max_topics,
            });
        }
        let name: Arc<str> = Arc::from(name);
        let topic = Arc::new(Topic {
            name: name.clone(),
            log: Mutex::new(Log {
                epoch: new_epoch(),
                last: 0,
                history: VecDeque::new(),
            }),
            subs: RwLock::new(Map::default()),
        });
        topics.insert(name, topic.clone());
        Ok(topic)
    }

    /// Messages waiting in all queues (a lock per connection: for stats).
    pub(crate) fn queued(&self) -> usize {
        let conns: Vec<Arc<ConnShared>> = lock(&self.inner.registry).conns.values().cloned().collect();
        conns.iter().map(|c| c.outbox.depth()).sum()
    }

    pub(crate) fn topic_count(&self) -> usize {
        read(&self.inner.topics).len()
    }

    /// Connections open now.
    #[must_use]
    pub fn connection_count(&self) -> usize {
        lock(&self.inner.registry).conns.len()
    }

    /// Subscribers of `topic` in this process (presence as a count: cheap
    /// at any size).
    #[must_use]
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.topic(topic).map_or(0, |t| read(&t.subs).len())
    }

    /// The full presence list of `topic`: each subscriber's connection id
    /// and user. Costs O(subscribers) and a copy; fine for rooms, not for
    /// topics with thousands of subscribers.
    #[must_use]
    pub fn presence(&self, topic: &str) -> Vec<(ConnectionId, Option<String>)> {
        self.topic(topic).map_or_else(Vec::new, |t| {
            read(&t.subs)
                .values()
                .map(|c| (c.id, c.user.as_deref().map(str::to_string)))
                .collect()
        })
    }

    /// Where `topic` stands, or `None` if the hub does not hold it.
    #[must_use]
    pub fn position(&self, topic: &str) -> Option<Position> {
        self.topic(topic).map(|t| {
            let log = lock(&t.log);
            Position {
                epoch: log.epoch.clone(),
                offset: log.last,
            }
        })
    }

    /// Publishes `data` (encoded as JSON once) to every subscriber of
    /// `topic`, at normal priority.
    ///
    /// # Errors
    ///
    /// [`HubError::InvalidTopic`], [`HubError::TooManyTopics`] (a new
    /// topic over the limit), [`HubError::Encode`].
    pub fn publish<T: Serialize + ?Sized>(&self, topic: &str, data: &T) -> Result<Published, HubError> {
        self.publish_with(topic, data, Priority::Normal)
    }

    /// As [`publish`](Self::publish), at `priority`: [`Priority::High`] and
    /// [`Priority::Urgent`] go ahead of queued normal messages.
    ///
    /// # Errors
    ///
    /// As [`publish`](Self::publish).
    pub fn publish_with<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        data: &T,
        priority: Priority,
    ) -> Result<Published, HubError> {
        let t = self.topic_or_create(topic)?;
        let mut log = lock(&t.log);
        let offset = log.last + 1;
        let mut buf = Frame::buffer(128);
        protocol::message_head(&mut buf, &t.name, Some((&log.epoch, offset)));
        serde_json::to_writer(&mut buf, data).map_err(|e| HubError::Encode(e.to_string()))?;
        buf.push(b'}');
        log.last = offset;
        let delivered = self.append_and_fan_out(&t, &mut log, offset, &Frame::seal(buf), priority);
        Ok(Published {
            offset,
            delivered,
            local_only: false,
        })
    }

    /// Local delivery while the fan-out is down: under a local epoch, so
    /// no offset collides with the shared sequencer's.
    #[cfg(feature = "redis")]
    pub(crate) fn publish_local_epoch(
        &self,
        topic: &str,
        data: &str,
        priority: Priority,
    ) -> Result<Published, HubError> {
        let t = self.topic_or_create(topic)?;
        {
            let mut log = lock(&t.log);
            if !log.epoch.starts_with("local-") {
                log.epoch = format!("local-{}", new_epoch());
                log.history.clear();
                log.last = 0;
            }
        }
        let mut p = self.publish_json(topic, data, priority)?;
        p.local_only = true;
        Ok(p)
    }

    /// Publishes already-encoded JSON `data` to `topic`.
    ///
    /// # Errors
    ///
    /// As [`publish`](Self::publish), and [`HubError::Encode`] if `data`
    /// is not valid JSON.
    pub fn publish_json(&self, topic: &str, data: &str, priority: Priority) -> Result<Published, HubError> {
        let raw = serde_json::value::RawValue::from_string(data.to_string())
            .map_err(|e| HubError::Encode(e.to_string()))?;
        self.publish_with(topic, &raw, priority)
    }

    /// A client's publish: through the cross-process fan-out when one is
    /// attached, locally otherwise.
    pub(crate) async fn publish_raw(
        &self,
        topic: &str,
        data: &serde_json::value::RawValue,
        priority: Priority,
    ) -> Result<Published, HubError> {
        #[cfg(feature = "redis")]
        if let Some(fanout) = self.inner.fanout.get().cloned() {
            return fanout.publish(self, topic, data.get(), priority).await;
        }
        self.publish_with(topic, data, priority)
    }

    fn append_and_fan_out(
        &self,
        t: &Topic,
        log: &mut Log,
        offset: u64,
        frame: &Frame,
        priority: Priority,
    ) -> usize {
        let keep = self.inner.config.history_size;
        if keep > 0 {
            while log.history.len() >= keep {
                log.history.pop_front();
            }
            // Offsets from a shared sequencer (Redis) may arrive slightly out
            // of order; keep the ring sorted.
            let at = log.history.partition_point(|(o, _)| *o < offset);
            log.history.insert(at, (offset, frame.clone()));
        }
        self.inner.counters.published.fetch_add(1, Relaxed);
        let high = priority >= Priority::High;
        let now = self.now();
        let subs = read(&t.subs);
        // Small topics write straight to idle sockets from here; big ones
        // leave the writes to the connections' tasks, which run on every
        // worker thread and coalesce what queued up into one write each.
        let direct = subs.len() < DIRECT_WRITES_BELOW;
        let delivered = self.fan_out(subs.values(), frame, high, now, direct);
        drop(subs);
        delivered
    }

    fn fan_out<'a>(
        &self,
        conns: impl IntoIterator<Item = &'a Arc<ConnShared>>,
        frame: &Frame,
        high: bool,
        now: Instant,
        direct: bool,
    ) -> usize {
        let counters = &self.inner.counters;
        let (mut delivered, mut written) = (0, 0u64);
        for conn in conns {
            match conn.outbox.push(frame, high, now, direct, counters) {
                Pushed::Closed => {}
                Pushed::Written => {
                    delivered += 1;
                    written += 1;
                    // Publish to socket write, as the writer's samples are.
                    counters.record_latency(self.now().saturating_duration_since(now));
                }
                _ => delivered += 1,
            }
        }
        counters.written(written, written * frame.payload_len() as u64);
        delivered
    }

    /// Pushes one frame to one connection, counting a direct write.
    fn push_one(&self, conn: &ConnShared, frame: &Frame, high: bool, now: Instant) -> Pushed {
        let pushed = conn.outbox.push(frame, high, now, true, &self.inner.counters);
        if pushed == Pushed::Written {
            self.inner.counters.written(1, frame.payload_len() as u64);
            self.inner
                .counters
                .record_latency(self.now().saturating_duration_since(now));
        }
        pushed
    }

    /// Delivers a message sequenced elsewhere (by the Redis fan-out): the
    /// topic takes `epoch` and records `offset`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn deliver_sequenced(
        &self,
        topic: &str,
        epoch: &str,
        offset: u64,
        data: &str,
        priority: Priority,
    ) -> Result<usize, HubError> {
        let t = self.topic_or_create(topic)?;
        let mut log = lock(&t.log);
        if log.epoch != epoch {
            log.epoch = epoch.to_string();
            log.history.clear();
            log.last = 0;
        }
        if log.history.iter().any(|(o, _)| *o == offset) {
            return Ok(0);
        }
        log.last = log.last.max(offset);
        let frame = protocol::message_frame(&t.name, Some((epoch, offset)), data);
        Ok(self.append_and_fan_out(&t, &mut log, offset, &frame, priority))
    }

    /// The offset of the last message of `topic` this process saw, if any.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn last_seen(&self, topic: &str) -> Option<(String, u64)> {
        self.topic(topic).map(|t| {
            let log = lock(&t.log);
            (log.epoch.clone(), log.last)
        })
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn topic_names(&self) -> Vec<Arc<str>> {
        read(&self.inner.topics).keys().cloned().collect()
    }

    /// Sends `data` to every connection of `user` as a `message` on
    /// `topic` (no offset, not kept in history). Returns how many
    /// connections it was queued for.
    ///
    /// # Errors
    ///
    /// [`HubError::Encode`].
    pub fn publish_to_user<T: Serialize + ?Sized>(
        &self,
        user: &str,
        topic: &str,
        data: &T,
        priority: Priority,
    ) -> Result<usize, HubError> {
        let frame = direct_frame(topic, data)?;
        let conns: Vec<Arc<ConnShared>> = {
            let reg = lock(&self.inner.registry);
            reg.users
                .get(user)
                .map(|ids| ids.iter().filter_map(|i| reg.conns.get(i).cloned()).collect())
                .unwrap_or_default()
        };
        self.inner.counters.published.fetch_add(1, Relaxed);
        let now = self.now();
        let high = priority >= Priority::High;
        Ok(conns
            .iter()
            .filter(|c| self.push_one(c, &frame, high, now) != Pushed::Closed)
            .count())
    }

    /// Sends `data` to one connection as a `message` on `topic` (no
    /// offset, not kept in history).
    ///
    /// # Errors
    ///
    /// [`HubError::ConnectionClosed`] if it is gone; [`HubError::Encode`].
    pub fn publish_to_connection<T: Serialize + ?Sized>(
        &self,
        id: ConnectionId,
        topic: &str,
        data: &T,
        priority: Priority,
    ) -> Result<(), HubError> {
        let frame = direct_frame(topic, data)?;
        let conn = lock(&self.inner.registry).conns.get(&id).cloned();
        let conn = conn.ok_or(HubError::ConnectionClosed { id })?;
        self.inner.counters.published.fetch_add(1, Relaxed);
        match self.push_one(&conn, &frame, priority >= Priority::High, self.now()) {
            Pushed::Closed => Err(HubError::ConnectionClosed { id }),
            _ => Ok(()),
        }
    }

    /// Starts a graceful shutdown: no new connections; every connection
    /// writes what it has queued, then closes with 1012 ("restarting,
    /// reconnect elsewhere"). [`drained`](Self::drained) waits for the end.
    pub fn shutdown(&self) {
        self.inner.shutting_down.store(true, Relaxed);
        let conns: Vec<Arc<ConnShared>> = lock(&self.inner.registry).conns.values().cloned().collect();
        for c in conns {
            c.outbox.close(CloseCode::Restart);
        }
        self.inner.shutdown.send_replace(true);
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Relaxed)
    }

    /// Waits until every connection is gone (after [`shutdown`](Self::shutdown)).
    pub async fn drained(&self) {
        let mut rx = self.inner.shutdown.subscribe();
        loop {
            if self.connection_count() == 0 {
                return;
            }
            // Woken at shutdown and by every connection that leaves after it.
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

fn direct_frame<T: Serialize + ?Sized>(topic: &str, data: &T) -> Result<Frame, HubError> {
    let mut buf = Frame::buffer(128);
    protocol::message_head(&mut buf, topic, None);
    serde_json::to_writer(&mut buf, data).map_err(|e| HubError::Encode(e.to_string()))?;
    buf.push(b'}');
    Ok(Frame::seal(buf))
}

/// What a connection's writer takes next.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// Frames to write together (one flush): a `missed` notice first when
    /// the slow-consumer policy dropped messages, then high-priority
    /// messages, then normal ones, each in publish order.
    Frames(Vec<Bytes>),
    /// The hub closed the connection: write what was handed out, then close
    /// with this code.
    Closed(CloseCode),
}

/// One registered connection: its subscriptions and its send queue.
///
/// Dropping it unsubscribes it everywhere and frees its queue.
pub struct Connection {
    shared: Arc<ConnShared>,
    hub: Hub,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.shared.id)
            .field("user", &self.shared.user)
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.hub.remove(&self.shared);
        if self.hub.is_shutting_down() {
            self.hub.inner.shutdown.send_modify(|_| {});
        }
    }
}

impl Connection {
    /// Its id.
    #[must_use]
    pub fn id(&self) -> ConnectionId {
        self.shared.id
    }

    /// Its user, if authenticated.
    #[must_use]
    pub fn user(&self) -> Option<&str> {
        self.shared.user.as_deref()
    }

    /// The hub it belongs to.
    #[must_use]
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Topics it is subscribed to.
    #[must_use]
    pub fn topics(&self) -> Vec<String> {
        lock(&self.shared.topics)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Messages waiting in its queue.
    #[must_use]
    pub fn queue_depth(&self) -> usize {
        self.shared.outbox.depth()
    }

    /// Subscribes to `topic` (created if new); messages published after
    /// this call are delivered. Subscribing twice is not an error.
    ///
    /// # Errors
    ///
    /// [`HubError::TooManyTopicsForConnection`], [`HubError::InvalidTopic`],
    /// [`HubError::TooManyTopics`].
    pub fn subscribe(&self, topic: &str) -> Result<Subscribed, HubError> {
        self.join(topic, None)
    }

    /// Subscribes to `topic` and first queues what was published after
    /// `(epoch, offset)`, the last message the client saw, when history
    /// still holds it all; otherwise [`Recovery::Impossible`]. Nothing is
    /// lost or repeated between the replay and the live messages.
    ///
    /// # Errors
    ///
    /// As [`subscribe`](Self::subscribe).
    pub fn subscribe_from(&self, topic: &str, epoch: &str, offset: u64) -> Result<Subscribed, HubError> {
        self.join(topic, Some((epoch, offset)))
    }

    fn join(&self, topic: &str, from: Option<(&str, u64)>) -> Result<Subscribed, HubError> {
        check_topic(topic).map_err(|reason| HubError::InvalidTopic {
            topic: topic.to_string(),
            reason: reason.into(),
        })?;
        let limit = self.hub.inner.config.max_topics_per_connection;
        {
            let mine = lock(&self.shared.topics);
            if !mine.contains(topic) && mine.len() >= limit {
                return Err(HubError::TooManyTopicsForConnection { limit });
            }
        }
        let t = self.hub.topic_or_create(topic)?;
        let log = lock(&t.log);
        let recovery = from.map(|(epoch, offset)| self.replay(&log, epoch, offset));
        let position = Position {
            epoch: log.epoch.clone(),
            offset: log.last,
        };
        let mut subs = write(&t.subs);
        if subs.insert(self.shared.id, self.shared.clone()).is_none() {
            lock(&self.shared.topics).insert(t.name.clone());
            self.hub.inner.counters.subscriptions.fetch_add(1, Relaxed);
        }
        let subscribers = subs.len();
        Ok(Subscribed {
            position,
            subscribers,
            recovery,
        })
    }

    fn replay(&self, log: &Log, epoch: &str, offset: u64) -> Recovery {
        let impossible = || Recovery::Impossible {
            now: Position {
                epoch: log.epoch.clone(),
                offset: log.last,
            },
        };
        if epoch != log.epoch || offset > log.last {
            return impossible();
        }
        if offset == log.last {
            return Recovery::Recovered { count: 0 };
        }
        // The history must hold every offset after `offset`.
        match log.history.front() {
            Some((first, _)) if *first <= offset + 1 => {}
            _ => return impossible(),
        }
        let now = self.hub.now();
        let mut count = 0;
        for (o, frame) in &log.history {
            if *o > offset {
                self.hub.push_one(&self.shared, frame, false, now);
                count += 1;
            }
        }
        Recovery::Recovered { count }
    }

    /// Unsubscribes from `topic`; false if it was not subscribed.
    #[allow(clippy::must_use_candidate)] // the effect is the point; the bool is extra
    pub fn unsubscribe(&self, topic: &str) -> bool {
        let Some(t) = self.hub.topic(topic) else {
            return false;
        };
        let removed = write(&t.subs).remove(&self.shared.id).is_some();
        if removed {
            lock(&self.shared.topics).remove(topic);
            self.hub.inner.counters.subscriptions.fetch_sub(1, Relaxed);
        }
        removed
    }

    /// Queues a frame for this connection alone (replies of the transport).
    pub(crate) fn push_reply(&self, frame: &[u8], high: bool) {
        self.hub
            .push_one(&self.shared, &Frame::text(frame), high, self.hub.now());
    }

    /// Lets the hub write to this connection's socket directly.
    pub(crate) fn attach(&self, wire: Arc<crate::wire::Wire>) {
        self.shared.outbox.attach(wire);
    }

    /// The transport's writer (see [`Outbox::poll_flush`]).
    pub(crate) fn poll_flush(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<crate::queue::Flush> {
        let hub = &self.hub.inner;
        self.shared
            .outbox
            .poll_flush(cx, hub.config.max_batch, self.hub.now(), &hub.counters)
    }

    /// Waits until something is queued for this connection (or it closed).
    pub(crate) async fn queued(&self) {
        self.shared.outbox.notify.notified().await;
    }

    /// Closes the connection from the server side with `code`; its queue
    /// is freed (except on [`CloseCode::Restart`], where it drains first).
    pub fn close(&self, code: CloseCode) {
        self.shared.outbox.close(code);
    }

    /// Whether the hub closed it, and with which code.
    #[must_use]
    pub fn closed(&self) -> Option<CloseCode> {
        self.shared.outbox.closed()
    }

    /// Takes the next batch without waiting: `None` when nothing is queued
    /// and the connection is open.
    pub fn try_next_batch(&mut self) -> Option<Delivery> {
        let batch = self.shared.outbox.take(self.hub.inner.config.max_batch);
        if batch.frames.is_empty() {
            return batch.closed.map(Delivery::Closed);
        }
        self.hub.inner.counters.handed_out(&batch, self.hub.now());
        Some(Delivery::Frames(
            batch.frames.iter().map(Frame::payload).collect(),
        ))
    }

    /// Waits for the next batch (see [`Delivery`]).
    pub async fn next_batch(&mut self) -> Delivery {
        loop {
            if let Some(d) = self.try_next_batch() {
                return d;
            }
            self.shared.outbox.notify.notified().await;
        }
    }
}
