//! The engine against in-memory files, a scripted backend and a clock that
//! never sleeps (`super::super::testing`): each test is one scenario of the
//! sync algorithm, named after what it checks.

use super::*;
use crate::core::protocol::{PATH_CHUNK, PATH_INIT};
use crate::core::testing::{FakeClock, FakeServer, Fault, MemFs, Recorded, TEST_KEY};
use std::time::Duration;

const DIR: &str = "/home/u/.claude/projects/-home-u-repo";
const SESSION: &str = "3f2a9c4e-1b2d-4c5e-8f70-0a1b2c3d4e5f";
const MIB: usize = 1 << 20;

type TestEngine = Engine<MemFs, FakeServer, FakeClock>;

fn transcript() -> String {
    format!("{DIR}/{SESSION}.jsonl")
}

fn transcript_name() -> String {
    format!("{SESSION}.jsonl")
}

fn subagents_dir() -> String {
    format!("{DIR}/{SESSION}/subagents")
}

fn config() -> SessionConfig {
    SessionConfig {
        backend_url: "https://confab.example.com".into(),
        api_key: TEST_KEY.into(),
        external_id: SESSION.into(),
        transcript_path: transcript(),
        cwd: "/home/u/repo".into(),
        hostname: Some("devbox".into()),
        username: Some("u".into()),
        redaction: Default::default(),
        state_dir: None,
        provider: None,
    }
}

/// A transcript line as Claude Code writes them.
fn msg(n: usize) -> String {
    format!(
        r#"{{"type":"assistant","uuid":"m-{n}","message":{{"role":"assistant","content":"answer {n}"}}}}"#
    )
}

fn msgs(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(msg).collect()
}

/// Lines as file content: each one ends with its newline.
fn text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// A user line whose tool result names the subagent `id`.
fn agent_ref(id: &str) -> String {
    format!(
        r#"{{"type":"user","message":{{"role":"user","content":"done"}},"toolUseResult":{{"status":"completed","agentId":"{id}"}}}}"#
    )
}

struct World {
    fs: MemFs,
    server: FakeServer,
    clock: FakeClock,
}

impl World {
    fn new() -> Self {
        World {
            fs: MemFs::new(),
            server: FakeServer::new(),
            clock: FakeClock::new(),
        }
    }

    /// A fresh engine instance (a restart): same files, same backend.
    fn engine(&self) -> TestEngine {
        Engine::new(
            config(),
            self.fs.clone(),
            self.server.clone(),
            self.clock.clone(),
        )
        .unwrap_or_else(|e| panic!("config refused: {e}"))
    }

    /// A fresh engine after a successful init.
    fn started(&self) -> TestEngine {
        let mut engine = self.engine();
        engine.init().expect("init");
        engine
    }

    /// What the server holds for a file of this session.
    fn held(&self, file_name: &str) -> Vec<String> {
        self.server.lines(SESSION, file_name)
    }
}

fn sync(engine: &mut TestEngine) -> SyncReport {
    let report = engine.sync_all().expect("sync_all");
    assert!(
        report.failed.is_empty(),
        "unexpected failures: {:?}",
        report.failed
    );
    report
}

/// (first_line, number of lines) of each chunk.
fn spans(chunks: &[Recorded]) -> Vec<(u64, usize)> {
    chunks
        .iter()
        .map(|c| (c.first_line.unwrap_or(0), c.lines))
        .collect()
}

fn lines_synced(engine: &TestEngine, name: &str) -> u64 {
    engine
        .stats()
        .iter()
        .find(|s| s.name == name)
        .map_or(0, |s| s.lines_synced)
}

#[test]
fn a_fifo_a_socket_or_a_folder_as_an_agent_file_is_refused_from_its_stat_and_the_rest_syncs() {
    use crate::core::io::FileKind;
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=2)));
    w.fs.write(
        &format!("{}/agent-good001.jsonl", subagents_dir()),
        text(&msgs(1..=1)),
    );
    for (id, kind) in [
        ("fifo001", FileKind::Fifo),
        ("sock001", FileKind::Socket),
        ("dir0001", FileKind::Directory),
    ] {
        w.fs.make_special(&format!("{}/agent-{id}.jsonl", subagents_dir()), kind);
    }
    let mut engine = w.started();
    // MemFs panics if a special file is opened: refused before any open.
    let report = engine.sync_all().expect("sync_all");
    let mut failed: Vec<(String, String)> = report
        .failed
        .iter()
        .map(|f| (f.name.clone(), f.error.message.clone()))
        .collect();
    failed.sort();
    assert_eq!(failed.len(), 3, "{failed:?}");
    for ((name, message), what) in failed.iter().zip(["a folder", "a FIFO", "a socket"]) {
        assert!(
            message.contains(what) && message.contains("not a regular file"),
            "{name}: {message}"
        );
        assert!(!message.contains('\n'));
    }
    assert_eq!(w.held(&transcript_name()), msgs(1..=2));
    assert_eq!(w.held("agent-good001.jsonl"), msgs(1..=1));
}

#[test]
fn a_partial_last_line_is_not_uploaded_until_its_newline_arrives() {
    let w = World::new();
    let half = r#"{"type":"assistant","uuid":"m-3","message":{"content":"still wri"#;
    w.fs.write(&transcript(), format!("{}{half}", text(&msgs(1..=2))));
    let mut engine = w.started();

    let report = sync(&mut engine);
    assert_eq!(report.lines, 2);
    assert_eq!(w.held(&transcript_name()), msgs(1..=2));

    w.fs.append(&transcript(), "tin");
    assert_eq!(sync(&mut engine).lines, 0, "still no newline");
    assert_eq!(w.server.chunks().len(), 1);

    w.fs.append(&transcript(), "g\"}}\n");
    let report = sync(&mut engine);
    assert_eq!(report.lines, 1);
    assert_eq!(spans(&w.server.chunks()), [(1, 2), (3, 1)]);
    let whole = r#"{"type":"assistant","uuid":"m-3","message":{"content":"still writing"}}"#;
    assert_eq!(w.held(&transcript_name())[2], whole);
}

// ---------------------------------------------------------------------------
// A last line without its newline (Cursor writes none after its last record)
// ---------------------------------------------------------------------------

/// `lines` as file content, the last one without its newline.
fn text_open(lines: &[String]) -> String {
    lines.join("\n")
}

/// How a later sync of the same file is run.
#[derive(Debug, Clone, Copy)]
enum Restart {
    /// The same engine, with its in-memory file state.
    SameSession,
    /// A fresh engine that finds the checkpoint.
    WithCheckpoint,
    /// A fresh engine that only has the server's line counts.
    NoCheckpoint,
}

const RESTARTS: [Restart; 3] = [
    Restart::SameSession,
    Restart::WithCheckpoint,
    Restart::NoCheckpoint,
];

impl Restart {
    fn next(self, w: &World, engine: TestEngine) -> TestEngine {
        match self {
            Restart::SameSession => engine,
            Restart::WithCheckpoint => with_state(w),
            Restart::NoCheckpoint => w.started(),
        }
    }
}

