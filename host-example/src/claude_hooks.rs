//! Claude Code's `settings.json`: adding, finding and removing the hooks that
//! run confab-sync, and nothing else. Every other key, hook and matcher is
//! kept where it was (serde_json's `preserve_order`); the file is replaced
//! atomically, with the previous one kept as `settings.json.bak`.
//!
//! Our hooks are recognised by their command, not by a marker (Claude Code
//! keeps no unknown keys for us): a `command` hook that runs `confab-host …
//! hook`, or `wasmtime run … confab_sync.wasm hook`. A hand-written hook of
//! that shape (the README's) is therefore taken over by `install` and
//! removed by `uninstall`.

use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The events `install` adds a hook to.
pub const EVENTS: [&str; 2] = ["SessionStart", "SessionEnd"];

/// Seconds Claude Code gives the hook (the engine gives up within 10 s).
pub const HOOK_TIMEOUT_SECONDS: u64 = 30;

/// What the hooks of each event should run after an edit: `None` for an
/// event with no hook of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub session_start: Option<String>,
    pub session_end: Option<String>,
}

impl Wanted {
    /// No hook of ours anywhere (`uninstall`).
    pub const NONE: Wanted = Wanted {
        session_start: None,
        session_end: None,
    };

    fn for_event(&self, event: &str) -> Option<&str> {
        match event {
            "SessionStart" => self.session_start.as_deref(),
            _ => self.session_end.as_deref(),
        }
    }
}

/// Whether a hook command runs confab-sync: `confab-host … hook …`, or
/// `wasmtime run … confab_sync.wasm hook`.
pub fn is_ours(command: &str) -> bool {
    let words = shlex::split(command)
        .unwrap_or_else(|| command.split_whitespace().map(str::to_string).collect());
    let Some(program) = words.first() else {
        return false;
    };
    let program = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rest = &words[1..];
    match program.as_str() {
        "confab-host" => rest.iter().any(|w| w == "hook"),
        "wasmtime" => {
            rest.first().is_some_and(|w| w == "run")
                && rest.iter().any(|w| w.ends_with("confab_sync.wasm"))
                && rest.last().is_some_and(|w| w == "hook")
        }
        _ => false,
    }
}

/// The hook object `install` writes.
fn hook_entry(command: &str) -> Value {
    let mut hook = Map::new();
    hook.insert("type".into(), "command".into());
    hook.insert("command".into(), command.into());
    hook.insert("timeout".into(), HOOK_TIMEOUT_SECONDS.into());
    Value::Object(hook)
}

/// The command of a `{"type": "command", "command": …}` hook of ours.
fn our_command(hook: &Value) -> Option<&str> {
    let hook = hook.as_object()?;
    if hook.get("type").and_then(Value::as_str) != Some("command") {
        return None;
    }
    hook.get("command")
        .and_then(Value::as_str)
        .filter(|c| is_ours(c))
}

/// The settings' `hooks` object, if it has one; an error for a shape
/// Claude Code would not accept either (we change nothing then).
fn hooks_object(settings: &Value) -> Result<Option<&Map<String, Value>>, String> {
    let root = settings
        .as_object()
        .ok_or("the settings are not a JSON object")?;
    match root.get("hooks") {
        None => Ok(None),
        Some(Value::Object(hooks)) => Ok(Some(hooks)),
        Some(_) => Err("its \"hooks\" is not a JSON object".into()),
    }
}

/// Where each of our hooks is: `(event, command)`, in file order.
pub fn installed(settings: &Value) -> Result<Vec<(String, String)>, String> {
    let mut found = Vec::new();
    let Some(hooks) = hooks_object(settings)? else {
        return Ok(found);
    };
    for event in EVENTS {
        let Some(groups) = hooks.get(event).and_then(Value::as_array) else {
            continue;
        };
        for group in groups {
            let list = group.get("hooks").and_then(Value::as_array);
            for hook in list.into_iter().flatten() {
                if let Some(command) = our_command(hook) {
                    found.push((event.to_string(), command.to_string()));
                }
            }
        }
    }
    Ok(found)
}

