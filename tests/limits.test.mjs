// Attempt limits per Auth0 user, held in the ledger Durable Object, and per-session caps.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { startWorker, TEST_SECRETS, TEST_VARS, WORKER_ORIGIN, jsonBody } from "./support/worker.mjs";
import { startSession, sessionToken, voiceitToken, postEndpoint, complete, webmRecording } from "./support/flow.mjs";
import { startVoiceItStandin } from "./support/voiceit-standin.mjs";
import { decodeJwt, loadAction, createTransaction } from "./support/redirect-api.mjs";

const ADMIN_SECRET = "admin-secret-for-tests-0123456789abcdef";
let voiceit;
let worker;

before(async () => {
  voiceit = await startVoiceItStandin({ apiKey: TEST_SECRETS.VOICEIT_API_KEY, apiToken: TEST_SECRETS.VOICEIT_API_TOKEN });
  worker = await startWorker({
    VOICEIT_BASE_URL: voiceit.apiUrl,
    VOICEIT_LIVENESS_URL: voiceit.livenessUrl,
    VOICEIT_LIVENESS: "false",
    ATTEMPT_FREE_FAILURES: "2",
    ATTEMPT_FAILURE_CAP: "4",
    UPLOADS_PER_SESSION: "4",
    ADMIN_SECRET,
  });
});
after(async () => {
  await worker?.close();
  await voiceit?.close();
});
beforeEach(() => voiceit.reset());

const video = (seed = 1) => ({ viVideoData: { bytes: webmRecording(2048, seed), type: "video/webm" } });
let userCounter = 0;

async function enrolledUser() {
  const sub = `auth0|limits-${++userCounter}-${Date.now()}`;
  const s = await startSession(worker, { token: sessionToken({ sub }) });
  const t = await voiceitToken(worker, s.cookie);
  let cookie = t.cookie;
  for (let i = 1; i <= 3; i++) {
    cookie = (await postEndpoint(worker, cookie, { viRequestType: "createVideoEnrollment", viSecureToken: t.body.token }, video(i))).cookie;
  }
  return { sub, voiceitId: decodeJwt(t.body.token).payload.voiceit_id };
}

async function attempt(user, { fail }) {
  const s = await startSession(worker, { token: sessionToken({ sub: user.sub, voiceitId: user.voiceitId }) });
  const t = await voiceitToken(worker, s.cookie);
  if (fail) voiceit.failNext({ code: "FAIL", path: "/verification/video" });
  const r = await postEndpoint(worker, t.cookie, { viRequestType: "videoVerification", viSecureToken: t.body.token }, video(9));
  return { ...r, state: s.state };
}

const verificationsForwarded = () => voiceit.received.filter((q) => q.path === "/verification/video").length;

test("after the free failures, the next attempt must wait and is told when to retry", async () => {
  const user = await enrolledUser();
  assert.equal((await attempt(user, { fail: true })).body.responseCode, "FAIL");
  assert.equal((await attempt(user, { fail: true })).body.responseCode, "FAIL");
  const before = verificationsForwarded();
  const r = await attempt(user, { fail: false });
  assert.equal(r.status, 429);
  assert.equal(r.body.responseCode, "WAIT");
  assert.ok(r.body.retryAfter > 0 && r.body.retryAfter <= 30, String(r.body.retryAfter));
  assert.equal(r.res.headers.get("retry-after"), String(r.body.retryAfter));
  assert.match(r.body.message, /Wait \d+ seconds/);
  assert.equal(verificationsForwarded(), before, "a waiting attempt reached VoiceIt");
});

test("a success resets the run of consecutive failures", async () => {
  const user = await enrolledUser();
  assert.equal((await attempt(user, { fail: true })).body.responseCode, "FAIL");
  assert.equal((await attempt(user, { fail: false })).body.responseCode, "SUCC");
  assert.equal((await attempt(user, { fail: true })).body.responseCode, "FAIL");
  assert.equal((await attempt(user, { fail: false })).body.responseCode, "SUCC");
});

test("limits are per user: another user's failures do not slow this one", async () => {
  const a = await enrolledUser();
  const b = await enrolledUser();
  await attempt(a, { fail: true });
  await attempt(a, { fail: true });
  assert.equal((await attempt(a, { fail: false })).body.responseCode, "WAIT");
  assert.equal((await attempt(b, { fail: false })).body.responseCode, "SUCC");
});