#[test]
fn a_complete_last_line_without_its_newline_is_uploaded() {
    let w = World::new();
    w.fs.write(&transcript(), text_open(&msgs(1..=3)));
    let mut engine = w.started();
    let report = sync(&mut engine);
    assert_eq!(report.lines, 3);
    assert_eq!(w.held(&transcript_name()), msgs(1..=3));
    assert_eq!(lines_synced(&engine, &transcript_name()), 3);
    w.server.clear_requests();
    assert_eq!(sync(&mut engine).lines, 0);
    assert!(w.server.chunks().is_empty(), "nothing sent twice");
}

#[test]
fn an_agent_file_ending_without_its_newline_is_uploaded_too() {
    let w = World::new();
    w.fs.write(&transcript(), text(&[msg(1), agent_ref("a1b2c3d")]));
    let agent = format!("{}/agent-a1b2c3d.jsonl", subagents_dir());
    w.fs.write(&agent, text_open(&msgs(10..=12)));
    sync(&mut w.started());
    assert_eq!(w.held("agent-a1b2c3d.jsonl"), msgs(10..=12));
}

#[test]
fn the_newline_arriving_later_closes_the_line_already_sent() {
    for restart in RESTARTS {
        let w = World::new();
        w.fs.write(&transcript(), text_open(&msgs(1..=3)));
        let mut engine = with_state(&w);
        assert_eq!(sync(&mut engine).lines, 3);
        w.fs.append(&transcript(), "\n");
        let mut engine = restart.next(&w, engine);
        assert_eq!(sync(&mut engine).lines, 0, "{restart:?}: no empty line");
        assert_eq!(spans(&w.server.chunks()), [(1, 3)], "{restart:?}");
        // And the next record after it is line 4, whichever process reads it.
        w.fs.append(&transcript(), text(&msgs(4..=4)));
        let mut engine = restart.next(&w, engine);
        assert_eq!(sync(&mut engine).lines, 1, "{restart:?}");
        assert_eq!(spans(&w.server.chunks()), [(1, 3), (4, 1)], "{restart:?}");
        assert_eq!(w.held(&transcript_name()), msgs(1..=4), "{restart:?}");
    }
}

#[test]
fn the_next_record_after_a_newline_is_stored_after_the_open_line() {
    for restart in RESTARTS {
        let w = World::new();
        w.fs.write(&transcript(), text_open(&msgs(1..=2)));
        let mut engine = with_state(&w);
        sync(&mut engine);
        // Cursor style: the newline comes with the next record, which
        // itself ends the file without one.
        w.fs.append(&transcript(), format!("\n{}", msg(3)));
        let mut engine = restart.next(&w, engine);
        assert_eq!(sync(&mut engine).lines, 1, "{restart:?}");
        w.fs.append(&transcript(), format!("\n{}\n{}\n", msg(4), msg(5)));
        let mut engine = restart.next(&w, engine);
        assert_eq!(sync(&mut engine).lines, 2, "{restart:?}");
        assert_eq!(
            spans(&w.server.chunks()),
            [(1, 2), (3, 1), (4, 2)],
            "{restart:?}"
        );
        assert_eq!(w.held(&transcript_name()), msgs(1..=5), "{restart:?}");
    }
}

#[test]
fn a_record_half_written_after_the_open_line_waits_then_goes_up_once() {
    for restart in RESTARTS {
        let w = World::new();
        w.fs.write(&transcript(), text_open(&msgs(1..=2)));
        let mut engine = with_state(&w);
        sync(&mut engine);
        let third = msg(3);
        let (head, rest) = third.split_at(20);
        w.fs.append(&transcript(), format!("\n{head}"));
        let mut engine = restart.next(&w, engine);
        assert_eq!(sync(&mut engine).lines, 0, "{restart:?}: half a record");
        w.fs.append(&transcript(), rest);
        let mut engine = restart.next(&w, engine);
        assert_eq!(sync(&mut engine).lines, 1, "{restart:?}");
        assert_eq!(w.held(&transcript_name()), msgs(1..=3), "{restart:?}");
        assert_eq!(spans(&w.server.chunks()), [(1, 2), (3, 1)], "{restart:?}");
    }
}

#[test]
fn a_bare_number_tail_is_not_complete_until_its_newline() {
    let w = World::new();
    w.fs.write(&transcript(), format!("{}12", text(&msgs(1..=1))));
    let mut engine = w.started();
    assert_eq!(sync(&mut engine).lines, 1, "`12` may be the start of `123`");
    w.fs.append(&transcript(), "3\n");
    assert_eq!(sync(&mut engine).lines, 1);
    assert_eq!(w.held(&transcript_name()), [msg(1), "123".to_string()]);
}

#[test]
fn bytes_written_onto_a_line_already_sent_are_refused_not_mixed_in() {
    for restart in [Restart::SameSession, Restart::WithCheckpoint] {
        let w = World::new();
        w.fs.write(&transcript(), text_open(&msgs(1..=2)));
        let mut engine = with_state(&w);
        sync(&mut engine);
        w.fs.append(&transcript(), format!("{}\n", msg(3)));
        let mut engine = restart.next(&w, engine);
        let report = engine.sync_all().unwrap();
        assert_eq!(report.failed.len(), 1, "{restart:?}");
        let error = &report.failed[0].error;
        assert_eq!(error.kind, ErrorKind::InvalidInput);
        assert!(
            error.message.contains("line 2") && error.message.contains("without a newline"),
            "{}",
            error.message
        );
        assert!(!error.message.contains('\n'));
        assert_eq!(w.held(&transcript_name()), msgs(1..=2), "{restart:?}");
    }
}

#[test]
fn a_file_rewritten_below_an_open_line_is_refused() {
    for restart in [Restart::SameSession, Restart::WithCheckpoint] {
        let w = World::new();
        w.fs.write(&transcript(), text_open(&msgs(1..=3)));
        let mut engine = with_state(&w);
        sync(&mut engine);
        let mut other = msgs(1..=3);
        other[1] = msg(20);
        other.push(msg(4));
        w.fs.write(&transcript(), text(&other));
        let mut engine = restart.next(&w, engine);
        let report = engine.sync_all().unwrap();
        assert_eq!(report.failed.len(), 1, "{restart:?}");
        assert!(
            report.failed[0].error.message.contains("rewritten"),
            "{}",
            report.failed[0].error.message
        );
        assert_eq!(w.held(&transcript_name()), msgs(1..=3), "{restart:?}");
    }
}

#[test]
fn a_checkpoint_at_an_open_line_resumes_without_rereading() {
    let w = World::new();
    let lines = msgs(1..=20_000);
    w.fs.write(&transcript(), text_open(&lines));
    sync(&mut with_state(&w));
    w.fs.append(&transcript(), format!("\n{}", msg(20_001)));
    w.fs.reset_counters();
    let report = sync(&mut with_state(&w));
    assert_eq!(report.lines, 1);
    let read = w.fs.bytes_read();
    assert!(read < 64 * 1024, "a restart read {read} bytes");
    assert_eq!(w.held(&transcript_name()), msgs(1..=20_001));
}

#[test]
fn appending_after_restart_uploads_only_new_lines() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=5)));
    sync(&mut w.started());

    w.fs.append(&transcript(), text(&msgs(6..=8)));
    w.server.clear_requests();
    let mut engine = w.started();
    let report = sync(&mut engine);

    assert_eq!(report.lines, 3);
    assert_eq!(spans(&w.server.chunks()), [(6, 3)]);
    assert_eq!(w.held(&transcript_name()), msgs(1..=8));
    assert_eq!(lines_synced(&engine, &transcript_name()), 8);
}

