//! Line framing over positional reads.
//!
//! [`LineReader`] hands out complete lines (without their `\n`) from a byte
//! offset, through one reusable buffer filled by large reads. Modeled on
//! ripgrep's `grep-searcher` line buffer.
//!
//! The bytes after the last `\n` (the *tail*) are a line only when they are
//! a complete record: one JSON object or array from their first byte to
//! their last (see [`is_complete_record`]). Cursor writes no newline after
//! its last record, so without this the last record of a finished
//! conversation would never go up; and no proper prefix of a one-object line
//! is itself an object, so a line still being written by the agent is not
//! taken for a line (the Go engine uploads it half-written; we don't). A tail
//! handed out this way leaves the reader *open*: the `\n` that arrives later
//! closes that line and is no line of its own (see [`LineReader::resume`]).

use super::io::ReadAt;
use std::borrow::Cow;

/// Bytes asked for per read: large reads keep the per-call cost of
/// `wasi:filesystem` negligible. Each read is held three times at once
/// (the host's buffer, the list it hands the component, the reader's
/// buffer): 2 MiB rather than 4 took 2 MiB off the peak RSS of a 1 GiB sync
/// (63.6 -> 61.5 MiB, the target being under 64) at no measurable speed.
pub const READ_SIZE: usize = 2 << 20;

/// The first read's size: the buffer doubles up to the read size while
/// reads fill it, so a sync of a few new lines (a live session's usual
/// round) holds kilobytes, not 2 MiB, in an instance that lives on
/// between rounds (a linear memory never shrinks).
pub const FIRST_READ_SIZE: usize = 64 << 10;

/// A line as text: borrowed when it is valid UTF-8, else with the invalid
/// bytes replaced. The strict check runs several times faster than the lossy
/// one (7,200 vs 1,400 MiB/s natively, benches/stages.rs), which only a bad line needs.
pub fn text(line: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(line) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(line),
    }
}

/// One step of the reader.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// A complete line, without its `\n`.
    Line(&'a [u8]),
    /// A complete line longer than the reader's limit; it was skipped.
    TooLong { size: u64 },
    /// The reader was resumed open (the line before its offset was handed
    /// out without a `\n`), but that line did not end there: bytes other
    /// than a `\n` were written after it. What was handed out is not that
    /// line any more; nothing after it is framed.
    GrewAfterHandedOut,
    /// No complete line left (what follows, if anything, has no `\n` yet
    /// and is no complete record).
    End,
}

/// Whether an unterminated tail counts as a line: one JSON object or array,
/// starting and ending with its brackets (no whitespace around it). Bare
/// scalars never count: `12` is a prefix of `123`, and `true`, a string or
/// whitespace may be one too; an object or array is not a prefix of any
/// longer JSON value but itself. The parse runs only on a tail at the end
/// of the file, at most once per reader and at most `max_line` bytes.
pub fn is_complete_record(tail: &[u8]) -> bool {
    matches!(
        (tail.first(), tail.last()),
        (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']'))
    ) && serde_json::from_slice::<serde::de::IgnoredAny>(tail).is_ok()
}

pub struct LineReader<'f, F: ReadAt> {
    file: &'f F,
    buf: Vec<u8>,
    /// Start of the first unconsumed byte in `buf`.
    start: usize,
    /// Where the newline search resumes (everything in start..scan has no `\n`).
    scan: usize,
    /// End of valid data in `buf`.
    end: usize,
    /// File offset of `buf[end]`.
    file_pos: u64,
    /// File offset just after the last complete line handed out.
    consumed: u64,
    eof: bool,
    max_line: usize,
    /// The line just before `consumed` was handed out without its `\n`:
    /// a `\n` met at `consumed` closes it and is skipped.
    open: bool,
    /// Reads grow to this while they fill the buffer.
    read_size: usize,
    /// The last read filled the room it had: more is likely to come.
    filled_up: bool,
}

impl<'f, F: ReadAt> LineReader<'f, F> {
    /// Read lines of `file` starting at byte `offset`, which must be the start
    /// of a line. Lines longer than `max_line` bytes come out as `TooLong`.
    pub fn new(file: &'f F, offset: u64, max_line: usize) -> Self {
        Self::with_read_size(file, offset, max_line, READ_SIZE)
    }

    /// Read lines from `offset`, where an earlier reader stopped. `open`:
    /// that reader's last line was a tail handed out without its `\n`
    /// ([`LineReader::ends_open`]), so the `\n` expected at `offset` closes
    /// it rather than making an empty line.
    pub fn resume(file: &'f F, offset: u64, max_line: usize, open: bool) -> Self {
        let mut reader = Self::new(file, offset, max_line);
        reader.open = open && offset > 0;
        reader
    }

