//! `cargo run --release -p confab-bench --bin confab-bench-backfill -- [--sessions 64] [--sweep 1000] [--runs 3] [--redaction on|off]`
//!
//! `confab-host sync --all` as a user runs it (a child process, a scratch
//! HOME holding Claude Code sessions built from the fixtures' lines under
//! fresh ids, the local backend started here):
//! - throughput: the same corpus synced from nothing with `--jobs 1` and
//!   with `--jobs 2` (a fresh backend and state folder each run);
//! - sweep: `--sweep` small sessions synced once, then synced again with
//!   nothing new (the checkpoints in the state folder say where each ends).
//!
//! Medians of `--runs` runs; prints a Markdown table for BENCHMARKS.md.

use confab_host::backend::{Backend, BackendConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const KEY: &str = "cfb_Bnch-Key_Q7mZ2xR9vL4kP8sW1nB6cT3yH5jD0ef";
const MIB: f64 = 1048576.0;

struct Options {
    sessions: usize,
    sweep: usize,
    runs: usize,
    redaction: bool,
}

fn main() {
    let o = parse_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let host = root.join("target/release/confab-host");
    let component = root.join("target/wasm32-wasip2/release/confab_sync.wasm");
    for needed in [&host, &component] {
        if !needed.exists() {
            eprintln!("confab-bench-backfill: {} is missing: build the component and confab-host (release)", needed.display());
            std::process::exit(2);
        }
    }
    let fixtures = root.join("tests/fixtures/claude-code");
    let work = tempfile::tempdir().expect("temp dir");
    let run = Runner {
        host,
        component,
        cache: work.path().join("cache"),
        redaction: o.redaction,
    };

    // Warm-up: the component compiled into the cache once, as a user's first run does.
    let warm = work.path().join("warm");
    build(&warm, &fixtures, 1, true);
    let warm_state = tempfile::tempdir().unwrap();
    run.sync_all(&warm, warm_state.path(), &backend(), 1);

    // Throughput: whole fixture transcripts, many sessions.
    let corpus = work.path().join("corpus");
    let bytes = build(&corpus, &fixtures, o.sessions, false);
    println!(
        "corpus: {} sessions, {:.1} MiB; redaction {}; {} cores",
        o.sessions,
        bytes as f64 / MIB,
        if o.redaction { "on" } else { "off" },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("\n| run | jobs | wall (s) | MiB/s | speed-up |\n|---|---:|---:|---:|---:|");
    let mut one = 0.0;
    for jobs in [1, 2] {
        let mut times = Vec::new();
        for _ in 0..o.runs {
            let backend = backend();
            let state = tempfile::tempdir().unwrap();
            times.push(run.sync_all(&corpus, state.path(), &backend, jobs));
        }
        let t = median(&mut times);
        if jobs == 1 {
            one = t;
        }
        println!(
            "| from nothing | {jobs} | {t:.2} | {:.1} | {:.2}x |",
            bytes as f64 / MIB / t,
            one / t
        );
    }

    // Sweep: many small sessions, synced once, then again with nothing new.
    let sweep = work.path().join("sweep");
    let sweep_bytes = build(&sweep, &fixtures, o.sweep, true);
    let backend = backend();
    let state = tempfile::tempdir().unwrap();
    let first = run.sync_all(&sweep, state.path(), &backend, 2);
    println!(
        "| sweep of {} sessions ({:.1} MiB), first | 2 | {first:.2} | {:.1} | |",
        o.sweep,
        sweep_bytes as f64 / MIB,
        sweep_bytes as f64 / MIB / first
    );
    for jobs in [1, 2] {
        let mut times: Vec<f64> = (0..o.runs)
            .map(|_| run.sync_all(&sweep, state.path(), &backend, jobs))
            .collect();
        let t = median(&mut times);
        println!(
            "| sweep of {} sessions, nothing new (checkpoints) | {jobs} | {t:.2} | | |",
            o.sweep
        );
    }
}

fn parse_args() -> Options {
    let mut o = Options {
        sessions: 64,
        sweep: 1000,
        runs: 3,
        redaction: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it
            .next()
            .unwrap_or_else(|| usage(&format!("{a} needs a value")));
        let n = || {
            v.parse::<usize>()
                .unwrap_or_else(|_| usage(&format!("{a} takes a number")))
        };
        match a.as_str() {
            "--sessions" => o.sessions = n(),
            "--sweep" => o.sweep = n(),
            "--runs" => o.runs = n().max(1),
            "--redaction" => o.redaction = v == "on",
            _ => usage(&format!("unknown option {a}")),
        }
    }
    o
}

fn usage(m: &str) -> ! {
    eprintln!("confab-bench-backfill: {m}\nusage: confab-bench-backfill [--sessions 64] [--sweep 1000] [--runs 3] [--redaction on|off]");
    std::process::exit(2)
}

fn backend() -> Backend {
    Backend::start(BackendConfig {
        api_keys: vec![KEY.to_string()],
        ..BackendConfig::default()
    })
    .expect("start the backend")
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `count` sessions in `<home>/.claude/projects/<8 project folders>/`: whole
/// fixture transcripts (subagents copied beside the first fixture's), or
/// with `small`, 12 lines each. Returns the bytes written.
fn build(home: &Path, fixtures: &Path, count: usize, small: bool) -> u64 {
    let names = [
        "258c7280-ae70-4798-800f-63464d01a85d",
        "8463c716-a2ea-4c14-9efa-87158ebd9f20",
        "tool_heavy",
        "subagent",
        "short",
    ];
    let mut total = 0;
    for i in 0..count {
        let name = names[i % names.len()];
        let mut bytes = std::fs::read(fixtures.join(format!("{name}.jsonl"))).unwrap();
        if small {
            let end = bytes
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .nth(11)
                .map_or(bytes.len(), |(i, _)| i + 1);
            bytes.truncate(end);
        }
        let folder = home.join(format!(".claude/projects/-home-u-project-{}", i % 8));
        std::fs::create_dir_all(&folder).unwrap();
        let id = format!("{:08x}-0000-4000-8000-{:012x}", i as u32 ^ 0x5eed_0000, i);
        std::fs::write(folder.join(format!("{id}.jsonl")), &bytes).unwrap();
        total += bytes.len() as u64;
        let subagents = fixtures.join(name).join("subagents");
        if !small && subagents.is_dir() {
            let to = folder.join(&id).join("subagents");
            std::fs::create_dir_all(&to).unwrap();
            for e in std::fs::read_dir(&subagents).unwrap() {
                let e = e.unwrap();
                total += std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    total
}

struct Runner {
    host: PathBuf,
    component: PathBuf,
    cache: PathBuf,
    redaction: bool,
}

impl Runner {
    /// One `confab-host sync --all --jobs N`; its wall time in seconds.
    fn sync_all(&self, home: &Path, state: &Path, backend: &Backend, jobs: usize) -> f64 {
        let config = home.join(".confab/config.json");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(
            &config,
            format!("{{\"redaction\": {{\"enabled\": {}}}}}", self.redaction),
        )
        .unwrap();
        let start = Instant::now();
        let out = Command::new(&self.host)
            .args(["sync", "--all", "--jobs", &jobs.to_string()])
            .env_clear()
            .env("HOME", home)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CONFAB_COMPONENT", &self.component)
            .env("CONFAB_BACKEND_URL", backend.url())
            .env("CONFAB_API_KEY", KEY)
            .env("CONFAB_STATE_DIR", state)
            .env("XDG_CACHE_HOME", &self.cache)
            .output()
            .expect("run confab-host");
        let seconds = start.elapsed().as_secs_f64();
        if !out.status.success() {
            eprintln!(
                "confab-bench-backfill: sync --all failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::process::exit(1);
        }
        seconds
    }
}
