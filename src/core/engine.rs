//! The engine: one agent session's sync state and the algorithm that moves
//! new complete lines to the backend.
//!
//! State (per file: lines the server confirmed, how far the file was read,
//! a stat snapshot; per session: the server's session id and metadata) lives
//! here only, and changes only after the server confirmed a chunk or after
//! init told us its state. I/O goes through the [`super::io`] traits.

use super::checkpoint::{self, Checkpoint, FileMark};
use super::chunk::{escape_line, ChunkBuilder, ChunkTarget};
use super::client::{Client, PendingCall};
use super::config::SessionConfig;
use super::discovery;
use super::error::{ErrorKind, SyncError};
use super::io::{Clock, CountingFs, FileStat, FileSystem, Method, ReadAt, Transport};
use super::limits::{
    GIT_FILE_MAX_BYTES, LEAF_SEARCH_TAIL_LINES, MAX_CHUNK_LINE_BYTES, MAX_CHUNK_RECOVERIES,
    MAX_DISCOVERY_ROUNDS,
};
use super::lines::{self, LineReader, Next};
use super::metadata;
use super::protocol::{self, ChunkMetadata, GitInfo, InitMetadata, InitRequest, InitResponse};
use super::provider::{
    redact_text, redacted_git_info, AnyProvider, FileRef, Found, Gate, KnownFiles, Provider,
    SessionMeta,
};
use super::redact::{RedactionCounts, Redactor};
use super::report::{
    FileFailure, FileReport, FileStats, FileType, Progress, ProgressSink, SyncReport,
};
use super::retry::{self, Repeat};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

/// How far a file has been read: `lines` complete lines end at byte `bytes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Position {
    lines: u64,
    bytes: u64,
    /// The last of those lines ended the file without its `\n` (a complete
    /// record, see [`lines::is_complete_record`]): the `\n` expected at
    /// `bytes` closes it, and is no line of its own.
    open: bool,
}

#[derive(Debug, Clone)]
struct TrackedFile {
    /// Base name, the backend's `file_name`.
    name: String,
    file_type: FileType,
    /// Where it was found; `None` while a file known to the server is not found locally.
    path: Option<String>,
    /// Lines the server holds.
    confirmed: u64,
    /// Where reading resumes (`lines <= confirmed` except transiently).
    pos: Position,
    /// Stat when the file was last read to its end: unchanged means nothing new.
    snapshot: Option<FileStat>,
    /// Hash of the bytes before `pos.bytes`, to notice a file rewritten in place.
    mark: Option<FileMark>,
}

impl TrackedFile {
    fn new(name: String, file_type: FileType, path: Option<String>) -> Self {
        TrackedFile {
            name,
            file_type,
            path,
            confirmed: 0,
            pos: Position::default(),
            snapshot: None,
            mark: None,
        }
    }
}

/// Why one file stopped.
enum FileFailureKind {
    /// A chunk upload failed: re-read the server's state, then maybe go on.
    Upload(SyncError),
    /// The file itself is the problem (unreadable, line too long, rewritten).
    Local(SyncError),
}

pub struct Engine<F: FileSystem, T: Transport, C: Clock> {
    config: SessionConfig,
    /// What differs per agent: the session's files and what lines say.
    provider: AnyProvider,
    /// Counts bytes read, for the report.
    fs: CountingFs<F>,
    client: Client<T, C>,
    redactor: Redactor,
    session_id: Option<String>,
    /// `files[0]` is the transcript; agents follow in discovery order.
    files: Vec<TrackedFile>,
    /// Index into `files` by name: a server may name 200,000 files, and
    /// every lookup must stay constant-time.
    by_name: HashMap<String, usize>,
    meta: SessionMeta,
    chunk: ChunkBuilder,
    escaped: Vec<u8>,
    progress: Option<ProgressSink>,
    /// Read from the state folder at the first init; resume points to verify.
    checkpoint: Option<Checkpoint>,
    /// What the first init sent: every later init (the re-read after a
    /// failed chunk) sends it again, or the server would overwrite the
    /// session's cwd, git_info, hostname and username with empties.
    init_metadata: Option<InitMetadata>,
    /// The backend's answer to the capabilities probe, kept for the session
    /// once it said (200, or 404: an older server that supports nothing).
    capabilities: Option<protocol::Capabilities>,
    /// The probe failed transiently during this `sync_all`: not asked again
    /// until the next one (so a sync's outcome does not hang on its rounds).
    probe_failed_this_sync: bool,
}

