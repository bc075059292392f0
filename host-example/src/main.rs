//! `confab-host`: sync a Claude Code session through the confab-sync
//! component, sandboxed in wasmtime. With no backend configured it starts the
//! embedded local backend and mirrors the session into a folder, so it runs
//! on a fresh machine with no account.

use confab_host::backend::{Backend, BackendConfig, DEFAULT_LOCAL_API_KEY};
use confab_host::config::{self, Settings};
use confab_host::report;
use confab_host::sandbox::{Grant, Sandbox, SessionConfig, SyncError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
confab-host: sync Claude Code sessions to a Confab backend, through the
confab-sync WebAssembly component running sandboxed in wasmtime.

USAGE:
    confab-host sync <transcript.jsonl> [OPTIONS]

OPTIONS:
    --backend-url URL   Confab backend (else CONFAB_BACKEND_URL, else the config file)
    --api-key KEY       API key, cfb_... (else CONFAB_API_KEY, else the config file)
    --external-id ID    session id (default: the transcript's file stem)
    --cwd DIR           the project folder the agent ran in (sent as metadata)
    --mirror DIR        folder of the embedded local backend (default: ./confab-mirror)
    --component PATH    confab_sync.wasm (else CONFAB_COMPONENT, else beside this binary's target folder)
    --json              print the sync report as JSON on stdout, nothing else there
    -h, --help          this help

CONFIG FILE:
    CONFAB_CONFIG_PATH, else ~/.confab/config.json, in confab's shape:
    {\"backend_url\": \"https://...\", \"api_key\": \"cfb_...\",
     \"redaction\": {\"enabled\": true, \"use_default_patterns\": true, \"patterns\": []}}
    With no backend configured anywhere, an embedded local backend is started
    on 127.0.0.1 and the session is mirrored into the --mirror folder.

SANDBOX:
    The component can read only the transcript's folder (read-only) and send
    requests only to the backend's origin.

EXIT STATUS:
    0 every file synced, 1 a sync error, 2 a usage or configuration error.";

struct Args {
    transcript: PathBuf,
    backend_url: Option<String>,
    api_key: Option<String>,
    external_id: Option<String>,
    cwd: Option<String>,
    mirror: PathBuf,
    component: Option<PathBuf>,
    json: bool,
}

enum Failure {
    Usage(String),
    Sync(String),
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(code) => code,
        Err(Failure::Usage(m)) => {
            eprintln!("confab-host: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Sync(m)) => {
            eprintln!("confab-host: {m}");
            ExitCode::from(1)
        }
    }
}

fn parse(argv: &[String]) -> Result<Option<Args>, Failure> {
    let mut it = argv.iter();
    match it.next().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => return Ok(None),
        Some("sync") => {}
        Some(other) => {
            return Err(Failure::Usage(format!(
                "unknown command `{other}` (try --help)"
            )))
        }
    }
    let mut transcript = None;
    let mut args = Args {
        transcript: PathBuf::new(),
        backend_url: None,
        api_key: None,
        external_id: None,
        cwd: None,
        mirror: PathBuf::from("confab-mirror"),
        component: None,
        json: false,
    };
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| Failure::Usage(format!("{name} needs a value (try --help)")))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--json" => args.json = true,
            "--backend-url" => args.backend_url = Some(value(arg)?),
            "--api-key" => args.api_key = Some(value(arg)?),
            "--external-id" => args.external_id = Some(value(arg)?),
            "--cwd" => args.cwd = Some(value(arg)?),
            "--mirror" => args.mirror = PathBuf::from(value(arg)?),
            "--component" => args.component = Some(PathBuf::from(value(arg)?)),
            flag if flag.starts_with('-') => {
                return Err(Failure::Usage(format!(
                    "unknown option `{flag}` (try --help)"
                )))
            }
            path if transcript.is_none() => transcript = Some(PathBuf::from(path)),
            extra => {
                return Err(Failure::Usage(format!(
                    "unexpected argument `{extra}` (try --help)"
                )))
            }
        }
    }
    args.transcript = transcript
        .ok_or_else(|| Failure::Usage("sync needs a transcript path (try --help)".into()))?;
    Ok(Some(args))
}

