//! What `sync --all` may skip: a session whose every file ends exactly
//! where the engine's checkpoint says the server confirmed it, when that
//! checkpoint is the very one written after this backend (and key) last
//! confirmed the session. Running the component for such a session only
//! builds its redactor and asks the server what it already said (tens of
//! milliseconds each, seconds for a thousand sessions); this check reads a
//! stat and 4 KiB per file.
//!
//! The record ("the ledger") is `<state dir>/sync-all.json`: the backend
//! URL, a fingerprint of the key (FNV-1a, never the key), and per session
//! the FNV-1a of its checkpoint file. Any other sync that moves a
//! checkpoint (another backend's, a hook's) changes that hash, so the
//! session goes through the engine again; `--recheck` sends every session
//! through it regardless.

use crate::sessions::SessionFile;
use confab_sync::core::checkpoint::{self, Checkpoint, FileMark};
use confab_sync::core::io::{FileStat, ReadAt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const LEDGER_FILE: &str = "sync-all.json";
const VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    version: u32,
    backend_url: String,
    key_fingerprint: String,
    /// Session id -> FNV-1a (hex) of its checkpoint file when the backend confirmed it.
    sessions: BTreeMap<String, String>,
}

fn fingerprint(key: &str) -> String {
    format!("{:016x}", checkpoint::fnv1a(key.as_bytes()))
}

impl Ledger {
    /// The ledger for this backend and key: the stored one if it is for
    /// them, else an empty one (which will replace it).
    pub fn load(state_dir: &Path, backend_url: &str, key: &str) -> Ledger {
        let fresh = Ledger {
            version: VERSION,
            backend_url: backend_url.to_string(),
            key_fingerprint: fingerprint(key),
            sessions: BTreeMap::new(),
        };
        let Some(bytes) = read_bounded(&state_dir.join(LEDGER_FILE), 64 << 20) else {
            return fresh;
        };
        match serde_json::from_slice::<Ledger>(&bytes) {
            Ok(l)
                if l.version == VERSION
                    && l.backend_url == fresh.backend_url
                    && l.key_fingerprint == fresh.key_fingerprint =>
            {
                l
            }
            _ => fresh,
        }
    }

    /// Whether `session` can be skipped: see the module's doc.
    pub fn is_up_to_date(&self, state_dir: &Path, session: &SessionFile) -> bool {
        let Some(recorded) = self.sessions.get(&session.id) else {
            return false;
        };
        let Some((hash, c)) = read_checkpoint(state_dir, &session.id) else {
            return false;
        };
        &hash == recorded && files_match(session, &c)
    }

    /// After the engine synced `session` without a failure: its checkpoint
    /// now holds what this backend confirmed.
    pub fn confirmed(&mut self, state_dir: &Path, session: &SessionFile) {
        match read_checkpoint(state_dir, &session.id) {
            Some((hash, _)) => self.sessions.insert(session.id.clone(), hash),
            None => self.sessions.remove(&session.id),
        };
    }

    pub fn forget(&mut self, session: &SessionFile) {
        self.sessions.remove(&session.id);
    }

    /// Replace the stored ledger atomically; a failure only costs the next run its skips.
    pub fn save(&self, state_dir: &Path) -> Result<(), String> {
        let bytes = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".sync-all-")
            .tempfile_in(state_dir)
            .map_err(|e| e.to_string())?;
        tmp.write_all(&bytes).map_err(|e| e.to_string())?;
        tmp.persist(state_dir.join(LEDGER_FILE))
            .map_err(|e| e.error.to_string())?;
        Ok(())
    }
}

fn read_bounded(path: &Path, max: u64) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(max)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

fn read_checkpoint(state_dir: &Path, id: &str) -> Option<(String, Checkpoint)> {
    let bytes = read_bounded(
        &state_dir.join(checkpoint::file_name(id)),
        checkpoint::MAX_CHECKPOINT_BYTES as u64,
    )?;
    let c = Checkpoint::parse(&bytes, id)?;
    Some((format!("{:016x}", checkpoint::fnv1a(&bytes)), c))
}

/// Every file the engine would sync ends at its mark, with the same bytes
/// before it; every marked file is still there. Workflow folders are not
/// looked into: a session that has one always goes through the engine.
fn files_match(session: &SessionFile, c: &Checkpoint) -> bool {
    let folder = &session.folder;
    let own = folder.join(&session.id);
    if own.join("subagents/workflows").exists() {
        return false;
    }
    let mut on_disk: Vec<(String, PathBuf)> =
        vec![(format!("{}.jsonl", session.id), session.transcript.clone())];
    if let Ok(entries) = std::fs::read_dir(own.join("subagents")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".jsonl") && e.file_type().is_ok_and(|t| t.is_file()) {
                on_disk.push((name, e.path()));
            }
        }
    }
    for (name, path) in &on_disk {
        match c.files.get(name) {
            Some(mark) => {
                if !ends_at(path, mark) {
                    return false;
                }
            }
            // An empty file has nothing to send, and so no mark.
            None if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) => {}
            None => return false,
        }
    }
    // Marked files found elsewhere (the older layout's agent-<id>.jsonl
    // beside the transcript).
    for (name, mark) in &c.files {
        if on_disk.iter().any(|(n, _)| n == name) {
            continue;
        }
        if !ends_at(&folder.join(name), mark) {
            return false;
        }
    }
    true
}

