//! The sans-I/O core. Nothing here touches WASI: I/O arrives through the small
//! traits of [`io`], so every decision is testable natively with in-memory
//! files and a scripted transport.
//!
//! Data flows one way: [`lines`] (framing over offset reads) -> [`redact`] and
//! [`metadata`] -> [`chunk`] (planning, body) -> [`client`] (zstd, auth,
//! [`retry`]) -> the transport. [`engine`] holds the state and drives it;
//! [`discovery`] knows which files make a session.

pub mod api_key;
pub(crate) mod byte_frequency;
pub mod checkpoint;
pub mod chunk;
pub mod client;
pub mod config;
pub mod discovery;
pub mod engine;
pub mod error;
pub mod io;
pub mod limits;
pub mod lines;
pub mod metadata;
pub mod protocol;
pub mod redact;
pub mod report;
pub mod retry;
#[cfg(test)]
pub(crate) mod testing;
