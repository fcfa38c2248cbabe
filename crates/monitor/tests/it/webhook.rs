//! The webhook notifier against a real HTTP server on 127.0.0.1.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use brisk_core::{Backoff, ManualClock};
use brisk_monitor::{
    AlertEngine, AlertRule, AlertRules, LogNotifier, Monitor, Notification, Notifier, NotifyError, Op,
    Signal, WebhookNotifier,
};

#[derive(Default)]
struct Hook {
    /// Answer 500 to this many requests first.
    fail_first: AtomicUsize,
    /// Wait this long before answering.
    delay: Mutex<Duration>,
    bodies: Mutex<Vec<(String, serde_json::Value)>>,
    requests: AtomicUsize,
}

async fn receive(State(hook): State<Arc<Hook>>, headers: axum::http::HeaderMap, body: String) -> StatusCode {
    hook.requests.fetch_add(1, Ordering::SeqCst);
    let delay = *hook.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    hook.bodies.lock().unwrap().push((auth, value));
    if hook
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// Starts a real HTTP server on 127.0.0.1:0; returns its URL and state.
async fn serve(hook: Hook) -> (String, Arc<Hook>) {
    let hook = Arc::new(hook);
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), hook)
}

fn fast_backoff(attempts: u32) -> Backoff {
    Backoff::builder()
        .base(Duration::from_millis(5))
        .cap(Duration::from_millis(20))
        .max_attempts(attempts)
        .seed(1)
        .build()
        .unwrap()
}

/// One firing notification from a real engine.
fn firing() -> Notification {
    let clock = ManualClock::new();
    let monitor = Monitor::builder().clock(clock.shared()).build().unwrap();
    monitor
        .gauge("brisk_rss_bytes", "rss", &[("host", "a")])
        .unwrap()
        .set(6e8);
    let rule = AlertRule::threshold("memory_high", Signal::value("brisk_rss_bytes"), Op::Gt, 5e8)
        .summary("RSS over 500 MB")
        .label("team", "ops");
    let engine = AlertEngine::builder(&monitor)
        .rules(AlertRules::new([rule]).unwrap())
        .build()
        .unwrap();
    engine.evaluate().remove(0)
}

#[tokio::test]
async fn posts_an_alertmanager_payload() {
    let (url, hook) = serve(Hook::default()).await;
    let notifier = WebhookNotifier::builder(url)
        .header("Authorization", "Bearer t0k")
        .build()
        .unwrap();
    notifier.notify(&firing()).await.unwrap();
    let bodies = hook.bodies.lock().unwrap();
    assert_eq!(bodies.len(), 1);
    let (auth, p) = &bodies[0];
    assert_eq!(auth, "Bearer t0k");
    assert_eq!(p["version"], "4");
    assert_eq!(p["status"], "firing");
    assert_eq!(p["receiver"], "brisk");
    assert_eq!(p["groupLabels"]["alertname"], "memory_high");
    assert_eq!(p["commonLabels"]["team"], "ops");
    assert_eq!(p["truncatedAlerts"], 0);
    let a = &p["alerts"][0];
    assert_eq!(a["status"], "firing");
    assert_eq!(a["labels"]["alertname"], "memory_high");
    assert_eq!(a["labels"]["severity"], "warning");
    assert_eq!(a["labels"]["host"], "a");
    assert_eq!(a["annotations"]["summary"], "RSS over 500 MB");
    assert_eq!(a["startsAt"], "2025-01-01T00:00:00.000Z");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
}

#[tokio::test]
async fn retries_on_500_then_succeeds_or_gives_up() {
    let (url, hook) = serve(Hook {
        fail_first: AtomicUsize::new(2),
        ..Hook::default()
    })
    .await;
    let notifier = WebhookNotifier::builder(url.clone())
        .backoff(fast_backoff(3))
        .build()
        .unwrap();
    notifier.notify(&firing()).await.unwrap();
    assert_eq!(hook.requests.load(Ordering::SeqCst), 3, "two 500s, then 200");

    let (url, hook) = serve(Hook {
        fail_first: AtomicUsize::new(10),
        ..Hook::default()
    })
    .await;
    let notifier = WebhookNotifier::builder(url)
        .name("pager")
        .backoff(fast_backoff(3))
        .build()
        .unwrap();
    let err = notifier.notify(&firing()).await.unwrap_err();
    assert_eq!(
        err,
        NotifyError::Status {
            notifier: "pager".into(),
            status: 500,
            attempts: 3
        }
    );
    assert_eq!(hook.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let (url, hook) = serve(Hook {
        delay: Mutex::new(Duration::from_secs(5)),
        ..Hook::default()
    })
    .await;
    let notifier = WebhookNotifier::builder(url)
        .timeout(Duration::from_millis(100))
        .backoff(fast_backoff(2))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = notifier.notify(&firing()).await.unwrap_err();
    assert!(
        matches!(&err, NotifyError::Transport { reason, attempts: 2, .. } if reason == "timed out"),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "gave up at the timeout, not the server's 5 s"
    );
    assert_eq!(hook.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unreachable_endpoint_does_not_block_evaluation() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let direct = WebhookNotifier::builder(url.clone())
        .backoff(fast_backoff(2))
        .build()
        .unwrap();
    let err = direct.notify(&firing()).await.unwrap_err();
    assert!(
        matches!(err, NotifyError::Transport { attempts: 2, .. }),
        "{err:?}"
    );

    // Through the engine: evaluate returns at once, recording goes on, the
    // failure is counted when delivery gives up.
    let clock = ManualClock::new();
    let monitor = Monitor::builder().clock(clock.shared()).build().unwrap();
    let g = monitor.gauge("brisk_x", "x", &[]).unwrap();
    g.set(1.0);
    let rule = AlertRule::threshold("x_high", Signal::value("brisk_x"), Op::Gt, 0.0);
    let slow_retries = Backoff::builder()
        .base(Duration::from_millis(200))
        .max_attempts(3)
        .seed(2)
        .build()
        .unwrap();
    let engine = AlertEngine::builder(&monitor)
        .rules(AlertRules::new([rule]).unwrap())
        .notifier(
            WebhookNotifier::builder(url)
                .backoff(slow_retries)
                .build()
                .unwrap(),
        )
        .notifier(LogNotifier)
        .build()
        .unwrap();
    let started = Instant::now();
    assert_eq!(engine.evaluate().len(), 1);
    // Delivery runs on its own task, which has not run yet on this
    // current-thread runtime: evaluate returned without waiting for it.
    assert_eq!(engine.failed_notifications() + engine.sent_notifications(), 0);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "evaluate waited for delivery"
    );
    g.set(2.0);
    assert_eq!(g.get(), 2.0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.failed_notifications() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(engine.failed_notifications(), 1, "the webhook failure is counted");
    assert_eq!(engine.sent_notifications(), 1, "the log notifier delivered");
}

#[test]
fn builder_names_bad_fields() {
    assert_eq!(
        WebhookNotifier::builder("not a url").build().unwrap_err().field(),
        "webhook.url"
    );
    assert_eq!(
        WebhookNotifier::builder("ftp://x/").build().unwrap_err().field(),
        "webhook.url"
    );
    let e = WebhookNotifier::builder("http://127.0.0.1/")
        .timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "webhook.timeout");
    let e = WebhookNotifier::builder("http://127.0.0.1/")
        .header("bad header", "x")
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "webhook.header");
}
