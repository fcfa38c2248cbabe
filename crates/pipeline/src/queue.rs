//! The bounded priority queue: five FIFO levels, aging, admission limits per
//! priority and eviction of the least urgent.
//
// Design: one `VecDeque` per priority under the pipeline's one mutex. A
// request is a few words (its payload, times, keys, reply channel), and every
// operation touches one or two deque ends, so a mutex held for tens of
// nanoseconds beats lock-free structures that would still need a lock for
// aging and eviction.
//
// Aging rule (documented on `PipelineBuilder::max_wait`): a request that has
// waited at least its priority's bound is "overdue"; overdue requests go
// before every other request, oldest first. Since each level is FIFO only
// its head can be the oldest, so checking five heads suffices. Under a
// constant urgent load a background request therefore waits at most its bound
// plus the time for a worker to free up.
//
// Shedding rule (Stripe's "load shedders"): each priority has an admission
// limit, a share of the capacity (background 50 %, low 70 %, normal 85 %,
// high and urgent 100 % by default). A request arriving when the queue holds
// at least its limit evicts the newest queued request of a strictly lower
// priority (the least urgent level first); if there is none it is refused
// (or waits for room, with `submit`).
//
// Batches: while a worker lingers to fill a batch for key K, K is in
// `forming`; other workers skip K's requests so that they join that batch
// instead of starting small ones of their own.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use brisk_core::Priority;

use crate::error::ShedReason;

/// One queued request with what the queue needs to order it.
#[derive(Debug)]
pub(crate) struct Queued<T> {
    pub(crate) item: T,
    pub(crate) priority: Priority,
    pub(crate) enqueued: Instant,
    pub(crate) batch_key: u64,
}

/// The queue's fixed parameters, validated by the builder.
#[derive(Clone, Debug)]
pub(crate) struct QueueLimits {
    pub(crate) admit: [usize; Priority::COUNT],
    pub(crate) max_wait: [Option<Duration>; Priority::COUNT],
}

#[derive(Debug)]
pub(crate) struct Queue<T> {
    levels: [VecDeque<Queued<T>>; Priority::COUNT],
    len: usize,
    limits: QueueLimits,
    forming: Vec<u64>,
}

/// What `admit` did.
#[derive(Debug)]
pub(crate) enum Admit<T> {
    /// Queued; `evicted` was dropped to make room.
    Queued { evicted: Option<Queued<T>> },
    /// Not queued: handed back with the reason.
    Refused(Queued<T>, ShedReason),
}

