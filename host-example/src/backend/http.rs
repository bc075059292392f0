//! The HTTP/1.1 front: accepts connections, applies injected faults, reads
//! each request body under a cap (first, so that a refused client still
//! reads its answer instead of a reset), runs the transport rules in the
//! order of the real server's middleware (route 404/405, Content-Type 415,
//! auth 401, then User-Agent 400, rate limit 429, Content-Encoding 415,
//! size 400 and the 1 KiB compression duty 400; the public capabilities
//! route answers before auth), hands the decoded body to
//! the route handler, and logs every request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use super::error::ApiError;
use super::faults::{Action, FaultQueue};
use super::limits::{max_wire_bytes, MAX_CHUNK_BODY_BYTES};
use super::ratelimit::RateLimiter;
use super::routes::{self, Endpoint, Reply};
use super::rules::{self, Encoding};
use super::store::Store;
use super::{lock, RequestRecord};

/// Everything the connection tasks share with the [`Backend`](super::Backend)
/// handle.
pub struct Shared {
    pub keys: Vec<String>,
    pub record_bodies: bool,
    pub store: Mutex<Store>,
    pub requests: Mutex<Vec<RequestRecord>>,
    pub faults: Mutex<FaultQueue>,
    pub limiter: Option<Mutex<RateLimiter>>,
    /// The body of `GET /api/v1/capabilities`; `None`: an older server, 404.
    pub capabilities: Option<Value>,
}

/// The service's error for a [`Fault::LoseAnswer`](super::Fault): hyper
/// closes a connection whose service fails without writing any response,
/// which is exactly a lost answer.
#[derive(Debug)]
struct LostAnswer;

impl std::fmt::Display for LostAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("answer dropped by an injected LoseAnswer fault")
    }
}

impl std::error::Error for LostAnswer {}

/// A status, its body, and a `Retry-After` if any.
struct Answer {
    status: u16,
    body: Reply,
    retry_after: Option<u64>,
}

impl From<ApiError> for Answer {
    fn from(e: ApiError) -> Self {
        Answer {
            status: e.status,
            body: Reply::Json(e.body()),
            retry_after: None,
        }
    }
}

/// Accepts connections until `stop` fires (or its sender is dropped).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| handle(shared.clone(), req));
                        // A connection error (client gone, lost answer) ends
                        // only this connection.
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // Out of file descriptors and the like: wait, don't spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, LostAnswer> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut record = RequestRecord {
        method: req.method().as_str().to_string(),
        path: req.uri().path().to_string(),
        status: 0,
        content_encoding: header("content-encoding"),
        user_agent: header("user-agent"),
        wire_bytes: 0,
        body_bytes: 0,
        chunk: None,
        fault: None,
        body: Vec::new(),
    };
    let action = lock(&shared.faults).take(&record.path);
    record.fault = action.as_ref().map(Action::label);
    let lose_answer = action == Some(Action::LoseAnswer);
    let slow_answer = match action {
        Some(Action::SlowAnswer { millis }) => Some(millis),
        _ => None,
    };

    let answer = match action {
        Some(Action::Status {
            status,
            retry_after_secs,
        }) => {
            // Read the body anyway, so the client is not cut off mid-send
            // and sees the status rather than a reset.
            if let Ok(wire) = read_body(req, wire_cap(None)).await {
                record.wire_bytes = wire.len();
            }
            Answer {
                status,
                body: Reply::Json(json!({ "error": format!("injected fault: status {status}") })),
                retry_after: retry_after_secs,
            }
        }
        Some(Action::Delay { millis }) => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            process(&shared, req, &mut record)
                .await
                .unwrap_or_else(|a| a)
        }
        Some(Action::LoseAnswer | Action::SlowAnswer { .. }) | None => {
            process(&shared, req, &mut record)
                .await
                .unwrap_or_else(|a| a)
        }
    };
    record.status = answer.status;
    lock(&shared.requests).push(record);
    if let Some(millis) = slow_answer {
        // Stored and logged; the answer waits (and is never heard if the
        // client hangs up meanwhile).
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
    if lose_answer {
        return Err(LostAnswer);
    }
    Ok(response(answer))
}

/// What may arrive on the wire for this endpoint (unknown paths get the
/// largest cap, so their body can still be drained).
fn wire_cap(endpoint: Option<&Endpoint>) -> usize {
    let limit = endpoint.map_or(MAX_CHUNK_BODY_BYTES, |e| e.spec().max_body);
    max_wire_bytes(limit, true)
}

/// Reads the whole body, refusing (400, as the server) past `cap` bytes.
async fn read_body(req: Request<Incoming>, cap: usize) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(rules::too_large(cap));
    }
    match Limited::new(req.into_body(), cap).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(rules::too_large(cap)),
        Err(e) => Err(ApiError::bad_request(format!(
            "could not read the body: {e}"
        ))),
    }
}

async fn process(
    shared: &Shared,
    req: Request<Incoming>,
    record: &mut RequestRecord,
) -> Result<Answer, Answer> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type");
    let authorization = header("authorization");
    let query = req.uri().query().map(str::to_string);
    let endpoint = routes::route(&record.method, &record.path);
    // The body is read before any refusal, so that a refused client still
    // gets its answer instead of a connection reset mid-upload.
    let wire = read_body(req, wire_cap(endpoint.as_ref().ok())).await?;
    record.wire_bytes = wire.len();

    let endpoint = endpoint?;
    let spec = endpoint.spec();
    if spec.public {
        // Only the capabilities are public: static, as on the real server,
        // no key and no body looked at.
        return match &shared.capabilities {
            Some(map) => Ok(Answer {
                status: 200,
                body: Reply::Json(map.clone()),
                retry_after: None,
            }),
            None => Err(ApiError::not_found("no endpoint at /api/v1/capabilities").into()),
        };
    }
    if spec.json_body {
        rules::check_content_type(content_type.as_deref())?;
    }
    let user = rules::authenticate(authorization.as_deref(), &shared.keys)?;
    rules::check_user_agent(record.user_agent.as_deref())?;
    if spec.rate_limited {
        if let Some(limiter) = &shared.limiter {
            if let Err(secs) = lock(limiter).take(user, Instant::now()) {
                return Err(Answer {
                    status: 429,
                    body: Reply::Json(json!({
                        "error": format!("rate limited: upload token bucket is empty, retry after {secs} s")
                    })),
                    retry_after: Some(secs),
                });
            }
        }
    }
    let body = if spec.json_body {
        let encoding =
            rules::check_encoding(record.content_encoding.as_deref(), spec.decompresses)?;
        let must_compress = spec.decompresses && encoding == Encoding::Identity;
        rules::decode_body(&wire, encoding, spec.max_body, must_compress)?
    } else {
        // GET: no body is expected and none is decoded (nor, as on the real
        // server, is its Content-Encoding looked at).
        Vec::new()
    };
    record.body_bytes = if spec.json_body {
        body.len()
    } else {
        wire.len()
    };
    if shared.record_bodies {
        record.body.clone_from(&body);
    }
    let (status, body) = routes::dispatch(
        &endpoint,
        user,
        &body,
        query.as_deref(),
        &shared.store,
        &mut record.chunk,
    )?;
    Ok(Answer {
        status,
        body,
        retry_after: None,
    })
}

fn response(answer: Answer) -> Response<Full<Bytes>> {
    let (body, content_type) = match answer.body {
        Reply::Json(value) => (
            serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec()),
            "application/json",
        ),
        Reply::Text(bytes) => (bytes, "text/plain; charset=utf-8"),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(secs) = answer.retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
