// The worker's half of the Auth0 hand-off: GET /2fa starts a bound session, POST /2fa/complete
// hands a bound result token to /continue, and the project's Action accepts or refuses it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, TEST_SECRETS, TEST_VARS, WORKER_ORIGIN } from "./support/worker.mjs";
import { startSession, sessionToken, complete, newState, SESSION_COOKIE } from "./support/flow.mjs";
import { decodeJwt, signHs256, verifyHs256, loadAction, createTransaction } from "./support/redirect-api.mjs";

let worker;
before(async () => {
  worker = await startWorker();
});
after(() => worker?.close());

const VOICEIT_ID = "usr_0123456789abcdef0123456789abcdef";

function assertErrorPage(res, html, status = 401) {
  assert.equal(res.status, status);
  assert.match(res.headers.get("content-type"), /^text\/html/);
  assert.match(html, /<h1>/);
  assert.doesNotMatch(html, /panicked|at src\//);
}

test("a valid session token starts a session: a protective cookie and a redirect to the page", async () => {
  const { res, setCookieLine } = await startSession(worker);
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "/biometric");
  assert.ok(setCookieLine, "no session cookie");
  for (const attr of ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"]) {
    assert.ok(setCookieLine.includes(attr), `cookie lacks ${attr}`);
  }
  const maxAge = Number(setCookieLine.match(/Max-Age=(\d+)/)[1]);
  assert.ok(maxAge > 0 && maxAge <= 600, `Max-Age ${maxAge}`);
  assert.equal(res.headers.get("referrer-policy"), "no-referrer");
});

test("the session cookie is signed by the worker with its own typ, for ten minutes at most", async () => {
  const { cookie } = await startSession(worker);
  const token = cookie.slice(SESSION_COOKIE.length + 1);
  const { header, payload } = decodeJwt(token);
  assert.equal(header.alg, "HS256");
  assert.equal(header.typ, "vi2fa-session+jwt");
  assert.ok(payload.exp - payload.iat <= 600);
  assert.equal(payload.sub, "auth0|alice");
  assert.equal(payload.mode, "enroll");
  // Not signed with the redirect secret: the Action's key cannot forge or read it as its own.
  assert.throws(() => verifyHs256(token, TEST_SECRETS.REDIRECT_SECRET), /signature/i);
  assert.throws(() => verifyHs256(token, TEST_SECRETS.SESSION_SECRET), /signature/i);
});

for (const [name, query] of [
  ["no session_token", () => `state=${newState()}`],
  ["no state", () => `session_token=${sessionToken()}`],
  ["nothing at all", () => ""],
  ["an expired session token", () => `state=s&session_token=${sessionToken({ lifetime: -120 })}`],
  ["a token from another tenant", () => `state=s&session_token=${sessionToken({ iss: "evil.auth0.com" })}`],
  ["a token signed with another secret", () => `state=s&session_token=${sessionToken({ secret: "x".repeat(40) })}`],
  ["a token signed with the session secret", () => `state=s&session_token=${sessionToken({ secret: TEST_SECRETS.SESSION_SECRET })}`],
  ["a tampered token", () => {
    const t = sessionToken().split(".");
    const body = JSON.parse(Buffer.from(t[1], "base64url"));
    body.sub = "auth0|mallory";
    return `state=s&session_token=${t[0]}.${Buffer.from(JSON.stringify(body)).toString("base64url")}.${t[2]}`;
  }],
  ["an alg:none token", () => {
    const b = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    return `state=s&session_token=${b({ alg: "none" })}.${b({ sub: "auth0|x", iss: TEST_VARS.AUTH0_DOMAIN, exp: now + 60, mode: "enroll" })}.`;
  }],
  ["a token without sub", () => `state=s&session_token=${sessionToken({ sub: "" })}`],
  ["two session tokens", () => `state=s&session_token=${sessionToken()}&session_token=${sessionToken()}`],
  ["a verify token without a VoiceIt id", () => `state=s&session_token=${sessionToken({ mode: "verify" })}`],
]) {
  test(`GET /2fa with ${name} is a 401 error page and sets no cookie`, async () => {
    const res = await worker.fetch(`/2fa?${query()}`);
    const html = await res.text();
    assertErrorPage(res, html);
    assert.equal(res.headers.get("set-cookie"), null);
  });
}

