//! `cargo run --release -p confab-bench -- [--sizes 16,256,1024] [--runs 3] [--out bench-results] [--only TEXT]`
//! (`--only` keeps the scenarios whose name holds TEXT: to profile one;
//! `--component WASM` measures another build, e.g. the one before a change.)
//!
//! Whole-run figures, as a user sees them: each scenario runs `confab-host`
//! (the component under wasmtime, the path every host uses) as a child
//! process against the local backend started here, and reports wall time,
//! MiB/s of transcript, the child's peak RSS, the bytes the engine read, and
//! the requests and bytes on the wire. The same core also runs natively on
//! the largest corpus, so the sandbox's cost shows as a ratio. Medians of
//! `--runs` runs. Writes `<out>/table.md` and `<out>/throughput.svg`.

mod native;

use confab_host::backend::{Backend, BackendConfig, DEFAULT_LOCAL_API_KEY};
use confab_sync::core::config::{RedactionSettings, SessionConfig};
use confab_sync::core::engine::Engine;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const MIB: f64 = 1048576.0;

struct Row {
    scenario: String,
    wall_s: f64,
    mib_s: Option<f64>,
    rss_mib: f64,
    read_mib: f64,
    requests: usize,
    wire_mib: f64,
    wire_ratio: Option<f64>,
}

struct Options {
    sizes: Vec<u64>,
    runs: usize,
    out: PathBuf,
    /// Only the scenarios whose name holds this (for profiling one of them).
    only: Option<String>,
    /// Another build of the component (e.g. the one before a change), to
    /// compare two builds back to back.
    component: Option<PathBuf>,
}

fn main() {
    let options = parse_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let host = root.join("target/release/confab-host");
    let component = options
        .component
        .clone()
        .unwrap_or_else(|| root.join("target/wasm32-wasip2/release/confab_sync.wasm"));
    for needed in [&host, &component] {
        if !needed.exists() {
            eprintln!("confab-bench: {} is missing: run `cargo build --release --target wasm32-wasip2 -p confab-sync && cargo build --release -p confab-host`", needed.display());
            std::process::exit(2);
        }
    }
    let work = tempfile::tempdir().expect("temp dir");
    let bench = Bench {
        only: options.only.clone(),
        host,
        component,
        work: work.path().to_path_buf(),
        fixtures: root.join("tests/fixtures/claude-code"),
    };
    // Warm-up: compile the component into the cache once, as a user's first run does.
    bench.cold_start(usize::MAX);
    let mut rows = Vec::new();
    let largest = *options.sizes.iter().max().unwrap();
    for &size in &options.sizes {
        let plain = bench.corpus(size, false);
        let secrets = bench.corpus(size, true);
        rows.extend(bench.median(
            &format!("initial sync {size} MiB, redaction off"),
            options.runs,
            |b, i| b.initial(&plain, i, false),
        ));
        rows.extend(bench.median(
            &format!("initial sync {size} MiB, redaction on"),
            options.runs,
            |b, i| b.initial(&plain, i, true),
        ));
        rows.extend(bench.median(
            &format!("initial sync {size} MiB, redaction on, secrets"),
            options.runs,
            |b, i| b.initial(&secrets, i, true),
        ));
        if size == largest {
            rows.extend(bench.median(
                &format!("re-sync {size} MiB, nothing new"),
                options.runs,
                |b, i| b.resync(&plain, i),
            ));
            rows.extend(bench.median(
                &format!("append 1 line to {size} MiB, fresh process, checkpoint"),
                options.runs,
                |b, i| b.restart(&plain, i, true),
            ));
            rows.extend(bench.median(
                &format!("append 1 line to {size} MiB, fresh process, no checkpoint"),
                options.runs,
                |b, i| b.restart(&plain, i, false),
            ));
            rows.extend(bench.median(
                &format!("native core (no WASI), {size} MiB, redaction on"),
                options.runs,
                |b, i| b.native(&plain, i),
            ));
        }
    }
    let once = bench.corpus_once();
    rows.extend(bench.median(
        "initial sync of every fixture line once (no repeats), redaction on",
        options.runs,
        |b, i| b.initial(&once, i, true),
    ));
    let codex = bench.codex_corpus(largest.min(256));
    rows.extend(bench.median(
        &format!(
            "Codex: initial sync of a {} MiB rollout (the Codex fixtures' lines), redaction on",
            largest.min(256)
        ),
        options.runs,
        |b, i| b.codex_initial(&codex, i),
    ));
    for (label, step) in [
        (
            "Codex: 10,000 rollouts in sessions/, first sync (every first line read)",
            DiscoveryStep::First,
        ),
        (
            "Codex: 10,000 rollouts, fresh process with the index, nothing new",
            DiscoveryStep::NothingNew,
        ),
        (
            "Codex: 10,000 rollouts, fresh process with the index, 1 new rollout",
            DiscoveryStep::OneNew,
        ),
    ] {
        rows.extend(bench.median(label, options.runs, |b, i| b.codex_discovery(i, step)));
    }
    rows.extend(bench.median(
        "session with 50 subagent files (16 MiB)",
        options.runs,
        |b, i| b.subagents(i),
    ));
    rows.extend(bench.median(
        "cold start confab-host sync, nothing new (cached compiled component)",
        options.runs,
        |b, i| b.cold_start(i),
    ));
    let wanted = |name: &str| {
        options
            .only
            .as_ref()
            .is_none_or(|o| name.contains(o.as_str()))
    };
    if wanted("cold start wasmtime run") {
        if let Some(row) = bench.wasmtime_run_cold(options.runs) {
            rows.push(row);
        }
    }
    let table = render(&rows);
    println!("{table}");
    std::fs::create_dir_all(&options.out).expect("out dir");
    std::fs::write(options.out.join("table.md"), &table).expect("write table");
    chart(&rows, &options.out.join("throughput.svg"));
    eprintln!(
        "wrote {} and {}",
        options.out.join("table.md").display(),
        options.out.join("throughput.svg").display()
    );
}

