//! Fan-out across hub processes through Redis (feature `redis`).
//
// Design: Redis is the sequencer. A publish runs one Lua script that, in one
// atomic step, reads (or creates) the topic's epoch, INCRs its offset, XADDs
// the message to the topic's stream (MAXLEN ~ history, the ID is the offset)
// and PUBLISHes it on one channel with the origin's node id. The origin
// delivers to its own subscribers as soon as the script returns and ignores
// its echo; every other process delivers from the channel. Offsets and
// epochs are therefore the same in every process, and history can be read
// back from the stream.
//
// Losing Redis: publishes are delivered locally under a local epoch
// ("local-…"), so no local offset can collide with Redis's; when Redis is
// back the topic returns to Redis's epoch and clients that recover across
// the outage are told recovery is impossible (reload). The subscriber
// reconnects with brisk-core's backoff and, once subscribed again, reads
// each known topic's stream from the last offset it saw, so messages
// published by other processes while its subscription was down are caught up
// where the stream still holds them.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use brisk_core::{Backoff, ConfigError, Priority};
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use serde::Serialize;
use tokio::time::Instant;

use crate::error::HubError;
use crate::hub::{Hub, Inner, Published, lock};
use crate::protocol::check_topic;

const SCRIPT: &str = r"
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[7]
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SET', KEYS[3], epoch)
end
local offset = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], offset .. '-1', 'd', ARGV[5], 'p', ARGV[6])
redis.call('PUBLISH', ARGV[2], ARGV[3] .. '\n' .. ARGV[4] .. '\n' .. epoch .. '\n' .. offset .. '\n' .. ARGV[6] .. '\n' .. ARGV[5])
return {offset, epoch}
";

/// Builds a [`RedisFanout`]; every setter states its default.
#[derive(Debug)]
#[must_use]
pub struct RedisFanoutBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    backoff: Option<Backoff>,
}

impl RedisFanoutBuilder {
    /// The prefix of every key and of the channel. Default `"brisk:ws:"`;
    /// hubs that share it form one cluster.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one Redis call may take before the hub falls back to local
    /// delivery. Default 1 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The reconnect policy (its `ceiling` per attempt is the wait).
    /// Default: base 100 ms, cap 5 s.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Connects to Redis, attaches the fan-out to `hub` (its client
    /// publishes then go through Redis) and starts the subscriber on the
    /// current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`HubError::Fanout`] if Redis cannot be reached or `hub` already has
    /// a fan-out; a bad `url` or zero `timeout` is reported the same way,
    /// naming the field.
    pub async fn attach(self, hub: &Hub) -> Result<RedisFanout, HubError> {
        let cfg_err = |e: ConfigError| HubError::Fanout(e.to_string());
        if self.timeout.is_zero() {
            return Err(cfg_err(ConfigError::new(
                "redis_fanout.timeout",
                "must be longer than zero",
            )));
        }
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| cfg_err(ConfigError::new("redis_fanout.url", e.to_string())))?;
        let backoff = match self.backoff {
            Some(b) => b,
            None => Backoff::builder()
                .base(Duration::from_millis(100))
                .cap(Duration::from_secs(5))
                .build()
                .map_err(cfg_err)?,
        };
        let conn = tokio::time::timeout(self.timeout, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| HubError::Fanout("timed out connecting to Redis".into()))?
            .map_err(|e| HubError::Fanout(e.to_string()))?;
        let shared = Arc::new(FanoutShared {
            client,
            conn: Mutex::new(Some(conn)),
            down_until: Mutex::new(None),
            node: format!("{:016x}", fastrand::u64(..)),
            channel: format!("{}fanout", self.prefix),
            prefix: self.prefix,
            script: redis::Script::new(SCRIPT),
            subscribed: AtomicBool::new(false),
            timeout: self.timeout,
            backoff,
        });
        hub.inner
            .fanout
            .set(shared.clone())
            .map_err(|_| HubError::Fanout("this hub already has a fan-out".into()))?;
        let task = tokio::spawn(subscribe_loop(Arc::downgrade(&hub.inner), shared.clone()));
        Ok(RedisFanout {
            shared,
            hub: hub.clone(),
            task: task.abort_handle(),
        })
    }
}

