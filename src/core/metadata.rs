//! Facts extracted from transcript lines and from git files.
//!
//! This module owns the rules of `../shared/docs/transcripts.md` ("Fields the
//! engine uses"): which subagent ids a line references, the session's first
//! user message, `summary` lines, `gitBranch`/`cwd`, a message's `uuid`, plus
//! the remote URL and branch found in `.git/config` / `.git/HEAD` texts.
//!
//! It is pure and sans-I/O: every function takes text the caller already
//! read and returns owned facts. It must not open files, read the clock or
//! touch WASI, and it must never panic, whatever the input.
//!
//! It sits on the engine's hot path, so every line is first checked with a
//! few substring searches (`"agentId"`, `"user"`, `"summary"`, ...) and only
//! the rare lines that can hold a wanted fact are parsed. Parsing borrows from
//! the line: big subtrees (tool results, images) are skipped by serde_json's
//! validator or kept as borrowed [`RawValue`]s, never built into a
//! `serde_json::Value`.

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use memchr::memmem::{Finder, FinderBuilder};

use crate::core::byte_frequency::TranscriptRank;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::limits::{
    FIRST_USER_MESSAGE_MAX_BYTES, MAX_GIT_REMOTES, SUMMARY_MAX_BYTES, SUMMARY_SANITIZE_MAX_BYTES,
};
use super::protocol::GitRemote;

/// What the caller still needs, so the scanner can skip work (e.g. once the first user message is known).
#[derive(Debug, Clone, Copy, Default)]
pub struct Wants {
    pub first_user_message: bool,
    pub git_branch: bool,
    pub cwd: bool,
}

/// Facts from one line. Every field None/empty for most lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineFacts {
    /// Valid subagent ids referenced by this line (deduplicated, in order).
    pub agent_ids: Vec<String>,
    /// Only when `wants.first_user_message`: sanitized text of a `type == "user"`
    /// line whose `message.content` is a string, or the first non-empty
    /// `{"type":"text","text":...}` block of an array content. A user line whose
    /// content is only `tool_result` blocks (or whose text sanitizes to
    /// nothing) gives None.
    pub first_user_message: Option<String>,
    /// A `type == "summary"` line whose `summary` string sanitizes to
    /// something.
    pub summary: Option<Summary>,
    /// Only when `wants.git_branch`: non-empty top-level `gitBranch`.
    pub git_branch: Option<String>,
    /// Only when `wants.cwd`: non-empty top-level `cwd`.
    pub cwd: Option<String>,
}

/// A `{"type":"summary","summary":...,"leafUuid":...}` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The summary through [`sanitize_summary`]: cleaned, not yet cut to
    /// the server's limit (that is [`cut_summary`], after redaction).
    pub text: String,
    /// Non-empty `leafUuid`: the summary belongs to the earlier session that ends with this message.
    pub leaf_uuid: Option<String>,
}

// Pre-check needles. Keys and the values we compare against are searched
// with their quotes: inside a JSON string (a tool result quoting a transcript)
// they would appear escaped as `\"agentId\"` and do not match.
static AGENT_NEEDLE: Needle = LazyLock::new(|| needle("\"agentId\""));
static TOOL_USE_RESULT_NEEDLE: Needle = LazyLock::new(|| needle("\"toolUseResult\""));
static USER_NEEDLE: Needle = LazyLock::new(|| needle("\"user\""));
static SUMMARY_NEEDLE: Needle = LazyLock::new(|| needle("\"summary\""));
static BRANCH_NEEDLE: Needle = LazyLock::new(|| needle("\"gitBranch\""));
static CWD_NEEDLE: Needle = LazyLock::new(|| needle("\"cwd\""));
static UUID_NEEDLE: Needle = LazyLock::new(|| needle("\"uuid\""));
/// Unescaped quotes: only a JSON value can hold it, never quoted text.
static SESSION_END_NEEDLE: Needle = LazyLock::new(|| needle("\"SessionEnd\""));

/// A pre-check needle, searched with memchr's `memmem`, SIMD in wasm32 too
/// (`str::contains` has no SIMD path there: the per-line pre-checks ran at
/// 590 MiB/s in the component with it). Built once, on first use.
type Needle = LazyLock<Finder<'static>>;

