//! A connection's socket, shared by its task and every publisher.
//
// Design: the hub writes its own frames. A broadcast's frame is encoded
// once with its WebSocket header (`protocol::Frame`). In small topics a
// publisher whose subscriber has nothing queued and nothing half-written
// writes that frame straight to the socket with a non-blocking `try_write`
// from its own thread: no task wake-up, no copy, no per-connection buffer
// (big topics queue instead, see `hub.rs`). When the socket does not take
// it all, or the message was queued, the connection's task writes: the
// unwritten rest waits in `pending` (shared `Bytes`, never copies) and the
// task finishes it when the socket is writable again, then writes the
// queue's next batch with one vectored write.
//
// `pending` is the one place that orders bytes on the socket: whoever
// writes (a publisher, the task's batches, tungstenite's control frames
// through `SockIo`) holds its lock and either writes a whole frame or parks
// the rest of it there, so frames never interleave. Lock order: the
// outbox's state, then `pending`.
//
// tungstenite still reads the client's frames (masking, fragments, UTF-8,
// size limits, close handshake) and writes its pongs and close frames,
// through `SockIo`, an `AsyncRead + AsyncWrite` view of the same socket.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// At most this many buffers go into one vectored write.
const MAX_SLICES: usize = 64;

/// Any upgraded connection that is not a plain TCP stream (TLS, another
/// server's I/O type).
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + 'static> Io for T {}

/// The socket under a connection.
pub(crate) enum Sock {
    /// A TCP stream (from `axum::serve`): written with `try_write` from any thread.
    Tcp(TcpStream),
    /// Anything else, behind a lock; a non-blocking write is a poll with a
    /// no-op waker.
    Other(Mutex<Pin<Box<dyn Io>>>),
}

impl std::fmt::Debug for Sock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sock::Tcp(s) => f.debug_tuple("Tcp").field(s).finish(),
            Sock::Other(_) => f.write_str("Other"),
        }
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sock {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.try_write_vectored(bufs),
            Sock::Other(io) => {
                let mut cx = Context::from_waker(Waker::noop());
                match lock(io).as_mut().poll_write_vectored(&mut cx, bufs) {
                    Poll::Ready(r) => r,
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }

    fn poll_write_vectored(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        match self {
            Sock::Tcp(s) => loop {
                ready!(s.poll_write_ready(cx))?;
                match s.try_write_vectored(bufs) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    r => return Poll::Ready(r),
                }
            },
            Sock::Other(io) => lock(io).as_mut().poll_write_vectored(cx, bufs),
        }
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self {
            Sock::Tcp(s) => loop {
                ready!(s.poll_read_ready(cx))?;
                match s.try_read(buf.initialize_unfilled()) {
                    Ok(n) => {
                        buf.advance(n);
                        return Poll::Ready(Ok(()));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            },
            Sock::Other(io) => lock(io).as_mut().poll_read(cx, buf),
        }
    }

    fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            // Closing the descriptor (when the connection is dropped) ends
            // the stream; nothing to do before.
            Sock::Tcp(_) => Poll::Ready(Ok(())),
            Sock::Other(io) => lock(io).as_mut().poll_shutdown(cx),
        }
    }
}

/// What [`Wire::offer`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// On the socket, all of it.
    Written,
    /// Started on the socket; the rest waits in `pending` for the task.
    Started,
    /// Not taken: something is pending, or the socket is full.
    Busy,
}

/// A connection's socket and the bytes committed to it but not yet written.
#[derive(Debug)]
pub(crate) struct Wire {
    sock: Sock,
    pending: Mutex<VecDeque<Bytes>>,
}

fn advance(pending: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let Some(front) = pending.front_mut() else { return };
        if n >= front.len() {
            n -= front.len();
            pending.pop_front();
        } else {
            front.advance(n);
            return;
        }
    }
}

