// Runs the built worker (build/index.js + its wasm) in Miniflare, the way wrangler would, with
// the static assets bound and the given vars and secrets.
import { Miniflare } from "miniflare";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The secrets every test worker gets unless a test overrides them. */
export const TEST_SECRETS = Object.freeze({
  REDIRECT_SECRET: "redirect-secret-for-tests-0123456789abcdef",
  SESSION_SECRET: "session-secret-for-tests-0123456789abcdef",
  VOICEIT_API_KEY: "key_test0123456789abcdef0123456789",
  VOICEIT_API_TOKEN: "tok_test0123456789abcdef0123456789",
});

export const TEST_VARS = Object.freeze({
  AUTH0_DOMAIN: "tenant.test.auth0.com",
  AUTH0_CLIENT_ID: "test-client-id",
  AUTH0_AUDIENCE: "https://headlines.test",
});

/** The origin the tests reach the worker at (what `req.url()` sees). */
export const WORKER_ORIGIN = "http://localhost:8787";

/**
 * Starts the worker. `bindings` are merged over TEST_VARS and TEST_SECRETS; a value of
 * `undefined` removes a binding. With `port`, it also listens on 127.0.0.1 for a browser.
 */
export async function startWorker(bindings = {}, { port } = {}) {
  const merged = { ...TEST_VARS, ...TEST_SECRETS, ...bindings };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  const logs = [];
  const mf = new Miniflare({
    // The worker's log lines are kept for tests to read; WORKER_LOGS=1 also prints them.
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) {
        stream.setEncoding("utf8");
        stream.on("data", (chunk) => {
          logs.push(...chunk.split("\n").filter(Boolean));
          if (process.env.WORKER_LOGS === "1") process.stderr.write(chunk);
        });
      }
    },
    modules: true,
    modulesRoot: root,
    scriptPath: path.join(root, "build/index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    // Miniflare 4.20260730.0 accepts no later date; earlier than 2021-11-03 breaks file parts.
    compatibilityDate: "2026-07-30",
    bindings: merged,
    ...(port === undefined ? {} : { host: "127.0.0.1", port }),
    durableObjects: { ATTEMPTS: "AttemptLedger" },
    assets: {
      directory: path.join(root, "static"),
      binding: "ASSETS",
      routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: true },
      assetConfig: { html_handling: "auto-trailing-slash", not_found_handling: "none" },
    },
  });
  const url = await mf.ready;
  return {
    url,
    mf,
    logs,
    /** Sends a request to the worker; `target` is a path or a full URL. */
    fetch: (target, init = {}) => mf.dispatchFetch(new URL(target, WORKER_ORIGIN), { redirect: "manual", ...init }),
    close: () => mf.dispose(),
  };
}

/** The `name=value` part of a response's Set-Cookie for `name`, or null. */
export function setCookie(response, name) {
  const all = response.headers.getSetCookie ? response.headers.getSetCookie() : [response.headers.get("set-cookie")];
  const line = all.filter(Boolean).find((c) => c.startsWith(`${name}=`));
  return line ?? null;
}

/** Reads the JSON body, failing the test with the raw text when it is not JSON. */
export async function jsonBody(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`expected JSON, got ${response.status}: ${text.slice(0, 300)}`);
  }
}
