//! Running a command: `sync`, `hook`, `watch`, `validate`. The platform
//! (WASI in the component, in-memory in tests) provides files, HTTP, time,
//! environment and stdio; this module decides what to print and the exit
//! status.

use super::args::{self, Command, CommonArgs, SyncArgs};
use super::guard;
use super::hook::HookInput;
use super::output;
use super::settings::{self, Settings};
use crate::core::config::SessionConfig;
use crate::core::discovery;
use crate::core::engine::Engine;
use crate::core::error::ErrorKind;
use crate::core::io::{Clock, FileSystem, ReadAt, Transport};
use std::rc::Rc;
use std::time::Duration;

/// How long a request may take: to connect, to its first answer byte,
/// between two bytes, and in total (connect to the last byte of the answer,
/// so a server that trickles bytes cannot stretch a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
    pub total: Duration,
}

impl Timeouts {
    pub const NORMAL: Timeouts = Timeouts {
        connect: Duration::from_secs(5),
        first_byte: Duration::from_secs(60),
        between_bytes: Duration::from_secs(30),
        // A 14 MiB chunk at 1 Mbit/s takes about two minutes.
        total: Duration::from_secs(300),
    };
    /// A hook gives up within ~10 s on an unreachable backend (Claude Code waits for it).
    pub const HOOK: Timeouts = Timeouts {
        connect: Duration::from_secs(2),
        first_byte: Duration::from_secs(8),
        between_bytes: Duration::from_secs(8),
        total: Duration::from_secs(9),
    };
}

/// Total retry waiting a hook may spend.
pub const HOOK_WAIT_BUDGET: Duration = Duration::from_secs(3);

/// A hook's requests and retry waits all end this long after it starts,
/// whatever the backend does (one that accepts and never answers, or one
/// that sends a byte every few seconds, included): Claude Code waits for
/// its hooks, and the README promises it gives up within 10 s. `--timeout`
/// changes it.
pub const HOOK_TIME_LIMIT: Duration = Duration::from_secs(9);

/// `sync` and `validate` end this long after they start unless `--timeout`
/// says otherwise: generous (a first sync of a large session on a slow link),
/// but a command always ends.
pub const SYNC_TIME_LIMIT: Duration = Duration::from_secs(3600);

/// What a command needs from where it runs.
pub trait Platform {
    type Fs: FileSystem;
    type Transport: Transport;
    type Clock: Clock + 'static;
    fn fs(&self) -> Self::Fs;
    fn transport(&self, timeouts: Timeouts) -> Self::Transport;
    fn clock(&self) -> Self::Clock;
    /// From now on, transports and clocks made by this platform stop at
    /// `limit` from now: a request gets at most the time left, a retry wait
    /// ends at the deadline, and no request starts after it.
    fn set_time_limit(&mut self, limit: Duration);
    fn env(&self, key: &str) -> Option<String>;
    fn read_stdin(&mut self) -> Vec<u8>;
    fn stdout(&self, text: &str);
    /// Where stderr text goes; shareable so progress can be drawn while the engine runs.
    fn stderr_sink(&self) -> Rc<dyn Fn(&str)>;
    fn stderr(&self, text: &str) {
        (self.stderr_sink())(text)
    }
    fn stderr_is_terminal(&self) -> bool;
    /// Seconds since the Unix epoch.
    fn unix_time(&self) -> u64;
}

/// Success or not: under WASI 0.2 a command can only say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    Failure,
}

/// Parse `argv` (without the program name) and run it. Whatever it prints
/// goes through the run's [`guard::KeyGuard`](crate::core::api_key::KeyGuard).
pub fn run<P: Platform>(p: &mut P, argv: &[String]) -> Exit {
    let guard = guard::key_guard(p, argv);
    run_unguarded(&mut guard::Guarded::new(p, guard), argv)
}

fn run_unguarded<P: Platform>(p: &mut P, argv: &[String]) -> Exit {
    let command = match args::parse(argv) {
        Ok(c) => c,
        Err(message) => return fail(p, &message),
    };
    match command {
        Command::Help(text) => {
            p.stdout(&format!("{text}\n"));
            Exit::Success
        }
        Command::Sync(a) => {
            p.set_time_limit(a.common.timeout.unwrap_or(SYNC_TIME_LIMIT));
            sync(p, &a)
        }
        Command::Watch {
            sync: a,
            interval_ms,
            idle_exit_ms,
        } => watch(p, &a, interval_ms, idle_exit_ms),
        Command::Hook(common) => hook(p, &common),
        Command::Validate(common) => {
            p.set_time_limit(common.timeout.unwrap_or(SYNC_TIME_LIMIT));
            validate(p, &common)
        }
    }
}

fn fail<P: Platform>(p: &P, message: &str) -> Exit {
    p.stderr(&format!("confab-sync: {message}\n"));
    Exit::Failure
}

