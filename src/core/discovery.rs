//! Which files belong to a session, as paths (../shared/docs/transcripts.md,
//! "Layout on disk"). Agent ids are validated by
//! [`super::metadata::is_valid_agent_id`] before they get here, and names are
//! only ever looked up among a folder's listed entries, so no id is ever
//! turned into a path that walks elsewhere. Workflow runs are found by
//! listing `subagents/workflows/`; their files are uploaded under
//! path-encoded names built only from listed, validated segments.

use super::report::FileType;

use std::borrow::Cow;
use std::collections::BTreeSet;

/// Split `/a/b/c.jsonl` into (`/a/b`, `c.jsonl`).
pub fn split_path(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (".", path),
    }
}

/// `dir` + `/` + `name`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// `c.jsonl` -> `c`.
pub fn file_stem(name: &str) -> &str {
    name.strip_suffix(".jsonl").unwrap_or(name)
}

/// The file name of a subagent transcript.
pub fn agent_file_name(agent_id: &str) -> String {
    format!("agent-{agent_id}.jsonl")
}

/// Whether a folder entry is a subagent transcript (`agent-*.jsonl`).
/// A name or path as a message shows it: one a server or a folder made
/// 100 KB long is cut in the middle to at most [`SHOWN_NAME_BYTES`].
pub fn shown(name: &str) -> Cow<'_, str> {
    if name.len() <= SHOWN_NAME_BYTES {
        return Cow::Borrowed(name);
    }
    let keep = (SHOWN_NAME_BYTES - 3) / 2;
    let mut head = keep;
    while !name.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = name.len() - keep;
    while !name.is_char_boundary(tail) {
        tail += 1;
    }
    Cow::Owned(format!(
        "{}...{} ({} bytes)",
        &name[..head],
        &name[tail..],
        name.len()
    ))
}

/// Longest name a message shows whole.
pub const SHOWN_NAME_BYTES: usize = 160;

pub fn is_agent_file_name(name: &str) -> bool {
    name.len() > "agent-.jsonl".len()
        && name.starts_with("agent-")
        && name.ends_with(".jsonl")
        && !name.contains('/')
}

/// The folder of the Workflow tool's runs, below `subagents/`.
pub const WORKFLOWS_FOLDER: &str = "workflows";
/// Where the server expects a workflow file: `subagents/workflows/<runId>/<base name>`.
const WORKFLOW_NAME_PREFIX: &str = "subagents/workflows/";

/// A run folder's name as it may appear in a path-encoded file name: one
/// plain segment (letters, digits, `-`, `_`, `.`; not `.` or `..`), so the
/// name the server gets never walks elsewhere.
pub fn is_valid_run_id(run_id: &str) -> bool {
    (1..=128).contains(&run_id.len())
        && run_id != "."
        && run_id != ".."
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// The type of a file in a workflow run's folder, if it is uploaded at all:
/// `agent-<id>.jsonl` is an agent, `journal.jsonl` the run's journal;
/// `*.meta.json`, `wf_*.json` and anything else are not uploaded.
pub fn workflow_file_type(base_name: &str) -> Option<FileType> {
    if base_name == "journal.jsonl" {
        Some(FileType::WorkflowJournal)
    } else if is_agent_file_name(base_name) {
        Some(FileType::Agent)
    } else {
        None
    }
}

/// The path-encoded name a workflow file is uploaded under.
pub fn workflow_upload_name(run_id: &str, base_name: &str) -> String {
    format!("{WORKFLOW_NAME_PREFIX}{run_id}/{base_name}")
}

/// A path-encoded workflow name (as the server lists it) taken apart:
/// (run id, base name, type), or `None` if it is not one.
pub fn parse_workflow_name(name: &str) -> Option<(&str, &str, FileType)> {
    let (run_id, base) = name.strip_prefix(WORKFLOW_NAME_PREFIX)?.split_once('/')?;
    let file_type = workflow_file_type(base)?;
    is_valid_run_id(run_id).then_some((run_id, base, file_type))
}

/// Where a session's files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLayout {
    /// The folder of the main transcript (older subagent layout: beside it).
    pub dir: String,
    /// `<uuid>.jsonl`.
    pub transcript_name: String,
    /// `<dir>/<uuid>/subagents` (current layout).
    pub subagents_dir: String,
    /// `<subagents_dir>/workflows`: one folder per Workflow tool run.
    pub workflows_dir: String,
}

