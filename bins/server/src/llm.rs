//! The LLM backend of `POST /api/generate`: brisk-generator's
//! OpenAI-compatible client (its pipeline, its rate limiter at
//! `API_RATE_LIMIT_PER_MINUTE`, its response cache), with the local model
//! as the fallback.
//
// The fallback is the server's, not the client's: when the API gives no
// usable answer, the request goes through the local generation pipeline
// like any other, so `n`, `hook`, `seed` and the topic check behave as
// without an LLM. The client's own fallback hook only sees a chat request.
//
// `/ready` reports the LLM as degraded (never failed: generation goes on
// locally) when a call failed within the last minute or when the API does
// not answer `GET {base}/models`; any answer below 500 there (404 on
// servers without the route) counts as reachable. The probe's answer is
// kept for `PROBE_TTL`, and concurrent `/ready` calls share one probe, so
// however often `/ready` is polled the provider sees at most one
// `GET /models` per TTL from each process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use brisk_core::{Backoff, ConfigError, Priority};
use brisk_generator::openai::{ChatRequest, Message, OpenAiClient};
use brisk_monitor::CheckOutcome;
use brisk_pattern_matcher::HookKind;

use crate::config::{Secret, Settings};
use crate::generate::{GenerateRequest, GeneratedPost, Model};

/// The default model when `LLM_MODEL` is not set.
pub(crate) const DEFAULT_MODEL: &str = "gpt-4o-mini";
/// How long one generate request may wait for the API (queue, limiter,
/// retries and the response) before the local model answers.
const DEADLINE: Duration = Duration::from_secs(15);
/// How long a failed call keeps `/ready` degraded.
const FAILURE_MEMORY: Duration = Duration::from_secs(60);
/// How long the answer of `GET {base}/models` is reused by `/ready`.
pub(crate) const PROBE_TTL: Duration = Duration::from_secs(10);

/// What `GET {base}/models` answered.
#[derive(Clone, Debug)]
enum Probe {
    /// An HTTP status.
    Answered(reqwest::StatusCode),
    /// No answer (the error, without the URL).
    Unreachable(String),
}

/// The client and what `/ready` needs to know about it.
#[derive(Debug)]
pub(crate) struct Llm {
    client: OpenAiClient,
    base_url: String,
    api_key: Option<Secret>,
    probe: reqwest::Client,
    /// The last probe and when it was sent; the async lock makes
    /// concurrent `/ready` calls wait for one probe instead of each sending one.
    last_probe: tokio::sync::Mutex<Option<(Instant, Probe)>>,
    /// Probes sent (`GET /models`).
    probes: AtomicU64,
    last_failure: Mutex<Option<(Instant, String)>>,
}

