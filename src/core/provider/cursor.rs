//! Cursor (../shared/docs/providers.md): a conversation is
//! `agent-transcripts/<id>/<id>.jsonl` with its subagents in
//! `agent-transcripts/<id>/subagents/<sub id>.jsonl` (uploaded as
//! `subagents/<sub id>.jsonl`), or in the older flat layout
//! `agent-transcripts/<id>.jsonl`, whose `.txt` twin is never uploaded.
//! Lines carry no timestamps: every transcript chunk says when the file
//! last changed (`latest_message_at`); the title Cursor keeps in
//! `chats/<workspace hash>/<id>/meta.json` is the summary, where granted.

use super::{redact_text, FileRef, Found, Gate, KnownFiles, Provider, ProviderKind, SessionMeta};
use crate::core::discovery;
use crate::core::io::FileSystem;
use crate::core::limits::FIRST_USER_MESSAGE_MAX_BYTES;
use crate::core::metadata;
use crate::core::protocol::ChunkMetadata;
use crate::core::redact::Redactor;
use crate::core::report::FileType;
use crate::core::timestamp::rfc3339_utc;
use serde::Deserialize;
use serde_json::Value;

/// The folder of a conversation's subagents, and the prefix of their names.
const SUBAGENTS: &str = "subagents";
const META_MAX_BYTES: usize = 1 << 20;

pub struct Cursor {
    transcript_name: String,
    conversation_id: String,
    subagents_dir: String,
    /// `~/.cursor/chats`, when the transcript sits in `~/.cursor/projects/`.
    chats_dir: Option<String>,
    /// `meta.json`'s title, as read (redacted when sent).
    title: Option<String>,
}

impl Cursor {
    pub fn new(transcript_path: &str) -> Self {
        let (dir, name) = discovery::split_path(transcript_path);
        let id = discovery::file_stem(name).to_string();
        let (parent, dir_name) = discovery::split_path(dir);
        // Nested layout: the transcript sits in a folder named after it.
        let (subagents_dir, transcripts_dir) = if dir_name == id {
            (discovery::join(dir, SUBAGENTS), parent)
        } else {
            (discovery::join(&discovery::join(dir, &id), SUBAGENTS), dir)
        };
        // <home>/projects/<workspace>/agent-transcripts -> <home>/chats
        let chats_dir = {
            let (workspace_dir, _) = discovery::split_path(transcripts_dir);
            let (projects_dir, _) = discovery::split_path(workspace_dir);
            let (home, projects) = discovery::split_path(projects_dir);
            (projects == "projects").then(|| discovery::join(home, "chats"))
        };
        Cursor {
            transcript_name: name.to_string(),
            conversation_id: id,
            subagents_dir,
            chats_dir,
            title: None,
        }
    }

    /// The title in `chats/*/<id>/meta.json`, if one is there and readable.
    fn read_title<F: FileSystem>(&self, fs: &F) -> Option<String> {
        let chats = self.chats_dir.as_deref()?;
        let hashes = fs.list_dir(chats).ok().flatten()?;
        for hash in hashes {
            let path = discovery::join(
                &discovery::join(&discovery::join(chats, &hash), &self.conversation_id),
                "meta.json",
            );
            let Some(bytes) = fs.read_small(&path, META_MAX_BYTES) else {
                continue;
            };
            #[derive(Deserialize)]
            struct Meta {
                title: Option<Value>,
            }
            if let Ok(meta) = serde_json::from_slice::<Meta>(&bytes) {
                if let Some(title) = meta.title.as_ref().and_then(Value::as_str) {
                    let title = title.trim();
                    if !title.is_empty() {
                        return Some(title.to_string());
                    }
                }
            }
        }
        None
    }
}

/// Whether a line is a Cursor transcript line (`role` and `message` at the top).
pub fn is_cursor_line(line: &str) -> bool {
    #[derive(Deserialize)]
    struct Head {
        role: Option<Value>,
        message: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Head>(line).is_ok_and(|h| {
        matches!(
            h.role.as_ref().and_then(Value::as_str),
            Some("user" | "assistant")
        ) && h.message.is_some()
    })
}

/// A sub id as it may appear in a path-encoded name: one plain segment.
fn is_valid_sub_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".jsonl") else {
        return false;
    };
    (1..=128).contains(&stem.len())
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !stem.starts_with('.')
}

/// The first text part of a user line, without its `<user_query>` wrapper.
fn user_text(line: &str) -> Option<String> {
    if !line.contains("\"user\"") {
        return None;
    }
    #[derive(Deserialize)]
    struct Part {
        #[serde(rename = "type")]
        kind: Option<Value>,
        text: Option<Value>,
    }
    #[derive(Deserialize)]
    struct Message {
        content: Option<Value>,
    }
    #[derive(Deserialize)]
    struct Line {
        role: Option<Value>,
        message: Option<Message>,
    }
    let l: Line = serde_json::from_str(line).ok()?;
    if l.role.as_ref().and_then(Value::as_str) != Some("user") {
        return None;
    }
    let content = l.message?.content?;
    let text = match content {
        Value::String(s) => s,
        Value::Array(parts) => parts.into_iter().find_map(|p| {
            let p: Part = serde_json::from_value(p).ok()?;
            (p.kind.as_ref().and_then(Value::as_str) == Some("text"))
                .then(|| p.text.as_ref().and_then(Value::as_str).map(str::to_string))
                .flatten()
        })?,
        _ => return None,
    };
    let unwrapped = unwrap_user_query(&text).trim().to_string();
    (!unwrapped.is_empty()).then_some(unwrapped)
}

