//! The command line on an in-memory platform: files, backend and clock of
//! [`crate::core::testing`], captured stdout and stderr. The property test
//! here drives every error path the command line can reach with keys as the
//! server mints them, and looks for any 8 characters of the key in what was
//! printed.

use super::commands::{self, Exit, Platform, Timeouts};
use crate::core::testing::{FakeClock, FakeServer, Fault, MemFs};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

const URL: &str = "https://confab.example.com";
const TRANSCRIPT: &str = "/home/u/.claude/projects/p/3f2a9c4e-1b2d-4c5e-8f70-0a1b2c3d4e5f.jsonl";
const LINE: &str = r#"{"type":"user","message":{"role":"user","content":"hello"},"uuid":"u1"}"#;

/// One command's world: what it reads, whom it talks to, what it printed.
struct TestPlatform {
    fs: MemFs,
    server: FakeServer,
    clock: FakeClock,
    env: HashMap<String, String>,
    stdin: Vec<u8>,
    out: Rc<RefCell<String>>,
}

impl TestPlatform {
    fn new(key: &str) -> Self {
        let fs = MemFs::new();
        fs.write(TRANSCRIPT, format!("{LINE}\n"));
        let server = FakeServer::new();
        server.accept_key(key);
        let env = [("CONFAB_BACKEND_URL", URL), ("CONFAB_API_KEY", key)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TestPlatform {
            fs,
            server,
            clock: FakeClock::new(),
            env,
            stdin: Vec::new(),
            out: Rc::default(),
        }
    }

    fn run(&mut self, argv: &[&str]) -> (Exit, String) {
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        let exit = commands::run(self, &argv);
        (exit, self.out.borrow().clone())
    }
}

impl Platform for TestPlatform {
    type Fs = MemFs;
    type Transport = FakeServer;
    type Clock = FakeClock;
    fn fs(&self) -> MemFs {
        self.fs.clone()
    }
    fn transport(&self, _: Timeouts) -> FakeServer {
        self.server.clone()
    }
    fn clock(&self) -> FakeClock {
        self.clock.clone()
    }
    fn set_time_limit(&mut self, _: Duration) {}
    fn env(&self, key: &str) -> Option<String> {
        self.env.get(key).cloned()
    }
    fn read_stdin(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.stdin)
    }
    fn stdout(&self, text: &str) {
        self.out.borrow_mut().push_str(text);
    }
    fn stderr_sink(&self) -> Rc<dyn Fn(&str)> {
        let out = self.out.clone();
        Rc::new(move |text: &str| out.borrow_mut().push_str(text))
    }
    fn stderr_is_terminal(&self) -> bool {
        // Progress lines are drawn too, so they are checked as well.
        true
    }
    fn unix_time(&self) -> u64 {
        1_770_912_145
    }
}

/// The first 8-character window of `key` found in `printed`, if any.
fn leaked<'k>(key: &'k str, printed: &str) -> Option<&'k str> {
    (0..=key.len() - 8)
        .map(|i| &key[i..i + 8])
        .find(|w| printed.contains(w))
}

