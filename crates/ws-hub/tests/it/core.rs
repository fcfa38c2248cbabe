//! The hub core, driven without sockets.

use std::time::Duration;

use brisk_core::{ManualClock, Priority, StatsReport};
use brisk_ws_hub::{CloseCode, Delivery, Hub, HubError, Recovery, SlowConsumerPolicy};
use bytes::Bytes;
use serde_json::{Value, json};

fn frames(d: Option<Delivery>) -> Vec<Bytes> {
    match d {
        Some(Delivery::Frames(f)) => f,
        other => panic!("expected frames, got {other:?}"),
    }
}

fn parse(b: &Bytes) -> Value {
    serde_json::from_slice(b).unwrap()
}

#[test]
fn subscribe_publish_unsubscribe() {
    let hub = Hub::builder().build().unwrap();
    let mut a = hub.connect(None).unwrap();
    let mut b = hub.connect(None).unwrap();
    let sub = a.subscribe("alerts").unwrap();
    assert_eq!((sub.position.offset, sub.subscribers), (0, 1));
    b.subscribe("alerts").unwrap();
    assert_eq!(hub.subscriber_count("alerts"), 2);

    let p = hub.publish("alerts", &json!({"n": 1})).unwrap();
    assert_eq!((p.offset, p.delivered), (1, 2));
    let fa = frames(a.try_next_batch());
    let fb = frames(b.try_next_batch());
    // Serialized once: both queues hold the very same buffer.
    assert_eq!(fa[0].as_ptr(), fb[0].as_ptr());
    let m = parse(&fa[0]);
    assert_eq!(
        (m["v"].as_u64(), m["type"].as_str(), m["topic"].as_str()),
        (Some(1), Some("message"), Some("alerts"))
    );
    assert_eq!(
        (m["offset"].as_u64(), m["data"]["n"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        m["epoch"].as_str(),
        Some(hub.position("alerts").unwrap().epoch.as_str())
    );

    assert!(b.unsubscribe("alerts"));
    assert!(!b.unsubscribe("alerts"));
    assert_eq!(hub.publish("alerts", &2).unwrap().delivered, 1);
    assert_eq!(frames(a.try_next_batch()).len(), 1);
    assert!(b.try_next_batch().is_none());
    assert_eq!(hub.stats().subscriptions, 1);
    drop(a);
    assert_eq!(hub.stats().subscriptions, 0);
    assert_eq!(hub.connection_count(), 1);
}

#[test]
fn topic_limits_and_names() {
    let hub = Hub::builder()
        .max_topics_per_connection(2)
        .max_topics(3)
        .build()
        .unwrap();
    let c = hub.connect(None).unwrap();
    c.subscribe("a").unwrap();
    c.subscribe("b").unwrap();
    c.subscribe("a").unwrap(); // again: not a new topic
    assert_eq!(
        c.subscribe("c"),
        Err(HubError::TooManyTopicsForConnection { limit: 2 })
    );
    assert!(matches!(c.subscribe(""), Err(HubError::InvalidTopic { .. })));
    hub.publish("c", &1).unwrap();
    assert_eq!(hub.publish("d", &1), Err(HubError::TooManyTopics { limit: 3 }));
}

#[test]
fn builder_names_the_bad_field() {
    let err = Hub::builder().queue_capacity(0).build().unwrap_err();
    assert_eq!(err.field(), "queue_capacity");
    let err = Hub::builder().queue_capacity(8).max_batch(9).build().unwrap_err();
    assert_eq!(err.field(), "max_batch");
    let err = Hub::builder().ping_interval(Duration::ZERO).build().unwrap_err();
    assert_eq!(err.field(), "ping_interval");
    let err = Hub::builder().max_violations(0).build().unwrap_err();
    assert_eq!(err.field(), "max_violations");
}

#[test]
fn publish_to_user_and_connection() {
    let hub = Hub::builder().build().unwrap();
    let mut a1 = hub.connect(Some("alice")).unwrap();
    let mut a2 = hub.connect(Some("alice")).unwrap();
    let mut b = hub.connect(Some("bob")).unwrap();
    assert_eq!(
        hub.publish_to_user("alice", "inbox", &"hi", Priority::Normal)
            .unwrap(),
        2
    );
    for c in [&mut a1, &mut a2] {
        let m = parse(&frames(c.try_next_batch())[0]);
        assert_eq!(
            (m["topic"].as_str(), m["data"].as_str()),
            (Some("inbox"), Some("hi"))
        );
        assert!(m.get("offset").is_none());
    }
    assert!(b.try_next_batch().is_none());
    hub.publish_to_connection(b.id(), "direct", &json!([1]), Priority::High)
        .unwrap();
    assert_eq!(parse(&frames(b.try_next_batch())[0])["data"][0], 1);
    let gone = a2.id();
    drop(a2);
    assert_eq!(
        hub.publish_to_connection(gone, "direct", &1, Priority::Normal),
        Err(HubError::ConnectionClosed { id: gone })
    );
    assert_eq!(
        hub.publish_to_user("alice", "inbox", &"again", Priority::Normal)
            .unwrap(),
        1
    );
}

#[test]
fn drop_oldest_tells_the_client_how_many_it_missed() {
    let hub = Hub::builder().queue_capacity(4).max_batch(4).build().unwrap();
    let mut slow = hub.connect(None).unwrap();
    let mut fast = hub.connect(None).unwrap();
    slow.subscribe("t").unwrap();
    fast.subscribe("t").unwrap();
    let mut fast_got = 0;
    for i in 1..=10 {
        hub.publish("t", &i).unwrap();
        fast_got += frames(fast.try_next_batch()).len();
    }
    assert_eq!(fast_got, 10, "the fast reader loses nothing");
    assert_eq!(slow.queue_depth(), 4);
    let f = frames(slow.try_next_batch());
    let missed = parse(&f[0]);
    assert_eq!(
        (missed["type"].as_str(), missed["count"].as_u64()),
        (Some("missed"), Some(6))
    );
    let offsets: Vec<u64> = f[1..]
        .iter()
        .map(|b| parse(b)["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [7, 8, 9, 10]);
    assert_eq!(hub.stats().drops, 6);
    assert_eq!(hub.stats().queued, 0);
}

#[test]
fn disconnect_policy_closes_after_the_queue_stays_full() {
    let clock = ManualClock::new();
    let hub = Hub::builder()
        .queue_capacity(2)
        .max_batch(2)
        .slow_consumer(SlowConsumerPolicy::Disconnect {
            after: Duration::from_secs(5),
        })
        .clock(clock.shared())
        .build()
        .unwrap();
    let mut slow = hub.connect(None).unwrap();
    let mut fast = hub.connect(None).unwrap();
    slow.subscribe("t").unwrap();
    fast.subscribe("t").unwrap();
    let mut n = 0;
    let mut drain = |fast: &mut brisk_ws_hub::Connection| {
        while let Some(Delivery::Frames(f)) = fast.try_next_batch() {
            n += f.len();
        }
    };
    for i in 0..4 {
        hub.publish("t", &i).unwrap();
        drain(&mut fast);
    }
    assert_eq!(slow.closed(), None, "full, but not for long yet");
    clock.advance(Duration::from_secs(5));
    hub.publish("t", &4).unwrap();
    drain(&mut fast);
    assert_eq!(slow.closed(), Some(CloseCode::Slow));
    assert_eq!(CloseCode::Slow.code(), 4008);
    // Its backlog is freed at once; the writer sees the close.
    assert_eq!(
        slow.try_next_batch()
            .map(|d| matches!(d, Delivery::Closed(CloseCode::Slow))),
        Some(true)
    );
    assert_eq!(hub.stats().slow_disconnects, 1);
    // The fast reader got everything meanwhile.
    assert_eq!(n, 5);
}

#[test]
fn disconnect_policy_forgives_a_queue_that_drains() {
    let clock = ManualClock::new();
    let hub = Hub::builder()
        .queue_capacity(2)
        .max_batch(2)
        .slow_consumer(SlowConsumerPolicy::Disconnect {
            after: Duration::from_secs(5),
        })
        .clock(clock.shared())
        .build()
        .unwrap();
    let mut c = hub.connect(None).unwrap();
    c.subscribe("t").unwrap();
    hub.publish("t", &1).unwrap();
    hub.publish("t", &2).unwrap();
    clock.advance(Duration::from_secs(4));
    let _ = c.try_next_batch();
    clock.advance(Duration::from_secs(4));
    hub.publish("t", &3).unwrap();
    hub.publish("t", &4).unwrap();
    hub.publish("t", &5).unwrap();
    assert_eq!(c.closed(), None);
}

#[test]
fn high_priority_goes_ahead_of_queued_normal_messages() {
    let hub = Hub::builder().build().unwrap();
    let mut c = hub.connect(None).unwrap();
    c.subscribe("t").unwrap();
    hub.publish("t", &"n1").unwrap();
    hub.publish("t", &"n2").unwrap();
    hub.publish_with("t", &"urgent", Priority::Urgent).unwrap();
    let data: Vec<String> = frames(c.try_next_batch())
        .iter()
        .map(|b| parse(b)["data"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(data, ["urgent", "n1", "n2"]);
}

#[test]
fn batches_coalesce_up_to_max_batch() {
    let hub = Hub::builder().max_batch(3).build().unwrap();
    let mut c = hub.connect(None).unwrap();
    c.subscribe("t").unwrap();
    for i in 0..7 {
        hub.publish("t", &i).unwrap();
    }
    let sizes: Vec<usize> =
        std::iter::from_fn(|| c.try_next_batch().map(|d| frames(Some(d)).len())).collect();
    assert_eq!(sizes, [3, 3, 1]);
}

#[test]
fn recovery_from_history_and_impossible_recovery() {
    let hub = Hub::builder().history_size(3).build().unwrap();
    for i in 1..=4 {
        hub.publish("t", &i).unwrap();
    }
    let epoch = hub.position("t").unwrap().epoch;
    let mut c = hub.connect(None).unwrap();
    let s = c.subscribe_from("t", &epoch, 2).unwrap();
    assert_eq!(s.recovery, Some(Recovery::Recovered { count: 2 }));
    hub.publish("t", &5).unwrap();
    let offsets: Vec<u64> = frames(c.try_next_batch())
        .iter()
        .map(|b| parse(b)["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [3, 4, 5], "replay, then live, nothing twice");

    // Offset 1 is gone from a history of 3 (offsets 3..=5 remain).
    let d = hub.connect(None).unwrap();
    let s = d.subscribe_from("t", &epoch, 1).unwrap();
    assert!(
        matches!(s.recovery, Some(Recovery::Impossible { ref now }) if now.offset == 5 && now.epoch == epoch)
    );
    let e = hub.connect(None).unwrap();
    let s = e.subscribe_from("t", "another-epoch", 4).unwrap();
    assert!(matches!(s.recovery, Some(Recovery::Impossible { .. })));
    let s = e.subscribe_from("t", &epoch, 5).unwrap();
    assert_eq!(s.recovery, Some(Recovery::Recovered { count: 0 }));
}

#[test]
fn connection_limits() {
    let hub = Hub::builder()
        .max_connections(3)
        .max_connections_per_user(2)
        .build()
        .unwrap();
    let _a = hub.connect(Some("u")).unwrap();
    let b = hub.connect(Some("u")).unwrap();
    assert_eq!(
        hub.connect(Some("u")).unwrap_err(),
        HubError::TooManyConnectionsForUser {
            user: "u".into(),
            limit: 2
        }
    );
    let _c = hub.connect(None).unwrap();
    assert_eq!(
        hub.connect(None).unwrap_err(),
        HubError::TooManyConnections { limit: 3 }
    );
    drop(b);
    hub.connect(Some("u")).unwrap();
}

#[test]
fn presence_counts_and_lists() {
    let hub = Hub::builder().build().unwrap();
    let a = hub.connect(Some("ann")).unwrap();
    let b = hub.connect(None).unwrap();
    a.subscribe("room").unwrap();
    b.subscribe("room").unwrap();
    assert_eq!(hub.subscriber_count("room"), 2);
    let mut who = hub.presence("room");
    who.sort();
    assert_eq!(who, [(a.id(), Some("ann".to_string())), (b.id(), None)]);
    assert_eq!(hub.subscriber_count("nowhere"), 0);
}

#[tokio::test]
async fn shutdown_drains_then_closes_with_1012() {
    let hub = Hub::builder().build().unwrap();
    let mut c = hub.connect(None).unwrap();
    c.subscribe("t").unwrap();
    hub.publish("t", &1).unwrap();
    hub.shutdown();
    assert_eq!(hub.connect(None).unwrap_err(), HubError::ShuttingDown);
    assert!(matches!(c.next_batch().await, Delivery::Frames(f) if f.len() == 1));
    assert_eq!(c.next_batch().await, Delivery::Closed(CloseCode::Restart));
    assert_eq!(CloseCode::Restart.code(), 1012);
    let h = hub.clone();
    let waiter = tokio::spawn(async move { h.drained().await });
    drop(c);
    waiter.await.unwrap();
    assert_eq!(hub.connection_count(), 0);
}

#[tokio::test]
async fn next_batch_wakes_on_publish() {
    let hub = Hub::builder().build().unwrap();
    let mut c = hub.connect(None).unwrap();
    c.subscribe("t").unwrap();
    let reader = tokio::spawn(async move {
        let d = c.next_batch().await;
        (d, c)
    });
    tokio::task::yield_now().await;
    hub.publish("t", &"wake").unwrap();
    let (d, _c) = reader.await.unwrap();
    assert!(matches!(d, Delivery::Frames(f) if parse(&f[0])["data"] == "wake"));
}

#[test]
fn stats_report_through_the_core_trait() {
    let hub = Hub::builder().build().unwrap();
    let mut c = hub.connect(None).unwrap();
    c.subscribe("t").unwrap();
    hub.publish("t", &"x").unwrap();
    let queued = StatsReport::collect(&hub).value("brisk_ws_hub_queued_messages");
    assert_eq!(queued, Some(1.0));
    let n = frames(c.try_next_batch())[0].len() as f64;
    let r = StatsReport::collect(&hub);
    assert_eq!(r.value("brisk_ws_hub_connections"), Some(1.0));
    assert_eq!(r.value("brisk_ws_hub_subscriptions"), Some(1.0));
    assert_eq!(r.value("brisk_ws_hub_messages_out_total"), Some(1.0));
    assert_eq!(r.value("brisk_ws_hub_bytes_out_total"), Some(n));
    assert_eq!(r.value("brisk_ws_hub_queued_messages"), Some(0.0));
    assert!(r.value("brisk_ws_hub_delivery_latency_seconds").is_some());
}
