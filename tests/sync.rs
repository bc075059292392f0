//! End to end: the built component, under wasmtime, syncing into the local
//! backend that enforces the API's rules (issue 2's acceptance).

use confab_e2e::*;
use confab_host::backend::Fault;

#[test]
fn every_fixture_session_is_stored_byte_for_byte() {
    let backend = backend();
    let ws = Workspace::new();
    for uuid in [SESSION_A, SESSION_B] {
        let transcript = ws.copy_session(uuid);
        let mut s = Synced::start(&backend, config(&backend, &transcript));
        let report = s.sync();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        let files = session_files(&transcript);
        assert_eq!(
            files.len(),
            3,
            "fixture {uuid} has a transcript and two subagents"
        );
        for file in &files {
            assert_stored(&backend, uuid, file);
        }
        let mut expected: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        expected.sort();
        assert_eq!(backend.file_names(uuid), expected);
        let snapshot = backend.session(uuid).unwrap();
        for f in &files[1..] {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(
                snapshot.file_types.get(&name).map(String::as_str),
                Some("agent"),
                "{name}"
            );
        }
    }
    for (fixture, id) in [
        ("short.jsonl", "short"),
        ("subagent.jsonl", "subagent"),
        ("tool_heavy.jsonl", "tool_heavy"),
    ] {
        let transcript = ws.copy_file(fixture, fixture);
        let report = Synced::start(&backend, config(&backend, &transcript)).sync();
        assert!(report.failed.is_empty(), "{fixture}: {:?}", report.failed);
        assert_stored(&backend, id, &transcript);
    }
}