#[test]
fn a_second_sync_with_nothing_new_reads_nothing() {
    let w = World::new();
    w.fs.write(&transcript(), text(&[msg(1), agent_ref("a1b2c3d"), msg(3)]));
    let agent = format!("{}/agent-a1b2c3d.jsonl", subagents_dir());
    w.fs.write(&agent, text(&msgs(10..=12)));
    let mut engine = w.started();
    assert_eq!(sync(&mut engine).lines, 6);

    w.fs.reset_counters();
    w.server.clear_requests();
    let report = sync(&mut engine);
    assert_eq!(report.lines, 0);
    assert_eq!(report.files.len(), 2, "both files were looked at");
    assert_eq!(w.fs.bytes_read(), 0, "an unchanged file is only stat'ed");
    assert!(w.server.requests().is_empty());

    // A new line costs reading that line, not the file again.
    let new = format!("{}\n", msg(4));
    w.fs.append(&transcript(), &new);
    let report = sync(&mut engine);
    assert_eq!(report.lines, 1);
    // Plus at most two small windows: checking the bytes before the offset
    // still are what was synced, and hashing the new end.
    let read = w.fs.bytes_read();
    let window = crate::core::checkpoint::WINDOW_BYTES;
    assert!(
        read >= new.len() as u64 && read <= new.len() as u64 + 2 * window,
        "read {read} bytes"
    );
}

#[test]
fn resume_skips_exactly_the_servers_line_count() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=6)));
    // The server's lines stand for the file's first four, whatever their text:
    // the engine resumes by count, never by comparing content.
    let stored: Vec<String> = (1..=4).map(|n| format!("stored {n}")).collect();
    w.server.set_lines(SESSION, &transcript_name(), &stored);

    let mut engine = w.started();
    let report = sync(&mut engine);

    assert_eq!(report.lines, 2);
    let chunks = w.server.chunks();
    assert_eq!(spans(&chunks), [(5, 2)]);
    let body: serde_json::Value = serde_json::from_slice(&chunks[0].body).unwrap();
    assert_eq!(body["lines"], serde_json::json!(msgs(5..=6)));
    assert_eq!(w.held(&transcript_name())[4..], msgs(5..=6));
    assert_eq!(lines_synced(&engine, &transcript_name()), 6);
}

#[test]
fn server_ahead_uploads_nothing() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=3)));
    w.server
        .set_lines(SESSION, &transcript_name(), &msgs(1..=5));
    let mut engine = w.started();

    let report = sync(&mut engine);
    assert_eq!(report.lines, 0);
    assert!(w.server.chunks().is_empty());
    assert_eq!(lines_synced(&engine, &transcript_name()), 5);

    // Once the file grows past the server's count, only what is beyond it goes.
    w.fs.append(&transcript(), text(&msgs(4..=7)));
    let report = sync(&mut engine);
    assert_eq!(report.lines, 2);
    assert_eq!(spans(&w.server.chunks()), [(6, 2)]);
    assert_eq!(w.held(&transcript_name()), msgs(1..=7));
}

#[test]
fn a_lost_answer_is_followed_by_init_and_no_duplicate() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=3)));
    let mut engine = w.started();
    w.server.clear_requests();
    w.server.fail_next(PATH_CHUNK, Fault::StoreThenLose);

    let report = sync(&mut engine);

    let requests = w.server.requests();
    let seen: Vec<_> = requests
        .iter()
        .map(|r| (r.path.as_str(), r.status()))
        .collect();
    assert_eq!(
        seen,
        [(PATH_CHUNK, None), (PATH_INIT, Some(200))],
        "the lost chunk is not resent: init tells the server has it"
    );
    assert_eq!(w.held(&transcript_name()), msgs(1..=3));
    assert_eq!(lines_synced(&engine, &transcript_name()), 3);
    assert_eq!(w.clock.sleeps(), [Duration::from_secs(1)]);
    assert_eq!(report.retries, 1);

    // And the engine goes on from the server's count.
    w.fs.append(&transcript(), text(&[msg(4)]));
    sync(&mut engine);
    assert_eq!(w.server.chunks().last().and_then(|c| c.first_line), Some(4));
    assert_eq!(w.held(&transcript_name()), msgs(1..=4));
}

#[test]
fn a_reinit_after_a_failed_chunk_sends_the_first_inits_metadata() {
    let w = World::new();
    w.fs.write(&transcript(), text(&[msg(1)]));
    w.fs.write(
        "/home/u/repo/.git/config",
        "[remote \"origin\"]\n\turl = https://u:tok3n@github.com/o/r.git\n",
    );
    let mut engine = w.started();
    // A branch appears after the first init and is learned while syncing:
    // the re-inits must still send what the first init sent.
    w.fs.append(
        &transcript(),
        text(&[r#"{"type":"user","gitBranch":"feature","message":{"content":"go"}}"#.to_string()]),
    );
    w.server.fail_next(PATH_CHUNK, Fault::status(503));
    w.server.fail_next(PATH_CHUNK, Fault::StoreThenLose);

    sync(&mut engine);

    let inits: Vec<serde_json::Value> = w
        .server
        .requests()
        .iter()
        .filter(|r| r.path == PATH_INIT)
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["metadata"].clone())
        .collect();
    assert!(inits.len() >= 2, "a re-init happened: {inits:?}");
    assert_eq!(inits[0]["cwd"], "/home/u/repo");
    assert_eq!(inits[0]["hostname"], "devbox");
    assert_eq!(inits[0]["username"], "u");
    assert_eq!(
        inits[0]["git_info"]["repo_url"],
        "https://github.com/o/r.git"
    );
    for later in &inits[1..] {
        assert_eq!(later, &inits[0]);
    }
}

#[test]
fn a_server_error_on_a_chunk_rereads_state_then_resends() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=3)));
    let mut engine = w.started();
    w.server.clear_requests();
    w.server.fail_next(PATH_CHUNK, Fault::status(503));

    sync(&mut engine);

    let seen: Vec<_> = w
        .server
        .requests()
        .iter()
        .map(|r| (r.path.clone(), r.status()))
        .collect();
    assert_eq!(
        seen,
        [
            (PATH_CHUNK.to_string(), Some(503)),
            (PATH_INIT.to_string(), Some(200)),
            (PATH_CHUNK.to_string(), Some(200)),
        ]
    );
    assert_eq!(spans(&w.server.chunks()), [(1, 3), (1, 3)]);
    assert_eq!(w.held(&transcript_name()), msgs(1..=3));
}

#[test]
fn a_gap_refused_with_400_rereads_the_servers_state_and_continues() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=5)));
    let mut engine = w.started();
    // Another instance uploads two lines after our init.
    w.server
        .set_lines(SESSION, &transcript_name(), &msgs(1..=2));
    w.server.clear_requests();

    let report = sync(&mut engine);

    let statuses: Vec<_> = w.server.chunks().iter().map(Recorded::status).collect();
    assert_eq!(statuses, [Some(400), Some(200)]);
    assert_eq!(spans(&w.server.chunks()), [(1, 5), (3, 3)]);
    assert_eq!(w.held(&transcript_name()), msgs(1..=5));
    assert_eq!(report.lines, 3);
    assert!(w.clock.sleeps().is_empty(), "a 400 is not waited on");
}

