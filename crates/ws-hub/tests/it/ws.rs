//! The WebSocket transport, with tokio-tungstenite clients on 127.0.0.1.

use std::time::Duration;

use brisk_core::ManualClock;
use brisk_rate_limiter::Quota;
use brisk_ws_hub::{Hub, JwtAuthenticator, SlowConsumerPolicy};
use futures_util::SinkExt;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Client, close_code, connect, eventually, next_json, next_of, send, send_text, serve};

#[tokio::test]
async fn subscribe_publish_unsubscribe_over_websocket() {
    let hub = Hub::builder().client_publish(true).build().unwrap();
    let addr = serve(&hub).await;
    let mut a = connect(addr, "").await;
    let mut b = connect(addr, "").await;
    assert_eq!(next_json(&mut a).await["type"], "welcome");
    assert_eq!(next_json(&mut b).await["type"], "welcome");

    send(&mut a, &json!({"v": 1, "type": "subscribe", "topic": "posts"})).await;
    send(&mut a, &json!({"v": 1, "type": "subscribe", "topic": "other"})).await;
    let ack = next_of(&mut a, "subscribed").await;
    assert_eq!(
        (ack["topic"].as_str(), ack["offset"].as_u64()),
        (Some("posts"), Some(0))
    );
    next_of(&mut a, "subscribed").await;

    hub.publish("posts", &json!({"id": 1})).unwrap();
    let m = next_of(&mut a, "message").await;
    assert_eq!(
        (m["data"]["id"].as_u64(), m["offset"].as_u64()),
        (Some(1), Some(1))
    );

    // A client publishes; the other receives.
    send(
        &mut b,
        &json!({"type": "publish", "topic": "posts", "data": {"id": 2}}),
    )
    .await;
    assert_eq!(next_of(&mut b, "published").await["offset"], 2);
    assert_eq!(next_of(&mut a, "message").await["data"]["id"], 2);

    send(&mut a, &json!({"type": "unsubscribe", "topic": "posts"})).await;
    next_of(&mut a, "unsubscribed").await;
    hub.publish("posts", &json!({"id": 3})).unwrap();
    hub.publish("other", &json!({"id": 4})).unwrap();
    let m = next_of(&mut a, "message").await;
    assert_eq!(
        (m["topic"].as_str(), m["data"]["id"].as_u64()),
        (Some("other"), Some(4))
    );

    send(&mut a, &json!({"type": "ping", "id": 7})).await;
    assert_eq!(next_of(&mut a, "pong").await["id"], 7);
}

#[tokio::test]
async fn anonymous_clients_may_not_publish_by_default() {
    let hub = Hub::builder().build().unwrap();
    let addr = serve(&hub).await;
    let mut a = connect(addr, "").await;
    send(&mut a, &json!({"type": "publish", "topic": "t", "data": 1})).await;
    assert_eq!(next_of(&mut a, "error").await["code"], "forbidden");
    assert_eq!(hub.stats().published, 0);
}

/// How many 60 KB messages [`publish_big`] sends (18 MB in all).
const BIG_MESSAGES: u64 = 300;

/// Two clients subscribed to "big" on `hub`: one returned to the test,
/// which does not read it, and one read by a task that returns how many of
/// the [`BIG_MESSAGES`] it received.
async fn one_stalled_one_reading(hub: &Hub) -> (Client, tokio::task::JoinHandle<u64>) {
    let addr = serve(hub).await;
    let mut slow = connect(addr, "").await;
    let mut fast = connect(addr, "").await;
    for c in [&mut slow, &mut fast] {
        send(c, &json!({"type": "subscribe", "topic": "big"})).await;
        next_of(c, "subscribed").await;
    }
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < BIG_MESSAGES {
            if next_of(&mut fast, "message").await["data"]["n"]
                .as_u64()
                .is_some()
            {
                got += 1;
            }
        }
        got
    });
    (slow, reader)
}

