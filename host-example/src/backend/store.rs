//! What the backend holds: per-user sessions keyed by provider and external
//! id (as confab-web keys them: `(user, provider, external_id)`), each
//! session's files (bytes and line counts), metadata, events and GitHub
//! links; and, when a mirror directory is configured, their copy on disk.
//!
//! The rules that depend on state live here: contiguity (`first_line` must
//! be the server's `last_synced_line + 1`), the per-file chunk count, and
//! ownership (a session id of another user is as unknown as a made-up one).
//!
//! Mirror layout, so a restarted backend loses nothing it acknowledged:
//! - `<mirror>/<external_id>/<file_name>`: exactly the stored bytes of the
//!   file of a `claude-code` session (user 1; user N > 1 lives under
//!   `<mirror>/~user-N/`); another provider's sessions under
//!   `~<provider>/` there (`<mirror>/~codex/<external_id>/`). Directory
//!   names are the external id with every byte outside `[A-Za-z0-9_-]`
//!   written as `%XX`, so a UUID stays as it is and no external id can
//!   climb out of the mirror or collide with `state.json` or `~user-N`.
//! - `<mirror>/state.json`: everything else, rewritten atomically (temp
//!   file + rename) after every change. A chunk's bytes are written before
//!   `state.json` acknowledges them; on reload, bytes past the length that
//!   `state.json` records are an unacknowledged write and are cut off.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::limits::{DEFAULT_PROVIDER, MAX_CHUNKS_PER_FILE};
use super::rules::{printable, ChunkRequest, EventRequest, GithubLinkRequest, InitRequest};
use super::SessionSnapshot;

/// One file of a session, as far as the server counted it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FileState {
    file_type: String,
    line_count: u64,
    byte_len: u64,
    chunk_count: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Session {
    session_id: String,
    external_id: String,
    provider: String,
    transcript_path: String,
    init_metadata: Value,
    /// Every init's `metadata`, in arrival order (a re-init that forgot the
    /// metadata would overwrite the session's with empties on the server).
    #[serde(default)]
    init_history: Vec<Value>,
    chunk_metadata: Map<String, Value>,
    summary_patch: Option<String>,
    events: Vec<Value>,
    github_links: Vec<Value>,
    files: BTreeMap<String, FileState>,
    /// Codex: `metadata.codex_rollout` by thread uuid, from chunks of any
    /// file (parent first-write-wins, other fields: a non-empty value wins).
    #[serde(default)]
    codex_rollouts: BTreeMap<String, Value>,
}

/// Everything but the file bytes: what `state.json` holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    next_link_id: u64,
    /// user id -> external id -> session, for `claude-code`.
    users: BTreeMap<u64, BTreeMap<String, Session>>,
    /// user id -> provider -> external id -> session, for the others.
    #[serde(default)]
    other_providers: BTreeMap<u64, BTreeMap<String, BTreeMap<String, Session>>>,
}

/// Which session: (user id, provider, external id).
type SessionKey = (u64, String, String);
/// (user id, provider, external id, file name).
type FileKey = (u64, String, String, String);

fn file_key(key: &SessionKey, file_name: &str) -> FileKey {
    (key.0, key.1.clone(), key.2.clone(), file_name.to_string())
}

impl State {
    fn sessions(&self, user: u64, provider: &str) -> Option<&BTreeMap<String, Session>> {
        if provider == DEFAULT_PROVIDER {
            self.users.get(&user)
        } else {
            self.other_providers.get(&user)?.get(provider)
        }
    }

    fn sessions_mut(&mut self, user: u64, provider: &str) -> &mut BTreeMap<String, Session> {
        if provider == DEFAULT_PROVIDER {
            self.users.entry(user).or_default()
        } else {
            self.other_providers
                .entry(user)
                .or_default()
                .entry(provider.to_string())
                .or_default()
        }
    }

    /// Every session, with its key.
    fn all(&self) -> impl Iterator<Item = (SessionKey, &Session)> {
        let claude = self.users.iter().flat_map(|(&u, sessions)| {
            sessions
                .iter()
                .map(move |(id, s)| ((u, DEFAULT_PROVIDER.to_string(), id.clone()), s))
        });
        let others = self.other_providers.iter().flat_map(|(&u, providers)| {
            providers.iter().flat_map(move |(p, sessions)| {
                sessions
                    .iter()
                    .map(move |(id, s)| ((u, p.clone(), id.clone()), s))
            })
        });
        claude.chain(others)
    }
}