#[test]
fn a_chunk_that_keeps_failing_fails_only_its_file_after_five_recoveries() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=2)));
    let agent = format!("{}/agent-acompact-e1f845.jsonl", subagents_dir());
    w.fs.write(&agent, text(&msgs(10..=11)));
    let mut engine = w.started();
    for _ in 0..=MAX_CHUNK_RECOVERIES {
        w.server.fail_next(PATH_CHUNK, Fault::status(500));
    }

    let report = engine.sync_all().expect("sync_all");

    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].name, transcript_name());
    assert_eq!(report.failed[0].error.kind, ErrorKind::Http(500));
    assert!(w.held(&transcript_name()).is_empty());
    assert_eq!(w.held("agent-acompact-e1f845.jsonl"), msgs(10..=11));
    let secs: Vec<u64> = w.clock.sleeps().iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16]);
}

#[test]
fn rate_limit_waits_retry_after_then_succeeds() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=3)));
    let mut engine = w.started();
    for secs in [7, 3] {
        w.server.fail_next(
            PATH_CHUNK,
            Fault::Status {
                status: 429,
                retry_after: Some(secs),
            },
        );
    }

    let report = sync(&mut engine);

    assert_eq!(
        w.clock.sleeps(),
        [Duration::from_secs(7), Duration::from_secs(3)]
    );
    let statuses: Vec<_> = w.server.chunks().iter().map(Recorded::status).collect();
    assert_eq!(statuses, [Some(429), Some(429), Some(200)]);
    assert_eq!(report.retries, 2);
    assert_eq!(w.held(&transcript_name()), msgs(1..=3));
}

#[test]
fn rate_limit_without_retry_after_backs_off_1_2_4() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=3)));
    let mut engine = w.started();
    for _ in 0..3 {
        w.server.fail_next(PATH_CHUNK, Fault::status(429));
    }

    sync(&mut engine);

    let secs: Vec<u64> = w.clock.sleeps().iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [1, 2, 4]);
    assert_eq!(w.server.chunks().len(), 4);
    assert_eq!(w.held(&transcript_name()), msgs(1..=3));
}

#[test]
fn unauthorized_stops_the_whole_sync() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=2)));
    w.fs.write(
        format!("{}/agent-a1b2c3d.jsonl", subagents_dir()).as_str(),
        text(&msgs(10..=11)),
    );
    let mut engine = w.started();
    w.server.clear_requests();
    w.server.fail_next(PATH_CHUNK, Fault::status(401));

    let error = engine.sync_all().expect_err("401 must stop the sync");

    assert_eq!(error.kind, ErrorKind::Unauthorized);
    assert!(!error.message.contains(TEST_KEY) && !error.message.contains(&TEST_KEY[4..]));
    assert_eq!(w.server.requests().len(), 1, "no other file was tried");
    assert!(w.clock.sleeps().is_empty());
    assert!(w.server.file_names(SESSION).is_empty());
}

#[test]
fn a_session_deleted_on_the_server_stops_with_session_not_found() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=2)));
    let mut engine = w.started();
    w.server.fail_next(PATH_CHUNK, Fault::status(404));

    let error = engine.sync_all().expect_err("404 must stop the sync");

    assert_eq!(error.kind, ErrorKind::SessionNotFound);
    assert_eq!(w.server.chunks().len(), 1);
}

#[test]
fn a_line_over_the_limit_fails_only_its_file() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=2)));
    let agent = format!("{}/agent-a1b2c3d.jsonl", subagents_dir());
    let mut content = format!("{}\n", msg(10)).into_bytes();
    content.resize(content.len() + MAX_CHUNK_LINE_BYTES + 1, b'y');
    content.extend_from_slice(format!("\n{}\n", msg(12)).as_bytes());
    w.fs.write(&agent, content);
    let mut engine = w.started();

    let report = engine.sync_all().expect("sync_all");

    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let failure = &report.failed[0];
    assert_eq!(failure.name, "agent-a1b2c3d.jsonl");
    assert_eq!(failure.error.kind, ErrorKind::InvalidInput);
    assert!(
        failure
            .error
            .message
            .contains("line 2 of agent-a1b2c3d.jsonl"),
        "{}",
        failure.error.message
    );
    // What precedes the long line went; nothing at or after it did.
    assert_eq!(w.held("agent-a1b2c3d.jsonl"), [msg(10)]);
    assert_eq!(w.held(&transcript_name()), msgs(1..=2));
    for chunk in w.server.chunks() {
        assert_eq!(chunk.status(), Some(200));
        assert!(chunk.body_size <= MAX_CHUNK_LINE_BYTES + 64 * 1024);
    }
}

#[test]
fn a_line_that_only_escaping_takes_over_the_limit_fails_only_its_file() {
    // 8 MiB of `\"` pairs: well under the limit as read, twice the size
    // once escaped into the JSON body (over the server's 16 MiB).
    let w = World::new();
    let mut long = br#"{"type":"progress","output":""#.to_vec();
    for _ in 0..(4 * MIB + 1) {
        long.extend_from_slice(b"\\\"");
    }
    long.extend_from_slice(b"\"}");
    let mut content = format!("{}\n", msg(1)).into_bytes();
    content.extend_from_slice(&long);
    content.extend_from_slice(format!("\n{}\n", msg(3)).as_bytes());
    w.fs.write(&transcript(), content);
    let agent = format!("{}/agent-a1b2c3d.jsonl", subagents_dir());
    w.fs.write(&agent, text(&msgs(10..=11)));
    let mut engine = w.started();

    let report = engine.sync_all().expect("sync_all");

    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert_eq!(report.failed[0].name, transcript_name());
    assert_eq!(report.failed[0].error.kind, ErrorKind::InvalidInput);
    assert!(report.failed[0].error.message.contains("line 2 of"));
    let statuses: Vec<_> = w.server.chunks().iter().map(Recorded::status).collect();
    assert!(
        statuses.iter().all(|s| *s == Some(200)),
        "no chunk may be refused: {statuses:?}"
    );
    assert_eq!(w.held(&transcript_name()), [msg(1)]);
    assert_eq!(w.held("agent-a1b2c3d.jsonl"), msgs(10..=11));
}

#[test]
fn chunks_split_at_the_limit_and_stay_contiguous() {
    // Each line escapes to exactly half the limit (its two quotes included):
    // two fill a chunk to the byte, the third starts the next one.
    let w = World::new();
    let half = "x".repeat(MAX_CHUNK_LINE_BYTES / 2 - 2);
    let lines = vec![half.clone(), half.replace('x', "z"), "tail".to_string()];
    w.fs.write(&transcript(), text(&lines));
    let mut engine = w.started();

    let report = sync(&mut engine);

    let chunks = w.server.chunks();
    assert_eq!(spans(&chunks), [(1, 2), (3, 1)]);
    assert_eq!(report.chunks, 2);
    for chunk in &chunks {
        assert_eq!(chunk.status(), Some(200));
        assert!(chunk.body_size <= crate::core::testing::MAX_BODY_BYTES);
    }
    assert!(chunks[0].body_size > MAX_CHUNK_LINE_BYTES);
    assert_eq!(chunks[0].header("content-encoding"), Some("zstd"));
    assert!(w.held(&transcript_name()) == lines, "server holds the file");
}

