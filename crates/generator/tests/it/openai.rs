//! The `openai` backend against a local OpenAI-compatible server (axum on
//! 127.0.0.1) that follows a script per hit and counts its hits.
//!
//! Durations are short and real (tens of milliseconds): the client talks to
//! a real socket, where tokio's paused time would fire its timeouts while
//! the bytes are still on their way.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use brisk_core::{Backoff, ManualClock, Priority, StatsReport};
use brisk_generator::Generator;
use brisk_generator::openai::{
    Answer, Backend, ChatRequest, DeadlineStage, LocalAnswer, Message, OpenAiClient, OpenAiClientBuilder,
    OpenAiError,
};
use brisk_pipeline::BreakerConfig;
use brisk_rate_limiter::RateLimitError;
use serde_json::{Value, json};

// ---- the scripted server ---------------------------------------------------

/// What the server answers to one hit.
#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn json(body: &Value) -> Self {
        Self::raw(200, "application/json", &body.to_string())
    }

    fn error(status: u16, code: &str, message: &str) -> Self {
        let body = json!({"error": {"message": message, "type": code, "code": code}});
        Self::raw(status, "application/json", &body.to_string())
    }

    fn raw(status: u16, content_type: &'static str, body: &str) -> Self {
        Self {
            status,
            content_type,
            headers: Vec::new(),
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    /// `data: {chunk}` events, then `data: [DONE]`.
    fn sse(chunks: &[Value]) -> Self {
        let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
        body.push_str("data: [DONE]\n\n");
        Self::raw(200, "text/event-stream", &body)
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    body: Value,
    authorization: Option<String>,
    accept: Option<String>,
}

type Script = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

struct ServerState {
    script: Script,
    hits: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

struct Server {
    base_url: String,
    state: Arc<ServerState>,
}

impl Server {
    /// Starts a server answering hit `i` (from 0) with `script(i)`.
    async fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        let state = Arc::new(ServerState {
            script: Arc::new(script),
            hits: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base_url: format!("http://{addr}/v1"),
            state,
        }
    }

    /// Always the same reply.
    async fn always(reply: Reply) -> Self {
        Self::start(move |_| reply.clone()).await
    }

    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

async fn handle(State(state): State<Arc<ServerState>>, headers: HeaderMap, body: Bytes) -> Response {
    let hit = state.hits.fetch_add(1, Ordering::SeqCst);
    let text = |name| {
        headers
            .get(name)
            .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    state.seen.lock().unwrap().push(Seen {
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        authorization: text(header::AUTHORIZATION),
        accept: text(header::ACCEPT),
    });
    let reply = (state.script)(hit);
    tokio::time::sleep(reply.delay).await;
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        [(header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// A chat completion with one choice.
fn completion(text: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "served-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    })
}

/// A client of `server` with quick retries (3 attempts, 5 ms base).
fn client(server: &Server) -> OpenAiClientBuilder {
    OpenAiClient::builder()
        .base_url(&server.base_url)
        .model("test-model")
        .api_key("sk-test")
        .default_timeout(Some(Duration::from_secs(5)))
        .backoff(quick_backoff(3))
}

fn quick_backoff(attempts: u32) -> Backoff {
    Backoff::builder()
        .base(Duration::from_millis(5))
        .cap(Duration::from_millis(20))
        .max_attempts(attempts)
        .seed(7)
        .build()
        .unwrap()
}

fn local(request: &ChatRequest) -> Result<LocalAnswer, String> {
    Ok(LocalAnswer::new(
        format!("local: {}", request.prompt_text()),
        Some(0.3),
    ))
}

/// A port with nothing listening: connections are refused.
fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/v1")
}

fn remote_model(answer: &Answer) -> &str {
    match &answer.backend {
        Backend::Remote { model } => model,
        other => panic!("expected a remote answer, got {other:?}"),
    }
}

// ---- the protocol ------------------------------------------------------------

#[tokio::test]
async fn a_json_completion_sends_every_field_and_reads_the_answer() {
    let server = Server::always(Reply::json(&json!({
        "model": "served-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "First draft"}, "finish_reason": "stop"},
            {"index": 1, "message": {"role": "assistant", "content": "Second draft"}, "finish_reason": "length"}
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 7}
    })))
    .await;
    let client = client(&server).build().unwrap();
    let request = ChatRequest::new([Message::system("One tweet."), Message::user("Launch day")])
        .temperature(0.5)
        .max_tokens(60)
        .n(2)
        .stop(["\n\n"]);
    let answer = client.complete(&request).await.unwrap();

    assert_eq!(answer.text, "First draft");
    assert_eq!(remote_model(&answer), "served-model");
    assert_eq!(answer.choices.len(), 2);
    assert_eq!(answer.choices[1].text, "Second draft");
    assert_eq!(answer.choices[1].finish_reason.as_deref(), Some("length"));
    assert_eq!(answer.usage.map(|u| u.total()), Some(27));
    assert_eq!(answer.confidence, None, "no logprobs asked for, none given");
    assert!(!answer.cached);
    assert!(answer.remote_error.is_none());

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let body = &seen[0].body;
    assert_eq!(body["model"], "test-model");
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "One tweet."}, {"role": "user", "content": "Launch day"}])
    );
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["max_tokens"], 60);
    assert_eq!(body["n"], 2);
    assert_eq!(body["stop"], json!(["\n\n"]));
    assert!(
        body.get("logprobs").is_none() && body.get("stream").is_none(),
        "{body}"
    );
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer sk-test"));
    let stats = client.stats();
    assert_eq!(
        (stats.calls, stats.remote, stats.http_requests, stats.failed),
        (1, 1, 1, 0)
    );
    let report = StatsReport::collect(&client);
    assert_eq!(report.value("brisk_openai_remote_answers_total"), Some(1.0));
    assert!(
        report
            .metrics()
            .iter()
            .any(|m| m.name.starts_with("brisk_pipeline_"))
    );
    assert!(
        report
            .metrics()
            .iter()
            .any(|m| m.name.starts_with("brisk_cache_"))
    );
}

#[tokio::test]
async fn the_api_key_comes_from_the_environment() {
    let server = Server::always(Reply::json(&completion("ok"))).await;
    // PATH is set in every test environment; the client reads whatever
    // variable it is told to (setting one would need `unsafe` in Rust 2024).
    let from_env = OpenAiClient::builder()
        .base_url(&server.base_url)
        .api_key_env("PATH")
        .build()
        .unwrap();
    from_env.complete(&ChatRequest::prompt("a")).await.unwrap();
    let unset = OpenAiClient::builder()
        .base_url(&server.base_url)
        .api_key_env("BRISK_TEST_NO_SUCH_VARIABLE")
        .build()
        .unwrap();
    unset.complete(&ChatRequest::prompt("b")).await.unwrap();

    let seen = server.seen();
    let path = std::env::var("PATH").unwrap();
    assert_eq!(seen[0].authorization, Some(format!("Bearer {path}")));
    assert_eq!(seen[1].authorization, None, "no key: no Authorization header");
    assert!(!format!("{from_env:?}").contains(&path), "the key never prints");
}

#[tokio::test]
async fn a_streamed_answer_is_assembled_from_server_sent_events() {
    let server = Server::always(Reply::sse(&[
        json!({"model": "served-model", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello"},
            "logprobs": {"content": [{"token": "Hello", "logprob": -0.1}]}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": " world"},
            "logprobs": {"content": [{"token": " world", "logprob": -0.3}]}, "finish_reason": "stop"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}}),
    ]))
    .await;
    let client = client(&server).build().unwrap();
    let answer = client
        .complete(&ChatRequest::prompt("greet").stream(true).logprobs(true))
        .await
        .unwrap();

    assert_eq!(answer.text, "Hello world");
    assert_eq!(remote_model(&answer), "served-model");
    assert_eq!(answer.choices[0].finish_reason.as_deref(), Some("stop"));
    assert_eq!(answer.choices[0].logprobs.len(), 2);
    let confidence = answer.confidence.unwrap();
    assert!((confidence - (-0.2f64).exp()).abs() < 1e-9, "{confidence}");
    assert_eq!(answer.usage.map(|u| u.total()), Some(11));
    let seen = server.seen();
    assert_eq!(seen[0].body["stream"], true);
    assert_eq!(seen[0].body["stream_options"]["include_usage"], true);
    assert_eq!(seen[0].body["logprobs"], true);
    assert_eq!(seen[0].accept.as_deref(), Some("text/event-stream"));
}

