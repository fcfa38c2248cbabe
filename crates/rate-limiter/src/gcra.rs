//! The engine: GCRA over one `AtomicU64` per window, all windows or none.
//
// Design. Each window keeps governor's state: a "theoretical arrival time"
// (TAT), in nanoseconds since the limiter's epoch. A request of cost `c` on a
// window with emission interval `T` and burst capacity `C = limit × T`
// passes when `max(tat, now) + c×T − now ≤ C`, and then stores that sum as
// the new TAT. A TAT at or before `now` means a full window, so a key whose
// TATs are all in the past holds no information and can be dropped: that is
// how keyed state is evicted without changing any decision.
//
// All-or-nothing across windows without a lock: windows are spent one by one
// with a compare-and-swap each; if window `j` rejects, windows `0..j` are
// given back (their TATs lowered by what was added). Between the spend and
// the give-back another caller may see less room than there is and be
// rejected (the safe side); nobody can ever see more, because each window's
// CAS is exact on its own. So no window ever admits more than its quota.
//
// `reserve` (for `acquire`) spends at once and returns the instant at which
// the spend becomes conforming: callers sleep until then. Reservations are
// served in the order they were made (FIFO), and a weighted request waits in
// proportion to its cost, so nobody starves.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::quota::Params;

/// Why the engine said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deny {
    /// Window `index` has no room now; room comes back after `retry_after`
    /// nanoseconds.
    Limited { index: usize, retry_after: u64 },
    /// The cost exceeds window `index`'s limit: it can never pass.
    TooLarge { index: usize },
    /// The wait for window `index` (`wait` ns) would pass the deadline.
    Deadline { index: usize, wait: u64 },
}

/// Fails if `cost` can never pass one of the windows.
#[inline]
pub(crate) fn check_cost(params: &[Params], cost: u64) -> Result<(), Deny> {
    match params.iter().position(|p| cost > p.max_cost) {
        Some(index) => Err(Deny::TooLarge { index }),
        None => Ok(()),
    }
}

/// Spends `cost` on every window, or on none. `cost` must have passed
/// [`check_cost`].
#[inline]
pub(crate) fn check(params: &[Params], tats: &[AtomicU64], now: u64, cost: u64) -> Result<(), Deny> {
    if let ([p], [tat]) = (params, tats) {
        return spend(p, tat, now, cost)
            .map(drop)
            .map_err(|retry_after| Deny::Limited {
                index: 0,
                retry_after,
            });
    }
    for (i, (p, tat)) in params.iter().zip(tats).enumerate() {
        if spend(p, tat, now, cost).is_err() {
            for (p, tat) in params[..i].iter().zip(tats) {
                give_back(tat, cost * p.interval);
            }
            return Err(worst(params, tats, now, cost).unwrap_or(Deny::Limited {
                index: i,
                retry_after: 0,
            }));
        }
    }
    Ok(())
}

/// One window's whole decision: the cost check, then one CAS loop on the
/// TAT (governor's work). For limiters with a single window.
#[inline]
pub(crate) fn spend_one(p: &Params, tat: &AtomicU64, now: u64, cost: u64) -> Result<(), Deny> {
    if cost > p.max_cost {
        return Err(Deny::TooLarge { index: 0 });
    }
    match spend(p, tat, now, cost) {
        Ok(_) => Ok(()),
        Err(retry_after) => Err(Deny::Limited {
            index: 0,
            retry_after,
        }),
    }
}

/// Whether `cost` would pass every window now, spending nothing.
#[inline]
pub(crate) fn peek(params: &[Params], tats: &[AtomicU64], now: u64, cost: u64) -> Result<(), Deny> {
    match worst(params, tats, now, cost) {
        Some(deny) => Err(deny),
        None => Ok(()),
    }
}

/// Gives back `cost` on every window (e.g. tokens estimated but not used).
pub(crate) fn refund(params: &[Params], tats: &[AtomicU64], cost: u64) {
    for (p, tat) in params.iter().zip(tats) {
        give_back(tat, cost.saturating_mul(p.interval));
    }
}

/// A spend made ahead of time by [`reserve`].
#[derive(Debug)]
pub(crate) struct Reserved {
    /// The instant (ns since the epoch) at which the spend conforms.
    pub(crate) ready: u64,
    /// Each window's TAT as this reservation left it, to cancel it.
    pub(crate) ends: Vec<u64>,
}

/// Spends `cost` on every window now, whatever the wait, and says when it
/// conforms. Not before `not_before`; fails without spending if that would
/// be after `deadline`.
pub(crate) fn reserve(
    params: &[Params],
    tats: &[AtomicU64],
    now: u64,
    cost: u64,
    not_before: u64,
    deadline: Option<u64>,
) -> Result<Reserved, Deny> {
    let mut ends = Vec::with_capacity(params.len());
    let mut ready = now.max(not_before);
    let mut worst_index = 0;
    for (i, (p, tat)) in params.iter().zip(tats).enumerate() {
        let inc = cost * p.interval;
        let mut cur = tat.load(Relaxed);
        let end = loop {
            let new = cur.max(now) + inc;
            match tat.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                Ok(_) => break new,
                Err(actual) => cur = actual,
            }
        };
        let conforms = end.saturating_sub(p.capacity);
        if conforms > ready {
            ready = conforms;
            worst_index = i;
        }
        ends.push(end);
    }
    if let Some(deadline) = deadline
        && ready > deadline
    {
        for (p, tat) in params.iter().zip(tats) {
            give_back(tat, cost * p.interval);
        }
        return Err(Deny::Deadline {
            index: worst_index,
            wait: ready - now,
        });
    }
    Ok(Reserved { ready, ends })
}

