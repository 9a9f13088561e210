// The Auth0 post-login Action, run through the stand-in of Auth0's redirect API.
// Run with: node --test tests/action.test.mjs
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";

import {
  base64urlJson,
  createTransaction,
  decodeJwt,
  fakeRedeemer,
  loadAction,
  signHs256,
  verifyHs256,
} from "./support/redirect-api.mjs";

const SECRET = "test-redirect-secret-7f3a9c1e5b2d4f6a8c0e";
// The Action spends each result at the worker's /2fa/redeem; this answers as the worker does.
const redeemer = fakeRedeemer(SECRET);
const action = loadAction(undefined, { fetch: redeemer });
const WORKER_URL = "https://2fa.example.workers.dev";
const CHECK_URL = `${WORKER_URL}/2fa`;
const TENANT_HOST = "tenant.eu.auth0.com";
const USER_ID = "auth0|65a1f0c2d3e4b5a6c7d8e9f0";
const VOICEIT_ID = "usr_0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const NAME_CLAIM = "https://auth0-voiceit-worker/name";

const MESSAGES = {
  misconfigured:
    "Biometric sign-in is not configured correctly. Please contact the site administrator.",
  interactionRequired: "Biometric verification is required: sign in again interactively.",
  profileUnreadable:
    "Your biometric profile could not be read. Please contact the site administrator.",
  unchecked:
    "Biometric verification could not be checked: the result was missing, expired or not " +
    "issued for this sign-in. Please sign in again.",
  failed: "Biometric verification failed. Please sign in again to retry.",
  profileMismatch:
    "Biometric verification failed: the check did not match this account's biometric " +
    "profile. Please sign in again.",
  alreadyEnrolled:
    "Biometric enrollment was refused: this account already has a biometric profile. " +
    "Please contact the site administrator to reset it.",
};

const nowSeconds = () => Math.floor(Date.now() / 1000);
const secondsAgo = (seconds) => new Date(Date.now() - seconds * 1000).toISOString();

/** A login for the test user; `voiceitId` puts an id in app_metadata. */
function newLogin({ voiceitId, user = {}, secrets = {}, transaction = {}, methods } = {}) {
  return createTransaction({
    tenantHost: TENANT_HOST,
    user: {
      user_id: USER_ID,
      name: "Ada Lovelace",
      nickname: "ada",
      email: "ada@example.com",
      app_metadata: voiceitId === undefined ? {} : { voiceit_id: voiceitId },
      ...user,
    },
    secrets: { REDIRECT_SECRET: SECRET, WORKER_URL, ...secrets },
    transaction,
    authentication: methods ? { methods } : undefined,
    request: { ip: "198.51.100.23" },
  });
}

/** Runs the first half of a login and checks it was sent to the worker. */
async function redirectedLogin(options) {
  const login = newLogin(options);
  const result = await login.runExecute(action);
  assert.equal(result.status, "redirected", "the login should have been sent to the worker");
  return login;
}

/** The claims of a worker result for `login`, with `overrides` (undefined removes a claim). */
function resultClaims(login, overrides = {}) {
  const iat = nowSeconds();
  const claims = {
    iss: WORKER_URL,
    sub: USER_ID,
    iat,
    exp: iat + 120,
    jti: randomUUID(),
    state: login.state,
    token_use: "2fa_result",
    outcome: "verified",
    voiceit_id: VOICEIT_ID,
    amr: ["face", "vbm"],
    ...overrides,
  };
  for (const [name, value] of Object.entries(claims)) {
    if (value === undefined) delete claims[name];
  }
  return claims;
}

/** Posts a result token to /continue the way the worker's page does. */
function postResult(login, token) {
  return login.runContinue(action, { body: { state: login.state, session_token: token } });
}

function assertDenied(result, message) {
  assert.equal(result.error, null);
  assert.equal(result.status, "denied");
  assert.equal(result.denied, message);
  assert.deepEqual(result.recordedMethods, []);
  assert.deepEqual(result.accessTokenClaims, {});
  assert.deepEqual(result.idTokenClaims, {});
  assert.equal(result.redirect, null);
}

