//! Test doubles for the sans-I/O core (test builds only): [`MemFs`], an
//! in-memory file system; [`FakeServer`], a small in-memory model of the
//! backend's API behind [`Transport`], with scripted faults; [`FakeClock`],
//! which records waits instead of waiting.
//!
//! Each is a cheap handle over shared state (`Rc`), so a test keeps a clone
//! to grow files, inject faults and inspect what happened while the engine
//! or client owns another. The server enforces the rules of
//! `../shared/docs/backend-api.md` that the engine could break (auth,
//! User-Agent, encodings, the 16 MiB body limit, contiguous chunks), so a
//! test that passes here sends traffic the real server would accept.

use super::io::{
    Clock, FileKind, FileStat, FileSystem, HttpRequest, HttpResponse, InFlight, Method, ReadAt,
    Transport, TransportError,
};
use super::limits::COMPRESS_THRESHOLD;
use super::protocol;
use serde::Deserialize;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Read;
use std::rc::Rc;
use std::time::Duration;

/// A key as the server mints them (base64url, `-` and `_` included); the
/// one [`FakeServer`] accepts unless told otherwise.
pub(crate) const TEST_KEY: &str = "cfb_q3-Zt8_LmW0xKe4-RuY7_nBv2PcH9sJd6Ag1oF5T";
/// The backend's body limit, counted after decompression.
pub(crate) const MAX_BODY_BYTES: usize = 16 << 20;
/// Request bodies up to this size are kept in [`Recorded::body`].
const KEEP_BODY_BYTES: usize = 1 << 20;

// ---------------------------------------------------------------------------
// Files

type FileMap = Rc<RefCell<BTreeMap<String, (Vec<u8>, u64)>>>;

/// An in-memory [`FileSystem`]: absolute path -> (content, mtime in ns).
/// Folders exist when some file lies under them.
#[derive(Clone, Default)]
pub(crate) struct MemFs {
    files: FileMap,
    /// Bumped at every change, so every change gives a new mtime.
    tick: Rc<Cell<u64>>,
    bytes_read: Rc<Cell<u64>>,
    opened: Rc<RefCell<Vec<String>>>,
    listed: Rc<RefCell<Vec<String>>>,
    /// Paths that are not regular files (a FIFO, a socket...): listed and
    /// stat-able, and opening one panics, as a real FIFO would block.
    special: Rc<RefCell<BTreeMap<String, FileKind>>>,
}

impl MemFs {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn make_special(&self, path: &str, kind: FileKind) {
        self.special.borrow_mut().insert(path.to_string(), kind);
    }

    fn next_mtime(&self) -> u64 {
        self.tick.set(self.tick.get() + 1);
        self.tick.get() * 1_000_000_000
    }

    /// Create or replace a file.
    pub(crate) fn write(&self, path: &str, data: impl AsRef<[u8]>) {
        let mtime = self.next_mtime();
        self.files
            .borrow_mut()
            .insert(path.to_string(), (data.as_ref().to_vec(), mtime));
    }

    /// Append to a file (created when missing), as an agent writing does.
    pub(crate) fn append(&self, path: &str, data: impl AsRef<[u8]>) {
        let mtime = self.next_mtime();
        let mut files = self.files.borrow_mut();
        let entry = files.entry(path.to_string()).or_default();
        entry.0.extend_from_slice(data.as_ref());
        entry.1 = mtime;
    }

    /// Delete a file, as a user cleaning old sessions does.
    pub(crate) fn remove(&self, path: &str) {
        self.files.borrow_mut().remove(path);
    }

    /// Bytes handed out by `read_at` since the last [`MemFs::reset_counters`].
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read.get()
    }

    /// Every path given to `open`, in order (successful or not).
    pub(crate) fn opened(&self) -> Vec<String> {
        self.opened.borrow().clone()
    }

    /// Every path given to `list_dir`, in order.
    pub(crate) fn listed(&self) -> Vec<String> {
        self.listed.borrow().clone()
    }

    pub(crate) fn reset_counters(&self) {
        self.bytes_read.set(0);
        self.opened.borrow_mut().clear();
        self.listed.borrow_mut().clear();
    }
}

/// An open [`MemFs`] file: reads see the file as it is now, like a real
/// descriptor on a file that keeps growing.
pub(crate) struct MemFile {
    files: FileMap,
    path: String,
    bytes_read: Rc<Cell<u64>>,
}

