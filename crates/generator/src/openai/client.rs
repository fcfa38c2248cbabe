//! The client and its builder.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use brisk_cache::{Cache, CacheStats};
use brisk_core::{Backoff, ConfigError, ContentHash, SharedClock, StatsReport, StatsSource, SystemClock};
use brisk_pipeline::{BreakerConfig, EjectionConfig, Endpoint, Job, Pipeline, PipelineStats, ShutdownReport};
use brisk_rate_limiter::{Quota, RateLimiter};

use super::error::OpenAiError;
use super::fallback::{Fallback, LocalFallback};
use super::request::{ChatRequest, StreamOptions, WireRequest, estimate_tokens};
use super::response::{Answer, Backend, Choice, Completion};
use super::transport::{Call, Counters, Limits, Prices, Secret, Transport};

/// Builds an [`OpenAiClient`]. Each setter's docs give its default;
/// [`build`](Self::build) checks the values and names the field that is
/// wrong.
#[must_use]
pub struct OpenAiClientBuilder {
    base_url: String,
    model: String,
    api_key_env: String,
    api_key: Option<Secret>,
    request_timeout: Duration,
    connect_timeout: Duration,
    default_timeout: Option<Duration>,
    default_max_tokens: u32,
    requests_per_minute: u64,
    tokens_per_minute: u64,
    budget: Option<(u64, Duration)>,
    prices: Prices,
    backoff: Backoff,
    breaker: BreakerConfig,
    ejection: EjectionConfig,
    max_concurrency: usize,
    queue_capacity: usize,
    cache: bool,
    cache_ttl: Duration,
    cache_capacity: u64,
    cache_clock: Option<SharedClock>,
    fallback: Option<Fallback>,
}

impl fmt::Debug for OpenAiClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiClientBuilder")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key_env", &self.api_key_env)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl Default for OpenAiClientBuilder {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".to_owned(),
            model: "gpt-4o-mini".to_owned(),
            api_key_env: "OPENAI_API_KEY".to_owned(),
            api_key: None,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            default_timeout: Some(Duration::from_secs(30)),
            default_max_tokens: 256,
            requests_per_minute: 500,
            tokens_per_minute: 200_000,
            budget: None,
            prices: Prices::default(),
            backoff: Backoff::default(),
            breaker: BreakerConfig::default(),
            ejection: EjectionConfig::default(),
            max_concurrency: 8,
            queue_capacity: 1_000,
            cache: true,
            cache_ttl: Duration::from_secs(3_600),
            cache_capacity: 10_000,
            cache_clock: None,
            fallback: None,
        }
    }
}

impl OpenAiClientBuilder {
    /// The API's base URL; requests go to `{base_url}/chat/completions`.
    /// Default `https://api.openai.com/v1`. Local servers: vLLM
    /// `http://HOST:8000/v1`, llama.cpp's server `http://HOST:8080/v1`,
    /// Ollama `http://HOST:11434/v1`. Must be an `http` or `https` URL.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The model used when a request names none. Default `gpt-4o-mini`;
    /// must not be empty.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// The environment variable holding the API key, read at
    /// [`build`](Self::build). Default `OPENAI_API_KEY`. When it is unset
    /// or empty, requests go without `Authorization` (local servers need
    /// none). The key is sent as `Authorization: Bearer ...` and never
    /// printed: `Debug` shows `<redacted>`.
    pub fn api_key_env(mut self, name: impl Into<String>) -> Self {
        self.api_key_env = name.into();
        self
    }

