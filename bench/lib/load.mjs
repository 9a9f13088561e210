// Load at a fixed concurrency for a fixed time: wrk when it is installed (GETs, and bodiless
// POSTs through a two-line Lua script), otherwise, and for the multipart uploads, a Node
// keep-alive loader in its own worker thread, so its event loop does not share a thread with
// the stand-ins it is measuring.
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { Worker } from "node:worker_threads";

const run = promisify(execFile);

export function hasWrk() {
  try {
    execFileSync("wrk", ["--version"], { stdio: "ignore" });
    return true;
  } catch (err) {
    // wrk --version exits 1 after printing its version; only a missing binary is ENOENT.
    return err.code !== "ENOENT";
  }
}

/** "1.23ms" / "456.00us" / "2.00s" in wrk's output, as milliseconds. */
function wrkMillis(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!m) return NaN;
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60000 }[m[2]];
  return Number(m[1]) * scale;
}

function parseWrk(out) {
  const number = (re) => Number(re.exec(out)?.[1] ?? NaN);
  const percentile = (p) => wrkMillis(new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m").exec(out)?.[1] ?? "");
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: number(/(\d+) requests in/),
    rps: number(/Requests\/sec:\s+([\d.]+)/),
    p50: percentile(50),
    p99: percentile(99),
    non2xx: number(/Non-2xx or 3xx responses: (\d+)/) || 0,
    errors: errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
  };
}

/**
 * Runs wrk against `url` for `seconds` with `connections` connections and one thread (the
 * other core is the runtime's). `method` other than GET and `headers` go through a Lua script.
 */
export async function wrk(url, { connections, seconds, method = "GET", headers = {}, scratchDir }) {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "--timeout", "10s"];
  if (method !== "GET" || Object.keys(headers).length > 0) {
    const lines = [`wrk.method = ${JSON.stringify(method)}`];
    for (const [name, value] of Object.entries(headers)) {
      lines.push(`wrk.headers[${JSON.stringify(name)}] = ${JSON.stringify(value)}`);
    }
    const script = path.join(scratchDir, `wrk-${process.hrtime.bigint()}.lua`);
    fs.writeFileSync(script, `${lines.join("\n")}\n`);
    args.push("-s", script);
  }
  args.push(url);
  const { stdout } = await run("wrk", args, { timeout: (seconds + 20) * 1000 });
  return { tool: "wrk", connections, seconds, ...parseWrk(stdout) };
}

/**
 * The Node loader: `connections` loops, each sending `body` (a Buffer, or none) and reading
 * the whole answer, until `seconds` pass or `maxRequests` were sent. `upload` instead gives
 * each loop its own sessions: {recording, variants: [[{headers, head, tail}]], perVariant}.
 */
export function nodeLoad(url, { connections, seconds, method = "GET", headers = {}, body, upload, maxRequests = 1e6 }) {
  const worker = new Worker(new URL("./load-worker.mjs", import.meta.url), {
    workerData: { url, connections, seconds, method, headers, body, upload, maxRequests },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      worker.terminate();
      reject(new Error(`the Node loader did not finish within ${seconds + 60} s`));
    }, (seconds + 60) * 1000);
    worker.once("message", (result) => {
      clearTimeout(timer);
      resolve({ tool: "node", connections, seconds, ...result });
    });
    worker.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Percentile `p` (0..100) of a sorted array, nearest rank. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}
