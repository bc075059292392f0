//! Codex and Cursor sessions for the end-to-end tests: scratch copies of
//! the fixtures (`tests/fixtures/codex/`, `tests/fixtures/cursor/`, licenses
//! and sources beside them), the grants each provider needs, and what the
//! backend should hold.

use super::{root, sandbox, Grant, SessionConfig, Synced, Workspace};
use confab_host::backend::Backend;
use std::path::{Path, PathBuf};

pub fn codex_fixtures() -> PathBuf {
    root().join("tests/fixtures/codex")
}

pub fn cursor_fixtures() -> PathBuf {
    root().join("tests/fixtures/cursor")
}

/// The root thread of the fixtures that spawned three subagents.
pub const CODEX_ROOT: &str = "019ce3fb-1087-7980-8f92-8d0171aaea6a";
pub const CODEX_KIDS: [&str; 3] = [
    "019ce419-22a5-7321-baa1-5d0152ca561e",
    "019ce419-22de-7f50-80eb-86a44f32465b",
    "019ce419-2314-7450-93de-70915b5c62d2",
];

/// The Cursor fixtures' workspace folder name.
pub const CURSOR_WORKSPACE: &str = "Users-speedybee-Documents-dev-personal-config";
pub const CURSOR_IDS: [&str; 4] = [
    "10ce04b3-ba6a-44fd-b074-b6ef12daade4",
    "5b215917-3363-4870-b82b-7d04804a2c98",
    "bcb7e972-17e7-4407-97d8-23bf12387606",
    "de3b3e03-4d92-4717-8f0d-f641d26db4c4",
];

impl Workspace {
    /// A copy of the Codex fixtures' `sessions/` tree; returns its path.
    pub fn copy_codex_sessions(&self) -> PathBuf {
        let to = self.path().join(".codex/sessions");
        copy_tree(&codex_fixtures().join("sessions"), &to, &|_| true);
        to
    }

    /// A copy of the Cursor fixtures' home (`projects/`); returns the
    /// `agent-transcripts` folder.
    pub fn copy_cursor_projects(&self) -> PathBuf {
        let to = self.path().join(".cursor/projects");
        copy_tree(&cursor_fixtures().join("projects"), &to, &|_| true);
        to.join(CURSOR_WORKSPACE).join("agent-transcripts")
    }
}

/// Turns conversation `id` of `flat` (an `agent-transcripts` folder of the
/// older flat layout, as [`Workspace::copy_cursor_projects`] gives) into
/// the nested one: `<id>/<id>.jsonl` (no final newline, as Cursor writes)
/// beside its `.txt` twin, and each of `subagents` copied in as
/// `subagents/<other>.jsonl` with a `.txt` twin too (twins are never
/// uploaded). Returns the transcript and the subagent files.
pub fn nest_cursor_conversation(
    flat: &Path,
    id: &str,
    subagents: &[&str],
) -> (PathBuf, Vec<PathBuf>) {
    let dir = flat.join(id);
    std::fs::create_dir_all(dir.join("subagents")).unwrap();
    let transcript = dir.join(format!("{id}.jsonl"));
    std::fs::rename(flat.join(format!("{id}.jsonl")), &transcript).unwrap();
    std::fs::rename(
        flat.join(format!("{id}.txt")),
        dir.join(format!("{id}.txt")),
    )
    .unwrap();
    let subs = subagents
        .iter()
        .map(|other| {
            let sub = dir.join("subagents").join(format!("{other}.jsonl"));
            std::fs::copy(flat.join(format!("{other}.jsonl")), &sub).unwrap();
            std::fs::write(
                dir.join("subagents").join(format!("{other}.txt")),
                b"user: hi\n",
            )
            .unwrap();
            sub
        })
        .collect();
    (transcript, subs)
}

fn copy_tree(from: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target, keep);
        } else if keep(&entry.path()) {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every rollout under a sessions folder, sorted.
pub fn rollouts(sessions: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(sessions, &mut out);
    out.sort();
    out
}

/// The rollout of `thread` under `sessions`.
pub fn rollout_of(sessions: &Path, thread: &str) -> PathBuf {
    rollouts(sessions)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(&format!("{thread}.jsonl")))
        .unwrap_or_else(|| panic!("no rollout of {thread}"))
}

