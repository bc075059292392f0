//! `confab-host list`, `save <prefix>` and `sync --all` over a folder of
//! many sessions built from the fixtures, on a scratch HOME, against the
//! local backend: every session stored byte for byte.

use confab_e2e::corpus::{self, BuiltSession};
use confab_e2e::home::{text, Home};
use confab_e2e::*;
use confab_host::backend::Backend;
use serde_json::Value;
use std::process::Output;

/// A HOME with `count` sessions in 3 project folders, and a backend.
struct Setup {
    home: Home,
    backend: Backend,
    sessions: Vec<BuiltSession>,
}

impl Setup {
    fn new(count: usize) -> Setup {
        let home = Home::new();
        let sessions = corpus::build(&home.projects(), count, 3);
        // Distinct ages: session i is i minutes old, so newest first is 0, 1, 2, …
        for (i, s) in sessions.iter().enumerate() {
            corpus::set_age(&s.transcript, 60 * i as u64 + 5);
        }
        Setup {
            home,
            backend: backend(),
            sessions,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.home
            .command(args)
            .env("CONFAB_BACKEND_URL", self.backend.url())
            .env("CONFAB_API_KEY", KEY)
            .output()
            .expect("run confab-host")
    }

    fn assert_all_stored(&self) {
        for s in &self.sessions {
            for file in &s.files {
                assert_stored(&self.backend, &s.id, file);
            }
        }
    }
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn list_json(setup: &Setup, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["list", "--json"];
    args.extend(extra);
    let out = setup.run(&args);
    ok(&out);
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("list --json is JSON")
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn list_shows_every_session_newest_first_and_what_the_server_holds() {
    let setup = Setup::new(9);
    let listed = list_json(&setup, &[]);
    let ids: Vec<&str> = listed.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let expected: Vec<&str> = setup.sessions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, expected, "newest first");
    for s in &listed {
        let message = s["first_user_message"].as_str().expect("a first message");
        assert!(!message.is_empty() && !message.contains('\n'), "{message}");
        assert!(s["cwd"].as_str().unwrap().starts_with('/'));
        assert!(s["started"].as_str().unwrap().starts_with("2026-"));
        assert!(s["on_server"].is_null(), "never synced: {s}");
    }
    let first = &setup.sessions[0];
    let size: u64 = first
        .files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(listed[0]["size"], size, "transcript and subagents");

    ok(&setup.run(&["save", &first.id]));
    let lines: u64 = first
        .files
        .iter()
        .map(|f| {
            std::fs::read(f)
                .unwrap()
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64
        })
        .sum();
    let listed = list_json(&setup, &[]);
    assert_eq!(listed[0]["on_server"]["lines"], lines);
    assert!(listed[1]["on_server"].is_null());

    // The table: a header, one row per session, the id's short form first.
    let table = setup.run(&["list"]);
    ok(&table);
    let table = text(&table.stdout);
    assert!(table.starts_with("ID "), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with(&first.id[..8]))
        .expect("a row");
    assert!(row.contains(&lines.to_string()), "{row}");
    assert_eq!(table.lines().count(), 9 + 2, "{table}");
}

#[test]
fn list_filters_by_age_and_project_and_never_prints_a_key() {
    let setup = Setup::new(6);
    let recent = list_json(&setup, &["--since", "100s"]);
    let ids: Vec<&str> = recent.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [&setup.sessions[0].id, &setup.sessions[1].id]);

    let project = setup.home.projects().join("-home-u-project-1");
    let of_project = list_json(&setup, &["--project", project.to_str().unwrap()]);
    let ids: Vec<&str> = of_project
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [&setup.sessions[1].id, &setup.sessions[4].id]);

    let leaked = "cfb_Pasted-Key_u8Yt5Rw2Qe7Lk3Mn9Bv4Cx1Za6Sd0fgh";
    let id = corpus::uuid_for(999);
    setup.home.write(
        &format!(".claude/projects/-home-u-project-0/{id}.jsonl"),
        format!("{{\"type\":\"user\",\"cwd\":\"/r\",\"message\":{{\"role\":\"user\",\"content\":\"use {leaked} please\"}}}}\n").as_bytes(),
    );
    for args in [&["list"][..], &["list", "--json"]] {
        let out = setup.run(args);
        ok(&out);
        let said = text(&out.stdout);
        assert!(said.contains("use [API key] please"), "{said}");
        assert!(!said.contains("cfb_Pasted"), "{said}");
    }
}