impl ReadAt for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, String> {
        let files = self.files.borrow();
        let (data, _) = files.get(&self.path).ok_or("the file was removed")?;
        let start = usize::try_from(offset).map_or(data.len(), |o| o.min(data.len()));
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        self.bytes_read.set(self.bytes_read.get() + n as u64);
        Ok(n)
    }

    fn stat(&self) -> Result<FileStat, String> {
        let files = self.files.borrow();
        let (data, mtime_ns) = files.get(&self.path).ok_or("the file was removed")?;
        Ok(FileStat {
            size: data.len() as u64,
            mtime_ns: *mtime_ns,
        })
    }
}

impl FileSystem for MemFs {
    type File = MemFile;

    fn open_file(&self, path: &str) -> Result<MemFile, String> {
        if let Some(kind) = self.special.borrow().get(path) {
            panic!("{path} ({kind:?}) was opened: a real FIFO would block here for ever");
        }
        self.opened.borrow_mut().push(path.to_string());
        if !self.files.borrow().contains_key(path) {
            return Err("no such file or folder".to_string());
        }
        Ok(MemFile {
            files: self.files.clone(),
            path: path.to_string(),
            bytes_read: self.bytes_read.clone(),
        })
    }

    fn kind(&self, path: &str) -> Result<FileKind, String> {
        if let Some(kind) = self.special.borrow().get(path) {
            return Ok(*kind);
        }
        let files = self.files.borrow();
        if files.contains_key(path) {
            return Ok(FileKind::Regular);
        }
        let prefix = format!("{}/", path.trim_end_matches('/'));
        if files.keys().any(|p| p.starts_with(&prefix)) {
            return Ok(FileKind::Directory);
        }
        Err("no such file or folder".to_string())
    }

    fn write_file(&self, path: &str, bytes: &[u8]) -> Result<(), String> {
        let mut files = self.files.borrow_mut();
        let mtime = files.values().map(|(_, m)| *m).max().unwrap_or(0) + 1;
        files.insert(path.to_string(), (bytes.to_vec(), mtime));
        Ok(())
    }

    fn list_dir(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        self.listed.borrow_mut().push(path.to_string());
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let files = self.files.borrow();
        let special = self.special.borrow();
        let names: BTreeSet<String> = files
            .keys()
            .chain(special.keys())
            .filter_map(|p| p.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        Ok((!names.is_empty()).then(|| names.into_iter().collect()))
    }
}

// ---------------------------------------------------------------------------
// Time

#[derive(Default)]
struct ClockState {
    now: Duration,
    sleeps: Vec<Duration>,
    seed: u64,
}

/// A [`Clock`] that never sleeps: it records each wait and moves `now` on.
#[derive(Clone, Default)]
pub(crate) struct FakeClock {
    state: Rc<RefCell<ClockState>>,
}

impl FakeClock {
    /// `jitter_seed` returns 0: backoff waits are exact.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with_jitter_seed(seed: u64) -> Self {
        let clock = Self::default();
        clock.state.borrow_mut().seed = seed;
        clock
    }

    /// Every wait asked for, in order.
    pub(crate) fn sleeps(&self) -> Vec<Duration> {
        self.state.borrow().sleeps.clone()
    }
}

impl Clock for FakeClock {
    fn sleep(&mut self, duration: Duration) {
        let mut state = self.state.borrow_mut();
        state.sleeps.push(duration);
        state.now += duration;
    }

    fn now(&self) -> Duration {
        self.state.borrow().now
    }

    fn jitter_seed(&mut self) -> u64 {
        self.state.borrow().seed
    }
}

// ---------------------------------------------------------------------------
// The backend

/// What a scripted request meets instead of the normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answer with this status (and `Retry-After: <seconds>`) without processing.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Process the request (a chunk is stored), then lose the answer.
    StoreThenLose,
    /// The connection fails: nothing reaches the server.
    Connect,
    /// Answer with this status and a plain-text body that echoes the
    /// request's `Authorization` header, as a careless proxy would.
    EchoAuthorization(u16),
    /// Answer with this status and exactly this body, unprocessed.
    Body { status: u16, body: Vec<u8> },
}

