//! What `confab-host hook` does with the daemon: on `SessionStart`,
//! register the session and make sure a daemon runs; on `SessionEnd`, hand
//! the end to the daemon when it holds the session. Both return within
//! milliseconds (a daemon start is waited for at most [`START_WAIT`]) and
//! never fail the agent: the caller prints what went wrong and exits 0.

use super::registry::{self, Registration};
use super::{lock, process, Paths};
use crate::{Failure, HostOptions};
use confab_sync::cli::hook::HookInput;
use confab_sync::core::provider::ProviderKind;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// How long a hook waits for the daemon it started to take its lock.
const START_WAIT: Duration = Duration::from_secs(5);
/// A log over this is moved to `daemon.log.old` when a daemon starts.
const LOG_LIMIT: u64 = 4 << 20;

/// The options of the hook's command line the daemon needs too: its
/// `--backend-url`, `--hostname`, `--username` as flags, its `--api-key`
/// through the environment (never in a process listing).
#[derive(Debug, Default, Clone)]
pub struct PassOn {
    pub backend_url: Option<String>,
    pub api_key: Option<String>,
    pub hostname: Option<String>,
    pub username: Option<String>,
}

/// `SessionStart`: register, then start the daemon unless one runs.
pub fn session_start(input: &HookInput, host: &HostOptions, pass: &PassOn) -> Result<(), Failure> {
    let paths = super::paths(host)?;
    let Some(transcript) = &input.transcript_path else {
        return Err(Failure::Usage(
            "the hook input names no transcript_path".into(),
        ));
    };
    let transcript = std::path::absolute(transcript)
        .map_err(|e| Failure::Usage(format!("cannot use the transcript path: {e}")))?;
    let agent = std::os::unix::process::parent_id();
    let registration = Registration {
        session_id: input.session_id.clone(),
        transcript_path: transcript.to_string_lossy().into_owned(),
        cwd: input.cwd.clone(),
        agent_pid: Some(agent),
        agent_start: process::start_time(agent),
        agent_parent_pid: process::parent_of(agent),
        agent_parent_start: process::parent_of(agent).and_then(process::start_time),
        registered_at: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        ended: None,
    };
    registry::write(&paths.sessions(), &registration)
        .map_err(|e| Failure::Sync(format!("cannot register the session: {e}")))?;
    ensure_daemon(&paths, host, pass)
}

/// Start a daemon unless one holds `daemon.lock`, deciding under
/// `spawn.lock`: of two racing hooks, the second sees the first's daemon.
fn ensure_daemon(paths: &Paths, host: &HostOptions, pass: &PassOn) -> Result<(), Failure> {
    let _spawning = lock::hold(&paths.spawn_lock())
        .map_err(|e| Failure::Sync(format!("cannot take the spawn lock: {e}")))?;
    if lock::is_held(&paths.daemon_lock()) {
        return Ok(());
    }
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Sync(format!("cannot locate this program: {e}")))?;
    let mut command = Command::new(exe);
    command.arg("daemon").arg("--state-dir").arg(&paths.state);
    if let Some(component) = &host.component {
        command
            .arg("--component")
            .arg(std::path::absolute(component).unwrap_or_else(|_| component.clone()));
    }
    for (flag, value) in [
        ("--backend-url", &pass.backend_url),
        ("--hostname", &pass.hostname),
        ("--username", &pass.username),
    ] {
        if let Some(value) = value {
            command.arg(flag).arg(value);
        }
    }
    if let Some(key) = &pass.api_key {
        command.env("CONFAB_API_KEY", key);
    }
    command.current_dir(&paths.state);
    let log = paths.log();
    if std::fs::metadata(&log).is_ok_and(|m| m.len() > LOG_LIMIT) {
        let _ = std::fs::rename(&log, log.with_extension("log.old"));
    }
    process::spawn_detached(command, &log)
        .map_err(|e| Failure::Sync(format!("cannot start the daemon: {e}")))?;
    let start = Instant::now();
    while start.elapsed() < START_WAIT {
        if lock::is_held(&paths.daemon_lock()) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(Failure::Sync(format!(
        "the daemon did not start within {} s (see {})",
        START_WAIT.as_secs(),
        log.display()
    )))
}

/// `SessionEnd`: when a running daemon holds the session, mark it ended
/// (the daemon does the final sync and sends `session_end` with `stdin` as
/// payload) and return true. Otherwise false: the caller syncs it once.
pub fn session_end(input: &HookInput, stdin: &[u8], host: &HostOptions) -> Result<bool, Failure> {
    // Nothing is created here: with no state folder or no registration,
    // the one-shot sync runs as it always did.
    let Some(state) = crate::state_dir(host) else {
        return Ok(false);
    };
    let paths = Paths::new(std::fs::canonicalize(&state).unwrap_or(state));
    let path = registry::path_of(&paths.sessions(), &input.session_id);
    let Some(mut registration) = registry::read(&path) else {
        return Ok(false);
    };
    if !lock::is_held(&paths.daemon_lock()) {
        // No daemon: the one-shot sync ends it; a later daemon must not
        // end it a second time.
        registry::remove(&path);
        return Ok(false);
    }
    registration.ended = Some(String::from_utf8_lossy(stdin).trim().to_string());
    registry::write(&paths.sessions(), &registration)
        .map_err(|e| Failure::Sync(format!("cannot hand the session's end to the daemon: {e}")))?;
    Ok(true)
}

/// The hook's branching: `Some` when the daemon took the event (the hook
/// is done), `None` when the one-shot sync should run as before (every
/// other event, a session no daemon holds, a daemon that cannot start).
pub fn take_over(
    input: &HookInput,
    stdin: &[u8],
    host: &HostOptions,
    common: &confab_sync::cli::args::CommonArgs,
    guard: &confab_sync::core::api_key::KeyGuard,
) -> Option<std::process::ExitCode> {
    let say = |m: &str| eprintln!("confab-sync hook: {}", guard.hide(m));
    // The daemon holds Claude Code sessions; Codex and Cursor hooks sync
    // once per event, as before (their hooks name the session differently).
    if input.agent != ProviderKind::ClaudeCode {
        return None;
    }
    let outcome = match input.hook_event_name.as_str() {
        "SessionStart" => {
            let pass = PassOn {
                backend_url: common.backend_url.clone(),
                api_key: common.api_key.clone(),
                hostname: common.hostname.clone(),
                username: common.username.clone(),
            };
            session_start(input, host, &pass).map(|()| true)
        }
        "SessionEnd" => session_end(input, stdin, host),
        _ => Ok(false),
    };
    match outcome {
        Ok(true) => Some(std::process::ExitCode::SUCCESS),
        Ok(false) => None,
        Err(Failure::Usage(m) | Failure::Sync(m)) => {
            say(&format!("{m}; syncing the session once instead"));
            None
        }
    }
}
