//! `wasi:cli/run`: the same component runs under `wasmtime run` (and under
//! `confab-host`) as a command. The WASI platform for [`crate::cli`]: std's
//! stdio, arguments and environment (WASI-backed on wasm32-wasip2), our
//! filesystem, HTTP and clock adapters.

use super::{WasiClock, WasiFs, WasiHttp};
use crate::cli::commands::{self, Exit, Platform, Timeouts};
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

/// Hook input is small; more than this on stdin is not a hook input.
const MAX_STDIN_BYTES: u64 = 1 << 20;

struct WasiPlatform;

impl Platform for WasiPlatform {
    type Fs = WasiFs;
    type Transport = WasiHttp;
    type Clock = WasiClock;

    fn fs(&self) -> WasiFs {
        WasiFs::new()
    }
    fn transport(&self, t: Timeouts) -> WasiHttp {
        WasiHttp {
            connect_timeout: t.connect,
            first_byte_timeout: t.first_byte,
            between_bytes_timeout: Duration::from_secs(30),
        }
    }
    fn clock(&self) -> WasiClock {
        WasiClock
    }
    fn env(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
    fn read_stdin(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        let _ = std::io::stdin().take(MAX_STDIN_BYTES).read_to_end(&mut buf);
        buf
    }
    fn stdout(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
    fn stderr_sink(&self) -> Rc<dyn Fn(&str)> {
        Rc::new(|text: &str| {
            let _ = std::io::stderr().write_all(text.as_bytes());
        })
    }
    fn stderr_is_terminal(&self) -> bool {
        wasi::cli::terminal_stderr::get_terminal_stderr().is_some()
    }
    fn unix_time(&self) -> u64 {
        wasi::clocks::wall_clock::now().seconds
    }
}

struct Cli;

impl wasi::exports::cli::run::Guest for Cli {
    fn run() -> Result<(), ()> {
        let argv: Vec<String> = std::env::args().skip(1).collect();
        match commands::run(&mut WasiPlatform, &argv) {
            Exit::Success => Ok(()),
            Exit::Failure => Err(()),
        }
    }
}

wasi::cli::command::export!(Cli);
