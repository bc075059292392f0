//! Shared scaffolding of the end-to-end tests: the built component loaded
//! once, the local backend, scratch copies of the fixture sessions, and
//! byte-for-byte comparisons.

pub mod corpus;
pub mod home;
pub mod hostile;
pub mod last_line;
pub mod providers;
pub mod scenarios;

use confab_host::backend::{Backend, BackendConfig, RequestRecord};
pub use confab_host::sandbox::{
    Deadlines, Grant, Instance, RedactionSettings, Sandbox, SessionConfig, SessionHandle,
    SyncError, SyncReport,
};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The workspace root (this crate lives in `<root>/tests`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The fixture sessions shipped with the repo (MIT, see LICENSE.spotter there).
pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures/claude-code")
}

pub const SESSION_A: &str = "258c7280-ae70-4798-800f-63464d01a85d";
pub const SESSION_B: &str = "8463c716-a2ea-4c14-9efa-87158ebd9f20";

/// The release component; `scripts/test-all` builds it before the tests run.
pub fn component_path() -> PathBuf {
    let path = root().join("target/wasm32-wasip2/release/confab_sync.wasm");
    assert!(
        path.exists(),
        "{} is missing: run scripts/test-all, or build it with `cargo build --release --target wasm32-wasip2 -p confab-sync`",
        path.display()
    );
    path
}

/// The compiled component, shared by every test of the process.
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::load(&component_path(), None, Deadlines::Enforced).expect("load the component")
    })
}

/// A key the test backend accepts.
pub const KEY: &str = "cfb_Test-Key_Q7mZ2xR9vL4kP8sW1nB6cT3yH5jD0ef";

pub fn backend() -> Backend {
    Backend::start(BackendConfig {
        api_keys: vec![KEY.to_string()],
        ..BackendConfig::default()
    })
    .expect("start the backend")
}

/// A scratch folder holding copies of fixture files.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).expect("canonical temp dir")
    }

    /// Copy a fixture session (its `<uuid>.jsonl` and `<uuid>/` folder); returns the transcript path.
    pub fn copy_session(&self, uuid: &str) -> PathBuf {
        let src = fixtures();
        std::fs::copy(
            src.join(format!("{uuid}.jsonl")),
            self.path().join(format!("{uuid}.jsonl")),
        )
        .unwrap();
        copy_dir(&src.join(uuid), &self.path().join(uuid));
        self.path().join(format!("{uuid}.jsonl"))
    }

    /// Copy a single-file fixture under a new session name.
    pub fn copy_file(&self, fixture: &str, as_name: &str) -> PathBuf {
        let to = self.path().join(as_name);
        std::fs::copy(fixtures().join(fixture), &to).unwrap();
        to
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let to = self.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(&to, bytes).unwrap();
        to
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    if !from.exists() {
        return;
    }
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// The external id of a transcript: its file stem.
pub fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

pub fn config(backend: &Backend, transcript: &Path) -> SessionConfig {
    SessionConfig {
        backend_url: backend.url(),
        api_key: KEY.to_string(),
        external_id: stem(transcript),
        transcript_path: transcript.to_str().unwrap().to_string(),
        cwd: "/home/marco/projects/spotter".to_string(),
        hostname: Some("test-host".into()),
        username: Some("tester".into()),
        redaction: RedactionSettings {
            enabled: false,
            use_default_patterns: true,
            patterns: vec![],
        },
        state_dir: None,
        provider: None,
    }
}

/// One component instance with one open, initialized session.
pub struct Synced {
    pub instance: Instance,
    pub session: SessionHandle,
}

impl Synced {
    /// Instantiate the component with read access to the transcript's folder, open and init.
    pub fn start(backend: &Backend, config: SessionConfig) -> Self {
        let folder = Path::new(&config.transcript_path)
            .parent()
            .unwrap()
            .to_path_buf();
        let mut instance = sandbox()
            .instantiate(&Grant::new(vec![folder], &backend.url()))
            .expect("instantiate");
        let session = instance.open(&config).expect("no trap").expect("open");
        instance.init(session).expect("no trap").expect("init");
        Synced { instance, session }
    }

    pub fn sync(&mut self) -> SyncReport {
        self.try_sync().expect("sync-all")
    }

    pub fn try_sync(&mut self) -> Result<SyncReport, SyncError> {
        self.instance.sync_all(self.session).expect("no trap")
    }
}

/// Assert that the backend holds exactly the file's complete lines.
pub fn assert_stored(backend: &Backend, external_id: &str, file: &Path) {
    let name = file.file_name().unwrap().to_string_lossy();
    let source = std::fs::read(file).unwrap();
    let complete = match source.iter().rposition(|&b| b == b'\n') {
        Some(i) => &source[..=i],
        None => &source[..0],
    };
    let stored = backend.file(external_id, &name).unwrap_or_default();
    assert!(
        stored == complete,
        "{name}: the backend holds {} bytes ({} lines), the source's complete lines are {} bytes ({} lines)",
        stored.len(),
        stored.iter().filter(|&&b| b == b'\n').count(),
        complete.len(),
        complete.iter().filter(|&&b| b == b'\n').count()
    );
}

/// Every file of a fixture session folder: the transcript and its subagents.
pub fn session_files(transcript: &Path) -> Vec<PathBuf> {
    let mut files = vec![transcript.to_path_buf()];
    let sub = transcript.with_extension("").join("subagents");
    if let Ok(entries) = std::fs::read_dir(&sub) {
        let mut agents: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        agents.sort();
        files.extend(agents);
    }
    files
}

/// The chunk requests the backend answered with 200.
pub fn chunks(requests: &[RequestRecord]) -> Vec<&RequestRecord> {
    requests
        .iter()
        .filter(|r| r.path == "/api/v1/sync/chunk" && r.status == 200)
        .collect()
}

// ---------------------------------------------------------------------------
// Child processes (the real `wasmtime` CLI, `confab-host`) and the write probe.

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The real wasmtime CLI: `$WASMTIME`, else `wasmtime` on PATH, else
/// `$CARGO_HOME/bin` or `~/.cargo/bin` (where `scripts/setup` installs it).
pub fn wasmtime_cli() -> PathBuf {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let mut candidates: Vec<PathBuf> = Vec::new();
            if let Some(p) = std::env::var_os("WASMTIME") {
                candidates.push(p.into());
            }
            if let Some(path) = std::env::var_os("PATH") {
                candidates.extend(std::env::split_paths(&path).map(|d| d.join("wasmtime")));
            }
            if let Some(home) = std::env::var_os("CARGO_HOME") {
                candidates.push(PathBuf::from(home).join("bin/wasmtime"));
            }
            if let Some(home) = std::env::var_os("HOME") {
                candidates.push(PathBuf::from(home).join(".cargo/bin/wasmtime"));
            }
            candidates.into_iter().find(|p| p.is_file()).expect(
                "the wasmtime CLI is missing: run scripts/setup (cargo install --locked wasmtime-cli@48.0.8)",
            )
        })
        .clone()
}

