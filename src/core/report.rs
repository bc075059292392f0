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
        let message = &self.error.message;
        match message.strip_prefix(self.name.as_str()) {
            Some(rest) if rest.starts_with(": ") => message.clone(),
            _ => format!("{}: {message}", self.name),
        }
    }
}

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