fn lines_of(path: &std::path::Path) -> usize {
    std::fs::read(path)
        .unwrap()
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

// ---------------------------------------------------------------------------
// Scenarios run over every provider: a session of each (Claude Code's
// SESSION_B, Codex's root with its three subagents, a Cursor conversation
// with two subagents and no final newline), see `confab_e2e::scenarios`.

use confab_e2e::scenarios::SessionFixture;

/// One `mod <provider>` of `#[test]`s per provider, each running the
/// scenario function of the same name on that provider's session.
macro_rules! scenarios_for {
    ($provider:ident: $($scenario:ident),* $(,)?) => {
        mod $provider {
            $(
                #[test]
                fn $scenario() {
                    super::$scenario(confab_e2e::scenarios::$provider());
                }
            )*
        }
    };
}

macro_rules! over_every_provider {
    ($($scenario:ident),* $(,)?) => {
        scenarios_for!(claude_code: $($scenario),*);
        scenarios_for!(codex: $($scenario),*);
        scenarios_for!(cursor: $($scenario),*);
    };
}

over_every_provider!(
    a_second_sync_with_no_change_uploads_nothing,
    appending_lines_uploads_exactly_them_as_one_contiguous_chunk,
    a_half_written_last_line_waits_for_its_newline,
    a_fresh_instance_resumes_from_the_servers_state_without_duplicates,
    a_last_record_without_its_newline_is_stored_and_closed_by_the_next,
    planted_secrets_never_reach_the_backend_and_other_lines_stay_byte_identical,
);

fn a_second_sync_with_no_change_uploads_nothing(f: SessionFixture) {
    let backend = backend();
    let mut s = f.start(&backend, None);
    assert!(s.sync().lines > 0);
    f.assert_all_stored(&backend);
    backend.clear_requests();
    let again = s.sync();
    assert_eq!((again.lines, again.chunks), (0, 0));
    assert!(chunks(&backend.requests()).is_empty());
}

fn appending_lines_uploads_exactly_them_as_one_contiguous_chunk(f: SessionFixture) {
    let backend = backend();
    let mut s = f.start(&backend, None);
    s.sync();
    let before = f.records();
    backend.clear_requests();
    f.append_records(&[
        "{\"type\":\"assistant\",\"n\":1}",
        "{\"type\":\"assistant\",\"n\":2}",
        "{\"type\":\"assistant\",\"n\":3}",
    ]);
    let report = s.sync();
    assert_eq!(report.lines, 3);
    let requests = backend.requests();
    let sent = chunks(&requests);
    assert_eq!(sent.len(), 1, "one chunk for the new lines");
    let chunk = sent[0].chunk.as_ref().unwrap();
    assert_eq!((chunk.first_line, chunk.line_count), (before + 1, 3));
    assert_eq!(chunk.file_name, f.transcript_name());
    f.assert_all_stored(&backend);
}

fn a_half_written_last_line_waits_for_its_newline(f: SessionFixture) {
    let backend = backend();
    let mut s = f.start(&backend, None);
    s.sync();
    let held = f.stored(&backend, f.transcript_name());
    f.append(b"{\"type\":\"assistant\",\"message\":{\"content\":\"half");
    assert_eq!(
        s.sync().lines,
        0,
        "a line without its newline is not uploaded"
    );
    assert_eq!(f.stored(&backend, f.transcript_name()), held);
    append(&f.transcript, b" done\"}}\n");
    assert_eq!(s.sync().lines, 1);
    f.assert_all_stored(&backend);
    assert_eq!(
        f.stored(&backend, f.transcript_name()),
        std::fs::read(&f.transcript).unwrap()
    );
}

/// How the sync after the file grew is run.
#[derive(Debug, Clone, Copy)]
enum Later {
    SameSession,
    FreshWithCheckpoint,
    FreshWithoutCheckpoint,
}

/// A transcript whose last complete record has no newline (as Cursor
/// writes every file): stored with that one `\n` added. Then the newline
/// and the next record arrive: stored exactly the file's lines, nothing
/// doubled, whether the same session, a fresh process with its checkpoint
/// or one with only the backend's line counts syncs them.
fn a_last_record_without_its_newline_is_stored_and_closed_by_the_next(f: SessionFixture) {
    let record =
        b"{\"type\":\"assistant\",\"uuid\":\"after-open\",\"message\":{\"content\":\"next\"}}";
    let original = std::fs::read(&f.transcript).unwrap();
    for later in [
        Later::SameSession,
        Later::FreshWithCheckpoint,
        Later::FreshWithoutCheckpoint,
    ] {
        let backend = backend();
        std::fs::write(&f.transcript, &original).unwrap();
        f.drop_final_newline();
        let state = f.state_dir(&format!("state-{later:?}"));
        let lines = f.records();
        let start = || match later {
            Later::FreshWithoutCheckpoint => f.start(&backend, None),
            _ => f.start(&backend, Some(&state)),
        };
        let mut s = start();
        let report = s.sync();
        assert!(report.failed.is_empty(), "{later:?}: {:?}", report.failed);
        assert_eq!(
            report.files[0].lines_synced, lines,
            "{later:?}: the last record went up"
        );
        f.assert_all_stored(&backend);
        assert_eq!(s.sync().lines, 0, "{later:?}: nothing sent twice");

        backend.clear_requests();
        append(&f.transcript, &[b"\n", &record[..], b"\n"].concat());
        let mut s = match later {
            Later::SameSession => s,
            _ => start(),
        };
        let report = s.sync();
        assert!(report.failed.is_empty(), "{later:?}: {:?}", report.failed);
        assert_eq!(report.lines, 1, "{later:?}: only the next record");
        let requests = backend.requests();
        let sent = chunks(&requests);
        assert_eq!(sent.len(), 1, "{later:?}");
        let chunk = sent[0].chunk.as_ref().unwrap();
        assert_eq!(
            (chunk.first_line, chunk.line_count),
            (lines + 1, 1),
            "{later:?}"
        );
        f.assert_all_stored(&backend);
        assert_eq!(
            f.stored(&backend, f.transcript_name()),
            std::fs::read(&f.transcript).unwrap(),
            "{later:?}: byte for byte once the source has its newline"
        );
        if matches!(later, Later::FreshWithCheckpoint) {
            assert!(
                std::fs::read_dir(&state).unwrap().count() > 0,
                "no checkpoint in the state folder"
            );
        }
    }
}

/// Cursor style: each record is written newline first, so the file never
/// ends with one; each sync stores every record, the last one with the
/// added `\n`, and a record half written waits.
#[test]
fn records_appended_newline_first_are_each_stored_once() {
    use confab_e2e::last_line::assert_stored_adding_final_newline;
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.write("newline-first.jsonl", b"{\"type\":\"user\",\"n\":1}");
    let mut s = Synced::start(&backend, config(&backend, &transcript));
    assert_eq!(s.sync().lines, 1);
    assert_stored_adding_final_newline(&backend, "newline-first", &transcript);
    append(
        &transcript,
        b"\n{\"type\":\"assistant\",\"n\":2}\n{\"type\":\"user\",\"n\":3}",
    );
    assert_eq!(s.sync().lines, 2);
    assert_stored_adding_final_newline(&backend, "newline-first", &transcript);
    append(&transcript, b"\n{\"type\":\"assistant\",\"n\":");
    assert_eq!(s.sync().lines, 0, "half a record waits");
    append(&transcript, b"4}");
    assert_eq!(s.sync().lines, 1);
    assert_stored_adding_final_newline(&backend, "newline-first", &transcript);
    let stored = backend
        .file("newline-first", "newline-first.jsonl")
        .unwrap();
    assert_eq!(stored.iter().filter(|&&b| b == b'\n').count(), 4);
}

/// The component is built with only the zstd block compressors its level
/// uses (`.cargo/config.toml`): its chunk bodies must come out exactly as
/// the whole library, natively, compresses them with the same settings.
#[test]
fn chunk_bodies_are_compressed_as_the_whole_zstd_library_does() {
    use confab_host::backend::BackendConfig;
    use zstd::zstd_safe::CParameter;
    let backend = Backend::start(BackendConfig {
        api_keys: vec![KEY.to_string()],
        record_bodies: true,
        ..BackendConfig::default()
    })
    .expect("backend");
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_A);
    let report = Synced::start(&backend, config(&backend, &transcript)).sync();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let mut native = zstd::bulk::Compressor::new(3).unwrap();
    native.set_parameter(CParameter::WindowLog(23)).unwrap();
    native
        .set_parameter(CParameter::EnableLongDistanceMatching(true))
        .unwrap();
    let requests = backend.requests();
    let compressed: Vec<_> = chunks(&requests)
        .into_iter()
        .filter(|r| r.content_encoding.as_deref() == Some("zstd"))
        .collect();
    assert!(
        compressed.len() >= 3,
        "{} compressed chunks",
        compressed.len()
    );
    for r in compressed {
        let expected = native.compress(&r.body).unwrap();
        assert_eq!(
            r.wire_bytes,
            expected.len(),
            "a {}-byte body: the component's frame differs from the library's",
            r.body.len()
        );
    }
}

