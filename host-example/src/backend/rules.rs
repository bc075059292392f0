//! The rules of backend-api.md, as pure functions: header checks, body
//! decoding, and the validation of each endpoint's JSON body into a typed
//! request. Nothing here touches state or sockets, so every rule can be
//! tested on its own; a broken rule is an [`ApiError`] that names it.

use std::io::Read;

use serde_json::{Map, Value};

use super::error::ApiError;
use super::limits::*;

// ---------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------

/// True when `key` has the shape of a key the server mints: `cfb_` + 40
/// characters of base64url (letters, digits, `-` and `_`).
pub fn is_api_key_shape(key: &str) -> bool {
    key.strip_prefix(API_KEY_PREFIX).is_some_and(|secret| {
        secret.len() == API_KEY_SECRET_LEN
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Resolves `Authorization: Bearer <key>` to a user id (1-based position of
/// the key in `keys`). The messages never contain the key: an answer or a
/// log line must not leak a secret, even a wrong one.
pub fn authenticate(authorization: Option<&str>, keys: &[String]) -> Result<u64, ApiError> {
    let header = authorization
        .ok_or_else(|| ApiError::unauthorized("missing Authorization header (Bearer API key)"))?;
    let key = header
        .strip_prefix("Bearer ")
        .ok_or_else(|| ApiError::unauthorized("Authorization header must be `Bearer <api key>`"))?;
    // As the real server: any bearer token is looked up (by its hash there),
    // and one that no user holds is refused alike, whatever its shape.
    keys.iter()
        .position(|known| known == key)
        .map(|index| index as u64 + 1)
        .ok_or_else(|| ApiError::unauthorized("invalid or revoked API key"))
}

/// backend-api.md, Transport: `User-Agent: confab-sync/<version> (...)`.
pub fn check_user_agent(user_agent: Option<&str>) -> Result<(), ApiError> {
    match user_agent {
        Some(ua) if ua.len() > USER_AGENT_PREFIX.len() && ua.starts_with(USER_AGENT_PREFIX) => {
            Ok(())
        }
        _ => Err(ApiError::bad_request(format!(
            "User-Agent must start with `{USER_AGENT_PREFIX}<version>`"
        ))),
    }
}

/// backend-api.md, Transport: JSON bodies are `Content-Type:
/// application/json`. Like the real server (`content_type.go`), parameters
/// such as `; charset=utf-8` are allowed and a missing header is a 415.
pub fn check_content_type(content_type: Option<&str>) -> Result<(), ApiError> {
    let Some(value) = content_type else {
        return Err(ApiError::unsupported_media(
            "Content-Type header required (application/json)",
        ));
    };
    let media_type = value.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::unsupported_media(
            "Content-Type must be application/json",
        ))
    }
}

/// How a request body arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Zstd,
}

/// backend-api.md, Transport: "The server accepts only `zstd` or no
/// encoding (anything else: 415)". `decompresses` is false for the
/// endpoints the real server does not run through its decompression
/// middleware (summary, github-links, validate): there a compressed body
/// would reach the JSON decoder as binary and fail with a 400, so this
/// backend refuses any `Content-Encoding` on them with a 400 as well.
pub fn check_encoding(
    content_encoding: Option<&str>,
    decompresses: bool,
) -> Result<Encoding, ApiError> {
    let Some(value) = content_encoding.map(str::trim) else {
        return Ok(Encoding::Identity);
    };
    if !decompresses {
        return Err(ApiError::bad_request(
            "this endpoint does not accept a Content-Encoding (the server decompresses only /api/v1/sync/* bodies); send it uncompressed",
        ));
    }
    if value.eq_ignore_ascii_case("zstd") {
        Ok(Encoding::Zstd)
    } else {
        Err(ApiError::unsupported_media(format!(
            "unsupported Content-Encoding `{}` (only zstd or none)",
            printable(value, 40)
        )))
    }
}

/// Turns the wire body into the JSON bytes, enforcing the size rules.
///
/// `limit` is counted after decompression (backend-api.md: "Body limit:
/// 16 MiB for chunk uploads, counted after decompression"). The decoder is
/// read through `take(limit + 1)`, so a zip bomb never makes this allocate
/// more than the limit plus one byte. `compression_required` enforces the
/// client's duty to compress bodies of [`COMPRESS_AT_BYTES`] or more.
pub fn decode_body(
    wire: &[u8],
    encoding: Encoding,
    limit: usize,
    compression_required: bool,
) -> Result<Vec<u8>, ApiError> {
    match encoding {
        Encoding::Identity => {
            if compression_required && wire.len() >= COMPRESS_AT_BYTES {
                return Err(ApiError::bad_request(format!(
                    "bodies of 1 KiB or more must be zstd-compressed (got {} uncompressed bytes; send Content-Encoding: zstd)",
                    wire.len()
                )));
            }
            if wire.len() > limit {
                return Err(too_large(limit));
            }
            Ok(wire.to_vec())
        }
        Encoding::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(wire)
                .map_err(|e| ApiError::bad_request(format!("body is not valid zstd: {e}")))?;
            let mut out = Vec::new();
            decoder
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::bad_request(format!("body is not valid zstd: {e}")))?;
            if out.len() > limit {
                return Err(too_large(limit));
            }
            Ok(out)
        }
    }
}

