//! Every limit the local backend enforces, in one place.
//!
//! Each constant cites where it comes from: `backend-api.md` (the project's
//! contract with the Confab server, in `shared/docs/`) or, where that
//! document is silent, the real server (ConfabulousDev/confab-web,
//! `backend/internal/api/server.go`, `sync.go`, `github_links.go`,
//! `validation/input.go`). A rule that is stricter than the real server is
//! marked so, with the reason.

/// backend-api.md, Transport: the server mints `cfb_` followed by the first
/// 40 characters of base64url of 32 random bytes.
pub const API_KEY_PREFIX: &str = "cfb_";
/// backend-api.md, Transport: the 40 base64url characters after the prefix.
pub const API_KEY_SECRET_LEN: usize = 40;

/// backend-api.md, Transport: the `User-Agent` is
/// `confab-sync/<version> (wasm32-wasip2)`. The real server does not check
/// it; this backend does, so that a client that forgets it fails here.
pub const USER_AGENT_PREFIX: &str = "confab-sync/";

/// backend-api.md, Transport: "A body of 1 KiB or more is sent
/// zstd-compressed". A client duty, enforced here on the endpoints whose
/// bodies the real server decompresses (`/api/v1/sync/*`).
pub const COMPRESS_AT_BYTES: usize = 1024;

/// backend-api.md, Transport: "Body limit: 16 MiB for chunk uploads, counted
/// after decompression" (the real server's `MaxBodyXL`).
pub const MAX_CHUNK_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Real server: `/sync/init`, `/sync/event`, `PATCH .../summary` and
/// `POST .../github-links` are wrapped in `withMaxBody(MaxBodyM)`, 128 KiB.
pub const MAX_SMALL_BODY_BYTES: usize = 128 * 1024;
/// Real server: `GET /auth/validate` is wrapped in `withMaxBody(MaxBodyXS)`.
pub const MAX_VALIDATE_BODY_BYTES: usize = 2 * 1024;

/// What may arrive on the wire for a body whose decompressed limit is
/// `limit`: zstd's worst case for incompressible data is a little over the
/// input (ZSTD_compressBound is n + n/256 + a small constant), so n/128 +
/// 1 KiB covers it. Uncompressed bodies are held to `limit` itself.
pub const fn max_wire_bytes(limit: usize, compressed: bool) -> usize {
    if compressed {
        limit + limit / 128 + 1024
    } else {
        limit
    }
}

/// backend-api.md, init: "external_id 1..512 bytes, valid UTF-8".
pub const MAX_EXTERNAL_ID_BYTES: usize = 512;
/// backend-api.md, init: "transcript_path and cwd at most 8192 bytes".
pub const MAX_TRANSCRIPT_PATH_BYTES: usize = 8192;
/// backend-api.md, init: see [`MAX_TRANSCRIPT_PATH_BYTES`].
pub const MAX_CWD_BYTES: usize = 8192;
/// backend-api.md, init: "hostname and username at most 255 bytes".
pub const MAX_HOSTNAME_BYTES: usize = 255;
/// backend-api.md, init: see [`MAX_HOSTNAME_BYTES`].
pub const MAX_USERNAME_BYTES: usize = 255;
/// backend-api.md, init: `git_info.remotes` holds "at most 50".
pub const MAX_GIT_REMOTES: usize = 50;
/// backend-api.md, init: "`provider` may be omitted (it means claude-code)".
pub const DEFAULT_PROVIDER: &str = "claude-code";

/// backend-api.md, chunk: "`file_name` at most 512 bytes".
pub const MAX_FILE_NAME_BYTES: usize = 512;
/// backend-api.md, chunk: "`file_type` is `transcript`, `agent` or
/// `workflow_journal`".
pub const FILE_TYPES: [&str; 3] = ["transcript", "agent", "workflow_journal"];
/// backend-api.md, chunk metadata: "`summary` at most 2048 bytes"; the same
/// limit holds for `PATCH .../summary` (real server: `ValidateSummary`).
pub const MAX_SUMMARY_BYTES: usize = 2048;
/// backend-api.md, chunk metadata: "`first_user_message` at most 8192 bytes".
pub const MAX_FIRST_USER_MESSAGE_BYTES: usize = 8192;
/// backend-api.md, chunk: "at most 30,000 chunks per file".
pub const MAX_CHUNKS_PER_FILE: u32 = 30_000;

/// backend-api.md, event: "`session_end` is the only event type accepted".
pub const EVENT_TYPES: [&str; 1] = ["session_end"];

/// Real server (`github_links.go`): `source must be 'cli_hook' or 'manual'`.
pub const GITHUB_LINK_SOURCES: [&str; 2] = ["cli_hook", "manual"];

/// backend-api.md, status codes: "a burst of about 2000 requests".
pub const DEFAULT_RATE_BURST: u32 = 2000;
/// backend-api.md, status codes: "refilled at under 3 per second".
pub const DEFAULT_RATE_PER_SECOND: f64 = 2.5;
