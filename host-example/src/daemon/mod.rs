//! `confab-host daemon`: one process per user that syncs every live
//! session, started by the `SessionStart` hook.
//!
//! - [`registry`]: one JSON file per session in `<state>/daemon/sessions/`,
//!   written by the hook, read by the daemon (the handoff; it survives
//!   restarts);
//! - [`lock`]: `daemon.lock`, held by the running daemon for its whole
//!   life, and `spawn.lock`, so that racing hooks start one daemon;
//! - [`process`]: the agent's liveness, the detached start;
//! - [`hook`]: what `confab-host hook` does on `SessionStart`/`SessionEnd`;
//! - [`runner`]: the daemon's loop (one compiled component, one store per
//!   session);
//! - [`status`]: `status.json`, which `daemon status` shows.

pub mod hook;
pub mod lock;
pub mod process;
pub mod registry;
pub mod runner;
pub mod status;

use crate::{Failure, HostOptions};
use confab_host::sandbox::{Deadlines, Sandbox};
use confab_sync::cli::args::CommonArgs;
use confab_sync::cli::settings;
use confab_sync::core::api_key::KeyGuard;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// A test hook, harmless for users: the daemon crashes (traps) the
/// instance of the session with this id once, right after the backend
/// stores a chunk of its new lines, to show that the session alone is
/// restarted and nothing is lost or sent twice. Read only by the daemon.
pub const TEST_TRAP_ENV: &str = "CONFAB_DAEMON_TEST_TRAP_SESSION";

pub const DAEMON_USAGE: &str = "\
confab-host daemon [--interval SECONDS] [--session-idle SECONDS] [--idle-exit SECONDS]
    One process that syncs every live Claude Code session while the agent
    works. The SessionStart hook (`confab-host hook`) registers the session
    and starts the daemon, detached, when none runs; run it by hand to
    watch it in the foreground (its log is then on stderr).
    Every interval it uploads each session's new lines (one store per
    session, kept between rounds, so a round reads only what is new). A
    session ends with its SessionEnd hook, its agent's process exiting, or
    its transcript idle for --session-idle: then a final sync, a
    session_end event, and the session is forgotten. With no session left
    for --idle-exit, the daemon exits.
    --interval SECONDS      between two syncs of a session, plus or minus a
                            sixth at random (else CONFAB_DAEMON_INTERVAL; 30)
    --session-idle SECONDS  a transcript that has not grown for this long ends
                            its session; 0 never (else CONFAB_DAEMON_SESSION_IDLE;
                            14400, 4 hours)
    --idle-exit SECONDS     exit after this long with no session (else
                            CONFAB_DAEMON_IDLE_EXIT; 60)
    plus --backend-url, --api-key, --hostname, --username, --state-dir,
    --component as for sync. With no backend configured anywhere it runs
    the embedded local backend itself and mirrors into <state dir>/mirror/.

confab-host daemon status [--json]
    The daemon's sessions: their state, lines on the server, last sync and
    last error. Exit status 0 when a daemon runs, 1 when none does.

confab-host daemon stop
    Ask the running daemon to exit after its current sync. Its sessions
    stay registered: the next SessionStart hook (or `confab-host daemon`)
    picks them up.

FILES (in the state folder, see --state-dir):
    daemon/sessions/<session id>.json   one per registered session
    daemon/status.json                  what `daemon status` shows
    daemon/daemon.log                   the detached daemon's log
    daemon/daemon.lock, spawn.lock      held by the daemon / while starting it";

/// Where the daemon keeps its things, under the state folder.
pub struct Paths {
    pub state: PathBuf,
    pub root: PathBuf,
}

impl Paths {
    pub fn new(state: PathBuf) -> Self {
        let root = state.join("daemon");
        Paths { state, root }
    }
    pub fn sessions(&self) -> PathBuf {
        self.root.join("sessions")
    }
    pub fn daemon_lock(&self) -> PathBuf {
        self.root.join("daemon.lock")
    }
    pub fn spawn_lock(&self) -> PathBuf {
        self.root.join("spawn.lock")
    }
    pub fn status(&self) -> PathBuf {
        self.root.join("status.json")
    }
    pub fn log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }
    pub fn stop_request(&self) -> PathBuf {
        self.root.join("stop")
    }
    pub fn mirror(&self) -> PathBuf {
        self.state.join("mirror")
    }
}