/// Publishes through Redis to every hub process sharing the key prefix.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use brisk_core::Priority;
/// use brisk_ws_hub::{Hub, RedisFanout};
///
/// let hub = Hub::builder().build()?;
/// let fanout = RedisFanout::builder("redis://127.0.0.1:6379").attach(&hub).await?;
/// // Every process's subscribers of "alerts" receive it, with one offset.
/// let p = fanout.publish("alerts", &serde_json::json!({"level": "high"}), Priority::High).await?;
/// assert!(!p.local_only);
/// # Ok(()) }
/// ```
pub struct RedisFanout {
    shared: Arc<FanoutShared>,
    hub: Hub,
    task: tokio::task::AbortHandle,
}

impl fmt::Debug for RedisFanout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisFanout")
            .field("node", &self.shared.node)
            .field("channel", &self.shared.channel)
            .field("subscribed", &self.is_subscribed())
            .finish_non_exhaustive()
    }
}

impl Drop for RedisFanout {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RedisFanout {
    /// A builder for the Redis at `url` (`redis://host:port/db`).
    pub fn builder(url: impl Into<String>) -> RedisFanoutBuilder {
        RedisFanoutBuilder {
            url: url.into(),
            prefix: "brisk:ws:".into(),
            timeout: Duration::from_secs(1),
            backoff: None,
        }
    }

    /// This process's node id (its echoes carry it).
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.shared.node
    }

    /// Whether the subscriber is subscribed to the channel right now.
    #[must_use]
    pub fn is_subscribed(&self) -> bool {
        self.shared.subscribed.load(Relaxed)
    }

    /// Publishes `data` to `topic` in every process. When Redis is
    /// unreachable it is delivered locally only, under a local epoch, and
    /// [`Published::local_only`] is set.
    ///
    /// # Errors
    ///
    /// As [`Hub::publish`].
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        data: &T,
        priority: Priority,
    ) -> Result<Published, HubError> {
        let data = serde_json::to_string(data).map_err(|e| HubError::Encode(e.to_string()))?;
        self.shared.publish(&self.hub, topic, &data, priority).await
    }
}

pub(crate) struct FanoutShared {
    client: redis::Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    down_until: Mutex<Option<Instant>>,
    node: String,
    prefix: String,
    channel: String,
    script: redis::Script,
    subscribed: AtomicBool,
    timeout: Duration,
    backoff: Backoff,
}

impl fmt::Debug for FanoutShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanoutShared")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl FanoutShared {
    fn key(&self, topic: &str, what: &str) -> String {
        format!("{}{{{topic}}}:{what}", self.prefix)
    }

    async fn connection(&self) -> Option<MultiplexedConnection> {
        if let Some(c) = lock(&self.conn).clone() {
            return Some(c);
        }
        if lock(&self.down_until).is_some_and(|t| Instant::now() < t) {
            return None;
        }
        match tokio::time::timeout(self.timeout, self.client.get_multiplexed_async_connection()).await {
            Ok(Ok(c)) => {
                *lock(&self.conn) = Some(c.clone());
                *lock(&self.down_until) = None;
                Some(c)
            }
            _ => {
                *lock(&self.down_until) = Some(Instant::now() + self.backoff.ceiling(0));
                None
            }
        }
    }

    pub(crate) async fn publish(
        &self,
        hub: &Hub,
        topic: &str,
        data: &str,
        priority: Priority,
    ) -> Result<Published, HubError> {
        check_topic(topic).map_err(|reason| HubError::InvalidTopic {
            topic: topic.to_string(),
            reason: reason.into(),
        })?;
        serde_json::from_str::<&serde_json::value::RawValue>(data)
            .map_err(|e| HubError::Encode(e.to_string()))?;
        if let Some(mut conn) = self.connection().await {
            let history = hub.config().history_size.max(1);
            let mut call = self.script.key(self.key(topic, "seq"));
            call.key(self.key(topic, "stream"))
                .key(self.key(topic, "epoch"))
                .arg(history)
                .arg(&self.channel)
                .arg(&self.node)
                .arg(topic)
                .arg(data)
                .arg(priority.as_str())
                .arg(format!("{:016x}", fastrand::u64(..)));
            let result =
                tokio::time::timeout(self.timeout, call.invoke_async::<(u64, String)>(&mut conn)).await;
            if let Ok(Ok((offset, epoch))) = result {
                let delivered = hub.deliver_sequenced(topic, &epoch, offset, data, priority)?;
                return Ok(Published {
                    offset,
                    delivered,
                    local_only: false,
                });
            }
            *lock(&self.conn) = None;
        }
        hub.inner.counters.fanout_errors.fetch_add(1, Relaxed);
        hub.publish_local_epoch(topic, data, priority)
    }
}

