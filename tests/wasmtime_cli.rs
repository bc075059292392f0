//! End to end through the real `wasmtime` CLI, as a user runs the component:
//! `wasmtime run -S http --dir <folder> --env ... confab_sync.wasm <command>`,
//! against the local backend. Under `wasmtime run`, WASI 0.2 carries only
//! success or failure: exit code 0 or 1.

use confab_e2e::*;
use confab_host::backend::{Backend, BackendConfig, Fault};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Long enough for anything here to end by itself on a slow machine; a
/// process still running then is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(30);

/// A well-formed key the backend does not know.
const WRONG_KEY: &str = "cfb_Wrong-Key_8Hq2Zr5Lx0Vb3Nm7Kp1Jd4Wt6Ys9ab";

/// `wasmtime run -S http --dir <folder> --env K=V... confab_sync.wasm <args>`.
fn wasmtime_run(folder: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    wasmtime_run_in(&[folder], env, args)
}

/// The same with several folders.
fn wasmtime_run_in(folders: &[&Path], env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(wasmtime_cli());
    cmd.args(["run", "-S", "http"]);
    for folder in folders {
        cmd.arg("--dir").arg(folder);
    }
    for (k, v) in env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    cmd.arg(component_path()).args(args);
    cmd
}

/// The environment that points the component at `backend` with `key`.
fn env_for(url: &str, key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CONFAB_BACKEND_URL", url.to_string()),
        ("CONFAB_API_KEY", key.to_string()),
    ]
}

fn run(folder: &Path, env: &[(&str, String)], args: &[&str], stdin: &[u8]) -> Finished {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = run_bounded(wasmtime_run(folder, &env, args), stdin, LIMIT);
    assert!(
        done.status.is_some(),
        "wasmtime run {args:?} was still running after {LIMIT:?}: {}",
        done.stderr_text()
    );
    done
}

fn sync(backend: &Backend, folder: &Path, transcript: &Path, extra: &[&str]) -> Finished {
    let mut args = vec!["sync", transcript.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(folder, &env_for(&backend.url(), KEY), &args, b"")
}

/// A Claude Code hook input for `transcript`.
fn hook_input(transcript: &Path, event: &str) -> String {
    serde_json::json!({
        "session_id": stem(transcript),
        "transcript_path": transcript.to_str().unwrap(),
        "cwd": "/home/u/repo",
        "hook_event_name": event,
        "reason": "exit",
        "permission_mode": "default",
    })
    .to_string()
}

fn one_line(err: &str) -> bool {
    let trimmed = err.trim_end();
    !trimmed.is_empty() && trimmed.lines().count() == 1
}

#[test]
fn sync_stores_every_fixture_session_byte_for_byte() {
    let backend = backend();
    let ws = Workspace::new();
    for uuid in [SESSION_A, SESSION_B] {
        let transcript = ws.copy_session(uuid);
        let done = sync(&backend, &ws.path(), &transcript, &[]);
        assert_eq!(done.code(), Some(0), "{uuid}: {}", done.stderr_text());
        assert!(
            done.stdout.is_empty(),
            "without --json stdout stays empty: {}",
            done.stdout_text()
        );
        let files = session_files(&transcript);
        assert_eq!(files.len(), 3, "{uuid}: a transcript and two subagents");
        for file in &files {
            assert_stored(&backend, uuid, file);
        }
        let mut names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(backend.file_names(uuid), names);
        assert!(
            done.stderr_text().contains("synced"),
            "a report for a person on stderr: {}",
            done.stderr_text()
        );
    }
    for fixture in ["short.jsonl", "subagent.jsonl", "tool_heavy.jsonl"] {
        let transcript = ws.copy_file(fixture, fixture);
        let done = sync(&backend, &ws.path(), &transcript, &[]);
        assert_eq!(done.code(), Some(0), "{fixture}: {}", done.stderr_text());
        assert_stored(&backend, &stem(&transcript), &transcript);
    }
}

#[test]
fn json_output_is_all_of_stdout_and_parses() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_B);
    let first = sync(&backend, &ws.path(), &transcript, &["--json"]);
    assert_eq!(first.code(), Some(0), "{}", first.stderr_text());
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON value ({e}): {}",
            first.stdout_text()
        )
    });
    let lines: u64 = session_files(&transcript)
        .iter()
        .map(|f| {
            std::fs::read(f)
                .unwrap()
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64
        })
        .sum();
    assert_eq!(report["lines"], lines);
    assert_eq!(report["files"].as_array().unwrap().len(), 3);
    assert_eq!(report["failed"].as_array().unwrap().len(), 0);

    // Again: nothing new, still one JSON value and nothing else on stdout.
    let again = sync(&backend, &ws.path(), &transcript, &["--json"]);
    assert_eq!(again.code(), Some(0), "{}", again.stderr_text());
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        (report["lines"].as_u64(), report["chunks"].as_u64()),
        (Some(0), Some(0))
    );

    // validate --json prints the backend's answer.
    let valid = run(
        &ws.path(),
        &env_for(&backend.url(), KEY),
        &["validate", "--json"],
        b"",
    );
    assert_eq!(valid.code(), Some(0), "{}", valid.stderr_text());
    let answer: serde_json::Value = serde_json::from_slice(&valid.stdout).unwrap();
    assert_eq!(answer["valid"], true);

    // hook --json: the report, and only it.
    let hook = run(
        &ws.path(),
        &env_for(&backend.url(), KEY),
        &["hook", "--json"],
        hook_input(&transcript, "Stop").as_bytes(),
    );
    assert_eq!(hook.code(), Some(0), "{}", hook.stderr_text());
    let report: serde_json::Value = serde_json::from_slice(&hook.stdout).unwrap();
    assert_eq!(report["lines"], 0);
}

