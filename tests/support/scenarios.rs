//! One session of each provider, for the scenarios of `tests/sync.rs` that
//! run over every provider (incremental sync, half-written last lines,
//! restarts with and without checkpoints, redaction): a scratch copy of a
//! real fixture session with its subagents, the grants its provider needs,
//! and what the backend must hold.

use super::providers::*;
use super::{config, SessionConfig, Synced, Workspace, SESSION_B};
use confab_host::backend::Backend;
use std::path::{Path, PathBuf};

pub struct SessionFixture {
    /// The name `init` sends.
    pub provider: &'static str,
    pub external_id: String,
    /// The file to sync (a root rollout for Codex).
    pub transcript: PathBuf,
    /// Every file of the session: (backend file name, source), transcript first.
    pub files: Vec<(String, PathBuf)>,
    /// What the provider's host grants, read-only.
    pub folders: Vec<PathBuf>,
    /// Owns the scratch folder.
    pub ws: Workspace,
}

/// Claude Code: SESSION_B and its two subagents.
pub fn claude_code() -> SessionFixture {
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_B);
    let files = super::session_files(&transcript)
        .into_iter()
        .map(|p| (base_name(&p), p))
        .collect();
    SessionFixture {
        provider: "claude-code",
        external_id: SESSION_B.to_string(),
        folders: vec![transcript.parent().unwrap().to_path_buf()],
        transcript,
        files,
        ws,
    }
}

/// Codex: the root that spawned three subagents, in a copy of the whole
/// sessions folder (other sessions' rollouts beside it).
pub fn codex() -> SessionFixture {
    let ws = Workspace::new();
    let sessions = ws.copy_codex_sessions();
    let transcript = rollout_of(&sessions, CODEX_ROOT);
    let mut files = vec![(base_name(&transcript), transcript.clone())];
    for kid in CODEX_KIDS {
        let p = rollout_of(&sessions, kid);
        files.push((base_name(&p), p));
    }
    SessionFixture {
        provider: "codex",
        external_id: CODEX_ROOT.to_string(),
        transcript,
        files,
        folders: vec![sessions],
        ws,
    }
}

/// Cursor: a conversation in the nested layout built from the fixtures'
/// lines (no final newline), with two subagents and `.txt` twins.
pub fn cursor() -> SessionFixture {
    let ws = Workspace::new();
    let flat = ws.copy_cursor_projects();
    let id = CURSOR_IDS[1];
    let (transcript, subs) = nest_cursor_conversation(&flat, id, &[CURSOR_IDS[0], CURSOR_IDS[3]]);
    let dir = transcript.parent().unwrap().to_path_buf();
    let mut files = vec![(base_name(&transcript), transcript.clone())];
    for sub in subs {
        files.push((format!("subagents/{}", base_name(&sub)), sub));
    }
    SessionFixture {
        provider: "cursor",
        external_id: id.to_string(),
        transcript,
        files,
        folders: vec![dir],
        ws,
    }
}

fn base_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

impl SessionFixture {
    pub fn config(&self, backend: &Backend) -> SessionConfig {
        config(backend, &self.transcript)
    }

    /// An instance with this provider's grants (and `state` read-write),
    /// opened and initialized.
    pub fn start(&self, backend: &Backend, state: Option<&Path>) -> Synced {
        self.start_with(backend, self.config(backend), state)
    }

    pub fn start_with(
        &self,
        backend: &Backend,
        config: SessionConfig,
        state: Option<&Path>,
    ) -> Synced {
        start_with(backend, config, self.folders.clone(), state)
    }

    pub fn transcript_name(&self) -> &str {
        &self.files[0].0
    }

    /// What the backend holds of one file of the session.
    pub fn stored(&self, backend: &Backend, name: &str) -> Vec<u8> {
        backend
            .file_of(self.provider, &self.external_id, name)
            .unwrap_or_default()
    }

    /// Every file of the session stored byte for byte (a last record
    /// without its newline with that one newline added).
    pub fn assert_all_stored(&self, backend: &Backend) {
        for (name, path) in &self.files {
            assert_stored_as(backend, self.provider, &self.external_id, name, path);
        }
    }

    /// Records (lines) in the transcript, its last one without newline too.
    pub fn records(&self) -> u64 {
        let bytes = std::fs::read(&self.transcript).unwrap();
        let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        newlines + u64::from(bytes.last().is_some_and(|&b| b != b'\n'))
    }

    /// Whether the transcript ends with a newline (Cursor's never do).
    pub fn ends_with_newline(&self) -> bool {
        std::fs::read(&self.transcript).unwrap().last() == Some(&b'\n')
    }

    /// Append raw bytes as the agent writes them: after a newline-ended
    /// file as they are; Cursor style (newline first) after one that is not.
    pub fn append(&self, bytes: &[u8]) {
        if self.ends_with_newline() {
            super::append(&self.transcript, bytes);
        } else {
            let mut b = vec![b'\n'];
            b.extend_from_slice(bytes.strip_suffix(b"\n").unwrap_or(bytes));
            super::append(&self.transcript, &b);
        }
    }

    /// Append complete records, one per line, the agent's way.
    pub fn append_records(&self, records: &[&str]) {
        let text: String = records.iter().map(|r| format!("{r}\n")).collect();
        self.append(text.as_bytes());
    }

    /// The transcript, its final newline taken off (if it has one).
    pub fn drop_final_newline(&self) {
        let mut bytes = std::fs::read(&self.transcript).unwrap();
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        std::fs::write(&self.transcript, bytes).unwrap();
    }

    /// A scratch folder for a state directory.
    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.ws.path().join(name)
    }
}
