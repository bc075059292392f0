//! A local, confab-compatible backend: the host binary's embedded default
//! server and the test server of every end-to-end test.
//!
//! It enforces every rule of `shared/docs/backend-api.md` (and, where that
//! document is silent, what the real server — ConfabulousDev/confab-web —
//! does), so that traffic it accepts is traffic the real server accepts.
//!
//! Architecture, one concern per module:
//! - [`limits`]: every limit as a named constant, with its source.
//! - `rules`: pure checks — headers, body decoding, each endpoint's JSON.
//! - `routes`: the route table and the handlers.
//! - `store`: sessions, files, contiguity, ownership, the disk mirror.
//! - `ratelimit`, `faults`: per-user token buckets; injected failures.
//! - `http`: the hyper server, the order of checks, the request log.
//!
//! The server runs on its own thread with its own tokio runtime, so it can
//! be used from synchronous code and tests; dropping the [`Backend`] stops
//! it.

mod error;
mod faults;
mod http;
pub mod limits;
mod ratelimit;
mod routes;
mod rules;
mod store;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use anyhow::Context as _;

/// The API key of the embedded default backend: fixed, so a host started
/// without configuration and its client agree on it; shaped like a key the
/// server mints (`cfb_` + 40 of base64url, `-` and `_` included), so it
/// passes the same checks.
pub const DEFAULT_LOCAL_API_KEY: &str = "cfb_rISgKWag-SoryOL4lyuK_v4f5I0aHW1O5c4D8nfR";

/// How to start a [`Backend`].
#[derive(Clone)]
pub struct BackendConfig {
    /// Accepted keys; the key at index i is user i + 1. Each must look like
    /// a key the server mints, `cfb_` + 40 of base64url ([`Backend::start`]
    /// refuses others: the server never hands them out).
    pub api_keys: Vec<String>,
    /// When set, everything is persisted here and reloaded on start.
    pub mirror_dir: Option<PathBuf>,
    /// `None`: no rate limiting.
    pub rate_limit: Option<RateLimit>,
    /// Keep every decoded request body in the request log, so that a test
    /// can search all that was sent (chunk lines, metadata, PATCH and event
    /// bodies), not only what was stored. Off by default: bodies are big.
    pub record_bodies: bool,
    /// The body of the public `GET /api/v1/capabilities` (a flat map of
    /// optional features). `None` answers 404, as a server older than the
    /// endpoint does; a transient failure is a [`Fault`] on its path.
    pub capabilities: Option<serde_json::Value>,
}

/// What the real server advertises today (`capabilities.go`).
pub fn current_capabilities() -> serde_json::Value {
    serde_json::json!({"workflow_files": true, "workflow_journal": true, "opencode_subagents": true})
}

// Hand-written so that a logged config never shows a key.
impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendConfig")
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("mirror_dir", &self.mirror_dir)
            .field("rate_limit", &self.rate_limit)
            .field("record_bodies", &self.record_bodies)
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            api_keys: vec![DEFAULT_LOCAL_API_KEY.to_string()],
            mirror_dir: None,
            rate_limit: None,
            record_bodies: false,
            capabilities: Some(current_capabilities()),
        }
    }
}

/// A per-user token bucket for `/api/v1/sync/*` (the real server's upload
/// limiter).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub burst: u32,
    pub per_second: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            burst: limits::DEFAULT_RATE_BURST,
            per_second: limits::DEFAULT_RATE_PER_SECOND,
        }
    }
}

/// What the backend holds for one session.
#[derive(Clone, Debug)]
pub struct SessionSnapshot {
    pub session_id: String,
    /// What init named (`claude-code` when it named none).
    pub provider: String,
    /// Codex: each thread's `codex_rollout`, by thread uuid.
    pub codex_rollouts: BTreeMap<String, serde_json::Value>,
    pub external_id: String,
    /// The `metadata` object of the last init (cwd, git_info, hostname,
    /// username); `{}` if it sent none.
    pub init_metadata: serde_json::Value,
    /// Every init's `metadata`, first to last, so a test can check that a
    /// re-init sent what the first one did.
    pub init_history: Vec<serde_json::Value>,
    pub transcript_path: String,
    /// Every transcript chunk's `metadata` merged (later fields overwrite).
    pub chunk_metadata: serde_json::Value,
    /// From `PATCH /api/v1/sessions/{external_id}/summary`.
    pub summary_patch: Option<String>,
    /// Each accepted event body.
    pub events: Vec<serde_json::Value>,
    /// Each created link as answered (id, link_type, url, owner, repo, ref,
    /// title, source, session_id).
    pub github_links: Vec<serde_json::Value>,
    /// file_name -> "transcript" / "agent" / "workflow_journal".
    pub file_types: BTreeMap<String, String>,
}