impl<F: FileSystem, T: Transport, C: Clock> Engine<F, T, C> {
    /// Validate the configuration; nothing is sent.
    /// The provider is chosen here, and for Codex the session's root
    /// rollout found (see [`AnyProvider::for_session`]).
    pub fn new(
        mut config: SessionConfig,
        fs: F,
        transport: T,
        clock: C,
    ) -> Result<Self, SyncError> {
        config.validate()?;
        let provider = AnyProvider::for_session(&fs, &mut config).map_err(SyncError::config)?;
        let redactor =
            Redactor::new(&config.redaction).map_err(|e| SyncError::config(e.to_string()))?;
        let client = Client::new(transport, clock, &config.backend_url, &config.api_key);
        let transcript = TrackedFile::new(
            provider.transcript_name().to_string(),
            FileType::Transcript,
            Some(config.transcript_path.clone()),
        );
        Ok(Engine {
            config,
            provider,
            fs: CountingFs::new(fs),
            client,
            redactor,
            session_id: None,
            by_name: HashMap::from([(transcript.name.clone(), 0)]),
            files: vec![transcript],
            meta: SessionMeta::default(),
            chunk: ChunkBuilder::default(),
            escaped: Vec::new(),
            progress: None,
            checkpoint: None,
            init_metadata: None,
            capabilities: None,
            probe_failed_this_sync: false,
        })
    }

