//! The byte-preserving JSON walker: validates one line as JSON (RFC 8259, as
//! strict as serde_json except that lone `\uD800`-style surrogate escapes are
//! tolerated) and lets a [`Handler`] replace string values, numbers and whole
//! objects, copying every other byte of the line verbatim.
//!
//! Parsing into `serde_json::Value` and serializing again would reorder keys,
//! re-escape strings and reformat numbers on lines that hold no secret; this
//! walker never re-encodes anything it was not asked to replace, and inside a
//! redacted string ([`reencode`]) it keeps the original escapes of the parts
//! that survive.
//!
//! The walk is iterative (an explicit stack, no recursion), so a deeply nested
//! line cannot overflow the call stack, and every index is checked: malformed
//! input yields [`Invalid`], never a panic.

/// A non-string value the handler may replace whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whole {
    Number,
    Object,
}

/// What the walker asks about the values it meets. Strings arrive decoded;
/// every `Some` answer is the complete replacement token (quotes included).
pub(crate) trait Handler {
    /// What a value knows about the key it sits under (arrays pass theirs on).
    type Ctx: Clone;
    /// Whether keys need decoding at all (no field patterns: they do not).
    fn wants_keys(&self) -> bool;
    /// Context of a value that has no key (the top level), or when keys are not wanted.
    fn root(&self) -> Self::Ctx;
    /// Context of the value of object key `key` (decoded).
    fn key(&mut self, key: &str) -> Self::Ctx;
    /// A string value: `raw` is the text between its quotes as written, found
    /// at byte `at` of the line; `escaped` tells whether it needs decoding
    /// ([`decode_into`]) or is its own value.
    fn string(&mut self, ctx: &Self::Ctx, at: usize, raw: &str, escaped: bool) -> Option<String>;
    /// A number or an object (other than inside an object already being replaced).
    /// (`true`, `false` and `null` carry no secret and are never offered.)
    fn whole(&mut self, ctx: &Self::Ctx, kind: Whole) -> Option<String>;
}

/// The line is not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Invalid;

/// Walks `line`; `Ok(None)` when it is JSON and nothing was replaced,
/// `Ok(Some(new_line))` when something was.
pub(crate) fn walk<H: Handler>(line: &str, handler: &mut H) -> Result<Option<String>, Invalid> {
    Walker {
        line,
        b: line.as_bytes(),
        out: None,
        copied: 0,
        scratch: String::new(),
    }
    .run(handler)
}

struct Frame<C> {
    /// `Some(ctx)` for an array (its elements inherit the key); `None` for an object.
    array: Option<C>,
    /// For an object replaced whole: where it started and what replaces it.
    replace: Option<(usize, String)>,
    /// Whether the walk was skipping (inside a replaced object) when this frame opened.
    was_skipping: bool,
}

struct Walker<'a> {
    line: &'a str,
    b: &'a [u8],
    /// The rewritten line, started lazily at the first replacement.
    out: Option<String>,
    /// How much of `line` has been copied to `out`.
    copied: usize,
    /// Decoding buffer for keys with escapes, reused across the line.
    scratch: String,
}