/// A body over `limit` bytes: the real server's 400 `Invalid request
/// body` (its size limit fails the JSON decoding), not a 413.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid request body: it exceeds {} bytes after decompression ({})",
        limit,
        human_bytes(limit)
    ))
}

fn human_bytes(n: usize) -> String {
    if n >= 1024 * 1024 && n.is_multiple_of(1024 * 1024) {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

// ---------------------------------------------------------------------------
// JSON field helpers
// ---------------------------------------------------------------------------

/// Parses a body that must be one JSON object.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!("invalid JSON body: {e}"))),
    }
}

/// An optional string field: absent or `null` is `None`.
fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<&'a str>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!(
            "{path}{field} must be a string"
        ))),
    }
}

/// A required string field; like the real server (Go's zero value), an
/// empty string counts as missing.
fn req_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    match opt_str(obj, field, "")? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ApiError::bad_request(format!("{field} is required"))),
    }
}

fn max_bytes(value: &str, max: usize, what: &str) -> Result<(), ApiError> {
    if value.len() > max {
        Err(ApiError::bad_request(format!(
            "{what} must be at most {max} bytes (got {})",
            value.len()
        )))
    } else {
        Ok(())
    }
}

/// At most `max` chars of `s` with control characters escaped, for quoting
/// client input in a one-line message.
pub fn printable(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).flat_map(char::escape_debug).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// backend-api.md, init: the optional `git_info` object and its fields.
fn check_git_info(value: &Value, path: &str) -> Result<(), ApiError> {
    let obj = match value {
        Value::Null => return Ok(()),
        Value::Object(obj) => obj,
        _ => return Err(ApiError::bad_request(format!("{path} must be an object"))),
    };
    let prefix = format!("{path}.");
    for field in [
        "repo_url",
        "branch",
        "commit_sha",
        "commit_message",
        "author",
        "tracking_remote",
    ] {
        opt_str(obj, field, &prefix)?;
    }
    match obj.get("is_dirty") {
        None | Some(Value::Null) | Some(Value::Bool(_)) => {}
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "{path}.is_dirty must be a boolean"
            )))
        }
    }
    match obj.get("remotes") {
        None | Some(Value::Null) => {}
        Some(Value::Array(remotes)) => {
            if remotes.len() > MAX_GIT_REMOTES {
                return Err(ApiError::bad_request(format!(
                    "{path}.remotes must hold at most {MAX_GIT_REMOTES} entries (got {})",
                    remotes.len()
                )));
            }
            for (i, remote) in remotes.iter().enumerate() {
                let Value::Object(remote) = remote else {
                    return Err(ApiError::bad_request(format!(
                        "{path}.remotes[{i}] must be an object"
                    )));
                };
                let prefix = format!("{path}.remotes[{i}].");
                for field in ["name", "fetch_url", "push_url"] {
                    opt_str(remote, field, &prefix)?;
                }
            }
        }
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "{path}.remotes must be an array"
            )))
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// POST /api/v1/sync/init
// ---------------------------------------------------------------------------

