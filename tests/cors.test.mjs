// CORS: /api/* answers only configured app origins, one at a time; 2FA routes never.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, jsonBody } from "./support/worker.mjs";

const APP = "https://app.example";
const OTHER_APP = "http://127.0.0.1:5173";
let worker;
before(async () => {
  worker = await startWorker({ APP_ORIGINS: `${APP}, ${OTHER_APP}` });
});
after(() => worker?.close());

test("a configured origin is echoed alone, with Vary: Origin", async () => {
  for (const origin of [APP, OTHER_APP]) {
    const res = await worker.fetch("/api/public", { headers: { origin } });
    await res.arrayBuffer();
    assert.equal(res.headers.get("access-control-allow-origin"), origin);
    assert.match(res.headers.get("vary"), /Origin/);
  }
});

test("an unknown origin gets no CORS grant", async () => {
  for (const origin of ["https://evil.example", "https://app.example.evil", "null"]) {
    const res = await worker.fetch("/api/public", { headers: { origin } });
    await res.arrayBuffer();
    assert.equal(res.headers.get("access-control-allow-origin"), null, origin);
  }
});

test("a preflight from a configured origin is answered with the API's method and header", async () => {
  const res = await worker.fetch("/api/private", {
    method: "OPTIONS",
    headers: { origin: APP, "access-control-request-method": "GET", "access-control-request-headers": "authorization" },
  });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get("access-control-allow-origin"), APP);
  assert.match(res.headers.get("access-control-allow-headers"), /authorization/);
  assert.match(res.headers.get("access-control-allow-methods"), /GET/);
});

test("a preflight from another origin is refused with a JSON error", async () => {
  const res = await worker.fetch("/api/private", { method: "OPTIONS", headers: { origin: "https://evil.example" } });
  assert.equal(res.status, 400);
  assert.equal((await jsonBody(res)).error, "origin_not_allowed");
  assert.equal(res.headers.get("access-control-allow-origin"), null);
});

test("the 2FA routes carry no CORS headers, even for a configured app origin", async () => {
  for (const [method, path] of [["GET", "/2fa"], ["POST", "/voiceit_token"], ["POST", "/2fa/complete"]]) {
    const res = await worker.fetch(path, { method, headers: { origin: APP } });
    await res.arrayBuffer();
    assert.equal(res.headers.get("access-control-allow-origin"), null, path);
  }
  const pre = await worker.fetch("/voiceit_endpoint", { method: "OPTIONS", headers: { origin: APP } });
  assert.ok(pre.status >= 400, `preflight on a 2FA route answered ${pre.status}`);
  await pre.arrayBuffer();
});

test("the Web SDK endpoint refuses a post from another site", async () => {
  const { FormData } = await import("miniflare");
  const form = new FormData();
  form.append("viRequestType", "enoughVideoEnrollments");
  const res = await worker.fetch("/voiceit_endpoint", { method: "POST", headers: { origin: "https://evil.example" }, body: form });
  const body = await jsonBody(res);
  assert.equal(res.status, 403);
  assert.equal(body.responseCode, "INVT");
});

test("a same-origin form POST with Origin: null (no-referrer) is accepted; a cross-site fetch is not", async () => {
  const { startSession, complete } = await import("./support/flow.mjs");
  const { cookie } = await startSession(worker);
  const ok = await complete(worker, cookie, { origin: "null", "sec-fetch-site": "same-origin" });
  assert.equal(ok.res.status, 200);
  const again = await startSession(worker);
  const refused = await complete(worker, again.cookie, { "sec-fetch-site": "cross-site" });
  assert.equal(refused.res.status, 400);
  assert.match(refused.html, /cross_origin/);
});
