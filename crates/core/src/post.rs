//! An ingested short text and the rules it must pass.

use serde::{Deserialize, Serialize};

use crate::{ContentHash, Timestamp};

/// A short text brisk takes in: a tweet, a comment, an email, a news item.
///
/// Build one with [`Post::new`] and the `with_*` methods; check it with
/// [`Post::validate`] before storing it.
///
/// ```
/// use brisk_core::{Post, PostLimits, Timestamp};
///
/// let post = Post::new("1", "Shipping $ABC today 🚀", Timestamp::from_unix_millis(1_795_343_400_000))
///     .with_author("@abc")
///     .with_source("twitter");
/// post.validate(&PostLimits::default())?;
/// assert_eq!(post.content_hash().to_string().len(), 32);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Post {
    /// The identifier the source gave it (or one brisk assigned).
    pub id: String,
    /// The text itself.
    pub text: String,
    /// Who wrote it (a handle, an address, a name); may be empty.
    #[serde(default)]
    pub author: String,
    /// Where it came from (`"twitter"`, `"rss"`, `"email"`, ...); may be empty.
    #[serde(default)]
    pub source: String,
    /// When it was written.
    pub created_at: Timestamp,
    /// How it was received, where the source reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement: Option<Engagement>,
    /// Its language as a BCP 47 tag (`"en"`, `"pt-BR"`), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// Engagement counts of a post. Missing counts deserialize as zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Engagement {
    /// Likes, favourites or upvotes.
    #[serde(default)]
    pub likes: u64,
    /// Reposts, retweets or shares.
    #[serde(default)]
    pub reposts: u64,
    /// Replies or comments.
    #[serde(default)]
    pub replies: u64,
    /// Views or impressions.
    #[serde(default)]
    pub views: u64,
}

impl Engagement {
    /// Counts from likes, reposts, replies and views.
    #[must_use]
    pub const fn new(likes: u64, reposts: u64, replies: u64, views: u64) -> Self {
        Self {
            likes,
            reposts,
            replies,
            views,
        }
    }

    /// Interactions of any kind: likes + reposts + replies (views excluded),
    /// saturating.
    #[must_use]
    pub const fn interactions(&self) -> u64 {
        self.likes
            .saturating_add(self.reposts)
            .saturating_add(self.replies)
    }
}

impl Post {
    /// A post with an id, a text and a creation time; author and source empty.
    pub fn new(id: impl Into<String>, text: impl Into<String>, created_at: Timestamp) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
            author: String::new(),
            source: String::new(),
            created_at,
            engagement: None,
            language: None,
        }
    }

    /// Sets the author.
    #[must_use]
    pub fn with_author(mut self, author: impl Into<String>) -> Self {
        self.author = author.into();
        self
    }

    /// Sets the source.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Sets the engagement counts.
    #[must_use]
    pub fn with_engagement(mut self, engagement: Engagement) -> Self {
        self.engagement = Some(engagement);
        self
    }

    /// Sets the language tag.
    #[must_use]
    pub fn with_language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// The [`ContentHash`] of the text alone: two posts with the same text
    /// share it, whoever wrote them.
    #[must_use]
    pub fn content_hash(&self) -> ContentHash {
        ContentHash::of(&self.text)
    }

    /// Checks the post against `limits`, returning the first rule it breaks.
    ///
    /// The rules, in the order they are checked:
    /// 1. no field contains a NUL byte ([`PostError::NulByte`]);
    /// 2. `id` and `text` are not empty or only whitespace ([`PostError::Empty`]);
    /// 3. `text` has at most `limits.max_text_chars` characters, and `id`,
    ///    `author`, `source` and `language` at most `limits.max_field_chars`
    ///    ([`PostError::TooLong`]).
    ///
    /// Lengths count Unicode scalar values (`char`s), not bytes.
    ///
    /// # Errors
    ///
    /// The first rule broken, naming the field.
    pub fn validate(&self, limits: &PostLimits) -> Result<(), PostError> {
        let fields = [
            ("id", self.id.as_str()),
            ("text", self.text.as_str()),
            ("author", self.author.as_str()),
            ("source", self.source.as_str()),
            ("language", self.language.as_deref().unwrap_or("")),
        ];
        for (field, value) in fields {
            if let Some(offset) = value.bytes().position(|b| b == 0) {
                return Err(PostError::NulByte { field, offset });
            }
        }
        for (field, value) in [("id", &self.id), ("text", &self.text)] {
            if value.trim().is_empty() {
                return Err(PostError::Empty { field });
            }
        }
        for (field, value) in fields {
            let max = if field == "text" {
                limits.max_text_chars
            } else {
                limits.max_field_chars
            };
            // Counting chars is O(n): skip it when even the byte length fits.
            if value.len() > max {
                let len = value.chars().count();
                if len > max {
                    return Err(PostError::TooLong { field, len, max });
                }
            }
        }
        Ok(())
    }
}