/// Five lines of half the limit each: chunks of lines 1-2, 3-4 and 5.
fn three_chunks_of_lines() -> Vec<String> {
    let half = "x".repeat(MAX_CHUNK_LINE_BYTES / 2 - 2);
    (b'a'..=b'e')
        .map(|c| half.replace('x', &char::from(c).to_string()))
        .collect()
}

#[test]
fn the_next_chunk_is_read_while_one_is_under_way_and_they_stay_in_order() {
    let w = World::new();
    let lines = three_chunks_of_lines();
    w.fs.write(&transcript(), text(&lines));
    let mut engine = w.started();
    w.server.defer_answers();

    let report = sync(&mut engine);

    assert_eq!(spans(&w.server.chunks()), [(1, 2), (3, 2), (5, 1)]);
    assert_eq!(report.lines, 5);
    assert!(w.held(&transcript_name()) == lines, "server holds the file");
    assert_eq!(w.server.max_in_flight(), 1, "one chunk under way at a time");
    assert_eq!(lines_synced(&engine, &transcript_name()), 5);
}

#[test]
fn an_answer_lost_while_the_next_chunk_was_read_loses_and_duplicates_nothing() {
    let w = World::new();
    let lines = three_chunks_of_lines();
    w.fs.write(&transcript(), text(&lines));
    let mut engine = w.started();
    w.server.defer_answers();
    w.server.fail_next(PATH_CHUNK, Fault::StoreThenLose);

    let report = sync(&mut engine);

    assert!(w.held(&transcript_name()) == lines, "server holds the file");
    assert_eq!(
        spans(&w.server.chunks()),
        [(1, 2), (3, 2), (5, 1)],
        "the stored chunk is not sent again"
    );
    assert_eq!(report.retries, 1);
    assert_eq!(lines_synced(&engine, &transcript_name()), 5);
}

#[test]
fn invalid_utf8_is_replaced_and_counted() {
    let w = World::new();
    let mut content = format!("{}\n", msg(1)).into_bytes();
    content.extend_from_slice(b"{\"type\":\"user\",\"message\":{\"content\":\"caf\xe9 \xff\"}}\n");
    content.extend_from_slice(format!("{}\n", msg(3)).as_bytes());
    w.fs.write(&transcript(), content);
    let mut engine = w.started();

    let report = sync(&mut engine);

    assert_eq!(report.invalid_utf8_lines, 1);
    let held = w.held(&transcript_name());
    assert_eq!(held.len(), 3);
    assert_eq!(
        held[1],
        "{\"type\":\"user\",\"message\":{\"content\":\"caf\u{FFFD} \u{FFFD}\"}}"
    );
    assert_eq!([&held[0], &held[2]], [&msg(1), &msg(3)]);
}

#[test]
fn subagents_are_found_transitively_and_cycles_end() {
    let w = World::new();
    // Older layout beside the transcript: found only when referenced.
    w.fs.write(
        &transcript(),
        text(&[msg(1), agent_ref("aaaaaa1"), agent_ref("ddddddd4")]),
    );
    w.fs.write(
        &format!("{DIR}/agent-aaaaaa1.jsonl"),
        text(&[msg(10), agent_ref("bbbbbb2")]),
    );
    // b references a (a cycle) and itself.
    w.fs.write(
        &format!("{DIR}/agent-bbbbbb2.jsonl"),
        text(&[agent_ref("aaaaaa1"), agent_ref("bbbbbb2")]),
    );
    w.fs.write(&format!("{DIR}/agent-cccccc3.jsonl"), text(&[msg(30)]));
    // Current layout; a compaction agent is never referenced, only present.
    let sub = subagents_dir();
    w.fs.write(&format!("{sub}/agent-ddddddd4.jsonl"), text(&[msg(40)]));
    w.fs.write(
        &format!("{sub}/agent-acompact-ffffff.jsonl"),
        text(&[msg(50)]),
    );
    let mut engine = w.started();

    let report = sync(&mut engine);

    let mut expected = vec![
        transcript_name(),
        "agent-aaaaaa1.jsonl".to_string(),
        "agent-bbbbbb2.jsonl".to_string(),
        "agent-ddddddd4.jsonl".to_string(),
        "agent-acompact-ffffff.jsonl".to_string(),
    ];
    expected.sort();
    assert_eq!(w.server.file_names(SESSION), expected);
    assert_eq!(report.files.len(), 5, "each file once");
    assert_eq!(w.server.chunks().len(), 5, "one chunk per file");
    assert_eq!(w.held("agent-bbbbbb2.jsonl").len(), 2);

    w.server.clear_requests();
    assert_eq!(sync(&mut engine).lines, 0);
    assert!(w.server.requests().is_empty());
}

#[test]
fn agent_ids_that_try_to_escape_never_become_paths() {
    let w = World::new();
    let bad_ids = ["../x", "a/b", "../../../../etc/passwd", "/etc/passwd"];
    let mut lines: Vec<String> = bad_ids.iter().map(|id| agent_ref(id)).collect();
    lines.push(agent_ref("good123"));
    w.fs.write(&transcript(), text(&lines));
    // Files at the very paths a careless join would reach.
    for dir in [DIR.to_string(), subagents_dir()] {
        for id in bad_ids {
            w.fs.write(&format!("{dir}/agent-{id}.jsonl"), text(&[msg(99)]));
        }
    }
    w.fs.write(&format!("{DIR}/x.jsonl"), text(&[msg(98)]));
    w.fs.write(&format!("{DIR}/agent-good123.jsonl"), text(&[msg(7)]));
    let mut engine = w.started();
    w.fs.reset_counters();

    sync(&mut engine);

    assert_eq!(
        w.server.file_names(SESSION),
        [transcript_name(), "agent-good123.jsonl".to_string()],
        "only the valid reference was followed"
    );
    let good = format!("{DIR}/agent-good123.jsonl");
    for path in w.fs.opened() {
        assert!(path == transcript() || path == good, "opened {path}");
    }
    let workflows = format!("{}/workflows", subagents_dir());
    for path in w.fs.listed() {
        assert!(
            path == DIR || path == subagents_dir() || path == workflows,
            "listed {path}"
        );
    }
}

#[test]
fn sync_before_init_is_not_initialized() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=2)));
    let mut engine = w.engine();

    let error = engine.sync_all().expect_err("not initialized");
    assert_eq!(error.kind, ErrorKind::NotInitialized);
    let error = engine
        .send_event("session_end", "2026-02-12T16:02:25Z", "{}")
        .expect_err("not initialized");
    assert_eq!(error.kind, ErrorKind::NotInitialized);
    let error = engine
        .link_github("https://github.com/o/r/pull/1", None)
        .expect_err("not initialized");
    assert_eq!(error.kind, ErrorKind::NotInitialized);
    assert!(w.server.requests().is_empty(), "nothing was sent");
    assert_eq!(engine.session_id(), None);
}

