//! The local model as the `openai` client's fallback.

use brisk_generator::Generator;
use brisk_generator::openai::{ChatRequest, LocalFallback};

use crate::corpus;

#[test]
fn generator_answers_a_chat_request_on_its_topic() {
    let mut g = Generator::builder().build().unwrap();
    g.train_texts(corpus::texts(300, 23)).unwrap();
    let answer = g
        .answer(&ChatRequest::prompt("Write a post about the garden please"))
        .unwrap();
    assert!(answer.text.contains("garden"), "{answer:?}");
    let confidence = answer.confidence.unwrap();
    assert!(confidence > 0.0 && confidence <= 1.0, "{answer:?}");
    assert!(g.confidence(&answer.text).novel);
    // No known word in the prompt: still a post, of any topic.
    let answer = g.answer(&ChatRequest::prompt("zzzz qqqq")).unwrap();
    assert!(!answer.text.is_empty());
    // An empty model says why it cannot answer.
    let empty = Generator::builder().build().unwrap();
    let err = empty.answer(&ChatRequest::prompt("anything")).unwrap_err();
    assert!(err.contains("empty corpus"), "{err}");
}
