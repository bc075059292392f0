//! The per-session checkpoint: how far each file was synced (lines, byte
//! offset) and a hash of the bytes just before that offset, kept in a state
//! folder the host grants. A fresh instance that finds it, and finds it
//! agreeing with the server's line count and the file's bytes, resumes at the
//! offset instead of re-reading the whole file; anything that disagrees
//! falls back to the safe scan. The same window hash detects a file
//! rewritten in place below what was synced.
//!
//! Pure data and checks; reading and writing go through [`super::io`].

use super::io::ReadAt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bytes before the offset that are hashed: enough to tell a rewritten file
/// from the original, small enough to cost one read.
pub const WINDOW_BYTES: u64 = 4096;

/// Version of the file format: 2 when a mark is open (a line uploaded
/// without its newline), else 1, which earlier releases read too (version 2
/// makes them ignore the checkpoint and scan, rather than take an open
/// offset for one after a newline and refuse the file as rewritten).
const VERSION: u32 = 1;
const VERSION_OPEN: u32 = 2;

/// A checkpoint file larger than this is not one of ours.
pub const MAX_CHECKPOINT_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMark {
    /// Lines the server confirmed.
    pub lines: u64,
    /// Byte offset where those lines end.
    pub bytes: u64,
    /// FNV-1a of the window of [`WINDOW_BYTES`] (or fewer) ending at `bytes`.
    pub window_hash: u64,
    /// The last of those lines ended the file without its `\n` (absent in
    /// version 1: every offset followed a newline).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    pub external_id: String,
    /// By file base name.
    pub files: BTreeMap<String, FileMark>,
    /// Agent ids referenced by lines before the offsets (a resumed instance
    /// does not read those lines again).
    pub agent_ids: Vec<String>,
}

impl Checkpoint {
    pub fn new(external_id: &str) -> Self {
        Checkpoint {
            version: VERSION,
            external_id: external_id.into(),
            ..Default::default()
        }
    }

    /// Parse a stored checkpoint; `None` for anything not ours or not for this session.
    /// (Where N lines end is a property of the file, not of a backend: the
    /// engine checks the server's count separately.)
    pub fn parse(bytes: &[u8], external_id: &str) -> Option<Checkpoint> {
        let c: Checkpoint = serde_json::from_slice(bytes).ok()?;
        let version_ok = match c.version {
            VERSION => c.files.values().all(|m| !m.open),
            VERSION_OPEN => true,
            _ => false,
        };
        (version_ok && c.external_id == external_id).then_some(c)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut c = self.clone();
        c.version = if c.files.values().any(|m| m.open) {
            VERSION_OPEN
        } else {
            VERSION
        };
        serde_json::to_vec(&c).unwrap_or_default()
    }
}

/// File name of a session's checkpoint in the state folder (ids are made
/// safe: anything but `[A-Za-z0-9_-]` is hex-escaped).
pub fn file_name(external_id: &str) -> String {
    let mut name = String::with_capacity(external_id.len() + 16);
    for b in external_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name.push_str(".checkpoint.json");
    name
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike std's hasher).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Hash of the window ending at `end`; `None` if it cannot be read whole.
/// `open`: the line ending there has no `\n` yet.
pub fn window_hash<R: ReadAt>(file: &R, end: u64, open: bool) -> Option<u64> {
    let start = end.saturating_sub(WINDOW_BYTES);
    let mut buf = vec![0u8; (end - start) as usize];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], start + filled as u64) {
            Ok(0) | Err(_) => return None,
            Ok(n) => filled += n,
        }
    }
    // A synced offset follows a newline (or is 0), or ends an open line.
    if end > 0 && (buf.last() == Some(&b'\n')) == open {
        return None;
    }
    Some(fnv1a(&buf))
}

