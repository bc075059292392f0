//! Claude Code (../shared/docs/transcripts.md): a session is `<uuid>.jsonl`
//! plus every subagent its lines reference (`toolUseResult.agentId`),
//! transitively, and every `agent-*.jsonl` in `<uuid>/subagents/`; the
//! older layout's `agent-<id>.jsonl` beside the transcript when referenced;
//! Workflow tool runs by listing `subagents/workflows/<runId>/`.

use super::{
    redact_text, redacted_git_info, FileRef, Found, Gate, KnownFiles, Provider, ProviderKind,
    SessionMeta,
};
use crate::core::checkpoint::Checkpoint;
use crate::core::discovery::{self, SessionLayout};
use crate::core::io::FileSystem;
use crate::core::limits::FIRST_USER_MESSAGE_MAX_BYTES;
use crate::core::metadata::{self, Wants};
use crate::core::protocol::ChunkMetadata;
use crate::core::redact::Redactor;
use crate::core::report::FileType;
use std::collections::BTreeSet;

pub struct ClaudeCode {
    layout: SessionLayout,
    /// Every valid agent id referenced by a line read so far.
    agent_ids: BTreeSet<String>,
}

impl ClaudeCode {
    pub fn new(transcript_path: &str) -> Self {
        ClaudeCode {
            layout: SessionLayout::of(transcript_path),
            agent_ids: BTreeSet::new(),
        }
    }
}

impl Provider for ClaudeCode {
    fn kind(&self) -> ProviderKind {
        ProviderKind::ClaudeCode
    }

    fn transcript_name(&self) -> &str {
        &self.layout.transcript_name
    }

    /// The agents and journals of every Workflow tool run, found by listing
    /// the folders (no line references them); path-encoded names, gated on
    /// the backend's capabilities.
    fn discover_per_sync<F: FileSystem>(&mut self, fs: &F) -> Vec<Found> {
        let Some(runs) = fs.list_dir(&self.layout.workflows_dir).ok().flatten() else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for run_id in runs.iter().filter(|r| discovery::is_valid_run_id(r)) {
            let run_dir = discovery::join(&self.layout.workflows_dir, run_id);
            let Some(entries) = fs.list_dir(&run_dir).ok().flatten() else {
                continue;
            };
            for base in entries {
                if let Some(file_type) = discovery::workflow_file_type(&base) {
                    found.push(Found {
                        name: discovery::workflow_upload_name(run_id, &base),
                        file_type,
                        path: discovery::join(&run_dir, &base),
                        gate: if file_type == FileType::WorkflowJournal {
                            Gate::WorkflowJournal
                        } else {
                            Gate::WorkflowFiles
                        },
                    });
                }
            }
        }
        found
    }

