//! Many Claude Code sessions on disk, built from the shipped fixture
//! sessions' lines under fresh ids, in the layout `list`, `save` and
//! `sync --all` read: `<projects>/<project folder>/<uuid>.jsonl`, with
//! subagents in `<uuid>/subagents/`.

use std::path::{Path, PathBuf};

/// One built session.
#[derive(Debug, Clone)]
pub struct BuiltSession {
    pub id: String,
    pub transcript: PathBuf,
    /// The transcript and its subagent files.
    pub files: Vec<PathBuf>,
}

/// A uuid-shaped id from a number (distinct numbers, distinct ids; the
/// first 8 characters differ too).
pub fn uuid_for(n: u64) -> String {
    let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5851_F42D_4C95_7F2D;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (n as u32).wrapping_mul(2_654_435_761) ^ 0x1234_5678,
        (h >> 48) & 0xffff,
        (h >> 36) & 0xfff,
        (h >> 24) & 0xfff,
        h & 0xffff_ffff_ffff
    )
}

fn fixture_lines(name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(super::fixtures().join(name)).unwrap();
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// `count` sessions spread over `projects` project folders under
/// `projects_dir`: session `i` holds a run of lines of one of the fixture
/// transcripts (the first line kept, so its first user message is the
/// fixture's), every third one also a copy of a fixture's subagents.
pub fn build(projects_dir: &Path, count: usize, projects: usize) -> Vec<BuiltSession> {
    let sources = [
        "258c7280-ae70-4798-800f-63464d01a85d.jsonl",
        "8463c716-a2ea-4c14-9efa-87158ebd9f20.jsonl",
        "short.jsonl",
        "tool_heavy.jsonl",
        "subagent.jsonl",
    ];
    let lines: Vec<Vec<Vec<u8>>> = sources.iter().map(|s| fixture_lines(s)).collect();
    let subagents = super::fixtures().join("258c7280-ae70-4798-800f-63464d01a85d/subagents");
    (0..count)
        .map(|i| {
            let id = uuid_for(i as u64);
            let folder = projects_dir.join(format!("-home-u-project-{}", i % projects.max(1)));
            std::fs::create_dir_all(&folder).unwrap();
            let source = &lines[i % lines.len()];
            let take = (1 + (i * 37) % source.len()).max(source.len().min(12));
            let body: Vec<u8> = source.iter().take(take).flatten().copied().collect();
            let transcript = folder.join(format!("{id}.jsonl"));
            std::fs::write(&transcript, body).unwrap();
            let mut files = vec![transcript.clone()];
            if i % 3 == 0 {
                let to = folder.join(&id).join("subagents");
                std::fs::create_dir_all(&to).unwrap();
                for entry in std::fs::read_dir(&subagents).unwrap() {
                    let entry = entry.unwrap();
                    let target = to.join(entry.file_name());
                    std::fs::copy(entry.path(), &target).unwrap();
                    files.push(target);
                }
            }
            BuiltSession {
                id,
                transcript,
                files,
            }
        })
        .collect()
}

/// Set a file's modification time to `seconds_ago` before now.
pub fn set_age(path: &Path, seconds_ago: u64) {
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(seconds_ago);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}
