//! What the command line prints: the report as JSON (`--json`) or as a few
//! lines for a person, progress lines, timestamps. Pure formatting.

use crate::core::discovery;
use crate::core::error::{ErrorKind, SyncError};
use crate::core::report::{SyncReport, MAX_LINES_PER_LIST};
use serde_json::{json, Value};

/// The WIT case name of an error, e.g. `unauthorized`.
pub fn error_case(e: &SyncError) -> &'static str {
    match e.kind {
        ErrorKind::NotInitialized => "not-initialized",
        ErrorKind::Unauthorized => "unauthorized",
        ErrorKind::SessionNotFound => "session-not-found",
        ErrorKind::RateLimited => "rate-limited",
        ErrorKind::Conflict => "conflict",
        ErrorKind::Http(_) => "http",
        ErrorKind::Transport => "transport",
        ErrorKind::Io => "io",
        ErrorKind::InvalidConfig => "invalid-config",
        ErrorKind::InvalidInput => "invalid-input",
    }
}

pub fn report_json(r: &SyncReport) -> Value {
    json!({
        "files": r.files.iter().map(|f| json!({
            "name": f.name, "file_type": f.file_type.as_str(), "lines_synced": f.lines_synced,
            "total_lines": f.total_lines, "chunks": f.chunks,
        })).collect::<Vec<_>>(),
        "failed": r.failed.iter().map(|f| json!({
            "name": f.name, "error": error_case(&f.error), "message": f.error.message,
        })).collect::<Vec<_>>(),
        "chunks": r.chunks, "lines": r.lines, "bytes": r.bytes, "wire_bytes": r.wire_bytes, "read_bytes": r.read_bytes,
        "retries": r.retries, "invalid_utf8_lines": r.invalid_utf8_lines,
        "redactions": r.redactions.0, "warnings": r.warnings, "session_ended": r.session_ended,
    })
}

/// A few lines for a person: per file, totals, then what went wrong.
pub fn report_human(r: &SyncReport) -> String {
    let mut out = String::new();
    // Files that moved first, then the others, up to the limit.
    let mut files: Vec<_> = r.files.iter().collect();
    files.sort_by_key(|f| (f.lines_synced == 0, f.file_type));
    for f in files.iter().take(MAX_LINES_PER_LIST) {
        out.push_str(&format!(
            "  {:<48} {:>7} new lines ({} on the server)\n",
            discovery::shown(&f.name),
            f.lines_synced,
            f.total_lines
        ));
    }
    if files.len() > MAX_LINES_PER_LIST {
        out.push_str(&format!(
            "  ... and {} more files (--json lists them all)\n",
            files.len() - MAX_LINES_PER_LIST
        ));
    }
    out.push_str(&format!(
        "synced {} lines in {} chunks ({}, {} sent)\n",
        r.lines,
        r.chunks,
        mib(r.bytes),
        mib(r.wire_bytes)
    ));
    for (kind, count) in &r.redactions.0 {
        out.push_str(&format!("redacted {count} x {kind}\n"));
    }
    if r.invalid_utf8_lines > 0 {
        out.push_str(&format!(
            "{} lines had invalid UTF-8, replaced by U+FFFD\n",
            r.invalid_utf8_lines
        ));
    }
    for w in &r.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    let (shown, more) = r.failures_to_show();
    for f in shown {
        out.push_str(&format!("failed: {}\n", f.describe()));
    }
    if more > 0 {
        out.push_str(&format!(
            "failed: ... and {more} more files (--json lists them all)\n"
        ));
    }
    out
}

/// `12.3 MiB`
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// A progress line (overwritten in place on a terminal).
pub fn progress_line(file: &str, lines: u64, bytes: u64, seconds: f64) -> String {
    let rate = if seconds > 0.0 {
        bytes as f64 / (1u64 << 20) as f64 / seconds
    } else {
        0.0
    };
    format!(
        "\r\x1b[2K{file}: {lines} lines, {} ({rate:.0} MiB/s)",
        mib(bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_report_names_error_cases() {
        let mut r = SyncReport::default();
        r.failed.push(crate::core::report::FileFailure {
            name: "a.jsonl".into(),
            error: SyncError::input("line 3 is too long"),
        });
        let j = report_json(&r);
        assert_eq!(j["failed"][0]["error"], "invalid-input");
        assert!(report_human(&r).contains("failed: a.jsonl: line 3 is too long"));
    }
}
