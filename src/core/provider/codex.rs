//! Codex (../shared/docs/providers.md): one rollout per thread,
//! `sessions/YYYY/MM/DD/rollout-<local time>-<thread uuid>.jsonl`; a
//! session is a root rollout plus every rollout it spawned, transitively.
//!
//! Descendants are found from the rollouts' own first line (`session_meta`,
//! whose `source.subagent.thread_spawn.parent_thread_id`, or newer
//! `parent_thread_id`, names the parent), not from Codex's SQLite state
//! database. Only first lines are read, and each only once: what was
//! learned is kept in a [`RolloutIndex`], in memory for the session and in
//! the state folder (`codex-rollouts.json`) for the next process, so a sync
//! with nothing new lists the day folders and reads no rollout at all.

use super::{
    redact_text, redacted_git_info, FileRef, Found, Gate, KnownFiles, Provider, ProviderKind,
    SessionMeta,
};
use crate::core::config::SessionConfig;
use crate::core::discovery;
use crate::core::io::{FileSystem, ReadAt};
use crate::core::limits::FIRST_USER_MESSAGE_MAX_BYTES;
use crate::core::metadata;
use crate::core::protocol::{ChunkMetadata, CodexRollout};
use crate::core::redact::Redactor;
use crate::core::report::{FileType, SyncReport};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A first line longer than this is not read further: the rollout is taken
/// for a thread of its own (the real ones are tens of KiB).
pub const MAX_FIRST_LINE_BYTES: usize = 4 << 20;

/// The index's file in the state folder.
pub const INDEX_FILE_NAME: &str = "codex-rollouts.json";
const INDEX_VERSION: u32 = 1;
const MAX_INDEX_BYTES: usize = 64 << 20;
/// Parent links followed up to the root, at most.
const MAX_DEPTH: usize = 64;

/// What a rollout's first line says about its thread.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutEntry {
    pub thread: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent: String,
}

/// Every rollout seen under one sessions folder, by path relative to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutIndex {
    pub version: u32,
    /// The sessions folder the paths are relative to.
    pub root: String,
    pub rollouts: BTreeMap<String, RolloutEntry>,
}

pub struct Codex {
    /// The root rollout's base name (the transcript's `file_name`).
    transcript_name: String,
    root_thread: String,
    /// The `sessions/` folder (or the rollout's own folder when it is not
    /// in Codex's day layout).
    sessions_root: String,
    index: RolloutIndex,
    /// Entries learned since the index was last saved.
    index_dirty: bool,
    /// The folders were listed during this sync already.
    scanned_this_sync: bool,
    state_dir: Option<String>,
    /// `codex_rollout` of each rollout, from its first line as uploaded.
    rollouts: HashMap<String, CodexRollout>,
}

impl Codex {
    /// The session of the rollout at `config.transcript_path`: its root's,
    /// found by following parent links through the index (a rollout of a
    /// subagent stands for its root's session). The transcript path
    /// becomes the root's; a default external id (the file's stem or its
    /// thread id) becomes the root's thread id.
    pub fn for_session<F: FileSystem>(fs: &F, config: &mut SessionConfig) -> Codex {
        let given = config.transcript_path.clone();
        let (dir, name) = discovery::split_path(&given);
        let sessions_root = sessions_root_of(dir);
        let mut codex = Codex {
            transcript_name: name.to_string(),
            root_thread: thread_of_name(name).unwrap_or_default(),
            sessions_root: sessions_root.clone(),
            index: RolloutIndex {
                version: INDEX_VERSION,
                root: sessions_root,
                rollouts: BTreeMap::new(),
            },
            index_dirty: false,
            scanned_this_sync: false,
            state_dir: config.state_dir.clone(),
            rollouts: HashMap::new(),
        };
        codex.load_index(fs);
        let given_entry = codex.entry_of_path(fs, &given);
        let given_thread = given_entry
            .as_ref()
            .map(|e| e.thread.clone())
            .unwrap_or_else(|| codex.root_thread.clone());
        let mut root_path = given.clone();
        let mut entry = given_entry;
        for _ in 0..MAX_DEPTH {
            let Some(parent) = entry
                .as_ref()
                .map(|e| e.parent.clone())
                .filter(|p| !p.is_empty())
            else {
                break;
            };
            if !codex.scanned_this_sync {
                codex.scan(fs);
            }
            let Some(rel) = codex.path_of_thread(&parent) else {
                break;
            };
            root_path = discovery::join(&codex.sessions_root, &rel);
            entry = codex.index.rollouts.get(&rel).cloned();
        }
        if let Some(e) = &entry {
            codex.root_thread = e.thread.clone();
        }
        let (_, root_name) = discovery::split_path(&root_path);
        codex.transcript_name = root_name.to_string();
        let stem = discovery::file_stem(name);
        let id = &config.external_id;
        if id == stem || *id == given_thread {
            config.external_id = if codex.root_thread.is_empty() {
                discovery::file_stem(root_name).to_string()
            } else {
                codex.root_thread.clone()
            };
        }
        config.transcript_path = root_path;
        codex
    }