/// A finder that looks for the needle's bytes rarest in transcripts (the
/// default ranks, made for prose, took `"` for rare: 3x slower here).
fn needle(text: &'static str) -> Finder<'static> {
    FinderBuilder::new().build_forward_with_ranker(TranscriptRank, text)
}

fn has(haystack: &str, needle: &Needle) -> bool {
    needle.find(haystack.as_bytes()).is_some()
}

/// Whether the line mentions the `SessionEnd` hook event as a JSON value.
pub fn mentions_session_end(line: &str) -> bool {
    has(line, &SESSION_END_NEEDLE)
}

const TOP_KEYS: [&str; 7] = [
    "type",
    "message",
    "toolUseResult",
    "summary",
    "leafUuid",
    "gitBranch",
    "cwd",
];
const AGENT_TOP_KEYS: [&str; 3] = ["type", "message", "toolUseResult"];

/// Scan one line (without its newline). Never panics; a line that is not valid JSON gives `LineFacts::default()`.
pub fn scan_line(line: &str, wants: Wants) -> LineFacts {
    let mut facts = LineFacts::default();

    let maybe_agents = may_reference_agents(line);
    let maybe_user = (maybe_agents || wants.first_user_message) && has(line, &USER_NEEDLE);
    let want_agents = maybe_agents && maybe_user;
    let want_first = wants.first_user_message && maybe_user;
    let want_summary = has(line, &SUMMARY_NEEDLE);
    let want_branch = wants.git_branch && has(line, &BRANCH_NEEDLE);
    let want_cwd = wants.cwd && has(line, &CWD_NEEDLE);
    if !(want_agents || want_first || want_summary || want_branch || want_cwd) {
        return facts;
    }

    let Some([kind, message, tool_use_result, summary, leaf_uuid, branch, cwd]) =
        object_fields(line, &TOP_KEYS)
    else {
        return facts;
    };
    match kind.and_then(json_str).as_deref() {
        Some("user") if want_agents || want_first => {
            facts.first_user_message = user_line(
                message,
                tool_use_result,
                want_first,
                want_agents,
                &mut facts.agent_ids,
            );
        }
        Some("summary") if want_summary => {
            facts.summary = summary
                .and_then(json_str)
                .map(|s| sanitize_summary(&s))
                .filter(|s| !s.is_empty())
                .map(|text| Summary {
                    text,
                    leaf_uuid: non_empty_string(leaf_uuid),
                });
        }
        _ => {}
    }
    if want_branch {
        facts.git_branch = non_empty_string(branch);
    }
    if want_cwd {
        facts.cwd = non_empty_string(cwd);
    }
    facts
}

/// Agent ids only (used while skipping already-synced lines); same rules as
/// [`scan_line`]'s `agent_ids`. Appends the ids that `out` does not hold yet.
pub fn agent_ids(line: &str, out: &mut Vec<String>) {
    if !may_reference_agents(line) || !has(line, &USER_NEEDLE) {
        return;
    }
    let Some([kind, message, tool_use_result]) = object_fields(line, &AGENT_TOP_KEYS) else {
        return;
    };
    if kind.and_then(json_str).as_deref() == Some("user") {
        user_line(message, tool_use_result, false, true, out);
    }
}

/// `uuid` of a message line, if any (for summary linking: find the session whose last lines hold a leafUuid).
pub fn line_uuid(line: &str) -> Option<String> {
    if !has(line, &UUID_NEEDLE) {
        return None;
    }
    let [uuid] = object_fields(line, &["uuid"])?;
    non_empty_string(uuid)
}

/// 6+ of `[A-Za-z0-9_-]`, at most 128 bytes; anything else (a `/`, `..`,
/// absolute paths, non-ASCII) is not an id.
pub fn is_valid_agent_id(id: &str) -> bool {
    (6..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Strip HTML-like tags, decode HTML entities (named: amp lt gt quot apos
/// nbsp, and numeric `&#NN;` `&#xHH;`), fold runs of whitespace to one space,
/// trim, cut to `max_bytes` on a UTF-8 boundary, appending "..." within the
/// limit when cut.
///
/// A tag is `<` followed by a letter, `/`+letter, `!` or `?`, up to the next
/// `>` (a `<` before it means it was no tag); it separates words like a space.
/// Tags are stripped before entities are decoded, so `&lt;b&gt;` stays as
/// text. An unknown or malformed entity stays as it is. Work stops once the
/// output is longer than `max_bytes`, so a huge input costs little.
pub fn sanitize_user_message(raw: &str, max_bytes: usize) -> String {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len().min(max_bytes.saturating_add(8)));
    let mut pending_space = false;
    let mut cut = false;
    let mut skip_to = 0;
    for (i, c) in raw.char_indices() {
        if i < skip_to {
            continue;
        }
        let c = match c {
            '<' => {
                if let Some(end) = tag_end(bytes, i) {
                    skip_to = end;
                    pending_space = !out.is_empty();
                    continue;
                }
                c
            }
            '&' => match decode_entity(bytes, i) {
                Some((decoded, end)) => {
                    skip_to = end;
                    decoded
                }
                None => c,
            },
            _ => c,
        };
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
        if out.len() > max_bytes {
            cut = true;
            break;
        }
    }
    if cut {
        const ELLIPSIS: &str = "...";
        if max_bytes < ELLIPSIS.len() {
            let keep = truncate_utf8(&out, max_bytes).len();
            out.truncate(keep);
        } else {
            let keep = truncate_utf8(&out, max_bytes - ELLIPSIS.len())
                .trim_end()
                .len();
            out.truncate(keep);
            out.push_str(ELLIPSIS);
        }
    }
    out
}

/// A summary cleaned like the first user message (confab does the same):
/// tags stripped, entities decoded, whitespace folded. It is kept up to
/// [`SUMMARY_SANITIZE_MAX_BYTES`], more than the server takes, because it is
/// redacted once more before it is sent and only then cut ([`cut_summary`]):
/// a secret must not survive by being cut short.
pub fn sanitize_summary(raw: &str) -> String {
    sanitize_user_message(raw, SUMMARY_SANITIZE_MAX_BYTES)
}

/// The server's limit on a summary: at most [`SUMMARY_MAX_BYTES`], cut on a
/// UTF-8 boundary (confab v0.17.3 sends longer ones and gets a 400).
pub fn cut_summary(summary: &str) -> &str {
    truncate_utf8(summary, SUMMARY_MAX_BYTES).trim_end()
}

/// Cut to at most max_bytes on a char boundary (no ellipsis).
pub fn truncate_utf8(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A remote URL without its credentials: `https://user:token@host/r` becomes
/// `https://host/r`, so a token written into `.git/config` never leaves the
/// machine as metadata. scp-like `git@host:o/r.git` has none and is kept.
pub fn strip_url_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// `url` of `[remote "origin"]` in a .git/config text.
///
/// Follows git's syntax (see [`git_config_entries`]). When several `url`s
/// are given, the first one (git's fetch URL) wins. `include`d files and
/// `insteadOf` rewrites are not followed.
pub fn git_origin_url(git_config: &str) -> Option<String> {
    git_config_entries(git_config)
        .into_iter()
        .find(|e| e.is("remote", Some("origin"), "url") && !e.value.is_empty())
        .map(|e| e.value)
}

/// The remotes of a .git/config, in the order git lists them (`git remote
/// -v`): the fetch URL is a remote's first `url`, the push URL its first
/// `pushurl`, else the fetch URL. Credentials are stripped from both, a
/// remote without a `url` is left out, and at most [`MAX_GIT_REMOTES`] are
/// kept (the server's limit).
pub fn git_remotes(git_config: &str) -> Vec<GitRemote> {
    let mut remotes: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for entry in git_config_entries(git_config) {
        let (Some(name), true) = (&entry.subsection, entry.section == "remote") else {
            continue;
        };
        let field = match entry.key.as_str() {
            "url" => 1,
            "pushurl" => 2,
            _ => continue,
        };
        if entry.value.is_empty() {
            continue;
        }
        let index = match remotes.iter().position(|r| &r.0 == name) {
            Some(i) => i,
            None => {
                remotes.push((name.clone(), None, None));
                remotes.len() - 1
            }
        };
        let slot = if field == 1 {
            &mut remotes[index].1
        } else {
            &mut remotes[index].2
        };
        slot.get_or_insert(entry.value);
    }
    remotes
        .into_iter()
        .filter_map(|(name, fetch, push)| {
            let fetch_url = strip_url_credentials(&fetch?);
            let push_url = push.map_or_else(|| fetch_url.clone(), |p| strip_url_credentials(&p));
            Some(GitRemote {
                name,
                fetch_url,
                push_url,
            })
        })
        .take(MAX_GIT_REMOTES)
        .collect()
}

/// `branch.<branch>.remote`: the remote the branch tracks, if set.
pub fn git_tracking_remote(git_config: &str, branch: &str) -> Option<String> {
    git_config_entries(git_config)
        .into_iter()
        .find(|e| e.is("branch", Some(branch), "remote") && !e.value.is_empty())
        .map(|e| e.value)
}

/// One `key = value` of a .git/config.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GitConfigEntry {
    /// Lower-cased: section names are case-insensitive.
    section: String,
    /// Case-sensitive in `[remote "name"]`; lower-cased in the legacy
    /// `[remote.name]` form, as git does.
    subsection: Option<String>,
    /// Lower-cased: keys are case-insensitive.
    key: String,
    value: String,
}

impl GitConfigEntry {
    fn is(&self, section: &str, subsection: Option<&str>, key: &str) -> bool {
        self.section == section && self.subsection.as_deref() == subsection && self.key == key
    }
}

/// Every `key = value` of a .git/config text, in order, in git's syntax:
/// section names and keys are case-insensitive, values may be quoted, hold
/// `\` escapes and continue on the next line after a trailing `\`, and
/// `#`/`;` start a comment outside quotes. A key alone (git's `true`) is
/// left out: none of the values read here can be one.
fn git_config_entries(git_config: &str) -> Vec<GitConfigEntry> {
    let mut entries = Vec::new();
    let mut rest = git_config;
    let mut section: Option<(String, Option<String>)> = None;
    while !rest.is_empty() {
        let (line, tail) = split_line(rest);
        rest = tail;
        let mut s = line.trim_start();
        if let Some(header) = s.strip_prefix('[') {
            match parse_section_header(header) {
                Some((name, subsection, after)) => {
                    section = Some((name, subsection));
                    s = after.trim_start();
                }
                None => {
                    section = None;
                    continue;
                }
            }
        }
        if s.is_empty() || s.starts_with('#') || s.starts_with(';') {
            continue;
        }
        let key_end = s
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(s.len());
        let key = &s[..key_end];
        let Some(value) = s[key_end..].trim_start().strip_prefix('=') else {
            continue;
        };
        // Parse every value, so continuation lines are never read as keys.
        let (value, tail) = parse_config_value(value, rest);
        rest = tail;
        if let Some((name, subsection)) = &section {
            entries.push(GitConfigEntry {
                section: name.clone(),
                subsection: subsection.clone(),
                key: key.to_ascii_lowercase(),
                value,
            });
        }
    }
    entries
}

/// Branch name from a .git/HEAD text (`ref: refs/heads/<branch>`); None when detached.
pub fn git_head_branch(head: &str) -> Option<String> {
    let first = head.trim_start().lines().next()?.trim();
    let target = first.strip_prefix("ref:")?.trim_start();
    let branch = target.strip_prefix("refs/heads/")?;
    (!branch.is_empty()).then(|| branch.to_owned())
}

// ---------------------------------------------------------------------------
// Lines

/// Cheap pre-check: a reference lives in a `toolUseResult` object's `agentId`.
fn may_reference_agents(line: &str) -> bool {
    has(line, &AGENT_NEEDLE) && has(line, &TOOL_USE_RESULT_NEEDLE)
}

/// Agent ids (pushed to `ids`, deduplicated) and, when `want_first`, the first
/// user message of a `type == "user"` line.
fn user_line(
    message: Option<&RawValue>,
    tool_use_result: Option<&RawValue>,
    want_first: bool,
    want_agents: bool,
    ids: &mut Vec<String>,
) -> Option<String> {
    let mut first = None;
    if let Some(message) = message {
        let message_agents = want_agents && has(message.get(), &AGENT_NEEDLE);
        if want_first || message_agents {
            let mut scan = UserScan {
                want_text: want_first,
                want_agents: message_agents,
                first_text: None,
                ids,
            };
            // A failure can only come from a bad string escape (lone surrogate):
            // keep what was found before it.
            let _ = parse_seed(message.get(), MessageSeed(&mut scan));
            first = scan.first_text;
        }
    }
    if want_agents {
        if let Some(result) = tool_use_result {
            agent_id_of_result(result, ids);
        }
    }
    first
}

/// `agentId` of a `toolUseResult` value, when it is an object.
fn agent_id_of_result(result: &RawValue, ids: &mut Vec<String>) {
    let text = result.get();
    if !text.starts_with('{') || !has(text, &AGENT_NEEDLE) {
        return;
    }
    if let Some([Some(id)]) = object_fields(text, &["agentId"]) {
        if let Some(id) = json_str(id) {
            push_id(ids, &id);
        }
    }
}

/// A `tool_result` block's `content`: an object, or an array of objects,
/// carrying `toolUseResult.agentId`. Strings (tool output text) never count.
fn agent_ids_of_tool_result_content(content: &RawValue, ids: &mut Vec<String>) {
    let text = content.get();
    if !has(text, &AGENT_NEEDLE) {
        return;
    }
    if text.starts_with('{') {
        agent_id_of_object(text, ids);
    } else if text.starts_with('[') {
        if let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) {
            for item in items {
                if item.get().starts_with('{') {
                    agent_id_of_object(item.get(), ids);
                }
            }
        }
    }
}

fn agent_id_of_object(object: &str, ids: &mut Vec<String>) {
    if let Some([Some(result)]) = object_fields(object, &["toolUseResult"]) {
        agent_id_of_result(result, ids);
    }
}

fn push_id(ids: &mut Vec<String>, id: &str) {
    if is_valid_agent_id(id) && !ids.iter().any(|known| known == id) {
        ids.push(id.to_owned());
    }
}

fn non_empty_string(raw: Option<&RawValue>) -> Option<String> {
    raw.and_then(json_str)
        .filter(|s| !s.is_empty())
        .map(Cow::into_owned)
}

/// The text of a JSON string value; None for any other kind of value.
/// Borrows when the string has no escapes (validated JSON: nothing to decode).
fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

// ---------------------------------------------------------------------------
// Streaming views over the JSON (no serde_json::Value)

/// The raw values of `keys` in a JSON object (the last occurrence of a
/// duplicated key wins); None when `json` is not one valid JSON object.
fn object_fields<'a, const N: usize>(
    json: &'a str,
    keys: &'static [&'static str; N],
) -> Option<[Option<&'a RawValue>; N]> {
    parse_seed(json, Fields(keys))
}

