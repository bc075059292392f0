//! The one HTTP client of the engine: builds requests (bearer auth,
//! User-Agent, zstd for bodies of 1 KiB or more), retries as
//! [`super::retry`] decides, and maps statuses to [`SyncError`]s.
//! It moves bytes through a [`Transport`]; it never formats the API key into
//! anything but the `Authorization` header.

use super::api_key::KeyGuard;
use super::error::{ErrorKind, SyncError};
use super::io::{
    answer_limit, Clock, HttpRequest, HttpResponse, InFlight, Method, Transport, TransportError,
};
use super::limits::{
    COMPRESS_THRESHOLD, MAX_ANSWER_BYTES, MAX_ERROR_BODY_BYTES, ZSTD_LEVEL, ZSTD_WINDOW_LOG,
};
use super::protocol::ErrorBody;
use super::retry::{self, Decision, Outcome, Repeat};
use std::time::Duration;

/// The only bodies the server decompresses (confab-web `server.go`: its
/// zstd middleware wraps `/sync/*` only); a compressed summary PATCH or
/// github-link body would reach its JSON decoder as binary and be refused.
const DECOMPRESSED_PATHS: &str = "/api/v1/sync/";

pub const USER_AGENT: &str = concat!(
    "confab-sync/",
    env!("CARGO_PKG_VERSION"),
    " (wasm32-wasip2)"
);

/// Counters of what went over the wire, for the sync report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireStats {
    pub requests: u64,
    pub wire_bytes: u64,
    pub retries: u32,
}

/// A request started by [`Client::start`], kept for its retries.
pub struct PendingCall {
    request: HttpRequest,
    path: &'static str,
    repeat: Repeat,
    in_flight: InFlight,
}

pub struct Client<T, C> {
    transport: T,
    clock: C,
    base_url: String,
    authorization: String,
    /// Server bodies and transport messages may echo the key (a proxy that
    /// quotes the request's headers): every error passes through this.
    guard: KeyGuard,
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
            guard: KeyGuard::for_key(api_key),
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

    /// Start a new budget: each public operation (init, sync-all, ...) may
    /// wait up to the budget, however long the client lives.
    pub fn new_operation(&mut self) {
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
        self.complete(&request, path, repeat, None)
    }

    /// Like [`Client::call`], but returns once the request is on its way;
    /// [`Client::finish`] waits for the answer (and retries as `call` would).
    pub fn start(
        &mut self,
        method: Method,
        path: &'static str,
        body: Option<&[u8]>,
        repeat: Repeat,
    ) -> Result<PendingCall, SyncError> {
        let request = self.build(method, path, body)?;
        self.count(&request);
        let in_flight = self.transport.start(&request);
        Ok(PendingCall {
            request,
            path,
            repeat,
            in_flight,
        })
    }

    /// The body of the 2xx answer to a started call.
    pub fn finish(&mut self, call: PendingCall) -> Result<Vec<u8>, SyncError> {
        let first = call.in_flight.wait();
        self.complete(&call.request, call.path, call.repeat, Some(first))
    }

    fn count(&mut self, request: &HttpRequest) {
        self.stats.requests += 1;
        self.stats.wire_bytes += request.body.len() as u64;
    }