/// One request as the backend saw it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The status answered (for a lost answer: the one that was withheld).
    pub status: u16,
    pub content_encoding: Option<String>,
    pub user_agent: Option<String>,
    /// Body as received.
    pub wire_bytes: usize,
    /// Body after decompression (0 if refused before decoding).
    pub body_bytes: usize,
    /// For `/sync/chunk` requests whose body parsed as a JSON object.
    pub chunk: Option<ChunkRecord>,
    /// Which injected fault met this request, if any.
    pub fault: Option<String>,
    /// The decoded body, with [`BackendConfig::record_bodies`] (else empty).
    pub body: Vec<u8>,
}

/// What a chunk request claimed (whether or not it was accepted).
#[derive(Clone, Debug)]
pub struct ChunkRecord {
    pub file_name: String,
    pub file_type: String,
    pub first_line: u64,
    pub line_count: usize,
}

/// A failure to inject; see [`Backend::inject`].
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer the next `times` requests whose path starts with `path_prefix`
    /// with `status` (and Retry-After if set), without processing them.
    Status {
        path_prefix: String,
        status: u16,
        retry_after_secs: Option<u64>,
        times: u32,
    },
    /// Process (and store) the next `times` matching requests, then drop the
    /// connection without any answer: the answer is lost after the server
    /// stored the chunk.
    LoseAnswer { path_prefix: String, times: u32 },
    /// Sleep `millis` before processing the next `times` matching requests.
    Delay {
        path_prefix: String,
        millis: u64,
        times: u32,
    },
    /// Process (and store) the next `times` matching requests at once, then
    /// wait `millis` before answering: past the client's timeout, the chunk
    /// is stored but the client never hears so.
    SlowAnswer {
        path_prefix: String,
        millis: u64,
        times: u32,
    },
}

/// A running backend on `127.0.0.1`. Stops on [`Backend::shutdown`] or drop.
pub struct Backend {
    shared: Arc<http::Shared>,
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Locks a mutex, surviving poisoning: a panicked test thread must not turn
/// every later request into a panic too.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Backend {
    /// Loads the mirror (if any), binds `127.0.0.1:0` and starts serving on
    /// a thread of its own. Returns once the socket is listening.
    pub fn start(config: BackendConfig) -> anyhow::Result<Backend> {
        if let Some(index) = config
            .api_keys
            .iter()
            .position(|k| !rules::is_api_key_shape(k))
        {
            anyhow::bail!(
                "api_keys[{index}] does not look like a key the server mints (cfb_ + 40 of A-Z a-z 0-9 - _)"
            );
        }
        let store = store::Store::open(config.mirror_dir.clone())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("confab-backend")
            .enable_all()
            .build()
            .context("building the backend's tokio runtime")?;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context("binding the backend to 127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let port = std_listener.local_addr()?.port();
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener)?
        };
        let shared = Arc::new(http::Shared {
            keys: config.api_keys,
            record_bodies: config.record_bodies,
            store: Mutex::new(store),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(faults::FaultQueue::default()),
            limiter: config
                .rate_limit
                .map(|r| Mutex::new(ratelimit::RateLimiter::new(r))),
            capabilities: config.capabilities,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("confab-backend-{port}"))
            .spawn(move || {
                runtime.block_on(http::serve(listener, serving, stopped));
                // Dropping the runtime here cancels every connection task.
                drop(runtime);
            })
            .context("spawning the backend thread")?;
        Ok(Backend {
            shared,
            port,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The stored bytes of a file: its lines joined by `\n`, plus a final
    /// `\n`. Sessions are per user; this looks at user 1 first, then the
    /// others in order.
    pub fn file(&self, external_id: &str, file_name: &str) -> Option<Vec<u8>> {
        lock(&self.shared.store).file(None, external_id, file_name)
    }

    /// A stored file of `provider`'s session `external_id`.
    pub fn file_of(&self, provider: &str, external_id: &str, file_name: &str) -> Option<Vec<u8>> {
        lock(&self.shared.store).file(Some(provider), external_id, file_name)
    }

    /// `provider`'s session `external_id`.
    pub fn session_of(&self, provider: &str, external_id: &str) -> Option<SessionSnapshot> {
        lock(&self.shared.store).snapshot(Some(provider), external_id)
    }

    /// The session's file names, sorted.
    pub fn file_names(&self, external_id: &str) -> Vec<String> {
        lock(&self.shared.store).file_names(None, external_id)
    }

    pub fn session(&self, external_id: &str) -> Option<SessionSnapshot> {
        lock(&self.shared.store).snapshot(None, external_id)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Queues a fault; requests consume faults in injection order (the first
    /// queued fault whose prefix matches the path).
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Stops the server and waits for its thread (the same as dropping).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
