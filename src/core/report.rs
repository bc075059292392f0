//! What a `sync-all` did, as the WIT `sync-report` describes it.

use super::error::SyncError;
use super::redact::RedactionCounts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileType {
    Transcript,
    Agent,
    /// A Workflow tool run's `journal.jsonl`.
    WorkflowJournal,
}

impl FileType {
    /// The protocol's `file_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Transcript => "transcript",
            FileType::Agent => "agent",
            FileType::WorkflowJournal => "workflow_journal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub name: String,
    pub file_type: FileType,
    pub lines_synced: u64,
    pub total_lines: u64,
    pub chunks: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFailure {
    pub name: String,
    pub error: SyncError,
}

impl FileFailure {
    /// `<name>: <why>`, for a person: the file named once, whether or not
    /// the error's own message already starts with it.
    pub fn describe(&self) -> String {
        let shown = super::discovery::shown(&self.name);
        let message = &self.error.message;
        let message = [self.name.as_str(), &shown]
            .iter()
            .find_map(|n| message.strip_prefix(n)?.strip_prefix(": "))
            .unwrap_or(message);
        format!("{shown}: {message}")
    }
}

/// A list in a report for a person (files, failures) shows this many lines
/// and then counts the others: a server naming 200,000 files must not print
/// 200,000 lines.
pub const MAX_LINES_PER_LIST: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub files: Vec<FileReport>,
    pub failed: Vec<FileFailure>,
    pub chunks: u32,
    pub lines: u64,
    pub bytes: u64,
    pub wire_bytes: u64,
    /// Bytes read from files by this sync-all (after a restart: what finding
    /// the resume point cost).
    pub read_bytes: u64,
    pub retries: u32,
    pub invalid_utf8_lines: u64,
    pub redactions: RedactionCounts,
    pub warnings: Vec<String>,
    /// The transcript holds a SessionEnd hook line: the agent session is over.
    pub session_ended: bool,
}

impl SyncReport {
    /// The failures a person is shown one line each; `--json` and the WIT
    /// report hold them all. The number of the others is the rest.
    pub fn failures_to_show(&self) -> (&[FileFailure], usize) {
        let n = self.failed.len().min(MAX_LINES_PER_LIST);
        (&self.failed[..n], self.failed.len() - n)
    }

    pub fn is_success(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Lines the backend holds for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStats {
    pub name: String,
    pub file_type: FileType,
    pub lines_synced: u64,
}

/// Where a long sync is, after each confirmed chunk (for progress lines).
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    pub file: &'a str,
    /// Lines uploaded by this sync-all so far, all files.
    pub lines: u64,
    /// Line bytes uploaded by this sync-all so far, all files.
    pub bytes: u64,
}

/// What the engine calls with each [`Progress`] (a host draws it).
pub type ProgressSink = Box<dyn FnMut(Progress<'_>)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_its_file_once() {
        let own = FileFailure {
            name: "a.jsonl".into(),
            error: SyncError::input("a.jsonl: line 3 is too long"),
        };
        assert_eq!(own.describe(), "a.jsonl: line 3 is too long");
        let bare = FileFailure {
            name: "a.jsonl".into(),
            error: SyncError::input("line 3 is too long"),
        };
        assert_eq!(bare.describe(), "a.jsonl: line 3 is too long");
        let other = FileFailure {
            name: "a.jsonl".into(),
            error: SyncError::input("a.jsonl.bak: gone"),
        };
        assert_eq!(other.describe(), "a.jsonl: a.jsonl.bak: gone");
    }
}
