//! One HTTP exchange with the API, run by the pipeline's workers.
//
// The pipeline owns the order of things (queue, single-flight, endpoint
// breaker, rate limits, retries); this handler does the exchange itself and
// what only it can know: the response headers (fed to the requests limiter,
// which pauses when upstream says nothing is left), the tokens actually
// used (the estimate's surplus is refunded to the token and budget
// limiters), and the classification of a failure. A successful completion
// goes into the cache *before* the pipeline answers its callers, so a
// caller arriving after the single-flight ends finds it there. (A caller
// that missed the cache just before the flight ended starts a second call:
// a rare extra request, never a wrong answer.)
//
// Which failures count against the endpoint's breaker: everything that
// says the API is unwell or unusable (429, 5xx, timeouts, refused
// connections, malformed bodies, no quota), but not a 4xx that only says
// this one request was wrong, nor a caller's deadline cutting an exchange
// short; those are returned in the request's slot, which the pipeline does
// not count as a failed call.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use brisk_cache::Cache;
use brisk_core::ContentHash;
use brisk_pipeline::{BatchResult, Endpoint, Handler};
use brisk_rate_limiter::{RateLimiter, UpstreamLimits};
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::error::{OpenAiError, is_retryable_status};
use super::response::{Completion, Usage, parse_completion, parse_error_body};
use super::sse::StreamAssembler;

/// The most bytes read of a successful body (16 MiB) or an error body
/// (64 KiB).
const MAX_BODY: usize = 16 << 20;
const MAX_ERROR_BODY: usize = 64 << 10;

/// A request as the pipeline carries it: the serialized body and what the
/// handler needs around it.
pub(crate) struct Call {
    pub(crate) body: Vec<u8>,
    pub(crate) model: String,
    pub(crate) stream: bool,
    pub(crate) key: ContentHash,
    pub(crate) cacheable: bool,
    pub(crate) est_tokens: u64,
    pub(crate) est_micro_usd: u64,
    /// The deadline of the caller that started the call: the exchange is
    /// abandoned there (callers that joined it through single-flight share
    /// that cut-off).
    pub(crate) deadline: Option<Instant>,
}

/// An API key; prints as `<redacted>`, so it never reaches a log.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Prices in US dollars per million tokens, which is exactly micro-dollars
/// per token.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Prices {
    pub(crate) input: f64,
    pub(crate) output: f64,
}

impl Prices {
    /// The cost in micro-dollars, rounded up.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    pub(crate) fn micro_usd(&self, prompt_tokens: u64, completion_tokens: u64) -> u64 {
        (prompt_tokens as f64 * self.input + completion_tokens as f64 * self.output).ceil() as u64
    }
}

/// The limiters, shared with the pipeline (which acquires the estimates).
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub(crate) requests: RateLimiter,
    pub(crate) tokens: RateLimiter,
    pub(crate) budget: Option<RateLimiter>,
    pub(crate) prices: Prices,
}

impl Limits {
    fn refund(&self, tokens: u64, micro_usd: u64) {
        if tokens > 0 {
            self.tokens.refund(tokens);
        }
        if let Some(budget) = &self.budget
            && micro_usd > 0
        {
            budget.refund(micro_usd);
        }
    }
}

/// The client's counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) calls: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) remote: AtomicU64,
    pub(crate) local: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) http_requests: AtomicU64,
    pub(crate) http_errors: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) upstream_pauses: AtomicU64,
    pub(crate) refunded_tokens: AtomicU64,
}

/// The pipeline's handler.
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    pub(crate) api_key: Option<Secret>,
    pub(crate) request_timeout: Duration,
    pub(crate) limits: Limits,
    pub(crate) cache: Option<Cache<ContentHash, Arc<Completion>>>,
    pub(crate) counters: Arc<Counters>,
}

impl Handler for Transport {
    type Request = Call;
    type Response = Arc<Completion>;
    type Error = OpenAiError;

    async fn call(&self, _endpoint: &Endpoint, batch: &[Call]) -> BatchResult<Arc<Completion>, OpenAiError> {
        // Chat completions are not batchable: the pipeline runs with batch
        // size 1, but any batch is handled, one exchange per request.
        let mut out = Vec::with_capacity(batch.len());
        for call in batch {
            match self.send(call).await {
                Ok(c) => out.push(Ok(c)),
                Err(e) if batch.len() == 1 && counts_against_endpoint(&e) => return Err(e),
                Err(e) => out.push(Err(e)),
            }
        }
        Ok(out)
    }

    fn cost(&self, call: &Call) -> u64 {
        call.est_tokens
    }
}

/// Whether a failure says the API is unwell (the breaker counts it), as
/// opposed to this request being wrong.
fn counts_against_endpoint(e: &OpenAiError) -> bool {
    match e {
        OpenAiError::Http { status, .. } => is_retryable_status(*status),
        OpenAiError::InvalidRequest { .. } | OpenAiError::DeadlineExceeded { .. } => false,
        _ => true,
    }
}

impl Transport {
    /// One attempt, bounded by the per-attempt timeout and the deadline.
    async fn send(&self, call: &Call) -> Result<Arc<Completion>, OpenAiError> {
        self.counters.http_requests.fetch_add(1, Relaxed);
        let left = call.deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let (limit, by_deadline) = match left {
            Some(left) if left < self.request_timeout => (left, true),
            _ => (self.request_timeout, false),
        };
        let result = match tokio::time::timeout(limit, self.exchange(call)).await {
            Ok(result) => result,
            Err(_) if by_deadline => Err(OpenAiError::DeadlineExceeded {
                stage: super::DeadlineStage::Response,
            }),
            Err(_) => Err(OpenAiError::Timeout {
                after: self.request_timeout,
            }),
        };
        if matches!(result, Err(OpenAiError::Malformed { .. })) {
            self.counters.malformed.fetch_add(1, Relaxed);
        }
        result
    }

