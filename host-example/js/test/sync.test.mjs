// End-to-end tests of the JavaScript embedding: the freshly built
// confab_sync.wasm, transpiled by jco, run on Node through preview2-shim,
// against the project's local backend (`confab-host backend --mirror DIR`),
// whose mirror holds exactly the bytes the backend stored.
//
// Inputs: ../../target/wasm32-wasip2/release/confab_sync.wasm (or
// $CONFAB_SYNC_WASM) and ../../target/release/confab-host (or
// $CONFAB_HOST_BIN), both built by scripts/test-all before this runs.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir, userInfo } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { build, defaultWasm, generatedDir, packageDir } from "../scripts/build.mjs";

const repo = resolve(packageDir, "../..");
const fixtures = join(repo, "tests/fixtures/claude-code");
const SESSIONS = ["258c7280-ae70-4798-800f-63464d01a85d", "8463c716-a2ea-4c14-9efa-87158ebd9f20"];
// DEFAULT_LOCAL_API_KEY in host-example/src/backend/mod.rs.
const KEY = "cfb_rISgKWag-SoryOL4lyuK_v4f5I0aHW1O5c4D8nfR";
const wasmPath = process.env.CONFAB_SYNC_WASM || defaultWasm;
const hostBin = process.env.CONFAB_HOST_BIN || join(repo, "target/release/confab-host");

let lib; // ../src/index.js, imported after the build
let tmp;
let mirror;
let backend; // { child, url }
const synced = new Map(); // external id -> { session, folder }

// --- helpers ---------------------------------------------------------------

function startBackend(mirrorDir) {
  const child = spawn(hostBin, ["backend", "--mirror", mirrorDir], { stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolveUrl, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the backend printed no URL in 20 s: ${out}`)), 20_000);
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the backend exited (${code}) before printing its URL`)));
    child.stdout.on("data", (d) => {
      out += d;
      const nl = out.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        resolveUrl({ child, url: out.slice(0, nl).trim() });
      }
    });
  });
}

async function stopBackend(b) {
  if (!b || b.child.exitCode !== null) return;
  const exited = new Promise((r) => b.child.once("exit", r));
  b.child.stdin.end(); // `backend` serves until its stdin closes
  const t = setTimeout(() => b.child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(t);
}

/** Copies fixture session `id` (transcript + `<id>/subagents/`) into `folder`, as `asId`. */
function copySession(id, folder, asId = id) {
  mkdirSync(folder, { recursive: true });
  cpSync(join(fixtures, `${id}.jsonl`), join(folder, `${asId}.jsonl`));
  cpSync(join(fixtures, id), join(folder, asId), { recursive: true });
}

/** The files of session `id` in `folder`: name -> path. */
function sessionFiles(folder, id) {
  const files = new Map([[`${id}.jsonl`, join(folder, `${id}.jsonl`)]]);
  const sub = join(folder, id, "subagents");
  if (existsSync(sub)) {
    for (const name of readdirSync(sub).filter((n) => n.endsWith(".jsonl"))) files.set(name, join(sub, name));
  }
  return files;
}

const lineCount = (buf) => buf.reduce((n, b) => n + (b === 0x0a ? 1 : 0), 0);
const upToLastNewline = (buf) => buf.subarray(0, buf.lastIndexOf(0x0a) + 1);

/** The mirror of session `id` holds exactly `expected` (name -> bytes), nothing else. */
function assertMirror(id, expected) {
  const dir = join(mirror, id);
  assert.deepEqual(readdirSync(dir).sort(), [...expected.keys()].sort(), `mirrored files of ${id}`);
  for (const [name, bytes] of expected) {
    const stored = readFileSync(join(dir, name));
    assert.ok(stored.equals(bytes), `${id}/${name}: mirror (${stored.length} bytes) != source (${bytes.length} bytes)`);
  }
}

const sourceBytes = (files) => new Map([...files].map(([name, path]) => [name, readFileSync(path)]));

function jsonLine(sessionId, text) {
  return (
    JSON.stringify({
      type: "user",
      uuid: randomUUID(),
      sessionId,
      timestamp: new Date().toISOString(),
      message: { role: "user", content: text },
    }) + "\n"
  );
}

/** The backend's persisted state (mirror/state.json), once `pred` holds for it. */
async function backendState(pred, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let state;
    try {
      state = readFileSync(join(mirror, "state.json"), "utf8");
    } catch {}
    if (state !== undefined && pred(state)) return state;
    if (Date.now() > deadline) assert.fail(`the backend state never matched: ${state?.slice(0, 300)}`);
    await sleep(50);
  }
}