pub struct Store {
    state: State,
    /// session id -> its key.
    by_session_id: HashMap<String, SessionKey>,
    /// Stored bytes of each file.
    contents: HashMap<FileKey, Vec<u8>>,
    mirror: Option<PathBuf>,
}

fn not_found_session(session_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "session not found: no session of yours has session_id `{}`",
        printable(session_id, 80)
    ))
}

impl Store {
    /// An empty store, or the one saved in `mirror` if it holds a state.
    pub fn open(mirror: Option<PathBuf>) -> anyhow::Result<Store> {
        let mut store = Store {
            state: State::default(),
            by_session_id: HashMap::new(),
            contents: HashMap::new(),
            mirror,
        };
        if let Some(dir) = store.mirror.clone() {
            fs::create_dir_all(&dir)
                .with_context(|| format!("creating mirror directory {}", dir.display()))?;
            store.load(&dir)?;
        }
        Ok(store)
    }

    fn load(&mut self, dir: &Path) -> anyhow::Result<()> {
        let state_path = dir.join("state.json");
        let text = match fs::read(&state_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", state_path.display())),
        };
        let state: State = serde_json::from_slice(&text)
            .with_context(|| format!("parsing {}", state_path.display()))?;
        for (key, session) in state.all() {
            {
                self.by_session_id
                    .insert(session.session_id.clone(), key.clone());
                for (name, file) in &session.files {
                    let path = session_dir(dir, &key).join(name);
                    let mut bytes =
                        fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                    let want = file.byte_len as usize;
                    anyhow::ensure!(
                        bytes.len() >= want,
                        "{} holds {} bytes but state.json acknowledged {want}",
                        path.display(),
                        bytes.len()
                    );
                    if bytes.len() > want {
                        // Written but never acknowledged: drop it, as the
                        // client will resend from the acknowledged line.
                        bytes.truncate(want);
                        fs::OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .and_then(|f| f.set_len(want as u64))
                            .with_context(|| format!("truncating {}", path.display()))?;
                    }
                    let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
                    anyhow::ensure!(
                        lines == file.line_count,
                        "{} holds {lines} lines but state.json says {}",
                        path.display(),
                        file.line_count
                    );
                    self.contents.insert(file_key(&key, name), bytes);
                }
            }
        }
        self.state = state;
        Ok(())
    }

    /// Writes `state.json` atomically; a no-op without a mirror.
    fn persist(&self) -> Result<(), ApiError> {
        let Some(dir) = &self.mirror else {
            return Ok(());
        };
        let write = || -> std::io::Result<()> {
            let tmp = dir.join("state.json.tmp");
            let bytes = serde_json::to_vec(&self.state).map_err(std::io::Error::other)?;
            // No fsync: the promise is to survive a restart of the backend
            // (the rename is atomic for that), not a power cut, and syncing
            // after every chunk would slow long test runs for nothing.
            fs::write(&tmp, bytes)?;
            fs::rename(&tmp, dir.join("state.json"))
        };
        write().map_err(|e| ApiError::internal(format!("could not persist the backend state: {e}")))
    }

    fn session_mut(&mut self, user: u64, session_id: &str) -> Result<&mut Session, ApiError> {
        match self.by_session_id.get(session_id) {
            Some((owner, provider, external_id)) if *owner == user => self
                .state
                .sessions_mut(*owner, provider)
                .get_mut(external_id)
                .ok_or_else(|| not_found_session(session_id)),
            // Another user's session is answered exactly like an unknown one.
            _ => Err(not_found_session(session_id)),
        }
    }

