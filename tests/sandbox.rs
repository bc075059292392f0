//! The sandbox holds: through `confab-host` and its library
//! (`confab_host::sandbox`), the component reads only the granted folder,
//! cannot write there, talks only to the granted origin, stays within its
//! memory limit; and `confab-host` honours confab's config file, with flags
//! over environment over file.

use confab_e2e::*;
use confab_host::backend::Backend;
use confab_host::sandbox::FileFailure;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// `confab-host` in `dir`, with a clean environment (HOME is `dir`).
fn confab_host(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Finished {
    confab_host_with_stdin(dir, args, env, b"")
}

fn confab_host_with_stdin(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &[u8],
) -> Finished {
    let mut cmd = Command::new(confab_host_path());
    cmd.current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CONFAB_COMPONENT", component_path())
        .env("XDG_CACHE_HOME", root().join("target/confab-host-cache"))
        // The state folder (read-write) outside the transcript's folder.
        .env("XDG_STATE_HOME", state_home());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args);
    let done = run_bounded(cmd, stdin, LIMIT);
    assert!(done.status.is_some(), "confab-host {args:?} did not end");
    done
}

/// One scratch state home for every confab-host run of this process.
fn state_home() -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .to_path_buf()
}

/// Every file under `dir` with its bytes, sorted: a folder's whole state.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.push((path.clone(), Vec::new()));
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

/// Open, init and sync-all in `grant`; the outer error is a trap.
fn sync_in(
    grant: &Grant,
    config: &SessionConfig,
) -> wasmtime::Result<Result<SyncReport, SyncError>> {
    let mut instance = sandbox().instantiate(grant)?;
    let session = match instance.open(config)? {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    if let Err(e) = instance.init(session)? {
        return Ok(Err(e));
    }
    instance.sync_all(session)
}

/// The io error a file of the report failed with.
fn io_failure(result: &Result<SyncReport, SyncError>, name: &str) -> String {
    let report = result.as_ref().expect("a report");
    match report.failed.iter().find(|f| f.name == name) {
        Some(FileFailure {
            error: SyncError::Io(m),
            ..
        }) => m.clone(),
        _ => panic!("{name} did not fail with an io error: {report:?}"),
    }
}

#[test]
fn a_transcript_outside_the_granted_folder_cannot_be_read() {
    let backend = backend();
    let granted = Workspace::new();
    let elsewhere = Workspace::new();
    let transcript = elsewhere.copy_file("short.jsonl", "outside.jsonl");
    let grant = Grant::new(vec![granted.path()], &backend.url());
    let result = sync_in(&grant, &config(&backend, &transcript)).expect("no trap");
    let m = io_failure(&result, "outside.jsonl");
    assert!(
        m.contains(transcript.to_str().unwrap())
            && m.contains("outside every folder the host granted"),
        "{m}"
    );
    assert!(backend.file_names("outside").is_empty());
    // Granted, the same file syncs: the refusal was the grant's.
    let grant = Grant::new(vec![elsewhere.path()], &backend.url());
    let result = sync_in(&grant, &config(&backend, &transcript)).expect("no trap");
    assert!(result.unwrap().failed.is_empty());
    assert_stored(&backend, "outside", &transcript);
}

#[test]
fn a_symlink_leaving_the_granted_folder_is_not_followed() {
    let backend = backend();
    let ws = Workspace::new();
    let elsewhere = Workspace::new();
    let secret = elsewhere.write("agent-secret1.jsonl", b"{\"type\":\"user\",\"secret\":1}\n");
    // The transcript itself is a symlink out of the granted folder.
    let link = ws.path().join("linked.jsonl");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let grant = Grant::new(vec![ws.path()], &backend.url());
    let result = sync_in(&grant, &config(&backend, &link)).expect("no trap");
    let m = io_failure(&result, "linked.jsonl");
    assert!(m.contains("permission denied by the sandbox"), "{m}");
    assert!(backend.file_names("linked").is_empty());

    // Through confab-host: a subagent file of the session that links out of
    // the transcript's folder fails alone; the rest is synced, the outside
    // file never reaches the backend.
    let transcript = ws.copy_session(SESSION_A);
    let agent = ws
        .path()
        .join(SESSION_A)
        .join("subagents/agent-secret1.jsonl");
    std::os::unix::fs::symlink(&secret, &agent).unwrap();
    let url = backend.url();
    let done = confab_host(
        &ws.path(),
        &["sync", transcript.to_str().unwrap(), "--json"],
        &[("CONFAB_BACKEND_URL", &url), ("CONFAB_API_KEY", KEY)],
    );
    assert_eq!(done.code(), Some(1), "{}", done.stderr_text());
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["name"], "agent-secret1.jsonl");
    assert_eq!(failed[0]["error"], "io");
    assert!(backend.file(SESSION_A, "agent-secret1.jsonl").is_none());
    for file in session_files(&transcript)
        .iter()
        .filter(|f| !f.ends_with("agent-secret1.jsonl"))
    {
        assert_stored(&backend, SESSION_A, file);
    }
}

