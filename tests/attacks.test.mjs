// The attack suite: each attack on the 2019 design (auth0.md §4) reproduced against the worker
// and the Action and shown to fail, then malformed input that must never draw a 5xx.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { startWorker, TEST_SECRETS, TEST_VARS, WORKER_ORIGIN, jsonBody } from "./support/worker.mjs";
import {
  startSession, sessionToken, voiceitToken, postEndpoint, complete, webmRecording, newState, SESSION_COOKIE,
} from "./support/flow.mjs";
import { startVoiceItStandin } from "./support/voiceit-standin.mjs";
import { decodeJwt, signHs256, loadAction, createTransaction } from "./support/redirect-api.mjs";

let voiceit;
let worker;
before(async () => {
  voiceit = await startVoiceItStandin({ apiKey: TEST_SECRETS.VOICEIT_API_KEY, apiToken: TEST_SECRETS.VOICEIT_API_TOKEN });
  worker = await startWorker({ VOICEIT_BASE_URL: voiceit.apiUrl, VOICEIT_LIVENESS_URL: voiceit.livenessUrl });
});
after(async () => {
  await worker?.close();
  await voiceit?.close();
});
beforeEach(() => voiceit.reset());

const VICTIM_ID = "usr_" + "a1".repeat(16);
const ATTACKER_ID = "usr_" + "b2".repeat(16);
const video = (seed = 1) => ({ viVideoData: { bytes: webmRecording(2048, seed), type: "video/webm" } });
const action = loadAction(undefined, { fetch: (url, init) => worker.fetch(url, init) });
const actionSecrets = { REDIRECT_SECRET: TEST_SECRETS.REDIRECT_SECRET, WORKER_URL: WORKER_ORIGIN };
const now = () => Math.floor(Date.now() / 1000);

function transaction(user) {
  return createTransaction({ user, secrets: actionSecrets, tenantHost: TEST_VARS.AUTH0_DOMAIN });
}

/** A result token as someone holding `secret` would forge it. */
function forgedResult(tx, claims, secret = TEST_SECRETS.REDIRECT_SECRET) {
  const iat = now();
  return signHs256({
    iss: WORKER_ORIGIN, sub: tx.event.user.user_id, iat, exp: iat + 120, jti: "forged-1",
    state: tx.state, token_use: "2fa_result", amr: ["face"], ...claims,
  }, secret);
}

// --- auth0.md §4, one test per attack ------------------------------------------------------

test("attack 1: 'enrolled' cannot bypass the factor nor overwrite an existing biometric id", async () => {
  const victim = { user_id: "auth0|victim", app_metadata: { voiceit_id: VICTIM_ID } };
  const tx = transaction(victim);
  await tx.runExecute(action);
  // The worker's own enrolled result for this user (had the attacker enrolled in a session):
  const back = await tx.runContinue(action, {
    state: tx.state,
    body: { session_token: forgedResult(tx, { outcome: "enrolled", voiceit_id: ATTACKER_ID }) },
  });
  assert.equal(back.status, "denied");
  assert.deepEqual(back.appMetadata, {});
  assert.equal(victim.app_metadata.voiceit_id, VICTIM_ID);

  // And the worker never reports 'enrolled' unless VoiceIt holds the enrollments.
  const { cookie } = await startSession(worker);
  const t = await voiceitToken(worker, cookie);
  assert.equal((await complete(worker, t.cookie)).claims.outcome, "failed");
});

test("attack 2: a result from one login cannot be replayed for another user or transaction", async () => {
  const alice = transaction({ user_id: "auth0|alice", app_metadata: { voiceit_id: VICTIM_ID } });
  await alice.runExecute(action);
  const token = forgedResult(alice, { outcome: "verified", voiceit_id: VICTIM_ID });
  const mallory = transaction({ user_id: "auth0|mallory", app_metadata: { voiceit_id: VICTIM_ID } });
  await mallory.runExecute(action);
  const other = await mallory.runContinue(action, { state: mallory.state, body: { session_token: token } });
  assert.equal(other.status, "denied");
  const sameUserLater = transaction({ user_id: "auth0|alice", app_metadata: { voiceit_id: VICTIM_ID } });
  await sameUserLater.runExecute(action);
  const replay = await sameUserLater.runContinue(action, { state: sameUserLater.state, body: { session_token: token } });
  assert.equal(replay.status, "denied");
});