impl<'a> Walker<'a> {
    fn run<H: Handler>(mut self, h: &mut H) -> Result<Option<String>, Invalid> {
        let b = self.b;
        let mut stack: Vec<Frame<H::Ctx>> = Vec::new();
        let mut skipping = false;
        let mut ctx = h.root();
        let mut pos = ws(b, 0);
        'value: loop {
            // One value at `pos`, under `ctx`.
            match b.get(pos).copied().ok_or(Invalid)? {
                b'{' => {
                    let start = pos;
                    let replace = if skipping {
                        None
                    } else {
                        h.whole(&ctx, Whole::Object)
                    };
                    pos = ws(b, pos + 1);
                    if b.get(pos) == Some(&b'}') {
                        pos += 1;
                        if let Some(with) = replace {
                            self.replace(start, pos, &with);
                        }
                    } else {
                        let was_skipping = skipping;
                        skipping |= replace.is_some();
                        stack.push(Frame {
                            array: None,
                            replace: replace.map(|r| (start, r)),
                            was_skipping,
                        });
                        (ctx, pos) = self.key(h, pos, skipping)?;
                        continue 'value;
                    }
                }
                b'[' => {
                    pos = ws(b, pos + 1);
                    if b.get(pos) == Some(&b']') {
                        pos += 1;
                    } else {
                        stack.push(Frame {
                            array: Some(ctx.clone()),
                            replace: None,
                            was_skipping: skipping,
                        });
                        continue 'value;
                    }
                }
                b'"' => {
                    let (end, escaped) = scan_string(b, pos)?;
                    if !skipping {
                        let raw = self.line.get(pos + 1..end - 1).ok_or(Invalid)?;
                        if let Some(with) = h.string(&ctx, pos + 1, raw, escaped) {
                            self.replace(pos, end, &with);
                        }
                    }
                    pos = end;
                }
                b'-' | b'0'..=b'9' => {
                    let end = scan_number(b, pos)?;
                    if !skipping {
                        if let Some(with) = h.whole(&ctx, Whole::Number) {
                            self.replace(pos, end, &with);
                        }
                    }
                    pos = end;
                }
                b't' => pos = expect(b, pos, b"true")?,
                b'f' => pos = expect(b, pos, b"false")?,
                b'n' => pos = expect(b, pos, b"null")?,
                _ => return Err(Invalid),
            }
            // After a value: a separator, or the end of one or more containers.
            loop {
                pos = ws(b, pos);
                let Some(top) = stack.last() else {
                    return if pos == b.len() {
                        Ok(self.finish())
                    } else {
                        Err(Invalid)
                    };
                };
                match (b.get(pos), &top.array) {
                    (Some(b','), Some(inherited)) => {
                        ctx = inherited.clone();
                        pos = ws(b, pos + 1);
                        continue 'value;
                    }
                    (Some(b','), None) => {
                        (ctx, pos) = self.key(h, ws(b, pos + 1), skipping)?;
                        continue 'value;
                    }
                    (Some(b']'), Some(_)) | (Some(b'}'), None) => {
                        pos += 1;
                        let Some(frame) = stack.pop() else {
                            return Err(Invalid);
                        };
                        skipping = frame.was_skipping;
                        if let Some((start, with)) = frame.replace {
                            self.replace(start, pos, &with);
                        }
                    }
                    _ => return Err(Invalid),
                }
            }
        }
    }

    /// An object key at `pos`, its colon and the whitespace after: the value's
    /// context and position.
    fn key<H: Handler>(
        &mut self,
        h: &mut H,
        pos: usize,
        skipping: bool,
    ) -> Result<(H::Ctx, usize), Invalid> {
        let b = self.b;
        if b.get(pos) != Some(&b'"') {
            return Err(Invalid);
        }
        let (end, escaped) = scan_string(b, pos)?;
        let ctx = if skipping || !h.wants_keys() {
            h.root()
        } else {
            let raw = self.line.get(pos + 1..end - 1).ok_or(Invalid)?;
            if escaped {
                self.scratch.clear();
                decode_into(raw, &mut self.scratch);
                h.key(&self.scratch)
            } else {
                h.key(raw)
            }
        };
        let colon = ws(b, end);
        if b.get(colon) != Some(&b':') {
            return Err(Invalid);
        }
        Ok((ctx, ws(b, colon + 1)))
    }

    /// Replaces `line[start..end]` (after everything replaced so far) with `with`.
    fn replace(&mut self, start: usize, end: usize, with: &str) {
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(self.line.len() + 64));
        if let Some(kept) = self.line.get(self.copied..start) {
            out.push_str(kept);
        }
        out.push_str(with);
        self.copied = end.max(self.copied);
    }

    fn finish(mut self) -> Option<String> {
        let mut out = self.out.take()?;
        out.push_str(self.line.get(self.copied..).unwrap_or(""));
        Some(out)
    }
}

