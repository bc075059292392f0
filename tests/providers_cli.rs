//! End to end through the real `wasmtime` CLI and `confab-host`: Codex and
//! Cursor sessions synced as a user runs them, with the grants each needs,
//! `--provider`, and each agent's hook input (a Codex `SessionStart` for a
//! spawned thread, a Codex `Stop`, Cursor's `sessionStart` without a
//! transcript path and its `sessionEnd`).

use confab_e2e::providers::*;
use confab_e2e::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// `wasmtime run -S http --dir <each folder> --env ... confab_sync.wasm <args>`.
fn wasmtime_run(
    folders: &[&Path],
    env: &[(&str, String)],
    args: &[&str],
    stdin: &[u8],
) -> Finished {
    let mut cmd = Command::new(wasmtime_cli());
    cmd.args(["run", "-S", "http"]);
    for folder in folders {
        cmd.arg("--dir").arg(folder);
    }
    for (k, v) in env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    cmd.arg(component_path()).args(args);
    let done = run_bounded(cmd, stdin, LIMIT);
    assert!(
        done.status.is_some(),
        "still running: {}",
        done.stderr_text()
    );
    done
}

fn env_for(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CONFAB_BACKEND_URL", url.to_string()),
        ("CONFAB_API_KEY", KEY.to_string()),
    ]
}

fn base_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// `confab-host <args>` against `backend`, with a state folder of its own.
fn confab_host(
    backend: &confab_host::backend::Backend,
    state: &Path,
    args: &[&str],
    stdin: &[u8],
) -> Finished {
    let mut cmd = Command::new(confab_host_path());
    cmd.args(args)
        .arg("--state-dir")
        .arg(state)
        .env("CONFAB_BACKEND_URL", backend.url())
        .env("CONFAB_API_KEY", KEY)
        .env("CONFAB_COMPONENT", component_path())
        .env("XDG_CACHE_HOME", state.join("cache"))
        .env_remove("CONFAB_CONFIG_PATH")
        .env("HOME", state);
    let done = run_bounded(cmd, stdin, LIMIT);
    assert!(
        done.status.is_some(),
        "still running: {}",
        done.stderr_text()
    );
    done
}

#[test]
fn wasmtime_run_syncs_a_codex_session_with_the_sessions_folder_granted() {
    let backend = backend();
    let ws = Workspace::new();
    let sessions = ws.copy_codex_sessions();
    let root = rollout_of(&sessions, CODEX_ROOT);
    // As the README shows: the whole sessions/ tree, the rollout named.
    let done = wasmtime_run(
        &[&sessions],
        &env_for(&backend.url()),
        &["sync", root.to_str().unwrap(), "--json"],
        b"",
    );
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(report["files"].as_array().unwrap().len(), 4, "{report}");
    assert_stored_as(&backend, "codex", CODEX_ROOT, &base_name(&root), &root);
    for kid in CODEX_KIDS {
        let p = rollout_of(&sessions, kid);
        assert_stored_as(&backend, "codex", CODEX_ROOT, &base_name(&p), &p);
    }
    let snapshot = backend.session_of("codex", CODEX_ROOT).unwrap();
    assert_eq!(snapshot.codex_rollouts.len(), 4);
    assert_eq!(
        snapshot.chunk_metadata["first_user_message"].as_str(),
        codex_first_user_message(&root).as_deref()
    );
}

#[test]
fn wasmtime_run_stores_every_codex_fixture_session_byte_for_byte() {
    let backend = backend();
    let ws = Workspace::new();
    let sessions = ws.copy_codex_sessions();
    let all = rollouts(&sessions);
    let roots: Vec<_> = all.iter().filter(|p| parent_of(p).is_none()).collect();
    assert_eq!(roots.len(), 7);
    for root in roots {
        let thread = session_meta(root)["id"].as_str().unwrap().to_string();
        let done = wasmtime_run(
            &[&sessions],
            &env_for(&backend.url()),
            &["sync", root.to_str().unwrap()],
            b"",
        );
        assert_eq!(done.code(), Some(0), "{thread}: {}", done.stderr_text());
        let members: Vec<_> = all
            .iter()
            .filter(|p| *p == root || parent_of(p).as_deref() == Some(thread.as_str()))
            .collect();
        let mut names: Vec<String> = members.iter().map(|p| base_name(p)).collect();
        names.sort();
        assert_eq!(backend.file_names(&thread), names, "{thread}");
        for file in members {
            assert_stored_as(&backend, "codex", &thread, &base_name(file), file);
        }
        let snapshot = backend.session_of("codex", &thread).unwrap();
        assert_eq!(snapshot.codex_rollouts.len(), names.len(), "{thread}");
        assert_eq!(
            snapshot.chunk_metadata["first_user_message"].as_str(),
            codex_first_user_message(root).as_deref(),
            "{thread}"
        );
    }
}