/// The state folder, created (private to the user) and made absolute.
pub fn paths(host: &HostOptions) -> Result<Paths, Failure> {
    let state = crate::state_dir(host).ok_or_else(|| {
        Failure::Usage(
            "no state folder: pass --state-dir, or set CONFAB_STATE_DIR or HOME".to_string(),
        )
    })?;
    let paths = Paths::new(state);
    create_private_dir(&paths.sessions()).map_err(|e| {
        Failure::Usage(format!(
            "cannot create the state folder {}: {e}",
            paths.root.display()
        ))
    })?;
    let state = std::fs::canonicalize(&paths.state).map_err(|e| {
        Failure::Usage(format!(
            "cannot use the state folder {}: {e}",
            paths.state.display()
        ))
    })?;
    Ok(Paths::new(state))
}

/// Session files name transcripts and projects: only the user reads them.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// `confab-host daemon ...` (host options already taken out).
pub fn command(args: &[String], host: &HostOptions, guard: &KeyGuard) -> Result<ExitCode, Failure> {
    match args.first().map(String::as_str) {
        Some("status") => status_command(&args[1..], host),
        Some("stop") => stop_command(&args[1..], host),
        _ => run_command(args, host, guard),
    }
}

fn wants_help(args: &[String]) -> bool {
    args.iter()
        .any(|a| a == "--help" || a == "-h" || a == "help")
}

fn seconds(name: &str, value: &str) -> Result<Duration, Failure> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            Failure::Usage(format!(
                "{name} takes a number of seconds, not `{value}` (try daemon --help)"
            ))
        })
}

fn env_seconds(name: &str) -> Result<Option<Duration>, Failure> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => seconds(name, v.trim()).map(Some),
        _ => Ok(None),
    }
}

