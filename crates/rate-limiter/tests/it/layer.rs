//! The HTTP layer under axum: 429 with the right headers, one limit shared
//! by every clone of the service, classes per route.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use brisk_core::ManualClock;
use brisk_rate_limiter::{KeySource, Quota, RateLimitLayer};
use http::{HeaderName, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

fn app(layer: RateLimitLayer) -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/api/ml/score", get(|| async { "0.9" }))
        .route("/admin/users", get(|| async { "[]" }))
        .layer(layer)
}

fn request(path: &str, api_key: &str) -> Request<Body> {
    Request::get(path)
        .header("x-api-key", api_key)
        .body(Body::empty())
        .unwrap()
}

async fn status(app: &Router, path: &str, api_key: &str) -> StatusCode {
    app.clone()
        .oneshot(request(path, api_key))
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn rejection_is_a_429_with_retry_after_and_ietf_headers() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::builder()
        .key(KeySource::Header(HeaderName::from_static("x-api-key")))
        .class(
            "default",
            [
                Quota::per_minute(2).named("minute"),
                Quota::per_hour(100).named("hour"),
            ],
        )
        .clock(clock.shared())
        .build()
        .unwrap();
    let app = app(layer);
    assert_eq!(status(&app, "/hello", "k1").await, StatusCode::OK);
    assert_eq!(status(&app, "/hello", "k1").await, StatusCode::OK);
    let response = app.clone().oneshot(request("/hello", "k1")).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let h = response.headers();
    assert_eq!(h["retry-after"], "30");
    assert_eq!(
        h["ratelimit-policy"],
        "\"minute\";q=2;w=60, \"hour\";q=100;w=3600"
    );
    assert_eq!(h["ratelimit"], "\"minute\";r=0;t=30");
    assert_eq!(h["content-type"], "application/json");
    let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"], "rate_limited");
    assert_eq!(json["class"], "default");
    assert_eq!(json["window"], "minute");
    assert_eq!(json["limit"], 2);
    assert_eq!(json["retry_after_secs"], 30);
    // Another key has its own windows; time brings the first one back.
    assert_eq!(status(&app, "/hello", "k2").await, StatusCode::OK);
    clock.advance(Duration::from_secs(30));
    assert_eq!(status(&app, "/hello", "k1").await, StatusCode::OK);
}

#[tokio::test]
async fn clones_share_one_limit() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::builder()
        .key(KeySource::Header(HeaderName::from_static("x-api-key")))
        .class("default", [Quota::per_second(5)])
        .clock(clock.shared())
        .build()
        .unwrap();
    let app = app(layer.clone());
    let mut ok = 0;
    for _ in 0..50 {
        // Every request goes through a fresh clone, as axum does.
        if status(&app, "/hello", "same").await == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!(ok, 5);
    // A second router built from the same layer shares the state too.
    assert_eq!(
        status(&self::app(layer), "/hello", "same").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn served_over_tcp_the_peer_ip_is_limited_across_connections() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::builder()
        .class("default", [Quota::per_second(5)])
        .clock(clock.shared())
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app(layer).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let mut codes = Vec::new();
    for _ in 0..20 {
        // A new connection per request: a new service clone each time.
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /hello HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        codes.push(response[9..12].to_owned());
    }
    server.abort();
    assert_eq!(codes.iter().filter(|c| *c == "200").count(), 5, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "429").count(), 15, "{codes:?}");
}

#[tokio::test]
async fn classes_per_route() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::builder()
        .key(KeySource::function(|parts| {
            parts.headers.get("x-api-key")?.to_str().ok().map(str::to_owned)
        }))
        .class("default", [Quota::per_minute(100)])
        .class(
            "ml",
            [
                Quota::per_minute(3),
                Quota::per_hour(1_000),
                Quota::per_day(10_000),
            ],
        )
        .class(
            "admin",
            [Quota::per_minute(1), Quota::per_hour(50), Quota::per_day(200)],
        )
        .route("/api/ml/", "ml")
        .route("/admin/", "admin")
        .clock(clock.shared())
        .build()
        .unwrap();
    let app = app(layer.clone());
    let count = |path: &'static str| {
        let app = app.clone();
        async move {
            let mut ok = 0;
            for _ in 0..10 {
                if status(&app, path, "client").await == StatusCode::OK {
                    ok += 1;
                }
            }
            ok
        }
    };
    assert_eq!(count("/api/ml/score").await, 3);
    assert_eq!(count("/admin/users").await, 1);
    assert_eq!(count("/hello").await, 10);
    // Overrides per key, at run time, through the layer.
    let ml = layer.limiter("ml").unwrap();
    ml.set_override("client".to_owned(), [Quota::per_minute(20)])
        .unwrap();
    assert_eq!(count("/api/ml/score").await, 10);
    assert!(layer.limiter("nope").is_none());
}

#[test]
fn layer_configuration_errors_name_the_field() {
    let e = RateLimitLayer::builder()
        .class("ml", [Quota::per_minute(1)])
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "classes");
    let e = RateLimitLayer::builder()
        .class("default", [Quota::per_minute(1)])
        .class("ml", [Quota::per_minute(0)])
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "classes[\"ml\"].quotas[0].limit");
    let e = RateLimitLayer::builder()
        .class("default", [Quota::per_minute(1)])
        .route("/x/", "missing")
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "routes[\"/x/\"]");
}