impl Fault {
    pub(crate) fn status(status: u16) -> Self {
        Fault::Status {
            status,
            retry_after: None,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub method: Method,
    pub url: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// What the client got: a status, or a transport error.
    pub result: Result<u16, TransportError>,
    /// Chunks: `first_line`, `file_name`, number of lines and `metadata`.
    pub first_line: Option<u64>,
    pub file_name: Option<String>,
    pub lines: usize,
    pub metadata: Option<Value>,
    /// Body size on the wire and after decompression.
    pub wire_size: usize,
    pub body_size: usize,
    /// The decompressed body, when at most 1 MiB (empty otherwise).
    pub body: Vec<u8>,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The status the client received, `None` on a transport error.
    pub(crate) fn status(&self) -> Option<u16> {
        self.result.as_ref().ok().copied()
    }
}

struct Session {
    id: String,
    files: BTreeMap<String, Vec<String>>,
    summary: Option<String>,
    links: BTreeSet<String>,
    events: u64,
}

#[derive(Default)]
struct ServerState {
    /// By external id.
    sessions: BTreeMap<String, Session>,
    faults: VecDeque<(Option<String>, Fault)>,
    requests: Vec<Recorded>,
    /// Started requests reach the server only when the engine waits for
    /// their answer (as if the network were slow).
    deferred: bool,
    /// The key this server accepts (`None`: [`TEST_KEY`]).
    key: Option<String>,
    /// An older server without `GET /api/v1/capabilities` (it answers 404).
    no_capabilities: bool,
    in_flight: usize,
    max_in_flight: usize,
}

impl ServerState {
    fn session_by_id(&mut self, id: &str) -> Option<&mut Session> {
        self.sessions.values_mut().find(|s| s.id == id)
    }

    fn create_session(&mut self, external_id: &str) -> &mut Session {
        let n = self.sessions.len() + 1;
        self.sessions
            .entry(external_id.to_string())
            .or_insert_with(|| Session {
                id: format!("srv-{n:04}"),
                files: BTreeMap::new(),
                summary: None,
                links: BTreeSet::new(),
                events: 0,
            })
    }
}

/// An in-memory backend, one user ([`TEST_KEY`]), reached through [`Transport`].
#[derive(Clone, Default)]
pub(crate) struct FakeServer {
    state: Rc<RefCell<ServerState>>,
}

/// A refused request: status and the `{"error": ...}` text.
type Refusal = (u16, String);

#[derive(Deserialize)]
struct InitBody {
    external_id: String,
    transcript_path: String,
    provider: Option<String>,
}

#[derive(Deserialize)]
struct ChunkBody {
    session_id: String,
    file_name: String,
    file_type: String,
    first_line: u64,
    lines: Vec<String>,
    metadata: Option<Value>,
}

#[derive(Deserialize)]
struct EventBody {
    session_id: String,
    event_type: String,
    timestamp: String,
}

#[derive(Deserialize)]
struct SummaryBody {
    summary: String,
}

#[derive(Deserialize)]
struct LinkBody {
    url: String,
}

impl FakeServer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The next request to `path` meets `fault` (faults apply in the order given).
    /// Accept `key` instead of [`TEST_KEY`].
    pub(crate) fn accept_key(&self, key: &str) {
        self.state.borrow_mut().key = Some(key.to_string());
    }

    /// Answer the capabilities probe 404, as a server older than it does.
    pub(crate) fn without_capabilities(&self) {
        self.state.borrow_mut().no_capabilities = true;
    }

    pub(crate) fn fail_next(&self, path: &str, fault: Fault) {
        self.state
            .borrow_mut()
            .faults
            .push_back((Some(path.to_string()), fault));
    }

    /// From now on a started request reaches the server only when the
    /// engine waits for its answer.
    pub(crate) fn defer_answers(&self) {
        self.state.borrow_mut().deferred = true;
    }

    /// The most requests that were under way at once.
    pub(crate) fn max_in_flight(&self) -> usize {
        self.state.borrow().max_in_flight
    }

    /// The next request, whatever its path, meets `fault`.
    pub(crate) fn fail_any(&self, fault: Fault) {
        self.state.borrow_mut().faults.push_back((None, fault));
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.state.borrow().requests.clone()
    }

    /// Paths of every request, in order.
    pub(crate) fn paths(&self) -> Vec<String> {
        self.state
            .borrow()
            .requests
            .iter()
            .map(|r| r.path.clone())
            .collect()
    }

    /// The chunk requests, in order.
    pub(crate) fn chunks(&self) -> Vec<Recorded> {
        self.state
            .borrow()
            .requests
            .iter()
            .filter(|r| r.path == protocol::PATH_CHUNK)
            .cloned()
            .collect()
    }

    pub(crate) fn clear_requests(&self) {
        self.state.borrow_mut().requests.clear();
    }

    pub(crate) fn session_id(&self, external_id: &str) -> Option<String> {
        self.state
            .borrow()
            .sessions
            .get(external_id)
            .map(|s| s.id.clone())
    }

    /// Lines the server holds for a file of a session (empty when none).
    pub(crate) fn lines(&self, external_id: &str, file_name: &str) -> Vec<String> {
        self.state
            .borrow()
            .sessions
            .get(external_id)
            .and_then(|s| s.files.get(file_name))
            .cloned()
            .unwrap_or_default()
    }

    /// Names of the files a session holds.
    pub(crate) fn file_names(&self, external_id: &str) -> Vec<String> {
        self.state
            .borrow()
            .sessions
            .get(external_id)
            .map(|s| s.files.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Make the server hold these lines of a file (another client uploaded
    /// them, or an earlier run did); the session is created when missing.
    pub(crate) fn set_lines(&self, external_id: &str, file_name: &str, lines: &[String]) {
        let mut state = self.state.borrow_mut();
        let session = state.create_session(external_id);
        session.files.insert(file_name.to_string(), lines.to_vec());
    }

    /// Create a session without any file (an earlier session of the user).
    pub(crate) fn add_session(&self, external_id: &str) {
        self.state.borrow_mut().create_session(external_id);
    }

    pub(crate) fn summary(&self, external_id: &str) -> Option<String> {
        self.state
            .borrow()
            .sessions
            .get(external_id)
            .and_then(|s| s.summary.clone())
    }

    pub(crate) fn events(&self, external_id: &str) -> u64 {
        self.state
            .borrow()
            .sessions
            .get(external_id)
            .map_or(0, |s| s.events)
    }
}

impl Transport for FakeServer {
    fn start(&mut self, request: &HttpRequest) -> InFlight {
        {
            let mut state = self.state.borrow_mut();
            if !state.deferred {
                drop(state);
                return InFlight::ready(self.send(request));
            }
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
        }
        let mut server = self.clone();
        let request = request.clone();
        InFlight::new(move || {
            server.state.borrow_mut().in_flight -= 1;
            server.send(&request)
        })
    }

    fn send(&mut self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut state = self.state.borrow_mut();
        let path = path_of(&request.url);
        let mut record = Recorded {
            method: request.method,
            url: request.url.clone(),
            path: path.clone(),
            headers: request.headers.clone(),
            result: Ok(0),
            first_line: None,
            file_name: None,
            lines: 0,
            metadata: None,
            wire_size: request.body.len(),
            body_size: 0,
            body: Vec::new(),
        };
        let fault = state
            .faults
            .iter()
            .position(|(p, _)| p.as_deref().is_none_or(|p| p == path))
            .and_then(|i| state.faults.remove(i))
            .map(|(_, f)| f);
        let (status, body, retry_after) = match fault {
            Some(Fault::EchoAuthorization(status)) => {
                let echoed = header(request, "authorization").unwrap_or("").to_string();
                record.result = Ok(status);
                state.requests.push(record);
                return Ok(HttpResponse {
                    status,
                    headers: vec![("content-type".to_string(), "text/plain".to_string())],
                    body: format!("refused request with Authorization: {echoed}").into_bytes(),
                    cut_off: false,
                });
            }
            Some(Fault::Body { status, body }) => {
                record.result = Ok(status);
                state.requests.push(record);
                return Ok(HttpResponse {
                    status,
                    headers: Vec::new(),
                    body,
                    cut_off: false,
                });
            }
            Some(Fault::Connect) => {
                let error = TransportError::Connect("connection refused (scripted)".into());
                record.result = Err(error.clone());
                state.requests.push(record);
                return Err(error);
            }
            Some(Fault::Status {
                status,
                retry_after,
            }) => {
                // Not processed, but what it carried is noted all the same.
                if let Ok(body) = read_body(request, &path, &mut record) {
                    if path == protocol::PATH_CHUNK {
                        if let Ok(chunk) = parse::<ChunkBody>(&body) {
                            note_chunk(&mut record, &chunk);
                        }
                    }
                }
                let body = json!({ "error": format!("scripted {status}") });
                (status, body, retry_after)
            }
            Some(Fault::StoreThenLose) | None => {
                let (status, body) = match handle(&mut state, request, &path, &mut record) {
                    Ok(body) => (200, body),
                    Err((status, text)) => (status, json!({ "error": text })),
                };
                if matches!(fault, Some(Fault::StoreThenLose)) {
                    let error =
                        TransportError::Lost("connection reset after sending (scripted)".into());
                    record.result = Err(error.clone());
                    state.requests.push(record);
                    return Err(error);
                }
                (status, body, None)
            }
        };
        record.result = Ok(status);
        state.requests.push(record);
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(secs) = retry_after {
            headers.push(("retry-after".to_string(), secs.to_string()));
        }
        Ok(HttpResponse {
            status,
            headers,
            body: serde_json::to_vec(&body).unwrap_or_default(),
            cut_off: false,
        })
    }
}

/// `https://host[:port]/path?query` -> `/path`.
fn path_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    path.split(['?', '#']).next().unwrap_or(path).to_string()
}

fn header<'r>(request: &'r HttpRequest, name: &str) -> Option<&'r str> {
    request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn bad(text: impl Into<String>) -> Refusal {
    (400, text.into())
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))
}

