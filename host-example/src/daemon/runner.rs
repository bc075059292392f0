//! The daemon's loop: one compiled component, one store per session, kept
//! between rounds (each round reads only new bytes). About every half
//! second it reads the registry folder (new sessions, ended ones), every
//! second it checks the agents' processes, and each session is synced when
//! its turn comes (the interval, with jitter; longer after errors).

use super::registry::{self, Registration};
use super::status::{self, DaemonStatus, FileLines, SessionStatus};
use super::{lock, process, Paths};
use confab_host::sandbox::{
    Grant, Instance, RedactionPattern, RedactionSettings, Sandbox, SessionConfig, SessionHandle,
    SyncError, SyncReport,
};
use confab_sync::core::api_key::KeyGuard;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How often the registry folder is read: the hook's registration or end
/// is noticed within this.
const TICK: Duration = Duration::from_millis(500);
/// How often the agents' processes are checked.
const AGENT_CHECK: Duration = Duration::from_secs(1);
/// Longest wait between two tries of a failing session.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// An ended session whose final sync keeps failing is given up after this
/// (its lines stay on disk; `confab-host sync` or the next hook sends them).
const END_GIVE_UP: Duration = Duration::from_secs(3600);
/// A session the backend no longer knows (deleted there) this many times
/// in a row is forgotten rather than created again.
const MAX_NOT_FOUND: u32 = 3;
/// A session whose sync read more than this gets a fresh instance for its
/// next round (see where it is used).
const RECYCLE_AFTER_READ: u64 = 1 << 20;
/// Longest time one call into a session's instance may take; past it the
/// instance traps and is replaced (a wedged session never stops the rest).
pub const CALL_DEADLINE: Duration = Duration::from_secs(600);

/// How the daemon paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Between two syncs of a session (plus or minus a sixth, at random).
    pub interval: Duration,
    /// A transcript that has not grown for this long ends its session
    /// (`None`: never).
    pub session_idle: Option<Duration>,
    /// The daemon exits after having no session for this long.
    pub exit_when_empty: Duration,
}

/// Everything a session's instance is given.
pub struct Target {
    pub backend_url: String,
    pub api_key: String,
    pub redaction: RedactionSettings,
    pub hostname: Option<String>,
    pub username: Option<String>,
    /// Granted read-write: the engine's checkpoints.
    pub state_dir: PathBuf,
    pub embedded_backend: bool,
}

/// Why a session is ending.
#[derive(Debug, Clone)]
enum Ending {
    /// The `SessionEnd` hook, with its input.
    Hook(String),
    AgentExited,
    Idle,
}

struct Engine {
    instance: Instance,
    handle: SessionHandle,
    initialized: bool,
}

struct Live {
    registration: Registration,
    seen_modified: SystemTime,
    engine: Option<Engine>,
    next_due: Instant,
    failures: u32,
    not_found: u32,
    last_error: Option<String>,
    last_sync_at: Option<u64>,
    files: Vec<FileLines>,
    restarts: u32,
    transcript_size: Option<u64>,
    last_growth: Instant,
    ending: Option<Ending>,
    ending_since: Option<Instant>,
    /// The test fault: trap this session's instance once (see
    /// [`super::TEST_TRAP_ENV`]).
    trap_pending: bool,
}