#[test]
fn hook_on_session_end_syncs_and_sends_session_end_with_the_hook_input() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_A);
    let env = env_for(&backend.url(), KEY);

    // A hook other than SessionEnd syncs and sends no event.
    let stop = hook_input(&transcript, "Stop");
    let done = run(&ws.path(), &env, &["hook"], stop.as_bytes());
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(done.stdout.is_empty(), "a hook prints nothing on stdout");
    for file in session_files(&transcript) {
        assert_stored(&backend, SESSION_A, &file);
    }
    assert!(backend.session(SESSION_A).unwrap().events.is_empty());

    // The session grows, then ends.
    append(
        &transcript,
        b"{\"type\":\"system\",\"uuid\":\"u-last\",\"content\":\"bye\"}\n",
    );
    let end = hook_input(&transcript, "SessionEnd");
    let done = run(&ws.path(), &env, &["hook"], end.as_bytes());
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(
        done.stdout.is_empty(),
        "a hook prints nothing on stdout: {}",
        done.stdout_text()
    );
    assert_stored(&backend, SESSION_A, &transcript);
    let events = backend.session(SESSION_A).unwrap().events;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event_type"], "session_end");
    let sent: serde_json::Value = serde_json::from_str(&end).unwrap();
    assert_eq!(events[0]["payload"], sent, "the payload is the hook input");
    let timestamp = events[0]["timestamp"].as_str().unwrap();
    assert!(
        timestamp.len() == 20 && timestamp.ends_with('Z'),
        "RFC 3339: {timestamp}"
    );
}

#[test]
fn the_hook_sends_hostname_and_user_only_when_they_are_passed() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let hook = hook_input(&transcript, "Stop");

    let done = run(
        &ws.path(),
        &env_for(&backend.url(), KEY),
        &["hook"],
        hook.as_bytes(),
    );
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    let meta = backend.session("short").expect("synced").init_metadata;
    assert!(meta.get("hostname").is_none(), "{meta}");

    // As the README's hook passes them: `--env HOSTNAME=$(hostname) --env USER`.
    let mut env = env_for(&backend.url(), KEY);
    env.push(("HOSTNAME", "devbox".into()));
    env.push(("USER", "ann".into()));
    let done = run(&ws.path(), &env, &["hook"], hook.as_bytes());
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    let meta = backend.session("short").unwrap().init_metadata;
    assert_eq!(
        (&meta["hostname"], &meta["username"]),
        (&"devbox".into(), &"ann".into())
    );
}

