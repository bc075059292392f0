//! A test stand-in for confab_sync.wasm. It takes the same command line
//! (`sync <transcript> [--external-id MODE]`) and, by MODE:
//!
//! - `write` (default): reads the transcript, then tries every way std
//!   offers to change its folder (create, append, truncate, mkdir, hard
//!   link, rename, remove), each through wasi:filesystem, printing one line
//!   per attempt: `<attempt>: written` or `<attempt>: refused (<error>)`.
//!   Exits 0 when the read worked and every write was refused.
//! - `allocate:<MiB>`: allocates and fills that much memory (aborting, a
//!   trap, when the host refuses to grow memory), then prints
//!   `allocated <MiB> MiB`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args
        .iter()
        .position(|a| a == "--external-id")
        .and_then(|i| args.get(i + 1))
        .map_or("write", String::as_str);
    if let Some(mib) = mode.strip_prefix("allocate:") {
        let mib: usize = mib.parse().expect("allocate:<MiB>");
        let block = vec![1u8; mib << 20];
        let sum: u64 = block.iter().step_by(4096).map(|&b| u64::from(b)).sum();
        println!("allocated {mib} MiB ({sum} pages)");
        return;
    }
    let transcript = args
        .iter()
        .skip(1)
        .find(|a| a.ends_with(".jsonl"))
        .expect("a transcript path");
    write_attempts(Path::new(transcript));
}

fn write_attempts(transcript: &Path) {
    let folder = transcript.parent().expect("the transcript's folder");
    let read = fs::read(transcript);
    match &read {
        Ok(bytes) => println!("read: {} bytes", bytes.len()),
        Err(e) => println!("read: failed ({e})"),
    }
    let mut attempts: Vec<(&str, std::io::Result<()>)> = vec![
        ("create", fs::write(folder.join("probe-new.txt"), b"x")),
        (
            "append",
            OpenOptions::new()
                .append(true)
                .open(transcript)
                .and_then(|mut f| f.write_all(b"{\"probe\":1}\n")),
        ),
        (
            "truncate",
            OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(transcript)
                .map(drop),
        ),
        ("mkdir", fs::create_dir(folder.join("probe-dir"))),
        (
            "hard-link",
            fs::hard_link(transcript, folder.join("probe-link.jsonl")),
        ),
        (
            "rename",
            fs::rename(transcript, folder.join("probe-renamed.jsonl")),
        ),
    ];
    // Remove whatever the rename left: the transcript itself when it was refused.
    let renamed = folder.join("probe-renamed.jsonl");
    let victim = if renamed.exists() {
        renamed
    } else {
        transcript.to_path_buf()
    };
    attempts.push(("remove", fs::remove_file(victim)));
    let mut all_refused = true;
    for (what, result) in attempts {
        match result {
            Ok(()) => {
                all_refused = false;
                println!("{what}: written");
            }
            Err(e) => println!("{what}: refused ({e})"),
        }
    }
    std::process::exit(if read.is_ok() && all_refused { 0 } else { 1 });
}
