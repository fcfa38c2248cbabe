//! Authentication on connect: the hook and its JWT implementation.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Who a connection is, once authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user (a JWT's `sub`); connections per user are limited by it and
    /// [`Hub::publish_to_user`](crate::Hub::publish_to_user) reaches it.
    pub user: String,
    /// Whether this client may publish to topics.
    pub can_publish: bool,
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed: {reason}")]
pub struct AuthError {
    /// What was wrong (expired, bad signature, malformed).
    pub reason: String,
}

/// Checks the token a client presents (in the `token` query parameter of
/// the upgrade request, or in an `auth` message) and says who it is.
///
/// Called once per connection, on the connection's task: keep it quick.
pub trait Authenticator: Send + Sync + fmt::Debug + 'static {
    /// The identity `token` proves.
    ///
    /// # Errors
    ///
    /// An [`AuthError`] when the token is not acceptable; the client is
    /// then closed with 4001 (or refused with HTTP 401 at upgrade).
    fn authenticate(&self, token: &str) -> Result<Identity, AuthError>;
}

/// HS256 JSON Web Tokens, through the jsonwebtoken crate.
///
/// The user is the `sub` claim; `exp` is required and checked (60 s of
/// leeway); an optional boolean claim `publish` allows publishing.
///
/// ```
/// use brisk_ws_hub::{Authenticator, JwtAuthenticator};
/// use jsonwebtoken::{EncodingKey, Header, encode};
///
/// let auth = JwtAuthenticator::hs256(b"server secret");
/// let claims = serde_json::json!({"sub": "alice", "exp": 4_102_444_800u64, "publish": true});
/// let token = encode(&Header::default(), &claims, &EncodingKey::from_secret(b"server secret"))?;
/// let who = auth.authenticate(&token)?;
/// assert_eq!(who.user, "alice");
/// assert!(who.can_publish);
/// assert!(auth.authenticate("not.a.token").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JwtAuthenticator {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("algorithm", &"HS256")
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    publish: bool,
}

impl JwtAuthenticator {
    /// Tokens signed with HMAC-SHA256 and `secret`.
    #[must_use]
    pub fn hs256(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 60;
        Self {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }
}

impl Authenticator for JwtAuthenticator {
    fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| AuthError {
                reason: e.to_string(),
            })?;
        Ok(Identity {
            user: data.claims.sub,
            can_publish: data.claims.publish,
        })
    }
}
