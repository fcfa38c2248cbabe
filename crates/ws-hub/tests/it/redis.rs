//! Fan-out across two hub instances through a real (testkit) Redis.

use std::time::Duration;

use brisk_core::{Backoff, Priority};
use brisk_ws_hub::{Connection, Delivery, Hub, Recovery, RedisFanout};
use serde_json::{Value, json};

use crate::support::eventually;

async fn recv(conn: &mut Connection) -> Vec<Value> {
    let d = tokio::time::timeout(Duration::from_secs(30), conn.next_batch())
        .await
        .expect("nothing delivered within the guard time");
    match d {
        Delivery::Frames(f) => f.iter().map(|b| serde_json::from_slice(b).unwrap()).collect(),
        other => panic!("{other:?}"),
    }
}

async fn hub_with_fanout(url: &str, prefix: &str) -> (Hub, RedisFanout) {
    let hub = Hub::builder().build().unwrap();
    let backoff = Backoff::builder()
        .base(Duration::from_millis(20))
        .cap(Duration::from_millis(200))
        .build()
        .unwrap();
    let fanout = RedisFanout::builder(url)
        .prefix(prefix)
        .timeout(Duration::from_millis(500))
        .backoff(backoff)
        .attach(&hub)
        .await
        .unwrap();
    (hub, fanout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_process_delivery_with_one_sequence() {
    let Some(kv) = brisk_testkit::redis() else { return };
    let (hub_a, fan_a) = hub_with_fanout(kv.url(), kv.prefix()).await;
    let (hub_b, fan_b) = hub_with_fanout(kv.url(), kv.prefix()).await;
    assert_ne!(fan_a.node_id(), fan_b.node_id());
    assert!(eventually(|| fan_a.is_subscribed() && fan_b.is_subscribed()).await);
    let mut on_a = hub_a.connect(None).unwrap();
    let mut on_b = hub_b.connect(None).unwrap();
    on_a.subscribe("news").unwrap();
    on_b.subscribe("news").unwrap();

    let p1 = fan_b
        .publish("news", &json!({"n": 1}), Priority::Normal)
        .await
        .unwrap();
    assert_eq!((p1.offset, p1.local_only, p1.delivered), (1, false, 1));
    let p2 = fan_a
        .publish("news", &json!({"n": 2}), Priority::Normal)
        .await
        .unwrap();
    assert_eq!(p2.offset, 2);

    let mut got_a = Vec::new();
    while got_a.len() < 2 {
        got_a.extend(recv(&mut on_a).await);
    }
    let mut got_b = Vec::new();
    while got_b.len() < 2 {
        got_b.extend(recv(&mut on_b).await);
    }
    for got in [&got_a, &got_b] {
        let seen: Vec<(u64, u64)> = got
            .iter()
            .map(|m| (m["offset"].as_u64().unwrap(), m["data"]["n"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [(1, 1), (2, 2)],
            "each process sees each message once, in one order"
        );
    }
    // Echoes are ignored: nothing more arrives on either side.
    hub_a
        .publish_to_connection(on_a.id(), "probe", &0, Priority::Normal)
        .unwrap();
    assert_eq!(recv(&mut on_a).await[0]["topic"], "probe");
    assert!(on_b.try_next_batch().is_none());

    // One epoch and offset everywhere, and history to recover from.
    let pa = hub_a.position("news").unwrap();
    assert_eq!(pa, hub_b.position("news").unwrap());
    assert_eq!(got_a[0]["epoch"], pa.epoch.as_str());
    let late = hub_b.connect(None).unwrap();
    let s = late.subscribe_from("news", &pa.epoch, 0).unwrap();
    assert_eq!(s.recovery, Some(Recovery::Recovered { count: 2 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_and_restarted_mid_test() {
    let Some(mut server) = brisk_testkit::redis_server() else {
        return;
    };
    let url = server.url();
    let (hub_a, fan_a) = hub_with_fanout(&url, "ws:").await;
    let (hub_b, fan_b) = hub_with_fanout(&url, "ws:").await;
    assert!(eventually(|| fan_a.is_subscribed() && fan_b.is_subscribed()).await);
    let mut on_a = hub_a.connect(None).unwrap();
    let mut on_b = hub_b.connect(None).unwrap();
    on_a.subscribe("t").unwrap();
    on_b.subscribe("t").unwrap();
    fan_b.publish("t", &"before", Priority::Normal).await.unwrap();
    assert_eq!(recv(&mut on_a).await[0]["data"], "before");
    assert_eq!(recv(&mut on_b).await[0]["data"], "before");

    server.stop().unwrap();
    assert!(
        eventually(|| !fan_a.is_subscribed()).await,
        "the subscriber notices"
    );
    let p = fan_b.publish("t", &"during", Priority::Normal).await.unwrap();
    assert!(p.local_only, "degraded to local delivery");
    let m = &recv(&mut on_b).await[0];
    assert_eq!(m["data"], "during");
    assert!(m["epoch"].as_str().unwrap().starts_with("local-"));
    assert!(hub_b.stats().fanout_errors >= 1);
    assert!(
        on_a.try_next_batch().is_none(),
        "the other process cannot hear it"
    );

    server.start_again().unwrap();
    assert!(
        eventually(|| fan_a.is_subscribed() && fan_b.is_subscribed()).await,
        "both subscribe again"
    );
    // The publisher reconnects after its backoff: retry until Redis takes it.
    let mut after = None;
    for _ in 0..200 {
        let p = fan_b.publish("t", &"after", Priority::Normal).await.unwrap();
        if !p.local_only {
            after = Some(p);
            break;
        }
        let _ = recv(&mut on_b).await; // the local-only copy
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = after.expect("the fan-out came back");
    let m = &recv(&mut on_a).await[0];
    assert_eq!(
        (m["data"].as_str(), m["offset"].as_u64()),
        (Some("after"), Some(after.offset))
    );
    assert_eq!(hub_a.position("t"), hub_b.position("t"), "one sequence again");
}