fn ws(b: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(pos) {
        pos += 1;
    }
    pos
}

fn expect(b: &[u8], pos: usize, word: &[u8]) -> Result<usize, Invalid> {
    match b.get(pos..pos + word.len()) {
        Some(found) if found == word => Ok(pos + word.len()),
        _ => Err(Invalid),
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` at `pos`; returns its end.
fn scan_number(b: &[u8], mut pos: usize) -> Result<usize, Invalid> {
    fn digits(b: &[u8], mut pos: usize) -> usize {
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        pos
    }
    if b.get(pos) == Some(&b'-') {
        pos += 1;
    }
    match b.get(pos) {
        Some(b'0') => pos += 1,
        Some(b'1'..=b'9') => pos = digits(b, pos + 1),
        _ => return Err(Invalid),
    }
    if b.get(pos) == Some(&b'.') {
        let end = digits(b, pos + 1);
        if end == pos + 1 {
            return Err(Invalid);
        }
        pos = end;
    }
    if let Some(b'e' | b'E') = b.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = b.get(pos) {
            pos += 1;
        }
        let end = digits(b, pos);
        if end == pos {
            return Err(Invalid);
        }
        pos = end;
    }
    Ok(pos)
}

/// The string token starting at the quote at `pos`: the index after its
/// closing quote, and whether it holds escapes. Checks escapes and refuses raw
/// control characters, as JSON requires.
pub(crate) fn scan_string(b: &[u8], pos: usize) -> Result<(usize, bool), Invalid> {
    let mut i = pos + 1;
    let mut escaped = false;
    loop {
        let rest = b.get(i..).ok_or(Invalid)?;
        let Some(off) = memchr::memchr2(b'"', b'\\', rest) else {
            return Err(Invalid);
        };
        if rest[..off].iter().any(|&c| c < 0x20) {
            return Err(Invalid);
        }
        i += off;
        if b[i] == b'"' {
            return Ok((i + 1, escaped));
        }
        escaped = true;
        match b.get(i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
            Some(b'u') if hex4(b, i + 2).is_some() => i += 6,
            _ => return Err(Invalid),
        }
    }
}

fn hex4(b: &[u8], pos: usize) -> Option<u32> {
    let digits = b.get(pos..pos + 4)?;
    let mut v = 0u32;
    for &d in digits {
        v = v * 16 + char::from(d).to_digit(16)?;
    }
    Some(v)
}

/// The escape sequence at `b[pos]` (a backslash): how many bytes it spans and
/// the character it stands for. A surrogate pair is one escape of 12 bytes; a
/// lone surrogate (which JSON.stringify can emit) decodes to U+FFFD.
/// Malformed input (never produced once [`scan_string`] accepted it) still
/// spans at least one byte, so callers always advance.
pub(crate) fn escape_at(b: &[u8], pos: usize) -> (usize, char) {
    let short = |c| (2, c);
    match b.get(pos + 1) {
        Some(b'"') => short('"'),
        Some(b'\\') => short('\\'),
        Some(b'/') => short('/'),
        Some(b'b') => short('\u{8}'),
        Some(b'f') => short('\u{c}'),
        Some(b'n') => short('\n'),
        Some(b'r') => short('\r'),
        Some(b't') => short('\t'),
        Some(b'u') => {
            let Some(unit) = hex4(b, pos + 2) else {
                return (2, char::REPLACEMENT_CHARACTER);
            };
            if (0xD800..0xDC00).contains(&unit) {
                if b.get(pos + 6) == Some(&b'\\') && b.get(pos + 7) == Some(&b'u') {
                    if let Some(low @ 0xDC00..=0xDFFF) = hex4(b, pos + 8) {
                        let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        return (12, char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
                    }
                }
                (6, char::REPLACEMENT_CHARACTER)
            } else {
                (
                    6,
                    char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER),
                )
            }
        }
        Some(_) => (2, char::REPLACEMENT_CHARACTER),
        None => (1, char::REPLACEMENT_CHARACTER),
    }
}

/// Appends the value of the string body `raw` (between the quotes) to `out`.
pub(crate) fn decode_into(raw: &str, out: &mut String) {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let run = memchr::memchr(b'\\', &b[i..]).map_or(b.len(), |off| i + off);
        out.push_str(raw.get(i..run).unwrap_or(""));
        if run >= b.len() {
            break;
        }
        let (len, c) = escape_at(b, run);
        out.push(c);
        i = run + len;
    }
}

/// Appends `s` JSON-escaped (no quotes), as JSON.stringify writes it: `"`,
/// `\` and control characters escaped, everything else literal.
pub(crate) fn push_escaped(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push_str(esc);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
}

/// `s` as a JSON string token, quotes included.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    push_escaped(&mut out, s);
    out.push('"');
    out
}

/// A span of a decoded string to replace with a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edit {
    pub start: usize,
    pub end: usize,
    /// Index of the rule whose marker replaces the span.
    pub rule: usize,
}

