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

impl Runner {
    /// Run `args` against `url` with the folder `ws` granted.
    fn run(self, ws: &Workspace, url: &str, args: &[&str], stdin: &[u8]) -> Finished {
        let cmd = match self {
            Runner::ConfabHost => {
                let mut cmd = Command::new(confab_host_path());
                cmd.env_clear()
                    .env("HOME", ws.path())
                    .env("CONFAB_COMPONENT", component_path())
                    .env("XDG_CACHE_HOME", root().join("target/confab-host-cache"))
                    .env("XDG_STATE_HOME", ws.path().join(".state"))
                    .env("CONFAB_BACKEND_URL", url)
                    .env("CONFAB_API_KEY", KEY)
                    .args(args);
                cmd
            }
            Runner::WasmtimeRun => {
                let mut cmd = Command::new(wasmtime_cli());
                cmd.args(["run", "-S", "http", "--dir"])
                    .arg(ws.path())
                    .arg("--env")
                    .arg(format!("CONFAB_BACKEND_URL={url}"))
                    .arg("--env")
                    .arg(format!("CONFAB_API_KEY={KEY}"))
                    .arg(component_path())
                    .args(args);
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
