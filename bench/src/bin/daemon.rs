//! `cargo run --release -p confab-bench --bin daemon -- [--sessions 1,10,50] [--idle-secs 300] [--interval 30]`
//!
//! The daemon's footprint (BENCHMARKS.md, "The daemon"): for each count of
//! live sessions, fake agents (shells running `confab-host hook` with a
//! `SessionStart` input, then sleeping) register copies of the two fixture
//! sessions (2.8 MiB each with their subagents) with one `confab-host
//! daemon`, against the local backend started here. It reports the
//! daemon's peak RSS (`VmHWM`) once every session is stored and has had
//! `--rounds` more rounds with a few new lines each, then its CPU time
//! (user + system, `/proc/<pid>/stat`) over `--idle-secs` with nothing new,
//! scaled to an hour.

use confab_host::backend::{Backend, BackendConfig};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "cfb_Test-Key_Q7mZ2xR9vL4kP8sW1nB6cT3yH5jD0ef";
const FIXTURES: [&str; 2] = [
    "258c7280-ae70-4798-800f-63464d01a85d",
    "8463c716-a2ea-4c14-9efa-87158ebd9f20",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Options {
    sessions: Vec<usize>,
    idle_secs: u64,
    interval: f64,
    rounds: usize,
}

fn options() -> Options {
    let mut o = Options {
        sessions: vec![1, 10, 50],
        idle_secs: 300,
        interval: 30.0,
        rounds: 3,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        match args[i].as_str() {
            "--sessions" => o.sessions = v.split(',').map(|s| s.parse().unwrap()).collect(),
            "--idle-secs" => o.idle_secs = v.parse().unwrap(),
            "--interval" => o.interval = v.parse().unwrap(),
            "--rounds" => o.rounds = v.parse().unwrap(),
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

fn copy_session(fixture: &str, id: &str, dir: &Path) -> PathBuf {
    let src = root().join("tests/fixtures/claude-code");
    let transcript = dir.join(format!("{id}.jsonl"));
    std::fs::copy(src.join(format!("{fixture}.jsonl")), &transcript).unwrap();
    let sub = dir.join(id).join("subagents");
    std::fs::create_dir_all(&sub).unwrap();
    for e in std::fs::read_dir(src.join(fixture).join("subagents")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), sub.join(e.file_name())).unwrap();
    }
    transcript
}

fn proc_field(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of `pid`, in clock ticks (100 a second here).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn daemon_pid(state: &Path) -> Option<u32> {
    let bytes = std::fs::read(state.join("daemon/status.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["pid"].as_u64().map(|p| p as u32)
}

fn complete_lines(path: &Path) -> Vec<u8> {
    let b = std::fs::read(path).unwrap();
    let end = b.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    b[..end].to_vec()
}

fn all_stored(backend: &Backend, sessions: &[(String, PathBuf)]) -> bool {
    sessions.iter().all(|(id, t)| {
        backend.file(id, &format!("{id}.jsonl")).unwrap_or_default() == complete_lines(t)
    })
}

fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run(n: usize, o: &Options) {
    let backend = Backend::start(BackendConfig {
        api_keys: vec![KEY.to_string()],
        ..BackendConfig::default()
    })
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let projects = home.join(".claude/projects/bench");
    std::fs::create_dir_all(&projects).unwrap();
    let state = tmp.path().join("state");
    let host = root().join("target/release/confab-host");
    let env = |cmd: &mut Command| {
        cmd.env("HOME", &home)
            .env("CONFAB_STATE_DIR", &state)
            .env("XDG_CACHE_HOME", root().join("target/daemon-test-cache"))
            .env(
                "CONFAB_COMPONENT",
                root().join("target/wasm32-wasip2/release/confab_sync.wasm"),
            )
            .env("CONFAB_BACKEND_URL", backend.url())
            .env("CONFAB_API_KEY", KEY)
            .env("CONFAB_DAEMON_INTERVAL", o.interval.to_string())
            .env("CONFAB_DAEMON_IDLE_EXIT", "5");
    };
    let sessions: Vec<(String, PathBuf)> = (0..n)
        .map(|i| {
            let id = format!("{i:08x}-benc-4798-800f-63464d01a85d");
            let t = copy_session(FIXTURES[i % 2], &id, &projects);
            (id, t)
        })
        .collect();
    let start = Instant::now();
    let mut agents: Vec<Child> = sessions
        .iter()
        .map(|(id, t)| {
            let input = tmp.path().join(format!("{id}.start.json"));
            let body = serde_json::json!({"session_id": id, "transcript_path": t,
                "cwd": "/tmp", "hook_event_name": "SessionStart"});
            std::fs::write(&input, body.to_string()).unwrap();
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(format!(
                    "'{}' hook < '{}'; exec sleep 3600",
                    host.display(),
                    input.display()
                ))
                .stdout(Stdio::null());
            env(&mut cmd);
            cmd.spawn().unwrap()
        })
        .collect();
    wait_for(Duration::from_secs(600), || all_stored(&backend, &sessions));
    let initial = start.elapsed();
    let pid = daemon_pid(&state).expect("the daemon's status");
    // A few rounds of a live session: a handful of new lines each.
    let line = {
        let t = std::fs::read(&sessions[0].1).unwrap();
        let first = t.iter().position(|&b| b == b'\n').unwrap();
        t[..=first].to_vec()
    };
    for _ in 0..o.rounds {
        for (_, t) in &sessions {
            let mut f = std::fs::OpenOptions::new().append(true).open(t).unwrap();
            std::io::Write::write_all(&mut f, &line.repeat(3)).unwrap();
        }
        wait_for(Duration::from_secs(600), || all_stored(&backend, &sessions));
    }
    let hwm = proc_field(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    let rss = proc_field(pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0;
    let before = cpu_ticks(pid);
    let idle_start = Instant::now();
    std::thread::sleep(Duration::from_secs(o.idle_secs));
    let ticks = cpu_ticks(pid) - before;
    let measured = idle_start.elapsed().as_secs_f64();
    let per_hour = ticks as f64 / 100.0 * 3600.0 / measured;
    let rss_after_idle = proc_field(pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0;
    println!(
        "| {n} | {:.1} s | {hwm:.1} MiB | {rss:.1} MiB | {rss_after_idle:.1} MiB | {:.2} s in {:.0} s | {per_hour:.1} s |",
        initial.as_secs_f64(),
        ticks as f64 / 100.0,
        measured
    );
    for a in &mut agents {
        let _ = a.kill();
        let _ = a.wait();
    }
    // The agents are gone: the daemon ends every session, then exits.
    wait_for(Duration::from_secs(600), || {
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))
    });
}

fn main() {
    let o = options();
    println!(
        "interval {} s, {} rounds of 3 new lines per session, idle for {} s\n",
        o.interval, o.rounds, o.idle_secs
    );
    println!("| live sessions | initial sync of all | peak RSS (VmHWM) | RSS after the rounds | RSS after idle | CPU while idle | CPU per hour idle |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &o.sessions {
        run(n, &o);
    }
}