fn a_fresh_instance_resumes_from_the_servers_state_without_duplicates(f: SessionFixture) {
    let backend = backend();
    f.start(&backend, None).sync();
    let before = f.records();
    f.append_records(&["{\"type\":\"assistant\",\"after\":\"restart\"}"]);
    backend.clear_requests();
    let report = f.start(&backend, None).sync();
    assert_eq!(report.lines, 1);
    let requests = backend.requests();
    let sent = chunks(&requests);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].chunk.as_ref().unwrap().first_line, before + 1);
    f.assert_all_stored(&backend);
}

#[test]
fn a_server_behind_the_file_gets_the_rest() {
    let backend = backend();
    let ws = Workspace::new();
    let full = std::fs::read(fixtures().join("tool_heavy.jsonl")).unwrap();
    let cut = full
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(9)
        .unwrap()
        .0
        + 1;
    let transcript = ws.write("behind.jsonl", &full[..cut]);
    Synced::start(&backend, config(&backend, &transcript)).sync();
    assert!(backend.session("behind").is_some());
    std::fs::write(&transcript, &full).unwrap();
    let report = Synced::start(&backend, config(&backend, &transcript)).sync();
    assert_eq!(report.lines as usize, lines_of(&transcript) - 10);
    assert_stored(&backend, "behind", &transcript);
}

#[test]
fn a_server_ahead_of_the_file_gets_nothing_until_the_file_passes_it() {
    let backend = backend();
    let full = std::fs::read(fixtures().join("tool_heavy.jsonl")).unwrap();
    let ws_full = Workspace::new();
    let synced = ws_full.write("ahead.jsonl", &full);
    Synced::start(&backend, config(&backend, &synced)).sync();
    // Another machine holds only the first 10 lines of the same session.
    let ws = Workspace::new();
    let cut = full
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(9)
        .unwrap()
        .0
        + 1;
    let transcript = ws.write("ahead.jsonl", &full[..cut]);
    let mut s = Synced::start(&backend, config(&backend, &transcript));
    let report = s.sync();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.lines, 0);
    // The file catches up and passes the server: only the new line goes up.
    std::fs::write(&transcript, &full).unwrap();
    append(&transcript, b"{\"type\":\"assistant\",\"new\":true}\n");
    assert_eq!(s.sync().lines, 1);
    assert_stored(&backend, "ahead", &transcript);
}

/// Real lines, repeated until the file is larger than `min_bytes`.
fn big_transcript(ws: &Workspace, name: &str, min_bytes: usize) -> std::path::PathBuf {
    let source = std::fs::read(fixtures().join(format!("{SESSION_A}.jsonl"))).unwrap();
    let mut data = Vec::with_capacity(min_bytes + source.len());
    while data.len() < min_bytes {
        data.extend_from_slice(&source);
    }
    ws.write(name, &data)
}

