//! The host's own commands, beside the component's (`sync`, `hook`, `watch`,
//! `validate`, run through the component by `main.rs`):
//! - [`hooks`]: install, remove, show the Claude Code hooks;
//! - [`list`]: the sessions on disk and how far each is on the server;
//! - [`save`]: one session found by id, synced like `sync <transcript>`;
//! - [`backfill`]: `sync --all`, every session, one instance per core.
//!
//! The sessions come from [`confab_host::sessions`]; [`Selection`] is the
//! filter `list` and `sync --all` share.

pub mod backfill;
pub mod hooks;
pub mod list;
pub mod save;

use crate::Failure;
use confab_host::sessions::{self, SessionFile, SessionSource};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// A command's arguments, read as flags: `--flag value` or `--flag=value`.
pub struct Flags<'a> {
    rest: std::slice::Iter<'a, String>,
    /// Named in the error of a flag without its value, e.g. `list --help`.
    help: &'static str,
}

impl<'a> Flags<'a> {
    pub fn new(argv: &'a [String], help: &'static str) -> Self {
        Flags {
            rest: argv.iter(),
            help,
        }
    }

    /// The next argument: its name, and the value after `=` if it has one.
    pub fn next_flag(&mut self) -> Option<(&'a str, Option<&'a str>)> {
        self.next_arg().map(|(_, flag, inline)| (flag, inline))
    }

    /// The same, with the argument as it was written.
    pub fn next_arg(&mut self) -> Option<(&'a str, &'a str, Option<&'a str>)> {
        let arg = self.rest.next()?;
        Some(match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (arg.as_str(), flag, Some(value)),
            _ => (arg.as_str(), arg.as_str(), None),
        })
    }

    /// The value of `flag`: `inline` (after `=`), else the next argument.
    pub fn value(&mut self, flag: &str, inline: Option<&str>) -> Result<String, Failure> {
        inline
            .map(str::to_string)
            .or_else(|| self.rest.next().cloned())
            .ok_or_else(|| Failure::Usage(format!("{flag} needs a value (try {})", self.help)))
    }
}

/// `--since DURATION` and `--project DIR`.
#[derive(Debug, Default)]
pub struct Selection {
    pub since: Option<Duration>,
    pub project: Option<PathBuf>,
}

impl Selection {
    /// Take `--since`/`--project` (and their `=` forms) if `flag` is one;
    /// `Ok(false)` for another flag.
    pub fn take(
        &mut self,
        flag: &str,
        value: &mut dyn FnMut() -> Result<String, Failure>,
    ) -> Result<bool, Failure> {
        match flag {
            "--since" => {
                let v = value()?;
                let d = humantime::parse_duration(&v).map_err(|_| {
                    Failure::Usage(format!(
                        "--since takes a duration such as 90m, 12h or 7d, not `{v}`"
                    ))
                })?;
                self.since = Some(d);
            }
            "--project" => {
                let v = value()?;
                let dir = std::path::absolute(&v)
                    .map_err(|e| Failure::Usage(format!("cannot use the folder {v}: {e}")))?;
                self.project = Some(dir);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The sessions of every source that pass the filter, newest first.
    pub fn sessions(&self, sources: &[Box<dyn SessionSource>]) -> Vec<SessionFile> {
        let now = SystemTime::now();
        sessions::all_sessions(sources)
            .into_iter()
            .filter(|s| match self.since {
                Some(d) => now.duration_since(s.modified).map_or(true, |age| age <= d),
                None => true,
            })
            .filter(|s| match &self.project {
                Some(dir) => in_project(sources, s, dir),
                None => true,
            })
            .collect()
    }
}

/// Whether the session ran in `dir`: its folder is `dir`, or is named as
/// Claude Code names a project's folder (every character but `[A-Za-z0-9]`
/// made `-`), or its transcript's `cwd` is `dir`.
fn in_project(sources: &[Box<dyn SessionSource>], s: &SessionFile, dir: &std::path::Path) -> bool {
    if s.folder == dir {
        return true;
    }
    let encoded: String = dir
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if s.folder
        .file_name()
        .is_some_and(|n| n.to_string_lossy() == encoded)
    {
        return true;
    }
    sessions::source_of(sources, s)
        .and_then(|src| src.details(s).cwd)
        .is_some_and(|cwd| std::path::Path::new(&cwd) == dir)
}

/// `1.2 MiB`, `340 KiB`, `12 B`.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}
