//! A small hostile HTTP/1.1 server for the end-to-end tests: it reads each
//! request (headers, and a body by `Content-Length` or chunked) and lets a
//! script answer on the raw socket, so a test can send what no real backend
//! would: a body larger than promised, one byte every few seconds, an error
//! page that quotes the request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Script = dyn Fn(&Request, &mut TcpStream) -> std::io::Result<()> + Send + Sync;

/// Stops accepting when dropped.
pub struct HostileServer {
    port: u16,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl HostileServer {
    /// Serve on 127.0.0.1 (a free port), answering every request with `script`.
    pub fn start(
        script: impl Fn(&Request, &mut TcpStream) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let (stop2, seen2) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (script, seen) = (script.clone(), seen2.clone());
                std::thread::spawn(move || serve(conn, &*script, &seen));
            }
        });
        HostileServer { port, stop, seen }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request read so far.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(conn: TcpStream, script: &Script, seen: &Mutex<Vec<Request>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone the socket"));
    let mut conn = conn;
    while let Some(request) = read_request(&mut reader) {
        seen.lock().unwrap().push(request.clone());
        if script(&request, &mut conn).is_err() {
            break;
        }
    }
}

/// One whole request, body included (by `Content-Length` or chunked); `None`
/// when the connection ends first. Reading the body whole matters: a server
/// that closes with request bytes unread makes the kernel reset the
/// connection, which can destroy its answer before the client reads it.
pub fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    r.read_line(&mut line).ok().filter(|&n| n > 0)?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok().filter(|&n| n > 0)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if let Some(n) = request.header("content-length") {
        let mut body = vec![0u8; n.parse().ok()?];
        r.read_exact(&mut body).ok()?;
        request.body = body;
    } else if request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0u8; size + 2];
            r.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            request.body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(request)
}

/// A whole answer with a `Content-Length`.
pub fn respond(conn: &mut TcpStream, status: u16, body: &[u8]) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    conn.write_all(body)?;
    conn.flush()
}

/// The answer to init: a session, and the files the server says it holds.
pub fn init_answer(files: &serde_json::Value) -> Vec<u8> {
    serde_json::json!({"session_id": "hostile-session", "provider": "claude-code", "files": files})
        .to_string()
        .into_bytes()
}

/// The answer a chunk expects (its body is plain JSON while under 1 KiB).
pub fn chunk_answer(request: &Request) -> Vec<u8> {
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
    let first = body["first_line"].as_u64().unwrap_or(1);
    let lines = body["lines"].as_array().map_or(1, Vec::len) as u64;
    serde_json::json!({ "last_synced_line": first + lines - 1 })
        .to_string()
        .into_bytes()
}
