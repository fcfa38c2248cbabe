//! Helpers: a hub served on 127.0.0.1 and a WebSocket client.

use std::net::SocketAddr;
use std::time::Duration;

use brisk_ws_hub::Hub;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Serves `hub` at `/ws` on a free port of 127.0.0.1.
pub(crate) async fn serve(hub: &Hub) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = brisk_ws_hub::router(hub.clone(), "/ws");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

pub(crate) async fn connect(addr: SocketAddr, query: &str) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws{query}"))
        .await
        .unwrap();
    ws
}

/// What the server sent next, skipping pings.
#[derive(Debug)]
pub(crate) enum Got {
    Json(Value),
    Closed(Option<u16>),
}

// A guard against a hung test, not a timing assertion.
const GUARD: Duration = Duration::from_secs(30);

pub(crate) async fn next(ws: &mut Client) -> Got {
    loop {
        let msg = tokio::time::timeout(GUARD, ws.next())
            .await
            .expect("no frame within the guard time");
        match msg {
            Some(Ok(Message::Text(t))) => return Got::Json(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return Got::Closed(frame.map(|f: CloseFrame| u16::from(f.code)));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Got::Closed(None),
        }
    }
}

pub(crate) async fn next_json(ws: &mut Client) -> Value {
    match next(ws).await {
        Got::Json(v) => v,
        Got::Closed(c) => panic!("closed with {c:?} while waiting for a message"),
    }
}

/// The next message of `kind`, skipping others.
pub(crate) async fn next_of(ws: &mut Client, kind: &str) -> Value {
    loop {
        let v = next_json(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

/// Reads until the server closes; the close code.
pub(crate) async fn close_code(ws: &mut Client) -> Option<u16> {
    loop {
        if let Got::Closed(c) = next(ws).await {
            return c;
        }
    }
}

pub(crate) async fn send(ws: &mut Client, v: &Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

pub(crate) async fn send_text(ws: &mut Client, t: &str) {
    ws.send(Message::Text(t.into())).await.unwrap();
}

/// Waits (bounded) until `f` holds, yielding to the runtime between tries.
pub(crate) async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..2_000 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    f()
}