#[tokio::test]
async fn a_server_that_ignores_stream_still_answers() {
    let server = Server::always(Reply::json(&completion("not streamed"))).await;
    let client = client(&server).build().unwrap();
    let answer = client
        .complete(&ChatRequest::prompt("x").stream(true))
        .await
        .unwrap();
    assert_eq!(answer.text, "not streamed");
}

#[tokio::test]
async fn logprobs_become_the_confidence() {
    let half = 0.5f64.ln();
    let server = Server::always(Reply::json(&json!({
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Yes no"},
            "logprobs": {"content": [{"token": "Yes", "logprob": half}, {"token": " no", "logprob": half}]},
            "finish_reason": "stop"
        }]
    })))
    .await;
    let client = client(&server).build().unwrap();
    let answer = client
        .complete(&ChatRequest::prompt("?").logprobs(true))
        .await
        .unwrap();
    assert!((answer.confidence.unwrap() - 0.5).abs() < 1e-12);
    assert_eq!(answer.choices[0].logprobs[1].token, " no");
    assert_eq!(
        remote_model(&answer),
        "test-model",
        "no model in the response: the requested one"
    );
    assert_eq!(server.seen()[0].body["logprobs"], true);
}

// ---- retries -------------------------------------------------------------------

#[tokio::test]
async fn a_429_rate_limit_is_retried_after_retry_after_and_pauses_the_limiter() {
    let server = Server::start(|hit| match hit {
        0 => Reply::error(429, "rate_limit_exceeded", "Rate limit reached for requests")
            .header("retry-after-ms", "60")
            .header("x-ratelimit-remaining-requests", "0")
            .header("x-ratelimit-reset-requests", "60ms"),
        _ => Reply::json(&completion("after the wait")),
    })
    .await;
    let client = client(&server).build().unwrap();
    let started = Instant::now();
    let answer = client.complete(&ChatRequest::prompt("busy")).await.unwrap();

    assert_eq!(answer.text, "after the wait");
    assert_eq!(server.hits(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "retry-after honoured"
    );
    let stats = client.stats();
    assert_eq!((stats.http_requests, stats.http_errors), (2, 1));
    assert!(
        stats.upstream_pauses >= 1,
        "the headers paused the requests limiter"
    );
    assert_eq!(client.pipeline_stats().retries, 1);
}

#[tokio::test]
async fn a_429_insufficient_quota_is_never_retried() {
    let server = Server::always(
        Reply::error(429, "insufficient_quota", "You exceeded your current quota").header("retry-after", "0"),
    )
    .await;
    let client = client(&server).build().unwrap();
    let err = client.complete(&ChatRequest::prompt("spend")).await.unwrap_err();
    assert!(
        matches!(&err, OpenAiError::InsufficientQuota { message } if message.contains("quota")),
        "{err:?}"
    );
    assert!(err.to_string().contains("insufficient_quota"), "{err}");
    assert_eq!(server.hits(), 1);
    assert_eq!(client.stats().failed, 1);
}

#[tokio::test]
async fn a_500_is_retried_then_succeeds() {
    let server = Server::start(|hit| match hit {
        0 => Reply::error(500, "server_error", "The server had an error"),
        _ => Reply::json(&completion("second time lucky")),
    })
    .await;
    let client = client(&server).build().unwrap();
    let answer = client.complete(&ChatRequest::prompt("again")).await.unwrap();
    assert_eq!(answer.text, "second time lucky");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_408_and_a_409_are_retried() {
    let server = Server::start(|hit| match hit {
        0 => Reply::error(408, "timeout", "Request timed out"),
        1 => Reply::error(409, "conflict", "lock timeout"),
        _ => Reply::json(&completion("third")),
    })
    .await;
    let client = client(&server).build().unwrap();
    let answer = client.complete(&ChatRequest::prompt("retry me")).await.unwrap();
    assert_eq!(answer.text, "third");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    let server = Server::always(Reply::error(503, "overloaded", "try later")).await;
    let client = client(&server).build().unwrap();
    let err = client.complete(&ChatRequest::prompt("never")).await.unwrap_err();
    assert!(
        matches!(&err, OpenAiError::Http { status: 503, code: Some(code), .. } if code == "overloaded"),
        "{err:?}"
    );
    assert_eq!(server.hits(), 3, "three attempts, as the backoff allows");
}

#[tokio::test]
async fn a_400_is_not_retried() {
    let server = Server::always(Reply::error(
        400,
        "invalid_value",
        "Invalid value for 'temperature'",
    ))
    .await;
    let client = client(&server).build().unwrap();
    let err = client.complete(&ChatRequest::prompt("bad")).await.unwrap_err();
    match &err {
        OpenAiError::Http {
            status,
            code,
            message,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(code.as_deref(), Some("invalid_value"));
            assert!(message.contains("temperature"), "{message}");
        }
        other => panic!("expected HTTP 400, got {other:?}"),
    }
    assert_eq!(server.hits(), 1);
    assert_eq!(client.pipeline_stats().retries, 0);
}

#[tokio::test]
async fn an_attempt_past_request_timeout_is_retried() {
    let server = Server::start(|hit| {
        let reply = Reply::json(&completion("prompt this time"));
        if hit == 0 {
            reply.delay(Duration::from_secs(10))
        } else {
            reply
        }
    })
    .await;
    let client = client(&server)
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let answer = client
        .complete(&ChatRequest::prompt("slow then fast"))
        .await
        .unwrap();
    assert_eq!(answer.text, "prompt this time");
    assert_eq!(server.hits(), 2);
}

// ---- deadlines and malformed answers ---------------------------------------

#[tokio::test]
async fn a_response_slower_than_the_deadline_is_a_deadline_error() {
    let server = Server::always(Reply::json(&completion("too late")).delay(Duration::from_secs(30))).await;
    for cached in [true, false] {
        let client = client(&server).build().unwrap();
        let started = Instant::now();
        let request = ChatRequest::prompt(format!("slow {cached}"))
            .cache(cached)
            .timeout(Duration::from_millis(150));
        let err = client.complete(&request).await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(
            err,
            OpenAiError::DeadlineExceeded {
                stage: DeadlineStage::Response
            },
            "cached {cached}"
        );
        assert!(err.to_string().contains("waiting for the response"), "{err}");
        assert!(took >= Duration::from_millis(150), "{took:?}");
        assert!(took < Duration::from_secs(3), "no hang: {took:?}");
    }
    assert_eq!(server.hits(), 2, "one attempt each: past the deadline, no retry");
}

#[tokio::test]
async fn malformed_answers_are_clear_errors_never_panics() {
    let cases: [(Reply, &str); 6] = [
        (
            Reply::raw(200, "application/json", r#"{"choices": ["#),
            "not a chat completion",
        ),
        (
            Reply::raw(200, "text/html", "<html>502 Bad Gateway</html>"),
            "not a chat completion",
        ),
        (Reply::json(&json!({"id": "x"})), "no `choices`"),
        (
            Reply::json(&json!({"choices": [{"index": 0, "message": {}}]})),
            "no `message.content`",
        ),
        (
            Reply::raw(200, "text/event-stream", "data: {oops}\n\n"),
            "event 1",
        ),
        (
            Reply::raw(
                200,
                "text/event-stream",
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"cut\"}}]}\n\n",
            ),
            "before `data: [DONE]`",
        ),
    ];
    for (i, (reply, expected)) in cases.into_iter().enumerate() {
        let stream = reply.content_type == "text/event-stream";
        let server = Server::always(reply).await;
        let client = client(&server).build().unwrap();
        let err = client
            .complete(&ChatRequest::prompt("parse me").stream(stream))
            .await
            .unwrap_err();
        match &err {
            OpenAiError::Malformed { message } => assert!(message.contains(expected), "case {i}: {message}"),
            other => panic!("case {i}: expected Malformed, got {other:?}"),
        }
        assert_eq!(server.hits(), 1, "case {i}: a malformed body is not retried");
        assert_eq!(client.stats().malformed, 1, "case {i}");
    }
}

// ---- cache and single-flight -------------------------------------------------

#[tokio::test]
async fn a_repeated_prompt_comes_from_the_cache_until_its_ttl() {
    let server = Server::always(Reply::json(&completion("cached text"))).await;
    let clock = ManualClock::new();
    let client = client(&server)
        .cache_ttl(Duration::from_secs(60))
        .cache_clock(clock.shared())
        .build()
        .unwrap();
    let request = ChatRequest::prompt("same prompt");

    let first = client.complete(&request).await.unwrap();
    let second = client.complete(&request).await.unwrap();
    assert!(!first.cached);
    assert!(second.cached);
    assert_eq!(second.text, "cached text");
    assert_eq!(remote_model(&second), "served-model");
    assert_eq!(server.hits(), 1);
    // A different prompt, or a request that opts out, goes to the API.
    client
        .complete(&ChatRequest::prompt("other prompt"))
        .await
        .unwrap();
    client.complete(&request.clone().cache(false)).await.unwrap();
    assert_eq!(server.hits(), 3);
    // Past the TTL the entry is gone.
    clock.advance(Duration::from_secs(61));
    assert!(!client.complete(&request).await.unwrap().cached);
    assert_eq!(server.hits(), 4);
    assert_eq!(client.stats().cache_hits, 1);
    assert_eq!(client.cache_stats().unwrap().hits, 1);
}

#[tokio::test]
async fn concurrent_identical_prompts_share_one_call() {
    let server = Server::always(Reply::json(&completion("shared")).delay(Duration::from_millis(300))).await;
    let client = client(&server).build().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let client = client.clone();
        tasks.spawn(async move { client.complete(&ChatRequest::prompt("everyone asks this")).await });
    }
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap().unwrap();
        assert_eq!(answer.text, "shared");
        assert_eq!(remote_model(&answer), "served-model");
    }
    assert_eq!(server.hits(), 1);
    let joined = client.pipeline_stats().dedup_hits;
    assert!(joined >= 1, "single-flight joined the call");
    assert_eq!(joined + client.stats().cache_hits, 5);
}

#[tokio::test]
async fn an_urgent_request_goes_before_a_low_one() {
    let server = Server::always(Reply::json(&completion("in turn")).delay(Duration::from_millis(150))).await;
    let client = client(&server).max_concurrency(1).build().unwrap();
    let call = |prompt: &'static str, priority: Priority| {
        let client = client.clone();
        tokio::spawn(async move {
            let request = ChatRequest::prompt(prompt).priority(priority);
            client.complete(&request).await
        })
    };
    // The one worker is busy with the first; low, then urgent, queue up.
    let first = call("first", Priority::Normal);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let low = call("low", Priority::Low);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let urgent = call("urgent", Priority::Urgent);
    for task in [first, low, urgent] {
        task.await.unwrap().unwrap();
    }
    let order: Vec<String> = server
        .seen()
        .iter()
        .map(|s| s.body["messages"][0]["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, ["first", "urgent", "low"]);
}

// ---- fallback and breaker ----------------------------------------------------

#[tokio::test]
async fn the_local_model_answers_when_the_server_is_down() {
    let client = OpenAiClient::builder()
        .base_url(dead_url())
        .api_key("sk-test")
        .backoff(quick_backoff(2))
        .fallback(local)
        .build()
        .unwrap();
    let answer = client.complete(&ChatRequest::prompt("offline")).await.unwrap();
    assert_eq!(answer.backend, Backend::Local);
    assert_eq!(answer.text, "local: offline");
    assert_eq!(answer.confidence, Some(0.3));
    assert!(
        matches!(&answer.remote_error, Some(OpenAiError::Transport { message }) if message.contains("onnect")),
        "{:?}",
        answer.remote_error
    );
    let stats = client.stats();
    assert_eq!((stats.local, stats.remote, stats.http_requests), (1, 0, 2));
    // complete_remote never asks the local model.
    let err = client
        .complete_remote(&ChatRequest::prompt("offline"))
        .await
        .unwrap_err();
    assert!(matches!(err, OpenAiError::Transport { .. }), "{err:?}");
}

#[tokio::test]
async fn the_trained_local_generator_is_a_fallback() {
    let mut generator = Generator::builder().build().unwrap();
    generator
        .train_texts([
            "Shipping the new release today #rust",
            "Shipping small changes every day beats big rewrites",
            "The new release makes small services faster",
            "Small teams ship faster when the build is fast",
            "Why is the build so slow today?",
            "The build is fast again after the release",
        ])
        .unwrap();
    let client = OpenAiClient::builder()
        .base_url(dead_url())
        .backoff(quick_backoff(1))
        .fallback(generator)
        .build()
        .unwrap();
    let answer = client
        .complete(&ChatRequest::prompt("Write about the build").max_tokens(30))
        .await
        .unwrap();
    assert_eq!(answer.backend, Backend::Local);
    assert!(!answer.text.is_empty());
    assert!(answer.text.chars().count() <= 120, "{}", answer.text);
    assert!(answer.confidence.is_some_and(|c| (0.0..=1.0).contains(&c)));
}

#[tokio::test]
async fn an_open_breaker_sends_nothing_and_the_local_model_answers() {
    let server = Server::always(Reply::error(500, "server_error", "down")).await;
    let client = client(&server)
        .backoff(quick_backoff(1))
        .breaker(
            BreakerConfig::default()
                .min_requests(2)
                .window(2)
                .open_for(Duration::from_secs(60)),
        )
        .fallback(local)
        .build()
        .unwrap();
    for i in 0..2 {
        let answer = client
            .complete(&ChatRequest::prompt(format!("p{i}")))
            .await
            .unwrap();
        assert_eq!(answer.backend, Backend::Local);
        assert!(matches!(
            answer.remote_error,
            Some(OpenAiError::Http { status: 500, .. })
        ));
    }
    // Two failures of two: the breaker is open; nothing reaches the server.
    let answer = client.complete(&ChatRequest::prompt("p2")).await.unwrap();
    assert_eq!(answer.backend, Backend::Local);
    assert_eq!(answer.text, "local: p2");
    assert!(
        matches!(answer.remote_error, Some(OpenAiError::Unavailable { retry_after }) if retry_after > Duration::from_secs(50)),
        "{:?}",
        answer.remote_error
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn the_local_model_answers_past_the_deadline() {
    let server = Server::always(Reply::json(&completion("late")).delay(Duration::from_secs(30))).await;
    let client = client(&server).fallback(local).build().unwrap();
    let started = Instant::now();
    let answer = client
        .complete(&ChatRequest::prompt("hurry").timeout(Duration::from_millis(100)))
        .await
        .unwrap();
    assert_eq!(answer.backend, Backend::Local);
    assert!(matches!(
        answer.remote_error,
        Some(OpenAiError::DeadlineExceeded { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_failing_local_model_reports_both_failures() {
    let client = OpenAiClient::builder()
        .base_url(dead_url())
        .backoff(quick_backoff(1))
        .fallback(|_: &ChatRequest| -> Result<LocalAnswer, String> { Err("no model trained".to_owned()) })
        .build()
        .unwrap();
    let err = client.complete(&ChatRequest::prompt("x")).await.unwrap_err();
    match &err {
        OpenAiError::FallbackFailed { remote, local } => {
            assert!(matches!(**remote, OpenAiError::Transport { .. }), "{remote:?}");
            assert_eq!(local, "no model trained");
        }
        other => panic!("expected FallbackFailed, got {other:?}"),
    }
    assert!(err.to_string().contains("no model trained"), "{err}");
    assert_eq!(client.stats().failed, 1);
}

// ---- limits --------------------------------------------------------------------

#[tokio::test]
async fn upstream_headers_pause_later_requests() {
    let server = Server::always(
        Reply::json(&completion("last one"))
            .header("x-ratelimit-remaining-requests", "0")
            .header("x-ratelimit-reset-requests", "1h"),
    )
    .await;
    let client = client(&server).build().unwrap();
    client.complete(&ChatRequest::prompt("first")).await.unwrap();
    let err = client
        .complete(&ChatRequest::prompt("second").timeout(Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        OpenAiError::DeadlineExceeded {
            stage: DeadlineStage::RateLimit
        }
    );
    assert_eq!(server.hits(), 1, "upstream said none left: nothing sent");
}

#[tokio::test]
async fn tokens_and_budget_are_reserved_then_refunded() {
    let server = Server::start(|_| Reply::json(&completion("cheap"))).await;
    // 1 micro-dollar a token; 120 micro-dollars an hour. "a" estimates 8
    // prompt tokens + 100 completion: 108 reserved, 8 used, 100 refunded,
    // so a second call fits (8 + 108 ≤ 120); without the refund it could not.
    let client = client(&server)
        .prices(1.0, 1.0)
        .budget(120, Duration::from_secs(3600))
        .build()
        .unwrap();
    for prompt in ["a", "b"] {
        let request = ChatRequest::prompt(prompt)
            .max_tokens(100)
            .timeout(Duration::from_secs(2));
        client.complete(&request).await.unwrap();
    }
    assert_eq!(server.hits(), 2);
    assert_eq!(client.stats().refunded_tokens, 200);

    // A request larger than a whole window can never pass: an error at once.
    let err = client
        .complete(&ChatRequest::prompt("c").max_tokens(500))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OpenAiError::Limited(RateLimitError::CostTooLarge { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("budget"), "{err}");
    assert_eq!(server.hits(), 2);
}

// ---- bad input -----------------------------------------------------------------

#[tokio::test]
async fn invalid_requests_name_the_field_and_send_nothing() {
    let server = Server::always(Reply::json(&completion("never"))).await;
    let client = client(&server).fallback(local).build().unwrap();
    let cases = [
        (ChatRequest::new(Vec::<Message>::new()), "messages"),
        (ChatRequest::prompt("x").temperature(2.5), "temperature"),
        (ChatRequest::prompt("x").max_tokens(0), "max_tokens"),
        (ChatRequest::prompt("x").n(0), "n"),
        (ChatRequest::prompt("x").stop(["a", "b", "c", "d", "e"]), "stop"),
        (ChatRequest::prompt("x").model(""), "model"),
        (ChatRequest::prompt("x").timeout(Duration::ZERO), "timeout"),
    ];
    for (request, field) in cases {
        let err = client.complete(&request).await.unwrap_err();
        match &err {
            OpenAiError::InvalidRequest { field: f, .. } => assert_eq!(*f, field),
            other => panic!("{field}: expected InvalidRequest, got {other:?}"),
        }
        assert!(err.to_string().contains(field), "{err}");
    }
    assert_eq!(server.hits(), 0);
    assert_eq!(
        client.stats().local,
        0,
        "the local model is not asked for invalid requests"
    );
}

#[tokio::test]
async fn the_builder_names_the_field_at_fault() {
    let budget = Duration::from_secs(3600);
    let cases: Vec<(OpenAiClientBuilder, &str)> = vec![
        (OpenAiClient::builder().base_url(""), "base_url"),
        (OpenAiClient::builder().base_url("not a url"), "base_url"),
        (
            OpenAiClient::builder().base_url("ftp://example.com/v1"),
            "base_url",
        ),
        (OpenAiClient::builder().model(" "), "model"),
        (OpenAiClient::builder().api_key_env(""), "api_key_env"),
        (
            OpenAiClient::builder().api_key("sk-\nInjected: header"),
            "api_key",
        ),
        (
            OpenAiClient::builder().request_timeout(Duration::ZERO),
            "request_timeout",
        ),
        (
            OpenAiClient::builder().connect_timeout(Duration::ZERO),
            "connect_timeout",
        ),
        (
            OpenAiClient::builder().default_timeout(Some(Duration::ZERO)),
            "default_timeout",
        ),
        (
            OpenAiClient::builder().default_max_tokens(0),
            "default_max_tokens",
        ),
        (
            OpenAiClient::builder().requests_per_minute(0),
            "requests_per_minute",
        ),
        (OpenAiClient::builder().tokens_per_minute(0), "tokens_per_minute"),
        (OpenAiClient::builder().max_concurrency(0), "max_concurrency"),
        (OpenAiClient::builder().queue_capacity(0), "queue_capacity"),
        (OpenAiClient::builder().cache_ttl(Duration::ZERO), "cache_ttl"),
        (OpenAiClient::builder().cache_capacity(0), "cache_capacity"),
        (OpenAiClient::builder().prices(-1.0, 0.0), "prices"),
        (OpenAiClient::builder().prices(f64::NAN, 0.0), "prices"),
        (OpenAiClient::builder().budget(100, budget), "prices"),
        (
            OpenAiClient::builder().prices(1.0, 1.0).budget(0, budget),
            "budget.micro_usd",
        ),
        (
            OpenAiClient::builder().prices(1.0, 1.0).budget(1, Duration::ZERO),
            "budget.period",
        ),
        (
            OpenAiClient::builder().breaker(BreakerConfig::default().window(0)),
            "breaker.window",
        ),
    ];
    for (builder, field) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.field(), field, "{err}");
    }
    // The defaults build.
    let client = OpenAiClient::builder().build().unwrap();
    assert_eq!(client.model(), "gpt-4o-mini");
}

#[test]
fn building_outside_a_runtime_is_a_clear_error() {
    let err = OpenAiClient::builder().build().unwrap_err();
    assert_eq!(err.field(), "runtime");
}