/** A small transcript whose last line has uuid `leaf`. */
function writeSmallSession(folder, id, leaf) {
  mkdirSync(folder, { recursive: true });
  const lines = [jsonLine(id, "first"), jsonLine(id, "second")];
  lines.push(JSON.stringify({ type: "assistant", uuid: leaf, sessionId: id, message: { role: "assistant", content: "leaf" } }) + "\n");
  writeFileSync(join(folder, `${id}.jsonl`), lines.join(""));
}

// --- setup -------------------------------------------------------------------

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "confab-js-test-"));
  mirror = join(tmp, "mirror");
  build({ wasm: wasmPath, quiet: true });
  lib = await import("../src/index.js");
  backend = await startBackend(mirror);
});

after(async () => {
  for (const { session } of synced.values()) session.close();
  await stopBackend(backend);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// --- tests -------------------------------------------------------------------

test("npm run build transpiles the freshly built component, with TypeScript declarations", () => {
  const info = JSON.parse(readFileSync(join(generatedDir, "build-info.json"), "utf8"));
  const sha = createHash("sha256").update(readFileSync(wasmPath)).digest("hex");
  assert.equal(info.sha256, sha, "generated/ comes from the component built now");
  assert.equal(info.component, wasmPath);
  const engineTypes = readFileSync(join(generatedDir, "interfaces/confab-sync-engine.d.ts"), "utf8");
  assert.match(engineTypes, /export class SyncSession/);
  assert.match(engineTypes, /syncAll\(\): SyncReport;/);
  assert.match(engineTypes, /export function findSessionByLeafUuid\(/);
  const types = readFileSync(join(generatedDir, "interfaces/confab-sync-types.d.ts"), "utf8");
  assert.match(types, /tag: 'unauthorized'/);
  assert.match(backend.url, /^http:\/\/127\.0\.0\.1:\d+$/);
});

test("an extension written in TypeScript type-checks against the declarations", () => {
  // test/types/consumer.ts uses src/index.d.ts and, through it, jco's output.
  const tsc = join(packageDir, "node_modules/typescript/bin/tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", join(packageDir, "test/types/tsconfig.json")], { encoding: "utf8" });
  assert.equal(r.status, 0, `tsc: ${r.stdout}${r.stderr}`);
});

test("syncs two fixture sessions; the backend stores transcript and subagents byte for byte", async () => {
  const folder = join(tmp, "project");
  for (const id of SESSIONS) copySession(id, folder);
  for (const id of SESSIONS) {
    const files = sessionFiles(folder, id);
    assert.ok(files.size >= 3, `${id} has subagent files`);
    const source = sourceBytes(files);
    for (const [name, bytes] of source) assert.equal(bytes.at(-1), 0x0a, `${name} ends with a complete line`);

    const session = new lib.SyncSession({ backendUrl: backend.url, apiKey: KEY, transcriptPath: join(folder, `${id}.jsonl`) });
    assert.equal(session.externalId, id);
    assert.equal(session.grantedFolder, folder);
    const sessionId = await session.init();
    assert.match(sessionId, /^[0-9a-f-]{36}$/);
    assert.equal(session.sessionId, sessionId);

    const report = await session.syncAll();
    assert.deepEqual(report.failed, []);
    assert.deepEqual(report.files.map((f) => f.name).sort(), [...files.keys()].sort());
    let total = 0;
    for (const f of report.files) {
      const lines = lineCount(source.get(f.name));
      total += lines;
      assert.equal(f.linesSynced, lines, `${f.name}: lines uploaded`);
      assert.equal(f.totalLines, lines, `${f.name}: lines held by the backend`);
      assert.equal(f.fileType, f.name === `${id}.jsonl` ? "transcript" : "agent");
      assert.equal(typeof f.linesSynced, "number");
    }
    assert.equal(report.lines, total);
    assert.ok(report.chunks >= files.size);
    assert.ok(report.wireBytes > 0 && report.wireBytes < report.bytes, "bodies are compressed");
    assertMirror(id, source);
    assert.deepEqual(
      session.stats().map((s) => [s.name, s.linesSynced]).sort(),
      [...source].map(([name, bytes]) => [name, lineCount(bytes)]).sort(),
    );
    synced.set(id, { session, folder });
  }
});

test("incremental sync uploads only the appended complete lines; the mirror equals the source", async () => {
  const id = SESSIONS[0];
  const { session, folder } = synced.get(id);
  const files = sessionFiles(folder, id);
  const transcript = files.get(`${id}.jsonl`);
  const [agentName, agentPath] = [...files].find(([name]) => name.startsWith("agent-") && !name.includes("compact"));

  const added = [jsonLine(id, "one"), jsonLine(id, "two"), jsonLine(id, "three")].join("");
  const addedAgent = [jsonLine(id, "agent one"), jsonLine(id, "agent two")].join("");
  const partial = jsonLine(id, "half written");
  const cut = Math.floor(partial.length / 2);
  appendFileSync(transcript, added + partial.slice(0, cut));
  appendFileSync(agentPath, addedAgent);

  let report = await session.syncAll();
  assert.deepEqual(report.failed, []);
  assert.equal(report.lines, 5, "3 transcript lines + 2 agent lines, not the half line");
  const byName = new Map(report.files.map((f) => [f.name, f]));
  assert.equal(byName.get(`${id}.jsonl`).linesSynced, 3);
  assert.equal(byName.get(agentName).linesSynced, 2);
  for (const [name, f] of byName) {
    if (name !== `${id}.jsonl` && name !== agentName) assert.equal(f.linesSynced, 0, `${name} unchanged`);
  }
  // `bytes` counts line data without the newlines.
  assert.equal(report.bytes, Buffer.byteLength(added) + Buffer.byteLength(addedAgent) - 5, "only the new lines' bytes");
  const expected = sourceBytes(files);
  expected.set(`${id}.jsonl`, upToLastNewline(expected.get(`${id}.jsonl`)));
  assertMirror(id, expected);

  // The writer finishes the line.
  appendFileSync(transcript, partial.slice(cut));
  report = await session.syncAll();
  assert.equal(report.lines, 1);
  assert.equal(report.bytes, Buffer.byteLength(partial) - 1);
  assertMirror(id, sourceBytes(files));

  report = await session.syncAll();
  assert.equal(report.lines, 0);
  assert.equal(report.chunks, 0);

  // A new instance (a restarted extension) resumes from the backend's state.
  const again = new lib.SyncSession({ backendUrl: backend.url, apiKey: KEY, transcriptPath: transcript });
  try {
    await again.init();
    report = await again.syncAll();
    assert.equal(report.lines, 0, "nothing is uploaded twice");
    assert.deepEqual(report.failed, []);
  } finally {
    again.close();
  }
  assertMirror(id, sourceBytes(files));
});

test("with stateDir, the engine keeps a checkpoint there, and writes nothing else", async () => {
  const id = randomUUID();
  const folder = join(tmp, "stateful");
  copySession(SESSIONS[0], folder, id);
  const files = sessionFiles(folder, id);
  const stateDir = join(tmp, "state", "confab"); // created by the package
  const listing = (dir) => readdirSync(dir, { recursive: true }).sort();
  const before = listing(folder);
  const options = { backendUrl: backend.url, apiKey: KEY, transcriptPath: join(folder, `${id}.jsonl`), stateDir };

  const first = new lib.SyncSession(options);
  await first.init();
  const report = await first.syncAll();
  first.close();
  assert.deepEqual(report.failed, []);
  assert.ok(report.lines > 1800);
  const checkpoints = readdirSync(stateDir)
    .map((name) => {
      try {
        return JSON.parse(readFileSync(join(stateDir, name), "utf8"));
      } catch {
        return undefined;
      }
    })
    .filter((c) => c?.external_id === id);
  assert.equal(checkpoints.length, 1, `a checkpoint for ${id} in ${listing(stateDir)}`);
  assert.deepEqual(Object.keys(checkpoints[0].files).sort(), [...files.keys()].sort());
  assert.deepEqual(listing(folder), before, "the transcript folder stays read-only");

  // A new session (a restarted extension) resumes from it.
  const second = new lib.SyncSession(options);
  await second.init();
  assert.equal((await second.syncAll()).lines, 0);
  appendFileSync(files.get(`${id}.jsonl`), jsonLine(id, "after the restart"));
  const more = await second.syncAll();
  second.close();
  assert.equal(more.lines, 1);
  assertMirror(id, sourceBytes(files));
});

test("an error of the component is a JS exception with the sync-error case and its message", async () => {
  const { folder } = synced.get(SESSIONS[1]);
  const transcriptPath = join(folder, `${SESSIONS[1]}.jsonl`);

  // A well-formed key the backend does not know.
  const wrongKey = "cfb_" + "Zq-9_".repeat(8);
  assert.match(wrongKey, /^cfb_[A-Za-z0-9_-]{40}$/);
  const wrong = new lib.SyncSession({ backendUrl: backend.url, apiKey: wrongKey, transcriptPath });
  await assert.rejects(wrong.init(), (e) => {
    assert.ok(e instanceof lib.SyncError && e instanceof Error);
    assert.equal(e.name, "SyncError");
    assert.equal(e.code, "unauthorized");
    assert.match(e.message, /refused the API key \(401 on \/api\/v1\/sync\/init\)/);
    assert.ok(!e.message.includes(wrongKey), "the message never holds the key");
    assert.deepEqual(e.cause.payload, { tag: "unauthorized", val: e.message }, "the WIT variant as jco lifted it");
    return true;
  });
  wrong.close();

  // A malformed key never leaves the component: invalid-config from `open`.
  const malformed = new lib.SyncSession({ backendUrl: backend.url, apiKey: "cfb_short", transcriptPath });
  await assert.rejects(malformed.init(), (e) => e instanceof lib.SyncError && e.code === "invalid-config" && /key/i.test(e.message));

  // So is a URL that is not one.
  const badUrl = new lib.SyncSession({ backendUrl: "not a url", apiKey: KEY, transcriptPath });
  await assert.rejects(badUrl.init(), (e) => e instanceof lib.SyncError && e.code === "invalid-config");

  // sync-all before init.
  const early = new lib.SyncSession({ backendUrl: backend.url, apiKey: KEY, transcriptPath });
  await assert.rejects(early.syncAll(), (e) => e.code === "not-initialized" && /init/.test(e.message));
  early.close();

  // Options checked in JS before anything runs.
  assert.throws(() => new lib.SyncSession({ backendUrl: backend.url, transcriptPath }), TypeError);
});

test("with redaction on, no planted secret is stored: not in lines, metadata, the summary PATCH or events", async () => {
  // The corpus of the Rust tests (every kind the default patterns know).
  const corpus = JSON.parse(readFileSync(join(repo, "tests/fixtures/secrets/planted.json"), "utf8"));
  assert.ok(corpus.length >= 40, `${corpus.length} planted secrets`);
  const all = corpus.map((p) => p.text).join("\n");
  const folder = join(tmp, "planted");
  const earlier = randomUUID();
  writeSmallSession(folder, earlier, "leaf-planted-js");
  const id = randomUUID();
  const lines = [jsonLine(id, `${all}\nplease deploy`)];
  for (const p of corpus) lines.push(jsonLine(id, `here it is: ${p.text}`));
  lines.push(jsonLine(id, "a line with nothing secret in it"));
  lines.push(JSON.stringify({ type: "summary", summary: all }) + "\n");
  lines.push(JSON.stringify({ type: "summary", summary: all, leafUuid: "leaf-planted-js" }) + "\n");
  writeFileSync(join(folder, `${id}.jsonl`), lines.join(""));
  const redaction = { enabled: true, useDefaultPatterns: true, patterns: [] };
  const first = new lib.SyncSession({ backendUrl: backend.url, apiKey: KEY, transcriptPath: join(folder, `${earlier}.jsonl`), redaction });
  await first.init();
  await first.syncAll();
  first.close();
  const session = new lib.SyncSession({ backendUrl: backend.url, apiKey: KEY, transcriptPath: join(folder, `${id}.jsonl`), redaction });
  await session.init();
  const report = await session.syncAll();
  assert.deepEqual(report.failed, []);
  assert.deepEqual(report.warnings, []);
  await session.sendEvent("session_end", { reason: "exit", note: all });
  session.close();

  const state = await backendState((s) => s.includes(id) && s.includes("session_end") && s.includes("[REDACTED:"));
  const stored = readFileSync(join(mirror, id, `${id}.jsonl`), "utf8");
  for (const p of corpus) {
    const escaped = JSON.stringify(p.secret).slice(1, -1);
    for (const where of [["stored lines", stored], ["backend state", state]]) {
      assert.ok(!where[1].includes(p.secret) && !where[1].includes(escaped), `${p.kind} found in the ${where[0]}`);
    }
  }
  const held = stored.split("\n").filter((l) => l !== "");
  assert.equal(held.length, lines.length);
  for (const l of held) JSON.parse(l); // every stored line still parses
  assert.equal(held.at(-3) + "\n", lines.at(-3), "a line with no secret is byte-identical");
});

test("errors and failed files never show the key, wherever it lands", async () => {
  const folder = join(tmp, "keyleak");
  mkdirSync(folder, { recursive: true });
  const hidden = (text) => {
    for (let i = 0; i + 8 <= KEY.length; i++) assert.ok(!text.includes(KEY.slice(i, i + 8)), text);
    assert.match(text, /\[API key\]/);
  };
  // The key where the transcript's name goes: refused as a config error...
  const txt = join(folder, `${KEY}.txt`);
  writeFileSync(txt, jsonLine("x", "hello"));
  await assert.rejects(
    (async () => {
      const s = new lib.SyncSession({ backendUrl: backend.url, apiKey: KEY, transcriptPath: txt, externalId: "leak-1" });
      await s.init();
    })(),
    (e) => {
      assert.ok(e instanceof lib.SyncError, String(e));
      assert.equal(e.code, "invalid-config");
      hidden(e.message);
      return true;
    },
  );
  // ...and, as a missing .jsonl file, a failed file of the report.
  const s = new lib.SyncSession({ backendUrl: backend.url, apiKey: KEY, transcriptPath: join(folder, `${KEY}.jsonl`), externalId: "leak-2" });
  await s.init();
  const report = await s.syncAll();
  s.close();
  assert.equal(report.failed.length, 1);
  hidden(report.failed[0].error.message);
});

// A server (in a child process: the component's calls block this thread)
// that answers every request with 200 and a 600 MiB body, streamed or
// declared by Content-Length; it prints its port, then how much it sent.
const HUGE_SERVER = `
const http = require("node:http");
const declared = process.argv[1] === "declared";
let sent = 0;
const server = http.createServer((req, res) => {
  req.resume();
  const headers = { "content-type": "application/json" };
  if (declared) headers["content-length"] = String(600 << 20);
  res.writeHead(200, headers);
  const chunk = Buffer.alloc(1 << 20, 0x20);
  res.on("error", () => {});
  res.on("close", () => console.log("sent " + sent));
  const pump = () => {
    while (sent < (600 << 20)) {
      sent += chunk.length;
      if (!res.write(chunk)) return res.once("drain", pump);
    }
    res.end();
  };
  pump();
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

test("an answer over 32 MiB is cut off with an http error, not read whole", { timeout: 120_000 }, async () => {
  for (const mode of ["streamed", "declared"]) {
    const child = spawn(process.execPath, ["-e", HUGE_SERVER, mode], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    while (!out.includes("\n")) await sleep(20);
    const url = `http://127.0.0.1:${out.trim()}`;
    const folder = join(tmp, `huge-${mode}`);
    mkdirSync(folder, { recursive: true });
    const path = join(folder, `${randomUUID()}.jsonl`);
    writeFileSync(path, jsonLine("x", "hello"));
    const s = new lib.SyncSession({ backendUrl: url, apiKey: KEY, transcriptPath: path });
    try {
      await assert.rejects(s.init(), (e) => {
        assert.ok(e instanceof lib.SyncError, String(e));
        assert.equal(e.code, "http", `${mode}: ${e.message}`);
        assert.ok(!e.message.includes("\n"), e.message);
        return true;
      });
    } finally {
      s.close();
      child.kill();
    }
  }
});

