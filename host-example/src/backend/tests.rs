//! End-to-end tests of the backend over real sockets, with a tiny raw
//! HTTP/1.1 client (std::net::TcpStream), so that what is tested is what a
//! client on the wire meets, including a connection closed without answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

const UA: &str = "confab-sync/0.1.0 (wasm32-wasip2)";
const SECOND_KEY: &str = "cfb_0123456789abcdefgh-_ABCDEFGHIJ0123456789";

// ---------------------------------------------------------------------------
// Raw HTTP/1.1 client
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {}", self.text()))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request on a fresh connection and returns every byte the
/// server sent back before closing (empty if it answered nothing).
fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(body).expect("write body");
    let mut out = Vec::new();
    // A reset after a dropped connection reads as "nothing answered".
    let _ = stream.read_to_end(&mut out);
    out
}

fn parse(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).expect("utf-8 head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn send(port: u16, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Resp {
    parse(&exchange(port, method, path, headers, body))
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 1).unwrap()
}

/// A well-behaved client: right headers, zstd for bodies of 1 KiB or more
/// on the endpoints that accept it.
struct Client {
    port: u16,
    key: String,
}

impl Client {
    fn new(backend: &Backend) -> Self {
        Client {
            port: backend.port(),
            key: DEFAULT_LOCAL_API_KEY.to_string(),
        }
    }
    fn with_key(backend: &Backend, key: &str) -> Self {
        Client {
            port: backend.port(),
            key: key.to_string(),
        }
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Authorization", format!("Bearer {}", self.key)),
            ("User-Agent", UA.to_string()),
            ("Content-Type", "application/json".to_string()),
        ]
    }
    fn send_bytes(&self, method: &str, path: &str, body: &[u8]) -> Resp {
        let mut headers = self.headers();
        if body.len() >= 1024 && path.starts_with("/api/v1/sync/") {
            headers.push(("Content-Encoding", "zstd".to_string()));
            send(self.port, method, path, &headers, &zstd(body))
        } else {
            send(self.port, method, path, &headers, body)
        }
    }
    fn send(&self, method: &str, path: &str, body: &Value) -> Resp {
        self.send_bytes(method, path, &serde_json::to_vec(body).unwrap())
    }
    fn post(&self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, body)
    }
    fn init_resp(&self, external_id: &str) -> Resp {
        self.post(
            "/api/v1/sync/init",
            &json!({
                "external_id": external_id,
                "transcript_path": format!("/home/u/.claude/projects/p/{external_id}.jsonl"),
                "metadata": {"cwd": "/home/u/p", "hostname": "h", "username": "u"},
            }),
        )
    }
    fn init(&self, external_id: &str) -> String {
        let resp = self.init_resp(external_id);
        assert_eq!(resp.status, 200, "{}", resp.text());
        resp.json()["session_id"].as_str().unwrap().to_string()
    }
    fn chunk(
        &self,
        session_id: &str,
        file: &str,
        file_type: &str,
        first_line: u64,
        lines: &[&str],
    ) -> Resp {
        self.post(
            "/api/v1/sync/chunk",
            &json!({
                "session_id": session_id, "file_name": file, "file_type": file_type,
                "first_line": first_line, "lines": lines,
            }),
        )
    }
    fn event(&self, body: &Value) -> Resp {
        self.post("/api/v1/sync/event", body)
    }
}

fn start() -> Backend {
    Backend::start(BackendConfig::default()).expect("start backend")
}

fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "confab-backend-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

// ---------------------------------------------------------------------------
// Transport rules
// ---------------------------------------------------------------------------

#[test]
fn auth_refuses_missing_malformed_and_unknown_keys_without_echo() {
    let backend = Backend::start(BackendConfig {
        api_keys: vec![DEFAULT_LOCAL_API_KEY.into(), SECOND_KEY.into()],
        ..BackendConfig::default()
    })
    .unwrap();
    let port = backend.port();
    let ua = ("User-Agent", UA.to_string());

    let missing = send(
        port,
        "GET",
        "/api/v1/auth/validate",
        std::slice::from_ref(&ua),
        b"",
    );
    assert_eq!(missing.status, 401);

    let unknown = "cfb_ZZZZ-ZZZZZ_ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ";
    let wrong = send(
        port,
        "GET",
        "/api/v1/auth/validate",
        &[("Authorization", format!("Bearer {unknown}")), ua.clone()],
        b"",
    );
    assert_eq!(wrong.status, 401);
    assert!(
        !wrong.text().contains(unknown),
        "key echoed: {}",
        wrong.text()
    );
    assert!(
        !wrong.text().contains("ZZZZZZZZ"),
        "key echoed: {}",
        wrong.text()
    );

    for bad in [
        "Bearer cfb_short".to_string(),
        format!("Basic {DEFAULT_LOCAL_API_KEY}"),
        format!(
            "Bearer {}!",
            &DEFAULT_LOCAL_API_KEY[..DEFAULT_LOCAL_API_KEY.len() - 1]
        ),
    ] {
        let resp = send(
            port,
            "GET",
            "/api/v1/auth/validate",
            &[("Authorization", bad), ua.clone()],
            b"",
        );
        assert_eq!(resp.status, 401);
        assert!(!resp.text().contains(&DEFAULT_LOCAL_API_KEY[4..20]));
    }

    let ok = Client::new(&backend).send("GET", "/api/v1/auth/validate", &json!(null));
    // A GET with a body "null" is still a GET; the body is ignored.
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["valid"], true);
    assert_eq!(ok.json()["user_id"], 1);
    let second =
        Client::with_key(&backend, SECOND_KEY).send("GET", "/api/v1/auth/validate", &json!(null));
    assert_eq!(second.json()["user_id"], 2);

    // Neither the answers nor the request log carry a key.
    let log = format!("{:?}", backend.requests());
    assert!(!log.contains(&DEFAULT_LOCAL_API_KEY[4..]) && !log.contains(unknown));
    assert!(!format!("{:?}", BackendConfig::default()).contains(&DEFAULT_LOCAL_API_KEY[4..]));
}

#[test]
fn start_refuses_a_configured_key_of_the_wrong_shape() {
    let err = Backend::start(BackendConfig {
        api_keys: vec!["secret".into()],
        ..BackendConfig::default()
    })
    .err()
    .expect("must refuse");
    assert!(!err.to_string().contains("secret"));
}