test("completing an enrollment the worker never saw hands Auth0 a 'failed' outcome", async () => {
  // No VoiceIt user was created in this session, so there is nothing VoiceIt could confirm.
  const { cookie, state } = await startSession(worker);
  const done = await complete(worker, cookie);
  assert.equal(done.res.status, 200);
  assert.equal(done.claims.outcome, "failed");
  assert.equal(done.claims.state, state);
  assert.deepEqual(done.claims.amr, []);
});

test("a verification the worker never saw succeed completes as 'failed', whatever the browser says", async () => {
  const token = sessionToken({ sub: "auth0|bob", voiceitId: VOICEIT_ID });
  const { cookie } = await startSession(worker, { token });
  const res = await worker.fetch("/2fa/complete?outcome=verified", {
    method: "POST",
    headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
    body: "outcome=verified&verified=true",
  });
  const html = await res.text();
  const claims = decodeJwt(html.match(/name="session_token" value="([^"]+)"/)[1]).payload;
  assert.equal(claims.outcome, "failed");
});

test("the result token is HS256 with the redirect secret, bound to user, state and five minutes", async () => {
  const state = newState();
  const { cookie } = await startSession(worker, { state, token: sessionToken({ sub: "auth0|carol" }) });
  const done = await complete(worker, cookie);
  const { header, payload } = decodeJwt(done.token);
  assert.equal(header.alg, "HS256");
  for (const claim of ["iss", "sub", "iat", "exp", "jti", "state", "outcome"]) {
    assert.ok(payload[claim] !== undefined, `${claim} missing`);
  }
  assert.equal(payload.iss, WORKER_ORIGIN);
  assert.equal(payload.sub, "auth0|carol");
  assert.equal(payload.state, state);
  assert.equal(payload.token_use, "2fa_result");
  assert.ok(payload.exp - payload.iat <= 300);
  assert.ok(payload.jti.length >= 16);
  assert.ok(Array.isArray(payload.amr));
});

test("the continue form POSTs to the configured tenant with the state encoded byte for byte", async () => {
  const state = "a&b=c#d%e+f é/?x";
  const { cookie } = await startSession(worker, { state });
  const done = await complete(worker, cookie);
  assert.match(done.html, /<form id="continue" method="post"/);
  const url = new URL(done.action);
  assert.equal(url.origin, `https://${TEST_VARS.AUTH0_DOMAIN}`);
  assert.equal(url.pathname, "/continue");
  assert.deepEqual([...url.searchParams.keys()], ["state"]);
  assert.equal(url.searchParams.get("state"), state);
  assert.doesNotMatch(done.html, /<script>/);
});

test("completing ends the session: the cookie is cleared", async () => {
  const { cookie } = await startSession(worker);
  const done = await complete(worker, cookie);
  assert.match(done.cookieLine, /Max-Age=0/);
});

test("completing without a session is a 401 error page", async () => {
  const done = await complete(worker, null);
  assertErrorPage(done.res, done.html);
  assert.equal(done.token, undefined);
});

test("completing from another site's page is refused", async () => {
  const { cookie } = await startSession(worker);
  const done = await complete(worker, cookie, { origin: "https://evil.example" });
  assertErrorPage(done.res, done.html, 400);
  assert.equal(done.token, undefined);
});

// The Action, run through the redirect-API stand-in, is the judge of result tokens.
function actionRun({ user, state }) {
  const action = loadAction(undefined, { fetch: (url, init) => worker.fetch(url, init) });
  const tx = createTransaction({
    user,
    secrets: { REDIRECT_SECRET: TEST_SECRETS.REDIRECT_SECRET, WORKER_URL: WORKER_ORIGIN },
    tenantHost: TEST_VARS.AUTH0_DOMAIN,
  });
  return { action, tx };
}

