//! The one HTTP client of the engine: builds requests (bearer auth,
//! User-Agent, zstd for bodies of 1 KiB or more), retries as
//! [`super::retry`] decides, and maps statuses to [`SyncError`]s.
//! It moves bytes through a [`Transport`]; it never formats the API key into
//! anything but the `Authorization` header.

use super::error::{ErrorKind, SyncError};
use super::io::{Clock, HttpRequest, HttpResponse, Method, Transport, TransportError};
use super::limits::{COMPRESS_THRESHOLD, ZSTD_LEVEL};
use super::protocol::ErrorBody;
use super::retry::{self, Decision, Outcome, Repeat};
use std::time::Duration;

pub const USER_AGENT: &str = concat!("confab-sync/", env!("CARGO_PKG_VERSION"), " (wasm32-wasip2)");

/// Counters of what went over the wire, for the sync report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireStats {
    pub requests: u64,
    pub wire_bytes: u64,
    pub retries: u32,
}

pub struct Client<T, C> {
    transport: T,
    clock: C,
    base_url: String,
    authorization: String,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    /// Retry waits stop once this much time has been spent waiting in total.
    wait_budget: Duration,
    waited: Duration,
    pub stats: WireStats,
}

impl<T: Transport, C: Clock> Client<T, C> {
    pub fn new(transport: T, clock: C, base_url: &str, api_key: &str) -> Self {
        Client {
            transport,
            clock,
            base_url: base_url.trim_end_matches('/').to_string(),
            authorization: format!("Bearer {api_key}"),
            compressor: None,
            wait_budget: Duration::from_secs(600),
            waited: Duration::ZERO,
            stats: WireStats::default(),
        }
    }

    /// Bound the total time spent waiting between retries (e.g. a hook must be quick).
    pub fn set_wait_budget(&mut self, budget: Duration) {
        self.wait_budget = budget;
        self.waited = Duration::ZERO;
    }

    pub fn clock(&mut self) -> &mut C {
        &mut self.clock
    }

    /// Send a request and return the body of its 2xx answer.
    pub fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        repeat: Repeat,
    ) -> Result<Vec<u8>, SyncError> {
        let request = self.build(method, path, body)?;
        let mut retries = 0;
        loop {
            self.stats.requests += 1;
            self.stats.wire_bytes += request.body.len() as u64;
            let (outcome, error) = match self.transport.send(&request) {
                Ok(resp) if (200..300).contains(&resp.status) => return Ok(resp.body),
                Ok(resp) => (
                    Outcome::Status {
                        status: resp.status,
                        retry_after: retry::parse_retry_after(resp.header("retry-after")),
                    },
                    status_error(path, &resp),
                ),
                Err(TransportError::Connect(m)) => (
                    Outcome::NotConnected,
                    SyncError::new(ErrorKind::Transport, format!("{path}: cannot reach the backend: {m}")),
                ),
                Err(TransportError::Lost(m)) => (
                    Outcome::AnswerLost,
                    SyncError::new(ErrorKind::Transport, format!("{path}: no answer from the backend: {m}")),
                ),
            };
            let jitter = self.clock.jitter_seed() % 1000;
            match retry::decide(outcome, repeat, retries, jitter) {
                Decision::RetryAfter(wait) if self.waited + wait <= self.wait_budget => {
                    self.clock.sleep(wait);
                    self.waited += wait;
                    retries += 1;
                    self.stats.retries += 1;
                }
                _ => return Err(error),
            }
        }
    }

    /// Wait between two recoveries of a failed chunk, within the same budget.
    /// Returns false when the budget is spent.
    pub fn pause(&mut self, wait: Duration) -> bool {
        if self.waited + wait > self.wait_budget {
            return false;
        }
        self.clock.sleep(wait);
        self.waited += wait;
        true
    }

    fn build(&mut self, method: Method, path: &str, body: Option<&[u8]>) -> Result<HttpRequest, SyncError> {
        let mut headers = vec![
            ("authorization".to_string(), self.authorization.clone()),
            ("user-agent".to_string(), USER_AGENT.to_string()),
            ("accept".to_string(), "application/json".to_string()),
        ];
        let body = match body {
            None => Vec::new(),
            Some(raw) => {
                headers.push(("content-type".into(), "application/json".into()));
                if raw.len() >= COMPRESS_THRESHOLD {
                    headers.push(("content-encoding".into(), "zstd".into()));
                    self.compress(raw)?
                } else {
                    raw.to_vec()
                }
            }
        };
        Ok(HttpRequest { method, url: format!("{}{}", self.base_url, path), headers, body })
    }

    fn compress(&mut self, raw: &[u8]) -> Result<Vec<u8>, SyncError> {
        if self.compressor.is_none() {
            let c = zstd::bulk::Compressor::new(ZSTD_LEVEL)
                .map_err(|e| SyncError::io(format!("zstd: {e}")))?;
            self.compressor = Some(c);
        }
        let compressor = self.compressor.as_mut().expect("set above");
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(raw.len()));
        compressor
            .compress_to_buffer(raw, &mut out)
            .map_err(|e| SyncError::io(format!("zstd: {e}")))?;
        Ok(out)
    }
}

/// Map a non-2xx answer to the error a host can match on.
fn status_error(path: &str, resp: &HttpResponse) -> SyncError {
    let text = serde_json::from_slice::<ErrorBody>(&resp.body)
        .map(|b| b.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(&resp.body).chars().take(300).collect());
    let text = if text.trim().is_empty() { "no explanation given".to_string() } else { text };
    let status = resp.status;
    let (kind, message) = match status {
        401 | 403 => (
            ErrorKind::Unauthorized,
            format!("the backend refused the API key ({status} on {path}): check it with `validate` or set a new one"),
        ),
        404 => (ErrorKind::SessionNotFound, format!("{path}: not found on the backend (404): {text}")),
        409 => (ErrorKind::Conflict, format!("{path}: already exists (409): {text}")),
        429 => (ErrorKind::RateLimited, format!("{path}: rate limited by the backend (429) after every retry")),
        413 => (ErrorKind::Http(413), format!("{path}: body too large (413), a chunk-sizing bug: {text}")),
        _ => (ErrorKind::Http(status), format!("{path}: HTTP {status}: {text}")),
    };
    SyncError::new(kind, message)
}