    /// The API key itself, instead of the environment. Default: none.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(Secret(key.into()));
        self
    }

    /// The longest one attempt may take, from sending to the end of the
    /// body; past it the attempt fails with [`OpenAiError::Timeout`] and
    /// is retried. Default 60 s; greater than zero.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The longest a TCP (and TLS) connection may take. Default 10 s;
    /// greater than zero.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The deadline of a request that sets no
    /// [`timeout`](ChatRequest::timeout) of its own: queueing, rate limits,
    /// retries and the response all count. `None`: no deadline. Default
    /// 30 s; greater than zero.
    pub fn default_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// `max_tokens` for a request that sets none. Default 256; at least 1.
    pub fn default_max_tokens(mut self, max_tokens: u32) -> Self {
        self.default_max_tokens = max_tokens;
        self
    }

    /// Requests per minute sent at most (GCRA: a burst of this many, then
    /// one every `60 s / n`). Upstream's `x-ratelimit-*` and `retry-after`
    /// headers pause this limiter further when they say nothing is left.
    /// Default 500; at least 1.
    pub fn requests_per_minute(mut self, n: u64) -> Self {
        self.requests_per_minute = n;
        self
    }

    /// Tokens per minute at most: each request reserves its estimate
    /// (prompt bytes / 4 + 4 per message + 3, plus `max_tokens × n`), and
    /// the surplus over the reported `usage` is refunded after the call.
    /// Default 200,000; at least 1.
    pub fn tokens_per_minute(mut self, n: u64) -> Self {
        self.tokens_per_minute = n;
        self
    }

    /// A spending limit: at most `micro_usd` micro-dollars per `period`,
    /// priced with [`prices`](Self::prices) (required with a budget). Each
    /// request reserves its estimated cost; the surplus is refunded after
    /// the call. Default: no budget. Both values greater than zero.
    pub fn budget(mut self, micro_usd: u64, period: Duration) -> Self {
        self.budget = Some((micro_usd, period));
        self
    }

    /// Prices in US dollars per million prompt (`input`) and completion
    /// (`output`) tokens, for the [`budget`](Self::budget). Default 0 and
    /// 0; finite and not negative, and not both 0 with a budget.
    pub fn prices(mut self, input_per_million: f64, output_per_million: f64) -> Self {
        self.prices = Prices {
            input: input_per_million,
            output: output_per_million,
        };
        self
    }

    /// The retry policy for retryable failures (see [`OpenAiError`]).
    /// Default `Backoff::default()`: 5 attempts, 100 ms base, 10 s cap,
    /// full jitter; a `retry-after` replaces the computed delay.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The API endpoint's circuit breaker; while it is open nothing is
    /// sent and the fallback answers. Default [`BreakerConfig::default`]
    /// (opens at a 50 % failure rate over the last 100 calls, at least 20
    /// of them, for 30 s).
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// Ejection of the endpoint after consecutive failed calls. Default
    /// [`EjectionConfig::default`] (5 failures, 30 s).
    pub fn ejection(mut self, config: EjectionConfig) -> Self {
        self.ejection = config;
        self
    }

    /// Requests in flight at most (the pipeline's workers, autoscaled from
    /// 1). Default 8; at least 1.
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n;
        self
    }

    /// Requests that may wait in the priority queue. Default 1,000; at
    /// least 1.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n;
        self
    }

    /// How long a cached response is served. Default 1 hour; greater than
    /// zero.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Responses cached at most. Default 10,000; at least 1.
    pub fn cache_capacity(mut self, n: u64) -> Self {
        self.cache_capacity = n;
        self
    }

    /// The cache's clock (for its TTL); tests pass a
    /// [`ManualClock`](brisk_core::ManualClock). Default: the system clock.
    pub fn cache_clock(mut self, clock: SharedClock) -> Self {
        self.cache_clock = Some(clock);
        self
    }

    /// Turns the response cache off. Default: on.
    pub fn no_cache(mut self) -> Self {
        self.cache = false;
        self
    }

    /// The local model that answers when the API fails, times out or its
    /// breaker is open; the [`Answer`] then says [`Backend::Local`].
    /// Default: none, the caller gets the error.
    pub fn fallback(mut self, local: impl LocalFallback) -> Self {
        self.fallback = Some(Fallback(Box::new(local)));
        self
    }

    /// Checks the configuration and starts the client's workers on the
    /// current tokio runtime.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field: `base_url` (empty, not a URL, or
    /// not `http`/`https`), `model`, `api_key` (not a valid header value),
    /// `api_key_env` (empty, or the variable is not Unicode or not a valid
    /// header value), `request_timeout`, `connect_timeout`,
    /// `default_timeout`, `default_max_tokens`, `requests_per_minute`,
    /// `tokens_per_minute`, `budget.micro_usd`, `budget.period`, `prices`,
    /// `max_concurrency`, `queue_capacity`, `cache_ttl`, `cache_capacity`,
    /// `breaker.<field>`, `ejection.<field>`, `http_client`, or `runtime`
    /// outside a tokio runtime.
    pub fn build(self) -> Result<OpenAiClient, ConfigError> {
        let url = self.validate()?;
        let api_key = match &self.api_key {
            Some(key) => Some(key.clone()),
            None => match std::env::var(&self.api_key_env) {
                Ok(key) if !key.is_empty() => Some(Secret(key)),
                Ok(_) | Err(std::env::VarError::NotPresent) => None,
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(ConfigError::new(
                        "api_key_env",
                        format!("the variable {} is not valid Unicode", self.api_key_env),
                    ));
                }
            },
        };
        if let Some(Secret(key)) = &api_key
            && reqwest::header::HeaderValue::from_str(key).is_err()
        {
            let field = if self.api_key.is_some() {
                "api_key"
            } else {
                "api_key_env"
            };
            return Err(ConfigError::new(
                field,
                "the key is not a valid HTTP header value (it holds control characters)",
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|e| ConfigError::new("http_client", e.to_string()))?;
        // The pipeline compares its deadlines (instants of its clock, the
        // system clock) with the limiters' clock: they must be the same.
        let clock = SystemClock::shared();
        let limiter = |name: &'static str, quota: Quota| {
            RateLimiter::builder()
                .name(name)
                .quota(quota)
                .clock(clock.clone())
                .build()
        };
        let requests = limiter(
            "openai_requests",
            Quota::per_minute(self.requests_per_minute).named("requests_per_minute"),
        )?;
        let tokens = limiter(
            "openai_tokens",
            Quota::per_minute(self.tokens_per_minute).named("tokens_per_minute"),
        )?;
        let budget = match self.budget {
            Some((micro_usd, period)) => Some(limiter(
                "openai_budget",
                Quota::new(micro_usd, period).named("budget"),
            )?),
            None => None,
        };
        let limits = Limits {
            requests: requests.clone(),
            tokens: tokens.clone(),
            budget: budget.clone(),
            prices: self.prices,
        };
        let cache = if self.cache {
            let mut b = Cache::builder()
                .max_capacity(self.cache_capacity)
                .time_to_live(self.cache_ttl);
            if let Some(clock) = self.cache_clock {
                b = b.clock(clock);
            }
            Some(b.build()?)
        } else {
            None
        };
        let counters = Arc::new(Counters::default());
        let transport = Transport {
            http,
            url,
            api_key,
            request_timeout: self.request_timeout,
            limits: limits.clone(),
            cache: cache.clone(),
            counters: Arc::clone(&counters),
        };
        let mut pipeline = Pipeline::builder(transport)
            .name("openai")
            .endpoints([Endpoint::new(self.base_url.clone())])
            .capacity(self.queue_capacity)
            .min_workers(1)
            .max_workers(self.max_concurrency)
            .backoff(self.backoff)
            .breaker(self.breaker)
            .ejection(self.ejection)
            .clock(clock)
            .limit(requests, |batch| batch.len() as u64)
            .limit(tokens, |batch| batch.iter().map(|c| c.est_tokens).sum());
        if let Some(budget) = budget {
            pipeline = pipeline.limit(budget, |batch| batch.iter().map(|c| c.est_micro_usd).sum());
        }
        let pipeline = pipeline.build()?;
        Ok(OpenAiClient {
            inner: Arc::new(Inner {
                pipeline,
                cache,
                limits,
                fallback: self.fallback,
                counters,
                base_url: self.base_url,
                model: self.model,
                default_timeout: self.default_timeout,
                default_max_tokens: self.default_max_tokens,
            }),
        })
    }

    /// Checks every field; returns the completions URL.
    fn validate(&self) -> Result<String, ConfigError> {
        let base = self.base_url.trim();
        if base.is_empty() {
            return Err(ConfigError::new("base_url", "must not be empty"));
        }
        let parsed = reqwest::Url::parse(base)
            .map_err(|e| ConfigError::new("base_url", format!("is not a URL ({e}): {base:?}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "base_url",
                format!("must be an http or https URL, got {base:?}"),
            ));
        }
        if self.model.trim().is_empty() {
            return Err(ConfigError::new("model", "must not be empty"));
        }
        if self.api_key.is_none() && self.api_key_env.is_empty() {
            return Err(ConfigError::new("api_key_env", "must not be empty"));
        }
        let positive = |field: &'static str, d: Duration| {
            if d.is_zero() {
                Err(ConfigError::new(field, "must be greater than zero"))
            } else {
                Ok(())
            }
        };
        positive("request_timeout", self.request_timeout)?;
        positive("connect_timeout", self.connect_timeout)?;
        if let Some(d) = self.default_timeout {
            positive("default_timeout", d)?;
        }
        positive("cache_ttl", self.cache_ttl)?;
        let at_least_one = |field: &'static str, n: u64| {
            if n == 0 {
                Err(ConfigError::new(field, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        at_least_one("default_max_tokens", u64::from(self.default_max_tokens))?;
        at_least_one("requests_per_minute", self.requests_per_minute)?;
        at_least_one("tokens_per_minute", self.tokens_per_minute)?;
        at_least_one("max_concurrency", self.max_concurrency as u64)?;
        at_least_one("queue_capacity", self.queue_capacity as u64)?;
        at_least_one("cache_capacity", self.cache_capacity)?;
        let Prices { input, output } = self.prices;
        if !(input.is_finite() && output.is_finite() && input >= 0.0 && output >= 0.0) {
            return Err(ConfigError::new(
                "prices",
                format!("must be finite and not negative, got {input} and {output}"),
            ));
        }
        if let Some((micro_usd, period)) = self.budget {
            at_least_one("budget.micro_usd", micro_usd)?;
            positive("budget.period", period)?;
            if input == 0.0 && output == 0.0 {
                return Err(ConfigError::new(
                    "prices",
                    "must be set with a budget (a budget with free tokens never spends)",
                ));
            }
        }
        Ok(format!("{}/chat/completions", base.trim_end_matches('/')))
    }
}

struct Inner {
    pipeline: Pipeline<Transport>,
    cache: Option<Cache<ContentHash, Arc<Completion>>>,
    limits: Limits,
    fallback: Option<Fallback>,
    counters: Arc<Counters>,
    base_url: String,
    model: String,
    default_timeout: Option<Duration>,
    default_max_tokens: u32,
}

/// An OpenAI-compatible chat-completions client run through brisk's
/// pipeline (priority, single-flight, deadlines, retries, breaker), rate
/// limiters (requests, tokens, budget; adapting to upstream's headers) and
/// response cache, with a local model as its fallback. Cheap to clone.
///
/// See the [module documentation](super) for an example.
#[derive(Clone)]
pub struct OpenAiClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("base_url", &self.inner.base_url)
            .field("model", &self.inner.model)
            .field("cache", &self.inner.cache.is_some())
            .field("fallback", &self.inner.fallback)
            .finish_non_exhaustive()
    }
}