fn parse_args() -> Options {
    let mut o = Options {
        sizes: vec![16, 256, 1024],
        runs: 3,
        out: PathBuf::from("bench-results"),
        only: None,
        component: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it
            .next()
            .unwrap_or_else(|| usage(&format!("{a} needs a value")));
        match a.as_str() {
            "--sizes" => {
                o.sizes = v
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse()
                            .unwrap_or_else(|_| usage("sizes are MiB numbers"))
                    })
                    .collect()
            }
            "--runs" => o.runs = v.parse().unwrap_or_else(|_| usage("runs is a number")),
            "--out" => o.out = PathBuf::from(v),
            "--only" => o.only = Some(v.clone()),
            "--component" => o.component = Some(PathBuf::from(v)),
            _ => usage(&format!("unknown option {a}")),
        }
    }
    o
}

fn usage(m: &str) -> ! {
    eprintln!("confab-bench: {m}\nusage: confab-bench [--sizes 16,256,1024] [--runs 3] [--out bench-results] [--only SCENARIO-TEXT] [--component WASM]");
    std::process::exit(2)
}

struct Bench {
    only: Option<String>,
    host: PathBuf,
    component: PathBuf,
    work: PathBuf,
    fixtures: PathBuf,
}

/// One measured run.
struct Sample {
    wall_s: f64,
    bytes: u64,
    rss_kib: u64,
    read_bytes: u64,
    requests: usize,
    wire_bytes: u64,
}

/// Which sync of the descendant-discovery scenario is measured.
#[derive(Clone, Copy)]
enum DiscoveryStep {
    First,
    NothingNew,
    OneNew,
}

/// A Codex rollout file name for thread `uuid`.
fn rollout_name(uuid: &str) -> String {
    format!("rollout-2026-03-12T16-36-47-{uuid}.jsonl")
}

impl Bench {
    /// Every line of the Codex fixtures, the root rollout's first (its
    /// `session_meta` line names the thread), repeated to `mib` MiB.
    fn codex_corpus(&self, mib: u64) -> PathBuf {
        let path = self.work.join(format!("codex-corpus-{mib}.jsonl"));
        if path.exists() {
            return path;
        }
        let lines = self.codex_lines();
        let target = mib << 20;
        let mut out = Vec::with_capacity(target as usize + (1 << 20));
        let mut n = 0usize;
        while (out.len() as u64) < target {
            out.extend_from_slice(&lines[n % lines.len()]);
            n += 1;
        }
        std::fs::write(&path, &out).expect("write corpus");
        path
    }

