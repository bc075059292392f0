//! The sessions on disk, for `list`, `save` and `sync --all`: found by
//! listing folders and reading file sizes, described from a bounded read of
//! each transcript's first lines, never from whole files.
//!
//! Each agent's layout is a [`SessionSource`]; [`ClaudeCode`] is the only
//! one today (`~/.claude/projects/<project>/<uuid>.jsonl`). Another agent
//! is another implementation added to [`sources`].

use confab_sync::core::checkpoint::{self, Checkpoint};
use confab_sync::core::metadata::{self, Wants};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One session's files on disk.
#[derive(Debug, Clone)]
pub struct SessionFile {
    /// The agent that wrote it (`claude-code`).
    pub provider: &'static str,
    /// The session id: the transcript's file stem, as `sync` sends it.
    pub id: String,
    pub transcript: PathBuf,
    /// The folder the agent keeps the session in (for Claude Code, the
    /// project's folder under `projects/`).
    pub folder: PathBuf,
    /// Bytes of the transcript and of its subagent files.
    pub size: u64,
    /// Bytes of the transcript alone.
    pub transcript_size: u64,
    /// Last modification of the transcript.
    pub modified: SystemTime,
}

/// What the first lines of a transcript say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// The project folder the agent ran in (`cwd` of the first line that has one).
    pub cwd: Option<String>,
    /// `timestamp` of the first line that has one (RFC 3339, as written).
    pub started: Option<String>,
    /// The first user message, sanitized as the engine sends it (one line).
    pub first_user_message: Option<String>,
}

/// Where an agent keeps its sessions, and how to read their first lines.
pub trait SessionSource {
    fn provider(&self) -> &'static str;
    /// Every session, in no particular order; a folder that cannot be read is skipped.
    fn sessions(&self) -> Vec<SessionFile>;
    fn details(&self, session: &SessionFile) -> Details;
}

/// The sources of this machine's user (from `HOME` and the agents' variables).
pub fn sources() -> Vec<Box<dyn SessionSource>> {
    let mut found: Vec<Box<dyn SessionSource>> = Vec::new();
    if let Some(claude) = ClaudeCode::from_env() {
        found.push(Box::new(claude));
    }
    found
}

/// Every session of every source, most recently modified first.
pub fn all_sessions(sources: &[Box<dyn SessionSource>]) -> Vec<SessionFile> {
    let mut all: Vec<SessionFile> = sources.iter().flat_map(|s| s.sessions()).collect();
    all.sort_by(|a, b| b.modified.cmp(&a.modified).then_with(|| a.id.cmp(&b.id)));
    all
}

/// The source that found `session`.
pub fn source_of<'s>(
    sources: &'s [Box<dyn SessionSource>],
    session: &SessionFile,
) -> Option<&'s dyn SessionSource> {
    sources
        .iter()
        .find(|s| s.provider() == session.provider)
        .map(|s| s.as_ref())
}

/// Sessions whose id is `wanted` or starts with it (an exact id wins over
/// longer ids it is a prefix of).
pub fn matching<'a>(sessions: &'a [SessionFile], wanted: &str) -> Vec<&'a SessionFile> {
    let exact: Vec<_> = sessions.iter().filter(|s| s.id == wanted).collect();
    if !exact.is_empty() {
        return exact;
    }
    sessions
        .iter()
        .filter(|s| !wanted.is_empty() && s.id.starts_with(wanted))
        .collect()
}

/// Claude Code: `$CLAUDE_CONFIG_DIR/projects`, else `~/.claude/projects`,
/// one folder per project, `<uuid>.jsonl` in it, subagents in `<uuid>/subagents/`.
pub struct ClaudeCode {
    pub projects: PathBuf,
}

impl ClaudeCode {
    pub fn from_env() -> Option<ClaudeCode> {
        let config = std::env::var_os("CLAUDE_CONFIG_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .map(|h| PathBuf::from(h).join(".claude"))
            })?;
        Some(ClaudeCode {
            projects: config.join("projects"),
        })
    }
}

/// How much of a transcript's start is read for its [`Details`]: the first
/// user message is usually within the first few KiB.
pub const DETAILS_READ_LIMIT: u64 = 256 << 10;
const DETAILS_READ_STEP: usize = 16 << 10;

/// Longest first user message shown (bytes, before the terminal cuts it).
pub const FIRST_MESSAGE_MAX_BYTES: usize = 200;