/// A valid init body.
#[derive(Clone, Debug)]
pub struct InitRequest {
    pub external_id: String,
    pub transcript_path: String,
    pub provider: String,
    /// The `metadata` object as sent (`{}` when absent).
    pub metadata: Value,
}

pub fn parse_init(body: &[u8]) -> Result<InitRequest, ApiError> {
    let obj = parse_object(body)?;
    // backend-api.md: external_id 1..512 bytes, valid UTF-8 (a JSON string
    // is UTF-8 by construction, so only the length can be wrong).
    let external_id = req_str(&obj, "external_id")?;
    max_bytes(external_id, MAX_EXTERNAL_ID_BYTES, "external_id")?;
    // The real server requires transcript_path (`transcript_path is required`).
    let transcript_path = req_str(&obj, "transcript_path")?;
    max_bytes(
        transcript_path,
        MAX_TRANSCRIPT_PATH_BYTES,
        "transcript_path",
    )?;
    // backend-api.md: provider may be omitted; an empty string is refused.
    let provider = match obj.get("provider") {
        None | Some(Value::Null) => DEFAULT_PROVIDER.to_string(),
        Some(Value::String(p)) if p.is_empty() => {
            return Err(ApiError::bad_request(
                "provider must not be empty (omit it to mean claude-code)",
            ))
        }
        // confab-web's canonical providers.
        Some(Value::String(p)) if PROVIDERS.contains(&p.as_str()) => p.clone(),
        Some(Value::String(p)) => {
            return Err(ApiError::bad_request(format!(
                "provider must be one of {} (got `{}`)",
                PROVIDERS.join(", "),
                printable(p, 40)
            )))
        }
        Some(_) => return Err(ApiError::bad_request("provider must be a string")),
    };
    let metadata = match obj.get("metadata") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::Object(meta)) => {
            let cwd = opt_str(meta, "cwd", "metadata.")?.unwrap_or("");
            max_bytes(cwd, MAX_CWD_BYTES, "metadata.cwd")?;
            let hostname = opt_str(meta, "hostname", "metadata.")?.unwrap_or("");
            max_bytes(hostname, MAX_HOSTNAME_BYTES, "metadata.hostname")?;
            let username = opt_str(meta, "username", "metadata.")?.unwrap_or("");
            max_bytes(username, MAX_USERNAME_BYTES, "metadata.username")?;
            if let Some(git) = meta.get("git_info") {
                check_git_info(git, "metadata.git_info")?;
            }
            Value::Object(meta.clone())
        }
        Some(_) => return Err(ApiError::bad_request("metadata must be an object")),
    };
    Ok(InitRequest {
        external_id: external_id.to_string(),
        transcript_path: transcript_path.to_string(),
        provider,
        metadata,
    })
}

// ---------------------------------------------------------------------------
// POST /api/v1/sync/chunk
// ---------------------------------------------------------------------------

/// A chunk body that parsed as a JSON object; its fields are not yet
/// checked. Kept apart from [`ChunkRequest`] so the request log can say what
/// a refused chunk claimed to be.
#[derive(Debug)]
pub struct ChunkBody {
    obj: Map<String, Value>,
}

/// A valid chunk body.
#[derive(Clone, Debug)]
pub struct ChunkRequest {
    pub session_id: String,
    pub file_name: String,
    pub file_type: String,
    pub first_line: u64,
    pub lines: Vec<String>,
    /// The `metadata` object, if any (already checked).
    pub metadata: Option<Map<String, Value>>,
}

pub fn parse_chunk(body: &[u8]) -> Result<ChunkBody, ApiError> {
    parse_object(body).map(|obj| ChunkBody { obj })
}