#[test]
fn a_transcript_over_40_mib_goes_up_in_several_chunks_each_under_16_mib() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = big_transcript(&ws, "big.jsonl", 41 << 20);
    let report = Synced::start(&backend, config(&backend, &transcript)).sync();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let requests = backend.requests();
    let sent = chunks(&requests);
    assert!(
        sent.len() >= 3,
        "41 MiB needs at least 3 chunks of 14 MiB, got {}",
        sent.len()
    );
    for r in &sent {
        assert!(
            r.body_bytes < 16 << 20,
            "a chunk body of {} bytes",
            r.body_bytes
        );
        assert_eq!(r.content_encoding.as_deref(), Some("zstd"));
    }
    let mut next = 1;
    for r in &sent {
        let c = r.chunk.as_ref().unwrap();
        assert_eq!(c.first_line, next, "chunks are contiguous");
        next += c.line_count as u64;
    }
    assert_stored(&backend, "big", &transcript);
}

#[test]
fn a_15_mib_line_fails_only_its_file_with_its_line_number() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_B);
    let agent = transcript
        .with_extension("")
        .join("subagents/agent-a7be2f0.jsonl");
    let line_no = lines_of(&transcript) + 2;
    append(&transcript, b"{\"type\":\"assistant\",\"ok\":1}\n");
    let mut huge = b"{\"type\":\"user\",\"pad\":\"".to_vec();
    huge.resize(huge.len() + (15 << 20), b'x');
    huge.extend_from_slice(b"\"}\n{\"type\":\"assistant\",\"after\":1}\n");
    append(&transcript, &huge);
    let report = Synced::start(&backend, config(&backend, &transcript)).sync();
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    let failure = &report.failed[0];
    assert_eq!(failure.name, format!("{SESSION_B}.jsonl"));
    let SyncError::InvalidInput(message) = &failure.error else {
        panic!("{:?}", failure.error)
    };
    assert!(
        message.contains(&format!("line {line_no} ")) && message.contains("15.0 MiB"),
        "{message}"
    );
    // Everything before the long line is stored; the subagents still synced.
    let stored = backend
        .file(SESSION_B, &format!("{SESSION_B}.jsonl"))
        .unwrap();
    assert_eq!(stored.iter().filter(|&&b| b == b'\n').count(), line_no - 1);
    assert_stored(&backend, SESSION_B, &agent);
}

fn agent_reference(id: &str, uuid: &str) -> String {
    format!(
        "{{\"type\":\"user\",\"uuid\":\"{uuid}\",\"message\":{{\"role\":\"user\",\"content\":[{{\"type\":\"tool_result\",\"tool_use_id\":\"t-{uuid}\",\"content\":\"done\"}}]}},\"toolUseResult\":{{\"agentId\":\"{id}\",\"status\":\"completed\"}}}}\n"
    )
}

#[test]
fn older_flat_layout_transitive_references_and_a_cycle() {
    let backend = backend();
    let ws = Workspace::new();
    let mut main = std::fs::read(fixtures().join("short.jsonl")).unwrap();
    main.extend_from_slice(agent_reference("deadbeef", "m1").as_bytes());
    main.extend_from_slice(agent_reference("../etc", "m2").as_bytes());
    let transcript = ws.write("flat.jsonl", &main);
    // deadbeef starts cafe1234, which refers back to deadbeef: a cycle.
    let a = ws.write(
        "agent-deadbeef.jsonl",
        format!(
            "{{\"type\":\"assistant\",\"a\":1}}\n{}",
            agent_reference("cafe1234", "a1")
        )
        .as_bytes(),
    );
    let b = ws.write(
        "agent-cafe1234.jsonl",
        format!(
            "{}{{\"type\":\"assistant\",\"b\":1}}\n",
            agent_reference("deadbeef", "b1")
        )
        .as_bytes(),
    );
    ws.write(
        "agent-99999999.jsonl",
        b"{\"type\":\"assistant\",\"other\":\"session\"}\n",
    );
    let report = Synced::start(&backend, config(&backend, &transcript)).sync();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        backend.file_names("flat"),
        ["agent-cafe1234.jsonl", "agent-deadbeef.jsonl", "flat.jsonl"],
        "referenced agents only, each once; an unreferenced agent file is not this session's"
    );
    for f in [&transcript, &a, &b] {
        assert_stored(&backend, "flat", f);
    }
}

#[test]
fn current_layout_finds_compaction_agents_and_agents_appearing_later() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_A);
    let mut s = Synced::start(&backend, config(&backend, &transcript));
    s.sync();
    assert!(backend
        .file_names(SESSION_A)
        .contains(&"agent-acompact-fffbd0.jsonl".to_string()));
    let late = transcript
        .with_extension("")
        .join("subagents/agent-acompact-123abc.jsonl");
    std::fs::write(&late, b"{\"type\":\"system\",\"late\":true}\n").unwrap();
    let report = s.sync();
    assert_eq!(report.lines, 1);
    assert_stored(&backend, SESSION_A, &late);
}