#[test]
fn config_errors_never_contain_the_key() {
    let secret = &TEST_KEY[4..];
    let with = |change: &dyn Fn(&mut SessionConfig)| {
        let mut c = config();
        change(&mut c);
        c
    };
    let cases = [
        // The key itself is malformed: a space in it, or the wrong prefix.
        with(&|c| c.api_key = format!("{} {}", &TEST_KEY[..20], &TEST_KEY[20..])),
        with(&|c| c.api_key = format!("cfx_{}", &TEST_KEY[4..])),
        // A good key, something else wrong.
        with(&|c| c.backend_url = "http://confab.example.com".into()),
        with(&|c| c.external_id = String::new()),
        with(&|c| c.transcript_path = format!("{DIR}/{SESSION}.json")),
        with(&|c| c.hostname = Some("h".repeat(300))),
        // The key where the URL should be: flags swapped, or pasted into it.
        with(&|c| std::mem::swap(&mut c.backend_url, &mut c.api_key)),
        with(&|c| c.backend_url = format!("https://{TEST_KEY}@confab.example.com")),
        with(&|c| c.backend_url = format!("https://confab.example.com/{TEST_KEY} ")),
    ];
    for (i, config) in cases.into_iter().enumerate() {
        let w = World::new();
        let Err(error) = Engine::new(config, w.fs.clone(), w.server.clone(), w.clock.clone())
        else {
            panic!("case {i}: the config was accepted");
        };
        assert_eq!(error.kind, ErrorKind::InvalidConfig, "case {i}");
        assert!(
            !error.message.contains(secret),
            "case {i} leaks the key: {}",
            error.message
        );
        assert!(w.server.requests().is_empty());
    }
}

#[test]
fn a_truncated_file_is_reported_not_uploaded() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=4)));
    let mut engine = w.started();
    sync(&mut engine);
    w.server.clear_requests();

    w.fs.write(&transcript(), text(&msgs(1..=2)));
    let report = engine.sync_all().expect("sync_all");

    assert_eq!(report.failed.len(), 1);
    let error = &report.failed[0].error;
    assert_eq!(error.kind, ErrorKind::InvalidInput);
    assert!(error.message.contains("truncated"), "{}", error.message);
    assert!(w.server.requests().is_empty());
    assert_eq!(w.held(&transcript_name()), msgs(1..=4));
    assert_eq!(lines_synced(&engine, &transcript_name()), 4);
}

#[test]
fn transcript_chunks_carry_session_metadata_and_agent_chunks_none() {
    let w = World::new();
    let first = r#"{"type":"user","gitBranch":"main","message":{"role":"user","content":"<b>Fix</b> the &amp; login   bug"}}"#;
    let summary = r#"{"type":"summary","summary":"Login fixed"}"#;
    w.fs.write(
        &transcript(),
        text(&[first.to_string(), msg(2), summary.to_string()]),
    );
    w.fs.write(
        &format!("{}/agent-a1b2c3d.jsonl", subagents_dir()),
        text(&[msg(10)]),
    );
    w.fs.write(
        "/home/u/repo/.git/config",
        "[remote \"origin\"]\n\turl = https://u:tok3n@github.com/o/r.git\n[branch \"main\"]\n\tremote = origin\n",
    );
    let mut engine = w.started();

    sync(&mut engine);

    let init: serde_json::Value = serde_json::from_slice(&w.server.requests()[0].body).unwrap();
    assert_eq!(
        init["metadata"]["git_info"]["remotes"],
        serde_json::json!([{"name": "origin", "fetch_url": "https://github.com/o/r.git",
            "push_url": "https://github.com/o/r.git"}])
    );
    assert_eq!(init["metadata"]["git_info"]["tracking_remote"], "origin");
    assert_eq!(init["metadata"]["git_info"]["branch"], "main");
    assert_eq!(
        init["metadata"]["git_info"]["repo_url"],
        "https://github.com/o/r.git"
    );
    assert_eq!(init["metadata"]["cwd"], "/home/u/repo");
    let chunks = w.server.chunks();
    let transcript_chunk = chunks
        .iter()
        .find(|c| c.file_name.as_deref() == Some(transcript_name().as_str()))
        .unwrap();
    let meta = transcript_chunk.metadata.as_ref().expect("metadata");
    assert_eq!(meta["first_user_message"], "Fix the & login bug");
    assert_eq!(meta["summary"], "Login fixed");
    assert_eq!(meta["git_info"]["branch"], "main");
    let agent_chunk = chunks
        .iter()
        .find(|c| c.file_name.as_deref() == Some("agent-a1b2c3d.jsonl"))
        .unwrap();
    assert!(agent_chunk.metadata.is_none());
}

#[test]
fn a_summary_naming_an_earlier_sessions_last_message_is_given_to_it() {
    let w = World::new();
    let earlier = "11111111-2222-4333-8444-555555555555";
    w.fs.write(
        &format!("{DIR}/{earlier}.jsonl"),
        text(&[
            msg(1),
            r#"{"type":"assistant","uuid":"leaf-42","message":{"content":"bye"}}"#.to_string(),
        ]),
    );
    w.server.add_session(earlier);
    // Over 1 KiB of body: the PATCH must still be something the server reads.
    let long_summary = format!("Refactored the sync engine {}", "and more ".repeat(150));
    let line =
        serde_json::json!({"type": "summary", "summary": long_summary, "leafUuid": "leaf-42"});
    w.fs.write(&transcript(), text(&[line.to_string(), msg(2)]));
    let mut engine = w.started();

    let report = sync(&mut engine);

    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    // Whitespace folded: the trailing space is gone.
    assert_eq!(
        w.server.summary(earlier).as_deref(),
        Some(long_summary.trim_end())
    );
    assert_eq!(w.server.summary(SESSION), None);

    // Linked once per instance.
    w.server.clear_requests();
    w.fs.append(&transcript(), text(&[msg(3)]));
    sync(&mut engine);
    assert_eq!(w.server.paths(), [PATH_CHUNK]);
}

