//! The API key never reaches a user's screen, through either host:
//! `confab-host` and the real `wasmtime run`. Each case puts a key as the
//! server mints them (with `-` and `_`) where a message will quote it: in
//! the URL's place, in the transcript's place, or in the body of a server
//! that echoes the `Authorization` header it was sent.

use confab_e2e::hostile;
use confab_e2e::*;
use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// A key of the real alphabet, known to no backend.
const MINTED: &str = "cfb_Zx3-q_Rk9LmN0pQr-StUv_WxYz0123456789Abcd";

/// A server on 127.0.0.1 that answers every request with `status` and a
/// body quoting the request's `Authorization` header, as a careless proxy
/// or a debugging server would.
fn echoing_server(status: u16, json: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                // The whole request, chunked body included: the component
                // streams its bodies without a Content-Length.
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let Some(request) = hostile::read_request(&mut reader) else {
                    return;
                };
                let authorization = request.header("authorization").unwrap_or("");
                let text = format!("request refused; you sent Authorization: {authorization}");
                let body = if json {
                    serde_json::json!({ "error": text }).to_string()
                } else {
                    text
                };
                let answer = format!(
                    "HTTP/1.1 {status} Refused\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    if json { "application/json" } else { "text/plain" },
                    body.len()
                );
                let mut stream = stream;
                let _ = stream.write_all(answer.as_bytes());
            });
        }
    });
    url
}

/// The first 8 characters of `key` found in `printed`.
fn leak(key: &str, printed: &str) -> Option<String> {
    (0..=key.len() - 8)
        .map(|i| key[i..i + 8].to_string())
        .find(|w| printed.contains(w.as_str()))
}

/// One way of running the component's command line.
#[derive(Clone, Copy, Debug)]
enum Host {
    ConfabHost,
    WasmtimeRun,
}

impl Host {
    fn command(self, folder: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
        match self {
            Host::ConfabHost => {
                // A clean environment: no user config, only what the case sets.
                let mut cmd = Command::new(confab_host_path());
                cmd.current_dir(folder)
                    .env_clear()
                    .env("HOME", folder)
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .env("CONFAB_COMPONENT", component_path())
                    .env("XDG_CACHE_HOME", root().join("target/confab-host-cache"))
                    .env("XDG_STATE_HOME", state_home())
                    .envs(env.iter().copied());
                cmd.args(args);
                cmd
            }
            Host::WasmtimeRun => {
                let mut cmd = Command::new(wasmtime_cli());
                cmd.args(["run", "-S", "http", "--dir"]).arg(folder);
                for (k, v) in env {
                    cmd.arg("--env").arg(format!("{k}={v}"));
                }
                cmd.arg(component_path()).args(args);
                cmd
            }
        }
    }

    /// Runs `args`; returns everything printed, after checking the run ended.
    fn printed(self, folder: &Path, env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> String {
        let done = run_bounded(self.command(folder, env, args), stdin, LIMIT);
        assert!(
            done.status.is_some(),
            "{self:?} {args:?} still running: {}",
            done.stderr_text()
        );
        format!("{}{}", done.stdout_text(), done.stderr_text())
    }
}

/// One scratch state home for every confab-host run of this process,
/// outside the transcripts' folders (which must stay read-only).
fn state_home() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .to_path_buf()
}

fn assert_hidden(host: Host, case: &str, printed: &str) {
    assert!(
        !printed.trim().is_empty(),
        "{host:?} {case}: printed nothing"
    );
    if let Some(w) = leak(MINTED, printed) {
        panic!("{host:?} {case}: the key's `{w}` was printed: {printed}");
    }
}

#[test]
fn a_key_where_the_url_or_the_transcript_goes_is_never_printed() {
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let t = transcript.to_str().unwrap();
    let folder = ws.path();
    for host in [Host::ConfabHost, Host::WasmtimeRun] {
        let key_env = [("CONFAB_API_KEY", MINTED)];
        let out = host.printed(
            &folder,
            &key_env,
            &["sync", t, "--backend-url", MINTED],
            b"",
        );
        assert!(out.contains("[API key]"), "{host:?}: {out}");
        assert_hidden(host, "--backend-url KEY", &out);

        let env = [
            ("CONFAB_API_KEY", MINTED),
            ("CONFAB_BACKEND_URL", "https://confab.example.com"),
        ];
        let out = host.printed(&folder, &env, &["sync", MINTED], b"");
        assert_hidden(host, "sync KEY", &out);

        let as_file = format!("{}/{MINTED}.jsonl", folder.display());
        let out = host.printed(&folder, &env, &["sync", &as_file, "--json"], b"");
        assert_hidden(host, "sync KEY.jsonl", &out);

        // Flags swapped: the key given as the URL, the URL as the key.
        let out = host.printed(
            &folder,
            &[],
            &[
                "validate",
                "--api-key",
                "https://confab.example.com",
                "--backend-url",
                MINTED,
            ],
            b"",
        );
        assert_hidden(host, "swapped flags", &out);
    }
}

#[test]
fn a_server_that_echoes_the_authorization_header_never_shows_the_key() {
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let t = transcript.to_str().unwrap();
    let folder = ws.path();
    // Statuses that are not retried: sync meets each once.
    for (status, json) in [(400, true), (404, true), (409, false), (413, false)] {
        let url = echoing_server(status, json);
        let env = [
            ("CONFAB_API_KEY", MINTED),
            ("CONFAB_BACKEND_URL", url.as_str()),
        ];
        for host in [Host::ConfabHost, Host::WasmtimeRun] {
            let out = host.printed(&folder, &env, &["sync", t], b"");
            assert!(
                out.contains("Authorization: Bearer [API key]"),
                "{host:?} {status}: {out}"
            );
            assert_hidden(host, &format!("sync, echo {status}"), &out);
            let out = host.printed(&folder, &env, &["sync", t, "--json"], b"");
            assert_hidden(host, &format!("sync --json, echo {status}"), &out);
        }
    }
    // 5xx are retried: through the hook, whose retries fit its deadline.
    let hook = format!(
        r#"{{"session_id":"s1","transcript_path":"{t}","cwd":"/","hook_event_name":"SessionEnd"}}"#
    );
    for status in [500, 503] {
        let url = echoing_server(status, false);
        let env = [
            ("CONFAB_API_KEY", MINTED),
            ("CONFAB_BACKEND_URL", url.as_str()),
        ];
        for host in [Host::ConfabHost, Host::WasmtimeRun] {
            let out = host.printed(&folder, &env, &["hook"], hook.as_bytes());
            assert!(out.contains("[API key]"), "{host:?} {status}: {out}");
            assert_hidden(host, &format!("hook, echo {status}"), &out);
        }
    }
}

#[test]
fn a_key_with_dashes_and_underscores_syncs_through_both_hosts() {
    let backend = backend();
    assert!(KEY.contains('-') && KEY.contains('_'), "{KEY}");
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "dash-underscore.jsonl");
    let t = transcript.to_str().unwrap();
    let url = backend.url();
    let env = [
        ("CONFAB_API_KEY", KEY),
        ("CONFAB_BACKEND_URL", url.as_str()),
    ];
    for host in [Host::ConfabHost, Host::WasmtimeRun] {
        let done = run_bounded(host.command(&ws.path(), &env, &["sync", t]), b"", LIMIT);
        assert_eq!(done.code(), Some(0), "{host:?}: {}", done.stderr_text());
        assert_stored(&backend, "dash-underscore", &transcript);
    }
}
