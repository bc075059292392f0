//! What differs per agent, behind one seam: which files make a session and
//! where to look for them, what a line tells about the session (first user
//! message, summary, links to other files, per-chunk annotations), and the
//! name `init` sends. Everything else (framing, chunking, redaction, the
//! client, checkpoints, retry) is shared and provider-blind in
//! [`super::engine`].
//!
//! One module per agent (../shared/docs/providers.md): [`claude_code`],
//! [`codex`], [`cursor`]. [`AnyProvider`] dispatches to them without boxing,
//! since the trait's methods are generic over the file system.

pub mod claude_code;
pub mod codex;
pub mod cursor;

use super::checkpoint::Checkpoint;
use super::config::SessionConfig;
use super::discovery;
use super::io::FileSystem;
use super::protocol::{ChunkMetadata, GitInfo};
use super::redact::{RedactionCounts, Redactor};
use super::report::{FileType, SyncReport};
use std::collections::BTreeSet;

/// The agents this engine syncs, by the name `init` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    ClaudeCode,
    Codex,
    Cursor,
}

/// Every supported name, for a usage message.
pub const SUPPORTED: &str = "claude-code, codex, cursor";

impl ProviderKind {
    pub const ALL: [ProviderKind; 3] = [
        ProviderKind::ClaudeCode,
        ProviderKind::Codex,
        ProviderKind::Cursor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::ClaudeCode => "claude-code",
            ProviderKind::Codex => "codex",
            ProviderKind::Cursor => "cursor",
        }
    }

    /// A name as a user or host writes it.
    pub fn parse(name: &str) -> Result<ProviderKind, String> {
        ProviderKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown provider `{}`: the supported ones are {SUPPORTED}",
                    discovery::shown(name)
                )
            })
    }

    /// The agent that wrote `path`, from where it sits and its first line
    /// (`None` when neither says). Codex rollouts are `rollout-*.jsonl`
    /// (or begin with a `session_meta` line); Cursor's sit in an
    /// `agent-transcripts` folder (or have `role` lines); Claude Code's in
    /// `.claude/projects`, or any other `.jsonl` whose first line is not
    /// one of the others'.
    pub fn detect(path: &str, first_line: Option<&str>) -> Option<ProviderKind> {
        let (_, name) = discovery::split_path(path);
        if !name.ends_with(".jsonl") {
            return None;
        }
        if name.starts_with("rollout-") || path.contains("/.codex/sessions/") {
            return Some(ProviderKind::Codex);
        }
        if path.contains("/agent-transcripts/") {
            return Some(ProviderKind::Cursor);
        }
        if let Some(line) = first_line {
            if codex::is_session_meta_line(line) {
                return Some(ProviderKind::Codex);
            }
            if cursor::is_cursor_line(line) {
                return Some(ProviderKind::Cursor);
            }
        }
        Some(ProviderKind::ClaudeCode)
    }
}

/// A file the provider found for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The backend's `file_name`.
    pub name: String,
    pub file_type: FileType,
    pub path: String,
    /// Uploaded only when the backend advertises this.
    pub gate: Gate,
}

/// A backend capability a file needs (`GET /api/v1/capabilities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    None,
    WorkflowFiles,
    WorkflowJournal,
}

/// What the engine knows of a file while the provider looks at one of its
/// lines or chunks.
#[derive(Debug, Clone, Copy)]
pub struct FileRef<'a> {
    pub name: &'a str,
    pub file_type: FileType,
    pub path: &'a str,
    /// The file's modification time when this pass began (0 when unknown).
    pub mtime_ns: u64,
}

/// The engine's files, as the provider may ask about them during discovery.
pub trait KnownFiles {
    /// The engine tracks `name` and knows where it is.
    fn is_located(&self, name: &str) -> bool;
    /// Some tracked file (one the server holds) has not been found locally.
    fn any_unlocated(&self) -> bool;
}

/// Session-level facts gathered from the lines, shared by every provider.
#[derive(Debug, Default)]
pub struct SessionMeta {
    pub first_user_message: Option<String>,
    pub summary: Option<String>,
    pub git: GitInfo,
    /// Summaries that name an earlier session's last message (`leafUuid`).
    pub leaf_summaries: Vec<(String, String)>,
    /// Leaves already handled by this instance.
    pub linked_leaves: BTreeSet<String>,
    /// The transcript says the session ended.
    pub session_ended: bool,
}

/// One agent's rules. Every method must be cheap on the hot path
/// (`observe_line` runs for every line) and must not fail: what cannot be
/// read is simply not known.
pub trait Provider {
    /// The name `init` sends.
    fn kind(&self) -> ProviderKind;

    /// The transcript's backend `file_name`.
    fn transcript_name(&self) -> &str;

    /// Files found once per sync by listing folders (Claude Code's workflow
    /// runs); gated ones wait for the backend's capabilities.
    fn discover_per_sync<F: FileSystem>(&mut self, _fs: &F) -> Vec<Found> {
        Vec::new()
    }

