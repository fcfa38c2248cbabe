//! The one error type of the local generator.

/// What went wrong training, generating, saving or loading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeneratorError {
    /// The model has no posts with any token (nothing was trained, or every
    /// text was empty).
    #[error("empty corpus: train on at least one post with text")]
    EmptyCorpus,

    /// The corpus is too small for the chain's order: no state has two
    /// different continuations, so every output would copy a post.
    #[error(
        "corpus too small for order {order}: {posts} posts, {tokens} tokens, no state with two continuations{}",
        match suggested_order { Some(o) => format!("; try order {o}, or add posts"), None => "; add posts".to_owned() }
    )]
    CorpusTooSmall {
        /// The chain's order.
        order: usize,
        /// Posts in the corpus.
        posts: usize,
        /// Tokens in the corpus.
        tokens: usize,
        /// A lower order to try, if there is one.
        suggested_order: Option<usize>,
    },

    /// A setting or an argument is out of range.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The setting or argument (`order`, `temperature`, `weight`, ...).
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },

    /// The constraints cannot be met by this model.
    #[error("impossible constraint {constraint}: {reason}")]
    ImpossibleConstraint {
        /// The constraint: `max_chars`, `min_words`, `topic` or `hook`.
        constraint: &'static str,
        /// Why it cannot be met.
        reason: String,
    },

    /// No attempt produced a novel output that meets the constraints; no
    /// copy of a corpus post is ever returned instead.
    #[error(
        "no novel output after {attempts} attempts ({overlap} shared too long a run with the corpus, {constraints} missed a constraint); produced {produced} of {requested}"
    )]
    NoNovelOutput {
        /// Attempts made.
        attempts: usize,
        /// Attempts rejected by the overlap test.
        overlap: usize,
        /// Attempts rejected for a constraint (length, words, topic, hook) or
        /// a dead end.
        constraints: usize,
        /// Outputs produced before giving up (for `generate_many`).
        produced: usize,
        /// Outputs requested.
        requested: usize,
    },

    /// The saved model was written by an incompatible format version.
    #[error("incompatible model format version {found}; this build reads version {supported}")]
    IncompatibleVersion {
        /// The version in the data.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// The data is not a saved model, or is damaged.
    #[error("invalid model data: {0}")]
    InvalidModel(String),

    /// Reading or writing the model failed.
    #[error("model I/O: {0}")]
    Io(#[from] std::io::Error),
}