#[test]
fn rate_limits_with_retry_after_are_waited_out() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("tool_heavy.jsonl", "limited.jsonl");
    let mut s = Synced::start(&backend, config(&backend, &transcript));
    backend.inject(Fault::Status {
        path_prefix: "/api/v1/sync/chunk".into(),
        status: 429,
        retry_after_secs: Some(1),
        times: 2,
    });
    let report = s.sync();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report.retries >= 2);
    let limited = backend
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert_eq!(limited, 2);
    assert_stored(&backend, "limited", &transcript);
}

#[test]
fn a_wrong_key_is_unauthorized_and_never_echoed() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "denied.jsonl");
    let mut cfg = config(&backend, &transcript);
    cfg.api_key = "cfb_Wrong-Key_3Fq8Zr5Lx0Vb3Nm7Kp1Jd4Wt6Ys2cd".into();
    let mut instance = sandbox()
        .instantiate(&Grant::new(vec![ws.path()], &backend.url()))
        .unwrap();
    let session = instance.open(&cfg).unwrap().unwrap();
    match instance.init(session).unwrap() {
        Err(SyncError::Unauthorized(message)) => {
            assert!(
                !message.contains("WrongKey") && !message.contains('\n'),
                "{message}"
            );
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    match instance.sync_all(session).unwrap() {
        Err(SyncError::NotInitialized(_)) => {}
        other => panic!("sync before a successful init: {other:?}"),
    }
    assert!(backend.file_names("denied").is_empty());
}

#[test]
fn an_answer_lost_after_storing_does_not_duplicate_the_chunk() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_B);
    let mut s = Synced::start(&backend, config(&backend, &transcript));
    backend.inject(Fault::LoseAnswer {
        path_prefix: "/api/v1/sync/chunk".into(),
        times: 1,
    });
    let report = s.sync();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report.retries >= 1, "the lost answer was noticed");
    for file in session_files(&transcript) {
        assert_stored(&backend, SESSION_B, &file);
    }
    // And the next sync knows there is nothing left.
    assert_eq!(s.sync().lines, 0);
}

#[test]
fn metadata_reaches_the_backend_and_summaries_link_to_earlier_sessions() {
    let backend = backend();
    let ws = Workspace::new();
    let earlier = ws.copy_file("short.jsonl", "earlier.jsonl");
    Synced::start(&backend, config(&backend, &earlier)).sync();
    let mut later = std::fs::read(fixtures().join("subagent.jsonl")).unwrap();
    later.extend_from_slice(b"{\"type\":\"summary\",\"summary\":\"Earlier: fixing the parser\",\"leafUuid\":\"40003bdd-2613-4975-83d5-36fb0b6bbc59\"}\n");
    later.extend_from_slice(b"{\"type\":\"summary\",\"summary\":\"This session, first take\"}\n");
    later.extend_from_slice(b"{\"type\":\"summary\",\"summary\":\"This session, last word\"}\n");
    let transcript = ws.write("later.jsonl", &later);
    let mut s = Synced::start(&backend, config(&backend, &transcript));
    let report = s.sync();
    assert!(
        report.failed.is_empty() && report.warnings.is_empty(),
        "{report:?}"
    );

    let later_snapshot = backend.session("later").unwrap();
    let meta = &later_snapshot.chunk_metadata;
    assert_eq!(meta["summary"], "This session, last word");
    let first = meta["first_user_message"].as_str().unwrap();
    assert!(
        !first.is_empty() && first.len() <= 4096 && !first.contains('<'),
        "{first}"
    );
    assert_eq!(meta["git_info"]["branch"], "master");
    assert_eq!(
        later_snapshot.init_metadata["cwd"],
        "/home/marco/projects/spotter"
    );
    assert_eq!(later_snapshot.init_metadata["hostname"], "test-host");
    assert_eq!(
        backend.session("earlier").unwrap().summary_patch.as_deref(),
        Some("Earlier: fixing the parser")
    );

    let found = s
        .instance
        .find_session_by_leaf_uuid(
            ws.path().to_str().unwrap(),
            "40003bdd-2613-4975-83d5-36fb0b6bbc59",
            Some("later.jsonl"),
        )
        .unwrap();
    assert_eq!(found.as_deref(), Some("earlier"));
    let none = s
        .instance
        .find_session_by_leaf_uuid(ws.path().to_str().unwrap(), "no-such-uuid", None)
        .unwrap();
    assert_eq!(none, None);

    s.instance
        .send_event(
            s.session,
            "session_end",
            "2026-11-24T12:00:00Z",
            r#"{"reason":"exit","hook_event_name":"SessionEnd"}"#,
        )
        .unwrap()
        .unwrap();
    let events = backend.session("later").unwrap().events;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_type"], "session_end");
    assert_eq!(events[0]["payload"]["reason"], "exit");
}

