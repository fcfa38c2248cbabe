//! Micro-batching: grouping by key, the wait, and the adaptive size.

use std::time::Duration;

use brisk_core::{Clock, Priority};
use brisk_pipeline::{Job, Pipeline, TokioClock};

use crate::common::{Echo, until};

#[tokio::test(start_paused = true)]
async fn requests_with_the_same_key_share_a_call_up_to_the_size() {
    let (mut echo, gate) = Echo::gated();
    echo.keys = 2;
    let pipeline = Pipeline::builder(echo.clone())
        .workers(1)
        .max_batch_size(3)
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    let blocker = pipeline.try_submit(100).unwrap();
    until(|| pipeline.stats().busy_workers == 1).await;
    let tickets: Vec<_> = (1..=8).map(|i| pipeline.try_submit(i).unwrap()).collect();
    gate.add_permits(100);
    assert_eq!(blocker.await, Ok(200));
    for (t, i) in tickets.into_iter().zip(1..) {
        assert_eq!(t.await, Ok(i * 2));
    }
    let batches: Vec<Vec<u64>> = echo.calls().into_iter().skip(1).map(|c| c.items).collect();
    assert_eq!(batches, [vec![1, 3, 5], vec![2, 4, 6], vec![7], vec![8]]);
    assert_eq!(pipeline.stats().batch_items, 9);
}

#[tokio::test(start_paused = true)]
async fn a_batch_waits_up_to_the_max_wait_to_fill() {
    let echo = Echo::default();
    let pipeline = Pipeline::builder(echo.clone())
        .workers(2)
        .max_batch_size(10)
        .max_batch_wait(Duration::from_millis(100))
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    let start = TokioClock.now();
    let mut tickets = Vec::new();
    for i in 0..4 {
        tickets.push(pipeline.try_submit(i).unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tickets {
        assert!(t.await.is_ok());
    }
    let calls = echo.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].items, [0, 1, 2, 3]);
    assert_eq!(calls[0].at - start, Duration::from_millis(100));
    // Ten arrive at once: no wait at all.
    let start = TokioClock.now();
    let tickets: Vec<_> = (0..10).map(|i| pipeline.try_submit(i).unwrap()).collect();
    for t in tickets {
        assert!(t.await.is_ok());
    }
    assert_eq!(echo.calls()[1].at, start);
    // Urgent requests never wait.
    let start = TokioClock.now();
    assert!(
        pipeline
            .call(Job::new(1).priority(Priority::Urgent))
            .await
            .is_ok()
    );
    assert_eq!(echo.calls()[2].at, start);
}

#[tokio::test(start_paused = true)]
async fn the_batch_size_shrinks_when_slow_and_grows_back_when_fast() {
    let echo = Echo::with_delay(Duration::from_millis(20));
    *echo.per_item.lock().unwrap() = Duration::from_millis(5);
    let pipeline = Pipeline::builder(echo.clone())
        .workers(1)
        .min_batch_size(2)
        .max_batch_size(20)
        .latency_target(Duration::from_millis(60))
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    assert_eq!(pipeline.batch_size(), 20);
    // 20 items take 120 ms, over the 60 ms target: the size shrinks until a
    // batch takes about the target (8 items: 60 ms), then hovers there.
    let tickets: Vec<_> = (0..400).map(|i| pipeline.try_submit(i).unwrap()).collect();
    for t in tickets {
        assert!(t.await.is_ok());
    }
    let size = pipeline.batch_size();
    assert!((4..=9).contains(&size), "size {size}");
    // A faster upstream: it grows back to the maximum.
    *echo.delay.lock().unwrap() = Duration::ZERO;
    *echo.per_item.lock().unwrap() = Duration::ZERO;
    let tickets: Vec<_> = (0..400).map(|i| pipeline.try_submit(i).unwrap()).collect();
    for t in tickets {
        assert!(t.await.is_ok());
    }
    assert_eq!(pipeline.batch_size(), 20);
}