    /// Called after every confirmed chunk, e.g. to draw a progress line.
    pub fn set_progress(&mut self, progress: ProgressSink) {
        self.progress = Some(progress);
    }

    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The session's external id (the provider's when none was given).
    pub fn external_id(&self) -> &str {
        &self.config.external_id
    }

    /// The transcript the session is synced from (a Codex subagent's
    /// rollout stands for its root's).
    pub fn transcript_path(&self) -> &str {
        &self.config.transcript_path
    }

    /// The name `init` sends.
    pub fn provider_name(&self) -> &'static str {
        self.provider.kind().as_str()
    }

    pub fn client_mut(&mut self) -> &mut Client<T, C> {
        &mut self.client
    }

    /// Lines confirmed by the server, per known file.
    pub fn stats(&self) -> Vec<FileStats> {
        self.files
            .iter()
            .map(|f| FileStats {
                name: f.name.clone(),
                file_type: f.file_type,
                lines_synced: f.confirmed,
            })
            .collect()
    }

    /// Forget the server session and every resume point.
    pub fn reset(&mut self) {
        self.session_id = None;
        for f in &mut self.files {
            f.confirmed = 0;
            f.pos = Position::default();
            f.snapshot = None;
            f.mark = None;
        }
    }

    /// Create or resume the session on the backend and learn its resume points.
    pub fn init(&mut self) -> Result<String, SyncError> {
        let metadata = match &self.init_metadata {
            Some(metadata) => metadata.clone(),
            None => {
                if self.meta.git.is_empty() {
                    self.meta.git = self.read_git_info();
                }
                let metadata = InitMetadata {
                    cwd: self.config.cwd.clone(),
                    git_info: redacted_git_info(&self.redactor, &self.meta.git),
                    hostname: self.config.hostname.clone(),
                    username: self.config.username.clone(),
                };
                self.init_metadata = Some(metadata.clone());
                metadata
            }
        };
        let request = InitRequest {
            external_id: &self.config.external_id,
            transcript_path: &self.config.transcript_path,
            provider: self.provider.kind().as_str(),
            metadata,
        };
        let body =
            serde_json::to_vec(&request).map_err(|e| SyncError::io(format!("init body: {e}")))?;
        let answer =
            self.client
                .call(Method::Post, protocol::PATH_INIT, Some(&body), Repeat::Safe)?;
        let answer: InitResponse = parse_answer(protocol::PATH_INIT, &answer)?;
        self.apply_server_state(&answer);
        if self.session_id.is_none() && self.checkpoint.is_none() {
            self.load_checkpoint();
        }
        self.session_id = Some(answer.session_id.clone());
        Ok(answer.session_id)
    }

    fn checkpoint_path(&self) -> Option<String> {
        let dir = self.config.state_dir.as_deref()?;
        Some(discovery::join(
            dir,
            &checkpoint::file_name(&self.config.external_id),
        ))
    }

    /// Resume points saved by an earlier process, if any. They are verified
    /// against the server and the file before use (see `resume_from_checkpoint`).
    fn load_checkpoint(&mut self) {
        let Some(path) = self.checkpoint_path() else {
            return;
        };
        let Some(bytes) = self.fs.read_small(&path, checkpoint::MAX_CHECKPOINT_BYTES) else {
            return;
        };
        if let Some(c) = Checkpoint::parse(&bytes, &self.config.external_id) {
            self.provider.load_checkpoint(&c);
            self.checkpoint = Some(c);
        }
    }

    /// Save every file's resume point; a failure only costs the next start a scan.
    fn save_checkpoint(&mut self, report: &mut SyncReport) {
        let Some(path) = self.checkpoint_path() else {
            return;
        };
        let mut c = Checkpoint::new(&self.config.external_id);
        for f in &self.files {
            if let Some(mark) = f.mark.filter(|m| m.lines == f.confirmed) {
                c.files.insert(f.name.clone(), mark);
            } else if let Some(old) = self.checkpoint.as_ref().and_then(|c| c.files.get(&f.name)) {
                // Not read to a confirmed end this time (failed, refused as
                // rewritten): the old mark stays, and with it the evidence
                // that the next process checks the file against.
                c.files.insert(f.name.clone(), *old);
            }
        }
        self.provider.save_checkpoint(&mut c);
        if let Err(e) = self.fs.write_file(&path, &c.encode()) {
            report.warnings.push(format!(
                "cannot save the checkpoint {path}: {e} (the next start will re-read the files)"
            ));
        }
        self.checkpoint = Some(c);
    }

    /// After a pass over file `i`, remember the hash of the bytes before its
    /// position, while they are known to be what was synced.
    fn refresh_mark(&mut self, i: usize) {
        let f = &self.files[i];
        if f.mark.is_some_and(|m| {
            m.bytes == f.pos.bytes && m.lines == f.pos.lines && m.open == f.pos.open
        }) {
            return;
        }
        let mark = f
            .path
            .as_deref()
            .and_then(|p| self.fs.open(p).ok())
            .and_then(|h| {
                checkpoint::window_hash(&h, f.pos.bytes, f.pos.open).map(|window_hash| FileMark {
                    lines: f.pos.lines,
                    bytes: f.pos.bytes,
                    window_hash,
                    open: f.pos.open,
                })
            });
        self.files[i].mark = mark;
    }

    /// Take the server's line counts as the truth; keep read positions that
    /// are still valid (at or behind the server's count).
    fn apply_server_state(&mut self, answer: &InitResponse) {
        for name in answer.files.keys() {
            if self.by_name.contains_key(name) {
                continue;
            }
            // Found again (in its folder) by the next discovery.
            if let Some(file_type) = self.provider.server_file_type(name) {
                self.track(TrackedFile::new(name.clone(), file_type, None));
            }
        }
        for f in &mut self.files {
            let server = answer.files.get(&f.name).map_or(0, |s| s.last_synced_line);
            if server != f.confirmed {
                f.snapshot = None;
            }
            f.confirmed = server;
            if f.pos.lines > server {
                // The server holds fewer lines than we read past: find the
                // resume point again from the start.
                f.pos = Position::default();
                f.mark = None;
            }
        }
    }

    fn track(&mut self, file: TrackedFile) {
        self.by_name.insert(file.name.clone(), self.files.len());
        self.files.push(file);
    }

    /// Branch and repo URL: the transcript's first `gitBranch` (and its
    /// `cwd`), the origin URL from `<cwd>/.git/config` when readable, and
    /// `.git/HEAD` as a fallback for the branch.
    fn read_git_info(&mut self) -> GitInfo {
        let mut git = GitInfo::default();
        let mut cwd = self.config.cwd.clone();
        if let Ok(file) = self.fs.open(&self.config.transcript_path) {
            // Small reads: only the first lines matter here, and a restart must stay cheap.
            let mut reader = LineReader::with_read_size(&file, 0, MAX_CHUNK_LINE_BYTES, 16 << 10);
            let mut lines = std::iter::from_fn(|| match reader.next_line() {
                Ok(Next::Line(line)) => Some(String::from_utf8_lossy(line).into_owned()),
                _ => None,
            });
            let (found_cwd, branch) = self.provider.workspace_hints(&mut lines, cwd.is_empty());
            if cwd.is_empty() {
                if let Some(c) = found_cwd {
                    cwd = c.clone();
                    // No cwd configured: the transcript says where the agent ran.
                    self.config.cwd = c;
                }
            }
            git.branch = branch;
        }
        if !cwd.is_empty() {
            let git_dir = discovery::join(&cwd, ".git");
            if git.branch.is_none() {
                if let Some(head) = self
                    .fs
                    .read_small(&discovery::join(&git_dir, "HEAD"), GIT_FILE_MAX_BYTES)
                {
                    git.branch = metadata::git_head_branch(&String::from_utf8_lossy(&head));
                }
            }
            if let Some(text) = self
                .fs
                .read_small(&discovery::join(&git_dir, "config"), GIT_FILE_MAX_BYTES)
            {
                let config = String::from_utf8_lossy(&text);
                git.repo_url = metadata::git_origin_url(&config)
                    .map(|url| metadata::strip_url_credentials(&url));
                git.remotes = metadata::git_remotes(&config);
                git.tracking_remote = git
                    .branch
                    .as_deref()
                    .and_then(|branch| metadata::git_tracking_remote(&config, branch));
            }
        }
        git
    }

    /// Upload every new complete line of every file of the session.
    pub fn sync_all(&mut self) -> Result<SyncReport, SyncError> {
        if self.session_id.is_none() {
            return Err(SyncError::not_initialized());
        }
        self.client.new_operation();
        let wire_before = self.client.stats;
        let read_before = self.fs.bytes_read();
        let mut report = SyncReport::default();
        let mut done: BTreeSet<String> = BTreeSet::new();
        self.probe_failed_this_sync = false;
        // Files found by listing folders only (Claude Code's workflow runs):
        // once per sync, not once per discovery round.
        let per_sync = self.provider.discover_per_sync(&self.fs);
        self.track_found(per_sync, &mut report);
        for _round in 0..MAX_DISCOVERY_ROUNDS {
            let found = self
                .provider
                .discover(&self.fs, &Located(&self.files, &self.by_name));
            self.track_found(found, &mut report);
            let todo: Vec<usize> = (0..self.files.len())
                .filter(|&i| !done.contains(&self.files[i].name))
                .collect();
            if todo.is_empty() {
                break;
            }
            for i in todo {
                done.insert(self.files[i].name.clone());
                self.sync_file_with_recovery(i, &mut report)?;
            }
        }
        self.link_leaf_summaries(&mut report);
        report.session_ended = self.meta.session_ended;
        self.save_checkpoint(&mut report);
        let state_dir = self.config.state_dir.clone();
        self.provider
            .after_sync(&self.fs, state_dir.as_deref(), &mut report);
        report.wire_bytes = self.client.stats.wire_bytes - wire_before.wire_bytes;
        report.read_bytes = self.fs.bytes_read() - read_before;
        report.retries += self.client.stats.retries - wire_before.retries;
        Ok(report)
    }

    /// One file, re-reading the server's state after a failed chunk so that a
    /// chunk stored while its answer was lost is never sent twice.
    fn sync_file_with_recovery(
        &mut self,
        i: usize,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let mut file_report = FileReport {
            name: self.files[i].name.clone(),
            file_type: self.files[i].file_type,
            lines_synced: 0,
            total_lines: 0,
            chunks: 0,
        };
        let mut recoveries = 0;
        let failure = loop {
            match self.sync_file(i, &mut file_report, report) {
                Ok(()) => break None,
                Err(FileFailureKind::Local(e)) => break Some(e),
                Err(FileFailureKind::Upload(e)) if e.stops_everything() => return Err(e),
                Err(FileFailureKind::Upload(e)) => {
                    recoveries += 1;
                    report.retries += 1;
                    let transient = matches!(e.kind, ErrorKind::Transport | ErrorKind::RateLimited)
                        || matches!(e.kind, ErrorKind::Http(s) if s >= 500);
                    if recoveries > MAX_CHUNK_RECOVERIES
                        || (transient && !self.client.pause(retry::backoff(recoveries - 1)))
                    {
                        break Some(e);
                    }
                    match self.init() {
                        Ok(_) => continue,
                        Err(e2) if e2.stops_everything() => return Err(e2),
                        Err(_) => break Some(e),
                    }
                }
            }
        };
        self.refresh_mark(i);
        file_report.total_lines = self.files[i].confirmed;
        if let Some(error) = failure {
            report.failed.push(FileFailure {
                name: file_report.name.clone(),
                error,
            });
        }
        report.files.push(file_report);
        Ok(())
    }

    /// Read from the saved position, skip what the server already holds,
    /// upload the rest in chunks.
    fn sync_file(
        &mut self,
        i: usize,
        file_report: &mut FileReport,
        report: &mut SyncReport,
    ) -> Result<(), FileFailureKind> {
        let session_id = self.session_id.clone().unwrap_or_default();
        let Engine {
            fs,
            client,
            redactor,
            files,
            provider,
            meta,
            chunk,
            escaped,
            progress,
            checkpoint: saved,
            ..
        } = self;
        let file = &mut files[i];
        let name = file.name.clone();
        let Some(path) = file.path.clone() else {
            return Err(FileFailureKind::Local(SyncError::io(format!(
                "{}: the backend has it but it was not found beside the transcript or in its subagents folder",
                discovery::shown(&name)
            ))));
        };
        let handle = fs.open(&path).map_err(|m| {
            FileFailureKind::Local(SyncError::io(format!("cannot open {path}: {m}")))
        })?;
        let stat = handle.stat().map_err(|m| {
            FileFailureKind::Local(SyncError::io(format!("cannot stat {path}: {m}")))
        })?;
        if file.snapshot == Some(stat) && file.pos.lines == file.confirmed {
            return Ok(());
        }
        if stat.size < file.pos.bytes {
            return Err(FileFailureKind::Local(SyncError::input(format!(
                "{path} is now {} bytes, shorter than the {} bytes already synced: it was truncated or rewritten, so it is not uploaded",
                stat.size, file.pos.bytes
            ))));
        }
        // Written over in place below what was synced: refuse rather than
        // upload garbage or misnumbered lines.
        if let Some(mark) = file
            .mark
            .filter(|m| m.bytes == file.pos.bytes && m.bytes > 0)
        {
            if !checkpoint::still_matches(&handle, &mark) {
                return Err(FileFailureKind::Local(SyncError::input(format!(
                    "{path} was rewritten: its bytes before line {} no longer match what was synced, so it is not uploaded",
                    mark.lines + 1
                ))));
            }
        }
        // A fresh start: resume at the saved checkpoint when it agrees with
        // the server's count and the file's bytes, instead of re-reading.
        // When the server holds those lines but the file no longer does (cut
        // and grown again by another process), the checkpoint is the proof:
        // scanning would skip the server's count of *new* lines and upload
        // the rest as if they followed the old ones.
        if file.pos == Position::default() && file.confirmed > 0 {
            if let Some(mark) = saved.as_ref().and_then(|c| c.files.get(&name)).copied() {
                if mark.lines <= file.confirmed {
                    if mark.bytes <= stat.size && checkpoint::still_matches(&handle, &mark) {
                        file.pos = Position {
                            lines: mark.lines,
                            bytes: mark.bytes,
                            open: mark.open,
                        };
                        file.mark = Some(mark);
                    } else {
                        return Err(FileFailureKind::Local(rewritten_since_checkpoint(
                            &path, &mark,
                        )));
                    }
                }
            }
        }
        let mut reader =
            LineReader::resume(&handle, file.pos.bytes, MAX_CHUNK_LINE_BYTES, file.pos.open);
        let mut ids: Vec<String> = Vec::new();
        let read_error =
            |m: String| FileFailureKind::Local(SyncError::io(format!("cannot read {path}: {m}")));

        // Skip what the server holds, noting the agents those lines reference.
        while file.pos.lines < file.confirmed {
            match reader.next_line().map_err(read_error)? {
                Next::Line(line) => provider.skipped_line(&lines::text(line), &mut ids),
                Next::TooLong { .. } => {}
                Next::GrewAfterHandedOut => {
                    return Err(FileFailureKind::Local(grew_after_upload(&path, file.pos)))
                }
                Next::End => break,
            }
            file.pos = Position {
                lines: file.pos.lines + 1,
                bytes: reader.offset(),
                open: reader.ends_open(),
            };
        }
        provider.add_links(&mut ids);
        if file.pos.lines < file.confirmed {
            // The server is ahead of the file: nothing to upload until it
            // grows past it. The file lost lines (cut, or rewritten shorter):
            // say so rather than "0 new lines".
            report.warnings.push(format!(
                "{}: the backend holds {} lines, the file only {} complete lines: it was cut or rewritten; nothing of it is uploaded until it is longer again (sync it as a new session with --external-id)",
                discovery::shown(&path),
                file.confirmed,
                file.pos.lines
            ));
            file.snapshot = Some(stat);
            return Ok(());
        }

        let target = ChunkTarget {
            session_id: &session_id,
            file_name: &name,
            file_type: file.file_type.as_str(),
        };
        chunk.start(target, file.confirmed + 1);
        // Where the chunk being built ends, and whether its last line is open.
        let mut chunk_end = (file.pos.bytes, file.pos.open);
        let mut chunk_meta = ChunkMetadata::default();
        let mut counts = RedactionCounts::default();
        let mut invalid_utf8 = 0u64;
        // The chunk the server is working on while the next one is read:
        // confirmed before another starts (the server takes them in order).
        let mut in_flight: Option<SentChunk> = None;
        let mut failure: Option<FileFailureKind> = None;
        // The file as the provider sees it, for each line and each chunk.
        let file_type = file.file_type;
        let file_ref = || FileRef {
            name: &name,
            file_type,
            path: &path,
            mtime_ns: stat.mtime_ns,
        };
        loop {
            let line = match reader.next_line() {
                Ok(Next::Line(line)) => line,
                Ok(Next::TooLong { size }) => {
                    let line_no = chunk.first_line() + chunk.lines();
                    // Upload what precedes the line, then fail the file on it.
                    failure = Some(FileFailureKind::Local(too_long(&name, line_no, size)));
                    break;
                }
                Ok(Next::GrewAfterHandedOut) => {
                    failure = Some(FileFailureKind::Local(grew_after_upload(&path, file.pos)));
                    break;
                }
                Ok(Next::End) => break,
                Err(m) => {
                    failure = Some(read_error(m));
                    break;
                }
            };
            let text = lines::text(line);
            if matches!(text, Cow::Owned(_)) {
                invalid_utf8 += 1;
            }
            let redacted = redactor.redact_line(&text, &mut counts);
            let line_no = chunk.first_line() + chunk.lines();
            provider.observe_line(
                file_ref(),
                line_no,
                &text,
                &redacted,
                redactor,
                meta,
                &mut ids,
            );
            escape_line(&redacted, escaped);
            if !chunk.fits(escaped.len()) {
                if !chunk.is_empty() {
                    let next_first = chunk.first_line() + chunk.lines();
                    if let Some(sent) = in_flight.take() {
                        confirm_chunk(progress, client, sent, file, file_report, report)?;
                    }
                    let meta_ref = provider.annotate_chunk(
                        file_ref(),
                        chunk.first_line(),
                        meta,
                        redactor,
                        &mut chunk_meta,
                    );
                    in_flight = Some(start_chunk(client, chunk, meta_ref, &name, chunk_end)?);
                    let target = ChunkTarget {
                        session_id: &session_id,
                        file_name: &name,
                        file_type: file.file_type.as_str(),
                    };
                    chunk.start(target, next_first);
                }
                // Alone in a chunk and still over the limit: escaping can
                // double a line (or more), and the reader may hand out a line
                // a little over its limit, so a line it gave may not fit either.
                if !chunk.fits(escaped.len()) {
                    let line_no = chunk.first_line();
                    failure = Some(FileFailureKind::Local(too_long(
                        &name,
                        line_no,
                        escaped.len() as u64,
                    )));
                    break;
                }
            }
            chunk.push_escaped(escaped, redacted.len());
            chunk_end = (reader.offset(), reader.ends_open());
        }
        if let Some(sent) = in_flight.take() {
            confirm_chunk(progress, client, sent, file, file_report, report)?;
        }
        if !chunk.is_empty() {
            let meta_ref = provider.annotate_chunk(
                file_ref(),
                chunk.first_line(),
                meta,
                redactor,
                &mut chunk_meta,
            );
            let sent = start_chunk(client, chunk, meta_ref, &name, chunk_end)?;
            confirm_chunk(progress, client, sent, file, file_report, report)?;
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
        provider.add_links(&mut ids);
        report.redactions.merge(&counts);
        report.invalid_utf8_lines += invalid_utf8;
        file.snapshot = Some(stat);
        Ok(())
    }

    /// Track what the provider found: a file the server holds gets its
    /// path; a gated one only when the backend advertises its capability (a
    /// session without gated files never asks).
    fn track_found(&mut self, found: Vec<Found>, report: &mut SyncReport) {
        if found.is_empty() {
            return;
        }
        let caps = if found.iter().any(|f| f.gate != Gate::None) {
            self.workflow_capabilities(report)
        } else {
            None
        };
        for f in found {
            let supported = match f.gate {
                Gate::None => true,
                Gate::WorkflowFiles => caps.is_some_and(|c| c.workflow_files),
                Gate::WorkflowJournal => {
                    caps.is_some_and(|c| c.workflow_files && c.workflow_journal)
                }
            };
            if !supported {
                continue;
            }
            match self.by_name.get(&f.name).copied() {
                Some(i) => {
                    self.files[i].path.get_or_insert(f.path);
                }
                None => self.track(TrackedFile::new(f.name, f.file_type, Some(f.path))),
            }
        }
    }

    /// What the backend supports, asked once per session: a 200 or a 404
    /// is kept; a transient failure is a warning, and the next sync asks
    /// again (workflow files wait until then).
    fn workflow_capabilities(&mut self, report: &mut SyncReport) -> Option<protocol::Capabilities> {
        if let Some(caps) = self.capabilities {
            return Some(caps);
        }
        if self.probe_failed_this_sync {
            return None;
        }
        let caps = match self.client.call(
            Method::Get,
            protocol::PATH_CAPABILITIES,
            None,
            Repeat::Once,
        ) {
            // A 200 that is not the map supports nothing we know of.
            Ok(body) => serde_json::from_slice(&body).unwrap_or_default(),
            Err(e) if e.kind == ErrorKind::SessionNotFound => protocol::Capabilities::default(),
            Err(e) => {
                self.probe_failed_this_sync = true;
                report.warnings.push(format!(
                    "workflow files wait for the next sync: cannot ask the backend what it supports: {}",
                    e.message
                ));
                return None;
            }
        };
        self.capabilities = Some(caps);
        Some(caps)
    }

    /// Give each earlier session named by a summary's `leafUuid` that summary.
    /// Never fails the sync: problems become warnings.
    fn link_leaf_summaries(&mut self, report: &mut SyncReport) {
        let pending = std::mem::take(&mut self.meta.leaf_summaries);
        for (leaf, summary) in pending {
            if !self.meta.linked_leaves.insert(leaf.clone()) {
                continue;
            }
            let Some((dir, transcript)) = self.provider.leaf_search() else {
                continue;
            };
            let found = find_session_by_leaf_uuid(&self.fs, dir, &leaf, Some(transcript));
            let Some(external_id) = found else { continue };
            // Cleaned when the line was read (see `observe_transcript_line`).
            if let Err(e) = self.send_summary(&external_id, &summary) {
                report.warnings.push(format!(
                    "could not give session {external_id} its summary: {e}"
                ));
            }
        }
    }

    /// `PATCH /api/v1/sessions/{external_id}/summary`, the summary cleaned,
    /// redacted and cut as a transcript's own summary is.
    pub fn update_session_summary(
        &mut self,
        external_id: &str,
        summary: &str,
    ) -> Result<(), SyncError> {
        // Redacted, cleaned like a transcript's summary, redacted again (an
        // entity may have completed a secret), and only then cut, so a
        // secret cannot survive by being cut short.
        let summary = metadata::sanitize_summary(&redact_text(&self.redactor, summary));
        self.send_summary(external_id, &summary)
    }

    /// PATCH an already cleaned summary: redacted once more, then cut.
    fn send_summary(&mut self, external_id: &str, cleaned: &str) -> Result<(), SyncError> {
        let summary = redact_text(&self.redactor, cleaned);
        let summary = metadata::cut_summary(&summary);
        let body = serde_json::to_vec(&protocol::SummaryPatch { summary })
            .map_err(|e| SyncError::io(e.to_string()))?;
        self.client.call(
            Method::Patch,
            &protocol::path_summary(external_id),
            Some(&body),
            Repeat::Safe,
        )?;
        Ok(())
    }

    /// `POST /api/v1/sync/event`.
    pub fn send_event(
        &mut self,
        event_type: &str,
        timestamp: &str,
        payload_json: &str,
    ) -> Result<(), SyncError> {
        let session_id = self
            .session_id
            .clone()
            .ok_or_else(SyncError::not_initialized)?;
        // Hook inputs carry paths and ids, but whatever a host puts in the
        // payload goes through the redactor like a line (it stays JSON).
        let payload_json = redact_text(&self.redactor, payload_json);
        let payload: &serde_json::value::RawValue = serde_json::from_str(&payload_json)
            .map_err(|e| SyncError::input(format!("the event payload is not JSON: {e}")))?;
        let request = protocol::EventRequest {
            session_id: &session_id,
            event_type,
            timestamp,
            payload,
        };
        let body = serde_json::to_vec(&request).map_err(|e| SyncError::io(e.to_string()))?;
        self.client.call(
            Method::Post,
            protocol::PATH_EVENT,
            Some(&body),
            Repeat::Safe,
        )?;
        Ok(())
    }

    /// `POST /api/v1/sessions/{session_id}/github-links`.
    pub fn link_github(
        &mut self,
        url: &str,
        title: Option<&str>,
    ) -> Result<protocol::GithubLinkResponse, SyncError> {
        let session_id = self
            .session_id
            .clone()
            .ok_or_else(SyncError::not_initialized)?;
        let title = title.map(|t| redact_text(&self.redactor, t));
        let request = protocol::GithubLinkRequest {
            url,
            title: title.as_deref(),
            source: "cli_hook",
        };
        let body = serde_json::to_vec(&request).map_err(|e| SyncError::io(e.to_string()))?;
        let path = protocol::path_github_links(&session_id);
        let answer = self
            .client
            .call(Method::Post, &path, Some(&body), Repeat::Safe)?;
        parse_answer(&path, &answer)
    }

    /// `GET /api/v1/auth/validate`: whether the key is accepted.
    pub fn validate_key(&mut self) -> Result<serde_json::Value, SyncError> {
        let answer = self
            .client
            .call(Method::Get, protocol::PATH_VALIDATE, None, Repeat::Safe)?;
        parse_answer(protocol::PATH_VALIDATE, &answer)
    }
}