#[test]
fn user_agent_and_content_type_are_required() {
    let backend = start();
    let client = Client::new(&backend);
    let body = br#"{"external_id":"e","transcript_path":"/p/e.jsonl"}"#;
    let auth = ("Authorization", format!("Bearer {DEFAULT_LOCAL_API_KEY}"));
    let json_ct = ("Content-Type", "application/json".to_string());

    let no_ua = send(
        backend.port(),
        "POST",
        "/api/v1/sync/init",
        &[auth.clone(), json_ct.clone()],
        body,
    );
    assert_eq!(no_ua.status, 400);
    assert!(no_ua.error().contains("User-Agent"), "{}", no_ua.text());
    let curl = send(
        backend.port(),
        "POST",
        "/api/v1/sync/init",
        &[
            auth.clone(),
            json_ct.clone(),
            ("User-Agent", "curl/8.0".into()),
        ],
        body,
    );
    assert_eq!(curl.status, 400);

    let ua = ("User-Agent", UA.to_string());
    let no_ct = send(
        backend.port(),
        "POST",
        "/api/v1/sync/init",
        &[auth.clone(), ua.clone()],
        body,
    );
    assert_eq!(no_ct.status, 415);
    let text = send(
        backend.port(),
        "POST",
        "/api/v1/sync/init",
        &[
            auth.clone(),
            ua.clone(),
            ("Content-Type", "text/plain".into()),
        ],
        body,
    );
    assert_eq!(text.status, 415);
    let charset = send(
        backend.port(),
        "POST",
        "/api/v1/sync/init",
        &[
            auth,
            ua,
            ("Content-Type", "application/json; charset=utf-8".into()),
        ],
        body,
    );
    assert_eq!(charset.status, 200, "{}", charset.text());
    assert_eq!(
        client.init("e"),
        charset.json()["session_id"].as_str().unwrap()
    );
}

#[test]
fn gzip_is_415_and_uncompressed_kib_is_400() {
    let backend = start();
    let client = Client::new(&backend);
    let mut headers = client.headers();
    headers.push(("Content-Encoding", "gzip".into()));
    let body = br#"{"external_id":"e","transcript_path":"/p"}"#;
    let gzip = send(backend.port(), "POST", "/api/v1/sync/init", &headers, body);
    assert_eq!(gzip.status, 415);
    assert!(gzip.error().contains("gzip"), "{}", gzip.text());

    // An init body of exactly 1024 bytes, uncompressed: refused; 1023: fine.
    let sized = |n: usize| {
        let base =
            json!({"external_id": "e", "transcript_path": "/p/e.jsonl", "metadata": {"cwd": ""}});
        let len = serde_json::to_vec(&base).unwrap().len();
        let cwd = "c".repeat(n - len);
        let body = serde_json::to_vec(
            &json!({"external_id": "e", "transcript_path": "/p/e.jsonl", "metadata": {"cwd": cwd}}),
        )
        .unwrap();
        assert_eq!(body.len(), n);
        body
    };
    let plain = client.headers();
    let big = send(
        backend.port(),
        "POST",
        "/api/v1/sync/init",
        &plain,
        &sized(1024),
    );
    assert_eq!(big.status, 400);
    assert_eq!(
        big.error().split(" (").next().unwrap(),
        "bodies of 1 KiB or more must be zstd-compressed"
    );
    let small = send(
        backend.port(),
        "POST",
        "/api/v1/sync/init",
        &plain,
        &sized(1023),
    );
    assert_eq!(small.status, 200, "{}", small.text());
    // The same 1024 bytes, compressed, are accepted.
    assert_eq!(
        client
            .send_bytes("POST", "/api/v1/sync/init", &sized(1024))
            .status,
        200
    );

    let records = backend.requests();
    let last = records.last().unwrap();
    assert_eq!(last.content_encoding.as_deref(), Some("zstd"));
    assert_eq!(last.body_bytes, 1024);
    assert!(last.wire_bytes < 1024);
    assert_eq!(last.user_agent.as_deref(), Some(UA));
}

#[test]
fn body_limit_is_counted_after_decompression() {
    let backend = start();
    let client = Client::new(&backend);
    let sid = client.init("e");
    let limit = limits::MAX_CHUNK_BODY_BYTES;
    // A valid chunk padded with JSON whitespace to exactly `n` bytes.
    let chunk_of = |n: usize| {
        let mut body = serde_json::to_vec(&json!({
            "session_id": sid, "file_name": "big.jsonl", "file_type": "agent",
            "first_line": 1, "lines": ["x".repeat(14 * 1024 * 1024)],
        }))
        .unwrap();
        body.resize(n, b' ');
        body
    };
    let over = client.send_bytes("POST", "/api/v1/sync/chunk", &chunk_of(limit + 1));
    // The real server's answer to an oversize body: 400, not 413.
    assert_eq!(over.status, 400, "{}", over.text());
    assert!(
        over.error().starts_with("Invalid request body"),
        "{}",
        over.text()
    );
    assert_eq!(backend.file("e", "big.jsonl"), None);
    let at = client.send_bytes("POST", "/api/v1/sync/chunk", &chunk_of(limit));
    assert_eq!(at.status, 200, "{}", at.text());
    assert_eq!(at.json()["last_synced_line"], 1);

    // A zip bomb: 64 MiB of zeros in a few KiB.
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    let mut headers = client.headers();
    headers.push(("Content-Encoding", "zstd".into()));
    let resp = send(
        backend.port(),
        "POST",
        "/api/v1/sync/chunk",
        &headers,
        &bomb,
    );
    assert_eq!(resp.status, 400);

    // Init's limit is the real server's 128 KiB.
    let huge_init = json!({"external_id": "x", "transcript_path": "/p", "metadata": {"junk": "j".repeat(200 * 1024)}});
    assert_eq!(client.post("/api/v1/sync/init", &huge_init).status, 400);
}

#[test]
fn unknown_path_is_404_and_wrong_method_405() {
    let backend = start();
    let client = Client::new(&backend);
    let missing = client.post("/api/v1/sync/nope", &json!({}));
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"].is_string());
    assert_eq!(
        client.send("GET", "/api/v1/sync/chunk", &json!({})).status,
        405
    );
    assert_eq!(
        client
            .send("POST", "/api/v1/auth/validate", &json!({}))
            .status,
        405
    );
    assert_eq!(
        client
            .send("POST", "/api/v1/sessions/e/summary", &json!({}))
            .status,
        405
    );
}

// ---------------------------------------------------------------------------
// Sessions and chunks
// ---------------------------------------------------------------------------

#[test]
fn init_is_idempotent_and_reports_the_resume_point() {
    let backend = start();
    let client = Client::new(&backend);
    let first = client.init_resp("s1");
    assert_eq!(first.status, 200);
    let body = first.json();
    assert_eq!(body["provider"], "claude-code");
    assert_eq!(body["files"], json!({}));
    let sid = body["session_id"].as_str().unwrap().to_string();

    assert_eq!(
        client
            .chunk(&sid, "s1.jsonl", "transcript", 1, &["a", "b", "c"])
            .status,
        200
    );
    assert_eq!(
        client
            .chunk(&sid, "agent-a1.jsonl", "agent", 1, &["x"])
            .status,
        200
    );

    let again = client.post(
        "/api/v1/sync/init",
        &json!({"external_id": "s1", "transcript_path": "/moved/s1.jsonl", "provider": "claude-code",
                "metadata": {"cwd": "/elsewhere", "git_info": {"branch": "main", "is_dirty": true}}}),
    );
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["session_id"], sid.as_str());
    assert_eq!(
        again.json()["files"],
        json!({"s1.jsonl": {"last_synced_line": 3}, "agent-a1.jsonl": {"last_synced_line": 1}})
    );
    let snap = backend.session("s1").unwrap();
    assert_eq!(snap.session_id, sid);
    assert_eq!(snap.transcript_path, "/moved/s1.jsonl");
    assert_eq!(snap.init_metadata["cwd"], "/elsewhere");
    assert_eq!(snap.init_metadata["git_info"]["branch"], "main");
    // Each init's metadata is kept, in order, for a test to compare.
    assert_eq!(snap.init_history.len(), 2);
    assert_eq!(snap.init_history[0]["hostname"], "h");
    assert_eq!(snap.init_history[1]["cwd"], "/elsewhere");

    // Another external id is another session.
    assert_ne!(client.init("s2"), sid);
    // provider: omitted is fine (above), "" is refused.
    let empty = client.post(
        "/api/v1/sync/init",
        &json!({"external_id": "s3", "transcript_path": "/p", "provider": ""}),
    );
    assert_eq!(empty.status, 400);
    assert!(empty.error().contains("provider"));
}

