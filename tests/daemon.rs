//! End to end: `confab-host daemon`, started and fed by the `SessionStart`
//! hook of fake agents (each a shell that runs `confab-host hook` as its
//! child, then sleeps: the hook's parent is the agent), against the local
//! backend, with a temporary HOME and state folder. Every test stops its
//! daemon and agents when it ends, passed or not (Drop guards).

use confab_e2e::{
    append, backend, component_path, confab_host_path, eventually, fixtures, root, session_files,
    KEY, SESSION_A, SESSION_B,
};
use confab_host::backend::Backend;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Generous: the machine is shared and the first start compiles the component.
const LIMIT: Duration = Duration::from_secs(90);

/// A temporary HOME with a projects folder, a state folder and the
/// environment every `confab-host` of the test runs with.
struct Home {
    dir: tempfile::TempDir,
    backend_url: String,
    extra_env: Vec<(String, String)>,
}

impl Home {
    fn new(backend_url: &str) -> Home {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("home/.claude/projects")).unwrap();
        Home {
            dir,
            backend_url: backend_url.to_string(),
            extra_env: Vec::new(),
        }
    }

    fn path(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).unwrap()
    }

    /// `$XDG_STATE_HOME/confab-sync`: where the hook and the daemon keep
    /// their state with no flag given.
    fn state(&self) -> PathBuf {
        self.path().join("state/confab-sync")
    }

    fn daemon_dir(&self) -> PathBuf {
        self.state().join("daemon")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.daemon_dir().join("daemon.log")).unwrap_or_default()
    }

    fn registered(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.daemon_dir().join("sessions"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Copy a fixture session into a project folder of this HOME.
    fn session(&self, project: &str, uuid: &str) -> PathBuf {
        let dir = self.path().join("home/.claude/projects").join(project);
        std::fs::create_dir_all(&dir).unwrap();
        let transcript = dir.join(format!("{uuid}.jsonl"));
        std::fs::copy(fixtures().join(format!("{uuid}.jsonl")), &transcript).unwrap();
        let sub = fixtures().join(uuid).join("subagents");
        if sub.exists() {
            let to = dir.join(uuid).join("subagents");
            std::fs::create_dir_all(&to).unwrap();
            for e in std::fs::read_dir(&sub).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_file() {
                    std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
                }
            }
        }
        transcript
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(confab_host_path());
        self.env(&mut cmd);
        cmd
    }

    fn env(&self, cmd: &mut Command) {
        for (k, _) in std::env::vars() {
            if k.starts_with("CONFAB_") || k.starts_with("XDG_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.path().join("home"))
            .env("XDG_STATE_HOME", self.path().join("state"))
            // One compiled component for every test run (it takes seconds).
            .env("XDG_CACHE_HOME", root().join("target/daemon-test-cache"))
            .env("CONFAB_COMPONENT", component_path())
            .env("CONFAB_BACKEND_URL", &self.backend_url)
            .env("CONFAB_API_KEY", KEY)
            .env("CONFAB_DAEMON_INTERVAL", "1")
            .env("CONFAB_DAEMON_IDLE_EXIT", "2");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
    }

    /// `confab-host daemon status --json`.
    fn status(&self) -> Value {
        let out = self
            .command()
            .args(["daemon", "status", "--json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "daemon status --json: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    fn daemon_running(&self) -> bool {
        self.status()["running"] == Value::Bool(true)
    }

    fn session_status(&self, id: &str) -> Option<Value> {
        let status = self.status();
        status["daemon"]["sessions"]
            .as_array()?
            .iter()
            .find(|s| s["session_id"] == id)
            .cloned()
    }

    /// Runs `confab-host hook` with `input` from the test process (a
    /// `SessionEnd` the agent would send).
    fn hook(&self, input: &Value) -> std::process::Output {
        let mut child = self
            .command()
            .arg("hook")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn input_file(&self, name: &str, input: &Value) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, input.to_string()).unwrap();
        path
    }
}

impl Drop for Home {
    /// No daemon outlives its test: the pid it wrote in its status.
    fn drop(&mut self) {
        let status = std::fs::read(self.daemon_dir().join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if let Some(pid) = status.and_then(|s| s["pid"].as_u64()) {
            let _ = kill_9(pid);
        }
    }
}

fn hook_input(event: &str, id: &str, transcript: &Path) -> Value {
    serde_json::json!({
        "session_id": id,
        "transcript_path": transcript,
        "cwd": "/home/marco/projects/spotter",
        "hook_event_name": event,
        "source": "startup",
    })
}

/// `kill -9 <pid>` through the shell's builtin: `/bin/kill` comes with
/// procps, which a minimal Debian may lack.
fn kill_9(pid: u64) -> std::io::Result<std::process::ExitStatus> {
    Command::new("sh")
        .arg("-c")
        .arg(format!("kill -9 {pid}"))
        .status()
}

/// A fake agent: a shell that runs the `SessionStart` hook as its child,
/// then sleeps until killed (killed at the latest when dropped).
struct Agent {
    child: Child,
    started: std::time::Instant,
}

/// How long after its `SessionStart` an agent's exit may still be taken for
/// a wrapper shell's (the daemon's `WRAPPER_GRACE_SECS`, plus a second).
const WRAPPER_GRACE: Duration = Duration::from_secs(6);

impl Agent {
    fn start(home: &Home, id: &str, transcript: &Path) -> Agent {
        Agent::start_hook(home, id, transcript, false)
    }

    /// `wrapped`: the hook runs under a shell of its own that does not
    /// `exec` it and exits right after it, as `sh -c 'cmd; true'` does.
    fn start_hook(home: &Home, id: &str, transcript: &Path, wrapped: bool) -> Agent {
        let input = home.input_file(
            &format!("start-{id}.json"),
            &hook_input("SessionStart", id, transcript),
        );
        let log = home.path().join(format!("hook-{id}.err"));
        let hook = format!(
            "'{}' hook < '{}' 2>> '{}'",
            confab_host_path().display(),
            input.display(),
            log.display()
        );
        let hook = if wrapped {
            format!("sh -c \"{hook}; true\"")
        } else {
            hook
        };
        let script = format!("{hook}; echo started; exec sleep 600");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).stdout(Stdio::piped());
        home.env(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        // The hook has returned once the shell says so.
        let mut line = [0u8; 8];
        child.stdout.take().unwrap().read_exact(&mut line).unwrap();
        Agent {
            child,
            started: std::time::Instant::now(),
        }
    }

    /// Kill the agent, once the daemon can no longer take its exit for a
    /// wrapper shell's.
    fn kill_after_grace(&mut self) {
        if let Some(left) = WRAPPER_GRACE.checked_sub(self.started.elapsed()) {
            std::thread::sleep(left);
        }
        self.kill();
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether the backend holds exactly the complete lines of every file of
/// the session (transcript and subagents), byte for byte.
fn stored(backend: &Backend, id: &str, transcript: &Path) -> bool {
    session_files(transcript).iter().all(|file| {
        let name = file.file_name().unwrap().to_string_lossy();
        let source = std::fs::read(file).unwrap();
        let complete = match source.iter().rposition(|&b| b == b'\n') {
            Some(i) => &source[..=i],
            None => &source[..0],
        };
        backend.file(id, &name).unwrap_or_default() == complete
    })
}

fn wait_stored(backend: &Backend, home: &Home, id: &str, transcript: &Path) {
    assert!(
        eventually(LIMIT, || stored(backend, id, transcript)),
        "session {id} not stored byte for byte in time; daemon log:\n{}",
        home.log()
    );
}

/// Lines of the fixture, as new lines the agent writes.
fn new_lines(count: usize) -> Vec<u8> {
    let source = std::fs::read(fixtures().join("short.jsonl")).unwrap();
    let mut out = Vec::new();
    for line in source.split_inclusive(|&b| b == b'\n').cycle().take(count) {
        out.extend_from_slice(line);
    }
    out
}

fn events(backend: &Backend, id: &str) -> Vec<Value> {
    backend.session(id).map(|s| s.events).unwrap_or_default()
}

/// Sum of the lines of every accepted chunk of a session's file: equal to
/// its line count when nothing was sent twice.
fn accepted_lines(backend: &Backend, file: &str) -> usize {
    backend
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/sync/chunk" && r.status == 200)
        .filter_map(|r| r.chunk.as_ref())
        .filter(|c| c.file_name == file)
        .map(|c| c.line_count)
        .sum()
}

fn line_count(path: &Path) -> usize {
    std::fs::read(path)
        .unwrap()
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

#[test]
fn two_live_sessions_sync_while_their_agents_work_then_end() {
    let backend = backend();
    let home = Home::new(&backend.url());
    let a = home.session("proj-a", SESSION_A);
    let b = home.session("proj-b", SESSION_B);

    // Both agents start at once: their SessionStart hooks race.
    let (agent_a, mut agent_b) = std::thread::scope(|s| {
        let first = s.spawn(|| Agent::start(&home, SESSION_A, &a));
        let second = s.spawn(|| Agent::start(&home, SESSION_B, &b));
        (first.join().unwrap(), second.join().unwrap())
    });
    assert!(home.daemon_running(), "log:\n{}", home.log());
    wait_stored(&backend, &home, SESSION_A, &a);
    wait_stored(&backend, &home, SESSION_B, &b);
    assert_eq!(
        home.log().matches("confab-host daemon: started").count(),
        1,
        "two racing SessionStart hooks start one daemon; log:\n{}",
        home.log()
    );
    let status = home.session_status(SESSION_A).expect("A in the status");
    assert_eq!(
        status["agent_pid"],
        agent_a.pid(),
        "the hook's parent is the agent"
    );

    // The agents go on writing; a half-written last line waits for its end.
    append(&a, &new_lines(5));
    append(&a, b"{\"type\":\"user\",\"half\":");
    append(&b, &new_lines(3));
    wait_stored(&backend, &home, SESSION_A, &a);
    wait_stored(&backend, &home, SESSION_B, &b);
    append(&a, b"true}\n");
    wait_stored(&backend, &home, SESSION_A, &a);

    // SessionEnd for A: the daemon does the final sync and sends session_end.
    append(&a, &new_lines(2));
    let end = hook_input("SessionEnd", SESSION_A, &a);
    let out = home.hook(&end);
    assert!(out.status.success() && out.stdout.is_empty());
    assert!(
        eventually(LIMIT, || events(&backend, SESSION_A).len() == 1
            && !home.registered().iter().any(|n| n.starts_with(SESSION_A))),
        "no session_end for A; log:\n{}",
        home.log()
    );
    assert!(
        stored(&backend, SESSION_A, &a),
        "the final sync took every line"
    );
    let event = &events(&backend, SESSION_A)[0];
    assert_eq!(event["event_type"], "session_end");
    assert_eq!(event["payload"], end, "the payload is the hook input");
    assert!(home.daemon_running(), "the daemon keeps B");
    assert_eq!(home.registered(), vec![format!("{SESSION_B}.json")]);

    // B's agent dies: the daemon notices, syncs the last lines, ends it.
    append(&b, &new_lines(4));
    agent_b.kill_after_grace();
    assert!(
        eventually(LIMIT, || events(&backend, SESSION_B).len() == 1),
        "no session_end for B; log:\n{}",
        home.log()
    );
    assert!(stored(&backend, SESSION_B, &b));
    assert_eq!(
        events(&backend, SESSION_B)[0]["payload"]["reason"],
        "agent_exited"
    );
    assert!(
        eventually(LIMIT, || home.registered().is_empty()
            && !home.daemon_running()),
        "the daemon exits once it has no session; log:\n{}",
        home.log()
    );
    assert_eq!(events(&backend, SESSION_A).len(), 1, "one session_end each");
    assert_eq!(
        accepted_lines(&backend, &format!("{SESSION_A}.jsonl")),
        line_count(&a),
        "no line sent twice"
    );
    assert!(!home.log().contains(KEY), "the key never reaches the log");
    drop(agent_a);
}

#[test]
fn racing_session_starts_start_one_daemon() {
    let backend = backend();
    let home = Home::new(&backend.url());
    let transcripts: Vec<(String, PathBuf)> = (0..4)
        .map(|i| {
            let id = format!("0000000{i}-race-4798-800f-63464d01a85d");
            let dir = home.path().join("home/.claude/projects/race");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{id}.jsonl"));
            std::fs::write(&path, new_lines(3 + i)).unwrap();
            (id, path)
        })
        .collect();
    let agents: Vec<Agent> = std::thread::scope(|s| {
        let started: Vec<_> = transcripts
            .iter()
            .map(|(id, path)| s.spawn(|| Agent::start(&home, id, path)))
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (id, path) in &transcripts {
        wait_stored(&backend, &home, id, path);
    }
    let log = home.log();
    assert_eq!(
        log.matches("confab-host daemon: started").count(),
        1,
        "log:\n{log}"
    );
    assert_eq!(
        home.status()["daemon"]["sessions"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    for mut agent in agents {
        agent.kill_after_grace();
    }
    assert!(
        eventually(LIMIT, || !home.daemon_running()),
        "log:\n{}",
        home.log()
    );
}

#[test]
fn a_crashed_instance_restarts_its_session_only() {
    let backend = backend();
    let mut home = Home::new(&backend.url());
    home.extra_env = vec![(
        "CONFAB_DAEMON_TEST_TRAP_SESSION".to_string(),
        SESSION_A.to_string(),
    )];
    let a = home.session("proj-a", SESSION_A);
    let b = home.session("proj-b", SESSION_B);
    let _agent_a = Agent::start(&home, SESSION_A, &a);
    let _agent_b = Agent::start(&home, SESSION_B, &b);
    wait_stored(&backend, &home, SESSION_A, &a);
    wait_stored(&backend, &home, SESSION_B, &b);

    // A's next chunk is stored, then its instance traps before it hears so.
    append(&a, &new_lines(6));
    append(&b, &new_lines(2));
    assert!(
        eventually(LIMIT, || home
            .session_status(SESSION_A)
            .is_some_and(|s| s["restarts"] == 1)),
        "A was never restarted; log:\n{}",
        home.log()
    );
    wait_stored(&backend, &home, SESSION_A, &a);
    wait_stored(&backend, &home, SESSION_B, &b);
    let log = home.log();
    assert!(log.contains("wasm trap: interrupt"), "log:\n{log}");
    let b_status = home.session_status(SESSION_B).unwrap();
    assert_eq!(b_status["restarts"], 0, "B went on undisturbed");
    assert_eq!(
        accepted_lines(&backend, &format!("{SESSION_A}.jsonl")),
        line_count(&a),
        "the chunk stored before the crash was not sent again"
    );
    // And A goes on syncing in its fresh instance.
    append(&a, &new_lines(3));
    wait_stored(&backend, &home, SESSION_A, &a);
}

#[test]
fn a_restarted_daemon_picks_its_sessions_up() {
    let backend = backend();
    let home = Home::new(&backend.url());
    let a = home.session("proj-a", SESSION_A);
    let _agent_a = Agent::start(&home, SESSION_A, &a);
    wait_stored(&backend, &home, SESSION_A, &a);

    // The daemon dies hard (kill -9): the registration stays in the state folder.
    let pid = home.status()["daemon"]["pid"].as_u64().unwrap();
    kill_9(pid).unwrap();
    assert!(eventually(LIMIT, || !home.daemon_running()));
    append(&a, &new_lines(4));

    // The next SessionStart (another agent) starts a daemon that takes both.
    let b = home.session("proj-b", SESSION_B);
    let _agent_b = Agent::start(&home, SESSION_B, &b);
    wait_stored(&backend, &home, SESSION_A, &a);
    wait_stored(&backend, &home, SESSION_B, &b);
    let new_pid = home.status()["daemon"]["pid"].as_u64().unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(
        accepted_lines(&backend, &format!("{SESSION_A}.jsonl")),
        line_count(&a),
        "the restart resumed where the server was, nothing sent twice"
    );

    // `daemon stop` stops it cleanly; `confab-host daemon` by hand resumes.
    let out = home.command().args(["daemon", "stop"]).output().unwrap();
    assert!(out.status.success());
    assert!(!home.daemon_running());
    assert_eq!(home.registered().len(), 2, "stop keeps the sessions");
    append(&b, &new_lines(2));
    let mut by_hand = home.command();
    by_hand
        .arg("daemon")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut foreground = by_hand.spawn().unwrap();
    wait_stored(&backend, &home, SESSION_B, &b);
    let _ = foreground.kill();
    let _ = foreground.wait();
}

/// A TCP relay to the backend that can be taken down (every connection is
/// then dropped at once) and brought back.
struct Relay {
    port: u16,
    down: Arc<AtomicBool>,
}

impl Relay {
    fn start(to: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let is_down = down.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if is_down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                };
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Relay { port, down }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

#[test]
fn lines_written_during_a_backend_outage_land_when_it_is_back() {
    let backend = backend();
    let relay = Relay::start(backend.port());
    let home = Home::new(&relay.url());
    let a = home.session("proj-a", SESSION_A);
    let _agent = Agent::start(&home, SESSION_A, &a);
    wait_stored(&backend, &home, SESSION_A, &a);

    relay.down.store(true, Ordering::SeqCst);
    append(&a, &new_lines(5));
    assert!(
        eventually(LIMIT, || home
            .session_status(SESSION_A)
            .is_some_and(|s| s["last_error"].is_string())),
        "the outage shows as the last error; log:\n{}",
        home.log()
    );
    assert!(!stored(&backend, SESSION_A, &a));
    let status = home.session_status(SESSION_A).unwrap();
    assert!(!status.to_string().contains(KEY));

    relay.down.store(false, Ordering::SeqCst);
    wait_stored(&backend, &home, SESSION_A, &a);
    assert!(
        eventually(LIMIT, || home
            .session_status(SESSION_A)
            .is_some_and(|s| s["last_error"].is_null())),
        "a sync after the outage clears the error"
    );
    assert_eq!(
        accepted_lines(&backend, &format!("{SESSION_A}.jsonl")),
        line_count(&a)
    );
}

#[test]
fn a_session_end_no_daemon_holds_is_synced_once_as_before() {
    let backend = backend();
    let home = Home::new(&backend.url());
    let a = home.session("proj-a", SESSION_A);
    let end = hook_input("SessionEnd", SESSION_A, &a);
    let out = home.hook(&end);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stored(&backend, SESSION_A, &a));
    assert_eq!(events(&backend, SESSION_A).len(), 1);
    assert!(!home.daemon_running(), "SessionEnd starts no daemon");
}

#[test]
fn daemon_status_without_a_daemon_says_so() {
    let backend = backend();
    let home = Home::new(&backend.url());
    let out = home.command().args(["daemon", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no confab-host daemon is running"), "{text}");
    let out = home
        .command()
        .args(["daemon", "--interval", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--interval takes a number of seconds") && err.lines().count() == 1);
}

#[test]
fn a_transcript_inside_the_state_folder_is_refused_not_made_writable() {
    let backend = backend();
    let home = Home::new(&backend.url());
    let dir = home.state().join("inside");
    std::fs::create_dir_all(&dir).unwrap();
    let transcript = dir.join(format!("{SESSION_A}.jsonl"));
    std::fs::copy(fixtures().join(format!("{SESSION_A}.jsonl")), &transcript).unwrap();
    let _agent = Agent::start(&home, SESSION_A, &transcript);
    assert!(
        eventually(LIMIT, || home
            .session_status(SESSION_A)
            .is_some_and(|s| s["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("must stay read-only")))),
        "log:\n{}",
        home.log()
    );
    assert!(backend.session(SESSION_A).is_none(), "nothing was sent");
}

#[test]
fn a_hook_run_by_a_shell_that_does_not_exec_it_still_watches_the_agent() {
    let backend = backend();
    let home = Home::new(&backend.url());
    let a = home.session("proj-a", SESSION_A);
    let mut agent = Agent::start_hook(&home, SESSION_A, &a, true);
    wait_stored(&backend, &home, SESSION_A, &a);
    // The wrapper shell exited right after the hook: its parent, the agent,
    // is watched instead (said in the log), and the session lives on.
    assert!(
        eventually(LIMIT, || home
            .session_status(SESSION_A)
            .is_some_and(|s| s["agent_pid"] == agent.pid())),
        "the agent is the wrapper's parent; log:\n{}",
        home.log()
    );
    assert!(
        home.log().contains("its parent is the agent"),
        "{}",
        home.log()
    );
    assert!(events(&backend, SESSION_A).is_empty(), "no session_end");
    assert_eq!(home.registered(), vec![format!("{SESSION_A}.json")]);
    append(&a, &new_lines(2));
    wait_stored(&backend, &home, SESSION_A, &a);

    // The agent itself exits: the session ends.
    agent.kill_after_grace();
    assert!(
        eventually(LIMIT, || events(&backend, SESSION_A).len() == 1),
        "no session_end; log:\n{}",
        home.log()
    );
    assert!(stored(&backend, SESSION_A, &a));
}