test("sendEvent delivers session_end with its payload", async () => {
  const id = SESSIONS[1];
  const { session } = synced.get(id);
  const nonce = randomUUID();
  assert.equal(await session.sendEvent("session_end", { reason: "other", nonce }), undefined);
  const state = JSON.parse(await backendState((s) => s.includes(nonce)));
  const events = Object.values(state.users)
    .flatMap((sessions) => Object.values(sessions))
    .filter((s) => s.external_id === id)
    .flatMap((s) => s.events);
  const event = events.find((e) => e.payload?.nonce === nonce);
  assert.ok(event, "the event is stored for this session");
  assert.equal(event.event_type, "session_end");
});

/** Every stored session object (one with an `external_id`) in the backend's state, however it nests them. */
function storedSessions(state) {
  const found = [];
  const walk = (v) => {
    if (v === null || typeof v !== "object") return;
    if (typeof v.external_id === "string" && "init_metadata" in v) found.push(v);
    else for (const child of Object.values(v)) walk(child);
  };
  walk(state);
  return found;
}

test("hostname and username default to this machine's, and the options override them", async () => {
  const folder = join(tmp, "whoami");
  const [plain, named] = [randomUUID(), randomUUID()];
  for (const id of [plain, named]) writeSmallSession(folder, id, `leaf-${id}`);
  const open = (id, extra) =>
    new lib.SyncSession({ backendUrl: backend.url, apiKey: KEY, transcriptPath: join(folder, `${id}.jsonl`), ...extra });
  for (const [id, extra] of [[plain, {}], [named, { hostname: "build-box-7", username: "ada" }]]) {
    const session = open(id, extra);
    await session.init();
    session.close();
  }
  const state = JSON.parse(await backendState((s) => s.includes(plain) && s.includes(named)));
  const metadata = (id) => {
    const matches = storedSessions(state).filter((s) => s.external_id === id);
    assert.equal(matches.length, 1, `one stored session ${id}`);
    return matches[0].init_metadata;
  };
  const machine = hostname();
  const user = userInfo().username;
  assert.ok(machine && user, "this machine has a hostname and a user name to compare with");
  assert.equal(metadata(plain).hostname, machine);
  assert.equal(metadata(plain).username, user);
  assert.equal(metadata(named).hostname, "build-box-7");
  assert.equal(metadata(named).username, "ada");
});