/// The limits [`Post::validate`] checks against.
///
/// ```
/// use brisk_core::PostLimits;
///
/// let tweets = PostLimits::default().max_text_chars(280);
/// assert_eq!(tweets.text_limit(), 280);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostLimits {
    max_text_chars: usize,
    max_field_chars: usize,
}

impl PostLimits {
    /// The default maximum length of a text: 10,000 characters, room for an
    /// email or a news item. Tweets need 280.
    pub const DEFAULT_MAX_TEXT_CHARS: usize = 10_000;
    /// The default maximum length of `id`, `author`, `source` and `language`: 256 characters.
    pub const DEFAULT_MAX_FIELD_CHARS: usize = 256;

    /// Sets the maximum length of `text`, in characters. Default 10,000.
    #[must_use]
    pub const fn max_text_chars(mut self, max: usize) -> Self {
        self.max_text_chars = max;
        self
    }

    /// Sets the maximum length of the other string fields, in characters. Default 256.
    #[must_use]
    pub const fn max_field_chars(mut self, max: usize) -> Self {
        self.max_field_chars = max;
        self
    }

    /// The maximum length of `text`.
    #[must_use]
    pub const fn text_limit(&self) -> usize {
        self.max_text_chars
    }

    /// The maximum length of the other string fields.
    #[must_use]
    pub const fn field_limit(&self) -> usize {
        self.max_field_chars
    }
}

impl Default for PostLimits {
    fn default() -> Self {
        Self {
            max_text_chars: Self::DEFAULT_MAX_TEXT_CHARS,
            max_field_chars: Self::DEFAULT_MAX_FIELD_CHARS,
        }
    }
}

/// The rule a [`Post`] broke.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// A required field is empty or only whitespace.
    #[error("post {field} is empty")]
    Empty {
        /// The field (`"id"` or `"text"`).
        field: &'static str,
    },
    /// A field is longer than its limit.
    #[error("post {field} is {len} characters long, over the maximum of {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field contains a NUL byte, which PostgreSQL text cannot store.
    #[error("post {field} contains a NUL byte at byte offset {offset}")]
    NulByte {
        /// The field.
        field: &'static str,
        /// The byte offset of the first NUL.
        offset: usize,
    },
}

impl PostError {
    /// A short, stable name of the rule (`"empty"`, `"too_long"`,
    /// `"nul_byte"`), for machine-readable error bodies.
    #[must_use]
    pub const fn rule(&self) -> &'static str {
        match self {
            PostError::Empty { .. } => "empty",
            PostError::TooLong { .. } => "too_long",
            PostError::NulByte { .. } => "nul_byte",
        }
    }

    /// The field that broke the rule.
    #[must_use]
    pub const fn field(&self) -> &'static str {
        match self {
            PostError::Empty { field }
            | PostError::TooLong { field, .. }
            | PostError::NulByte { field, .. } => field,
        }
    }
}
