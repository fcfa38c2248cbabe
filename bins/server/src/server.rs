//! Routing, serving and graceful shutdown.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderValue, header};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::app::{App, AppState, StartError, import_corpus, seed_if_empty};
use crate::config::Settings;
use crate::{api, http as frame, openapi, snapshot};

const DASHBOARD_HTML: &str = include_str!("../assets/index.html");
const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("../assets/dashboard.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

fn router(app: &AppState) -> Router {
    let settings = &app.settings;
    let mut api = Router::new()
        .route("/api/posts", post(api::post_posts).get(api::get_posts))
        .route("/api/analyze", post(api::post_analyze))
        .route("/api/generate", post(api::post_generate))
        .route("/api/alerts", get(api::get_alerts))
        .route(
            "/api/dictionary",
            get(api::get_dictionary).put(api::put_dictionary),
        )
        .route("/api/performance/summary", get(api::performance_summary))
        .route("/api/performance/slow-queries", get(api::slow_queries))
        .route("/api/performance/report", get(api::performance_report))
        .route("/api/cache/stats", get(api::cache_stats))
        .route("/api/cache/invalidate", post(api::cache_invalidate))
        .route("/api/openapi.json", get(openapi::document));
    if app.shared_limits.is_some() {
        api = api.layer(middleware::from_fn_with_state(
            app.clone(),
            crate::limits::enforce,
        ));
    } else if let Some(limits) = &app.limits {
        api = api.layer(limits.clone());
    }
    let ws = brisk_ws_hub::router(app.hub.clone(), "/ws");
    let mut router = Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", DASHBOARD_HTML) }),
        )
        .route(
            "/assets/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", DASHBOARD_JS) }),
        )
        .route(
            "/assets/dashboard.css",
            get(|| async { asset("text/css; charset=utf-8", DASHBOARD_CSS) }),
        )
        .route("/health", get(api::health))
        .route("/ready", get(api::ready))
        .route("/metrics", get(api::metrics))
        .merge(api)
        .fallback(frame::not_found)
        .route_layer(middleware::from_fn(frame::matched_route))
        .with_state(app.clone())
        .merge(ws)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes));
    if !settings.cors_origins.is_empty() {
        let origins = if settings.cors_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(
                settings
                    .cors_origins
                    .iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok()),
            )
        };
        router = router.layer(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([http::Method::GET, http::Method::POST, http::Method::PUT])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    http::HeaderName::from_static("x-api-key"),
                ])
                .max_age(Duration::from_secs(600)),
        );
    }
    router.layer(middleware::from_fn_with_state(app.clone(), frame::frame))
}

/// A server that is running: its address, and the way to stop it.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// The address it listens on (useful after binding port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shuts down gracefully (see [`start`]) and waits until it has.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Waits until the server stops (after a shutdown signal).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }

    /// A future that asks the server to stop when `signal` completes.
    pub fn stop_on(&mut self, signal: impl Future<Output = ()> + Send + 'static) {
        if let Some(stop) = self.stop.take() {
            tokio::spawn(async move {
                signal.await;
                let _ = stop.send(());
            });
        }
    }
}

/// Builds every component, seeds the demo into an empty database, binds
/// the listener and starts serving in the background.
///
/// Shutdown (through [`RunningServer::shutdown`] or
/// [`RunningServer::stop_on`]) stops accepting connections, closes every
/// WebSocket with 1012 once its queue is sent, lets requests in flight
/// finish (up to the shutdown timeout), then flushes the batch writers: an
/// acknowledged post is always committed.
///
/// # Errors
///
/// [`StartError`] naming what could not start.
pub async fn start(settings: Settings) -> Result<RunningServer, StartError> {
    let listen = settings.listen;
    let grace = settings.shutdown_timeout;
    let app = App::build(settings).await?;
    let seeded = match &app.settings.corpus {
        Some(spec) => import_corpus(&app, spec).await,
        None => seed_if_empty(&app).await,
    };
    seeded.map_err(|e| StartError::Component {
        component: "corpus",
        reason: e.to_string(),
    })?;
    let listener = bind(listen).map_err(|source| StartError::Listen {
        addr: listen.to_string(),
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: listen.to_string(),
        source,
    })?;
    let maintenance = app.monitor.spawn_maintenance();
    let history = app.history.spawn();
    let publisher = snapshot::spawn_publisher(&app);
    let sampler = app.system.spawn(Duration::from_secs(5));
    let fanout = crate::app::spawn_fanout(&app);
    let model_path = crate::generate::model_path(&app.settings.data_dir);
    let saver = crate::generate::spawn_saver(
        Arc::clone(&app.model),
        model_path.clone(),
        crate::generate::SAVE_EVERY,
    );
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let service = router(&app).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        let hub = app.hub.clone();
        let (drained_tx, drained_rx) = oneshot::channel::<()>();
        let signal = async move {
            let _ = stop_rx.await;
            tracing::info!("shutting down: no new connections; closing WebSockets with 1012");
            hub.shutdown();
            let _ = drained_tx.send(());
        };
        let serve = axum::serve(listener, service)
            .with_graceful_shutdown(signal)
            .into_future();
        let serve = async move {
            tokio::pin!(serve);
            tokio::select! {
                r = &mut serve => r,
                () = async {
                    let _ = drained_rx.await;
                    tokio::time::sleep(grace).await;
                } => {
                    tracing::warn!(?grace, "requests still in flight after the shutdown timeout; stopping anyway");
                    Ok(())
                }
            }
        };
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "the server stopped with an error");
        }
        // A client that stops reading must not hold the process: its
        // connection is closed by the hub's slow-consumer rule, or left here.
        if tokio::time::timeout(grace, app.hub.drained()).await.is_err() {
            tracing::warn!("WebSocket connections still open after the shutdown timeout");
        }
        for task in [&maintenance, &history, &publisher, &sampler, &saver] {
            task.abort();
        }
        if let Some(task) = &fanout {
            task.abort();
        }
        let report = app.generator.shutdown(Duration::from_secs(5)).await;
        tracing::debug!(drained = report.drained, "generation pipeline stopped");
        // The model saved below has learned every queued post.
        app.trainer.shutdown(Duration::from_secs(10)).await;
        if let Some(llm) = &app.llm {
            llm.client().shutdown(Duration::from_secs(1)).await;
        }
        let model = Arc::clone(&app.model);
        match tokio::task::spawn_blocking(move || model.save(&model_path)).await {
            Ok(Ok(version)) => tracing::info!(version, "generator model saved"),
            Ok(Err(e)) => tracing::error!(error = %e, "saving the generator model"),
            Err(e) => tracing::error!(error = %e, "saving the generator model"),
        }
        if let Err(e) = app.posts.flush().await {
            tracing::error!(error = %e, "flushing the posts writer");
        }
        if let Err(e) = app.alerts.flush().await {
            tracing::error!(error = %e, "flushing the alerts writer");
        }
        tracing::info!("stopped");
    });
    tracing::info!(%addr, "listening; dashboard at http://{addr}/");
    Ok(RunningServer {
        addr,
        stop: Some(stop_tx),
        task,
    })
}

/// The accept queue's length asked of the kernel (which caps it at
/// `net.core.somaxconn`). Tokio's default of 1,024 overflowed when 10,000
/// clients connected at once (`brisk-load suite --scale large`): the kernel
/// dropped the excess SYNs and those clients waited a second or more to
/// retry.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`] and `SO_REUSEADDR` (so a
/// restart does not wait for the old sockets' `TIME_WAIT`).
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