impl ChunkBody {
    /// What the chunk claims, for the request log, whatever its validity.
    pub fn claimed(&self) -> (String, String, u64, usize) {
        let text = |f: &str| {
            self.obj
                .get(f)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let first_line = self
            .obj
            .get("first_line")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let line_count = self
            .obj
            .get("lines")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        (text("file_name"), text("file_type"), first_line, line_count)
    }

    /// Checks every field rule of backend-api.md's chunk section that does
    /// not depend on server state (contiguity and the chunk count are the
    /// store's).
    pub fn validate(mut self) -> Result<ChunkRequest, ApiError> {
        let obj = &self.obj;
        let session_id = req_str(obj, "session_id")?.to_string();
        let file_name = req_str(obj, "file_name")?.to_string();
        check_file_name(&file_name)?;
        let file_type = req_str(obj, "file_type")?.to_string();
        if !FILE_TYPES.contains(&file_type.as_str()) {
            return Err(ApiError::bad_request(format!(
                "file_type must be transcript, agent or workflow_journal (got `{}`)",
                printable(&file_type, 40)
            )));
        }
        let first_line = match obj.get("first_line") {
            None | Some(Value::Null) => {
                return Err(ApiError::bad_request("first_line is required"))
            }
            Some(v) => match (v.as_u64(), v.as_i64()) {
                (Some(n), _) if n >= 1 => n,
                (None, None) => return Err(ApiError::bad_request("first_line must be an integer")),
                _ => return Err(ApiError::bad_request("first_line must be >= 1")),
            },
        };
        // The real server validates summary and first_user_message whenever
        // metadata is present, and reads metadata on transcript chunks only.
        let metadata = match obj.get("metadata") {
            None | Some(Value::Null) => None,
            Some(Value::Object(meta)) => {
                if let Some(summary) = opt_str(meta, "summary", "metadata.")? {
                    max_bytes(summary, MAX_SUMMARY_BYTES, "metadata.summary")?;
                }
                if let Some(first) = opt_str(meta, "first_user_message", "metadata.")? {
                    max_bytes(
                        first,
                        MAX_FIRST_USER_MESSAGE_BYTES,
                        "metadata.first_user_message",
                    )?;
                }
                if let Some(git) = meta.get("git_info") {
                    check_git_info(git, "metadata.git_info")?;
                }
                if let Some(rollout) = meta.get("codex_rollout").filter(|v| !v.is_null()) {
                    check_codex_rollout(rollout)?;
                }
                if let Some(at) = opt_str(meta, "latest_message_at", "metadata.")? {
                    if !is_rfc3339(at) {
                        return Err(ApiError::bad_request(
                            "metadata.latest_message_at must be an RFC 3339 time",
                        ));
                    }
                }
                Some(meta.clone())
            }
            Some(_) => return Err(ApiError::bad_request("metadata must be an object")),
        };
        // Move the lines out rather than cloning up to 16 MiB of text.
        let lines = match self.obj.remove("lines") {
            None | Some(Value::Null) => return Err(ApiError::bad_request("lines is required")),
            Some(Value::Array(items)) => {
                let mut lines = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        // A newline inside a line would make the stored file
                        // hold more lines than the server counted, so every
                        // later first_line would be off. The real server does
                        // not check this; the engine must never send it.
                        Value::String(s) if s.contains('\n') => {
                            return Err(ApiError::bad_request(format!(
                                "lines[{i}] contains a newline (the server joins lines with \\n, so line numbers would drift)"
                            )))
                        }
                        Value::String(s) => lines.push(s),
                        _ => {
                            return Err(ApiError::bad_request(format!("lines[{i}] must be a string")))
                        }
                    }
                }
                lines
            }
            Some(_) => return Err(ApiError::bad_request("lines must be an array of strings")),
        };
        if lines.is_empty() {
            return Err(ApiError::bad_request("lines must not be empty"));
        }
        Ok(ChunkRequest {
            session_id,
            file_name,
            file_type,
            first_line,
            lines,
            metadata,
        })
    }
}

