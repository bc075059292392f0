//! The engine's error, shaped like the WIT `sync-error` variant so a host can
//! match on it. Messages are one line and never contain the API key: they are
//! built from request paths and server answers, never from headers.

use std::fmt;

/// Which kind of failure, as the WIT variant names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotInitialized,
    Unauthorized,
    SessionNotFound,
    RateLimited,
    Conflict,
    /// Any other unexpected HTTP status.
    Http(u16),
    Transport,
    Io,
    InvalidConfig,
    InvalidInput,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncError {
    pub kind: ErrorKind,
    pub message: String,
}

impl SyncError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        // One line, always: a server's multi-line body must not break a log line.
        if message.contains(['\n', '\r']) {
            message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        SyncError { kind, message }
    }
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, message)
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message)
    }
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    pub fn not_initialized() -> Self {
        Self::new(
            ErrorKind::NotInitialized,
            "the session is not initialized: call init first",
        )
    }

    /// Errors after which nothing else of this call can succeed: the whole
    /// sync stops instead of trying the other files.
    pub fn stops_everything(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Unauthorized | ErrorKind::SessionNotFound | ErrorKind::NotInitialized
        )
    }
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SyncError {}
