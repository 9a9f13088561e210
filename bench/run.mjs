// `npm run bench`: the built worker under `workerd serve`, against the local VoiceIt and Auth0
// stand-ins, measured beside its floors in the same run. Prints the report (Markdown) and
// writes bench-output/latest.json and bench-output/latest.md.
//
// Every measurement is short and bounded: fixed concurrency, fixed seconds, loopback only;
// each runtime runs under `timeout` and the whole run under a watchdog, so nothing outlives
// it. Not part of `npm test`: the figures depend on the machine and on what else runs there.
//
// Settings: BENCH_SECONDS (per round, default 3), BENCH_ROUNDS (default 3),
// BENCH_CARGO_TARGET_DIR (where bench/token-cpu builds; default under the system temp folder).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

import { freePort, memoryOf, startWorkerd, waitFor200, workerdBinary, writeConfig } from "./lib/workerd.mjs";
import { hasWrk, nodeLoad, wrk } from "./lib/load.mjs";
import { buildTokenCpu, makeFixture, timeNative, timeNativeRsaCheck, timeWasm } from "./lib/cpu.mjs";
import { measureSizes } from "./lib/sizes.mjs";
import { directUploads, mintSession, oneUpload, PHRASE, startTenant, workerUploads } from "./lib/sessions.mjs";
import { evaluate, MB, render } from "./lib/report.mjs";
import { startVoiceItStandin } from "../tests/support/voiceit-standin.mjs";
import { TEST_SECRETS, startWorker } from "../tests/support/worker.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP_SECONDS = 1;
const GET_CONNECTIONS = 16;
const UPLOAD_CONNECTIONS = 4;
const COLD_STARTS = 7;
const UPLOAD_SIZES = { "1 MB": 1 * MB, "10 MB": 10 * MB };
const MEMORY_UPLOADS = 4;
const STATIC_FILE = "/favicon.svg";
const AUDIENCE = "https://headlines.bench";
const CLIENT_ID = "bench-client";
const NAME_CLAIM = "https://auth0-voiceit-worker/name";
// The worker caps recordings per 2FA session (UPLOADS_PER_SESSION, at most 100): the bench
// sets 100 and moves to a session's next one after 90, which leaves room for the warm-up.
const UPLOADS_PER_SESSION = 100;
const UPLOADS_PER_SESSION_USED = 90;
// The whole run stops by itself even if a step hangs.
const RUN_LIMIT_SECONDS = 20 * 60;

const log = (message) => process.stderr.write(`[bench] ${message}\n`);
const cleanups = [];

/** Registers `close` to run at the end (or on a failure), at most once. */
function onCleanup(close) {
  let done = false;
  const once = async () => {
    if (!done) {
      done = true;
      await close();
    }
  };
  cleanups.push(once);
  return once;
}

async function cleanup() {
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()();
    } catch (err) {
      log(`cleanup: ${err.message}`);
    }
  }
}

