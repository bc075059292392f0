//! Hook inputs of each agent (../shared/docs/transcripts.md, "Claude Code
//! hooks"; ../shared/docs/providers.md for Codex and Cursor): which session
//! the hook names, where its transcript is, and whether the session ended.

use crate::core::provider::{codex, ProviderKind};
use serde::Deserialize;
use serde_json::Value;

/// The fields the engine uses; the whole input is kept as the event payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookInput {
    pub agent: ProviderKind,
    /// The session's id as the agent names it.
    pub session_id: String,
    /// The external id to sync under; `None`: the provider's own (a Codex
    /// hook for a spawned thread belongs to its root's session).
    pub external_id: Option<String>,
    /// `None` when the agent did not say (Cursor's `sessionStart`): see
    /// [`HookInput::transcript_or_derived`].
    pub transcript_path: Option<String>,
    pub cwd: String,
    pub hook_event_name: String,
    /// Cursor: the first workspace root, which names its projects folder.
    pub workspace_root: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    session_id: Option<Value>,
    conversation_id: Option<Value>,
    transcript_path: Option<Value>,
    cwd: Option<Value>,
    hook_event_name: Option<Value>,
    workspace_roots: Option<Value>,
}

fn text(v: &Option<Value>) -> Option<String> {
    v.as_ref()
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl HookInput {
    /// Parse stdin; one-line error naming what is missing.
    pub fn parse(stdin: &[u8]) -> Result<HookInput, String> {
        if stdin.iter().all(u8::is_ascii_whitespace) {
            return Err(
                "no hook input on stdin (Claude Code, Codex and Cursor pass a JSON object)".into(),
            );
        }
        let raw: Raw = serde_json::from_slice(stdin)
            .map_err(|e| format!("the input on stdin is not a hook input object: {e}"))?;
        let transcript_path = text(&raw.transcript_path);
        let workspace_root = raw
            .workspace_roots
            .as_ref()
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string);
        let is_cursor = raw.conversation_id.is_some() || raw.workspace_roots.is_some();
        let is_codex = !is_cursor
            && transcript_path.as_deref().is_some_and(|p| {
                let (_, name) = crate::core::discovery::split_path(p);
                codex::is_rollout_name(name)
            });
        let hook_event_name = text(&raw.hook_event_name).unwrap_or_default();
        if is_cursor {
            let session_id = text(&raw.conversation_id)
                .or_else(|| text(&raw.session_id))
                .ok_or("the Cursor hook input has no conversation_id")?;
            if transcript_path.is_none() && workspace_root.is_none() {
                return Err(
                    "the Cursor hook input has neither transcript_path nor workspace_roots".into(),
                );
            }
            return Ok(HookInput {
                agent: ProviderKind::Cursor,
                external_id: Some(session_id.clone()),
                session_id,
                transcript_path,
                cwd: workspace_root.clone().unwrap_or_default(),
                hook_event_name,
                workspace_root,
            });
        }
        let session_id = text(&raw.session_id).ok_or("the hook input has no session_id")?;
        let transcript_path = Some(transcript_path.ok_or("the hook input has no transcript_path")?);
        let agent = if is_codex {
            ProviderKind::Codex
        } else {
            ProviderKind::ClaudeCode
        };
        Ok(HookInput {
            agent,
            external_id: (agent == ProviderKind::ClaudeCode).then(|| session_id.clone()),
            session_id,
            transcript_path,
            cwd: text(&raw.cwd).unwrap_or_default(),
            hook_event_name,
            workspace_root: None,
        })
    }

    /// Whether the agent says the session is over. Codex fires `Stop` after
    /// every turn: it is no end (and Codex has no end event).
    pub fn is_session_end(&self) -> bool {
        match self.agent {
            ProviderKind::ClaudeCode => self.hook_event_name == "SessionEnd",
            ProviderKind::Cursor => self.hook_event_name == "sessionEnd",
            ProviderKind::Codex => false,
        }
    }

    /// The transcript named, or for Cursor (which gives none at
    /// `sessionStart`) where it is written:
    /// `<home>/.cursor/projects/<workspace>/agent-transcripts/<id>/<id>.jsonl`,
    /// `<workspace>` the first root with every run of other characters than
    /// letters and digits as one `-` (a leading one dropped).
    pub fn transcript_or_derived(&self, home: Option<&str>) -> Option<String> {
        if let Some(p) = &self.transcript_path {
            return Some(p.clone());
        }
        let root = self.workspace_root.as_deref()?;
        let home = home.filter(|h| !h.is_empty())?;
        let id = &self.session_id;
        Some(format!(
            "{}/.cursor/projects/{}/agent-transcripts/{id}/{id}.jsonl",
            home.trim_end_matches('/'),
            cursor_workspace_name(root)
        ))
    }
}