fn run(argv: &[String]) -> Result<ExitCode, Failure> {
    let Some(args) = parse(argv)? else {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    };
    let settings = config::resolve(args.backend_url.clone(), args.api_key.clone(), |k| {
        std::env::var(k).ok()
    })
    .map_err(Failure::Usage)?;
    let transcript = std::fs::canonicalize(&args.transcript).map_err(|e| {
        Failure::Sync(format!(
            "cannot open the transcript {}: {e}",
            args.transcript.display()
        ))
    })?;
    let transcript_str = transcript
        .to_str()
        .ok_or_else(|| {
            Failure::Usage(format!(
                "the transcript path is not UTF-8: {}",
                transcript.display()
            ))
        })?
        .to_string();
    let folder = transcript
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let external_id = args.external_id.clone().unwrap_or_else(|| {
        transcript
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });

    let (local, backend_url, api_key) = backend_for(&settings, &args)?;
    let component = component_path(args.component.as_deref()).map_err(Failure::Usage)?;
    let sandbox = Sandbox::load(&component, cache_dir().as_deref()).map_err(|e| {
        Failure::Sync(format!(
            "cannot load the component {}: {e}",
            component.display()
        ))
    })?;
    let mut instance = sandbox
        .instantiate(&Grant::new(vec![folder], &backend_url))
        .map_err(|e| Failure::Sync(format!("cannot start the component: {e}")))?;
    let config = SessionConfig {
        backend_url,
        api_key,
        external_id: external_id.clone(),
        transcript_path: transcript_str,
        cwd: args.cwd.clone().unwrap_or_default(),
        hostname: std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty() && h.len() <= 255),
        username: std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty() && u.len() <= 255),
        redaction: settings.redaction.clone(),
    };
    let trap =
        |e: wasmtime::Error| Failure::Sync(format!("the component stopped unexpectedly: {e}"));
    let session = instance
        .open(&config)
        .map_err(trap)?
        .map_err(sync_failure)?;
    instance
        .init(session)
        .map_err(trap)?
        .map_err(sync_failure)?;
    let report = instance
        .sync_all(session)
        .map_err(trap)?
        .map_err(sync_failure)?;

    if args.json {
        println!("{}", report::to_json(&report));
    } else {
        eprint!("{}", report::human(&report));
    }
    if let Some(backend) = &local {
        let dir = args.mirror.join(&external_id);
        eprintln!(
            "mirrored into {} (embedded local backend on {})",
            dir.display(),
            backend.url()
        );
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The configured backend, or the embedded local one when none is configured.
fn backend_for(
    settings: &Settings,
    args: &Args,
) -> Result<(Option<Backend>, String, String), Failure> {
    if let Some(url) = &settings.backend_url {
        let key = settings.api_key.clone().ok_or_else(|| {
            Failure::Usage(
                "no API key: pass --api-key, set CONFAB_API_KEY, or put api_key in the config file"
                    .into(),
            )
        })?;
        return Ok((None, url.clone(), key));
    }
    let backend = Backend::start(BackendConfig {
        api_keys: vec![DEFAULT_LOCAL_API_KEY.to_string()],
        mirror_dir: Some(args.mirror.clone()),
        ..BackendConfig::default()
    })
    .map_err(|e| Failure::Sync(format!("cannot start the embedded local backend: {e}")))?;
    let url = backend.url();
    Ok((Some(backend), url, DEFAULT_LOCAL_API_KEY.to_string()))
}

fn sync_failure(e: SyncError) -> Failure {
    let m = report::error_message(&e);
    match e {
        SyncError::InvalidConfig(_) => Failure::Usage(m),
        _ => Failure::Sync(m),
    }
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

/// `$XDG_CACHE_HOME/confab-sync`, else `~/.cache/confab-sync`.
fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("confab-sync"))
}
