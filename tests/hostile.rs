//! Hostile servers (issue 13): a small HTTP server started by each test on
//! 127.0.0.1 answers what no real backend would, and the command must
//! return, with one clear line: an oversized body, an error page quoting the
//! request, one byte every two seconds, an init answer naming 200,000 files.
//! Every case runs through `confab-host` and through `wasmtime run`. The
//! tests assert what each command returned and said, never how long it took:
//! a deadline shows in the command's own answer ("gave up after 5 s").

use confab_e2e::hostile::{chunk_answer, init_answer, respond, HostileServer, Request};
use confab_e2e::*;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A command still running after this is killed, and the test fails.
const LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy)]
enum Runner {
    ConfabHost,
    WasmtimeRun,
}

const RUNNERS: [Runner; 2] = [Runner::ConfabHost, Runner::WasmtimeRun];

/// Where a runner keeps its checkpoint, inside the workspace.
fn state_dir(ws: &Workspace) -> std::path::PathBuf {
    let dir = ws.path().join(".state/confab-sync");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Runner {
    /// Run `args` against `url` with the folder `ws` granted.
    fn run(self, ws: &Workspace, url: &str, args: &[&str], stdin: &[u8]) -> Finished {
        self.run_with(ws, url, args, stdin, false)
    }

    /// The same; `checkpoint`: with a state folder (confab-host has one by
    /// default; without, it is pointed at a folder it cannot create).
    fn run_with(
        self,
        ws: &Workspace,
        url: &str,
        args: &[&str],
        stdin: &[u8],
        checkpoint: bool,
    ) -> Finished {
        let cmd = match self {
            Runner::ConfabHost => {
                let mut cmd = Command::new(confab_host_path());
                cmd.env_clear()
                    .env("HOME", ws.path())
                    .env("CONFAB_COMPONENT", component_path())
                    .env("XDG_CACHE_HOME", root().join("target/confab-host-cache"))
                    .env("CONFAB_BACKEND_URL", url)
                    .env("CONFAB_API_KEY", KEY)
                    .args(args);
                if checkpoint {
                    cmd.env("CONFAB_STATE_DIR", state_dir(ws));
                } else {
                    cmd.env("CONFAB_STATE_DIR", "/proc/no-state-here");
                }
                cmd
            }
            Runner::WasmtimeRun => {
                let mut cmd = Command::new(wasmtime_cli());
                cmd.args(["run", "-S", "http", "--dir"])
                    .arg(ws.path())
                    .arg("--env")
                    .arg(format!("CONFAB_BACKEND_URL={url}"))
                    .arg("--env")
                    .arg(format!("CONFAB_API_KEY={KEY}"));
                if checkpoint {
                    let state = state_dir(ws);
                    cmd.arg("--dir")
                        .arg(&state)
                        .arg("--env")
                        .arg(format!("CONFAB_STATE_DIR={}", state.display()));
                }
                cmd.arg(component_path()).args(args);
                cmd
            }
        };
        let done = run_bounded(cmd, stdin, LIMIT);
        assert!(
            done.status.is_some(),
            "{self:?} {args:?} was still running after {LIMIT:?}: {}",
            done.stderr_text()
        );
        done
    }

    /// The exit status of a sync error: confab-host says 1; under `wasmtime
    /// run`, WASI 0.2 says only "failure", which the CLI makes 1.
    fn sync_error(self) -> Option<i32> {
        Some(1)
    }
}

fn one_line(text: &str) -> bool {
    let t = text.trim_end();
    !t.is_empty() && t.lines().count() == 1
}

fn transcript(ws: &Workspace) -> std::path::PathBuf {
    ws.copy_file("short.jsonl", "short.jsonl")
}

fn sync_args(transcript: &Path) -> Vec<&str> {
    vec!["sync", transcript.to_str().unwrap()]
}

fn no_key_in(text: &str) {
    for w in KEY.as_bytes().windows(8) {
        let w = std::str::from_utf8(w).unwrap();
        assert!(!text.contains(w), "a piece of the key ({w}) in: {text}");
    }
}

/// 200 with a body far over 32 MiB: streamed without a length, or declared
/// as 600 MiB. Either is cut off at the cap with one `http` line; the
/// component never runs out of memory.
#[test]
fn an_oversized_answer_is_cut_off_with_one_line() {
    for declared in [false, true] {
        let server = HostileServer::start(move |_req: &Request, conn: &mut TcpStream| {
            let head = if declared {
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 629145600\r\n\r\n"
            } else {
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            };
            conn.write_all(head.as_bytes())?;
            let block = vec![b' '; 1 << 20];
            // 48 MiB at most, whatever the client does; it stops reading at 32.
            for _ in 0..48 {
                if !declared {
                    write!(conn, "{:x}\r\n", block.len())?;
                }
                conn.write_all(&block)?;
                if !declared {
                    conn.write_all(b"\r\n")?;
                }
            }
            Err(std::io::ErrorKind::Other.into())
        });
        for runner in RUNNERS {
            let ws = Workspace::new();
            let t = transcript(&ws);
            let done = runner.run(&ws, &server.url(), &sync_args(&t), b"");
            let err = done.stderr_text();
            assert_eq!(done.code(), runner.sync_error(), "{runner:?}: {err}");
            assert!(one_line(&err), "{runner:?}: {err}");
            assert!(err.contains("larger than 32 MiB"), "{runner:?}: {err}");
        }
    }
    println!("| oversized answer | 200 with a 48 MiB chunked body; 200 declaring 600 MiB | 0 | one `http` line (\"larger than 32 MiB: cut off\"), exit 1, no trap |");
}

/// A 400 whose body quotes every request header (the key included) and
/// then 100 KB more: at most 256 bytes of it are shown, on one line, and no
/// piece of the key.
#[test]
fn an_error_page_quoting_the_request_is_shown_short_and_without_the_key() {
    let server = HostileServer::start(|req: &Request, conn: &mut TcpStream| {
        let mut body = String::from("Bad request.\r\nYou sent:\r\n");
        for (k, v) in &req.headers {
            body.push_str(&format!("{k}: {v}\r\n"));
        }
        body.push_str(&"x".repeat(100_000));
        respond(conn, 400, body.as_bytes())
    });
    for runner in RUNNERS {
        let ws = Workspace::new();
        let t = transcript(&ws);
        let done = runner.run(&ws, &server.url(), &sync_args(&t), b"");
        let err = done.stderr_text();
        assert_eq!(done.code(), runner.sync_error(), "{runner:?}: {err}");
        assert!(one_line(&err), "{runner:?}: {err}");
        let shown = err
            .split_once("HTTP 400: ")
            .expect("the status")
            .1
            .trim_end();
        assert!(
            shown.len() <= 256,
            "{runner:?}: {} bytes shown",
            shown.len()
        );
        assert!(shown.starts_with("Bad request. You sent:"), "{shown}");
        no_key_in(&err);
    }
    println!("| error page quoting the request | 400 whose body echoes every header, the key included, plus 100 KB | 0 | one line, at most 256 bytes of the body, no piece of the key |");
}

/// Headers at once, then the body one byte every 2 s: every between-bytes
/// timeout holds, only a total deadline ends it.
fn slow_loris() -> HostileServer {
    HostileServer::start(|_req: &Request, conn: &mut TcpStream| {
        conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
        )?;
        for _ in 0..60 {
            conn.write_all(b" ")?;
            conn.flush()?;
            std::thread::sleep(Duration::from_secs(2));
        }
        Err(std::io::ErrorKind::Other.into())
    })
}