    fn codex_lines(&self) -> Vec<Vec<u8>> {
        let sessions = self.fixtures.parent().unwrap().join("codex/sessions");
        let mut files = Vec::new();
        let mut dirs = vec![sessions];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("codex fixtures") {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "jsonl") {
                    files.push(path);
                }
            }
        }
        // The root of the session with three subagents first.
        files.sort_by_key(|p| !p.to_string_lossy().contains(CODEX_ROOT));
        let mut lines = Vec::new();
        for file in files {
            let data = std::fs::read(file).unwrap();
            lines.extend(data.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec));
        }
        lines
    }

    fn codex_initial(&self, corpus: &Path, run: usize) -> Sample {
        let backend = self.backend();
        let day = self.work.join(format!("codex-{run}/sessions/2026/03/12"));
        let _ = std::fs::remove_dir_all(self.work.join(format!("codex-{run}")));
        std::fs::create_dir_all(&day).unwrap();
        let transcript = day.join(rollout_name(CODEX_ROOT));
        std::fs::hard_link(corpus, &transcript)
            .or_else(|_| std::fs::copy(corpus, &transcript).map(|_| ()))
            .unwrap();
        let (wall, rss, report) = self.host_sync(&backend, &transcript, true, None);
        let _ = std::fs::remove_dir_all(self.work.join(format!("codex-{run}")));
        sample(
            &backend,
            wall,
            std::fs::metadata(corpus).unwrap().len(),
            rss,
            &report,
        )
    }

    /// A sessions folder of 10,000 rollouts over a year of day folders,
    /// each holding a real first line (the fixture root's `session_meta`,
    /// its id changed) and one more line; the root and its three subagents
    /// among them. Built once.
    fn codex_sessions(&self) -> PathBuf {
        let sessions = self.work.join("codex-10k/sessions");
        if sessions.exists() {
            return sessions;
        }
        let lines = self.codex_lines();
        let meta = String::from_utf8(lines[0].clone()).unwrap();
        let rest = &lines[1];
        let write = |uuid: &str, parent: Option<&str>, day: u32| {
            let mut first = meta.replace(CODEX_ROOT, uuid);
            if let Some(parent) = parent {
                first = first.replacen(
                    "\"source\":\"cli\"",
                    &format!("\"source\":{{\"subagent\":{{\"thread_spawn\":{{\"parent_thread_id\":\"{parent}\",\"depth\":1}}}}}}"),
                    1,
                );
            }
            let dir = sessions.join(format!("2026/{:02}/{:02}", 1 + day / 28 % 12, 1 + day % 28));
            std::fs::create_dir_all(&dir).unwrap();
            let mut bytes = first.into_bytes();
            bytes.extend_from_slice(rest);
            std::fs::write(dir.join(rollout_name(uuid)), bytes).unwrap();
        };
        write(CODEX_ROOT, None, 70);
        for k in 0..3 {
            write(
                &format!("019ce419-0000-7000-8000-{k:012}"),
                Some(CODEX_ROOT),
                70 + k,
            );
        }
        for i in 0..9_996u32 {
            write(&format!("01900000-0000-7000-8000-{i:012}"), None, i % 336);
        }
        sessions
    }

    /// Descendant discovery among 10,000 rollouts: "read" is what the sync
    /// read from files (first lines, the session's four rollouts); the
    /// index itself is loaded before the sync and shown in BENCHMARKS.md.
    fn codex_discovery(&self, run: usize, step: DiscoveryStep) -> Sample {
        let backend = self.backend();
        let sessions = self.codex_sessions();
        let root = sessions.join("2026/03/15").join(rollout_name(CODEX_ROOT));
        assert!(root.exists(), "{}", root.display());
        let state = self.work.join(format!("state-codex-{run}"));
        let _ = std::fs::remove_dir_all(&state);
        let extra = sessions
            .join("2026/12/28")
            .join(rollout_name("01900000-0000-7000-8000-999999999999"));
        let _ = std::fs::remove_file(&extra);
        let measured = match step {
            DiscoveryStep::First => self.host_sync(&backend, &root, true, Some(&state)),
            DiscoveryStep::NothingNew | DiscoveryStep::OneNew => {
                self.host_sync(&backend, &root, true, Some(&state));
                if matches!(step, DiscoveryStep::OneNew) {
                    std::fs::create_dir_all(extra.parent().unwrap()).unwrap();
                    std::fs::copy(
                        sessions.join("2026/03/15").join(rollout_name(CODEX_ROOT)),
                        &extra,
                    )
                    .unwrap();
                }
                backend.clear_requests();
                self.host_sync(&backend, &root, true, Some(&state))
            }
        };
        let (wall, rss, report) = measured;
        assert_eq!(report["files"].as_array().unwrap().len(), 4, "{report}");
        let _ = std::fs::remove_file(&extra);
        sample(&backend, wall, 0, rss, &report)
    }

    /// Real lines of every shipped fixture, repeated to `mib` MiB; with
    /// `secrets`, 1 line in 100 carries planted keys.
    fn corpus(&self, mib: u64, secrets: bool) -> PathBuf {
        let path = self.work.join(format!(
            "corpus-{mib}{}.jsonl",
            if secrets { "-secrets" } else { "" }
        ));
        if path.exists() {
            return path;
        }
        let lines = self.fixture_lines();
        let target = mib << 20;
        let mut out = Vec::with_capacity(target as usize + (1 << 20));
        let mut n = 0usize;
        while (out.len() as u64) < target {
            if secrets && n % 100 == 99 {
                out.extend_from_slice(format!("{{\"type\":\"user\",\"message\":{{\"role\":\"user\",\"content\":\"deploy with AKIA{:016} and token ghp_{:036} please\"}},\"uuid\":\"s-{n}\"}}\n", n, n).as_bytes());
            } else {
                out.extend_from_slice(&lines[n % lines.len()]);
            }
            n += 1;
        }
        std::fs::write(&path, &out).expect("write corpus");
        path
    }

    /// Every fixture line once: no repeats, so zstd's ratio is the one real
    /// sessions get (a repeated corpus compresses better than real work).
    fn corpus_once(&self) -> PathBuf {
        let path = self.work.join("corpus-once.jsonl");
        if !path.exists() {
            std::fs::write(&path, self.fixture_lines().concat()).expect("write corpus");
        }
        path
    }

    fn fixture_lines(&self) -> Vec<Vec<u8>> {
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for name in [
            "258c7280-ae70-4798-800f-63464d01a85d.jsonl",
            "8463c716-a2ea-4c14-9efa-87158ebd9f20.jsonl",
            "subagent.jsonl",
            "tool_heavy.jsonl",
            "short.jsonl",
        ] {
            let data = std::fs::read(self.fixtures.join(name)).expect("fixture");
            lines.extend(data.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec));
        }
        lines
    }

    fn median(
        &self,
        scenario: &str,
        runs: usize,
        mut f: impl FnMut(&Bench, usize) -> Sample,
    ) -> Option<Row> {
        if !self
            .only
            .as_ref()
            .is_none_or(|only| scenario.contains(only.as_str()))
        {
            return None;
        }
        eprintln!("running: {scenario}");
        let mut samples: Vec<Sample> = (0..runs.max(1)).map(|i| f(self, i)).collect();
        samples.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
        let s = &samples[samples.len() / 2];
        let throughput = s.bytes > 0;
        Some(Row {
            scenario: scenario.to_string(),
            wall_s: s.wall_s,
            mib_s: throughput.then(|| s.bytes as f64 / MIB / s.wall_s),
            rss_mib: s.rss_kib as f64 / 1024.0,
            read_mib: s.read_bytes as f64 / MIB,
            requests: s.requests,
            wire_mib: s.wire_bytes as f64 / MIB,
            wire_ratio: throughput.then(|| s.wire_bytes as f64 / s.bytes as f64),
        })
    }

    fn backend(&self) -> Backend {
        Backend::start(BackendConfig::default()).expect("backend")
    }

    /// A session folder holding `corpus` as `<id>.jsonl`.
    fn session(&self, corpus: &Path, id: &str) -> PathBuf {
        let dir = self.work.join(format!("s-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{id}.jsonl"));
        // A hard link: the corpus is not copied (1 GiB) and the file is the same bytes.
        std::fs::hard_link(corpus, &path)
            .or_else(|_| std::fs::copy(corpus, &path).map(|_| ()))
            .unwrap();
        path
    }

    /// Run `confab-host sync <transcript> --json` and measure it.
    fn host_sync(
        &self,
        backend: &Backend,
        transcript: &Path,
        redaction: bool,
        state: Option<&Path>,
    ) -> (f64, u64, serde_json::Value) {
        let home = self.work.join("home");
        std::fs::create_dir_all(home.join(".confab")).unwrap();
        let config = home.join(".confab/config.json");
        std::fs::write(
            &config,
            format!("{{\"redaction\":{{\"enabled\":{redaction},\"use_default_patterns\":true}}}}"),
        )
        .unwrap();
        let mut cmd = Command::new(&self.host);
        cmd.arg("sync")
            .arg(transcript)
            .arg("--json")
            .env_clear()
            .env("HOME", &home)
            .env("CONFAB_CONFIG_PATH", &config);
        cmd.env("CONFAB_BACKEND_URL", backend.url())
            .env("CONFAB_API_KEY", DEFAULT_LOCAL_API_KEY);
        // Profiling (BENCHMARKS.md): the host writes a perf map of the guest.
        if let Some(profile) = std::env::var_os("CONFAB_HOST_PROFILE") {
            cmd.env("CONFAB_HOST_PROFILE", profile);
        }
        cmd.env("CONFAB_COMPONENT", &self.component)
            .env("XDG_CACHE_HOME", self.work.join("cache"));
        match state {
            Some(dir) => cmd.arg("--state-dir").arg(dir),
            None => cmd.arg("--state-dir").arg(
                self.work
                    .join("state-unused")
                    .join(format!("{}", Instant::now().elapsed().as_nanos())),
            ),
        };
        let (wall, rss, stdout) = run_measured(&mut cmd);
        let report: serde_json::Value = serde_json::from_slice(&stdout).unwrap_or_else(|_| {
            panic!(
                "confab-host printed no report: {}",
                String::from_utf8_lossy(&stdout)
            )
        });
        assert!(
            report["failed"].as_array().is_some_and(|f| f.is_empty()),
            "sync failed: {report}"
        );
        (wall, rss, report)
    }

    fn initial(&self, corpus: &Path, run: usize, redaction: bool) -> Sample {
        let backend = self.backend();
        let id = format!("initial-{run}");
        let transcript = self.session(corpus, &id);
        let (wall, rss, report) = self.host_sync(&backend, &transcript, redaction, None);
        sample(
            &backend,
            wall,
            std::fs::metadata(corpus).unwrap().len(),
            rss,
            &report,
        )
    }

    fn resync(&self, corpus: &Path, run: usize) -> Sample {
        let backend = self.backend();
        let transcript = self.session(corpus, &format!("resync-{run}"));
        let state = self.work.join(format!("state-resync-{run}"));
        self.host_sync(&backend, &transcript, true, Some(&state));
        backend.clear_requests();
        let (wall, rss, report) = self.host_sync(&backend, &transcript, true, Some(&state));
        sample(&backend, wall, 0, rss, &report)
    }

    fn restart(&self, corpus: &Path, run: usize, checkpoint: bool) -> Sample {
        let backend = self.backend();
        let id = format!("restart-{checkpoint}-{run}");
        let dir = self.work.join(format!("s-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let transcript = dir.join(format!("{id}.jsonl"));
        std::fs::copy(corpus, &transcript).unwrap();
        let state = self.work.join(format!("state-{id}"));
        self.host_sync(&backend, &transcript, true, Some(&state));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&transcript)
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"type\":\"assistant\",\"appended\":true}\n").unwrap();
        backend.clear_requests();
        let fresh_state = self.work.join(format!("state-{id}-fresh"));
        let (wall, rss, report) = self.host_sync(
            &backend,
            &transcript,
            true,
            Some(if checkpoint { &state } else { &fresh_state }),
        );
        assert_eq!(report["lines"], 1);
        let _ = std::fs::remove_file(&transcript);
        sample(&backend, wall, 0, rss, &report)
    }

    fn subagents(&self, run: usize) -> Sample {
        let backend = self.backend();
        let corpus = self.corpus(16, false);
        let data = std::fs::read(&corpus).unwrap();
        let id = format!("agents-{run}");
        let dir = self.work.join(format!("s-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        let sub = dir.join(&id).join("subagents");
        std::fs::create_dir_all(&sub).unwrap();
        let part = data.len() / 51;
        let cut = |at: usize| {
            let at = at.min(data.len());
            data[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |p| at + p + 1)
        };
        let mut start = 0;
        for n in 0..51 {
            let end = if n == 50 {
                data.len()
            } else {
                cut(start + part)
            };
            let name = if n == 0 {
                dir.join(format!("{id}.jsonl"))
            } else {
                sub.join(format!("agent-a{n:06}.jsonl"))
            };
            std::fs::write(name, &data[start..end]).unwrap();
            start = end;
        }
        let (wall, rss, report) =
            self.host_sync(&backend, &dir.join(format!("{id}.jsonl")), true, None);
        assert_eq!(report["files"].as_array().unwrap().len(), 51);
        sample(&backend, wall, data.len() as u64, rss, &report)
    }

    fn cold_start(&self, run: usize) -> Sample {
        let backend = self.backend();
        let corpus = self.corpus(16, false);
        let transcript = self.session(&corpus, &format!("cold-{run}"));
        let state = self.work.join(format!("state-cold-{run}"));
        self.host_sync(&backend, &transcript, false, Some(&state));
        backend.clear_requests();
        let (wall, rss, report) = self.host_sync(&backend, &transcript, false, Some(&state));
        sample(&backend, wall, 0, rss, &report)
    }

    /// `wasmtime run` on a precompiled component, nothing new to sync.
    fn wasmtime_run_cold(&self, runs: usize) -> Option<Row> {
        let wasmtime = which("wasmtime")?;
        let cwasm = self.work.join("confab_sync.cwasm");
        let ok = Command::new(&wasmtime)
            .arg("compile")
            .arg(&self.component)
            .arg("-o")
            .arg(&cwasm)
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        let backend = self.backend();
        let corpus = self.corpus(16, false);
        let transcript = self.session(&corpus, "wasmtime-cold");
        let dir = transcript.parent().unwrap().to_path_buf();
        let run = |rss: &mut u64| {
            let mut cmd = Command::new(&wasmtime);
            cmd.args(["run", "--allow-precompiled", "-S", "http"])
                .arg("--dir")
                .arg(&dir);
            cmd.arg("--env")
                .arg(format!("CONFAB_BACKEND_URL={}", backend.url()));
            cmd.arg("--env")
                .arg(format!("CONFAB_API_KEY={DEFAULT_LOCAL_API_KEY}"));
            cmd.arg("--env")
                .arg(format!("CONFAB_STATE_DIR={}", dir.display()));
            cmd.arg("--dir").arg(format!("{0}::{0}", dir.display()));
            cmd.arg(&cwasm).arg("sync").arg(&transcript).arg("--json");
            let (wall, r, _) = run_measured(&mut cmd);
            *rss = r;
            wall
        };
        let mut rss = 0;
        run(&mut rss);
        backend.clear_requests();
        let mut walls: Vec<f64> = (0..runs.max(1)).map(|_| run(&mut rss)).collect();
        walls.sort_by(f64::total_cmp);
        Some(Row {
            scenario: "cold start wasmtime run (precompiled .cwasm), nothing new".into(),
            wall_s: walls[walls.len() / 2],
            mib_s: None,
            rss_mib: rss as f64 / 1024.0,
            read_mib: 0.0,
            requests: backend.requests().len() / runs.max(1),
            wire_mib: 0.0,
            wire_ratio: None,
        })
    }

    /// The same core, natively, in this process.
    fn native(&self, corpus: &Path, run: usize) -> Sample {
        let backend = self.backend();
        let transcript = self.session(corpus, &format!("native-{run}"));
        let config = SessionConfig {
            backend_url: backend.url(),
            api_key: DEFAULT_LOCAL_API_KEY.into(),
            external_id: format!("native-{run}"),
            transcript_path: transcript.to_string_lossy().into_owned(),
            cwd: String::new(),
            hostname: None,
            username: None,
            redaction: RedactionSettings {
                enabled: true,
                use_default_patterns: true,
                patterns: vec![],
            },
            state_dir: None,
            provider: None,
        };
        let start = Instant::now();
        let mut engine = Engine::new(
            config,
            native::StdFs,
            native::UreqTransport::new(),
            native::StdClock::new(),
        )
        .expect("config");
        engine.init().expect("init");
        let report = engine.sync_all().expect("sync");
        let wall = start.elapsed().as_secs_f64();
        assert!(report.failed.is_empty());
        let requests = backend.requests();
        Sample {
            wall_s: wall,
            bytes: std::fs::metadata(corpus).unwrap().len(),
            rss_kib: 0,
            read_bytes: report.read_bytes,
            requests: requests.len(),
            wire_bytes: requests.iter().map(|r| r.wire_bytes as u64).sum(),
        }
    }
}

/// The root thread of the Codex fixtures that spawned three subagents.
const CODEX_ROOT: &str = "019ce3fb-1087-7980-8f92-8d0171aaea6a";

fn sample(
    backend: &Backend,
    wall: f64,
    bytes: u64,
    rss: u64,
    report: &serde_json::Value,
) -> Sample {
    let requests = backend.requests();
    Sample {
        wall_s: wall,
        bytes,
        rss_kib: rss,
        read_bytes: report["read_bytes"].as_u64().unwrap_or(0),
        requests: requests.len(),
        wire_bytes: requests.iter().map(|r| r.wire_bytes as u64).sum(),
    }
}

/// Run a child to its end: wall seconds, peak RSS (KiB), stdout. The peak is
/// the child's `VmHWM`, polled from /proc every 2 ms (wait4's `ru_maxrss`
/// would include this process's own memory, inherited across fork and exec);
/// for runs of a few milliseconds it can miss the last moments.
fn run_measured(cmd: &mut Command) -> (f64, u64, Vec<u8>) {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let status_path = format!("/proc/{}/status", child.id());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let poller = std::thread::spawn(move || {
        let mut peak = 0u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(text) = std::fs::read_to_string(&status_path) {
                if let Some(kib) = text
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    peak = peak.max(kib);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        peak
    });
    let mut stdout = Vec::new();
    std::io::Read::read_to_end(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let _ = child.wait();
    let wall = start.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    (wall, poller.join().unwrap_or(0), stdout)
}

fn which(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.exists())
}

fn render(rows: &[Row]) -> String {
    let mut t = String::from("| scenario | wall | MiB/s | peak RSS | read | requests | on the wire | wire/transcript |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} MiB | {} | {:.2} MiB | {} |\n",
            r.scenario,
            if r.wall_s < 1.0 {
                format!("{:.0} ms", r.wall_s * 1000.0)
            } else {
                format!("{:.2} s", r.wall_s)
            },
            r.mib_s.map_or(String::new(), |m| format!("{m:.0}")),
            if r.rss_mib > 0.0 {
                format!("{:.1} MiB", r.rss_mib)
            } else {
                "(in-process)".into()
            },
            r.read_mib,
            r.requests,
            r.wire_mib,
            r.wire_ratio.map_or(String::new(), |w| format!("{w:.3}")),
        ));
    }
    t
}

/// MiB/s by scenario. No Go engine bars: a figure of another run, day or
/// machine is not comparable (this VM alone drifts 1.5x), and a side-by-side
/// run needs confab built locally, which this bench does not do.
fn chart(rows: &[Row], path: &Path) {
    use plotters::prelude::*;
    let bars: Vec<(String, f64)> = rows
        .iter()
        .filter_map(|r| r.mib_s.map(|m| (r.scenario.clone(), m)))
        .collect();
    let max = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.15;
    let height = 60 + 28 * bars.len() as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE).unwrap();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "confab-sync throughput (MiB/s of transcript)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(10)
        .build_cartesian_2d(0.0..max, 0..bars.len())
        .unwrap();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_desc("MiB/s")
        .draw()
        .unwrap();
    for (i, (label, value)) in bars.iter().enumerate() {
        let color = RGBColor(60, 110, 190);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, i), (*value, i + 1)],
                color.mix(0.8).filled(),
            )))
            .unwrap();
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{label}: {value:.0}"),
                (value + max * 0.01, i),
                ("sans-serif", 12),
            )))
            .unwrap();
    }
    root.present().unwrap();
}