test("attack 3: the 2019 hard-coded secret signs nothing either side accepts", async () => {
  const tx = transaction({ user_id: "auth0|alice", app_metadata: { voiceit_id: VICTIM_ID } });
  await tx.runExecute(action);
  const token = forgedResult(tx, { outcome: "verified", voiceit_id: VICTIM_ID, userAuthenticated: true }, "auth0-voiceit-shared");
  assert.equal((await tx.runContinue(action, { state: tx.state, body: { session_token: token } })).status, "denied");
  const res = await worker.fetch(`/2fa?state=s&session_token=${sessionToken({ secret: "auth0-voiceit-shared" })}`);
  assert.equal(res.status, 401);
  await res.arrayBuffer();
});

test("attack 4: nobody mints a VoiceIt token for a user id of their choosing", async () => {
  for (const target of ["/voiceit_token", `/voiceit_token?userId=${VICTIM_ID}`]) {
    const res = await worker.fetch(target, { method: "POST" });
    assert.equal(res.status, 401, target);
    assert.equal((await jsonBody(res)).error, "no_session");
  }
  // Inside a session the id comes from the session, whatever the request names.
  const { cookie } = await startSession(worker, { token: sessionToken({ voiceitId: ATTACKER_ID }) });
  const res = await worker.fetch(`/voiceit_token?userId=${VICTIM_ID}`, {
    method: "POST", headers: { cookie, "content-type": "application/json" }, body: JSON.stringify({ userId: VICTIM_ID }),
  });
  assert.equal(decodeJwt((await jsonBody(res)).token).payload.voiceit_id, ATTACKER_ID);
  // And a verification session can never enroll or wipe: no enrollment poisoning.
  const t = await voiceitToken(worker, cookie);
  for (const type of ["createVideoEnrollment", "deleteAllEnrollments"]) {
    const r = await postEndpoint(worker, t.cookie, { viRequestType: type, viSecureToken: t.body.token }, video());
    assert.equal(r.body.responseCode, "IRT");
  }
  assert.equal(voiceit.received.length, 0);
});

test("attack 5: the browser cannot downgrade to a check without liveness or to another modality", async () => {
  const { cookie } = await startSession(worker, { token: sessionToken({ voiceitId: VICTIM_ID }) });
  const t = await voiceitToken(worker, cookie);
  for (const type of ["videoVerification", "faceVerification", "voiceVerification", "faceVerificationWithLiveness"]) {
    const r = await postEndpoint(worker, t.cookie, { viRequestType: type, viSecureToken: t.body.token, viLCOId: "x" }, video());
    assert.equal(r.body.responseCode, "IRT", type);
  }
  assert.equal(voiceit.received.length, 0);
});

test("attack 6: a VoiceIt id in user_metadata (which users can edit) is ignored", async () => {
  const tx = transaction({ user_id: "auth0|meta", app_metadata: {}, user_metadata: { voiceit_id: ATTACKER_ID } });
  const first = await tx.runExecute(action);
  const claims = decodeJwt(new URL(first.redirect.url).searchParams.get("session_token")).payload;
  assert.equal(claims.voiceit_id, null);
  assert.equal(claims.mode, "enroll");
  const back = await tx.runContinue(action, {
    state: tx.state, body: { session_token: forgedResult(tx, { outcome: "verified", voiceit_id: ATTACKER_ID }) },
  });
  assert.equal(back.status, "denied");
});

test("attack 7: other sites cannot drive the 2FA routes, and user creation needs a session", async () => {
  const res = await worker.fetch("/voiceit_token", { method: "POST", headers: { origin: "https://evil.example" } });
  assert.equal(res.headers.get("access-control-allow-origin"), null);
  assert.ok(res.status >= 400 && res.status < 500);
  await res.arrayBuffer();
  const { cookie } = await startSession(worker);
  const cross = await worker.fetch("/voiceit_token", { method: "POST", headers: { cookie, origin: "https://evil.example" } });
  assert.equal(cross.status, 400);
  assert.equal((await jsonBody(cross)).error, "cross_origin");
  assert.equal(voiceit.received.filter((q) => q.path === "/users").length, 0);
});

