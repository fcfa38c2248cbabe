//! One HTTP/1.1 connection per worker, on hyper's low-level client.
//
// hyper's `client::conn::http1` is the thinnest client there is on tokio:
// no pool lookups, no URL parsing, no redirects per request. Each worker
// owns one keep-alive connection and reconnects when it breaks, so the
// number of connections is exactly the pool size the run was given.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How one request ended, for the errors-by-status table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An HTTP response with this status.
    Status(u16),
    /// The connection could not be opened.
    Connect,
    /// The connection broke mid-request.
    Io,
    /// No response within the request timeout.
    Timeout,
    /// The rendered request was not valid HTTP (a path template that
    /// rendered to an invalid URI); nothing was sent.
    Invalid,
}

impl Outcome {
    pub(crate) fn is_ok(self) -> bool {
        matches!(self, Self::Status(s) if (200..400).contains(&s))
    }

    pub(crate) fn label(self) -> String {
        match self {
            Self::Status(s) => s.to_string(),
            Self::Connect => "connect_error".to_owned(),
            Self::Io => "io_error".to_owned(),
            Self::Timeout => "timeout".to_owned(),
            Self::Invalid => "invalid_request".to_owned(),
        }
    }
}

/// A keep-alive HTTP/1.1 connection.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            // Ends when the connection closes; errors show up on the sender.
            let _ = conn.await;
        });
        Ok(Self { sender })
    }

    /// Waits until the connection can take a request; false when it has
    /// closed (the server sent `Connection: close`, or timed it out idle).
    pub(crate) async fn ready(&mut self) -> bool {
        self.sender.ready().await.is_ok()
    }

    /// Sends one request and reads the whole response body. `Err` means
    /// the connection is unusable.
    pub(crate) async fn send(&mut self, req: http::Request<Full<Bytes>>) -> Result<(u16, Bytes), ()> {
        self.sender.ready().await.map_err(|_| ())?;
        let resp = self.sender.send_request(req).await.map_err(|_| ())?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map_err(|_| ())?.to_bytes();
        Ok((status, body))
    }
}

/// A one-off `GET` (for `/metrics` and `/stats`): status and body.
pub(crate) async fn get(addr: SocketAddr, authority: &str, path: &str) -> Result<(u16, Bytes), ()> {
    let mut conn = Conn::open(addr).await.map_err(|_| ())?;
    let req = http::Request::get(path)
        .header(http::header::HOST, authority)
        .body(Full::new(Bytes::new()))
        .map_err(|_| ())?;
    conn.send(req).await
}
