//! The host's own commands, beside the component's (`sync`, `hook`, `watch`,
//! `validate`, run through the component by `main.rs`):
//! - [`hooks`]: install, remove, show the Claude Code hooks.

pub mod hooks;
