//! The thin WASI edge (wasm32 only): the core's traits implemented on
//! `wasi:filesystem`, `wasi:http` and `wasi:clocks`, and the WIT exports.
//! Nothing here decides anything; decisions live in `crate::core`.

mod clock;
mod exports;
mod fs;
mod http;
mod run;

pub use clock::WasiClock;
pub use fs::WasiFs;
pub use http::WasiHttp;
