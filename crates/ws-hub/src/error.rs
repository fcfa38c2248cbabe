//! The hub's one error type.

use std::borrow::Cow;

/// What went wrong in a hub operation.
///
/// Each variant carries what a caller needs to act: the limit that was hit,
/// the topic that was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The hub already holds `limit` connections.
    #[error("the hub holds its maximum of {limit} connections")]
    TooManyConnections {
        /// The configured `max_connections`.
        limit: usize,
    },
    /// `user` already holds `limit` connections.
    #[error("user {user:?} holds its maximum of {limit} connections")]
    TooManyConnectionsForUser {
        /// The user.
        user: String,
        /// The configured `max_connections_per_user`.
        limit: usize,
    },
    /// The connection is already subscribed to `limit` topics.
    #[error("the connection is subscribed to its maximum of {limit} topics")]
    TooManyTopicsForConnection {
        /// The configured `max_topics_per_connection`.
        limit: usize,
    },
    /// The hub already holds `limit` topics and this one would be new.
    #[error("the hub holds its maximum of {limit} topics")]
    TooManyTopics {
        /// The configured `max_topics`.
        limit: usize,
    },
    /// A topic name is empty, too long or holds control characters.
    #[error("invalid topic name {topic:?}: {reason}")]
    InvalidTopic {
        /// The name given.
        topic: String,
        /// Why it was refused.
        reason: Cow<'static, str>,
    },
    /// The connection has been closed (or never existed).
    #[error("connection {id} is closed")]
    ConnectionClosed {
        /// Its id.
        id: u64,
    },
    /// The hub is shutting down and takes no new connections.
    #[error("the hub is shutting down")]
    ShuttingDown,
    /// A data value could not be encoded as JSON.
    #[error("cannot encode the message as JSON: {0}")]
    Encode(String),
    /// The cross-process fan-out failed (Redis unreachable); the message
    /// was delivered locally only.
    #[error("fan-out failed, delivered locally only: {0}")]
    Fanout(String),
}