impl Llm {
    /// The backend, when `LLM_BASE_URL` is set.
    pub(crate) fn build(settings: &Settings) -> Result<Option<Arc<Self>>, ConfigError> {
        let Some(base_url) = settings.llm_base_url.clone() else {
            return Ok(None);
        };
        let base_url = base_url.trim_end_matches('/').to_owned();
        let model = settings
            .llm_model
            .clone()
            .unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        let mut builder = OpenAiClient::builder()
            .base_url(base_url.clone())
            .model(model)
            // Only LLM_API_KEY (through the settings) is a key for us: never
            // OPENAI_API_KEY from the environment by accident.
            .api_key_env("LLM_API_KEY")
            .requests_per_minute(settings.api_rate_limit_per_minute)
            .connect_timeout(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(12))
            .default_timeout(Some(DEADLINE))
            // One retry: the local model is a good answer, waiting is not.
            .backoff(
                Backoff::builder()
                    .max_attempts(2)
                    .base(Duration::from_millis(100))
                    .cap(Duration::from_secs(1))
                    .build()?,
            )
            .queue_capacity(settings.generate_queue_capacity)
            .cache_ttl(Duration::from_secs(600));
        if let Some(key) = &settings.llm_api_key {
            builder = builder.api_key(key.expose());
        }
        let client = builder.build()?;
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_millis(800))
            .build()
            .map_err(|e| ConfigError::new("llm_base_url", e.to_string()))?;
        Ok(Some(Arc::new(Self {
            client,
            base_url,
            api_key: settings.llm_api_key.clone(),
            probe,
            last_probe: tokio::sync::Mutex::new(None),
            probes: AtomicU64::new(0),
            last_failure: Mutex::new(None),
        })))
    }

    /// The model asked.
    pub(crate) fn model(&self) -> &str {
        self.client.model()
    }

    /// The client, for its stats.
    pub(crate) fn client(&self) -> &OpenAiClient {
        &self.client
    }

    /// Asks the API for `r.n` posts. Each is trimmed to `r.max_chars` and
    /// scored by the local model (fluency, novelty, structure fit); its
    /// confidence is the API's (from log-probabilities) when it gives one,
    /// else the local score.
    ///
    /// # Errors
    ///
    /// Why the API gave no usable post; the caller then asks the local model.
    pub(crate) async fn generate(
        &self,
        r: &GenerateRequest,
        scorer: &Model,
    ) -> Result<Vec<GeneratedPost>, String> {
        let result = self.ask(r, scorer).await;
        if let Err(e) = &result {
            *self.last_failure.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((Instant::now(), e.clone()));
        }
        result
    }

    async fn ask(&self, r: &GenerateRequest, scorer: &Model) -> Result<Vec<GeneratedPost>, String> {
        let request = chat_request(r);
        let answer = self
            .client
            .complete_remote(&request)
            .await
            .map_err(|e| e.to_string())?;
        let posts: Vec<GeneratedPost> = answer
            .choices
            .iter()
            .filter_map(|choice| {
                let text = tidy(&choice.text, r.max_chars)?;
                let local = scorer.confidence(&text);
                Some(GeneratedPost {
                    confidence: choice.confidence.unwrap_or(local.score),
                    fluency: local.fluency,
                    novelty: local.novelty,
                    structure_fit: local.structure_fit,
                    attempts: 1,
                    text,
                })
            })
            .take(r.n)
            .collect();
        if posts.is_empty() {
            return Err("the API answered no text".to_owned());
        }
        Ok(posts)
    }

    /// `/ready`'s check: degraded after a recent failure or when
    /// `GET {base}/models` gets no answer below 500.
    pub(crate) async fn check(&self) -> CheckOutcome {
        let recent = self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(at, _)| at.elapsed() < FAILURE_MEMORY)
            .map(|(_, e)| e.clone());
        let stats = self.client.stats();
        if let Some(error) = recent {
            return CheckOutcome::degraded(format!(
                "{}: a call failed within the last minute ({error}); generating with the local model \
                 ({} answers from the API, {} calls)",
                self.model(),
                stats.remote,
                stats.calls
            ));
        }
        match self.probe().await {
            Probe::Answered(status) if status.is_server_error() => CheckOutcome::degraded(format!(
                "{}: GET /models answered {status}; generating with the local model",
                self.model(),
            )),
            Probe::Answered(status)
                if status == reqwest::StatusCode::UNAUTHORIZED
                    || status == reqwest::StatusCode::FORBIDDEN =>
            {
                CheckOutcome::degraded(format!("{}: the API refused the key ({status})", self.model()))
            }
            Probe::Answered(_) => CheckOutcome::healthy(format!(
                "{}: reachable ({} answers from the API, {} cached)",
                self.model(),
                stats.remote,
                stats.cache_hits
            )),
            Probe::Unreachable(e) => CheckOutcome::degraded(format!(
                "{}: unreachable ({e}); generating with the local model",
                self.model(),
            )),
        }
    }

    /// The answer of `GET {base}/models`: the last one if younger than
    /// [`PROBE_TTL`], else a new probe (one at a time).
    async fn probe(&self) -> Probe {
        let mut last = self.last_probe.lock().await;
        if let Some((at, probe)) = last.as_ref()
            && at.elapsed() < PROBE_TTL
        {
            return probe.clone();
        }
        let mut request = self.probe.get(format!("{}/models", self.base_url));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        self.probes.fetch_add(1, Ordering::Relaxed);
        let probe = match request.send().await {
            Ok(r) => Probe::Answered(r.status()),
            Err(e) => Probe::Unreachable(without_url(e)),
        };
        *last = Some((Instant::now(), probe.clone()));
        probe
    }

    /// Probes of `GET {base}/models` sent since the start.
    pub(crate) fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }
}

/// A reqwest error without its URL (which may hold credentials).
fn without_url(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        e.without_url().to_string()
    }
}

/// The chat request for a generate request: a system prompt with the
/// constraints, the topic and hook in the user message, `n` choices, at
/// High priority; cached (by the client) only when a seed asks for a
/// repeatable answer.
fn chat_request(r: &GenerateRequest) -> ChatRequest {
    let system = format!(
        "You write social media posts. Answer with the post only: no quotes, no preamble, \
         at most {} characters.",
        r.max_chars
    );
    let mut user = match &r.topic {
        Some(topic) => format!("Write a post about {topic}."),
        None => "Write a post.".to_owned(),
    };
    if let Some(hook) = r.hook {
        user.push_str(match hook {
            HookKind::Question => " Open with a question.",
            HookKind::NumberOrList => " Open with a number or a list.",
            HookKind::BoldClaim => " Open with a bold claim.",
            HookKind::Quote => " Open with a quote.",
            _ => "",
        });
    }
    let max_tokens = u32::try_from(r.max_chars / 3 + 16).unwrap_or(1_000);
    let n = u32::try_from(r.n).unwrap_or(1);
    ChatRequest::new([Message::system(system), Message::user(user)])
        .max_tokens(max_tokens)
        .n(n)
        .temperature(0.9)
        .priority(Priority::High)
        .timeout(DEADLINE)
        .cache(r.seed.is_some())
}

/// The answer's text, trimmed of whitespace and wrapping quotes, cut to
/// `max_chars` at a word boundary when there is one; `None` when empty.
fn tidy(text: &str, max_chars: usize) -> Option<String> {
    let mut t = text.trim();
    for (open, close) in [('"', '"'), ('\u{201c}', '\u{201d}')] {
        if t.len() >= 2 && t.starts_with(open) && t.ends_with(close) {
            t = t[open.len_utf8()..t.len() - close.len_utf8()].trim();
        }
    }
    if t.is_empty() {
        return None;
    }
    if t.chars().count() <= max_chars {
        return Some(t.to_owned());
    }
    let cut: String = t.chars().take(max_chars).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > max_chars / 2 => cut[..i].trim_end().to_owned(),
        _ => cut,
    };
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn answers_are_trimmed_to_the_limit() {
        assert_eq!(tidy("  \"Ship it.\" ", 280).as_deref(), Some("Ship it."));
        assert_eq!(tidy("   ", 280), None);
        let long = "word ".repeat(100);
        let t = tidy(&long, 50).unwrap();
        assert!(t.chars().count() <= 50 && t.ends_with("word"), "{t}");
    }
}