/// Settings from flags, environment and the config file (read through the sandbox).
pub fn settings_of<P: Platform>(p: &P, flags: &CommonArgs) -> Result<Settings, String> {
    let fs = p.fs();
    let read = |path: &str, max: usize| -> Result<Option<Vec<u8>>, String> {
        match fs.open(path) {
            Ok(file) => read_up_to(&file, max).map(Some),
            Err(m) if m.contains("no such file") => Ok(None),
            Err(m) => Err(m),
        }
    };
    settings::resolve(flags, &|k| p.env(k), &read)
}

fn read_up_to<R: ReadAt>(file: &R, max: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; max.min(64 << 10)];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if buf.len() >= max {
                break;
            }
            buf.resize((buf.len() * 2).min(max), 0);
        }
        match file.read_at(&mut buf[filled..], filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// The session config for a transcript, with defaults a user expects.
fn session_config(a: &SyncArgs, url: String, key: String, s: &Settings) -> SessionConfig {
    let (_, name) = discovery::split_path(&a.transcript);
    SessionConfig {
        backend_url: url,
        api_key: key,
        // The file stem by default (for Codex it stands for the root thread's id).
        external_id: a
            .external_id
            .clone()
            .unwrap_or_else(|| discovery::file_stem(name).to_string()),
        transcript_path: a.transcript.clone(),
        cwd: a.cwd.clone().unwrap_or_default(),
        hostname: s.hostname.clone(),
        username: s.username.clone(),
        redaction: s.redaction.clone(),
        state_dir: s.state_dir.clone(),
        provider: a.provider.clone(),
    }
}

type PlatformEngine<P> =
    Engine<<P as Platform>::Fs, <P as Platform>::Transport, <P as Platform>::Clock>;

fn engine<P: Platform>(
    p: &P,
    a: &SyncArgs,
    timeouts: Timeouts,
) -> Result<PlatformEngine<P>, String> {
    let settings = settings_of(p, &a.common)?;
    let (url, key) = settings.require()?;
    p.fs()
        .open(&a.transcript)
        .map_err(|m| format!("cannot open the transcript {}: {m}", a.transcript))?;
    let config = session_config(a, url, key, &settings);
    Engine::new(config, p.fs(), p.transport(timeouts), p.clock()).map_err(|e| e.message)
}

/// Progress on stderr, only when a person is watching it.
fn show_progress<P: Platform>(p: &P, engine: &mut PlatformEngine<P>) -> bool {
    if !p.stderr_is_terminal() {
        return false;
    }
    let stderr = p.stderr_sink();
    let clock = p.clock();
    let start = clock.now();
    engine.set_progress(Box::new(move |pr| {
        let seconds = clock.now().saturating_sub(start).as_secs_f64();
        stderr(&output::progress_line(pr.file, pr.lines, pr.bytes, seconds));
    }));
    true
}

fn sync<P: Platform>(p: &mut P, a: &SyncArgs) -> Exit {
    let mut engine = match engine(p, a, Timeouts::NORMAL) {
        Ok(e) => e,
        Err(m) => return fail(p, &m),
    };
    let progress = show_progress(p, &mut engine);
    let result = engine.init().and_then(|_| engine.sync_all());
    if progress {
        p.stderr("\r\x1b[2K");
    }
    match result {
        Ok(report) => {
            if a.common.json {
                p.stdout(&format!("{}\n", output::report_json(&report)));
            } else {
                p.stderr(&output::report_human(&report));
            }
            if report.is_success() {
                Exit::Success
            } else {
                Exit::Failure
            }
        }
        Err(e) => fail(p, &e.message),
    }
}

fn hook<P: Platform>(p: &mut P, common: &CommonArgs) -> Exit {
    let stdin = p.read_stdin();
    p.set_time_limit(common.timeout.unwrap_or(HOOK_TIME_LIMIT));
    let say = |p: &P, m: &str| p.stderr(&format!("confab-sync hook: {m}\n"));
    let input = match HookInput::parse(&stdin) {
        Ok(i) => i,
        Err(m) => {
            say(p, &m);
            return Exit::Success;
        }
    };
    let Some(transcript) = input.transcript_or_derived(p.env("HOME").as_deref()) else {
        say(
            p,
            "the hook input names no transcript and HOME is not set to find it; the session was not synced",
        );
        return Exit::Success;
    };
    let a = SyncArgs {
        common: common.clone(),
        transcript,
        external_id: input.external_id.clone(),
        cwd: Some(input.cwd.clone()).filter(|c| !c.is_empty()),
        provider: Some(input.agent.as_str().to_string()),
    };
    let mut engine = match engine(p, &a, Timeouts::HOOK) {
        Ok(e) => e,
        Err(m) => {
            say(p, &format!("{m}; the session was not synced"));
            return Exit::Success;
        }
    };
    engine.client_mut().set_wait_budget(HOOK_WAIT_BUDGET);
    let report = match engine.init().and_then(|_| engine.sync_all()) {
        Ok(r) => r,
        Err(e) => {
            say(
                p,
                &format!(
                    "{}; the session was not synced (it will be on the next hook or sync)",
                    e.message
                ),
            );
            return Exit::Success;
        }
    };
    let (shown, more) = report.failures_to_show();
    for f in shown {
        say(
            p,
            &format!(
                "{}; not synced (it will be on the next hook or sync)",
                f.describe()
            ),
        );
    }
    if more > 0 {
        say(p, &format!("... and {more} more files not synced"));
    }
    if input.is_session_end() {
        let payload = String::from_utf8_lossy(&stdin);
        let timestamp = crate::core::timestamp::rfc3339_utc(p.unix_time());
        if let Err(e) = engine.send_event("session_end", &timestamp, payload.trim()) {
            say(p, &format!("could not send session_end: {}", e.message));
        }
    }
    if common.json {
        p.stdout(&format!("{}\n", output::report_json(&report)));
    }
    Exit::Success
}

fn watch<P: Platform>(p: &mut P, a: &SyncArgs, interval_ms: u64, idle_exit_ms: u64) -> Exit {
    let mut engine = match engine(p, a, Timeouts::NORMAL) {
        Ok(e) => e,
        Err(m) => return fail(p, &m),
    };
    let mut clock = p.clock();
    let interval = Duration::from_millis(interval_ms);
    let idle_limit = Duration::from_millis(idle_exit_ms);
    let mut last_activity = clock.now();
    let mut initialized = false;
    let mut total = 0u64;
    let mut last_ok = true;
    loop {
        if !initialized {
            match engine.init() {
                Ok(_) => initialized = true,
                Err(e) if matches!(e.kind, ErrorKind::Unauthorized | ErrorKind::InvalidConfig) => {
                    return fail(p, &e.message)
                }
                Err(e) => p.stderr(&format!("confab-sync watch: {} (retrying)\n", e.message)),
            }
        }
        if initialized {
            match engine.sync_all() {
                Ok(report) => {
                    last_ok = report.is_success();
                    let (shown, more) = report.failures_to_show();
                    for f in shown {
                        p.stderr(&format!("confab-sync watch: {}\n", f.describe()));
                    }
                    if more > 0 {
                        p.stderr(&format!("confab-sync watch: ... and {more} more files\n"));
                    }
                    if report.lines > 0 {
                        total += report.lines;
                        last_activity = clock.now();
                        p.stderr(&format!(
                            "synced {} new lines ({total} this watch)\n",
                            report.lines
                        ));
                    }
                    if report.session_ended {
                        p.stderr("the session ended: watch stops\n");
                        break;
                    }
                }
                Err(e) if e.stops_everything() => return fail(p, &e.message),
                Err(e) => {
                    last_ok = false;
                    p.stderr(&format!("confab-sync watch: {} (retrying)\n", e.message));
                }
            }
        }
        if clock.now().saturating_sub(last_activity) >= idle_limit {
            p.stderr(&format!(
                "no new lines for {} s: watch stops\n",
                idle_limit.as_secs()
            ));
            break;
        }
        clock.sleep(interval);
    }
    if a.common.json {
        p.stdout(&format!("{{\"lines\":{total}}}\n"));
    }
    if last_ok {
        Exit::Success
    } else {
        Exit::Failure
    }
}

fn validate<P: Platform>(p: &mut P, common: &CommonArgs) -> Exit {
    let settings = match settings_of(p, common) {
        Ok(s) => s,
        Err(m) => return fail(p, &m),
    };
    let (url, key) = match settings.require() {
        Ok(v) => v,
        Err(m) => return fail(p, &m),
    };
    let config = SessionConfig {
        backend_url: url.clone(),
        api_key: key,
        external_id: "validate".into(),
        transcript_path: "/validate.jsonl".into(),
        provider: Some("claude-code".into()),
        ..SessionConfig::default()
    };
    let mut engine = match Engine::new(config, p.fs(), p.transport(Timeouts::NORMAL), p.clock()) {
        Ok(e) => e,
        Err(e) => return fail(p, &e.message),
    };
    match engine.validate_key() {
        Ok(answer) => {
            if common.json {
                p.stdout(&format!("{answer}\n"));
            } else {
                let who = answer
                    .get("email")
                    .and_then(|v| v.as_str())
                    .unwrap_or("this user");
                p.stderr(&format!("the API key is valid for {who} on {url}\n"));
            }
            Exit::Success
        }
        Err(e) => fail(p, &e.message),
    }
}