    /// POST /sync/init: creates the session on first call, resumes it after.
    pub fn init(&mut self, user: u64, req: InitRequest) -> Result<Value, ApiError> {
        let sessions = self.state.sessions_mut(user, &req.provider);
        let session = match sessions.get_mut(&req.external_id) {
            Some(session) => session,
            None => {
                let mut session_id = new_uuid();
                while self.by_session_id.contains_key(&session_id) {
                    session_id = new_uuid();
                }
                self.by_session_id.insert(
                    session_id.clone(),
                    (user, req.provider.clone(), req.external_id.clone()),
                );
                sessions.entry(req.external_id.clone()).or_insert(Session {
                    session_id,
                    external_id: req.external_id.clone(),
                    provider: String::new(),
                    transcript_path: String::new(),
                    init_metadata: Value::Null,
                    init_history: Vec::new(),
                    chunk_metadata: Map::new(),
                    summary_patch: None,
                    events: Vec::new(),
                    github_links: Vec::new(),
                    files: BTreeMap::new(),
                    codex_rollouts: BTreeMap::new(),
                })
            }
        };
        session.provider = req.provider;
        session.transcript_path = req.transcript_path;
        session.init_history.push(req.metadata.clone());
        session.init_metadata = req.metadata;
        let files: Map<String, Value> = session
            .files
            .iter()
            .map(|(name, f)| (name.clone(), json!({ "last_synced_line": f.line_count })))
            .collect();
        let answer = json!({
            "session_id": session.session_id,
            "provider": session.provider,
            "files": files,
        });
        self.persist()?;
        Ok(answer)
    }

