//! `POST /api/generate` with an LLM configured: a local server speaking the
//! OpenAI chat-completions protocol on 127.0.0.1 answers, or is down, or
//! fails; the local model is the fallback and `/ready` says degraded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use brisk_server::Secret;
use serde_json::{Value, json};

use crate::{TestServer, settings};

/// What the fake API saw: each chat request's body and `Authorization`,
/// and how many `GET /models` probes.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<(Value, Option<String>)>>,
    models: AtomicUsize,
}

struct FakeApi {
    base_url: String,
    seen: Arc<Seen>,
}

/// An OpenAI-compatible server answering every chat request with `status`
/// (200: `n` choices of a fixed text, model `fake-1`).
async fn fake_api(status: u16) -> FakeApi {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(move |State(seen): State<Arc<Seen>>, headers: HeaderMap, body: String| async move {
                let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                seen.requests.lock().unwrap().push((body.clone(), auth));
                if status != 200 {
                    let error = json!({"error": {"message": "upstream exploded", "type": "server_error"}});
                    return (StatusCode::from_u16(status).unwrap(), error.to_string()).into_response();
                }
                let n = body["n"].as_u64().unwrap_or(1);
                let choices: Vec<Value> = (0..n)
                    .map(|i| {
                        json!({
                            "index": i,
                            "message": {"role": "assistant", "content": format!("\"LLM draft {i} about shipping fast\"")},
                            "finish_reason": "stop",
                        })
                    })
                    .collect();
                let answer = json!({
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": "fake-1",
                    "choices": choices,
                    "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30},
                });
                ([("content-type", "application/json")], answer.to_string()).into_response()
            }),
        )
        .route(
            "/v1/models",
            get(move |State(seen): State<Arc<Seen>>| async move {
                seen.models.fetch_add(1, Ordering::SeqCst);
                let code = StatusCode::from_u16(status).unwrap();
                (code, json!({"object": "list", "data": [{"id": "fake-1"}]}).to_string()).into_response()
            }),
        )
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    FakeApi {
        base_url: format!("http://{addr}/v1"),
        seen,
    }
}

/// A server with the demo corpus (the local model) and the LLM at `base_url`.
async fn server_with_llm(base_url: &str) -> TestServer {
    let mut s = settings();
    s.seed_demo = true;
    s.llm_base_url = Some(base_url.to_owned());
    s.llm_model = Some("fake-1".to_owned());
    s.llm_api_key = Some(Secret::from("sk-test-key"));
    TestServer::start(s).await
}

async fn llm_check(server: &TestServer) -> (u16, Value) {
    let r = server.get("/ready").await;
    let status = r.status().as_u16();
    let ready: Value = r.json().await.unwrap();
    let check = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "llm")
        .unwrap()
        .clone();
    (status, check)
}

#[tokio::test]
async fn the_llm_answers_when_configured() {
    let api = fake_api(200).await;
    let server = server_with_llm(&api.base_url).await;

    let r = server
        .post_json(
            "/api/generate",
            &json!({"topic": "shipping", "n": 2, "max_chars": 120}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["backend"], "llm", "{body}");
    assert_eq!(body["llm_model"], "fake-1", "{body}");
    let posts = body["posts"].as_array().unwrap();
    assert_eq!(posts.len(), 2, "{body}");
    // The wrapping quotes are taken off; the local scorer gives a confidence.
    assert_eq!(posts[0]["text"], "LLM draft 0 about shipping fast", "{body}");
    assert!((0.0..=1.0).contains(&posts[0]["confidence"].as_f64().unwrap()));

    let seen = api.seen.requests.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (request, auth) = &seen[0];
    assert_eq!(auth.as_deref(), Some("Bearer sk-test-key"));
    assert_eq!(request["model"], "fake-1");
    assert_eq!(request["n"], 2);
    assert!(
        request["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("shipping")
    );

    let (status, check) = llm_check(&server).await;
    assert_eq!(status, 200);
    assert_eq!(check["status"], "healthy", "{check}");
}

#[tokio::test]
async fn the_local_model_answers_when_the_llm_is_down() {
    // Nothing listens on this port once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = server_with_llm(&format!("http://127.0.0.1:{port}/v1")).await;

    let (status, check) = llm_check(&server).await;
    assert_eq!(status, 200, "degraded, not failed");
    assert_eq!(check["status"], "degraded", "{check}");

    let r = server.post_json("/api/generate", &json!({"n": 1})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["backend"], "local", "{body}");
    assert!(body["llm_error"].is_string(), "{body}");
    assert!(!body["posts"][0]["text"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn the_local_model_answers_when_the_llm_fails() {
    let api = fake_api(500).await;
    let server = server_with_llm(&api.base_url).await;

    let r = server.post_json("/api/generate", &json!({"n": 1})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["backend"], "local", "{body}");
    assert!(
        !api.seen.requests.lock().unwrap().is_empty(),
        "the API was asked first"
    );

    let (status, check) = llm_check(&server).await;
    assert_eq!(status, 200, "degraded, not failed");
    assert_eq!(check["status"], "degraded", "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("local model"),
        "{check}"
    );
}

/// `/ready` reuses the answer of `GET /models` for a while: however often
/// it is polled, the provider is probed once per TTL (10 s), and
/// concurrent calls share one probe.
#[tokio::test]
async fn ready_probes_the_llm_once_within_the_ttl() {
    let api = fake_api(200).await;
    let server = server_with_llm(&api.base_url).await;
    assert_eq!(
        api.seen.models.load(Ordering::SeqCst),
        0,
        "no probe before /ready"
    );

    let (status, check) = llm_check(&server).await;
    assert_eq!(status, 200);
    assert_eq!(check["status"], "healthy", "{check}");
    let (_, again) = llm_check(&server).await;
    assert_eq!(again["status"], "healthy", "{again}");
    assert_eq!(
        api.seen.models.load(Ordering::SeqCst),
        1,
        "two /ready calls within the TTL: one probe"
    );

    let many: Vec<_> = (0..8).map(|_| server.get("/ready")).collect();
    for r in futures_util::future::join_all(many).await {
        assert_eq!(r.status(), 200);
    }
    assert_eq!(api.seen.models.load(Ordering::SeqCst), 1, "still one probe");

    let summary: Value = server.get("/api/performance/summary").await.json().await.unwrap();
    assert_eq!(
        summary["components"]["llm"]["ready_probes"], 1,
        "{}",
        summary["components"]["llm"]
    );
}
