//! The line framer over any bytes, read in pieces of any size with any line
//! limit: it never panics, yields exactly the complete lines in order (a
//! line it skips as too long is over the limit and reported by its exact
//! size; the limit is soft: a line that fits the buffer comes whole), and stops just
//! after the last `\n`, or at the end when what follows it is a complete record
//! (one JSON object or array): a half-written last line is never yielded.
#![no_main]

use confab_sync::core::io::{FileStat, ReadAt};
use confab_sync::core::lines::{is_complete_record, LineReader, Next};
use libfuzzer_sys::fuzz_target;

struct Mem<'a>(&'a [u8]);

impl ReadAt for Mem<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, String> {
        let start = (offset as usize).min(self.0.len());
        let n = buf.len().min(self.0.len() - start);
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        Ok(n)
    }
    fn stat(&self) -> Result<FileStat, String> {
        Ok(FileStat {
            size: self.0.len() as u64,
            mtime_ns: 0,
        })
    }
}

fuzz_target!(|input: &[u8]| {
    let [read, max, data @ ..] = input else {
        return;
    };
    let read_size = usize::from(*read % 64) + 1;
    let max_line = usize::from(*max) + 1;
    let file = Mem(data);
    let mut reader = LineReader::with_read_size(&file, 0, max_line, read_size);
    let mut at = 0usize;
    loop {
        match reader.next_line().expect("reading memory cannot fail") {
            Next::Line(line) => {
                assert_eq!(line, &data[at..at + line.len()]);
                at += line.len();
                if at == data.len() {
                    // The tail, handed out without a newline.
                    assert!(is_complete_record(&data[at - line.len()..]));
                    break;
                }
                assert_eq!(data[at], b'\n');
                at += 1;
            }
            Next::TooLong { size } => {
                let size = size as usize;
                assert!(size > max_line);
                assert!(!data[at..at + size].contains(&b'\n'));
                at += size;
                assert_eq!(data[at], b'\n');
                at += 1;
            }
            Next::GrewAfterHandedOut => panic!("a reader from 0 is never open"),
            Next::End => break,
        }
    }
    let mut complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if data.len() - complete <= max_line && is_complete_record(&data[complete..]) {
        complete = data.len();
    }
    assert_eq!(at, complete);
    assert_eq!(reader.offset(), complete as u64);
    assert_eq!(
        reader.ends_open(),
        complete > 0 && complete == data.len() && data[complete - 1] != b'\n'
    );
});
