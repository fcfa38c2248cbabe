//! Test servers with a known behaviour.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::sync::{RwLock, Semaphore};

/// Held by the tests whose figures depend on timing, so they do not run
/// at the same time as each other.
pub(crate) static TIMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Serves `app` on 127.0.0.1 on a free port.
pub(crate) async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// `/work`: at most `k` requests at a time, each taking `service`; so the
/// capacity is k / service requests per second. `/fast` answers at once.
pub(crate) async fn capacity(k: usize, service: Duration) -> SocketAddr {
    let sem = Arc::new(Semaphore::new(k));
    let app = Router::new()
        .route(
            "/work",
            get(move || {
                let sem = Arc::clone(&sem);
                async move {
                    let _permit = sem.acquire().await.unwrap();
                    tokio::time::sleep(service).await;
                    "done"
                }
            }),
        )
        .route("/fast", get(|| async { "ok" }))
        .route(
            "/close",
            get(|| async { ([(http::header::CONNECTION, "close")], "bye") }),
        )
        .route(
            "/metrics",
            get(|| async {
                "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 52428800\n\
                 process_cpu_seconds_total 1.5\n"
            }),
        );
    serve(app).await
}

/// `/fast` answers at once, except from `after` for `stall`: every request
/// then waits until the stall is over (a GC pause, a lock, a disk hiccup).
pub(crate) async fn stalling(after: Duration, stall: Duration) -> SocketAddr {
    let lock = Arc::new(RwLock::new(()));
    let writer = Arc::clone(&lock);
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let _guard = writer.write().await;
        tokio::time::sleep(stall).await;
    });
    let app = Router::new().route(
        "/fast",
        get(move || {
            let lock = Arc::clone(&lock);
            async move {
                let _guard = lock.read().await;
                "ok"
            }
        }),
    );
    serve(app).await
}