/// The engine's files as a provider's discovery sees them.
struct Located<'a>(&'a [TrackedFile], &'a HashMap<String, usize>);

impl KnownFiles for Located<'_> {
    fn is_located(&self, name: &str) -> bool {
        self.1.get(name).is_some_and(|&i| self.0[i].path.is_some())
    }
    fn any_unlocated(&self) -> bool {
        self.0.iter().any(|f| f.path.is_none())
    }
}

/// A chunk on its way to the server, with what confirming it needs.
struct SentChunk {
    first: u64,
    lines: u64,
    raw_bytes: u64,
    /// File offset just after its last line, and whether that line is open
    /// (it ended the file without its `\n`).
    end: (u64, bool),
    call: PendingCall,
}

/// Close the chunk's body and start uploading it; the builder is free for
/// the next chunk at once.
fn start_chunk<T: Transport, C: Clock>(
    client: &mut Client<T, C>,
    chunk: &mut ChunkBuilder,
    metadata: Option<&ChunkMetadata>,
    name: &str,
    end: (u64, bool),
) -> Result<SentChunk, FileFailureKind> {
    let (first, lines, raw_bytes) = (chunk.first_line(), chunk.lines(), chunk.raw_bytes());
    let body = chunk.finish(metadata);
    let call = client
        .start(
            Method::Post,
            protocol::PATH_CHUNK,
            Some(body),
            Repeat::ReadStateFirst,
        )
        .map_err(|e| FileFailureKind::Upload(with_file(e, name)))?;
    Ok(SentChunk {
        first,
        lines,
        raw_bytes,
        end,
        call,
    })
}

