//! `wasi:cli/run`: the same component runs under `wasmtime run` (and under
//! `confab-host`) as a command. The WASI platform for [`crate::cli`]: std's
//! stdio, arguments and environment (WASI-backed on wasm32-wasip2), our
//! filesystem, HTTP and clock adapters.

use super::{WasiClock, WasiFs, WasiHttp};
use crate::cli::commands::{self, Exit, Platform, Timeouts};
use crate::core::io::{Clock, HttpRequest, HttpResponse, InFlight, Transport, TransportError};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;
use wasi::clocks::monotonic_clock;

/// Hook input is small; more than this on stdin is not a hook input.
const MAX_STDIN_BYTES: u64 = 1 << 20;

#[derive(Default)]
struct WasiPlatform {
    deadline: Option<Deadline>,
}

/// When a command's network work must end (see [`Platform::set_time_limit`]).
#[derive(Debug, Clone, Copy)]
struct Deadline {
    /// Monotonic clock, nanoseconds.
    at: u64,
    limit: Duration,
}

impl Deadline {
    /// Time left, `None` once passed.
    fn left(&self) -> Option<Duration> {
        let now = monotonic_clock::now();
        (now < self.at).then(|| Duration::from_nanos(self.at - now))
    }
}

impl Platform for WasiPlatform {
    type Fs = WasiFs;
    type Transport = BoundedHttp;
    type Clock = BoundedClock;

    fn fs(&self) -> WasiFs {
        WasiFs::new()
    }
    fn transport(&self, t: Timeouts) -> BoundedHttp {
        BoundedHttp {
            timeouts: t,
            deadline: self.deadline,
            last_error: Rc::default(),
        }
    }
    fn clock(&self) -> BoundedClock {
        BoundedClock {
            deadline: self.deadline,
        }
    }
    fn set_time_limit(&mut self, limit: Duration) {
        let nanos = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        self.deadline = Some(Deadline {
            at: monotonic_clock::now().saturating_add(nanos),
            limit,
        });
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

/// `wasi:http` with the platform's deadline: each request gets at most the
/// time left, and none starts once it has passed. The WIT export's engine
/// uses it too, without a deadline: one engine type, so the component holds
/// one copy of the engine's code, not two (40 KB).
pub(super) struct BoundedHttp {
    timeouts: Timeouts,
    deadline: Option<Deadline>,
    /// What went wrong last, to say why the deadline was reached (shared
    /// with the answers of started requests, which arrive later).
    last_error: Rc<RefCell<Option<String>>>,
}

impl BoundedHttp {
    /// With the timeouts of each request only (a host bounds its calls itself).
    pub(super) fn unbounded(timeouts: Timeouts) -> Self {
        BoundedHttp {
            timeouts,
            deadline: None,
            last_error: Rc::default(),
        }
    }

    /// The transport for one request: its timeouts capped to the time
    /// left; an error once the deadline has passed.
    fn for_now(&self) -> Result<WasiHttp, TransportError> {
        let left = match self.deadline {
            None => None,
            Some(d) => match d.left() {
                Some(left) => Some(left),
                None => {
                    let last = self
                        .last_error
                        .borrow()
                        .as_deref()
                        .map_or(String::new(), |e| format!("{e}; "));
                    // Nothing was sent: "not connected" is the truth, and safe.
                    return Err(TransportError::Connect(format!(
                        "{last}gave up after {} s (the command's time limit, --timeout)",
                        d.limit.as_secs()
                    )));
                }
            },
        };
        let cap = |t: Duration| left.map_or(t, |l| t.min(l));
        Ok(WasiHttp {
            connect_timeout: cap(self.timeouts.connect),
            first_byte_timeout: cap(self.timeouts.first_byte),
            between_bytes_timeout: cap(self.timeouts.between_bytes),
            total_timeout: cap(self.timeouts.total),
        })
    }
}

impl Transport for BoundedHttp {
    fn send(&mut self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let result = self.for_now()?.send(request);
        note_error(&self.last_error, &result);
        result
    }

    fn start(&mut self, request: &HttpRequest) -> InFlight {
        match self.for_now() {
            Ok(mut http) => {
                let in_flight = http.start(request);
                let last_error = self.last_error.clone();
                InFlight::new(move || {
                    let result = in_flight.wait();
                    note_error(&last_error, &result);
                    result
                })
            }
            Err(e) => InFlight::ready(Err(e)),
        }
    }
}

fn note_error(slot: &RefCell<Option<String>>, result: &Result<HttpResponse, TransportError>) {
    if let Err(TransportError::Connect(m) | TransportError::Lost(m)) = result {
        *slot.borrow_mut() = Some(m.clone());
    }
}

/// The WASI clock; with a deadline, no wait lasts beyond it.
pub(super) struct BoundedClock {
    deadline: Option<Deadline>,
}

impl BoundedClock {
    /// Waits as long as asked (the WIT export's engine).
    pub(super) const UNBOUNDED: BoundedClock = BoundedClock { deadline: None };
}

impl Clock for BoundedClock {
    fn sleep(&mut self, duration: Duration) {
        let duration = match self.deadline {
            Some(d) => duration.min(d.left().unwrap_or(Duration::ZERO)),
            None => duration,
        };
        if !duration.is_zero() {
            WasiClock.sleep(duration);
        }
    }
    fn now(&self) -> Duration {
        WasiClock.now()
    }
    fn jitter_seed(&mut self) -> u64 {
        WasiClock.jitter_seed()
    }
}

struct Cli;

impl wasi::exports::cli::run::Guest for Cli {
    fn run() -> Result<(), ()> {
        let argv: Vec<String> = std::env::args().skip(1).collect();
        match commands::run(&mut WasiPlatform::default(), &argv) {
            Exit::Success => Ok(()),
            Exit::Failure => Err(()),
        }
    }
}

wasi::cli::command::export!(Cli);