#[test]
fn sync_uploads_workflow_runs_under_their_path_encoded_names() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_B);
    let run_dir = format!("{SESSION_B}/subagents/workflows/wf-3b");
    let agent = ws.write(
        &format!("{run_dir}/agent-a1b2c3d.jsonl"),
        b"{\"type\":\"user\",\"n\":1}\n{\"type\":\"assistant\",\"n\":2}\n",
    );
    let journal = ws.write(
        &format!("{run_dir}/journal.jsonl"),
        b"{\"event\":\"start\"}\n",
    );
    ws.write(&format!("{run_dir}/agent-a1b2c3d.meta.json"), b"{}");
    ws.write(&format!("{run_dir}/wf_3b.json"), b"{}");

    let done = sync(&backend, &ws.path(), &transcript, &[]);
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());

    let stored = |name: &str| backend.file(SESSION_B, name);
    assert_eq!(
        stored("subagents/workflows/wf-3b/agent-a1b2c3d.jsonl"),
        Some(std::fs::read(agent).unwrap())
    );
    assert_eq!(
        stored("subagents/workflows/wf-3b/journal.jsonl"),
        Some(std::fs::read(journal).unwrap())
    );
    let names = backend.file_names(SESSION_B);
    assert!(names.iter().all(|n| !n.ends_with(".json")), "{names:?}");
}

/// The same workflow run as above, for the probe tests below: its two
/// files, to check they stay local or go up.
fn write_workflow_run(ws: &Workspace) -> Vec<(String, std::path::PathBuf)> {
    let run_dir = format!("{SESSION_B}/subagents/workflows/wf-9c");
    let agent = ws.write(&format!("{run_dir}/agent-c3d4e5f.jsonl"), b"{\"n\":1}\n");
    let journal = ws.write(
        &format!("{run_dir}/journal.jsonl"),
        b"{\"event\":\"start\"}\n",
    );
    vec![
        (
            "subagents/workflows/wf-9c/agent-c3d4e5f.jsonl".into(),
            agent,
        ),
        ("subagents/workflows/wf-9c/journal.jsonl".into(), journal),
    ]
}

#[test]
fn an_older_backend_answering_404_to_the_probe_gets_no_workflow_files() {
    let backend = Backend::start(BackendConfig {
        api_keys: vec![KEY.to_string()],
        capabilities: None,
        ..BackendConfig::default()
    })
    .unwrap();
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_B);
    write_workflow_run(&ws);
    let done = sync(&backend, &ws.path(), &transcript, &[]);
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(
        backend.file(SESSION_B, &format!("{SESSION_B}.jsonl")),
        Some(std::fs::read(&transcript).unwrap())
    );
    let names = backend.file_names(SESSION_B);
    assert!(names.iter().all(|n| !n.contains('/')), "{names:?}");
}

#[test]
fn after_a_failed_probe_the_next_run_uploads_the_workflow_files() {
    let backend = backend();
    backend.inject(Fault::Status {
        path_prefix: "/api/v1/capabilities".into(),
        status: 503,
        retry_after_secs: None,
        times: 1,
    });
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_B);
    let expected = write_workflow_run(&ws);
    let first = sync(&backend, &ws.path(), &transcript, &[]);
    assert_eq!(first.code(), Some(0), "{}", first.stderr_text());
    assert!(
        backend
            .file_names(SESSION_B)
            .iter()
            .all(|n| !n.contains('/')),
        "nothing of the run before the backend said it takes it"
    );
    let second = sync(&backend, &ws.path(), &transcript, &[]);
    assert_eq!(second.code(), Some(0), "{}", second.stderr_text());
    for (name, path) in &expected {
        assert_eq!(
            backend.file(SESSION_B, name),
            Some(std::fs::read(path).unwrap()),
            "{name}"
        );
    }
}