/// Transport rules, then the endpoint; the answer's JSON or a refusal.
fn handle(
    state: &mut ServerState,
    request: &HttpRequest,
    path: &str,
    record: &mut Recorded,
) -> Result<Value, Refusal> {
    if (request.method, path) == (Method::Get, protocol::PATH_CAPABILITIES) {
        // Public: no key needed.
        return if state.no_capabilities {
            Err((404, format!("no endpoint at {path}")))
        } else {
            Ok(
                json!({"workflow_files": true, "workflow_journal": true, "opencode_subagents": true}),
            )
        };
    }
    let key = state.key.as_deref().unwrap_or(TEST_KEY);
    if header(request, "authorization") != Some(format!("Bearer {key}").as_str()) {
        return Err((401, "invalid or revoked API key".into()));
    }
    let user_agent = header(request, "user-agent").unwrap_or("");
    if !user_agent.starts_with("confab-sync/") {
        return Err(bad("User-Agent must start with `confab-sync/<version>`"));
    }
    let body = read_body(request, path, record)?;
    match (request.method, path) {
        (Method::Post, protocol::PATH_INIT) => init(state, &body),
        (Method::Post, protocol::PATH_CHUNK) => chunk(state, &body, record),
        (Method::Post, protocol::PATH_EVENT) => event(state, &body),
        (Method::Get, protocol::PATH_VALIDATE) => Ok(json!({
            "valid": true, "user_id": 1, "email": "u@example.com", "name": "U"
        })),
        (Method::Patch, _) if path.ends_with("/summary") => {
            let external_id = segment(path, "/summary")?;
            let summary: SummaryBody = parse(&body)?;
            let session = state
                .sessions
                .get_mut(&external_id)
                .ok_or((404, "session not found".to_string()))?;
            session.summary = Some(summary.summary);
            Ok(json!({ "status": "ok" }))
        }
        (Method::Post, _) if path.ends_with("/github-links") => {
            let session_id = segment(path, "/github-links")?;
            let link: LinkBody = parse(&body)?;
            let session = state
                .session_by_id(&session_id)
                .ok_or((404, "session not found".to_string()))?;
            if !session.links.insert(link.url.clone()) {
                return Err((409, "link already exists".into()));
            }
            Ok(json!({
                "id": session.links.len(), "link_type": "pull_request", "url": link.url,
                "owner": "o", "repo": "r", "ref": "1"
            }))
        }
        _ => Err((404, format!("no endpoint at {path}"))),
    }
}

