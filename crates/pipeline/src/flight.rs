//! Replies to callers, and single-flight: identical requests in flight share
//! one execution.
//
// Design: a request without a key has one oneshot sender. A keyed request
// has a `Flight` in the in-flight map, holding every caller's sender; a
// caller that arrives while the key is in flight just adds its sender (no
// queueing, no room taken). Completion first removes the flight from the map,
// then sends to everyone, so a caller arriving after that starts a new flight
// rather than joining one that has already answered. A reply dropped without
// an answer (the pipeline stopped, a task was aborted) answers
// `PipelineError::Shutdown`, so no caller waits forever.
//
// Each caller of a flight keeps its own priority and deadline. The shared
// execution runs at the most urgent priority and the latest deadline among
// the callers still waiting (no deadline beats any deadline), so a joiner
// raises the queued request's priority (the pipeline moves it up a level)
// and extends its deadline. A caller whose own deadline passes gets
// `DeadlineExceeded` from its `Ticket`'s timer and stops counting; a caller
// that drops its ticket closes its channel and stops counting. The
// execution is cancelled only when no caller counts any more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use brisk_core::Priority;
use tokio::sync::oneshot;

use crate::error::PipelineError;

pub(crate) type Outcome<T, E> = Result<T, PipelineError<E>>;
type Waiters<T, E> = Vec<Caller<T, E>>;

/// One caller of a flight.
struct Caller<T, E> {
    tx: oneshot::Sender<Outcome<T, E>>,
    priority: Priority,
    deadline: Option<Instant>,
}

impl<T, E> Caller<T, E> {
    /// Whether it still waits at `now` (its ticket is held and its deadline
    /// has not passed).
    fn waits(&self, now: Instant) -> bool {
        !self.tx.is_closed() && self.deadline.is_none_or(|d| d > now)
    }
}

/// The map from single-flight key to its flight.
pub(crate) struct Inflight<T, E> {
    map: Mutex<HashMap<u128, Arc<Flight<T, E>>>>,
}

pub(crate) struct Flight<T, E> {
    key: u128,
    waiters: Mutex<Option<Waiters<T, E>>>,
}

/// Where a request's result goes.
pub(crate) struct Reply<T: Clone, E: Clone> {
    target: Option<Target<T, E>>,
}

enum Target<T, E> {
    One(oneshot::Sender<Outcome<T, E>>),
    Shared(Arc<Inflight<T, E>>, Arc<Flight<T, E>>),
}

/// What `Inflight::join` did.
pub(crate) enum Joined<T: Clone, E: Clone> {
    /// An identical request is in flight; this receiver gets its result.
    /// `raised` is the flight when this caller made it more urgent: the
    /// queued request must move up to the caller's priority.
    Existing {
        rx: oneshot::Receiver<Outcome<T, E>>,
        raised: Option<Arc<Flight<T, E>>>,
    },
    /// A new flight: queue the request with this reply.
    New(Reply<T, E>, oneshot::Receiver<Outcome<T, E>>),
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T, E> Inflight<T, E> {
    pub(crate) fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.map).len()
    }
}

impl<T: Clone, E: Clone> Inflight<T, E> {
    /// Joins the flight of `key`, or starts one, as a caller with
    /// `priority` and `deadline` (checked against `now`). A new flight that
    /// is then refused (shed) answers its refusal to everyone who joined it.
    pub(crate) fn join(
        self: &Arc<Self>,
        key: u128,
        priority: Priority,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Joined<T, E> {
        let (tx, rx) = oneshot::channel();
        let caller = Caller {
            tx,
            priority,
            deadline,
        };
        let mut map = lock(&self.map);
        if let Some(flight) = map.get(&key) {
            let mut waiters = lock(&flight.waiters);
            if let Some(list) = waiters.as_mut() {
                let was = list.iter().filter(|c| c.waits(now)).map(|c| c.priority).max();
                list.push(caller);
                let raised = was.is_some_and(|was| priority > was).then(|| Arc::clone(flight));
                return Joined::Existing { rx, raised };
            }
        }
        let flight = Arc::new(Flight {
            key,
            waiters: Mutex::new(Some(vec![caller])),
        });
        map.insert(key, Arc::clone(&flight));
        Joined::New(
            Reply {
                target: Some(Target::Shared(Arc::clone(self), flight)),
            },
            rx,
        )
    }

    fn finish(&self, flight: &Arc<Flight<T, E>>) -> Waiters<T, E> {
        {
            let mut map = lock(&self.map);
            if map.get(&flight.key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
                map.remove(&flight.key);
            }
        }
        lock(&flight.waiters).take().unwrap_or_default()
    }
}

impl<T: Clone, E: Clone> Reply<T, E> {
    pub(crate) fn one() -> (Self, oneshot::Receiver<Outcome<T, E>>) {
        let (tx, rx) = oneshot::channel();
        (
            Self {
                target: Some(Target::One(tx)),
            },
            rx,
        )
    }

