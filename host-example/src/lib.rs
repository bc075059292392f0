//! confab-host: a wasmtime embedder for the confab-sync component.
//!
//! - [`sandbox`]: load the component once, run it with the least rights.
//! - [`config`]: flags, environment and confab's config file.
//! - [`report`]: what the component reports, for people and for `--json`.
//! - [`backend`]: a local confab-compatible backend that enforces the API's
//!   rules; the embedded default of `confab-host` and the tests' server.

pub mod backend;
pub mod config;
pub mod report;
pub mod sandbox;