/// The JSON body (empty for a GET), noted in `record`.
fn read_body(request: &HttpRequest, path: &str, record: &mut Recorded) -> Result<Vec<u8>, Refusal> {
    if request.method == Method::Get {
        return Ok(Vec::new());
    }
    if !header(request, "content-type").is_some_and(|t| t.starts_with("application/json")) {
        return Err((415, "Content-Type must be application/json".into()));
    }
    let body = decode(request, path.starts_with("/api/v1/sync/"))?;
    record.body_size = body.len();
    if body.len() <= KEEP_BODY_BYTES {
        record.body.clone_from(&body);
    }
    Ok(body)
}

/// The body as JSON bytes: only `/api/v1/sync/*` bodies may be zstd (the
/// real server decompresses nowhere else), bodies of 1 KiB or more must be,
/// and at most [`MAX_BODY_BYTES`] after decompression.
fn decode(request: &HttpRequest, is_sync: bool) -> Result<Vec<u8>, Refusal> {
    let wire = &request.body;
    match header(request, "content-encoding") {
        None => {
            if is_sync && wire.len() >= COMPRESS_THRESHOLD {
                return Err(bad(format!(
                    "bodies of 1 KiB or more must be zstd-compressed (got {} bytes)",
                    wire.len()
                )));
            }
            if wire.len() > MAX_BODY_BYTES {
                return Err((413, "body too large".into()));
            }
            Ok(wire.clone())
        }
        Some(_) if !is_sync => Err(bad("this endpoint does not accept a Content-Encoding")),
        Some(e) if e.eq_ignore_ascii_case("zstd") => {
            let decoder = zstd::stream::read::Decoder::new(&wire[..])
                .map_err(|e| bad(format!("body is not valid zstd: {e}")))?;
            let mut out = Vec::new();
            decoder
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| bad(format!("body is not valid zstd: {e}")))?;
            if out.len() > MAX_BODY_BYTES {
                return Err((413, "body too large after decompression".into()));
            }
            Ok(out)
        }
        Some(e) => Err((415, format!("unsupported Content-Encoding {e}"))),
    }
}

