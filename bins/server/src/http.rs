//! What every request goes through: a request id, a log span, timing into
//! the monitor, errors rendered as `{error, message, request_id}`, and the
//! security headers. Also the admin check and the body extractor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use tracing::Instrument;

use crate::app::AppState;
use crate::error::{ApiError, ErrorBody, code_for};

/// The header carrying the request id, both ways.
pub(crate) static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route a request matched, copied to the response for the timing.
#[derive(Clone, Debug)]
pub(crate) struct Route(pub(crate) String);

static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static PROCESS_TAG: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

fn new_request_id() -> HeaderValue {
    let tag = *PROCESS_TAG.get_or_init(|| fastrand::u32(..));
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    HeaderValue::from_str(&format!("{tag:08x}-{n:012x}")).expect("hex is a valid header value")
}

/// A client's request id is kept when it is short and plain.
fn accept_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
}

/// Copies axum's matched route into the response (a `route_layer`, so it
/// runs after routing).
pub(crate) async fn matched_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}

/// The outermost layer: id, span, timing, error bodies, headers.
pub(crate) async fn frame(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| accept_request_id(v))
        .cloned()
        .unwrap_or_else(new_request_id);
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method = %method,
        path = req.uri().path(),
    );
    let start = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let took = start.elapsed();

    let status = response.status();
    let ok = !status.is_server_error();
    app.http.record(took, ok);
    let route = response.extensions().get::<Route>().map(|r| r.0.clone());
    if let Some(route) = &route
        && let Some(op) = app.route_op(&format!("{method} {route}"))
    {
        op.record(took, ok);
    }

    let mut response = if status.is_client_error() || status.is_server_error() {
        render_error(response, &id).await
    } else {
        response
    };
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID.clone(), id);
    security_headers(headers);

    span.in_scope(|| {
        let ms = took.as_secs_f64() * 1e3;
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                ms,
                route = route.as_deref(),
                "request failed"
            );
        } else {
            tracing::debug!(
                status = status.as_u16(),
                ms,
                route = route.as_deref(),
                "request done"
            );
        }
    });
    response
}

fn security_headers(h: &mut http::HeaderMap) {
    let set = |h: &mut http::HeaderMap, k: &'static str, v: &'static str| {
        h.entry(HeaderName::from_static(k))
            .or_insert(HeaderValue::from_static(v));
    };
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(
        h,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    );
    set(
        h,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
}

/// Gives every error response the JSON body `{error, message, request_id}`.
async fn render_error(response: Response, id: &HeaderValue) -> Response {
    let request_id = id.to_str().unwrap_or_default();
    let (mut parts, body) = response.into_parts();
    let json = if let Some(e) = parts.extensions.remove::<ErrorBody>() {
        serde_json::json!({"error": e.code, "message": e.message, "request_id": request_id})
    } else {
        // A layer's or axum's own error: keep what it said, in our shape.
        let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
        let is_json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(mut map)) if is_json => {
                map.entry("error")
                    .or_insert_with(|| code_for(parts.status).into());
                map.entry("message")
                    .or_insert_with(|| parts.status.canonical_reason().unwrap_or("error").into());
                map.insert("request_id".into(), request_id.into());
                serde_json::Value::Object(map)
            }
            _ => {
                let text = String::from_utf8_lossy(&bytes);
                let message = if text.trim().is_empty() {
                    parts.status.canonical_reason().unwrap_or("error").to_owned()
                } else {
                    text.trim().chars().take(500).collect()
                };
                serde_json::json!({"error": code_for(parts.status), "message": message, "request_id": request_id})
            }
        }
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(json.to_string()))
}

/// The fallback for unknown paths.
pub(crate) async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

/// A caller holding the admin token.
#[derive(Debug)]
pub(crate) struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut http::request::Parts, app: &AppState) -> Result<Self, ApiError> {
        let Some(token) = &app.settings.admin_token else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin_disabled",
                "admin endpoints are disabled: no ADMIN_TOKEN is configured",
            ));
        };
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match given {
            Some(g) if constant_time_eq(g.as_bytes(), token.expose().as_bytes()) => Ok(Admin),
            Some(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the admin token is wrong",
            )),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint needs `Authorization: Bearer <ADMIN_TOKEN>`",
            )),
        }
    }
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// The request body, within the body limit (413 past it).
#[derive(Debug)]
pub(crate) struct RawBody(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(RawBody(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is over the body limit (BRISK_MAX_BODY_BYTES)",
            )),
            Err(e) => Err(ApiError::bad_request(format!("the body could not be read: {e}"))),
        }
    }
}

impl RawBody {
    /// The body as JSON.
    pub(crate) fn json(&self) -> Result<serde_json::Value, ApiError> {
        if self.0.is_empty() {
            return Err(ApiError::bad_request("the body is empty; send JSON"));
        }
        serde_json::from_slice(&self.0).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_json",
                format!("the body is not valid JSON: {e}"),
            )
        })
    }
}

/// Responds with JSON text already rendered.
pub(crate) fn raw_json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}
