//! End to end through the `confab-host` binary, as a user runs it:
//! the embedded local backend, exit codes, one-line errors.

use confab_e2e::*;
use std::path::PathBuf;
use std::process::{Command, Output};

fn confab_host() -> PathBuf {
    let path = root().join("target/release/confab-host");
    assert!(
        path.exists(),
        "{} is missing: run scripts/test-all",
        path.display()
    );
    path
}

/// Run `confab-host` in `dir` with a clean environment (no user config).
fn run(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(confab_host());
    cmd.current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("CONFAB_COMPONENT", component_path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("run confab-host")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn with_no_backend_configured_it_mirrors_the_session_locally() {
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_A);
    let out = run(&ws.path(), &["sync", transcript.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        stderr(&out)
    );
    let mirror = ws.path().join("confab-mirror").join(SESSION_A);
    for file in session_files(&transcript) {
        let name = file.file_name().unwrap();
        assert_eq!(
            std::fs::read(mirror.join(name)).unwrap(),
            std::fs::read(&file).unwrap(),
            "{name:?}"
        );
    }
    assert!(stderr(&out).contains("confab-mirror"), "{}", stderr(&out));
    // Run again: the mirror remembers, nothing new goes up.
    let again = run(
        &ws.path(),
        &["sync", transcript.to_str().unwrap(), "--json"],
        &[],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    let report: serde_json::Value =
        serde_json::from_slice(&again.stdout).expect("--json prints JSON on stdout");
    assert_eq!(report["lines"], 0);
    assert_eq!(report["files"].as_array().unwrap().len(), 3);
}

#[test]
fn a_wrong_key_exits_1_with_one_line_that_does_not_hold_the_key() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let key = "cfb_NotThe-RightKey_u5Hq2Zr8Lx0Vb3Nm7Kp1Jd4g";
    let out = run(
        &ws.path(),
        &["sync", transcript.to_str().unwrap(), "--api-key", key],
        &[("CONFAB_BACKEND_URL", &backend.url())],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("API key") && !err.contains("NotTheRightKey"),
        "{err}"
    );
}

#[test]
fn configuration_errors_exit_2_and_nothing_is_sent() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let t = transcript.to_str().unwrap();
    for (args, env, expect) in [
        (
            vec!["sync", t, "--api-key", "not-a-key"],
            vec![("CONFAB_BACKEND_URL", backend.url())],
            "does not look like a Confab key",
        ),
        (
            vec!["sync", t, "--backend-url", "http://confab.example.com"],
            vec![("CONFAB_API_KEY", KEY.to_string())],
            "plain http",
        ),
        (vec!["sync"], vec![], "needs a transcript path"),
        (vec!["frobnicate"], vec![], "unknown command"),
        // The component carries the Unicode tables of \w, \s and (?i) only.
        (
            vec!["sync", t],
            vec![
                ("CONFAB_BACKEND_URL", backend.url()),
                ("CONFAB_API_KEY", KEY.to_string()),
                (
                    "CONFAB_REDACTION",
                    r#"{"enabled":true,"patterns":[{"name":"greek","pattern":"\\p{Greek}+","type":"x"}]}"#
                        .to_string(),
                ),
            ],
            "redaction pattern `greek` does not compile: Unicode property not found (only",
        ),
    ] {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = run(&ws.path(), &args, &env);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(expect) && err.trim_end().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    assert!(backend.requests().is_empty(), "nothing was sent");
}

#[test]
fn a_missing_transcript_is_one_clear_line() {
    let ws = Workspace::new();
    let out = run(&ws.path(), &["sync", "/nonexistent/abc.jsonl"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot open the transcript /nonexistent/abc.jsonl")
            && err.trim_end().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn help_explains_itself() {
    let ws = Workspace::new();
    let out = run(&ws.path(), &["--help"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "sync <transcript.jsonl>",
        "CONFAB_API_KEY",
        "config.json",
        "EXIT STATUS",
        "read-only",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn confab_host_sends_the_machines_hostname_and_the_user_and_flags_override_them() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let url = backend.url();
    let env = [
        ("CONFAB_BACKEND_URL", url.as_str()),
        ("CONFAB_API_KEY", KEY),
        ("USER", "ann"),
    ];
    let out = run(&ws.path(), &["sync", transcript.to_str().unwrap()], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let meta = backend.session("short").unwrap().init_metadata;
    assert_eq!(meta["hostname"], machine.trim());
    assert_eq!(meta["username"], "ann");

    let out = run(
        &ws.path(),
        &[
            "sync",
            transcript.to_str().unwrap(),
            "--hostname",
            "laptop",
            "--username=bo",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let meta = backend.session("short").unwrap().init_metadata;
    assert_eq!(
        (&meta["hostname"], &meta["username"]),
        (&"laptop".into(), &"bo".into())
    );
}

#[test]
fn with_no_backend_configured_workflow_files_are_mirrored_into_sub_folders() {
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_B);
    let run_dir = format!("{SESSION_B}/subagents/workflows/wf-1");
    let agent = ws.write(
        &format!("{run_dir}/agent-a1b2c3d.jsonl"),
        b"{\"type\":\"user\"}\n{\"type\":\"assistant\"}\n",
    );
    let journal = ws.write(
        &format!("{run_dir}/journal.jsonl"),
        b"{\"event\":\"start\"}\n",
    );
    ws.write(&format!("{run_dir}/wf_state.json"), b"{}");
    let out = run(&ws.path(), &["sync", transcript.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mirror = ws.path().join("confab-mirror").join(SESSION_B);
    let mirrored = mirror.join("subagents/workflows/wf-1");
    assert_eq!(
        std::fs::read(mirrored.join("agent-a1b2c3d.jsonl")).unwrap(),
        std::fs::read(agent).unwrap()
    );
    assert_eq!(
        std::fs::read(mirrored.join("journal.jsonl")).unwrap(),
        std::fs::read(journal).unwrap()
    );
    assert!(!mirrored.join("wf_state.json").exists());
}