/// The path parameter of `/api/v1/sessions/{param}<suffix>`, percent-decoded.
fn segment(path: &str, suffix: &str) -> Result<String, Refusal> {
    let raw = path
        .strip_prefix("/api/v1/sessions/")
        .and_then(|r| r.strip_suffix(suffix))
        .filter(|r| !r.is_empty() && !r.contains('/'))
        .ok_or((404, format!("no endpoint at {path}")))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3).ok_or_else(|| bad("bad escape"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad("bad escape"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad("path parameter is not UTF-8"))
}

fn init(state: &mut ServerState, body: &[u8]) -> Result<Value, Refusal> {
    let init: InitBody = parse(body)?;
    if init.external_id.is_empty() || init.external_id.len() > 512 {
        return Err(bad("external_id must be 1 to 512 bytes"));
    }
    if init.transcript_path.len() > 8192 {
        return Err(bad("transcript_path is too long"));
    }
    if init.provider.as_deref() == Some("") {
        return Err(bad("provider must not be empty"));
    }
    let session = state.create_session(&init.external_id);
    let files: serde_json::Map<String, Value> = session
        .files
        .iter()
        .map(|(name, lines)| (name.clone(), json!({ "last_synced_line": lines.len() })))
        .collect();
    Ok(json!({ "session_id": session.id, "provider": "claude-code", "files": files }))
}

fn chunk(state: &mut ServerState, body: &[u8], record: &mut Recorded) -> Result<Value, Refusal> {
    let chunk: ChunkBody = parse(body)?;
    note_chunk(record, &chunk);
    if !["transcript", "agent", "workflow_journal"].contains(&chunk.file_type.as_str()) {
        return Err(bad(
            "file_type must be transcript, agent or workflow_journal",
        ));
    }
    if chunk.lines.is_empty() {
        return Err(bad("lines must not be empty"));
    }
    if chunk.file_name.is_empty() || chunk.file_name.len() > 512 {
        return Err(bad("file_name must be 1 to 512 bytes"));
    }
    let session = state
        .session_by_id(&chunk.session_id)
        .ok_or((404, "session not found".to_string()))?;
    let lines = session.files.entry(chunk.file_name.clone()).or_default();
    let have = lines.len() as u64;
    if chunk.first_line != have + 1 {
        return Err(bad(format!(
            "first_line must be {} (server has {have} lines of {}); got {}",
            have + 1,
            chunk.file_name,
            chunk.first_line
        )));
    }
    lines.extend(chunk.lines);
    Ok(json!({ "last_synced_line": lines.len() }))
}

fn note_chunk(record: &mut Recorded, chunk: &ChunkBody) {
    record.first_line = Some(chunk.first_line);
    record.file_name = Some(chunk.file_name.clone());
    record.lines = chunk.lines.len();
    record.metadata.clone_from(&chunk.metadata);
}

fn event(state: &mut ServerState, body: &[u8]) -> Result<Value, Refusal> {
    let event: EventBody = parse(body)?;
    if event.event_type != "session_end" {
        return Err(bad("event_type must be session_end"));
    }
    if event.timestamp.is_empty() {
        return Err(bad("timestamp is required"));
    }
    let session = state
        .session_by_id(&event.session_id)
        .ok_or((404, "session not found".to_string()))?;
    session.events += 1;
    Ok(json!({ "success": true }))
}