fn run_command(args: &[String], host: &HostOptions, guard: &KeyGuard) -> Result<ExitCode, Failure> {
    if wants_help(args) {
        println!("{DAEMON_USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut common = CommonArgs::default();
    let mut interval = env_seconds("CONFAB_DAEMON_INTERVAL")?;
    let mut session_idle = env_seconds("CONFAB_DAEMON_SESSION_IDLE")?;
    let mut exit_when_empty = env_seconds("CONFAB_DAEMON_IDLE_EXIT")?;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| Failure::Usage(format!("{arg} needs a value (try daemon --help)")))
        };
        match arg.as_str() {
            "--interval" => interval = Some(seconds(arg, &value()?)?),
            "--session-idle" => session_idle = Some(seconds(arg, &value()?)?),
            "--idle-exit" => exit_when_empty = Some(seconds(arg, &value()?)?),
            "--backend-url" => common.backend_url = Some(value()?),
            "--api-key" => common.api_key = Some(value()?),
            "--hostname" => common.hostname = Some(value()?),
            "--username" => common.username = Some(value()?),
            other => {
                return Err(Failure::Usage(format!(
                    "unknown option `{other}` for daemon (try daemon --help)"
                )))
            }
        }
    }
    let interval = interval.unwrap_or(Duration::from_secs(30));
    if interval < Duration::from_millis(100) {
        return Err(Failure::Usage(
            "--interval must be at least 0.1 seconds".to_string(),
        ));
    }
    let pacing = runner::Pacing {
        interval,
        session_idle: match session_idle {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => Some(Duration::from_secs(4 * 3600)),
        },
        exit_when_empty: exit_when_empty.unwrap_or(Duration::from_secs(60)),
    };

    let paths = paths(host)?;
    // The lock first, before anything slow: the hook that started this
    // process waits for it, and a second daemon stops here.
    let Some(_held) = lock::try_hold(&paths.daemon_lock()).map_err(|e| {
        Failure::Sync(format!(
            "cannot open {}: {e}",
            paths.daemon_lock().display()
        ))
    })?
    else {
        let pid = status::read(&paths.status()).map(|s| s.pid);
        eprintln!(
            "confab-host daemon: a daemon already runs for {}{}: nothing to do",
            paths.state.display(),
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let _ = std::fs::remove_file(paths.stop_request());

    let env = |k: &str| std::env::var(k).ok();
    let mut settings =
        settings::resolve(&common, &env, &crate::read_file).map_err(Failure::Usage)?;
    confab_sync::core::redact::Redactor::new(&settings.redaction)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    // With no backend configured, the embedded one lives in the daemon and
    // keeps its store in the state folder, so a restart resumes it.
    let embedded_host = HostOptions {
        mirror: paths.mirror(),
        component: host.component.clone(),
        state_dir: Some(paths.state.clone()),
    };
    let local = crate::start_local_backend_if_needed(&mut settings, &embedded_host, false)?;
    let (backend_url, api_key) = settings.require().map_err(Failure::Usage)?;
    let component = crate::component_path(host.component.as_deref()).map_err(Failure::Usage)?;
    // Deadlines on: a wedged call traps after runner::CALL_DEADLINE and
    // only its session is restarted.
    let sandbox = Sandbox::load(
        &component,
        crate::cache_dir().as_deref(),
        Deadlines::Enforced,
    )
    .map_err(|e| {
        Failure::Sync(format!(
            "cannot load the component {}: {e}",
            component.display()
        ))
    })?;
    let identity: std::collections::HashMap<String, String> =
        crate::machine_identity().into_iter().collect();
    let target = runner::Target {
        backend_url,
        api_key,
        redaction: runner::wit_redaction(&settings.redaction),
        hostname: common
            .hostname
            .clone()
            .or_else(|| identity.get("HOSTNAME").cloned())
            .or(settings.hostname.clone()),
        username: common
            .username
            .clone()
            .or_else(|| identity.get("USER").cloned())
            .or(settings.username.clone()),
        state_dir: paths.state.clone(),
        embedded_backend: local.is_some(),
    };
    let trap_session = std::env::var(TEST_TRAP_ENV).ok().filter(|v| !v.is_empty());
    let mut daemon = runner::Daemon::new(&paths, sandbox, target, pacing, guard, trap_session);
    daemon.run();
    if let Some(backend) = local {
        backend.shutdown();
    }
    Ok(ExitCode::SUCCESS)
}

fn status_command(args: &[String], host: &HostOptions) -> Result<ExitCode, Failure> {
    if wants_help(args) {
        println!("{DAEMON_USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut json = false;
    for arg in args {
        match arg.as_str() {
            "--json" => json = true,
            other => {
                return Err(Failure::Usage(format!(
                    "unknown option `{other}` for daemon status (try daemon --help)"
                )))
            }
        }
    }
    let paths = paths(host)?;
    let running = lock::is_held(&paths.daemon_lock());
    let daemon = running.then(|| status::read(&paths.status())).flatten();
    let registered: Vec<String> = registry::list(&paths.sessions())
        .iter()
        .filter_map(|(p, _)| registry::read(p))
        .map(|r| r.session_id)
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if json {
        let answer = serde_json::json!({
            "running": running,
            "state_dir": paths.state,
            "log": paths.log(),
            "daemon": daemon,
            "registered": registered,
        });
        println!("{answer}");
    } else if let Some(daemon) = &daemon {
        print!("{}", status::human(daemon, now));
        println!("log: {}", paths.log().display());
    } else if running {
        println!("a daemon is starting for {}", paths.state.display());
    } else {
        println!(
            "no confab-host daemon is running for {}",
            paths.state.display()
        );
        if !registered.is_empty() {
            println!(
                "{} session{} registered, picked up when a daemon starts: {}",
                registered.len(),
                if registered.len() == 1 { "" } else { "s" },
                registered.join(", ")
            );
        }
    }
    Ok(if running {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn stop_command(args: &[String], host: &HostOptions) -> Result<ExitCode, Failure> {
    if wants_help(args) {
        println!("{DAEMON_USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(other) = args.first() {
        return Err(Failure::Usage(format!(
            "unknown option `{other}` for daemon stop (try daemon --help)"
        )));
    }
    let paths = paths(host)?;
    if !lock::is_held(&paths.daemon_lock()) {
        println!(
            "no confab-host daemon is running for {}",
            paths.state.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::write(paths.stop_request(), b"")
        .map_err(|e| Failure::Sync(format!("cannot ask the daemon to stop: {e}")))?;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if !lock::is_held(&paths.daemon_lock()) {
            println!("the daemon stopped; its sessions stay registered");
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("asked the daemon to stop: it is finishing a sync and will exit after it");
    Ok(ExitCode::SUCCESS)
}
