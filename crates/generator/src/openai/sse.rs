//! Server-sent events: the streamed form of a chat completion.
//
// The body is `data: {json chunk}` events separated by blank lines and
// ending with `data: [DONE]`. Bytes arrive in arbitrary pieces (a chunk may
// end mid-line or mid-UTF-8 character), so the decoder buffers until a line
// is complete and only then decodes it. Each JSON chunk carries deltas per
// choice index; the assembler appends them (text and logprobs) and keeps
// the finish reason, the model and the usage (sent in the last chunk when
// `stream_options.include_usage` is honoured). Comments (`: keep-alive`)
// and the `event:`/`id:`/`retry:` fields are ignored.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::OpenAiError;
use super::response::{
    Choice, Completion, TokenLogprob, Usage, WireLogprobs, WireUsage, confidence, excerpt, token_logprobs,
};

/// One streamed chunk (`chat.completion.chunk`).
#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    logprobs: Option<WireLogprobs>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Default)]
struct Partial {
    text: String,
    logprobs: Vec<TokenLogprob>,
    finish_reason: Option<String>,
}

/// Decodes an SSE body piece by piece and assembles the completion.
pub(crate) struct StreamAssembler {
    line: Vec<u8>,
    data: String,
    has_data: bool,
    done: bool,
    events: usize,
    model: Option<String>,
    usage: Option<Usage>,
    choices: BTreeMap<u32, Partial>,
}

/// The longest line accepted (1 MiB): a server that never sends a newline
/// is an error, not a memory leak.
const MAX_LINE: usize = 1 << 20;

impl StreamAssembler {
    pub(crate) fn new() -> Self {
        Self {
            line: Vec::new(),
            data: String::new(),
            has_data: false,
            done: false,
            events: 0,
            model: None,
            usage: None,
            choices: BTreeMap::new(),
        }
    }

    /// Whether `data: [DONE]` has arrived.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds the next piece of the body.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<(), OpenAiError> {
        let mut rest = bytes;
        while !rest.is_empty() && !self.done {
            if let Some(pos) = rest.iter().position(|&b| b == b'\n') {
                self.line.extend_from_slice(&rest[..pos]);
                rest = &rest[pos + 1..];
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.on_line(&line)?;
            } else {
                self.line.extend_from_slice(rest);
                rest = &[];
            }
            if self.line.len() > MAX_LINE {
                return Err(OpenAiError::Malformed {
                    message: format!("an event line longer than {MAX_LINE} bytes"),
                });
            }
        }
        Ok(())
    }

    fn on_line(&mut self, line: &[u8]) -> Result<(), OpenAiError> {
        if line.is_empty() {
            return self.dispatch();
        }
        let Ok(line) = std::str::from_utf8(line) else {
            return Err(OpenAiError::Malformed {
                message: format!("an event line is not UTF-8: {}", excerpt(line)),
            });
        };
        if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(value);
            self.has_data = true;
        }
        // Comments (":...") and other fields (event, id, retry) carry
        // nothing a chat completion needs.
        Ok(())
    }

    fn dispatch(&mut self) -> Result<(), OpenAiError> {
        if !self.has_data {
            return Ok(());
        }
        let data = std::mem::take(&mut self.data);
        self.has_data = false;
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: WireChunk = serde_json::from_str(&data).map_err(|e| OpenAiError::Malformed {
            message: format!(
                "event {} is not a chat completion chunk ({e}): {}",
                self.events + 1,
                excerpt(data.as_bytes())
            ),
        })?;
        self.events += 1;
        if let Some(error) = chunk.error {
            return Err(OpenAiError::Malformed {
                message: format!("the stream reported an error: {error}"),
            });
        }
        if chunk.model.is_some() {
            self.model = chunk.model;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        for c in chunk.choices {
            let partial = self.choices.entry(c.index).or_default();
            if let Some(text) = c.delta.and_then(|d| d.content) {
                partial.text.push_str(&text);
            }
            partial.logprobs.extend(token_logprobs(c.logprobs));
            if c.finish_reason.is_some() {
                partial.finish_reason = c.finish_reason;
            }
        }
        Ok(())
    }

    /// The assembled completion, once the body has ended.
    pub(crate) fn finish(mut self, requested_model: &str) -> Result<Completion, OpenAiError> {
        if !self.done {
            // A last event without its blank line still counts.
            if !self.line.is_empty() {
                let line = std::mem::take(&mut self.line);
                self.on_line(&line)?;
            }
            self.dispatch()?;
        }
        if self.choices.is_empty() {
            return Err(OpenAiError::Malformed {
                message: format!(
                    "the stream ended after {} chunk(s) without any choice",
                    self.events
                ),
            });
        }
        let finished = self.choices.values().all(|p| p.finish_reason.is_some());
        if !self.done && !finished {
            return Err(OpenAiError::Malformed {
                message: "the stream ended before `data: [DONE]` or a finish reason".to_owned(),
            });
        }
        let choices = self
            .choices
            .into_iter()
            .map(|(index, p)| Choice {
                index,
                confidence: confidence(p.logprobs.iter().map(|t| t.logprob)),
                text: p.text,
                finish_reason: p.finish_reason,
                logprobs: p.logprobs,
            })
            .collect();
        Ok(Completion {
            model: self.model.unwrap_or_else(|| requested_model.to_owned()),
            choices,
            usage: self.usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = concat!(
        ": keep-alive\n\n",
        "data: {\"model\":\"m1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},",
        "\"logprobs\":{\"content\":[{\"token\":\"Hel\",\"logprob\":-0.5}]}}]}\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo é\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn assembles_whatever_the_piece_boundaries() {
        for size in [1, 2, 3, 7, 64, BODY.len()] {
            let mut a = StreamAssembler::new();
            for piece in BODY.as_bytes().chunks(size) {
                a.feed(piece).unwrap();
            }
            assert!(a.is_done());
            let c = a.finish("asked").unwrap();
            assert_eq!(c.model, "m1");
            assert_eq!(c.choices.len(), 1);
            assert_eq!(c.choices[0].text, "Hello é");
            assert_eq!(c.choices[0].finish_reason.as_deref(), Some("stop"));
            assert_eq!(c.choices[0].logprobs.len(), 1);
            assert_eq!(
                c.usage,
                Some(Usage {
                    prompt_tokens: 7,
                    completion_tokens: 2
                })
            );
        }
    }

    #[test]
    fn a_bad_chunk_is_an_error_naming_it() {
        let mut a = StreamAssembler::new();
        let err = a.feed(b"data: {\"choices\": [\n\n").unwrap_err();
        assert!(
            matches!(err, OpenAiError::Malformed { ref message } if message.contains("event 1")),
            "{err}"
        );
    }

    #[test]
    fn a_cut_stream_is_an_error() {
        let mut a = StreamAssembler::new();
        a.feed(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n")
            .unwrap();
        assert!(matches!(a.finish("m"), Err(OpenAiError::Malformed { .. })));
    }
}
