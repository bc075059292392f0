//! The command line of the component (`wasmtime run confab_sync.wasm <command>`),
//! and of `confab-host`, which runs the same component with the same flags.
//!
//! Everything here is plain Rust over the core's traits: [`args`] parses,
//! [`settings`] resolves configuration (flags, environment, confab's config
//! file), [`hook`] reads Claude Code's hook input, [`output`] formats, and
//! [`commands`] runs a command on a [`commands::Platform`] that the WASI edge
//! (or a test) provides, through [`guard`], which keeps API keys out of
//! everything printed.

pub mod args;
pub mod commands;
pub mod guard;
pub mod hook;
pub mod output;
pub mod settings;

#[cfg(test)]
mod tests;
