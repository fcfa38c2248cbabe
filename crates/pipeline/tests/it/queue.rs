//! Priority order, aging, shedding, single-flight, deadlines and cancellation.

use std::time::Duration;

use brisk_core::{Clock, ContentHash, Priority};
use brisk_pipeline::{DeadlineStage, Job, Pipeline, PipelineError, ShedReason, TokioClock};

use crate::common::{Echo, until};

fn one_worker(handler: Echo) -> brisk_pipeline::PipelineBuilder<Echo> {
    Pipeline::builder(handler).workers(1).clock(TokioClock::shared())
}

#[tokio::test(start_paused = true)]
async fn serves_by_priority_then_arrival() {
    let (echo, gate) = Echo::gated();
    let pipeline = one_worker(echo.clone()).build().unwrap();
    let blocker = pipeline.try_submit(0).unwrap();
    until(|| pipeline.stats().busy_workers == 1).await;
    let order = [
        (1, Priority::Background),
        (2, Priority::Normal),
        (3, Priority::Urgent),
        (4, Priority::Low),
        (5, Priority::High),
        (6, Priority::Urgent),
        (7, Priority::Normal),
    ];
    let tickets: Vec<_> = order
        .iter()
        .map(|&(x, p)| pipeline.try_submit(Job::new(x).priority(p)).unwrap())
        .collect();
    assert_eq!(pipeline.stats().queued, [2, 1, 2, 1, 1]);
    gate.add_permits(100);
    assert_eq!(blocker.await, Ok(0));
    for (ticket, (x, _)) in tickets.into_iter().zip(order) {
        assert_eq!(ticket.await, Ok(x * 2));
    }
    assert_eq!(echo.items(), [0, 3, 6, 5, 2, 7, 4, 1]);
}

