//! Shared scaffolding of the end-to-end tests: the built component loaded
//! once, the local backend, scratch copies of the fixture sessions, and
//! byte-for-byte comparisons.

use confab_host::backend::{Backend, BackendConfig, RequestRecord};
pub use confab_host::sandbox::{
    Grant, Instance, RedactionSettings, Sandbox, SessionConfig, SessionHandle, SyncError,
    SyncReport,
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
    SANDBOX.get_or_init(|| Sandbox::load(&component_path(), None).expect("load the component"))
}

/// A key the test backend accepts.
pub const KEY: &str = "cfb_TestKey000000000000000000000000000000001";

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
