// CPU per token operation, natively and in wasm, over one fixture.
//
// Inside workerd a worker cannot time its own CPU work (its clocks stand still while it
// computes), so the wasm figures come from bench/token-cpu compiled for wasm32-unknown-unknown
// with the worker's release profile and run in Node's V8: the same Rust functions, the same
// engine family as workerd's, timed with performance.now() around many calls made inside
// wasm. The native figures come from the same crate built for the host, timed with Instant.
import { execFile } from "node:child_process";
import { createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const OPS = ["hs256_sign", "hs256_verify", "rs256_verify", "jwks_parse"];
const BATCHES = 7;
const BATCH_TARGET_MS = 60;

const b64url = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** Keys, a JWKS and an RS256 access token as Auth0 would issue it; the secrets are the tests'. */
export function makeFixture({ redirectSecret, sessionSecret }) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = randomBytes(8).toString("hex");
  const { n, e } = publicKey.export({ format: "jwk" });
  const issuer = "https://bench.example.auth0.com/";
  const audience = "https://headlines.bench";
  const claimNamespace = "https://auth0-voiceit-worker/";
  const now = Math.floor(Date.now() / 1000);

  const header = { alg: "RS256", typ: "JWT", kid };
  const claims = {
    iss: issuer,
    sub: "auth0|bench-user",
    aud: [audience, `${issuer}userinfo`],
    azp: "bench-client",
    iat: now,
    exp: now + 3600,
    scope: "openid profile",
    [`${claimNamespace}name`]: "Ada Bench",
  };
  const input = `${b64url(header)}.${b64url(claims)}`;
  const signature = sign("sha256", Buffer.from(input), privateKey).toString("base64url");

  return {
    redirect_secret: redirectSecret,
    session_secret: sessionSecret,
    jwks: JSON.stringify({ keys: [{ kty: "RSA", use: "sig", alg: "RS256", kid, n, e }] }),
    access_token: `${input}.${signature}`,
    issuer,
    audience,
    claim_namespace: claimNamespace,
    voiceit_id: `usr_${randomBytes(16).toString("hex")}`,
    now: now + 1,
  };
}

/** Builds bench/token-cpu natively and for wasm32 (cargo caches both in `targetDir`). */
export async function buildTokenCpu(root, { cargo, targetDir, log }) {
  const cwd = path.join(root, "bench/token-cpu");
  const env = { ...process.env, CARGO_TARGET_DIR: targetDir };
  const builds = [
    ["build", "--release", "--bin", "token_cpu"],
    ["build", "--release", "--lib", "--target", "wasm32-unknown-unknown"],
  ];
  for (const args of builds) {
    log(`cargo ${args.join(" ")}`);
    // The first build compiles the worker crate twice (several minutes); later ones are cached.
    await run(cargo, ["--quiet", ...args], { cwd, env, timeout: 15 * 60 * 1000, maxBuffer: 1 << 24 });
  }
  return {
    native: path.join(targetDir, "release/token_cpu"),
    wasm: path.join(targetDir, "wasm32-unknown-unknown/release/token_cpu.wasm"),
  };
}

/** Nanoseconds per operation, natively: the binary's own JSON. */
export async function timeNative(binary, fixtureFile) {
  const { stdout } = await run(binary, [fixtureFile], { timeout: 120000 });
  return JSON.parse(stdout);
}

/**
 * Nanoseconds per operation in wasm, warm ({median_ns, min_ns} of batches after calibration),
 * and the first call of each (which includes V8's lazy compilation of what it reaches).
 */
export async function timeWasm(wasmFile, fixture) {
  const module = await WebAssembly.compile(fs.readFileSync(wasmFile));
  // The module links the whole worker crate, whose wasm-bindgen glue is imported but never
  // reached by the token functions; each import is a stub that fails loudly if it ever is.
  const imports = {};
  for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
    if (kind !== "function") throw new Error(`unexpected ${kind} import ${from}.${name}`);
    imports[from] ??= {};
    imports[from][name] = () => {
      throw new Error(`token-cpu reached the wasm-bindgen import ${name}`);
    };
  }
  const { exports } = await WebAssembly.instantiate(module, imports);

  const json = Buffer.from(JSON.stringify(fixture));
  const ptr = exports.bench_alloc(json.length);
  new Uint8Array(exports.memory.buffer, ptr, json.length).set(json);
  if (exports.bench_load(ptr, json.length) !== 0) throw new Error("the wasm module refused the fixture");

  const warm = {};
  const first = {};
  for (const [index, op] of OPS.entries()) {
    const t0 = performance.now();
    if (exports.bench_run(index, 1) !== 1) throw new Error(`${op} failed in wasm`);
    first[op] = (performance.now() - t0) * 1e6;

    // Calibrate for ~60 ms batches (which also lets V8 tier the hot code up), then time.
    let calls = 0;
    const c0 = performance.now();
    while (performance.now() - c0 < 200) {
      exports.bench_run(index, 1);
      calls += 1;
    }
    const perCallMs = (performance.now() - c0) / calls;
    const n = Math.max(1, Math.round(BATCH_TARGET_MS / perCallMs));
    const samples = [];
    for (let b = 0; b < BATCHES; b++) {
      const t = performance.now();
      if (exports.bench_run(index, n) !== n) throw new Error(`${op} failed in wasm`);
      samples.push(((performance.now() - t) * 1e6) / n);
    }
    samples.sort((a, b) => a - b);
    warm[op] = { median_ns: samples[Math.floor(BATCHES / 2)], min_ns: samples[0] };
  }
  return { warm, first, engine: `V8 ${process.versions.v8} (Node ${process.versions.node})` };
}

/**
 * For reference: the RS256 signature check alone in native code (OpenSSL through Node's
 * synchronous crypto.verify, the kind of code behind workerd's crypto.subtle), over the
 * fixture's token. Nanoseconds per call.
 */
export function timeNativeRsaCheck(fixture) {
  const key = createPublicKey({ key: JSON.parse(fixture.jwks).keys[0], format: "jwk" });
  const [header, payload, signature] = fixture.access_token.split(".");
  const data = Buffer.from(`${header}.${payload}`);
  const sig = Buffer.from(signature, "base64url");
  if (!verify("sha256", data, key, sig)) throw new Error("OpenSSL refused the fixture's token");

  for (let i = 0; i < 200; i++) verify("sha256", data, key, sig);
  const n = 3000;
  const t = performance.now();
  for (let i = 0; i < n; i++) verify("sha256", data, key, sig);
  return ((performance.now() - t) * 1e6) / n;
}
