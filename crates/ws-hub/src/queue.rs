//! One connection's bounded send queue.
//
// Design: a publish appends the same `Bytes` (a refcount bump, no copy) to
// every subscriber's queue under that queue's own mutex, which only the
// publisher and the connection's writer ever take, so contention is two
// parties at most and one slow client never holds anything another needs.
// Two deques make priorities: the writer empties `high` before `normal`.
// `missed` counts what the slow-consumer policy dropped since the client was
// last told. The writer is woken through a `Notify` only when the queue goes
// from empty to non-empty, so a burst costs one wake-up, not one per message.
//
// With a socket attached (`wire`), a push to an empty queue first tries to
// write the frame straight to the socket (see wire.rs); the queue only fills
// while the socket does not keep up, and then the policy below applies as
// before. The connection's task takes batches under this mutex and commits
// them to the wire before letting go, so a publisher's direct write never
// overtakes queued messages.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::config::{CloseCode, SlowConsumerPolicy};
use crate::protocol::Frame;
use crate::stats::Counters;
use crate::wire::{Offer, Wire};

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) frame: Frame,
    pub(crate) queued_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    high: VecDeque<Entry>,
    normal: VecDeque<Entry>,
    missed: u64,
    full_since: Option<Instant>,
    closed: Option<CloseCode>,
}

impl State {
    fn len(&self) -> usize {
        self.high.len() + self.normal.len()
    }
}

/// What [`Outbox::push`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Written to the socket at once (or started, the rest pending on it).
    Written,
    Queued,
    DroppedOldest,
    Refused,
    Closed,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    pub(crate) notify: Notify,
    capacity: usize,
    policy: SlowConsumerPolicy,
    wire: OnceLock<Arc<Wire>>,
}

/// What [`Outbox::poll_flush`] ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Everything queued is on the socket.
    Idle,
    /// Everything is on the socket and the hub closed the connection.
    Closed(CloseCode),
    /// The socket failed (or none is attached).
    Failed,
}

/// A batch taken from the queue by the writer.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The frames, a `missed` notice first when messages were dropped.
    pub(crate) frames: Vec<Frame>,
    /// When the oldest message of the batch was published.
    pub(crate) oldest: Option<Instant>,
    pub(crate) closed: Option<CloseCode>,
}

impl Outbox {
    pub(crate) fn new(capacity: usize, policy: SlowConsumerPolicy) -> Self {
        Self {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            capacity,
            policy,
            wire: OnceLock::new(),
        }
    }

