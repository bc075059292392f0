//! Where the engine's time goes, per stage of the per-line pipeline, over the
//! shipped fixtures repeated to 64 MiB: UTF-8 check, metadata scan, redaction,
//! JSON escaping into the chunk body, and zstd on 14 MiB chunk bodies. The
//! same program builds for wasm32-wasip2, so each stage's sandbox cost shows:
//!
//! ```text
//! cargo run --release -p confab-stages
//! cargo build --release -p confab-stages --target wasm32-wasip2
//! wasmtime run --dir . target/wasm32-wasip2/release/confab-stages.wasm
//! ```
//! (both from the repository's root).

// The fixtures' lines, as benches/redactor.rs reads them.
#[path = "../../benches/support/fixtures.rs"]
mod fixtures;

// The engine's core, as is (it has no WASI in it).
#[allow(dead_code)]
#[path = "../../src/core/mod.rs"]
mod core;

use std::borrow::Cow;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::core::chunk::escape_line;
use crate::core::config::RedactionSettings;
use crate::core::limits::{MAX_CHUNK_LINE_BYTES, ZSTD_LEVEL, ZSTD_WINDOW_LOG};
use crate::core::lines;
use crate::core::metadata::{mentions_session_end, scan_line, Wants};
use crate::core::redact::{RedactionCounts, Redactor};
use crate::fixtures::fixture_lines;
use zstd::zstd_safe::CParameter;

const TARGET_BYTES: usize = 64 << 20;
const RUNS: usize = 3;

fn main() {
    // From the repository's root (under wasmtime: the folder granted as `.`).
    let root = Path::new("tests/fixtures/claude-code");
    if !root.is_dir() {
        eprintln!(
            "confab-stages: {} not found: run it from the repository's root",
            root.display()
        );
        std::process::exit(2);
    }
    let fixture = fixture_lines(root);
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    while bytes < TARGET_BYTES {
        for line in &fixture {
            bytes += line.len() + 1;
            lines.push(line.clone());
        }
    }
    println!(
        "{} lines, {:.1} MiB ({})",
        lines.len(),
        mib(bytes),
        if cfg!(target_family = "wasm") {
            "wasm32-wasip2"
        } else {
            "native"
        }
    );
    println!("| stage | MiB/s |");
    println!("| --- | ---: |");

    row("UTF-8 check (from_utf8_lossy)", bytes, || {
        let mut n = 0;
        for l in &lines {
            n += black_box(String::from_utf8_lossy(l)).len();
        }
        n
    });
    let texts: Vec<String> = lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    row("UTF-8 check (lines::text, the engine's)", bytes, || {
        let mut n = 0;
        for l in &lines {
            n += black_box(lines::text(l)).len();
        }
        n
    });
    let steady = Wants {
        first_user_message: false,
        git_branch: false,
        cwd: false,
    };
    row(
        "metadata scan (steady state) + SessionEnd check",
        bytes,
        || {
            let mut n = 0;
            for t in &texts {
                n += black_box(scan_line(t, steady)).agent_ids.len();
                n += usize::from(mentions_session_end(t));
            }
            n
        },
    );
    let started = Instant::now();
    let on = Redactor::new(&RedactionSettings {
        enabled: true,
        ..RedactionSettings::default()
    })
    .expect("defaults compile");
    let compile = started.elapsed();
    row("redaction on (defaults, no secrets)", bytes, || {
        let mut counts = RedactionCounts::default();
        let mut n = 0;
        for t in &texts {
            n += match on.redact_line(t, &mut counts) {
                Cow::Borrowed(s) => s.len(),
                Cow::Owned(s) => s.len(),
            };
        }
        n
    });
    let mut escaped = Vec::new();
    let mut body = Vec::with_capacity(MAX_CHUNK_LINE_BYTES + (1 << 20));
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for t in &texts {
        escape_line(t, &mut escaped);
        if body.len() + escaped.len() > MAX_CHUNK_LINE_BYTES {
            bodies.push(std::mem::take(&mut body));
        }
        body.extend_from_slice(&escaped);
        body.push(b',');
    }
    bodies.push(body);
    row("JSON escape (serde_json::to_writer, before)", bytes, || {
        let mut n = 0;
        for t in &texts {
            escaped.clear();
            serde_json::to_writer(&mut escaped, t).expect("into a Vec");
            n += escaped.len();
        }
        n
    });
    row("JSON escape (escape_line)", bytes, || {
        let mut n = 0;
        for t in &texts {
            escape_line(t, &mut escaped);
            n += escaped.len();
        }
        n
    });
    for (name, level, window, ldm) in [
        (
            "zstd, engine's settings (level 3, 8 MiB window, LDM)",
            ZSTD_LEVEL,
            ZSTD_WINDOW_LOG,
            true,
        ),
        (
            "zstd level 3, 8 MiB window, no LDM",
            3,
            ZSTD_WINDOW_LOG,
            false,
        ),
        (
            "zstd level 1, 8 MiB window, no LDM",
            1,
            ZSTD_WINDOW_LOG,
            false,
        ),
    ] {
        let mut c = zstd::bulk::Compressor::new(level).expect("zstd");
        c.set_parameter(CParameter::WindowLog(window))
            .expect("window");
        c.set_parameter(CParameter::EnableLongDistanceMatching(ldm))
            .expect("ldm");
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(
            MAX_CHUNK_LINE_BYTES + (1 << 20),
        ));
        let mut wire = 0;
        row(name, bytes, || {
            wire = 0;
            for b in &bodies {
                out.clear();
                c.compress_to_buffer(b, &mut out).expect("compress");
                wire += out.len();
            }
            wire
        });
    }
    println!(
        "\nCompiling the default redactor (rules and prefilter): {:.1} ms",
        compile.as_secs_f64() * 1000.0
    );
}

/// Times `f` (best of [`RUNS`]) and prints one table row.
fn row(name: &str, bytes: usize, mut f: impl FnMut() -> usize) {
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        let started = Instant::now();
        black_box(f());
        best = best.min(started.elapsed());
    }
    println!("| {name} | {:.0} |", mib(bytes) / best.as_secs_f64());
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
