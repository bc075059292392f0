//! `confab-host sync --all`: every session on disk, several at once. The
//! component is compiled once; each session gets its own store (the same
//! grant as `sync <transcript>`: its folder read-only, the state folder
//! read-write, the backend's origin) and runs the component's own `sync`,
//! on one of as many threads as there are cores. A session that fails is
//! reported and the others go on. A session that has nothing new since
//! this backend last confirmed it (per the engine's checkpoint and the
//! ledger of [`confab_host::swept`]) is not run at all.

use super::{Flags, Selection};
use crate::{Failure, HostOptions};
use confab_host::sandbox::{Deadlines, Grant, Sandbox};
use confab_host::sessions::{self, SessionFile};
use confab_host::swept::Ledger;
use confab_sync::cli::args::{self, Command};
use confab_sync::cli::settings;
use confab_sync::core::api_key::KeyGuard;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const HELP: &str = "\
confab-host sync --all [--since DURATION] [--project DIR] [--jobs N] [--recheck] [--json]
    Sync every session on disk ($CLAUDE_CONFIG_DIR/projects, else
    ~/.claude/projects), N at a time (default: one per core), each as
    `confab-host sync <transcript>` would. On a terminal a progress bar
    shows sessions done, MiB, rate and time left; at the end a table lists
    the sessions that uploaded lines or failed, then the totals. A session
    that fails does not stop the others. A session whose files all end
    where the checkpoint in the state folder says this backend confirmed
    them is skipped without asking the server (a run with nothing new
    reads a stat and 4 KiB per file).
    --since DURATION   only sessions active within it (90m, 12h, 7d)
    --project DIR      only the sessions of that project folder
    --jobs N           sessions synced at once (default: the number of cores)
    --recheck          skip nothing: every session goes through the engine,
                       which asks the server what it holds
    --json             the summary as one JSON object on stdout
    plus --backend-url, --api-key, --timeout (per session), --hostname,
    --username (see --help). Exit status: 0 every session synced, 1 some
    did not, 2 a usage or configuration error.";

/// Output of one session's run kept for the summary (its JSON report, or
/// its one-line error).
const MAX_OUTPUT: usize = 1 << 20;

/// Rows of the summary table before "... and N more".
const MAX_ROWS: usize = 40;

/// How one session went.
struct Outcome {
    session: SessionFile,
    /// `None`: synced; else the one-line reason.
    error: Option<String>,
    /// Up to date per the checkpoint: the component was not run.
    skipped: bool,
    lines: u64,
    bytes: u64,
}