#[test]
fn requests_to_another_origin_are_refused_by_the_host() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let other_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let origins = [
        format!("http://127.0.0.1:{other_port}"),
        format!("http://localhost:{}", backend.port()),
        format!("https://127.0.0.1:{}", backend.port()),
    ];
    // The engine retries a refused request as a failed connection (about
    // 15 s of backoff): the three grants run side by side.
    std::thread::scope(|scope| {
        for allowed in &origins {
            let (backend, transcript) = (&backend, &transcript);
            let ws_path = ws.path();
            scope.spawn(move || {
                let grant = Grant::new(vec![ws_path], allowed);
                let mut instance = sandbox().instantiate(&grant).unwrap();
                // The session is configured for the real backend; the grant is not.
                let session = instance
                    .open(&config(backend, transcript))
                    .unwrap()
                    .unwrap();
                match instance.init(session).expect("no trap") {
                    Err(SyncError::Transport(m)) => assert!(
                        m.contains("the host refused this request"),
                        "{allowed}: {m}"
                    ),
                    other => panic!("{allowed}: expected a refusal, got {other:?}"),
                }
            });
        }
    });
    assert!(
        backend.requests().is_empty(),
        "the backend saw a request: {:?}",
        backend.requests()
    );
    // The same session with the right grant goes through: the refusal was the grant's.
    let mut s = Synced::start(&backend, config(&backend, &transcript));
    s.sync();
    assert_stored(&backend, "short", &transcript);
}

/// The probe's report, one line per attempt.
fn probe_lines(done: &Finished) -> Vec<String> {
    done.stdout_text().lines().map(str::to_string).collect()
}

const WRITES: [&str; 7] = [
    "create",
    "append",
    "truncate",
    "mkdir",
    "hard-link",
    "rename",
    "remove",
];

#[test]
fn nothing_inside_can_write_into_the_transcript_folder() {
    let probe = write_probe();
    let backend = backend();

    // Control: under `wasmtime run --dir` (read-write) the probe does write,
    // so its attempts are real.
    let open = Workspace::new();
    let t = open.copy_session(SESSION_B);
    let mut cmd = Command::new(wasmtime_cli());
    cmd.args(["run", "--dir"])
        .arg(open.path())
        .arg(&probe)
        .arg(&t);
    let done = run_bounded(cmd, b"", LIMIT);
    let lines = probe_lines(&done);
    for what in WRITES {
        assert!(
            lines.contains(&format!("{what}: written")),
            "control, {what}: {lines:?}"
        );
    }
    assert_eq!(done.code(), Some(1));

    // Under confab-host, in place of the component, with the grant confab-host
    // gives the component: the folder is readable, and every write is refused.
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_B);
    let before = snapshot(&ws.path());
    let url = backend.url();
    let done = confab_host(
        &ws.path(),
        &[
            "--component",
            probe.to_str().unwrap(),
            "sync",
            transcript.to_str().unwrap(),
        ],
        &[("CONFAB_BACKEND_URL", &url), ("CONFAB_API_KEY", KEY)],
    );
    let lines = probe_lines(&done);
    let size = std::fs::metadata(&transcript).unwrap().len();
    assert_eq!(lines[0], format!("read: {size} bytes"), "{lines:?}");
    for what in WRITES {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{what}: refused (Operation not permitted"))),
            "{what} was not refused for lack of permission: {lines:?}"
        );
    }
    assert_eq!(done.code(), Some(0), "{lines:?} {}", done.stderr_text());
    assert!(snapshot(&ws.path()) == before, "the folder changed");
}

/// The component's own write: its checkpoint, aimed at the transcript's
/// folder, which the grant holds read-only.
#[test]
fn the_component_cannot_write_its_checkpoint_into_the_transcript_folder() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_B);
    let before = snapshot(&ws.path());
    let mut cfg = config(&backend, &transcript);
    cfg.state_dir = Some(ws.path().to_str().unwrap().to_string());
    let grant = Grant::new(vec![ws.path()], &backend.url());
    let report = sync_in(&grant, &cfg).expect("no trap").expect("synced");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("cannot save the checkpoint")
                && w.contains("permission denied by the sandbox")),
        "{:?}",
        report.warnings
    );
    assert!(snapshot(&ws.path()) == before, "the folder changed");
    for file in session_files(&transcript) {
        assert_stored(&backend, SESSION_B, &file);
    }

    // Control: the same write with the folder granted read-write lands, so
    // the attempt above was real and only the grant stopped it.
    let open = Workspace::new();
    let transcript = open.copy_session(SESSION_B);
    let mut cfg = config(&backend, &transcript);
    cfg.external_id = "control".into();
    cfg.state_dir = Some(open.path().to_str().unwrap().to_string());
    let mut grant = Grant::new(vec![open.path()], &backend.url());
    grant.read_write_dirs.push(open.path());
    let report = sync_in(&grant, &cfg).expect("no trap").expect("synced");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(
        snapshot(&open.path()).len() > before.len(),
        "the checkpoint was not written"
    );
}