test("a worker result token replayed with another state is refused by the Action", async () => {
  const user = { user_id: "auth0|dave", name: "Dave", app_metadata: {} };
  const { action, tx } = actionRun({ user });
  const first = await tx.runExecute(action);
  assert.equal(first.status, "redirected");
  const redirect = new URL(first.redirect.url);
  assert.equal(redirect.origin + redirect.pathname, `${WORKER_ORIGIN}/2fa`);

  // The worker takes the real session token; its result is for another transaction's state.
  const { cookie } = await startSession(worker, {
    state: "another-transaction",
    token: redirect.searchParams.get("session_token"),
  });
  const done = await complete(worker, cookie);
  const back = await tx.runContinue(action, { state: tx.state, body: { session_token: done.token } });
  assert.equal(back.status, "denied");
});

test("a worker result token for another user is refused by the Action", async () => {
  const { action, tx } = actionRun({ user: { user_id: "auth0|erin", app_metadata: {} } });
  await tx.runExecute(action);
  const { cookie } = await startSession(worker, { state: tx.state, token: sessionToken({ sub: "auth0|frank" }) });
  const done = await complete(worker, cookie);
  const back = await tx.runContinue(action, { state: tx.state, body: { session_token: done.token } });
  assert.equal(back.status, "denied");
});

test("the session token the Action makes is accepted by the worker as is", async () => {
  const user = { user_id: "auth0|gina", app_metadata: { voiceit_id: VOICEIT_ID } };
  const { action, tx } = actionRun({ user });
  const first = await tx.runExecute(action);
  const redirect = new URL(first.redirect.url);
  const res = await worker.fetch(`/2fa${redirect.search}`);
  await res.arrayBuffer();
  assert.equal(res.status, 303);
  const payload = decodeJwt(res.headers.get("set-cookie").split(";")[0].split("=")[1]).payload;
  assert.equal(payload.sub, "auth0|gina");
  assert.equal(payload.mode, "verify");
  assert.equal(payload.voiceit_id, VOICEIT_ID);
  assert.equal(payload.state, tx.state);
});

test("POST /2fa/redeem spends a result token once; a second use is 409 result_replayed", async () => {
  const { cookie } = await startSession(worker);
  const done = await complete(worker, cookie);
  const redeem = () => worker.fetch("/2fa/redeem", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token: done.token }),
  });
  const first = await redeem();
  assert.equal(first.status, 200);
  assert.deepEqual(await first.json(), { redeemed: true });
  const second = await redeem();
  assert.equal(second.status, 409);
  assert.equal((await second.json()).error, "result_replayed");
});

test("POST /2fa/redeem refuses what is not this worker's result token", async () => {
  const forged = signHs256({ iss: WORKER_ORIGIN, sub: "auth0|x", jti: "j", token_use: "2fa_result", exp: Math.floor(Date.now() / 1000) + 60 }, "another-secret-another-secret-0123456789");
  const session = sessionToken();
  for (const token of [forged, session, "junk"]) {
    const res = await worker.fetch("/2fa/redeem", { method: "POST", body: JSON.stringify({ token }) });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error, "invalid_result_token");
  }
  const bad = await worker.fetch("/2fa/redeem", { method: "POST", body: "not json" });
  assert.equal(bad.status, 400);
  await bad.arrayBuffer();
});

test("one redirect opens one session: replaying the /2fa link is refused", async () => {
  const state = newState();
  const token = sessionToken({ sub: "auth0|replayer" });
  const first = await startSession(worker, { state, token });
  assert.equal(first.res.status, 303);
  const again = await worker.fetch(`/2fa?${new URLSearchParams({ state, session_token: token })}`);
  assert.equal(again.status, 401);
  assert.equal(again.headers.get("set-cookie"), null);
  assert.match(await again.text(), /no_session/);
  const otherState = await worker.fetch(`/2fa?${new URLSearchParams({ state: newState(), session_token: token })}`);
  assert.equal(otherState.status, 401);
  await otherState.arrayBuffer();
});

test("a session completes once, even with a copy of its cookie", async () => {
  const { cookie } = await startSession(worker);
  const first = await complete(worker, cookie);
  assert.equal(first.res.status, 200);
  const second = await complete(worker, cookie);
  assert.equal(second.res.status, 401);
  assert.equal(second.token, undefined);
});
