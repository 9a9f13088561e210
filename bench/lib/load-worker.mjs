// The Node loader's thread: keep-alive connections, each sending one request at a time and
// reading the whole answer before the next. Posts {requests, rps, p50, p99, non2xx, errors,
// statuses, sample} back when the time is up.
//
// An upload is sent as head + recording + tail, so many sessions (each with its own cookie
// and secure token in the head) share one copy of the recording.
import http from "node:http";
import { parentPort, workerData } from "node:worker_threads";
import { percentile } from "./load.mjs";

const { url, connections, seconds, method, maxRequests, upload } = workerData;
const plainBody = workerData.body ? Buffer.from(workerData.body) : null;
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const target = new URL(url);
const recording = upload ? Buffer.from(upload.recording) : null;

/** What connection `c` sends as its `k`-th request: headers and body parts. */
function requestFor(c, k) {
  if (!upload) return { headers: workerData.headers, parts: plainBody ? [plainBody] : [] };
  const sessions = upload.variants[c % upload.variants.length];
  const v = sessions[Math.floor(k / upload.perVariant) % sessions.length];
  return { headers: v.headers, parts: [Buffer.from(v.head), recording, Buffer.from(v.tail)] };
}

function send({ headers, parts }) {
  const length = parts.reduce((sum, p) => sum + p.length, 0);
  return new Promise((resolve) => {
    const started = performance.now();
    const req = http.request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method,
        headers: parts.length > 0 ? { ...headers, "content-length": length } : headers,
        timeout: 30000,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode,
            ms: performance.now() - started,
            text: Buffer.concat(chunks).toString("utf8", 0, 300),
          }),
        );
        res.on("error", () => resolve({ status: 0, ms: performance.now() - started }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: 0, ms: performance.now() - started }));
    for (const part of parts.slice(0, -1)) req.write(part);
    req.end(parts.at(-1));
  });
}

const latencies = [];
const statuses = {};
let sent = 0;
let sample = null;
const startedAt = performance.now();
const deadline = startedAt + seconds * 1000;

async function loop(c) {
  for (let k = 0; performance.now() < deadline && sent < maxRequests; k++) {
    sent += 1;
    const r = await send(requestFor(c, k));
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.status >= 200 && r.status < 400) latencies.push(r.ms);
    else sample ??= `${r.status} ${r.text ?? ""}`;
  }
}

await Promise.all(Array.from({ length: connections }, (_, c) => loop(c)));
const elapsed = (performance.now() - startedAt) / 1000;
agent.destroy();
latencies.sort((a, b) => a - b);
const ok = latencies.length;
parentPort.postMessage({
  requests: sent,
  rps: ok / elapsed,
  p50: percentile(latencies, 50),
  p99: percentile(latencies, 99),
  non2xx: sent - ok - (statuses[0] ?? 0),
  errors: statuses[0] ?? 0,
  statuses,
  sample,
});
