// confab-sync for JavaScript hosts (Node, VS Code extensions, Electron).
//
// The same confab_sync.wasm that wasmtime runs, transpiled by `jco transpile
// --instantiation async` (npm run build) into ../generated, and instantiated
// here once per session with imports from @bytecodealliance/preview2-shim,
// restricted the way confab-host restricts them under wasmtime:
//   - wasi:filesystem: one preopen, the transcript's folder (at its own real
//     path), read-only (every call that would create, write, rename or
//     delete is refused with `not-permitted`); plus, only when the caller
//     gives `stateDir`, that folder read-write for the engine's checkpoints;
//   - wasi:http: outgoing requests only to the backend's origin (anything
//     else gets `HTTP-request-denied`);
//   - wasi:cli: no environment variables, no arguments.
//
// The shim implements WASI synchronously (file and HTTP I/O run on a worker
// thread, the calling thread waits on it), so every call into the component
// blocks the thread that makes it until it returns. The methods below are
// async so that callers write `await`, and so that a later version can move
// the component onto a worker without changing the API.

import { existsSync, mkdirSync, realpathSync } from "node:fs";
import { hostname as osHostname, userInfo } from "node:os";
import { readFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { WASIShim } from "@bytecodealliance/preview2-shim/instantiation";

// This machine's name and the user's, sent with the session as confab
// does; `undefined` when the OS cannot say (the session then has none).
function machineHostname() {
  try {
    return osHostname() || undefined;
  } catch {
    return undefined;
  }
}

function machineUsername() {
  try {
    return userInfo().username || undefined;
  } catch {
    return process.env.USER || undefined;
  }
}

const generatedUrl = new URL("../generated/", import.meta.url);
const symbolDispose = Symbol.dispose || Symbol.for("dispose");

/** The cases of the WIT variant `sync-error`. */
export const SYNC_ERROR_CODES = Object.freeze([
  "not-initialized",
  "unauthorized",
  "session-not-found",
  "rate-limited",
  "conflict",
  "http",
  "transport",
  "io",
  "invalid-config",
  "invalid-input",
]);

/**
 * An error the component returned: `code` is the case of the WIT variant
 * `sync-error` (`unauthorized`, `io`, ...), `message` its one-line message
 * (it never contains the API key), `status` the HTTP status for `http`.
 */
export class SyncError extends Error {
  constructor(code, message, { status, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "SyncError";
    this.code = code;
    if (status !== undefined) this.status = status;
  }

  /** From the variant as jco lifts it: `{ tag, val }`. */
  static fromVariant(variant, cause) {
    if (variant.tag === "http") {
      return new SyncError("http", variant.val.message, { status: variant.val.status, cause });
    }
    return new SyncError(variant.tag, String(variant.val), { cause });
  }
}

/** `e` as a SyncError when it carries a `sync-error` variant, else undefined. */
export function toSyncError(e) {
  const payload = e !== null && typeof e === "object" ? e.payload : undefined;
  if (payload && typeof payload === "object" && SYNC_ERROR_CODES.includes(payload.tag)) {
    return SyncError.fromVariant(payload, e);
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Loading and sandboxed instantiation

let loading;

/** The transpiled component, its core modules compiled once per process. */
function loadComponent() {
  loading ??= (async () => {
    let generated;
    try {
      generated = await import(new URL("confab-sync.js", generatedUrl).href);
    } catch (e) {
      if (e?.code === "ERR_MODULE_NOT_FOUND") {
        throw new Error(
          "confab-sync: the transpiled component is missing; run `npm run build` in the package " +
            "(it runs `jco transpile` on confab_sync.wasm)",
          { cause: e },
        );
      }
      throw e;
    }
    const modules = new Map();
    const getCoreModule = (name) => {
      let module = modules.get(name);
      if (!module) {
        module = readFile(new URL(name, generatedUrl)).then((bytes) => WebAssembly.compile(bytes));
        modules.set(name, module);
      }
      return module;
    };
    return { instantiate: generated.instantiate, getCoreModule };
  })();
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}

const MUTATING_DESCRIPTOR_METHODS = [
  "write",
  "writeViaStream",
  "appendViaStream",
  "setSize",
  "setTimes",
  "setTimesAt",
  "createDirectoryAt",
  "linkAt",
  "removeDirectoryAt",
  "renameAt",
  "symlinkAt",
  "unlinkFileAt",
];
const readOnlyDescriptors = new WeakSet();

/**
 * Makes one wasi:filesystem descriptor read-only, and every descriptor
 * opened through it. The shim has no read-only preopens (its descriptors
 * honour whatever flags the guest asks for), so this is done here: the
 * mutating methods become own properties that refuse, and `openAt` refuses
 * create, truncate and write access.
 */
function readOnly(descriptor) {
  if (readOnlyDescriptors.has(descriptor)) return descriptor;
  const proto = Object.getPrototypeOf(descriptor);
  for (const method of MUTATING_DESCRIPTOR_METHODS) {
    Object.defineProperty(descriptor, method, {
      value() {
        throw "not-permitted";
      },
    });
  }
  Object.defineProperty(descriptor, "openAt", {
    value(pathFlags, path, openFlags, descriptorFlags) {
      if (openFlags?.create || openFlags?.truncate || descriptorFlags?.write || descriptorFlags?.mutateDirectory) {
        throw "not-permitted";
      }
      return readOnly(proto.openAt.call(this, pathFlags, path, openFlags, descriptorFlags));
    },
  });
  readOnlyDescriptors.add(descriptor);
  return descriptor;
}

/** The scheme and authority of a wasi:http outgoing-request, as an origin. */
function requestOrigin(request) {
  const scheme = request.scheme();
  const name =
    scheme === undefined || scheme.tag === "HTTPS" ? "https" : scheme.tag === "HTTP" ? "http" : String(scheme.val).toLowerCase();
  const authority = request.authority();
  if (!authority) return undefined;
  try {
    return new URL(`${name}://${authority}`).origin;
  } catch {
    return undefined;
  }
}

/**
 * The import object for one instance of the component: preview2-shim's WASI
 * with `folders` preopened read-only and `writableFolders` read-write, each
 * at its own path (nothing else of the file system), outgoing HTTP only to
 * `backendUrl`'s origin (none at all without one), no environment variables.
 */
export function sandboxImports({ folders = [], writableFolders = [], backendUrl } = {}) {
  const writable = new Set(writableFolders);
  const preopens = Object.fromEntries([...folders, ...writableFolders].map((f) => [f, f]));
  const shim = new WASIShim({ sandbox: { preopens, env: {}, args: ["confab-sync"] } });
  const imports = shim.getImportObject();

  const shimPreopens = imports["wasi:filesystem/preopens"];
  imports["wasi:filesystem/preopens"] = {
    getDirectories: () =>
      shimPreopens.getDirectories().map(([d, path]) => [writable.has(path) ? d : readOnly(d), path]),
  };

  // An unparsable URL allows nothing (the component refuses it anyway, as invalid-config).
  let allowed;
  try {
    allowed = backendUrl === undefined ? undefined : new URL(backendUrl).origin;
  } catch {
    allowed = undefined;
  }
  const shimHandler = imports["wasi:http/outgoing-handler"];
  imports["wasi:http/outgoing-handler"] = {
    handle(request, options) {
      const origin = requestOrigin(request);
      if (allowed === undefined || origin !== allowed) {
        // A wasi:http error-code, as wasmtime's send hook gives it.
        throw { tag: "HTTP-request-denied" };
      }
      return shimHandler.handle(request, options);
    },
  };
  return imports;
}

/**
 * A fresh instance of the component in its own sandbox (see
 * `sandboxImports`). Returns jco's bindings of the `confab:sync/engine`
 * interface (types in ../generated/interfaces/confab-sync-engine.d.ts):
 * errors are thrown as jco's ComponentError; `toSyncError` converts them.
 * For hosts that need more than `SyncSession` gives.
 */
export async function instantiateEngine(grant = {}) {
  const { instantiate, getCoreModule } = await loadComponent();
  const root = await instantiate(getCoreModule, sandboxImports(grant));
  return root.engine;
}

// ---------------------------------------------------------------------------
// The API an extension author uses

/** The real path of `path`, else of its folder joined with its name, else `path`. */
function canonical(path) {
  const absolute = resolve(path);
  try {
    return realpathSync(absolute);
  } catch {
    try {
      return resolve(realpathSync(dirname(absolute)), basename(absolute));
    } catch {
      return absolute;
    }
  }
}

function redactionSettings(r = {}) {
  return {
    enabled: r.enabled ?? false,
    useDefaultPatterns: r.useDefaultPatterns ?? r.use_default_patterns ?? true,
    // Both shapes: camelCase, and confab's config file (`type`, `capture_group`, `field_pattern`).
    patterns: (r.patterns ?? []).map((p) => ({
      name: String(p.name ?? ""),
      pattern: p.pattern ?? undefined,
      kind: String(p.kind ?? p.type ?? ""),
      captureGroup: p.captureGroup ?? p.capture_group ?? undefined,
      fieldPattern: p.fieldPattern ?? p.field_pattern ?? undefined,
    })),
  };
}

function toNumber(v) {
  return typeof v === "bigint" ? Number(v) : v;
}

function errorInfo(variant) {
  const e = SyncError.fromVariant(variant);
  return e.status === undefined ? { code: e.code, message: e.message } : { code: e.code, message: e.message, status: e.status };
}

/** A record with its u64 fields (bigint in jco's bindings) as numbers. */
function numbers(record) {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, toNumber(v)]));
}

function convertReport(r) {
  return {
    ...numbers(r),
    files: r.files.map(numbers),
    failed: r.failed.map((f) => ({ name: f.name, error: errorInfo(f.error) })),
    redactions: r.redactions.map(numbers),
    warnings: [...r.warnings],
  };
}

function requireString(options, name) {
  const v = options[name];
  if (typeof v !== "string" || v === "") {
    throw new TypeError(`SyncSession: option \`${name}\` must be a non-empty string`);
  }
  return v;
}

/** The agents the component syncs, by the name `init` sends. */
export const PROVIDERS = Object.freeze(["claude-code", "codex", "cursor"]);

/** The provider of a transcript, from its path (the component also reads its first line). */
function providerOfPath(transcriptPath) {
  const name = basename(transcriptPath);
  if (name.startsWith("rollout-") || transcriptPath.includes("/.codex/sessions/")) return "codex";
  if (transcriptPath.includes("/agent-transcripts/")) return "cursor";
  return "claude-code";
}

/**
 * The folders a provider's session needs, read-only, as confab-host grants
 * them: Claude Code's transcript folder; Codex's whole `sessions/` tree
 * (a thread's descendants sit in other day folders); Cursor's
 * conversation folder and `~/.cursor/chats/` (for `meta.json`'s title).
 */
function providerFolders(provider, transcriptPath) {
  const folder = dirname(transcriptPath);
  if (provider === "codex") {
    const day = folder.split("/").slice(-3);
    const dated = day.length === 3 && day.every((p) => /^[0-9]+$/.test(p));
    return [dated ? dirname(dirname(dirname(folder))) : folder];
  }
  if (provider === "cursor") {
    const stem = basename(transcriptPath).replace(/\.jsonl$/, "");
    const transcripts = basename(folder) === stem ? dirname(folder) : folder;
    const projects = dirname(dirname(transcripts));
    const chats = join(dirname(projects), "chats");
    return basename(projects) === "projects" && existsSync(chats) ? [folder, realpathSync(chats)] : [folder];
  }
  return [folder];
}

/**
 * One agent session (Claude Code, Codex or Cursor) synced to a Confab backend.
 *
 *   const s = new SyncSession({ backendUrl, apiKey, transcriptPath });
 *   await s.init();
 *   const report = await s.syncAll();   // again whenever the file grows
 *   await s.sendEvent("session_end", hookInput);
 *
 * Every method rejects with a `SyncError` when the component returns an error.
 */
export class SyncSession {
  #config;
  #folder;
  #folders;
  #stateDir;
  #engine;
  #handle;
  #opening;
  #broken;
  #closed = false;

  constructor(options) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("SyncSession: options must be an object");
    }
    const backendUrl = requireString(options, "backendUrl");
    const apiKey = requireString(options, "apiKey");
    const transcriptPath = canonical(requireString(options, "transcriptPath"));
    let provider;
    if (options.provider !== undefined) {
      provider = requireString(options, "provider");
      if (!PROVIDERS.includes(provider)) {
        throw new TypeError(`SyncSession: unknown provider \`${provider}\`: the supported ones are ${PROVIDERS.join(", ")}`);
      }
    }
    this.#folders = providerFolders(provider ?? providerOfPath(transcriptPath), transcriptPath);
    this.#folder = dirname(transcriptPath);
    if (options.stateDir !== undefined) this.#stateDir = resolve(requireString(options, "stateDir"));
    this.#config = {
      backendUrl,
      apiKey,
      externalId: options.externalId ?? basename(transcriptPath).replace(/\.jsonl$/, ""),
      transcriptPath,
      cwd: options.cwd ?? process.cwd(),
      hostname: options.hostname ?? machineHostname(),
      username: options.username ?? machineUsername(),
      redaction: redactionSettings(options.redaction),
      stateDir: undefined, // set once the folder exists (#session)
      provider, // undefined: the component tells it from the path and first line
    };
    Object.defineProperty(this, "transcriptPath", { value: transcriptPath, enumerable: true });
    Object.defineProperty(this, "externalId", { value: this.#config.externalId, enumerable: true });
  }

  /** The transcript's (real) folder, which the component can read. */
  get grantedFolder() {
    return this.#folder;
  }

  /** Every folder the component can read: what the session's provider needs. */
  get grantedFolders() {
    return [...this.#folders];
  }

  async #session() {
    if (this.#closed) throw new Error("SyncSession: the session is closed");
    if (this.#broken) throw new Error("SyncSession: the component trapped earlier; create a new SyncSession", { cause: this.#broken });
    if (!this.#handle) {
      this.#opening ??= (async () => {
        const writableFolders = [];
        if (this.#stateDir !== undefined) {
          mkdirSync(this.#stateDir, { recursive: true });
          this.#config.stateDir = realpathSync(this.#stateDir);
          writableFolders.push(this.#config.stateDir);
        }
        const engine = await instantiateEngine({
          folders: this.#folders,
          writableFolders,
          backendUrl: this.#config.backendUrl,
        });
        const handle = this.#call(() => engine.SyncSession.open(this.#config));
        this.#engine = engine;
        this.#handle = handle;
      })();
      try {
        await this.#opening;
      } finally {
        this.#opening = undefined;
      }
    }
    return this.#handle;
  }

  #call(fn) {
    try {
      return fn();
    } catch (e) {
      const error = toSyncError(e);
      if (error) throw error;
      // Anything else is a trap (or a bug in a host import): the instance
      // is unusable from here on.
      this.#broken = e;
      throw e;
    }
  }

  /**
   * Create the session on the backend or resume it; learns how many lines of
   * each file the backend holds. Idempotent. Resolves to the backend's session id.
   */
  async init() {
    const s = await this.#session();
    return this.#call(() => s.init());
  }

  /**
   * Upload every new complete line of the transcript and of its subagent
   * files (a last line without its newline counts when it is one JSON
   * object or array). Resolves to the report (counts as numbers); files that failed are
   * in `report.failed`, each with `{ code, message }`.
   */
  async syncAll() {
    const s = await this.#session();
    return convertReport(this.#call(() => s.syncAll()));
  }

  /**
   * Send an event, e.g. `session_end`. `payload` is an object (serialized
   * as JSON) or a JSON string; `timestamp` a Date or an RFC 3339 string.
   */
  async sendEvent(eventType, payload = {}, timestamp = new Date()) {
    const s = await this.#session();
    const json = typeof payload === "string" ? payload : JSON.stringify(payload);
    const ts = timestamp instanceof Date ? timestamp.toISOString() : String(timestamp);
    this.#call(() => s.sendEvent(String(eventType), ts, json));
  }

  /** Give a session (this one by default) a summary. */
  async updateSessionSummary(summary, externalId = this.externalId) {
    const s = await this.#session();
    this.#call(() => s.updateSessionSummary(String(externalId), String(summary)));
  }

  /** Link a GitHub pull request, issue or commit URL to this session. */
  async linkGithub(url, title) {
    const s = await this.#session();
    const link = this.#call(() => s.linkGithub(String(url), title ?? undefined));
    return { id: toNumber(link.id), linkType: link.linkType, url: link.url };
  }

  /** The backend's session id once `init` succeeded, else undefined. */
  get sessionId() {
    return this.#handle && !this.#broken ? this.#handle.sessionId() : undefined;
  }

  /** Lines confirmed by the backend, per file known to this session. */
  stats() {
    if (!this.#handle || this.#broken) return [];
    return this.#handle.stats().map((f) => ({ name: f.name, fileType: f.fileType, linesSynced: toNumber(f.linesSynced) }));
  }

  /** Forget the backend session and every resume point; the next `init` starts afresh. */
  reset() {
    if (this.#handle && !this.#broken) this.#handle.reset();
  }

  /** Drop the component instance. The session cannot be used afterwards. */
  close() {
    this.#closed = true;
    const handle = this.#handle;
    this.#handle = undefined;
    this.#engine = undefined;
    handle?.[symbolDispose]?.();
  }

  [symbolDispose]() {
    this.close();
  }
}

/**
 * The external id of the session in folder `dir` whose transcript ends with
 * the message `leafUuid`, or undefined. The component gets `dir` alone,
 * read-only, and no network.
 */
export async function findSessionByLeafUuid(dir, leafUuid, { excludeFile } = {}) {
  const folder = canonical(dir);
  const engine = await instantiateEngine({ folders: [folder] });
  return engine.findSessionByLeafUuid(folder, String(leafUuid), excludeFile ?? undefined) ?? undefined;
}