/// Make the settings hold exactly the hooks of ours that `wanted` names:
/// one already there is kept (its command and timeout brought up to date),
/// a missing one is appended as a new group at the end of its event, any
/// other of ours is removed, and a group, event list or `hooks` object left
/// empty by a removal is removed too. Returns whether anything changed.
pub fn apply(settings: &mut Value, wanted: &Wanted) -> Result<bool, String> {
    hooks_object(settings)?;
    let root = settings.as_object_mut().expect("checked above");
    if let Some(hooks) = root.get("hooks").and_then(Value::as_object) {
        for event in EVENTS {
            if hooks.get(event).is_some_and(|v| !v.is_array()) {
                return Err(format!("its \"hooks\".\"{event}\" is not a JSON array"));
            }
        }
    }
    let mut changed = false;
    for event in EVENTS {
        let want = wanted.for_event(event);
        let mut placed = false;
        let mut emptied_event = false;
        if let Some(groups) = root
            .get_mut("hooks")
            .and_then(|h| h.get_mut(event))
            .and_then(Value::as_array_mut)
        {
            let before = groups.len();
            groups.retain_mut(|group| {
                let Some(list) = group.get_mut("hooks").and_then(Value::as_array_mut) else {
                    return true;
                };
                let had = list.len();
                list.retain_mut(|hook| {
                    let Some(current) = our_command(hook) else {
                        return true;
                    };
                    match want {
                        Some(command) if !placed => {
                            placed = true;
                            let current = current.to_string();
                            let h = hook.as_object_mut().expect("a hook object");
                            if current != command {
                                h.insert("command".into(), command.into());
                                changed = true;
                            }
                            if h.get("timeout").and_then(Value::as_u64)
                                != Some(HOOK_TIMEOUT_SECONDS)
                            {
                                h.insert("timeout".into(), HOOK_TIMEOUT_SECONDS.into());
                                changed = true;
                            }
                            true
                        }
                        _ => {
                            changed = true;
                            false
                        }
                    }
                });
                // A group emptied by removing ours goes; one that was empty stays.
                !(list.is_empty() && had > 0)
            });
            emptied_event = groups.is_empty() && before > 0;
        }
        if emptied_event {
            let hooks = root.get_mut("hooks").and_then(Value::as_object_mut);
            if let Some(hooks) = hooks {
                hooks.shift_remove(event);
                if hooks.is_empty() {
                    root.shift_remove("hooks");
                }
            }
        }
        if let (Some(command), false) = (want, placed) {
            let hooks = root
                .entry("hooks")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("checked above");
            let groups = hooks
                .entry(event)
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .expect("checked above");
            let mut group = Map::new();
            group.insert("hooks".into(), Value::Array(vec![hook_entry(command)]));
            groups.push(Value::Object(group));
            changed = true;
        }
    }
    Ok(changed)
}

/// The settings file: where it is, what it held, how it ended.
pub struct SettingsFile {
    /// The path given (the one shown to the user).
    pub path: PathBuf,
    /// Its bytes, `None` when there is no file yet.
    pub original: Option<Vec<u8>>,
    pub settings: Value,
}

/// Claude Code's user settings: `$CLAUDE_CONFIG_DIR/settings.json`, else
/// `~/.claude/settings.json`.
pub fn default_settings_path() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("settings.json"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or("HOME is not set: name the settings file with --settings FILE")?;
    Ok(PathBuf::from(home).join(".claude/settings.json"))
}

impl SettingsFile {
    /// Read and parse; a missing (or empty) file is `{}`, a file that is not
    /// valid JSON is an error that names it (and it is left as it is).
    pub fn read(path: &Path) -> Result<SettingsFile, String> {
        let original = match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let settings = match &original {
            Some(bytes) if !bytes.iter().all(u8::is_ascii_whitespace) => {
                serde_json::from_slice(bytes).map_err(|e| {
                    format!(
                        "{} is not valid JSON ({e}): fix it or move it aside; it was not changed",
                        path.display()
                    )
                })?
            }
            _ => Value::Object(Map::new()),
        };
        if !settings.is_object() {
            return Err(format!(
                "{} does not hold a JSON object: fix it or move it aside; it was not changed",
                path.display()
            ));
        }
        Ok(SettingsFile {
            path: path.to_path_buf(),
            original,
            settings,
        })
    }

    /// The text the file gets: two-space indentation (as Claude Code writes
    /// it), ending in a newline if the original did (a new file does).
    pub fn render(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.settings).unwrap_or_default();
        let newline = self.original.as_ref().is_none_or(|b| b.ends_with(b"\n"));
        if newline {
            text.push('\n');
        }
        text
    }

    /// Where a backup of the previous file goes.
    pub fn backup_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".bak");
        self.path.with_file_name(name)
    }

    /// Replace the file atomically (a temporary file in the same folder,
    /// renamed over it, its permissions kept), after saving the previous
    /// bytes as [`Self::backup_path`]. A symlinked settings file is written
    /// through: its target is replaced, the link stays.
    pub fn write(&self) -> Result<Option<PathBuf>, String> {
        let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let folder = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        let backup = match &self.original {
            Some(bytes) => {
                let backup = self.backup_path();
                write_atomically(&backup, bytes, None)?;
                Some(backup)
            }
            None => None,
        };
        let permissions = std::fs::metadata(&target).ok().map(|m| m.permissions());
        write_atomically(&target, self.render().as_bytes(), permissions)?;
        Ok(backup)
    }
}