    /// POST /sync/chunk: appends the lines if they continue the file.
    /// Returns the new `last_synced_line`.
    pub fn append_chunk(&mut self, user: u64, req: ChunkRequest) -> Result<u64, ApiError> {
        let mirror = self.mirror.clone();
        let key = self
            .by_session_id
            .get(&req.session_id)
            .cloned()
            .ok_or_else(|| not_found_session(&req.session_id))?;
        let session = self.session_mut(user, &req.session_id)?;
        let codex_rollout = req
            .metadata
            .as_ref()
            .and_then(|m| m.get("codex_rollout"))
            .filter(|v| !v.is_null())
            .cloned();
        if codex_rollout.is_some() && session.provider != "codex" {
            return Err(ApiError::bad_request(
                "codex_rollout metadata is only supported for codex sessions",
            ));
        }
        let (have, chunks, byte_len) = match session.files.get(&req.file_name) {
            Some(f) => {
                if f.file_type != req.file_type {
                    return Err(ApiError::bad_request(format!(
                        "file_type of {} is {}, not {}",
                        printable(&req.file_name, 80),
                        f.file_type,
                        req.file_type
                    )));
                }
                (f.line_count, f.chunk_count, f.byte_len)
            }
            None => (0, 0, 0),
        };
        if req.first_line != have + 1 {
            return Err(ApiError::bad_request(format!(
                "first_line must be {} (server has {have} lines of {}); got {}",
                have + 1,
                printable(&req.file_name, 80),
                req.first_line
            )));
        }
        if chunks >= MAX_CHUNKS_PER_FILE {
            return Err(ApiError::bad_request(format!(
                "{} already has {MAX_CHUNKS_PER_FILE} chunks, the most a file may have",
                printable(&req.file_name, 80)
            )));
        }
        let mut bytes = Vec::with_capacity(req.lines.iter().map(|l| l.len() + 1).sum());
        for line in &req.lines {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        // Bytes first, acknowledgement (state.json) second: see module docs.
        if let Some(dir) = &mirror {
            let path = session_dir(dir, &key).join(&req.file_name);
            write_at(&path, byte_len, &bytes)
                .map_err(|e| ApiError::internal(format!("could not write the mirror file: {e}")))?;
        }
        let count = req.lines.len() as u64;
        let file = session
            .files
            .entry(req.file_name.clone())
            .or_insert(FileState {
                file_type: req.file_type.clone(),
                line_count: 0,
                byte_len: 0,
                chunk_count: 0,
            });
        file.line_count += count;
        file.byte_len += bytes.len() as u64;
        file.chunk_count += 1;
        let last = file.line_count;
        // backend-api.md: metadata is read on transcript chunks only. A null
        // field means "not sent" (the real server decodes it as nil). The
        // first first_user_message written stays; every other field (the
        // summary above all) is overwritten by each chunk that carries it.
        if req.file_type == "transcript" {
            if let Some(meta) = req.metadata {
                for (k, v) in meta {
                    let keep_first = k == "first_user_message"
                        && session
                            .chunk_metadata
                            .get(&k)
                            .is_some_and(|old| old.as_str().is_some_and(|s| !s.is_empty()));
                    let empty = v.is_null() || v.as_str() == Some("");
                    if !keep_first && !empty {
                        session.chunk_metadata.insert(k, v);
                    }
                }
            }
        }
        if let Some(Value::Object(rollout)) = codex_rollout {
            let thread = rollout["thread_uuid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let row = session
                .codex_rollouts
                .entry(thread)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(row) = row {
                for (k, v) in rollout {
                    let first_write_wins = k == "parent_thread_uuid" && row.contains_key(&k);
                    let empty = v.is_null() || v.as_str() == Some("");
                    if !first_write_wins && !empty {
                        row.insert(k, v);
                    }
                }
            }
        }
        self.contents
            .entry(file_key(&key, &req.file_name))
            .or_default()
            .extend_from_slice(&bytes);
        self.persist()?;
        Ok(last)
    }

    /// POST /sync/event.
    pub fn add_event(&mut self, user: u64, req: EventRequest) -> Result<(), ApiError> {
        self.session_mut(user, &req.session_id)?
            .events
            .push(req.body);
        self.persist()
    }

    /// PATCH /sessions/{external_id}/summary.
    pub fn set_summary(
        &mut self,
        user: u64,
        external_id: &str,
        summary: String,
    ) -> Result<(), ApiError> {
        let session = self
            .state
            .sessions_mut(user, DEFAULT_PROVIDER)
            .get_mut(external_id)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "session not found: no session of yours has external_id `{}`",
                    printable(external_id, 80)
                ))
            })?;
        session.summary_patch = Some(summary);
        self.persist()
    }

    /// POST /sessions/{session_id}/github-links: 409 when the session already
    /// has a link to the same pull request or commit.
    pub fn add_github_link(
        &mut self,
        user: u64,
        session_id: &str,
        req: GithubLinkRequest,
    ) -> Result<Value, ApiError> {
        let id = self.state.next_link_id + 1;
        let session = self.session_mut(user, session_id)?;
        let same = |link: &&Value| {
            link["link_type"] == req.link_type
                && link["owner"] == req.owner.as_str()
                && link["repo"] == req.repo.as_str()
                && link["ref"] == req.reference.as_str()
        };
        if let Some(existing) = session.github_links.iter().find(same) {
            return Err(ApiError::conflict(format!(
                "GitHub link already exists (id {})",
                existing["id"]
            )));
        }
        let link = json!({
            "id": id,
            "session_id": session_id,
            "link_type": req.link_type,
            "url": req.url,
            "owner": req.owner,
            "repo": req.repo,
            "ref": req.reference,
            "title": req.title,
            "source": req.source,
        });
        session.github_links.push(link.clone());
        self.state.next_link_id = id;
        self.persist()?;
        Ok(link)
    }

    /// `GET /sessions/by-external-id/{external_id}`: the session's id, for
    /// its owner only.
    pub fn lookup(&self, user: u64, external_id: &str) -> Result<String, ApiError> {
        self.state
            .sessions(user, DEFAULT_PROVIDER)
            .and_then(|sessions| sessions.get(external_id))
            .map(|s| s.session_id.clone())
            .ok_or_else(|| ApiError::not_found("Session not found"))
    }

    /// `GET /sessions/{id}/sync/file?file_name=`: the stored bytes of a
    /// file of one of `user`'s sessions.
    pub fn read_file(
        &self,
        user: u64,
        session_id: &str,
        file_name: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let key = match self.by_session_id.get(session_id) {
            Some(key) if key.0 == user => key,
            _ => return Err(ApiError::not_found("Session not found")),
        };
        self.contents
            .get(&file_key(key, file_name))
            .cloned()
            .ok_or_else(|| ApiError::not_found("File not found"))
    }

    /// The session with this external id (of `provider`, else of any:
    /// claude-code's first): user 1's first, then the other users' in id
    /// order (the inspection API has no user argument).
    fn find(&self, provider: Option<&str>, external_id: &str) -> Option<(SessionKey, &Session)> {
        self.state
            .all()
            .find(|(key, _)| key.2 == external_id && provider.is_none_or(|p| key.1 == p))
    }

    pub fn file(
        &self,
        provider: Option<&str>,
        external_id: &str,
        file_name: &str,
    ) -> Option<Vec<u8>> {
        let (key, _) = self.find(provider, external_id)?;
        self.contents.get(&file_key(&key, file_name)).cloned()
    }

    pub fn file_names(&self, provider: Option<&str>, external_id: &str) -> Vec<String> {
        // BTreeMap keys: already sorted.
        self.find(provider, external_id)
            .map(|(_, s)| s.files.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn snapshot(&self, provider: Option<&str>, external_id: &str) -> Option<SessionSnapshot> {
        let (_, s) = self.find(provider, external_id)?;
        Some(SessionSnapshot {
            session_id: s.session_id.clone(),
            provider: s.provider.clone(),
            codex_rollouts: s.codex_rollouts.clone(),
            external_id: s.external_id.clone(),
            init_metadata: s.init_metadata.clone(),
            init_history: s.init_history.clone(),
            transcript_path: s.transcript_path.clone(),
            chunk_metadata: Value::Object(s.chunk_metadata.clone()),
            summary_patch: s.summary_patch.clone(),
            events: s.events.clone(),
            github_links: s.github_links.clone(),
            file_types: s
                .files
                .iter()
                .map(|(name, f)| (name.clone(), f.file_type.clone()))
                .collect(),
        })
    }
}

/// The mirror directory of one session (see the module docs).
fn session_dir(mirror: &Path, key: &SessionKey) -> PathBuf {
    let (user, provider, external_id) = key;
    let mut base = if *user == 1 {
        mirror.to_path_buf()
    } else {
        mirror.join(format!("~user-{user}"))
    };
    if provider != DEFAULT_PROVIDER {
        base = base.join(format!("~{}", encode_component(provider)));
    }
    base.join(encode_component(external_id))
}

/// `[A-Za-z0-9_-]` as is, every other byte as `%XX`: a safe, injective
/// directory name (no `.`, `/` or `~` can appear in it).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Writes `bytes` at `offset`, first cutting the file to `offset`: bytes an
/// earlier failed request left past the acknowledged end are overwritten.
fn write_at(path: &Path, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    file.set_len(offset)?;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)
}