/// Whether `file` still holds, up to `mark.bytes`, what was synced.
pub fn still_matches<R: ReadAt>(file: &R, mark: &FileMark) -> bool {
    window_hash(file, mark.bytes, mark.open) == Some(mark.window_hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::io::FileStat;

    struct Bytes(Vec<u8>);
    impl ReadAt for Bytes {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, String> {
            let off = (offset as usize).min(self.0.len());
            let n = buf.len().min(self.0.len() - off);
            buf[..n].copy_from_slice(&self.0[off..off + n]);
            Ok(n)
        }
        fn stat(&self) -> Result<FileStat, String> {
            Ok(FileStat {
                size: self.0.len() as u64,
                mtime_ns: 0,
            })
        }
    }

    #[test]
    fn a_rewritten_prefix_no_longer_matches() {
        let original = Bytes(b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n".to_vec());
        let mark = FileMark {
            lines: 2,
            bytes: 16,
            window_hash: window_hash(&original, 16, false).unwrap(),
            open: false,
        };
        assert!(still_matches(&original, &mark));
        let appended = Bytes(b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n{\"d\":4}\n".to_vec());
        assert!(still_matches(&appended, &mark));
        let rewritten = Bytes(b"{\"a\":1}\n{\"B\":2}\n{\"c\":3}\n".to_vec());
        assert!(!still_matches(&rewritten, &mark));
        let truncated = Bytes(b"{\"a\":1}\n".to_vec());
        assert!(!still_matches(&truncated, &mark));
    }

    #[test]
    fn an_offset_not_after_a_newline_is_never_valid() {
        let f = Bytes(b"abc\ndef".to_vec());
        assert_eq!(window_hash(&f, 6, false), None);
        assert!(window_hash(&f, 4, false).is_some());
        assert_eq!(window_hash(&f, 0, false), Some(fnv1a(b"")));
    }

    #[test]
    fn an_open_offset_ends_a_line_without_its_newline() {
        let f = Bytes(b"{\"a\":1}\n{\"b\":2}".to_vec());
        assert!(window_hash(&f, 15, true).is_some());
        assert_eq!(window_hash(&f, 15, false), None, "not after a newline");
        assert_eq!(window_hash(&f, 8, true), None, "after a newline: not open");
        let mark = FileMark {
            lines: 2,
            bytes: 15,
            window_hash: window_hash(&f, 15, true).unwrap(),
            open: true,
        };
        let closed = Bytes(b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n".to_vec());
        assert!(still_matches(&closed, &mark), "its newline arrived");
        let rewritten = Bytes(b"{\"a\":1}\n{\"B\":2}\n".to_vec());
        assert!(!still_matches(&rewritten, &mark));
    }

    #[test]
    fn an_open_mark_is_written_as_version_2_and_old_checkpoints_still_read() {
        let mut c = Checkpoint::new("s1");
        let mark = FileMark {
            lines: 3,
            bytes: 99,
            window_hash: 7,
            open: false,
        };
        c.files.insert("s1.jsonl".into(), mark);
        let text = String::from_utf8(c.to_bytes()).unwrap();
        assert!(
            text.contains("\"version\":1") && !text.contains("open"),
            "{text}"
        );
        // What release 1 wrote, field for field.
        let old = br#"{"version":1,"external_id":"s1","files":{"s1.jsonl":{"lines":3,"bytes":99,"window_hash":7}},"agent_ids":[]}"#;
        assert_eq!(Checkpoint::parse(old, "s1"), Some(c.clone()));

        c.files
            .insert("agent-a1.jsonl".into(), FileMark { open: true, ..mark });
        let bytes = c.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("\"version\":2") && text.contains("\"open\":true"),
            "{text}"
        );
        let parsed = Checkpoint::parse(&bytes, "s1").unwrap();
        assert_eq!(parsed.files, c.files);
        // An open mark in a version 1 file is no checkpoint of ours.
        let forged = text.replace("\"version\":2", "\"version\":1");
        assert_eq!(Checkpoint::parse(forged.as_bytes(), "s1"), None);
    }

    #[test]
    fn checkpoints_round_trip_and_refuse_other_sessions() {
        let mut c = Checkpoint::new("s1");
        c.files.insert(
            "s1.jsonl".into(),
            FileMark {
                lines: 3,
                bytes: 99,
                window_hash: 7,
                open: false,
            },
        );
        let bytes = c.to_bytes();
        assert_eq!(Checkpoint::parse(&bytes, "s1"), Some(c));
        assert_eq!(Checkpoint::parse(&bytes, "s2"), None);
        assert_eq!(Checkpoint::parse(b"garbage", "s1"), None);
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("3f2a-9_x"), "3f2a-9_x.checkpoint.json");
        assert_eq!(file_name("../a/b"), "%2E%2E%2Fa%2Fb.checkpoint.json");
    }
}