/// A snapshot of an [`OpenAiClient`]'s counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenAiStats {
    /// Calls to [`complete`](OpenAiClient::complete) and
    /// [`complete_remote`](OpenAiClient::complete_remote).
    pub calls: u64,
    /// Answers served from the response cache.
    pub cache_hits: u64,
    /// Answers from the API (not cached).
    pub remote: u64,
    /// Answers from the local fallback.
    pub local: u64,
    /// Calls that ended in an error.
    pub failed: u64,
    /// HTTP requests sent (attempts, retries included).
    pub http_requests: u64,
    /// Responses with an error status.
    pub http_errors: u64,
    /// Responses that were not the protocol's JSON or SSE.
    pub malformed: u64,
    /// Responses whose rate-limit headers paused the requests limiter.
    pub upstream_pauses: u64,
    /// Tokens refunded to the token limiter (estimate minus usage).
    pub refunded_tokens: u64,
}

impl OpenAiClient {
    /// A builder; see [`OpenAiClientBuilder`] for the defaults.
    pub fn builder() -> OpenAiClientBuilder {
        OpenAiClientBuilder::default()
    }

    /// Answers `request`: from the cache, else from the API through the
    /// pipeline, else (when the API fails, times out or its breaker is
    /// open) from the local fallback. [`Answer::backend`] says which.
    ///
    /// # Errors
    ///
    /// [`OpenAiError::InvalidRequest`] for a request the API would refuse
    /// (nothing is sent, the fallback is not asked); without a fallback,
    /// why the API gave no answer; with one that failed too,
    /// [`OpenAiError::FallbackFailed`].
    pub async fn complete(&self, request: &ChatRequest) -> Result<Answer, OpenAiError> {
        self.inner.counters.calls.fetch_add(1, Relaxed);
        match self.remote(request).await {
            Ok(answer) => Ok(answer),
            Err(e @ OpenAiError::InvalidRequest { .. }) => {
                self.inner.counters.failed.fetch_add(1, Relaxed);
                Err(e)
            }
            Err(remote) => self.fall_back(request, remote),
        }
    }