/// `/Users/me/dev/app` -> `Users-me-dev-app`.
pub fn cursor_workspace_name(root: &str) -> String {
    let mut out = String::with_capacity(root.len());
    let mut gap = false;
    for c in root.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('-');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_input() {
        let h = HookInput::parse(br#"{"session_id":"u1","transcript_path":"/p/u1.jsonl","cwd":"/r","hook_event_name":"SessionEnd","reason":"exit"}"#).unwrap();
        assert_eq!(h.session_id, "u1");
        assert_eq!(h.agent, ProviderKind::ClaudeCode);
        assert_eq!(h.external_id.as_deref(), Some("u1"));
        assert!(h.is_session_end());
    }

    #[test]
    fn empty_or_incomplete_input_is_a_clear_error() {
        assert!(HookInput::parse(b"  \n")
            .unwrap_err()
            .contains("no hook input"));
        let e = HookInput::parse(br#"{"session_id":"u1"}"#).unwrap_err();
        assert!(e.contains("transcript_path") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn codex_inputs_a_spawned_threads_start_and_a_stop_that_is_no_end() {
        let start = HookInput::parse(br#"{"session_id":"019ce419-22a5-7321-baa1-5d0152ca561e","transcript_path":"/h/.codex/sessions/2026/03/12/rollout-2026-03-12T17-09-38-019ce419-22a5-7321-baa1-5d0152ca561e.jsonl","cwd":"/r","hook_event_name":"SessionStart","model":"gpt-5","source":"startup"}"#).unwrap();
        assert_eq!(start.agent, ProviderKind::Codex);
        // The root's id is found from the rollouts, not taken from the hook.
        assert_eq!(start.external_id, None);
        assert!(!start.is_session_end());
        let stop = HookInput::parse(br#"{"session_id":"019ce3fb-1087-7980-8f92-8d0171aaea6a","transcript_path":"/h/.codex/sessions/2026/03/12/rollout-2026-03-12T16-36-47-019ce3fb-1087-7980-8f92-8d0171aaea6a.jsonl","cwd":"/r","hook_event_name":"Stop"}"#).unwrap();
        assert_eq!(stop.agent, ProviderKind::Codex);
        assert!(!stop.is_session_end(), "Codex fires Stop after every turn");
    }

    #[test]
    fn cursor_inputs_derive_the_transcript_at_session_start() {
        let start = HookInput::parse(br#"{"conversation_id":"c1","session_id":"c1","workspace_roots":["/Users/me/dev/my app"],"model":"m","hook_event_name":"sessionStart","transcript_path":null}"#).unwrap();
        assert_eq!(start.agent, ProviderKind::Cursor);
        assert_eq!(start.external_id.as_deref(), Some("c1"));
        assert_eq!(
            start.transcript_or_derived(Some("/Users/me")).unwrap(),
            "/Users/me/.cursor/projects/Users-me-dev-my-app/agent-transcripts/c1/c1.jsonl"
        );
        assert!(!start.is_session_end());
        let end = HookInput::parse(br#"{"conversation_id":"c1","workspace_roots":["/w"],"hook_event_name":"sessionEnd","transcript_path":"/t/c1.jsonl","reason":"user","final_status":"completed","duration_ms":5}"#).unwrap();
        assert!(end.is_session_end());
        assert_eq!(end.transcript_or_derived(None).unwrap(), "/t/c1.jsonl");
        assert!(HookInput::parse(br#"{"conversation_id":"c1"}"#).is_err());
    }

    #[test]
    fn workspace_names_as_cursor_writes_them() {
        assert_eq!(
            cursor_workspace_name("/Users/me/dev/app"),
            "Users-me-dev-app"
        );
        assert_eq!(cursor_workspace_name("/a//b.c_d/"), "a-b-c-d");
    }
}