#[test]
fn wasmtime_run_syncs_a_nested_cursor_conversation_with_its_subagents() {
    let backend = backend();
    let ws = Workspace::new();
    let flat = ws.copy_cursor_projects();
    let id = CURSOR_IDS[2];
    let (transcript, subs) = nest_cursor_conversation(&flat, id, &CURSOR_IDS[1..2]);
    let (dir, sub) = (transcript.parent().unwrap().to_path_buf(), &subs[0]);
    let done = wasmtime_run(
        &[&dir],
        &env_for(&backend.url()),
        &["sync", transcript.to_str().unwrap()],
        b"",
    );
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    let sub_name = format!("subagents/{}.jsonl", CURSOR_IDS[1]);
    let mut names = vec![format!("{id}.jsonl"), sub_name.clone()];
    names.sort();
    assert_eq!(backend.file_names(id), names, "no .txt twin goes up");
    // The transcript is one record without its newline: stored whole.
    assert_stored_as(&backend, "cursor", id, &format!("{id}.jsonl"), &transcript);
    assert_stored_as(&backend, "cursor", id, &sub_name, sub);
    let snapshot = backend.session_of("cursor", id).unwrap();
    assert_eq!(snapshot.file_types[&sub_name], "agent");
    let first = snapshot.chunk_metadata["first_user_message"]
        .as_str()
        .unwrap();
    assert!(
        !first.is_empty() && !first.contains("<user_query>"),
        "{first}"
    );
}

#[test]
fn wasmtime_run_syncs_a_cursor_conversation_and_its_chats_title() {
    let backend = backend();
    let ws = Workspace::new();
    let flat = ws.copy_cursor_projects();
    let id = CURSOR_IDS[3];
    let transcript = flat.join(format!("{id}.jsonl"));
    let chats = ws.path().join(".cursor/chats");
    std::fs::create_dir_all(chats.join("a1b2").join(id)).unwrap();
    std::fs::write(
        chats.join("a1b2").join(id).join("meta.json"),
        br#"{"title":"Subagent skill draft"}"#,
    )
    .unwrap();
    let done = wasmtime_run(
        &[&flat, &chats],
        &env_for(&backend.url()),
        &["sync", transcript.to_str().unwrap(), "--provider", "cursor"],
        b"",
    );
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(backend.file_names(id), vec![format!("{id}.jsonl")]);
    assert_stored_as(&backend, "cursor", id, &format!("{id}.jsonl"), &transcript);
    let meta = backend.session_of("cursor", id).unwrap().chunk_metadata;
    assert_eq!(meta["summary"], "Subagent skill draft");
    assert_eq!(
        meta["latest_message_at"],
        mtime_rfc3339(&transcript).as_str()
    );
}

#[test]
fn an_unknown_provider_is_a_one_line_usage_error_naming_the_supported_ones() {
    let backend = backend();
    let ws = Workspace::new();
    let transcript = ws.copy_file("short.jsonl", "short.jsonl");
    let path = transcript.to_str().unwrap();
    let done = wasmtime_run(
        &[&ws.path()],
        &env_for(&backend.url()),
        &["sync", path, "--provider", "opencode"],
        b"",
    );
    assert_eq!(done.code(), Some(1));
    let err = done.stderr_text();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("claude-code, codex, cursor"), "{err}");
    // confab-host says it with exit 2, before anything runs; so for a path
    // that names no agent's session file.
    let state = ws.path().join("state");
    for args in [
        vec!["sync", path, "--provider", "opencode"],
        vec!["sync", "/tmp/notes.txt"],
    ] {
        let done = confab_host(&backend, &state, &args, b"");
        assert_eq!(done.code(), Some(2), "{args:?}: {}", done.stderr_text());
        let err = done.stderr_text();
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("claude-code, codex, cursor"), "{err}");
    }
    assert!(backend.requests().is_empty(), "nothing was sent");
}

/// A Codex hook input (`~/.codex/config.toml` hooks get this on stdin).
fn codex_hook(rollout: &Path, thread: &str, event: &str) -> String {
    serde_json::json!({
        "session_id": thread,
        "transcript_path": rollout.to_str().unwrap(),
        "cwd": "/Users/ivanma/Desktop/gauntlet/ShipShape/ship",
        "hook_event_name": event,
        "model": "gpt-5.1-codex",
        "source": "startup",
    })
    .to_string()
}

