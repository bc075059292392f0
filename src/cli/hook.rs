//! Claude Code's hook input (../shared/docs/transcripts.md, "Claude Code hooks").

use serde::Deserialize;

/// The fields the engine uses; the whole input is kept as the event payload.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct HookInput {
    pub session_id: String,
    pub transcript_path: String,
    #[serde(default)]
    pub cwd: String,
    #[serde(default)]
    pub hook_event_name: String,
}

impl HookInput {
    /// Parse stdin; one-line error naming what is missing.
    pub fn parse(stdin: &[u8]) -> Result<HookInput, String> {
        if stdin.iter().all(u8::is_ascii_whitespace) {
            return Err("no hook input on stdin (Claude Code passes a JSON object)".into());
        }
        serde_json::from_slice(stdin)
            .map_err(|e| format!("the input on stdin is not a Claude Code hook object: {e}"))
    }

    pub fn is_session_end(&self) -> bool {
        self.hook_event_name == "SessionEnd"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_input() {
        let h = HookInput::parse(br#"{"session_id":"u1","transcript_path":"/p/u1.jsonl","cwd":"/r","hook_event_name":"SessionEnd","reason":"exit"}"#).unwrap();
        assert_eq!(h.session_id, "u1");
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
}