/// The number of complete lines the backend holds for a file.
fn stored_lines(backend: &Backend, id: &str, name: &str) -> usize {
    backend
        .file(id, name)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

fn lines_in(path: &Path) -> usize {
    std::fs::read(path)
        .unwrap()
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

#[test]
fn watch_picks_up_appended_lines_and_stops_when_idle() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "watched.jsonl");
    let env = env_for(&backend.url(), KEY);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = [
        "watch",
        transcript.to_str().unwrap(),
        "--interval-ms",
        "100",
        "--idle-exit-ms",
        "1500",
    ];
    let mut watch = Running::spawn(wasmtime_run(&ws.path(), &env, &args), b"");
    let name = "watched.jsonl";
    let initial = lines_in(&transcript);
    assert!(
        eventually(LIMIT, || stored_lines(&backend, "watched", name) == initial),
        "the first sync never reached the backend"
    );
    assert!(watch.is_running(), "watch keeps going after its first sync");

    // Two lines and the start of a third, while it runs.
    append(
        &transcript,
        b"{\"type\":\"user\",\"uuid\":\"w1\"}\n{\"type\":\"assistant\",\"uuid\":\"w2\"}\n{\"type\":\"us",
    );
    assert!(
        eventually(LIMIT, || stored_lines(&backend, "watched", name)
            == initial + 2),
        "the appended lines never reached the backend"
    );
    // The half-written line completes.
    append(&transcript, b"er\",\"uuid\":\"w3\"}\n");
    assert!(
        eventually(LIMIT, || stored_lines(&backend, "watched", name)
            == initial + 3),
        "the completed line never reached the backend"
    );

    let done = watch.wait_up_to(LIMIT);
    assert_eq!(
        done.code(),
        Some(0),
        "watch stops by itself once idle: {}",
        done.stderr_text()
    );
    assert!(
        done.stderr_text().contains("no new lines"),
        "{}",
        done.stderr_text()
    );
    assert_stored(&backend, "watched", &transcript);
}

#[test]
fn watch_stops_when_the_session_ends() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "ending.jsonl");
    let env = env_for(&backend.url(), KEY);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Idle exit far away: only SessionEnd can stop it within the test.
    let args = [
        "watch",
        transcript.to_str().unwrap(),
        "--interval-ms",
        "100",
        "--idle-exit-ms",
        "600000",
        "--json",
    ];
    let mut watch = Running::spawn(wasmtime_run(&ws.path(), &env, &args), b"");
    let initial = lines_in(&transcript);
    assert!(
        eventually(LIMIT, || stored_lines(&backend, "ending", "ending.jsonl")
            == initial),
        "the first sync never reached the backend"
    );
    assert!(watch.is_running());
    append(
        &transcript,
        br#"{"type":"progress","data":{"type":"hook_progress","hookEvent":"SessionEnd","hookName":"SessionEnd"},"uuid":"end-1"}
"#,
    );
    let done = watch.wait_up_to(LIMIT);
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(
        done.stderr_text().contains("session ended"),
        "{}",
        done.stderr_text()
    );
    assert_stored(&backend, "ending", &transcript);
    let summary: serde_json::Value = serde_json::from_slice(&done.stdout)
        .unwrap_or_else(|e| panic!("watch --json: {e}: {}", done.stdout_text()));
    assert_eq!(summary["lines"], initial as u64 + 1);
}

/// `(what, environment, arguments, expected exit code)`.
type ExitCase<'a> = (&'a str, Vec<(&'a str, String)>, Vec<&'a str>, i32);

#[test]
fn exit_codes_say_success_or_failure() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let t = transcript.to_str().unwrap();
    let good = env_for(&backend.url(), KEY);
    let wrong = env_for(&backend.url(), WRONG_KEY);
    let cases: Vec<ExitCase> = vec![
        ("help", vec![], vec!["--help"], 0),
        ("sync --help", vec![], vec!["sync", "--help"], 0),
        ("sync", good.clone(), vec!["sync", t], 0),
        ("validate", good.clone(), vec!["validate"], 0),
        ("validate, wrong key", wrong.clone(), vec!["validate"], 1),
        ("sync, wrong key", wrong, vec!["sync", t], 1),
        ("unknown command", good.clone(), vec!["frobnicate"], 1),
        ("no transcript", good.clone(), vec!["sync"], 1),
        ("no backend", vec![], vec!["sync", t], 1),
        (
            "malformed key",
            env_for(&backend.url(), "not-a-key"),
            vec!["sync", t],
            1,
        ),
    ];
    for (what, env, args, code) in cases {
        let done = run(&ws.path(), &env, &args, b"");
        assert_eq!(done.code(), Some(code), "{what}: {}", done.stderr_text());
        if code != 0 {
            assert!(
                one_line(&done.stderr_text()),
                "{what}: {}",
                done.stderr_text()
            );
        }
    }
    let help = run(&ws.path(), &[], &["help"], b"");
    assert!(help.stdout_text().contains("EXIT STATUS"));
}