/// Wait for the server's answer to a chunk; only then does the file's
/// position move past it.
fn confirm_chunk<T: Transport, C: Clock>(
    progress: &mut Option<ProgressSink>,
    client: &mut Client<T, C>,
    sent: SentChunk,
    file: &mut TrackedFile,
    file_report: &mut FileReport,
    report: &mut SyncReport,
) -> Result<(), FileFailureKind> {
    let SentChunk {
        first,
        lines,
        raw_bytes,
        end,
        call,
    } = sent;
    let answer = client
        .finish(call)
        .map_err(|e| FileFailureKind::Upload(with_file(e, &file.name)))?;
    let answer: protocol::ChunkResponse =
        parse_answer(protocol::PATH_CHUNK, &answer).map_err(FileFailureKind::Upload)?;
    let expected = first + lines - 1;
    if answer.last_synced_line != expected {
        return Err(FileFailureKind::Upload(SyncError::new(
            ErrorKind::Http(200),
            format!(
                "{}: the backend answered last_synced_line {} for lines {first}..={expected}",
                file.name, answer.last_synced_line
            ),
        )));
    }
    file.confirmed = expected;
    file.pos = Position {
        lines: expected,
        bytes: end.0,
        open: end.1,
    };
    file_report.lines_synced += lines;
    file_report.chunks += 1;
    report.chunks += 1;
    report.lines += lines;
    report.bytes += raw_bytes;
    if let Some(progress) = progress {
        progress(Progress {
            file: &file.name,
            lines: report.lines,
            bytes: report.bytes,
        });
    }
    Ok(())
}

