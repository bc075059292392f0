//! `wasi:http` behind the core's [`Transport`]: one request, body written in
//! the chunks the stream permits, answer read up to the core's
//! [`answer_limit`] (never a byte more). Timeouts are set per request so a
//! hung backend cannot hang the engine: the host's connect, first-byte and
//! between-bytes timeouts, and a total deadline kept here (a server sending
//! one byte every few seconds passes every between-bytes timeout, never the
//! total one).

use crate::core::io::{
    answer_limit, HttpRequest, HttpResponse, InFlight, Method, Transport, TransportError,
};
use std::time::Duration;
use wasi::clocks::monotonic_clock;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, Method as WasiMethod, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::poll::{poll, Pollable};
use wasi::io::streams::StreamError;

pub struct WasiHttp {
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub between_bytes_timeout: Duration,
    /// From the start of the request to the last byte of its answer.
    pub total_timeout: Duration,
}

impl Default for WasiHttp {
    fn default() -> Self {
        WasiHttp {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(60),
            between_bytes_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(300),
        }
    }
}

/// When a request must be over: monotonic clock, nanoseconds.
#[derive(Clone, Copy)]
struct Deadline {
    at: u64,
    total: Duration,
}

impl Deadline {
    fn after(total: Duration) -> Self {
        let nanos = u64::try_from(total.as_nanos()).unwrap_or(u64::MAX);
        Deadline {
            at: monotonic_clock::now().saturating_add(nanos),
            total,
        }
    }

    /// Block until `pollable` is ready; false if the deadline came first.
    fn wait(&self, pollable: &Pollable) -> bool {
        if pollable.ready() {
            return true;
        }
        let timer = monotonic_clock::subscribe_instant(self.at);
        poll(&[pollable, &timer]).contains(&0)
    }

    fn passed(&self) -> TransportError {
        TransportError::Lost(format!(
            "the backend did not answer in time (no whole answer within {} s)",
            self.total.as_secs_f64().ceil()
        ))
    }
}

impl Transport for WasiHttp {
    fn send(&mut self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let (future, deadline) = self.begin(request)?;
        answer(future, deadline)
    }

    /// The request goes out in full; the host carries the exchange (and the
    /// server works) while the engine goes on until it waits for the answer.
    fn start(&mut self, request: &HttpRequest) -> InFlight {
        match self.begin(request) {
            Ok((future, deadline)) => InFlight::new(move || answer(future, deadline)),
            Err(e) => InFlight::ready(Err(e)),
        }
    }
}

impl WasiHttp {
    /// Send the request, body and all; the answer comes through the future.
    fn begin(
        &self,
        request: &HttpRequest,
    ) -> Result<(FutureIncomingResponse, Deadline), TransportError> {
        let deadline = Deadline::after(self.total_timeout);
        let (scheme, rest) = request
            .url
            .split_once("://")
            .ok_or_else(|| TransportError::Connect(format!("not a URL: {}", request.url)))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let entries: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        let headers = Fields::from_list(&entries)
            .map_err(|e| TransportError::Connect(format!("header: {e:?}")))?;
        let outgoing = OutgoingRequest::new(headers);
        let method = match request.method {
            Method::Get => WasiMethod::Get,
            Method::Post => WasiMethod::Post,
            Method::Patch => WasiMethod::Patch,
        };
        let scheme = if scheme == "http" {
            Scheme::Http
        } else {
            Scheme::Https
        };
        let bad = |what: &str| TransportError::Connect(format!("invalid request {what}"));
        outgoing.set_method(&method).map_err(|()| bad("method"))?;
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| bad("scheme"))?;
        outgoing
            .set_authority(Some(authority))
            .map_err(|()| bad("authority"))?;
        outgoing
            .set_path_with_query(Some(path))
            .map_err(|()| bad("path"))?;
        let body = outgoing.body().map_err(|()| bad("body"))?;

        let options = RequestOptions::new();
        let nanos = |d: Duration| Some(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        // Hosts may not support every timeout; the ones they do are applied.
        let _ = options.set_connect_timeout(nanos(self.connect_timeout));
        let _ = options.set_first_byte_timeout(nanos(self.first_byte_timeout));
        let _ = options.set_between_bytes_timeout(nanos(self.between_bytes_timeout));

        let future = outgoing_handler::handle(outgoing, Some(options)).map_err(classify)?;
        match write_body(&body, &request.body, &deadline) {
            Ok(()) => OutgoingBody::finish(body, None).map_err(classify)?,
            // The host stops taking the body when the exchange ended first:
            // a refused connection, or an answer before the whole body. The
            // future says which; reporting the closed stream instead turned
            // "connection refused" (nothing sent) into "answer lost".
            Err(_) => drop(body),
        }
        Ok((future, deadline))
    }
}