#[test]
fn chunks_must_be_contiguous() {
    let backend = start();
    let client = Client::new(&backend);
    let sid = client.init("s");
    assert_eq!(
        client
            .chunk(&sid, "agent-a1.jsonl", "agent", 1, &["1", "2", "3"])
            .json()["last_synced_line"],
        3
    );

    let gap = client.chunk(&sid, "agent-a1.jsonl", "agent", 5, &["5"]);
    assert_eq!(gap.status, 400);
    assert!(
        gap.error()
            .starts_with("first_line must be 4 (server has 3 lines of agent-a1.jsonl)"),
        "{}",
        gap.error()
    );
    let overlap = client.chunk(&sid, "agent-a1.jsonl", "agent", 3, &["3", "4"]);
    assert_eq!(overlap.status, 400);
    assert!(
        overlap.error().starts_with("first_line must be 4"),
        "{}",
        overlap.error()
    );
    let new_file = client.chunk(&sid, "other.jsonl", "agent", 2, &["2"]);
    assert_eq!(new_file.status, 400);
    assert!(
        new_file
            .error()
            .starts_with("first_line must be 1 (server has 0 lines"),
        "{}",
        new_file.error()
    );
    let zero = client.chunk(&sid, "agent-a1.jsonl", "agent", 0, &["0"]);
    assert_eq!(zero.status, 400);

    // Refused chunks stored nothing.
    assert_eq!(backend.file("s", "agent-a1.jsonl").unwrap(), b"1\n2\n3\n");
    assert_eq!(
        client
            .chunk(&sid, "agent-a1.jsonl", "agent", 4, &["4"])
            .json()["last_synced_line"],
        4
    );

    // The request log says what each chunk claimed.
    let chunks: Vec<_> = backend
        .requests()
        .into_iter()
        .filter_map(|r| r.chunk.map(|c| (r.status, c)))
        .collect();
    assert_eq!(chunks.len(), 6);
    assert_eq!(chunks[1].0, 400);
    assert_eq!(chunks[1].1.first_line, 5);
    assert_eq!(chunks[1].1.line_count, 1);
    assert_eq!(chunks[5].1.file_name, "agent-a1.jsonl");
    assert_eq!(chunks[5].1.file_type, "agent");
}

#[test]
fn stored_bytes_are_the_lines_joined_with_a_trailing_newline() {
    let backend = start();
    let client = Client::new(&backend);
    let sid = client.init("s");
    let first = [
        r#"{"type":"user","text":"héllo \"q\""}"#,
        "",
        "\u{1F600} tab\tend\r",
    ];
    assert_eq!(
        client
            .chunk(&sid, "s.jsonl", "transcript", 1, &first)
            .status,
        200
    );
    assert_eq!(
        client
            .chunk(&sid, "s.jsonl", "transcript", 4, &["last"])
            .status,
        200
    );
    let mut expected = first.join("\n").into_bytes();
    expected.extend_from_slice(b"\nlast\n");
    assert_eq!(backend.file("s", "s.jsonl").unwrap(), expected);
    assert_eq!(
        client
            .chunk(&sid, "agent-b.jsonl", "agent", 1, &["z"])
            .status,
        200
    );
    assert_eq!(
        backend.file_names("s"),
        vec!["agent-b.jsonl".to_string(), "s.jsonl".to_string()]
    );
    let snap = backend.session("s").unwrap();
    assert_eq!(snap.file_types["s.jsonl"], "transcript");
    assert_eq!(snap.file_types["agent-b.jsonl"], "agent");
    assert_eq!(backend.file("s", "nope.jsonl"), None);
    assert_eq!(backend.file("nope", "s.jsonl"), None);
    // A file keeps its type.
    assert_eq!(
        client
            .chunk(&sid, "agent-b.jsonl", "transcript", 2, &["z"])
            .status,
        400
    );
}

#[test]
fn chunk_metadata_is_merged_from_transcript_chunks_only() {
    let backend = start();
    let client = Client::new(&backend);
    let sid = client.init("s");
    let post = |file: &str, file_type: &str, first_line: u64, metadata: Value| {
        client.post(
            "/api/v1/sync/chunk",
            &json!({"session_id": sid, "file_name": file, "file_type": file_type,
                    "first_line": first_line, "lines": ["l"], "metadata": metadata}),
        )
    };
    assert_eq!(
        post(
            "s.jsonl",
            "transcript",
            1,
            json!({"summary": "one", "first_user_message": "hi"})
        )
        .status,
        200
    );
    assert_eq!(
        post(
            "s.jsonl",
            "transcript",
            2,
            json!({"summary": "two", "git_info": {"branch": "b"}})
        )
        .status,
        200
    );
    assert_eq!(
        post(
            "agent-x.jsonl",
            "agent",
            1,
            json!({"summary": "from agent"})
        )
        .status,
        200
    );
    assert_eq!(
        backend.session("s").unwrap().chunk_metadata,
        json!({"summary": "two", "first_user_message": "hi", "git_info": {"branch": "b"}})
    );
}