/// `(what, backend URL, key, transcript)` for each failure a user meets.
fn failures<'a>(
    backend: &Backend,
    unreachable: &str,
    good: &'a Path,
    missing: &'a Path,
) -> Vec<(&'static str, String, &'static str, &'a Path, &'static str)> {
    vec![
        (
            "a wrong key",
            backend.url(),
            WRONG_KEY,
            good,
            "refused the API key",
        ),
        (
            "a missing file",
            backend.url(),
            KEY,
            missing,
            "cannot open the transcript",
        ),
        (
            "an unreachable backend",
            unreachable.to_string(),
            KEY,
            good,
            "/api/v1/sync/init",
        ),
    ]
}

/// A loopback port nobody listens on (bound, then released).
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn each_failure_is_one_clear_line_without_the_key() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let missing = ws.path().join("gone.jsonl");
    let unreachable = closed_port_url();
    for (what, url, key, file, expect) in failures(&backend, &unreachable, &transcript, &missing) {
        let done = run(
            &ws.path(),
            &env_for(&url, key),
            &["sync", file.to_str().unwrap()],
            b"",
        );
        let err = done.stderr_text();
        assert_eq!(done.code(), Some(1), "sync, {what}: {err}");
        assert!(one_line(&err), "sync, {what}: one line: {err}");
        assert!(err.contains(expect), "sync, {what}: {err}");
        assert!(
            !err.contains(&key[4..]),
            "sync, {what}: the key leaked: {err}"
        );
        assert!(done.stdout.is_empty(), "sync, {what}");
    }
    assert!(
        backend.file_names("gone").is_empty() && backend.file_names("short").is_empty(),
        "nothing was stored"
    );
}

#[test]
fn hook_always_exits_0_by_itself_with_one_line_on_failure() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let missing = ws.path().join("gone.jsonl");
    let unreachable = closed_port_url();
    for (what, url, key, file, expect) in failures(&backend, &unreachable, &transcript, &missing) {
        let input = hook_input(file, "SessionEnd");
        let done = run(&ws.path(), &env_for(&url, key), &["hook"], input.as_bytes());
        let err = done.stderr_text();
        assert_eq!(done.code(), Some(0), "hook, {what}: {err}");
        assert!(one_line(&err), "hook, {what}: one line: {err}");
        assert!(
            err.contains(expect) && err.contains("not synced"),
            "hook, {what}: {err}"
        );
        assert!(
            !err.contains(&key[4..]),
            "hook, {what}: the key leaked: {err}"
        );
        assert!(done.stdout.is_empty(), "hook, {what}");
    }
    // Not a hook input at all: still 0, still one line.
    for stdin in [&b""[..], b"{\"session_id\":1}", b"not json"] {
        let done = run(&ws.path(), &env_for(&backend.url(), KEY), &["hook"], stdin);
        assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
        assert!(one_line(&done.stderr_text()), "{}", done.stderr_text());
    }
    assert!(backend.session("short").is_none(), "nothing was stored");
}

/// A backend that accepts connections and never answers: the hook gives up
/// on its own (its requests share one deadline) and says why.
#[test]
fn hook_gives_up_on_a_backend_that_never_answers() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let input = hook_input(&transcript, "SessionEnd");
    let done = run(&ws.path(), &env_for(&url, KEY), &["hook"], input.as_bytes());
    let err = done.stderr_text();
    assert_eq!(done.code(), Some(0), "{err}");
    assert!(one_line(&err), "{err}");
    assert!(
        err.contains("did not answer in time") && err.contains("gave up"),
        "{err}"
    );
    drop(silent);
}