test("the component reads nothing outside the folder it was granted", async () => {
  const granted = join(tmp, "granted");
  const outside = join(tmp, "outside");
  const [inId, inLeaf, outId, outLeaf] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  writeSmallSession(granted, inId, inLeaf);
  writeSmallSession(outside, outId, outLeaf);
  // Ways out of `granted` that resolve through its preopen: symlinks (absolute
  // and relative) and `..`; the shim must refuse them all.
  symlinkSync(join(outside, `${outId}.jsonl`), join(granted, `${randomUUID()}-abs.jsonl`));
  symlinkSync(`../outside/${outId}.jsonl`, join(granted, `${randomUUID()}-rel.jsonl`));

  // The high-level function grants the folder it searches: found.
  assert.equal(await lib.findSessionByLeafUuid(outside, outLeaf), outId);

  const engine = await lib.instantiateEngine({ folders: [granted], backendUrl: backend.url });
  assert.equal(engine.findSessionByLeafUuid(granted, inLeaf, undefined), inId, "inside: found");
  assert.equal(engine.findSessionByLeafUuid(outside, outLeaf, undefined), undefined, "outside: not visible");
  assert.equal(engine.findSessionByLeafUuid(`${granted}/../outside`, outLeaf, undefined), undefined, "via ..: not visible");

  const open = (transcriptPath, externalId) => {
    try {
      return engine.SyncSession.open({
        backendUrl: backend.url,
        apiKey: KEY,
        externalId,
        transcriptPath,
        cwd: granted,
        redaction: { enabled: false, useDefaultPatterns: true, patterns: [] },
      });
    } catch (e) {
      throw lib.toSyncError(e) ?? e;
    }
  };
  const syncOnce = (transcriptPath) => {
    const externalId = randomUUID();
    const s = open(transcriptPath, externalId);
    s.init();
    const report = s.syncAll();
    return { externalId, report };
  };

  // Control: the granted transcript syncs in this very instance.
  const inside = syncOnce(join(granted, `${inId}.jsonl`));
  assert.deepEqual(inside.report.failed, []);
  assert.equal(inside.report.lines, 3n);

  // The first is refused by the component itself (no preopen holds it); the
  // others resolve through the granted preopen and are refused by the
  // shim's path resolution (`not-permitted`).
  const escapes = [
    [join(outside, `${outId}.jsonl`), /not preopened/],
    [`${granted}/../outside/${outId}.jsonl`, /denied by the sandbox/],
    ...readdirSync(granted)
      .filter((n) => /-(abs|rel)\.jsonl$/.test(n))
      .map((n) => [join(granted, n), /denied by the sandbox/]),
  ];
  assert.equal(escapes.length, 4);
  for (const [path, why] of escapes) {
    const { externalId, report } = syncOnce(path);
    assert.equal(report.lines, 0n, `${path}: nothing read`);
    assert.equal(report.failed.length, 1, `${path}: the transcript fails`);
    assert.equal(report.failed[0].error.tag, "io", `${path}: ${JSON.stringify(report.failed[0].error)}`);
    assert.match(report.failed[0].error.val, why);
    assert.ok(!existsSync(join(mirror, externalId)), `${path}: nothing stored`);
  }
});

