//! The engine's view of the outside world: files, HTTP and time, as small
//! traits. The WASI adapters (`src/wasi/`) implement them for the component;
//! tests implement them in memory. Nothing here does I/O itself.

use std::time::Duration;

/// What the engine needs to know to decide whether a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 when unknown).
    pub mtime_ns: u64,
}

/// An open file that supports positional reads.
pub trait ReadAt {
    /// Read up to `buf.len()` bytes at `offset`; 0 means end of file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, String>;
    /// Current size and modification time.
    fn stat(&self) -> Result<FileStat, String>;
}

/// What a path names, from its stat (symlinks followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Fifo,
    Socket,
    Device,
    Other,
}

impl FileKind {
    /// "a FIFO (named pipe)", for a message.
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Regular => "a regular file",
            FileKind::Directory => "a folder",
            FileKind::Fifo => "a FIFO (named pipe)",
            FileKind::Socket => "a socket",
            FileKind::Device => "a device",
            // wasmtime reports FIFOs and sockets alike as "unknown".
            FileKind::Other => "a special file (a FIFO, socket or device)",
        }
    }
}

/// The file system as granted by the host. Paths are absolute, as the
/// component sees them; errors are one-line messages.
pub trait FileSystem {
    type File: ReadAt;
    /// Open whatever is at `path` for reading, unchecked: use [`FileSystem::open`].
    fn open_file(&self, path: &str) -> Result<Self::File, String>;
    /// What is at `path`, from its stat alone: nothing is opened.
    fn kind(&self, path: &str) -> Result<FileKind, String>;
    /// Open a regular file for reading. Anything else is refused from its
    /// stat, before an open that could block: opening a FIFO waits for a
    /// writer for ever, and a folder or a device is no transcript.
    fn open(&self, path: &str) -> Result<Self::File, String> {
        match self.kind(path)? {
            FileKind::Regular => self.open_file(path),
            other => Err(format!(
                "it is {}, not a regular file: not read",
                other.describe()
            )),
        }
    }
    /// Names of the entries of a folder; `Ok(None)` when it does not exist.
    fn list_dir(&self, path: &str) -> Result<Option<Vec<String>>, String>;
    /// Replace the file at `path` with `bytes`, atomically where the platform
    /// allows (write a temporary file, then rename). Used only for the
    /// checkpoint, in the state folder the host grants.
    fn write_file(&self, path: &str, bytes: &[u8]) -> Result<(), String>;
    /// Whole content of a small file (e.g. `.git/config`), `None` when absent or unreadable.
    fn read_small(&self, path: &str, max_bytes: usize) -> Option<Vec<u8>> {
        let file = self.open(path).ok()?;
        // Grown as it fills, not `max_bytes` at once: a checkpoint is a few
        // hundred bytes, and a 4 MiB buffer per read stayed in every
        // long-lived instance (a linear memory never shrinks).
        let mut buf = vec![0u8; max_bytes.min(SMALL_READ_START)];
        let mut filled = 0;
        loop {
            if filled == buf.len() {
                if buf.len() >= max_bytes {
                    break;
                }
                buf.resize((buf.len() * 2).min(max_bytes), 0);
            }
            match file.read_at(&mut buf[filled..], filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(_) => return None,
            }
        }
        buf.truncate(filled);
        Some(buf)
    }
}

/// The first buffer of [`FileSystem::read_small`].
const SMALL_READ_START: usize = 16 << 10;

/// HTTP methods the protocol uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
}

/// A fully built request: the transport only moves bytes.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A response, its body read up to [`answer_limit`].
#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The answer was longer than [`answer_limit`] (counted, or declared by
    /// its `Content-Length`): the transport stopped reading, `body` holds
    /// at most the limit.
    pub cut_off: bool,
}

/// How much of an answer with this status a transport reads: every host
/// reads the same, whatever the server sends (a 600 MiB body must not
/// exhaust a component's memory, nor a Node host's).
pub fn answer_limit(status: u16) -> usize {
    if (200..300).contains(&status) {
        super::limits::MAX_ANSWER_BYTES
    } else {
        super::limits::MAX_ERROR_BODY_BYTES
    }
}

impl HttpResponse {
    /// First header with this name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The connection could not be made: the request surely was not processed.
    Connect(String),
    /// Sent (maybe partly) but the answer was lost or timed out: the server
    /// may have processed it.
    Lost(String),
}

impl TransportError {
    pub fn message(&self) -> &str {
        match self {
            TransportError::Connect(m) | TransportError::Lost(m) => m,
        }
    }
}

/// Moves one request to the backend and its answer back. A transport reads
/// at most [`answer_limit`] bytes of an answer and says when it cut it off.
pub trait Transport {
    fn send(&mut self, request: &HttpRequest) -> Result<HttpResponse, TransportError>;

    /// Send `request` and return before its answer when the transport can
    /// (wasi:http can: the host carries the exchange while the engine
    /// prepares the next chunk). The default sends it to the end.
    fn start(&mut self, request: &HttpRequest) -> InFlight {
        InFlight::ready(self.send(request))
    }
}

/// A request under way; [`InFlight::wait`] gives its answer. Dropping it
/// abandons the request (its answer counts as lost).
pub struct InFlight(Box<dyn FnOnce() -> Result<HttpResponse, TransportError>>);

impl InFlight {
    /// An exchange that is already over.
    pub fn ready(result: Result<HttpResponse, TransportError>) -> InFlight {
        InFlight(Box::new(move || result))
    }

    /// An exchange that `wait` finishes.
    pub fn new(wait: impl FnOnce() -> Result<HttpResponse, TransportError> + 'static) -> InFlight {
        InFlight(Box::new(wait))
    }

    pub fn wait(self) -> Result<HttpResponse, TransportError> {
        (self.0)()
    }
}

/// Time, so retry waits are testable without waiting.
pub trait Clock {
    /// Block for `duration`.
    fn sleep(&mut self, duration: Duration);
    /// Monotonic time, for bounding total retry time.
    fn now(&self) -> Duration;
    /// A few random bits for retry jitter.
    fn jitter_seed(&mut self) -> u64;
}

/// A [`FileSystem`] that counts the bytes read through it, so a report can
/// say what a sync cost in reads (a restart should read kilobytes).
pub struct CountingFs<F> {
    inner: F,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<F> CountingFs<F> {
    pub fn new(inner: F) -> Self {
        CountingFs {
            inner,
            read: Default::default(),
        }
    }
    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read.get()
    }
}

pub struct CountingFile<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: ReadAt> ReadAt for CountingFile<R> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, String> {
        let n = self.inner.read_at(buf, offset)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
    fn stat(&self) -> Result<FileStat, String> {
        self.inner.stat()
    }
}

impl<F: FileSystem> FileSystem for CountingFs<F> {
    type File = CountingFile<F::File>;
    fn open_file(&self, path: &str) -> Result<Self::File, String> {
        Ok(CountingFile {
            inner: self.inner.open_file(path)?,
            read: self.read.clone(),
        })
    }
    fn kind(&self, path: &str) -> Result<FileKind, String> {
        self.inner.kind(path)
    }
    fn list_dir(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        self.inner.list_dir(path)
    }
    fn write_file(&self, path: &str, bytes: &[u8]) -> Result<(), String> {
        self.inner.write_file(path, bytes)
    }
}