/// Wait for the answer and read it, up to its limit, by the deadline.
fn answer(
    future: FutureIncomingResponse,
    deadline: Deadline,
) -> Result<HttpResponse, TransportError> {
    let response = loop {
        match future.get() {
            Some(Ok(Ok(response))) => break response,
            Some(Ok(Err(code))) => return Err(classify(code)),
            Some(Err(())) => return Err(TransportError::Lost("response already taken".into())),
            None => {
                if !deadline.wait(&future.subscribe()) {
                    return Err(deadline.passed());
                }
            }
        }
    };
    let status = response.status();
    let headers: Vec<(String, String)> = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let limit = answer_limit(status);
    let declared = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok());
    // A success answer declared too large is refused before a byte of it is
    // read. (An error answer is still read up to its small limit, for its
    // explanation.)
    if (200..300).contains(&status) && declared.is_some_and(|n| n > limit as u64) {
        return Ok(HttpResponse {
            status,
            headers,
            body: Vec::new(),
            cut_off: true,
        });
    }
    let incoming = response
        .consume()
        .map_err(|()| TransportError::Lost("response body unavailable".into()))?;
    let (body, cut_off) = read_body(&incoming, limit, &deadline)?;
    if !cut_off {
        drop(IncomingBody::finish(incoming));
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
        cut_off,
    })
}

/// Did the request possibly reach the server? Only failures before a
/// connection existed are "not connected" (safe to resend).
fn classify(code: ErrorCode) -> TransportError {
    let text = match &code {
        ErrorCode::HttpRequestDenied => {
            return TransportError::Connect(
                "the host refused this request (only the configured backend is allowed)".into(),
            )
        }
        ErrorCode::ConnectionRefused => "connection refused".to_string(),
        ErrorCode::ConnectionTimeout => "connect timed out".to_string(),
        ErrorCode::DnsTimeout | ErrorCode::DnsError(_) => "host name not resolved".to_string(),
        ErrorCode::DestinationNotFound | ErrorCode::DestinationUnavailable => {
            "destination unavailable".to_string()
        }
        ErrorCode::HttpResponseTimeout | ErrorCode::ConnectionReadTimeout => {
            return TransportError::Lost("the backend did not answer in time".into())
        }
        other => return TransportError::Lost(format!("{other:?}").to_lowercase()),
    };
    TransportError::Connect(text)
}

fn write_body(body: &OutgoingBody, mut data: &[u8], deadline: &Deadline) -> Result<(), String> {
    let stream = body
        .write()
        .map_err(|()| "request body stream unavailable".to_string())?;
    let pollable = stream.subscribe();
    let late = || "the request's deadline passed while sending its body".to_string();
    while !data.is_empty() {
        if !deadline.wait(&pollable) {
            return Err(late());
        }
        let permit = stream.check_write().map_err(stream_error)?;
        let n = data
            .len()
            .min(usize::try_from(permit).unwrap_or(usize::MAX));
        if n == 0 {
            continue;
        }
        stream.write(&data[..n]).map_err(stream_error)?;
        data = &data[n..];
    }
    stream.flush().map_err(stream_error)?;
    if !deadline.wait(&pollable) {
        return Err(late());
    }
    stream.check_write().map_err(stream_error)?;
    Ok(())
}

/// The body, at most `limit` bytes; `true` when there was more (reading
/// stopped there: the rest is never taken in).
fn read_body(
    incoming: &IncomingBody,
    limit: usize,
    deadline: &Deadline,
) -> Result<(Vec<u8>, bool), TransportError> {
    let stream = incoming
        .stream()
        .map_err(|()| TransportError::Lost("response body stream unavailable".into()))?;
    let pollable = stream.subscribe();
    let mut body = Vec::new();
    loop {
        if !deadline.wait(&pollable) {
            return Err(deadline.passed());
        }
        // One byte past the limit tells "exactly the limit" from "more".
        let want = (limit + 1 - body.len()).min(1 << 20);
        match stream.read(want as u64) {
            Ok(bytes) => body.extend_from_slice(&bytes),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(TransportError::Lost(stream_error(e))),
        }
        if body.len() > limit {
            body.truncate(limit);
            return Ok((body, true));
        }
    }
    Ok((body, false))
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "connection closed".into(),
        StreamError::LastOperationFailed(err) => err.to_debug_string(),
    }
}
