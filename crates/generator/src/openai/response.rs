//! What comes back: the API's JSON (parsed leniently, never panicking), and
//! the [`Answer`] a caller gets, labelled with the backend that produced it.

use serde::Deserialize;

use super::error::OpenAiError;

/// Which backend produced an [`Answer`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// The OpenAI-compatible API, with the model that answered (as the
    /// response named it, else as requested).
    Remote {
        /// The model.
        model: String,
    },
    /// The local model (the fallback), because the API failed, timed out
    /// or its breaker was open; [`Answer::remote_error`] says why.
    Local,
}

/// One token and its log-probability, as the API reported it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TokenLogprob {
    /// The token's text.
    pub token: String,
    /// Its natural log-probability (≤ 0).
    pub logprob: f64,
}

/// One generated choice.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Choice {
    /// Its position among the `n` choices.
    pub index: u32,
    /// The generated text.
    pub text: String,
    /// Why generation stopped (`stop`, `length`, ...), if the API said.
    pub finish_reason: Option<String>,
    /// The tokens' log-probabilities, when `logprobs` was asked for and
    /// the server sent them; else empty.
    pub logprobs: Vec<TokenLogprob>,
    /// The confidence from the log-probabilities (see [`confidence`]), or
    /// the local model's confidence; `None` without either.
    pub confidence: Option<f64>,
}

/// Tokens the API reported using.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated (all choices).
    pub completion_tokens: u64,
}

impl Usage {
    /// Prompt plus completion tokens.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// A complete response of the API: what the cache keeps.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Completion {
    pub(crate) model: String,
    pub(crate) choices: Vec<Choice>,
    pub(crate) usage: Option<Usage>,
}

/// The answer to a request: the text, its confidence, and which backend
/// produced it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Answer {
    /// The first choice's text.
    pub text: String,
    /// The first choice's confidence (see [`confidence`] for the remote
    /// mapping; the local model's own score when [`Backend::Local`]).
    pub confidence: Option<f64>,
    /// Every choice (one from the local model).
    pub choices: Vec<Choice>,
    /// Which backend produced it.
    pub backend: Backend,
    /// Whether it came from the response cache (no API call was made).
    pub cached: bool,
    /// Tokens the API reported (none for the local model, and none when a
    /// server leaves `usage` out).
    pub usage: Option<Usage>,
    /// Why the API did not answer, when the local model did.
    pub remote_error: Option<OpenAiError>,
}

impl Answer {
    pub(crate) fn remote(completion: &Completion, cached: bool) -> Self {
        let first = completion.choices.first();
        Self {
            text: first.map(|c| c.text.clone()).unwrap_or_default(),
            confidence: first.and_then(|c| c.confidence),
            choices: completion.choices.clone(),
            backend: Backend::Remote {
                model: completion.model.clone(),
            },
            cached,
            usage: completion.usage,
            remote_error: None,
        }
    }
}

/// The confidence of a generated text from its tokens' log-probabilities:
/// `exp(mean logprob)`, the geometric mean of the tokens' probabilities.
///
/// It lies in `[0, 1]`: 1 when the model was certain of every token, and it
/// is length-normalised (a long answer is not penalised for having more
/// tokens). Non-finite values are skipped; positive ones (which a
/// probability's log cannot be) count as 0. `None` when no token has a
/// usable value.
///
/// ```
/// use brisk_generator::openai::confidence;
///
/// // Two tokens of probability 0.5 each: the geometric mean is 0.5.
/// let c = confidence([0.5f64.ln(), 0.5f64.ln()]).unwrap();
/// assert!((c - 0.5).abs() < 1e-12);
/// assert_eq!(confidence([]), None);
/// ```
#[must_use]
pub fn confidence(logprobs: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, count) = logprobs
        .into_iter()
        .filter(|l| l.is_finite())
        .fold((0.0, 0u32), |(s, n), l| (s + l.min(0.0), n + 1));
    (count > 0).then(|| (sum / f64::from(count)).exp().clamp(0.0, 1.0))
}

// ---- the wire format ------------------------------------------------------
//
// Every field a server may leave out is optional or defaulted: vLLM,
// llama.cpp and Ollama each omit some of OpenAI's. What must be there (the
// choices and their text) is checked after parsing, with an error that says
// what was missing.

#[derive(Deserialize)]
pub(crate) struct WireCompletion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<WireChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    logprobs: Option<WireLogprobs>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct WireLogprobs {
    #[serde(default)]
    pub(crate) content: Option<Vec<WireTokenLogprob>>,
}

#[derive(Deserialize)]
pub(crate) struct WireTokenLogprob {
    #[serde(default)]
    pub(crate) token: String,
    pub(crate) logprob: f64,
}

#[derive(Deserialize, Clone, Copy)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        }
    }
}

/// Turns the logprobs of a choice into ours.
pub(crate) fn token_logprobs(wire: Option<WireLogprobs>) -> Vec<TokenLogprob> {
    wire.and_then(|l| l.content)
        .unwrap_or_default()
        .into_iter()
        .map(|t| TokenLogprob {
            token: t.token,
            logprob: t.logprob,
        })
        .collect()
}

/// The start of `text`, for error messages: at most 200 bytes, cut at a
/// character boundary.
pub(crate) fn excerpt(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let more = if end < text.len() { "…" } else { "" };
    format!("{:?}{more}", &text[..end])
}

/// Parses a non-streamed response body.
pub(crate) fn parse_completion(body: &[u8], requested_model: &str) -> Result<Completion, OpenAiError> {
    let wire: WireCompletion = serde_json::from_slice(body).map_err(|e| OpenAiError::Malformed {
        message: format!(
            "the body is not a chat completion ({e}); it starts with {}",
            excerpt(body)
        ),
    })?;
    let Some(choices) = wire.choices.filter(|c| !c.is_empty()) else {
        return Err(OpenAiError::Malformed {
            message: format!(
                "the completion has no `choices`; it starts with {}",
                excerpt(body)
            ),
        });
    };
    let mut out = Vec::with_capacity(choices.len());
    for (i, c) in choices.into_iter().enumerate() {
        let Some(text) = c.message.and_then(|m| m.content) else {
            return Err(OpenAiError::Malformed {
                message: format!("choice {i} has no `message.content`"),
            });
        };
        let logprobs = token_logprobs(c.logprobs);
        out.push(Choice {
            index: c.index.unwrap_or(u32::try_from(i).unwrap_or(u32::MAX)),
            text,
            finish_reason: c.finish_reason,
            confidence: confidence(logprobs.iter().map(|t| t.logprob)),
            logprobs,
        });
    }
    Ok(Completion {
        model: wire.model.unwrap_or_else(|| requested_model.to_owned()),
        choices: out,
        usage: wire.usage.map(Usage::from),
    })
}

/// `{"error": {"message": .., "type": .., "code": ..}}`, the body of an
/// error status; anything else yields the body's start as the message.
#[derive(Deserialize)]
struct WireErrorBody {
    error: WireError,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

/// The error code (`code`, else `type`) and message of an error body.
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, String) {
    match serde_json::from_slice::<WireErrorBody>(body) {
        Ok(WireErrorBody { error }) => {
            let code = match error.code {
                Some(serde_json::Value::String(s)) => Some(s),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            }
            .or(error.kind);
            (code, error.message.unwrap_or_default())
        }
        Err(_) => (None, excerpt(body)),
    }
}
