//! `confab-host hooks install | uninstall | status`: Claude Code's hooks
//! that run this binary, written into its settings file (the editing itself
//! is [`confab_host::claude_hooks`]).

use super::Flags;
use crate::{Failure, HostOptions};
use confab_host::claude_hooks::{self, SettingsFile, Wanted};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const HELP: &str = "\
confab-host hooks install | uninstall | status [--settings FILE]
    Claude Code hooks that sync every session, in its user settings
    ($CLAUDE_CONFIG_DIR/settings.json, else ~/.claude/settings.json).

    install     add a SessionStart and a SessionEnd hook running
                `<this binary> hook` (timeout 30 s); a second install changes
                nothing, a hook of ours already there is updated in place
    uninstall   remove only the hooks of ours (and any group, event list or
                \"hooks\" object that removing them left empty)
    status      say, per event, whether a hook of ours is there and what it runs

    Every other key, hook and matcher stays as it was, in its order. The
    file is replaced atomically (a temporary file in its folder, renamed
    over it), and the previous one is kept as settings.json.bak. A file
    that is not valid JSON is refused and left untouched.

OPTIONS:
    --settings FILE       another settings file (e.g. a project's .claude/settings.json)
    --runner confab-host  (default) the hooks run this binary
    --runner wasmtime     install instead the SessionEnd hook that runs the
                          component under `wasmtime run` (sync at session end only)
    --component PATH      the confab_sync.wasm the wasmtime hook runs (else
                          CONFAB_COMPONENT, else the build output beside this binary);
                          with --runner confab-host, passed on to the hook
    --state-dir DIR       passed on to the hook (confab-host runner)
    --dry-run             print the settings as they would be, change nothing";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Install,
    Uninstall,
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runner {
    ConfabHost,
    Wasmtime,
}

/// `argv` is everything after `hooks`, host options already taken out.
pub fn run(argv: &[String], host: &HostOptions) -> Result<ExitCode, Failure> {
    let mut action = None;
    let mut settings = None;
    let mut runner = Runner::ConfabHost;
    let mut dry_run = false;
    let mut flags = Flags::new(argv, "hooks --help");
    while let Some((flag, inline)) = flags.next_flag() {
        let mut value = || flags.value(flag, inline);
        match flag {
            "-h" | "--help" => {
                println!("{HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            "--settings" => settings = Some(PathBuf::from(value()?)),
            "--runner" => {
                runner = match value()?.as_str() {
                    "confab-host" => Runner::ConfabHost,
                    "wasmtime" => Runner::Wasmtime,
                    other => {
                        return Err(Failure::Usage(format!(
                        "--runner takes confab-host or wasmtime, not `{other}` (try hooks --help)"
                    )))
                    }
                }
            }
            "--dry-run" => dry_run = true,
            "install" | "uninstall" | "status" if action.is_none() => {
                action = Some(match flag {
                    "install" => Action::Install,
                    "uninstall" => Action::Uninstall,
                    _ => Action::Status,
                })
            }
            other => {
                return Err(Failure::Usage(format!(
                    "unexpected argument `{other}` for hooks (try hooks --help)"
                )))
            }
        }
    }
    let action = action.ok_or_else(|| {
        Failure::Usage("hooks needs install, uninstall or status (try hooks --help)".into())
    })?;
    let path = match settings {
        Some(p) => p,
        None => claude_hooks::default_settings_path().map_err(Failure::Usage)?,
    };
    let mut file = SettingsFile::read(&path).map_err(Failure::Usage)?;
    if action == Action::Status {
        return status(&file);
    }
    let wanted = match action {
        Action::Install => wanted(runner, host)?,
        _ => Wanted::NONE,
    };
    let changed = claude_hooks::apply(&mut file.settings, &wanted)
        .map_err(|m| Failure::Usage(format!("{}: {m}; it was not changed", path.display())))?;
    if dry_run {
        print!("{}", file.render());
        return Ok(ExitCode::SUCCESS);
    }
    let shown = path.display();
    if !changed {
        match action {
            Action::Install => {
                println!("the hooks are already installed in {shown}: nothing changed")
            }
            _ => println!("no hook of confab-sync in {shown}: nothing changed"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let backup = file.write().map_err(Failure::Sync)?;
    let kept = backup
        .map(|b| format!(" (the previous file is {})", b.display()))
        .unwrap_or_default();
    match action {
        Action::Install => {
            let events = [
                ("SessionStart", &wanted.session_start),
                ("SessionEnd", &wanted.session_end),
            ];
            for (event, command) in events {
                if let Some(command) = command {
                    println!("{event}: {command}");
                }
            }
            println!("installed in {shown}{kept}");
        }
        _ => println!("removed the hooks of confab-sync from {shown}{kept}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn status(file: &SettingsFile) -> Result<ExitCode, Failure> {
    let found = claude_hooks::installed(&file.settings)
        .map_err(|m| Failure::Usage(format!("{}: {m}", file.path.display())))?;
    println!("settings: {}", file.path.display());
    for event in claude_hooks::EVENTS {
        let commands: Vec<_> = found.iter().filter(|(e, _)| e == event).collect();
        if commands.is_empty() {
            println!("{event}: not installed");
        }
        for (_, command) in commands {
            println!("{event}: installed: {command}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The hooks `install` writes for a runner.
fn wanted(runner: Runner, host: &HostOptions) -> Result<Wanted, Failure> {
    match runner {
        Runner::ConfabHost => {
            let exe = std::env::current_exe()
                .and_then(std::fs::canonicalize)
                .map_err(|e| Failure::Sync(format!("cannot locate this program: {e}")))?;
            let mut words = vec![exe, PathBuf::from("hook")];
            if let Some(dir) = &host.state_dir {
                words.extend([PathBuf::from("--state-dir"), absolute(dir)?]);
            }
            if let Some(component) = &host.component {
                words.extend([PathBuf::from("--component"), absolute(component)?]);
            }
            let command = shell_words(&words)?;
            Ok(Wanted {
                session_start: Some(command.clone()),
                session_end: Some(command),
            })
        }
        Runner::Wasmtime => {
            let component =
                crate::component_path(host.component.as_deref()).map_err(Failure::Usage)?;
            let component = quote(&absolute(&component)?)?;
            // The README's line: the projects folder and confab's config
            // granted, the machine's and the user's names passed on.
            let projects = match std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
                Some(dir) => quote(&absolute(&PathBuf::from(dir).join("projects"))?)?,
                None => "\"$HOME/.claude/projects\"".to_string(),
            };
            let command = format!(
                "wasmtime run -S http --dir {projects} --dir \"$HOME/.confab\" --env HOME --env HOSTNAME=\"$(hostname)\" --env USER {component} hook"
            );
            Ok(Wanted {
                session_start: None,
                session_end: Some(command),
            })
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path)
        .map_err(|e| Failure::Usage(format!("cannot use the path {}: {e}", path.display())))
}

fn quote(path: &Path) -> Result<String, Failure> {
    let text = path
        .to_str()
        .ok_or_else(|| Failure::Usage(format!("the path {} is not UTF-8", path.display())))?;
    shlex::try_quote(text)
        .map(|q| q.into_owned())
        .map_err(|_| Failure::Usage(format!("the path {text} cannot be quoted for a shell")))
}

fn shell_words(words: &[PathBuf]) -> Result<String, Failure> {
    let quoted: Result<Vec<_>, _> = words.iter().map(|w| quote(w)).collect();
    Ok(quoted?.join(" "))
}