test("at the failure cap verification locks, the login is denied saying so, and an operator reset lifts it", async () => {
  const user = await enrolledUser();
  // Alternate failures with successes so the consecutive rule never makes us wait.
  for (let i = 0; i < 4; i++) {
    assert.equal((await attempt(user, { fail: true })).body.responseCode, "FAIL");
    if (i < 3) assert.equal((await attempt(user, { fail: false })).body.responseCode, "SUCC");
  }
  const locked = await attempt(user, { fail: false });
  assert.equal(locked.status, 403);
  assert.equal(locked.body.responseCode, "LOCK");
  assert.match(locked.body.message, /operator/);

  const done = await complete(worker, locked.cookie);
  assert.equal(done.claims.outcome, "failed");
  assert.equal(done.claims.reason, "locked");

  // The Action turns that into a denial that says the check is locked.
  const action = loadAction(undefined, { fetch: (url, init) => worker.fetch(url, init) });
  const tx = createTransaction({
    user: { user_id: user.sub, app_metadata: { voiceit_id: user.voiceitId } },
    secrets: { REDIRECT_SECRET: TEST_SECRETS.REDIRECT_SECRET, WORKER_URL: WORKER_ORIGIN },
    tenantHost: TEST_VARS.AUTH0_DOMAIN,
  });
  const first = await tx.runExecute(action);
  const s = await worker.fetch(`/2fa${new URL(first.redirect.url).search}`);
  await s.arrayBuffer();
  const final = await complete(worker, s.headers.get("set-cookie").split(";")[0]);
  const back = await tx.runContinue(action, { state: tx.state, body: { session_token: final.token } });
  assert.equal(back.status, "denied");
  assert.match(back.denied, /locked/i);

  const reset = await worker.fetch("/admin/attempts/reset", {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_SECRET}`, "content-type": "application/json" },
    body: JSON.stringify({ user_id: user.sub }),
  });
  assert.equal(reset.status, 200);
  assert.deepEqual(await jsonBody(reset), { reset: true });
  assert.equal((await attempt(user, { fail: false })).body.responseCode, "SUCC");
});

test("the reset route refuses a missing or wrong admin secret", async () => {
  const body = JSON.stringify({ user_id: "auth0|x" });
  let res = await worker.fetch("/admin/attempts/reset", { method: "POST", body });
  assert.equal(res.status, 401);
  assert.equal((await jsonBody(res)).error, "invalid_admin_secret");
  res = await worker.fetch("/admin/attempts/reset", { method: "POST", body, headers: { authorization: "Bearer wrong" } });
  assert.equal(res.status, 401);
  assert.equal((await jsonBody(res)).error, "invalid_admin_secret");
});

test("the reset route is closed when no ADMIN_SECRET is configured", async () => {
  const closed = await startWorker({});
  try {
    const res = await closed.fetch("/admin/attempts/reset", { method: "POST", body: "{}", headers: { authorization: "Bearer x" } });
    assert.equal(res.status, 500);
    const body = await jsonBody(res);
    assert.equal(body.error, "config_error");
    assert.match(body.message, /ADMIN_SECRET/);
  } finally {
    await closed.close();
  }
});

test("a session may send only UPLOADS_PER_SESSION recordings; the next is refused unforwarded", async () => {
  const s = await startSession(worker, { token: sessionToken({ sub: `auth0|uploader-${Date.now()}` }) });
  const t = await voiceitToken(worker, s.cookie);
  let cookie = t.cookie;
  for (let i = 1; i <= 4; i++) {
    const r = await postEndpoint(worker, cookie, { viRequestType: "createVideoEnrollment", viSecureToken: t.body.token }, video(i));
    assert.equal(r.body.responseCode, "SUCC", `upload ${i}`);
    cookie = r.cookie;
  }
  const forwarded = voiceit.received.filter((q) => q.path === "/enrollments/video").length;
  const r = await postEndpoint(worker, cookie, { viRequestType: "createVideoEnrollment", viSecureToken: t.body.token }, video(5));
  assert.equal(r.status, 429);
  assert.equal(r.body.responseCode, "ACLR");
  assert.equal(voiceit.received.filter((q) => q.path === "/enrollments/video").length, forwarded);
});

test("simultaneous first token calls of one session create exactly one VoiceIt user", async () => {
  const s = await startSession(worker, { token: sessionToken({ sub: `auth0|racer-${Date.now()}` }) });
  const results = await Promise.all([1, 2, 3].map(() => voiceitToken(worker, s.cookie)));
  const ok = results.filter((r) => r.res.status === 200);
  assert.equal(ok.length, 1, JSON.stringify(results.map((r) => r.body)));
  for (const r of results.filter((x) => x.res.status !== 200)) {
    assert.equal(r.body.error, "session_limit");
  }
  assert.equal(voiceit.received.filter((q) => q.path === "/users" && q.method === "POST").length, 1);
});

test("attempts sent in parallel cannot all slip under the limit", async () => {
  const user = await enrolledUser();
  const s = await startSession(worker, { token: sessionToken({ sub: user.sub, voiceitId: user.voiceitId }) });
  const t = await voiceitToken(worker, s.cookie);
  // Every verification fails slowly, so all six are in flight together.
  voiceit.failNext({ code: "FAIL", path: "/verification/video", delayMs: 400, times: 6 });
  const before = verificationsForwarded();
  const results = await Promise.all([1, 2, 3, 4].map((i) =>
    postEndpoint(worker, t.cookie, { viRequestType: "videoVerification", viSecureToken: t.body.token }, video(i))));
  const codes = results.map((r) => r.body.responseCode).sort();
  // ATTEMPT_FREE_FAILURES is 2 here: two attempts reach VoiceIt, the others must wait.
  assert.deepEqual(codes, ["FAIL", "FAIL", "WAIT", "WAIT"], JSON.stringify(codes));
  assert.equal(verificationsForwarded() - before, 2);
});

test("an outage does not count as a failed attempt", async () => {
  const user = await enrolledUser();
  for (let i = 0; i < 3; i++) {
    const s = await startSession(worker, { token: sessionToken({ sub: user.sub, voiceitId: user.voiceitId }) });
    const t = await voiceitToken(worker, s.cookie);
    voiceit.failNext({ http5xx: 503, path: "/verification/video" });
    const r = await postEndpoint(worker, t.cookie, { viRequestType: "videoVerification", viSecureToken: t.body.token }, video(i));
    assert.equal(r.body.responseCode, "BERR");
  }
  assert.equal((await attempt(user, { fail: false })).body.responseCode, "SUCC");
});