    /// Every referenced agent whose file exists, and every `agent-*.jsonl`
    /// in the session's `subagents/` folder.
    fn discover<F: FileSystem>(&mut self, fs: &F, known: &dyn KnownFiles) -> Vec<Found> {
        let in_sub = fs
            .list_dir(&self.layout.subagents_dir)
            .ok()
            .flatten()
            .unwrap_or_default();
        let needs_flat = self
            .agent_ids
            .iter()
            .any(|id| !known.is_located(&discovery::agent_file_name(id)))
            || known.any_unlocated();
        let in_dir = if needs_flat {
            fs.list_dir(&self.layout.dir)
                .ok()
                .flatten()
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut wanted: Vec<String> = in_sub
            .iter()
            .filter(|n| discovery::is_agent_file_name(n))
            .cloned()
            .collect();
        wanted.extend(
            self.agent_ids
                .iter()
                .map(|id| discovery::agent_file_name(id)),
        );
        let (in_sub, in_dir): (BTreeSet<String>, BTreeSet<String>) =
            (in_sub.into_iter().collect(), in_dir.into_iter().collect());
        let mut found = Vec::new();
        for name in wanted {
            if known.is_located(&name) {
                continue;
            }
            if let Some(path) = self.layout.locate_agent(&name, &in_sub, &in_dir) {
                found.push(Found {
                    name,
                    file_type: FileType::Agent,
                    path,
                    gate: Gate::None,
                });
            }
        }
        found
    }

    fn server_file_type(&self, name: &str) -> Option<FileType> {
        if discovery::is_agent_file_name(name) {
            Some(FileType::Agent)
        } else {
            discovery::parse_workflow_name(name).map(|(_, _, file_type)| file_type)
        }
    }

    fn skipped_line(&self, text: &str, links: &mut Vec<String>) {
        metadata::agent_ids(text, links);
    }

    fn observe_line(
        &mut self,
        file: FileRef<'_>,
        _line_no: u64,
        text: &str,
        redacted: &str,
        redactor: &Redactor,
        meta: &mut SessionMeta,
        links: &mut Vec<String>,
    ) {
        if file.file_type == FileType::Transcript {
            // Metadata comes from the line as it is uploaded: a secret in
            // the first user message or a summary is gone there too, and it
            // is gone before the value is cut to its limit.
            observe_transcript_line(redacted, redactor, meta, links);
            // Redaction made a copy: the ids may be gone from it.
            if !std::ptr::eq(redacted.as_ptr(), text.as_ptr()) {
                metadata::agent_ids(text, links);
            }
        } else {
            metadata::agent_ids(text, links);
        }
    }

    fn add_links(&mut self, links: &mut Vec<String>) {
        self.agent_ids.extend(links.drain(..));
    }

    fn annotate_chunk<'m>(
        &self,
        file: FileRef<'_>,
        _first_line: u64,
        meta: &SessionMeta,
        redactor: &Redactor,
        out: &'m mut ChunkMetadata,
    ) -> Option<&'m ChunkMetadata> {
        (file.file_type == FileType::Transcript).then(|| transcript_metadata(meta, redactor, out))
    }

    fn workspace_hints(
        &self,
        first_lines: &mut dyn Iterator<Item = String>,
        want_cwd: bool,
    ) -> (Option<String>, Option<String>) {
        let mut cwd = None;
        for text in first_lines.take(64) {
            let facts = metadata::scan_line(
                &text,
                Wants {
                    git_branch: true,
                    cwd: want_cwd && cwd.is_none(),
                    ..Wants::default()
                },
            );
            if cwd.is_none() {
                cwd = facts.cwd;
            }
            if let Some(branch) = facts.git_branch {
                return (cwd, Some(branch));
            }
        }
        (cwd, None)
    }

    fn load_checkpoint(&mut self, checkpoint: &Checkpoint) {
        self.agent_ids.extend(
            checkpoint
                .agent_ids
                .iter()
                .filter(|id| metadata::is_valid_agent_id(id))
                .cloned(),
        );
    }

    fn save_checkpoint(&self, checkpoint: &mut Checkpoint) {
        checkpoint.agent_ids = self.agent_ids.iter().cloned().collect();
    }

    fn leaf_search(&self) -> Option<(&str, &str)> {
        Some((&self.layout.dir, &self.layout.transcript_name))
    }
}

/// Metadata for the next transcript chunk: what is known now (the text
/// values were redacted when their line was read; the git URLs are
/// redacted here).
pub fn transcript_metadata<'m>(
    meta: &SessionMeta,
    redactor: &Redactor,
    out: &'m mut ChunkMetadata,
) -> &'m ChunkMetadata {
    out.first_user_message.clone_from(&meta.first_user_message);
    out.summary = meta
        .summary
        .as_deref()
        .map(|m| metadata::cut_summary(m).to_string());
    out.git_info = redacted_git_info(redactor, &meta.git);
    out
}

/// Facts of one transcript line: first user message, summaries, agent ids.
/// `text` is the line as uploaded (redacted); the values taken from it are
/// cleaned by `scan_line`, and go through the redactor once more here: the
/// cleaning decodes HTML entities, which may complete a secret.
fn observe_transcript_line(
    text: &str,
    redactor: &Redactor,
    meta: &mut SessionMeta,
    ids: &mut Vec<String>,
) {
    let wants = Wants {
        first_user_message: meta.first_user_message.is_none(),
        git_branch: meta.git.branch.is_none(),
        cwd: false,
    };
    let facts = metadata::scan_line(text, wants);
    ids.extend(facts.agent_ids);
    if !meta.session_ended && metadata::mentions_session_end(text) {
        meta.session_ended = true;
    }
    if meta.first_user_message.is_none() {
        meta.first_user_message = facts.first_user_message.map(|m| {
            let m = redact_text(redactor, &m);
            metadata::truncate_utf8(&m, FIRST_USER_MESSAGE_MAX_BYTES).to_string()
        });
    }
    if meta.git.branch.is_none() {
        meta.git.branch = facts.git_branch;
    }
    if let Some(summary) = facts.summary {
        match summary.leaf_uuid {
            Some(leaf) => meta
                .leaf_summaries
                .push((leaf, redact_text(redactor, &summary.text))),
            None => meta.summary = Some(redact_text(redactor, &summary.text)),
        }
    }
}