/// The file is `mark.bytes` long and its last synced window is unchanged.
fn ends_at(path: &Path, mark: &FileMark) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let file = StdFile(file);
    file.stat().is_ok_and(|s| s.size == mark.bytes) && checkpoint::still_matches(&file, mark)
}

struct StdFile(std::fs::File);

impl ReadAt for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, String> {
        std::os::unix::fs::FileExt::read_at(&self.0, buf, offset).map_err(|e| e.to_string())
    }
    fn stat(&self) -> Result<FileStat, String> {
        let m = self.0.metadata().map_err(|e| e.to_string())?;
        Ok(FileStat {
            size: m.len(),
            mtime_ns: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    const URL: &str = "http://127.0.0.1:1";
    const KEY: &str = "cfb_Test-Key_Q7mZ2xR9vL4kP8sW1nB6cT3yH5jD0ef";

    /// A session folder with a transcript and one subagent, and a state
    /// folder holding the checkpoint of both ending where they end.
    fn setup() -> (tempfile::TempDir, SessionFile, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("project");
        let agents = folder.join("s1/subagents");
        std::fs::create_dir_all(&agents).unwrap();
        let transcript = folder.join("s1.jsonl");
        std::fs::write(&transcript, b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        std::fs::write(agents.join("agent-x.jsonl"), b"{\"c\":3}\n").unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        let mut c = Checkpoint::new("s1");
        for (name, path) in [
            ("s1.jsonl", transcript.clone()),
            ("agent-x.jsonl", agents.join("agent-x.jsonl")),
        ] {
            let file = StdFile(std::fs::File::open(&path).unwrap());
            let bytes = file.stat().unwrap().size;
            let mark = FileMark {
                lines: 1,
                bytes,
                window_hash: checkpoint::window_hash(&file, bytes, false).unwrap(),
                open: false,
            };
            c.files.insert(name.to_string(), mark);
        }
        std::fs::write(state.join(checkpoint::file_name("s1")), c.encode()).unwrap();
        let session = SessionFile {
            provider: "claude-code",
            id: "s1".into(),
            transcript,
            folder,
            size: 0,
            transcript_size: 0,
            modified: SystemTime::UNIX_EPOCH,
        };
        (dir, session, state)
    }

    #[test]
    fn skipped_only_for_the_backend_that_confirmed_that_very_checkpoint() {
        let (_dir, session, state) = setup();
        let mut ledger = Ledger::load(&state, URL, KEY);
        assert!(!ledger.is_up_to_date(&state, &session), "never confirmed");
        ledger.confirmed(&state, &session);
        assert!(ledger.is_up_to_date(&state, &session));
        ledger.save(&state).unwrap();
        assert!(Ledger::load(&state, URL, KEY).is_up_to_date(&state, &session));
        assert!(!Ledger::load(&state, "http://127.0.0.1:2", KEY).is_up_to_date(&state, &session));
        let other_key = "cfb_Else-Key_Q7mZ2xR9vL4kP8sW1nB6cT3yH5jD0ef";
        assert!(!Ledger::load(&state, URL, other_key).is_up_to_date(&state, &session));
        let stored = std::fs::read_to_string(state.join(LEDGER_FILE)).unwrap();
        assert!(!stored.contains(KEY), "{stored}");

        // Another sync moved the checkpoint (same files, other bytes in it).
        let path = state.join(checkpoint::file_name("s1"));
        let mut c = Checkpoint::parse(&std::fs::read(&path).unwrap(), "s1").unwrap();
        c.agent_ids.push("x".into());
        std::fs::write(&path, c.encode()).unwrap();
        assert!(!ledger.is_up_to_date(&state, &session));
    }

    #[test]
    fn a_grown_rewritten_or_new_file_is_not_skipped() {
        for change in ["grown", "rewritten", "new subagent", "workflow"] {
            let (_dir, session, state) = setup();
            let mut ledger = Ledger::load(&state, URL, KEY);
            ledger.confirmed(&state, &session);
            let agents = session.folder.join("s1/subagents");
            match change {
                "grown" => std::fs::write(&session.transcript, b"{\"a\":1}\n{\"b\":2}\n{").unwrap(),
                "rewritten" => {
                    std::fs::write(&session.transcript, b"{\"a\":1}\n{\"B\":2}\n").unwrap()
                }
                "new subagent" => std::fs::write(agents.join("agent-y.jsonl"), b"{}\n").unwrap(),
                _ => std::fs::create_dir_all(agents.join("workflows/run1")).unwrap(),
            }
            assert!(!ledger.is_up_to_date(&state, &session), "{change}");
        }
    }
}
