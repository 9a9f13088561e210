// The foundation: the public headline API, the app's files, config.json and the JSON errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, jsonBody, TEST_VARS } from "./support/worker.mjs";

let worker;
before(async () => {
  worker = await startWorker();
});
after(() => worker?.close());

test("GET /api/public answers JSON with a non-empty headline", async () => {
  const res = await worker.fetch("/api/public");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^application\/json/);
  const body = await jsonBody(res);
  assert.deepEqual(Object.keys(body), ["headline"]);
  assert.equal(typeof body.headline, "string");
  assert.ok(body.headline.length > 20, body.headline);
});

test("50 calls to /api/public give at least 20 different headlines", async () => {
  const seen = new Set();
  for (let i = 0; i < 50; i++) {
    const body = await jsonBody(await worker.fetch("/api/public"));
    seen.add(body.headline);
  }
  assert.ok(seen.size >= 20, `only ${seen.size} distinct headlines`);
});

test("/ serves the app page as HTML", async () => {
  const res = await worker.fetch("/");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/html/);
  const html = await res.text();
  assert.match(html, /<html/i);
  assert.match(html, /app\.js/);
});

test("the app's script and stylesheet have their content types", async () => {
  const js = await worker.fetch("/app.js");
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type"), /javascript/);
  await js.arrayBuffer();
  const css = await worker.fetch("/app.css");
  assert.equal(css.status, 200);
  assert.match(css.headers.get("content-type"), /^text\/css/);
  await css.arrayBuffer();
});

test("GET /config.json gives the public Auth0 settings from the vars, and no secret", async () => {
  const res = await worker.fetch("/config.json");
  assert.equal(res.status, 200);
  const body = await jsonBody(res);
  assert.equal(body.AUTH0_DOMAIN, TEST_VARS.AUTH0_DOMAIN);
  assert.equal(body.AUTH0_CLIENT_ID, TEST_VARS.AUTH0_CLIENT_ID);
  assert.equal(body.AUTH0_AUDIENCE, TEST_VARS.AUTH0_AUDIENCE);
  assert.equal(body.AUTH0_BASE_URL, `https://${TEST_VARS.AUTH0_DOMAIN}`);
  const text = JSON.stringify(body);
  assert.ok(!text.includes("secret-for-tests"), "a secret leaked into config.json");
});

test("an unknown path is a JSON 404 with a stable code", async () => {
  for (const path of ["/nothing", "/api/nothing", "/api/public/", "/.dev.vars"]) {
    const res = await worker.fetch(path);
    assert.equal(res.status, 404, path);
    const body = await jsonBody(res);
    assert.equal(body.error, "not_found");
    assert.match(body.message, /\w+.*\./);
  }
});

test("an unknown path with another method is a JSON 404 too", async () => {
  const res = await worker.fetch("/nothing", { method: "POST", body: "x" });
  assert.equal(res.status, 404);
  assert.equal((await jsonBody(res)).error, "not_found");
});

test("a known path with the wrong method is a JSON 405 with an Allow header", async () => {
  const cases = [
    ["POST", "/api/public", "GET, HEAD"],
    ["DELETE", "/api/private", "GET, HEAD"],
    ["PUT", "/config.json", "GET, HEAD"],
    ["GET", "/voiceit_endpoint", "POST"],
    ["GET", "/voiceit_token", "POST"],
    ["GET", "/2fa/complete", "POST"],
  ];
  for (const [method, path, allow] of cases) {
    const res = await worker.fetch(path, { method, body: method === "GET" ? undefined : "" });
    assert.equal(res.status, 405, `${method} ${path}`);
    assert.equal(res.headers.get("allow"), allow);
    const body = await jsonBody(res);
    assert.equal(body.error, "method_not_allowed");
    assert.ok(body.message.includes(allow));
  }
});

test("HEAD on the public API is answered without a body", async () => {
  const res = await worker.fetch("/api/public", { method: "HEAD" });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "");
});

test("every response says nosniff and sends no referrer", async () => {
  for (const path of ["/api/public", "/", "/nothing"]) {
    const res = await worker.fetch(path);
    await res.arrayBuffer();
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
    assert.equal(res.headers.get("referrer-policy"), "no-referrer", path);
  }
});

test("the app page carries a CSP without inline script", async () => {
  const res = await worker.fetch("/");
  await res.arrayBuffer();
  const csp = res.headers.get("content-security-policy");
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.match(csp, /frame-ancestors 'none'/);
});

test("APP_NOTICE reaches the app through config.json", async () => {
  const { startWorker: start } = await import("./support/worker.mjs");
  const w = await start({ APP_NOTICE: "Local sandbox", APP_NOTICE_URL: "http://127.0.0.1:9999/" });
  try {
    const body = await jsonBody(await w.fetch("/config.json"));
    assert.equal(body.APP_NOTICE, "Local sandbox");
    assert.equal(body.APP_NOTICE_URL, "http://127.0.0.1:9999/");
  } finally {
    await w.close();
  }
});

test("methods the runtime does not know are not taken for GET", async () => {
  for (const method of ["PROPFIND", "MKCOL", "PURGE"]) {
    const res = await worker.fetch("/api/public", { method });
    assert.equal(res.status, 405, method);
    assert.equal((await jsonBody(res)).error, "method_not_allowed");
  }
});

test("another method on a file of the app is 405, on a missing file 404", async () => {
  for (const path of ["/", "/app.js"]) {
    const res = await worker.fetch(path, { method: "DELETE" });
    assert.equal(res.status, 405, path);
    assert.equal(res.headers.get("allow"), "GET, HEAD");
    await res.arrayBuffer();
  }
  const missing = await worker.fetch("/no-such-file.js", { method: "DELETE" });
  assert.equal(missing.status, 404);
  await missing.arrayBuffer();
});

test("a missing file is logged as not_found, one JSON line with the request's fields", async () => {
  const res = await worker.fetch("/missing-for-the-log.css");
  await res.arrayBuffer();
  await new Promise((r) => setTimeout(r, 100));
  const line = worker.logs.map((l) => { try { return JSON.parse(l); } catch { return null; } })
    .find((l) => l?.path === "/missing-for-the-log.css");
  assert.ok(line, "no log line for the request");
  assert.equal(line.status, 404);
  assert.equal(line.outcome, "not_found");
  assert.equal(line.route, "Asset");
  assert.ok(line.request_id && typeof line.duration_ms === "number");
});
