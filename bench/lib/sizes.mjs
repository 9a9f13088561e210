// The wasm's size, raw and gzip -9: as worker-build emits it, without its name section, and
// after wasm-opt (binaryen from npm), whose output is cached by the input's digest because
// the JS build of wasm-opt takes about a minute.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { gzipSync, constants as zlib } from "node:zlib";

const run = promisify(execFile);

// The features the bundle uses (wasm-bindgen's exception handling and externref among them);
// wasm-opt refuses the module without them.
export const WASM_OPT_FLAGS = [
  "-Oz",
  "--enable-exception-handling",
  "--enable-reference-types",
  "--enable-bulk-memory",
  "--enable-nontrapping-float-to-int",
  "--enable-sign-ext",
  "--enable-mutable-globals",
  "--enable-multivalue",
];

const gzipSize = (bytes) => gzipSync(bytes, { level: zlib.Z_BEST_COMPRESSION }).length;

/** The wasm without its `name` custom section (function names, for stack traces only). */
export function withoutNameSection(bytes) {
  const kept = [bytes.subarray(0, 8)];
  let i = 8;
  const leb = () => {
    let value = 0;
    let shift = 0;
    let byte;
    do {
      byte = bytes[i++];
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return value;
  };
  while (i < bytes.length) {
    const start = i;
    const id = bytes[i++];
    const size = leb();
    const bodyStart = i;
    let name = null;
    if (id === 0) {
      const length = leb();
      name = bytes.subarray(i, i + length).toString("utf8");
    }
    i = bodyStart + size;
    if (name !== "name") kept.push(bytes.subarray(start, i));
  }
  return Buffer.concat(kept);
}

/**
 * Sizes of `wasmFile`, and the path of its wasm-opt'd copy (or null with `wasmOptError`).
 * `root` is the project, for node_modules/binaryen; `cacheDir` keeps wasm-opt's output.
 */
export async function measureSizes(wasmFile, { root, cacheDir }) {
  const raw = fs.readFileSync(wasmFile);
  const stripped = withoutNameSection(raw);
  const sizes = {
    asBuilt: { raw: raw.length, gzip: gzipSize(raw) },
    withoutNames: { raw: stripped.length, gzip: gzipSize(stripped) },
    wasmOpt: null,
  };

  const wasmOpt = path.join(root, "node_modules/binaryen/bin/wasm-opt");
  if (!fs.existsSync(wasmOpt)) {
    return { sizes: { ...sizes, wasmOptError: "node_modules/binaryen is missing: run 'npm ci'" }, optimized: null };
  }
  const digest = createHash("sha256").update(raw).update(WASM_OPT_FLAGS.join(" ")).digest("hex").slice(0, 16);
  const cached = path.join(cacheDir, `wasm-opt-${digest}.wasm`);
  let seconds = "cached";
  if (!fs.existsSync(cached)) {
    const started = performance.now();
    try {
      await run(process.execPath, [wasmOpt, wasmFile, ...WASM_OPT_FLAGS, "-o", `${cached}.partial`], {
        timeout: 5 * 60 * 1000,
        maxBuffer: 1 << 24,
      });
    } catch (err) {
      const why = String(err.stderr || err.message).slice(-400);
      return { sizes: { ...sizes, wasmOptError: `wasm-opt failed: ${why}` }, optimized: null };
    }
    fs.renameSync(`${cached}.partial`, cached);
    seconds = Number(((performance.now() - started) / 1000).toFixed(1));
    // Only the latest build's output is worth keeping.
    for (const old of fs.readdirSync(cacheDir)) {
      if (old.startsWith("wasm-opt-") && path.join(cacheDir, old) !== cached) fs.rmSync(path.join(cacheDir, old), { force: true });
    }
  }

  const optimized = fs.readFileSync(cached);
  const version = JSON.parse(fs.readFileSync(path.join(root, "node_modules/binaryen/package.json"))).version;
  sizes.wasmOpt = {
    raw: optimized.length,
    gzip: gzipSize(optimized),
    flags: WASM_OPT_FLAGS.join(" "),
    tool: `binaryen ${version} (npm)`,
    seconds,
  };
  return { sizes, optimized: cached };
}