test("the sandbox's preopen is read-only and HTTP goes only to the backend's origin", async () => {
  const folder = join(tmp, "readonly");
  const id = randomUUID();
  writeSmallSession(folder, id, randomUUID());
  const imports = lib.sandboxImports({ folders: [folder], backendUrl: backend.url });
  const preopens = imports["wasi:filesystem/preopens"].getDirectories();
  assert.deepEqual(preopens.map(([, guest]) => guest), [folder], "one preopen: the folder, at its own path");
  const [[dir]] = preopens;
  const noFollow = { symlinkFollow: false };

  const file = dir.openAt(noFollow, `${id}.jsonl`, {}, { read: true });
  assert.equal(Number(file.stat().size), readFileSync(join(folder, `${id}.jsonl`)).length, "reading works");
  const refused = (e) => e === "not-permitted";
  assert.throws(() => dir.openAt(noFollow, "new.txt", { create: true }, { read: true, write: true }), refused);
  assert.throws(() => dir.openAt(noFollow, `${id}.jsonl`, {}, { write: true }), refused);
  assert.throws(() => dir.openAt(noFollow, `${id}.jsonl`, { truncate: true }, { read: true }), refused);
  assert.throws(() => dir.unlinkFileAt(`${id}.jsonl`), refused);
  assert.throws(() => dir.createDirectoryAt("sub"), refused);
  assert.throws(() => file.write(new Uint8Array([0x41]), 0n), refused);
  assert.throws(() => file.setSize(0n), refused);
  assert.ok(!existsSync(join(folder, "new.txt")) && !existsSync(join(folder, "sub")));
  assert.equal(lineCount(readFileSync(join(folder, `${id}.jsonl`))), 3, "the transcript is untouched");

  // What the shim alone would allow (why src/index.js wraps it): its
  // preopens are writable.
  const { WASIShim } = await import("@bytecodealliance/preview2-shim/instantiation");
  const [[plainDir]] = new WASIShim({ sandbox: { preopens: { [folder]: folder } } })
    .getImportObject()
    ["wasi:filesystem/preopens"].getDirectories();
  plainDir.openAt(noFollow, "new.txt", { create: true }, { read: true, write: true });
  assert.ok(existsSync(join(folder, "new.txt")), "the bare shim lets the guest create files");

  // HTTP: the shim sends anywhere; the wrapped handler refuses other origins.
  const { OutgoingRequest, Fields } = imports["wasi:http/types"];
  const request = (scheme, authority) => {
    const r = new OutgoingRequest(new Fields());
    r.setScheme(scheme);
    r.setAuthority(authority);
    return r; // no path: the shim itself would refuse to send it
  };
  const port = new URL(backend.url).port;
  const handler = imports["wasi:http/outgoing-handler"];
  for (const [scheme, authority] of [
    [{ tag: "HTTP" }, "127.0.0.1:9"],
    [{ tag: "HTTPS" }, `127.0.0.1:${port}`],
    [{ tag: "HTTP" }, `localhost:${port}`],
    [{ tag: "HTTP" }, "example.com"],
  ]) {
    assert.throws(() => handler.handle(request(scheme, authority)), (e) => e?.tag === "HTTP-request-denied", authority);
  }
  // The backend's origin passes the check and reaches the shim, which then
  // refuses the path-less request itself.
  assert.throws(() => handler.handle(request({ tag: "HTTP" }, `127.0.0.1:${port}`)), (e) => e?.tag === "HTTP-request-URI-invalid");
});

