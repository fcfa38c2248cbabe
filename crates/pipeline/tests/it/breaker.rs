//! Circuit breaker transitions, alone and inside a pipeline.

use std::time::Duration;

use brisk_core::ManualClock;
use brisk_pipeline::{
    BreakerConfig, BreakerState, CircuitBreaker, EjectionConfig, Endpoint, Pipeline, PipelineError,
    TokioClock,
};

use crate::common::Echo;

fn breaker(clock: &ManualClock) -> CircuitBreaker {
    let config = BreakerConfig::default()
        .failure_rate(0.5)
        .min_requests(4)
        .window(10)
        .open_for(Duration::from_secs(30))
        .half_open_probes(2);
    CircuitBreaker::new(config, clock.shared()).unwrap()
}

fn call(b: &CircuitBreaker, ok: bool) {
    b.try_acquire().unwrap();
    b.record(ok);
}

#[test]
fn closed_open_half_open_closed() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    // Three failures of three: under the minimum of 4 calls, still closed.
    for _ in 0..3 {
        call(&b, false);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    call(&b, false);
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.try_acquire(), Err(Duration::from_secs(30)));
    clock.advance(Duration::from_secs(29));
    assert_eq!(b.try_acquire(), Err(Duration::from_secs(1)));
    clock.advance(Duration::from_secs(1));
    assert_eq!(b.state(), BreakerState::HalfOpen);
    // Two probes at most, and both must succeed.
    b.try_acquire().unwrap();
    b.try_acquire().unwrap();
    assert_eq!(b.try_acquire(), Err(Duration::ZERO));
    b.record(true);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    b.record(true);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.times_opened(), 1);
}

#[test]
fn a_failed_probe_opens_it_again_and_the_rate_is_over_the_window() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    // Never half failed once 4 calls are in: 4 failures among 10 at the end.
    for ok in [true, true, true, true, false, true, false, true, false, false] {
        call(&b, ok);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    // The window slides: the oldest success leaves, a failure comes: 50 %.
    call(&b, false);
    assert_eq!(b.state(), BreakerState::Open);
    clock.advance(Duration::from_secs(30));
    call(&b, false);
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.times_opened(), 2);
    assert_eq!(b.try_acquire(), Err(Duration::from_secs(30)));
}

#[test]
fn bad_breaker_settings_name_the_field() {
    let clock = ManualClock::new();
    for (config, field) in [
        (BreakerConfig::default().failure_rate(0.0), "breaker.failure_rate"),
        (BreakerConfig::default().failure_rate(1.5), "breaker.failure_rate"),
        (BreakerConfig::default().window(0), "breaker.window"),
        (BreakerConfig::default().min_requests(200), "breaker.min_requests"),
        (
            BreakerConfig::default().open_for(Duration::ZERO),
            "breaker.open_for",
        ),
        (
            BreakerConfig::default().half_open_probes(0),
            "breaker.half_open_probes",
        ),
    ] {
        assert_eq!(
            CircuitBreaker::new(config, clock.shared()).unwrap_err().field(),
            field
        );
    }
}

/// While the only endpoint's breaker is open, the fallback answers and the
/// upstream is not called.
#[tokio::test(start_paused = true)]
async fn the_fallback_answers_while_the_breaker_is_open() {
    let echo = Echo::default();
    echo.failing_endpoints.lock().unwrap().push("api".into());
    let pipeline = Pipeline::builder(Echo {
        fallback: None,
        ..echo.clone()
    })
    .endpoints([Endpoint::new("api")])
    .breaker(
        BreakerConfig::default()
            .min_requests(3)
            .window(3)
            .open_for(Duration::from_secs(10)),
    )
    .ejection(EjectionConfig::default().after_failures(100))
    .clock(TokioClock::shared())
    .build()
    .unwrap();
    for i in 0..3 {
        assert!(matches!(
            pipeline.call(i).await,
            Err(PipelineError::Upstream { .. })
        ));
    }
    assert_eq!(pipeline.stats().endpoints[0].breaker, BreakerState::Open);
    match pipeline.call(3).await {
        Err(PipelineError::Unavailable { retry_after }) => assert_eq!(retry_after, Duration::from_secs(10)),
        other => panic!("{other:?}"),
    }
    assert_eq!(echo.calls().len(), 3);

    // The same with a fallback.
    let with_fallback = Pipeline::builder(Echo {
        fallback: Some(77),
        ..echo.clone()
    })
    .endpoints([Endpoint::new("api")])
    .breaker(
        BreakerConfig::default()
            .min_requests(3)
            .window(3)
            .open_for(Duration::from_secs(10)),
    )
    .clock(TokioClock::shared())
    .build()
    .unwrap();
    for i in 0..5 {
        assert_eq!(with_fallback.call(i).await, Ok(77));
    }
    assert_eq!(
        echo.calls().len(),
        6,
        "two calls were answered by the fallback alone"
    );
    assert_eq!(with_fallback.stats().fallbacks, 5);
    // After the open period a probe goes through; the upstream is healthy again.
    echo.failing_endpoints.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(with_fallback.call(8).await, Ok(16));
    assert_eq!(with_fallback.stats().endpoints[0].breaker, BreakerState::Closed);
}