describe("first half of the login (onExecutePostLogin)", () => {
  it("an un-enrolled user is sent to WORKER_URL/2fa with an enroll session token", async () => {
    const login = newLogin();
    const result = await login.runExecute(action);

    assert.equal(result.error, null);
    assert.equal(result.status, "redirected");
    assert.equal(result.redirect.target, CHECK_URL);
    assert.deepEqual(Object.keys(result.redirect.query), ["session_token", "state"]);
    assert.equal(result.redirect.query.state, login.state);

    const url = new URL(result.redirect.url);
    assert.equal(url.origin + url.pathname, CHECK_URL);

    const token = result.redirect.query.session_token;
    const { header, payload } = decodeJwt(token);
    assert.deepEqual(header, { alg: "HS256", typ: "JWT" });
    assert.deepEqual(verifyHs256(token, SECRET), payload);
    assert.equal(payload.sub, USER_ID);
    assert.equal(payload.iss, TENANT_HOST);
    assert.equal(payload.exp - payload.iat, 300);
    assert.ok(Math.abs(payload.iat - nowSeconds()) <= 2);
    assert.equal(payload.ip, "198.51.100.23");
    assert.equal(payload.mode, "enroll");
    assert.equal(payload.voiceit_id, null);
    assert.equal("state" in payload, false);
  });

  it("an enrolled user gets a verify session token carrying their VoiceIt id", async () => {
    const login = newLogin({ voiceitId: VOICEIT_ID });
    const result = await login.runExecute(action);

    assert.equal(result.status, "redirected");
    const { payload } = decodeJwt(result.redirect.query.session_token);
    assert.equal(payload.mode, "verify");
    assert.equal(payload.voiceit_id, VOICEIT_ID);
    assert.equal(payload.sub, USER_ID);
  });

  it("a redirect sets no claims and records nothing", async () => {
    const result = await newLogin().runExecute(action);

    assert.deepEqual(result.accessTokenClaims, {});
    assert.deepEqual(result.idTokenClaims, {});
    assert.deepEqual(result.recordedMethods, []);
    assert.deepEqual(result.appMetadata, {});
  });

  it("a WORKER_URL with a trailing slash still sends the user to /2fa once", async () => {
    const login = newLogin({ secrets: { WORKER_URL: `${WORKER_URL}/` } });
    const result = await login.runExecute(action);

    assert.equal(result.redirect.target, CHECK_URL);
  });

  it("a check recorded an hour ago skips the redirect and sets the name claim", async () => {
    const login = newLogin({
      voiceitId: VOICEIT_ID,
      methods: [
        { name: "pwd", timestamp: secondsAgo(3600) },
        { name: CHECK_URL, timestamp: secondsAgo(3600) },
      ],
    });
    const result = await login.runExecute(action);

    assert.equal(result.error, null);
    assert.equal(result.status, "completed");
    assert.equal(result.redirect, null);
    assert.deepEqual(result.accessTokenClaims, { [NAME_CLAIM]: "Ada Lovelace" });
    assert.deepEqual(result.idTokenClaims, { [NAME_CLAIM]: "Ada Lovelace" });
  });

  it("a check recorded longer ago than REMEMBER_SECONDS redirects again", async () => {
    const login = newLogin({
      voiceitId: VOICEIT_ID,
      methods: [{ name: CHECK_URL, timestamp: secondsAgo(43200 + 60) }],
    });
    const result = await login.runExecute(action);

    assert.equal(result.status, "redirected");
    assert.deepEqual(result.accessTokenClaims, {});
  });

  it("REMEMBER_SECONDS shortens the window a recorded check counts for", async () => {
    const login = newLogin({
      voiceitId: VOICEIT_ID,
      secrets: { REMEMBER_SECONDS: "600" },
      methods: [{ name: CHECK_URL, timestamp: secondsAgo(601) }],
    });

    assert.equal((await login.runExecute(action)).status, "redirected");
  });

  it("REMEMBER_SECONDS=0 asks again, even for a check stamped by a clock ahead", async () => {
    const login = newLogin({
      voiceitId: VOICEIT_ID,
      secrets: { REMEMBER_SECONDS: "0" },
      methods: [{ name: CHECK_URL, timestamp: secondsAgo(-5) }],
    });

    assert.equal((await login.runExecute(action)).status, "redirected");
  });

  it("a method recorded under another URL does not count as the check", async () => {
    const login = newLogin({
      voiceitId: VOICEIT_ID,
      methods: [{ name: "https://other.example.com/2fa", timestamp: secondsAgo(10) }],
    });

    assert.equal((await login.runExecute(action)).status, "redirected");
  });

  it("a refresh-token exchange without a recorded check is denied", async () => {
    const login = newLogin({
      voiceitId: VOICEIT_ID,
      transaction: { protocol: "oauth2-refresh-token" },
    });
    const result = await login.runExecute(action);

    assertDenied(result, MESSAGES.interactionRequired);
    assert.deepEqual(result.failure, {
      error: "access_denied",
      error_description: MESSAGES.interactionRequired,
    });
  });

  it("a password grant without a recorded check is denied", async () => {
    const login = newLogin({ transaction: { protocol: "oauth2-password" } });

    assertDenied(await login.runExecute(action), MESSAGES.interactionRequired);
  });

  it("a prompt=none login without a recorded check is denied", async () => {
    const login = newLogin({ voiceitId: VOICEIT_ID, transaction: { prompt: ["none"] } });

    assertDenied(await login.runExecute(action), MESSAGES.interactionRequired);
  });

  it("a refresh-token exchange with a recent recorded check passes", async () => {
    const login = newLogin({
      voiceitId: VOICEIT_ID,
      transaction: { protocol: "oauth2-refresh-token" },
      methods: [{ name: CHECK_URL, timestamp: secondsAgo(300) }],
    });
    const result = await login.runExecute(action);

    assert.equal(result.status, "completed");
    assert.deepEqual(result.accessTokenClaims, { [NAME_CLAIM]: "Ada Lovelace" });
  });

  it("a prompt=none login with a recent recorded check passes", async () => {
    const login = newLogin({
      voiceitId: VOICEIT_ID,
      transaction: { prompt: ["none"] },
      methods: [{ name: CHECK_URL, timestamp: secondsAgo(300) }],
    });
    const result = await login.runExecute(action);

    assert.equal(result.status, "completed");
    assert.deepEqual(result.idTokenClaims, { [NAME_CLAIM]: "Ada Lovelace" });
  });

  it("a missing REDIRECT_SECRET denies the login", async () => {
    const login = newLogin({ secrets: { REDIRECT_SECRET: undefined } });

    assertDenied(await login.runExecute(action), MESSAGES.misconfigured);
  });

  it("a REDIRECT_SECRET shorter than 32 characters denies the login", async () => {
    const login = newLogin({ secrets: { REDIRECT_SECRET: "x".repeat(31) } });

    assertDenied(await login.runExecute(action), MESSAGES.misconfigured);
  });

  it("a missing WORKER_URL denies the login", async () => {
    const login = newLogin({ secrets: { WORKER_URL: undefined } });

    assertDenied(await login.runExecute(action), MESSAGES.misconfigured);
  });

  it("a plain-http WORKER_URL on a public host denies the login", async () => {
    const login = newLogin({ secrets: { WORKER_URL: "http://2fa.example.workers.dev" } });

    assertDenied(await login.runExecute(action), MESSAGES.misconfigured);
  });

  it("a non-numeric REMEMBER_SECONDS denies the login", async () => {
    const login = newLogin({ secrets: { REMEMBER_SECONDS: "12h" } });

    assertDenied(await login.runExecute(action), MESSAGES.misconfigured);
  });

  it("an app_metadata.voiceit_id that is not a string denies rather than re-enrolls", async () => {
    const login = newLogin({ voiceitId: 42 });

    assertDenied(await login.runExecute(action), MESSAGES.profileUnreadable);
  });
});