    /// Same as [`LineReader::new`], with a chosen read size (small sizes
    /// exercise buffer growth in tests).
    pub fn with_read_size(file: &'f F, offset: u64, max_line: usize, read_size: usize) -> Self {
        LineReader {
            file,
            buf: vec![0; read_size.clamp(1, FIRST_READ_SIZE)],
            start: 0,
            scan: 0,
            end: 0,
            file_pos: offset,
            consumed: offset,
            eof: false,
            max_line,
            open: false,
            read_size: read_size.max(1),
            filled_up: false,
        }
    }

    /// File offset just after the last line (or skipped too-long line) returned.
    pub fn offset(&self) -> u64 {
        self.consumed
    }

    /// Whether the line ending at [`LineReader::offset`] was handed out
    /// without its `\n` (a complete record ending the file): resume there
    /// with `open` set.
    pub fn ends_open(&self) -> bool {
        self.open
    }

    /// The next complete line.
    pub fn next_line(&mut self) -> Result<Next<'_>, String> {
        loop {
            if self.open && self.start < self.end {
                if self.buf[self.start] != b'\n' {
                    return Ok(Next::GrewAfterHandedOut);
                }
                // The newline of the line handed out open: it closes it.
                self.start += 1;
                self.scan = self.start;
                self.consumed += 1;
                self.open = false;
            }
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.scan..self.end]) {
                let newline = self.scan + i;
                let line_start = self.start;
                self.start = newline + 1;
                self.scan = self.start;
                self.consumed += (newline + 1 - line_start) as u64;
                return Ok(Next::Line(&self.buf[line_start..newline]));
            }
            self.scan = self.end;
            if self.eof {
                return Ok(self.complete_tail());
            }
            if self.end - self.start > self.max_line {
                return self.skip_long_line();
            }
            self.make_room();
            self.fill()?;
        }
    }

    /// At the end of the file: the unterminated tail as a line when it is a
    /// complete record, else nothing (it waits for its newline). A tail over
    /// the limit is never parsed (it waits, like any line over it).
    fn complete_tail(&mut self) -> Next<'_> {
        let tail = self.start..self.end;
        if tail.is_empty()
            || tail.len() > self.max_line
            || !is_complete_record(&self.buf[tail.clone()])
        {
            return Next::End;
        }
        self.start = self.end;
        self.scan = self.end;
        self.consumed += tail.len() as u64;
        self.open = true;
        Next::Line(&self.buf[tail])
    }

    /// Move the pending partial line to the front, growing the buffer when it
    /// is full of one line.
    fn make_room(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scan -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).min(self.max_line + 1 + READ_SIZE);
            self.buf.resize(grown.max(self.buf.len() + 1), 0);
        } else if self.filled_up && self.buf.len() < self.read_size {
            let grown = (self.buf.len() * 2).min(self.read_size);
            self.buf.resize(grown, 0);
        }
    }

    fn fill(&mut self) -> Result<(), String> {
        let room = self.buf.len() - self.end;
        let n = self
            .file
            .read_at(&mut self.buf[self.end..], self.file_pos)?;
        self.filled_up = n == room;
        if n == 0 {
            self.eof = true;
        } else {
            self.end += n;
            self.file_pos += n as u64;
        }
        Ok(())
    }

    /// The pending line is over the limit: count the rest of it without
    /// keeping it, so the error can say how big it is.
    fn skip_long_line(&mut self) -> Result<Next<'_>, String> {
        let mut size = (self.end - self.start) as u64;
        loop {
            self.start = 0;
            self.scan = 0;
            self.end = 0;
            self.fill()?;
            if self.eof {
                // Still being written: not a line yet; nothing consumed.
                return Ok(Next::End);
            }
            if let Some(i) = memchr::memchr(b'\n', &self.buf[..self.end]) {
                size += i as u64;
                self.start = i + 1;
                self.scan = self.start;
                self.consumed += size + 1;
                return Ok(Next::TooLong { size });
            }
            size += self.end as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::io::FileStat;

    struct Mem(Vec<u8>);
    impl ReadAt for Mem {
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

    fn collect(data: &[u8], offset: u64, max: usize, read: usize) -> (Vec<String>, u64) {
        let file = Mem(data.to_vec());
        let mut r = LineReader::with_read_size(&file, offset, max, read);
        (drain(&mut r), r.offset())
    }

    fn drain<F: ReadAt>(r: &mut LineReader<'_, F>) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            match r.next_line().unwrap() {
                Next::Line(l) => out.push(String::from_utf8_lossy(l).into_owned()),
                Next::TooLong { size } => out.push(format!("<too long: {size}>")),
                Next::GrewAfterHandedOut => {
                    out.push("<grew>".into());
                    break;
                }
                Next::End => break,
            }
        }
        out
    }

    /// Read `data` to its end, then resume where that stopped over `later`
    /// (the same file, grown): the lines of each pass and the final offset.
    fn two_passes(data: &[u8], later: &[u8]) -> (Vec<String>, Vec<String>, u64, bool) {
        let file = Mem(data.to_vec());
        let mut r = LineReader::with_read_size(&file, 0, 100, 4);
        let first = drain(&mut r);
        let (offset, open) = (r.offset(), r.ends_open());
        let grown = Mem([data, later].concat());
        let mut r = LineReader::resume(&grown, offset, 100, open);
        let second = drain(&mut r);
        (first, second, r.offset(), r.ends_open())
    }

    #[test]
    fn a_complete_record_without_its_newline_is_the_last_line() {
        let (lines, off) = collect(b"{\"a\":1}\n{\"b\":[2,{}]}", 0, 100, 3);
        assert_eq!(lines, ["{\"a\":1}", "{\"b\":[2,{}]}"]);
        assert_eq!(off, 20);
        let (lines, _) = collect(b"[1,2]", 0, 100, 64);
        assert_eq!(lines, ["[1,2]"]);
    }

    #[test]
    fn an_incomplete_or_scalar_tail_waits_for_its_newline() {
        for tail in [
            &b"{\"a\":1"[..],
            b"{\"a\":\"}\"",
            b"{\"a\":1}{",
            b"{\"a\":1} ",
            b" {\"a\":1}",
            b"{\"a\":1}\r",
            b"12",
            b"true",
            b"\"s\"",
            b"null",
            b"   ",
            b"{not json}",
            b"[1,]",
        ] {
            let data = [&b"{\"z\":0}\n"[..], tail].concat();
            let (lines, off) = collect(&data, 0, 100, 5);
            assert_eq!(lines, ["{\"z\":0}"], "{:?}", String::from_utf8_lossy(tail));
            assert_eq!(off, 8);
        }
    }

    #[test]
    fn a_tail_over_the_limit_is_never_parsed_and_waits() {
        let tail = format!("{{\"a\":\"{}\"}}", "x".repeat(300));
        let data = format!("ok\n{tail}");
        let (lines, off) = collect(data.as_bytes(), 0, 100, 16);
        assert_eq!(lines, ["ok"]);
        assert_eq!(off, 3);
        let (lines, _) = collect(data.as_bytes(), 0, 1000, 16);
        assert_eq!(lines, ["ok", tail.as_str()]);
    }

    #[test]
    fn the_newline_that_arrives_later_closes_the_line_handed_out() {
        let (first, second, off, open) = two_passes(b"{\"a\":1}", b"\n");
        assert_eq!(first, ["{\"a\":1}"]);
        assert!(second.is_empty(), "no empty line: {second:?}");
        assert_eq!((off, open), (8, false));
    }

    #[test]
    fn the_next_record_after_a_newline_is_the_next_line() {
        let (first, second, off, open) = two_passes(b"{\"a\":1}", b"\n{\"b\":2}\n{\"c\":3}");
        assert_eq!(first, ["{\"a\":1}"]);
        assert_eq!(second, ["{\"b\":2}", "{\"c\":3}"]);
        assert_eq!((off, open), (23, true));
        let (_, second, off, open) = two_passes(b"{\"a\":1}", b"\n{\"b\":");
        assert!(second.is_empty(), "{second:?}");
        assert_eq!(
            (off, open),
            (8, false),
            "the newline is consumed, the half record waits"
        );
    }

    #[test]
    fn nothing_new_after_an_open_line_stays_open() {
        let (_, second, off, open) = two_passes(b"x\n{\"a\":1}", b"");
        assert!(second.is_empty());
        assert_eq!((off, open), (9, true));
    }

    #[test]
    fn bytes_written_onto_a_line_handed_out_are_reported() {
        let (_, second, off, _) = two_passes(b"{\"a\":1}", b"{\"b\":2}\n");
        assert_eq!(second, ["<grew>"]);
        assert_eq!(off, 7, "nothing consumed");
        let (_, second, _, _) = two_passes(b"{\"a\":1}", b"\r\n");
        assert_eq!(second, ["<grew>"]);
    }

    #[test]
    fn a_reader_resumed_closed_treats_a_leading_newline_as_an_empty_line() {
        let file = Mem(b"a\n\nb\n".to_vec());
        let mut r = LineReader::resume(&file, 2, 100, false);
        assert_eq!(drain(&mut r), ["", "b"]);
    }

    #[test]
    fn partial_last_line_is_not_a_line() {
        let (lines, off) = collect(b"a\nbb\ncc", 0, 100, 3);
        assert_eq!(lines, ["a", "bb"]);
        assert_eq!(off, 5);
    }

    #[test]
    fn resumes_at_an_offset() {
        let (lines, off) = collect(b"a\nbb\ncc\n", 2, 100, 2);
        assert_eq!(lines, ["bb", "cc"]);
        assert_eq!(off, 8);
    }

    #[test]
    fn lines_longer_than_the_buffer_grow_it() {
        let long = "x".repeat(1000);
        let data = format!("{long}\nshort\n");
        let (lines, _) = collect(data.as_bytes(), 0, 5000, 7);
        assert_eq!(lines, [long.as_str(), "short"]);
    }

    #[test]
    fn too_long_line_is_reported_with_its_size_and_skipped() {
        let data = format!("ok\n{}\nafter\n", "y".repeat(300));
        let (lines, off) = collect(data.as_bytes(), 0, 100, 16);
        assert_eq!(lines, ["ok", "<too long: 300>", "after"]);
        assert_eq!(off, data.len() as u64);
    }

    #[test]
    fn too_long_partial_line_waits() {
        let data = format!("ok\n{}", "y".repeat(300));
        let (lines, off) = collect(data.as_bytes(), 0, 100, 16);
        assert_eq!(lines, ["ok"]);
        assert_eq!(off, 3);
    }

    #[test]
    fn empty_lines_crlf_and_nul_are_data() {
        let (lines, _) = collect(b"\n\r\na\0b\n", 0, 100, 4);
        assert_eq!(lines, ["", "\r", "a\0b"]);
    }

    #[test]
    fn empty_file_has_no_lines() {
        let (lines, off) = collect(b"", 0, 100, 4);
        assert!(lines.is_empty());
        assert_eq!(off, 0);
    }

    proptest::proptest! {
        /// Whatever the bytes and read sizes: no panic, the complete lines come
        /// out exactly, in order, and the offset lands just after the last
        /// `\n`, or at the end when the tail is a complete record.
        #[test]
        fn framing_any_bytes_gives_exactly_the_complete_lines(
            data in proptest::collection::vec(proptest::prop_oneof![proptest::num::u8::ANY, proptest::strategy::Just(b'\n')], 0..2000),
            read in 1usize..64,
            max in 1usize..300,
        ) {
            let file = Mem(data.clone());
            let mut r = LineReader::with_read_size(&file, 0, max, read);
            let mut rebuilt = Vec::new();
            loop {
                match r.next_line().unwrap() {
                    Next::Line(l) => { rebuilt.extend_from_slice(l); rebuilt.push(b'\n'); }
                    Next::TooLong { size } => { rebuilt.extend(std::iter::repeat_n(b'?', size as usize)); rebuilt.push(b'\n'); }
                    Next::GrewAfterHandedOut => proptest::prop_assert!(false, "not resumed open"),
                    Next::End => break,
                }
            }
            let mut complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let tail = &data[complete..];
            if tail.len() <= max && is_complete_record(tail) {
                complete = data.len();
                rebuilt.push(b'\n');
            }
            proptest::prop_assert_eq!(r.offset(), complete as u64);
            proptest::prop_assert_eq!(r.ends_open(), complete == data.len() && !tail.is_empty() && data.last() != Some(&b'\n'));
            proptest::prop_assert_eq!(rebuilt.len(), complete + usize::from(r.ends_open()));
            for (a, b) in rebuilt.iter().zip(&data[..complete]) {
                proptest::prop_assert!(a == b || *a == b'?');
            }
        }

        /// A file of records read in two passes, cut anywhere and resumed
        /// where the first pass stopped: the same lines as one pass over the
        /// whole, none doubled, none empty.
        #[test]
        fn resuming_anywhere_gives_each_record_once(
            records in proptest::collection::vec("[a-z]{0,6}", 1..8),
            cut_at in 0usize..200,
            read in 1usize..16,
            final_newline: bool,
        ) {
            let mut data = records.iter().map(|r| format!("{{\"k\":\"{r}\"}}")).collect::<Vec<_>>().join("\n").into_bytes();
            if final_newline {
                data.push(b'\n');
            }
            let cut = cut_at.min(data.len());
            let first = Mem(data[..cut].to_vec());
            let mut r = LineReader::with_read_size(&first, 0, 100, read);
            let mut lines = drain(&mut r);
            let whole = Mem(data.clone());
            let mut r = LineReader::resume(&whole, r.offset(), 100, r.ends_open());
            lines.extend(drain(&mut r));
            let expected: Vec<String> = records.iter().map(|r| format!("{{\"k\":\"{r}\"}}")).collect();
            proptest::prop_assert_eq!(lines, expected);
            proptest::prop_assert_eq!(r.offset(), data.len() as u64);
        }
    }
}