#[test]
fn stats_reset_and_github_links() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_A);
    let mut s = Synced::start(&backend, config(&backend, &transcript));
    s.sync();
    let stats = s.instance.stats(s.session).unwrap();
    let main = stats
        .iter()
        .find(|f| f.name == format!("{SESSION_A}.jsonl"))
        .unwrap();
    assert_eq!(main.lines_synced as usize, lines_of(&transcript));
    assert_eq!(stats.len(), 3);
    let link = s
        .instance
        .link_github(s.session, "https://github.com/o/r/pull/7", Some("Fix"))
        .unwrap()
        .unwrap();
    assert_eq!(link.link_type, "pull_request");
    match s
        .instance
        .link_github(s.session, "https://github.com/o/r/pull/7", None)
        .unwrap()
    {
        Err(SyncError::Conflict(_)) => {}
        other => panic!("a duplicate link must be a conflict: {other:?}"),
    }
    s.instance.reset(s.session).unwrap();
    assert_eq!(s.instance.session_id(s.session).unwrap(), None);
    assert!(matches!(s.try_sync(), Err(SyncError::NotInitialized(_))));
    s.instance.init(s.session).unwrap().unwrap();
    assert_eq!(
        s.sync().lines,
        0,
        "after reset, init learns the server already has everything"
    );
}

/// Secrets planted in the transcript's lines (every few lines, among real
/// ones) never reach the backend; every other line arrives byte for byte.
fn planted_secrets_never_reach_the_backend_and_other_lines_stay_byte_identical(f: SessionFixture) {
    let backend = backend();
    let secrets = [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_0123456789abcdefghijABCDEFGHIJ012345",
        "hunter2-is-my-password",
        "cfb_ZZZZ-ZZZZZ_ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
    ];
    let source = std::fs::read(&f.transcript).unwrap();
    let every = (f.records() as usize / 8).clamp(1, 200);
    let mut planted = Vec::new();
    let mut planted_lines = 0u64;
    for (n, line) in source.split_inclusive(|&b| b == b'\n').enumerate() {
        // Before the line: the file's last line stays last (and stays
        // without its newline when it had none).
        if n % every == 0 {
            planted_lines += 1;
            let secret_line = format!(
                "{{\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":\"deploy with {} and {}\"}},\"config\":{{\"password\":\"{}\",\"key\":\"{}\"}},\"uuid\":\"planted-{n}\"}}\n",
                secrets[0], secrets[1], secrets[2], secrets[3]
            );
            planted.extend_from_slice(secret_line.as_bytes());
        }
        planted.extend_from_slice(line);
    }
    std::fs::write(&f.transcript, &planted).unwrap();
    let mut cfg = f.config(&backend);
    cfg.redaction = RedactionSettings {
        enabled: true,
        use_default_patterns: true,
        patterns: vec![],
    };
    let report = f.start_with(&backend, cfg, None).sync();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let redacted: u64 = report.redactions.iter().map(|c| c.count).sum();
    assert!(
        redacted >= 4 * planted_lines,
        "each planted line holds 4 secrets: {:?}",
        report.redactions
    );

    let stored = f.stored(&backend, f.transcript_name());
    let stored_lines: Vec<&[u8]> = stored
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let source_lines: Vec<&[u8]> = planted
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(stored_lines.len(), source_lines.len());
    let mut redacted_lines = 0;
    for (stored, source) in stored_lines.iter().zip(&source_lines) {
        let text = String::from_utf8_lossy(stored);
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "a secret reached the backend: {text}"
            );
        }
        serde_json::from_slice::<serde_json::Value>(stored)
            .expect("every stored line is valid JSON");
        if stored != source {
            redacted_lines += 1;
            assert!(text.contains("[REDACTED:"), "{text}");
        }
    }
    assert!(
        redacted_lines >= planted_lines,
        "{redacted_lines} < {planted_lines}"
    );
    if f.provider == "claude-code" {
        // SESSION_B's real lines hold no secret: only the planted ones changed.
        assert_eq!(redacted_lines, planted_lines);
        assert_eq!(redacted, 4 * planted_lines, "{:?}", report.redactions);
    }
    // The subagent files hold no planted secret: they arrive as they are,
    // but for what the default patterns find in their real lines.
    for (name, path) in &f.files[1..] {
        let stored = f.stored(&backend, name);
        let source = confab_e2e::providers::records_with_final_newline(path);
        assert_eq!(
            stored.iter().filter(|&&b| b == b'\n').count(),
            source.iter().filter(|&&b| b == b'\n').count(),
            "{name}"
        );
        if f.provider == "claude-code" {
            assert_eq!(stored, source, "{name}");
        }
    }
}

