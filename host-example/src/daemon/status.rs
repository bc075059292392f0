//! What the daemon is doing, for `confab-host daemon status`: written by
//! the daemon to `<state>/daemon/status.json` (atomically) whenever it
//! changes, read by the status command. It names sessions, files and
//! errors; errors pass the key guard before they are stored.

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    pub updated_at: u64,
    /// The backend's origin (`scheme://host:port`); never the key.
    pub backend: String,
    /// True when the daemon runs the embedded local backend itself.
    pub embedded_backend: bool,
    pub interval_secs: f64,
    pub sessions: Vec<SessionStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionStatus {
    pub session_id: String,
    pub transcript_path: String,
    pub agent_pid: Option<u32>,
    pub registered_at: u64,
    /// `waiting for the transcript`, `syncing`, `retrying`, `ending`.
    pub state: String,
    /// Lines the backend holds, all files of the session together.
    pub lines_on_server: u64,
    pub files: Vec<FileLines>,
    pub last_sync_at: Option<u64>,
    pub last_error: Option<String>,
    /// Fresh instances after a crashed one.
    pub restarts: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileLines {
    pub name: String,
    pub lines: u64,
}

pub fn write(path: &Path, status: &DaemonStatus) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

pub fn read(path: &Path) -> Option<DaemonStatus> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// "3 s ago", "5 min ago", "2 h ago".
pub fn ago(now: u64, then: u64) -> String {
    let s = now.saturating_sub(then);
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// The human form of `daemon status`.
pub fn human(status: &DaemonStatus, now: u64) -> String {
    let mut out = format!(
        "daemon pid {}, started {}, backend {}{}, every {} s: {} session{}\n",
        status.pid,
        ago(now, status.started_at),
        status.backend,
        if status.embedded_backend {
            " (embedded)"
        } else {
            ""
        },
        status.interval_secs,
        status.sessions.len(),
        if status.sessions.len() == 1 { "" } else { "s" }
    );
    for s in &status.sessions {
        let synced = s
            .last_sync_at
            .map(|t| format!("synced {}", ago(now, t)))
            .unwrap_or_else(|| "not synced yet".to_string());
        out.push_str(&format!(
            "  {}  {}  {} lines on the server, {}{}\n    {}\n",
            s.session_id,
            s.state,
            s.lines_on_server,
            synced,
            if s.restarts > 0 {
                format!(", {} restarts", s.restarts)
            } else {
                String::new()
            },
            s.transcript_path
        ));
        if let Some(e) = &s.last_error {
            out.push_str(&format!("    last error: {e}\n"));
        }
    }
    out
}
