//! The hub's configuration and its builder.

use std::time::Duration;

use brisk_core::{ConfigError, SharedClock, SystemClock};
use brisk_rate_limiter::Quota;

use std::sync::Arc;

use crate::{Authenticator, Hub};

/// What the hub does when a connection's send queue is full.
///
/// Either way the queue never grows past
/// [`queue_capacity`](HubBuilder::queue_capacity), and one slow client never
/// delays the others: a publish only appends to each subscriber's own queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowConsumerPolicy {
    /// Drop the oldest normal-priority message to make room, and tell the
    /// client with a `missed` message carrying how many it lost (sent ahead
    /// of its next batch).
    DropOldest,
    /// Refuse new messages while the queue is full (counted as missed, as
    /// above), and once the queue has stayed full for `after`, close the
    /// connection with close code 4008 ("slow consumer").
    Disconnect {
        /// How long the queue may stay full. Zero closes at the first
        /// message that does not fit.
        after: Duration,
    },
}

/// The close codes the hub sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1000: normal closure.
    Normal,
    /// 1008: policy violation (too many bad frames or rate-limit
    /// violations).
    Policy,
    /// 1009: a frame over the hard size limit.
    TooBig,
    /// 1012: the server is restarting; reconnect (elsewhere).
    Restart,
    /// 1013: try again later (the hub is full).
    TryAgainLater,
    /// 4001: not authenticated (bad token, or none before the timeout).
    Unauthenticated,
    /// 4008: slow consumer (its queue stayed full past the limit).
    Slow,
    /// 4009: no pong came back before the heartbeat timeout.
    HeartbeatTimeout,
    /// 4029: the user holds its maximum of connections.
    TooManyForUser,
}

impl CloseCode {
    /// The numeric code on the wire.
    #[must_use]
    pub const fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::Restart => 1012,
            CloseCode::TryAgainLater => 1013,
            CloseCode::Unauthenticated => 4001,
            CloseCode::Slow => 4008,
            CloseCode::HeartbeatTimeout => 4009,
            CloseCode::TooManyForUser => 4029,
        }
    }

    /// A short reason sent with the code.
    #[must_use]
    pub const fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "bye",
            CloseCode::Policy => "too many violations",
            CloseCode::TooBig => "frame too big",
            CloseCode::Restart => "server restarting, reconnect elsewhere",
            CloseCode::TryAgainLater => "hub full",
            CloseCode::Unauthenticated => "unauthenticated",
            CloseCode::Slow => "slow consumer",
            CloseCode::HeartbeatTimeout => "heartbeat timeout",
            CloseCode::TooManyForUser => "too many connections for user",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct HubConfig {
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_user: usize,
    pub(crate) max_topics: usize,
    pub(crate) max_topics_per_connection: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) max_batch: usize,
    pub(crate) slow_consumer: SlowConsumerPolicy,
    pub(crate) history_size: usize,
    pub(crate) clock: SharedClock,
    pub(crate) ping_interval: Duration,
    pub(crate) pong_timeout: Duration,
    pub(crate) auth_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) inbound_quota: Quota,
    pub(crate) max_violations: u32,
    pub(crate) client_publish: bool,
    pub(crate) read_buffer_size: usize,
    pub(crate) write_buffer_size: usize,
    pub(crate) send_buffer_size: usize,
    pub(crate) authenticator: Option<Arc<dyn Authenticator>>,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            max_connections: 100_000,
            max_connections_per_user: 16,
            max_topics: 65_536,
            max_topics_per_connection: 128,
            queue_capacity: 256,
            max_batch: 64,
            slow_consumer: SlowConsumerPolicy::DropOldest,
            history_size: 128,
            clock: SystemClock::shared(),
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_message_size: 64 * 1024,
            inbound_quota: Quota::per_second(20),
            max_violations: 10,
            client_publish: false,
            read_buffer_size: 1024,
            write_buffer_size: 8 * 1024,
            send_buffer_size: 64 * 1024,
            authenticator: None,
        }
    }
}

/// Builds a [`Hub`]. Every setter states its default; [`build`](Self::build)
/// checks the values and names the field that is wrong.
#[derive(Debug, Default)]
#[must_use]
pub struct HubBuilder {
    config: HubConfig,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    };
}