// ---------------------------------------------------------------------------
// Sessions as today's Confab handles them (issue 14)

/// Two Workflow tool runs beside SESSION_B's files: several agents and a
/// journal each, plus `*.meta.json` and `wf_*.json` that must stay local.
/// Returns (path-encoded name, source file) of what must go up.
fn write_workflow_runs(ws: &Workspace, uuid: &str) -> Vec<(String, std::path::PathBuf)> {
    let agent_lines = std::fs::read(fixtures().join("subagent.jsonl")).unwrap();
    let mut expected = Vec::new();
    for (run, agents) in [
        ("wf-7f3a", &["a1b2c3d", "b2c3d4e", "acompact-e1f845"][..]),
        ("wf-9c01", &["c3d4e5f", "d4e5f6a"][..]),
    ] {
        let folder = format!("{uuid}/subagents/workflows/{run}");
        for (i, agent) in agents.iter().enumerate() {
            let name = format!("agent-{agent}.jsonl");
            // Each agent a different number of real lines.
            let keep = agent_lines
                .split_inclusive(|&b| b == b'\n')
                .take(i + 2)
                .flatten()
                .copied()
                .collect::<Vec<u8>>();
            let path = ws.write(&format!("{folder}/{name}"), &keep);
            ws.write(
                &format!("{folder}/agent-{agent}.meta.json"),
                b"{\"agentType\":\"x\"}",
            );
            expected.push((format!("subagents/workflows/{run}/{name}"), path));
        }
        let journal = format!(
            "{{\"run\":\"{run}\",\"event\":\"start\"}}\n{{\"run\":\"{run}\",\"event\":\"done\"}}\n"
        );
        let path = ws.write(&format!("{folder}/journal.jsonl"), journal.as_bytes());
        ws.write(&format!("{folder}/wf_{run}.json"), b"{\"steps\":[]}");
        expected.push((format!("subagents/workflows/{run}/journal.jsonl"), path));
    }
    expected
}

fn assert_workflows_stored(
    backend: &Backend,
    uuid: &str,
    expected: &[(String, std::path::PathBuf)],
) {
    let snapshot = backend.session(uuid).unwrap();
    for (name, source) in expected {
        assert_eq!(
            backend.file(uuid, name).as_deref(),
            Some(std::fs::read(source).unwrap().as_slice()),
            "{name} byte for byte"
        );
        let want = if name.ends_with("journal.jsonl") {
            "workflow_journal"
        } else {
            "agent"
        };
        assert_eq!(snapshot.file_types[name], want, "{name}");
    }
    for name in backend.file_names(uuid) {
        assert!(!name.ends_with(".json"), "{name} must not go up");
    }
}

use confab_host::backend::{current_capabilities, Backend, BackendConfig};

fn backend_with_capabilities(capabilities: Option<serde_json::Value>) -> Backend {
    Backend::start(BackendConfig {
        api_keys: vec![KEY.to_string()],
        capabilities,
        ..BackendConfig::default()
    })
    .unwrap()
}

#[test]
fn workflow_runs_are_stored_byte_for_byte_when_the_backend_advertises_them() {
    let backend = backend_with_capabilities(Some(current_capabilities()));
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_B);
    let expected = write_workflow_runs(&ws, SESSION_B);
    let mut s = Synced::start(&backend, config(&backend, &transcript));
    let report = s.sync();
    assert!(
        report.failed.is_empty() && report.warnings.is_empty(),
        "{report:?}"
    );
    assert_workflows_stored(&backend, SESSION_B, &expected);
    for file in session_files(&transcript) {
        if file.is_file() {
            assert_stored(&backend, SESSION_B, &file);
        }
    }
    // Read back over the API, as a user would check.
    let names = backend.file_names(SESSION_B);
    assert_eq!(names.len(), 3 + expected.len(), "{names:?}");

    // A fresh instance finds them again and resumes from the server's counts.
    append(
        &expected[0].1,
        b"{\"type\":\"system\",\"uuid\":\"wf-more\"}\n",
    );
    backend.clear_requests();
    let again = Synced::start(&backend, config(&backend, &transcript)).sync();
    assert_eq!(again.lines, 1, "{again:?}");
    assert_workflows_stored(&backend, SESSION_B, &expected);
}

#[test]
fn an_older_backend_answering_404_gets_no_workflow_files() {
    let backend = backend_with_capabilities(None);
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_B);
    write_workflow_runs(&ws, SESSION_B);
    let mut s = Synced::start(&backend, config(&backend, &transcript));
    let report = s.sync();
    assert!(report.failed.is_empty(), "{report:?}");
    s.sync();
    let names = backend.file_names(SESSION_B);
    assert!(names.iter().all(|n| !n.contains('/')), "{names:?}");
    let probes = backend
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/capabilities")
        .count();
    assert_eq!(probes, 1, "a 404 is kept for the session");
}