/// Rebuilds the string token whose body is `raw` with the decoded spans of
/// `edits` (sorted, disjoint, on character boundaries of the decoded text)
/// replaced by `marker(rule)`, keeping the original bytes (escapes included)
/// of everything outside the spans.
pub(crate) fn reencode<'m>(raw: &str, edits: &[Edit], marker: impl Fn(usize) -> &'m str) -> String {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len() + 2 + 24 * edits.len());
    out.push('"');
    let (mut r, mut d) = (0usize, 0usize);
    let mut edits = edits.iter().peekable();
    while r < b.len() {
        if let Some(edit) = edits.peek().filter(|e| d >= e.start) {
            push_escaped(&mut out, marker(edit.rule));
            // Skip the raw text of the span, one character or escape at a time.
            while r < b.len() && d < edit.end {
                let (raw_len, dec_len) = unit_at(raw, r);
                r += raw_len;
                d += dec_len;
            }
            edits.next();
            continue;
        }
        // Copy verbatim up to the next escape or the next span, whichever is first.
        let next_escape = memchr::memchr(b'\\', &b[r..]).map_or(b.len(), |off| r + off);
        let next_edit = edits.peek().map_or(usize::MAX, |e| r + (e.start - d));
        let stop = next_escape.min(next_edit).min(b.len());
        if stop > r {
            out.push_str(raw.get(r..stop).unwrap_or(""));
            d += stop - r;
            r = stop;
        } else {
            let (raw_len, _) = escape_at(b, r);
            out.push_str(raw.get(r..r + raw_len).unwrap_or(""));
            d += unit_at(raw, r).1;
            r += raw_len;
        }
    }
    out.push('"');
    out
}