    /// Whether every caller waiting on this reply went away.
    pub(crate) fn is_closed(&self) -> bool {
        match &self.target {
            None => true,
            Some(Target::One(tx)) => tx.is_closed(),
            Some(Target::Shared(_, flight)) => lock(&flight.waiters)
                .as_ref()
                .is_none_or(|w| w.iter().all(|c| c.tx.is_closed())),
        }
    }

    /// Whether this reply belongs to `flight`.
    pub(crate) fn is_flight(&self, flight: &Arc<Flight<T, E>>) -> bool {
        matches!(&self.target, Some(Target::Shared(_, f)) if Arc::ptr_eq(f, flight))
    }

    /// The deadline the execution keeps: `own` for a single caller; for a
    /// flight, the latest deadline among the callers still holding their
    /// ticket (`None` if one of them has none), or `own` if none is left.
    pub(crate) fn deadline(&self, own: Option<Instant>) -> Option<Instant> {
        let Some(Target::Shared(_, flight)) = &self.target else {
            return own;
        };
        let waiters = lock(&flight.waiters);
        let mut open = waiters.iter().flatten().filter(|c| !c.tx.is_closed()).peekable();
        if open.peek().is_none() {
            return own;
        }
        let mut latest: Option<Instant> = None;
        for c in open {
            let d = c.deadline?;
            latest = Some(latest.map_or(d, |l| l.max(d)));
        }
        latest
    }

    /// For a flight, the most urgent priority among its callers still
    /// waiting at `now`; `None` for a single caller or when none waits.
    pub(crate) fn priority(&self, now: Instant) -> Option<Priority> {
        let Some(Target::Shared(_, flight)) = &self.target else {
            return None;
        };
        lock(&flight.waiters)
            .iter()
            .flatten()
            .filter(|c| c.waits(now))
            .map(|c| c.priority)
            .max()
    }

    /// How many callers wait on it (1 without single-flight).
    pub(crate) fn callers(&self) -> usize {
        match &self.target {
            None => 0,
            Some(Target::One(_)) => 1,
            Some(Target::Shared(_, flight)) => lock(&flight.waiters)
                .as_ref()
                .map_or(0, |w| w.iter().filter(|c| !c.tx.is_closed()).count()),
        }
    }

    /// Sends the result to every caller.
    pub(crate) fn send(mut self, outcome: Outcome<T, E>) {
        self.deliver(outcome);
    }

    fn deliver(&mut self, outcome: Outcome<T, E>) {
        match self.target.take() {
            None => {}
            Some(Target::One(tx)) => {
                let _ = tx.send(outcome);
            }
            Some(Target::Shared(inflight, flight)) => {
                let waiters = inflight.finish(&flight);
                let mut waiters = waiters.into_iter().peekable();
                while let Some(c) = waiters.next() {
                    if waiters.peek().is_none() {
                        let _ = c.tx.send(outcome);
                        break;
                    }
                    let _ = c.tx.send(outcome.clone());
                }
            }
        }
    }
}

impl<T: Clone, E: Clone> Drop for Reply<T, E> {
    fn drop(&mut self) {
        if self.target.is_some() {
            self.deliver(Err(PipelineError::Shutdown));
        }
    }
}
