//! With redaction on, no secret leaves the machine: the planted-secrets
//! corpus (`tests/fixtures/secrets/planted.json`, every kind the default
//! patterns know) is planted in real fixture lines, in the first user
//! message, in the session's own summary and in a summary linked to an
//! earlier session by `leafUuid`; the session is synced by the component
//! under wasmtime, a `session_end` event and a GitHub link are sent, and
//! then every request body the backend received (its request log, not only
//! what it stored) is searched for each secret.

use confab_e2e::*;
use confab_host::backend::{Backend, BackendConfig};
use serde_json::Value;
use std::collections::BTreeSet;

struct Planted {
    kind: String,
    text: String,
    secret: String,
}

fn corpus() -> Vec<Planted> {
    let path = root().join("tests/fixtures/secrets/planted.json");
    let raw: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&path).expect("the corpus")).expect("corpus JSON");
    raw.iter()
        .map(|e| Planted {
            kind: e["kind"].as_str().unwrap().to_string(),
            text: e["text"].as_str().unwrap().to_string(),
            secret: e["secret"].as_str().unwrap().to_string(),
        })
        .collect()
}

/// Ways a secret can appear in a body: as is, JSON-escaped (a PEM block's
/// newlines), and its first and last 12 bytes (a secret cut, not removed).
fn traces(secret: &str) -> Vec<String> {
    let escaped = serde_json::to_string(secret).unwrap();
    let escaped = escaped[1..escaped.len() - 1].to_string();
    let mut out = vec![secret.to_string(), escaped];
    if secret.len() >= 24 && secret.is_ascii() {
        out.push(secret[..12].to_string());
        out.push(secret[secret.len() - 12..].to_string());
    }
    out
}

/// The first string of `v` that reads like prose (a message's text), to plant in.
fn plant(v: &mut Value, text: &str) -> bool {
    match v {
        Value::String(s) if s.len() > 20 && s.contains(' ') => {
            s.push('\n');
            s.push_str(text);
            true
        }
        Value::Array(items) => items.iter_mut().any(|i| plant(i, text)),
        Value::Object(map) => {
            // Content first: that is where secrets are pasted.
            for key in ["message", "content", "text", "toolUseResult"] {
                if let Some(inner) = map.get_mut(key) {
                    if plant(inner, text) {
                        return true;
                    }
                }
            }
            false
        }
        _ => false,
    }
}

