#!/usr/bin/env node
// `npm run build`: transpiles the built component (confab_sync.wasm) with
// `jco transpile` into ./generated (gitignored): ES module + core wasm files
// + TypeScript declarations of every interface.
//
// The component is taken from $CONFAB_SYNC_WASM, else from the cargo build
// output: ../../target/wasm32-wasip2/release/confab_sync.wasm, built with
// `cargo build --release --target wasm32-wasip2 -p confab-sync`.
//
// `--instantiation async` makes jco emit an `instantiate(getCoreModule,
// imports)` function instead of a module that imports the WASI shim itself:
// src/index.js then gives every session its own imports, with its own
// preopens (the transcript's folder only) and its own HTTP origin check.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const packageDir = resolve(here, "..");
export const generatedDir = join(packageDir, "generated");
export const defaultWasm = resolve(
  packageDir,
  "../../target/wasm32-wasip2/release/confab_sync.wasm",
);

/** Transpiles `wasm` into ./generated; returns what was built. */
export function build({ wasm = process.env.CONFAB_SYNC_WASM || defaultWasm, quiet = false } = {}) {
  if (!existsSync(wasm)) {
    throw new Error(
      `no component at ${wasm}: build it with ` +
        "`cargo build --release --target wasm32-wasip2 -p confab-sync` (or set CONFAB_SYNC_WASM)",
    );
  }
  const jcoDir = join(packageDir, "node_modules", "@bytecodealliance", "jco");
  if (!existsSync(join(jcoDir, "package.json"))) {
    throw new Error(`jco is not installed (${jcoDir}): run \`npm ci\` in ${packageDir}`);
  }
  const jcoPackage = JSON.parse(readFileSync(join(jcoDir, "package.json"), "utf8"));
  const jco = join(jcoDir, typeof jcoPackage.bin === "string" ? jcoPackage.bin : jcoPackage.bin.jco);
  const bytes = readFileSync(wasm);
  const sha256 = createHash("sha256").update(bytes).digest("hex");

  // Transpile into a fresh folder, then swap it in: a failed run leaves the
  // previous output whole.
  const staging = `${generatedDir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  execFileSync(
    process.execPath,
    [jco, "transpile", wasm, "--out-dir", staging, "--name", "confab-sync", "--instantiation", "async", "--quiet"],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  const info = {
    component: wasm,
    sha256,
    bytes: bytes.length,
    jco: jcoPackage.version,
  };
  writeFileSync(join(staging, "build-info.json"), JSON.stringify(info, null, 2) + "\n");
  // The generated module is ESM; say so for the folder, whatever the parent says.
  writeFileSync(join(staging, "package.json"), '{ "type": "module" }\n');
  rmSync(generatedDir, { recursive: true, force: true });
  renameSync(staging, generatedDir);
  if (!quiet) {
    console.log(`transpiled ${wasm} (${bytes.length} bytes, sha256 ${sha256.slice(0, 12)}…) with jco ${info.jco} into ${generatedDir}`);
  }
  return info;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    build();
  } catch (e) {
    console.error(`build: ${e.message}`);
    process.exit(1);
  }
}