    /// Files of the session found now (called each discovery round, after
    /// the lines read so far were observed).
    fn discover<F: FileSystem>(&mut self, fs: &F, known: &dyn KnownFiles) -> Vec<Found>;

    /// The type of a file the server lists that is not tracked yet, if it
    /// is one of this provider's (then discovery is expected to find it).
    fn server_file_type(&self, name: &str) -> Option<FileType>;

    /// A line of any file that is being skipped (the server has it):
    /// collect its links to other files into `links`.
    fn skipped_line(&self, text: &str, links: &mut Vec<String>);

    /// A line about to be uploaded: `text` as read, `redacted` as sent.
    /// Metadata must come from `redacted` (a secret gone there is gone from
    /// the metadata too); links go into `links`.
    #[allow(clippy::too_many_arguments)]
    fn observe_line(
        &mut self,
        file: FileRef<'_>,
        line_no: u64,
        text: &str,
        redacted: &str,
        redactor: &Redactor,
        meta: &mut SessionMeta,
        links: &mut Vec<String>,
    );

    /// Links seen in lines of a file that went through: remember them.
    fn add_links(&mut self, links: &mut Vec<String>);

    /// The metadata of the chunk of `file` whose first line is
    /// `first_line`, written into `out`; `None` for no metadata.
    fn annotate_chunk<'m>(
        &self,
        file: FileRef<'_>,
        first_line: u64,
        meta: &SessionMeta,
        redactor: &Redactor,
        out: &'m mut ChunkMetadata,
    ) -> Option<&'m ChunkMetadata>;

    /// Where the session's working folder and git branch are, from the
    /// transcript's first lines: `(cwd, branch)`.
    fn workspace_hints(
        &self,
        first_lines: &mut dyn Iterator<Item = String>,
        want_cwd: bool,
    ) -> (Option<String>, Option<String>);

    /// Whatever the provider keeps in the checkpoint.
    fn load_checkpoint(&mut self, _checkpoint: &Checkpoint) {}
    fn save_checkpoint(&self, _checkpoint: &mut Checkpoint) {}

    /// After a sync: persist what was learned that is not per session
    /// (Codex's index of rollouts), warnings into the report.
    fn after_sync<F: FileSystem>(
        &mut self,
        _fs: &F,
        _state_dir: Option<&str>,
        _report: &mut SyncReport,
    ) {
    }

    /// The folder searched for the session a summary's `leafUuid` names,
    /// and the file to leave out (Claude Code only).
    fn leaf_search(&self) -> Option<(&str, &str)> {
        None
    }
}

/// The provider of one session, chosen when the engine is made.
pub enum AnyProvider {
    ClaudeCode(claude_code::ClaudeCode),
    Codex(codex::Codex),
    Cursor(cursor::Cursor),
}

macro_rules! dispatch {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            AnyProvider::ClaudeCode($p) => $e,
            AnyProvider::Codex($p) => $e,
            AnyProvider::Cursor($p) => $e,
        }
    };
}

impl AnyProvider {
    /// The provider of `config`'s session: the one named, else the one the
    /// transcript's path and first line show. It may settle the session
    /// itself: a Codex subagent's rollout stands for its root's session, so
    /// `config.transcript_path` becomes the root's, and a default external
    /// id (the rollout's stem or thread id) the root's thread id.
    pub fn for_session<F: FileSystem>(
        fs: &F,
        config: &mut SessionConfig,
    ) -> Result<AnyProvider, String> {
        let kind = match config.provider.as_deref() {
            Some(name) => ProviderKind::parse(name)?,
            None => {
                let first = read_first_line(fs, &config.transcript_path, 64 << 10);
                ProviderKind::detect(&config.transcript_path, first.as_deref()).ok_or_else(
                    || {
                        format!(
                            "{} is not a session file of a supported agent ({SUPPORTED})",
                            discovery::shown(&config.transcript_path)
                        )
                    },
                )?
            }
        };
        Ok(match kind {
            ProviderKind::ClaudeCode => {
                AnyProvider::ClaudeCode(claude_code::ClaudeCode::new(&config.transcript_path))
            }
            ProviderKind::Cursor => {
                AnyProvider::Cursor(cursor::Cursor::new(&config.transcript_path))
            }
            ProviderKind::Codex => AnyProvider::Codex(codex::Codex::for_session(fs, config)),
        })
    }
}

/// The first line of a file (complete, or all there is up to `max` bytes),
/// `None` when it cannot be read.
pub fn read_first_line<F: FileSystem>(fs: &F, path: &str, max: usize) -> Option<String> {
    use super::io::ReadAt;
    let file = fs.open(path).ok()?;
    let mut buf = Vec::new();
    let mut block = vec![0u8; 16 << 10];
    while buf.len() < max {
        let n = file.read_at(&mut block, buf.len() as u64).ok()?;
        if n == 0 {
            break;
        }
        let chunk = &block[..n];
        if let Some(i) = memchr::memchr(b'\n', chunk) {
            buf.extend_from_slice(&chunk[..i]);
            return Some(String::from_utf8_lossy(&buf).into_owned());
        }
        buf.extend_from_slice(chunk);
    }
    (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned())
}