/// Cancels a reservation that has not been used, where it is still the
/// last one on a window (nobody reserved after it); elsewhere its slot stays
/// taken, so that nobody queued behind it is overtaken by a later caller.
pub(crate) fn cancel(params: &[Params], tats: &[AtomicU64], reserved: &Reserved, cost: u64) {
    for ((p, tat), &end) in params.iter().zip(tats).zip(&reserved.ends) {
        let _ = tat.compare_exchange(end, end - cost * p.interval, Relaxed, Relaxed);
    }
}

/// Whether every window is full again at `now` (the state can be dropped).
#[inline]
pub(crate) fn is_idle(tats: &[AtomicU64], now: u64) -> bool {
    tats.iter().all(|t| t.load(Relaxed) <= now)
}

/// The latest TAT of the windows, for choosing what to evict.
#[inline]
pub(crate) fn latest(tats: &[AtomicU64]) -> u64 {
    tats.iter().map(|t| t.load(Relaxed)).max().unwrap_or(0)
}

/// Spends `cost` on one window; `Err(retry_after_ns)` when it has no room.
#[inline]
fn spend(p: &Params, tat: &AtomicU64, now: u64, cost: u64) -> Result<u64, u64> {
    let inc = cost * p.interval;
    let mut cur = tat.load(Relaxed);
    loop {
        let new = cur.max(now) + inc;
        let debt = new - now;
        if debt > p.capacity {
            return Err(debt - p.capacity);
        }
        match tat.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
            Ok(_) => return Ok(new),
            Err(actual) => cur = actual,
        }
    }
}

/// The window that would make `cost` wait longest now, if any would.
fn worst(params: &[Params], tats: &[AtomicU64], now: u64, cost: u64) -> Option<Deny> {
    let mut worst: Option<(usize, u64)> = None;
    for (i, (p, tat)) in params.iter().zip(tats).enumerate() {
        let debt = tat.load(Relaxed).max(now) + cost * p.interval - now;
        if debt > p.capacity && worst.is_none_or(|(_, w)| debt - p.capacity > w) {
            worst = Some((i, debt - p.capacity));
        }
    }
    worst.map(|(index, retry_after)| Deny::Limited { index, retry_after })
}

fn give_back(tat: &AtomicU64, amount: u64) {
    let _ = tat.fetch_update(Relaxed, Relaxed, |t| Some(t.saturating_sub(amount)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::{Quota, QuotaSet};

    fn tats(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn burst_then_rate() {
        let set = QuotaSet::new(vec![Quota::per_second(10)], "q").unwrap();
        let t = tats(1);
        for _ in 0..10 {
            check(&set.params, &t, 0, 1).unwrap();
        }
        assert_eq!(
            check(&set.params, &t, 0, 1),
            Err(Deny::Limited {
                index: 0,
                retry_after: 100_000_000
            })
        );
        check(&set.params, &t, 100_000_000, 1).unwrap();
    }

    #[test]
    fn second_window_rejects_and_first_is_not_spent() {
        let set = QuotaSet::new(vec![Quota::per_second(10), Quota::per_minute(3)], "q").unwrap();
        let t = tats(2);
        check(&set.params, &t, 0, 3).unwrap();
        let before = t[0].load(Relaxed);
        assert!(matches!(
            check(&set.params, &t, 0, 1),
            Err(Deny::Limited { index: 1, .. })
        ));
        assert_eq!(t[0].load(Relaxed), before);
    }

    #[test]
    fn reservations_are_fifo_and_cancel_at_the_tail_only() {
        let set = QuotaSet::new(vec![Quota::per_second(1)], "q").unwrap();
        let t = tats(1);
        let s = 1_000_000_000;
        let a = reserve(&set.params, &t, 0, 1, 0, None).unwrap();
        let b = reserve(&set.params, &t, 0, 1, 0, None).unwrap();
        let c = reserve(&set.params, &t, 0, 1, 0, None).unwrap();
        assert_eq!((a.ready, b.ready, c.ready), (0, s, 2 * s));
        cancel(&set.params, &t, &b, 1); // not the tail: its slot stays taken
        let d = reserve(&set.params, &t, 0, 1, 0, None).unwrap();
        assert_eq!(d.ready, 3 * s);
        cancel(&set.params, &t, &d, 1); // the tail: given back
        let e = reserve(&set.params, &t, 0, 1, 0, Some(3 * s)).unwrap();
        assert_eq!(e.ready, 3 * s);
        assert_eq!(
            reserve(&set.params, &t, 0, 1, 0, Some(3 * s)).unwrap_err(),
            Deny::Deadline {
                index: 0,
                wait: 4 * s
            }
        );
    }
}