#[test]
fn after_a_transient_probe_failure_workflow_files_go_up_on_the_next_sync() {
    let backend = backend_with_capabilities(Some(current_capabilities()));
    backend.inject(Fault::Status {
        path_prefix: "/api/v1/capabilities".into(),
        status: 503,
        retry_after_secs: None,
        times: 1,
    });
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_B);
    let expected = write_workflow_runs(&ws, SESSION_B);
    let mut s = Synced::start(&backend, config(&backend, &transcript));
    let first = s.sync();
    assert!(first.failed.is_empty(), "{first:?}");
    assert!(!first.warnings.is_empty(), "the deferral is said");
    assert!(backend
        .file_names(SESSION_B)
        .iter()
        .all(|n| !n.contains('/')));
    let second = s.sync();
    assert!(second.failed.is_empty(), "{second:?}");
    assert_workflows_stored(&backend, SESSION_B, &expected);
}

#[test]
fn summaries_arrive_cleaned_on_the_session_and_through_the_leaf_link() {
    let backend = backend();
    let ws = Workspace::new();
    let earlier = ws.copy_file("short.jsonl", "earlier.jsonl");
    Synced::start(&backend, config(&backend, &earlier)).sync();
    let mut later = std::fs::read(fixtures().join("subagent.jsonl")).unwrap();
    later.extend_from_slice(b"{\"type\":\"summary\",\"summary\":\"Earlier: <b>fixing</b> the parser &amp; lexer\",\"leafUuid\":\"40003bdd-2613-4975-83d5-36fb0b6bbc59\"}\n");
    later.extend_from_slice(b"{\"type\":\"summary\",\"summary\":\"Fixed the <b>login</b>\\n\\n   bug &lt;for real&gt;\"}\n");
    let transcript = ws.write("later.jsonl", &later);
    let report = Synced::start(&backend, config(&backend, &transcript)).sync();
    assert!(
        report.failed.is_empty() && report.warnings.is_empty(),
        "{report:?}"
    );
    assert_eq!(
        backend.session("later").unwrap().chunk_metadata["summary"],
        "Fixed the login bug <for real>"
    );
    assert_eq!(
        backend.session("earlier").unwrap().summary_patch.as_deref(),
        Some("Earlier: fixing the parser & lexer")
    );
}

#[test]
fn a_reinit_after_a_failed_chunk_resends_the_first_inits_metadata() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_A);
    let mut s = Synced::start(&backend, config(&backend, &transcript));
    backend.inject(Fault::Status {
        path_prefix: "/api/v1/sync/chunk".into(),
        status: 503,
        retry_after_secs: None,
        times: 1,
    });
    let report = s.sync();
    assert!(report.failed.is_empty(), "{report:?}");
    let inits = backend.session(SESSION_A).unwrap().init_history;
    assert!(inits.len() >= 2, "a re-init happened: {inits:?}");
    assert_eq!(inits[0]["hostname"], "test-host");
    assert_eq!(inits[0]["username"], "tester");
    assert_eq!(inits[0]["cwd"], "/home/marco/projects/spotter");
    for later in &inits[1..] {
        assert_eq!(later, &inits[0]);
    }
}

#[test]
fn git_remotes_arrive_with_credentials_stripped() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    // The project folder is the transcript's folder here: the only one granted.
    ws.write(
        ".git/config",
        b"[remote \"origin\"]\n\turl = https://alice:ghp_s3cret@github.com/o/r.git\n\
          [remote \"fork\"]\n\turl = git@github.com:alice/r.git\n\tpushurl = https://alice:pw@gitlab.com/alice/r.git\n\
          [branch \"master\"]\n\tremote = origin\n",
    );
    let mut c = config(&backend, &transcript);
    c.cwd = ws.path().to_str().unwrap().to_string();
    let report = Synced::start(&backend, c).sync();
    assert!(report.failed.is_empty(), "{report:?}");
    let git = &backend.session("short").unwrap().init_metadata["git_info"];
    assert_eq!(git["repo_url"], "https://github.com/o/r.git");
    assert_eq!(
        git["remotes"],
        serde_json::json!([
            {"name": "origin", "fetch_url": "https://github.com/o/r.git", "push_url": "https://github.com/o/r.git"},
            {"name": "fork", "fetch_url": "git@github.com:alice/r.git", "push_url": "https://gitlab.com/alice/r.git"},
        ])
    );
    let all = serde_json::to_string(&backend.session("short").unwrap().init_metadata).unwrap();
    assert!(!all.contains("s3cret") && !all.contains(":pw@"), "{all}");
}