fn write_atomically(
    path: &Path,
    bytes: &[u8],
    permissions: Option<std::fs::Permissions>,
) -> Result<(), String> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".confab-settings-")
        .tempfile_in(folder)
        .map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    if let Some(p) = permissions {
        tmp.as_file().set_permissions(p).map_err(fail)?;
    }
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "/opt/bin/confab-host hook";

    fn wanted() -> Wanted {
        Wanted {
            session_start: Some(OURS.into()),
            session_end: Some(OURS.into()),
        }
    }

    fn text(v: &Value) -> String {
        serde_json::to_string_pretty(v).unwrap()
    }

    #[test]
    fn recognises_our_commands_only() {
        assert!(is_ours("/usr/local/bin/confab-host hook"));
        assert!(is_ours("'/home/a b/confab-host' hook --state-dir /s"));
        assert!(is_ours(
            "wasmtime run -S http --dir \"$HOME/.claude/projects\" /x/confab_sync.wasm hook"
        ));
        assert!(!is_ours("confab-host sync x.jsonl"));
        assert!(!is_ours("confab hook session-end"));
        assert!(!is_ours("echo confab-host hook"));
        assert!(!is_ours("wasmtime run other.wasm hook"));
        assert!(!is_ours(""));
    }

    #[test]
    fn install_then_uninstall_restores_order_and_other_hooks() {
        let original = r#"{
  "model": "opus",
  "hooks": {
    "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "lint"}]}],
    "SessionEnd": [{"hooks": [{"type": "command", "command": "notify-send bye"}]}]
  },
  "permissions": {"allow": ["Bash(ls)"]}
}"#;
        let mut v: Value = serde_json::from_str(original).unwrap();
        let before = text(&v);
        assert!(apply(&mut v, &wanted()).unwrap());
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["model", "hooks", "permissions"]);
        let events: Vec<_> = v["hooks"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(events, ["PreToolUse", "SessionEnd", "SessionStart"]);
        assert_eq!(
            v["hooks"]["SessionEnd"][0]["hooks"][0]["command"],
            "notify-send bye"
        );
        assert_eq!(v["hooks"]["SessionEnd"][1]["hooks"][0]["command"], OURS);
        assert_eq!(v["hooks"]["SessionEnd"][1]["hooks"][0]["timeout"], 30);
        let once = text(&v);
        assert!(
            !apply(&mut v, &wanted()).unwrap(),
            "a second install changes nothing"
        );
        assert_eq!(text(&v), once);
        assert_eq!(
            installed(&v).unwrap(),
            [
                ("SessionStart".to_string(), OURS.to_string()),
                ("SessionEnd".to_string(), OURS.to_string())
            ]
        );
        assert!(apply(&mut v, &Wanted::NONE).unwrap());
        assert_eq!(text(&v), before);
    }

    #[test]
    fn a_moved_binary_is_updated_in_place_and_duplicates_go() {
        let mut v: Value = serde_json::from_str(
            r#"{"hooks": {"SessionEnd": [
                {"hooks": [{"type": "command", "command": "/old/confab-host hook", "timeout": 5}, {"type": "command", "command": "x"}]},
                {"hooks": [{"type": "command", "command": "/older/confab-host hook"}]}
            ]}}"#,
        )
        .unwrap();
        assert!(apply(&mut v, &wanted()).unwrap());
        let end = v["hooks"]["SessionEnd"].as_array().unwrap();
        assert_eq!(end.len(), 1, "{end:?}");
        assert_eq!(end[0]["hooks"][0]["command"], OURS);
        assert_eq!(end[0]["hooks"][0]["timeout"], 30);
        assert_eq!(end[0]["hooks"][1]["command"], "x");
    }

    #[test]
    fn containers_that_were_empty_before_stay() {
        let mut v: Value = serde_json::from_str(r#"{"hooks": {"SessionEnd": []}}"#).unwrap();
        let before = text(&v);
        assert!(!apply(&mut v, &Wanted::NONE).unwrap());
        assert_eq!(text(&v), before);
    }

    #[test]
    fn shapes_claude_code_would_refuse_are_not_touched() {
        for bad in [
            r#"[]"#,
            r#"{"hooks": []}"#,
            r#"{"hooks": {"SessionEnd": {"hooks": []}}}"#,
        ] {
            let mut v: Value = serde_json::from_str(bad).unwrap();
            let before = v.clone();
            assert!(apply(&mut v, &wanted()).is_err(), "{bad}");
            assert_eq!(v, before);
        }
    }
}