#[test]
fn save_takes_a_unique_prefix_and_names_the_matches_of_an_ambiguous_one() {
    let setup = Setup::new(4);
    // Two sessions whose ids share their first 9 characters.
    let twins = [
        "abcdef012-0000-4000-8000-000000000001",
        "abcdef012-0000-4000-8000-000000000002",
    ];
    for id in twins {
        let from = &setup.sessions[0].transcript;
        let to = setup
            .home
            .projects()
            .join("-home-u-project-2")
            .join(format!("{id}.jsonl"));
        std::fs::copy(from, to).unwrap();
    }
    let out = setup.run(&["save", "abcdef"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(twins[0]) && err.contains(twins[1]), "{err}");
    assert!(setup.backend.requests().is_empty(), "nothing was synced");

    let out = setup.run(&["save", "0000ffff"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr).trim_end().lines().count(), 1);
    assert!(
        text(&out.stderr).contains("0000ffff"),
        "{}",
        text(&out.stderr)
    );

    let target = &setup.sessions[3];
    let out = setup.run(&["save", &target.id[..10], "--json"]);
    ok(&out);
    let report: Value = serde_json::from_slice(&out.stdout).expect("sync's JSON report");
    assert!(report["lines"].as_u64().unwrap() > 0);
    for file in &target.files {
        assert_stored(&setup.backend, &target.id, file);
    }
    ok(&setup.run(&["save", twins[1]]));
    assert_stored(
        &setup.backend,
        twins[1],
        &setup
            .home
            .projects()
            .join("-home-u-project-2")
            .join(format!("{}.jsonl", twins[1])),
    );
    assert!(setup
        .backend
        .file(twins[0], &format!("{}.jsonl", twins[0]))
        .is_none());
}

#[test]
fn sync_all_stores_every_session_and_a_rerun_uploads_nothing() {
    let setup = Setup::new(30);
    let out = setup.run(&["sync", "--all"]);
    ok(&out);
    setup.assert_all_stored();
    let summary = text(&out.stdout);
    assert!(
        summary.contains(
            "30 sessions: 30 with new lines, 0 up to date (0 per the checkpoint alone), 0 failed"
        ),
        "{summary}"
    );
    assert!(
        text(&out.stderr).trim().is_empty(),
        "no progress off a terminal: {}",
        text(&out.stderr)
    );

    // Nothing new: every session skipped per its checkpoint, the server not asked.
    let requests_before = setup.backend.requests().len();
    let again = setup.run(&["sync", "--all", "--json"]);
    ok(&again);
    let report: Value = serde_json::from_slice(&again.stdout).expect("JSON summary");
    assert_eq!(report["synced"], 30);
    assert_eq!(report["skipped"], 30);
    assert_eq!(report["failed"], 0);
    assert_eq!(report["lines"], 0);
    assert_eq!(
        setup.backend.requests().len(),
        requests_before,
        "no request at all"
    );

    // --recheck asks the server about each, and sends nothing twice.
    let chunks_before = chunks(&setup.backend.requests()).len();
    let rechecked = setup.run(&["sync", "--all", "--json", "--recheck"]);
    ok(&rechecked);
    let report: Value = serde_json::from_slice(&rechecked.stdout).unwrap();
    assert_eq!(
        (report["skipped"].as_u64(), report["lines"].as_u64()),
        (Some(0), Some(0))
    );
    let inits = setup.backend.requests()[requests_before..]
        .iter()
        .filter(|r| r.path == "/api/v1/sync/init")
        .count();
    assert_eq!(inits, 30);
    assert_eq!(
        chunks(&setup.backend.requests()).len(),
        chunks_before,
        "nothing sent twice"
    );
    setup.assert_all_stored();
}

#[test]
fn a_session_moved_on_by_another_sync_is_not_skipped() {
    let setup = Setup::new(5);
    ok(&setup.run(&["sync", "--all"]));
    // The same session grows and goes to another backend with a plain
    // sync: its checkpoint moves to where that backend is.
    let other = backend();
    let moved = &setup.sessions[1];
    append(
        &moved.transcript,
        &std::fs::read(fixtures().join("short.jsonl")).unwrap(),
    );
    let out = setup
        .home
        .command(&["sync", moved.transcript.to_str().unwrap()])
        .env("CONFAB_BACKEND_URL", other.url())
        .env("CONFAB_API_KEY", KEY)
        .output()
        .unwrap();
    ok(&out);
    assert_stored(&other, &moved.id, &moved.transcript);
    // The first backend still lacks the new lines: sync --all must not
    // take the checkpoint's word for it.
    let out = setup.run(&["sync", "--all", "--json"]);
    ok(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["skipped"], 4, "{report}");
    setup.assert_all_stored();
}

#[test]
fn sync_all_passes_sync_flags_on_with_their_values_in_either_form() {
    let setup = Setup::new(3);
    let url = setup.backend.url();
    let out = setup.run(&[
        "sync",
        "--all",
        "--backend-url",
        &url,
        "--hostname",
        "box-7",
        "--username=ann",
    ]);
    ok(&out);
    setup.assert_all_stored();
}

#[test]
fn a_session_that_fails_does_not_stop_the_others_and_the_exit_status_says_so() {
    let setup = Setup::new(8);
    ok(&setup.run(&["sync", "--all", "--jobs", "3"]));
    // One transcript rewritten below what was synced: refused as invalid
    // input. Every other one grew.
    let broken = &setup.sessions[2];
    // (Within the last 4 KiB synced: the checkpoint's window.)
    let mut bytes = std::fs::read(&broken.transcript).unwrap();
    let at = bytes.len() - 10;
    bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
    std::fs::write(&broken.transcript, &bytes).unwrap();
    let extra = std::fs::read(fixtures().join("short.jsonl")).unwrap();
    for s in setup.sessions.iter().filter(|s| s.id != broken.id) {
        append(&s.transcript, &extra);
    }
    let out = setup.run(&["sync", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let summary = text(&out.stdout);
    let row = summary
        .lines()
        .find(|l| l.starts_with(&broken.id))
        .expect("the failed row");
    assert!(row.contains("failed"), "{row}");
    assert!(
        summary.contains(
            "8 sessions: 7 with new lines, 0 up to date (0 per the checkpoint alone), 1 failed"
        ),
        "{summary}"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains(&broken.id) && err.lines().count() == 1,
        "{err}"
    );
    for s in setup.sessions.iter().filter(|s| s.id != broken.id) {
        for file in &s.files {
            assert_stored(&setup.backend, &s.id, file);
        }
    }
}

#[test]
fn sync_all_takes_the_project_and_age_filters_and_refuses_a_transcript() {
    let setup = Setup::new(6);
    let project = setup.home.projects().join("-home-u-project-0");
    let out = setup.run(&[
        "sync",
        "--all",
        "--project",
        project.to_str().unwrap(),
        "--since",
        "1h",
    ]);
    ok(&out);
    assert!(
        text(&out.stdout).contains("2 sessions:"),
        "{}",
        text(&out.stdout)
    );
    for (i, s) in setup.sessions.iter().enumerate() {
        let stored = setup
            .backend
            .file(&s.id, &format!("{}.jsonl", s.id))
            .is_some();
        assert_eq!(stored, i % 3 == 0, "session {i}");
    }
    for args in [
        &["sync", "--all", "/x/y.jsonl"][..],
        &["sync", "--all", "--since", "soon"],
        &["sync", "--all", "--external-id", "x"],
        &["sync", "--all", "--frob"],
        &["sync", "--all", "--jobs", "0"],
    ] {
        let out = setup.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            text(&out.stderr).trim_end().lines().count(),
            1,
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn on_a_terminal_sync_all_draws_a_progress_bar() {
    let setup = Setup::new(12);
    // `script` gives the command a pseudo-terminal and copies what it
    // printed there to its own stdout.
    let host = confab_host_path();
    let inner = format!("{} sync --all --jobs 1", host.display());
    let mut script = std::process::Command::new("script");
    script
        .args(["-q", "-e", "-c", &inner, "/dev/null"])
        .current_dir(setup.home.path())
        .env_clear()
        .env("HOME", setup.home.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONFAB_COMPONENT", component_path())
        .env("CONFAB_BACKEND_URL", setup.backend.url())
        .env("CONFAB_API_KEY", KEY)
        .env("COLUMNS", "160")
        .env("TERM", "xterm");
    let finished = run_bounded(script, b"", std::time::Duration::from_secs(300));
    assert_eq!(finished.code(), Some(0), "{}", finished.stdout_text());
    let screen = finished.stdout_text();
    assert!(screen.contains("/12 sessions"), "{screen:?}");
    assert!(
        screen.contains("MiB") && screen.contains("left"),
        "{screen:?}"
    );
    assert!(
        screen.contains("12 sessions: 12 with new lines"),
        "{screen:?}"
    );
    setup.assert_all_stored();
}
