//! The daemon's sessions, one small JSON file each in
//! `<state>/daemon/sessions/`. The hook writes a file (registration, then
//! the end of the session); the daemon reads the folder about once a second
//! and removes a file once it is done with the session. A file-based
//! registry survives the daemon's restart and needs no socket.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One live session, as the `SessionStart` hook registered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Claude Code's `session_id`: the session's external id on the backend.
    pub session_id: String,
    /// Absolute path of the transcript (it may not exist yet: Claude Code
    /// writes it with the first message).
    pub transcript_path: String,
    #[serde(default)]
    pub cwd: String,
    /// The process that ran the hook: the agent. Its exit ends the session.
    #[serde(default)]
    pub agent_pid: Option<u32>,
    /// When that process started (`/proc/<pid>/stat`), so that another
    /// process given the same pid later is not taken for the agent.
    #[serde(default)]
    pub agent_start: Option<u64>,
    /// The parent of that process when the hook ran, and when it started:
    /// the agent instead, if the hook's parent turns out to be a shell that
    /// ran the hook without `exec` and exits right after it (see
    /// `runner::adopt_wrapper_parent`).
    #[serde(default)]
    pub agent_parent_pid: Option<u32>,
    #[serde(default)]
    pub agent_parent_start: Option<u64>,
    /// Seconds since the Unix epoch.
    pub registered_at: u64,
    /// The `SessionEnd` hook input, once the session ended: the daemon
    /// does the final sync and sends it as the `session_end` payload.
    #[serde(default)]
    pub ended: Option<String>,
}

/// A registry file's name for a session id: the id itself when it is a
/// plain name, else a hash of it (an id is input, never a path).
pub fn file_name(session_id: &str) -> String {
    let plain = !session_id.is_empty()
        && session_id.len() <= 128
        && !session_id.starts_with('.')
        && session_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if plain {
        format!("{session_id}.json")
    } else {
        format!(
            "x-{:016x}.json",
            confab_sync::core::checkpoint::fnv1a(session_id.as_bytes())
        )
    }
}

pub fn path_of(dir: &Path, session_id: &str) -> PathBuf {
    dir.join(file_name(session_id))
}

/// Write atomically (a temporary file renamed over the old one), so the
/// daemon never reads half a file.
pub fn write(dir: &Path, registration: &Registration) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = path_of(dir, &registration.session_id);
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name(&registration.session_id),
        std::process::id()
    ));
    let bytes = serde_json::to_vec_pretty(registration).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)
}

/// A registration, or `None` when the file is gone or is not one.
pub fn read(path: &Path) -> Option<Registration> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Every registry file with its modification time (a changed time means
/// the hook rewrote it).
pub fn list(dir: &Path) -> Vec<(PathBuf, SystemTime)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, SystemTime)> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".json") && !name.starts_with('.')
        })
        .filter_map(|e| {
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((e.path(), modified))
        })
        .collect();
    files.sort();
    files
}

pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_not_plain_names_never_become_paths() {
        assert_eq!(file_name("258c7280-ae70"), "258c7280-ae70.json");
        for hostile in ["../x", "a/b", ".hidden", "", "a\nb"] {
            let name = file_name(hostile);
            assert!(name.starts_with("x-") && !name.contains('/'), "{name}");
        }
    }

    #[test]
    fn a_registration_round_trips_and_lists() {
        let dir = std::env::temp_dir().join(format!("confab-registry-{}", std::process::id()));
        let r = Registration {
            session_id: "s1".into(),
            transcript_path: "/p/s1.jsonl".into(),
            cwd: "/r".into(),
            agent_pid: Some(7),
            agent_start: None,
            agent_parent_pid: None,
            agent_parent_start: None,
            registered_at: 1,
            ended: None,
        };
        write(&dir, &r).unwrap();
        let listed = list(&dir);
        assert_eq!(listed.len(), 1);
        assert_eq!(read(&listed[0].0), Some(r));
        remove(&listed[0].0);
        assert!(list(&dir).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