impl SessionSource for ClaudeCode {
    fn provider(&self) -> &'static str {
        "claude-code"
    }

    fn sessions(&self) -> Vec<SessionFile> {
        let mut found = Vec::new();
        let Ok(projects) = std::fs::read_dir(&self.projects) else {
            return found;
        };
        for project in projects.flatten() {
            if !project.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(files) = std::fs::read_dir(project.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let Some(name) = name.to_str() else { continue };
                // `agent-<id>.jsonl` beside the sessions is a subagent of the older layout.
                let Some(id) = name.strip_suffix(".jsonl") else {
                    continue;
                };
                if id.is_empty() || id.starts_with("agent-") {
                    continue;
                }
                let Ok(meta) = file.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let subagents = project.path().join(id).join("subagents");
                found.push(SessionFile {
                    provider: self.provider(),
                    id: id.to_string(),
                    transcript: file.path(),
                    folder: project.path(),
                    size: meta.len() + folder_bytes(&subagents),
                    transcript_size: meta.len(),
                    modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
        found
    }

    fn details(&self, session: &SessionFile) -> Details {
        let mut details = Details::default();
        let Ok(file) = std::fs::File::open(&session.transcript) else {
            return details;
        };
        let mut file = file.take(DETAILS_READ_LIMIT);
        let mut buf = Vec::new();
        let mut start = 0;
        let mut chunk = vec![0u8; DETAILS_READ_STEP];
        loop {
            let n = match file.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            // Complete lines only; a line longer than what is read is never seen.
            while let Some(end) = memchr_newline(&buf[start..]) {
                let line = &buf[start..start + end];
                start += end + 1;
                read_line(line, &mut details);
                if details.first_user_message.is_some()
                    && details.cwd.is_some()
                    && details.started.is_some()
                {
                    return details;
                }
            }
        }
        details
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn read_line(line: &[u8], details: &mut Details) {
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    let facts = metadata::scan_line(
        line,
        Wants {
            first_user_message: details.first_user_message.is_none(),
            git_branch: false,
            cwd: details.cwd.is_none(),
        },
    );
    if details.first_user_message.is_none() {
        // Already sanitized by the scanner (one line, tags and entities
        // gone); only cut shorter for a listing.
        details.first_user_message = facts.first_user_message.map(|m| {
            let cut = metadata::truncate_utf8(&m, FIRST_MESSAGE_MAX_BYTES);
            if cut.len() < m.len() {
                format!("{cut}...")
            } else {
                m
            }
        });
    }
    if details.cwd.is_none() {
        details.cwd = facts.cwd;
    }
    if details.started.is_none() && line.contains("\"timestamp\"") {
        #[derive(serde::Deserialize)]
        struct Stamped {
            timestamp: Option<String>,
        }
        if let Ok(Stamped { timestamp: Some(t) }) = serde_json::from_str(line) {
            details.started = Some(t).filter(|t| !t.is_empty() && t.len() <= 64);
        }
    }
}

/// Sum of the sizes of the files in `dir` (not below it); 0 when there is none.
fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// How far a session is on the server, per the checkpoint the engine keeps
/// in the state folder (what the server confirmed, as of the last sync).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnServer {
    /// Lines of every file of the session.
    pub lines: u64,
    /// Bytes of the transcript that those of its lines end at.
    pub transcript_bytes: u64,
}

/// `None` when the session has no checkpoint there (never synced from here).
pub fn on_server(state_dir: &Path, session: &SessionFile) -> Option<OnServer> {
    let path = state_dir.join(checkpoint::file_name(&session.id));
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(checkpoint::MAX_CHECKPOINT_BYTES as u64)
        .read_to_end(&mut bytes)
        .ok()?;
    let c = Checkpoint::parse(&bytes, &session.id)?;
    let transcript = format!("{}.jsonl", session.id);
    Some(OnServer {
        lines: c.files.values().map(|m| m.lines).sum(),
        transcript_bytes: c.files.get(&transcript).map_or(0, |m| m.bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str) -> SessionFile {
        SessionFile {
            provider: "claude-code",
            id: id.into(),
            transcript: PathBuf::from(format!("/p/{id}.jsonl")),
            folder: PathBuf::from("/p"),
            size: 0,
            transcript_size: 0,
            modified: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn prefixes_match_and_an_exact_id_wins() {
        let all = [session("abc"), session("abcd"), session("abd")];
        let ids = |w: &str| {
            matching(&all, w)
                .iter()
                .map(|s| s.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("ab"), ["abc", "abcd", "abd"]);
        assert_eq!(ids("abc"), ["abc"]);
        assert_eq!(ids("abcd"), ["abcd"]);
        assert!(ids("x").is_empty());
        assert!(ids("").is_empty());
    }

    #[test]
    fn details_from_the_first_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let mut text = String::new();
        text.push_str("{\"type\":\"summary\",\"summary\":\"x\"}\n");
        text.push_str("{\"type\":\"user\",\"cwd\":\"/home/u/repo\",\"timestamp\":\"2026-11-30T10:00:00.000Z\",\"message\":{\"role\":\"user\",\"content\":\"Fix   the\\nbuild <b>now</b>\"}}\n");
        text.push_str("{\"type\":\"user\",\"message\":{\"content\":\"second\"}}\n");
        std::fs::write(&path, &text).unwrap();
        let mut s = session("s");
        s.transcript = path;
        let d = ClaudeCode {
            projects: dir.path().into(),
        }
        .details(&s);
        assert_eq!(d.cwd.as_deref(), Some("/home/u/repo"));
        assert_eq!(d.started.as_deref(), Some("2026-11-30T10:00:00.000Z"));
        assert_eq!(d.first_user_message.as_deref(), Some("Fix the build now"));
    }

    #[test]
    fn a_first_message_past_the_read_limit_is_not_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let filler = format!("{{\"type\":\"x\",\"pad\":\"{}\"}}\n", "a".repeat(1 << 10));
        let mut text = filler.repeat((DETAILS_READ_LIMIT as usize >> 10) + 1);
        text.push_str("{\"type\":\"user\",\"message\":{\"content\":\"late\"}}\n");
        std::fs::write(&path, &text).unwrap();
        let mut s = session("s");
        s.transcript = path;
        let d = ClaudeCode {
            projects: dir.path().into(),
        }
        .details(&s);
        assert_eq!(d.first_user_message, None);
    }
}
