#!/usr/bin/env node
// Initial sync of the largest fixture session (8463c716-…: transcript + 2
// subagent files, 3.1 MB) under Node/jco vs under wasmtime, same backend,
// one run of this script:
//
//   node bench/node-vs-wasmtime.mjs [ROUNDS]      (after `npm run build`)
//
// Each round copies the session under a fresh uuid twice (so each sync is
// an initial one), then times, as whole processes, from spawn to exit:
//   wasmtime: target/release/confab-host sync <copy> --backend-url URL --api-key KEY --json
//   node:     node this-script --child URL KEY <copy>   (SyncSession: init + syncAll)
// in alternating order. One warm-up of each first (fills wasmtime's
// compiled-component cache and the page cache; Node has no such cache).
// Prints medians and the ratio node / wasmtime, then, as context, the Node
// figures of the same sync in a process that already did one (warm).

import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const repo = resolve(here, "../../..");
const FIXTURE = "8463c716-a2ea-4c14-9efa-87158ebd9f20";
const KEY = "cfb_rISgKWag-SoryOL4lyuK_v4f5I0aHW1O5c4D8nfR";
const hostBin = process.env.CONFAB_HOST_BIN || join(repo, "target/release/confab-host");

if (process.argv[2] === "--child") {
  // The Node side, in its own process: load, instantiate, init, syncAll of
  // each transcript given, one after the other; the first is the cold one.
  const t0 = performance.now();
  const { SyncSession } = await import("../src/index.js");
  const [backendUrl, apiKey, ...transcripts] = process.argv.slice(3);
  const runs = [];
  for (const transcriptPath of transcripts) {
    const t1 = performance.now();
    const s = new SyncSession({ backendUrl, apiKey, transcriptPath });
    await s.init();
    const t2 = performance.now();
    const r = await s.syncAll();
    const t3 = performance.now();
    s.close();
    if (r.failed.length) throw new Error(JSON.stringify(r.failed));
    runs.push({ lines: r.lines, importMs: runs.length ? 0 : t1 - t0, initMs: t2 - t1, syncMs: t3 - t2 });
  }
  console.log(JSON.stringify(runs));
  process.exit(0);
}

const rounds = Number(process.argv[2] ?? 5);
const tmp = mkdtempSync(join(tmpdir(), "confab-bench-"));

function run(cmd, args, input) {
  return new Promise((resolveRun, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.once("error", reject);
    child.once("exit", (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (code !== 0) reject(new Error(`${cmd} exited ${code}: ${out}`));
      else resolveRun({ ms, out });
    });
  });
}

function freshCopy() {
  const id = randomUUID();
  const folder = join(tmp, id);
  const src = join(repo, "tests/fixtures/claude-code");
  cpSync(join(src, `${FIXTURE}.jsonl`), join(folder, `${id}.jsonl`));
  cpSync(join(src, FIXTURE), join(folder, id), { recursive: true });
  return join(folder, `${id}.jsonl`);
}

const backend = spawn(hostBin, ["backend"], { stdio: ["pipe", "pipe", "inherit"] });
const url = await new Promise((r) => {
  let out = "";
  backend.stdout.on("data", (d) => {
    out += d;
    if (out.includes("\n")) r(out.trim());
  });
});

async function wasmtime() {
  const { ms, out } = await run(hostBin, ["sync", freshCopy(), "--backend-url", url, "--api-key", KEY, "--json"]);
  const r = JSON.parse(out);
  return { ms, lines: r.lines };
}
async function node() {
  const { ms, out } = await run(process.execPath, [fileURLToPath(import.meta.url), "--child", url, KEY, freshCopy()]);
  const [r] = JSON.parse(out);
  return { ms, lines: r.lines, inner: r };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

try {
  await wasmtime();
  await node();
  const w = [];
  const n = [];
  for (let i = 0; i < rounds; i++) {
    const pair = i % 2 ? [await node(), await wasmtime()].reverse() : [await wasmtime(), await node()];
    w.push(pair[0]);
    n.push(pair[1]);
    if (pair[0].lines !== pair[1].lines) throw new Error(`lines differ: ${pair[0].lines} vs ${pair[1].lines}`);
  }
  const wm = median(w.map((x) => x.ms));
  const nm = median(n.map((x) => x.ms));
  const f = (x) => x.toFixed(0);
  console.log(`session ${FIXTURE}: ${w[0].lines} lines, ${rounds} rounds`);
  console.log(`wasmtime (confab-host sync), process: ${w.map((x) => f(x.ms)).join(" ")} ms, median ${f(wm)}`);
  console.log(`node/jco (SyncSession), process:      ${n.map((x) => f(x.ms)).join(" ")} ms, median ${f(nm)}`);
  console.log(
    `node in-process: import ${f(median(n.map((x) => x.inner.importMs)))} ms, init (instantiate + POST init) ` +
      `${f(median(n.map((x) => x.inner.initMs)))} ms, syncAll ${f(median(n.map((x) => x.inner.syncMs)))} ms (medians)`,
  );
  console.log(`ratio node / wasmtime (median process times): ${(nm / wm).toFixed(2)}`);
  // Context: the same initial sync in a process that already synced one
  // (compiled module, tiered-up code): what a long-lived extension host sees.
  const { out } = await run(process.execPath, [fileURLToPath(import.meta.url), "--child", url, KEY, ...Array.from({ length: rounds + 1 }, freshCopy)]);
  const warm = JSON.parse(out).slice(1);
  console.log(
    `node in a warm process: init (instantiate + POST init) ${f(median(warm.map((x) => x.initMs)))} ms, ` +
      `syncAll ${f(median(warm.map((x) => x.syncMs)))} ms (medians of ${warm.length})`,
  );
} finally {
  backend.stdin.end();
  rmSync(tmp, { recursive: true, force: true });
}