/// Publishes [`BIG_MESSAGES`] messages of 60 KB to "big", letting the
/// connections run between them; `after_each` runs after every publish.
async fn publish_big(hub: &Hub, mut after_each: impl FnMut()) {
    let blob = "x".repeat(60_000);
    for n in 0..BIG_MESSAGES {
        hub.publish("big", &json!({"n": n, "blob": blob})).unwrap();
        after_each();
        tokio::task::yield_now().await;
        if n % 8 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::test]
async fn slow_websocket_reader_is_closed_with_4008_and_others_get_everything() {
    let hub = Hub::builder()
        .queue_capacity(4)
        .max_batch(4)
        // The slow reader reads its close frame only at the end; on a busy
        // machine a debug build's 300 encodes of 60 KB can outlast the
        // default 10 s write timeout, which would drop it without one.
        .write_timeout(Duration::from_secs(120))
        .slow_consumer(SlowConsumerPolicy::Disconnect {
            after: Duration::ZERO,
        })
        .build()
        .unwrap();
    let (mut slow, reader) = one_stalled_one_reading(&hub).await;
    // 18 MB for a reader that reads nothing: socket buffers fill, then its
    // queue, and the policy closes it.
    publish_big(&hub, || {}).await;
    let total = BIG_MESSAGES;
    assert_eq!(reader.await.unwrap(), total, "the fast reader lost nothing");
    assert!(hub.stats().slow_disconnects >= 1);
    assert_eq!(close_code(&mut slow).await, Some(4008));
    // The fast reader's client is gone too (its task ended).
    assert!(eventually(|| hub.connection_count() == 0).await);
}

#[tokio::test]
async fn a_reader_that_stops_reading_drops_oldest_within_its_queue_and_others_get_everything() {
    // The default policy, DropOldest, with a small queue; the long write
    // timeout keeps the non-reader connected (a busy debug build must not
    // hit it) so that the drops, not a disconnect, are what is checked.
    let capacity = 16;
    let hub = Hub::builder()
        .queue_capacity(capacity)
        .max_batch(capacity)
        .write_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let (mut slow, reader) = one_stalled_one_reading(&hub).await;
    // 18 MB for a client that reads nothing: its socket buffers fill, then
    // its queue, and the oldest queued messages are dropped.
    let mut most_queued = 0;
    publish_big(&hub, || most_queued = most_queued.max(hub.stats().queued)).await;
    let total = BIG_MESSAGES;
    assert_eq!(reader.await.unwrap(), total, "the reading client lost nothing");
    let stats = hub.stats();
    assert!(stats.drops > 0, "the non-reader's queue overflowed: {stats:?}");
    assert!(
        most_queued <= 2 * capacity as u64,
        "queues stay within their bound: at most {most_queued} queued"
    );
    assert_eq!(hub.connection_count(), 2, "DropOldest keeps the connection");
    // Once it reads again it gets every message or a count of the missed,
    // the newest last.
    let (mut got, mut missed, mut last) = (0, 0, 0);
    while got + missed < total {
        let v = next_json(&mut slow).await;
        match v["type"].as_str() {
            Some("message") => {
                got += 1;
                last = v["data"]["n"].as_u64().unwrap();
            }
            Some("missed") => missed += v["count"].as_u64().unwrap(),
            _ => {}
        }
    }
    assert_eq!(got + missed, total, "each message delivered or counted as missed");
    assert_eq!(missed, hub.stats().drops);
    assert_eq!(last, total - 1, "the newest message is kept");
}

#[tokio::test]
async fn a_small_send_buffer_brings_a_stalled_client_to_its_queue_bound_soon() {
    // 400 KB for a client that reads nothing: far below what Linux's
    // autotuned send buffer (up to 4 MiB) would absorb, but with an 8 KiB
    // `SO_SNDBUF` the socket fills after a few messages and the policy
    // takes over within the queue's bound.
    let hub = Hub::builder()
        .send_buffer_size(8 * 1024)
        .queue_capacity(8)
        .max_batch(8)
        .write_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let addr = serve(&hub).await;
    let mut stalled = connect(addr, "").await;
    send(&mut stalled, &json!({"type": "subscribe", "topic": "t"})).await;
    next_of(&mut stalled, "subscribed").await;
    let blob = "x".repeat(8_000);
    for n in 0..50 {
        hub.publish("t", &json!({"n": n, "blob": blob})).unwrap();
        tokio::task::yield_now().await;
    }
    assert!(
        eventually(|| hub.stats().drops > 0).await,
        "the stalled client's queue overflowed: {:?}",
        hub.stats()
    );
    assert!(hub.stats().queued <= 8, "{:?}", hub.stats());
}

#[tokio::test(start_paused = true)]
async fn heartbeat_timeout_removes_a_dead_connection() {
    let hub = Hub::builder()
        .ping_interval(Duration::from_secs(25))
        .pong_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let addr = serve(&hub).await;
    let mut dead = connect(addr, "").await;
    send(&mut dead, &json!({"type": "subscribe", "topic": "t"})).await;
    next_of(&mut dead, "subscribed").await;
    let mut alive = connect(addr, "").await;
    next_of(&mut alive, "welcome").await;
    // `alive` keeps reading, so its client answers pings; `dead` reads nothing.
    let alive_task = tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(Ok(_)) = alive.next().await {}
    });
    assert_eq!(hub.connection_count(), 2);
    // Paused time: the runtime jumps to each timer as soon as it is idle.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(eventually(|| hub.connection_count() == 1).await);
    assert_eq!(hub.stats().heartbeat_timeouts, 1);
    assert_eq!(
        hub.stats().subscriptions,
        0,
        "the dead connection's subscription is freed"
    );
    assert_eq!(close_code(&mut dead).await, Some(4009));
    alive_task.abort();
}

