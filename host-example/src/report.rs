//! Printing what the component reports: a short human summary, JSON for
//! `--json`, and one-line error messages.

use crate::sandbox::{FileType, SyncError, SyncReport};
use serde_json::json;

/// The one-line message of a WIT error (it never holds the API key).
pub fn error_message(e: &SyncError) -> String {
    match e {
        SyncError::NotInitialized(m)
        | SyncError::Unauthorized(m)
        | SyncError::SessionNotFound(m)
        | SyncError::RateLimited(m)
        | SyncError::Conflict(m)
        | SyncError::Transport(m)
        | SyncError::Io(m)
        | SyncError::InvalidConfig(m)
        | SyncError::InvalidInput(m) => m.clone(),
        SyncError::Http(h) => h.message.clone(),
    }
}

/// The WIT case name, e.g. `unauthorized`.
pub fn error_case(e: &SyncError) -> &'static str {
    match e {
        SyncError::NotInitialized(_) => "not-initialized",
        SyncError::Unauthorized(_) => "unauthorized",
        SyncError::SessionNotFound(_) => "session-not-found",
        SyncError::RateLimited(_) => "rate-limited",
        SyncError::Conflict(_) => "conflict",
        SyncError::Http(_) => "http",
        SyncError::Transport(_) => "transport",
        SyncError::Io(_) => "io",
        SyncError::InvalidConfig(_) => "invalid-config",
        SyncError::InvalidInput(_) => "invalid-input",
    }
}

fn file_type(t: FileType) -> &'static str {
    match t {
        FileType::Transcript => "transcript",
        FileType::Agent => "agent",
    }
}

/// The report as JSON (the `--json` output).
pub fn to_json(r: &SyncReport) -> serde_json::Value {
    json!({
        "files": r.files.iter().map(|f| json!({
            "name": f.name, "file_type": file_type(f.file_type), "lines_synced": f.lines_synced,
            "total_lines": f.total_lines, "chunks": f.chunks,
        })).collect::<Vec<_>>(),
        "failed": r.failed.iter().map(|f| json!({
            "name": f.name, "error": error_case(&f.error), "message": error_message(&f.error),
        })).collect::<Vec<_>>(),
        "chunks": r.chunks, "lines": r.lines, "bytes": r.bytes, "wire_bytes": r.wire_bytes,
        "retries": r.retries, "invalid_utf8_lines": r.invalid_utf8_lines,
        "redactions": r.redactions.iter().map(|c| (c.kind.clone(), json!(c.count))).collect::<serde_json::Map<_, _>>(),
        "warnings": r.warnings,
    })
}

/// A few lines for a person: per file, then totals and failures.
pub fn human(r: &SyncReport) -> String {
    let mut out = String::new();
    for f in &r.files {
        out.push_str(&format!(
            "  {:<48} {:>7} new lines ({} on the server)\n",
            f.name, f.lines_synced, f.total_lines
        ));
    }
    out.push_str(&format!(
        "synced {} lines in {} chunks ({:.1} MiB, {:.2} MiB sent)\n",
        r.lines,
        r.chunks,
        r.bytes as f64 / 1048576.0,
        r.wire_bytes as f64 / 1048576.0
    ));
    for c in &r.redactions {
        out.push_str(&format!("redacted {} x {}\n", c.count, c.kind));
    }
    for w in &r.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    for f in &r.failed {
        out.push_str(&format!(
            "failed: {}: {}\n",
            f.name,
            error_message(&f.error)
        ));
    }
    out
}