pub struct Daemon<'a> {
    pub paths: &'a Paths,
    pub sandbox: Sandbox,
    pub target: Target,
    pub pacing: Pacing,
    pub guard: &'a KeyGuard,
    pub trap_session: Option<String>,
    pub started_at: u64,
    sessions: BTreeMap<PathBuf, Live>,
    random: std::collections::hash_map::RandomState,
    random_counter: u64,
    last_status: Option<DaemonStatus>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl<'a> Daemon<'a> {
    pub fn new(
        paths: &'a Paths,
        sandbox: Sandbox,
        target: Target,
        pacing: Pacing,
        guard: &'a KeyGuard,
        trap_session: Option<String>,
    ) -> Self {
        Daemon {
            paths,
            sandbox,
            target,
            pacing,
            guard,
            trap_session,
            started_at: unix_now(),
            sessions: BTreeMap::new(),
            random: Default::default(),
            random_counter: 0,
            last_status: None,
        }
    }

    /// One line in the daemon's log, the key hidden.
    fn log(&self, message: &str) {
        let line = format!(
            "{} confab-host daemon: {}",
            confab_sync::core::timestamp::rfc3339_utc(unix_now()),
            message
        );
        eprintln!("{}", self.guard.hide(&line));
    }

    /// Run until there has been no session for [`Pacing::exit_when_empty`]
    /// or `daemon stop` asks.
    pub fn run(&mut self) {
        self.log(&format!(
            "started (pid {}), backend {}, every {:?}",
            std::process::id(),
            confab_host::sandbox::origin_of_url(&self.target.backend_url),
            self.pacing.interval
        ));
        let mut empty_since = Instant::now();
        let mut last_agent_check: Option<Instant> = None;
        loop {
            if self.paths.stop_request().exists() {
                let _ = std::fs::remove_file(self.paths.stop_request());
                self.log("stopping, as `daemon stop` asked (sessions stay registered)");
                break;
            }
            self.read_registry();
            if last_agent_check.is_none_or(|t| t.elapsed() >= AGENT_CHECK) {
                self.check_endings();
                last_agent_check = Some(Instant::now());
            }
            let due: Vec<PathBuf> = self
                .sessions
                .iter()
                .filter(|(_, s)| s.next_due <= Instant::now())
                .map(|(k, _)| k.clone())
                .collect();
            for key in due {
                self.step(&key);
            }
            self.write_status();
            if self.sessions.is_empty() {
                if empty_since.elapsed() >= self.pacing.exit_when_empty {
                    // Decided under the spawn lock: a hook registering now
                    // either is seen here or waits and then starts a daemon.
                    let _spawn = lock::hold(&self.paths.spawn_lock());
                    self.read_registry();
                    if self.sessions.is_empty() {
                        self.log(&format!(
                            "no session for {:?}: exiting",
                            self.pacing.exit_when_empty
                        ));
                        let _ = std::fs::remove_file(self.paths.status());
                        return;
                    }
                }
            } else {
                empty_since = Instant::now();
            }
            std::thread::sleep(TICK);
        }
        let _ = std::fs::remove_file(self.paths.status());
    }

    /// New registrations, rewritten ones (an end), removed ones.
    fn read_registry(&mut self) {
        let listed = registry::list(&self.paths.sessions());
        let present: std::collections::BTreeSet<&PathBuf> = listed.iter().map(|(p, _)| p).collect();
        let gone: Vec<PathBuf> = self
            .sessions
            .keys()
            .filter(|k| !present.contains(k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(s) = self.sessions.remove(&key) {
                self.log(&format!(
                    "session {} was unregistered by hand: forgotten",
                    s.registration.session_id
                ));
            }
        }
        for (path, modified) in listed {
            if self
                .sessions
                .get(&path)
                .is_some_and(|s| s.seen_modified == modified)
            {
                continue;
            }
            let Some(registration) = registry::read(&path) else {
                continue;
            };
            match self.sessions.get_mut(&path) {
                Some(live) => {
                    live.seen_modified = modified;
                    if let (Some(payload), None) = (&registration.ended, &live.ending) {
                        live.ending = Some(Ending::Hook(payload.clone()));
                        live.ending_since = Some(Instant::now());
                        live.next_due = Instant::now();
                    }
                    live.registration = registration;
                }
                None => {
                    let trap_pending =
                        self.trap_session.as_deref() == Some(registration.session_id.as_str());
                    self.log(&format!(
                        "session {} registered: {}",
                        registration.session_id, registration.transcript_path
                    ));
                    let ending = registration.ended.clone().map(Ending::Hook);
                    self.sessions.insert(
                        path,
                        Live {
                            ending_since: ending.as_ref().map(|_| Instant::now()),
                            ending,
                            registration,
                            seen_modified: modified,
                            engine: None,
                            next_due: Instant::now(),
                            failures: 0,
                            not_found: 0,
                            last_error: None,
                            last_sync_at: None,
                            files: Vec::new(),
                            restarts: 0,
                            transcript_size: None,
                            last_growth: Instant::now(),
                            trap_pending,
                        },
                    );
                }
            }
        }
    }

    /// The agent's exit, or a transcript idle too long, ends a session.
    fn check_endings(&mut self) {
        let idle = self.pacing.session_idle;
        let mut ended = Vec::new();
        let mut adopted = Vec::new();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for (key, live) in self.sessions.iter_mut() {
            if live.ending.is_some() {
                continue;
            }
            let agent_gone = live
                .registration
                .agent_pid
                .is_some_and(|pid| !process::is_alive(pid, live.registration.agent_start));
            if agent_gone && adopt_wrapper_parent(&mut live.registration, now) {
                // Kept on disk too, so a restarted daemon watches the agent.
                let _ = registry::write(&self.paths.sessions(), &live.registration);
                adopted.push(live.registration.session_id.clone());
            }
            let size = std::fs::metadata(&live.registration.transcript_path)
                .ok()
                .map(|m| m.len());
            if size != live.transcript_size {
                live.transcript_size = size;
                live.last_growth = Instant::now();
            }
            let reason = match live.registration.agent_pid {
                Some(pid) if !process::is_alive(pid, live.registration.agent_start) => {
                    Some(Ending::AgentExited)
                }
                _ if idle.is_some_and(|limit| live.last_growth.elapsed() >= limit) => {
                    Some(Ending::Idle)
                }
                _ => None,
            };
            if let Some(reason) = reason {
                live.ending = Some(reason.clone());
                live.ending_since = Some(Instant::now());
                live.next_due = Instant::now();
                ended.push((key.clone(), reason));
            }
        }
        for id in adopted {
            self.log(&format!(
                "session {id}: the hook's parent exited right after the hook (a shell that ran it without exec); its parent is the agent"
            ));
        }
        for (key, reason) in ended {
            let id = &self.sessions[&key].registration.session_id;
            let why = match reason {
                Ending::AgentExited => "its agent's process exited",
                Ending::Idle => "its transcript has been idle too long",
                Ending::Hook(_) => "SessionEnd",
            };
            self.log(&format!("session {id} ends: {why}"));
        }
    }

    fn jittered(&mut self, base: Duration) -> Duration {
        let mut h = self.random.build_hasher();
        self.random_counter += 1;
        h.write_u64(self.random_counter);
        let unit = (h.finish() % 10_000) as f64 / 10_000.0; // 0..1
                                                            // base plus or minus a sixth of it (30 s: 25 to 35 s).
        base.mul_f64(1.0 + (unit - 0.5) / 3.0)
    }

    fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(10);
        let cap = MAX_BACKOFF.max(self.pacing.interval);
        self.pacing.interval.saturating_mul(factor).min(cap)
    }

    fn grant(&self, live: &Live) -> Grant {
        let transcript = Path::new(&live.registration.transcript_path);
        let folder = transcript
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let mut grant = Grant::new(vec![folder], &self.target.backend_url);
        grant.read_write_dirs = vec![self.target.state_dir.clone()];
        grant.deadline = Some(CALL_DEADLINE);
        grant.fault_injection = live.trap_pending;
        grant
    }

    fn session_config(&self, live: &Live) -> SessionConfig {
        SessionConfig {
            backend_url: self.target.backend_url.clone(),
            api_key: self.target.api_key.clone(),
            external_id: live.registration.session_id.clone(),
            transcript_path: live.registration.transcript_path.clone(),
            cwd: live.registration.cwd.clone(),
            hostname: self.target.hostname.clone(),
            username: self.target.username.clone(),
            redaction: self.target.redaction.clone(),
            state_dir: Some(self.target.state_dir.to_string_lossy().into_owned()),
            provider: Some("claude-code".into()),
        }
    }

    /// One turn of one session: (re)create its instance if it has none,
    /// init, sync; for an ended session, then `session_end` and forget it.
    fn step(&mut self, key: &Path) {
        let Some(mut live) = self.sessions.remove(key) else {
            return;
        };
        let id = live.registration.session_id.clone();
        let forget = self.turn(&mut live);
        if forget {
            registry::remove(key);
            self.log(&format!(
                "session {id} forgotten ({} lines on the server)",
                live.files.iter().map(|f| f.lines).sum::<u64>()
            ));
            return;
        }
        self.sessions.insert(key.to_path_buf(), live);
    }

    /// Returns whether the session is done with.
    fn turn(&mut self, live: &mut Live) -> bool {
        let id = live.registration.session_id.clone();
        let exists =
            std::fs::metadata(&live.registration.transcript_path).is_ok_and(|m| m.is_file());
        if !exists {
            if live.ending.is_some() {
                self.log(&format!(
                    "session {id} ended before its transcript was written: nothing to sync"
                ));
                return true;
            }
            live.next_due = Instant::now() + self.pacing.interval;
            return false;
        }
        match self.sync(live) {
            Ok(report) => {
                live.failures = 0;
                live.not_found = 0;
                live.last_sync_at = Some(unix_now());
                live.files = report
                    .files
                    .iter()
                    .map(|f| FileLines {
                        name: f.name.clone(),
                        lines: f.total_lines,
                    })
                    .collect();
                live.last_error = report.failed.first().map(|f| {
                    self.guard
                        .hide(&format!("{}: {}", f.name, error_message(&f.error)))
                        .into_owned()
                });
                if report.lines > 0 {
                    self.log(&format!("session {id}: {} new lines", report.lines));
                }
                if report.read_bytes > RECYCLE_AFTER_READ {
                    // A linear memory never shrinks: after a big read (a
                    // first sync), a fresh instance, which resumes from the
                    // checkpoint, holds kilobytes instead of that peak.
                    live.engine = None;
                }
                for f in &report.failed {
                    self.log(&format!(
                        "session {id}: {}: {}",
                        f.name,
                        error_message(&f.error)
                    ));
                }
            }
            Err(Failed::Sync(e)) => {
                let message = error_message(&e);
                if matches!(e, SyncError::SessionNotFound(_)) {
                    live.not_found += 1;
                    if live.not_found >= MAX_NOT_FOUND {
                        self.log(&format!(
                            "session {id}: the backend no longer knows it ({message}): forgotten"
                        ));
                        return true;
                    }
                    if let Some(engine) = &mut live.engine {
                        let _ = engine.instance.reset(engine.handle);
                        engine.initialized = false;
                    }
                }
                self.failed(live, message);
                return self.give_up_ending(live);
            }
            Err(Failed::Crashed(e)) => {
                // A trap leaves the store unusable: a fresh one resumes from
                // the server's line counts and the checkpoint, soon.
                live.engine = None;
                live.restarts += 1;
                let message =
                    format!("the session's engine stopped ({e}); restarted from its checkpoint");
                self.log(&format!("session {id}: {message}"));
                live.last_error = Some(self.guard.hide(&message).into_owned());
                live.next_due = Instant::now() + Duration::from_secs(1).min(self.pacing.interval);
                return self.give_up_ending(live);
            }
        }
        let Some(ending) = live.ending.clone() else {
            let wait = self.jittered(self.pacing.interval);
            live.next_due = Instant::now() + wait;
            return false;
        };
        let payload = match ending {
            Ending::Hook(payload) => payload,
            other => serde_json::json!({
                "session_id": id,
                "transcript_path": live.registration.transcript_path,
                "cwd": live.registration.cwd,
                "hook_event_name": "SessionEnd",
                "reason": match other {
                    Ending::Idle => "idle",
                    _ => "agent_exited",
                },
            })
            .to_string(),
        };
        let engine = live.engine.as_mut().expect("synced just now");
        let timestamp = confab_sync::core::timestamp::rfc3339_utc(unix_now());
        match engine
            .instance
            .send_event(engine.handle, "session_end", &timestamp, payload.trim())
        {
            Ok(Ok(())) => {
                self.log(&format!("session {id}: final sync done, session_end sent"));
                true
            }
            Ok(Err(e)) => {
                self.failed(
                    live,
                    format!("could not send session_end: {}", error_message(&e)),
                );
                self.give_up_ending(live)
            }
            Err(trap) => {
                live.engine = None;
                live.restarts += 1;
                self.failed(
                    live,
                    format!("the session's engine stopped ({})", root(&trap)),
                );
                self.give_up_ending(live)
            }
        }
    }

    fn failed(&mut self, live: &mut Live, message: String) {
        live.failures += 1;
        let wait = self.backoff(live.failures);
        self.log(&format!(
            "session {}: {message} (retrying in {:?})",
            live.registration.session_id, wait
        ));
        live.last_error = Some(self.guard.hide(&message).into_owned());
        live.next_due = Instant::now() + wait;
    }

    /// An ended session that cannot be finished in [`END_GIVE_UP`] is let go.
    fn give_up_ending(&self, live: &Live) -> bool {
        let give_up = live
            .ending_since
            .is_some_and(|t| t.elapsed() >= END_GIVE_UP);
        if give_up {
            self.log(&format!(
                "session {}: its final sync kept failing for {:?}: given up (run `confab-host sync {}` later)",
                live.registration.session_id, END_GIVE_UP, live.registration.transcript_path
            ));
        }
        give_up
    }

    /// Instantiate (first time, or after a crash), init, sync all files.
    fn sync(&mut self, live: &mut Live) -> Result<SyncReport, Failed> {
        if live.engine.is_none() {
            let grant = self.grant(live);
            // The one writable folder must not hold a folder granted
            // read-only: through it, the transcripts would be writable.
            if let Some(folder) = grant
                .read_only_dirs
                .iter()
                .find(|f| f.starts_with(&self.target.state_dir))
            {
                return Err(Failed::Sync(SyncError::InvalidConfig(format!(
                    "the state folder {} holds the transcript's folder {}, which must stay read-only: choose another state folder",
                    self.target.state_dir.display(),
                    folder.display()
                ))));
            }
            let mut instance = self
                .sandbox
                .instantiate(&grant)
                .map_err(|e| Failed::Crashed(root(&e)))?;
            let handle = instance
                .open(&self.session_config(live))
                .map_err(|e| Failed::Crashed(root(&e)))?
                .map_err(Failed::Sync)?;
            live.engine = Some(Engine {
                instance,
                handle,
                initialized: false,
            });
        }
        let engine = live.engine.as_mut().expect("made above");
        if !engine.initialized {
            engine
                .instance
                .init(engine.handle)
                .map_err(|e| Failed::Crashed(root(&e)))?
                .map_err(Failed::Sync)?;
            engine.initialized = true;
        }
        if live.trap_pending && live.last_sync_at.is_some() {
            // The test fault: after the first sync, so that a chunk of new
            // lines is what the instance dies on.
            live.trap_pending = false;
            engine.instance.trap_after_next_chunk();
        }
        engine
            .instance
            .sync_all(engine.handle)
            .map_err(|e| Failed::Crashed(root(&e)))?
            .map_err(Failed::Sync)
    }

    fn write_status(&mut self) {
        let sessions = self
            .sessions
            .values()
            .map(|s| SessionStatus {
                session_id: s.registration.session_id.clone(),
                transcript_path: s.registration.transcript_path.clone(),
                agent_pid: s.registration.agent_pid,
                registered_at: s.registration.registered_at,
                state: if s.ending.is_some() {
                    "ending"
                } else if s.last_sync_at.is_none() && s.engine.is_none() && s.failures == 0 {
                    "waiting for the transcript"
                } else if s.failures > 0 {
                    "retrying"
                } else {
                    "syncing"
                }
                .to_string(),
                lines_on_server: s.files.iter().map(|f| f.lines).sum(),
                files: s.files.clone(),
                last_sync_at: s.last_sync_at,
                last_error: s.last_error.clone(),
                restarts: s.restarts,
            })
            .collect();
        let mut current = DaemonStatus {
            pid: std::process::id(),
            started_at: self.started_at,
            updated_at: 0,
            backend: confab_host::sandbox::origin_of_url(&self.target.backend_url),
            embedded_backend: self.target.embedded_backend,
            interval_secs: self.pacing.interval.as_secs_f64(),
            sessions,
        };
        if self.last_status.as_ref() == Some(&current) {
            return;
        }
        let compared = current.clone();
        current.updated_at = unix_now();
        if let Err(e) = status::write(&self.paths.status(), &current) {
            self.log(&format!(
                "cannot write {}: {e}",
                self.paths.status().display()
            ));
        }
        self.last_status = Some(compared);
    }
}