impl HubBuilder {
    setter!(
        /// Most connections the hub holds at once. Default 100,000.
        max_connections: usize
    );
    setter!(
        /// Most connections one user holds at once. Default 16.
        max_connections_per_user: usize
    );
    setter!(
        /// Most topics the hub keeps (a topic stays, with its history, once
        /// created). Default 65,536.
        max_topics: usize
    );
    setter!(
        /// Most topics one connection subscribes to. Default 128.
        max_topics_per_connection: usize
    );
    setter!(
        /// Messages one connection's send queue holds. Default 256.
        queue_capacity: usize
    );
    setter!(
        /// Most messages written to a socket in one batch (one vectored
        /// write) once a queue has formed. Default 64.
        max_batch: usize
    );
    setter!(
        /// What happens when a send queue is full. Default
        /// [`SlowConsumerPolicy::DropOldest`].
        slow_consumer: SlowConsumerPolicy
    );
    setter!(
        /// Messages each topic keeps for recovery. Default 128; zero keeps
        /// none (every recovery is then impossible once a message was missed).
        history_size: usize
    );
    setter!(
        /// The clock for the slow-consumer limit and delivery latency.
        /// Default [`SystemClock`]; tests pass a [`brisk_core::ManualClock`].
        clock: SharedClock
    );
    setter!(
        /// How often the server pings an idle connection. Default 25 s.
        ping_interval: Duration
    );
    setter!(
        /// How long after a ping the client has to answer (any frame counts)
        /// before it is dropped. Default 10 s.
        pong_timeout: Duration
    );
    setter!(
        /// How long a connection may stay unauthenticated (with an
        /// authenticator set) before it is closed with 4001. Default 10 s.
        auth_timeout: Duration
    );
    setter!(
        /// How long one write to a socket may take before the connection is
        /// dropped (a client that reads nothing at all). Default 10 s.
        write_timeout: Duration
    );
    setter!(
        /// Largest client message accepted, in bytes; larger ones are
        /// answered with an error and counted as a violation. Frames over
        /// four times this close the connection (1009). Default 64 KiB.
        max_message_size: usize
    );
    setter!(
        /// Inbound messages each connection may send, through
        /// brisk-rate-limiter. Default 20 per second (a burst of 20).
        inbound_quota: Quota
    );
    setter!(
        /// Violations (bad frames, rate-limit refusals) a connection may make
        /// before it is closed with 1008. Default 10.
        max_violations: u32
    );
    setter!(
        /// Whether clients may publish to topics (authenticated clients may
        /// also be allowed per identity). Default false.
        client_publish: bool
    );
    setter!(
        /// The WebSocket read buffer per connection, in bytes. Default 1 KiB
        /// (tungstenite's default is 128 KiB).
        read_buffer_size: usize
    );
    setter!(
        /// The most bytes of control frames (pongs, close) tungstenite may
        /// buffer per connection, in bytes. Messages do not go through a
        /// write buffer: each is written from its one shared encoded frame.
        /// Default 8 KiB.
        write_buffer_size: usize
    );
    setter!(
        /// The kernel's send buffer per TCP connection (`SO_SNDBUF`, which
        /// Linux doubles for its bookkeeping), in bytes. It bounds what a
        /// client that stops reading holds in the server's kernel before its
        /// queue and the slow-consumer policy take over; without it Linux
        /// grows each buffer up to `net.ipv4.tcp_wmem`'s maximum (4 MiB
        /// here), 4 GB for 1,000 stalled clients. Default 64 KiB; 0 leaves
        /// the kernel's autotuning.
        send_buffer_size: usize
    );

    /// Requires every WebSocket client to authenticate with `auth`: a
    /// `token` query parameter on the upgrade request, or an `auth` message
    /// within [`auth_timeout`](Self::auth_timeout). Default: none (clients
    /// are anonymous, and may publish only with
    /// [`client_publish`](Self::client_publish)).
    pub fn authenticator(mut self, auth: impl Authenticator) -> Self {
        self.config.authenticator = Some(Arc::new(auth));
        self
    }

    /// Checks the configuration and builds the hub.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field when a limit is zero, a timeout
    /// is zero, or `max_batch` exceeds `queue_capacity`.
    pub fn build(self) -> Result<Hub, ConfigError> {
        let c = &self.config;
        let positive = [
            ("max_connections", c.max_connections),
            ("max_connections_per_user", c.max_connections_per_user),
            ("max_topics", c.max_topics),
            ("max_topics_per_connection", c.max_topics_per_connection),
            ("queue_capacity", c.queue_capacity),
            ("max_batch", c.max_batch),
            ("max_message_size", c.max_message_size),
            ("read_buffer_size", c.read_buffer_size),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(field, "must be at least 1, got 0"));
            }
        }
        if c.max_batch > c.queue_capacity {
            return Err(ConfigError::new(
                "max_batch",
                format!(
                    "must be at most `queue_capacity` ({}), got {}",
                    c.queue_capacity, c.max_batch
                ),
            ));
        }
        let durations = [
            ("ping_interval", c.ping_interval),
            ("pong_timeout", c.pong_timeout),
            ("auth_timeout", c.auth_timeout),
            ("write_timeout", c.write_timeout),
        ];
        for (field, value) in durations {
            if value.is_zero() {
                return Err(ConfigError::new(field, "must be longer than zero"));
            }
        }
        if c.max_violations == 0 {
            return Err(ConfigError::new("max_violations", "must be at least 1, got 0"));
        }
        Ok(Hub::from_config(self.config))
    }
}