/// The providers confab-web accepts at init.
pub const PROVIDERS: [&str; 4] = ["claude-code", "codex", "opencode", "cursor"];

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// `metadata.codex_rollout`, as confab-web's `ValidateCodexRolloutMetadata`
/// checks it (whether the session is a Codex one is the store's check).
fn check_codex_rollout(v: &Value) -> Result<(), ApiError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("metadata.codex_rollout must be an object"))?;
    let field = "metadata.codex_rollout.";
    let thread = opt_str(obj, "thread_uuid", field)?.unwrap_or("");
    if thread.is_empty() {
        return Err(ApiError::bad_request("thread_uuid is required"));
    }
    if !is_uuid(thread) {
        return Err(ApiError::bad_request("thread_uuid must be a valid UUID"));
    }
    if let Some(parent) = opt_str(obj, "parent_thread_uuid", field)? {
        if parent.is_empty() {
            return Err(ApiError::bad_request(
                "parent_thread_uuid must not be empty when provided (omit the field for root rollouts)",
            ));
        }
        if !is_uuid(parent) {
            return Err(ApiError::bad_request(
                "parent_thread_uuid must be a valid UUID",
            ));
        }
        if parent == thread {
            return Err(ApiError::bad_request(
                "parent_thread_uuid must not equal thread_uuid",
            ));
        }
    }
    if opt_str(obj, "rollout_path", field)?
        .unwrap_or("")
        .is_empty()
    {
        return Err(ApiError::bad_request("rollout_path is required"));
    }
    for (name, max) in [
        ("rollout_path", 8192),
        ("cwd", 8192),
        ("model", 255),
        ("source", 64),
        ("thread_source", 255),
        ("agent_path", 8192),
        ("agent_role", 255),
        ("agent_nickname", 255),
    ] {
        if let Some(value) = opt_str(obj, name, field)? {
            max_bytes(value, max, &format!("{field}{name}"))?;
        }
    }
    Ok(())
}