#[test]
fn no_planted_secret_reaches_the_backend_in_any_request() {
    let corpus = corpus();
    let kinds: BTreeSet<&str> = corpus.iter().map(|p| p.kind.as_str()).collect();
    assert!(corpus.len() >= 40, "{} entries", corpus.len());
    assert!(kinds.len() >= 25, "{} kinds: {kinds:?}", kinds.len());

    let backend = Backend::start(BackendConfig {
        api_keys: vec![KEY.to_string()],
        record_bodies: true,
        ..BackendConfig::default()
    })
    .expect("backend");
    let ws = Workspace::new();
    let transcript = ws.copy_session(SESSION_A);
    let source: Vec<String> = std::fs::read_to_string(&transcript)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();

    // Every secret once in its own real line, spread over the transcript.
    let mut lines = source.clone();
    let mut planted_at = BTreeSet::new();
    let mut next = 3;
    for p in &corpus {
        loop {
            let at = next;
            next += 1;
            assert!(at < lines.len(), "not enough lines to plant in");
            let mut v: Value = serde_json::from_str(&lines[at]).unwrap();
            if plant(&mut v, &p.text) {
                lines[at] = v.to_string();
                planted_at.insert(at);
                // Spread over the file: some untouched lines between two.
                next += 5;
                break;
            }
        }
    }
    let all: String = corpus.iter().map(|p| format!("{}\n", p.text)).collect();
    // The first user message, the session's own summary and one for an
    // earlier session (its last line is the leaf) carry them all.
    let first_user = lines
        .iter()
        .position(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["type"] == "user" && v["message"]["content"].is_string()
        })
        .expect("a user line with text");
    let mut v: Value = serde_json::from_str(&lines[first_user]).unwrap();
    v["message"]["content"] = Value::String(format!(
        "{all}{}",
        v["message"]["content"].as_str().unwrap()
    ));
    lines[first_user] = v.to_string();
    planted_at.insert(first_user);
    let earlier = "11111111-2222-4333-8444-555555555555";
    ws.write(
        &format!("{earlier}.jsonl"),
        br#"{"type":"assistant","uuid":"leaf-planted","message":{"role":"assistant","content":"done"}}
"#,
    );
    lines.push(serde_json::json!({"type": "summary", "summary": all}).to_string());
    lines.push(
        serde_json::json!({"type": "summary", "summary": all, "leafUuid": "leaf-planted"})
            .to_string(),
    );
    planted_at.insert(lines.len() - 2);
    planted_at.insert(lines.len() - 1);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&transcript, &text).unwrap();
    // A subagent line too.
    let agent = session_files(&transcript)
        .into_iter()
        .find(|p| p != &transcript)
        .expect("a subagent file");
    let agent_lines = std::fs::read_to_string(&agent).unwrap();
    std::fs::write(
        &agent,
        format!(
            "{agent_lines}{}\n",
            serde_json::json!({"type":"user","message":{"role":"user","content": all}})
        ),
    )
    .unwrap();

    let mut earlier_config = config(&backend, &ws.path().join(format!("{earlier}.jsonl")));
    earlier_config.redaction.enabled = true;
    Synced::start(&backend, earlier_config).sync();
    let mut c = config(&backend, &transcript);
    c.redaction.enabled = true;
    let mut s = Synced::start(&backend, c);
    let report = s.sync();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    // Each planted line was redacted (a secret may carry another kind's
    // marker: a GCP key id inside JSON text is caught by its own pattern).
    let redacted: u64 = report.redactions.iter().map(|r| r.count).sum();
    assert!(redacted >= corpus.len() as u64, "{redacted} redactions");
    s.instance
        .send_event(
            s.session,
            "session_end",
            "2026-11-24T12:00:00Z",
            &serde_json::json!({"reason": "exit", "note": all}).to_string(),
        )
        .unwrap()
        .unwrap();
    s.instance
        .link_github(s.session, "https://github.com/o/r/pull/9", Some(&all))
        .unwrap()
        .unwrap();

    // Nothing of any secret in any request the backend received.
    let requests = backend.requests();
    assert!(
        requests.iter().any(|r| r.path.ends_with("/summary")),
        "the PATCH was sent"
    );
    for r in &requests {
        let body = String::from_utf8_lossy(&r.body);
        for p in &corpus {
            for trace in traces(&p.secret) {
                assert!(
                    !body.contains(&trace),
                    "{} {} carries {} ({trace})",
                    r.method,
                    r.path,
                    p.kind
                );
            }
        }
    }
    let session = backend.session(&stem(&transcript)).unwrap();
    assert!(session.chunk_metadata["first_user_message"]
        .as_str()
        .unwrap()
        .contains("[REDACTED:"));
    assert!(session.chunk_metadata["summary"]
        .as_str()
        .unwrap()
        .contains("[REDACTED:"));
    assert!(backend
        .session(earlier)
        .unwrap()
        .summary_patch
        .unwrap()
        .contains("[REDACTED:"));

    // Every stored line parses; lines with no secret are byte-identical.
    let name = format!("{SESSION_A}.jsonl");
    let stored = backend.file(SESSION_A, &name).expect("stored");
    let stored: Vec<&str> = std::str::from_utf8(&stored).unwrap().lines().collect();
    assert_eq!(stored.len(), lines.len());
    for (i, (held, sent)) in stored.iter().zip(&lines).enumerate() {
        serde_json::from_str::<Value>(held).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        if planted_at.contains(&i) {
            assert_ne!(held, sent, "line {} kept its secrets", i + 1);
        } else {
            assert_eq!(held, sent, "line {} changed", i + 1);
        }
    }
}