fn with_file(mut e: SyncError, name: &str) -> SyncError {
    if !e.message.contains(name) {
        e.message = format!("{name}: {}", e.message);
    }
    e
}

/// The file no longer holds, up to the checkpoint's offset, what the
/// backend confirmed. Refused until the user resolves it.
fn rewritten_since_checkpoint(path: &str, mark: &FileMark) -> SyncError {
    SyncError::input(format!(
        "{} was rewritten: its first {} lines are no longer the ones the backend holds (the checkpoint says so), so nothing more of it is uploaded; sync it as a new session with --external-id, or delete the session on the backend and the checkpoint",
        discovery::shown(path),
        mark.lines
    ))
}

/// The last line was uploaded when it ended the file without a newline (it
/// was a complete record), and then more bytes were written onto it. The
/// server holds a line the file no longer has: refused, as a rewrite is.
fn grew_after_upload(path: &str, pos: Position) -> SyncError {
    SyncError::input(format!(
        "{}: line {} was uploaded complete when it ended the file without a newline, but more was then written on that line; nothing more of the file is uploaded (sync it as a new session with --external-id)",
        discovery::shown(path),
        pos.lines
    ))
}

fn too_long(name: &str, line_no: u64, size: u64) -> SyncError {
    SyncError::input(format!(
        "line {line_no} of {name} is {:.1} MiB, over the {} MiB chunk limit: it cannot be uploaded",
        size as f64 / (1u64 << 20) as f64,
        MAX_CHUNK_LINE_BYTES >> 20
    ))
}