    fn index_path(&self) -> Option<String> {
        Some(discovery::join(self.state_dir.as_deref()?, INDEX_FILE_NAME))
    }

    fn load_index<F: FileSystem>(&mut self, fs: &F) {
        let Some(path) = self.index_path() else {
            return;
        };
        let Some(bytes) = read_whole(fs, &path, MAX_INDEX_BYTES) else {
            return;
        };
        if let Ok(index) = serde_json::from_slice::<RolloutIndex>(&bytes) {
            if index.version == INDEX_VERSION && index.root == self.sessions_root {
                self.index = index;
            }
        }
    }

    fn rel_of(&self, path: &str) -> Option<String> {
        let prefix = discovery::join(&self.sessions_root, "");
        path.strip_prefix(&prefix).map(str::to_string)
    }

    /// The index entry of the rollout at `path`, reading its first line if
    /// it is not known yet.
    fn entry_of_path<F: FileSystem>(&mut self, fs: &F, path: &str) -> Option<RolloutEntry> {
        let rel = self.rel_of(path)?;
        if let Some(e) = self.index.rollouts.get(&rel) {
            return Some(e.clone());
        }
        let entry = read_entry(fs, path)?;
        self.index.rollouts.insert(rel, entry.clone());
        self.index_dirty = true;
        Some(entry)
    }

    fn path_of_thread(&self, thread: &str) -> Option<String> {
        self.index
            .rollouts
            .iter()
            .find(|(_, e)| e.thread == thread)
            .map(|(rel, _)| rel.clone())
    }

    /// List the sessions folder (its year, month and day folders) and read
    /// the first line of every rollout not in the index yet. Rollouts gone
    /// from the folder leave the index: a descendant deleted before it was
    /// uploaded is not looked for.
    fn scan<F: FileSystem>(&mut self, fs: &F) {
        self.scanned_this_sync = true;
        let mut rels = Vec::new();
        if list_rollouts(fs, &self.sessions_root, "", 0, &mut rels) {
            let present: BTreeSet<&str> = rels.iter().map(String::as_str).collect();
            let before = self.index.rollouts.len();
            self.index
                .rollouts
                .retain(|rel, _| present.contains(rel.as_str()));
            self.index_dirty |= self.index.rollouts.len() != before;
        }
        for rel in rels {
            if self.index.rollouts.contains_key(&rel) {
                continue;
            }
            let path = discovery::join(&self.sessions_root, &rel);
            if let Some(entry) = read_entry(fs, &path) {
                self.index.rollouts.insert(rel, entry);
                self.index_dirty = true;
            }
        }
    }

    /// Every rollout spawned by the root, transitively: (relative path, base name).
    fn descendants(&self) -> Vec<String> {
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for (rel, e) in &self.index.rollouts {
            if !e.parent.is_empty() {
                children.entry(e.parent.as_str()).or_default().push(rel);
            }
        }
        let mut out = Vec::new();
        let mut seen: BTreeSet<&str> = BTreeSet::from([self.root_thread.as_str()]);
        let mut todo = vec![self.root_thread.as_str()];
        while let Some(thread) = todo.pop() {
            for rel in children.get(thread).into_iter().flatten() {
                let child = self.index.rollouts[*rel].thread.as_str();
                if seen.insert(child) {
                    out.push(rel.to_string());
                    todo.push(child);
                }
            }
        }
        out.sort();
        out
    }
}