pub fn run(argv: &[String], host: &HostOptions, guard: &KeyGuard) -> Result<ExitCode, Failure> {
    let mut selection = Selection::default();
    let mut jobs = None;
    let mut recheck = false;
    let mut passed = Vec::new();
    let mut flags = Flags::new(argv, "sync --all --help");
    while let Some((arg, flag, inline)) = flags.next_arg() {
        let mut value = || flags.value(flag, inline);
        if selection.take(flag, &mut value)? {
            continue;
        }
        match flag {
            "--all" => {}
            "--recheck" => recheck = true,
            "-h" | "--help" => {
                println!("{HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            "--jobs" => {
                let v = value()?;
                jobs = Some(v.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                    Failure::Usage(format!("--jobs takes a positive number, not `{v}`"))
                })?);
            }
            "--external-id" | "--cwd" => {
                return Err(Failure::Usage(format!(
                    "{flag} names one session: it cannot go with sync --all"
                )))
            }
            _ if !arg.starts_with('-') => {
                return Err(Failure::Usage(format!(
                    "sync --all takes no transcript (`{arg}`): give one or the other"
                )))
            }
            _ => {
                passed.push(arg.to_string());
                if inline.is_none() && args::SYNC_VALUE_FLAGS.contains(&flag) {
                    passed.push(value()?);
                }
            }
        }
    }
    // The flags passed on to each session's `sync` are checked once, here,
    // by the component's own parser (a placeholder transcript stands in).
    let mut check = vec!["sync".to_string(), "/confab-sync-all.jsonl".to_string()];
    check.extend(passed.iter().cloned());
    let Command::Sync(parsed) = args::parse(&check).map_err(Failure::Usage)? else {
        println!("{HELP}");
        return Ok(ExitCode::SUCCESS);
    };
    let as_json = parsed.common.json;

    let env = |k: &str| std::env::var(k).ok();
    let mut settings =
        settings::resolve(&parsed.common, &env, &crate::read_file).map_err(Failure::Usage)?;
    confab_sync::core::redact::Redactor::new(&settings.redaction)
        .map_err(|e| Failure::Usage(e.to_string()))?;

    let sources = sessions::sources();
    let found = selection.sessions(&sources);
    if found.is_empty() {
        if as_json {
            println!("{}", json!({"sessions": [], "synced": 0, "failed": 0}));
        } else {
            println!("no sessions to sync");
        }
        return Ok(ExitCode::SUCCESS);
    }

    let local = crate::start_local_backend_if_needed(&mut settings, host, false)?;
    let (url, key) = settings.require().map_err(Failure::Usage)?;
    let ledger_key = key.clone();
    let component = crate::component_path(host.component.as_deref()).map_err(Failure::Usage)?;
    let sandbox = Sandbox::load(&component, crate::cache_dir().as_deref(), Deadlines::Off)
        .map_err(|e| {
            Failure::Sync(format!(
                "cannot load the component {}: {e}",
                component.display()
            ))
        })?;
    let state = crate::state_dir(host)
        .filter(|s| std::fs::create_dir_all(s).is_ok())
        .and_then(|s| std::fs::canonicalize(s).ok());
    if let Some(state) = &state {
        if let Some(s) = found.iter().find(|s| s.folder.starts_with(state)) {
            return Err(Failure::Usage(format!(
                "the state folder {} holds the sessions' folder {}, which must stay read-only: choose another --state-dir (or CONFAB_STATE_DIR)",
                state.display(),
                s.folder.display()
            )));
        }
    }
    let redaction = serde_json::to_string(&settings.redaction).unwrap_or_default();
    let mut env = vec![
        ("CONFAB_BACKEND_URL".to_string(), url.clone()),
        ("CONFAB_API_KEY".to_string(), key),
        ("CONFAB_REDACTION".to_string(), redaction),
    ];
    env.extend(crate::machine_identity());
    if let Some(state) = &state {
        env.push((
            "CONFAB_STATE_DIR".to_string(),
            state.to_string_lossy().into_owned(),
        ));
    }

    let mut ledger = state.as_deref().map(|s| Ledger::load(s, &url, &ledger_key));
    drop(ledger_key);
    let skip = |session: &SessionFile| match (&ledger, &state) {
        (Some(l), Some(s)) if !recheck => l.is_up_to_date(s, session),
        _ => false,
    };
    let workers = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(found.len());
    let total_bytes: u64 = found.iter().map(|s| s.size).sum();
    let progress = progress_bar(found.len(), total_bytes);
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::with_capacity(found.len()));
    let job = Job {
        sandbox: &sandbox,
        url: &url,
        env: &env,
        state: state.as_ref(),
        passed: &passed,
    };
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(session) = found.get(i) else { break };
                let outcome = if skip(session) {
                    Outcome {
                        session: session.clone(),
                        error: None,
                        skipped: true,
                        lines: 0,
                        bytes: 0,
                    }
                } else {
                    job.sync(session, guard)
                };
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(e) = &outcome.error {
                    let line = format!("{}: {e}", session.id);
                    match &progress {
                        Some(bar) => bar.println(line),
                        None => eprintln!("confab-host: {line}"),
                    }
                }
                if let Some(bar) = &progress {
                    bar.inc(session.size);
                    bar.set_message(format!("{n}/{} sessions", found.len()));
                }
                outcomes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(outcome);
            });
        }
    });
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
    // The order of the listing (newest first), not of completion.
    let order: std::collections::HashMap<&str, usize> = found
        .iter()
        .enumerate()
        .map(|(i, s)| (s.transcript.to_str().unwrap_or(""), i))
        .collect();
    outcomes.sort_by_key(|o| {
        order
            .get(o.session.transcript.to_str().unwrap_or(""))
            .copied()
    });
    if let (Some(l), Some(s)) = (&mut ledger, &state) {
        for o in outcomes.iter().filter(|o| !o.skipped) {
            match o.error {
                None => l.confirmed(s, &o.session),
                Some(_) => l.forget(&o.session),
            }
        }
        if let Err(e) = l.save(s) {
            eprintln!("confab-host: cannot save the sync --all ledger in {}: {e} (the next run asks the server about every session)", s.display());
        }
    }
    let elapsed = started.elapsed();
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let text = if as_json {
        summary_json(&outcomes, elapsed)
    } else {
        summary_table(&outcomes, elapsed, workers)
    };
    print!("{}", guard.hide(&text));
    if let (Some(backend), false) = (&local, as_json) {
        eprintln!(
            "mirrored into {}/<session id>/ (embedded local backend on {})",
            host.mirror.display(),
            backend.url()
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What every session's run shares.
struct Job<'a> {
    sandbox: &'a Sandbox,
    url: &'a str,
    env: &'a [(String, String)],
    state: Option<&'a PathBuf>,
    passed: &'a [String],
}

impl Job<'_> {
    fn sync(&self, session: &SessionFile, guard: &KeyGuard) -> Outcome {
        let mut outcome = Outcome {
            session: session.clone(),
            error: None,
            skipped: false,
            lines: 0,
            bytes: 0,
        };
        let transcript = session.transcript.to_string_lossy().into_owned();
        let folder = session
            .transcript
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"));
        let mut grant = Grant::new(vec![folder], self.url);
        grant.deadline = None;
        if let Some(state) = self.state {
            grant.read_write_dirs.push(state.clone());
        }
        let mut argv = vec!["sync".to_string(), transcript, "--json".to_string()];
        argv.extend(self.passed.iter().filter(|a| *a != "--json").cloned());
        let run = match self
            .sandbox
            .run_command_captured(&grant, &argv, self.env, MAX_OUTPUT)
        {
            Ok(run) => run,
            Err(e) => {
                outcome.error = Some(format!(
                    "the component stopped: {}",
                    crate::first_line(&e.root_cause().to_string())
                ));
                return outcome;
            }
        };
        let report: Option<serde_json::Value> = serde_json::from_slice(&run.stdout).ok();
        if let Some(r) = &report {
            outcome.lines = r["lines"].as_u64().unwrap_or(0);
            outcome.bytes = r["bytes"].as_u64().unwrap_or(0);
        }
        if !run.ok {
            let said = String::from_utf8_lossy(&run.stderr);
            let from_report = report.as_ref().and_then(|r| {
                let failed = r["failed"].as_array()?;
                let first = failed.first()?;
                let more = failed.len() - 1;
                let more = if more > 0 {
                    format!(" (and {more} more files)")
                } else {
                    String::new()
                };
                Some(format!(
                    "{}: {}{more}",
                    first["name"].as_str().unwrap_or("?"),
                    first["message"].as_str().unwrap_or("failed")
                ))
            });
            let message = from_report.unwrap_or_else(|| {
                said.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map(|l| l.trim_start_matches("confab-sync: ").to_string())
                    .unwrap_or_else(|| "the sync failed".to_string())
            });
            outcome.error = Some(guard.hide_string(message));
        }
        outcome
    }
}