/// The character or escape at `raw[r]`: (raw bytes, decoded bytes).
fn unit_at(raw: &str, r: usize) -> (usize, usize) {
    let b = raw.as_bytes();
    if b.get(r) == Some(&b'\\') {
        let (len, c) = escape_at(b, r);
        (len, c.len_utf8())
    } else {
        let len = raw
            .get(r..)
            .and_then(|s| s.chars().next())
            .map_or(1, char::len_utf8);
        (len, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replaces every string equal to "secret" and every number under key "n".
    struct Probe;
    impl Handler for Probe {
        type Ctx = bool;
        fn wants_keys(&self) -> bool {
            true
        }
        fn root(&self) -> bool {
            false
        }
        fn key(&mut self, key: &str) -> bool {
            key == "n"
        }
        fn string(&mut self, _: &bool, _at: usize, raw: &str, escaped: bool) -> Option<String> {
            let mut decoded = String::new();
            if escaped {
                decode_into(raw, &mut decoded);
            } else {
                decoded.push_str(raw);
            }
            (decoded == "secret").then(|| quote("X"))
        }
        fn whole(&mut self, ctx: &bool, kind: Whole) -> Option<String> {
            (*ctx && kind == Whole::Number).then(|| quote("N"))
        }
    }

    fn run(s: &str) -> Result<Option<String>, Invalid> {
        walk(s, &mut Probe)
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        for s in [
            "0",
            "-0.5e+10",
            "\"\"",
            "[]",
            "{}",
            " { \"a\" : [ 1 , { } , [ ] , null , true , false ] } ",
            r#"{"a":"\u00e9\ud83d\ude00\n\"\\\/"}"#,
            "[[[[[[[[[[[[]]]]]]]]]]]]",
        ] {
            assert_eq!(run(s), Ok(None), "{s}");
            assert!(serde_json::from_str::<serde_json::Value>(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for s in [
            "",
            " ",
            "{",
            "}",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "{a:1}",
            "01",
            "1.",
            "1e",
            "-",
            ".5",
            "tru",
            "nul",
            "\"\\x\"",
            "\"\\u12\"",
            "\"a\tb\"",
            "\"abc",
            "[1 2]",
            "{\"a\":1 \"b\":2}",
            "1 2",
            "[}",
            "{]",
            "\u{feff}{}",
        ] {
            assert_eq!(run(s), Err(Invalid), "{s:?}");
            assert!(
                serde_json::from_str::<serde_json::Value>(s).is_err(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = "[".repeat(1_000_000) + &"]".repeat(1_000_000);
        assert_eq!(run(&deep), Ok(None));
        let unbalanced = "[".repeat(1_000_000);
        assert_eq!(run(&unbalanced), Err(Invalid));
    }

    #[test]
    fn replaces_in_place_and_keeps_the_rest() {
        let s = "{ \"b\" :\"secret\",\t\"n\": 1.5e3 , \"a\":[\"secret\" ,\"\\u0073ecret\"], \"k\":\"\\u00e9\"}";
        let out = run(s).unwrap().unwrap();
        assert_eq!(
            out,
            "{ \"b\" :\"X\",\t\"n\": \"N\" , \"a\":[\"X\" ,\"X\"], \"k\":\"\\u00e9\"}"
        );
    }

    #[test]
    fn decodes_escapes_and_lone_surrogates() {
        let mut out = String::new();
        decode_into(
            r#"a\"b\\c\/d\b\f\n\r\t\u0041\ud83d\ude00\ud800x\udc00"#,
            &mut out,
        );
        assert_eq!(out, "a\"b\\c/d\u{8}\u{c}\n\r\tA\u{1F600}\u{FFFD}x\u{FFFD}");
    }

    #[test]
    fn reencode_keeps_escapes_outside_edits() {
        // decoded: "é-SECRET-\n" ; replace "SECRET" (bytes 3..9 of the decoded text)
        let raw = r"\u00e9-SECRET-\n";
        let mut decoded = String::new();
        decode_into(raw, &mut decoded);
        let start = decoded.find("SECRET").unwrap();
        let edits = [Edit {
            start,
            end: start + 6,
            rule: 0,
        }];
        assert_eq!(reencode(raw, &edits, |_| "[R]"), r#""\u00e9-[R]-\n""#);
        // A span covering escapes swallows them whole.
        let raw = r"a\u0042c\nd";
        let edits = [Edit {
            start: 1,
            end: 4,
            rule: 0,
        }];
        assert_eq!(reencode(raw, &edits, |_| "\"m\""), r#""a\"m\"d""#);
    }

    #[test]
    fn push_escaped_matches_serde_json() {
        for s in ["plain", "q\"b\\s", "\u{1}\u{1f}\n\t", "é😀"] {
            assert_eq!(quote(s), serde_json::to_string(s).unwrap());
        }
    }
}
