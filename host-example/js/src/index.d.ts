// Types of the JavaScript API (src/index.js). The component's own types, as
// jco generates them from wit/sync.wit, are in ../generated (npm run build).

import type * as Engine from "../generated/interfaces/confab-sync-engine.js";
import type * as WitTypes from "../generated/interfaces/confab-sync-types.js";

/** The cases of the WIT variant `sync-error`. */
export type SyncErrorCode = WitTypes.SyncError["tag"];
export declare const SYNC_ERROR_CODES: readonly SyncErrorCode[];

/** An error returned by the component (`sync-error`), as a JS exception. */
export declare class SyncError extends Error {
  constructor(code: SyncErrorCode, message: string, options?: { status?: number; cause?: unknown });
  readonly name: "SyncError";
  /** The variant's case: `unauthorized`, `io`, `transport`, ... */
  readonly code: SyncErrorCode;
  /** The HTTP status, for `http`. */
  readonly status?: number;
  static fromVariant(variant: WitTypes.SyncError, cause?: unknown): SyncError;
}

/** A jco ComponentError carrying a `sync-error`, as a SyncError; else undefined. */
export declare function toSyncError(e: unknown): SyncError | undefined;

/** A redaction rule; confab's config-file spelling (`type`, `capture_group`, `field_pattern`) is accepted too. */
export interface RedactionPattern {
  name: string;
  pattern?: string;
  kind?: string;
  type?: string;
  captureGroup?: number;
  capture_group?: number;
  fieldPattern?: string;
  field_pattern?: string;
}

export interface RedactionOptions {
  /** Default false: lines are uploaded exactly as read. */
  enabled?: boolean;
  /** Default true. */
  useDefaultPatterns?: boolean;
  use_default_patterns?: boolean;
  patterns?: RedactionPattern[];
}

export interface SyncSessionOptions {
  /** e.g. `https://confab.example.com` (`http://` only for loopback). */
  backendUrl: string;
  /** A Confab API key: `cfb_` + 40 characters of base64url (letters, digits, `-`, `_`). */
  apiKey: string;
  /** The session's `<uuid>.jsonl`. Its folder is the only one the component can read. */
  transcriptPath: string;
  /** Default: the transcript's file stem (for Codex: the root thread's id). */
  externalId?: string;
  /**
   * `claude-code`, `codex` or `cursor`. Default: told by the transcript's path
   * (and, in the component, its first line). It decides what is granted:
   * Codex gets the whole `sessions/` tree (a subagent's rollout syncs its
   * root's session), Cursor the conversation's folder and `~/.cursor/chats/`.
   */
  provider?: "claude-code" | "codex" | "cursor";
  /** The project folder the agent ran in (metadata; not granted to the component). Default: process.cwd(). */
  cwd?: string;
  /** Sent with the session. Default: this machine's name (`os.hostname()`). */
  hostname?: string;
  /** Sent with the session. Default: the OS user (`os.userInfo().username`). */
  username?: string;
  redaction?: RedactionOptions;
  /**
   * A folder (created if missing) granted read-write, where the engine keeps
   * a small checkpoint per session so that a new SyncSession resumes without
   * re-reading the files, e.g. a VS Code extension's `globalStorageUri`
   * path. Without it nothing is writable and a new session re-scans.
   */
  stateDir?: string;
}

export type FileType = WitTypes.FileType;

export interface FileReport {
  name: string;
  fileType: FileType;
  /** Lines uploaded by this call. */
  linesSynced: number;
  /** Lines the backend holds after this call. */
  totalLines: number;
  chunks: number;
}

export interface ErrorInfo {
  code: SyncErrorCode;
  message: string;
  status?: number;
}

export interface SyncReport {
  files: FileReport[];
  failed: { name: string; error: ErrorInfo }[];
  chunks: number;
  lines: number;
  /** Line data uploaded, without newlines, after redaction. */
  bytes: number;
  /** Request bodies on the wire (after compression). */
  wireBytes: number;
  retries: number;
  invalidUtf8Lines: number;
  redactions: { kind: string; count: number }[];
  warnings: string[];
  /** Any other counter the component reports (u64 fields become numbers). */
  [counter: string]: unknown;
}

export interface FileStats {
  name: string;
  fileType: FileType;
  linesSynced: number;
}

export interface GithubLink {
  id: number;
  linkType: string;
  url: string;
}

/** The agents the component syncs. */
export declare const PROVIDERS: readonly ["claude-code", "codex", "cursor"];

/** One agent session (Claude Code, Codex or Cursor) synced to a Confab backend. Methods reject with SyncError. */
export declare class SyncSession {
  constructor(options: SyncSessionOptions);
  /** The transcript's real path, as the component sees it. */
  readonly transcriptPath: string;
  readonly externalId: string;
  /** The transcript's folder, preopened (read-only) for the component. */
  readonly grantedFolder: string;
  /** Every folder preopened (read-only): what the session's provider needs. */
  readonly grantedFolders: string[];
  /** Create or resume the session on the backend; resolves to the backend's session id. */
  init(): Promise<string>;
  /**
   * Upload every new complete line of the transcript and its subagent files.
   * A last line without its newline is complete when it is one JSON object or
   * array (the backend then stores a final newline the file lacks); else it
   * waits for its newline.
   */
  syncAll(): Promise<SyncReport>;
  /** e.g. `sendEvent("session_end", hookInput)`; timestamp defaults to now. */
  sendEvent(eventType: string, payload?: object | string, timestamp?: Date | string): Promise<void>;
  updateSessionSummary(summary: string, externalId?: string): Promise<void>;
  linkGithub(url: string, title?: string): Promise<GithubLink>;
  readonly sessionId: string | undefined;
  stats(): FileStats[];
  reset(): void;
  close(): void;
}

/** The session in `dir` whose transcript ends with message `leafUuid` (its external id). */
export declare function findSessionByLeafUuid(
  dir: string,
  leafUuid: string,
  options?: { excludeFile?: string },
): Promise<string | undefined>;

/** What one instance of the component is granted. */
export interface Grant {
  /** Preopened read-only, each at its own path. */
  folders?: string[];
  /** Preopened read-write, each at its own path. */
  writableFolders?: string[];
  /** The only origin outgoing HTTP may reach; none without it. */
  backendUrl?: string;
}

/** preview2-shim's import object, restricted to `grant`. */
export declare function sandboxImports(grant?: Grant): Record<string, any>;

/** A fresh, sandboxed instance of the component: jco's bindings of `confab:sync/engine`. */
export declare function instantiateEngine(grant?: Grant): Promise<typeof Engine>;
