//! confab-sync: incremental upload of Claude Code sessions to a Confab backend.
//!
//! The crate has two halves:
//! - [`core`]: everything that decides (line framing, chunk planning, redaction,
//!   metadata, protocol, retry policy, the engine's state). Plain Rust, no WASI:
//!   it builds and unit-tests natively.
//! - [`cli`]: the command line (`sync`, `hook`, `watch`, `validate`) over the
//!   core, run by `wasi:cli/run` and by `confab-host`.
//! - `wasi` (wasm32 only): thin adapters from the core's traits to
//!   `wasi:filesystem`, `wasi:http` and `wasi:clocks`, plus the exported WIT API.

pub mod cli;
pub mod core;

#[cfg(target_arch = "wasm32")]
mod wasi;
