//! The hub's counters and the snapshot a monitor reads.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use brisk_core::{StatsReport, StatsSource};

use crate::Hub;

// Delivery latency (publish to the direct socket write, or to the writer
// taking a queued batch, one sample per batch for its oldest message) in buckets of powers of two
// microseconds: bucket i holds latencies below 2^i µs, the last one all
// larger. 28 buckets reach 2^27 µs ≈ 134 s. Quantiles are read as the upper
// bound of their bucket, so they are at most 2x high, never low.
const BUCKETS: usize = 28;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) subscriptions: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) drops: AtomicU64,
    pub(crate) slow_disconnects: AtomicU64,
    pub(crate) heartbeat_timeouts: AtomicU64,
    pub(crate) violations: AtomicU64,
    pub(crate) fanout_errors: AtomicU64,
    latency: [AtomicU64; BUCKETS],
}

impl Counters {
    pub(crate) fn record_latency(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let bucket = (64 - micros.leading_zeros()) as usize;
        self.latency[bucket.min(BUCKETS - 1)].fetch_add(1, Relaxed);
    }

    /// A batch the writer took from a queue, handed to the socket.
    pub(crate) fn handed_out(&self, batch: &crate::queue::Batch, now: std::time::Instant) {
        if batch.frames.is_empty() {
            return;
        }
        // One latency sample per batch, for its oldest message: an upper
        // bound for the others, and one clock read per write, not per message.
        if let Some(oldest) = batch.oldest {
            self.record_latency(now.saturating_duration_since(oldest));
        }
        let bytes: usize = batch.frames.iter().map(crate::protocol::Frame::payload_len).sum();
        self.messages_out.fetch_add(batch.frames.len() as u64, Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Relaxed);
    }

    /// Messages a publisher wrote straight to sockets.
    pub(crate) fn written(&self, messages: u64, bytes: u64) {
        self.messages_out.fetch_add(messages, Relaxed);
        self.bytes_out.fetch_add(bytes, Relaxed);
    }

    fn latency_quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self.latency.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Duration::from_micros(1u64 << i));
            }
        }
        Some(Duration::from_micros(1u64 << (BUCKETS - 1)))
    }
}

/// A snapshot of a hub's counters ([`Hub::stats`]).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct HubStats {
    /// Connections open now.
    pub connections: u64,
    /// Subscriptions (connection, topic) now.
    pub subscriptions: u64,
    /// Topics the hub holds.
    pub topics: u64,
    /// Messages waiting in all send queues now.
    pub queued: u64,
    /// Messages published to topics, users or connections.
    pub published: u64,
    /// Messages written to sockets.
    pub messages_out: u64,
    /// Bytes written to sockets (message payloads).
    pub bytes_out: u64,
    /// Messages dropped or refused by the slow-consumer policy.
    pub drops: u64,
    /// Connections closed as slow consumers.
    pub slow_disconnects: u64,
    /// Connections dropped for not answering a ping.
    pub heartbeat_timeouts: u64,
    /// Bad frames and rate-limit refusals from clients.
    pub violations: u64,
    /// Publishes the cross-process fan-out could not send.
    pub fanout_errors: u64,
    /// Median delivery latency, publish to the socket write (one sample per
    /// direct write, or per queued batch for its oldest message; bucket
    /// upper bound).
    pub latency_p50: Option<Duration>,
    /// 99th percentile delivery latency (bucket upper bound).
    pub latency_p99: Option<Duration>,
}

impl Hub {
    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> HubStats {
        let c = &self.inner.counters;
        HubStats {
            connections: c.connections.load(Relaxed),
            subscriptions: c.subscriptions.load(Relaxed),
            topics: self.topic_count() as u64,
            queued: self.queued() as u64,
            published: c.published.load(Relaxed),
            messages_out: c.messages_out.load(Relaxed),
            bytes_out: c.bytes_out.load(Relaxed),
            drops: c.drops.load(Relaxed),
            slow_disconnects: c.slow_disconnects.load(Relaxed),
            heartbeat_timeouts: c.heartbeat_timeouts.load(Relaxed),
            violations: c.violations.load(Relaxed),
            fanout_errors: c.fanout_errors.load(Relaxed),
            latency_p50: c.latency_quantile(0.5),
            latency_p99: c.latency_quantile(0.99),
        }
    }
}

#[allow(clippy::cast_precision_loss)]
impl StatsSource for Hub {
    fn report_stats(&self, out: &mut StatsReport) {
        let s = self.stats();
        let _ = out.gauge(
            "brisk_ws_hub_connections",
            "WebSocket connections open",
            s.connections as f64,
        );
        let _ = out.gauge(
            "brisk_ws_hub_subscriptions",
            "Topic subscriptions",
            s.subscriptions as f64,
        );
        let _ = out.gauge("brisk_ws_hub_topics", "Topics held", s.topics as f64);
        let _ = out.gauge(
            "brisk_ws_hub_queued_messages",
            "Messages waiting in send queues",
            s.queued as f64,
        );
        let _ = out.counter("brisk_ws_hub_published_total", "Messages published", s.published);
        let _ = out.counter(
            "brisk_ws_hub_messages_out_total",
            "Messages written to sockets",
            s.messages_out,
        );
        let _ = out.counter(
            "brisk_ws_hub_bytes_out_total",
            "Bytes written to sockets",
            s.bytes_out,
        );
        let _ = out.counter(
            "brisk_ws_hub_drops_total",
            "Messages dropped by the slow-consumer policy",
            s.drops,
        );
        let _ = out.counter(
            "brisk_ws_hub_slow_disconnects_total",
            "Connections closed as slow consumers",
            s.slow_disconnects,
        );
        let _ = out.counter(
            "brisk_ws_hub_heartbeat_timeouts_total",
            "Connections dropped for a missing pong",
            s.heartbeat_timeouts,
        );
        let _ = out.counter(
            "brisk_ws_hub_violations_total",
            "Bad frames and rate-limit refusals",
            s.violations,
        );
        let _ = out.counter(
            "brisk_ws_hub_fanout_errors_total",
            "Publishes the fan-out could not send",
            s.fanout_errors,
        );
        for (q, v) in [("0.5", s.latency_p50), ("0.99", s.latency_p99)] {
            if let Some(v) = v {
                let _ = out
                    .gauge(
                        "brisk_ws_hub_delivery_latency_seconds",
                        "Delivery latency, publish to the write of its batch (bucket upper bound)",
                        v.as_secs_f64(),
                    )
                    .label("quantile", q);
            }
        }
    }
}