/// A whole file of at most `max` bytes, in a buffer of its size
/// (`read_small` allocates `max` up front: 64 MiB for an index of 1).
fn read_whole<F: FileSystem>(fs: &F, path: &str, max: usize) -> Option<Vec<u8>> {
    let file = fs.open(path).ok()?;
    let size = usize::try_from(file.stat().ok()?.size).ok()?;
    if size > max {
        return None;
    }
    let mut buf = vec![0u8; size];
    let mut filled = 0;
    while filled < size {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return None,
        }
    }
    buf.truncate(filled);
    Some(buf)
}

/// `<x>/sessions` for a rollout in `<x>/sessions/YYYY/MM/DD/`, else the folder itself.
fn sessions_root_of(dir: &str) -> String {
    let parts: Vec<&str> = dir.rsplitn(4, '/').collect();
    if parts.len() == 4
        && [(parts[0], 2), (parts[1], 2), (parts[2], 4)]
            .iter()
            .all(|(p, n)| p.len() == *n && p.bytes().all(|b| b.is_ascii_digit()))
    {
        parts[3].to_string()
    } else {
        dir.to_string()
    }
}

/// Rollout files under `dir`: `rollout-*.jsonl` at any level, descending
/// only into all-digit folders (years, months, days), at most three deep.
/// Whether `dir` itself could be listed.
fn list_rollouts<F: FileSystem>(
    fs: &F,
    base: &str,
    rel: &str,
    depth: usize,
    out: &mut Vec<String>,
) -> bool {
    let dir = if rel.is_empty() {
        base.to_string()
    } else {
        discovery::join(base, rel)
    };
    let Some(names) = fs.list_dir(&dir).ok().flatten() else {
        return false;
    };
    for name in names {
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if is_rollout_name(&name) {
            out.push(child);
        } else if depth < 3 && !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            list_rollouts(fs, base, &child, depth + 1, out);
        }
    }
    true
}

pub fn is_rollout_name(name: &str) -> bool {
    name.starts_with("rollout-") && name.ends_with(".jsonl") && !name.contains('/')
}

/// The thread uuid at the end of `rollout-<time>-<uuid>.jsonl`.
pub fn thread_of_name(name: &str) -> Option<String> {
    let stem = discovery::file_stem(name);
    let tail = stem.get(stem.len().checked_sub(36)?..)?;
    is_uuid(tail).then(|| tail.to_string())
}

/// `8-4-4-4-12` hex digits.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The entry of one rollout from its first line; `None` while the first
/// line is not complete (it is read again next time).
fn read_entry<F: FileSystem>(fs: &F, path: &str) -> Option<RolloutEntry> {
    let (_, name) = discovery::split_path(path);
    let fallback = || RolloutEntry {
        thread: thread_of_name(name).unwrap_or_default(),
        parent: String::new(),
    };
    match first_line(fs, path) {
        FirstLine::Complete(line) => Some(
            parse_session_meta(&line)
                .map(|m| RolloutEntry {
                    thread: m.thread_uuid,
                    parent: m.parent_thread_uuid.unwrap_or_default(),
                })
                .unwrap_or_else(fallback),
        ),
        FirstLine::TooLong => Some(fallback()),
        FirstLine::NotYet => None,
    }
}

enum FirstLine {
    Complete(String),
    TooLong,
    NotYet,
}