/// A rollout's `session_meta` payload.
pub fn session_meta(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "session_meta", "{}", path.display());
    first["payload"].clone()
}

/// The parent thread a rollout names, if it was spawned.
pub fn parent_of(path: &Path) -> Option<String> {
    let meta = session_meta(path);
    meta["source"]["subagent"]["thread_spawn"]["parent_thread_id"]
        .as_str()
        .or(meta["parent_thread_id"].as_str())
        .map(str::to_string)
}

/// What confab shows as a Codex session's first message: the first
/// `user_message` event's text, trimmed.
pub fn codex_first_user_message(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["type"] == "event_msg" && v["payload"]["type"] == "user_message")
                .then(|| v["payload"]["message"].as_str().unwrap().trim().to_string())
        })
}

/// A session config for `transcript`, its provider told by the path.
pub fn provider_config(backend: &Backend, transcript: &Path) -> SessionConfig {
    SessionConfig {
        cwd: String::new(),
        ..super::config(backend, transcript)
    }
}

/// One component instance reading `folders` (read-only) and writing
/// `state` (the checkpoint and Codex's index of rollouts), opened and initialized.
pub fn start_with(
    backend: &Backend,
    config: SessionConfig,
    folders: Vec<PathBuf>,
    state: Option<&Path>,
) -> Synced {
    let mut grant = Grant::new(folders, &backend.url());
    let mut config = config;
    if let Some(state) = state {
        std::fs::create_dir_all(state).unwrap();
        grant.read_write_dirs.push(state.to_path_buf());
        config.state_dir = Some(state.to_string_lossy().into_owned());
    }
    let mut instance = sandbox().instantiate(&grant).expect("instantiate");
    let session = instance.open(&config).expect("no trap").expect("open");
    instance.init(session).expect("no trap").expect("init");
    Synced { instance, session }
}

/// Every record of the file as the backend stores it: the source's bytes,
/// with the one final `\n` the source may lack (Cursor writes none after
/// its last record, and a last line that is a whole JSON record goes up).
pub fn records_with_final_newline(file: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(file).unwrap();
    if bytes.last().is_some_and(|&b| b != b'\n') {
        bytes.push(b'\n');
    }
    bytes
}

/// The file's complete lines (up to its last newline).
pub fn complete_lines(file: &Path) -> Vec<u8> {
    let source = std::fs::read(file).unwrap();
    match source.iter().rposition(|&b| b == b'\n') {
        Some(i) => source[..=i].to_vec(),
        None => Vec::new(),
    }
}

/// Assert that `provider`'s session holds exactly the file's records under
/// `name` (see [`records_with_final_newline`]).
pub fn assert_stored_as(
    backend: &Backend,
    provider: &str,
    external_id: &str,
    name: &str,
    file: &Path,
) {
    let want = records_with_final_newline(file);
    let stored = backend
        .file_of(provider, external_id, name)
        .unwrap_or_default();
    assert!(
        stored == want,
        "{provider} {external_id} {name}: the backend holds {} bytes ({} lines), the source's complete lines are {} bytes ({} lines)",
        stored.len(),
        stored.iter().filter(|&&b| b == b'\n').count(),
        want.len(),
        want.iter().filter(|&&b| b == b'\n').count()
    );
}

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// `2026-12-01T22:35:00Z` of a file's modification time.
pub fn mtime_rfc3339(path: &Path) -> String {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let secs = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days, written out independently of the component's.
    let mut year = 1970u64;
    let mut day = days;
    loop {
        let leap = is_leap(year);
        let len = if leap { 366 } else { 365 };
        if day < len {
            break;
        }
        day -= len;
        year += 1;
    }
    let leap = is_leap(year);
    let months = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while day >= months[month] {
        day -= months[month];
        month += 1;
    }
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        month + 1,
        day + 1,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A backend that keeps every request's body, so a test can read each
/// chunk's metadata.
pub fn recording_backend() -> Backend {
    Backend::start(confab_host::backend::BackendConfig {
        api_keys: vec![super::KEY.to_string()],
        record_bodies: true,
        ..confab_host::backend::BackendConfig::default()
    })
    .expect("start the backend")
}

/// The `metadata` a recorded chunk request carried, if any.
pub fn chunk_metadata(r: &confab_host::backend::RequestRecord) -> Option<serde_json::Value> {
    let body: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    body.get("metadata").cloned()
}
