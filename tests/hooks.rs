//! `confab-host hooks install | uninstall | status` on a scratch HOME: only
//! our entries change, a second install changes nothing, an invalid file is
//! refused untouched, and uninstall gives back the original, byte for byte.

use confab_e2e::home::{read, text, Home};
use confab_e2e::*;
use serde_json::{json, Value};

/// What install writes for this binary.
fn our_command() -> String {
    let exe = std::fs::canonicalize(confab_host_path()).unwrap();
    format!("{} hook", exe.display())
}

fn our_group() -> Value {
    json!({"hooks": [{"type": "command", "command": our_command(), "timeout": 30}]})
}

/// Settings as Claude Code writes them (two-space indentation), with hooks
/// and matchers of other tools in the events we touch and in others.
const OTHERS: &str = r#"{
  "$schema": "https://json.schemastore.org/claude-code-settings.json",
  "permissions": {
    "allow": [
      "Bash(cargo test:*)"
    ],
    "deny": []
  },
  "hooks": {
    "SessionStart": [
      {
        "matcher": "startup",
        "hooks": [
          {
            "type": "command",
            "command": "echo started >> /tmp/log"
          }
        ]
      }
    ],
    "PreToolUse": [
      {
        "matcher": "Bash",
        "hooks": [
          {
            "type": "command",
            "command": "lint-the-command",
            "timeout": 5
          }
        ]
      }
    ],
    "Stop": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "notify-send done"
          }
        ]
      }
    ]
  },
  "model": "opus",
  "zeta": 1,
  "alpha": 2
}
"#;

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("the settings are JSON")
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn on_an_empty_home_install_creates_both_hooks_and_uninstall_removes_them() {
    let home = Home::new();
    let out = home.run(&["hooks", "install"]);
    ok(&out);
    let settings = parse(&read(&home.settings()).expect("settings.json created"));
    assert_eq!(
        settings,
        json!({"hooks": {"SessionStart": [our_group()], "SessionEnd": [our_group()]}})
    );
    assert!(!home.path().join(".claude/settings.json.bak").exists());

    let status = home.run(&["hooks", "status"]);
    ok(&status);
    let said = text(&status.stdout);
    for event in ["SessionStart", "SessionEnd"] {
        assert!(
            said.contains(&format!("{event}: installed: {}", our_command())),
            "{said}"
        );
    }

    ok(&home.run(&["hooks", "uninstall"]));
    assert_eq!(parse(&read(&home.settings()).unwrap()), json!({}));
    let status = home.run(&["hooks", "status"]);
    assert!(
        text(&status.stdout).contains("SessionStart: not installed")
            && text(&status.stdout).contains("SessionEnd: not installed"),
        "{}",
        text(&status.stdout)
    );
}

#[test]
fn only_our_entries_change_twice_changes_nothing_and_uninstall_restores_the_bytes() {
    let home = Home::new();
    home.write(".claude/settings.json", OTHERS.as_bytes());

    ok(&home.run(&["hooks", "install"]));
    let after = read(&home.settings()).unwrap();
    // The whole file as expected: the original, plus one group of ours at
    // the end of SessionStart (which had another tool's matcher) and a new
    // SessionEnd list at the end of "hooks"; every key in its place.
    let mut expected = parse(OTHERS.as_bytes());
    let hooks = expected["hooks"].as_object_mut().unwrap();
    hooks["SessionStart"]
        .as_array_mut()
        .unwrap()
        .push(our_group());
    hooks.insert("SessionEnd".into(), json!([our_group()]));
    assert_eq!(text(&after), pretty(&expected));
    assert_eq!(
        read(&home.path().join(".claude/settings.json.bak")).unwrap(),
        OTHERS.as_bytes(),
        "the backup is the previous file"
    );

    let again = home.run(&["hooks", "install"]);
    ok(&again);
    assert!(
        text(&again.stdout).contains("already installed"),
        "{}",
        text(&again.stdout)
    );
    assert_eq!(
        read(&home.settings()).unwrap(),
        after,
        "a second install changes nothing"
    );

    ok(&home.run(&["hooks", "uninstall"]));
    assert_eq!(
        text(&read(&home.settings()).unwrap()),
        OTHERS,
        "back to the original"
    );
    let twice = home.run(&["hooks", "uninstall"]);
    ok(&twice);
    assert_eq!(text(&read(&home.settings()).unwrap()), OTHERS);
}