test("a component whose sandbox allows another origin cannot reach the backend", { timeout: 120_000 }, async () => {
  const folder = join(tmp, "http");
  const id = randomUUID();
  writeSmallSession(folder, id, randomUUID());
  // The grant names another origin than the URL the session is configured with.
  const engine = await lib.instantiateEngine({ folders: [folder], backendUrl: "http://127.0.0.1:9" });
  const s = engine.SyncSession.open({
    backendUrl: backend.url,
    apiKey: KEY,
    externalId: id,
    transcriptPath: join(folder, `${id}.jsonl`),
    cwd: folder,
    redaction: { enabled: false, useDefaultPatterns: true, patterns: [] },
  });
  let error;
  try {
    s.init();
  } catch (e) {
    error = lib.toSyncError(e);
  }
  assert.ok(error, "init fails");
  assert.equal(error.code, "transport");
  assert.match(error.message, /refused this request/);
  const state = readFileSync(join(mirror, "state.json"), "utf8");
  assert.ok(!state.includes(id), "the backend never heard of the session");
});

test("the example plugin syncs on change and sends session_end on SIGINT", { timeout: 120_000 }, async () => {
  const id = randomUUID();
  const folder = join(tmp, "plugin");
  copySession(SESSIONS[1], folder, id);
  const files = sessionFiles(folder, id);
  const child = spawn(
    process.execPath,
    [join(packageDir, "examples/watch-plugin.mjs"), join(folder, `${id}.jsonl`), "--backend-url", backend.url, "--api-key", KEY, "--debounce", "100", "--state-dir", join(tmp, "plugin-state")],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  const waitFor = async (re, what) => {
    const deadline = Date.now() + 30_000;
    while (!re.test(out)) {
      if (child.exitCode !== null) assert.fail(`the plugin exited before ${what}:\n${out}`);
      if (Date.now() > deadline) assert.fail(`no ${what} in 30 s:\n${out}`);
      await sleep(25);
    }
  };
  try {
    await waitFor(/start: synced \d+ lines/, "initial sync");
    await waitFor(/watching /, "watch");
    assertMirror(id, sourceBytes(files));
    appendFileSync(files.get(`${id}.jsonl`), jsonLine(id, "typed while watched") + jsonLine(id, "and another"));
    await waitFor(/change: synced 2 lines/, "sync after the change");
    assertMirror(id, sourceBytes(files));
    child.kill("SIGINT");
    const { code } = await exited;
    assert.equal(code, 0, out);
    assert.match(out, /sent session_end/);
    assert.ok(readdirSync(join(tmp, "plugin-state")).length > 0, "a checkpoint in --state-dir");
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
  const state = JSON.parse(await backendState((s) => s.includes(id) && s.includes("watch-plugin")));
  const stored = Object.values(state.users).flatMap((u) => Object.values(u)).find((s) => s.external_id === id);
  assert.ok(stored.events.some((e) => e.event_type === "session_end" && e.payload.source === "watch-plugin"));
});

test("provider: a Codex subagent's rollout syncs its root's session, with the sessions tree granted", async () => {
  const codexFixtures = join(repo, "tests/fixtures/codex/sessions");
  const sessions = join(tmp, "codex-home", ".codex", "sessions");
  cpSync(codexFixtures, sessions, { recursive: true });
  const day = join(sessions, "2026/03/12");
  const root = "019ce3fb-1087-7980-8f92-8d0171aaea6a";
  const names = readdirSync(day).filter((n) => n.includes(root) || n.includes("019ce419-"));
  assert.equal(names.length, 4, "the root and its three subagents");
  const kid = join(day, names.find((n) => n.includes("019ce419-22de-")));
  assert.throws(
    () => new lib.SyncSession({ backendUrl: backend.url, apiKey: KEY, transcriptPath: kid, provider: "opencode" }),
    /claude-code, codex, cursor/,
  );
  const s = new lib.SyncSession({ backendUrl: backend.url, apiKey: KEY, transcriptPath: kid, provider: "codex" });
  try {
    assert.deepEqual(s.grantedFolders, [realpathSync(sessions)]);
    await s.init();
    const report = await s.syncAll();
    assert.deepEqual(report.failed, []);
    assert.equal(report.files.length, 4);
  } finally {
    s.close();
  }
  // The mirror keeps other providers' sessions under ~<provider>/.
  const dir = join(mirror, "~codex", root);
  await backendState((st) => st.includes(root));
  assert.deepEqual(readdirSync(dir).sort(), names.sort());
  for (const name of names) {
    assert.ok(readFileSync(join(dir, name)).equals(readFileSync(join(day, name))), name);
  }
  const state = JSON.parse(readFileSync(join(mirror, "state.json"), "utf8"));
  const session = Object.values(state.other_providers).map((p) => p.codex?.[root]).find(Boolean);
  assert.equal(session.provider, "codex");
  assert.equal(Object.keys(session.codex_rollouts).length, 4);
});
