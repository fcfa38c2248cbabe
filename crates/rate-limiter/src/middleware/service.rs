//! `RateLimit<S>`: the service, and the 429 it answers with.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::{HeaderValue, Request, Response, StatusCode, header};

use crate::{Quota, RateLimitError};

use super::layer::{Class, Config};

/// The service made by [`RateLimitLayer`](super::RateLimitLayer): checks the
/// request's key against its route class, then calls the inner service or
/// answers 429.
///
/// `poll_ready` is the inner service's; a rejected request never reaches it.
#[derive(Clone, Debug)]
pub struct RateLimit<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> RateLimit<S> {
    pub(super) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// The future of [`RateLimit`]: the inner service's, or a ready 429.
pub type ResponseFuture<F, B, E> = Either<Ready<Result<Response<B>, E>>, F>;

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for RateLimit<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let class = self.config.class_for(parts.uri.path());
        let key = self.config.key.key(&parts).unwrap_or_else(|| "-".to_owned());
        match class.limiter.check(&key, 1) {
            Ok(()) => Either::Right(self.inner.call(Request::from_parts(parts, body))),
            Err(err) => Either::Left(ready(Ok(too_many_requests(class, &key, &err)))),
        }
    }
}

/// The 429: `Retry-After` (whole seconds, rounded up), `RateLimit-Policy`
/// (every window of the class), `RateLimit` (the window that rejected, with
/// nothing remaining) and a JSON body.
fn too_many_requests<B: From<String>>(class: &Class, key: &str, err: &RateLimitError) -> Response<B> {
    let quotas = class.limiter.quotas_for(key);
    let retry = err.retry_after().unwrap_or_default();
    let retry_secs = retry.as_secs() + u64::from(retry.subsec_nanos() > 0);
    let window = err.window().unwrap_or(0).min(quotas.len() - 1);
    let policy = quotas
        .iter()
        .enumerate()
        .map(|(i, q)| {
            format!(
                "\"{}\";q={};w={}",
                window_name(q, i),
                q.limit(),
                q.period().as_secs().max(1)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let name = window_name(&quotas[window], window);
    let body = serde_json::json!({
        "error": "rate_limited",
        "message": err.to_string(),
        "class": class.name,
        "window": name,
        "limit": quotas[window].limit(),
        "period_secs": quotas[window].period().as_secs_f64(),
        "retry_after_secs": retry_secs,
    });
    let mut response = Response::new(B::from(body.to_string()));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_secs));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let rate_limit = format!("\"{name}\";r=0;t={retry_secs}");
    for (field, value) in [("ratelimit-policy", policy), ("ratelimit", rate_limit)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(field, value);
        }
    }
    response
}

/// A window's name in headers: its own, or `w<index>`.
fn window_name(quota: &Quota, index: usize) -> String {
    quota
        .name()
        .filter(|n| n.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'))
        .map_or_else(|| format!("w{index}"), str::to_owned)
}