test("attack 8: the result travels in a POST body, never in the /continue URL", async () => {
  const { cookie } = await startSession(worker);
  const done = await complete(worker, cookie);
  assert.match(done.html, /<form id="continue" method="post"/);
  assert.ok(!done.action.includes(done.token));
  assert.ok(!new URL(done.action).searchParams.has("session_token"));
  assert.equal(done.res.headers.get("referrer-policy"), "no-referrer");
});

test("attack 9: a crafted state cannot add parameters, and the continue target is configuration only", async () => {
  const state = "abc&enrolled=usr_x&session_token=evil#frag";
  const { cookie } = await startSession(worker, { state });
  const res = await worker.fetch("/2fa/complete?continue_uri=https://evil.example&redirect_uri=https://evil.example", {
    method: "POST", headers: { cookie },
  });
  const html = await res.text();
  const action = html.match(/action="([^"]+)"/)[1].replaceAll("&amp;", "&");
  const url = new URL(action);
  assert.equal(url.origin, `https://${TEST_VARS.AUTH0_DOMAIN}`);
  assert.deepEqual([...url.searchParams.entries()], [["state", state]]);
  assert.ok(!html.includes("evil.example"));
});

test("attack 10: a liveness challenge, or a failed check, never counts as a pass", async () => {
  // An enrolled user, so the liveness server really issues a challenge (success: true).
  const e = await startSession(worker, { token: sessionToken({ sub: "auth0|attack10" }) });
  const et = await voiceitToken(worker, e.cookie);
  let cookie = et.cookie;
  for (let i = 1; i <= 3; i++) {
    cookie = (await postEndpoint(worker, cookie, { viRequestType: "createVideoEnrollment", viSecureToken: et.body.token }, video(i))).cookie;
  }
  const voiceitId = decodeJwt(et.body.token).payload.voiceit_id;

  const { cookie: vc } = await startSession(worker, { token: sessionToken({ sub: "auth0|attack10", voiceitId }) });
  const t = await voiceitToken(worker, vc);
  const lco = await postEndpoint(worker, t.cookie, { viRequestType: "initialLiveness", viSecureToken: t.body.token });
  assert.equal(lco.body.success, true, "the challenge itself should succeed");
  // The 2019 example granted a session here; the worker must not.
  voiceit.failNext({ liveness: { success: false, retry: false }, method: "POST" });
  const r = await postEndpoint(worker, lco.cookie, {
    viRequestType: "videoVerificationWithLiveness", viSecureToken: t.body.token, viLCOId: lco.body.lcoId,
  }, video(7));
  assert.equal(r.body.success, false);
  const done = await complete(worker, r.cookie);
  assert.equal(done.claims.outcome, "failed");
});

test("attack 11: trust on first use is bounded: an enrolled account never gets an enrollment session", async () => {
  const tx = transaction({ user_id: "auth0|enrolled", app_metadata: { voiceit_id: VICTIM_ID } });
  const first = await tx.runExecute(action);
  assert.equal(decodeJwt(new URL(first.redirect.url).searchParams.get("session_token")).payload.mode, "verify");
  // A session token claiming enrollment for an id is refused by the worker.
  const res = await worker.fetch(`/2fa?state=s&session_token=${sessionToken({ voiceitId: VICTIM_ID, mode: "enroll" })}`);
  assert.equal(res.status, 401);
  await res.arrayBuffer();
});

test("attack 12: no XSS sink: data is JSON or escaped, and the pages write text only", async () => {
  const res = await worker.fetch(`/2fa?state=${encodeURIComponent("<script>alert(1)</script>")}&session_token=<img src=x onerror=alert(1)>`);
  const html = await res.text();
  assert.ok(!html.includes("<script>alert") && !html.includes("<img src=x"));
  const { cookie } = await startSession(worker, { state: '"><script>alert(1)</script>' });
  const done = await complete(worker, cookie);
  assert.ok(!done.html.includes("<script>alert"));
  assert.match(done.action, /state=%22%3E%3Cscript%3E/);
  for (const file of readdirSync(new URL("../static/", import.meta.url)).filter((f) => f.endsWith(".js"))) {
    const source = readFileSync(new URL(`../static/${file}`, import.meta.url), "utf8");
    assert.ok(!/\.innerHTML\s*=|insertAdjacentHTML|document\.write/.test(source), `${file} writes HTML`);
  }
});