#[test]
fn a_slow_loris_server_makes_sync_give_up_at_its_timeout() {
    let server = slow_loris();
    for runner in RUNNERS {
        let ws = Workspace::new();
        let t = transcript(&ws);
        let mut args = sync_args(&t);
        args.extend(["--timeout", "5"]);
        let done = runner.run(&ws, &server.url(), &args, b"");
        let err = done.stderr_text();
        assert_eq!(done.code(), runner.sync_error(), "{runner:?}: {err}");
        assert!(one_line(&err), "{runner:?}: {err}");
        assert!(
            err.contains("did not answer in time") && err.contains("gave up after 5 s"),
            "{runner:?}: {err}"
        );
    }
    println!("| slow-loris on sync | headers at once, then one body byte every 2 s (under every between-bytes timeout) | 0..4 | `sync --timeout 5` gives up with one line (\"gave up after 5 s\"), exit 1 |");
}

#[test]
fn a_slow_loris_server_makes_hook_give_up_within_its_limit() {
    let server = slow_loris();
    for runner in RUNNERS {
        let ws = Workspace::new();
        let t = transcript(&ws);
        let input = serde_json::json!({
            "session_id": "short", "transcript_path": t, "cwd": "/home/u/repo",
            "hook_event_name": "SessionEnd",
        })
        .to_string();
        let done = runner.run(&ws, &server.url(), &["hook"], input.as_bytes());
        let err = done.stderr_text();
        assert_eq!(
            done.code(),
            Some(0),
            "{runner:?}: a hook never fails: {err}"
        );
        assert!(one_line(&err), "{runner:?}: {err}");
        assert!(
            err.contains("gave up after 9 s") && err.contains("not synced"),
            "{runner:?}: {err}"
        );
    }
    println!("| slow-loris on hook | the same server, `hook` with its default limit | 0..4 | gives up with one line (\"gave up after 9 s\"), exit 0 |");
}

