//! Codex sessions through the engine, against in-memory rollouts: the
//! descendants of a root found from first lines alone, a subagent's rollout
//! standing for its root's session, and what discovery costs in reads.

use super::*;
use crate::core::config::SessionConfig;
use crate::core::engine::Engine;
use crate::core::testing::{FakeClock, FakeServer, MemFs, TEST_KEY};

const SESSIONS: &str = "/h/.codex/sessions";
const ROOT: &str = "019ce3fb-1087-7980-8f92-8d0171aaea6a";
const KIDS: [&str; 3] = [
    "019ce419-22a5-7321-baa1-5d0152ca561e",
    "019ce419-22de-7f50-80eb-86a44f32465b",
    "019ce419-2314-7450-93de-70915b5c62d2",
];
const GRANDCHILD: &str = "019ce420-0000-7000-8000-000000000001";
const STATE: &str = "/state";

fn rollout_path(day: &str, thread: &str) -> String {
    format!("{SESSIONS}/{day}/rollout-2026-03-12T16-36-47-{thread}.jsonl")
}

fn name_of(thread: &str) -> String {
    format!("rollout-2026-03-12T16-36-47-{thread}.jsonl")
}

fn meta_line(thread: &str, parent: Option<&str>) -> String {
    let source = match parent {
        None => r#""cli""#.to_string(),
        Some(p) => format!(
            r#"{{"subagent":{{"thread_spawn":{{"parent_thread_id":"{p}","depth":1,"agent_nickname":"Kepler","agent_role":"worker"}}}}}}"#
        ),
    };
    format!(
        r#"{{"timestamp":"2026-03-12T21:36:51.608Z","type":"session_meta","payload":{{"id":"{thread}","cwd":"/r/ship","originator":"codex_cli_rs","source":{source},"model_provider":"openai","base_instructions":{{"text":"{}"}}}}}}"#,
        "You are Codex. ".repeat(200)
    )
}

fn user_line(text: &str) -> String {
    format!(
        r#"{{"timestamp":"t","type":"event_msg","payload":{{"type":"user_message","message":"  {text}  ","images":[]}}}}"#
    )
}

fn write_rollout(fs: &MemFs, day: &str, thread: &str, parent: Option<&str>) -> String {
    let path = rollout_path(day, thread);
    let wrapper = r#"{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"<environment_context>x</environment_context>"}]}}"#;
    fs.write(
        &path,
        format!(
            "{}\n{wrapper}\n{}\n{}\n",
            meta_line(thread, parent),
            user_line(&format!("task of {thread}")),
            r#"{"timestamp":"t","type":"event_msg","payload":{"type":"agent_message","message":"ok"}}"#
        ),
    );
    path
}

fn config(path: &str, state_dir: Option<&str>) -> SessionConfig {
    SessionConfig {
        backend_url: "https://confab.example.com".into(),
        api_key: TEST_KEY.into(),
        // The default a host passes: the file's stem.
        external_id: discovery::file_stem(discovery::split_path(path).1).to_string(),
        transcript_path: path.into(),
        cwd: "/r/ship".into(),
        state_dir: state_dir.map(str::to_string),
        ..SessionConfig::default()
    }
}

type TestEngine = Engine<MemFs, FakeServer, FakeClock>;

fn engine(fs: &MemFs, server: &FakeServer, path: &str, state: Option<&str>) -> TestEngine {
    let mut e = Engine::new(
        config(path, state),
        fs.clone(),
        server.clone(),
        FakeClock::new(),
    )
    .expect("config");
    e.init().expect("init");
    e
}

/// The root, its three children (one in the next day's folder) and a
/// grandchild, among rollouts of other sessions.
fn world() -> MemFs {
    let fs = MemFs::new();
    write_rollout(&fs, "2026/03/12", ROOT, None);
    write_rollout(&fs, "2026/03/12", KIDS[0], Some(ROOT));
    write_rollout(&fs, "2026/03/12", KIDS[1], Some(ROOT));
    write_rollout(&fs, "2026/03/13", KIDS[2], Some(ROOT));
    write_rollout(&fs, "2026/03/13", GRANDCHILD, Some(KIDS[2]));
    write_rollout(
        &fs,
        "2026/03/12",
        "019ce327-fd76-76e3-b79a-9d5f69966253",
        None,
    );
    write_rollout(
        &fs,
        "2026/03/12",
        "019ce500-0000-7000-8000-000000000002",
        Some("019ce327-fd76-76e3-b79a-9d5f69966253"),
    );
    fs
}