    /// Like [`complete`](Self::complete), but never asks the fallback: the
    /// answer is the API's (or the cache's), or the typed error.
    ///
    /// # Errors
    ///
    /// Any [`OpenAiError`] but `FallbackFailed`.
    pub async fn complete_remote(&self, request: &ChatRequest) -> Result<Answer, OpenAiError> {
        let counters = &self.inner.counters;
        counters.calls.fetch_add(1, Relaxed);
        let result = self.remote(request).await;
        if result.is_err() {
            counters.failed.fetch_add(1, Relaxed);
        }
        result
    }

    async fn remote(&self, request: &ChatRequest) -> Result<Answer, OpenAiError> {
        let inner = &*self.inner;
        request.validate()?;
        let cacheable = request.cache && inner.cache.is_some();
        let mut call = self.prepare(request, cacheable)?;
        if cacheable
            && let Some(cache) = &inner.cache
            && let Some(hit) = cache.get(&call.key)
        {
            inner.counters.cache_hits.fetch_add(1, Relaxed);
            return Ok(Answer::remote(&hit, true));
        }
        let key = call.key;
        let timeout = request.timeout.or(inner.default_timeout);
        let deadline = timeout.map(|t| Instant::now() + t);
        call.deadline = deadline;
        let mut job = Job::new(call).priority(request.priority);
        if let Some(deadline) = deadline {
            job = job.deadline(deadline);
        }
        if cacheable {
            // Identical requests in flight share one call (their own
            // deadlines and priorities kept); uncached ones may want
            // different samples, so each is its own call.
            job = job.key(key);
        }
        let completion = inner.pipeline.call(job).await.map_err(OpenAiError::from)?;
        inner.counters.remote.fetch_add(1, Relaxed);
        Ok(Answer::remote(&completion, false))
    }