/// The `confab-host` binary; `scripts/test-all` builds it before the tests run.
pub fn confab_host_path() -> PathBuf {
    let path = root().join("target/release/confab-host");
    assert!(
        path.exists(),
        "{} is missing: run scripts/test-all, or `cargo build --release -p confab-host`",
        path.display()
    );
    path
}

/// A child process that is killed if the test lets go of it early (a
/// failed assertion must not leave a `wasmtime run` behind).
pub struct Running {
    child: Option<Child>,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

/// How a child ended.
#[derive(Debug)]
pub struct Finished {
    /// `None`: it was still running at the limit and was killed.
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Finished {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// The exit code, if it exited by itself.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
}

impl Running {
    /// Start `cmd` with `stdin` as its whole standard input.
    pub fn spawn(mut cmd: Command, stdin: &[u8]) -> Running {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let mut input = child.stdin.take().unwrap();
        let bytes = stdin.to_vec();
        std::thread::spawn(move || {
            let _ = input.write_all(&bytes);
        });
        let drain = |mut r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                buf
            })
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        Running {
            child: Some(child),
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        let child = self.child.as_mut().expect("not waited for yet");
        child.try_wait().expect("try_wait").is_none()
    }

    /// Wait until it exits by itself, or kill it at `limit`.
    pub fn wait_up_to(mut self, limit: Duration) -> Finished {
        let mut child = self.child.take().expect("not waited for yet");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break Some(status);
            }
            if start.elapsed() >= limit {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Finished {
            status,
            stdout: self.stdout.take().unwrap().join().unwrap_or_default(),
            stderr: self.stderr.take().unwrap().join().unwrap_or_default(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Run to the end, killed after `limit` if it has not exited by then.
pub fn run_bounded(cmd: Command, stdin: &[u8], limit: Duration) -> Finished {
    Running::spawn(cmd, stdin).wait_up_to(limit)
}

/// Poll `check` every 20 ms until it holds or `limit` passes; whether it held.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if check() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The write probe (`tests/probe`): a wasm32-wasip2 command that tries to
/// write into its transcript's folder through wasi:filesystem. Built here
/// (std only, no dependencies, its own target folder) on first use.
pub fn write_probe() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = root().join("target/probe");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let out = Command::new(cargo)
                .args(["build", "--quiet", "--release", "--locked"])
                .args(["--target", "wasm32-wasip2", "--manifest-path"])
                .arg(root().join("tests/probe/Cargo.toml"))
                .arg("--target-dir")
                .arg(&target)
                .output()
                .expect("run cargo to build the write probe");
            assert!(
                out.status.success(),
                "building tests/probe failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            target.join("wasm32-wasip2/release/confab-write-probe.wasm")
        })
        .clone()
}