#[test]
fn field_limits() {
    let backend = start();
    let client = Client::new(&backend);
    let init = |body: Value| client.post("/api/v1/sync/init", &body);
    let meta = |field: &str, len: usize| json!({"external_id": "m", "transcript_path": "/p", "metadata": {field: "h".repeat(len)}});
    assert_eq!(
        init(json!({"external_id": "e".repeat(512), "transcript_path": "/p"})).status,
        200
    );
    let long_id = init(json!({"external_id": "e".repeat(513), "transcript_path": "/p"}));
    assert_eq!(long_id.status, 400);
    assert!(
        long_id.error().contains("external_id"),
        "{}",
        long_id.error()
    );
    assert_eq!(
        init(json!({"external_id": "", "transcript_path": "/p"})).status,
        400
    );
    assert_eq!(init(json!({"transcript_path": "/p"})).status, 400);
    assert_eq!(
        init(json!({"external_id": "t", "transcript_path": "p".repeat(8192)})).status,
        200
    );
    assert_eq!(
        init(json!({"external_id": "t", "transcript_path": "p".repeat(8193)})).status,
        400
    );
    assert_eq!(init(meta("cwd", 8192)).status, 200);
    assert_eq!(init(meta("cwd", 8193)).status, 400);
    assert_eq!(init(meta("hostname", 255)).status, 200);
    assert_eq!(init(meta("hostname", 256)).status, 400);
    assert_eq!(init(meta("username", 255)).status, 200);
    let long_user = init(meta("username", 256));
    assert_eq!(long_user.status, 400);
    assert!(
        long_user.error().contains("metadata.username"),
        "{}",
        long_user.error()
    );
    let remotes = |n: usize| {
        let list: Vec<Value> = (0..n)
            .map(|i| json!({"name": format!("r{i}"), "fetch_url": "u", "push_url": "u"}))
            .collect();
        json!({"external_id": "g", "transcript_path": "/p", "metadata": {"git_info": {"remotes": list}}})
    };
    assert_eq!(init(remotes(50)).status, 200);
    let too_many = init(remotes(51));
    assert_eq!(too_many.status, 400);
    assert!(too_many.error().contains("remotes"), "{}", too_many.error());
    let typed = init(
        json!({"external_id": "g", "transcript_path": "/p", "metadata": {"git_info": {"is_dirty": "yes"}}}),
    );
    assert_eq!(typed.status, 400);
    assert_eq!(init(json!(["not", "an", "object"])).status, 400);
    assert_eq!(
        client
            .send_bytes("POST", "/api/v1/sync/init", b"{not json")
            .status,
        400
    );

    let sid = client.init("s");
    let chunk = |name: &str, file_type: &str, lines: Value, metadata: Value| {
        client.post(
            "/api/v1/sync/chunk",
            &json!({"session_id": sid, "file_name": name, "file_type": file_type,
                    "first_line": 1, "lines": lines, "metadata": metadata}),
        )
    };
    let ok = |name: &str| chunk(name, "agent", json!(["l"]), Value::Null);
    assert_eq!(ok(&"n".repeat(512)).status, 200);
    assert_eq!(ok(&"n".repeat(513)).status, 400);
    assert_eq!(ok("").status, 400);
    assert_eq!(ok("../escape.jsonl").status, 400);
    // Path-encoded names are the server's (workflow files).
    assert_eq!(ok("dir/file.jsonl").status, 200);
    assert_eq!(ok("/dir/file.jsonl").status, 400);
    let todo = chunk("t.jsonl", "todo", json!(["l"]), Value::Null);
    assert_eq!(todo.status, 400);
    assert!(todo.error().contains("file_type"), "{}", todo.error());
    assert_eq!(
        chunk("e.jsonl", "agent", json!([]), Value::Null).status,
        400
    );
    assert_eq!(
        chunk("e.jsonl", "agent", json!(["a\nb"]), Value::Null).status,
        400
    );
    assert_eq!(
        chunk("e.jsonl", "agent", json!([1]), Value::Null).status,
        400
    );
    let tx = |metadata: Value| chunk("s.jsonl", "transcript", json!(["l"]), metadata);
    assert_eq!(tx(json!({"summary": "s".repeat(2049)})).status, 400);
    assert_eq!(
        tx(json!({"first_user_message": "f".repeat(8193)})).status,
        400
    );
    let ok_meta = tx(json!({"summary": "s".repeat(2048), "first_user_message": "f".repeat(8192)}));
    assert_eq!(ok_meta.status, 200, "{}", ok_meta.text());
}

#[test]
fn unknown_or_foreign_sessions_are_404() {
    let backend = Backend::start(BackendConfig {
        api_keys: vec![DEFAULT_LOCAL_API_KEY.into(), SECOND_KEY.into()],
        ..BackendConfig::default()
    })
    .unwrap();
    let mine = Client::new(&backend);
    let theirs = Client::with_key(&backend, SECOND_KEY);
    let sid = mine.init("s");
    let event = |session_id: &str| {
        json!({"session_id": session_id, "event_type": "session_end",
               "timestamp": "2026-02-12T16:02:25Z", "payload": {}})
    };
    let link = json!({"url": "https://github.com/o/r/pull/1", "source": "cli_hook"});

    for session_id in ["00000000-0000-4000-8000-000000000000", sid.as_str()] {
        let who = if session_id == sid { &theirs } else { &mine };
        assert_eq!(
            who.chunk(session_id, "s.jsonl", "transcript", 1, &["x"])
                .status,
            404
        );
        assert_eq!(who.event(&event(session_id)).status, 404);
        let path = format!("/api/v1/sessions/{session_id}/github-links");
        assert_eq!(who.post(&path, &link).status, 404);
    }
    assert_eq!(
        theirs
            .send(
                "PATCH",
                "/api/v1/sessions/s/summary",
                &json!({"summary": "x"})
            )
            .status,
        404
    );
    // The other user's init of the same external id is a session of its own.
    assert_ne!(theirs.init("s"), sid);
    assert!(backend.file_names("s").is_empty());
    assert_eq!(
        mine.chunk(&sid, "s.jsonl", "transcript", 1, &["x"]).status,
        200
    );
}

// ---------------------------------------------------------------------------
// Events, summary, GitHub links
// ---------------------------------------------------------------------------

#[test]
fn event_validation() {
    let backend = start();
    let client = Client::new(&backend);
    let sid = client.init("s");
    let good = json!({"session_id": sid, "event_type": "session_end",
                      "timestamp": "2026-02-12T16:02:25.5+01:00", "payload": {"reason": "exit"}});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    assert_eq!(
        client
            .event(&with("event_type", json!("session_start")))
            .status,
        400
    );
    assert_eq!(client.event(&without("event_type")).status, 400);
    let no_ts = client.event(&without("timestamp"));
    assert_eq!(no_ts.status, 400);
    assert!(no_ts.error().contains("timestamp"));
    assert_eq!(
        client
            .event(&with("timestamp", json!("2026-02-12 16:02:25")))
            .status,
        400
    );
    assert_eq!(
        client.event(&with("timestamp", json!("yesterday"))).status,
        400
    );
    assert_eq!(client.event(&with("payload", json!("text"))).status, 400);
    assert_eq!(client.event(&without("payload")).status, 400);
    assert!(backend.session("s").unwrap().events.is_empty());

    let ok = client.event(&good);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json(), json!({"success": true}));
    assert_eq!(backend.session("s").unwrap().events, vec![good]);
}

#[test]
fn summary_patch() {
    let backend = start();
    let client = Client::new(&backend);
    let patch = |external_id: &str, body: &Value| {
        client.send(
            "PATCH",
            &format!("/api/v1/sessions/{external_id}/summary"),
            body,
        )
    };
    assert_eq!(patch("earlier", &json!({"summary": "x"})).status, 404);
    client.init("earlier");
    let ok = patch("earlier", &json!({"summary": "Fix the parser"}));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json(), json!({"status": "ok"}));
    assert_eq!(
        backend.session("earlier").unwrap().summary_patch.as_deref(),
        Some("Fix the parser")
    );
    assert_eq!(
        patch("earlier", &json!({"summary": "s".repeat(2049)})).status,
        400
    );
    // The real server does not decompress this endpoint: a 2 KiB summary goes
    // uncompressed (accepted), a zstd body is refused.
    let long = "s".repeat(2048);
    assert_eq!(patch("earlier", &json!({"summary": long})).status, 200);
    let mut headers = client.headers();
    headers.push(("Content-Encoding", "zstd".into()));
    let body = zstd(&serde_json::to_vec(&json!({"summary": "z"})).unwrap());
    let compressed = send(
        backend.port(),
        "PATCH",
        "/api/v1/sessions/earlier/summary",
        &headers,
        &body,
    );
    assert_eq!(compressed.status, 400);
    assert_eq!(
        backend.session("earlier").unwrap().summary_patch.as_deref(),
        Some(long.as_str())
    );
    // Percent-encoded external ids are decoded.
    client.init("with space");
    assert_eq!(patch("with%20space", &json!({"summary": "y"})).status, 200);
    assert_eq!(
        backend
            .session("with space")
            .unwrap()
            .summary_patch
            .as_deref(),
        Some("y")
    );
}