describe("second half of the login (onContinuePostLogin)", () => {
  it("a valid verified result passes, records the method and sets the name claims", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const result = await postResult(login, signHs256(resultClaims(login), SECRET));

    assert.equal(result.error, null);
    assert.equal(result.status, "completed");
    assert.equal(result.denied, null);
    assert.deepEqual(result.recordedMethods, [CHECK_URL]);
    assert.deepEqual(result.appMetadata, {});
    assert.deepEqual(result.accessTokenClaims, { [NAME_CLAIM]: "Ada Lovelace" });
    assert.deepEqual(result.idTokenClaims, { [NAME_CLAIM]: "Ada Lovelace" });
  });

  it("a valid result is spent at the worker's /2fa/redeem before the login passes", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const before = redeemer.calls;
    const result = await postResult(login, signHs256(resultClaims(login), SECRET));
    assert.equal(result.status, "completed");
    assert.equal(redeemer.calls, before + 1);
  });

  it("a result already spent at the worker (its jti seen) is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const token = signHs256(resultClaims(login), SECRET);
    await redeemer("https://2fa.example.workers.dev/2fa/redeem", { method: "POST", body: JSON.stringify({ token }) });
    assertDenied(await postResult(login, token), MESSAGES.unchecked);
  });

  it("when the worker cannot be reached to spend the result, the login is denied", async () => {
    const offline = loadAction(undefined, { fetch: fakeRedeemer(SECRET, { down: true }) });
    const login = newLogin({ voiceitId: VOICEIT_ID });
    await login.runExecute(offline);
    const result = await login.runContinue(offline, {
      body: { state: login.state, session_token: signHs256(resultClaims(login), SECRET) },
    });
    assertDenied(result, MESSAGES.unchecked);
  });

  it("a result sent in the /continue query instead of a POST body is also read", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const token = signHs256(resultClaims(login), SECRET);
    const result = await login.runContinue(action, {
      query: { state: login.state, session_token: token },
    });

    assert.equal(result.status, "completed");
    assert.deepEqual(result.recordedMethods, [CHECK_URL]);
  });

  it("an enrolled result for a user without an id stores it in app_metadata", async () => {
    const login = await redirectedLogin();
    const claims = resultClaims(login, { outcome: "enrolled", voiceit_id: VOICEIT_ID });
    const result = await postResult(login, signHs256(claims, SECRET));

    assert.equal(result.status, "completed");
    assert.deepEqual(result.appMetadata, { voiceit_id: VOICEIT_ID });
    assert.deepEqual(login.event.user.app_metadata, { voiceit_id: VOICEIT_ID });
    assert.deepEqual(result.recordedMethods, [CHECK_URL]);
    assert.deepEqual(result.accessTokenClaims, { [NAME_CLAIM]: "Ada Lovelace" });
  });

  it("an enrolled result for a user who has an id is denied, app_metadata unchanged", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const claims = resultClaims(login, {
      outcome: "enrolled",
      voiceit_id: "usr_ffffffffffffffffffffffffffffffff",
    });
    const result = await postResult(login, signHs256(claims, SECRET));

    assertDenied(result, MESSAGES.alreadyEnrolled);
    assert.deepEqual(result.appMetadata, {});
    assert.deepEqual(login.event.user.app_metadata, { voiceit_id: VOICEIT_ID });
  });

  it("an enrolled result with an empty voiceit_id is denied", async () => {
    const login = await redirectedLogin();
    const claims = resultClaims(login, { outcome: "enrolled", voiceit_id: "" });
    const result = await postResult(login, signHs256(claims, SECRET));

    assertDenied(result, MESSAGES.unchecked);
    assert.deepEqual(login.event.user.app_metadata, {});
  });

  it("a verified result for another VoiceIt id is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const claims = resultClaims(login, { voiceit_id: "usr_ffffffffffffffffffffffffffffffff" });

    assertDenied(await postResult(login, signHs256(claims, SECRET)), MESSAGES.profileMismatch);
  });

  it("a verified result for a user with no VoiceIt id is denied", async () => {
    const login = await redirectedLogin();
    const claims = resultClaims(login);
    const result = await postResult(login, signHs256(claims, SECRET));

    assertDenied(result, MESSAGES.profileMismatch);
    assert.deepEqual(result.appMetadata, {});
  });

  it("a failed outcome is denied with a message the app can show", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const claims = resultClaims(login, { outcome: "failed" });
    const result = await postResult(login, signHs256(claims, SECRET));

    assertDenied(result, MESSAGES.failed);
    assert.deepEqual(result.failure, {
      error: "access_denied",
      error_description: MESSAGES.failed,
    });
  });

  it("an unknown outcome is denied as a failure", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const claims = resultClaims(login, { outcome: "skipped" });

    assertDenied(await postResult(login, signHs256(claims, SECRET)), MESSAGES.failed);
  });

  it("a result for another user (sub) is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const claims = resultClaims(login, { sub: "auth0|someone-else" });

    assertDenied(await postResult(login, signHs256(claims, SECRET)), MESSAGES.unchecked);
  });

  it("a result replayed from another login (another state) is denied", async () => {
    const earlier = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const token = signHs256(resultClaims(earlier), SECRET);

    assertDenied(await postResult(login, token), MESSAGES.unchecked);
  });

  it("an expired result is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const iat = nowSeconds() - 200;
    const claims = resultClaims(login, { iat, exp: iat + 120 });

    assertDenied(await postResult(login, signHs256(claims, SECRET)), MESSAGES.unchecked);
  });

  it("a result whose exp is more than 5 minutes after iat is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const iat = nowSeconds();
    const claims = resultClaims(login, { iat, exp: iat + 301 });

    assertDenied(await postResult(login, signHs256(claims, SECRET)), MESSAGES.unchecked);
  });

  it("a result with a tampered payload is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const [header, , signature] = signHs256(resultClaims(login, { outcome: "failed" }), SECRET)
      .split(".");
    const forged = `${header}.${base64urlJson(resultClaims(login))}.${signature}`;

    assertDenied(await postResult(login, forged), MESSAGES.unchecked);
  });

  it("a result with a tampered signature is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const token = signHs256(resultClaims(login), SECRET);
    const last = token.at(-1) === "A" ? "B" : "A";

    assertDenied(await postResult(login, token.slice(0, -1) + last), MESSAGES.unchecked);
  });

  it("an unsigned result (alg none) is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const unsigned =
      `${base64urlJson({ alg: "none", typ: "JWT" })}.${base64urlJson(resultClaims(login))}.`;

    assertDenied(await postResult(login, unsigned), MESSAGES.unchecked);
  });

  it("a result under another alg header is denied even with a valid HMAC", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const token = signHs256(resultClaims(login), SECRET, { alg: "HS512", typ: "JWT" });

    assertDenied(await postResult(login, token), MESSAGES.unchecked);
  });

  it("a result signed with another secret is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const token = signHs256(resultClaims(login), "another-secret-of-at-least-32-characters");

    assertDenied(await postResult(login, token), MESSAGES.unchecked);
  });

  for (const claim of ["iat", "exp", "sub", "iss", "state"]) {
    it(`a result without ${claim} is denied`, async () => {
      const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
      const claims = resultClaims(login, { [claim]: undefined });

      assertDenied(await postResult(login, signHs256(claims, SECRET)), MESSAGES.unchecked);
    });
  }

  it("a result without a jti is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const claims = resultClaims(login, { jti: undefined });

    assertDenied(await postResult(login, signHs256(claims, SECRET)), MESSAGES.unchecked);
  });

  it("a result from another issuer is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const claims = resultClaims(login, { iss: "https://evil.example.workers.dev" });

    assertDenied(await postResult(login, signHs256(claims, SECRET)), MESSAGES.unchecked);
  });

  it("a result whose iss carries the /2fa path instead of the bare origin is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const claims = resultClaims(login, { iss: CHECK_URL });

    assertDenied(await postResult(login, signHs256(claims, SECRET)), MESSAGES.unchecked);
  });

  it("a result with the wrong token_use is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const claims = resultClaims(login, { token_use: "session" });

    assertDenied(await postResult(login, signHs256(claims, SECRET)), MESSAGES.unchecked);
  });

  it("the session token echoed back to /continue is not accepted as a result", async () => {
    const login = newLogin({ voiceitId: VOICEIT_ID });
    const first = await login.runExecute(action);
    const sessionToken = first.redirect.query.session_token;

    assertDenied(await postResult(login, sessionToken), MESSAGES.unchecked);
  });

  it("a /continue without any token is denied", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const result = await login.runContinue(action, { body: { state: login.state } });

    assertDenied(result, MESSAGES.unchecked);
  });

  it("a deny message never quotes the token", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const token = signHs256(resultClaims(login), "another-secret-of-at-least-32-characters");
    const result = await postResult(login, token);

    assert.equal(result.denied.includes(token.split(".")[1]), false);
    assert.equal(result.denied, MESSAGES.unchecked);
  });

  it("a missing REDIRECT_SECRET at /continue denies the login", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    delete login.event.secrets.REDIRECT_SECRET;
    const result = await postResult(login, signHs256(resultClaims(login), SECRET));

    assertDenied(result, MESSAGES.misconfigured);
  });
});