test("attack 13: unknown request types answer at once in JSON, and errors carry no stack trace", async () => {
  const { cookie } = await startSession(worker);
  const t = await voiceitToken(worker, cookie);
  const started = Date.now();
  const r = await postEndpoint(worker, t.cookie, { viRequestType: "deleteVoiceEnrollments", viSecureToken: t.body.token });
  assert.equal(r.body.responseCode, "IRT");
  assert.ok(Date.now() - started < 2000);
  for (const body of [r.body, await jsonBody(await worker.fetch("/nothing"))]) {
    assert.doesNotMatch(JSON.stringify(body), /panicked|src\/|at [a-z_]+ \(/);
  }
});

test("attack 14: a silent renewal cannot skip the factor", async () => {
  const tx = createTransaction({
    user: { user_id: "auth0|silent", app_metadata: { voiceit_id: VICTIM_ID } },
    secrets: actionSecrets, tenantHost: TEST_VARS.AUTH0_DOMAIN,
    transaction: { prompt: ["none"] }, authentication: { methods: [] },
  });
  assert.equal((await tx.runExecute(action)).status, "denied");
  const refresh = createTransaction({
    user: { user_id: "auth0|silent", app_metadata: { voiceit_id: VICTIM_ID } },
    secrets: actionSecrets, tenantHost: TEST_VARS.AUTH0_DOMAIN,
    transaction: { protocol: "oauth2-refresh-token" }, authentication: { methods: [] },
  });
  assert.equal((await refresh.runExecute(action)).status, "denied");
});

// --- Malformed input: a clear 4xx, never a 5xx ---------------------------------------------

async function sessionReady() {
  const { cookie } = await startSession(worker);
  const t = await voiceitToken(worker, cookie);
  return { cookie: t.cookie, token: t.body.token };
}

async function rawEndpoint(cookie, contentType, body) {
  const res = await worker.fetch("/voiceit_endpoint", {
    method: "POST", headers: { cookie, ...(contentType ? { "content-type": contentType } : {}) }, body,
  });
  const json = await jsonBody(res);
  assert.ok(res.status < 500, `a 5xx (${res.status}) for malformed input: ${JSON.stringify(json)}`);
  return { status: res.status, body: json };
}

function multipart(boundary, parts) {
  const chunks = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n${p.headers}\r\n\r\n`, "latin1"), Buffer.isBuffer(p.body) ? p.body : Buffer.from(p.body), Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

test("multipart without a boundary is MISP 415", async () => {
  const s = await sessionReady();
  const r = await rawEndpoint(s.cookie, "multipart/form-data", "--x\r\n\r\n");
  assert.equal(r.status, 415);
  assert.equal(r.body.responseCode, "MISP");
});

test("a truncated multipart body is MISP 400", async () => {
  const s = await sessionReady();
  const full = multipart("b0undary", [
    { headers: 'Content-Disposition: form-data; name="viRequestType"', body: "createVideoEnrollment" },
    { headers: 'Content-Disposition: form-data; name="viVideoData"; filename="v.webm"\r\nContent-Type: video/webm', body: webmRecording(4000) },
  ]);
  const r = await rawEndpoint(s.cookie, "multipart/form-data; boundary=b0undary", full.subarray(0, full.length - 1500));
  assert.equal(r.status, 400);
  assert.equal(r.body.responseCode, "MISP");
});

test("a file part with filename=\"\" is MISP naming the missing filename", async () => {
  const s = await sessionReady();
  const body = multipart("bnd", [
    { headers: 'Content-Disposition: form-data; name="viRequestType"', body: "createVideoEnrollment" },
    { headers: 'Content-Disposition: form-data; name="viSecureToken"', body: s.token },
    { headers: 'Content-Disposition: form-data; name="viVideoData"; filename=""\r\nContent-Type: video/webm', body: webmRecording(1000) },
  ]);
  const r = await rawEndpoint(s.cookie, "multipart/form-data; boundary=bnd", body);
  assert.equal(r.body.responseCode, "MISP");
  assert.match(r.body.message, /filename/);
  assert.equal(voiceit.received.filter((q) => q.path.startsWith("/enrollments/video")).length, 0);
});

test("huge text fields and oversized tokens are refused with 4xx", async () => {
  const s = await sessionReady();
  let r = await postEndpoint(worker, s.cookie, { viRequestType: "x".repeat(100_000), viSecureToken: s.token });
  assert.equal(r.body.responseCode, "MISP");
  assert.ok(r.status < 500);
  r = await postEndpoint(worker, s.cookie, { viRequestType: "enoughVideoEnrollments", viSecureToken: `${s.token}${"A".repeat(3000)}` });
  assert.ok(["INVT", "MISP"].includes(r.body.responseCode));
  const big = await worker.fetch(`/2fa?state=s&session_token=${"a".repeat(5000)}.${"b".repeat(5000)}.c`);
  assert.equal(big.status, 401);
  await big.arrayBuffer();
  const cookieBomb = await worker.fetch("/voiceit_token", { method: "POST", headers: { cookie: `${SESSION_COOKIE}=${"x".repeat(8000)}` } });
  assert.equal(cookieBomb.status, 401);
  await cookieBomb.arrayBuffer();
});

test("non-UTF-8 field names and values do not break the endpoint", async () => {
  const s = await sessionReady();
  const body = multipart("nu8", [
    { headers: 'Content-Disposition: form-data; name="vi\xff\xfeType"', body: Buffer.from([0xff, 0xfe, 0x00, 0x80]) },
    { headers: 'Content-Disposition: form-data; name="viRequestType"', body: Buffer.from([0xc3, 0x28, 0xa0]) },
    { headers: 'Content-Disposition: form-data; name="viSecureToken"', body: s.token },
  ]);
  const r = await rawEndpoint(s.cookie, "multipart/form-data; boundary=nu8", body);
  assert.equal(r.body.responseCode, "IRT");
});

test("wrong content types are refused with 415, nothing forwarded", async () => {
  const s = await sessionReady();
  for (const type of ["application/json", "text/plain", "application/octet-stream", undefined]) {
    const r = await rawEndpoint(s.cookie, type, '{"viRequestType":"createVideoEnrollment"}');
    assert.equal(r.status, 415, String(type));
    assert.equal(r.body.responseCode, "MISP");
  }
  assert.equal(voiceit.received.filter((q) => q.method !== "POST" || q.path !== "/users").length, 0);
});

test("a state holding &, #, %, + or non-ASCII text reaches /continue unchanged", async () => {
  for (const state of ["a&b", "x#y", "100%", "a+b c", "état-日本-🙂", "%26enrolled%3D1"]) {
    const { cookie, res } = await startSession(worker, { state });
    assert.equal(res.status, 303, state);
    const done = await complete(worker, cookie);
    assert.equal(new URL(done.action).searchParams.get("state"), state);
    assert.equal(done.claims.state, state);
  }
});

test("a session cookie edited by the browser is refused", async () => {
  const { cookie } = await startSession(worker);
  const token = cookie.slice(SESSION_COOKIE.length + 1);
  const [h, p, sig] = token.split(".");
  const payload = JSON.parse(Buffer.from(p, "base64url"));
  payload.verified = true;
  payload.mode = "verify";
  payload.voiceit_id = VICTIM_ID;
  const edited = `${SESSION_COOKIE}=${h}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${sig}`;
  const done = await complete(worker, edited);
  assert.equal(done.res.status, 401);
  assert.equal(done.token, undefined);
});

// --- Logging: one structured line per request, nothing secret in any line -----------------

test("each request logs one JSON line with id, route, status, duration and outcome, and no secret", async () => {
  const before = worker.logs.length;
  const { cookie } = await startSession(worker);
  const t = await voiceitToken(worker, cookie);
  await postEndpoint(worker, t.cookie, { viRequestType: "createVideoEnrollment", viSecureToken: t.body.token }, video());
  await complete(worker, t.cookie);
  await new Promise((r) => setTimeout(r, 200));
  const lines = worker.logs.slice(before).map((l) => JSON.parse(l));
  const requests = lines.filter((l) => l.request_id);
  assert.equal(requests.length, 4);
  for (const l of requests) {
    for (const key of ["request_id", "route", "status", "duration_ms", "outcome"]) assert.ok(key in l, key);
  }
  const text = worker.logs.slice(before).join("\n");
  for (const secret of [...Object.values(TEST_SECRETS), t.body.token, cookie.split("=")[1], decodeJwt(t.body.token).payload.voiceit_id, "auth0|alice"]) {
    assert.ok(!text.includes(secret), `the log holds ${secret.slice(0, 12)}…`);
  }
});