#[tokio::test]
async fn recovery_over_websocket() {
    let hub = Hub::builder().history_size(4).build().unwrap();
    for i in 1..=3 {
        hub.publish("t", &i).unwrap();
    }
    let epoch = hub.position("t").unwrap().epoch;
    let addr = serve(&hub).await;
    let mut c = connect(addr, "").await;
    send(
        &mut c,
        &json!({"type": "subscribe", "topic": "t", "epoch": epoch, "offset": 1}),
    )
    .await;
    next_of(&mut c, "welcome").await;
    let a = next_json(&mut c).await;
    let b = next_json(&mut c).await;
    assert_eq!((a["offset"].as_u64(), b["offset"].as_u64()), (Some(2), Some(3)));
    assert_eq!(next_json(&mut c).await["type"], "recovered");
    assert_eq!(next_json(&mut c).await["type"], "subscribed");

    for i in 4..=9 {
        hub.publish("t", &i).unwrap();
    }
    let mut d = connect(addr, "").await;
    send(
        &mut d,
        &json!({"type": "recover", "topic": "t", "epoch": epoch, "offset": 2}),
    )
    .await;
    let r = next_of(&mut d, "recovery_impossible").await;
    assert_eq!(
        (r["epoch"].as_str(), r["offset"].as_u64()),
        (Some(epoch.as_str()), Some(9))
    );
}

fn token(sub: &str, secret: &[u8]) -> String {
    let claims = json!({"sub": sub, "exp": 4_102_444_800u64, "publish": true});
    encode(&Header::default(), &claims, &EncodingKey::from_secret(secret)).unwrap()
}

#[tokio::test]
async fn jwt_auth_success_and_failure() {
    let hub = Hub::builder()
        .authenticator(JwtAuthenticator::hs256(b"k"))
        .auth_timeout(Duration::from_millis(300))
        .max_connections_per_user(1)
        .build()
        .unwrap();
    let addr = serve(&hub).await;
    let mut alice = connect(addr, &format!("?token={}", token("alice", b"k"))).await;
    let w = next_of(&mut alice, "welcome").await;
    assert_eq!(w["user"], "alice");

    // A bad token in the query is refused before the upgrade.
    let bad = format!("ws://{addr}/ws?token={}", token("mallory", b"wrong"));
    assert!(tokio_tungstenite::connect_async(bad).await.is_err());

    // Authenticating with a message.
    let mut bob = connect(addr, "").await;
    send(&mut bob, &json!({"type": "subscribe", "topic": "t"})).await;
    assert_eq!(next_of(&mut bob, "error").await["code"], "unauthenticated");
    send(&mut bob, &json!({"type": "auth", "token": token("bob", b"k")})).await;
    assert_eq!(next_of(&mut bob, "welcome").await["user"], "bob");

    // A wrong token in the message: closed with 4001.
    let mut eve = connect(addr, "").await;
    send(&mut eve, &json!({"type": "auth", "token": token("eve", b"nope")})).await;
    assert_eq!(close_code(&mut eve).await, Some(4001));

    // No token before the timeout: closed with 4001.
    let mut idle = connect(addr, "").await;
    assert_eq!(close_code(&mut idle).await, Some(4001));

    // alice again: over her limit of one connection.
    let mut alice2 = connect(addr, &format!("?token={}", token("alice", b"k"))).await;
    assert_eq!(close_code(&mut alice2).await, Some(4029));
    assert_eq!(hub.connection_count(), 2);
}

