// Single-flight: concurrent misses on one key run the loader once.
//
// The first caller to miss registers a `Flight` for the key and runs the
// loader; later callers find the flight and wait on it, blocking (`get_with`,
// on a condvar) or asynchronously (`get_or_load`, through wakers), so the
// same flight serves both kinds of callers and needs no async runtime.
//
// The leader's result is published in the flight: a value (already inserted
// in the cache), or an error shared by every waiter and never cached. If the
// leader goes away without a result (its future was dropped, or its loader
// panicked), the flight is marked abandoned and every waiter starts over, one
// of them becoming the new leader.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

pub(crate) type AnyError = Arc<dyn Any + Send + Sync>;

#[derive(Debug)]
pub(crate) enum Outcome<V> {
    Loaded(V),
    Failed(AnyError),
    Abandoned,
}

#[derive(Debug)]
enum State<V> {
    Running(Vec<Waker>),
    Done(Outcome<V>),
}

#[derive(Debug)]
pub(crate) struct Flight<V> {
    state: Mutex<State<V>>,
    done: Condvar,
}

impl<V: Clone> Flight<V> {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State::Running(Vec::new())),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<V>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes the leader's outcome and wakes every waiter.
    pub(crate) fn finish(&self, outcome: Outcome<V>) {
        let wakers = {
            let mut state = self.lock();
            match std::mem::replace(&mut *state, State::Done(outcome)) {
                State::Running(wakers) => wakers,
                State::Done(_) => Vec::new(),
            }
        };
        self.done.notify_all();
        for w in wakers {
            w.wake();
        }
    }

    fn outcome(state: &State<V>) -> Option<Outcome<V>> {
        match state {
            State::Running(_) => None,
            State::Done(Outcome::Loaded(v)) => Some(Outcome::Loaded(v.clone())),
            State::Done(Outcome::Failed(e)) => Some(Outcome::Failed(Arc::clone(e))),
            State::Done(Outcome::Abandoned) => Some(Outcome::Abandoned),
        }
    }

    /// Blocks until the leader finishes.
    pub(crate) fn wait(&self) -> Outcome<V> {
        let mut state = self.lock();
        loop {
            if let Some(o) = Self::outcome(&state) {
                return o;
            }
            state = self.done.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits asynchronously until the leader finishes.
    pub(crate) fn wait_async(self: &Arc<Self>) -> WaitFlight<V> {
        WaitFlight {
            flight: Arc::clone(self),
        }
    }
}

/// The future returned by [`Flight::wait_async`].
#[derive(Debug)]
pub(crate) struct WaitFlight<V> {
    flight: Arc<Flight<V>>,
}

impl<V: Clone> Future for WaitFlight<V> {
    type Output = Outcome<V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<V>> {
        let mut state = self.flight.lock();
        if let Some(o) = Flight::outcome(&state) {
            return Poll::Ready(o);
        }
        if let State::Running(wakers) = &mut *state
            && !wakers.iter().any(|w| w.will_wake(cx.waker()))
        {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