/// Under a constant urgent load, a background request waits about its aging
/// bound, not until the urgent work runs out.
#[tokio::test(start_paused = true)]
async fn aging_serves_background_within_its_bound() {
    for aging in [true, false] {
        let echo = Echo::with_delay(Duration::from_millis(100));
        let bound = aging.then_some(Duration::from_secs(2));
        let pipeline = one_worker(echo.clone())
            .max_wait(Priority::Background, bound)
            .build()
            .unwrap();
        let start = TokioClock.now();
        let background = pipeline
            .try_submit(Job::new(999).priority(Priority::Background))
            .unwrap();
        // 100 urgent requests: 10 s of work, all queued before the background one could run.
        let urgent: Vec<_> = (0..100)
            .map(|i| {
                pipeline
                    .try_submit(Job::new(i).priority(Priority::Urgent))
                    .unwrap()
            })
            .collect();
        assert_eq!(background.await, Ok(1998));
        let waited = TokioClock.elapsed(start);
        let urgent_done_before = echo.items().iter().filter(|&&x| x < 100).count();
        for t in urgent {
            assert!(t.await.is_ok());
        }
        if aging {
            assert!(waited <= Duration::from_millis(2_200), "waited {waited:?}");
            assert!(urgent_done_before < 25, "{urgent_done_before} urgent went first");
        } else {
            assert!(waited >= Duration::from_secs(10), "waited {waited:?}");
            assert_eq!(urgent_done_before, 100);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn sheds_background_then_low_and_keeps_room_for_urgent() {
    let (echo, gate) = Echo::gated();
    let pipeline = one_worker(echo.clone()).capacity(10).build().unwrap();
    let blocker = pipeline.try_submit(0).unwrap();
    until(|| pipeline.stats().busy_workers == 1).await;

    // Background is admitted up to half the capacity.
    let background: Vec<_> = (1..=5)
        .map(|i| {
            pipeline
                .try_submit(Job::new(i).priority(Priority::Background))
                .unwrap()
        })
        .collect();
    match pipeline.try_submit(Job::new(6).priority(Priority::Background)) {
        Err(PipelineError::Shed { priority, reason }) => {
            assert_eq!(priority, Priority::Background);
            assert_eq!(reason, ShedReason::Overloaded { depth: 5, limit: 5 });
        }
        other => panic!("{other:?}"),
    }
    // Low up to 70 %.
    let low: Vec<_> = (7..=8)
        .map(|i| pipeline.try_submit(Job::new(i).priority(Priority::Low)).unwrap())
        .collect();
    // Urgent fills the queue, then evicts the newest background requests first, then low.
    let mut urgent: Vec<_> = (10..13)
        .map(|i| {
            pipeline
                .try_submit(Job::new(i).priority(Priority::Urgent))
                .unwrap()
        })
        .collect();
    assert_eq!(pipeline.queue_len(), 10);
    urgent.extend((13..20).map(|i| {
        pipeline
            .try_submit(Job::new(i).priority(Priority::Urgent))
            .unwrap()
    }));
    assert_eq!(pipeline.queue_len(), 10);
    let err = pipeline
        .try_submit(Job::new(20).priority(Priority::Urgent))
        .unwrap_err();
    assert_eq!(
        err,
        PipelineError::Shed {
            priority: Priority::Urgent,
            reason: ShedReason::Overloaded { depth: 10, limit: 10 }
        }
    );
    assert!(err.to_string().contains("admission limit of 10"), "{err}");
    let evicted = PipelineError::Shed {
        priority: Priority::Background,
        reason: ShedReason::Evicted { by: Priority::Urgent },
    };
    for t in background {
        assert_eq!(t.await, Err(evicted.clone()));
    }
    for t in low {
        assert_eq!(
            t.await,
            Err(PipelineError::Shed {
                priority: Priority::Low,
                reason: ShedReason::Evicted { by: Priority::Urgent }
            })
        );
    }
    gate.add_permits(100);
    assert_eq!(blocker.await, Ok(0));
    for t in urgent {
        assert!(t.await.is_ok());
    }
    let stats = pipeline.stats();
    assert_eq!(stats.shed, [1, 0, 0, 2, 6]);
    assert!(echo.items().iter().all(|&x| x == 0 || (10..20).contains(&x)));
}

#[tokio::test(start_paused = true)]
async fn submit_waits_for_room_and_try_submit_does_not() {
    let (echo, gate) = Echo::gated();
    let pipeline = one_worker(echo).capacity(2).build().unwrap();
    let blocker = pipeline.try_submit(0).unwrap();
    until(|| pipeline.stats().busy_workers == 1).await;
    let a = pipeline.try_submit(1).unwrap();
    let b = pipeline.try_submit(2).unwrap();
    assert!(matches!(pipeline.try_submit(3), Err(PipelineError::Shed { .. })));
    // `submit` waits: nothing frees room while the gate is shut.
    let waiting = tokio::time::timeout(Duration::from_secs(60), pipeline.submit(3)).await;
    assert!(waiting.is_err(), "submit returned with a full queue");
    // With a deadline it gives up at the deadline.
    let timed = pipeline.submit(Job::new(4).timeout(Duration::from_secs(1))).await;
    assert_eq!(
        timed.unwrap_err(),
        PipelineError::DeadlineExceeded {
            stage: DeadlineStage::Admission
        }
    );
    let p2 = pipeline.clone();
    let later = tokio::spawn(async move { p2.call(5).await });
    gate.add_permits(100);
    assert_eq!(blocker.await, Ok(0));
    assert_eq!(a.await, Ok(2));
    assert_eq!(b.await, Ok(4));
    assert_eq!(later.await.unwrap(), Ok(10));
}

/// 1,000 concurrent identical requests make one upstream call.
#[tokio::test(start_paused = true)]
async fn single_flight_shares_one_call() {
    let (echo, gate) = Echo::gated();
    let pipeline = Pipeline::builder(echo.clone())
        .workers(4)
        .clock(TokioClock::shared())
        .build()
        .unwrap();
    let key = ContentHash::of_parts(&["double", "21"]);
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let p = pipeline.clone();
            tokio::spawn(async move { p.call(Job::new(21).key(key)).await })
        })
        .collect();
    until(|| pipeline.stats().dedup_hits == 999).await;
    gate.add_permits(1000);
    for c in callers {
        assert_eq!(c.await.unwrap(), Ok(42));
    }
    assert_eq!(echo.calls().len(), 1);
    let stats = pipeline.stats();
    assert_eq!(
        (stats.dedup_hits, stats.completed, stats.in_flight_keys),
        (999, 1000, 0)
    );
    // Once answered, the key runs again.
    assert_eq!(pipeline.call(Job::new(21).key(key)).await, Ok(42));
    assert_eq!(echo.calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_request_past_its_deadline_is_not_started() {
    let (echo, gate) = Echo::gated();
    let pipeline = one_worker(echo.clone()).build().unwrap();
    let blocker = pipeline.try_submit(0).unwrap();
    until(|| pipeline.stats().busy_workers == 1).await;
    let late = pipeline
        .try_submit(Job::new(1).timeout(Duration::from_secs(1)))
        .unwrap();
    let fine = pipeline
        .try_submit(Job::new(2).timeout(Duration::from_secs(10)))
        .unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    gate.add_permits(100);
    assert_eq!(blocker.await, Ok(0));
    assert_eq!(
        late.await,
        Err(PipelineError::DeadlineExceeded {
            stage: DeadlineStage::Queued
        })
    );
    assert_eq!(fine.await, Ok(4));
    assert_eq!(echo.items(), [0, 2]);
    assert_eq!(pipeline.stats().deadline_misses, 1);
    // Already past at submission.
    let past = TokioClock.now();
    assert_eq!(
        pipeline.try_submit(Job::new(3).deadline(past)).unwrap_err(),
        PipelineError::DeadlineExceeded {
            stage: DeadlineStage::Admission
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_whose_caller_left_is_not_started() {
    let (echo, gate) = Echo::gated();
    let pipeline = one_worker(echo.clone()).build().unwrap();
    let blocker = pipeline.try_submit(0).unwrap();
    until(|| pipeline.stats().busy_workers == 1).await;
    drop(pipeline.try_submit(1).unwrap());
    // A shared flight runs while one of its callers stays.
    let key = ContentHash::of("two callers");
    drop(pipeline.try_submit(Job::new(2).key(key)).unwrap());
    let stays = pipeline.try_submit(Job::new(2).key(key)).unwrap();
    // A caller that gives up while waiting (a timeout around the ticket).
    let gave_up = tokio::time::timeout(Duration::from_secs(1), pipeline.try_submit(3).unwrap()).await;
    assert!(gave_up.is_err());
    gate.add_permits(100);
    assert_eq!(blocker.await, Ok(0));
    assert_eq!(stays.await, Ok(4));
    until(|| pipeline.stats().busy_workers == 0).await;
    assert_eq!(echo.items(), [0, 2]);
    assert_eq!(pipeline.stats().cancelled, 2);
}
