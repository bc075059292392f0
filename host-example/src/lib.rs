//! confab-host: a wasmtime embedder for the confab-sync component.
//!
//! - [`sandbox`]: load the component once, run it with the least rights,
//!   through its WIT API (`Instance`) or its command line (`run_command`).
//! - [`backend`]: a local confab-compatible backend that enforces the API's
//!   rules; the embedded default of `confab-host` and the tests' server.
//! - [`claude_hooks`]: our hooks in Claude Code's `settings.json`, added and
//!   removed without touching anything else (`confab-host hooks`).
//! - [`sessions`]: the sessions on disk, found and described cheaply
//!   (`confab-host list`, `save`, `sync --all`).
//! - [`swept`]: which sessions `sync --all` may skip, per the checkpoints.

pub mod backend;
pub mod claude_hooks;
pub mod sandbox;
pub mod sessions;
pub mod swept;
