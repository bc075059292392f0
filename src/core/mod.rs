//! The sans-I/O core. Nothing here touches WASI: I/O arrives through the small
//! traits of [`io`], so every decision is testable natively with in-memory
//! files and a scripted transport.
//!
//! Data flows one way: [`lines`] (framing over offset reads) -> [`redact`] and
//! [`metadata`] -> [`chunk`] (planning, body) -> [`client`] (zstd, auth,
//! [`retry`]) -> the transport. [`engine`] holds the state and drives it;
//! [`provider`] knows what differs per agent (which files make a session,
//! what lines say about it); [`discovery`] holds the path helpers.

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
pub mod provider;
pub mod redact;
pub mod report;
pub mod retry;
#[cfg(test)]
pub(crate) mod testing;
pub mod timestamp;