/// Read up to the first newline, in growing blocks (a real first line is
/// 10 to 60 KiB: one or two reads).
fn first_line<F: FileSystem>(fs: &F, path: &str) -> FirstLine {
    let Ok(file) = fs.open(path) else {
        return FirstLine::NotYet;
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut block = 64 << 10;
    loop {
        let start = buf.len();
        buf.resize(start + block, 0);
        let n = match file.read_at(&mut buf[start..], start as u64) {
            Ok(n) => n,
            Err(_) => return FirstLine::NotYet,
        };
        buf.truncate(start + n);
        if let Some(i) = memchr::memchr(b'\n', &buf[start..]) {
            buf.truncate(start + i);
            return FirstLine::Complete(String::from_utf8_lossy(&buf).into_owned());
        }
        if n == 0 {
            return FirstLine::NotYet;
        }
        if buf.len() >= MAX_FIRST_LINE_BYTES {
            return FirstLine::TooLong;
        }
        block = (block * 2).min(1 << 20);
    }
}

/// Whether a line is a Codex `session_meta` line.
pub fn is_session_meta_line(line: &str) -> bool {
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type")]
        kind: Option<Value>,
        payload: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Head>(line).is_ok_and(|h| {
        h.kind.as_ref().and_then(Value::as_str) == Some("session_meta") && h.payload.is_some()
    })
}

/// The fields of `session_meta.payload` the engine uses; every one as a
/// loose value, so an unexpected type loses that field only.
#[derive(Deserialize, Default)]
struct MetaPayload {
    id: Option<Value>,
    cwd: Option<Value>,
    model: Option<Value>,
    source: Option<Value>,
    thread_source: Option<Value>,
    parent_thread_id: Option<Value>,
    agent_path: Option<Value>,
    agent_role: Option<Value>,
    agent_nickname: Option<Value>,
    git: Option<Value>,
}

#[derive(Deserialize)]
struct MetaLine {
    #[serde(rename = "type")]
    kind: Option<Value>,
    payload: Option<MetaPayload>,
}

fn string(v: &Option<Value>) -> Option<String> {
    v.as_ref()
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn cut(s: Option<String>, max: usize) -> Option<String> {
    s.map(|s| metadata::truncate_utf8(&s, max).to_string())
}

/// A `session_meta` line as `codex_rollout` (its `rollout_path` left
/// empty), with the git branch; `None` for any other line.
fn parse_session_meta(line: &str) -> Option<SessionMetaFacts> {
    let parsed: MetaLine = serde_json::from_str(line).ok()?;
    if parsed.kind.as_ref().and_then(Value::as_str) != Some("session_meta") {
        return None;
    }
    let p = parsed.payload?;
    let thread_uuid = string(&p.id).filter(|s| is_uuid(s))?;
    let spawn = p
        .source
        .as_ref()
        .and_then(|s| s.get("subagent"))
        .and_then(|s| s.get("thread_spawn"));
    let spawn_field = |k: &str| spawn.and_then(|s| s.get(k)).cloned();
    let parent = string(&p.parent_thread_id)
        .or_else(|| string(&spawn_field("parent_thread_id")))
        .filter(|id| is_uuid(id) && *id != thread_uuid);
    let source = match &p.source {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) if o.len() == 1 => o.keys().next().cloned(),
        _ => None,
    };
    Some(SessionMetaFacts {
        thread_uuid,
        parent_thread_uuid: parent,
        cwd: cut(string(&p.cwd), 8192),
        model: cut(string(&p.model), 255),
        source: cut(source, 64),
        thread_source: cut(string(&p.thread_source), 255),
        agent_path: cut(string(&p.agent_path), 8192),
        agent_role: cut(
            string(&p.agent_role).or_else(|| string(&spawn_field("agent_role"))),
            255,
        ),
        agent_nickname: cut(
            string(&p.agent_nickname).or_else(|| string(&spawn_field("agent_nickname"))),
            255,
        ),
        branch: p
            .git
            .as_ref()
            .and_then(|g| g.get("branch"))
            .and_then(Value::as_str)
            .filter(|b| !b.is_empty())
            .map(str::to_string),
    })
}

struct SessionMetaFacts {
    thread_uuid: String,
    parent_thread_uuid: Option<String>,
    cwd: Option<String>,
    model: Option<String>,
    source: Option<String>,
    thread_source: Option<String>,
    agent_path: Option<String>,
    agent_role: Option<String>,
    agent_nickname: Option<String>,
    branch: Option<String>,
}

/// The prompt of an `event_msg` line whose payload is a `user_message`.
fn user_message(line: &str) -> Option<String> {
    if !line.contains("\"user_message\"") {
        return None;
    }
    #[derive(Deserialize)]
    struct Payload {
        #[serde(rename = "type")]
        kind: Option<Value>,
        message: Option<Value>,
    }
    #[derive(Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        kind: Option<Value>,
        payload: Option<Payload>,
    }
    let e: Event = serde_json::from_str(line).ok()?;
    if e.kind.as_ref().and_then(Value::as_str) != Some("event_msg") {
        return None;
    }
    let p = e.payload?;
    if p.kind.as_ref().and_then(Value::as_str) != Some("user_message") {
        return None;
    }
    string(&p.message)
}