fn parse_answer<A: serde::de::DeserializeOwned>(path: &str, body: &[u8]) -> Result<A, SyncError> {
    serde_json::from_slice(body).map_err(|e| {
        SyncError::new(
            ErrorKind::Http(200),
            format!("{path}: the backend's answer is not what the protocol says: {e}"),
        )
    })
}

/// The external id of the session in `dir` whose transcript ends with the
/// message `leaf_uuid`, reading only the tail of each candidate.
pub fn find_session_by_leaf_uuid<F: FileSystem>(
    fs: &F,
    dir: &str,
    leaf_uuid: &str,
    exclude_file: Option<&str>,
) -> Option<String> {
    let names = fs.list_dir(dir).ok().flatten()?;
    for name in names {
        if !name.ends_with(".jsonl")
            || discovery::is_agent_file_name(&name)
            || Some(name.as_str()) == exclude_file
        {
            continue;
        }
        let Ok(file) = fs.open(&discovery::join(dir, &name)) else {
            continue;
        };
        if tail_has_uuid(&file, leaf_uuid) {
            return Some(discovery::file_stem(&name).to_string());
        }
    }
    None
}

/// Whether one of the last [`LEAF_SEARCH_TAIL_LINES`] lines of `file` is the
/// message `uuid`. Reads backwards in blocks, never the whole file.
fn tail_has_uuid<R: ReadAt>(file: &R, uuid: &str) -> bool {
    const BLOCK: u64 = 256 << 10;
    const MAX_TAIL: u64 = 64 << 20;
    let Ok(stat) = file.stat() else { return false };
    let mut start = stat.size;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let newlines = tail.iter().filter(|&&b| b == b'\n').count();
        if newlines > LEAF_SEARCH_TAIL_LINES || start == 0 || tail.len() as u64 >= MAX_TAIL {
            break;
        }
        let from = start.saturating_sub(BLOCK);
        let mut block = vec![0u8; (start - from) as usize];
        let mut filled = 0;
        while filled < block.len() {
            match file.read_at(&mut block[filled..], from + filled as u64) {
                Ok(0) | Err(_) => break,
                Ok(n) => filled += n,
            }
        }
        block.truncate(filled);
        block.extend_from_slice(&tail);
        tail = block;
        start = from;
    }
    let mut lines: Vec<&[u8]> = tail
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let keep = lines.len().saturating_sub(LEAF_SEARCH_TAIL_LINES);
    lines.drain(..keep);
    let needle = uuid.as_bytes();
    lines.iter().any(|line| {
        memchr::memmem::find(line, needle).is_some()
            && metadata::line_uuid(&String::from_utf8_lossy(line)).as_deref() == Some(uuid)
    })
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