fn parse(payload: &[u8]) -> Option<(&str, &str, &str, u64, Priority, &str)> {
    let s = std::str::from_utf8(payload).ok()?;
    let mut parts = s.splitn(6, '\n');
    let node = parts.next()?;
    let topic = parts.next()?;
    let epoch = parts.next()?;
    let offset = parts.next()?.parse().ok()?;
    let priority = parts.next()?.parse().ok()?;
    let data = parts.next()?;
    Some((node, topic, epoch, offset, priority, data))
}

async fn subscribe_loop(hub: Weak<Inner>, shared: Arc<FanoutShared>) {
    let mut attempt: u32 = 0;
    loop {
        let subscribe = async {
            let mut pubsub = shared.client.get_async_pubsub().await?;
            pubsub.subscribe(&shared.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        if let Ok(Ok(pubsub)) = tokio::time::timeout(shared.timeout, subscribe).await {
            attempt = 0;
            let Some(inner) = hub.upgrade() else { return };
            catch_up(&Hub { inner }, &shared).await;
            shared.subscribed.store(true, Relaxed);
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                let Some(inner) = hub.upgrade() else { return };
                let hub = Hub { inner };
                if let Some((node, topic, epoch, offset, priority, data)) = parse(msg.get_payload_bytes())
                    && node != shared.node
                {
                    let _ = hub.deliver_sequenced(topic, epoch, offset, data, priority);
                }
            }
            shared.subscribed.store(false, Relaxed);
        }
        if hub.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(shared.backoff.ceiling(attempt)).await;
        attempt = attempt.saturating_add(1);
    }
}

/// After (re)subscribing: what other processes published to the topics this
/// one holds while it was not listening, from the streams.
async fn catch_up(hub: &Hub, shared: &FanoutShared) {
    let Some(mut conn) = shared.connection().await else {
        return;
    };
    for topic in hub.topic_names() {
        let Some((epoch, last)) = hub.last_seen(&topic) else {
            continue;
        };
        let read = async {
            let redis_epoch: Option<String> = redis::cmd("GET")
                .arg(shared.key(&topic, "epoch"))
                .query_async(&mut conn)
                .await?;
            let from = if redis_epoch.as_deref() == Some(epoch.as_str()) {
                format!("{}-0", last + 1)
            } else {
                "-".to_string()
            };
            let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                .arg(shared.key(&topic, "stream"))
                .arg(from)
                .arg("+")
                .query_async(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>((redis_epoch, entries))
        };
        let Ok(Ok((Some(redis_epoch), entries))) = tokio::time::timeout(shared.timeout, read).await else {
            continue;
        };
        for (id, fields) in entries {
            let Some(offset) = id.split('-').next().and_then(|o| o.parse::<u64>().ok()) else {
                continue;
            };
            let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
            let (Some(data), priority) = (field("d"), field("p").and_then(|p| p.parse().ok())) else {
                continue;
            };
            let _ = hub.deliver_sequenced(
                &topic,
                &redis_epoch,
                offset,
                data,
                priority.unwrap_or(Priority::Normal),
            );
        }
    }
}
