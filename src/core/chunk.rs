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

/// `s` as a JSON string, quotes included, byte for byte what `serde_json`
/// writes. Transcript lines are JSON, so a `"` comes every few bytes: plain
/// runs are found 8 bytes at a time (SWAR) and stored as one word, and no
/// short variable-length copy is made (each is a libcall in wasmtime): 1.6x
/// the speed of `serde_json::to_writer` in the component (benches/stages.rs).
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Room for what is left plus a quarter (JSON lines grow by about a
    // tenth), grown when a word (at most 16 bytes out) or a tail (at most 8
    // bytes of 6) might not fit. Zeroed room is touched memory: no more of it.
    let grow = |out: &mut Vec<u8>, o: usize, left: usize| out.resize(o + 64 + left + left / 4, 0);
    let mut o = out.len();
    grow(out, o, bytes.len());
    out[o] = b'"';
    o += 1;
    let mut i = 0;
    while i < bytes.len() {
        if out.len() < o + 6 * 8 + 1 {
            grow(out, o, bytes.len() - i);
        }
        if let Some(word) = bytes.get(i..i + 8) {
            let word: [u8; 8] = word.try_into().expect("8 bytes");
            let (special, control) = word_needs_escape(u64::from_le_bytes(word));
            if !special {
                out[o..o + 8].copy_from_slice(&word);
                o += 8;
                i += 8;
                continue;
            }
            if !control {
                // Only `"` and `\`, each escaped by a backslash before it:
                // write one before every byte, keep it only where needed.
                let dst: &mut [u8; 16] = (&mut out[o..o + 16]).try_into().expect("16 bytes");
                let mut k = 0;
                for b in word {
                    dst[k] = b'\\';
                    k += usize::from(ESCAPES[usize::from(b)] == b);
                    dst[k] = b;
                    k += 1;
                }
                o += k;
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(bytes.len());
        while i < end {
            let b = bytes[i];
            i += 1;
            match ESCAPES[usize::from(b)] {
                0 => {
                    out[o] = b;
                    o += 1;
                }
                b'u' => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out[o..o + 4].copy_from_slice(b"\\u00");
                    out[o + 4] = HEX[usize::from(b >> 4)];
                    out[o + 5] = HEX[usize::from(b & 0xf)];
                    o += 6;
                }
                short => {
                    out[o] = b'\\';
                    out[o + 1] = short;
                    o += 2;
                }
            }
        }
    }
    out[o] = b'"';
    out.truncate(o + 1);
}

/// Per byte: 0 when it goes out as is, else the letter after the backslash
/// (`u` for the `\u00XX` form), as `serde_json` escapes them.
const ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Whether one of the 8 bytes of `word` needs escaping, and whether one is a
/// control character (the classic "has zero byte" / "has byte less than" bit
/// tricks, exact as yes/no answers).
fn word_needs_escape(word: u64) -> (bool, bool) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0;
    let special = control
        || has_zero(word ^ (ONES * u64::from(b'"')))
        || has_zero(word ^ (ONES * u64::from(b'\\')));
    (special, control)
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
    fn escaping_is_byte_for_byte_serde_json() {
        let mut all_bytes = String::new();
        for c in (0u8..=0x7f)
            .map(char::from)
            .chain(['é', '\u{2028}', '\u{1F600}'])
        {
            all_bytes.push(c);
        }
        let controls = "\u{1}".repeat(10_000); // 6 bytes out per byte in
        let quotes = "\"\\".repeat(10_000); // 2 bytes out per byte in
        for s in [
            controls.as_str(),
            quotes.as_str(),
            "",
            "plain ascii, longer than one word",
            r#"{"type":"user","message":{"content":"a\nb \"q\""}}"#,
            all_bytes.as_str(),
            "\u{0}\u{1f}\u{7f}\"\\",
        ] {
            let mut ours = Vec::new();
            escape_line(s, &mut ours);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn escaping_matches_serde_json_on_any_text(s in "(?s).{0,80}", pad in 0usize..8) {
            // Shift the string against the 8-byte words.
            let s = format!("{}{s}", "x".repeat(pad));
            let mut ours = Vec::new();
            escape_line(&s, &mut ours);
            proptest::prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&s).unwrap());
        }
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