    async fn exchange(&self, call: &Call) -> Result<Arc<Completion>, OpenAiError> {
        let mut request = self
            .http
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .body(call.body.clone());
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(&key.0);
        }
        if call.stream {
            request = request.header(ACCEPT, "text/event-stream");
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                // Nothing reached a model when the connection failed: the
                // whole estimate comes back.
                if e.is_connect() {
                    self.limits.refund(call.est_tokens, call.est_micro_usd);
                }
                return Err(transport_error(&e));
            }
        };
        let status = response.status().as_u16();
        let limits = UpstreamLimits::from_headers(
            response.headers().iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
            SystemTime::now(),
        );
        if !limits.is_empty() && self.limits.requests.apply_upstream(&limits).is_some() {
            self.counters.upstream_pauses.fetch_add(1, Relaxed);
        }
        if !(200..300).contains(&status) {
            // Nothing was generated: the whole estimate comes back.
            self.limits.refund(call.est_tokens, call.est_micro_usd);
            self.counters.http_errors.fetch_add(1, Relaxed);
            // An unreadable error body still leaves the status to act on.
            let body = read_body(&mut response, MAX_ERROR_BODY).await.unwrap_or_default();
            return Err(classify(status, &body, limits.retry_after));
        }
        // A server that ignores `stream: true` answers plain JSON: read it
        // as such rather than as a broken stream.
        let json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let completion = if call.stream && !json {
            let mut stream = StreamAssembler::new();
            while let Some(bytes) = response.chunk().await.map_err(|e| transport_error(&e))? {
                stream.feed(&bytes)?;
                if stream.is_done() {
                    break;
                }
            }
            stream.finish(&call.model)?
        } else {
            let body = read_body(&mut response, MAX_BODY).await?;
            parse_completion(&body, &call.model)?
        };
        if let Some(usage) = completion.usage {
            self.refund_surplus(call, usage);
        }
        let completion = Arc::new(completion);
        if call.cacheable
            && let Some(cache) = &self.cache
        {
            cache.insert(call.key, Arc::clone(&completion));
        }
        Ok(completion)
    }

    /// Gives back what the estimate reserved beyond what was used.
    fn refund_surplus(&self, call: &Call, usage: Usage) {
        let tokens = call.est_tokens.saturating_sub(usage.total());
        let usd = call.est_micro_usd.saturating_sub(
            self.limits
                .prices
                .micro_usd(usage.prompt_tokens, usage.completion_tokens),
        );
        self.counters.refunded_tokens.fetch_add(tokens, Relaxed);
        self.limits.refund(tokens, usd);
    }
}

/// The error for a non-2xx status.
fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> OpenAiError {
    let (code, message) = parse_error_body(body);
    if status == 429 {
        if code.as_deref() == Some("insufficient_quota") {
            return OpenAiError::InsufficientQuota { message };
        }
        // `rate_limit_exceeded`, or a 429 without a code (HTTP's "Too Many
        // Requests" from a proxy or a local server): waiting helps.
        return OpenAiError::RateLimited { retry_after, message };
    }
    OpenAiError::Http {
        status,
        code,
        message,
        retry_after,
    }
}

/// Reads a body of at most `max` bytes.
async fn read_body(response: &mut reqwest::Response, max: usize) -> Result<Vec<u8>, OpenAiError> {
    let mut body = Vec::new();
    while let Some(bytes) = response.chunk().await.map_err(|e| transport_error(&e))? {
        if body.len() + bytes.len() > max {
            return Err(OpenAiError::Malformed {
                message: format!("the response body is larger than {max} bytes"),
            });
        }
        body.extend_from_slice(&bytes);
    }
    Ok(body)
}

/// The HTTP client's error with its causes, e.g. "error sending request:
/// client error (Connect): tcp connect error: Connection refused".
fn transport_error(e: &reqwest::Error) -> OpenAiError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    OpenAiError::Transport { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses_as_the_retry_table_says() {
        use brisk_pipeline::Classify;
        let quota = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        let rate =
            br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
        assert!(matches!(
            classify(429, quota, None),
            OpenAiError::InsufficientQuota { .. }
        ));
        assert!(!classify(429, quota, None).is_retryable());
        let limited = classify(429, rate, Some(Duration::from_secs(2)));
        assert!(limited.is_retryable());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(2)));
        for status in [408, 409, 500, 502, 503] {
            assert!(classify(status, b"oops", None).is_retryable(), "{status}");
        }
        for status in [400, 401, 403, 404, 422] {
            let e = classify(status, b"{}", None);
            assert!(!e.is_retryable(), "{status}");
            assert!(!counts_against_endpoint(&e), "{status}");
        }
        assert!(counts_against_endpoint(&classify(503, b"", None)));
    }

    #[test]
    fn prices_are_micro_dollars_per_token() {
        let p = Prices {
            input: 0.15,
            output: 0.60,
        };
        // 1,000 prompt tokens at $0.15/M and 100 completion at $0.60/M:
        // $0.00015 + $0.00006 = 210 micro-dollars.
        assert_eq!(p.micro_usd(1_000, 100), 210);
    }
}