impl SessionLayout {
    pub fn of(transcript_path: &str) -> Self {
        let (dir, name) = split_path(transcript_path);
        let subagents_dir = join(&join(dir, file_stem(name)), "subagents");
        SessionLayout {
            dir: dir.to_string(),
            transcript_name: name.to_string(),
            workflows_dir: join(&subagents_dir, WORKFLOWS_FOLDER),
            subagents_dir,
        }
    }

    /// Resolve an agent file by name among the listed entries of the two
    /// folders: the current layout wins over the older one.
    pub fn locate_agent(
        &self,
        file_name: &str,
        in_subagents: &BTreeSet<String>,
        in_dir: &BTreeSet<String>,
    ) -> Option<String> {
        if in_subagents.contains(file_name) {
            Some(join(&self.subagents_dir, file_name))
        } else if in_dir.contains(file_name) {
            Some(join(&self.dir, file_name))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_a_transcript() {
        let l = SessionLayout::of("/home/u/.claude/projects/-p/abc.jsonl");
        assert_eq!(l.dir, "/home/u/.claude/projects/-p");
        assert_eq!(l.transcript_name, "abc.jsonl");
        assert_eq!(l.subagents_dir, "/home/u/.claude/projects/-p/abc/subagents");
    }

    #[test]
    fn current_layout_wins_and_unlisted_names_are_not_found() {
        let l = SessionLayout::of("/p/s.jsonl");
        let sub = BTreeSet::from(["agent-a1b2c3d.jsonl".to_string()]);
        let flat = BTreeSet::from([
            "agent-a1b2c3d.jsonl".to_string(),
            "agent-deadbeef.jsonl".to_string(),
        ]);
        assert_eq!(
            l.locate_agent("agent-a1b2c3d.jsonl", &sub, &flat).unwrap(),
            "/p/s/subagents/agent-a1b2c3d.jsonl"
        );
        assert_eq!(
            l.locate_agent("agent-deadbeef.jsonl", &sub, &flat).unwrap(),
            "/p/agent-deadbeef.jsonl"
        );
        assert_eq!(l.locate_agent("agent-../x.jsonl", &sub, &flat), None);
    }

    #[test]
    fn long_names_are_cut_in_the_middle_for_messages() {
        assert_eq!(shown("agent-abc.jsonl"), "agent-abc.jsonl");
        let long = format!("agent-{}\u{e9}.jsonl", "a".repeat(100_000));
        let cut = shown(&long);
        assert!(cut.len() <= SHOWN_NAME_BYTES + 20, "{}", cut.len());
        assert!(cut.starts_with("agent-aaa") && cut.contains("\u{e9}.jsonl ("));
    }

    #[test]
    fn agent_file_names() {
        assert!(is_agent_file_name("agent-acompact-e1f845.jsonl"));
        assert!(!is_agent_file_name("agent-.jsonl"));
        assert!(!is_agent_file_name("s.jsonl"));
        assert!(!is_agent_file_name("agent-x.jsonl.bak"));
    }

    #[test]
    fn workflow_files_and_their_names() {
        let l = SessionLayout::of("/p/s.jsonl");
        assert_eq!(l.workflows_dir, "/p/s/subagents/workflows");
        assert_eq!(
            workflow_file_type("agent-a1b2c3d.jsonl"),
            Some(FileType::Agent)
        );
        assert_eq!(
            workflow_file_type("journal.jsonl"),
            Some(FileType::WorkflowJournal)
        );
        for skipped in [
            "agent-a1b2c3d.meta.json",
            "wf_state.json",
            "notes.txt",
            "journal.json",
        ] {
            assert_eq!(workflow_file_type(skipped), None, "{skipped}");
        }
        let name = workflow_upload_name("wf-42", "journal.jsonl");
        assert_eq!(name, "subagents/workflows/wf-42/journal.jsonl");
        assert_eq!(
            parse_workflow_name(&name),
            Some(("wf-42", "journal.jsonl", FileType::WorkflowJournal))
        );
        assert_eq!(
            parse_workflow_name("subagents/workflows/../journal.jsonl"),
            None
        );
        assert_eq!(
            parse_workflow_name("subagents/workflows/r/x/journal.jsonl"),
            None
        );
        assert_eq!(parse_workflow_name("agent-a1b2c3d.jsonl"), None);
        assert!(is_valid_run_id("run_1.2-x"));
        for bad in ["", ".", "..", "a/b", "a b", "é"] {
            assert!(!is_valid_run_id(bad), "{bad}");
        }
    }

    #[test]
    fn split_edge_cases() {
        assert_eq!(split_path("/x.jsonl"), ("/", "x.jsonl"));
        assert_eq!(split_path("x.jsonl"), (".", "x.jsonl"));
    }
}