describe("the name claim", () => {
  const rememberedCheck = [{ name: CHECK_URL, timestamp: secondsAgo(60) }];

  it("falls back to the nickname when the user has no name", async () => {
    const login = newLogin({ user: { name: undefined }, methods: rememberedCheck });
    const result = await login.runExecute(action);

    assert.deepEqual(result.accessTokenClaims, { [NAME_CLAIM]: "ada" });
    assert.deepEqual(result.idTokenClaims, { [NAME_CLAIM]: "ada" });
  });

  it("falls back to the email when the user has no name or nickname", async () => {
    const login = newLogin({
      user: { name: undefined, nickname: undefined },
      methods: rememberedCheck,
    });
    const result = await login.runExecute(action);

    assert.deepEqual(result.idTokenClaims, { [NAME_CLAIM]: "ada@example.com" });
  });

  it("is omitted when the user has no name, nickname or email", async () => {
    const login = newLogin({
      user: { name: undefined, nickname: undefined, email: undefined },
      methods: rememberedCheck,
    });
    const result = await login.runExecute(action);

    assert.equal(result.status, "completed");
    assert.deepEqual(result.accessTokenClaims, {});
    assert.deepEqual(result.idTokenClaims, {});
  });

  it("uses CLAIM_NAMESPACE when it is set", async () => {
    const login = newLogin({
      secrets: { CLAIM_NAMESPACE: "https://headlines.example.com/" },
      methods: rememberedCheck,
    });
    const result = await login.runExecute(action);

    assert.deepEqual(result.accessTokenClaims, {
      "https://headlines.example.com/name": "Ada Lovelace",
    });
  });
});

