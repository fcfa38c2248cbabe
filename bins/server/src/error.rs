//! The API's error: `{error, message, request_id}` with the right status.
//
// Handlers return `ApiError`; it becomes a response carrying an `ErrorBody`
// extension and no body. The outer middleware (`http::frame`), which knows
// the request id, renders the JSON. Errors made by layers we do not own (the
// rate limiter's 429, axum's 404/405) are rewritten there into the same shape.

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// An error answered to a client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code (`validation_failed`, `not_found`, ...).
    pub code: &'static str,
    /// What went wrong, naming the field or the limit.
    pub message: Cow<'static, str>,
    /// Seconds to wait before retrying (503, 429).
    pub retry_after: Option<u64>,
}

/// The error's parts, carried to the middleware that renders them.
#[derive(Clone, Debug)]
pub(crate) struct ErrorBody {
    pub(crate) code: &'static str,
    pub(crate) message: Cow<'static, str>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422 `validation_failed`, naming the field.
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("{field}: {reason}"),
        )
    }

    /// 503 `unavailable` with `Retry-After`.
    pub fn unavailable(message: impl Into<Cow<'static, str>>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }

    /// 500 `internal`: the details go to the log, not to the client.
    pub fn internal(what: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "{what} failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{what} failed"),
        )
    }
}

impl From<brisk_db_pool::Error> for ApiError {
    fn from(e: brisk_db_pool::Error) -> Self {
        match e {
            brisk_db_pool::Error::Closed { .. } => Self::unavailable("the database is shutting down", 1),
            other => {
                tracing::error!(error = %other, "database error");
                Self::unavailable("the database is not available", 1)
            }
        }
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            crate::db::DbError::Db(e) => e.into(),
            decode @ crate::db::DbError::Decode { .. } => Self::internal("reading a row", &decode),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(ErrorBody {
            code: self.code,
            message: self.message,
        });
        response
    }
}

/// The code for an error status that came without one.
pub(crate) fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "validation_failed",
        429 => "rate_limited",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    }
}
