//! The shipped fixture sessions as lines, for the benchmark programs
//! (`benches/redactor.rs`, `bench-stages`), which include this file with
//! `#[path]`: their corpora are built from the same lines in the same order.

use std::path::{Path, PathBuf};

/// Every non-empty line of every `.jsonl` file under `root` (without its
/// newline), files in path order.
pub fn fixture_lines(root: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("fixture dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).expect("fixture file");
        lines.extend(
            bytes
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    lines
}
