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
        assert_eq!(files.len(), 3, "fixture {uuid} has a transcript and two subagents");
        for file in &files {
            assert_stored(&backend, uuid, file);
        }
        let mut expected: Vec<String> =
            files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
        expected.sort();
        assert_eq!(backend.file_names(uuid), expected);
        let snapshot = backend.session(uuid).unwrap();
        for f in &files[1..] {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(snapshot.file_types.get(&name).map(String::as_str), Some("agent"), "{name}");
        }
    }
    for (fixture, id) in [("short.jsonl", "short"), ("subagent.jsonl", "subagent"), ("tool_heavy.jsonl", "tool_heavy")] {
        let transcript = ws.copy_file(fixture, fixture);
        let report = Synced::start(&backend, config(&backend, &transcript)).sync();
        assert!(report.failed.is_empty(), "{fixture}: {:?}", report.failed);
        assert_stored(&backend, id, &transcript);
    }
}
