//! The core run natively (no WASI, no sandbox): std files, a blocking HTTP
//! client, std time. Only for the benchmark's "cost of the sandbox" ratio.

use confab_sync::core::io::{
    Clock, FileKind, FileStat, FileSystem, HttpRequest, HttpResponse, Method, ReadAt, Transport,
    TransportError,
};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

pub struct StdFs;
pub struct StdFile(std::fs::File);

impl ReadAt for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, String> {
        FileExt::read_at(&self.0, buf, offset).map_err(|e| e.to_string())
    }
    fn stat(&self) -> Result<FileStat, String> {
        let m = self.0.metadata().map_err(|e| e.to_string())?;
        let mtime_ns = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(FileStat {
            size: m.len(),
            mtime_ns,
        })
    }
}

impl FileSystem for StdFs {
    type File = StdFile;
    fn open_file(&self, path: &str) -> Result<StdFile, String> {
        std::fs::File::open(path)
            .map(StdFile)
            .map_err(|e| e.to_string())
    }
    fn kind(&self, path: &str) -> Result<FileKind, String> {
        let t = std::fs::metadata(path)
            .map_err(|e| e.to_string())?
            .file_type();
        Ok(if t.is_file() {
            FileKind::Regular
        } else if t.is_dir() {
            FileKind::Directory
        } else {
            FileKind::Other
        })
    }
    fn list_dir(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        match std::fs::read_dir(path) {
            Ok(entries) => Ok(Some(
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
    fn write_file(&self, path: &str, bytes: &[u8]) -> Result<(), String> {
        std::fs::write(path, bytes).map_err(|e| e.to_string())
    }
}

pub struct UreqTransport(ureq::Agent);

impl UreqTransport {
    pub fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build();
        UreqTransport(ureq::Agent::new_with_config(config))
    }
}

impl Transport for UreqTransport {
    fn send(&mut self, r: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let method = match r.method {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
        };
        let mut builder = ureq::http::Request::builder().method(method).uri(&r.url);
        for (k, v) in &r.headers {
            builder = builder.header(k, v);
        }
        let request = builder
            .body(r.body.clone())
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        let mut response = self
            .0
            .run(request)
            .map_err(|e| TransportError::Lost(e.to_string()))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let body = response
            .body_mut()
            .read_to_vec()
            .map_err(|e| TransportError::Lost(e.to_string()))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
            cut_off: false,
        })
    }
}

pub struct StdClock(Instant);

impl StdClock {
    pub fn new() -> Self {
        StdClock(Instant::now())
    }
}

impl Clock for StdClock {
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d)
    }
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
    fn jitter_seed(&mut self) -> u64 {
        self.0.elapsed().subsec_nanos() as u64
    }
}
