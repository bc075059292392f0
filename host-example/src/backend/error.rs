//! The one way a request is refused: a status and a one-line message that
//! names the broken rule, sent as `{"error": "..."}`.

use std::fmt;

/// A refusal. Every check in the backend returns one instead of panicking,
/// so a malformed request always becomes an ordinary HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        // One line, always: a message built from client input (a serde error,
        // a file name) must not break the "one-line JSON error" promise.
        let message = message.into().replace(['\n', '\r'], " ");
        ApiError { status, message }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(415, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// The JSON body of the answer.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.message })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}