impl<T> Queue<T> {
    pub(crate) fn new(limits: QueueLimits) -> Self {
        Self {
            levels: Default::default(),
            len: 0,
            limits,
            forming: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn depths(&self) -> [usize; Priority::COUNT] {
        std::array::from_fn(|i| self.levels[i].len())
    }

    /// Queues `q` if its priority's admission limit allows, evicting a less
    /// urgent request when the queue is at that limit.
    pub(crate) fn admit(&mut self, q: Queued<T>) -> Admit<T> {
        let p = q.priority.index();
        let limit = self.limits.admit[p];
        let mut evicted = None;
        if self.len >= limit {
            // The least urgent non-empty level below `p` gives up its newest.
            let victim = (p + 1..Priority::COUNT)
                .rev()
                .find(|&lvl| !self.levels[lvl].is_empty());
            match victim {
                Some(lvl) => {
                    evicted = self.levels[lvl].pop_back();
                    self.len -= 1;
                }
                None => {
                    let depth = self.len;
                    return Admit::Refused(q, ShedReason::Overloaded { depth, limit });
                }
            }
        }
        self.levels[p].push_back(q);
        self.len += 1;
        Admit::Queued { evicted }
    }

    /// The next request to serve at `now`: the oldest overdue one if any
    /// (aging), else the head of the most urgent non-empty level. Requests
    /// of a batch key being formed are skipped.
    pub(crate) fn pop(&mut self, now: Instant) -> Option<Queued<T>> {
        if self.len == 0 {
            return None;
        }
        let mut overdue: Option<(usize, usize, Instant)> = None;
        let mut best: Option<(usize, usize)> = None;
        for lvl in 0..Priority::COUNT {
            let Some(pos) = self.first_free(lvl) else { continue };
            if best.is_none() {
                best = Some((lvl, pos));
            }
            let enqueued = self.levels[lvl][pos].enqueued;
            if let Some(bound) = self.limits.max_wait[lvl]
                && now.saturating_duration_since(enqueued) >= bound
                && overdue.is_none_or(|(_, _, t)| enqueued < t)
            {
                overdue = Some((lvl, pos, enqueued));
            }
        }
        let (lvl, pos) = overdue.map(|(l, p, _)| (l, p)).or(best)?;
        let q = self.levels[lvl].remove(pos);
        if q.is_some() {
            self.len -= 1;
        }
        q
    }

    /// Moves the first request matching `is` from a level less urgent than
    /// `to` up to `to`, in arrival order there. Returns whether it found one.
    pub(crate) fn promote(&mut self, to: Priority, is: impl Fn(&T) -> bool) -> bool {
        for lvl in to.index() + 1..Priority::COUNT {
            let Some(pos) = self.levels[lvl].iter().position(|q| is(&q.item)) else {
                continue;
            };
            let Some(mut q) = self.levels[lvl].remove(pos) else {
                continue;
            };
            q.priority = to;
            let level = &mut self.levels[to.index()];
            let at = level
                .iter()
                .rposition(|o| o.enqueued <= q.enqueued)
                .map_or(0, |i| i + 1);
            level.insert(at, q);
            return true;
        }
        false
    }

    /// Moves up to `max` more requests with `key` into `out`, most urgent
    /// first.
    pub(crate) fn take_key(&mut self, key: u64, max: usize, out: &mut Vec<Queued<T>>) {
        let mut want = max;
        for level in &mut self.levels {
            if want == 0 {
                break;
            }
            let mut i = 0;
            while i < level.len() && want > 0 {
                if level[i].batch_key == key {
                    if let Some(q) = level.remove(i) {
                        out.push(q);
                        self.len -= 1;
                        want -= 1;
                    }
                } else {
                    i += 1;
                }
            }
        }
    }

    pub(crate) fn start_forming(&mut self, key: u64) {
        self.forming.push(key);
    }

    pub(crate) fn stop_forming(&mut self, key: u64) {
        if let Some(i) = self.forming.iter().position(|&k| k == key) {
            self.forming.swap_remove(i);
        }
    }

    pub(crate) fn is_forming(&self, key: u64) -> bool {
        self.forming.contains(&key)
    }

    /// When the longest-waiting request arrived.
    pub(crate) fn oldest(&self) -> Option<Instant> {
        self.levels
            .iter()
            .filter_map(|l| l.front().map(|q| q.enqueued))
            .min()
    }

    /// Everything queued, most urgent first.
    pub(crate) fn drain(&mut self) -> Vec<Queued<T>> {
        self.len = 0;
        self.levels.iter_mut().flat_map(|l| l.drain(..)).collect()
    }

    fn first_free(&self, lvl: usize) -> Option<usize> {
        let level = &self.levels[lvl];
        if self.forming.is_empty() {
            return if level.is_empty() { None } else { Some(0) };
        }
        level.iter().position(|q| !self.forming.contains(&q.batch_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(capacity: usize) -> QueueLimits {
        QueueLimits {
            admit: [
                capacity,
                capacity,
                capacity * 85 / 100,
                capacity * 70 / 100,
                capacity / 2,
            ],
            max_wait: [None, None, None, None, Some(Duration::from_secs(10))],
        }
    }

    fn q(item: u32, priority: Priority, at: Instant) -> Queued<u32> {
        Queued {
            item,
            priority,
            enqueued: at,
            batch_key: u64::from(item % 2),
        }
    }

    #[test]
    fn pops_by_priority_then_fifo() {
        let t = Instant::now();
        let mut queue = Queue::new(limits(100));
        for (i, p) in [
            Priority::Low,
            Priority::Urgent,
            Priority::Normal,
            Priority::Urgent,
        ]
        .into_iter()
        .enumerate()
        {
            assert!(matches!(
                queue.admit(q(u32::try_from(i).unwrap(), p, t)),
                Admit::Queued { evicted: None }
            ));
        }
        let order: Vec<u32> = std::iter::from_fn(|| queue.pop(t).map(|q| q.item)).collect();
        assert_eq!(order, [1, 3, 2, 0]);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn an_overdue_request_goes_first() {
        let t = Instant::now();
        let mut queue = Queue::new(limits(100));
        let _ = queue.admit(q(7, Priority::Background, t));
        let _ = queue.admit(q(1, Priority::Urgent, t + Duration::from_secs(9)));
        // Not yet overdue: urgent first.
        assert_eq!(queue.pop(t + Duration::from_secs(9)).map(|q| q.item), Some(1));
        let _ = queue.admit(q(3, Priority::Urgent, t + Duration::from_secs(10)));
        assert_eq!(queue.pop(t + Duration::from_secs(10)).map(|q| q.item), Some(7));
    }

    #[test]
    fn promote_moves_up_in_arrival_order() {
        let t = Instant::now();
        let mut queue = Queue::new(limits(100));
        let _ = queue.admit(q(1, Priority::Urgent, t));
        let _ = queue.admit(q(5, Priority::Low, t + Duration::from_secs(1)));
        let _ = queue.admit(q(3, Priority::Urgent, t + Duration::from_secs(2)));
        assert!(!queue.promote(Priority::Low, |&i| i == 5));
        assert!(queue.promote(Priority::Urgent, |&i| i == 5));
        assert_eq!(queue.depths(), [3, 0, 0, 0, 0]);
        let order: Vec<u32> = std::iter::from_fn(|| queue.pop(t).map(|q| q.item)).collect();
        assert_eq!(order, [1, 5, 3]);
    }

    #[test]
    fn forming_keys_are_skipped_and_taken_together() {
        let t = Instant::now();
        let mut queue = Queue::new(limits(100));
        for i in 0..6 {
            let _ = queue.admit(q(i, Priority::Normal, t));
        }
        queue.start_forming(0);
        assert!(queue.is_forming(0));
        assert_eq!(queue.pop(t).map(|q| q.item), Some(1));
        let mut out = Vec::new();
        queue.take_key(0, 2, &mut out);
        assert_eq!(out.iter().map(|q| q.item).collect::<Vec<_>>(), [0, 2]);
        queue.stop_forming(0);
        assert_eq!(queue.pop(t).map(|q| q.item), Some(3));
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.drain().len(), 2);
    }
}