/// The text inside `<user_query>...</user_query>`, else the text itself.
pub fn unwrap_user_query(text: &str) -> &str {
    const OPEN: &str = "<user_query>";
    const CLOSE: &str = "</user_query>";
    let Some(start) = text.find(OPEN) else {
        return text;
    };
    let inner = &text[start + OPEN.len()..];
    match inner.find(CLOSE) {
        Some(end) => &inner[..end],
        None => inner,
    }
}

impl Provider for Cursor {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Cursor
    }

    fn transcript_name(&self) -> &str {
        &self.transcript_name
    }

    fn discover_per_sync<F: FileSystem>(&mut self, fs: &F) -> Vec<Found> {
        self.title = self.read_title(fs);
        Vec::new()
    }

    fn discover<F: FileSystem>(&mut self, fs: &F, known: &dyn KnownFiles) -> Vec<Found> {
        let Some(names) = fs.list_dir(&self.subagents_dir).ok().flatten() else {
            return Vec::new();
        };
        let mut found: Vec<Found> = names
            .into_iter()
            .filter(|n| is_valid_sub_name(n))
            .map(|n| Found {
                name: format!("{SUBAGENTS}/{n}"),
                file_type: FileType::Agent,
                path: discovery::join(&self.subagents_dir, &n),
                gate: Gate::None,
            })
            .filter(|f| !known.is_located(&f.name))
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found
    }

    fn server_file_type(&self, name: &str) -> Option<FileType> {
        name.strip_prefix("subagents/")
            .filter(|n| is_valid_sub_name(n))
            .map(|_| FileType::Agent)
    }

    fn skipped_line(&self, _text: &str, _links: &mut Vec<String>) {}

    fn observe_line(
        &mut self,
        file: FileRef<'_>,
        _line_no: u64,
        _text: &str,
        redacted: &str,
        redactor: &Redactor,
        meta: &mut SessionMeta,
        _links: &mut Vec<String>,
    ) {
        if file.file_type == FileType::Transcript && meta.first_user_message.is_none() {
            if let Some(message) = user_text(redacted) {
                let message = redact_text(redactor, &message);
                meta.first_user_message = Some(
                    metadata::truncate_utf8(&message, FIRST_USER_MESSAGE_MAX_BYTES).to_string(),
                );
            }
        }
    }

    fn add_links(&mut self, links: &mut Vec<String>) {
        links.clear();
    }

    fn annotate_chunk<'m>(
        &self,
        file: FileRef<'_>,
        _first_line: u64,
        meta: &SessionMeta,
        redactor: &Redactor,
        out: &'m mut ChunkMetadata,
    ) -> Option<&'m ChunkMetadata> {
        if file.file_type != FileType::Transcript {
            return None;
        }
        out.first_user_message.clone_from(&meta.first_user_message);
        out.latest_message_at =
            (file.mtime_ns > 0).then(|| rfc3339_utc(file.mtime_ns / 1_000_000_000));
        out.summary = self.title.as_deref().map(|t| {
            let cleaned = metadata::sanitize_summary(&redact_text(redactor, t));
            metadata::cut_summary(&redact_text(redactor, &cleaned)).to_string()
        });
        Some(out)
    }

    fn workspace_hints(
        &self,
        _first_lines: &mut dyn Iterator<Item = String>,
        _want_cwd: bool,
    ) -> (Option<String>, Option<String>) {
        (None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_and_the_chats_folder() {
        let nested = Cursor::new("/h/.cursor/projects/w/agent-transcripts/c1/c1.jsonl");
        assert_eq!(
            nested.subagents_dir,
            "/h/.cursor/projects/w/agent-transcripts/c1/subagents"
        );
        assert_eq!(nested.chats_dir.as_deref(), Some("/h/.cursor/chats"));
        let flat = Cursor::new("/h/.cursor/projects/w/agent-transcripts/c1.jsonl");
        assert_eq!(
            flat.subagents_dir,
            "/h/.cursor/projects/w/agent-transcripts/c1/subagents"
        );
        assert_eq!(flat.chats_dir.as_deref(), Some("/h/.cursor/chats"));
        assert_eq!(Cursor::new("/tmp/c1.jsonl").chats_dir, None);
    }

    #[test]
    fn user_query_wrapper_is_taken_off() {
        let line = r#"{"role":"user","message":{"content":[{"type":"text","text":"<user_query>\nfix the build\n</user_query>"}]}}"#;
        assert_eq!(user_text(line).as_deref(), Some("fix the build"));
        let plain = r#"{"role":"user","message":{"content":[{"type":"text","text":"hello"}]}}"#;
        assert_eq!(user_text(plain).as_deref(), Some("hello"));
        let assistant =
            r#"{"role":"assistant","message":{"content":[{"type":"text","text":"user"}]}}"#;
        assert_eq!(user_text(assistant), None);
    }

    #[test]
    fn subagent_names_stay_one_segment() {
        assert!(is_valid_sub_name("3f2a-9.jsonl"));
        for bad in [
            "../x.jsonl",
            ".jsonl",
            "a/b.jsonl",
            "a.txt",
            ".hidden.jsonl",
        ] {
            assert!(!is_valid_sub_name(bad), "{bad}");
        }
    }
}
