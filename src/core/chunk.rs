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
/// writes. Transcript lines are JSON, so a `"` comes every few bytes. Blocks
/// of 16 bytes are classified at once (WebAssembly SIMD in the component,
/// SWAR elsewhere); a block is stored whole, then for each `"` or `\` in it
/// a backslash goes in and the rest of the block is stored again one byte
/// further on: fixed-size copies only (a variable-length copy is a libcall
/// in wasmtime). Blocks with a control character, and the last bytes, go
/// byte by byte.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Room for what is left plus a quarter (JSON lines grow by about a
    // tenth), grown when a block (at most 16 * 6 bytes out, or 16 + 16 *
    // 17 stored) might not fit. Zeroed room is touched memory: no more of it.
    const BLOCK_ROOM: usize = 16 * 18;
    let grow = |out: &mut Vec<u8>, o: usize, left: usize| {
        out.resize(o + BLOCK_ROOM + left + left / 4, 0);
    };
    let mut o = out.len();
    grow(out, o, bytes.len());
    out[o] = b'"';
    o += 1;
    let mut i = 0;
    // A block's shifted stores read up to 16 bytes past it.
    while i + 32 <= bytes.len() {
        if out.len() < o + BLOCK_ROOM {
            grow(out, o, bytes.len() - i);
        }
        let block: &[u8; 16] = bytes[i..i + 16].try_into().expect("16 bytes");
        let (special, control) = block_needs_escape(block);
        if control == 0 {
            store16(&mut out[o..], block);
            let mut shifted = o;
            let mut rest = special;
            while rest != 0 {
                let k = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                out[shifted + k] = b'\\';
                shifted += 1;
                let tail: &[u8; 16] = bytes[i + k..i + k + 16].try_into().expect("16 bytes");
                store16(&mut out[shifted + k..], tail);
            }
            o = shifted + 16;
            i += 16;
            continue;
        }
        o = escape_bytes(&bytes[i..i + 16], out, o);
        i += 16;
    }
    if out.len() < o + 6 * (bytes.len() - i) + 1 {
        grow(out, o, 5 * (bytes.len() - i));
    }
    o = escape_bytes(&bytes[i..], out, o);
    out[o] = b'"';
    out.truncate(o + 1);
}

/// `bytes` escaped one by one into `out` from `o` (room made by the
/// caller); returns the new end.
fn escape_bytes(bytes: &[u8], out: &mut [u8], mut o: usize) -> usize {
    for &b in bytes {
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
    o
}

fn store16(out: &mut [u8], block: &[u8; 16]) {
    out[..16].copy_from_slice(block);
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

/// Bit `k` set where byte `k` of `block` is `"` or `\`, and (second mask)
/// where it is a control character.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn block_needs_escape(block: &[u8; 16]) -> (u16, u16) {
    use core::arch::wasm32::{i8x16_eq, u8x16_bitmask, u8x16_lt, u8x16_splat, v128_load, v128_or};
    // SAFETY: `block` is 16 readable bytes; `v128.load` needs no alignment.
    let v = unsafe { v128_load(block.as_ptr().cast()) };
    let special = v128_or(
        i8x16_eq(v, u8x16_splat(b'"')),
        i8x16_eq(v, u8x16_splat(b'\\')),
    );
    let control = u8x16_lt(v, u8x16_splat(0x20));
    (u8x16_bitmask(special), u8x16_bitmask(control))
}

/// Bit `k` set where byte `k` of `block` is `"` or `\`, and (second mask)
/// where it is a control character.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn block_needs_escape(block: &[u8; 16]) -> (u16, u16) {
    let half = |at: usize| {
        let word = u64::from_le_bytes(block[at..at + 8].try_into().expect("8 bytes"));
        let special = zero_bytes(word ^ (ONES * u64::from(b'"')))
            | zero_bytes(word ^ (ONES * u64::from(b'\\')));
        (
            high_bits(special),
            high_bits(zero_bytes(word & (ONES * 0xE0))),
        )
    };
    let (s0, c0) = half(0);
    let (s1, c1) = half(8);
    (s0 | s1 << 8, c0 | c1 << 8)
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of each byte of `word` that is zero, exactly (no borrow
/// from one byte into the next).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn zero_bytes(word: u64) -> u64 {
    const LOWS: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    !(((word & LOWS) + LOWS) | word | LOWS)
}

/// The high bits of the 8 bytes of `word` as 8 bits (byte 0 -> bit 0).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn high_bits(word: u64) -> u16 {
    ((((word >> 7) & ONES).wrapping_mul(0x0102_0408_1020_4080)) >> 56) as u16
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
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 1024, ..Default::default() })]
        #[test]
        fn escaping_matches_serde_json_on_any_text(
            s in "(?s).{0,300}|[\"\\\\a{}:,\n\u{1}é]{0,300}",
            pad in 0usize..16,
        ) {
            // Shift the string against the 16-byte blocks.
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
