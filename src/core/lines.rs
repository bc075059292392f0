//! Line framing over positional reads.
//!
//! [`LineReader`] hands out complete lines (without their `\n`) from a byte
//! offset, through one reusable buffer filled by large reads. It never hands
//! out the bytes after the last `\n`: a line still being written by the agent
//! is not a line yet (the Go engine uploads it half-written; we don't).
//! Modeled on ripgrep's `grep-searcher` line buffer.

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
    /// No complete line left (what follows, if anything, has no `\n` yet).
    End,
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

    /// Same, with a chosen read size (small sizes exercise buffer growth in tests).
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
            read_size: read_size.max(1),
            filled_up: false,
        }
    }

    /// File offset just after the last line (or skipped too-long line) returned.
    pub fn offset(&self) -> u64 {
        self.consumed
    }

    /// The next complete line.
    pub fn next_line(&mut self) -> Result<Next<'_>, String> {
        loop {
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
                return Ok(Next::End);
            }
            if self.end - self.start > self.max_line {
                return self.skip_long_line();
            }
            self.make_room();
            self.fill()?;
        }
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
        let mut out = Vec::new();
        loop {
            match r.next_line().unwrap() {
                Next::Line(l) => out.push(String::from_utf8_lossy(l).into_owned()),
                Next::TooLong { size } => out.push(format!("<too long: {size}>")),
                Next::End => break,
            }
        }
        (out, r.offset())
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
        /// out exactly, in order, and the offset lands just after the last `\n`.
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
                    Next::End => break,
                }
            }
            let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            proptest::prop_assert_eq!(r.offset(), complete as u64);
            proptest::prop_assert_eq!(rebuilt.len(), complete);
            for (a, b) in rebuilt.iter().zip(&data[..complete]) {
                proptest::prop_assert!(a == b || *a == b'?');
            }
        }
    }
}
