//! `confab-host`: the confab-sync component's commands (`sync`, `hook`,
//! `watch`, `validate`), run sandboxed in wasmtime. The host parses and
//! checks the command line with the component's own parser (usage and
//! configuration errors exit 2 before anything runs), grants the least the
//! command needs, and runs the component's `wasi:cli/run`, whose output is
//! the output. With no backend configured it starts the embedded local
//! backend and mirrors the session into a folder, so it runs on a fresh
//! machine with no account.

mod commands;
mod daemon;

use confab_host::backend::{Backend, BackendConfig, DEFAULT_LOCAL_API_KEY};
use confab_host::sandbox::{Deadlines, Grant, Sandbox};
use confab_sync::cli::args::{self, Command};
use confab_sync::cli::hook::HookInput;
use confab_sync::cli::settings::{self, Settings};
use confab_sync::core::api_key::KeyGuard;
use confab_sync::core::provider::ProviderKind;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const HOST_USAGE: &str = "\
CONFAB-HOST:
    confab-host runs the commands above through the confab-sync component,
    sandboxed: the component reads only the transcript's folder (read-only)
    and sends requests only to the backend's origin. Host options:
    --mirror DIR        with no backend configured anywhere, an embedded local
                        backend is started on 127.0.0.1 and the session is
                        mirrored into DIR/<session id>/ (default: ./confab-mirror)
    --component PATH    confab_sync.wasm (else CONFAB_COMPONENT, else the build
                        output beside this binary's target folder)
    --state-dir DIR     the only folder granted read-write: the engine keeps a
                        small checkpoint per session there, so a restart does
                        not re-read the transcript (else CONFAB_STATE_DIR, else
                        $XDG_STATE_HOME/confab-sync or ~/.local/state/confab-sync)

    confab-host hooks install | uninstall | status [--settings FILE]
                        the Claude Code hooks that run this binary, in
                        ~/.claude/settings.json (see hooks --help)
    confab-host list [--json] [--since DURATION] [--project DIR]
                        the sessions on disk, newest first, and their lines
                        on the server (see list --help)
    confab-host save <session id or unique prefix> [sync flags]
                        sync one session found among those on disk
    confab-host sync --all [--since DURATION] [--project DIR] [--jobs N]
                        sync every session on disk, one per core at once,
                        with a progress bar and a summary (see sync --all --help)
    confab-host backend [--mirror DIR] [--api-key KEY]
                        run only the local backend: prints its URL on stdout,
                        serves until stdin closes
    confab-host daemon [status [--json] | stop]
                        one process syncing every live session; the hook
                        starts it on SessionStart (see daemon --help)
    confab-host hook    as above, and with the daemon: SessionStart registers
                        the session and starts the daemon if none runs (no
                        sync in the hook); SessionEnd of a session the daemon
                        holds hands it the final sync and session_end

EXIT STATUS (confab-host):
    0 every file synced, 1 a sync error (sync --all: some session did not
    sync), 2 a usage or configuration error (save: no or several sessions
    match); `hook` always 0.";

const BACKEND_USAGE: &str = "\
confab-host backend [--mirror DIR] [--api-key KEY]
    Run only the embedded confab-compatible backend on 127.0.0.1: prints its
    URL on stdout and serves until stdin closes.
    --mirror DIR     mirror every stored file into DIR/<session id>/<file>
    --api-key KEY    the key it accepts (default: the built-in local key)";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // The component hides keys in what it prints; the host's own messages
    // go through the same guard.
    let guard = key_guard(&argv);
    match run(argv, &guard) {
        Ok(code) => code,
        Err(Failure::Usage(m)) => {
            eprintln!("confab-host: {}", guard.hide(first_line(&m)));
            ExitCode::from(2)
        }
        Err(Failure::Sync(m)) => {
            eprintln!("confab-host: {}", guard.hide(first_line(&m)));
            ExitCode::from(1)
        }
    }
}

