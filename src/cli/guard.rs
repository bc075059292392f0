//! Everything the command line prints passes through here: [`Guarded`]
//! wraps the platform so that stdout and stderr (reports, `--json`,
//! progress, every error) go through the core's [`KeyGuard`], which knows
//! every key this run could be using, wherever it was configured.

use super::args::CommonArgs;
use super::commands::{Platform, Timeouts};
use crate::core::api_key::KeyGuard;
use std::rc::Rc;
use std::time::Duration;

/// The keys of this run: `--api-key` (even where parsing fails later),
/// `CONFAB_API_KEY` and the config file's `api_key`.
pub fn key_guard<P: Platform>(p: &P, argv: &[String]) -> KeyGuard {
    let mut guard = KeyGuard::new();
    for key in api_keys_in_args(argv) {
        guard.add(key);
    }
    if let Some(key) = p.env("CONFAB_API_KEY") {
        guard.add(&key);
    }
    if let Ok(s) = super::commands::settings_of(p, &CommonArgs::default()) {
        if let Some(key) = s.api_key {
            guard.add(&key);
        }
    }
    guard
}

/// Every value given to `--api-key` (`--api-key KEY` or `--api-key=KEY`),
/// read before parsing: a command line that does not parse must not print
/// its key either. confab-host guards its own messages with these too.
pub fn api_keys_in_args(argv: &[String]) -> Vec<&str> {
    let mut keys = Vec::new();
    let mut args = argv.iter();
    while let Some(arg) = args.next() {
        if arg == "--api-key" {
            keys.extend(args.next().map(String::as_str));
        } else if let Some(key) = arg.strip_prefix("--api-key=") {
            keys.push(key);
        }
    }
    keys
}

/// The platform `P`, with every printed text passed through a [`KeyGuard`].
pub struct Guarded<'p, P> {
    inner: &'p mut P,
    guard: KeyGuard,
}

impl<'p, P: Platform> Guarded<'p, P> {
    pub fn new(inner: &'p mut P, guard: KeyGuard) -> Self {
        Guarded { inner, guard }
    }
}

impl<P: Platform> Platform for Guarded<'_, P> {
    type Fs = P::Fs;
    type Transport = P::Transport;
    type Clock = P::Clock;

    fn fs(&self) -> Self::Fs {
        self.inner.fs()
    }
    fn transport(&self, timeouts: Timeouts) -> Self::Transport {
        self.inner.transport(timeouts)
    }
    fn clock(&self) -> Self::Clock {
        self.inner.clock()
    }
    fn set_time_limit(&mut self, limit: Duration) {
        self.inner.set_time_limit(limit)
    }
    fn env(&self, key: &str) -> Option<String> {
        self.inner.env(key)
    }
    fn read_stdin(&mut self) -> Vec<u8> {
        self.inner.read_stdin()
    }
    fn stdout(&self, text: &str) {
        self.inner.stdout(&self.guard.hide(text))
    }
    fn stderr_sink(&self) -> Rc<dyn Fn(&str)> {
        let sink = self.inner.stderr_sink();
        let guard = self.guard.clone();
        Rc::new(move |text: &str| sink(&guard.hide(text)))
    }
    fn stderr_is_terminal(&self) -> bool {
        self.inner.stderr_is_terminal()
    }
    fn unix_time(&self) -> u64 {
        self.inner.unix_time()
    }
}
