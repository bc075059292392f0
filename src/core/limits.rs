//! The backend's limits and the engine's own bounds, in one place.
//! Source of the backend's numbers: ../shared/docs/backend-api.md.

/// Line data in one chunk, counted as escaped JSON strings: the body stays
/// under the server's 16 MiB limit (counted after decompression) with room
/// for the envelope and metadata.
pub const MAX_CHUNK_LINE_BYTES: usize = 14 << 20;

/// Bodies of this size or more are sent zstd-compressed.
pub const COMPRESS_THRESHOLD: usize = 1024;

/// zstd level: level 3 measured 304 MiB/s in wasmtime with ratio 11.5 on
/// real transcript lines (level 1: 338 MiB/s, ratio 9.7); see design.md.
pub const ZSTD_LEVEL: i32 = 3;

/// zstd window: 8 MiB (2^23), the most RFC 8878 asks every decoder to
/// accept, with long-distance matching over it. Level 3 alone keeps a 2 MiB
/// window; over the fixture sessions (6.0 MiB of real lines, no repeats)
/// the wider window takes the wire bytes per transcript byte from 0.090 to
/// 0.084, and long-distance matching to 0.079 (the Go engine: 0.082).
pub const ZSTD_WINDOW_LOG: u32 = 23;

/// `first_user_message` sent at most this long (the server allows 8192).
pub const FIRST_USER_MESSAGE_MAX_BYTES: usize = 4096;

/// `summary` at most this long (server rule).
pub const SUMMARY_MAX_BYTES: usize = 2048;

/// A sanitized summary is kept up to this long until it has been redacted
/// once more and cut to [`SUMMARY_MAX_BYTES`]: room for a secret that
/// straddles the limit, and a bound on what a huge summary line costs.
pub const SUMMARY_SANITIZE_MAX_BYTES: usize = 4 * SUMMARY_MAX_BYTES;

/// Server rule: at most this many chunks per file.
pub const MAX_CHUNKS_PER_FILE: u64 = 30_000;

/// Server rules on init fields.
pub const MAX_EXTERNAL_ID_BYTES: usize = 512;
pub const MAX_PATH_BYTES: usize = 8192;
pub const MAX_HOST_USER_BYTES: usize = 255;

/// Subagent discovery: rounds per sync-all (a subagent may start subagents).
pub const MAX_DISCOVERY_ROUNDS: usize = 10;

/// Summary linking: a session "ends with" a message if one of its last lines has it.
pub const LEAF_SEARCH_TAIL_LINES: usize = 10;

/// A failed chunk: re-read the server's state and go on, at most this many times per file and call.
pub const MAX_CHUNK_RECOVERIES: u32 = 5;

/// Server rule: `git_info.remotes` holds at most this many.
pub const MAX_GIT_REMOTES: usize = 50;

/// `.git/config` and `.git/HEAD` are read only up to this size.
pub const GIT_FILE_MAX_BYTES: usize = 256 << 10;

/// A success answer is read to at most this many bytes; a longer one is cut
/// off with an `http` error, never read whole (confab v0.17.3 caps at 32 MiB:
/// an init answer listing every file of a session stays far below it).
pub const MAX_ANSWER_BYTES: usize = 32 << 20;

/// An error answer's body is read, and shown, to at most this many bytes
/// (confab v0.17.3: 256): enough for the server's explanation, not for a page.
pub const MAX_ERROR_BODY_BYTES: usize = 256;
