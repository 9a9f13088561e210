// The local sandbox: an Auth0 tenant and VoiceIt on loopback, a control page to make VoiceIt
// fail on purpose, and the worker configured to use them. The worker is not told it is in a
// sandbox; only its URLs and secrets differ from a real deployment.
//
// Run directly (`node scripts/sandbox.mjs`, which `npm start` does without .dev.vars) it
// starts the worker with `wrangler dev`; tests import `startSandbox` and run it in Miniflare.
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { startAuth0Tenant } from "../tests/support/auth0-tenant.mjs";
import { startVoiceItStandin } from "../tests/support/voiceit-standin.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export const SANDBOX_CLIENT_ID = "sandbox-spa-client";
export const SANDBOX_AUDIENCE = "https://headlines.sandbox";
const NOTICE = "Local sandbox: no real Auth0 or VoiceIt account is used. Sign in with any name.";

/**
 * Faults the control page offers, each a VoiceIt stand-in `failNext` spec. Each is aimed at
 * the call it names (method and path), or the request before it (counting enrollments, the
 * liveness challenge) would take it and the recording would pass.
 */
const ENROLL = { method: "POST", path: "/enrollments/" };
const VERIFY = { method: "POST", path: "/verification/" };
const FAULTS = [
  ["ENROLL_FNFD", "Next enrollment recording: no face found (FNFD)", { code: "FNFD", ...ENROLL }],
  ["ENROLL_FTMF", "Next enrollment recording: too many faces (FTMF)", { code: "FTMF", ...ENROLL }],
  ["ENROLL_SSTQ", "Next enrollment recording: speaking too quietly (SSTQ)", { code: "SSTQ", ...ENROLL }],
  ["ENROLL_PDNM", "Next enrollment recording: phrase does not match (PDNM)", { code: "PDNM", ...ENROLL }],
  ["LIVENESS_RETRY", "Next liveness verification: fails, may retry", { liveness: { success: false, retry: true }, method: "POST" }],
  ["LIVENESS_FAIL", "Next liveness verification: fails for good", { liveness: { success: false, retry: false }, method: "POST" }],
  ["VERIFY_FAIL", "Next verification without liveness: not the same person (FAIL)", { code: "FAIL", ...VERIFY }],
  ["HTTP503", "Next VoiceIt call: answers 503", { http5xx: 503 }],
  ["GARBAGE", "Next VoiceIt call: answers garbage", { garbage: true }],
  ["SLOW", "Next VoiceIt call: answers after 20 s", { delayMs: 20000 }],
];

const secret = () => randomBytes(32).toString("base64url");

/**
 * Starts the stand-ins and the control page, and returns the worker's bindings. Ports 0 pick
 * free ones. `workerUrl` is where the browser will reach the worker.
 */