    /// Serializes the body and estimates the call's cost.
    fn prepare(&self, request: &ChatRequest, cacheable: bool) -> Result<Call, OpenAiError> {
        let inner = &*self.inner;
        let model = request.model.as_deref().unwrap_or(&inner.model);
        let max_tokens = request.max_tokens.unwrap_or(inner.default_max_tokens);
        let mut wire = WireRequest {
            model,
            messages: &request.messages,
            temperature: request.temperature,
            max_tokens,
            n: request.n,
            stop: &request.stop,
            logprobs: request.logprobs,
            stream: false,
            stream_options: None,
        };
        let serialize = |w: &WireRequest<'_>| {
            serde_json::to_vec(w).map_err(|e| OpenAiError::InvalidRequest {
                field: "messages",
                reason: format!("cannot be serialized: {e}"),
            })
        };
        // The key is the body without the stream flag: a streamed and a
        // plain request for the same thing get the same answer.
        let plain = serialize(&wire)?;
        let key = ContentHash::of_parts(&[
            b"brisk-openai-chat/1".as_slice(),
            inner.base_url.as_bytes(),
            &plain,
        ]);
        let body = if request.stream {
            wire.stream = true;
            wire.stream_options = Some(StreamOptions { include_usage: true });
            serialize(&wire)?
        } else {
            plain
        };
        let (prompt, completion) = estimate_tokens(&request.messages, max_tokens, request.n);
        Ok(Call {
            body,
            model: model.to_owned(),
            stream: request.stream,
            key,
            cacheable,
            est_tokens: prompt + completion,
            est_micro_usd: inner.limits.prices.micro_usd(prompt, completion),
            deadline: None,
        })
    }

    fn fall_back(&self, request: &ChatRequest, remote: OpenAiError) -> Result<Answer, OpenAiError> {
        let inner = &*self.inner;
        let Some(local) = &inner.fallback else {
            inner.counters.failed.fetch_add(1, Relaxed);
            return Err(remote);
        };
        match local.0.answer(request) {
            Ok(answer) => {
                inner.counters.local.fetch_add(1, Relaxed);
                let confidence = answer.confidence.map(|c| c.clamp(0.0, 1.0));
                Ok(Answer {
                    choices: vec![Choice {
                        index: 0,
                        text: answer.text.clone(),
                        finish_reason: None,
                        logprobs: Vec::new(),
                        confidence,
                    }],
                    text: answer.text,
                    confidence,
                    backend: Backend::Local,
                    cached: false,
                    usage: None,
                    remote_error: Some(remote),
                })
            }
            Err(local) => {
                inner.counters.failed.fetch_add(1, Relaxed);
                Err(OpenAiError::FallbackFailed {
                    remote: Box::new(remote),
                    local,
                })
            }
        }
    }

    /// A snapshot of the client's counters.
    #[must_use]
    pub fn stats(&self) -> OpenAiStats {
        let c = &self.inner.counters;
        OpenAiStats {
            calls: c.calls.load(Relaxed),
            cache_hits: c.cache_hits.load(Relaxed),
            remote: c.remote.load(Relaxed),
            local: c.local.load(Relaxed),
            failed: c.failed.load(Relaxed),
            http_requests: c.http_requests.load(Relaxed),
            http_errors: c.http_errors.load(Relaxed),
            malformed: c.malformed.load(Relaxed),
            upstream_pauses: c.upstream_pauses.load(Relaxed),
            refunded_tokens: c.refunded_tokens.load(Relaxed),
        }
    }

    /// The pipeline's stats: queue, single-flight (`dedup_hits`), retries,
    /// fallbacks, the breaker's state per endpoint.
    #[must_use]
    pub fn pipeline_stats(&self) -> PipelineStats {
        self.inner.pipeline.stats()
    }

    /// The response cache's stats, when the cache is on.
    #[must_use]
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.inner.cache.as_ref().map(Cache::stats)
    }

    /// The requests-per-minute limiter (which upstream's headers pause).
    #[must_use]
    pub fn requests_limiter(&self) -> &RateLimiter {
        &self.inner.limits.requests
    }

    /// The tokens-per-minute limiter.
    #[must_use]
    pub fn tokens_limiter(&self) -> &RateLimiter {
        &self.inner.limits.tokens
    }

    /// The budget limiter (micro-dollars), when a budget is set.
    #[must_use]
    pub fn budget_limiter(&self) -> Option<&RateLimiter> {
        self.inner.limits.budget.as_ref()
    }

    /// The default model.
    #[must_use]
    pub fn model(&self) -> &str {
        &self.inner.model
    }

    /// Stops taking requests, lets those queued and in flight finish until
    /// `drain` has passed, then fails what is left with
    /// [`OpenAiError::Shutdown`] (which the fallback answers).
    pub async fn shutdown(&self, drain: Duration) -> ShutdownReport {
        self.inner.pipeline.shutdown(drain).await
    }
}