#[test]
fn github_links_parse_and_refuse_duplicates() {
    let backend = start();
    let client = Client::new(&backend);
    let sid = client.init("s");
    let path = format!("/api/v1/sessions/{sid}/github-links");
    let pr = json!({"url": "https://github.com/octo/repo/pull/42", "title": "Fix", "source": "cli_hook"});
    let created = client.post(&path, &pr);
    assert_eq!(created.status, 201, "{}", created.text());
    let link = created.json();
    assert_eq!(link["link_type"], "pull_request");
    assert_eq!(link["owner"], "octo");
    assert_eq!(link["repo"], "repo");
    assert_eq!(link["ref"], "42");
    assert_eq!(link["url"], "https://github.com/octo/repo/pull/42");
    assert!(link["id"].as_u64().is_some());

    let dup = client.post(&path, &pr);
    assert_eq!(dup.status, 409);
    let same_pr = client.post(
        &path,
        &json!({"url": "https://github.com/octo/repo/pull/42/files", "source": "manual"}),
    );
    assert_eq!(same_pr.status, 409);

    let commit = client.post(
        &path,
        &json!({"url": "https://github.com/octo/repo/commit/0badc0de", "source": "cli_hook"}),
    );
    assert_eq!(commit.status, 201);
    assert_eq!(commit.json()["link_type"], "commit");
    assert_eq!(commit.json()["ref"], "0badc0de");
    assert_ne!(commit.json()["id"], link["id"]);

    let issue = client.post(
        &path,
        &json!({"url": "https://github.com/octo/repo/issues/3", "source": "cli_hook"}),
    );
    assert_eq!(issue.status, 400);
    let bad_source = client.post(
        &path,
        &json!({"url": "https://github.com/o/r/pull/2", "source": "bot"}),
    );
    assert_eq!(bad_source.status, 400);
    let mismatch = client.post(&path, &json!({"url": "https://github.com/o/r/pull/2", "source": "cli_hook", "link_type": "commit"}));
    assert_eq!(mismatch.status, 400);
    assert_eq!(backend.session("s").unwrap().github_links.len(), 2);
}

// ---------------------------------------------------------------------------
// Faults and rate limiting
// ---------------------------------------------------------------------------

#[test]
fn status_fault_answers_without_processing() {
    let backend = start();
    let client = Client::new(&backend);
    let sid = client.init("s");
    backend.inject(Fault::Status {
        path_prefix: "/api/v1/sync/chunk".into(),
        status: 503,
        retry_after_secs: Some(7),
        times: 2,
    });
    for _ in 0..2 {
        let resp = client.chunk(&sid, "s.jsonl", "transcript", 1, &["a"]);
        assert_eq!(resp.status, 503);
        assert_eq!(resp.header("retry-after"), Some("7"));
    }
    assert_eq!(backend.file("s", "s.jsonl"), None);
    assert_eq!(
        client
            .chunk(&sid, "s.jsonl", "transcript", 1, &["a"])
            .status,
        200
    );
    let faults: Vec<_> = backend
        .requests()
        .into_iter()
        .map(|r| (r.status, r.fault))
        .collect();
    assert_eq!(
        faults[1..],
        [
            (503, Some("status 503".to_string())),
            (503, Some("status 503".to_string())),
            (200, None)
        ]
    );
    backend.clear_requests();
    assert!(backend.requests().is_empty());
}

#[test]
fn lose_answer_stores_then_closes_without_any_response() {
    let backend = start();
    let client = Client::new(&backend);
    let sid = client.init("s");
    backend.inject(Fault::LoseAnswer {
        path_prefix: "/api/v1/sync/chunk".into(),
        times: 1,
    });
    let body = serde_json::to_vec(&json!({"session_id": sid, "file_name": "s.jsonl",
        "file_type": "transcript", "first_line": 1, "lines": ["a", "b"]}))
    .unwrap();
    let raw = exchange(
        backend.port(),
        "POST",
        "/api/v1/sync/chunk",
        &client.headers(),
        &body,
    );
    assert!(
        raw.is_empty(),
        "expected no response at all, got {:?}",
        String::from_utf8_lossy(&raw)
    );
    // ...but the chunk was stored, as init's resume point shows.
    assert_eq!(backend.file("s", "s.jsonl").unwrap(), b"a\nb\n");
    assert_eq!(
        client.init_resp("s").json()["files"]["s.jsonl"]["last_synced_line"],
        2
    );
    let record = backend
        .requests()
        .into_iter()
        .find(|r| r.fault.is_some())
        .unwrap();
    assert_eq!(record.fault.as_deref(), Some("lose_answer"));
    assert_eq!(record.status, 200);
    // A resend of the same chunk is an overlap now.
    assert_eq!(
        client
            .chunk(&sid, "s.jsonl", "transcript", 1, &["a", "b"])
            .status,
        400
    );
}

#[test]
fn delay_fault_delays_then_processes() {
    let backend = start();
    let client = Client::new(&backend);
    let sid = client.init("s");
    backend.inject(Fault::Delay {
        path_prefix: "/api/v1/sync/".into(),
        millis: 150,
        times: 1,
    });
    let started = Instant::now();
    let resp = client.chunk(&sid, "s.jsonl", "transcript", 1, &["a"]);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(resp.status, 200);
    let delayed: Vec<_> = backend
        .requests()
        .into_iter()
        .filter_map(|r| r.fault)
        .collect();
    assert_eq!(delayed, vec!["delay 150ms".to_string()]);
    // Spent after one use.
    assert_eq!(
        client
            .chunk(&sid, "s.jsonl", "transcript", 2, &["b"])
            .status,
        200
    );
    assert_eq!(
        backend
            .requests()
            .iter()
            .filter(|r| r.fault.is_some())
            .count(),
        1
    );
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    let backend = Backend::start(BackendConfig {
        rate_limit: Some(RateLimit {
            burst: 2,
            per_second: 0.01,
        }),
        ..BackendConfig::default()
    })
    .unwrap();
    let client = Client::new(&backend);
    assert_eq!(client.init_resp("a").status, 200);
    assert_eq!(client.init_resp("a").status, 200);
    let limited = client.init_resp("a");
    assert_eq!(limited.status, 429);
    let secs: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=100).contains(&secs), "{secs}");
    // Only uploads are limited, as on the real server.
    assert_eq!(
        client
            .send("GET", "/api/v1/auth/validate", &json!(null))
            .status,
        200
    );
    assert_eq!(
        RateLimit::default(),
        RateLimit {
            burst: 2000,
            per_second: 2.5
        }
    );
}

