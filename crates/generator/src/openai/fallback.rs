//! The local model that answers when the API cannot.

use std::fmt;

use super::request::ChatRequest;

/// A local answer: the text and its confidence in `[0, 1]`, if the model
/// gives one.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LocalAnswer {
    /// The generated text.
    pub text: String,
    /// Its confidence in `[0, 1]`.
    pub confidence: Option<f64>,
}

impl LocalAnswer {
    /// An answer with this text and confidence.
    pub fn new(text: impl Into<String>, confidence: Option<f64>) -> Self {
        Self {
            text: text.into(),
            confidence,
        }
    }
}

/// A model that answers a [`ChatRequest`] locally when the API fails, times
/// out or its breaker is open (see
/// [`OpenAiClientBuilder::fallback`](super::OpenAiClientBuilder::fallback)).
///
/// Any `Fn(&ChatRequest) -> Result<LocalAnswer, String>` is one:
///
/// ```
/// use brisk_generator::openai::{ChatRequest, LocalAnswer, LocalFallback};
///
/// let canned = |request: &ChatRequest| -> Result<LocalAnswer, String> {
///     Ok(LocalAnswer::new(format!("(offline) {}", request.prompt_text()), Some(0.1)))
/// };
/// let answer = canned.answer(&ChatRequest::prompt("hello")).unwrap();
/// assert_eq!(answer.text, "(offline) hello");
/// ```
pub trait LocalFallback: Send + Sync + 'static {
    /// Answers `request` locally.
    ///
    /// # Errors
    ///
    /// Why the local model could not answer, in words; the caller then gets
    /// [`OpenAiError::FallbackFailed`](super::OpenAiError::FallbackFailed)
    /// with both reasons.
    fn answer(&self, request: &ChatRequest) -> Result<LocalAnswer, String>;
}

impl<F> LocalFallback for F
where
    F: Fn(&ChatRequest) -> Result<LocalAnswer, String> + Send + Sync + 'static,
{
    fn answer(&self, request: &ChatRequest) -> Result<LocalAnswer, String> {
        self(request)
    }
}

/// A boxed fallback that prints as its presence only.
pub(crate) struct Fallback(pub(crate) Box<dyn LocalFallback>);

impl fmt::Debug for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalFallback")
    }
}