impl StatsSource for OpenAiClient {
    /// Reports `brisk_openai_{calls,cache_hits,remote_answers,local_answers,
    /// failed,http_requests,http_errors,malformed,upstream_pauses,
    /// refunded_tokens}_total`, then the pipeline's (`pipeline="openai"`),
    /// the response cache's and the limiters' own series.
    fn report_stats(&self, out: &mut StatsReport) {
        let s = self.stats();
        let counters: [(&'static str, &'static str, u64); 10] = [
            (
                "brisk_openai_calls_total",
                "Calls to complete and complete_remote",
                s.calls,
            ),
            (
                "brisk_openai_cache_hits_total",
                "Answers served from the response cache",
                s.cache_hits,
            ),
            (
                "brisk_openai_remote_answers_total",
                "Answers from the API (not cached)",
                s.remote,
            ),
            (
                "brisk_openai_local_answers_total",
                "Answers from the local fallback",
                s.local,
            ),
            (
                "brisk_openai_failed_total",
                "Calls that ended in an error",
                s.failed,
            ),
            (
                "brisk_openai_http_requests_total",
                "HTTP requests sent, retries included",
                s.http_requests,
            ),
            (
                "brisk_openai_http_errors_total",
                "Responses with an error status",
                s.http_errors,
            ),
            (
                "brisk_openai_malformed_total",
                "Responses that were not the protocol's JSON or SSE",
                s.malformed,
            ),
            (
                "brisk_openai_upstream_pauses_total",
                "Responses whose rate-limit headers paused the requests limiter",
                s.upstream_pauses,
            ),
            (
                "brisk_openai_refunded_tokens_total",
                "Estimated tokens refunded after the reported usage",
                s.refunded_tokens,
            ),
        ];
        for (name, help, value) in counters {
            let _ = out.counter(name, help, value);
        }
        let inner = &*self.inner;
        inner.pipeline.report_stats(out);
        if let Some(cache) = &inner.cache {
            cache.report_stats(out);
        }
        inner.limits.requests.report_stats(out);
        inner.limits.tokens.report_stats(out);
        if let Some(budget) = &inner.limits.budget {
            budget.report_stats(out);
        }
    }
}
