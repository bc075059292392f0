//! End to end: Codex and Cursor sessions through the built component under
//! wasmtime, into the local backend (issue 16's acceptance).

use confab_e2e::providers::*;
use confab_e2e::*;
use std::path::Path;

fn base_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_codex_fixture_session_is_stored_byte_for_byte_with_no_database() {
    let backend = recording_backend();
    let ws = Workspace::new();
    let sessions = ws.copy_codex_sessions();
    let all = rollouts(&sessions);
    let roots: Vec<_> = all
        .iter()
        .filter(|p| parent_of(p).is_none())
        .cloned()
        .collect();
    assert_eq!(roots.len(), 7, "the fixtures hold seven user sessions");
    for root in &roots {
        let thread = session_meta(root)["id"].as_str().unwrap().to_string();
        let mut s = start_with(
            &backend,
            provider_config(&backend, root),
            vec![sessions.clone()],
            None,
        );
        let report = s.sync();
        assert!(report.failed.is_empty(), "{thread}: {:?}", report.failed);
        let snapshot = backend
            .session_of("codex", &thread)
            .expect("a codex session");
        assert_eq!(snapshot.provider, "codex");
        let mut members: Vec<_> = all
            .iter()
            .filter(|p| *p == root || parent_of(p).as_deref() == Some(thread.as_str()))
            .cloned()
            .collect();
        members.sort();
        let mut names: Vec<String> = members.iter().map(|p| base_name(p)).collect();
        names.sort();
        assert_eq!(backend.file_names(&thread), names, "{thread}");
        for file in &members {
            assert_stored_as(&backend, "codex", &thread, &base_name(file), file);
            let want = if file == root { "transcript" } else { "agent" };
            assert_eq!(snapshot.file_types[&base_name(file)], want);
            let meta = session_meta(file);
            let id = meta["id"].as_str().unwrap();
            let rollout = &snapshot.codex_rollouts[id];
            assert_eq!(rollout["rollout_path"], file.to_str().unwrap());
            assert_eq!(rollout["cwd"], meta["cwd"]);
            match parent_of(file) {
                Some(parent) => {
                    assert_eq!(rollout["parent_thread_uuid"], parent.as_str());
                    assert_eq!(rollout["source"], "subagent");
                    assert_eq!(rollout["agent_nickname"], meta["agent_nickname"]);
                }
                None => {
                    assert!(rollout.get("parent_thread_uuid").is_none());
                    assert_eq!(rollout["source"], meta["source"]);
                }
            }
        }
        assert_eq!(
            snapshot.codex_rollouts.len(),
            members.len(),
            "{thread}: one codex_rollout per rollout"
        );
        assert_eq!(
            snapshot.chunk_metadata["first_user_message"].as_str(),
            codex_first_user_message(root).as_deref(),
            "{thread}"
        );
        if thread == CODEX_ROOT {
            assert_eq!(members.len(), 4, "the root and its three subagents");
        }
    }
    // codex_rollout rides on each rollout's first chunk only.
    for r in chunks(&backend.requests()) {
        let chunk = r.chunk.as_ref().unwrap();
        let has = chunk_metadata(r).is_some_and(|m| m.get("codex_rollout").is_some());
        assert_eq!(has, chunk.first_line == 1, "{}", chunk.file_name);
    }
}

#[test]
fn a_sync_started_from_a_subagents_rollout_syncs_the_roots_session() {
    let backend = backend();
    let ws = Workspace::new();
    let sessions = ws.copy_codex_sessions();
    let kid = rollout_of(&sessions, CODEX_KIDS[1]);
    let report = start_with(
        &backend,
        provider_config(&backend, &kid),
        vec![sessions.clone()],
        None,
    )
    .sync();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let root = rollout_of(&sessions, CODEX_ROOT);
    let snapshot = backend
        .session_of("codex", CODEX_ROOT)
        .expect("the root's session");
    assert_eq!(snapshot.transcript_path, root.to_str().unwrap());
    assert_eq!(snapshot.file_types[&base_name(&root)], "transcript");
    assert_stored_as(&backend, "codex", CODEX_ROOT, &base_name(&root), &root);
    for kid in CODEX_KIDS {
        let path = rollout_of(&sessions, kid);
        assert_stored_as(&backend, "codex", CODEX_ROOT, &base_name(&path), &path);
    }
    assert!(
        backend.session_of("codex", CODEX_KIDS[1]).is_none(),
        "no session of its own for a subagent"
    );
}

