// The bench's verdicts and its Markdown report: each target met or missed, by how much, and
// the reason the measurements themselves point to.
export const MB = 1_000_000;

export const TARGETS = Object.freeze({
  wasmRawBytes: 1.5 * MB,
  wasmGzipBytes: 500_000,
  publicVsStatic: 0.7,
  forwardingVsDirect: 1.5,
  memoryGrowthVsInFlight: 3,
  rs256WasmMs: 1,
});

const ratio = (a, b) => (b > 0 ? a / b : NaN);
const perRequestUs = (rps) => 1e6 / rps;

export function kb(bytes) {
  return bytes >= MB ? `${(bytes / MB).toFixed(2)} MB` : `${(bytes / 1000).toFixed(0)} KB`;
}
const mb = (bytes) => `${(bytes / MB).toFixed(1)} MB`;
const pct = (x) => `${Math.round(x * 100)}%`;
const ms = (ns) => (ns / 1e6).toFixed(3);

export function fmt(n) {
  if (!Number.isFinite(n)) return "n/a";
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString("en-US");
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function bytes(n) {
  return `${n.toLocaleString("en-US")} B (${kb(n)})`;
}

// --- Verdicts -------------------------------------------------------------------------------

function sizeTarget(r) {
  const s = r.sizes.asBuilt;
  const names = s.raw - r.sizes.withoutNames.raw;
  const opt = r.sizes.wasmOpt;
  return {
    name: "wasm size",
    target: `raw <= ${kb(TARGETS.wasmRawBytes)}, gzip <= ${kb(TARGETS.wasmGzipBytes)}`,
    measured: `${kb(s.raw)} raw, ${kb(s.gzip)} gzip (as built)`,
    met: s.raw <= TARGETS.wasmRawBytes && s.gzip <= TARGETS.wasmGzipBytes,
    note:
      `${pct(s.raw / TARGETS.wasmRawBytes)} and ${pct(s.gzip / TARGETS.wasmGzipBytes)} of the limits. ` +
      `${kb(names)} of the raw size is the name section (function names, for stack traces only)` +
      (opt ? `; wasm-opt ${opt.flags.split(" ")[0]} gives ${kb(opt.raw)} raw, ${kb(opt.gzip)} gzip.` : "."),
  };
}

function publicTarget(r) {
  const g = r.throughput.get;
  const got = ratio(g.publicApi.rps, g.staticFloor.rps);
  const reference = ratio(g.reference.rps, g.staticFloor.rps);
  const met = got >= TARGETS.publicVsStatic;
  const miniflare = r.miniflare
    ? ` Against Miniflare's JS assets layer (the platform's kind of assets serving) the worker reaches ` +
      `${ratio(r.miniflare.publicApi.rps, r.miniflare.staticFloor.rps).toFixed(2)}x.`
    : "";
  return {
    name: "/api/public throughput vs the static floor",
    target: `>= ${TARGETS.publicVsStatic}x`,
    measured: `${got.toFixed(2)}x (${fmt(g.publicApi.rps)} vs ${fmt(g.staticFloor.rps)} req/s)`,
    met,
    note: met
      ? `met.${miniflare}`
      : `short by ${(TARGETS.publicVsStatic - got).toFixed(2)}x (it would need ${fmt(TARGETS.publicVsStatic * g.staticFloor.rps)} req/s). ` +
        `The floor is workerd's native disk service, which runs no JS at all; a JS worker that only returns a fixed ` +
        `body reaches ${reference.toFixed(2)}x of it, so entering an isolate costs more than the target allows before ` +
        `any worker code runs. With the runtime's one thread busy, a request costs about ` +
        `${fmt(perRequestUs(g.staticFloor.rps))} µs on the floor, ${fmt(perRequestUs(g.reference.rps))} µs in the JS ` +
        `reference and ${fmt(perRequestUs(g.publicApi.rps))} µs in the worker.${miniflare}`,
  };
}

function forwardingTarget(r, size) {
  const u = r.throughput.uploads[size];
  const one = ratio(u.c1.worker.p50, u.c1.direct.p50);
  const four = ratio(u.c4.worker.p50, u.c4.direct.p50);
  const added = u.c1.worker.p50 - u.c1.direct.p50;
  const met = one <= TARGETS.forwardingVsDirect;
  const why =
    `The worker reads the whole multipart body (formData()) before it can check the session, the secure token and ` +
    `the request type, takes the upload from the session's allowance in the attempt ledger (a Durable Object write), ` +
    `then sends a new multipart body upstream: the recording crosses loopback twice, store and forward.`;
  return {
    name: `forwarding latency, ${size}`,
    target: `p50 <= ${TARGETS.forwardingVsDirect}x direct`,
    measured:
      `${one.toFixed(2)}x at 1 connection (${fmt(u.c1.worker.p50)} vs ${fmt(u.c1.direct.p50)} ms p50); ` +
      `${four.toFixed(2)}x at ${u.c4.worker.connections}`,
    met,
    note: met
      ? `met; the worker adds ${fmt(added)} ms at p50. At ${u.c4.worker.connections} connections the stand-in's ` +
        `own parsing is the bottleneck on both paths, which brings the ratio near 1.`
      : `over by ${(one - TARGETS.forwardingVsDirect).toFixed(2)}x: ${fmt(added)} ms added at p50, where ` +
        `${fmt((TARGETS.forwardingVsDirect - 1) * u.c1.direct.p50)} ms would meet it. ${why}`,
  };
}

function memoryTarget(r) {
  const m = r.memory;
  const met = m.growthVsInFlight <= TARGETS.memoryGrowthVsInFlight;
  return {
    name: "peak memory growth, four 10 MB uploads in flight",
    target: `<= ${TARGETS.memoryGrowthVsInFlight}x the bytes in flight`,
    measured: `${m.growthVsInFlight}x (${mb(m.growth)} over ${mb(m.baselineRss)} idle; ${mb(m.inFlightBytes)} in flight)`,
    met,
    note: met
      ? "met"
      : `over by ${(m.growthVsInFlight - TARGETS.memoryGrowthVsInFlight).toFixed(2)}x ` +
        `(${mb(m.growth - TARGETS.memoryGrowthVsInFlight * m.inFlightBytes)} too much). Each upload is held several ` +
        `times at once: the request body workerd buffers, the parsed FormData with its File, and the outgoing ` +
        `multipart body; freed buffers wait for V8's garbage collector.`,
  };
}

function rs256Target(r) {
  if (!r.cpu.wasm) {
    return { name: "RS256 verify, warm, in wasm", target: `< ${TARGETS.rs256WasmMs} ms`, measured: "not measured", met: false, note: r.cpu.error };
  }
  const wasm = r.cpu.wasm.rs256_verify;
  const native = r.cpu.native.rs256_verify;
  const median = wasm.median_ns / 1e6;
  const met = median < TARGETS.rs256WasmMs;
  const cause =
    `Nearly all of it is num-bigint-dig's Montgomery multiplication (the rsa crate's bignum): its modpow walks all ` +
    `64 bits of the exponent's word in 4-bit windows, about 90 multiplications of 2048-bit numbers where e = 65537 ` +
    `needs 17, in portable code built at opt-level "s". The same signature check in native OpenSSL takes ` +
    `${fmt(r.cpu.nativeRsaCheck / 1000)} µs here; workerd's crypto.subtle runs that kind of code.`;
  return {
    name: "RS256 verify, warm, in wasm",
    target: `< ${TARGETS.rs256WasmMs} ms`,
    measured: `${ms(wasm.median_ns)} ms median, ${ms(wasm.min_ns)} ms fastest batch (native ${ms(native.median_ns)} ms)`,
    met,
    note: met
      ? `met, with ${(TARGETS.rs256WasmMs - median).toFixed(3)} ms to spare. ${cause}`
      : `over by ${(median - TARGETS.rs256WasmMs).toFixed(3)} ms. ${cause}`,
  };
}

export function evaluate(r) {
  return [
    sizeTarget(r),
    publicTarget(r),
    ...Object.keys(r.throughput.uploads).map((size) => forwardingTarget(r, size)),
    memoryTarget(r),
    rs256Target(r),
  ];
}

// --- Markdown -------------------------------------------------------------------------------

function table(header, rows) {
  const lines = [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`];
  for (const row of rows) lines.push(`| ${row.join(" | ")} |`);
  return lines.join("\n");
}

/** A case's row: `floor` and `mode` ("rps" or "latency") make the last column. */
function caseRow(c, floorName = "", floor = null, mode = "rps") {
  const problems = c.non2xx || c.errors ? ` (**${c.non2xx} non-2xx, ${c.errors} failed**)` : "";
  let versus = "";
  if (floor && mode === "rps") versus = `${ratio(c.rps, floor.rps).toFixed(2)}x req/s`;
  if (floor && mode === "latency") {
    versus = `${ratio(c.p50, floor.p50).toFixed(2)}x p50, ${ratio(c.p99, floor.p99).toFixed(2)}x p99`;
  }
  return [
    c.label + problems,
    String(c.connections),
    fmt(c.rps),
    `${fmt(c.rpsMin)}–${fmt(c.rpsMax)}`,
    `${fmt(c.p50)} ms`,
    `${fmt(c.p99)} ms`,
    floorName,
    versus,
  ];
}

const CASE_HEADER = ["case", "conc.", "req/s", "req/s range", "p50", "p99", "floor", "vs floor"];

function sizesSection(r) {
  const rows = [
    ["as built (worker-build --release, no wasm-opt)", bytes(r.sizes.asBuilt.raw), bytes(r.sizes.asBuilt.gzip)],
    ["as built, name section removed", bytes(r.sizes.withoutNames.raw), bytes(r.sizes.withoutNames.gzip)],
  ];
  const opt = r.sizes.wasmOpt;
  if (opt) rows.push([`wasm-opt ${opt.flags.split(" ")[0]} (${opt.tool})`, bytes(opt.raw), bytes(opt.gzip)]);
  else rows.push(["wasm-opt", r.sizes.wasmOptError ?? "not run", ""]);
  return ["### wasm size", "", table(["wasm", "raw", "gzip -9"], rows), ""];
}

function coldSection(r) {
  const cells = (c) => [`${fmt(c.medianMs)} ms`, `${fmt(c.minMs)} ms`, `${fmt(c.maxMs)} ms`];
  const rows = [["as built", ...cells(r.coldStart.asBuilt)]];
  if (r.coldStart.wasmOpt) rows.push(["wasm-opt", ...cells(r.coldStart.wasmOpt)]);
  return [
    `### Cold start: process start to the first 200 on /api/public (${r.coldStart.asBuilt.samplesMs.length} starts each)`,
    "",
    table(["build", "median", "min", "max"], rows),
    "",
  ];
}

function throughputSection(r) {
  const g = r.throughput.get;
  const rows = [
    caseRow(g.staticFloor),
    caseRow(g.reference, "static", g.staticFloor),
    caseRow(g.publicApi, "static", g.staticFloor),
    caseRow(g.privateApi, "static", g.staticFloor),
    caseRow(g.voiceitToken, "static", g.staticFloor),
    caseRow(g.assetThroughWorker, "static", g.staticFloor),
  ];
  for (const [size, u] of Object.entries(r.throughput.uploads)) {
    for (const c of ["c1", "c4"]) {
      rows.push(caseRow(u[c].direct));
      rows.push(caseRow(u[c].worker, `direct ${size}`, u[c].direct, "latency"));
    }
  }
  const out = [
    "### Throughput and latency under workerd serve",
    "",
    `Median of ${r.settings.rounds} interleaved rounds of ${r.settings.seconds} s (req/s range: slowest and fastest round).`,
    "",
    table(CASE_HEADER, rows),
    "",
  ];
  if (r.throughput.jwksFetches !== null) {
    out.push(`The worker fetched the JWKS ${r.throughput.jwksFetches} time(s) in all: the key cache was warm.`, "");
  }
  if (r.miniflare) {
    const mf = r.miniflare;
    out.push(
      "Through Miniflare instead, with its JS assets layer (router, asset and KV workers) as the floor; both sides also pass Miniflare's entry worker:",
      "",
      table(CASE_HEADER, [caseRow(mf.staticFloor), caseRow(mf.publicApi, "Miniflare static", mf.staticFloor)]),
      "",
    );
  }
  return out;
}

function wasmOptSection(r) {
  const w = r.wasmOptCheck;
  if (!w) return [];
  const failed = Object.entries(w.checks).filter(([, c]) => c.status !== 200);
  const verdict = w.works
    ? `It runs in workerd and answers every route checked (${Object.keys(w.checks).join(", ")}) with 200.`
    : `It fails: ${failed.map(([name, c]) => `${name} answered ${c.status}`).join(", ")}.`;
  const t = w.timed;
  return [
    "### The wasm-opt build",
    "",
    `${verdict} Side by side with the build as it is (two workerd processes, rounds interleaved):`,
    "",
    table(CASE_HEADER, [
      caseRow(t.publicAsBuilt),
      caseRow(t.publicWasmOpt, "as built", t.publicAsBuilt),
      caseRow(t.privateAsBuilt),
      caseRow(t.privateWasmOpt, "as built", t.privateAsBuilt),
    ]),
    "",
  ];
}

function memorySection(r) {
  const m = r.memory;
  return [
    "### Peak memory of the workerd process (RSS)",
    "",
    table(
      ["idle baseline", `peak, ${m.uploads} x 10 MB uploads in flight`, "growth", "bytes in flight", "growth / in flight"],
      [[mb(m.baselineRss), mb(m.peakRss), mb(m.growth), mb(m.inFlightBytes), `${m.growthVsInFlight}x`]],
    ),
    "",
  ];
}

const OP_LABELS = {
  hs256_sign: "HS256 sign (issue a secure token)",
  hs256_verify: "HS256 verify (read a secure token)",
  rs256_verify: "RS256 verify (an Auth0 access token, key set parsed)",
  jwks_parse: "JWKS parse (a cold key cache only)",
};

function cpuSection(r) {
  const c = r.cpu;
  if (c.error) return ["### CPU per operation", "", `Not measured: ${c.error}`, ""];
  const us = (ns) => `${fmt(ns / 1000)} µs`;
  const rows = Object.keys(OP_LABELS).map((op) => [
    OP_LABELS[op],
    `${us(c.native[op].median_ns)} (${us(c.native[op].min_ns)})`,
    `${us(c.wasm[op].median_ns)} (${us(c.wasm[op].min_ns)})`,
    `${ratio(c.wasm[op].median_ns, c.native[op].median_ns).toFixed(1)}x`,
    us(c.wasmFirstCall[op]),
  ]);
  rows.push(["for reference: the RS256 signature check alone in OpenSSL (Node's crypto.verify)", us(c.nativeRsaCheck), "", "", ""]);
  return [
    "### CPU per operation",
    "",
    table(["operation", "native, median (fastest)", "wasm warm, median (fastest)", "wasm / native", "wasm, first call"], rows),
    "",
    `wasm in ${c.engine}; both builds with the worker's ${c.profile} profile.`,
    "",
  ];
}

function targetsSection(r) {
  const rows = r.targets.map((t) => [t.name, t.target, t.measured, t.met ? "yes" : "**no**", t.note]);
  return ["### Targets", "", table(["target", "wanted", "measured", "met", "note"], rows), ""];
}

export function render(r) {
  const m = r.machine;
  const header = [
    `## Benchmark results (${r.startedAt.slice(0, 10)})`,
    "",
    `${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.workerd}. Load average ` +
      `${m.loadAverageAtStart.join(" ")} at the start and ${m.loadAverageAtEnd.join(" ")} at the end ` +
      `(the machine is shared: figures move by tens of percent between runs). Load: ${r.settings.loadGenerator}.`,
    "",
  ];
  return `${[
    ...header,
    ...sizesSection(r),
    ...coldSection(r),
    ...throughputSection(r),
    ...wasmOptSection(r),
    ...memorySection(r),
    ...cpuSection(r),
    ...targetsSection(r),
  ].join("\n")}\n`;
}
