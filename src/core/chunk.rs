//! Chunk planning: lines go into the JSON body of `POST /api/v1/sync/chunk`
//! as they are read, escaped once, straight into one reusable buffer (no
//! intermediate list of lines). A chunk is closed when the next line would
//! take its line data over [`MAX_CHUNK_LINE_BYTES`].

use super::limits::MAX_CHUNK_LINE_BYTES;
use super::protocol::ChunkMetadata;

/// Who the chunk belongs to.
#[derive(Debug, Clone, Copy)]
pub struct ChunkTarget<'a> {
    pub session_id: &'a str,
    pub file_name: &'a str,
    pub file_type: &'a str,
}

/// The body of one chunk under construction.
#[derive(Debug, Default)]
pub struct ChunkBuilder {
    body: Vec<u8>,
    lines: u64,
    /// Escaped line bytes in the body (what the limit is about).
    line_bytes: usize,
    /// Raw line bytes, as uploaded (after redaction, before escaping).
    raw_bytes: u64,
    first_line: u64,
}

impl ChunkBuilder {
    /// Start a chunk whose first line is line number `first_line` (1-based).
    pub fn start(&mut self, target: ChunkTarget<'_>, first_line: u64) {
        self.body.clear();
        self.lines = 0;
        self.line_bytes = 0;
        self.raw_bytes = 0;
        self.first_line = first_line;
        self.body.extend_from_slice(b"{\"session_id\":");
        write_json_str(&mut self.body, target.session_id);
        self.body.extend_from_slice(b",\"file_name\":");
        write_json_str(&mut self.body, target.file_name);
        self.body.extend_from_slice(b",\"file_type\":");
        write_json_str(&mut self.body, target.file_type);
        self.body
            .extend_from_slice(format!(",\"first_line\":{first_line},\"lines\":[").as_bytes());
    }

    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }
    pub fn lines(&self) -> u64 {
        self.lines
    }
    pub fn first_line(&self) -> u64 {
        self.first_line
    }
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes
    }

    /// Whether a line escaped to `escaped_len` bytes still fits this chunk.
    pub fn fits(&self, escaped_len: usize) -> bool {
        self.line_bytes + escaped_len <= MAX_CHUNK_LINE_BYTES
    }

    /// Append a line already escaped as a JSON string (quotes included).
    pub fn push_escaped(&mut self, escaped: &[u8], raw_len: usize) {
        if self.lines > 0 {
            self.body.push(b',');
        }
        self.body.extend_from_slice(escaped);
        self.lines += 1;
        self.line_bytes += escaped.len();
        self.raw_bytes += raw_len as u64;
    }

    /// Close the body and hand it out.
    pub fn finish(&mut self, metadata: Option<&ChunkMetadata>) -> &[u8] {
        self.body.push(b']');
        if let Some(meta) = metadata.filter(|m| !m.is_empty()) {
            self.body.extend_from_slice(b",\"metadata\":");
            // Serializing plain strings and options into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut self.body, meta);
        }
        self.body.push(b'}');
        &self.body
    }
}

/// Escape `line` as a JSON string into `out` (cleared first).
pub fn escape_line(line: &str, out: &mut Vec<u8>) {
    out.clear();
    write_json_str(out, line);
}

fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> ChunkTarget<'static> {
        ChunkTarget {
            session_id: "s1",
            file_name: "f.jsonl",
            file_type: "transcript",
        }
    }

    #[test]
    fn body_is_the_protocol_json_with_lines_verbatim() {
        let mut b = ChunkBuilder::default();
        b.start(target(), 151);
        let mut esc = Vec::new();
        for line in [r#"{"a":"x\"y"}"#, "not json \u{1F600}"] {
            escape_line(line, &mut esc);
            assert!(b.fits(esc.len()));
            b.push_escaped(&esc, line.len());
        }
        let meta = ChunkMetadata {
            summary: Some("sum".into()),
            ..Default::default()
        };
        let body: serde_json::Value = serde_json::from_slice(b.finish(Some(&meta))).unwrap();
        assert_eq!(body["first_line"], 151);
        assert_eq!(body["file_type"], "transcript");
        assert_eq!(body["lines"][0], r#"{"a":"x\"y"}"#);
        assert_eq!(body["lines"][1], "not json \u{1F600}");
        assert_eq!(body["metadata"]["summary"], "sum");
        assert!(body["metadata"].get("git_info").is_none());
    }

    #[test]
    fn empty_metadata_is_left_out() {
        let mut b = ChunkBuilder::default();
        b.start(target(), 1);
        b.push_escaped(b"\"x\"", 1);
        let body: serde_json::Value =
            serde_json::from_slice(b.finish(Some(&ChunkMetadata::default()))).unwrap();
        assert!(body.get("metadata").is_none());
    }

    #[test]
    fn limit_counts_escaped_bytes() {
        let mut b = ChunkBuilder::default();
        b.start(target(), 1);
        b.push_escaped(&vec![b'a'; MAX_CHUNK_LINE_BYTES - 10], 0);
        assert!(b.fits(10));
        assert!(!b.fits(11));
    }
}