#[test]
fn a_root_and_every_rollout_it_spawned_transitively_with_no_database() {
    let fs = world();
    let server = FakeServer::new();
    let mut e = engine(&fs, &server, &rollout_path("2026/03/12", ROOT), None);
    assert_eq!(e.external_id(), ROOT);
    let report = e.sync_all().unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let mut expected: Vec<String> = [ROOT, KIDS[0], KIDS[1], KIDS[2], GRANDCHILD]
        .iter()
        .map(|t| name_of(t))
        .collect();
    expected.sort();
    let mut names: Vec<String> = report.files.iter().map(|f| f.name.clone()).collect();
    names.sort();
    assert_eq!(names, expected);
    for f in &report.files {
        let want = if f.name == name_of(ROOT) {
            FileType::Transcript
        } else {
            FileType::Agent
        };
        assert_eq!(f.file_type, want, "{}", f.name);
        assert_eq!(server.lines(ROOT, &f.name).len(), 4, "{}", f.name);
    }
    let init = server
        .requests()
        .into_iter()
        .find(|r| r.path == crate::core::protocol::PATH_INIT)
        .unwrap();
    let body: Value = serde_json::from_slice(&init.body).unwrap();
    assert_eq!(body["provider"], "codex");
    assert_eq!(body["external_id"], ROOT);
    for chunk in server.chunks() {
        let name = chunk.file_name.clone().unwrap();
        let meta = chunk.metadata.clone().unwrap_or(Value::Null);
        let rollout = &meta["codex_rollout"];
        let thread = thread_of_name(&name).unwrap();
        assert_eq!(rollout["thread_uuid"], thread.as_str(), "{name}");
        assert!(rollout["rollout_path"].as_str().unwrap().ends_with(&name));
        if name == name_of(ROOT) {
            assert!(rollout.get("parent_thread_uuid").is_none());
            assert_eq!(rollout["source"], "cli");
            assert_eq!(meta["first_user_message"], format!("task of {ROOT}"));
        } else {
            assert_eq!(rollout["source"], "subagent");
            assert_eq!(rollout["agent_nickname"], "Kepler");
            assert!(meta.get("first_user_message").is_none(), "{name}");
        }
        let parent = if name == name_of(GRANDCHILD) {
            KIDS[2]
        } else {
            ROOT
        };
        if name != name_of(ROOT) {
            assert_eq!(rollout["parent_thread_uuid"], parent, "{name}");
        }
    }
}

#[test]
fn a_subagents_rollout_syncs_its_roots_session() {
    let fs = world();
    let server = FakeServer::new();
    let mut e = engine(&fs, &server, &rollout_path("2026/03/13", GRANDCHILD), None);
    assert_eq!(e.external_id(), ROOT);
    assert_eq!(e.transcript_path(), rollout_path("2026/03/12", ROOT));
    let report = e.sync_all().unwrap();
    assert_eq!(report.files.len(), 5);
    assert_eq!(server.lines(ROOT, &name_of(ROOT)).len(), 4);
}

#[test]
fn a_thread_spawned_between_two_syncs_is_picked_up_by_the_second() {
    let fs = world();
    let server = FakeServer::new();
    let mut e = engine(&fs, &server, &rollout_path("2026/03/12", ROOT), None);
    e.sync_all().unwrap();
    let late = "019ce430-0000-7000-8000-000000000003";
    // Its first line still being written: not known yet, read again later.
    let path = rollout_path("2026/03/14", late);
    fs.write(&path, &meta_line(late, Some(ROOT))[..100]);
    let report = e.sync_all().unwrap();
    assert_eq!(report.lines, 0);
    fs.write(&path, format!("{}\n", meta_line(late, Some(ROOT))));
    let report = e.sync_all().unwrap();
    assert_eq!(report.lines, 1);
    assert_eq!(server.lines(ROOT, &name_of(late)).len(), 1);
}

