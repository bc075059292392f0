//! The route table (which path and method is which endpoint, and the body
//! rules of each) and the handlers that turn a decoded body into an answer
//! by way of [`rules`](super::rules) and the [`Store`].

use std::sync::Mutex;

use serde_json::{json, Value};

use super::error::ApiError;
use super::limits::{MAX_CHUNK_BODY_BYTES, MAX_SMALL_BODY_BYTES, MAX_VALIDATE_BODY_BYTES};
use super::rules;
use super::store::Store;
use super::{lock, ChunkRecord};

/// One endpoint of backend-api.md, with its path parameter (still
/// percent-encoded) where it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Init,
    Chunk,
    Event,
    Summary(String),
    GithubLinks(String),
    Validate,
    /// `GET /api/v1/capabilities`: public; answered from the backend's
    /// configuration (see [`BackendConfig::capabilities`](super::BackendConfig)).
    Capabilities,
    /// `GET /api/v1/sessions/by-external-id/{external_id}`.
    LookupByExternalId(String),
    /// `GET /api/v1/sessions/{id}/sync/file?file_name=`: a stored file's lines.
    SyncFile(String),
}

/// A success answer: JSON, or (the file read-back) the stored bytes as
/// `text/plain`, as the real server sends them.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Json(Value),
    Text(Vec<u8>),
}

/// How the real server wraps each endpoint (`server.go`): its body limit,
/// whether it runs the zstd middleware, whether the upload rate limiter
/// counts it.
#[derive(Clone, Copy, Debug)]
pub struct RouteSpec {
    pub method: &'static str,
    /// Body limit after decompression.
    pub max_body: usize,
    /// Only `/sync/*` bodies go through the server's decompression.
    pub decompresses: bool,
    /// Only `/sync/*` requests draw from the upload token bucket.
    pub rate_limited: bool,
    /// POST and PATCH carry a JSON body (and need its Content-Type).
    pub json_body: bool,
    /// No API key needed (the real server's public routes).
    pub public: bool,
}

impl Endpoint {
    pub fn spec(&self) -> RouteSpec {
        let sync = |max_body| RouteSpec {
            method: "POST",
            max_body,
            decompresses: true,
            rate_limited: true,
            json_body: true,
            public: false,
        };
        let plain = |method| RouteSpec {
            method,
            max_body: MAX_SMALL_BODY_BYTES,
            decompresses: false,
            rate_limited: false,
            json_body: true,
            public: false,
        };
        // The real server wraps its GET routes in `withMaxBody(MaxBodyXS)`.
        let get = |public| RouteSpec {
            method: "GET",
            max_body: MAX_VALIDATE_BODY_BYTES,
            decompresses: false,
            rate_limited: false,
            json_body: false,
            public,
        };
        match self {
            Endpoint::Init | Endpoint::Event => sync(MAX_SMALL_BODY_BYTES),
            Endpoint::Chunk => sync(MAX_CHUNK_BODY_BYTES),
            Endpoint::Summary(_) => plain("PATCH"),
            Endpoint::GithubLinks(_) => plain("POST"),
            Endpoint::Validate | Endpoint::LookupByExternalId(_) | Endpoint::SyncFile(_) => {
                get(false)
            }
            Endpoint::Capabilities => get(true),
        }
    }
}

/// Finds the endpoint of `path`: 404 for an unknown path, 405 for a known
/// path with the wrong method. Paths are exact (no trailing slash).
pub fn route(method: &str, path: &str) -> Result<Endpoint, ApiError> {
    let endpoint = match path {
        "/api/v1/sync/init" => Endpoint::Init,
        "/api/v1/sync/chunk" => Endpoint::Chunk,
        "/api/v1/sync/event" => Endpoint::Event,
        "/api/v1/auth/validate" => Endpoint::Validate,
        "/api/v1/capabilities" => Endpoint::Capabilities,
        _ => {
            let param = |suffix: &str| {
                path.strip_prefix("/api/v1/sessions/")
                    .and_then(|rest| rest.strip_suffix(suffix))
                    .filter(|p| !p.is_empty() && !p.contains('/'))
                    .map(str::to_string)
            };
            let by_external_id = path
                .strip_prefix("/api/v1/sessions/by-external-id/")
                .filter(|p| !p.is_empty() && !p.contains('/'));
            if let Some(external_id) = by_external_id {
                Endpoint::LookupByExternalId(external_id.to_string())
            } else if let Some(session_id) = param("/sync/file") {
                Endpoint::SyncFile(session_id)
            } else if let Some(external_id) = param("/summary") {
                Endpoint::Summary(external_id)
            } else if let Some(session_id) = param("/github-links") {
                Endpoint::GithubLinks(session_id)
            } else {
                return Err(ApiError::not_found(format!(
                    "no endpoint at {}",
                    rules::printable(path, 120)
                )));
            }
        }
    };
    let expected = endpoint.spec().method;
    if method != expected {
        return Err(ApiError::new(
            405,
            format!("method {method} not allowed here (use {expected})"),
        ));
    }
    Ok(endpoint)
}