/// Every key this run may use: `--api-key`, `CONFAB_API_KEY`, the config
/// file's `api_key`.
fn key_guard(argv: &[String]) -> KeyGuard {
    let mut guard = KeyGuard::new();
    for key in confab_sync::cli::guard::api_keys_in_args(argv) {
        guard.add(key);
    }
    let env = |k: &str| std::env::var(k).ok();
    if let Some(key) = env("CONFAB_API_KEY") {
        guard.add(&key);
    }
    let flags = args::CommonArgs::default();
    if let Ok(Settings {
        api_key: Some(key), ..
    }) = settings::resolve(&flags, &env, &read_file)
    {
        guard.add(&key);
    }
    guard
}

/// A whole file, at most `max` bytes; `Ok(None)` when it does not exist.
fn read_file(path: &str, max: usize) -> Result<Option<Vec<u8>>, String> {
    match std::fs::File::open(path) {
        Ok(f) => {
            let mut buf = Vec::new();
            f.take(max as u64)
                .read_to_end(&mut buf)
                .map_err(|e| e.to_string())?;
            Ok(Some(buf))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

enum Failure {
    Usage(String),
    Sync(String),
}

/// Options of the host itself, taken out before the component sees the arguments.
struct HostOptions {
    mirror: PathBuf,
    component: Option<PathBuf>,
    /// `--state-dir`, else `CONFAB_STATE_DIR`, else `$XDG_STATE_HOME/confab-sync`
    /// (`~/.local/state/confab-sync`): granted read-write for the checkpoint.
    state_dir: Option<PathBuf>,
}

fn take_host_options(argv: &mut Vec<String>) -> Result<HostOptions, Failure> {
    let mut options = HostOptions {
        mirror: PathBuf::from("confab-mirror"),
        component: None,
        state_dir: None,
    };
    let mut i = 0;
    while i < argv.len() {
        let name = argv[i].clone();
        if name == "--mirror" || name == "--component" || name == "--state-dir" {
            let value = argv
                .get(i + 1)
                .cloned()
                .ok_or_else(|| Failure::Usage(format!("{name} needs a value (try --help)")))?;
            argv.drain(i..i + 2);
            if name == "--mirror" {
                options.mirror = PathBuf::from(value);
            } else if name == "--state-dir" {
                options.state_dir = Some(PathBuf::from(value));
            } else {
                options.component = Some(PathBuf::from(value));
            }
        } else {
            i += 1;
        }
    }
    Ok(options)
}

fn run(mut argv: Vec<String>, guard: &KeyGuard) -> Result<ExitCode, Failure> {
    if argv.first().map(String::as_str) == Some("backend") {
        return serve_backend(&argv[1..]);
    }
    let host = take_host_options(&mut argv)?;
    match argv.first().map(String::as_str) {
        Some("daemon") => return daemon::command(&argv[1..], &host, guard),
        Some("hooks") => return commands::hooks::run(&argv[1..], &host),
        Some("list") => return commands::list::run(&argv[1..], &host, guard),
        Some("sync") if argv.iter().any(|a| a == "--all") => {
            return commands::backfill::run(&argv[1..], &host, guard)
        }
        Some("save") => match commands::save::as_sync(&argv[1..])? {
            Some(sync) => argv = sync,
            None => return Ok(ExitCode::SUCCESS),
        },
        _ => {}
    }
    let command = args::parse(&argv).map_err(Failure::Usage)?;
    let (common, transcript, mut provider) = match &command {
        Command::Help(text) => {
            println!("{text}");
            if *text == args::USAGE {
                println!("\n{HOST_USAGE}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Sync(a) | Command::Watch { sync: a, .. } => (
            a.common.clone(),
            Some(a.transcript.clone()),
            a.provider
                .as_deref()
                .and_then(|p| ProviderKind::parse(p).ok()),
        ),
        Command::Hook(c) | Command::Validate(c) => (c.clone(), None, None),
    };
    let is_hook = matches!(command, Command::Hook(_));
    let mut stdin = Vec::new();
    let transcript = if is_hook {
        let _ = std::io::stdin().take(1 << 20).read_to_end(&mut stdin);
        match HookInput::parse(&stdin) {
            Ok(input) => {
                // SessionStart and (for a session the daemon holds) SessionEnd
                // go to the daemon; anything else syncs once, as before.
                if let Some(done) = daemon::hook::take_over(&input, &stdin, &host, &common, guard) {
                    return Ok(done);
                }
                provider = Some(input.agent);
                input.transcript_or_derived(std::env::var("HOME").ok().as_deref())
            }
            Err(m) => {
                eprintln!("confab-sync hook: {}", guard.hide(&m));
                return Ok(ExitCode::SUCCESS);
            }
        }
    } else {
        transcript
    };
    let outcome = run_component(
        &command, &argv, &common, transcript, provider, stdin, &host, guard,
    );
    match outcome {
        Err(Failure::Usage(m) | Failure::Sync(m)) if is_hook => {
            eprintln!(
                "confab-sync hook: {}; the session was not synced",
                guard.hide(&m)
            );
            Ok(ExitCode::SUCCESS)
        }
        other => other,
    }
}

/// The agent that wrote `transcript`, from its path and first line.
fn detect_provider(transcript: &Path) -> ProviderKind {
    let first = std::fs::File::open(transcript).ok().and_then(|f| {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(f.take(64 << 10)), &mut line)
            .ok()
            .map(|_| line)
    });
    ProviderKind::detect(&transcript.to_string_lossy(), first.as_deref())
        .unwrap_or(ProviderKind::ClaudeCode)
}

/// The folders a provider's session needs, read-only: Claude Code's
/// transcript folder (its subagents and workflow runs are below it);
/// Codex's whole `sessions/` tree (a thread's descendants may sit in other
/// day folders); Cursor's conversation folder (the nested layout's
/// `<id>/`, else `agent-transcripts/`) and `chats/`, where only
/// `<hash>/<id>/meta.json` is read.
fn provider_folders(provider: ProviderKind, transcript: &Path) -> Vec<PathBuf> {
    let parent = transcript
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    match provider {
        ProviderKind::ClaudeCode => vec![parent],
        ProviderKind::Codex => {
            let day_layout = parent.ancestors().take(3).all(|a| {
                a.file_name()
                    .is_some_and(|n| n.to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
            });
            match parent.ancestors().nth(3) {
                Some(sessions) if day_layout => vec![sessions.to_path_buf()],
                _ => vec![parent],
            }
        }
        ProviderKind::Cursor => {
            let mut folders = vec![parent.clone()];
            let transcripts_dir = if parent.file_name() == transcript.file_stem() {
                parent.parent().map(Path::to_path_buf)
            } else {
                Some(parent.clone())
            };
            // <home>/projects/<workspace>/agent-transcripts -> <home>/chats
            let chats = transcripts_dir
                .as_deref()
                .and_then(|d| d.parent()?.parent())
                .filter(|projects| projects.file_name().is_some_and(|n| n == "projects"))
                .and_then(Path::parent)
                .map(|home| home.join("chats"))
                .filter(|chats| chats.is_dir());
            folders.extend(chats);
            folders
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_component(
    command: &Command,
    argv: &[String],
    common: &args::CommonArgs,
    transcript: Option<String>,
    provider: Option<ProviderKind>,
    stdin: Vec<u8>,
    host: &HostOptions,
    guard: &KeyGuard,
) -> Result<ExitCode, Failure> {
    let env = |k: &str| std::env::var(k).ok();
    let mut settings = settings::resolve(common, &env, &read_file).map_err(Failure::Usage)?;
    // A pattern that does not compile is a configuration error (exit 2), caught
    // here with the component's own redactor before anything runs.
    confab_sync::core::redact::Redactor::new(&settings.redaction)
        .map_err(|e| Failure::Usage(e.to_string()))?;

    let mut folders = Vec::new();
    let mut external_id = None;
    let mut argv = argv.to_vec();
    if let Some(path) = &transcript {
        let absolute = transcript_path(path)?;
        // The component sees the folder at its absolute path: give it the
        // transcript's absolute path too (a relative one resolves nowhere).
        if let Some(arg) = argv.iter_mut().find(|a| *a == path) {
            *arg = absolute.to_string_lossy().into_owned();
        }
        let provider = provider.unwrap_or_else(|| detect_provider(&absolute));
        if provider == ProviderKind::ClaudeCode {
            external_id = absolute
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned());
        }
        folders.extend(provider_folders(provider, &absolute));
    }
    let local = start_local_backend_if_needed(
        &mut settings,
        host,
        matches!(command, Command::Validate(_)),
    )?;
    let (url, key) = settings.require().map_err(Failure::Usage)?;

    let component = component_path(host.component.as_deref()).map_err(Failure::Usage)?;
    // Only a hook has a deadline (Claude Code waits for it); checking for
    // one costs the other commands' long runs about 30%.
    let deadlines = if matches!(command, Command::Hook(_)) {
        Deadlines::Enforced
    } else {
        Deadlines::Off
    };
    let sandbox = Sandbox::load(&component, cache_dir().as_deref(), deadlines).map_err(|e| {
        Failure::Sync(format!(
            "cannot load the component {}: {e}",
            component.display()
        ))
    })?;
    let mut grant = Grant::new(folders, &url);
    if deadlines == Deadlines::Off {
        grant.deadline = None;
    }
    let redaction = serde_json::to_string(&settings.redaction).unwrap_or_default();
    let mut env = vec![
        ("CONFAB_BACKEND_URL".to_string(), url),
        ("CONFAB_API_KEY".to_string(), key),
        ("CONFAB_REDACTION".to_string(), redaction),
    ];
    env.extend(machine_identity());
    if let Some(state) = state_dir(host) {
        if std::fs::create_dir_all(&state).is_ok() {
            if let Ok(state) = std::fs::canonicalize(&state) {
                // The one writable folder must not hold a folder granted
                // read-only: through it, the transcripts would be writable.
                if let Some(folder) = grant.read_only_dirs.iter().find(|f| f.starts_with(&state)) {
                    return Err(Failure::Usage(format!(
                        "the state folder {} holds the transcript's folder {}, which must stay read-only: choose another --state-dir (or CONFAB_STATE_DIR)",
                        state.display(),
                        folder.display()
                    )));
                }
                env.push((
                    "CONFAB_STATE_DIR".to_string(),
                    state.to_string_lossy().into_owned(),
                ));
                grant.read_write_dirs.push(state);
            }
        }
    }
    let ok = sandbox
        .run_command(&grant, &argv, &env, stdin)
        .map_err(|e| {
            // The top of a trap's error is "error while executing at wasm
            // backtrace:"; the cause (e.g. "wasm trap: interrupt") is at the root.
            Failure::Sync(format!(
                "the component stopped: {}",
                first_line(&e.root_cause().to_string())
            ))
        })?;
    if let (true, Some(backend), true) = (ok, &local, transcript.is_some()) {
        // Claude Code's sessions sit at <mirror>/<id>/; the others' under
        // <mirror>/~<provider>/<id>/, their id the provider's (Codex: the root thread's).
        let folder = external_id.map_or_else(|| host.mirror.clone(), |id| host.mirror.join(id));
        let said = format!(
            "mirrored into {} (embedded local backend on {})",
            folder.display(),
            backend.url()
        );
        eprintln!("{}", guard.hide(&said));
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Errors are one line: whatever an error's formatting appends after its
/// first line (a backtrace, when `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE`
/// is set, or a chain of causes) never reaches the user.
fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// The transcript as the user named it, made absolute but not resolved:
/// both hosts open this path in its own folder, so a symlink is followed
/// only to a file inside that folder (the sandbox refuses one leading out),
/// and the session's external id is the stem of the name given, never the
/// link target's. A folder, or anything but a `.jsonl` file, is a usage error.
fn transcript_path(path: &str) -> Result<PathBuf, Failure> {
    let absolute = std::path::absolute(path)
        .map_err(|e| Failure::Usage(format!("cannot use the transcript path {path}: {e}")))?;
    match std::fs::metadata(&absolute) {
        Ok(m) if m.is_dir() => Err(Failure::Usage(format!(
            "{path} is a folder: give the session's .jsonl transcript (try sync --help)"
        ))),
        Ok(m) if !m.is_file() => Err(Failure::Usage(format!(
            "{path} is not a regular file (a FIFO, socket or device): give the session's .jsonl transcript"
        ))),
        Ok(_) => Ok(absolute),
        Err(e) => Err(Failure::Sync(format!(
            "cannot open the transcript {path}: {}",
            first_line(&e.to_string())
        ))),
    }
}

/// With no backend configured anywhere, the embedded local backend.
fn start_local_backend_if_needed(
    settings: &mut Settings,
    host: &HostOptions,
    validate: bool,
) -> Result<Option<Backend>, Failure> {
    if settings.backend_url.is_some() {
        return Ok(None);
    }
    let mirror = (!validate).then(|| host.mirror.clone());
    // A key given without a URL is the one the embedded backend accepts:
    // it is used, rather than silently replaced and then refused with 401.
    let given = settings.api_key.clone();
    let key = given
        .clone()
        .unwrap_or_else(|| DEFAULT_LOCAL_API_KEY.to_string());
    let backend = Backend::start(BackendConfig {
        mirror_dir: mirror,
        api_keys: vec![key.clone()],
        ..BackendConfig::default()
    })
    .map_err(|e| match given {
        Some(_) => Failure::Usage(format!(
            "an API key was given without a backend URL, and the embedded local backend cannot accept it ({}): set --backend-url (or CONFAB_BACKEND_URL), or give no key",
            first_line(&e.to_string())
        )),
        None => Failure::Sync(format!("cannot start the embedded local backend: {e}")),
    })?;
    settings.backend_url = Some(backend.url());
    settings.api_key = Some(key);
    Ok(Some(backend))
}

/// `confab-host backend`: the local backend alone, until stdin closes.
fn serve_backend(args: &[String]) -> Result<ExitCode, Failure> {
    let mut config = BackendConfig::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| Failure::Usage(format!("{arg} needs a value (try --help)")))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{BACKEND_USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            "--mirror" => config.mirror_dir = Some(PathBuf::from(value()?)),
            "--api-key" => config.api_keys = vec![value()?],
            other => {
                return Err(Failure::Usage(format!(
                    "unknown option `{other}` for backend (try --help)"
                )))
            }
        }
    }
    let backend = Backend::start(config)
        .map_err(|e| Failure::Usage(format!("cannot start the local backend: {e}")))?;
    println!("{}", backend.url());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    backend.shutdown();
    Ok(ExitCode::SUCCESS)
}

/// `--component`, `CONFAB_COMPONENT`, or the build output beside this binary
/// (`target/release/confab-host` -> `target/wasm32-wasip2/release/confab_sync.wasm`).
fn component_path(flag: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = flag
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("CONFAB_COMPONENT").map(PathBuf::from))
    {
        return Ok(p);
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this program: {e}"))?;
    let mut candidates = Vec::new();
    if let Some(dir) = exe.parent() {
        candidates.push(dir.join("confab_sync.wasm"));
        if let Some(target) = dir.parent() {
            candidates.push(target.join("wasm32-wasip2/release/confab_sync.wasm"));
        }
    }
    candidates.into_iter().find(|p| p.exists()).ok_or_else(|| {
        "cannot find confab_sync.wasm: build it with `cargo build --release --target wasm32-wasip2 -p confab-sync` or pass --component".to_string()
    })
}

/// This machine's name and the user's, as the component reads them
/// (`HOSTNAME`, `USER`), so the session shows them as confab's do; the
/// command line's `--hostname`/`--username` win over them in the component.
fn machine_identity() -> Vec<(String, String)> {
    let nonempty = |v: String| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let hostname = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok().and_then(nonempty))
        .or_else(|| std::env::var("HOSTNAME").ok().and_then(nonempty));
    let username = ["USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().and_then(nonempty));
    [("HOSTNAME", hostname), ("USER", username)]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_string(), value?)))
        .collect()
}

/// The state folder: `--state-dir`, `CONFAB_STATE_DIR`, else the user's state directory.
fn state_dir(host: &HostOptions) -> Option<PathBuf> {
    host.state_dir
        .clone()
        .or_else(|| std::env::var_os("CONFAB_STATE_DIR").map(PathBuf::from))
        .or_else(|| {
            std::env::var_os("XDG_STATE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
                .map(|d| d.join("confab-sync"))
        })
}

/// `$XDG_CACHE_HOME/confab-sync`, else `~/.cache/confab-sync`.
fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("confab-sync"))
}