#[test]
fn an_invalid_file_is_refused_with_one_line_and_left_untouched() {
    let home = Home::new();
    for bad in [
        &b"{\"hooks\": {\"SessionEnd\": [\n"[..],
        b"{} trailing",
        b"[1, 2]",
        b"{\"hooks\": []}",
    ] {
        let path = home.write(".claude/settings.json", bad);
        for action in ["install", "uninstall", "status"] {
            let out = home.run(&["hooks", action]);
            assert_eq!(out.status.code(), Some(2), "{action} {:?}", text(bad));
            let err = text(&out.stderr);
            assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
            assert!(err.contains("settings.json"), "{err}");
            assert_eq!(read(&path).unwrap(), bad, "untouched by {action}");
            assert!(!home.path().join(".claude/settings.json.bak").exists());
        }
    }
}

#[test]
fn the_wasmtime_runner_installs_the_readme_line_and_switching_back_replaces_it() {
    let home = Home::new();
    let component = std::fs::canonicalize(component_path()).unwrap();
    let out = home.run(&["hooks", "install", "--runner", "wasmtime"]);
    ok(&out);
    let settings = parse(&read(&home.settings()).unwrap());
    let hooks = settings["hooks"].as_object().unwrap();
    assert!(!hooks.contains_key("SessionStart"), "{settings}");
    let command = hooks["SessionEnd"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap();
    assert_eq!(
        command,
        format!(
            "wasmtime run -S http --dir \"$HOME/.claude/projects\" --dir \"$HOME/.confab\" --env HOME --env HOSTNAME=\"$(hostname)\" --env USER {} hook",
            component.display()
        )
    );

    ok(&home.run(&["hooks", "install"]));
    let settings = parse(&read(&home.settings()).unwrap());
    assert_eq!(
        settings,
        json!({"hooks": {"SessionEnd": [our_group()], "SessionStart": [our_group()]}}),
        "the wasmtime hook was replaced in place, not kept beside ours"
    );
}

#[test]
fn claude_config_dir_and_settings_flag_choose_the_file_and_dry_run_writes_nothing() {
    let home = Home::new();
    let config = home.path().join("elsewhere");
    let out = home
        .command(&["hooks", "install"])
        .env("CLAUDE_CONFIG_DIR", &config)
        .output()
        .unwrap();
    ok(&out);
    assert!(config.join("settings.json").exists());
    assert!(!home.settings().exists());

    let project = home.write("repo/.claude/settings.json", b"{\"model\": \"sonnet\"}");
    let dry = home.run(&[
        "hooks",
        "install",
        "--settings",
        project.to_str().unwrap(),
        "--dry-run",
    ]);
    ok(&dry);
    let shown = parse(&dry.stdout);
    assert_eq!(shown["model"], "sonnet");
    assert_eq!(shown["hooks"]["SessionEnd"], json!([our_group()]));
    assert_eq!(
        read(&project).unwrap(),
        b"{\"model\": \"sonnet\"}",
        "dry run"
    );

    let with_state = home.run(&[
        "hooks",
        "install",
        "--settings",
        project.to_str().unwrap(),
        "--state-dir",
        "/var/lib/confab state",
    ]);
    ok(&with_state);
    let written = parse(&read(&project).unwrap());
    assert_eq!(
        written["hooks"]["SessionStart"][0]["hooks"][0]["command"],
        format!("{} --state-dir '/var/lib/confab state'", our_command())
    );
}

#[test]
fn a_symlinked_settings_file_is_written_through_and_stays_a_link() {
    let home = Home::new();
    let real = home.write("dotfiles/claude-settings.json", b"{\"model\": \"opus\"}\n");
    std::fs::create_dir_all(home.path().join(".claude")).unwrap();
    std::os::unix::fs::symlink(&real, home.settings()).unwrap();
    ok(&home.run(&["hooks", "install"]));
    assert!(std::fs::symlink_metadata(home.settings())
        .unwrap()
        .file_type()
        .is_symlink());
    let settings = parse(&read(&real).unwrap());
    assert_eq!(settings["model"], "opus");
    assert_eq!(settings["hooks"]["SessionStart"], json!([our_group()]));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let home = Home::new();
    for args in [
        &["hooks"][..],
        &["hooks", "frob"],
        &["hooks", "install", "--runner", "node"],
        &["hooks", "install", "--settings"],
    ] {
        let out = home.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stderr).trim_end().lines().count(), 1, "{args:?}");
    }
    let help = home.run(&["hooks", "--help"]);
    ok(&help);
    assert!(text(&help.stdout).contains("settings.json.bak"));
    assert!(!home.settings().exists());
}