/// A random version-4 UUID, for server session ids. std's `RandomState` is
/// seeded from the OS per thread and differs per call, which is all the
/// randomness a local test server needs.
fn new_uuid() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.finish()
    };
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&random().to_be_bytes());
    b[8..].copy_from_slice(&random().to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init(store: &mut Store, user: u64, external_id: &str) -> String {
        let answer = store
            .init(
                user,
                InitRequest {
                    external_id: external_id.into(),
                    transcript_path: format!("/p/{external_id}.jsonl"),
                    provider: "claude-code".into(),
                    metadata: json!({}),
                },
            )
            .unwrap();
        answer["session_id"].as_str().unwrap().to_string()
    }

    fn chunk(session_id: &str, first_line: u64, lines: &[&str]) -> ChunkRequest {
        ChunkRequest {
            session_id: session_id.into(),
            file_name: "t.jsonl".into(),
            file_type: "transcript".into(),
            first_line,
            lines: lines.iter().map(|s| s.to_string()).collect(),
            metadata: None,
        }
    }

    #[test]
    fn chunk_count_limit() {
        let mut store = Store::open(None).unwrap();
        let sid = init(&mut store, 1, "s");
        for n in 1..=u64::from(MAX_CHUNKS_PER_FILE) {
            assert_eq!(store.append_chunk(1, chunk(&sid, n, &["x"])).unwrap(), n);
        }
        let err = store
            .append_chunk(1, chunk(&sid, u64::from(MAX_CHUNKS_PER_FILE) + 1, &["x"]))
            .unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("30000 chunks"), "{}", err.message);
    }

    #[test]
    fn sessions_are_per_user() {
        let mut store = Store::open(None).unwrap();
        let a = init(&mut store, 1, "same");
        let b = init(&mut store, 2, "same");
        assert_ne!(a, b);
        assert_eq!(
            store
                .append_chunk(2, chunk(&a, 1, &["x"]))
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(store.append_chunk(1, chunk(&a, 1, &["x"])).unwrap(), 1);
    }

    #[test]
    fn uuids_look_like_v4_and_differ() {
        let a = new_uuid();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, new_uuid());
    }

    #[test]
    fn directory_names_are_safe() {
        assert_eq!(encode_component("2f1c-AB_z"), "2f1c-AB_z");
        assert_eq!(encode_component("../x"), "%2E%2E%2Fx");
        assert_eq!(encode_component("state.json"), "state%2Ejson");
    }
}