enum Failed {
    /// The engine answered with an error.
    Sync(SyncError),
    /// The instance trapped (or could not be made): it is dropped.
    Crashed(String),
}

/// A trap's cause (its top line is "error while executing at wasm backtrace:").
fn root(e: &wasmtime::Error) -> String {
    let text = e.root_cause().to_string();
    text.lines().next().unwrap_or("").to_string()
}

/// How soon after its registration an agent that exits is taken for a
/// wrapper shell rather than the agent.
const WRAPPER_GRACE_SECS: u64 = 5;

/// The hook's parent is gone within seconds of the hook: it was a shell that
/// ran the hook without `exec` (`sh -c 'confab-host hook; ...'`), not the
/// agent. Its parent, alive, becomes the agent. Returns whether it did.
fn adopt_wrapper_parent(registration: &mut Registration, now_secs: u64) -> bool {
    let Some(parent) = registration.agent_parent_pid else {
        return false;
    };
    if now_secs.saturating_sub(registration.registered_at) > WRAPPER_GRACE_SECS
        || !process::is_alive(parent, registration.agent_parent_start)
    {
        return false;
    }
    registration.agent_pid = Some(parent);
    registration.agent_start = registration.agent_parent_start.take();
    registration.agent_parent_pid = None;
    true
}

pub fn error_message(e: &SyncError) -> String {
    match e {
        SyncError::NotInitialized(m)
        | SyncError::Unauthorized(m)
        | SyncError::SessionNotFound(m)
        | SyncError::RateLimited(m)
        | SyncError::Conflict(m)
        | SyncError::Transport(m)
        | SyncError::Io(m)
        | SyncError::InvalidConfig(m)
        | SyncError::InvalidInput(m) => m.clone(),
        SyncError::Http(h) => format!("HTTP {}: {}", h.status, h.message),
    }
}

/// The settings' redaction, in the WIT API's shape.
pub fn wit_redaction(r: &confab_sync::core::config::RedactionSettings) -> RedactionSettings {
    RedactionSettings {
        enabled: r.enabled,
        use_default_patterns: r.use_default_patterns,
        patterns: r
            .patterns
            .iter()
            .map(|p| RedactionPattern {
                name: p.name.clone(),
                pattern: p.pattern.clone(),
                kind: p.kind.clone(),
                capture_group: p.capture_group,
                field_pattern: p.field_pattern.clone(),
            })
            .collect(),
    }
}