// ---------------------------------------------------------------------------
// Mirror and lifecycle
// ---------------------------------------------------------------------------

#[test]
fn mirror_persists_everything_and_reloads() {
    let dir = temp_dir("mirror");
    let config = BackendConfig {
        mirror_dir: Some(dir.clone()),
        ..BackendConfig::default()
    };
    let backend = Backend::start(config.clone()).unwrap();
    let client = Client::new(&backend);
    let sid = client.init("s");
    assert_eq!(
        client
            .chunk(&sid, "s.jsonl", "transcript", 1, &["a", "b"])
            .status,
        200
    );
    assert_eq!(
        client
            .chunk(&sid, "s.jsonl", "transcript", 3, &["c"])
            .status,
        200
    );
    assert_eq!(
        client
            .chunk(&sid, "agent-1.jsonl", "agent", 1, &["x"])
            .status,
        200
    );
    let event = json!({"session_id": sid, "event_type": "session_end", "timestamp": "2026-02-12T16:02:25Z", "payload": {"k": 1}});
    assert_eq!(client.event(&event).status, 200);
    assert_eq!(
        client
            .send(
                "PATCH",
                "/api/v1/sessions/s/summary",
                &json!({"summary": "sum"})
            )
            .status,
        200
    );
    let link = json!({"url": "https://github.com/o/r/pull/9", "source": "cli_hook"});
    assert_eq!(
        client
            .post(&format!("/api/v1/sessions/{sid}/github-links"), &link)
            .status,
        201
    );

    assert_eq!(
        std::fs::read(dir.join("s").join("s.jsonl")).unwrap(),
        b"a\nb\nc\n"
    );
    assert_eq!(
        std::fs::read(dir.join("s").join("agent-1.jsonl")).unwrap(),
        b"x\n"
    );
    assert!(dir.join("state.json").is_file());
    assert!(!dir.join("state.json.tmp").exists());
    let state = std::fs::read_to_string(dir.join("state.json")).unwrap();
    assert!(
        !state.contains(&DEFAULT_LOCAL_API_KEY[4..]),
        "state.json must not hold keys"
    );
    let before = backend.session("s").unwrap();
    backend.shutdown();

    // Bytes written but never acknowledged (a crash between the two writes).
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("s").join("s.jsonl"))
        .unwrap();
    f.write_all(b"unacknowledged\n").unwrap();
    drop(f);

    let backend = Backend::start(config).unwrap();
    let client = Client::new(&backend);
    assert_eq!(backend.file("s", "s.jsonl").unwrap(), b"a\nb\nc\n");
    assert_eq!(
        std::fs::read(dir.join("s").join("s.jsonl")).unwrap(),
        b"a\nb\nc\n"
    );
    let after = backend.session("s").unwrap();
    assert_eq!(after.session_id, before.session_id);
    assert_eq!(after.events, before.events);
    assert_eq!(after.summary_patch.as_deref(), Some("sum"));
    assert_eq!(after.github_links, before.github_links);
    assert_eq!(after.init_metadata, before.init_metadata);
    assert_eq!(after.file_types, before.file_types);
    let resumed = client.init_resp("s").json();
    assert_eq!(resumed["session_id"], sid.as_str());
    assert_eq!(resumed["files"]["s.jsonl"]["last_synced_line"], 3);
    assert_eq!(
        client
            .chunk(&sid, "s.jsonl", "transcript", 4, &["d"])
            .status,
        200
    );
    assert_eq!(
        std::fs::read(dir.join("s").join("s.jsonl")).unwrap(),
        b"a\nb\nc\nd\n"
    );
    // Link ids keep counting, duplicates are still known.
    assert_eq!(
        client
            .post(&format!("/api/v1/sessions/{sid}/github-links"), &link)
            .status,
        409
    );
    drop(backend);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mirror_keeps_odd_external_ids_inside_the_mirror() {
    let dir = temp_dir("odd");
    let backend = Backend::start(BackendConfig {
        mirror_dir: Some(dir.clone()),
        api_keys: vec![DEFAULT_LOCAL_API_KEY.into(), SECOND_KEY.into()],
        ..BackendConfig::default()
    })
    .unwrap();
    let client = Client::new(&backend);
    let sid = client.init("../../escape");
    assert_eq!(
        client.chunk(&sid, "f.jsonl", "agent", 1, &["x"]).status,
        200
    );
    assert_eq!(
        std::fs::read(dir.join("%2E%2E%2F%2E%2E%2Fescape").join("f.jsonl")).unwrap(),
        b"x\n"
    );
    let theirs = Client::with_key(&backend, SECOND_KEY);
    let sid2 = theirs.init("../../escape");
    assert_eq!(
        theirs.chunk(&sid2, "f.jsonl", "agent", 1, &["y"]).status,
        200
    );
    assert_eq!(
        std::fs::read(
            dir.join("~user-2")
                .join("%2E%2E%2F%2E%2E%2Fescape")
                .join("f.jsonl")
        )
        .unwrap(),
        b"y\n"
    );
    drop(backend);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shutdown_closes_the_port() {
    let backend = start();
    let port = backend.port();
    assert_eq!(backend.url(), format!("http://127.0.0.1:{port}"));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    backend.shutdown();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn slow_answer_fault_stores_first_then_answers_late() {
    let backend = start();
    let client = Client::new(&backend);
    let sid = client.init("s");
    backend.inject(Fault::SlowAnswer {
        path_prefix: "/api/v1/sync/chunk".into(),
        millis: 300,
        times: 1,
    });
    let waiting = std::thread::spawn({
        let client = Client::new(&backend);
        let sid = sid.clone();
        move || {
            let started = Instant::now();
            let resp = client.chunk(&sid, "s.jsonl", "transcript", 1, &["a"]);
            (resp.status, started.elapsed())
        }
    });
    // Stored (and logged) while the answer is still held back.
    let stored = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        backend.file("s", "s.jsonl").as_deref() == Some(&b"a\n"[..])
    });
    assert!(stored, "the chunk was not stored before the answer");
    let (status, took) = waiting.join().unwrap();
    assert_eq!(status, 200);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let faults: Vec<_> = backend
        .requests()
        .into_iter()
        .filter_map(|r| r.fault)
        .collect();
    assert_eq!(faults, vec!["slow answer 300ms".to_string()]);
}

// ---------------------------------------------------------------------------
// Today's server: capabilities, workflow files, metadata rules, read-back
// ---------------------------------------------------------------------------

