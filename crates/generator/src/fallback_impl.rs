//! The local model as the `openai` client's fallback.

use crate::openai::{ChatRequest, LocalAnswer, LocalFallback};
use crate::{GenerateOptions, Generator};

/// Answers with a generated post: the prompt's words that the corpus knows
/// become the topic (the rarest first, up to three tried), the request's
/// `max_tokens` bounds the length (at 4 chars a token), and the answer
/// carries the post's confidence.
impl LocalFallback for Generator {
    fn answer(&self, request: &ChatRequest) -> Result<LocalAnswer, String> {
        let mut opts = GenerateOptions::new();
        if let Some(max) = request.get_max_tokens() {
            opts = opts.max_chars((max as usize).saturating_mul(4).min(280));
        }
        if let Some(t) = request.get_temperature()
            && t > 0.0
        {
            opts = opts.temperature(t);
        }
        // The prompt's words the corpus knows, rarest first (the most
        // telling); up to three are tried as the topic.
        let mut known: Vec<(usize, &str)> = request
            .prompt_text()
            .split(|c: char| !(c.is_alphanumeric() || c == '#' || c == '\'' || c == '-'))
            .filter(|w| w.chars().count() >= 3)
            .filter_map(|w| {
                let ids = self.topic_ids(w).ok()?;
                Some((ids.iter().map(|&id| self.index.count(id)).sum(), w))
            })
            .collect();
        known.sort_unstable();
        known.dedup_by(|a, b| a.1.eq_ignore_ascii_case(b.1));
        for (_, word) in known.into_iter().take(3) {
            if let Ok(post) = self.generate(&opts.clone().topic(word)) {
                return Ok(LocalAnswer::new(post.text, Some(post.confidence.score)));
            }
        }
        self.generate(&opts)
            .map(|post| LocalAnswer::new(post.text, Some(post.confidence.score)))
            .map_err(|e| e.to_string())
    }
}