/// Every way the key can reach a message, one platform each; returns what
/// each printed, labelled.
fn every_error_path(key: &str) -> Vec<(String, String)> {
    let mut printed = Vec::new();
    let mut record = |label: &str, (_, out): (Exit, String)| printed.push((label.to_string(), out));

    // The key where the URL goes, as a flag and from the environment.
    record(
        "url flag",
        TestPlatform::new(key).run(&["sync", "--backend-url", key, TRANSCRIPT]),
    );
    let mut p = TestPlatform::new(key);
    p.env.insert("CONFAB_BACKEND_URL".into(), key.into());
    record("url env", p.run(&["sync", TRANSCRIPT]));
    let mut p = TestPlatform::new(key);
    p.env
        .insert("CONFAB_BACKEND_URL".into(), format!("http://{key}.example"));
    record("url host", p.run(&["validate"]));

    // The key where the transcript goes, bare and as a file name.
    record("path", TestPlatform::new(key).run(&["sync", key]));
    let missing = format!("/tmp/{key}.jsonl");
    record(
        "file",
        TestPlatform::new(key).run(&["sync", &missing, "--json"]),
    );
    record(
        "external id",
        TestPlatform::new(key).run(&["sync", TRANSCRIPT, "--external-id", key]),
    );

    // Usage errors around a key given on the command line.
    let mut p = TestPlatform::new(key);
    p.env.remove("CONFAB_API_KEY");
    record("stray", p.run(&["sync", TRANSCRIPT, key, "--api-key", key]));
    let mut p = TestPlatform::new(key);
    p.env.remove("CONFAB_API_KEY");
    p.env.remove("CONFAB_BACKEND_URL");
    record("no url", p.run(&["validate", &format!("--api-key={key}")]));
    record(
        "option",
        TestPlatform::new(key).run(&["sync", &format!("--{key}"), TRANSCRIPT]),
    );

    // The key only in the config file, used as the transcript path.
    let mut p = TestPlatform::new(key);
    p.env.remove("CONFAB_API_KEY");
    p.env.insert("HOME".into(), "/home/u".into());
    p.fs.write(
        "/home/u/.confab/config.json",
        format!(r#"{{"api_key":"{key}","backend_url":"{URL}"}}"#),
    );
    record("config", p.run(&["sync", key]));

    // Servers and proxies that echo the Authorization header.
    for status in [400, 404, 409, 413, 429, 500, 503] {
        let mut p = TestPlatform::new(key);
        for _ in 0..8 {
            p.server.fail_any(Fault::EchoAuthorization(status));
        }
        record(
            &format!("echo {status}"),
            p.run(&["sync", TRANSCRIPT, "--json"]),
        );
        let mut p = TestPlatform::new(key);
        for _ in 0..8 {
            p.server.fail_any(Fault::EchoAuthorization(status));
        }
        record(&format!("validate {status}"), p.run(&["validate"]));
    }
    // An echo on the chunk only: the failure is in the report, per file.
    for json in [true, false] {
        let mut p = TestPlatform::new(key);
        for _ in 0..8 {
            p.server
                .fail_next("/api/v1/sync/chunk", Fault::EchoAuthorization(500));
        }
        let argv: &[&str] = if json {
            &["sync", TRANSCRIPT, "--json"]
        } else {
            &["sync", TRANSCRIPT]
        };
        record("chunk echo", p.run(argv));
    }

    // A hook whose input names the key as the transcript, and one whose
    // session_end is refused by an echoing server.
    let mut p = TestPlatform::new(key);
    p.stdin = format!(
        r#"{{"session_id":"{key}","transcript_path":"{key}","hook_event_name":"SessionEnd"}}"#
    )
    .into_bytes();
    record("hook path", p.run(&["hook"]));
    let mut p = TestPlatform::new(key);
    p.stdin = format!(
        r#"{{"session_id":"s","transcript_path":"{TRANSCRIPT}","hook_event_name":"SessionEnd"}}"#
    )
    .into_bytes();
    for _ in 0..8 {
        p.server
            .fail_next("/api/v1/sync/event", Fault::EchoAuthorization(502));
    }
    record("hook event", p.run(&["hook", "--json"]));
    printed
}

/// A key as the server mints them: `cfb_` + 40 characters of base64url.
fn minted_key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{40}".prop_map(|tail| format!("cfb_{tail}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_eight_characters_of_the_key_are_ever_printed(key in minted_key()) {
        for (label, out) in every_error_path(&key) {
            prop_assert!(leaked(&key, &out).is_none(), "{label}: {out}");
        }
    }
}

#[test]
fn the_error_paths_are_reached() {
    // The property above is only as good as the paths it drives: each must
    // print something, and the echoing server must have been met.
    let key = "cfb_Zx3-q_Rk9LmN0pQr-StUv_WxYz0123456789Abcd";
    let printed = every_error_path(key);
    for (label, out) in &printed {
        assert!(!out.trim().is_empty(), "{label} printed nothing");
    }
    let all: String = printed.iter().map(|(_, o)| o.as_str()).collect();
    assert!(all.contains("Authorization: Bearer [API key]"), "{all}");
    assert!(all.contains("not an http(s) URL"), "{all}");
}

#[test]
fn a_key_with_dashes_and_underscores_syncs() {
    let key = "cfb_Zx3-q_Rk9LmN0pQr-StUv_WxYz0123456789Abcd";
    let mut p = TestPlatform::new(key);
    let (exit, out) = p.run(&["sync", TRANSCRIPT]);
    assert_eq!(exit, Exit::Success, "{out}");
    let id = "3f2a9c4e-1b2d-4c5e-8f70-0a1b2c3d4e5f";
    assert_eq!(p.server.lines(id, &format!("{id}.jsonl")), [LINE]);
}

/// The `metadata` of the first init the platform's server received.
fn init_metadata(p: &TestPlatform) -> serde_json::Value {
    let init = p
        .server
        .requests()
        .into_iter()
        .find(|r| r.path == crate::core::protocol::PATH_INIT)
        .expect("an init");
    serde_json::from_slice::<serde_json::Value>(&init.body).unwrap()["metadata"].clone()
}

#[test]
fn hostname_and_username_come_from_the_environment_and_flags_override_them() {
    let key = "cfb_Zx3-q_Rk9LmN0pQr-StUv_WxYz0123456789Abcd";
    let mut p = TestPlatform::new(key);
    let (exit, out) = p.run(&["sync", TRANSCRIPT]);
    assert_eq!(exit, Exit::Success, "{out}");
    let meta = init_metadata(&p);
    assert!(meta.get("hostname").is_none() && meta.get("username").is_none());

    let mut p = TestPlatform::new(key);
    p.env.insert("HOSTNAME".into(), "devbox".into());
    p.env.insert("USER".into(), "ann".into());
    p.run(&["sync", TRANSCRIPT]);
    let meta = init_metadata(&p);
    assert_eq!(
        (&meta["hostname"], &meta["username"]),
        (&"devbox".into(), &"ann".into())
    );

    let mut p = TestPlatform::new(key);
    p.env.insert("HOSTNAME".into(), "devbox".into());
    p.env.insert("USER".into(), "ann".into());
    p.run(&["sync", TRANSCRIPT, "--hostname", "laptop", "--username=bo"]);
    let meta = init_metadata(&p);
    assert_eq!(
        (&meta["hostname"], &meta["username"]),
        (&"laptop".into(), &"bo".into())
    );
}