impl Provider for AnyProvider {
    fn kind(&self) -> ProviderKind {
        dispatch!(self, p => p.kind())
    }
    fn transcript_name(&self) -> &str {
        dispatch!(self, p => p.transcript_name())
    }
    fn discover_per_sync<F: FileSystem>(&mut self, fs: &F) -> Vec<Found> {
        dispatch!(self, p => p.discover_per_sync(fs))
    }
    fn discover<F: FileSystem>(&mut self, fs: &F, known: &dyn KnownFiles) -> Vec<Found> {
        dispatch!(self, p => p.discover(fs, known))
    }
    fn server_file_type(&self, name: &str) -> Option<FileType> {
        dispatch!(self, p => p.server_file_type(name))
    }
    fn skipped_line(&self, text: &str, links: &mut Vec<String>) {
        dispatch!(self, p => p.skipped_line(text, links))
    }
    fn observe_line(
        &mut self,
        file: FileRef<'_>,
        line_no: u64,
        text: &str,
        redacted: &str,
        redactor: &Redactor,
        meta: &mut SessionMeta,
        links: &mut Vec<String>,
    ) {
        dispatch!(self, p => p.observe_line(file, line_no, text, redacted, redactor, meta, links))
    }
    fn add_links(&mut self, links: &mut Vec<String>) {
        dispatch!(self, p => p.add_links(links))
    }
    fn annotate_chunk<'m>(
        &self,
        file: FileRef<'_>,
        first_line: u64,
        meta: &SessionMeta,
        redactor: &Redactor,
        out: &'m mut ChunkMetadata,
    ) -> Option<&'m ChunkMetadata> {
        dispatch!(self, p => p.annotate_chunk(file, first_line, meta, redactor, out))
    }
    fn workspace_hints(
        &self,
        first_lines: &mut dyn Iterator<Item = String>,
        want_cwd: bool,
    ) -> (Option<String>, Option<String>) {
        dispatch!(self, p => p.workspace_hints(first_lines, want_cwd))
    }
    fn load_checkpoint(&mut self, checkpoint: &Checkpoint) {
        dispatch!(self, p => p.load_checkpoint(checkpoint))
    }
    fn save_checkpoint(&self, checkpoint: &mut Checkpoint) {
        dispatch!(self, p => p.save_checkpoint(checkpoint))
    }
    fn after_sync<F: FileSystem>(
        &mut self,
        fs: &F,
        state_dir: Option<&str>,
        report: &mut SyncReport,
    ) {
        dispatch!(self, p => p.after_sync(fs, state_dir, report))
    }
    fn leaf_search(&self) -> Option<(&str, &str)> {
        dispatch!(self, p => p.leaf_search())
    }
}

/// A metadata value with its secrets replaced by markers. Not counted in the
/// report: the line it came from was counted.
pub fn redact_text(redactor: &Redactor, text: &str) -> String {
    redactor
        .redact_line(text, &mut RedactionCounts::default())
        .into_owned()
}

/// The git facts as sent: `None` when nothing is known, URLs through the
/// redactor (credentials are already stripped; a token in a path is not).
pub fn redacted_git_info(redactor: &Redactor, git: &GitInfo) -> Option<GitInfo> {
    (!git.is_empty()).then(|| {
        let mut git = git.clone();
        git.repo_url = git.repo_url.map(|u| redact_text(redactor, &u));
        for remote in &mut git.remotes {
            remote.fetch_url = redact_text(redactor, &remote.fetch_url);
            remote.push_url = redact_text(redactor, &remote.push_url);
        }
        git
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_ones_name_the_supported() {
        for k in ProviderKind::ALL {
            assert_eq!(ProviderKind::parse(k.as_str()), Ok(k));
        }
        let e = ProviderKind::parse("opencode").unwrap_err();
        assert!(e.contains("claude-code, codex, cursor"), "{e}");
    }

    #[test]
    fn detected_from_path_and_first_line() {
        use ProviderKind::*;
        let codex = "/h/.codex/sessions/2026/03/12/rollout-2026-03-12T16-36-47-019ce3fb-1087-7980-8f92-8d0171aaea6a.jsonl";
        assert_eq!(ProviderKind::detect(codex, None), Some(Codex));
        let cursor = "/h/.cursor/projects/w/agent-transcripts/abc/abc.jsonl";
        assert_eq!(ProviderKind::detect(cursor, None), Some(Cursor));
        assert_eq!(
            ProviderKind::detect("/h/.claude/projects/-p/s.jsonl", None),
            Some(ClaudeCode)
        );
        assert_eq!(
            ProviderKind::detect(
                "/tmp/x.jsonl",
                Some(r#"{"timestamp":"t","type":"session_meta","payload":{"id":"x"}}"#)
            ),
            Some(Codex)
        );
        assert_eq!(
            ProviderKind::detect(
                "/tmp/x.jsonl",
                Some(r#"{"role":"user","message":{"content":[]}}"#)
            ),
            Some(Cursor)
        );
        assert_eq!(ProviderKind::detect("/tmp/x.txt", None), None);
    }
}