#[test]
fn a_subagent_spawned_between_two_syncs_is_picked_up_by_the_second() {
    let backend = backend();
    let ws = Workspace::new();
    let sessions = ws.copy_codex_sessions();
    let late = rollout_of(&sessions, CODEX_KIDS[2]);
    let late_bytes = std::fs::read(&late).unwrap();
    std::fs::remove_file(&late).unwrap();
    let state = ws.path().join("state");
    let root = rollout_of(&sessions, CODEX_ROOT);
    let mut s = start_with(
        &backend,
        provider_config(&backend, &root),
        vec![sessions.clone()],
        Some(&state),
    );
    assert!(s.sync().failed.is_empty());
    assert_eq!(backend.file_names(CODEX_ROOT).len(), 3);
    // Spawned on another day, its first line half written at first.
    let moved = sessions.join("2026/03/13").join(base_name(&late));
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    let first_newline = late_bytes.iter().position(|&b| b == b'\n').unwrap();
    std::fs::write(&moved, &late_bytes[..first_newline / 2]).unwrap();
    let report = s.sync();
    assert_eq!(
        report.lines, 0,
        "a first line being written is no rollout yet"
    );
    std::fs::write(&moved, &late_bytes).unwrap();
    let report = s.sync();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_stored_as(&backend, "codex", CODEX_ROOT, &base_name(&moved), &moved);
    // A restarted process with the state folder finds it again, reads no
    // rollout's first line, and uploads nothing.
    let mut again = start_with(
        &backend,
        provider_config(&backend, &root),
        vec![sessions.clone()],
        Some(&state),
    );
    let report = again.sync();
    assert_eq!((report.lines, report.chunks), (0, 0));
    assert!(state.join("codex-rollouts.json").is_file());
}

/// A Cursor conversation in the current layout, built from the fixtures'
/// real lines: `<id>/<id>.jsonl` (no final newline, as Cursor writes),
/// its `.txt` twin, and two subagents from other conversations' lines.
fn nested_cursor(ws: &Workspace) -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
    let flat = ws.copy_cursor_projects();
    nest_cursor_conversation(&flat, CURSOR_IDS[0], &CURSOR_IDS[1..3])
}

fn cursor_first_user_message(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let raw = first["message"]["content"][0]["text"].as_str().unwrap();
    let inner = match raw.find("<user_query>") {
        Some(i) => {
            let rest = &raw[i + "<user_query>".len()..];
            &rest[..rest.find("</user_query>").unwrap_or(rest.len())]
        }
        None => raw,
    };
    inner.trim().to_string()
}