export async function startStandins({ workerUrl, tenantPort = 0, voiceitPort = 0, livenessPort = 0, controlPort = 0 }) {
  const secrets = {
    REDIRECT_SECRET: secret(),
    SESSION_SECRET: secret(),
    VOICEIT_API_KEY: `key_${randomBytes(16).toString("hex")}`,
    VOICEIT_API_TOKEN: `tok_${randomBytes(16).toString("hex")}`,
    ADMIN_SECRET: secret(),
  };
  const voiceit = await startVoiceItStandin({
    apiKey: secrets.VOICEIT_API_KEY,
    apiToken: secrets.VOICEIT_API_TOKEN,
    apiPort: voiceitPort,
    livenessPort,
  });
  const tenant = await startAuth0Tenant({
    port: tenantPort,
    audience: SANDBOX_AUDIENCE,
    clientId: SANDBOX_CLIENT_ID,
    secrets: { REDIRECT_SECRET: secrets.REDIRECT_SECRET, WORKER_URL: workerUrl },
  });
  const control = await startControlPage({ voiceit, workerUrl, adminSecret: secrets.ADMIN_SECRET, port: controlPort });

  const bindings = {
    AUTH0_DOMAIN: tenant.host,
    AUTH0_BASE_URL: tenant.baseUrl,
    AUTH0_CLIENT_ID: SANDBOX_CLIENT_ID,
    AUTH0_AUDIENCE: SANDBOX_AUDIENCE,
    VOICEIT_BASE_URL: voiceit.apiUrl,
    VOICEIT_LIVENESS_URL: voiceit.livenessUrl,
    APP_NOTICE: NOTICE,
    APP_NOTICE_URL: control.url,
    ...secrets,
  };
  return {
    bindings,
    tenant,
    voiceit,
    control,
    async close() {
      await control.close();
      await tenant.close();
      await voiceit.close();
    },
  };
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A page with plain forms (no script) that queues VoiceIt faults and resets attempt limits. */
async function startControlPage({ voiceit, workerUrl, adminSecret, port }) {
  let notice = "";
  const server = createServer(async (req, res) => {
    try {
      if (req.method === "POST") {
        const body = new URLSearchParams(await readBody(req));
        if (req.url === "/fail-next") {
          const fault = FAULTS.find(([id]) => id === body.get("fault"));
          if (fault) {
            voiceit.failNext({ ...fault[2] });
            notice = `Queued: the next matching VoiceIt answer will be "${fault[1]}".`;
          }
        } else if (req.url === "/reset-attempts") {
          const userId = body.get("user_id") ?? "";
          const answer = await fetch(`${workerUrl}/admin/attempts/reset`, {
            method: "POST",
            headers: { authorization: `Bearer ${adminSecret}`, "content-type": "application/json" },
            body: JSON.stringify({ user_id: userId }),
          }).then((r) => r.json()).catch((e) => ({ error: e.message }));
          notice = answer.reset ? `Attempt limits reset for ${userId}.` : `Reset failed: ${answer.message ?? answer.error}`;
        }
        res.writeHead(303, { location: "/" }).end();
        return;
      }
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        "cache-control": "no-store",
      });
      res.end(controlHtml(voiceit, notice));
      notice = "";
    } catch (err) {
      res.writeHead(500, { "content-type": "text/plain" }).end(`sandbox control failed: ${err.message}`);
    }
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}/`;
  return {
    url,
    close: () => new Promise((resolve) => server.close(resolve)).then(() => server.closeAllConnections?.()),
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = "";
    req.setEncoding("utf8");
    req.on("data", (c) => {
      data += c;
      if (data.length > 10_000) req.destroy();
    });
    req.on("end", () => resolve(data));
    req.on("error", reject);
  });
}

function controlHtml(voiceit, notice) {
  const users = [...voiceit.state.users.entries()].map(
    ([id, e]) => `<li><code>${escapeHtml(id)}</code>: ${e.video.length} video, ${e.face.length} face, ${e.voice.length} voice enrollments</li>`,
  );
  const buttons = FAULTS.map(
    ([id, label]) => `<button name="fault" value="${id}">${escapeHtml(label)}</button>`,
  ).join("\n");
  const recent = voiceit.received.slice(-8).reverse().map(
    (r) => `<li><code>${escapeHtml(r.method)} ${escapeHtml(r.host)}${escapeHtml(r.path)}</code> → ${r.response?.status ?? "?"} ${escapeHtml(r.response?.body?.responseCode ?? (r.response?.body?.success === undefined ? "" : `success=${r.response.body.success}`))}</li>`,
  );
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sandbox controls</title>
<style>body{font:16px system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1d2330}
h1{font-size:1.5rem}button{margin:.25rem;padding:.5rem .8rem;font:inherit;border:1px solid #445;border-radius:.4rem;background:#f4f6fb;cursor:pointer}
button:focus-visible{outline:3px solid #e8731a}.notice{background:#e7f6ea;border-left:4px solid #2c8a45;padding:.6rem}code{font-size:.9em}</style></head>
<body><h1>Local sandbox controls</h1>
<p>This page belongs to the local sandbox. The Auth0 tenant and VoiceIt are stand-ins in memory on this machine; nothing here reaches a real service.</p>
${notice ? `<p class="notice" role="status">${escapeHtml(notice)}</p>` : ""}
<h2>Make the next VoiceIt answer fail</h2>
<form method="post" action="/fail-next">${buttons}</form>
<h2>Reset a user's attempt limits</h2>
<form method="post" action="/reset-attempts"><label>Auth0 user id <input name="user_id" value="auth0|sandbox-" size="32"></label> <button>Reset</button></form>
<h2>VoiceIt users</h2><ul>${users.join("") || "<li>none yet</li>"}</ul>
<h2>Last VoiceIt requests</h2><ul>${recent.join("") || "<li>none yet</li>"}</ul>
<p><a href="/">Refresh</a></p></body></html>`;
}

/** Runs the whole sandbox with `wrangler dev`, until Ctrl-C. */
async function main() {
  const workerPort = Number(process.env.PORT || 8787);
  const workerUrl = `http://127.0.0.1:${workerPort}`;
  const standins = await startStandins({
    workerUrl,
    tenantPort: Number(process.env.SANDBOX_TENANT_PORT || 8801),
    voiceitPort: Number(process.env.SANDBOX_VOICEIT_PORT || 8802),
    livenessPort: Number(process.env.SANDBOX_LIVENESS_PORT || 8803),
    controlPort: Number(process.env.SANDBOX_CONTROL_PORT || 8804),
  });
  const vars = Object.entries(standins.bindings).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
  const wrangler = spawn(
    path.join(root, "node_modules/.bin/wrangler"),
    ["dev", "--ip", "127.0.0.1", "--port", String(workerPort), "--show-interactive-dev-session=false", ...vars],
    { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
  );
  let announced = false;
  wrangler.stdout.setEncoding("utf8");
  wrangler.stdout.on("data", (chunk) => {
    process.stdout.write(chunk);
    if (!announced && chunk.includes("Ready on")) {
      announced = true;
      console.log(`
  Mode: LOCAL SANDBOX (no .dev.vars: Auth0 and VoiceIt are stand-ins on this machine)
  Open:            ${workerUrl}/
  Sandbox tenant:  ${standins.tenant.baseUrl}  (sign in with any name)
  Sandbox control: ${standins.control.url}  (make the next VoiceIt answer fail)
  Stop with Ctrl-C.
`);
    }
  });
  const stop = async (code) => {
    wrangler.kill("SIGINT");
    await standins.close();
    process.exit(code);
  };
  process.on("SIGINT", () => stop(0));
  process.on("SIGTERM", () => stop(0));
  wrangler.on("exit", (code) => stop(code ?? 0));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(`[sandbox] could not start: ${err.message}`);
    process.exit(1);
  });
}
