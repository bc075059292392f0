#!/usr/bin/env node
// An editor/agent plugin in miniature: keeps one Claude Code session synced
// while the agent writes it, and says goodbye to the backend on exit.
//
//   node examples/watch-plugin.mjs ~/.claude/projects/<project>/<session>.jsonl \
//        [--backend-url URL] [--api-key KEY] [--debounce MS] [--state-dir DIR]
//
// (else CONFAB_BACKEND_URL / CONFAB_API_KEY). It syncs once at start, then
// watches the transcript's folder (fs.watch, recursive, so the session's
// `<uuid>/subagents/` files count too), syncs after every burst of changes
// (debounced), and on SIGINT/SIGTERM syncs a last time, sends `session_end`
// and exits. Progress goes to stdout, one line per step. With --state-dir
// the engine keeps a checkpoint there (the only folder it may write), so a
// restart resumes without re-reading the transcript.

import { watch } from "node:fs";
import { basename } from "node:path";
import { SyncSession } from "../src/index.js";

function usage(message) {
  console.error(`watch-plugin: ${message}`);
  console.error("usage: watch-plugin.mjs TRANSCRIPT.jsonl [--backend-url URL] [--api-key KEY] [--debounce MS] [--state-dir DIR]");
  process.exit(2);
}

const args = process.argv.slice(2);
let transcriptPath;
let backendUrl = process.env.CONFAB_BACKEND_URL;
let apiKey = process.env.CONFAB_API_KEY;
let debounceMs = 300;
let stateDir;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const value = () => args[++i] ?? usage(`${a} needs a value`);
  if (a === "--backend-url") backendUrl = value();
  else if (a === "--api-key") apiKey = value();
  else if (a === "--debounce") debounceMs = Number(value());
  else if (a === "--state-dir") stateDir = value();
  else if (a.startsWith("-")) usage(`unknown option ${a}`);
  else if (transcriptPath === undefined) transcriptPath = a;
  else usage(`unexpected argument ${a}`);
}
if (!transcriptPath) usage("no transcript given");
if (!backendUrl || !apiKey) usage("no backend: give --backend-url and --api-key (or CONFAB_BACKEND_URL / CONFAB_API_KEY)");
if (!Number.isFinite(debounceMs) || debounceMs < 0) usage("--debounce must be a number of milliseconds");

const log = (line) => console.log(`[confab ${new Date().toISOString().slice(11, 23)}] ${line}`);
const kib = (n) => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`);

const session = new SyncSession({ backendUrl, apiKey, transcriptPath, stateDir });
const id = session.externalId;

// One sync at a time: a change during a sync asks for one more afterwards.
let running = null;
let again = false;
async function syncNow(why) {
  if (running) {
    again = true;
    return running;
  }
  running = (async () => {
    do {
      again = false;
      const started = performance.now();
      try {
        const r = await session.syncAll();
        const ms = Math.round(performance.now() - started);
        if (r.lines > 0 || r.failed.length > 0) {
          const files = r.files.filter((f) => f.linesSynced > 0).map((f) => `${f.name} +${f.linesSynced}`);
          log(`${why}: synced ${r.lines} lines (${kib(r.bytes)}, ${r.chunks} chunks) in ${ms} ms${files.length ? `: ${files.join(", ")}` : ""}`);
        } else {
          log(`${why}: up to date (${ms} ms)`);
        }
        for (const f of r.failed) log(`  ${f.name} failed: ${f.error.code}: ${f.error.message}`);
        for (const w of r.warnings) log(`  warning: ${w}`);
      } catch (e) {
        log(`${why}: sync failed: ${e.code ?? e.name}: ${e.message}`);
      }
    } while (again);
  })();
  try {
    await running;
  } finally {
    running = null;
  }
}

try {
  const sessionId = await session.init();
  log(`session ${id} -> ${sessionId} on ${backendUrl} (the component reads only ${session.grantedFolder})`);
} catch (e) {
  log(`init failed: ${e.code ?? e.name}: ${e.message}`);
  process.exit(1);
}
await syncNow("start");

// Watch the folder rather than the file: Claude Code may create the
// transcript and its subagents folder after we start.
let timer;
const base = basename(session.transcriptPath);
const watcher = watch(session.grantedFolder, { recursive: true }, (_event, name) => {
  if (name && name !== base && !name.startsWith(`${id}/`)) return;
  clearTimeout(timer);
  timer = setTimeout(() => syncNow("change"), debounceMs);
});
log(`watching ${session.transcriptPath} (debounce ${debounceMs} ms); Ctrl-C to end the session`);

let ending = false;
async function end(signal) {
  if (ending) return;
  ending = true;
  watcher.close();
  clearTimeout(timer);
  await syncNow(signal);
  try {
    await session.sendEvent("session_end", { reason: "other", source: "watch-plugin", signal, transcript_path: session.transcriptPath });
    log("sent session_end");
  } catch (e) {
    log(`session_end failed: ${e.code ?? e.name}: ${e.message}`);
    process.exitCode = 1;
  }
  session.close();
  log("bye");
}
process.on("SIGINT", () => end("SIGINT"));
process.on("SIGTERM", () => end("SIGTERM"));
