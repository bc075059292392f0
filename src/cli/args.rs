//! Parsing the command line into a [`Command`]. No I/O: errors are one-line
//! usage messages, help is text to print.

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// init + sync-all once.
    Sync(SyncArgs),
    /// Read an agent's hook JSON on stdin and sync the session it names.
    Hook(CommonArgs),
    /// Sync every interval until the file is idle or the session ended.
    Watch {
        sync: SyncArgs,
        interval_ms: u64,
        idle_exit_ms: u64,
    },
    /// Check the key against the backend.
    Validate(CommonArgs),
    /// Print this text.
    Help(&'static str),
}

/// Flags every command that talks to the backend takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommonArgs {
    pub backend_url: Option<String>,
    pub api_key: Option<String>,
    pub json: bool,
    /// `--timeout SECONDS`: the whole command's network work ends by then
    /// (not for `watch`, which runs until idle).
    pub timeout: Option<std::time::Duration>,
    /// Sent in the session's metadata; else `HOSTNAME` from the environment.
    pub hostname: Option<String>,
    /// Sent in the session's metadata; else `USER` from the environment.
    pub username: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncArgs {
    pub common: CommonArgs,
    pub transcript: String,
    pub external_id: Option<String>,
    pub cwd: Option<String>,
    /// `--provider NAME`, checked against the supported ones.
    pub provider: Option<String>,
}

pub const DEFAULT_INTERVAL_MS: u64 = 5_000;
pub const DEFAULT_IDLE_EXIT_MS: u64 = 600_000;

pub const USAGE: &str = "\
confab-sync: sync Claude Code, Codex and Cursor sessions to a Confab backend,
incrementally.

USAGE:
    <runner> sync <transcript.jsonl> [--provider NAME] [--external-id ID] [--cwd DIR] [--json]
    <runner> hook                      (Claude Code, Codex or Cursor hook: JSON on stdin)
    <runner> watch <transcript.jsonl> [--interval-ms N] [--idle-exit-ms N]
    <runner> validate
    <runner> help | --help             (every command also takes --help)

    <runner> is `wasmtime run -S http --dir <folder> confab_sync.wasm`
    or `confab-host`.

EVERY COMMAND TAKES:
    --backend-url URL    Confab backend (else CONFAB_BACKEND_URL, else the config file)
    --api-key KEY        API key cfb_... (else CONFAB_API_KEY, else the config file)
    --json               print the result as JSON on stdout, nothing else there
    --timeout SECONDS    give up after this long, whatever the backend does
                         (sync, validate: default 3600; hook: default 9; not watch)
    --hostname NAME      this machine's name, sent with the session (else HOSTNAME;
                         not validate)
    --username NAME      the user's name, sent with the session (else USER; not validate)