#[test]
fn confab_host_refuses_a_state_folder_that_holds_the_transcripts() {
    let backend = backend();
    let ws = Workspace::new();
    let project = ws.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let transcript = project.join("short.jsonl");
    std::fs::copy(fixtures().join("short.jsonl"), &transcript).unwrap();
    let url = backend.url();
    let env = [
        ("CONFAB_BACKEND_URL", url.as_str()),
        ("CONFAB_API_KEY", KEY),
    ];
    let before = snapshot(&ws.path());
    for state in [&project, &ws.path()] {
        let args = [
            "--state-dir",
            state.to_str().unwrap(),
            "sync",
            transcript.to_str().unwrap(),
        ];
        let done = confab_host(&ws.path(), &args, &env);
        let err = done.stderr_text();
        assert_eq!(done.code(), Some(2), "{state:?}: {err}");
        assert!(
            err.trim_end().lines().count() == 1 && err.contains("must stay read-only"),
            "{err}"
        );
        // hook: the same refusal, exit 0 as always.
        let input = serde_json::json!({
            "session_id": "short", "transcript_path": transcript,
            "cwd": "/r", "hook_event_name": "SessionEnd",
        })
        .to_string();
        let args = ["--state-dir", state.to_str().unwrap(), "hook"];
        let done = confab_host_with_stdin(&ws.path(), &args, &env, input.as_bytes());
        assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
        assert!(done.stderr_text().contains("must stay read-only"));
    }
    assert!(backend.requests().is_empty(), "nothing was sent");
    assert!(snapshot(&ws.path()) == before, "the folder changed");

    // A state folder elsewhere is granted: the checkpoint goes there.
    let state = Workspace::new();
    let args = [
        "--state-dir",
        state.dir.path().to_str().unwrap(),
        "sync",
        transcript.to_str().unwrap(),
    ];
    let done = confab_host(&ws.path(), &args, &env);
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(!snapshot(&state.path()).is_empty(), "no checkpoint");
    assert!(snapshot(&ws.path()) == before, "the folder changed");
}

/// A transcript with one line of `mib` MiB, then a small one.
fn big_line_transcript(ws: &Workspace, name: &str, mib: usize) -> PathBuf {
    let mut text = format!(
        "{{\"type\":\"user\",\"blob\":\"{}\"}}\n",
        "x".repeat(mib << 20)
    );
    text.push_str("{\"type\":\"assistant\",\"uuid\":\"after\"}\n");
    ws.write(name, text.as_bytes())
}

#[test]
fn the_memory_limit_holds() {
    let backend = backend();
    let ws = Workspace::new();
    let big = big_line_transcript(&ws, "big.jsonl", 12);
    let small = ws.copy_file("short.jsonl", "small.jsonl");
    let mut tight = Grant::new(vec![ws.path()], &backend.url());
    tight.memory_limit = 8 << 20;

    // Within 8 MiB the component runs small work...
    let report = sync_in(&tight, &config(&backend, &small))
        .expect("no trap")
        .expect("synced");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_stored(&backend, "small", &small);

    // ...but a 12 MiB line does not fit: the call traps, nothing of it is stored.
    let result = sync_in(&tight, &config(&backend, &big));
    assert!(
        result.is_err(),
        "a 12 MiB line synced within 8 MiB of memory: {result:?}"
    );
    assert!(backend.file("big", "big.jsonl").is_none());

    // The default limit (256 MiB) syncs the same file.
    let grant = Grant::new(vec![ws.path()], &backend.url());
    let report = sync_in(&grant, &config(&backend, &big))
        .expect("no trap")
        .expect("synced");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_stored(&backend, "big", &big);
}

