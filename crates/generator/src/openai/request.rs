//! What a caller asks for: a chat-completions request, and how to run it.

use std::time::Duration;

use brisk_core::Priority;
use serde::Serialize;

use super::error::OpenAiError;

/// Who wrote a [`Message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The user's turn.
    User,
    /// The model's earlier turn.
    Assistant,
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A chat-completions request: the body fields the API sees (`model`,
/// `messages`, `temperature`, `max_tokens`, `n`, `stop`, `logprobs`,
/// `stream`) and how the client runs it (priority, timeout, caching).
///
/// ```
/// use std::time::Duration;
/// use brisk_core::Priority;
/// use brisk_generator::openai::{ChatRequest, Message};
///
/// let request = ChatRequest::new([
///     Message::system("You write one tweet, under 280 characters."),
///     Message::user("Announce our new rate limiter."),
/// ])
/// .temperature(0.7)
/// .max_tokens(80)
/// .logprobs(true)
/// .priority(Priority::High)
/// .timeout(Duration::from_secs(5));
/// assert_eq!(request.prompt_text(), "Announce our new rate limiter.");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[must_use]
pub struct ChatRequest {
    pub(crate) messages: Vec<Message>,
    pub(crate) model: Option<String>,
    pub(crate) temperature: Option<f32>,
    pub(crate) max_tokens: Option<u32>,
    pub(crate) n: u32,
    pub(crate) stop: Vec<String>,
    pub(crate) logprobs: bool,
    pub(crate) stream: bool,
    pub(crate) priority: Priority,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cache: bool,
}

impl ChatRequest {
    /// A request with these messages and the defaults: the client's model
    /// and `max_tokens`, the server's temperature, `n` 1, no stop
    /// sequences, no logprobs, no streaming, [`Priority::Normal`], the
    /// client's default timeout, cached.
    pub fn new(messages: impl IntoIterator<Item = Message>) -> Self {
        Self {
            messages: messages.into_iter().collect(),
            model: None,
            temperature: None,
            max_tokens: None,
            n: 1,
            stop: Vec::new(),
            logprobs: false,
            stream: false,
            priority: Priority::Normal,
            timeout: None,
            cache: true,
        }
    }

    /// A request of one user message.
    pub fn prompt(text: impl Into<String>) -> Self {
        Self::new([Message::user(text)])
    }

    /// The model, instead of the client's default.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sampling temperature, 0 to 2. Default: not sent (the server's
    /// default, 1 for OpenAI).
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// The most tokens to generate per choice, at least 1. Default: the
    /// client's `default_max_tokens`. Also what the token limiter reserves.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// How many choices to generate, 1 to 128. Default 1.
    pub fn n(mut self, n: u32) -> Self {
        self.n = n;
        self
    }

    /// Up to 4 sequences where generation stops. Default none.
    pub fn stop(mut self, stop: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.stop = stop.into_iter().map(Into::into).collect();
        self
    }

    /// Asks for token log-probabilities, from which each choice's
    /// confidence is computed. Default off.
    pub fn logprobs(mut self, logprobs: bool) -> Self {
        self.logprobs = logprobs;
        self
    }

    /// Receives the answer as server-sent events (`data: {...}` chunks,
    /// then `data: [DONE]`), assembled into the same answer as without.
    /// Default off.
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }

    /// The request's priority in the client's queue. Default
    /// [`Priority::Normal`].
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// How long the caller waits for the API, from the call (queueing,
    /// rate limits, retries and the response included); after it, the
    /// local fallback answers. Default: the client's `default_timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether the answer may come from, and go into, the response cache.
    /// Default true.
    pub fn cache(mut self, cache: bool) -> Self {
        self.cache = cache;
        self
    }

    /// The messages.
    #[must_use]
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The requested sampling temperature, if set.
    #[must_use]
    pub fn get_temperature(&self) -> Option<f32> {
        self.temperature
    }

    /// The requested `max_tokens`, if set.
    #[must_use]
    pub fn get_max_tokens(&self) -> Option<u32> {
        self.max_tokens
    }

    /// The text of the last user message (empty if there is none): what a
    /// local fallback answers.
    #[must_use]
    pub fn prompt_text(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.content.as_str())
    }

    /// Checks the fields the API would refuse, before anything is sent.
    pub(crate) fn validate(&self) -> Result<(), OpenAiError> {
        let invalid = |field, reason: &str| {
            Err(OpenAiError::InvalidRequest {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.messages.is_empty() {
            return invalid("messages", "must hold at least one message");
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return invalid("temperature", &format!("must be in 0..=2, got {t}"));
        }
        if self.max_tokens == Some(0) {
            return invalid("max_tokens", "must be at least 1");
        }
        if !(1..=128).contains(&self.n) {
            return invalid("n", &format!("must be in 1..=128, got {}", self.n));
        }
        if self.stop.len() > 4 {
            return invalid("stop", &format!("at most 4 sequences, got {}", self.stop.len()));
        }
        if self.model.as_deref() == Some("") {
            return invalid("model", "must not be empty");
        }
        if self.timeout == Some(Duration::ZERO) {
            return invalid("timeout", "must be greater than zero");
        }
        Ok(())
    }
}

/// The JSON body sent to `POST {base_url}/chat/completions`.
#[derive(Serialize)]
pub(crate) struct WireRequest<'a> {
    pub(crate) model: &'a str,
    pub(crate) messages: &'a [Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) temperature: Option<f32>,
    pub(crate) max_tokens: u32,
    pub(crate) n: u32,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub(crate) stop: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) logprobs: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stream_options: Option<StreamOptions>,
}

/// `stream_options`: ask for the usage in the last chunk of a stream.
#[derive(Serialize)]
pub(crate) struct StreamOptions {
    pub(crate) include_usage: bool,
}

/// Tokens a request will use at most, estimated before the call: about
/// four bytes per token for the prompt (OpenAI's rule of thumb) plus 4 per
/// message and 3 for the reply's priming, and `max_tokens` per choice.
pub(crate) fn estimate_tokens(messages: &[Message], max_tokens: u32, n: u32) -> (u64, u64) {
    let prompt: u64 = messages
        .iter()
        .map(|m| (m.content.len() as u64).div_ceil(4) + 4)
        .sum::<u64>()
        + 3;
    (prompt, u64::from(max_tokens) * u64::from(n))
}