/// Decodes `%XX` escapes of a path segment; `None` if they are malformed
/// or the result is not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn path_param(raw: &str, what: &str) -> Result<String, ApiError> {
    percent_decode(raw).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{what} in the path is not valid percent-encoded UTF-8"
        ))
    })
}

/// The value of `name` in a query string (`a=1&b=2`), percent-decoded
/// (`+` is a space, as in a form).
pub fn query_param(query: Option<&str>, name: &str) -> Result<Option<String>, ApiError> {
    let Some(query) = query else { return Ok(None) };
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == name {
            return percent_decode(&value.replace('+', " "))
                .map(Some)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{name} is not valid percent-encoded UTF-8"))
                });
        }
    }
    Ok(None)
}

/// Runs the endpoint on a decoded body for an authenticated `user`. Returns
/// the success status and answer. `chunk` receives what a chunk body
/// claimed as soon as it parses, for the request log.
pub fn dispatch(
    endpoint: &Endpoint,
    user: u64,
    body: &[u8],
    query: Option<&str>,
    store: &Mutex<Store>,
    chunk: &mut Option<ChunkRecord>,
) -> Result<(u16, Reply), ApiError> {
    let (status, value) = match endpoint {
        Endpoint::Init => {
            let req = rules::parse_init(body)?;
            (200, lock(store).init(user, req)?)
        }
        Endpoint::Chunk => {
            let parsed = rules::parse_chunk(body)?;
            let (file_name, file_type, first_line, line_count) = parsed.claimed();
            *chunk = Some(ChunkRecord {
                file_name,
                file_type,
                first_line,
                line_count,
            });
            let req = parsed.validate()?;
            let last = lock(store).append_chunk(user, req)?;
            (200, json!({ "last_synced_line": last }))
        }
        Endpoint::Event => {
            let req = rules::parse_event(body)?;
            lock(store).add_event(user, req)?;
            (200, json!({ "success": true }))
        }
        Endpoint::Summary(raw) => {
            let external_id = path_param(raw, "external_id")?;
            let summary = rules::parse_summary(body)?;
            lock(store).set_summary(user, &external_id, summary)?;
            (200, json!({ "status": "ok" }))
        }
        Endpoint::GithubLinks(raw) => {
            let session_id = path_param(raw, "session_id")?;
            let req = rules::parse_github_link(body)?;
            // 201 Created, as the real server answers (`github_links.go`).
            (201, lock(store).add_github_link(user, &session_id, req)?)
        }
        Endpoint::Validate => (
            200,
            json!({
                "valid": true,
                "user_id": user,
                "email": format!("user{user}@localhost"),
                "name": format!("Local user {user}"),
            }),
        ),
        Endpoint::LookupByExternalId(raw) => {
            let external_id = path_param(raw, "external_id")?;
            let session_id = lock(store).lookup(user, &external_id)?;
            (200, json!({ "session_id": session_id }))
        }
        Endpoint::SyncFile(raw) => {
            let session_id = path_param(raw, "session id")?;
            let file_name = query_param(query, "file_name")?
                .filter(|n| !n.is_empty())
                .ok_or_else(|| ApiError::bad_request("file_name is required"))?;
            let bytes = lock(store).read_file(user, &session_id, &file_name)?;
            return Ok((200, Reply::Text(bytes)));
        }
        // Public, and answered from the configuration before authentication
        // (see `http`): it never gets here.
        Endpoint::Capabilities => {
            return Err(ApiError::internal(
                "capabilities are answered before dispatch",
            ))
        }
    };
    Ok((status, Reply::Json(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing() {
        assert_eq!(
            route("POST", "/api/v1/sync/chunk").unwrap(),
            Endpoint::Chunk
        );
        assert_eq!(
            route("PATCH", "/api/v1/sessions/abc/summary").unwrap(),
            Endpoint::Summary("abc".into())
        );
        assert_eq!(
            route("POST", "/api/v1/sessions/s-1/github-links").unwrap(),
            Endpoint::GithubLinks("s-1".into())
        );
        assert_eq!(route("GET", "/api/v1/sync/chunk").unwrap_err().status, 405);
        assert_eq!(
            route("POST", "/api/v1/sync/chunk/").unwrap_err().status,
            404
        );
        assert_eq!(
            route("PATCH", "/api/v1/sessions//summary")
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            route("PATCH", "/api/v1/sessions/a/b/summary")
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(route("GET", "/").unwrap_err().status, 404);
        assert_eq!(
            route("GET", "/api/v1/capabilities").unwrap(),
            Endpoint::Capabilities
        );
        assert!(route("GET", "/api/v1/capabilities").unwrap().spec().public);
        assert_eq!(
            route("GET", "/api/v1/sessions/by-external-id/e-1").unwrap(),
            Endpoint::LookupByExternalId("e-1".into())
        );
        assert_eq!(
            route("GET", "/api/v1/sessions/s-1/sync/file").unwrap(),
            Endpoint::SyncFile("s-1".into())
        );
        assert!(
            !route("GET", "/api/v1/sessions/s-1/sync/file")
                .unwrap()
                .spec()
                .public
        );
        assert_eq!(
            route("POST", "/api/v1/capabilities").unwrap_err().status,
            405
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%20c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%FF"), None);
    }
}