async function main() {
  const watchdog = setTimeout(() => {
    log(`the run passed ${RUN_LIMIT_SECONDS} s: stopping`);
    cleanup().finally(() => process.exit(2));
  }, RUN_LIMIT_SECONDS * 1000);

  const build = path.join(root, "build");
  for (const file of ["index.js", "index_bg.wasm"]) {
    if (!fs.existsSync(path.join(build, file))) throw new Error(`build/${file} is missing: run 'npm run build' first.`);
  }
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "auth0-voiceit-bench-"));
  onCleanup(() => fs.rmSync(scratch, { recursive: true, force: true }));
  const outDir = path.join(root, "bench-output");
  fs.mkdirSync(path.join(outDir, "cache"), { recursive: true });

  const useWrk = hasWrk();
  const results = {
    startedAt: new Date().toISOString(),
    machine: machine(),
    settings: {
      seconds: SECONDS,
      rounds: ROUNDS,
      warmupSeconds: WARMUP_SECONDS,
      getConnections: GET_CONNECTIONS,
      uploadConnections: [1, UPLOAD_CONNECTIONS],
      coldStarts: COLD_STARTS,
      staticFile: STATIC_FILE,
      staticFloor: "workerd `disk` service over static/ on its own socket (no JS); also Miniflare's assets-only setup",
      loadGenerator: useWrk
        ? "wrk, 1 thread (GETs and the bodiless POST); a Node loader in a worker thread (uploads)"
        : "a Node loader in a worker thread (wrk is not installed)",
    },
  };

  // The bundle is copied first, so a rebuild during the run cannot mix two builds.
  const bundles = { asBuilt: path.join(scratch, "as-built"), wasmOpt: null };
  fs.mkdirSync(bundles.asBuilt);
  for (const file of ["index.js", "index_bg.wasm"]) fs.copyFileSync(path.join(build, file), path.join(bundles.asBuilt, file));

  log("wasm sizes (wasm-opt takes about a minute the first time, then it is cached)");
  const { sizes, optimized } = await measureSizes(path.join(bundles.asBuilt, "index_bg.wasm"), {
    root,
    cacheDir: path.join(outDir, "cache"),
  });
  results.sizes = sizes;
  if (optimized) {
    bundles.wasmOpt = path.join(scratch, "wasm-opt");
    fs.mkdirSync(bundles.wasmOpt);
    fs.copyFileSync(path.join(bundles.asBuilt, "index.js"), path.join(bundles.wasmOpt, "index.js"));
    fs.copyFileSync(optimized, path.join(bundles.wasmOpt, "index_bg.wasm"));
  }

  log("starting the VoiceIt and Auth0 stand-ins");
  const voiceit = await startVoiceItStandin({ apiKey: TEST_SECRETS.VOICEIT_API_KEY, apiToken: TEST_SECRETS.VOICEIT_API_TOKEN });
  onCleanup(() => voiceit.close());
  const tenant = await startTenant({ audience: AUDIENCE, clientId: CLIENT_ID, log });
  onCleanup(() => tenant.close());
  results.settings.auth0StandIn = tenant.kind;

  const wrangler = await readWranglerConfig();
  results.settings.durableObjects = wrangler.durableObjects.map((d) => `${d.binding} -> ${d.className}`);
  const env = {
    scratch,
    voiceit,
    tenant,
    useWrk,
    wrangler,
    vars: {
      ...wrangler.vars,
      UPLOADS_PER_SESSION: String(UPLOADS_PER_SESSION),
      AUTH0_DOMAIN: tenant.host,
      AUTH0_BASE_URL: tenant.baseUrl,
      AUTH0_CLIENT_ID: CLIENT_ID,
      AUTH0_AUDIENCE: AUDIENCE,
      VOICEIT_BASE_URL: voiceit.apiUrl,
      VOICEIT_LIVENESS_URL: voiceit.livenessUrl,
      VOICEIT_PHRASE: PHRASE,
      ...TEST_SECRETS,
    },
  };

  log("cold starts");
  results.coldStart = {
    asBuilt: await coldStarts(env, bundles.asBuilt),
    wasmOpt: bundles.wasmOpt ? await coldStarts(env, bundles.wasmOpt) : null,
  };

  log(`throughput and latency: ${ROUNDS} rounds of ${SECONDS} s per case`);
  results.throughput = await throughput(env, bundles.asBuilt);

  log("the public route and a static file through Miniflare (the tests' runtime)");
  results.miniflare = await miniflarePair(env);

  log("peak memory with four 10 MB uploads in flight");
  results.memory = await peakMemory(env, bundles.asBuilt);

  if (bundles.wasmOpt) {
    log("the wasm-opt build: does it work, and how fast is it");
    results.wasmOptCheck = await checkVariant(env, bundles);
  }

  log("CPU per token operation, native and wasm");
  results.cpu = await cpuPerOp(scratch);

  await cleanup();
  results.finishedAt = new Date().toISOString();
  results.machine.loadAverageAtEnd = os.loadavg().map((n) => Number(n.toFixed(2)));
  results.targets = evaluate(results);

  const markdown = render(results);
  fs.writeFileSync(path.join(outDir, "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
  fs.writeFileSync(path.join(outDir, "latest.md"), markdown);
  process.stdout.write(markdown);
  log("wrote bench-output/latest.json and bench-output/latest.md");
  clearTimeout(watchdog);
}

function machine() {
  return {
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    workerd: execFileSync(workerdBinary(root), ["--version"]).toString().trim(),
    loadAverageAtStart: os.loadavg().map((n) => Number(n.toFixed(2))),
  };
}

/**
 * What the worker is deployed with, read by wrangler itself from wrangler.toml: its vars
 * (overridden with the stand-ins' URLs and the tests' secrets), compatibility date, assets
 * folder and Durable Object bindings.
 */
async function readWranglerConfig() {
  const { unstable_readConfig: readConfig } = await import("wrangler");
  const config = readConfig({ config: path.join(root, "wrangler.toml") });
  const sqlite = new Set((config.migrations ?? []).flatMap((m) => m.new_sqlite_classes ?? []));
  return {
    vars: Object.fromEntries(Object.entries(config.vars ?? {}).map(([k, v]) => [k, String(v)])),
    compatibilityDate: config.compatibility_date,
    assetsDir: path.resolve(root, config.assets?.directory ?? "static"),
    durableObjects: (config.durable_objects?.bindings ?? []).map((b) => ({
      binding: b.name,
      className: b.class_name,
      sql: sqlite.has(b.class_name),
    })),
  };
}

// --- Runtime processes ----------------------------------------------------------------------

/** Starts workerd on `bundleDir` with the given sockets; resolves once it answers. */
async function launch(env, bundleDir, socketNames, label) {
  const sockets = {};
  for (const name of socketNames) sockets[name] = await freePort();
  const dir = fs.mkdtempSync(path.join(env.scratch, `${label}-`));
  const config = writeConfig(dir, {
    bundleDir,
    staticDir: env.wrangler.assetsDir,
    vars: env.vars,
    sockets,
    durableObjects: env.wrangler.durableObjects,
    compatibilityDate: env.wrangler.compatibilityDate,
  });
  const logFile = path.join(dir, "stderr.log");
  const proc = await startWorkerd(workerdBinary(root), config, { logFile, maxSeconds: 300 });
  const stop = onCleanup(() => proc.stop());
  const base = `http://127.0.0.1:${sockets.worker}`;
  try {
    const readyAt = await waitFor200(`${base}/api/public`, { running: proc.running });
    return { ...proc, stop, base, sockets, readyAt };
  } catch (err) {
    await stop();
    throw new Error(`${err.message}\nworkerd stderr:\n${fs.readFileSync(logFile, "utf8").slice(-1500)}`);
  }
}

async function coldStarts(env, bundleDir) {
  const samples = [];
  for (let i = 0; i < COLD_STARTS; i++) {
    const proc = await launch(env, bundleDir, ["worker"], "cold");
    samples.push(proc.readyAt - proc.startedAt);
    await proc.stop();
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (n) => Number(n.toFixed(1));
  return {
    medianMs: round(sorted[Math.floor(sorted.length / 2)]),
    minMs: round(sorted[0]),
    maxMs: round(sorted.at(-1)),
    samplesMs: samples.map(round),
  };
}

// --- Load -----------------------------------------------------------------------------------

function getLoad(env, url, { method = "GET", headers = {}, seconds = SECONDS } = {}) {
  const options = { connections: GET_CONNECTIONS, seconds, method, headers, scratchDir: env.scratch };
  return env.useWrk ? wrk(url, options) : nodeLoad(url, options);
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

/** One summary of a case's rounds: the median of each figure, and the spread of req/s. */
function summarise(label, url, runs) {
  const pick = (key) => runs.map((r) => r[key]);
  return {
    label,
    url,
    tool: runs[0].tool,
    connections: runs[0].connections,
    seconds: runs[0].seconds,
    rps: median(pick("rps")),
    rpsMin: Math.min(...pick("rps")),
    rpsMax: Math.max(...pick("rps")),
    p50: median(pick("p50")),
    p99: median(pick("p99")),
    requests: pick("requests").reduce((a, b) => a + b, 0),
    non2xx: pick("non2xx").reduce((a, b) => a + b, 0),
    errors: pick("errors").reduce((a, b) => a + b, 0),
    sample: runs.find((r) => r.sample)?.sample ?? null,
    rounds: runs.map(({ rps, p50, p99, requests, non2xx, errors }) => ({ rps, p50, p99, requests, non2xx, errors })),
  };
}

/**
 * Runs every case ROUNDS times, interleaved (floor, worker, floor, worker…), so a burst of
 * load from elsewhere on the machine hits all of them alike. `run(first)` measures once; the
 * first round of each case starts with a warm-up.
 */
async function interleaved(cases, rounds = ROUNDS) {
  const runs = Object.fromEntries(Object.keys(cases).map((key) => [key, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [key, c] of Object.entries(cases)) {
      log(`  round ${round + 1}/${rounds}: ${c.label}`);
      runs[key].push(await c.run(round === 0));
    }
  }
  return Object.fromEntries(Object.entries(cases).map(([key, c]) => [key, summarise(c.label, c.url, runs[key])]));
}

function getCase(env, label, url, options = {}) {
  return {
    label,
    url: new URL(url).pathname,
    async run(first) {
      if (first) await getLoad(env, url, { ...options, seconds: WARMUP_SECONDS });
      return getLoad(env, url, options);
    },
  };
}

/**
 * An upload case: `plan()` makes fresh users or sessions after a stand-in reset (which bounds
 * its memory: it keeps every enrollment), then one warm-up upload per connection.
 */
function uploadCase(env, label, url, connections, plan) {
  return {
    label,
    url,
    async run() {
      env.voiceit.reset();
      const p = await plan();
      const options = { connections, method: "POST", upload: p.upload };
      await nodeLoad(p.url, { ...options, seconds: 30, maxRequests: connections });
      return { ...(await nodeLoad(p.url, { ...options, seconds: SECONDS })), bodyBytes: p.bodyBytes };
    },
  };
}

async function throughput(env, bundleDir) {
  const proc = await launch(env, bundleDir, ["worker", "static", "reference"], "load");
  const { base } = proc;
  const bearer = { authorization: `Bearer ${env.tenant.signAccessToken({ sub: "auth0|bench", [NAME_CLAIM]: "Ada Bench" })}` };
  const check = await fetch(`${base}/api/private`, { headers: bearer });
  if (check.status !== 200) throw new Error(`GET /api/private answered ${check.status}: ${await check.text()}`);
  await check.arrayBuffer();
  env.voiceit.reset();
  const session = await mintSession(base, env.tenant.host);

  const get = await interleaved({
    staticFloor: getCase(env, `static floor: ${STATIC_FILE} from workerd's disk service`, `http://127.0.0.1:${proc.sockets.static}${STATIC_FILE}`),
    reference: getCase(env, "reference: a JS worker returning a fixed body", `http://127.0.0.1:${proc.sockets.reference}/`),
    publicApi: getCase(env, "GET /api/public", `${base}/api/public`),
    privateApi: getCase(env, "GET /api/private (RS256, warm key cache)", `${base}/api/private`, { headers: bearer }),
    voiceitToken: getCase(env, "POST /voiceit_token", `${base}/voiceit_token`, { method: "POST", headers: { cookie: session.cookie } }),
    assetThroughWorker: getCase(env, `GET ${STATIC_FILE} through the worker (ASSETS)`, `${base}${STATIC_FILE}`),
  });

  const uploads = {};
  for (const [name, size] of Object.entries(UPLOAD_SIZES)) {
    uploads[name] = {};
    for (const connections of [1, UPLOAD_CONNECTIONS]) {
      // Enough sessions per connection for the uploads a round can send (an estimate).
      const perSecond = size <= MB ? 60 : 10;
      const sessionsPerConnection = Math.ceil(((SECONDS + 1) * perSecond) / UPLOADS_PER_SESSION_USED);
      const cases = await interleaved({
        direct: uploadCase(env, `direct floor: ${name} enrollment straight to the stand-in`, "/enrollments/video", connections, () =>
          directUploads(env.voiceit, size, { connections }),
        ),
        worker: uploadCase(env, `POST /voiceit_endpoint, ${name} recording`, "/voiceit_endpoint", connections, () =>
          workerUploads(base, env.tenant.host, size, { connections, sessionsPerConnection, perSession: UPLOADS_PER_SESSION_USED }),
        ),
      });
      uploads[name][`c${connections === 1 ? 1 : 4}`] = cases;
    }
  }
  env.voiceit.reset();
  await proc.stop();
  return { get, uploads, jwksFetches: env.tenant.jwksFetches?.() ?? null };
}

/**
 * Miniflare wires ASSETS the way the platform does, with JS service workers (a router, an
 * asset worker and a KV worker over the folder): its assets-only setup is the static floor in
 * that sense. Both sides pass through Miniflare's entry worker, which workerd serve skips.
 */
async function miniflarePair(env) {
  const { Miniflare } = await import("miniflare");
  const assetsPort = await freePort();
  const assetsOnly = new Miniflare({
    modules: true,
    script: "export default { fetch() { return new Response('no worker here', { status: 404 }); } };",
    compatibilityDate: env.wrangler.compatibilityDate,
    host: "127.0.0.1",
    port: assetsPort,
    assets: { directory: env.wrangler.assetsDir, routerConfig: { has_user_worker: false } },
  });
  const closeAssets = onCleanup(() => assetsOnly.dispose());
  await assetsOnly.ready;
  const worker = await startWorker(env.vars, { port: await freePort() });
  const closeWorker = onCleanup(() => worker.close());

  const cases = await interleaved({
    staticFloor: getCase(env, `Miniflare, assets only: ${STATIC_FILE}`, `http://127.0.0.1:${assetsPort}${STATIC_FILE}`),
    publicApi: getCase(env, "Miniflare, the worker: GET /api/public", `${String(worker.url).replace(/\/$/, "")}/api/public`),
  });
  await closeWorker();
  await closeAssets();
  return cases;
}

// --- Memory ---------------------------------------------------------------------------------

async function peakMemory(env, bundleDir) {
  const proc = await launch(env, bundleDir, ["worker"], "memory");
  env.voiceit.reset();

  // Every code path runs first with small requests, so the baseline is a warm process at rest.
  const small = await workerUploads(proc.base, env.tenant.host, 64 * 1024, { connections: 1, sessionsPerConnection: 1, perSession: 90 });
  await nodeLoad(small.url, { connections: 1, seconds: 10, maxRequests: 3, method: "POST", upload: small.upload });
  await nodeLoad(`${proc.base}/api/public`, { connections: 4, seconds: 1, maxRequests: 200 });
  const plan = await workerUploads(proc.base, env.tenant.host, 10 * MB, {
    connections: MEMORY_UPLOADS,
    sessionsPerConnection: 1,
    perSession: 90,
  });
  await sleep(500);
  const baseline = memoryOf(proc.pid);

  // VmHWM catches a peak between two samples; the samples show the process's own curve.
  let sampled = baseline.rss;
  const sampler = setInterval(() => {
    sampled = Math.max(sampled, memoryOf(proc.pid).rss);
  }, 2);
  const result = await nodeLoad(plan.url, {
    connections: MEMORY_UPLOADS,
    seconds: 60,
    maxRequests: MEMORY_UPLOADS,
    method: "POST",
    upload: plan.upload,
  });
  clearInterval(sampler);
  const after = memoryOf(proc.pid);
  env.voiceit.reset();
  await proc.stop();

  const peak = Math.max(sampled, after.hwm);
  const inFlight = MEMORY_UPLOADS * plan.bodyBytes;
  return {
    uploads: MEMORY_UPLOADS,
    bodyBytes: plan.bodyBytes,
    inFlightBytes: inFlight,
    baselineRss: baseline.rss,
    baselineHwm: baseline.hwm,
    peakRss: peak,
    sampledPeakRss: sampled,
    hwmAfter: after.hwm,
    growth: peak - baseline.rss,
    growthVsInFlight: Number(((peak - baseline.rss) / inFlight).toFixed(2)),
    statuses: result.statuses,
  };
}

// --- The wasm-opt build ---------------------------------------------------------------------

/**
 * Sends the optimised build through every kind of route, then times the two API routes of
 * both builds, each in its own workerd, with the rounds interleaved.
 */
async function checkVariant(env, bundles) {
  const proc = await launch(env, bundles.wasmOpt, ["worker"], "wasm-opt");
  const asBuilt = await launch(env, bundles.asBuilt, ["worker"], "as-built");
  const { base } = proc;
  const bearer = { authorization: `Bearer ${env.tenant.signAccessToken({ sub: "auth0|bench", [NAME_CLAIM]: "Ada Bench" })}` };
  env.voiceit.reset();
  const session = await mintSession(base, env.tenant.host);
  const upload = oneUpload(
    await workerUploads(base, env.tenant.host, MB, { connections: 1, sessionsPerConnection: 1, perSession: 90 }),
  );

  const statusOf = async (url, init) => {
    const res = await fetch(url, init);
    await res.arrayBuffer();
    return { status: res.status };
  };
  const checks = {
    "GET /api/public": await statusOf(`${base}/api/public`),
    "GET /api/private": await statusOf(`${base}/api/private`, { headers: bearer }),
    [`GET ${STATIC_FILE}`]: await statusOf(`${base}${STATIC_FILE}`),
    "POST /voiceit_token": await statusOf(`${base}/voiceit_token`, { method: "POST", headers: { cookie: session.cookie } }),
    "POST /voiceit_endpoint (1 MB)": await statusOf(`${base}/voiceit_endpoint`, { method: "POST", ...upload }),
  };
  const timed = await interleaved({
    publicAsBuilt: getCase(env, "as built: GET /api/public", `${asBuilt.base}/api/public`),
    publicWasmOpt: getCase(env, "wasm-opt: GET /api/public", `${base}/api/public`),
    privateAsBuilt: getCase(env, "as built: GET /api/private", `${asBuilt.base}/api/private`, { headers: bearer }),
    privateWasmOpt: getCase(env, "wasm-opt: GET /api/private", `${base}/api/private`, { headers: bearer }),
  });
  env.voiceit.reset();
  await asBuilt.stop();
  await proc.stop();
  return { works: Object.values(checks).every((c) => c.status === 200), checks, timed };
}

// --- CPU per operation ----------------------------------------------------------------------

async function cpuPerOp(scratch) {
  const fixture = makeFixture({ redirectSecret: TEST_SECRETS.REDIRECT_SECRET, sessionSecret: TEST_SECRETS.SESSION_SECRET });
  const fixtureFile = path.join(scratch, "fixture.json");
  fs.writeFileSync(fixtureFile, JSON.stringify(fixture));
  try {
    const targetDir = process.env.BENCH_CARGO_TARGET_DIR || path.join(os.tmpdir(), "auth0-voiceit-bench-target");
    const built = await buildTokenCpu(root, { cargo: process.env.CARGO || "cargo", targetDir, log: (m) => log(`  ${m}`) });
    const native = await timeNative(built.native, fixtureFile);
    const wasm = await timeWasm(built.wasm, fixture);
    return {
      native,
      wasm: wasm.warm,
      wasmFirstCall: wasm.first,
      nativeRsaCheck: timeNativeRsaCheck(fixture),
      engine: wasm.engine,
      profile: "release (opt-level s, lto, codegen-units 1)",
    };
  } catch (err) {
    return { error: String(err.stderr || err.message).slice(-800) };
  }
}

process.on("SIGINT", () => cleanup().finally(() => process.exit(130)));
process.on("SIGTERM", () => cleanup().finally(() => process.exit(143)));

main().catch(async (err) => {
  log(`failed: ${err.stack ?? err.message}`);
  await cleanup();
  process.exit(1);
});