#[test]
fn ten_thousand_rollouts_a_sync_with_nothing_new_reads_no_first_line_again() {
    let fs = world();
    for i in 0..10_000u32 {
        let thread = format!("01900000-0000-7000-8000-{i:012}");
        let day = format!("2026/{:02}/{:02}", 1 + i % 12, 1 + i % 28);
        fs.write(
            &rollout_path(&day, &thread),
            format!("{}\n", meta_line(&thread, None)),
        );
    }
    let server = FakeServer::new();
    let mut e = engine(&fs, &server, &rollout_path("2026/03/12", ROOT), Some(STATE));
    let first = e.sync_all().unwrap();
    assert_eq!(first.files.len(), 5);
    fs.reset_counters();
    let again = e.sync_all().unwrap();
    assert_eq!((again.lines, fs.bytes_read()), (0, 0), "same process");
    // A new process: the index in the state folder says what each rollout is.
    fs.reset_counters();
    let mut restarted = engine(&fs, &server, &rollout_path("2026/03/12", ROOT), Some(STATE));
    let after_init = fs.bytes_read();
    let report = restarted.sync_all().unwrap();
    assert_eq!(report.lines, 0);
    let restart_read = fs.bytes_read();
    let index_bytes = fs
        .read_small(&format!("{STATE}/{INDEX_FILE_NAME}"), 64 << 20)
        .unwrap()
        .len() as u64;
    // The index, the checkpoint and the 4 KiB windows of the five files,
    // read once: no rollout's first line.
    let first_line = meta_line(ROOT, None).len() as u64;
    assert!(
        restart_read < index_bytes + 5 * 4096 + 64 * 1024,
        "read {restart_read} bytes (index {index_bytes}, init {after_init}); a first line is {first_line}"
    );
    println!(
        "10,000 rollouts: a restarted sync with nothing new read {restart_read} bytes (index {index_bytes})"
    );
    // One new rollout: only its first line is read.
    fs.reset_counters();
    let new = "01900000-0000-7000-8000-999999999999";
    fs.write(
        &rollout_path("2026/12/01", new),
        format!("{}\n", meta_line(new, None)),
    );
    restarted.sync_all().unwrap();
    assert!(
        fs.bytes_read() < 2 * first_line + 64 * 1024,
        "{}",
        fs.bytes_read()
    );
}

#[test]
fn session_meta_fields_and_limits() {
    let line = meta_line(KIDS[0], Some(ROOT));
    let m = parse_session_meta(&line).unwrap();
    assert_eq!(m.thread_uuid, KIDS[0]);
    assert_eq!(m.parent_thread_uuid.as_deref(), Some(ROOT));
    assert_eq!(m.source.as_deref(), Some("subagent"));
    assert_eq!(m.agent_role.as_deref(), Some("worker"));
    let newer = format!(
        r#"{{"type":"session_meta","payload":{{"id":"{}","thread_source":"subagent","parent_thread_id":"{ROOT}","source":"{}"}}}}"#,
        KIDS[1],
        "s".repeat(100)
    );
    let m = parse_session_meta(&newer).unwrap();
    assert_eq!(m.parent_thread_uuid.as_deref(), Some(ROOT));
    assert_eq!(m.source.unwrap().len(), 64);
    assert_eq!(m.thread_source.as_deref(), Some("subagent"));
    let own_parent = format!(
        r#"{{"type":"session_meta","payload":{{"id":"{ROOT}","parent_thread_id":"{ROOT}"}}}}"#
    );
    assert_eq!(
        parse_session_meta(&own_parent).unwrap().parent_thread_uuid,
        None
    );
    assert!(parse_session_meta(&user_line("x")).is_none());
    assert_eq!(
        user_message(&user_line("fix it")).as_deref(),
        Some("fix it")
    );
    assert_eq!(
        sessions_root_of("/h/.codex/sessions/2026/03/12"),
        "/h/.codex/sessions"
    );
    assert_eq!(sessions_root_of("/tmp/x"), "/tmp/x");
    assert!(is_uuid(ROOT) && !is_uuid("019ce3fb-1087-7980-8f92-8d0171aaea6"));
}

#[test]
fn a_descendant_deleted_before_it_went_up_is_no_longer_looked_for() {
    let fs = world();
    let server = FakeServer::new();
    let late = "019ce430-0000-7000-8000-000000000004";
    let path = rollout_path("2026/03/14", late);
    // Known to the index from a scan, then deleted before it was synced.
    fs.write(&path, format!("{}\n", meta_line(late, Some(ROOT))));
    let mut probe = Codex::for_session(
        &fs,
        &mut config(&rollout_path("2026/03/12", ROOT), Some(STATE)),
    );
    probe.scan(&fs);
    assert!(probe.descendants().iter().any(|r| r.contains(late)));
    let mut report = SyncReport::default();
    probe.after_sync(&fs, Some(STATE), &mut report);
    fs.remove(&path);
    // A new process loads the index that still names it.
    let mut e = engine(&fs, &server, &rollout_path("2026/03/12", ROOT), Some(STATE));
    let report = e.sync_all().unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(!report.files.iter().any(|f| f.name.contains(late)));
    let restarted = Codex::for_session(
        &fs,
        &mut config(&rollout_path("2026/03/12", ROOT), Some(STATE)),
    );
    assert!(
        !restarted.index.rollouts.keys().any(|r| r.contains(late)),
        "pruned from the saved index"
    );
}