#[test]
fn the_config_file_is_read_from_home_or_confab_config_path() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    // confab's own shape, with a custom redaction pattern.
    let config = serde_json::json!({
        "backend_url": backend.url(),
        "api_key": KEY,
        "redaction": {"enabled": true, "use_default_patterns": false, "patterns": [
            {"name": "spotter", "pattern": "spotter", "type": "PROJECT"}
        ]},
    })
    .to_string();
    let home = ws.path().join("home");
    std::fs::create_dir_all(home.join(".confab")).unwrap();
    std::fs::write(home.join(".confab/config.json"), &config).unwrap();

    // HOME passed and granted: its .confab/config.json is used.
    let mut cmd = wasmtime_run(
        &ws.path(),
        &[("HOME", home.to_str().unwrap())],
        &["sync", transcript.to_str().unwrap(), "--json"],
    );
    cmd.arg("--external-id").arg("from-home");
    let done = run_bounded(cmd, b"", LIMIT);
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    let stored = String::from_utf8(backend.file("from-home", "short.jsonl").unwrap()).unwrap();
    let source = std::fs::read_to_string(&transcript).unwrap();
    assert!(source.contains("spotter") && !stored.contains("spotter"));
    assert_eq!(stored.lines().count(), source.lines().count());
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert!(report["redactions"]["PROJECT"].as_u64().unwrap() > 0);

    // CONFAB_CONFIG_PATH names another file; a named file that is missing is an error.
    let named = ws.path().join("named.json");
    std::fs::write(&named, &config).unwrap();
    let done = run(
        &ws.path(),
        &[("CONFAB_CONFIG_PATH", named.to_str().unwrap().to_string())],
        &[
            "sync",
            transcript.to_str().unwrap(),
            "--external-id",
            "named",
        ],
        b"",
    );
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(backend.file("named", "short.jsonl").is_some());
    let done = run(
        &ws.path(),
        &[(
            "CONFAB_CONFIG_PATH",
            ws.path().join("nope.json").to_str().unwrap().to_string(),
        )],
        &["sync", transcript.to_str().unwrap()],
        b"",
    );
    assert_eq!(done.code(), Some(1));
    assert!(
        one_line(&done.stderr_text()) && done.stderr_text().contains("nope.json"),
        "{}",
        done.stderr_text()
    );
}

/// `--dir <state> --env CONFAB_STATE_DIR=<state>`: the engine keeps its
/// checkpoint there, and a later run resumes from it without re-reading.
#[test]
fn a_granted_state_folder_keeps_a_checkpoint_across_runs() {
    let backend = backend();
    let ws = Workspace::new();
    let state = Workspace::new();
    let transcript = ws.copy_session(SESSION_A);
    let (url, state_dir) = (backend.url(), state.path());
    let state_dir = state_dir.to_str().unwrap();
    let sync = || {
        let cmd = wasmtime_run_in(
            &[&ws.path(), &state.path()],
            &[
                ("CONFAB_BACKEND_URL", &url),
                ("CONFAB_API_KEY", KEY),
                ("CONFAB_STATE_DIR", state_dir),
            ],
            &["sync", transcript.to_str().unwrap(), "--json"],
        );
        let done = run_bounded(cmd, b"", LIMIT);
        assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
        let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
        assert!(
            report["warnings"].as_array().unwrap().is_empty(),
            "{report}"
        );
        report
    };
    let first = sync();
    let whole: u64 = session_files(&transcript)
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(first["read_bytes"].as_u64().unwrap() >= whole, "{first}");
    assert!(
        std::fs::read_dir(state.path()).unwrap().count() > 0,
        "no checkpoint in the state folder"
    );
    let second = sync();
    assert_eq!(second["lines"], 0);
    let reread = second["read_bytes"].as_u64().unwrap();
    assert!(
        reread < whole / 10,
        "the second run read {reread} of {whole} bytes"
    );
    append(
        &transcript,
        b"{\"type\":\"user\",\"uuid\":\"after-checkpoint\"}\n",
    );
    let third = sync();
    assert_eq!(third["lines"], 1);
    for file in session_files(&transcript) {
        assert_stored(&backend, SESSION_A, &file);
    }
}