#[test]
fn summaries_arrive_cleaned_and_cut_on_the_session_and_through_the_leaf_link() {
    let w = World::new();
    let earlier = "11111111-2222-4333-8444-555555555555";
    w.fs.write(
        &format!("{DIR}/{earlier}.jsonl"),
        text(&[r#"{"type":"assistant","uuid":"leaf-9","message":{"content":"bye"}}"#.to_string()]),
    );
    w.server.add_session(earlier);
    let own = serde_json::json!({"type": "summary",
        "summary": format!("Fixed the <b>login</b>\n  bug &amp; {}", "é".repeat(1100))});
    let leaf = serde_json::json!({"type": "summary",
        "summary": "<i>Earlier</i> work &lt;done&gt;", "leafUuid": "leaf-9"});
    w.fs.write(
        &transcript(),
        text(&[own.to_string(), leaf.to_string(), msg(3)]),
    );
    let mut engine = w.started();

    sync(&mut engine);

    let meta = w.server.chunks()[0].metadata.clone().expect("metadata");
    let summary = meta["summary"].as_str().unwrap();
    assert!(summary.starts_with("Fixed the login bug & éé"), "{summary}");
    // 22 ASCII bytes, then 2-byte characters: the cut lands on the limit.
    assert_eq!(summary.len(), super::super::limits::SUMMARY_MAX_BYTES);
    assert!(summary.ends_with('é'));
    assert_eq!(
        w.server.summary(earlier).as_deref(),
        Some("Earlier work <done>")
    );
}

#[test]
fn a_secret_across_the_summary_limit_is_redacted_before_the_cut() {
    let w = World::new();
    let github = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0".repeat(2));
    let own = serde_json::json!({"type": "summary",
        "summary": format!("{}&amp;{github}", "x".repeat(2030))});
    w.fs.write(&transcript(), text(&[own.to_string()]));
    let mut c = config();
    c.redaction.enabled = true;
    let mut engine =
        Engine::new(c, w.fs.clone(), w.server.clone(), w.clock.clone()).expect("config");
    engine.init().expect("init");
    sync(&mut engine);

    let meta = w.server.chunks()[0].metadata.clone().expect("metadata");
    let summary = meta["summary"].as_str().unwrap();
    assert!(summary.len() <= super::super::limits::SUMMARY_MAX_BYTES);
    assert!(!summary.contains("ghp_a1B2"), "{summary}");
    assert!(summary.contains("&[REDACTED"), "{summary}");
}

#[test]
fn with_redaction_on_no_secret_reaches_metadata_a_patch_an_event_or_a_link() {
    let w = World::new();
    let earlier = "11111111-2222-4333-8444-555555555555";
    w.fs.write(
        &format!("{DIR}/{earlier}.jsonl"),
        text(&[r#"{"type":"assistant","uuid":"leaf-7","message":{"content":"bye"}}"#.to_string()]),
    );
    w.server.add_session(earlier);
    let aws = format!("AKIA{}", "QWERTYUIOPASDFGH");
    let github = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0".repeat(2));
    // The secret sits past the 4096-byte cut of the first user message: it
    // must be redacted before the cut, or a prefix of it would survive.
    let confab = "cfb_Zx3-q_Rk9LmN0pQr-StUv_WxYz0123456789Abcd";
    let long = format!("{} {github}", "word ".repeat(818));
    let first = serde_json::json!({"type": "user", "message": {"role": "user",
        "content": format!("deploy with {aws} and {confab} {long}")}});
    let own = serde_json::json!({"type": "summary", "summary": format!("Rotated {github}")});
    let leaf = serde_json::json!({"type": "summary", "summary": format!("Used {aws}"), "leafUuid": "leaf-7"});
    w.fs.write(
        &transcript(),
        text(&[first.to_string(), own.to_string(), leaf.to_string()]),
    );
    let mut c = config();
    c.redaction.enabled = true;
    let mut engine =
        Engine::new(c, w.fs.clone(), w.server.clone(), w.clock.clone()).expect("config");
    engine.init().expect("init");
    sync(&mut engine);
    engine
        .send_event(
            "session_end",
            "2026-02-12T16:02:25Z",
            &format!(r#"{{"note":"{aws}"}}"#),
        )
        .expect("event");
    engine
        .link_github(
            "https://github.com/o/r/pull/1",
            Some(&format!("PR {github}")),
        )
        .expect("link");

    let meta = w.server.chunks()[0].metadata.clone().expect("metadata");
    let message = meta["first_user_message"].as_str().unwrap();
    assert!(
        message.starts_with("deploy with [REDACTED:AWS_KEY] and [REDACTED:CONFAB_KEY] word"),
        "{message}"
    );
    assert!(message.len() <= super::super::limits::FIRST_USER_MESSAGE_MAX_BYTES);
    assert_eq!(meta["summary"], "Rotated [REDACTED:GITHUB_TOKEN]");
    assert_eq!(
        w.server.summary(earlier).as_deref(),
        Some("Used [REDACTED:AWS_KEY]")
    );
    for request in w.server.requests() {
        let body = String::from_utf8_lossy(&request.body);
        for secret in [
            &aws[..],
            &github[..12],
            &confab[..12],
            &github[github.len() - 8..],
        ] {
            assert!(
                !body.contains(secret),
                "{} carries {secret}: {body}",
                request.path
            );
        }
    }
}

#[test]
fn events_and_links_reach_the_session() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=1)));
    let mut engine = w.started();

    engine
        .send_event(
            "session_end",
            "2026-02-12T16:02:25Z",
            r#"{"reason":"exit"}"#,
        )
        .expect("event");
    assert_eq!(w.server.events(SESSION), 1);
    let error = engine
        .send_event("session_end", "2026-02-12T16:02:25Z", "not json")
        .expect_err("payload must be JSON");
    assert_eq!(error.kind, ErrorKind::InvalidInput);

    let url = "https://github.com/o/r/pull/1";
    let link = engine.link_github(url, Some("Fix")).expect("link");
    assert_eq!(link.url, url);
    let error = engine.link_github(url, None).expect_err("duplicate");
    assert_eq!(error.kind, ErrorKind::Conflict);
    assert_eq!(w.server.session_id(SESSION).as_deref(), engine.session_id());
}

// ---------------------------------------------------------------------------
// Checkpoint: fast restarts, and files rewritten in place
// ---------------------------------------------------------------------------

const STATE: &str = "/state";

fn with_state(w: &World) -> TestEngine {
    let mut c = config();
    c.state_dir = Some(STATE.into());
    let mut engine = Engine::new(c, w.fs.clone(), w.server.clone(), w.clock.clone()).unwrap();
    engine.init().expect("init");
    engine
}

#[test]
fn a_restart_with_a_checkpoint_reads_only_the_new_bytes() {
    let w = World::new();
    let lines = msgs(1..=20_000);
    w.fs.write(&transcript(), text(&lines));
    sync(&mut with_state(&w));
    let size = text(&lines).len() as u64;
    let new = format!("{}\n", msg(20_001));
    w.fs.append(&transcript(), &new);
    w.fs.reset_counters();
    let report = sync(&mut with_state(&w));
    assert_eq!(report.lines, 1);
    let read = w.fs.bytes_read();
    // The first lines (for the git branch), two 4 KiB windows, the new line.
    assert!(
        read < 64 * 1024,
        "a restart read {read} bytes of a {size}-byte file"
    );
    assert_eq!(w.held(&transcript_name()).len(), 20_001);
}

#[test]
fn without_a_state_folder_a_restart_scans() {
    let w = World::new();
    let lines = msgs(1..=2_000);
    w.fs.write(&transcript(), text(&lines));
    sync(&mut w.started());
    w.fs.append(&transcript(), format!("{}\n", msg(2_001)));
    w.fs.reset_counters();
    sync(&mut w.started());
    assert!(w.fs.bytes_read() >= text(&lines).len() as u64);
}

#[test]
fn a_file_rewritten_below_its_checkpoint_is_refused_by_every_later_process() {
    let w = World::new();
    let lines = msgs(1..=10);
    w.fs.write(&transcript(), text(&lines));
    sync(&mut with_state(&w));
    // Cut to 5 lines, grown again with 10 others: 15 lines, 10 of them new.
    let mut regrown = msgs(1..=5);
    regrown.extend(msgs(101..=110));
    w.fs.write(&transcript(), text(&regrown));
    for restart in 0..2 {
        let report = with_state(&w).sync_all().unwrap();
        assert_eq!(report.failed.len(), 1, "restart {restart}");
        let error = &report.failed[0].error;
        assert_eq!(error.kind, ErrorKind::InvalidInput);
        assert!(
            error.message.contains("was rewritten") && error.message.contains(SESSION),
            "{}",
            error.message
        );
        assert_eq!(w.held(&transcript_name()), lines, "nothing more went up");
    }
}

#[test]
fn a_checkpoint_behind_the_server_falls_back_to_the_scan() {
    let w = World::new();
    let lines = msgs(1..=500);
    w.fs.write(&transcript(), text(&lines));
    sync(&mut with_state(&w));
    // The server lost the session: it holds fewer lines than the checkpoint.
    w.server
        .set_lines(SESSION, &transcript_name(), &lines[..100]);
    w.fs.append(&transcript(), format!("{}\n", msg(501)));
    w.fs.reset_counters();
    let report = sync(&mut with_state(&w));
    assert_eq!(report.lines, 401, "the server's count is the truth");
    assert_eq!(w.held(&transcript_name()).len(), 501);
}

#[test]
fn a_server_ahead_of_the_file_is_a_warning_naming_it() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=10)));
    sync(&mut w.started());
    w.fs.write(&transcript(), text(&msgs(1..=5)));
    let report = sync(&mut w.started());
    assert_eq!(report.lines, 0);
    assert!(
        report
            .warnings
            .iter()
            .any(|m| m.contains(SESSION) && m.contains("holds 10 lines, the file only 5")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn a_file_rewritten_in_place_is_reported_and_not_uploaded() {
    let w = World::new();
    let lines = msgs(1..=50);
    w.fs.write(&transcript(), text(&lines));
    let mut engine = w.started();
    sync(&mut engine);
    let mut rewritten = msgs(1..=50);
    rewritten[49] = msg(4_900);
    rewritten.push(msg(51));
    w.fs.write(&transcript(), text(&rewritten));
    let report = engine.sync_all().unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].error.kind, ErrorKind::InvalidInput);
    assert!(
        report.failed[0].error.message.contains("was rewritten"),
        "{}",
        report.failed[0].error.message
    );
    assert_eq!(
        w.held(&transcript_name()),
        lines,
        "nothing of the rewritten file went up"
    );
}

