//! confab-host: a wasmtime embedder for the confab-sync component.
//!
//! - [`sandbox`]: load the component once, run it with the least rights,
//!   through its WIT API (`Instance`) or its command line (`run_command`).
//! - [`backend`]: a local confab-compatible backend that enforces the API's
//!   rules; the embedded default of `confab-host` and the tests' server.

pub mod backend;
pub mod sandbox;