fn parse_seed<'a, S: DeserializeSeed<'a>>(json: &'a str, seed: S) -> Option<S::Value> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = seed.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

struct Fields<const N: usize>(&'static [&'static str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for Fields<N> {
    type Value = [Option<&'de RawValue>; N];
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Fields<N> {
    type Value = [Option<&'de RawValue>; N];
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = [None; N];
        while let Some(key) = map.next_key_seed(KeyIndex(self.0))? {
            match key {
                Some(i) => out[i] = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// Position of a map key in a list of wanted keys, without allocating.
struct KeyIndex(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeyIndex {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIndex {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|k| *k == v))
    }
}

/// Visitor methods that accept and drop the value kinds a view does not use.
macro_rules! ignore_scalars {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
}
macro_rules! ignore_str {
    () => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
}
macro_rules! drain_seq {
    ($de:lifetime) => {
        fn visit_seq<A: SeqAccess<$de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Default::default())
        }
    };
}
macro_rules! drain_map {
    ($de:lifetime) => {
        fn visit_map<A: MapAccess<$de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Default::default())
        }
    };
}

/// State of one pass over a user line's `message`.
struct UserScan<'o> {
    want_text: bool,
    want_agents: bool,
    first_text: Option<String>,
    ids: &'o mut Vec<String>,
}

impl UserScan<'_> {
    fn wants_text(&self) -> bool {
        self.want_text && self.first_text.is_none()
    }
}

/// `message`: only its `content` matters.
struct MessageSeed<'s, 'o>(&'s mut UserScan<'o>);

impl<'de> DeserializeSeed<'de> for MessageSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        const KEYS: &[&str] = &["content"];
        while let Some(key) = map.next_key_seed(KeyIndex(KEYS))? {
            match key {
                Some(_) => map.next_value_seed(ContentSeed(&mut *self.0))?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
    ignore_scalars!();
    ignore_str!();
    drain_seq!('de);
}

/// `message.content`: a string, or an array of blocks.
struct ContentSeed<'s, 'o>(&'s mut UserScan<'o>);

impl<'de> DeserializeSeed<'de> for ContentSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ContentSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("message content")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if self.0.wants_text() {
            let text = sanitize_user_message(v, FIRST_USER_MESSAGE_MAX_BYTES);
            if !text.is_empty() {
                self.0.first_text = Some(text);
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(BlockSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }
    ignore_scalars!();
    drain_map!('de);
}

/// One block of an array content.
struct BlockSeed<'s, 'o>(&'s mut UserScan<'o>);

impl<'de> DeserializeSeed<'de> for BlockSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BlockSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a content block")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        const KEYS: &[&str] = &["type", "text", "content", "toolUseResult"];
        let scan = self.0;
        let mut kind: Option<&'de RawValue> = None;
        let mut text: Option<String> = None;
        let mut content: Option<&'de RawValue> = None;
        let mut result: Option<&'de RawValue> = None;
        while let Some(key) = map.next_key_seed(KeyIndex(KEYS))? {
            match key {
                Some(0) => kind = Some(map.next_value()?),
                Some(1) if scan.wants_text() => text = map.next_value_seed(TextSeed)?,
                Some(2) if scan.want_agents => content = Some(map.next_value()?),
                Some(3) if scan.want_agents => result = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match kind.and_then(json_str).as_deref() {
            Some("text") => {
                if let Some(text) = text.filter(|t| !t.is_empty()) {
                    if scan.first_text.is_none() {
                        scan.first_text = Some(text);
                    }
                }
            }
            Some("tool_result") if scan.want_agents => {
                if let Some(content) = content {
                    agent_ids_of_tool_result_content(content, scan.ids);
                }
                if let Some(result) = result {
                    agent_id_of_result(result, scan.ids);
                }
            }
            _ => {}
        }
        Ok(())
    }
    ignore_scalars!();
    ignore_str!();
    drain_seq!('de);
}

/// A text block's `text`, sanitized straight from the parser's buffer.
struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a text")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(sanitize_user_message(v, FIRST_USER_MESSAGE_MAX_BYTES)))
    }
    ignore_scalars!();
    drain_seq!('de);
    drain_map!('de);
}

// ---------------------------------------------------------------------------
// Sanitizing

/// End (exclusive) of an HTML-like tag starting at `bytes[start] == b'<'`.
fn tag_end(bytes: &[u8], start: usize) -> Option<usize> {
    let after = bytes.get(start + 1..)?;
    let opens_tag = match after {
        [b'/', c, ..] => c.is_ascii_alphabetic(),
        [c, ..] => c.is_ascii_alphabetic() || *c == b'!' || *c == b'?',
        [] => false,
    };
    if !opens_tag {
        return None;
    }
    // Stop at the next `<` too: each byte is looked at by one tag search at
    // most, so the whole pass stays linear.
    let offset = after.iter().position(|&b| b == b'>' || b == b'<')?;
    (after[offset] == b'>').then_some(start + 1 + offset + 1)
}

/// Decode the entity at `bytes[start] == b'&'`: the char and the end of the entity.
fn decode_entity(bytes: &[u8], start: usize) -> Option<(char, usize)> {
    let after = bytes.get(start + 1..)?;
    let window = &after[..after.len().min(10)];
    let semi = window.iter().position(|&b| b == b';')?;
    let name = &window[..semi];
    let c = match name {
        b"amp" => '&',
        b"lt" => '<',
        b"gt" => '>',
        b"quot" => '"',
        b"apos" => '\'',
        b"nbsp" => '\u{a0}',
        [b'#', b'x' | b'X', hex @ ..] => numeric_char(hex, 16)?,
        [b'#', dec @ ..] => numeric_char(dec, 10)?,
        _ => return None,
    };
    Some((c, start + 1 + semi + 1))
}

fn numeric_char(digits: &[u8], radix: u32) -> Option<char> {
    if digits.is_empty() || digits.len() > 7 {
        return None;
    }
    let mut n: u32 = 0;
    for &d in digits {
        n = n * radix + char::from(d).to_digit(radix)?;
    }
    char::from_u32(n).filter(|&c| c != '\0')
}

// ---------------------------------------------------------------------------
// git config

/// The line at the start of `s` (without `\n`) and the text after it.
fn split_line(s: &str) -> (&str, &str) {
    match s.find('\n') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

/// `header` follows a `[`: the section's name (lower-cased), its
/// subsection if any, and what follows the `]` on that line.
fn parse_section_header(header: &str) -> Option<(String, Option<String>, &str)> {
    let header = header.trim_start();
    let name_end = header.find(|c: char| c == ']' || c == '"' || c.is_whitespace())?;
    let name = &header[..name_end];
    let rest = header[name_end..].trim_start();
    if let Some(after) = rest.strip_prefix(']') {
        let (section, sub) = match name.split_once('.') {
            Some((section, sub)) => (section, Some(sub.to_ascii_lowercase())),
            None => (name, None),
        };
        return Some((section.to_ascii_lowercase(), sub, after));
    }
    let quoted = rest.strip_prefix('"')?;
    let mut sub = String::new();
    let mut chars = quoted.char_indices();
    let mut close = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    sub.push(escaped);
                }
            }
            '"' => {
                close = Some(i + 1);
                break;
            }
            _ => sub.push(c),
        }
    }
    let after = quoted[close?..].trim_start().strip_prefix(']')?;
    Some((name.to_ascii_lowercase(), Some(sub), after))
}

/// A config value in git's syntax, starting after the `=` on `line`; `rest`
/// is the text after that line. Returns the value and the text left after
/// any continuation lines it consumed.
fn parse_config_value<'a>(mut line: &'a str, mut rest: &'a str) -> (String, &'a str) {
    let mut value = String::new();
    let mut quoted = false;
    let mut spaces = 0usize; // whitespace seen outside quotes, not yet written
    loop {
        let mut chars = line.chars();
        let mut continued = false;
        while let Some(c) = chars.next() {
            if c == '\r' && chars.as_str().is_empty() {
                break;
            }
            if !quoted && c.is_whitespace() {
                if !value.is_empty() {
                    spaces += 1;
                }
                continue;
            }
            if !quoted && (c == '#' || c == ';') {
                break;
            }
            for _ in 0..spaces {
                value.push(' ');
            }
            spaces = 0;
            match c {
                '"' => quoted = !quoted,
                '\\' => match chars.next() {
                    None | Some('\r') if chars.as_str().is_empty() => {
                        continued = true;
                        break;
                    }
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('b') => {
                        value.pop();
                    }
                    Some(other) => value.push(other),
                    None => {}
                },
                _ => value.push(c),
            }
        }
        if !continued || rest.is_empty() {
            return (value, rest);
        }
        let (next, tail) = split_line(rest);
        line = next;
        rest = tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Wants = Wants {
        first_user_message: true,
        git_branch: true,
        cwd: true,
    };

    fn first(line: &str) -> Option<String> {
        scan_line(line, ALL).first_user_message
    }

    #[test]
    fn first_user_message_from_string_content() {
        let line = r#"{"type":"user","message":{"role":"user","content":"  fix   the\nbug  "},"uuid":"u1"}"#;
        assert_eq!(first(line).as_deref(), Some("fix the bug"));
    }

    #[test]
    fn first_user_message_from_first_text_block() {
        let line = r#"{"message":{"content":[{"type":"image","source":{}},{"text":"<ide_opened_file>a.rs</ide_opened_file>hello","type":"text"},{"type":"text","text":"second"}],"role":"user"},"type":"user"}"#;
        assert_eq!(first(line).as_deref(), Some("a.rs hello"));
    }

    #[test]
    fn first_user_message_skips_empty_text_blocks() {
        let line = r#"{"type":"user","message":{"content":[{"type":"text","text":" <br/> "},{"type":"text","text":"real"}]}}"#;
        assert_eq!(first(line).as_deref(), Some("real"));
    }

    #[test]
    fn tool_result_only_user_line_gives_none() {
        let line = r#"{"type":"user","message":{"role":"user","content":[{"tool_use_id":"t1","type":"tool_result","content":"file text","text":"not a text block"}]},"toolUseResult":"Error: x"}"#;
        assert_eq!(first(line), None);
        let line = r#"{"type":"user","message":{"content":[{"type":"tool_result","content":[{"type":"text","text":"nested text"}]}]}}"#;
        assert_eq!(first(line), None);
    }

    #[test]
    fn first_user_message_only_when_wanted_and_only_on_user_lines() {
        let user = r#"{"type":"user","message":{"content":"hi there"}}"#;
        let wants = Wants {
            first_user_message: false,
            ..ALL
        };
        assert_eq!(scan_line(user, wants).first_user_message, None);
        let assistant = r#"{"type":"assistant","message":{"role":"user","content":"hi there"}}"#;
        assert_eq!(first(assistant), None);
        let progress =
            r#"{"type":"progress","data":{"message":{"type":"user","message":{"content":"hi"}}}}"#;
        assert_eq!(first(progress), None);
    }

    #[test]
    fn escaped_text_is_decoded() {
        let line = r#"{"type":"user","message":{"content":"say \"hi\"\u00e9\n\tnow &amp; then"}}"#;
        assert_eq!(first(line).as_deref(), Some("say \"hi\"é now & then"));
    }

    #[test]
    fn sanitize_tags_entities_whitespace() {
        let s = sanitize_user_message(
            "<command-message>make</command-message>\n<command-name>/make</command-name>  &lt;b&gt; &amp;&quot;&apos;&#65;&#x42;&#X43;&nbsp;end",
            100,
        );
        assert_eq!(s, "make /make <b> &\"'ABC end");
        // Not tags: a lone `<`, `a < b`, an unclosed tag, `<` before `>`.
        assert_eq!(sanitize_user_message("a < b > c", 100), "a < b > c");
        assert_eq!(sanitize_user_message("x <3 y", 100), "x <3 y");
        assert_eq!(sanitize_user_message("if a<b && c", 100), "if a<b && c");
        assert_eq!(sanitize_user_message("<a <b>c", 100), "<a c");
        assert_eq!(sanitize_user_message("<!-- c -->x<?xml v?>", 100), "x");
        // Unknown, unterminated or invalid entities stay.
        assert_eq!(
            sanitize_user_message("&copy; &amp &#xD800; &#0; &#99999999; &#x; &", 100),
            "&copy; &amp &#xD800; &#0; &#99999999; &#x; &"
        );
        assert_eq!(sanitize_user_message(" \t\r\n ", 100), "");
        assert_eq!(sanitize_user_message("a\u{3000}\u{a0}b", 100), "a b");
    }

    #[test]
    fn sanitize_truncates_on_char_boundary_with_ellipsis() {
        assert_eq!(sanitize_user_message("abcdef", 6), "abcdef");
        assert_eq!(sanitize_user_message("abcdefg", 6), "abc...");
        // "é" is 2 bytes: 10 - 3 = 7 bytes leave "ééé" (6 bytes).
        let s = sanitize_user_message("éééééé", 10);
        assert_eq!(s, "ééé...");
        assert!(s.len() <= 10);
        // 4-byte chars.
        let s = sanitize_user_message("😀😀😀", 9);
        assert_eq!(s, "😀...");
        // A space right before the cut is not kept before the ellipsis.
        assert_eq!(sanitize_user_message("abc   def ghi", 7), "abc...");
        assert_eq!(sanitize_user_message("abcdef", 2), "ab");
        assert_eq!(sanitize_user_message("abcdef", 0), "");
        let long = "word ".repeat(10_000);
        let s = sanitize_user_message(&long, FIRST_USER_MESSAGE_MAX_BYTES);
        assert_eq!(s.len(), FIRST_USER_MESSAGE_MAX_BYTES);
        assert!(s.ends_with(" wor..."), "{}", &s[s.len() - 20..]);
    }

    #[test]
    fn truncate_utf8_cuts_on_boundaries() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("héllo", 100), "héllo");
        assert_eq!(truncate_utf8("😀", 3), "");
        assert_eq!(truncate_utf8("", 0), "");
    }

    #[test]
    fn summaries_are_cleaned_like_the_first_user_message() {
        for line in [
            r#"{"type":"summary","summary":"Fixed the <b>login</b>\n\n bug &amp; tests"}"#,
            r#"{"type":"summary","summary":"Fixed the <b>login</b>\n\n bug &amp; tests","leafUuid":"l-1"}"#,
        ] {
            let s = scan_line(line, Wants::default()).summary.unwrap();
            assert_eq!(s.text, "Fixed the login bug & tests", "{line}");
        }
    }

    #[test]
    fn a_summary_is_cut_on_a_character_boundary() {
        // 2047 bytes, then a 2-byte character across the limit.
        let text = format!("{}é", "a".repeat(SUMMARY_MAX_BYTES - 1));
        assert_eq!(cut_summary(&text).len(), SUMMARY_MAX_BYTES - 1);
        assert_eq!(cut_summary("short "), "short");
    }

    #[test]
    fn summaries_with_and_without_leaf_uuid() {
        let own = scan_line(
            r#"{"type":"summary","summary":"Fix the build"}"#,
            Wants::default(),
        );
        assert_eq!(
            own.summary,
            Some(Summary {
                text: "Fix the build".into(),
                leaf_uuid: None
            })
        );
        let linked = scan_line(
            r#"{"type":"summary","summary":"Fix \"it\"","leafUuid":"5a1e-77"}"#,
            Wants::default(),
        );
        assert_eq!(
            linked.summary,
            Some(Summary {
                text: "Fix \"it\"".into(),
                leaf_uuid: Some("5a1e-77".into())
            })
        );
        let long = format!(
            r#"{{"type":"summary","summary":"{}","leafUuid":""}}"#,
            "é".repeat(SUMMARY_MAX_BYTES)
        );
        let s = scan_line(&long, Wants::default()).summary.unwrap();
        assert!(s.text.len() > SUMMARY_MAX_BYTES, "cut only after redaction");
        assert!(s.text.len() <= SUMMARY_SANITIZE_MAX_BYTES);
        assert_eq!(cut_summary(&s.text).len(), SUMMARY_MAX_BYTES);
        assert_eq!(s.leaf_uuid, None);
        // Not summaries.
        for line in [
            r#"{"type":"summary","summary":""}"#,
            r#"{"type":"summary","summary":"<b> </b>"}"#,
            r#"{"type":"summary","summary":{"a":1}}"#,
            r#"{"type":"user","summary":"x","message":{"content":[]}}"#,
            r#"{"type":"summary","summary":"x""#,
        ] {
            assert_eq!(scan_line(line, Wants::default()).summary, None, "{line}");
        }
    }

    const REF_TOP: &str = r#"{"parentUuid":"p","type":"user","message":{"role":"user","content":[{"tool_use_id":"t","type":"tool_result","content":[{"type":"text","text":"agentId: a881341 (for resuming)"}]}]},"uuid":"u","toolUseResult":{"status":"completed","agentId":"a881341","content":[{"type":"text","text":"done"}]}}"#;
    const REF_NESTED: &str = r#"{"type":"user","message":{"content":[{"type":"tool_result","content":{"toolUseResult":{"agentId":"acompact-e1f845"}}},{"type":"tool_result","content":[{"toolUseResult":{"agentId":"b2898e3"}},"x",{"toolUseResult":"s"}],"toolUseResult":{"agentId":"c2898e3"}},{"type":"text","text":"hi","toolUseResult":{"agentId":"d2898e3"}}]},"toolUseResult":{"agentId":"b2898e3"}}"#;

    #[test]
    fn agent_ids_from_both_places() {
        assert_eq!(scan_line(REF_TOP, Wants::default()).agent_ids, ["a881341"]);
        assert_eq!(
            scan_line(REF_NESTED, Wants::default()).agent_ids,
            ["acompact-e1f845", "b2898e3", "c2898e3"]
        );
        let mut out = vec!["b2898e3".to_owned()];
        agent_ids(REF_NESTED, &mut out);
        assert_eq!(out, ["b2898e3", "acompact-e1f845", "c2898e3"]);
        let mut out = Vec::new();
        agent_ids(REF_TOP, &mut out);
        assert_eq!(out, ["a881341"]);
    }

    #[test]
    fn agent_ids_need_a_user_line_and_an_object() {
        for line in [
            // Not a user line.
            r#"{"type":"progress","toolUseResult":{"agentId":"a881341"},"data":{"agentId":"a881341","type":"user"}}"#,
            r#"{"type":"assistant","message":{"role":"user"},"toolUseResult":{"agentId":"a881341"}}"#,
            // A subagent's own id at the top level is not a reference.
            r#"{"type":"user","agentId":"a881341","message":{"content":"x"},"toolUseResult":"s"}"#,
            // toolUseResult as a string or an array.
            r#"{"type":"user","toolUseResult":"{\"agentId\":\"a881341\"}"}"#,
            r#"{"type":"user","toolUseResult":[{"agentId":"a881341"}]}"#,
            // Text that quotes a transcript.
            r#"{"type":"user","message":{"content":[{"type":"tool_result","content":"{\"toolUseResult\":{\"agentId\":\"a881341\"}}"}]}}"#,
            // Not JSON.
            r#"{"type":"user","toolUseResult":{"agentId":"a881341"}"#,
        ] {
            assert_eq!(
                scan_line(line, ALL).agent_ids,
                Vec::<String>::new(),
                "{line}"
            );
            let mut out = Vec::new();
            agent_ids(line, &mut out);
            assert!(out.is_empty(), "{line}");
        }
    }

    #[test]
    fn invalid_agent_ids_are_rejected() {
        let long = "a".repeat(200);
        for bad in [
            "../x",
            "a/b",
            "/abs",
            "abc",
            "",
            "../../etc/passwd",
            "abcdef/..",
            "abc def",
            "agent.1x",
            "ab\\cdef",
            "ábcdefg",
            long.as_str(),
        ] {
            assert!(!is_valid_agent_id(bad), "{bad}");
            let line = format!(
                r#"{{"type":"user","toolUseResult":{{"agentId":{}}}}}"#,
                serde_json::to_string(bad).unwrap()
            );
            assert!(scan_line(&line, ALL).agent_ids.is_empty(), "{line}");
        }
        let max = "a".repeat(128);
        for good in [
            "a2898e3",
            "0123abcd",
            "acompact-e1f845",
            "A_b-C9",
            max.as_str(),
        ] {
            assert!(is_valid_agent_id(good), "{good}");
        }
        assert!(!is_valid_agent_id(&"a".repeat(129)));
        // Non-string ids.
        let line = r#"{"type":"user","toolUseResult":{"agentId":12345678}}"#;
        assert!(scan_line(line, ALL).agent_ids.is_empty());
    }

    #[test]
    fn malformed_lines_give_defaults() {
        let long_nest = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep_user = format!(
            r#"{{"type":"user","toolUseResult":{{"agentId":"a881341"}},"x":{}"#,
            "[".repeat(10_000)
        );
        for line in [
            "",
            "not json",
            "{",
            "[]",
            "\"user\"",
            "null",
            r#"{"type":"user","message":{"content":"hi"}} trailing"#,
            r#"{"type":"user","message":{"content":"hi"},}"#,
            r#"{"type":"user","message":{"content":"hi"}"#,
            r#"{"type":"user","message":{"content":"\ud800 lone"}}"#,
            r#"{"type":"summary","summary":"s","gitBranch":"main","cwd":"/x","uuid":"u""#,
            long_nest.as_str(),
            deep_user.as_str(),
        ] {
            assert_eq!(scan_line(line, ALL), LineFacts::default(), "{line:.80}");
            let mut out = Vec::new();
            agent_ids(line, &mut out);
            assert!(out.is_empty());
            assert_eq!(line_uuid(line), None);
        }
    }

    #[test]
    fn branch_cwd_and_uuid() {
        let line = r#"{"type":"progress","cwd":"/home/u/repo","gitBranch":"feat/x","uuid":"9f3c","data":{"cwd":"/nested"}}"#;
        let facts = scan_line(line, ALL);
        assert_eq!(facts.git_branch.as_deref(), Some("feat/x"));
        assert_eq!(facts.cwd.as_deref(), Some("/home/u/repo"));
        assert_eq!(line_uuid(line).as_deref(), Some("9f3c"));
        assert_eq!(scan_line(line, Wants::default()), LineFacts::default());
        let empty = r#"{"type":"user","cwd":"","gitBranch":"","message":{"content":"hi"}}"#;
        let facts = scan_line(empty, ALL);
        assert_eq!((facts.git_branch, facts.cwd), (None, None));
        assert_eq!(line_uuid(r#"{"type":"user","data":{"uuid":"x"}}"#), None);
        assert_eq!(line_uuid(r#"{"uuid":7}"#), None);
    }

    #[test]
    fn credentials_never_leave_in_a_remote_url() {
        assert_eq!(
            strip_url_credentials("https://user:ghp_secret@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            strip_url_credentials("https://github.com/o/r@v1"),
            "https://github.com/o/r@v1"
        );
        assert_eq!(
            strip_url_credentials("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
    }

    #[test]
    fn remotes_in_git_order_with_push_urls_and_credentials_stripped() {
        let config = "[core]\n\tbare = false\n\
            [remote \"origin\"]\n\turl = https://u:ghp_tok@github.com/o/r.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n\
            [remote \"Fork\"]\n\tURL = git@github.com:me/r.git\n\tpushurl = https://me:pw@gitlab.com/me/r.git\n\
            [remote \"nourl\"]\n\tfetch = x\n\
            [branch \"main\"]\n\tremote = origin\n\tmerge = refs/heads/main\n\
            [branch \"dev\"]\n\tremote = Fork\n";
        let remotes = git_remotes(config);
        assert_eq!(
            remotes,
            [
                GitRemote {
                    name: "origin".into(),
                    fetch_url: "https://github.com/o/r.git".into(),
                    push_url: "https://github.com/o/r.git".into(),
                },
                GitRemote {
                    name: "Fork".into(),
                    fetch_url: "git@github.com:me/r.git".into(),
                    push_url: "https://gitlab.com/me/r.git".into(),
                },
            ]
        );
        assert_eq!(
            git_tracking_remote(config, "main").as_deref(),
            Some("origin")
        );
        assert_eq!(git_tracking_remote(config, "dev").as_deref(), Some("Fork"));
        assert_eq!(
            git_tracking_remote(config, "Main"),
            None,
            "subsections are case-sensitive"
        );
        assert_eq!(git_tracking_remote(config, "other"), None);
    }

    #[test]
    fn at_most_fifty_remotes() {
        let config: String = (0..60)
            .map(|i| format!("[remote \"r{i}\"]\n\turl = https://h/{i}.git\n"))
            .collect();
        let remotes = git_remotes(&config);
        assert_eq!(remotes.len(), MAX_GIT_REMOTES);
        assert_eq!(remotes[49].name, "r49");
    }

    #[test]
    fn git_origin_url_with_several_remotes_and_odd_spacing() {
        let config = "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\
            [remote \"upstream\"]\n\turl = https://example.com/up.git\n\
            [branch \"main\"]\n\tremote = origin\n\
            [Remote   \"origin\"  ]   \n\
            \t  fetch = +refs/heads/*:refs/remotes/origin/*\n\
            # url = https://commented.example/out.git\n\
            ; url = nope\n\
            \tpushurl = git@push.example:x.git\n\
            \t  URL   =   git@github.com:me/repo.git   # the origin\r\n\
            \turl = https://second.example/repo.git\n\
            [remote \"origin2\"]\n\turl = https://wrong.example\n";
        assert_eq!(
            git_origin_url(config).as_deref(),
            Some("git@github.com:me/repo.git")
        );
        let compact = "[remote \"origin\"]url=https://a.example/x.git";
        assert_eq!(
            git_origin_url(compact).as_deref(),
            Some("https://a.example/x.git")
        );
        let quoted = "[remote \"origin\"]\n\turl = \"https://a.example/my repo;x.git\" ; c\n";
        assert_eq!(
            git_origin_url(quoted).as_deref(),
            Some("https://a.example/my repo;x.git")
        );
        let continued = "[remote \"origin\"]\n\tfetch = a\\\n url = wrong\n\turl = https://a.ex\\\nample/x.git\n";
        assert_eq!(
            git_origin_url(continued).as_deref(),
            Some("https://a.example/x.git")
        );
        let legacy = "[remote.origin]\n url = https://legacy.example/x.git\n";
        assert_eq!(
            git_origin_url(legacy).as_deref(),
            Some("https://legacy.example/x.git")
        );
        // Case-sensitive subsection, other remotes, malformed headers, nothing.
        for none in [
            "[remote \"Origin\"]\n url = x\n",
            "[remote \"upstream\"]\n url = x\n",
            "[remote \"origin\"\n url = x\n",
            "url = top-level\n",
            "[remote \"origin\"]\n url =\n url\n",
            "",
            "[",
            "[remote \"or\\",
        ] {
            assert_eq!(git_origin_url(none), None, "{none:?}");
        }
    }

    #[test]
    fn git_head_branch_ref_and_detached() {
        assert_eq!(
            git_head_branch("ref: refs/heads/main\n").as_deref(),
            Some("main")
        );
        assert_eq!(
            git_head_branch("ref:refs/heads/feat/x-1\r\n").as_deref(),
            Some("feat/x-1")
        );
        assert_eq!(
            git_head_branch("4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"),
            None
        );
        assert_eq!(git_head_branch("ref: refs/heads/\n"), None);
        assert_eq!(git_head_branch("ref: refs/remotes/origin/main\n"), None);
        assert_eq!(git_head_branch(""), None);
    }

    // ---- real fixtures ----------------------------------------------------

    struct FileFacts {
        ids: Vec<String>,
        skip_ids: Vec<String>,
        first: Option<String>,
        branch: Option<String>,
        cwd: Option<String>,
        last_uuid: Option<String>,
    }

    fn scan_fixture(name: &str) -> FileFacts {
        let path = format!(
            "{}/tests/fixtures/claude-code/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let mut f = FileFacts {
            ids: Vec::new(),
            skip_ids: Vec::new(),
            first: None,
            branch: None,
            cwd: None,
            last_uuid: None,
        };
        for line in text.lines() {
            let wants = Wants {
                first_user_message: f.first.is_none(),
                git_branch: f.branch.is_none(),
                cwd: f.cwd.is_none(),
            };
            let facts = scan_line(line, wants);
            for id in facts.agent_ids {
                if !f.ids.contains(&id) {
                    f.ids.push(id);
                }
            }
            f.first = f.first.or(facts.first_user_message);
            f.branch = f.branch.or(facts.git_branch);
            f.cwd = f.cwd.or(facts.cwd);
            agent_ids(line, &mut f.skip_ids);
            if let Some(uuid) = line_uuid(line) {
                f.last_uuid = Some(uuid);
            }
        }
        f
    }

    #[test]
    fn real_fixtures() {
        let f = scan_fixture("258c7280-ae70-4798-800f-63464d01a85d.jsonl");
        assert_eq!(f.ids, ["a881341"]);
        assert_eq!(f.skip_ids, f.ids);
        assert_eq!(f.first.as_deref(), Some("Implement spotter-gqc"));
        assert_eq!(f.branch.as_deref(), Some("spotter-gqc"));

        // Also quotes subagent.jsonl (with `\"agentId\":\"afb92ff\"`) as tool output text.
        let f = scan_fixture("8463c716-a2ea-4c14-9efa-87158ebd9f20.jsonl");
        assert_eq!(f.ids, ["a7be2f0"]);
        assert_eq!(f.skip_ids, f.ids);
        assert_eq!(f.branch.as_deref(), Some("spotter-fum"));

        let f = scan_fixture("subagent.jsonl");
        assert_eq!(f.ids, ["afb92ff"]);
        assert_eq!(f.skip_ids, f.ids);

        let f = scan_fixture("short.jsonl");
        assert!(f.ids.is_empty());
        assert_eq!(
            f.first.as_deref(),
            Some("mix phx.server doesnt seem to start")
        );
        assert_eq!(f.branch.as_deref(), Some("master"));
        assert_eq!(f.cwd.as_deref(), Some("/home/marco/projects/spotter"));
        assert!(f.last_uuid.is_some());

        let f = scan_fixture("tool_heavy.jsonl");
        assert!(f.ids.is_empty());
        assert_eq!(f.first.as_deref(), Some("start phoenix in background"));

        // Subagent files carry their own id at the top level: not a reference.
        for sub in [
            "258c7280-ae70-4798-800f-63464d01a85d/subagents/agent-a881341.jsonl",
            "8463c716-a2ea-4c14-9efa-87158ebd9f20/subagents/agent-a7be2f0.jsonl",
            "8463c716-a2ea-4c14-9efa-87158ebd9f20/subagents/agent-acompact-f46190.jsonl",
        ] {
            let f = scan_fixture(sub);
            assert!(f.ids.is_empty(), "{sub}: {:?}", f.ids);
            assert!(f.first.is_some(), "{sub}");
        }
    }

    proptest::proptest! {
        /// Arbitrary text, and lines shaped like transcript lines with random
        /// content: scanning never panics and every id found is valid.
        #[test]
        fn scanning_any_line_never_panics(
            junk in ".{0,400}",
            id in "[ -~]{0,20}",
            text in ".{0,200}",
        ) {
            let wants = Wants { first_user_message: true, git_branch: true, cwd: true };
            let _ = scan_line(&junk, wants);
            let shaped = format!(
                "{{\"type\":\"user\",\"message\":{{\"content\":{}}},\"toolUseResult\":{{\"agentId\":{}}}}}",
                serde_json::to_string(&text).unwrap(),
                serde_json::to_string(&id).unwrap()
            );
            let facts = scan_line(&shaped, wants);
            for found in &facts.agent_ids {
                proptest::prop_assert!(is_valid_agent_id(found));
            }
            let _ = sanitize_user_message(&junk, 64);
        }
    }
}