/// An init answer naming 200,000 files this session does not have, one of
/// them 100 KB long: the transcript still syncs, the bookkeeping stays
/// linear (the command returns), and stderr stays a few short lines.
#[test]
fn an_init_answer_naming_200000_files_stays_short() {
    let mut files = serde_json::Map::new();
    for n in 0..200_000 {
        files.insert(
            format!("agent-n{n:06}.jsonl"),
            serde_json::json!({"last_synced_line": 3}),
        );
    }
    files.insert(
        format!("agent-{}.jsonl", "a".repeat(100_000)),
        serde_json::json!({"last_synced_line": 1}),
    );
    let init = init_answer(&serde_json::Value::Object(files));
    let server =
        HostileServer::start(
            move |req: &Request, conn: &mut TcpStream| match req.path.as_str() {
                "/api/v1/sync/init" => respond(conn, 200, &init),
                "/api/v1/sync/chunk" => respond(conn, 200, &chunk_answer(req)),
                _ => respond(conn, 200, b"{\"success\":true}"),
            },
        );
    for runner in RUNNERS {
        let ws = Workspace::new();
        // One small line: its chunk is plain JSON, which the script can count.
        let t = ws.write("tiny.jsonl", b"{\"type\":\"user\",\"n\":1}\n");
        let before = server.requests().len();
        let done = runner.run(&ws, &server.url(), &sync_args(&t), b"");
        let err = done.stderr_text();
        let chunks: Vec<_> = server.requests()[before..]
            .iter()
            .filter(|r| r.path == "/api/v1/sync/chunk")
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect();
        assert!(
            chunks
                .iter()
                .any(|c| c.contains("\"file_name\":\"tiny.jsonl\"")),
            "{runner:?}: the transcript went up: {err}"
        );
        assert!(
            err.lines().count() <= 30,
            "{runner:?}: {} lines",
            err.lines().count()
        );
        let longest = err.lines().map(str::len).max().unwrap_or(0);
        assert!(longest <= 400, "{runner:?}: a {longest}-byte line");
        assert!(err.contains("more files"), "{runner:?}: {err}");
    }
    println!("| 200,000 names | an init answer naming 200,001 files the session lacks, one name 100 KB long | 0 | the transcript syncs; a few short lines on stderr |");
}

// ---------------------------------------------------------------------------
// Odd files on disk, against the project's local backend.

