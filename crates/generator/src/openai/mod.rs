//! An OpenAI-compatible chat-completions backend (feature `openai`), run
//! through brisk's pipeline, rate limiters and cache, with the local model
//! as its fallback.
//!
//! - [`OpenAiClient`], built by [`OpenAiClientBuilder`]: talks to
//!   `POST {base_url}/chat/completions` with reqwest. The base URL is
//!   configurable, so the same client talks to OpenAI, vLLM, llama.cpp's
//!   server or Ollama; the API key comes from the environment
//!   (`OPENAI_API_KEY` by default, [`api_key_env`](OpenAiClientBuilder::api_key_env)).
//! - [`ChatRequest`]: the body fields `model`, `messages`, `temperature`,
//!   `max_tokens`, `n`, `stop`, `logprobs` and `stream` (server-sent
//!   events, assembled into the same answer), plus how the client runs it:
//!   priority, timeout, caching.
//! - [`Answer`]: the text, its [`confidence`] (from the tokens'
//!   log-probabilities when asked for), every [`Choice`], the [`Usage`],
//!   and the [`Backend`] that produced it: the API, or the local model.
//! - [`OpenAiError`]: one error type, whose variants say which case of the
//!   retry table a failure is.
//! - [`LocalFallback`]: the local model that answers when the API cannot;
//!   the crate's [`Generator`](crate::Generator) is one, and so is any
//!   `Fn(&ChatRequest) -> Result<LocalAnswer, String>`.
//!
//! # Example
//!
//! The API is down here (nothing listens on the port), so the local model
//! answers, and the answer says so:
//!
//! ```
//! use brisk_core::Backoff;
//! use brisk_generator::openai::{Backend, ChatRequest, LocalAnswer, OpenAiClient, OpenAiError};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
//! let client = OpenAiClient::builder()
//!     .base_url(format!("http://127.0.0.1:{port}/v1")) // e.g. Ollama's http://localhost:11434/v1
//!     .model("llama3.2")
//!     .api_key_env("MY_LLM_API_KEY") // unset: requests go without Authorization
//!     .backoff(Backoff::builder().max_attempts(1).build()?) // no retries, for the example
//!     .fallback(|request: &ChatRequest| -> Result<LocalAnswer, String> {
//!         Ok(LocalAnswer::new(format!("{} (drafted locally)", request.prompt_text()), Some(0.4)))
//!     })
//!     .build()?;
//!
//! let answer = client.complete(&ChatRequest::prompt("Shipping day")).await?;
//! assert_eq!(answer.backend, Backend::Local);
//! assert_eq!(answer.text, "Shipping day (drafted locally)");
//! assert!(matches!(answer.remote_error, Some(OpenAiError::Transport { .. })));
//! assert_eq!(client.stats().local, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Against OpenAI itself, with the key in `OPENAI_API_KEY`, a budget, and
//! the confidence from log-probabilities:
//!
//! ```no_run
//! use std::time::Duration;
//! use brisk_core::Priority;
//! use brisk_generator::openai::{Backend, ChatRequest, Message, OpenAiClient};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = OpenAiClient::builder()
//!     .model("gpt-4o-mini")
//!     .requests_per_minute(500)
//!     .tokens_per_minute(200_000)
//!     .prices(0.15, 0.60) // $ per million prompt and completion tokens
//!     .budget(5_000_000, Duration::from_secs(24 * 3600)) // $5 a day, in micro-dollars
//!     .build()?;
//! let request = ChatRequest::new([
//!     Message::system("You write one tweet, under 280 characters."),
//!     Message::user("Announce our new rate limiter."),
//! ])
//! .temperature(0.7)
//! .max_tokens(80)
//! .logprobs(true)
//! .priority(Priority::High)
//! .timeout(Duration::from_secs(10));
//! let answer = client.complete(&request).await?;
//! if let Backend::Remote { model } = &answer.backend {
//!     println!("{model}: {} (confidence {:?})", answer.text, answer.confidence);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # What happens to a call
//!
//! 1. The request is checked ([`OpenAiError::InvalidRequest`] names the
//!    field; nothing is sent).
//! 2. The response cache (brisk-cache, keyed by a hash of the base URL and
//!    the request body, with a TTL) answers a repeated request without a
//!    call: [`Answer::cached`].
//! 3. Otherwise the request goes through brisk-pipeline: a priority queue,
//!    single-flight (identical cacheable requests in flight at once share
//!    one call), the request's deadline, and the endpoint's circuit
//!    breaker.
//! 4. Before each attempt, brisk-rate-limiter acquires one request, the
//!    estimated tokens and (with a budget) the estimated cost; after it,
//!    the surplus over the reported `usage` is refunded, and the response's
//!    `x-ratelimit-*` / `retry-after` headers pause the limiter when
//!    upstream says nothing is left.
//! 5. Failures are retried with brisk-core's [`Backoff`](brisk_core::Backoff)
//!    as the table on [`OpenAiError`] says: 408, 409, 429
//!    `rate_limit_exceeded` and 5xx (honouring `retry-after`), timeouts and
//!    refused connections; never 429 `insufficient_quota`, other 4xx or
//!    malformed bodies.
//! 6. When the API gives no answer (or the breaker is open), the
//!    [`LocalFallback`] answers with [`Backend::Local`], and
//!    [`Answer::remote_error`] says why the API did not.
//!
//! Whether an error is retried, without a server:
//!
//! ```
//! use std::time::Duration;
//! use brisk_generator::openai::OpenAiError;
//! use brisk_pipeline::Classify;
//!
//! let busy = OpenAiError::RateLimited {
//!     retry_after: Some(Duration::from_secs(2)),
//!     message: "Rate limit reached".into(),
//! };
//! assert!(busy.is_retryable());
//! assert_eq!(busy.retry_after(), Some(Duration::from_secs(2)));
//! let broke = OpenAiError::InsufficientQuota { message: "You exceeded your current quota".into() };
//! assert!(!broke.is_retryable());
//! ```
//!
//! # Confidence
//!
//! With `logprobs`, a choice's confidence is `exp(mean token logprob)`,
//! the geometric mean of its tokens' probabilities (see [`confidence`]).
//! Without them, a remote answer has no confidence (`None`); a local one
//! carries the local model's own score.
//!
//! # Time
//!
//! Deadlines, the breaker and the limiters read the system clock and wait
//! on tokio's timer; the cache's TTL reads
//! [`cache_clock`](OpenAiClientBuilder::cache_clock), which tests can
//! replace with a [`ManualClock`](brisk_core::ManualClock).

mod client;
mod error;
mod fallback;
mod request;
mod response;
mod sse;
mod transport;

pub use client::{OpenAiClient, OpenAiClientBuilder, OpenAiStats};
pub use error::{DeadlineStage, OpenAiError};
pub use fallback::{LocalAnswer, LocalFallback};
pub use request::{ChatRequest, Message, Role};
pub use response::{Answer, Backend, Choice, TokenLogprob, Usage, confidence};