describe("the stand-in behaves as Auth0 documents", () => {
  it("sendUserTo URL-encodes the query and appends the transaction's state", async () => {
    const login = createTransaction();
    const result = await login.runExecute({
      onExecutePostLogin: (_event, api) =>
        api.redirect.sendUserTo("https://app.example.com/step?x=1", {
          query: { note: "a b&c=d", state: "injected" },
        }),
    });

    const url = new URL(result.redirect.url);
    assert.equal(url.search, `?x=1&note=a+b%26c%3Dd&state=${login.state}`);
    assert.equal(result.redirect.query.state, login.state);
  });

  it("encodeToken defaults to a 900 second lifetime", async () => {
    let token;
    await createTransaction().runExecute({
      onExecutePostLogin: (_event, api) => {
        token = api.redirect.encodeToken({ secret: SECRET, payload: {} });
      },
    });
    const { payload } = decodeJwt(token);

    assert.equal(payload.exp - payload.iat, 900);
    assert.equal(payload.iss, "example.us.auth0.com");
  });

  it("recordMethod throws when called from onExecutePostLogin", async () => {
    const result = await createTransaction().runExecute({
      onExecutePostLogin: (_event, api) => api.authentication.recordMethod(CHECK_URL),
    });

    assert.equal(result.status, "errored");
    assert.match(result.error.message, /onContinuePostLogin/);
    assert.deepEqual(result.recordedMethods, []);
  });

  it("a /continue with another state is refused without running the Action", async () => {
    const login = await redirectedLogin({ voiceitId: VOICEIT_ID });
    const token = signHs256(resultClaims(login), SECRET);
    const refused = await login.runContinue(action, {
      body: { state: "not-the-state", session_token: token },
    });

    assert.equal(refused.status, "rejected");
    assert.deepEqual(refused.failure, {
      error: "invalid_request",
      error_description: "the state does not match this login",
    });
    assert.deepEqual(refused.recordedMethods, []);

    assert.equal((await postResult(login, token)).status, "completed");
  });

  it("a /continue without a pending redirect is refused", async () => {
    const login = newLogin({ voiceitId: VOICEIT_ID });
    const result = await postResult(login, signHs256(resultClaims(login), SECRET));

    assert.equal(result.status, "rejected");
    assert.equal(result.failure.error, "invalid_request");
  });

  it("a redirect under prompt=none fails with interaction_required", async () => {
    const result = await createTransaction({ transaction: { prompt: ["none"] } }).runExecute({
      onExecutePostLogin: (_event, api) => api.redirect.sendUserTo("https://app.example.com/"),
    });

    assert.equal(result.status, "rejected");
    assert.equal(result.failure.error, "interaction_required");
  });
});