    /// Lets pushes write straight to this socket.
    pub(crate) fn attach(&self, wire: Arc<Wire>) {
        let _ = self.wire.set(wire);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `frame`, or (with `direct`) writes it at once when nothing
    /// is queued or pending and the socket takes it. Counts drops; the caller counts
    /// [`Pushed::Written`] as delivered.
    pub(crate) fn push(
        &self,
        frame: &Frame,
        high: bool,
        now: Instant,
        direct: bool,
        counters: &Counters,
    ) -> Pushed {
        let mut s = self.lock();
        if s.closed.is_some() {
            return Pushed::Closed;
        }
        let was_empty = s.len() == 0;
        if direct
            && was_empty
            && s.missed == 0
            && let Some(wire) = self.wire.get()
        {
            match wire.offer(frame.wire()) {
                Offer::Written => return Pushed::Written,
                Offer::Started => {
                    drop(s);
                    // The task finishes the frame when the socket drains.
                    self.notify.notify_one();
                    return Pushed::Written;
                }
                Offer::Busy => {}
            }
        }
        let mut outcome = Pushed::Queued;
        if s.len() >= self.capacity {
            match self.policy {
                SlowConsumerPolicy::DropOldest => {
                    // Make room from the normal queue first; a normal message
                    // never pushes out a high one.
                    if s.normal.pop_front().is_none() && (!high || s.high.pop_front().is_none()) {
                        s.missed += 1;
                        counters.drops.fetch_add(1, Relaxed);
                        return Pushed::Refused;
                    }
                    s.missed += 1;
                    counters.drops.fetch_add(1, Relaxed);
                    outcome = Pushed::DroppedOldest;
                }
                SlowConsumerPolicy::Disconnect { after } => {
                    let since = *s.full_since.get_or_insert(now);
                    s.missed += 1;
                    counters.drops.fetch_add(1, Relaxed);
                    if now.saturating_duration_since(since) >= after {
                        s.closed = Some(CloseCode::Slow);
                        s.high.clear();
                        s.normal.clear();
                        counters.slow_disconnects.fetch_add(1, Relaxed);
                        drop(s);
                        self.notify.notify_one();
                        return Pushed::Closed;
                    }
                    return Pushed::Refused;
                }
            }
        }
        let entry = Entry {
            frame: frame.clone(),
            queued_at: now,
        };
        if high {
            s.high.push_back(entry);
        } else {
            s.normal.push_back(entry);
        }
        if s.len() >= self.capacity && s.full_since.is_none() {
            s.full_since = Some(now);
        }
        drop(s);
        if was_empty {
            self.notify.notify_one();
        }
        outcome
    }

    /// Takes up to `max` messages, high priority first, with a `missed`
    /// notice ahead of them when messages were dropped.
    pub(crate) fn take(&self, max: usize) -> Batch {
        let mut s = self.lock();
        Self::take_from(&mut s, max, self.capacity)
    }

    fn take_from(s: &mut State, max: usize, capacity: usize) -> Batch {
        let missed = std::mem::take(&mut s.missed);
        let n = s.len().min(max);
        let mut frames = Vec::with_capacity(n + usize::from(missed > 0));
        if missed > 0 && s.closed.is_none_or(|c| c == CloseCode::Restart) {
            frames.push(Frame::text(&crate::protocol::missed_frame(missed)));
        }
        let mut oldest: Option<Instant> = None;
        for _ in 0..n {
            let Some(e) = s.high.pop_front().or_else(|| s.normal.pop_front()) else {
                break;
            };
            oldest = Some(oldest.map_or(e.queued_at, |o| o.min(e.queued_at)));
            frames.push(e.frame);
        }
        if s.len() < capacity {
            s.full_since = None;
        }
        Batch {
            frames,
            oldest,
            closed: s.closed,
        }
    }

    /// The connection task's writer: finishes what is pending on the
    /// socket, then writes the queue in batches of up to `max` (each one
    /// vectored write), until the queue is empty (ready) or the socket is
    /// full (pending, woken when it is writable). Counts what it hands to
    /// the socket in `counters`, with the latency of each batch's oldest
    /// message at `now`.
    pub(crate) fn poll_flush(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        now: Instant,
        counters: &Counters,
    ) -> Poll<Flush> {
        let Some(wire) = self.wire.get() else {
            return Poll::Ready(Flush::Failed);
        };
        let mut s = self.lock();
        let mut closed = None;
        let flushed = wire.poll_flush(
            cx,
            || {
                let batch = Self::take_from(&mut s, max, self.capacity);
                closed = batch.closed;
                counters.handed_out(&batch, now);
                batch
                    .frames
                    .into_iter()
                    .map(|f| f.wire().clone())
                    .collect::<Vec<Bytes>>()
            },
            4,
        );
        match flushed {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => Poll::Ready(Flush::Failed),
            Poll::Ready(Ok(_)) => Poll::Ready(closed.map_or(Flush::Idle, Flush::Closed)),
        }
    }

    pub(crate) fn depth(&self) -> usize {
        self.lock().len()
    }

    /// Marks the queue closed (nothing more is queued) and wakes the writer.
    pub(crate) fn close(&self, code: CloseCode) {
        let mut s = self.lock();
        if s.closed.is_none() {
            s.closed = Some(code);
        }
        if code != CloseCode::Restart {
            // A closing connection's backlog is freed at once; on a restart
            // the writer drains it first.
            s.high.clear();
            s.normal.clear();
        }
        drop(s);
        self.notify.notify_one();
    }

    pub(crate) fn closed(&self) -> Option<CloseCode> {
        self.lock().closed
    }

    /// Frees whatever is still queued (the connection is gone).
    pub(crate) fn clear(&self) {
        let mut s = self.lock();
        s.high.clear();
        s.normal.clear();
    }
}