#[test]
fn capabilities_are_public_and_configurable() {
    let backend = start();
    // No key, no User-Agent: public, as on the real server.
    let open = send(backend.port(), "GET", "/api/v1/capabilities", &[], b"");
    assert_eq!(open.status, 200, "{}", open.text());
    assert_eq!(
        open.json(),
        json!({"workflow_files": true, "workflow_journal": true, "opencode_subagents": true})
    );
    backend.inject(Fault::Status {
        path_prefix: "/api/v1/capabilities".into(),
        status: 503,
        retry_after_secs: None,
        times: 1,
    });
    let failing = send(backend.port(), "GET", "/api/v1/capabilities", &[], b"");
    assert_eq!(failing.status, 503);
    let again = send(backend.port(), "GET", "/api/v1/capabilities", &[], b"");
    assert_eq!(again.status, 200);

    let older = Backend::start(BackendConfig {
        capabilities: None,
        ..BackendConfig::default()
    })
    .unwrap();
    let missing = send(older.port(), "GET", "/api/v1/capabilities", &[], b"");
    assert_eq!(missing.status, 404, "{}", missing.text());
}

#[test]
fn workflow_files_are_accepted_under_path_encoded_names_and_mirrored_into_sub_folders() {
    let dir = temp_dir("workflows");
    let config = BackendConfig {
        mirror_dir: Some(dir.clone()),
        ..BackendConfig::default()
    };
    let backend = Backend::start(config.clone()).unwrap();
    let client = Client::new(&backend);
    let sid = client.init("s");
    let agent = "subagents/workflows/wf-1/agent-a1b2c3d.jsonl";
    let journal = "subagents/workflows/wf-1/journal.jsonl";
    assert_eq!(
        client.chunk(&sid, agent, "agent", 1, &["a", "b"]).status,
        200
    );
    let stored = client.chunk(&sid, journal, "workflow_journal", 1, &["j"]);
    assert_eq!(stored.status, 200, "{}", stored.text());
    assert_eq!(std::fs::read(dir.join("s").join(agent)).unwrap(), b"a\nb\n");
    assert_eq!(std::fs::read(dir.join("s").join(journal)).unwrap(), b"j\n");
    let snap = backend.session("s").unwrap();
    assert_eq!(snap.file_types[journal], "workflow_journal");
    assert_eq!(snap.file_types[agent], "agent");
    // The type of a file is fixed by its first chunk.
    assert_eq!(client.chunk(&sid, journal, "agent", 2, &["k"]).status, 400);

    for bad in [
        "../escape.jsonl",
        "subagents/../../escape.jsonl",
        "/tmp/abs.jsonl",
        "subagents//x.jsonl",
        "subagents/./x.jsonl",
        "subagents\\x.jsonl",
    ] {
        let resp = client.chunk(&sid, bad, "agent", 1, &["x"]);
        assert_eq!(resp.status, 400, "{bad}: {}", resp.text());
        assert!(resp.error().contains("file_name"), "{bad}: {}", resp.text());
    }
    assert!(
        !dir.join("escape.jsonl").exists() && !dir.parent().unwrap().join("escape.jsonl").exists()
    );
    assert_eq!(
        client.chunk(&sid, "todo.json", "todo", 1, &["x"]).status,
        400
    );

    // A restarted backend finds the files in their sub-folders.
    drop(backend);
    let backend = Backend::start(config).unwrap();
    assert_eq!(backend.file("s", agent).unwrap(), b"a\nb\n");
    let init = Client::new(&backend).init_resp("s");
    assert_eq!(init.json()["files"][journal]["last_synced_line"], 1);
    drop(backend);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_first_user_message_stays_and_each_summary_overwrites() {
    let backend = start();
    let client = Client::new(&backend);
    let sid = client.init("s");
    let post = |first_line: u64, metadata: Value| {
        client
            .post(
                "/api/v1/sync/chunk",
                &json!({"session_id": sid, "file_name": "s.jsonl", "file_type": "transcript",
                        "first_line": first_line, "lines": ["l"], "metadata": metadata}),
            )
            .status
    };
    assert_eq!(post(1, json!({"summary": "one"})), 200);
    assert_eq!(
        post(2, json!({"first_user_message": "first", "summary": "two"})),
        200
    );
    assert_eq!(
        post(
            3,
            json!({"first_user_message": "second", "summary": "three"})
        ),
        200
    );
    let meta = backend.session("s").unwrap().chunk_metadata;
    assert_eq!(meta["first_user_message"], "first");
    assert_eq!(meta["summary"], "three");
}

#[test]
fn stored_files_can_be_read_back_by_their_owner_over_the_api() {
    let backend = Backend::start(BackendConfig {
        api_keys: vec![DEFAULT_LOCAL_API_KEY.into(), SECOND_KEY.into()],
        ..BackendConfig::default()
    })
    .unwrap();
    let client = Client::new(&backend);
    let sid = client.init("ext-1");
    let journal = "subagents/workflows/wf-1/journal.jsonl";
    assert_eq!(
        client
            .chunk(&sid, journal, "workflow_journal", 1, &["{\"a\":1}", "é"])
            .status,
        200
    );

    let found = client.send("GET", "/api/v1/sessions/by-external-id/ext-1", &json!(null));
    assert_eq!(found.status, 200, "{}", found.text());
    assert_eq!(found.json(), json!({"session_id": sid}));
    let unknown = client.send("GET", "/api/v1/sessions/by-external-id/nope", &json!(null));
    assert_eq!(unknown.status, 404);

    let path = format!(
        "/api/v1/sessions/{sid}/sync/file?file_name=subagents%2Fworkflows%2Fwf-1%2Fjournal.jsonl"
    );
    let file = client.send("GET", &path, &json!(null));
    assert_eq!(file.status, 200, "{}", file.text());
    assert_eq!(file.body, "{\"a\":1}\né\n".as_bytes());
    assert!(file
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let no_name = client.send(
        "GET",
        &format!("/api/v1/sessions/{sid}/sync/file"),
        &json!(null),
    );
    assert_eq!(no_name.status, 400);
    let no_file = client.send(
        "GET",
        &format!("/api/v1/sessions/{sid}/sync/file?file_name=other.jsonl"),
        &json!(null),
    );
    assert_eq!(no_file.status, 404);

    // Another user's session is as unknown as a made-up one.
    let other = Client::with_key(&backend, SECOND_KEY);
    assert_eq!(other.send("GET", &path, &json!(null)).status, 404);
    assert_eq!(
        other
            .send("GET", "/api/v1/sessions/by-external-id/ext-1", &json!(null))
            .status,
        404
    );
    // And without a key, nothing.
    assert_eq!(
        send(
            backend.port(),
            "GET",
            &path,
            &[("User-Agent", UA.to_string())],
            b""
        )
        .status,
        401
    );
}

// ---------------------------------------------------------------------------
// Providers (issue 16): sessions keyed by (provider, external_id), Codex's
// codex_rollout and Cursor's latest_message_at
// ---------------------------------------------------------------------------

const THREAD: &str = "019ce3fb-1087-7980-8f92-8d0171aaea6a";
const CHILD: &str = "019ce419-22a5-7321-baa1-5d0152ca561e";

impl Client {
    fn init_as(&self, provider: &str, external_id: &str) -> Resp {
        self.post(
            "/api/v1/sync/init",
            &json!({"external_id": external_id, "transcript_path": "/p/x.jsonl", "provider": provider}),
        )
    }
    fn chunk_with(&self, sid: &str, file: &str, file_type: &str, metadata: Value) -> Resp {
        self.post(
            "/api/v1/sync/chunk",
            &json!({"session_id": sid, "file_name": file, "file_type": file_type,
                    "first_line": 1, "lines": ["{}"], "metadata": metadata}),
        )
    }
}

fn rollout(thread: &str, parent: Option<&str>) -> Value {
    let mut r = json!({"thread_uuid": thread, "rollout_path": format!("/h/.codex/sessions/rollout-{thread}.jsonl"),
                       "cwd": "/r", "source": "cli"});
    if let Some(p) = parent {
        r["parent_thread_uuid"] = json!(p);
        r["source"] = json!("subagent");
    }
    r
}

#[test]
fn the_same_external_id_under_two_providers_is_two_sessions() {
    let backend = start();
    let client = Client::new(&backend);
    let claude = client.init_as("claude-code", THREAD).json()["session_id"].clone();
    let codex = client.init_as("codex", THREAD).json();
    assert_eq!(codex["provider"], "codex");
    assert_ne!(codex["session_id"], claude);
    let sid = codex["session_id"].as_str().unwrap();
    assert_eq!(
        client
            .chunk(sid, "r.jsonl", "transcript", 1, &["{}"])
            .status,
        200
    );
    assert_eq!(
        backend.file_of("codex", THREAD, "r.jsonl").as_deref(),
        Some(&b"{}\n"[..])
    );
    assert_eq!(backend.file_of("claude-code", THREAD, "r.jsonl"), None);
    // A re-init of the codex session finds its files, not claude-code's.
    assert_eq!(
        client.init_as("codex", THREAD).json()["files"],
        json!({"r.jsonl": {"last_synced_line": 1}})
    );
    assert_eq!(
        client.init_as("claude-code", THREAD).json()["files"],
        json!({})
    );
    let unknown = client.init_as("aider", "x");
    assert_eq!(unknown.status, 400);
    assert!(
        unknown
            .error()
            .contains("claude-code, codex, opencode, cursor"),
        "{}",
        unknown.error()
    );
}

#[test]
fn codex_rollout_is_checked_recorded_per_thread_and_only_for_codex() {
    let backend = start();
    let client = Client::new(&backend);
    let claude = client.init_as("claude-code", "c1").json()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = client.chunk_with(
        &claude,
        "c1.jsonl",
        "transcript",
        json!({"codex_rollout": rollout(THREAD, None)}),
    );
    assert_eq!(refused.status, 400);
    assert!(
        refused.error().contains("only supported for codex"),
        "{}",
        refused.error()
    );

    let sid = client.init_as("codex", THREAD).json()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    for (bad, why) in [
        (json!({"rollout_path": "/p"}), "thread_uuid is required"),
        (
            json!({"thread_uuid": "not-a-uuid", "rollout_path": "/p"}),
            "valid UUID",
        ),
        (json!({"thread_uuid": THREAD}), "rollout_path is required"),
        (
            json!({"thread_uuid": THREAD, "rollout_path": "/p", "parent_thread_uuid": ""}),
            "must not be empty",
        ),
        (
            json!({"thread_uuid": THREAD, "rollout_path": "/p", "parent_thread_uuid": THREAD}),
            "must not equal",
        ),
        (
            json!({"thread_uuid": THREAD, "rollout_path": "/p", "source": "s".repeat(65)}),
            "source",
        ),
    ] {
        let r = client.chunk_with(
            &sid,
            "root.jsonl",
            "transcript",
            json!({"codex_rollout": bad}),
        );
        assert_eq!(r.status, 400, "{why}: {}", r.text());
        assert!(r.error().contains(why), "{why}: {}", r.error());
    }
    // An agent file's first chunk carries its own thread: recorded too.
    assert_eq!(
        client
            .chunk_with(
                &sid,
                "root.jsonl",
                "transcript",
                json!({"codex_rollout": rollout(THREAD, None)})
            )
            .status,
        200
    );
    assert_eq!(
        client
            .chunk_with(
                &sid,
                "child.jsonl",
                "agent",
                json!({"codex_rollout": rollout(CHILD, Some(THREAD))})
            )
            .status,
        200
    );
    // The parent is first-write-wins; an empty field keeps the stored one.
    let later = json!({"thread_uuid": CHILD, "rollout_path": "/moved", "parent_thread_uuid": "019ce419-2314-7450-93de-70915b5c62d2", "cwd": ""});
    let r = client.post(
        "/api/v1/sync/chunk",
        &json!({"session_id": sid, "file_name": "child.jsonl", "file_type": "agent",
                "first_line": 2, "lines": ["{}"], "metadata": {"codex_rollout": later}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let rows = backend.session_of("codex", THREAD).unwrap().codex_rollouts;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[CHILD]["parent_thread_uuid"], THREAD);
    assert_eq!(rows[CHILD]["rollout_path"], "/moved");
    assert_eq!(rows[CHILD]["cwd"], "/r");
    assert!(rows[THREAD].get("parent_thread_uuid").is_none());
}

#[test]
fn cursor_latest_message_at_and_path_encoded_subagents() {
    let backend = start();
    let client = Client::new(&backend);
    let sid = client.init_as("cursor", "c9").json()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let bad = client.chunk_with(
        &sid,
        "c9.jsonl",
        "transcript",
        json!({"latest_message_at": "yesterday"}),
    );
    assert_eq!(bad.status, 400);
    assert!(bad.error().contains("latest_message_at"), "{}", bad.error());
    let ok = client.chunk_with(
        &sid,
        "c9.jsonl",
        "transcript",
        json!({"latest_message_at": "2026-12-01T22:35:00Z"}),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        client
            .chunk(&sid, "subagents/s1.jsonl", "agent", 1, &["{}"])
            .status,
        200
    );
    let snap = backend.session_of("cursor", "c9").unwrap();
    assert_eq!(
        snap.chunk_metadata["latest_message_at"],
        "2026-12-01T22:35:00Z"
    );
    assert_eq!(snap.file_types["subagents/s1.jsonl"], "agent");
}

#[test]
fn other_providers_sessions_survive_a_restart_of_a_mirrored_backend() {
    let dir = temp_dir("providers");
    let config = || BackendConfig {
        mirror_dir: Some(dir.clone()),
        ..BackendConfig::default()
    };
    let backend = Backend::start(config()).unwrap();
    let client = Client::new(&backend);
    let sid = client.init_as("codex", THREAD).json()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        client
            .chunk(&sid, "r.jsonl", "transcript", 1, &["{\"a\":1}"])
            .status,
        200
    );
    drop(backend);
    assert_eq!(
        std::fs::read(dir.join("~codex").join(THREAD).join("r.jsonl")).unwrap(),
        b"{\"a\":1}\n"
    );
    let backend = Backend::start(config()).unwrap();
    assert_eq!(
        backend.file_of("codex", THREAD, "r.jsonl").as_deref(),
        Some(&b"{\"a\":1}\n"[..])
    );
    let client = Client::new(&backend);
    assert_eq!(
        client.init_as("codex", THREAD).json()["session_id"],
        sid.as_str()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
