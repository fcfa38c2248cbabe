//! Single-flight callers: a joiner raises the shared execution's priority
//! and extends its deadline; each caller keeps its own deadline; the
//! execution is cancelled only when every caller is gone.

use std::time::Duration;

use brisk_core::{ContentHash, Priority};
use brisk_pipeline::{DeadlineStage, Job, Pipeline, PipelineError, TokioClock};

use crate::common::{Echo, until};

fn one_worker(handler: Echo) -> brisk_pipeline::PipelineBuilder<Echo> {
    Pipeline::builder(handler).workers(1).clock(TokioClock::shared())
}

const IN_FLIGHT: PipelineError<crate::common::TestError> = PipelineError::DeadlineExceeded {
    stage: DeadlineStage::InFlight,
};

#[tokio::test(start_paused = true)]
async fn a_joiner_extends_the_deadline_and_the_first_caller_expires_alone() {
    let (echo, gate) = Echo::gated();
    let pipeline = one_worker(echo.clone()).build().unwrap();
    let blocker = pipeline.try_submit(0).unwrap();
    until(|| pipeline.stats().busy_workers == 1).await;
    let key = ContentHash::of("shared");
    let first = pipeline
        .try_submit(Job::new(21).key(key).timeout(Duration::from_secs(1)))
        .unwrap();
    let joiner = pipeline
        .try_submit(Job::new(21).key(key).timeout(Duration::from_secs(10)))
        .unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    // The first caller's own deadline passed: it alone gets the error.
    assert_eq!(first.await, Err(IN_FLIGHT));
    gate.add_permits(100);
    assert_eq!(blocker.await, Ok(0));
    // The joiner's later deadline kept the shared request alive.
    assert_eq!(joiner.await, Ok(42));
    assert_eq!(echo.items(), [0, 21]);
    let stats = pipeline.stats();
    assert_eq!((stats.deadline_misses, stats.completed), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn a_joiner_expires_alone_while_the_first_caller_waits() {
    let (echo, gate) = Echo::gated();
    let pipeline = one_worker(echo.clone()).build().unwrap();
    let blocker = pipeline.try_submit(0).unwrap();
    until(|| pipeline.stats().busy_workers == 1).await;
    let key = ContentHash::of("shared");
    let first = pipeline.try_submit(Job::new(5).key(key)).unwrap();
    let joiner = pipeline
        .try_submit(Job::new(5).key(key).timeout(Duration::from_secs(1)))
        .unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(joiner.await, Err(IN_FLIGHT));
    gate.add_permits(100);
    assert_eq!(blocker.await, Ok(0));
    assert_eq!(first.await, Ok(10));
    assert_eq!(echo.items(), [0, 5]);
}

#[tokio::test(start_paused = true)]
async fn the_shared_request_fails_when_every_deadline_passed() {
    let (echo, gate) = Echo::gated();
    let pipeline = one_worker(echo.clone()).build().unwrap();
    let blocker = pipeline.try_submit(0).unwrap();
    until(|| pipeline.stats().busy_workers == 1).await;
    let key = ContentHash::of("shared");
    let callers: Vec<_> = [1, 3]
        .into_iter()
        .map(|s| {
            let ticket = pipeline
                .try_submit(Job::new(7).key(key).timeout(Duration::from_secs(s)))
                .unwrap();
            tokio::spawn(ticket)
        })
        .collect();
    tokio::time::advance(Duration::from_secs(4)).await;
    for c in callers {
        assert_eq!(c.await.unwrap(), Err(IN_FLIGHT));
    }
    gate.add_permits(100);
    assert_eq!(blocker.await, Ok(0));
    until(|| pipeline.stats().busy_workers == 0 && pipeline.queue_len() == 0).await;
    // Never started: every caller's deadline had passed.
    assert_eq!(echo.items(), [0]);
    assert_eq!(pipeline.stats().in_flight_keys, 0);
}

#[tokio::test(start_paused = true)]
async fn a_more_urgent_joiner_raises_the_priority() {
    let (echo, gate) = Echo::gated();
    let pipeline = one_worker(echo.clone()).build().unwrap();
    let blocker = pipeline.try_submit(0).unwrap();
    until(|| pipeline.stats().busy_workers == 1).await;
    let key = ContentHash::of("raised");
    let low = pipeline
        .try_submit(Job::new(5).key(key).priority(Priority::Low))
        .unwrap();
    let normal = pipeline
        .try_submit(Job::new(7).priority(Priority::Normal))
        .unwrap();
    assert_eq!(pipeline.stats().queued, [0, 0, 1, 1, 0]);
    let urgent = pipeline
        .try_submit(Job::new(5).key(key).priority(Priority::Urgent))
        .unwrap();
    assert_eq!(pipeline.stats().queued, [1, 0, 1, 0, 0]);
    gate.add_permits(100);
    assert_eq!(blocker.await, Ok(0));
    assert_eq!(urgent.await, Ok(10));
    assert_eq!(low.await, Ok(10));
    assert_eq!(normal.await, Ok(14));
    // The shared request went before the normal one.
    assert_eq!(echo.items(), [0, 5, 7]);
}

#[tokio::test(start_paused = true)]
async fn a_less_urgent_joiner_does_not_lower_the_priority() {
    let (echo, gate) = Echo::gated();
    let pipeline = one_worker(echo.clone()).build().unwrap();
    let blocker = pipeline.try_submit(0).unwrap();
    until(|| pipeline.stats().busy_workers == 1).await;
    let key = ContentHash::of("kept");
    let high = pipeline
        .try_submit(Job::new(5).key(key).priority(Priority::High))
        .unwrap();
    let background = pipeline
        .try_submit(Job::new(5).key(key).priority(Priority::Background))
        .unwrap();
    assert_eq!(pipeline.stats().queued, [0, 1, 0, 0, 0]);
    gate.add_permits(100);
    assert_eq!(blocker.await, Ok(0));
    assert_eq!((high.await, background.await), (Ok(10), Ok(10)));
    assert_eq!(echo.items(), [0, 5]);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_caller_leaves_and_the_last_one_cancels() {
    let (echo, gate) = Echo::gated();
    let pipeline = one_worker(echo.clone()).build().unwrap();
    let blocker = pipeline.try_submit(0).unwrap();
    until(|| pipeline.stats().busy_workers == 1).await;
    // The first caller leaves; the joiner still gets the shared result.
    let kept = ContentHash::of("kept");
    let first = pipeline.try_submit(Job::new(2).key(kept)).unwrap();
    let joiner = pipeline.try_submit(Job::new(2).key(kept)).unwrap();
    drop(first);
    // Both callers of another flight leave: it is never started.
    let gone = ContentHash::of("gone");
    let a = pipeline.try_submit(Job::new(3).key(gone)).unwrap();
    let b = pipeline.try_submit(Job::new(3).key(gone)).unwrap();
    drop(b);
    drop(a);
    gate.add_permits(100);
    assert_eq!(blocker.await, Ok(0));
    assert_eq!(joiner.await, Ok(4));
    until(|| pipeline.stats().busy_workers == 0 && pipeline.queue_len() == 0).await;
    assert_eq!(echo.items(), [0, 2]);
    let stats = pipeline.stats();
    assert_eq!((stats.cancelled, stats.dedup_hits), (1, 2));
}