    /// The answer to `request`, retrying as `repeat` allows; `first` is the
    /// outcome of an attempt already made.
    fn complete(
        &mut self,
        request: &HttpRequest,
        path: &str,
        repeat: Repeat,
        mut first: Option<Result<HttpResponse, TransportError>>,
    ) -> Result<Vec<u8>, SyncError> {
        let mut retries = 0;
        loop {
            let result = match first.take() {
                Some(result) => result,
                None => {
                    self.count(request);
                    self.transport.send(request)
                }
            };
            let (outcome, error) = match result {
                Ok(resp) if (200..300).contains(&resp.status) => {
                    if resp.cut_off || resp.body.len() > answer_limit(resp.status) {
                        // Not retried: the same server would send the same.
                        return Err(SyncError::new(
                            ErrorKind::Http(resp.status),
                            format!(
                                "{path}: the backend's answer is larger than {} MiB: cut off, not used",
                                MAX_ANSWER_BYTES >> 20
                            ),
                        ));
                    }
                    return Ok(resp.body);
                }
                Ok(resp) => (
                    Outcome::Status {
                        status: resp.status,
                        retry_after: retry::parse_retry_after(resp.header("retry-after")),
                    },
                    status_error(path, &resp),
                ),
                Err(TransportError::Connect(m)) => (
                    Outcome::NotConnected,
                    SyncError::new(
                        ErrorKind::Transport,
                        format!("{path}: cannot reach the backend: {m}"),
                    ),
                ),
                Err(TransportError::Lost(m)) => (
                    Outcome::AnswerLost,
                    SyncError::new(
                        ErrorKind::Transport,
                        format!("{path}: no answer from the backend: {m}"),
                    ),
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
                _ => {
                    let SyncError { kind, message } = error;
                    return Err(SyncError::new(kind, self.guard.hide_string(message)));
                }
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

    fn build(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<HttpRequest, SyncError> {
        let mut headers = vec![
            ("authorization".to_string(), self.authorization.clone()),
            ("user-agent".to_string(), USER_AGENT.to_string()),
            ("accept".to_string(), "application/json".to_string()),
        ];
        let body = match body {
            None => Vec::new(),
            Some(raw) => {
                headers.push(("content-type".into(), "application/json".into()));
                if raw.len() >= COMPRESS_THRESHOLD && path.starts_with(DECOMPRESSED_PATHS) {
                    headers.push(("content-encoding".into(), "zstd".into()));
                    self.compress(raw)?
                } else {
                    raw.to_vec()
                }
            }
        };
        Ok(HttpRequest {
            method,
            url: format!("{}{}", self.base_url, path),
            headers,
            body,
        })
    }

    fn compress(&mut self, raw: &[u8]) -> Result<Vec<u8>, SyncError> {
        if self.compressor.is_none() {
            use zstd::zstd_safe::CParameter;
            let zstd_error = |e: std::io::Error| SyncError::io(format!("zstd: {e}"));
            let mut c = zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(zstd_error)?;
            c.set_parameter(CParameter::WindowLog(ZSTD_WINDOW_LOG))
                .map_err(zstd_error)?;
            c.set_parameter(CParameter::EnableLongDistanceMatching(true))
                .map_err(zstd_error)?;
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

/// The server's explanation in an error answer: the `error` field of its
/// JSON, else its text, from at most [`MAX_ERROR_BODY_BYTES`] of the body
/// (whatever the transport read), on one line, control characters blanked.
fn explanation(body: &[u8]) -> String {
    let body = &body[..body.len().min(MAX_ERROR_BODY_BYTES)];
    let text = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
    let mut shown = String::with_capacity(text.len().min(MAX_ERROR_BODY_BYTES));
    for c in text.chars() {
        if shown.len() + c.len_utf8() > MAX_ERROR_BODY_BYTES {
            break;
        }
        shown.push(if c.is_control() { ' ' } else { c });
    }
    shown.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Map a non-2xx answer to the error a host can match on.
fn status_error(path: &str, resp: &HttpResponse) -> SyncError {
    let text = explanation(&resp.body);
    let text = if text.is_empty() {
        "no explanation given".to_string()
    } else {
        text
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::protocol::{path_summary, PATH_CHUNK, PATH_INIT, PATH_VALIDATE};
    use crate::core::testing::{FakeClock, FakeServer, Fault, TEST_KEY};
    use serde_json::json;

    const BASE: &str = "https://confab.example.com/";
    const EXTERNAL_ID: &str = "3f2a9c4e-1b2d-4c5e-8f70-0a1b2c3d4e5f";

    fn client(server: &FakeServer, clock: &FakeClock) -> Client<FakeServer, FakeClock> {
        Client::new(server.clone(), clock.clone(), BASE, TEST_KEY)
    }

    /// An init body of exactly `size` bytes.
    fn init_body(size: usize) -> Vec<u8> {
        let build = |pad: usize| {
            serde_json::to_vec(&json!({
                "external_id": EXTERNAL_ID,
                "transcript_path": format!("/p/{EXTERNAL_ID}.jsonl"),
                "metadata": {"cwd": "c".repeat(pad)},
            }))
            .unwrap()
        };
        let body = build(size - build(0).len());
        assert_eq!(body.len(), size);
        body
    }

    /// Init, then the body of a chunk of `lines` starting at line 1.
    fn chunk_body(c: &mut Client<FakeServer, FakeClock>, lines: &[&str]) -> Vec<u8> {
        let answer = c.call(Method::Post, PATH_INIT, Some(&init_body(200)), Repeat::Safe);
        let answer: serde_json::Value = serde_json::from_slice(&answer.unwrap()).unwrap();
        serde_json::to_vec(&json!({
            "session_id": answer["session_id"], "file_name": format!("{EXTERNAL_ID}.jsonl"),
            "file_type": "transcript", "first_line": 1, "lines": lines,
        }))
        .unwrap()
    }

    fn secs(clock: &FakeClock) -> Vec<f64> {
        clock.sleeps().iter().map(Duration::as_secs_f64).collect()
    }

    #[test]
    fn small_bodies_are_sent_plain() {
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        let body = init_body(COMPRESS_THRESHOLD - 1);
        client(&server, &clock)
            .call(Method::Post, PATH_INIT, Some(&body), Repeat::Safe)
            .expect("init");
        let sent = &server.requests()[0];
        assert_eq!(sent.header("content-encoding"), None);
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(sent.wire_size, body.len());
        assert_eq!(sent.body, body);
    }

    #[test]
    fn bodies_of_1024_bytes_or_more_are_zstd_and_decompress_to_the_original() {
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        let mut c = client(&server, &clock);
        for size in [COMPRESS_THRESHOLD, 64 * 1024] {
            let body = init_body(size);
            c.call(Method::Post, PATH_INIT, Some(&body), Repeat::Safe)
                .expect("init");
            let sent = server.requests().pop().unwrap();
            assert_eq!(sent.status(), Some(200));
            assert_eq!(sent.header("content-encoding"), Some("zstd"));
            assert!(sent.wire_size < body.len(), "{} bytes compressed", size);
            assert_eq!(sent.body, body, "decompresses to the original");
        }
        assert_eq!(c.stats.requests, 2);
        let wire: usize = server.requests().iter().map(|r| r.wire_size).sum();
        assert_eq!(c.stats.wire_bytes, wire as u64);
    }

    /// The frame declares the 8 MiB window every decoder must accept
    /// (RFC 8878), not the whole chunk, and no more.
    #[test]
    fn compressed_chunks_need_an_8_mib_window_and_no_more() {
        use std::io::Read;
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        let mut c = client(&server, &clock);
        // 12 MiB of varied words (a chunk is at most 14 MiB).
        let mut raw = Vec::with_capacity(12 << 20);
        let mut x: u64 = 1;
        while raw.len() < 12 << 20 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            raw.extend_from_slice(format!("w{} ", x >> 52).as_bytes());
        }
        let wire = c.compress(&raw).unwrap();
        let decode = |window_log_max: u32| {
            let mut d = zstd::stream::read::Decoder::new(&wire[..]).unwrap();
            d.window_log_max(window_log_max).unwrap();
            let mut out = Vec::new();
            d.read_to_end(&mut out).map(|_| out)
        };
        assert_eq!(decode(ZSTD_WINDOW_LOG).unwrap(), raw);
        assert!(
            decode(ZSTD_WINDOW_LOG - 1).is_err(),
            "the window is not 8 MiB"
        );
    }

    #[test]
    fn bodies_outside_the_sync_endpoints_are_never_compressed() {
        // The server decompresses /api/v1/sync/* only.
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        server.add_session(EXTERNAL_ID);
        let summary = "s".repeat(2000);
        let body = serde_json::to_vec(&json!({ "summary": summary })).unwrap();
        client(&server, &clock)
            .call(
                Method::Patch,
                &path_summary(EXTERNAL_ID),
                Some(&body),
                Repeat::Safe,
            )
            .expect("summary");
        let sent = &server.requests()[0];
        assert_eq!(sent.header("content-encoding"), None);
        assert_eq!(sent.status(), Some(200));
        assert_eq!(server.summary(EXTERNAL_ID), Some(summary));
    }

    #[test]
    fn every_request_carries_bearer_auth_and_the_user_agent() {
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        let mut c = client(&server, &clock);
        c.call(Method::Get, PATH_VALIDATE, None, Repeat::Safe)
            .expect("validate");
        c.call(Method::Post, PATH_INIT, Some(&init_body(300)), Repeat::Safe)
            .expect("init");
        for sent in server.requests() {
            let bearer = format!("Bearer {TEST_KEY}");
            assert_eq!(sent.header("authorization"), Some(bearer.as_str()));
            let agent = sent.header("user-agent").unwrap_or("");
            assert!(agent.starts_with("confab-sync/"), "{agent}");
            assert!(agent.len() > "confab-sync/".len());
        }
        let first = &server.requests()[0];
        assert_eq!(first.method, Method::Get);
        assert_eq!(first.url, "https://confab.example.com/api/v1/auth/validate");
        assert_eq!(first.header("content-type"), None, "a GET has no body");
    }

    #[test]
    fn refused_keys_are_unauthorized_and_the_message_lacks_the_key() {
        for status in [401, 403] {
            let (server, clock) = (FakeServer::new(), FakeClock::new());
            server.fail_any(Fault::status(status));
            let error = client(&server, &clock)
                .call(Method::Get, PATH_VALIDATE, None, Repeat::Safe)
                .expect_err("refused");
            assert_eq!(error.kind, ErrorKind::Unauthorized, "{status}");
            assert!(error.message.contains(&status.to_string()));
            assert!(!error.message.contains(&TEST_KEY[4..]), "{}", error.message);
            assert_eq!(server.requests().len(), 1, "never retried");
            assert!(clock.sleeps().is_empty());
        }
        // A wrong key is refused by the server itself, with the same result.
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        let other = format!("cfb_{}", "Zq-9_".repeat(8));
        let error = Client::new(server.clone(), clock, BASE, &other)
            .call(Method::Get, PATH_VALIDATE, None, Repeat::Safe)
            .expect_err("unknown key");
        assert_eq!(error.kind, ErrorKind::Unauthorized);
        assert!(!error.message.contains(&other[4..]));
    }

    #[test]
    fn a_body_that_echoes_the_authorization_header_does_not_show_the_key() {
        for status in [400, 404, 409, 413, 500, 503] {
            let (server, clock) = (FakeServer::new(), FakeClock::new());
            for _ in 0..6 {
                server.fail_any(Fault::EchoAuthorization(status));
            }
            let error = client(&server, &clock)
                .call(Method::Post, PATH_INIT, Some(&init_body(200)), Repeat::Safe)
                .expect_err("refused");
            assert!(
                error.message.contains("Authorization: Bearer [API key]"),
                "{}",
                error.message
            );
            for w in TEST_KEY.as_bytes().windows(8) {
                let w = std::str::from_utf8(w).unwrap();
                assert!(!error.message.contains(w), "{status}: {}", error.message);
            }
        }
    }

    #[test]
    fn statuses_map_to_the_errors_a_host_matches_on() {
        let cases = [
            (404, ErrorKind::SessionNotFound),
            (409, ErrorKind::Conflict),
            (413, ErrorKind::Http(413)),
            (400, ErrorKind::Http(400)),
        ];
        for (status, kind) in cases {
            let (server, clock) = (FakeServer::new(), FakeClock::new());
            server.fail_any(Fault::status(status));
            let error = client(&server, &clock)
                .call(Method::Post, PATH_INIT, Some(&init_body(200)), Repeat::Safe)
                .expect_err("refused");
            assert_eq!(error.kind, kind, "{status}");
            assert!(error.message.contains(PATH_INIT), "{}", error.message);
            assert!(!error.message.contains('\n'));
            assert_eq!(server.requests().len(), 1, "{status} is not retried");
        }
    }

    #[test]
    fn the_servers_explanation_is_in_the_message() {
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        let mut c = client(&server, &clock);
        let body = chunk_body(&mut c, &["a"]);
        c.call(
            Method::Post,
            PATH_CHUNK,
            Some(&body),
            Repeat::ReadStateFirst,
        )
        .expect("first");
        let error = c
            .call(
                Method::Post,
                PATH_CHUNK,
                Some(&body),
                Repeat::ReadStateFirst,
            )
            .expect_err("overlap");
        assert_eq!(error.kind, ErrorKind::Http(400));
        assert!(
            error.message.contains("first_line must be 2"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_success_answer_over_32_mib_is_cut_off_with_an_http_error_and_not_retried() {
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        server.fail_any(Fault::Body {
            status: 200,
            body: vec![b' '; MAX_ANSWER_BYTES + 1],
        });
        let error = client(&server, &clock)
            .call(Method::Post, PATH_INIT, Some(&init_body(200)), Repeat::Safe)
            .expect_err("too large");
        assert_eq!(error.kind, ErrorKind::Http(200));
        assert!(
            error.message.contains("larger than 32 MiB"),
            "{}",
            error.message
        );
        assert_eq!(server.requests().len(), 1, "not retried");
    }

    #[test]
    fn an_answer_the_transport_cut_off_is_refused_even_when_it_parses() {
        struct Cut;
        impl Transport for Cut {
            fn send(&mut self, _: &HttpRequest) -> Result<HttpResponse, TransportError> {
                Ok(HttpResponse {
                    status: 200,
                    body: b"{\"valid\":true}".to_vec(),
                    cut_off: true,
                    ..HttpResponse::default()
                })
            }
        }
        let error = Client::new(Cut, FakeClock::new(), BASE, TEST_KEY)
            .call(Method::Get, PATH_VALIDATE, None, Repeat::Safe)
            .expect_err("cut off");
        assert_eq!(error.kind, ErrorKind::Http(200));
    }

    #[test]
    fn an_error_body_is_shown_to_at_most_256_bytes_on_one_line() {
        let mut body = b"first line\r\nsecond\tline\x1b[31m ".to_vec();
        body.extend(std::iter::repeat_n(b'x', 100_000));
        for body in [
            body.clone(),
            serde_json::to_vec(&json!({ "error": String::from_utf8_lossy(&body) })).unwrap(),
        ] {
            let (server, clock) = (FakeServer::new(), FakeClock::new());
            server.fail_any(Fault::Body { status: 400, body });
            let error = client(&server, &clock)
                .call(Method::Post, PATH_INIT, Some(&init_body(200)), Repeat::Safe)
                .expect_err("400");
            let shown = error.message.split_once("HTTP 400: ").unwrap().1;
            assert!(shown.len() <= MAX_ERROR_BODY_BYTES, "{} bytes", shown.len());
            assert!(shown.contains("first line"), "{shown}");
            assert!(
                !error.message.chars().any(char::is_control),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn a_server_error_on_a_safe_request_is_retried() {
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        server.fail_next(PATH_INIT, Fault::status(500));
        server.fail_next(PATH_INIT, Fault::StoreThenLose);
        let mut c = client(&server, &clock);
        c.call(Method::Post, PATH_INIT, Some(&init_body(200)), Repeat::Safe)
            .expect("retried");
        let results: Vec<_> = server.requests().iter().map(|r| r.status()).collect();
        assert_eq!(results, [Some(500), None, Some(200)]);
        assert_eq!(secs(&clock), [1.0, 2.0]);
        assert_eq!(c.stats.retries, 2);
    }

    #[test]
    fn retry_waits_are_spread_by_at_most_a_quarter() {
        let (server, clock) = (FakeServer::new(), FakeClock::with_jitter_seed(999));
        server.fail_any(Fault::status(502));
        client(&server, &clock)
            .call(Method::Get, PATH_VALIDATE, None, Repeat::Safe)
            .expect("retried");
        let wait = clock.sleeps()[0];
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_millis(1250));
    }

    #[test]
    fn a_chunk_is_not_resent_after_a_server_error_or_a_lost_answer() {
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        let mut c = client(&server, &clock);
        let body = chunk_body(&mut c, &["one", "two"]);
        server.clear_requests();

        server.fail_next(PATH_CHUNK, Fault::status(503));
        let error = c
            .call(
                Method::Post,
                PATH_CHUNK,
                Some(&body),
                Repeat::ReadStateFirst,
            )
            .expect_err("503");
        assert_eq!(error.kind, ErrorKind::Http(503));

        server.fail_next(PATH_CHUNK, Fault::StoreThenLose);
        let error = c
            .call(
                Method::Post,
                PATH_CHUNK,
                Some(&body),
                Repeat::ReadStateFirst,
            )
            .expect_err("lost");
        assert_eq!(error.kind, ErrorKind::Transport);

        assert_eq!(server.requests().len(), 2, "one attempt each");
        assert!(clock.sleeps().is_empty());
        let session = server.file_names(EXTERNAL_ID);
        assert_eq!(session.len(), 1, "the lost one was stored, once");
        assert_eq!(server.lines(EXTERNAL_ID, &session[0]), ["one", "two"]);
    }

    #[test]
    fn a_connection_failure_is_retried_even_for_a_chunk() {
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        let mut c = client(&server, &clock);
        let body = chunk_body(&mut c, &["one"]);
        server.clear_requests();
        server.fail_next(PATH_CHUNK, Fault::Connect);

        c.call(
            Method::Post,
            PATH_CHUNK,
            Some(&body),
            Repeat::ReadStateFirst,
        )
        .expect("resent: nothing reached the server");

        let results: Vec<_> = server.requests().iter().map(|r| r.result.clone()).collect();
        assert!(matches!(results[0], Err(TransportError::Connect(_))));
        assert_eq!(results[1], Ok(200));
        assert_eq!(secs(&clock), [1.0]);
        let name = format!("{EXTERNAL_ID}.jsonl");
        assert_eq!(server.lines(EXTERNAL_ID, &name), ["one"]);
    }

    #[test]
    fn transient_failures_give_up_after_four_retries() {
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        for _ in 0..10 {
            server.fail_any(Fault::Connect);
        }
        let error = client(&server, &clock)
            .call(Method::Get, PATH_VALIDATE, None, Repeat::Safe)
            .expect_err("down");
        assert_eq!(error.kind, ErrorKind::Transport);
        assert!(error.message.contains("cannot reach the backend"));
        assert_eq!(server.requests().len(), 5);
        assert_eq!(secs(&clock), [1.0, 2.0, 4.0, 8.0]);
    }

    #[test]
    fn rate_limits_give_up_after_five_retries() {
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        for _ in 0..10 {
            server.fail_any(Fault::Status {
                status: 429,
                retry_after: Some(2),
            });
        }
        let error = client(&server, &clock)
            .call(Method::Get, PATH_VALIDATE, None, Repeat::ReadStateFirst)
            .expect_err("limited");
        assert_eq!(error.kind, ErrorKind::RateLimited);
        assert_eq!(server.requests().len(), 6);
        assert_eq!(secs(&clock), [2.0; 5]);
    }

    #[test]
    fn the_wait_budget_stops_retries() {
        let (server, clock) = (FakeServer::new(), FakeClock::new());
        for _ in 0..10 {
            server.fail_any(Fault::status(500));
        }
        let mut c = client(&server, &clock);
        c.set_wait_budget(Duration::from_secs(3));

        let error = c
            .call(Method::Get, PATH_VALIDATE, None, Repeat::Safe)
            .expect_err("budget spent");

        assert_eq!(error.kind, ErrorKind::Http(500));
        assert_eq!(secs(&clock), [1.0, 2.0], "a 4 s wait would overrun 3 s");
        assert_eq!(server.requests().len(), 3);
        assert!(
            !c.pause(Duration::from_secs(1)),
            "no pause beyond the budget"
        );
        assert!(c.pause(Duration::ZERO));
        assert_eq!(clock.sleeps().len(), 3);
    }
}
