//! Retries, per-item failures, fallbacks, panics, rate limits, workers,
//! shutdown and stats.

use std::time::Duration;

use brisk_core::{Backoff, Clock, Priority, StatsReport};
use brisk_pipeline::{DeadlineStage, Job, Pipeline, PipelineError, TokioClock};
use brisk_rate_limiter::{Quota, RateLimiter};

use crate::common::{Echo, Step, TestError, until};

fn backoff(attempts: u32) -> Backoff {
    Backoff::builder()
        .base(Duration::from_millis(100))
        .max_attempts(attempts)
        .seed(1)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn retries_honour_retry_after() {
    let echo = Echo::default();
    echo.push(Step::Fail(TestError::busy(Some(Duration::from_secs(3)))));
    echo.push(Step::Fail(TestError::busy(Some(Duration::from_secs(3)))));
    let pipeline = Pipeline::builder(echo.clone())
        .backoff(backoff(5))
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    assert_eq!(pipeline.call(7).await, Ok(14));
    let calls = echo.calls();
    assert_eq!(calls.len(), 3);
    for pair in calls.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // The hint, plus a spread of at most a tenth of it.
        assert!(
            gap >= Duration::from_secs(3) && gap <= Duration::from_millis(3_300),
            "{gap:?}"
        );
    }
    assert_eq!(pipeline.stats().retries, 2);
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_the_attempts_or_on_a_fatal_error() {
    let echo = Echo::default();
    for _ in 0..3 {
        echo.push(Step::Fail(TestError::busy(None)));
    }
    let pipeline = Pipeline::builder(echo.clone())
        .backoff(backoff(3))
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    match pipeline.call(1).await {
        Err(PipelineError::Upstream {
            error,
            attempts,
            endpoint,
        }) => {
            assert_eq!(
                (error, attempts, endpoint.as_str()),
                (TestError::busy(None), 3, "default")
            );
        }
        other => panic!("{other:?}"),
    }
    echo.push(Step::Fail(TestError::fatal()));
    assert!(matches!(
        pipeline.call(2).await,
        Err(PipelineError::Upstream { attempts: 1, .. })
    ));
    assert_eq!(echo.calls().len(), 4);
    // A retry that would start after the deadline is not made.
    echo.push(Step::Fail(TestError::busy(Some(Duration::from_secs(5)))));
    let r = pipeline.call(Job::new(3).timeout(Duration::from_secs(2))).await;
    assert!(
        matches!(r, Err(PipelineError::Upstream { attempts: 1, .. })),
        "{r:?}"
    );
}

/// One item's failure is that item's: the rest of the batch succeeds, a
/// retryable item is retried alone, and a fallback answers the failed one.
#[tokio::test(start_paused = true)]
async fn partial_failures_map_to_their_items() {
    let (mut echo, gate) = Echo::gated();
    echo.fallback = Some(0);
    let pipeline = Pipeline::builder(echo.clone())
        .workers(1)
        .max_batch_size(4)
        .backoff(backoff(3))
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    let blocker = pipeline.try_submit(100).unwrap();
    until(|| pipeline.stats().busy_workers == 1).await;
    let tickets: Vec<_> = (1..=4).map(|i| pipeline.try_submit(i).unwrap()).collect();
    echo.push(Step::Items(vec![]));
    echo.push(Step::Items(vec![
        None,
        Some(TestError::fatal()),
        Some(TestError::busy(None)),
        None,
    ]));
    gate.add_permits(100);
    assert_eq!(blocker.await, Ok(200));
    let results: Vec<_> = futures_util::future::join_all(tickets).await;
    assert_eq!(results, [Ok(2), Ok(0), Ok(6), Ok(8)]);
    let calls = echo.calls();
    assert_eq!(
        calls.iter().map(|c| c.items.clone()).collect::<Vec<_>>(),
        [vec![100], vec![1, 2, 3, 4], vec![3]]
    );
    let stats = pipeline.stats();
    assert_eq!((stats.fallbacks, stats.retries, stats.completed), (1, 1, 4));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_fails_only_its_batch() {
    let echo = Echo::default();
    let pipeline = Pipeline::builder(echo.clone())
        .workers(1)
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    match pipeline.call(1000).await {
        Err(PipelineError::Panicked { message }) => assert!(message.contains("1000"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(pipeline.call(3).await, Ok(6));
    assert_eq!(pipeline.workers(), 1);
    assert_eq!(pipeline.stats().panics, 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_are_acquired_and_their_wait_counts_against_the_deadline() {
    let echo = Echo::default();
    let clock = TokioClock::shared();
    let calls = RateLimiter::builder()
        .quota(Quota::per_second(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let pipeline = Pipeline::builder(echo.clone())
        .workers(1)
        .limit(calls, |_| 1)
        .clock(clock.clone())
        .build()
        .unwrap();
    let start = clock.now();
    for i in 0..3 {
        assert_eq!(
            pipeline.call(Job::new(i).priority(Priority::High)).await,
            Ok(i * 2)
        );
    }
    // One call a second: the third went at t = 2 s.
    assert_eq!(echo.calls()[2].at - start, Duration::from_secs(2));
    // The next slot is 1 s away; a request that must start within 0.5 s fails now.
    let r = pipeline
        .call(Job::new(9).timeout(Duration::from_millis(500)))
        .await;
    assert_eq!(
        r,
        Err(PipelineError::DeadlineExceeded {
            stage: DeadlineStage::RateLimit
        })
    );
    assert_eq!(echo.calls().len(), 3);
    let stats = pipeline.stats();
    assert_eq!(stats.cost[Priority::High.index()], 3);
    assert_eq!(stats.endpoints[0].cost, 3);
}

#[tokio::test(start_paused = true)]
async fn workers_scale_with_the_queue_and_back() {
    let echo = Echo::with_delay(Duration::from_secs(1));
    let pipeline = Pipeline::builder(echo)
        .min_workers(1)
        .max_workers(4)
        .scale_up_depth(2)
        .scale_interval(Duration::from_millis(100))
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    assert_eq!(pipeline.workers(), 1);
    let tickets: Vec<_> = (0..40).map(|i| pipeline.try_submit(i).unwrap()).collect();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(pipeline.workers(), 4);
    for t in tickets {
        assert!(t.await.is_ok());
    }
    // Hysteresis: a short idle spell keeps the workers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pipeline.workers(), 4);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(pipeline.workers(), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_until_its_deadline() {
    let echo = Echo::with_delay(Duration::from_secs(1));
    let pipeline = Pipeline::builder(echo.clone())
        .workers(1)
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    let tickets: Vec<_> = (0..5).map(|i| pipeline.try_submit(i).unwrap()).collect();
    let report = pipeline.shutdown(Duration::from_millis(2_500)).await;
    assert!(!report.drained);
    assert_eq!(report.failed, 2);
    let results = futures_util::future::join_all(tickets).await;
    assert_eq!(
        results,
        [
            Ok(0),
            Ok(2),
            Err(PipelineError::Shutdown), // running at the deadline
            Err(PipelineError::Shutdown),
            Err(PipelineError::Shutdown)
        ]
    );
    assert_eq!(pipeline.try_submit(9).unwrap_err(), PipelineError::Shutdown);
    assert_eq!(pipeline.call(9).await, Err(PipelineError::Shutdown));

    // With time enough, everything finishes.
    let echo = Echo::with_delay(Duration::from_secs(1));
    let pipeline = Pipeline::builder(echo)
        .workers(2)
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    let tickets: Vec<_> = (0..4).map(|i| pipeline.try_submit(i).unwrap()).collect();
    let report = pipeline.shutdown(Duration::from_secs(60)).await;
    assert!(report.drained);
    assert_eq!(report.failed, 0);
    for t in tickets {
        assert!(t.await.is_ok());
    }
}

#[tokio::test(start_paused = true)]
async fn stats_are_reported_through_the_core_trait() {
    let echo = Echo::default();
    let pipeline = Pipeline::builder(echo)
        .name("sentiment")
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    for i in 0..3 {
        assert!(pipeline.call(Job::new(i).priority(Priority::Low)).await.is_ok());
    }
    let report = StatsReport::collect(&pipeline);
    let find = |name: &str, label: (&str, &str)| {
        report
            .metrics()
            .iter()
            .find(|m| m.name == name && m.labels.iter().any(|(k, v)| k == label.0 && v == label.1))
            .map(|m| m.value.as_f64())
    };
    assert_eq!(
        find("brisk_pipeline_submitted_total", ("priority", "low")),
        Some(3.0)
    );
    assert_eq!(
        find("brisk_pipeline_completed_total", ("pipeline", "sentiment")),
        Some(3.0)
    );
    assert_eq!(
        find("brisk_pipeline_batches_total", ("pipeline", "sentiment")),
        Some(3.0)
    );
    assert_eq!(
        find("brisk_pipeline_breaker_state", ("state", "closed")),
        Some(1.0)
    );
    assert_eq!(
        find("brisk_pipeline_endpoint_calls_total", ("endpoint", "default")),
        Some(3.0)
    );
    assert_eq!(pipeline.stats().mean_batch_size(), 1.0);
}

#[tokio::test(start_paused = true)]
async fn wait_and_call_percentiles_from_known_times() {
    let echo = Echo::default();
    let pipeline = Pipeline::builder(echo.clone())
        .workers(1)
        .name("pct")
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    // 100 calls taking 1 ms .. 100 ms of tokio time, one after another:
    // no queue wait.
    for ms in 1..=100 {
        *echo.delay.lock().unwrap() = Duration::from_millis(ms);
        assert!(pipeline.call(Job::new(1).priority(Priority::High)).await.is_ok());
    }
    // Ten low requests queued behind a 1 s call wait 1 s .. 10 s.
    *echo.delay.lock().unwrap() = Duration::from_secs(1);
    let tickets: Vec<_> = (0..11)
        .map(|i| pipeline.try_submit(Job::new(i).priority(Priority::Low)).unwrap())
        .collect();
    for t in tickets {
        assert!(t.await.is_ok());
    }
    let stats = pipeline.stats();
    let within = |got: Duration, want: Duration| got >= want && got < want + want / 16;
    let exec = stats.exec_percentiles;
    assert_eq!(exec.count, 111);
    // Ranks 56, 106 and 110 of 1..=100 ms then eleven 1 s calls.
    assert!(within(exec.p50, Duration::from_millis(56)), "{exec:?}");
    assert!(within(exec.p95, Duration::from_secs(1)), "{exec:?}");
    assert!(within(exec.p99, Duration::from_secs(1)), "{exec:?}");
    let high = stats.wait_percentiles[Priority::High.index()];
    assert_eq!((high.count, high.p99), (100, Duration::ZERO));
    let low = stats.wait_percentiles[Priority::Low.index()];
    assert_eq!(low.count, 11);
    // Waits 0 s, 1 s, .., 10 s: ranks 6, 11 and 11.
    assert!(within(low.p50, Duration::from_secs(5)), "{low:?}");
    assert!(within(low.p95, Duration::from_secs(10)), "{low:?}");
    assert!(within(low.p99, Duration::from_secs(10)), "{low:?}");
    // The same through brisk-core's stats trait.
    let report = StatsReport::collect(&pipeline);
    let find = |name: &str, labels: &[(&str, &str)]| {
        report
            .metrics()
            .iter()
            .find(|m| {
                m.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| m.labels.iter().any(|(mk, mv)| mk == k && mv == v))
            })
            .map(|m| m.value.as_f64())
    };
    assert_eq!(
        find(
            "brisk_pipeline_queue_wait_seconds",
            &[("priority", "low"), ("quantile", "0.5")]
        ),
        Some(low.p50.as_secs_f64())
    );
    assert_eq!(
        find("brisk_pipeline_exec_seconds", &[("quantile", "0.99")]),
        Some(exec.p99.as_secs_f64())
    );
}