// ---------------------------------------------------------------------------
// Workflow tool runs

/// Two workflow runs as Claude Code writes them: agents and a journal that
/// go up, and `*.meta.json` / `wf_*.json` that do not. Returns the
/// path-encoded names that must reach the server, with their lines.
fn write_workflow_runs(w: &World) -> Vec<(String, Vec<String>)> {
    let workflows = format!("{}/workflows", subagents_dir());
    let mut expected = Vec::new();
    for (run, agents) in [
        ("wf-run-1", &["a1b2c3d", "b2c3d4e"][..]),
        ("wf-run-2", &["c3d4e5f"][..]),
    ] {
        for (i, agent) in agents.iter().enumerate() {
            let lines = msgs(1..=i + 2);
            w.fs.write(
                &format!("{workflows}/{run}/agent-{agent}.jsonl"),
                text(&lines),
            );
            w.fs.write(&format!("{workflows}/{run}/agent-{agent}.meta.json"), "{}");
            expected.push((
                format!("subagents/workflows/{run}/agent-{agent}.jsonl"),
                lines,
            ));
        }
        let journal = vec![format!(r#"{{"run":"{run}","step":1}}"#)];
        w.fs.write(&format!("{workflows}/{run}/journal.jsonl"), text(&journal));
        w.fs.write(&format!("{workflows}/{run}/wf_{run}.json"), "{}");
        expected.push((format!("subagents/workflows/{run}/journal.jsonl"), journal));
    }
    expected
}

fn capability_probes(w: &World) -> usize {
    w.server
        .requests()
        .iter()
        .filter(|r| r.path == protocol::PATH_CAPABILITIES)
        .count()
}

#[test]
fn workflow_runs_go_up_under_path_encoded_names_when_the_backend_advertises_them() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=2)));
    let expected = write_workflow_runs(&w);
    let mut engine = w.started();

    let report = sync(&mut engine);

    for (name, lines) in &expected {
        assert_eq!(&w.held(name), lines, "{name}");
    }
    let mut names = w.server.file_names(SESSION);
    names.sort();
    let mut want: Vec<String> = expected.iter().map(|(n, _)| n.clone()).collect();
    want.push(transcript_name());
    want.sort();
    assert_eq!(names, want, "no meta.json or wf_*.json");
    let journal = report
        .files
        .iter()
        .find(|f| f.name == "subagents/workflows/wf-run-1/journal.jsonl")
        .unwrap();
    assert_eq!(journal.file_type, FileType::WorkflowJournal);
    let chunk_types: Vec<_> = w
        .server
        .requests()
        .iter()
        .filter(|r| r.file_name.as_deref() == Some("subagents/workflows/wf-run-1/journal.jsonl"))
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["file_type"].clone())
        .collect();
    assert_eq!(chunk_types, [serde_json::json!("workflow_journal")]);

    // Asked once for the session; a restart resumes from the server's counts.
    sync(&mut engine);
    assert_eq!(capability_probes(&w), 1);
    let agent = format!("{}/workflows/wf-run-1/agent-a1b2c3d.jsonl", subagents_dir());
    w.fs.append(&agent, text(&[msg(9)]));
    w.server.clear_requests();
    let mut restarted = w.started();
    sync(&mut restarted);
    let chunks = w.server.chunks();
    assert_eq!(spans(&chunks), [(3, 1)], "only the new line");
    assert_eq!(
        chunks[0].file_name.as_deref(),
        Some("subagents/workflows/wf-run-1/agent-a1b2c3d.jsonl")
    );
}

#[test]
fn an_older_backend_without_capabilities_gets_no_workflow_files_and_is_asked_once() {
    let w = World::new();
    w.server.without_capabilities();
    w.fs.write(&transcript(), text(&msgs(1..=2)));
    write_workflow_runs(&w);
    let mut engine = w.started();

    let report = sync(&mut engine);
    sync(&mut engine);

    assert_eq!(w.server.file_names(SESSION), [transcript_name()]);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(capability_probes(&w), 1, "a 404 is kept for the session");
}

#[test]
fn a_transient_probe_failure_defers_workflow_files_to_the_next_sync() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=2)));
    let expected = write_workflow_runs(&w);
    let mut engine = w.started();
    w.server
        .fail_next(protocol::PATH_CAPABILITIES, Fault::status(503));

    let first = sync(&mut engine);
    assert_eq!(w.server.file_names(SESSION), [transcript_name()]);
    assert_eq!(capability_probes(&w), 1, "not retried within the sync");
    assert!(
        first.warnings.iter().any(|m| m.contains("next sync")),
        "{:?}",
        first.warnings
    );

    sync(&mut engine);
    assert_eq!(capability_probes(&w), 2);
    for (name, lines) in &expected {
        assert_eq!(&w.held(name), lines, "{name}");
    }
}

#[test]
fn a_session_without_workflow_files_never_asks_for_capabilities() {
    let w = World::new();
    w.fs.write(&transcript(), text(&msgs(1..=2)));
    w.fs.write(
        &format!("{}/agent-a1b2c3d.jsonl", subagents_dir()),
        text(&[msg(1)]),
    );
    w.fs.write(
        &format!("{}/workflows/wf-1/wf_state.json", subagents_dir()),
        "{}",
    );
    let mut engine = w.started();
    sync(&mut engine);
    assert_eq!(capability_probes(&w), 0);
}