#[test]
fn confab_host_holds_the_component_to_256_mib() {
    let probe = write_probe();
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let url = backend.url();
    let allocate = |mib: u32| {
        let mode = format!("allocate:{mib}");
        let args = [
            "--component",
            probe.to_str().unwrap(),
            "sync",
            transcript.to_str().unwrap(),
            "--external-id",
            &mode,
        ];
        confab_host(
            &ws.path(),
            &args,
            &[("CONFAB_BACKEND_URL", &url), ("CONFAB_API_KEY", KEY)],
        )
    };
    let done = allocate(64);
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(done.stdout_text().starts_with("allocated 64 MiB"));

    let done = allocate(300);
    let err = done.stderr_text();
    assert_eq!(done.code(), Some(1), "{err}");
    assert!(
        !done.stdout_text().contains("allocated"),
        "{}",
        done.stdout_text()
    );
    // The host's own line names the trap (the guest's abort message comes first).
    let host_line = err.lines().last().unwrap_or_default();
    assert!(
        host_line.starts_with("confab-host: the component stopped: wasm trap"),
        "{err}"
    );

    // Control: without confab-host's limit, the same allocation succeeds.
    let mut cmd = Command::new(wasmtime_cli());
    cmd.arg("run")
        .arg(&probe)
        .args(["sync", "x.jsonl", "--external-id", "allocate:300"]);
    let done = run_bounded(cmd, b"", LIMIT);
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(done.stdout_text().starts_with("allocated 300 MiB"));
}

/// Whether `backend` stored the session `id`.
fn holds(backend: &Backend, id: &str) -> bool {
    backend.file(id, "short.jsonl").is_some()
}

#[test]
fn confab_host_honours_the_config_file_flags_over_env_over_file() {
    let (file_backend, env_backend, flag_backend) = (backend(), backend(), backend());
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let t = transcript.to_str().unwrap();
    let wrong = "cfb_Wrong-Key_8Hq2Zr5Lx0Vb3Nm7Kp1Jd4Wt6Ys9ab";
    let write_config = |path: &Path, url: &str, key: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let json = serde_json::json!({
            "backend_url": url, "api_key": key,
            "redaction": {"enabled": true, "use_default_patterns": true, "patterns": [
                {"name": "project", "pattern": "spotter", "type": "PROJECT"}
            ]},
        });
        std::fs::write(path, json.to_string()).unwrap();
    };
    // HOME (= the workspace) holds confab's ~/.confab/config.json.
    write_config(
        &ws.path().join(".confab/config.json"),
        &file_backend.url(),
        KEY,
    );

    // The file alone: its backend, its key, its redaction.
    let done = confab_host(&ws.path(), &["sync", t, "--external-id", "a"], &[]);
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(holds(&file_backend, "a"));
    let stored = String::from_utf8(file_backend.file("a", "short.jsonl").unwrap()).unwrap();
    assert!(!stored.contains("spotter") && stored.contains("[REDACTED:PROJECT]"));

    // The environment's URL beats the file's; the key still comes from the file.
    let env_url = env_backend.url();
    let done = confab_host(
        &ws.path(),
        &["sync", t, "--external-id", "b"],
        &[("CONFAB_BACKEND_URL", &env_url)],
    );
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(holds(&env_backend, "b") && !holds(&file_backend, "b"));

    // A flag beats the environment.
    let flag_url = flag_backend.url();
    let done = confab_host(
        &ws.path(),
        &["sync", t, "--external-id", "c", "--backend-url", &flag_url],
        &[("CONFAB_BACKEND_URL", &env_url)],
    );
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(holds(&flag_backend, "c") && !holds(&env_backend, "c"));

    // Keys too: a wrong key in the environment beats the file's right one...
    let done = confab_host(
        &ws.path(),
        &["sync", t, "--external-id", "d"],
        &[("CONFAB_API_KEY", wrong)],
    );
    assert_eq!(done.code(), Some(1), "{}", done.stderr_text());
    assert!(done.stderr_text().contains("refused the API key"));
    assert!(!holds(&file_backend, "d"));
    // ...and a right flag beats a wrong environment.
    let done = confab_host(
        &ws.path(),
        &["sync", t, "--external-id", "d", "--api-key", KEY],
        &[("CONFAB_API_KEY", wrong)],
    );
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(holds(&file_backend, "d"));

    // CONFAB_CONFIG_PATH names the file instead of ~/.confab/config.json.
    let other = backend();
    let named = ws.path().join("elsewhere/confab.json");
    write_config(&named, &other.url(), KEY);
    let done = confab_host(
        &ws.path(),
        &["sync", t, "--external-id", "e"],
        &[("CONFAB_CONFIG_PATH", named.to_str().unwrap())],
    );
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(holds(&other, "e") && !holds(&file_backend, "e"));

    // A config file that is not JSON is a configuration error: exit 2, one line.
    std::fs::write(&named, "{not json").unwrap();
    let done = confab_host(
        &ws.path(),
        &["sync", t],
        &[("CONFAB_CONFIG_PATH", named.to_str().unwrap())],
    );
    assert_eq!(done.code(), Some(2), "{}", done.stderr_text());
    let err = done.stderr_text();
    assert!(
        err.trim_end().lines().count() == 1 && err.contains("confab.json is not valid"),
        "{err}"
    );
}