#[test]
fn a_cursor_conversation_in_the_nested_layout_with_subagents_and_metadata() {
    let backend = recording_backend();
    let ws = Workspace::new();
    let (transcript, subs) = nested_cursor(&ws);
    let id = CURSOR_IDS[0];
    // meta.json's title, where Cursor keeps it: ~/.cursor/chats/<hash>/<id>/.
    let chats = ws.path().join(".cursor/chats");
    let meta_dir = chats.join("4f1e0c").join(id);
    std::fs::create_dir_all(&meta_dir).unwrap();
    std::fs::write(
        meta_dir.join("meta.json"),
        br#"{"title":"Git config cleanup","createdAtMs":1760000000000}"#,
    )
    .unwrap();
    let dir = transcript.parent().unwrap().to_path_buf();
    let mut s = start_with(
        &backend,
        provider_config(&backend, &transcript),
        vec![dir, chats],
        None,
    );
    let report = s.sync();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let snapshot = backend.session_of("cursor", id).expect("a cursor session");
    let mut names = vec![format!("{id}.jsonl")];
    names.extend(subs.iter().map(|p| format!("subagents/{}", base_name(p))));
    names.sort();
    assert_eq!(backend.file_names(id), names, "no .txt twin goes up");
    assert_stored_as(&backend, "cursor", id, &format!("{id}.jsonl"), &transcript);
    for sub in &subs {
        let name = format!("subagents/{}", base_name(sub));
        assert_eq!(snapshot.file_types[&name], "agent");
        assert_stored_as(&backend, "cursor", id, &name, sub);
    }
    let meta = &snapshot.chunk_metadata;
    assert_eq!(
        meta["first_user_message"],
        cursor_first_user_message(&transcript).as_str()
    );
    assert!(!meta["first_user_message"]
        .as_str()
        .unwrap()
        .contains("user_query"));
    assert_eq!(meta["summary"], "Git config cleanup");
    assert_eq!(
        meta["latest_message_at"],
        mtime_rfc3339(&transcript).as_str()
    );
    // latest_message_at on every transcript chunk, never on an agent's.
    for r in chunks(&backend.requests()) {
        let chunk = r.chunk.as_ref().unwrap();
        let has = chunk_metadata(r).is_some_and(|m| m.get("latest_message_at").is_some());
        assert_eq!(has, chunk.file_type == "transcript", "{}", chunk.file_name);
    }
    assert_eq!(std::fs::read(&transcript).unwrap().last(), Some(&b'}'));
    // A record appended Cursor's way (newline first) goes up after the rest.
    let before = records_with_final_newline(&transcript);
    append(
        &transcript,
        b"\n{\"role\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}}",
    );
    let report = s.sync();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let stored = backend
        .file_of("cursor", id, &format!("{id}.jsonl"))
        .unwrap();
    assert_eq!(report.lines, 1, "only the new record");
    assert!(stored.starts_with(&before), "nothing stored before changes");
    let stored_lines = stored.iter().filter(|&&b| b == b'\n').count();
    let records = std::fs::read_to_string(&transcript)
        .unwrap()
        .lines()
        .count();
    assert_eq!(stored_lines, records, "nothing doubled, no empty line");
    assert_stored_as(&backend, "cursor", id, &format!("{id}.jsonl"), &transcript);
}

#[test]
fn a_cursor_conversation_in_the_older_flat_layout() {
    let backend = backend();
    let ws = Workspace::new();
    let flat = ws.copy_cursor_projects();
    for id in CURSOR_IDS {
        let transcript = flat.join(format!("{id}.jsonl"));
        let report = start_with(
            &backend,
            provider_config(&backend, &transcript),
            vec![flat.clone()],
            None,
        )
        .sync();
        assert!(report.failed.is_empty(), "{id}: {:?}", report.failed);
        let names = backend.file_names(id);
        let source = std::fs::read(&transcript).unwrap();
        assert_eq!(
            source.last(),
            Some(&b'}'),
            "{id}: Cursor ends with no newline"
        );
        // Every record goes up, the last one too (bcb7e972 is one record).
        assert_eq!(
            names,
            vec![format!("{id}.jsonl")],
            "{id}: the .txt twin stays local"
        );
        assert_stored_as(&backend, "cursor", id, &format!("{id}.jsonl"), &transcript);
        let snapshot = backend.session_of("cursor", id).unwrap();
        assert_eq!(
            snapshot.chunk_metadata["first_user_message"],
            cursor_first_user_message(&transcript).as_str()
        );
        assert!(
            snapshot.chunk_metadata.get("summary").is_none(),
            "no meta.json granted"
        );
    }
}

#[test]
fn a_provider_named_on_the_config_wins_and_an_unknown_one_is_refused() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let mut config = config(&backend, &transcript);
    config.provider = Some("opencode".into());
    let folder = transcript.parent().unwrap().to_path_buf();
    let mut instance = sandbox()
        .instantiate(&Grant::new(vec![folder], &backend.url()))
        .unwrap();
    let Err(e) = instance.open(&config).expect("no trap") else {
        panic!("an unknown provider was accepted");
    };
    let text = format!("{e:?}");
    assert!(text.contains("claude-code, codex, cursor"), "{text}");
    config.provider = Some("cursor".into());
    let session = instance.open(&config).expect("no trap").expect("open");
    instance.init(session).expect("no trap").expect("init");
    assert!(backend.session_of("cursor", "short").is_some());
    assert!(backend.session_of("claude-code", "short").is_none());
}