#[test]
fn a_codex_session_start_for_a_spawned_thread_syncs_the_roots_session_and_stop_is_no_end() {
    let backend = backend();
    let ws = Workspace::new();
    let sessions = ws.copy_codex_sessions();
    let kid = rollout_of(&sessions, CODEX_KIDS[0]);
    let input = codex_hook(&kid, CODEX_KIDS[0], "SessionStart");
    let done = wasmtime_run(
        &[&sessions],
        &env_for(&backend.url()),
        &["hook"],
        input.as_bytes(),
    );
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(done.stdout.is_empty(), "{}", done.stdout_text());
    assert!(done.stderr.is_empty(), "{}", done.stderr_text());
    let root = rollout_of(&sessions, CODEX_ROOT);
    assert_stored_as(&backend, "codex", CODEX_ROOT, &base_name(&root), &root);
    assert_stored_as(&backend, "codex", CODEX_ROOT, &base_name(&kid), &kid);
    assert!(backend.session_of("codex", CODEX_KIDS[0]).is_none());
    // Codex fires Stop after every turn: a sync, never a session end.
    append(&root, b"{\"timestamp\":\"t\",\"type\":\"event_msg\",\"payload\":{\"type\":\"agent_message\",\"message\":\"turn done\"}}\n");
    let state = ws.path().join("state");
    let stop = codex_hook(&root, CODEX_ROOT, "Stop");
    let done = confab_host(&backend, &state, &["hook"], stop.as_bytes());
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert_stored_as(&backend, "codex", CODEX_ROOT, &base_name(&root), &root);
    let snapshot = backend.session_of("codex", CODEX_ROOT).unwrap();
    assert!(snapshot.events.is_empty(), "{:?}", snapshot.events);
}

#[test]
fn cursor_hooks_find_the_transcript_from_the_workspace_and_end_the_session() {
    let backend = backend();
    let ws = Workspace::new();
    let home = ws.path();
    // ~/.cursor/projects/<workspace>/agent-transcripts/<id>/<id>.jsonl, the
    // workspace folder named from the first root as Cursor names it.
    let root_folder = "/Users/speedybee/Documents/dev/personal-config";
    let id = CURSOR_IDS[0];
    let dir = home
        .join(".cursor/projects")
        .join(CURSOR_WORKSPACE)
        .join("agent-transcripts")
        .join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let transcript = dir.join(format!("{id}.jsonl"));
    std::fs::copy(
        cursor_fixtures()
            .join("projects")
            .join(CURSOR_WORKSPACE)
            .join("agent-transcripts")
            .join(format!("{id}.jsonl")),
        &transcript,
    )
    .unwrap();
    let start = serde_json::json!({
        "conversation_id": id, "session_id": id, "generation_id": "g1",
        "workspace_roots": [root_folder], "model": "claude-4.5-sonnet",
        "hook_event_name": "sessionStart", "transcript_path": null,
    })
    .to_string();
    let mut env = env_for(&backend.url());
    env.push(("HOME", home.to_string_lossy().into_owned()));
    let done = wasmtime_run(&[&dir], &env, &["hook"], start.as_bytes());
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert!(done.stderr.is_empty(), "{}", done.stderr_text());
    assert_stored_as(&backend, "cursor", id, &format!("{id}.jsonl"), &transcript);
    assert!(backend.session_of("cursor", id).unwrap().events.is_empty());
    let end = serde_json::json!({
        "conversation_id": id, "workspace_roots": [root_folder],
        "hook_event_name": "sessionEnd", "transcript_path": transcript.to_str().unwrap(),
        "reason": "user_closed", "final_status": "completed", "duration_ms": 81234,
    })
    .to_string();
    let state = ws.path().join("state");
    let done = confab_host(&backend, &state, &["hook"], end.as_bytes());
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    let events = backend.session_of("cursor", id).unwrap().events;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event_type"], "session_end");
    assert_eq!(events[0]["payload"]["final_status"], "completed");
}

#[test]
fn confab_host_grants_a_codex_subagents_whole_sessions_tree() {
    let backend = backend();
    let ws = Workspace::new();
    let sessions = ws.copy_codex_sessions();
    // The root in another day's folder than its subagent.
    let root = rollout_of(&sessions, CODEX_ROOT);
    let moved = sessions.join("2026/03/11").join(base_name(&root));
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&root, &moved).unwrap();
    let kid = rollout_of(&sessions, CODEX_KIDS[2]);
    let state = ws.path().join("state");
    let done = confab_host(&backend, &state, &["sync", kid.to_str().unwrap()], b"");
    assert_eq!(done.code(), Some(0), "{}", done.stderr_text());
    assert_stored_as(&backend, "codex", CODEX_ROOT, &base_name(&moved), &moved);
    assert_stored_as(&backend, "codex", CODEX_ROOT, &base_name(&kid), &kid);
    assert!(state.join("codex-rollouts.json").is_file());
}
