//! brisk-server over HTTP: each test starts the real server on
//! 127.0.0.1:0 with its data in a fresh temporary directory.

mod api;
mod browser;
mod lifecycle;
mod llm;
mod model;
mod postgres;
mod redis;
mod security;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use brisk_server::{RunningServer, Settings, start};

/// A test's WebSocket client.
pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running server, its base URL and its data directory (removed on drop).
pub(crate) struct TestServer {
    pub(crate) server: Option<RunningServer>,
    pub(crate) base: String,
    pub(crate) dir: PathBuf,
    pub(crate) client: reqwest::Client,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

pub(crate) fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "brisk-server-it-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Settings for a test: a fresh directory, port 0, no demo corpus.
pub(crate) fn settings() -> Settings {
    let mut s = Settings::with_data_dir(temp_dir(), "127.0.0.1:0".parse().unwrap());
    s.seed_demo = false;
    s
}

impl TestServer {
    pub(crate) async fn start(settings: Settings) -> Self {
        let dir = settings.data_dir.clone();
        let server = start(settings).await.expect("the server starts");
        let base = format!("http://{}", server.local_addr());
        Self {
            server: Some(server),
            base,
            dir,
            client: reqwest::Client::new(),
        }
    }

    pub(crate) async fn default() -> Self {
        Self::start(settings()).await
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub(crate) async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap()
    }

    /// A WebSocket client on `/ws`, subscribed to `topic`: returns once the
    /// hub has confirmed the subscription.
    pub(crate) async fn subscribe(&self, topic: &str) -> Ws {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;

        let ws_url = format!("ws://{}/ws", self.base.trim_start_matches("http://"));
        let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
        ws.send(Message::text(
            serde_json::json!({"type": "subscribe", "topic": topic}).to_string(),
        ))
        .await
        .unwrap();
        loop {
            let msg = ws.next().await.unwrap().unwrap();
            let v: serde_json::Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
            if v["type"] == "subscribed" {
                return ws;
            }
        }
    }

    pub(crate) async fn stop(mut self) -> PathBuf {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        self.dir.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.server.is_none() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads an error response and checks its shape: `{error, message,
/// request_id}` with the id of the `x-request-id` header.
pub(crate) async fn error_body(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let header = response
        .headers()
        .get("x-request-id")
        .expect("every response has a request id")
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert!(body["error"].is_string(), "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert_eq!(body["request_id"], header.as_str(), "{body}");
    body
}
