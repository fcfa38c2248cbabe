//! A chat room on brisk-ws-hub: users sign in with a JWT, join a room (a
//! topic), talk, see who is there, and get a direct message; a late joiner
//! catches up on what it missed from the room's history.
//!
//! ```text
//! cargo run -p brisk-examples --example ws_hub_chat
//! ```
//!
//! Everything runs in this process over real WebSocket connections on 127.0.0.1: the
//! hub served by axum, and tokio-tungstenite clients.

use std::net::SocketAddr;

use brisk_core::Priority;
use brisk_ws_hub::{Hub, JwtAuthenticator};
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &[u8] = b"chat demo secret";

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn token(user: &str) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = json!({"sub": user, "exp": 4_102_444_800u64, "publish": true});
    encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET))
}

async fn join(addr: SocketAddr, user: &str) -> Result<Client, Box<dyn std::error::Error>> {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={}", token(user)?)).await?;
    Ok(ws)
}

async fn send(ws: &mut Client, v: Value) -> Result<(), Box<dyn std::error::Error>> {
    ws.send(Message::Text(v.to_string().into())).await?;
    Ok(())
}

/// The next server message of type `kind`.
async fn next_of(ws: &mut Client, kind: &str) -> Result<Value, Box<dyn std::error::Error>> {
    while let Some(msg) = ws.next().await {
        if let Message::Text(t) = msg? {
            let v: Value = serde_json::from_str(&t)?;
            if v["type"] == kind {
                return Ok(v);
            }
        }
    }
    Err("connection closed".into())
}

fn line(m: &Value) -> String {
    format!(
        "[{}#{}] {}: {}",
        m["topic"].as_str().unwrap_or("?"),
        m["offset"],
        m["data"]["from"].as_str().unwrap_or("?"),
        m["data"]["text"].as_str().unwrap_or("")
    )
}

/// Runs the conversation and returns what carol's screen shows.
async fn chat() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let hub = Hub::builder()
        .authenticator(JwtAuthenticator::hs256(SECRET))
        .history_size(50)
        .build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(axum::serve(listener, brisk_ws_hub::router(hub.clone(), "/ws")).into_future());

    let mut ann = join(addr, "ann").await?;
    let mut bob = join(addr, "bob").await?;
    for ws in [&mut ann, &mut bob] {
        send(ws, json!({"v": 1, "type": "subscribe", "topic": "room:lobby"})).await?;
        next_of(ws, "subscribed").await?;
    }
    send(
        &mut ann,
        json!({"v": 1, "type": "publish", "topic": "room:lobby", "data": {"from": "ann", "text": "hi bob"}}),
    )
    .await?;
    let first = next_of(&mut bob, "message").await?;
    send(
        &mut bob,
        json!({"v": 1, "type": "publish", "topic": "room:lobby", "data": {"from": "bob", "text": "hey ann"}}),
    )
    .await?;
    next_of(&mut ann, "message").await?;
    next_of(&mut ann, "message").await?;

    // carol saw nothing yet: she joins from just before ann's greeting and
    // the room's history replays what she missed.
    let mut carol = join(addr, "carol").await?;
    let (epoch, before) = (first["epoch"].clone(), first["offset"].as_u64().unwrap_or(1) - 1);
    send(
        &mut carol,
        json!({"v": 1, "type": "subscribe", "topic": "room:lobby", "epoch": epoch, "offset": before}),
    )
    .await?;
    let mut screen = vec![
        line(&next_of(&mut carol, "message").await?),
        line(&next_of(&mut carol, "message").await?),
    ];
    let ack = next_of(&mut carol, "subscribed").await?;
    screen.push(format!("{} people in room:lobby", ack["subscribers"]));
    hub.publish_to_user(
        "carol",
        "dm",
        &json!({"from": "system", "text": "welcome, carol"}),
        Priority::High,
    )?;
    let dm = next_of(&mut carol, "message").await?;
    screen.push(format!(
        "(direct) {}: {}",
        dm["data"]["from"].as_str().unwrap_or("?"),
        dm["data"]["text"].as_str().unwrap_or("")
    ));
    Ok(screen)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    for l in chat().await? {
        println!("{l}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn carol_catches_up_and_gets_her_direct_message() {
        let screen = super::chat().await.unwrap();
        assert_eq!(
            screen,
            [
                "[room:lobby#1] ann: hi bob",
                "[room:lobby#2] bob: hey ann",
                "3 people in room:lobby",
                "(direct) system: welcome, carol",
            ]
        );
    }
}