/// backend-api.md: `file_name` at most 512 bytes, and it may hold `/`
/// (path-encoded names such as `subagents/workflows/<runId>/journal.jsonl`).
/// The mirror writes the name to disk below the session's folder, so this
/// backend refuses what could leave that folder or mean another file: an
/// absolute name, an empty, `.` or `..` segment, a `\\` or a NUL (stricter
/// than the real server, which keys S3 objects by name).
pub fn check_file_name(name: &str) -> Result<(), ApiError> {
    max_bytes(name, MAX_FILE_NAME_BYTES, "file_name")?;
    let bad_segment = name
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..");
    if bad_segment || name.contains(['\\', '\0']) {
        return Err(ApiError::bad_request(format!(
            "file_name must be a relative path of non-empty segments, without `.` or `..` segments, `\\` or NUL (got `{}`)",
            printable(name, 80)
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// POST /api/v1/sync/event
// ---------------------------------------------------------------------------

/// A valid event body.
#[derive(Clone, Debug)]
pub struct EventRequest {
    pub session_id: String,
    /// The whole body, as accepted.
    pub body: Value,
}

pub fn parse_event(body: &[u8]) -> Result<EventRequest, ApiError> {
    let obj = parse_object(body)?;
    let session_id = req_str(&obj, "session_id")?.to_string();
    let event_type = req_str(&obj, "event_type")?;
    if !EVENT_TYPES.contains(&event_type) {
        return Err(ApiError::bad_request(format!(
            "event_type must be session_end (got `{}`)",
            printable(event_type, 40)
        )));
    }
    let timestamp = req_str(&obj, "timestamp")?;
    if !is_rfc3339(timestamp) {
        return Err(ApiError::bad_request(format!(
            "timestamp must be RFC 3339, e.g. 2026-02-12T16:02:25Z (got `{}`)",
            printable(timestamp, 40)
        )));
    }
    match obj.get("payload") {
        Some(Value::Object(_)) => {}
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request("payload is required (an object)"))
        }
        Some(_) => return Err(ApiError::bad_request("payload must be an object")),
    }
    Ok(EventRequest {
        session_id,
        body: Value::Object(obj),
    })
}

/// RFC 3339 `date-time` as Go's `time.Time` JSON decoding accepts it:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, with real calendar ranges.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        if part.iter().all(u8::is_ascii_digit) {
            Some(part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
        } else {
            None
        }
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(0, 4),
        digits(5, 2),
        digits(8, 2),
        digits(11, 2),
        digits(14, 2),
        digits(17, 2),
    ) else {
        return false;
    };
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+') | Some(b'-') => {
            matches!((digits(i + 1, 2), digits(i + 4, 2)), (Some(h), Some(m)) if h <= 23 && m <= 59)
                && at(i + 3, b':')
                && i + 6 == b.len()
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// PATCH /api/v1/sessions/{external_id}/summary
// ---------------------------------------------------------------------------

pub fn parse_summary(body: &[u8]) -> Result<String, ApiError> {
    let obj = parse_object(body)?;
    let summary = opt_str(&obj, "summary", "")?
        .ok_or_else(|| ApiError::bad_request("summary is required"))?;
    max_bytes(summary, MAX_SUMMARY_BYTES, "summary")?;
    Ok(summary.to_string())
}

// ---------------------------------------------------------------------------
// POST /api/v1/sessions/{session_id}/github-links
// ---------------------------------------------------------------------------

/// A valid github-links body with its URL taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GithubLinkRequest {
    pub url: String,
    pub link_type: &'static str,
    pub owner: String,
    pub repo: String,
    pub reference: String,
    pub title: Option<String>,
    pub source: String,
}

pub fn parse_github_link(body: &[u8]) -> Result<GithubLinkRequest, ApiError> {
    let obj = parse_object(body)?;
    let url = req_str(&obj, "url")?;
    let (link_type, owner, repo, reference) = parse_github_url(url)?;
    if let Some(claimed) = opt_str(&obj, "link_type", "")?.filter(|t| !t.is_empty()) {
        if claimed != link_type {
            return Err(ApiError::bad_request(format!(
                "link_type `{}` does not match the URL's type `{link_type}`",
                printable(claimed, 40)
            )));
        }
    }
    let source = opt_str(&obj, "source", "")?.unwrap_or("");
    if !GITHUB_LINK_SOURCES.contains(&source) {
        return Err(ApiError::bad_request("source must be cli_hook or manual"));
    }
    let title = opt_str(&obj, "title", "")?.map(str::to_string);
    Ok(GithubLinkRequest {
        url: url.to_string(),
        link_type,
        owner,
        repo,
        reference,
        title,
        source: source.to_string(),
    })
}

/// Splits `https://github.com/<owner>/<repo>/pull/<n>` or
/// `.../commit/<sha>` like the real server's patterns, which are anchored at
/// the start only (`^https?://github\.com/([^/]+)/([^/]+)/pull/(\d+)`), so a
/// trailing `/files` or `#...` is allowed. The real server knows only pull
/// requests and commits: an issues URL is refused there, and here.
pub fn parse_github_url(url: &str) -> Result<(&'static str, String, String, String), ApiError> {
    let refuse = || {
        ApiError::bad_request(
            "invalid GitHub URL: must be https://github.com/<owner>/<repo>/pull/<number> or .../commit/<sha> (issues are not accepted)",
        )
    };
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("http://github.com/"))
        .ok_or_else(refuse)?;
    let mut parts = rest.splitn(4, '/');
    let (Some(owner), Some(repo), Some(kind), Some(tail)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse());
    };
    if owner.is_empty() || repo.is_empty() {
        return Err(refuse());
    }
    let (link_type, accept): (&'static str, fn(&u8) -> bool) = match kind {
        "pull" => ("pull_request", u8::is_ascii_digit),
        "commit" => ("commit", |c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
        _ => return Err(refuse()),
    };
    let len = tail.bytes().take_while(accept).count();
    if len == 0 {
        return Err(refuse());
    }
    Ok((
        link_type,
        owner.to_string(),
        repo.to_string(),
        tail[..len].to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_shape_is_what_the_server_mints() {
        let good = "cfb_q3-Zt8_LmW0xKe4-RuY7_nBv2PcH9sJd6Ag1oF5T";
        assert!(is_api_key_shape(good));
        assert!(is_api_key_shape(&format!("cfb_{}", "a1".repeat(20))));
        assert!(is_api_key_shape(&format!("cfb_{}", "-_".repeat(20))));
        assert!(!is_api_key_shape(&good[..good.len() - 1]));
        assert!(!is_api_key_shape(&format!("{good}x")));
        assert!(!is_api_key_shape(&format!("cfx_{}", &good[4..])));
        assert!(!is_api_key_shape(&format!("cfb_{}=", &good[4..43])));
        assert!(!is_api_key_shape(&format!("cfb_{}é", "a".repeat(38))));
    }

    #[test]
    fn rfc3339_shapes() {
        for ok in [
            "2026-02-12T16:02:25Z",
            "2026-02-12T16:02:25.123456789Z",
            "2024-02-29T23:59:59+05:30",
            "2026-12-31T00:00:00-00:00",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "2026-02-12",
            "2026-02-12 16:02:25Z",
            "2026-02-12T16:02:25",
            "2026-02-30T16:02:25Z",
            "2025-02-29T16:02:25Z",
            "2026-13-01T00:00:00Z",
            "2026-02-12T24:00:00Z",
            "2026-02-12T16:02:60Z",
            "2026-02-12T16:02:25.Z",
            "2026-02-12T16:02:25+0530",
            "2026-02-12T16:02:25Zjunk",
            "yesterday",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn github_urls() {
        assert_eq!(
            parse_github_url("https://github.com/o/r/pull/12/files").unwrap(),
            ("pull_request", "o".into(), "r".into(), "12".into())
        );
        assert_eq!(
            parse_github_url("https://github.com/o/r/commit/abc123").unwrap(),
            ("commit", "o".into(), "r".into(), "abc123".into())
        );
        for bad in [
            "https://github.com/o/r/issues/3",
            "https://gitlab.com/o/r/pull/1",
            "https://github.com/o/r/pull/x",
            "https://github.com//r/pull/1",
            "https://github.com/o/r/commit/XYZ",
        ] {
            assert_eq!(parse_github_url(bad).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn zip_bomb_is_capped() {
        let bomb = zstd::encode_all(&vec![0u8; 4 * 1024 * 1024][..], 3).unwrap();
        let err = decode_body(&bomb, Encoding::Zstd, 1024 * 1024, true).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(
            err.message.starts_with("Invalid request body"),
            "{}",
            err.message
        );
        let ok = decode_body(&bomb, Encoding::Zstd, 4 * 1024 * 1024, true).unwrap();
        assert_eq!(ok.len(), 4 * 1024 * 1024);
        assert_eq!(
            decode_body(b"not zstd", Encoding::Zstd, 10, true)
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn file_names() {
        assert!(check_file_name("agent-a1.jsonl").is_ok());
        assert!(check_file_name("subagents/workflows/wf-1/agent-a1b2c3d.jsonl").is_ok());
        assert!(check_file_name("subagents/workflows/wf-1/journal.jsonl").is_ok());
        assert!(
            check_file_name("a..b.jsonl").is_ok(),
            "`..` inside a segment stays inside"
        );
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "a/",
            "..",
            ".",
            "./a",
            "x\\y",
            "a\0b",
            "",
        ] {
            assert_eq!(check_file_name(bad).unwrap_err().status, 400, "{bad}");
        }
        assert!(check_file_name(&"a".repeat(512)).is_ok());
        assert!(check_file_name(&"a".repeat(513)).is_err());
    }
}