fn slices(pending: &VecDeque<Bytes>) -> ([IoSlice<'_>; MAX_SLICES], usize) {
    let mut out = [IoSlice::new(&[]); MAX_SLICES];
    let mut n = 0;
    for (slot, b) in out.iter_mut().zip(pending) {
        *slot = IoSlice::new(b);
        n += 1;
    }
    (out, n)
}

impl Wire {
    pub(crate) fn new(sock: Sock) -> Self {
        Self {
            sock,
            pending: Mutex::new(VecDeque::new()),
        }
    }

    /// A publisher's non-blocking write of one whole frame.
    pub(crate) fn offer(&self, frame: &Bytes) -> Offer {
        let mut pending = lock(&self.pending);
        if !pending.is_empty() {
            return Offer::Busy;
        }
        match self.sock.try_write_vectored(&[IoSlice::new(frame)]) {
            Ok(n) if n == frame.len() => Offer::Written,
            Ok(n) if n > 0 => {
                pending.push_back(frame.slice(n..));
                Offer::Started
            }
            // Full (or broken: the task finds out when it reads or flushes).
            _ => Offer::Busy,
        }
    }

    /// Writes what is pending; ready when nothing is, pending (woken when
    /// the socket is writable) otherwise.
    fn poll_drain(&self, cx: &mut Context<'_>, pending: &mut VecDeque<Bytes>) -> Poll<io::Result<()>> {
        while !pending.is_empty() {
            let (bufs, n) = slices(pending);
            let written = ready!(self.sock.poll_write_vectored(cx, &bufs[..n]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            advance(pending, written);
        }
        Poll::Ready(Ok(()))
    }

    /// The task's flush: writes what is pending, then `more()`'s frames
    /// (a batch from the queue, taken only once the socket has caught up),
    /// as long as it yields some and the socket takes them. Ready(true)
    /// when everything is written and `more` had nothing left.
    pub(crate) fn poll_flush(
        &self,
        cx: &mut Context<'_>,
        mut more: impl FnMut() -> Vec<Bytes>,
        rounds: usize,
    ) -> Poll<io::Result<bool>> {
        let mut pending = lock(&self.pending);
        for _ in 0..rounds {
            ready!(self.poll_drain(cx, &mut pending))?;
            let batch = more();
            if batch.is_empty() {
                return Poll::Ready(Ok(true));
            }
            pending.extend(batch);
        }
        // Fair to the other connections: come back after the others ran.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// tungstenite's view of the socket: reads go straight to it (after what
/// the HTTP server had already read past the upgrade request); writes are
/// whole frames in the same order as the hub's own.
pub(crate) struct SockIo {
    wire: Arc<Wire>,
    prefix: Bytes,
}

impl SockIo {
    pub(crate) fn new(wire: Arc<Wire>, prefix: &[u8]) -> Self {
        // A copy: a slice of hyper's read buffer (even an empty one) would
        // keep that whole buffer alive for the connection's life.
        let prefix = Bytes::copy_from_slice(prefix);
        Self { wire, prefix }
    }
}

impl std::fmt::Debug for SockIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SockIo")
            .field("wire", &self.wire)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for SockIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            if this.prefix.is_empty() {
                this.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        this.wire.sock.poll_read(cx, buf)
    }
}

impl AsyncWrite for SockIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let wire = &self.wire;
        let mut pending = lock(&wire.pending);
        ready!(wire.poll_drain(cx, &mut pending))?;
        // tungstenite hands over whole frames; take all of `buf` so no
        // other writer can come between its parts.
        let n = ready!(wire.sock.poll_write_vectored(cx, &[IoSlice::new(buf)]))?;
        if n == 0 && !buf.is_empty() {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        if n < buf.len() {
            pending.push_back(Bytes::copy_from_slice(&buf[n..]));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let wire = &self.wire;
        let mut pending = lock(&wire.pending);
        wire.poll_drain(cx, &mut pending)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        self.wire.sock.poll_shutdown(cx)
    }
}
