//! `wasi:clocks` and `wasi:random` behind the core's [`Clock`].

use crate::core::io::Clock;
use std::time::Duration;
use wasi::clocks::monotonic_clock;

#[derive(Debug, Default, Clone, Copy)]
pub struct WasiClock;

impl Clock for WasiClock {
    fn sleep(&mut self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        monotonic_clock::subscribe_duration(nanos).block();
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(monotonic_clock::now())
    }

    fn jitter_seed(&mut self) -> u64 {
        wasi::random::insecure::get_insecure_random_u64()
    }
}