CONFIG FILE:
    CONFAB_CONFIG_PATH, else $HOME/.confab/config.json, in confab's shape:
    {\"backend_url\": \"https://...\", \"api_key\": \"cfb_...\",
     \"redaction\": {\"enabled\": true, \"use_default_patterns\": true, \"patterns\": []}}

EXIT STATUS:
    0 every file synced; non-zero otherwise (confab-host: 1 a sync error,
    2 a usage or configuration error). `hook` always exits 0: it must never
    block the agent; it says on stderr what went wrong.";

pub const SYNC_HELP: &str = "\
sync <transcript.jsonl> [--provider NAME] [--external-id ID] [--cwd DIR] [--json]
    Create or resume the session on the backend and upload every new
    complete line of the transcript and of its subagent files.
    --provider NAME    claude-code, codex or cursor (default: told by the
                       transcript's path and first line). A Codex rollout of
                       a subagent syncs its root's session, with every rollout
                       the root spawned (found in the sessions folder).
    --external-id ID   session id (default: the transcript's file stem; for
                       Codex the root thread's id)
    --cwd DIR          the project folder the agent ran in (sent as metadata;
                       its .git/config is read when the folder is granted)
    plus --backend-url, --api-key, --json, --hostname, --username (see --help)";

pub const HOOK_HELP: &str = "\
hook
    Read a hook input on stdin and sync the session it names: Claude Code's
    ({\"session_id\", \"transcript_path\", \"cwd\", \"hook_event_name\", ...}),
    Codex's (the same fields; a SessionStart for a spawned thread syncs its
    root's session, and Stop, fired after every turn, is no session end) or
    Cursor's ({\"conversation_id\", \"workspace_roots\", ...}; with no
    transcript_path the transcript is found under $HOME/.cursor/projects/).
    On Claude Code's SessionEnd and Cursor's sessionEnd it also sends a
    session_end event with the hook input as payload.
    Prints nothing on stdout (unless --json), always exits 0, and gives up
    within about 10 seconds when the backend cannot be reached.";

pub const WATCH_HELP: &str = "\
watch <transcript.jsonl> [--interval-ms N] [--idle-exit-ms N]
    Sync every N milliseconds (default 5000) until the transcript has not
    grown for the idle limit (default 600000) or the session ended.
    Takes the flags of sync as well.";

pub const VALIDATE_HELP: &str = "\
validate
    Check the API key against the backend (GET /api/v1/auth/validate).";

/// Parse the arguments after the program name.
/// The flags of `sync` that take a value (`--flag VALUE` or `--flag=VALUE`),
/// for a host that passes some of them on, such as `confab-host sync --all`.
pub const SYNC_VALUE_FLAGS: &[&str] = &[
    "--backend-url",
    "--api-key",
    "--timeout",
    "--hostname",
    "--username",
    "--external-id",
    "--cwd",
    "--provider",
];

pub fn parse(argv: &[String]) -> Result<Command, String> {
    let mut it = argv.iter().map(String::as_str);
    let command = match it.next() {
        None | Some("help" | "--help" | "-h") => return Ok(Command::Help(USAGE)),
        Some(c) => c,
    };
    let help = match command {
        "sync" => SYNC_HELP,
        "hook" => HOOK_HELP,
        "watch" => WATCH_HELP,
        "validate" => VALIDATE_HELP,
        other => return Err(format!("unknown command `{other}` (try --help)")),
    };
    let mut common = CommonArgs::default();
    let mut sync = SyncArgs::default();
    let mut transcript = None;
    let (mut interval_ms, mut idle_exit_ms) = (DEFAULT_INTERVAL_MS, DEFAULT_IDLE_EXIT_MS);
    let takes_file = matches!(command, "sync" | "watch");
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().map(str::to_string))
                .ok_or_else(|| format!("{name} needs a value (try {command} --help)"))
        };
        let number = |name: &str, v: String| -> Result<u64, String> {
            v.parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{name} takes a positive number of milliseconds, not `{v}`"))
        };
        match flag {
            "-h" | "--help" => return Ok(Command::Help(help)),
            "--json" => common.json = true,
            "--backend-url" => common.backend_url = Some(value(flag)?),
            "--api-key" => common.api_key = Some(value(flag)?),
            "--timeout" if command != "watch" => {
                let v = value(flag)?;
                let seconds = v.parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| {
                    format!("--timeout takes a positive number of seconds, not `{v}`")
                })?;
                common.timeout = Some(std::time::Duration::from_secs(seconds));
            }
            "--hostname" if command != "validate" => common.hostname = Some(value(flag)?),
            "--username" if command != "validate" => common.username = Some(value(flag)?),
            "--external-id" if takes_file => sync.external_id = Some(value(flag)?),
            "--cwd" if takes_file => sync.cwd = Some(value(flag)?),
            "--provider" if takes_file => {
                let name = value(flag)?;
                crate::core::provider::ProviderKind::parse(&name)
                    .map_err(|m| format!("{m} (try {command} --help)"))?;
                sync.provider = Some(name);
            }
            "--interval-ms" if command == "watch" => interval_ms = number(flag, value(flag)?)?,
            "--idle-exit-ms" if command == "watch" => idle_exit_ms = number(flag, value(flag)?)?,
            f if f.starts_with('-') && f.len() > 1 => {
                return Err(format!(
                    "unknown option `{f}` for {command} (try {command} --help)"
                ))
            }
            path if takes_file && transcript.is_none() => transcript = Some(path.to_string()),
            extra => {
                return Err(format!(
                    "unexpected argument `{extra}` for {command} (try {command} --help)"
                ))
            }
        }
    }
    if takes_file {
        sync.transcript = transcript
            .ok_or_else(|| format!("{command} needs a transcript path (try {command} --help)"))?;
        if !sync.transcript.ends_with(".jsonl") || sync.transcript.ends_with("/.jsonl") {
            return Err(format!(
                "the transcript must be a .jsonl file (JSON Lines, as the agent writes it) of a supported agent ({}), not `{}` (try {command} --help)",
                crate::core::provider::SUPPORTED,
                crate::core::discovery::shown(&sync.transcript)
            ));
        }
        sync.common = common.clone();
    }
    Ok(match command {
        "sync" => Command::Sync(sync),
        "watch" => Command::Watch {
            sync,
            interval_ms,
            idle_exit_ms,
        },
        "hook" => Command::Hook(common),
        _ => Command::Validate(common),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listed_value_flags_are_the_ones_sync_takes_a_value_for() {
        for flag in SYNC_VALUE_FLAGS {
            let e =
                parse(&["sync".to_string(), "/p/s.jsonl".into(), flag.to_string()]).unwrap_err();
            assert!(e.contains("needs a value"), "{flag}: {e}");
        }
    }

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn sync_with_every_flag() {
        let Command::Sync(s) = p(&[
            "sync",
            "/p/s.jsonl",
            "--external-id",
            "x",
            "--cwd=/repo",
            "--json",
            "--api-key",
            "k",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(s.transcript, "/p/s.jsonl");
        assert_eq!(s.external_id.as_deref(), Some("x"));
        assert_eq!(s.cwd.as_deref(), Some("/repo"));
        assert!(s.common.json);
        assert_eq!(s.common.api_key.as_deref(), Some("k"));
    }

    #[test]
    fn hostname_and_username_flags_for_the_commands_that_sync() {
        let Command::Sync(s) =
            p(&["sync", "/p/s.jsonl", "--hostname=box", "--username", "ann"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(s.common.hostname.as_deref(), Some("box"));
        assert_eq!(s.common.username.as_deref(), Some("ann"));
        let Command::Hook(h) = p(&["hook", "--hostname", "box"]).unwrap() else {
            panic!()
        };
        assert_eq!(h.hostname.as_deref(), Some("box"));
        assert!(p(&["validate", "--hostname", "box"]).is_err());
    }

    #[test]
    fn watch_defaults_and_numbers() {
        let Command::Watch {
            interval_ms,
            idle_exit_ms,
            ..
        } = p(&["watch", "/s.jsonl"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (interval_ms, idle_exit_ms),
            (DEFAULT_INTERVAL_MS, DEFAULT_IDLE_EXIT_MS)
        );
        let Command::Watch { interval_ms, .. } =
            p(&["watch", "/s.jsonl", "--interval-ms", "50"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(interval_ms, 50);
        assert!(p(&["watch", "/s.jsonl", "--interval-ms", "soon"])
            .unwrap_err()
            .contains("positive number"));
    }

    #[test]
    fn timeout_in_seconds_except_for_watch() {
        let Command::Hook(c) = p(&["hook", "--timeout", "3"]).unwrap() else {
            panic!()
        };
        assert_eq!(c.timeout, Some(std::time::Duration::from_secs(3)));
        assert!(p(&["sync", "/s.jsonl", "--timeout=0"])
            .unwrap_err()
            .contains("positive number of seconds"));
        assert!(p(&["watch", "/s.jsonl", "--timeout", "3"])
            .unwrap_err()
            .contains("unknown option"));
    }

    #[test]
    fn help_everywhere_and_errors_are_one_line() {
        assert_eq!(p(&[]).unwrap(), Command::Help(USAGE));
        assert_eq!(p(&["hook", "--help"]).unwrap(), Command::Help(HOOK_HELP));
        for bad in [
            &["sync"][..],
            &["sync", "a", "b"],
            &["frob"],
            &["hook", "--cwd", "x"],
            &["validate", "--api-key"],
            &["sync", "/p/notes.txt"],
            &["watch", "/p/"],
        ] {
            let e = p(bad).unwrap_err();
            assert!(!e.contains('\n') && e.contains("--help"), "{bad:?}: {e}");
        }
    }
}