impl Provider for Codex {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Codex
    }

    fn transcript_name(&self) -> &str {
        &self.transcript_name
    }

    fn discover_per_sync<F: FileSystem>(&mut self, _fs: &F) -> Vec<Found> {
        // Each sync lists the folders once: a thread spawned since the last
        // sync is found by it.
        self.scanned_this_sync = false;
        Vec::new()
    }

    fn discover<F: FileSystem>(&mut self, fs: &F, known: &dyn KnownFiles) -> Vec<Found> {
        if !self.scanned_this_sync {
            self.scan(fs);
        }
        self.descendants()
            .into_iter()
            .filter_map(|rel| {
                let (_, name) = discovery::split_path(&rel);
                (!known.is_located(name)).then(|| Found {
                    name: name.to_string(),
                    file_type: FileType::Agent,
                    path: discovery::join(&self.sessions_root, &rel),
                    gate: Gate::None,
                })
            })
            .collect()
    }

    fn server_file_type(&self, name: &str) -> Option<FileType> {
        (is_rollout_name(name) && name != self.transcript_name).then_some(FileType::Agent)
    }

    fn skipped_line(&self, _text: &str, _links: &mut Vec<String>) {}

    fn observe_line(
        &mut self,
        file: FileRef<'_>,
        line_no: u64,
        text: &str,
        redacted: &str,
        redactor: &Redactor,
        meta: &mut SessionMeta,
        _links: &mut Vec<String>,
    ) {
        if line_no == 1 {
            // Ids from the line as read (they are no secrets, and a marker
            // in their place would be refused); the rest as uploaded.
            let ids = parse_session_meta(text);
            if let (Some(ids), Some(facts)) = (
                ids,
                parse_session_meta(redacted).or_else(|| parse_session_meta(text)),
            ) {
                self.rollouts.insert(
                    file.name.to_string(),
                    CodexRollout {
                        thread_uuid: ids.thread_uuid,
                        parent_thread_uuid: ids.parent_thread_uuid,
                        rollout_path: metadata::truncate_utf8(file.path, 8192).to_string(),
                        cwd: facts.cwd,
                        model: facts.model,
                        source: facts.source,
                        thread_source: facts.thread_source,
                        agent_path: facts.agent_path,
                        agent_role: facts.agent_role,
                        agent_nickname: facts.agent_nickname,
                    },
                );
            }
        }
        if file.file_type == FileType::Transcript && meta.first_user_message.is_none() {
            if let Some(message) = user_message(redacted) {
                // Decoding the JSON string may have completed a secret.
                let message = redact_text(redactor, &message);
                meta.first_user_message = Some(
                    metadata::truncate_utf8(message.trim(), FIRST_USER_MESSAGE_MAX_BYTES)
                        .to_string(),
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
        first_line: u64,
        meta: &SessionMeta,
        redactor: &Redactor,
        out: &'m mut ChunkMetadata,
    ) -> Option<&'m ChunkMetadata> {
        out.codex_rollout = if first_line == 1 {
            self.rollouts.get(file.name).cloned()
        } else {
            None
        };
        if file.file_type == FileType::Transcript {
            out.first_user_message.clone_from(&meta.first_user_message);
            out.git_info = redacted_git_info(redactor, &meta.git);
        }
        Some(out)
    }

    fn workspace_hints(
        &self,
        first_lines: &mut dyn Iterator<Item = String>,
        _want_cwd: bool,
    ) -> (Option<String>, Option<String>) {
        match first_lines.next().as_deref().and_then(parse_session_meta) {
            Some(m) => (m.cwd, m.branch),
            None => (None, None),
        }
    }

    fn after_sync<F: FileSystem>(
        &mut self,
        fs: &F,
        _state_dir: Option<&str>,
        report: &mut SyncReport,
    ) {
        if !self.index_dirty {
            return;
        }
        let Some(path) = self.index_path() else {
            return;
        };
        let bytes = serde_json::to_vec(&self.index).unwrap_or_default();
        match fs.write_file(&path, &bytes) {
            Ok(()) => self.index_dirty = false,
            Err(e) => report.warnings.push(format!(
                "cannot save the index of Codex rollouts {path}: {e} (the next start reads their first lines again)"
            )),
        }
    }
}

#[cfg(test)]
#[path = "codex_tests.rs"]
mod tests;