/// A bar on a terminal; nothing otherwise (failures are still one line each).
fn progress_bar(sessions: usize, bytes: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{bar:30} {msg}, {binary_bytes}/{binary_total_bytes}, {binary_bytes_per_sec}, {eta} left",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(format!("0/{sessions} sessions"));
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

fn summary_table(outcomes: &[Outcome], elapsed: Duration, workers: usize) -> String {
    let moved: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.error.is_some() || o.lines > 0)
        .collect();
    let mut out = String::new();
    if !moved.is_empty() {
        out.push_str(&format!(
            "{:<36}  {:>10}  {:>9}  RESULT\n",
            "SESSION", "NEW LINES", "SIZE"
        ));
        for o in moved.iter().take(MAX_ROWS) {
            out.push_str(&format!(
                "{:<36}  {:>10}  {:>9}  {}\n",
                o.session.id,
                o.lines,
                super::size(o.session.size),
                o.error
                    .as_deref()
                    .map_or("synced".to_string(), |e| format!("failed: {e}"))
            ));
        }
        if moved.len() > MAX_ROWS {
            out.push_str(&format!("... and {} more\n", moved.len() - MAX_ROWS));
        }
    }
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let uploaded = outcomes
        .iter()
        .filter(|o| o.error.is_none() && o.lines > 0)
        .count();
    let lines: u64 = outcomes.iter().map(|o| o.lines).sum();
    let scanned: u64 = outcomes.iter().map(|o| o.session.size).sum();
    let skipped = outcomes.iter().filter(|o| o.skipped).count();
    let seconds = elapsed.as_secs_f64();
    out.push_str(&format!(
        "{} sessions: {} with new lines, {} up to date ({} per the checkpoint alone), {} failed; {} new lines; {} of sessions in {:.2} s ({:.1} MiB/s, {} at once)\n",
        outcomes.len(),
        uploaded,
        outcomes.len() - uploaded - failed,
        skipped,
        failed,
        lines,
        super::size(scanned),
        seconds,
        scanned as f64 / (1u64 << 20) as f64 / seconds.max(1e-9),
        workers
    ));
    out
}

fn summary_json(outcomes: &[Outcome], elapsed: Duration) -> String {
    let sessions: Vec<_> = outcomes
        .iter()
        .map(|o| {
            json!({
                "id": o.session.id,
                "transcript": o.session.transcript,
                "ok": o.error.is_none(),
                "skipped": o.skipped,
                "lines": o.lines,
                "bytes": o.bytes,
                "error": o.error,
            })
        })
        .collect();
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    format!(
        "{}\n",
        json!({
            "sessions": sessions,
            "synced": outcomes.len() - failed,
            "failed": failed,
            "skipped": outcomes.iter().filter(|o| o.skipped).count(),
            "lines": outcomes.iter().map(|o| o.lines).sum::<u64>(),
            "bytes": outcomes.iter().map(|o| o.bytes).sum::<u64>(),
            "seconds": elapsed.as_secs_f64(),
        })
    )
}
