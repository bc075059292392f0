//! A scratch HOME for the host's own commands (`hooks`, `list`, `save`,
//! `sync --all`): confab-host runs in it with a clean environment, so the
//! real user's settings, sessions and state are never read or written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Home {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).expect("canonical temp dir")
    }

    /// `~/.claude/settings.json`.
    pub fn settings(&self) -> PathBuf {
        self.path().join(".claude/settings.json")
    }

    /// `~/.claude/projects`.
    pub fn projects(&self) -> PathBuf {
        self.path().join(".claude/projects")
    }

    /// The state folder confab-host picks by default here.
    pub fn state_dir(&self) -> PathBuf {
        self.path().join(".local/state/confab-sync")
    }

    /// `confab-host` with only HOME, PATH and the component set, run in HOME.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(super::confab_host_path());
        cmd.current_dir(self.path())
            .env_clear()
            .env("HOME", self.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CONFAB_COMPONENT", super::component_path())
            .args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run confab-host")
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let to = self.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(&to, bytes).unwrap();
        to
    }
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A file's bytes, or `None` when it does not exist.
pub fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}
