//! The backend's JSON messages (../shared/docs/backend-api.md), as serde types,
//! and the endpoint paths. Chunk bodies are not here: they are streamed by
//! [`super::chunk`] without building a list of lines.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const PATH_INIT: &str = "/api/v1/sync/init";
pub const PATH_CHUNK: &str = "/api/v1/sync/chunk";
pub const PATH_EVENT: &str = "/api/v1/sync/event";
pub const PATH_VALIDATE: &str = "/api/v1/auth/validate";
/// Public: which optional features the backend supports.
pub const PATH_CAPABILITIES: &str = "/api/v1/capabilities";

/// `PATCH /api/v1/sessions/{external_id}/summary`
pub fn path_summary(external_id: &str) -> String {
    format!("/api/v1/sessions/{}/summary", percent_encode(external_id))
}

/// `POST /api/v1/sessions/{session_id}/github-links`
pub fn path_github_links(session_id: &str) -> String {
    format!(
        "/api/v1/sessions/{}/github-links",
        percent_encode(session_id)
    )
}

/// Encode a path segment: ids are uuids in practice, but a hook can pass anything.
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_sha: Option<String>,
    /// Every configured remote (at most 50), credentials stripped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<GitRemote>,
    /// The remote the current branch tracks (`branch.<name>.remote`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_remote: Option<String>,
}

impl GitInfo {
    pub fn is_empty(&self) -> bool {
        self.repo_url.is_none()
            && self.branch.is_none()
            && self.commit_sha.is_none()
            && self.remotes.is_empty()
            && self.tracking_remote.is_none()
    }
}

/// One entry of `git_info.remotes`, as `git remote -v` shows it: both URLs
/// always present (the push URL is the fetch URL unless one is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRemote {
    pub name: String,
    pub fetch_url: String,
    pub push_url: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InitMetadata {
    pub cwd: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_info: Option<GitInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InitRequest<'a> {
    pub external_id: &'a str,
    pub transcript_path: &'a str,
    pub provider: &'a str,
    pub metadata: InitMetadata,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InitResponse {
    pub session_id: String,
    #[serde(default)]
    pub files: BTreeMap<String, ServerFile>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ServerFile {
    pub last_synced_line: u64,
}

/// `metadata` of a transcript chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChunkMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_info: Option<GitInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_user_message: Option<String>,
    /// Codex: the rollout's thread, on the first chunk of every rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codex_rollout: Option<CodexRollout>,
    /// Cursor: when the transcript last changed (RFC 3339, UTC), on every
    /// transcript chunk (its lines carry no timestamps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_message_at: Option<String>,
}

impl ChunkMetadata {
    pub fn is_empty(&self) -> bool {
        self.git_info.is_none()
            && self.summary.is_none()
            && self.first_user_message.is_none()
            && self.codex_rollout.is_none()
            && self.latest_message_at.is_none()
    }
}

/// `metadata.codex_rollout`: one Codex thread, root or spawned (limits as
/// confab-web checks them: `source` 64 bytes, paths 8192, names 255).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CodexRollout {
    pub thread_uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_thread_uuid: Option<String>,
    pub rollout_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_nickname: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ChunkResponse {
    pub last_synced_line: u64,
}

#[derive(Debug, Serialize)]
pub struct EventRequest<'a> {
    pub session_id: &'a str,
    pub event_type: &'a str,
    pub timestamp: &'a str,
    pub payload: &'a serde_json::value::RawValue,
}

#[derive(Debug, Serialize)]
pub struct SummaryPatch<'a> {
    pub summary: &'a str,
}

#[derive(Debug, Serialize)]
pub struct GithubLinkRequest<'a> {
    pub url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<&'a str>,
    pub source: &'a str,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GithubLinkResponse {
    pub id: u64,
    pub link_type: String,
    pub url: String,
}

/// `GET /api/v1/capabilities`: a flat map of optional features; a missing
/// one (and an older server's 404) means unsupported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Capabilities {
    /// Path-encoded workflow agent files (`subagents/workflows/<runId>/agent-<id>.jsonl`).
    #[serde(default)]
    pub workflow_files: bool,
    /// File type `workflow_journal` (`subagents/workflows/<runId>/journal.jsonl`).
    #[serde(default)]
    pub workflow_journal: bool,
}

/// A server error body: `{"error": "..."}` (other shapes are shown raw).
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(path_summary("a/b c"), "/api/v1/sessions/a%2Fb%20c/summary");
        assert_eq!(
            path_github_links("3f2a-9"),
            "/api/v1/sessions/3f2a-9/github-links"
        );
    }
}