#[tokio::test]
async fn total_connection_limit_refuses_the_upgrade() {
    let hub = Hub::builder().max_connections(1).build().unwrap();
    let addr = serve(&hub).await;
    let mut first = connect(addr, "").await;
    next_of(&mut first, "welcome").await;
    let err = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
}

#[tokio::test]
async fn rate_limit_violations_close_the_connection() {
    let clock = ManualClock::new(); // never advanced: the quota never refills
    let hub = Hub::builder()
        .inbound_quota(Quota::per_second(2))
        .max_violations(3)
        .clock(clock.shared())
        .build()
        .unwrap();
    let addr = serve(&hub).await;
    let mut c = connect(addr, "").await;
    for id in 0..5 {
        send(&mut c, &json!({"type": "ping", "id": id})).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    let code = loop {
        match crate::support::next(&mut c).await {
            crate::support::Got::Json(v) if v["type"] == "pong" => pongs += 1,
            crate::support::Got::Json(v) if v["code"] == "rate_limited" => limited += 1,
            crate::support::Got::Json(_) => {}
            crate::support::Got::Closed(code) => break code,
        }
    };
    assert_eq!(pongs, 2);
    assert!(limited <= 3);
    assert_eq!(code, Some(1008));
    assert_eq!(hub.stats().violations, 3);
}

#[tokio::test]
async fn malformed_frames_get_errors_then_a_close() {
    let hub = Hub::builder()
        .max_message_size(1024)
        .max_violations(5)
        .build()
        .unwrap();
    let addr = serve(&hub).await;
    let mut c = connect(addr, "").await;
    next_of(&mut c, "welcome").await;
    send_text(&mut c, "{not json").await;
    assert_eq!(next_of(&mut c, "error").await["code"], "bad_json");
    send(&mut c, &json!({"type": "dance"})).await;
    assert_eq!(next_of(&mut c, "error").await["code"], "unknown_type");
    send(&mut c, &json!({"type": "ping", "pad": "y".repeat(2000)})).await;
    assert_eq!(next_of(&mut c, "error").await["code"], "too_big");
    send(&mut c, &json!({"v": 9, "type": "ping"})).await;
    assert_eq!(next_of(&mut c, "error").await["code"], "unsupported_version");
    // Still serving between violations.
    send(&mut c, &json!({"type": "ping", "id": 1})).await;
    assert_eq!(next_of(&mut c, "pong").await["id"], 1);
    c.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    assert_eq!(close_code(&mut c).await, Some(1008));
    // The hub still serves others.
    let mut d = connect(addr, "").await;
    assert_eq!(next_json(&mut d).await["type"], "welcome");
}

#[tokio::test]
async fn graceful_shutdown_drains_and_closes_with_1012() {
    let hub = Hub::builder().build().unwrap();
    let addr = serve(&hub).await;
    let mut c = connect(addr, "").await;
    send(&mut c, &json!({"type": "subscribe", "topic": "t"})).await;
    next_of(&mut c, "subscribed").await;
    // Published and shut down at once: the queued messages still arrive.
    for i in 0..3 {
        hub.publish("t", &i).unwrap();
    }
    hub.shutdown();
    for i in 0..3 {
        assert_eq!(next_of(&mut c, "message").await["data"], i);
    }
    assert_eq!(close_code(&mut c).await, Some(1012));
    hub.drained().await;
    assert_eq!(hub.connection_count(), 0);
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .is_err()
    );
}