fn numbered(range: std::ops::RangeInclusive<u32>, tag: &str) -> Vec<u8> {
    range
        .map(|n| format!("{{\"type\":\"user\",\"{tag}\":{n}}}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Cut to 5 lines and grown again with 10 others, between two runs (two
/// processes): with a checkpoint, its mark proves it, and every later run
/// refuses the file with `invalid-input` naming it; the backend keeps
/// exactly what it had.
#[test]
fn a_file_cut_and_regrown_between_runs_is_refused_with_a_checkpoint() {
    for runner in RUNNERS {
        let backend = backend();
        let ws = Workspace::new();
        let t = ws.write("regrown.jsonl", &numbered(1..=10, "old"));
        let first = runner.run_with(&ws, &backend.url(), &sync_args(&t), b"", true);
        assert_eq!(first.code(), Some(0), "{runner:?}: {}", first.stderr_text());
        let stored = backend.file("regrown", "regrown.jsonl").unwrap();
        let mut regrown = numbered(1..=5, "old");
        regrown.extend(numbered(1..=10, "new"));
        std::fs::write(&t, &regrown).unwrap();
        for run in 0..2 {
            let done = runner.run_with(&ws, &backend.url(), &sync_args(&t), b"", true);
            let err = done.stderr_text();
            assert_eq!(done.code(), runner.sync_error(), "{runner:?} {run}: {err}");
            assert!(
                err.contains("failed: regrown.jsonl") && err.contains("was rewritten"),
                "{runner:?} {run}: {err}"
            );
            assert_eq!(
                backend.file("regrown", "regrown.jsonl").unwrap(),
                stored,
                "{runner:?}: nothing more went up"
            );
        }
    }
    println!("| cut and regrown between runs, with a checkpoint | a synced 10-line file cut to 5 lines and grown with 10 others; separate processes | 0 | `invalid-input` naming the file, on every later run; nothing more uploaded |");
}

/// Without a checkpoint, what is cheap to compare is the line count: a file
/// shorter than what the backend holds is a warning naming it, not a
/// silent "0 new lines".
#[test]
fn a_file_cut_below_the_server_without_a_checkpoint_is_a_warning() {
    for runner in RUNNERS {
        let backend = backend();
        let ws = Workspace::new();
        let t = ws.write("cut.jsonl", &numbered(1..=10, "old"));
        let first = runner.run_with(&ws, &backend.url(), &sync_args(&t), b"", false);
        assert_eq!(first.code(), Some(0), "{runner:?}: {}", first.stderr_text());
        std::fs::write(&t, numbered(1..=5, "old")).unwrap();
        let done = runner.run_with(&ws, &backend.url(), &sync_args(&t), b"", false);
        let err = done.stderr_text();
        assert_eq!(done.code(), Some(0), "{runner:?}: {err}");
        assert!(
            err.contains("warning:")
                && err.contains("cut.jsonl")
                && err.contains("holds 10 lines, the file only 5"),
            "{runner:?}: {err}"
        );
    }
    println!("| cut below the server, no checkpoint | a synced 10-line file cut to 5 lines | 0 | a warning naming the file (\"the backend holds 10 lines, the file only 5\") |");
}

/// A FIFO, a socket and a folder where subagent files are: each is refused
/// from its stat with one line (a FIFO would block its open for ever), and
/// the transcript and the real subagents still sync.
#[test]
fn a_fifo_a_socket_and_a_folder_as_subagents_are_refused_and_the_rest_syncs() {
    for runner in RUNNERS {
        let backend = backend();
        let ws = Workspace::new();
        let t = ws.copy_session(SESSION_A);
        let real = session_files(&t);
        let sub = t.with_extension("").join("subagents");
        let fifo = sub.join("agent-fifo001.jsonl");
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        let _socket = std::os::unix::net::UnixListener::bind(sub.join("agent-sock001.jsonl"))
            .expect("bind a socket");
        std::fs::create_dir(sub.join("agent-dir0001.jsonl")).unwrap();
        let done = runner.run(&ws, &backend.url(), &sync_args(&t), b"");
        let err = done.stderr_text();
        assert_eq!(done.code(), runner.sync_error(), "{runner:?}: {err}");
        for (name, what) in [
            // wasmtime's stat says "unknown" for both a FIFO and a socket.
            ("agent-fifo001.jsonl", "special file"),
            ("agent-sock001.jsonl", "special file"),
            ("agent-dir0001.jsonl", "a folder"),
        ] {
            let line = err
                .lines()
                .find(|l| l.starts_with("failed:") && l.contains(name))
                .unwrap_or_else(|| panic!("{runner:?}: {name} not reported: {err}"));
            assert!(
                line.contains(what) && line.contains("not a regular file"),
                "{line}"
            );
        }
        for file in &real {
            assert_stored(&backend, SESSION_A, file);
        }
    }
    println!("| FIFO, socket, folder as subagent files | each where a subagent file is expected | 0 | each refused from its stat with one line; the rest complete |");
}

/// A transcript that is a folder or not a `.jsonl` file is a usage error:
/// exit 2 from confab-host (failure under `wasmtime run`), one line, and
/// no "mirrored into" for a mirror that did not happen.
#[test]
fn a_folder_or_a_non_jsonl_transcript_is_a_usage_error() {
    let ws = Workspace::new();
    let folder = ws.path().join("folder.jsonl");
    std::fs::create_dir(&folder).unwrap();
    let text = ws.write("notes.txt", b"{\"a\":1}\n");
    let fifo = ws.path().join("fifo.jsonl");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for path in [&folder, &text, &fifo] {
        let args = ["sync", path.to_str().unwrap()];
        // No backend configured: confab-host would use its embedded one.
        let mut cmd = Command::new(confab_host_path());
        cmd.env_clear()
            .env("HOME", ws.path())
            .env("CONFAB_COMPONENT", component_path())
            .env("XDG_CACHE_HOME", root().join("target/confab-host-cache"))
            .env("CONFAB_STATE_DIR", state_dir(&ws))
            .current_dir(ws.path())
            .args(args)
            .arg("--mirror")
            .arg(ws.path().join("mirror"));
        let host = run_bounded(cmd, b"", LIMIT);
        let err = host.stderr_text();
        assert_eq!(host.code(), Some(2), "{path:?}: {err}");
        assert!(
            one_line(&err) && !err.contains("mirrored"),
            "{path:?}: {err}"
        );
        let wasm = Runner::WasmtimeRun.run(&ws, "http://127.0.0.1:1", &args, b"");
        let err = wasm.stderr_text();
        assert_eq!(wasm.code(), Some(1), "{path:?}: {err}");
        assert!(one_line(&err), "{path:?}: {err}");
    }
    assert!(!ws.path().join("mirror").exists(), "no mirror was made");
}

/// A symlinked transcript: both hosts open it in its own folder, follow a
/// relative link to a file inside that folder, and keep the link's name as
/// the session's external id; one leading out of the folder is refused by
/// both.
#[test]
fn a_symlinked_transcript_keeps_its_name_and_stays_in_its_folder_on_both_hosts() {
    let outside = Workspace::new();
    let far = outside.write("far.jsonl", &numbered(1..=3, "far"));
    for runner in RUNNERS {
        let backend = backend();
        let ws = Workspace::new();
        let target = ws.write("data/target.jsonl", &numbered(1..=4, "t"));
        let link = ws.path().join("link.jsonl");
        assert!(target.exists());
        // Relative: the sandbox resolves it inside the folder (an absolute
        // target counts as leading out, on both hosts).
        std::os::unix::fs::symlink("data/target.jsonl", &link).unwrap();
        let done = runner.run(&ws, &backend.url(), &sync_args(&link), b"");
        assert_eq!(done.code(), Some(0), "{runner:?}: {}", done.stderr_text());
        assert_eq!(
            backend.file("link", "link.jsonl").as_deref(),
            Some(&numbered(1..=4, "t")[..]),
            "{runner:?}: the session is named after the link"
        );
        assert!(backend.session("target").is_none(), "{runner:?}");

        let out = ws.path().join("out.jsonl");
        std::os::unix::fs::symlink(&far, &out).unwrap();
        let done = runner.run(&ws, &backend.url(), &sync_args(&out), b"");
        let err = done.stderr_text();
        assert_eq!(done.code(), runner.sync_error(), "{runner:?}: {err}");
        assert!(one_line(&err), "{runner:?}: {err}");
        assert!(backend.session("out").is_none() && backend.session("far").is_none());
    }
    println!("| symlinked transcript | a link to a file in its folder; a link out of it | 0 | both hosts: followed inside the folder, session named after the link; refused when it leads out |");
}

/// Every subcommand of confab-host answers --help, `backend` included; and
/// with RUST_BACKTRACE set, an error is still one line.
#[test]
fn confab_host_answers_help_everywhere_and_never_prints_a_backtrace() {
    for args in [
        &["--help"][..],
        &["sync", "--help"],
        &["hook", "--help"],
        &["watch", "--help"],
        &["validate", "--help"],
        &["backend", "--help"],
    ] {
        let mut cmd = Command::new(confab_host_path());
        cmd.args(args);
        let done = run_bounded(cmd, b"", LIMIT);
        assert_eq!(done.code(), Some(0), "{args:?}: {}", done.stderr_text());
        assert!(!done.stdout.is_empty(), "{args:?}");
    }
    let ws = Workspace::new();
    let t = transcript(&ws);
    for component in [ws.path().join("missing.wasm"), t.clone()] {
        let mut cmd = Command::new(confab_host_path());
        cmd.env("RUST_BACKTRACE", "1")
            .env("RUST_LIB_BACKTRACE", "1")
            .env("CONFAB_BACKEND_URL", "http://127.0.0.1:1")
            .env("CONFAB_API_KEY", KEY)
            .env("XDG_CACHE_HOME", ws.path().join("cache"))
            .args(["sync", t.to_str().unwrap(), "--component"])
            .arg(&component);
        let done = run_bounded(cmd, b"", LIMIT);
        let err = done.stderr_text();
        assert_eq!(done.code(), Some(1), "{err}");
        assert!(one_line(&err), "{err}");
        assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    }
}
