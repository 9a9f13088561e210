// Specification tests for the stand-in Auth0 tenant: its keys behave as the worker's token checks
// expect, and a code + PKCE login runs through the real Action and a worker played by the test.
// Run with: node --test tests/auth0-tenant.test.mjs
import assert from "node:assert/strict";
import {
  createHash,
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  verify,
} from "node:crypto";
import { after, before, describe, test } from "node:test";

import { decodeJwt, fakeRedeemer, signHs256, verifyHs256 } from "./support/redirect-api.mjs";
import { startAuth0Tenant } from "./support/auth0-tenant.mjs";

const AUDIENCE = "https://api.sandbox.test/";
const CLIENT_ID = "sandbox-spa-client";
const SECRET = "tenant-test-redirect-secret-4b8e1f0a9c7d3e52";
// Nothing listens here: the test itself plays the worker.
const WORKER_URL = "http://127.0.0.1:8799";
const APP_ORIGIN = "http://127.0.0.1:5173";
const REDIRECT_URI = `${APP_ORIGIN}/callback`;
const NAME_CLAIM = "https://auth0-voiceit-worker/name";
const SCOPE = "openid profile email";

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Verifies an RS256 token against a JWKS with Node crypto; returns the payload or throws. */
function verifyWithJwks(token, jwks) {
  const { header, payload, signature } = decodeJwt(token);
  assert.equal(header.alg, "RS256");

  const jwk = jwks.keys.find((key) => key.kid === header.kid);
  if (!jwk) throw new Error(`no published key has kid ${header.kid}`);

  const publicKey = createPublicKey({ key: jwk, format: "jwk" });
  const input = Buffer.from(token.slice(0, token.lastIndexOf(".")));
  if (!verify("sha256", input, publicKey, Buffer.from(signature, "base64url"))) {
    throw new Error("the signature does not verify");
  }
  return payload;
}

async function fetchJwks(tenant) {
  const response = await fetch(`${tenant.baseUrl}/.well-known/jwks.json`);
  return response.json();
}

// --- A browser without JavaScript: cookies and manual redirects ---

function createBrowser(baseUrl) {
  const cookies = new Map();

  async function request(target, { method = "GET", form, headers = {} } = {}) {
    const url = new URL(target, baseUrl);
    const sent = { ...headers };
    if (cookies.size > 0 && url.host === new URL(baseUrl).host) {
      sent.cookie = [...cookies].map(([name, value]) => `${name}=${value}`).join("; ");
    }
    let body;
    if (form) {
      body = new URLSearchParams(form).toString();
      sent["content-type"] = "application/x-www-form-urlencoded";
    }

    const response = await fetch(url, { method, headers: sent, body, redirect: "manual" });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const [name, value] = pair.split("=");
      if (/max-age=0/i.test(line)) cookies.delete(name.trim());
      else cookies.set(name.trim(), value);
    }
    const location = response.headers.get("location");
    return {
      status: response.status,
      headers: response.headers,
      location: location === null ? null : new URL(location, url),
      text: await response.text(),
    };
  }

  return { request, cookies };
}

/** A fresh authorization request as spa-js builds it, with its PKCE verifier. */
function newAuthorization(overrides = {}) {
  const verifier = randomBytes(32).toString("base64url");
  const params = {
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    audience: AUDIENCE,
    scope: SCOPE,
    response_type: "code",
    response_mode: "query",
    state: randomBytes(16).toString("base64"),
    nonce: randomBytes(16).toString("base64"),
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
    ...overrides,
  };
  const { state, nonce } = params;
  return { params: new URLSearchParams(params), verifier, state, nonce };
}

function formField(html, name) {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  assert.ok(match, `the page should have a ${name} field`);
  return match[1];
}

/** /authorize, then the sign-in form submitted with `name`; returns the submit's answer. */
async function signIn(browser, name, overrides) {
  const authorization = newAuthorization(overrides);
  const page = await browser.request(`/authorize?${authorization.params}`);
  assert.equal(page.status, 200);

  const transaction = formField(page.text, "transaction");
  const answer = await browser.request("/authorize/submit", {
    method: "POST",
    form: { transaction, name },
  });
  return { authorization, answer };
}

/**
 * Plays the worker: checks the session token the Action sent, and returns the state and a
 * result token for `outcome`.
 */
function actAsWorker(tenant, location, { outcome = "enrolled", voiceitId } = {}) {
  assert.equal(`${location.origin}${location.pathname}`, `${WORKER_URL}/2fa`);
  const state = location.searchParams.get("state");
  const session = verifyHs256(location.searchParams.get("session_token"), SECRET);
  assert.equal(session.iss, tenant.host);

  const iat = nowSeconds();
  const claims = {
    iss: WORKER_URL,
    sub: session.sub,
    iat,
    exp: iat + 120,
    jti: randomUUID(),
    state,
    token_use: "2fa_result",
    outcome,
    voiceit_id: voiceitId ?? session.voiceit_id ?? `usr_${randomBytes(16).toString("hex")}`,
    amr: ["face", "voice"],
  };
  return { state, session, resultToken: signHs256(claims, SECRET), claims };
}

function continueWith(browser, state, resultToken) {
  return browser.request(`/continue?state=${encodeURIComponent(state)}`, {
    method: "POST",
    form: { session_token: resultToken },
  });
}

/** The code and state the tenant sent back to the app; fails on anything else. */
function codeFrom(answer) {
  assert.equal(answer.status, 302);
  assert.equal(`${answer.location.origin}${answer.location.pathname}`, REDIRECT_URI);
  assert.equal(answer.location.searchParams.get("error"), null);
  return {
    code: answer.location.searchParams.get("code"),
    state: answer.location.searchParams.get("state"),
  };
}

async function exchange(tenant, fields) {
  const response = await fetch(`${tenant.baseUrl}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: CLIENT_ID,
      redirect_uri: REDIRECT_URI,
      ...fields,
    }).toString(),
  });
  return { status: response.status, body: await response.json() };
}

/** A whole first login with enrollment; returns the code, the verifier and the worker's view. */
async function enrolledLogin(tenant, browser, name) {
  const { authorization, answer } = await signIn(browser, name);
  assert.equal(answer.status, 302);
  const worker = actAsWorker(tenant, answer.location);
  const back = await continueWith(browser, worker.state, worker.resultToken);
  return { ...codeFrom(back), authorization, worker };
}

// --- Keys ---

describe("keys and the JWKS", () => {
  let tenant;

  before(async () => {
    tenant = await startAuth0Tenant({ audience: AUDIENCE, clientId: CLIENT_ID });
  });

  after(async () => {
    await tenant?.close();
  });

  test("the JWKS publishes the current RSA key with kid, use, alg, n and e", async () => {
    const response = await fetch(`${tenant.baseUrl}/.well-known/jwks.json`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type"), /^application\/json/);

    const { keys } = await response.json();
    assert.equal(keys.length, 1);
    assert.deepEqual(Object.keys(keys[0]).sort(), ["alg", "e", "kid", "kty", "n", "use"]);
    assert.equal(keys[0].kid, tenant.currentKid);
    assert.equal(keys[0].kty, "RSA");
    assert.equal(keys[0].use, "sig");
    assert.equal(keys[0].alg, "RS256");
    assert.equal(keys[0].e, "AQAB");
    assert.equal(Buffer.from(keys[0].n, "base64url").length, 256);
    assert.deepEqual(tenant.jwks, { keys });
  });

  test("the discovery document names this tenant's issuer and endpoints", async () => {
    const response = await fetch(`${tenant.baseUrl}/.well-known/openid-configuration`);
    const discovery = await response.json();

    assert.equal(response.status, 200);
    assert.equal(tenant.issuer, `${tenant.baseUrl}/`);
    assert.equal(tenant.baseUrl, `http://${tenant.host}`);
    assert.equal(discovery.issuer, tenant.issuer);
    assert.equal(discovery.authorization_endpoint, `${tenant.baseUrl}/authorize`);
    assert.equal(discovery.token_endpoint, `${tenant.baseUrl}/oauth/token`);
    assert.equal(discovery.jwks_uri, `${tenant.baseUrl}/.well-known/jwks.json`);
    assert.equal(discovery.end_session_endpoint, `${tenant.baseUrl}/oidc/logout`);
    assert.deepEqual(discovery.id_token_signing_alg_values_supported, ["RS256"]);
    assert.deepEqual(discovery.code_challenge_methods_supported, ["S256"]);
  });

  test("signAccessToken makes a verifiable RS256 token with access-token defaults", async () => {
    const token = tenant.signAccessToken({ sub: "auth0|sandbox-ada" });
    const { header } = decodeJwt(token);
    const claims = verifyWithJwks(token, await fetchJwks(tenant));

    assert.deepEqual(header, { alg: "RS256", typ: "JWT", kid: tenant.currentKid });
    assert.equal(claims.iss, tenant.issuer);
    assert.equal(claims.sub, "auth0|sandbox-ada");
    assert.deepEqual(claims.aud, [AUDIENCE, `${tenant.issuer}userinfo`]);
    assert.equal(claims.azp, CLIENT_ID);
    assert.ok(Math.abs(claims.iat - nowSeconds()) <= 2);
    assert.equal(claims.exp - claims.iat, 3600);
  });

  test("claims given to signAccessToken replace the defaults, and undefined leaves one out", () => {
    const token = tenant.signAccessToken({ aud: "https://other.api/", exp: 5, azp: undefined });
    const { payload } = decodeJwt(token);

    assert.equal(payload.aud, "https://other.api/");
    assert.equal(payload.exp, 5);
    assert.equal("azp" in payload, false);
  });

  test("the publicKeyPem verifies tokens signed with the current key", () => {
    const token = tenant.signAccessToken();
    const { signature } = decodeJwt(token);
    const input = Buffer.from(token.slice(0, token.lastIndexOf(".")));

    const bytes = Buffer.from(signature, "base64url");

    assert.equal(verify("sha256", input, tenant.publicKeyPem, bytes), true);
  });

  test("signAccessToken forges: HS256 keyed with the public key, none, a foreign key", () => {
    const confused = tenant.signAccessToken({}, { alg: "HS256" });
    const [head, body, mac] = confused.split(".");
    const expected = createHmac("sha256", tenant.publicKeyPem).update(`${head}.${body}`);
    assert.equal(decodeJwt(confused).header.alg, "HS256");
    assert.equal(mac, expected.digest("base64url"));

    const unsigned = tenant.signAccessToken({}, { alg: "none", kid: null });
    assert.deepEqual(decodeJwt(unsigned).header, { alg: "none", typ: "JWT" });
    assert.equal(unsigned.endsWith("."), true);

    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const foreign = tenant.signAccessToken({}, { key: privateKey, header: { typ: "at+jwt" } });
    assert.deepEqual(decodeJwt(foreign).header, {
      alg: "RS256",
      typ: "at+jwt",
      kid: tenant.currentKid,
    });
    assert.throws(() => verifyWithJwks(foreign, tenant.jwks), /signature does not verify/);
  });

  test("rotateKeys publishes only the new key, so older tokens no longer find theirs", async () => {
    const oldKid = tenant.currentKid;
    const oldToken = tenant.signAccessToken();

    const newKid = tenant.rotateKeys();
    const jwks = await fetchJwks(tenant);

    assert.notEqual(newKid, oldKid);
    assert.equal(tenant.currentKid, newKid);
    assert.deepEqual(jwks.keys.map((key) => key.kid), [newKid]);
    assert.throws(() => verifyWithJwks(oldToken, jwks), /no published key has kid/);
    assert.equal(verifyWithJwks(tenant.signAccessToken(), jwks).iss, tenant.issuer);
  });

  test("rotateKeys with keepOld publishes the new key first and keeps the old one", async () => {
    const oldKid = tenant.currentKid;
    const oldToken = tenant.signAccessToken();

    const newKid = tenant.rotateKeys({ keepOld: true });
    const jwks = await fetchJwks(tenant);

    assert.deepEqual(jwks.keys.map((key) => key.kid), [newKid, oldKid]);
    assert.equal(verifyWithJwks(oldToken, jwks).iss, tenant.issuer);
    assert.equal(decodeJwt(tenant.signAccessToken()).header.kid, newKid);
  });

  test("jwksFetchCount counts every fetch of the JWKS, and only those", async () => {
    const before = tenant.jwksFetchCount;
    await fetchJwks(tenant);
    await fetchJwks(tenant);
    await fetch(`${tenant.baseUrl}/.well-known/openid-configuration`).then((r) => r.text());

    assert.equal(tenant.jwksFetchCount, before + 2);
  });

  test("setJwksDown(true) answers 503 and false restores the keys", async (t) => {
    t.after(() => tenant.setJwksDown(false));
    const before = tenant.jwksFetchCount;

    tenant.setJwksDown(true);
    const down = await fetch(`${tenant.baseUrl}/.well-known/jwks.json`);
    assert.equal(down.status, 503);
    assert.equal((await down.json()).error, "temporarily_unavailable");

    tenant.setJwksDown(false);
    const up = await fetch(`${tenant.baseUrl}/.well-known/jwks.json`);
    assert.equal(up.status, 200);
    assert.equal((await up.json()).keys[0].kid, tenant.currentKid);
    assert.equal(tenant.jwksFetchCount, before + 2);
  });

  test('setJwksDown("garbage") answers 200 with a body that is not JSON', async (t) => {
    t.after(() => tenant.setJwksDown(false));
    tenant.setJwksDown("garbage");

    const response = await fetch(`${tenant.baseUrl}/.well-known/jwks.json`);
    const text = await response.text();

    assert.equal(response.status, 200);
    assert.throws(() => JSON.parse(text), SyntaxError);
  });

  test('setJwksDown("slow") does not answer in time, and the fetch still counts', async (t) => {
    t.after(() => tenant.setJwksDown(false));
    tenant.setJwksDown("slow");
    const before = tenant.jwksFetchCount;

    await assert.rejects(
      fetch(`${tenant.baseUrl}/.well-known/jwks.json`, { signal: AbortSignal.timeout(300) }),
      { name: "TimeoutError" },
    );
    assert.equal(tenant.jwksFetchCount, before + 1);
  });

  test("setJwksDown refuses a mode it does not know", () => {
    assert.throws(() => tenant.setJwksDown("down"), TypeError);
  });
});

// --- The login flow ---

describe("a code + PKCE login through the Action", () => {
  let tenant;

  before(async () => {
    tenant = await startAuth0Tenant({
      audience: AUDIENCE,
      clientId: CLIENT_ID,
      secrets: { REDIRECT_SECRET: SECRET, WORKER_URL },
      actionFetch: fakeRedeemer(SECRET),
    });
  });

  after(async () => {
    await tenant?.close();
  });

  test("the sign-in page is labelled as a sandbox and has no inline script", async () => {
    const browser = createBrowser(tenant.baseUrl);
    const page = await browser.request(`/authorize?${newAuthorization().params}`);

    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type"), /^text\/html/);
    assert.match(page.text, /<h1>Sandbox sign-in \(no real Auth0 account\)<\/h1>/);
    assert.match(page.text, /<label for="name">Your name<\/label>/);
    assert.match(page.text, /<form method="post" action="\/authorize\/submit">/);
    assert.match(page.text, /<button type="submit">Sign in<\/button>/);
    assert.doesNotMatch(page.text, /<script/);
    assert.match(page.headers.get("content-security-policy"), /default-src 'none'/);
  });

  test("an empty name shows the form again with a 400 and the same transaction", async () => {
    const browser = createBrowser(tenant.baseUrl);
    const { answer } = await signIn(browser, "   ");

    assert.equal(answer.status, 400);
    assert.match(answer.text, /<p class="problem" role="alert">Enter your name\.<\/p>/);
    assert.equal(browser.cookies.has("auth0_sandbox_session"), false);

    const transaction = formField(answer.text, "transaction");
    const retry = await browser.request("/authorize/submit", {
      method: "POST",
      form: { transaction, name: "Lynn Conway" },
    });
    assert.equal(retry.status, 302);
    assert.equal(`${retry.location.origin}${retry.location.pathname}`, `${WORKER_URL}/2fa`);
  });

  test("a first sign-in enrolls at the worker and ends with tokens carrying the name", async () => {
    const browser = createBrowser(tenant.baseUrl);
    const { authorization, answer } = await signIn(browser, "Ada Lovelace");

    assert.equal(answer.status, 302);
    assert.ok(browser.cookies.has("auth0_sandbox_session"), "sign-in sets a tenant session");
    const worker = actAsWorker(tenant, answer.location);
    assert.equal(worker.session.sub, "auth0|sandbox-ada-lovelace");
    assert.equal(worker.session.mode, "enroll");
    assert.equal(worker.session.voiceit_id, null);

    const back = await continueWith(browser, worker.state, worker.resultToken);
    const { code, state } = codeFrom(back);
    assert.equal(state, authorization.state);

    const verifier = authorization.verifier;
    const { status, body } = await exchange(tenant, { code, code_verifier: verifier });
    assert.equal(status, 200);
    assert.equal(body.token_type, "Bearer");
    assert.equal(body.scope, SCOPE);
    assert.equal(body.expires_in, 86400);

    const jwks = await fetchJwks(tenant);
    const access = verifyWithJwks(body.access_token, jwks);
    assert.equal(access.iss, tenant.issuer);
    assert.equal(access.sub, "auth0|sandbox-ada-lovelace");
    assert.deepEqual(access.aud, [AUDIENCE, `${tenant.issuer}userinfo`]);
    assert.equal(access.azp, CLIENT_ID);
    assert.equal(access.scope, SCOPE);
    assert.equal(access[NAME_CLAIM], "Ada Lovelace");

    const id = verifyWithJwks(body.id_token, jwks);
    assert.equal(id.iss, tenant.issuer);
    assert.equal(id.aud, CLIENT_ID);
    assert.equal(id.nonce, authorization.nonce);
    assert.equal(id.name, "Ada Lovelace");
    assert.equal(id[NAME_CLAIM], "Ada Lovelace");
    assert.ok(id.exp > nowSeconds());

    const stored = tenant.findUser("Ada Lovelace");
    assert.equal(stored.app_metadata.voiceit_id, worker.claims.voiceit_id);
  });

  test("a second sign-in in the same tenant session is remembered: no worker", async () => {
    const browser = createBrowser(tenant.baseUrl);
    await enrolledLogin(tenant, browser, "Grace Hopper");

    const { authorization, answer } = await signIn(browser, "Grace Hopper");
    const { code, state } = codeFrom(answer);
    assert.equal(state, authorization.state);

    const verifier = authorization.verifier;
    const { status, body } = await exchange(tenant, { code, code_verifier: verifier });
    assert.equal(status, 200);
    assert.equal(decodeJwt(body.access_token).payload[NAME_CLAIM], "Grace Hopper");
  });

  test("the same name in a new browser is the same user, sent to verify its id", async () => {
    const first = await enrolledLogin(tenant, createBrowser(tenant.baseUrl), "Alan Turing");

    const { answer } = await signIn(createBrowser(tenant.baseUrl), "alan  TURING");
    const worker = actAsWorker(tenant, answer.location, { outcome: "verified" });

    assert.equal(worker.session.sub, "auth0|sandbox-alan-turing");
    assert.equal(worker.session.mode, "verify");
    assert.equal(worker.session.voiceit_id, first.worker.claims.voiceit_id);
  });

  test("prompt=none returns a code silently for a remembered session", async () => {
    const browser = createBrowser(tenant.baseUrl);
    await enrolledLogin(tenant, browser, "Katherine Johnson");

    const silent = newAuthorization({ prompt: "none" });
    const answer = await browser.request(`/authorize?${silent.params}`);
    const { code, state } = codeFrom(answer);

    assert.equal(state, silent.state);
    assert.equal((await exchange(tenant, { code, code_verifier: silent.verifier })).status, 200);
  });

  test("prompt=none without a tenant session comes back as login_required", async () => {
    const silent = newAuthorization({ prompt: "none" });
    const answer = await createBrowser(tenant.baseUrl).request(`/authorize?${silent.params}`);

    assert.equal(answer.status, 302);
    assert.equal(answer.location.searchParams.get("error"), "login_required");
    assert.equal(answer.location.searchParams.get("state"), silent.state);
    assert.equal(answer.location.searchParams.get("code"), null);
  });

  test("a failed check comes back as access_denied with the Action's reason", async () => {
    const browser = createBrowser(tenant.baseUrl);
    const { authorization, answer } = await signIn(browser, "Mallory");
    const worker = actAsWorker(tenant, answer.location, { outcome: "failed" });

    const back = await continueWith(browser, worker.state, worker.resultToken);
    const params = back.location.searchParams;

    assert.equal(back.status, 302);
    assert.equal(`${back.location.origin}${back.location.pathname}`, REDIRECT_URI);
    assert.equal(params.get("error"), "access_denied");
    assert.equal(
      params.get("error_description"),
      "Biometric verification failed. Please sign in again to retry.",
    );
    assert.equal(params.get("state"), authorization.state);
    assert.equal(params.get("code"), null);
    assert.equal(tenant.findUser("Mallory").app_metadata.voiceit_id, undefined);
  });

  test("a wrong PKCE verifier is refused with invalid_grant and uses up the code", async () => {
    const { code, authorization } = await enrolledLogin(
      tenant,
      createBrowser(tenant.baseUrl),
      "Edsger Dijkstra",
    );

    const otherVerifier = randomBytes(32).toString("base64url");
    const wrong = await exchange(tenant, { code, code_verifier: otherVerifier });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.error, "invalid_grant");
    assert.equal(wrong.body.access_token, undefined);

    const retry = await exchange(tenant, { code, code_verifier: authorization.verifier });
    assert.equal(retry.status, 400);
    assert.equal(retry.body.error, "invalid_grant");
  });

  test("an authorization code can be exchanged only once", async () => {
    const { code, authorization } = await enrolledLogin(
      tenant,
      createBrowser(tenant.baseUrl),
      "Barbara Liskov",
    );

    const first = await exchange(tenant, { code, code_verifier: authorization.verifier });
    const second = await exchange(tenant, { code, code_verifier: authorization.verifier });

    assert.equal(first.status, 200);
    assert.equal(second.status, 400);
    assert.deepEqual(second.body, {
      error: "invalid_grant",
      error_description: "the code is unknown, expired or already used",
    });
  });

  test("the token endpoint refuses another redirect_uri and an unknown client", async () => {
    const login = await enrolledLogin(tenant, createBrowser(tenant.baseUrl), "Frances Allen");
    const otherRedirect = await exchange(tenant, {
      code: login.code,
      code_verifier: login.authorization.verifier,
      redirect_uri: `${APP_ORIGIN}/elsewhere`,
    });
    assert.equal(otherRedirect.status, 400);
    assert.equal(otherRedirect.body.error, "invalid_grant");

    const unknownClient = await exchange(tenant, {
      code: login.code,
      code_verifier: login.authorization.verifier,
      client_id: "nope",
    });
    assert.equal(unknownClient.status, 401);
    assert.equal(unknownClient.body.error, "invalid_client");
  });

  test("a /continue with a state never issued gets an invalid_request page", async () => {
    const answer = await continueWith(createBrowser(tenant.baseUrl), "made-up-state", "token");

    assert.equal(answer.status, 400);
    assert.match(answer.headers.get("content-type"), /^text\/html/);
    assert.match(answer.text, /<code>invalid_request<\/code>/);
  });

  test("a redirect state can be continued once", async () => {
    const browser = createBrowser(tenant.baseUrl);
    const { answer } = await signIn(browser, "Radia Perlman");
    const worker = actAsWorker(tenant, answer.location);

    codeFrom(await continueWith(browser, worker.state, worker.resultToken));
    const again = await continueWith(browser, worker.state, worker.resultToken);
    assert.equal(again.status, 400);
    assert.match(again.text, /<code>invalid_request<\/code>/);
  });

  test("/authorize answers a redirect_uri off the allow-list with a page, not a 302", async () => {
    const request = newAuthorization({ redirect_uri: "https://attacker.example/callback" });
    const answer = await createBrowser(tenant.baseUrl).request(`/authorize?${request.params}`);

    assert.equal(answer.status, 400);
    assert.equal(answer.location, null);
    assert.match(answer.text, /sandbox allow-list/);
  });

  test("/authorize without PKCE S256 is sent back as invalid_request", async () => {
    const request = newAuthorization({ code_challenge_method: "plain" });
    const answer = await createBrowser(tenant.baseUrl).request(`/authorize?${request.params}`);

    assert.equal(answer.status, 302);
    assert.equal(answer.location.searchParams.get("error"), "invalid_request");
    assert.equal(answer.location.searchParams.get("state"), request.state);
  });

  test("logout ends the tenant session and returns to an allowed returnTo", async () => {
    const browser = createBrowser(tenant.baseUrl);
    await enrolledLogin(tenant, browser, "Margaret Hamilton");

    const returnTo = `${APP_ORIGIN}/`;
    const answer = await browser.request(
      `/v2/logout?returnTo=${encodeURIComponent(returnTo)}&client_id=${CLIENT_ID}`,
    );
    assert.equal(answer.status, 302);
    assert.equal(answer.location.href, returnTo);
    assert.equal(browser.cookies.has("auth0_sandbox_session"), false);

    const silent = newAuthorization({ prompt: "none" });
    const after = await browser.request(`/authorize?${silent.params}`);
    assert.equal(after.location.searchParams.get("error"), "login_required");
  });

  test("logout refuses a returnTo off the allow-list", async () => {
    const answer = await createBrowser(tenant.baseUrl).request(
      "/v2/logout?returnTo=https%3A%2F%2Fattacker.example%2F",
    );

    assert.equal(answer.status, 400);
    assert.equal(answer.location, null);
  });

  test("the token endpoint answers a CORS preflight from the app's origin", async () => {
    const response = await fetch(`${tenant.baseUrl}/oauth/token`, {
      method: "OPTIONS",
      headers: {
        origin: APP_ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,auth0-client",
      },
    });

    assert.equal(response.status, 204);
    assert.equal(response.headers.get("access-control-allow-origin"), APP_ORIGIN);
    assert.match(response.headers.get("access-control-allow-headers"), /Auth0-Client/);
  });

  test("response_mode=web_message answers with a page that posts to the app's origin", async () => {
    const browser = createBrowser(tenant.baseUrl);
    await enrolledLogin(tenant, browser, "Hedy Lamarr");

    const silent = newAuthorization({ prompt: "none", response_mode: "web_message" });
    const page = await browser.request(`/authorize?${silent.params}`);

    assert.equal(page.status, 200);
    const csp = page.headers.get("content-security-policy");
    assert.match(csp, /script-src 'self'/);
    assert.ok(csp.endsWith(`frame-ancestors ${APP_ORIGIN}`));
    const script = `<script src="/authorize/web-message.js" data-target-origin="${APP_ORIGIN}"`;
    assert.ok(page.text.includes(script));
    assert.doesNotMatch(page.text, /<script>/);

    const attribute = /data-response="([^"]*)"/.exec(page.text)[1];
    const response = JSON.parse(attribute.replaceAll("&quot;", '"').replaceAll("&amp;", "&"));
    assert.equal(response.state, silent.state);

    const tokens = await exchange(tenant, { code: response.code, code_verifier: silent.verifier });
    assert.equal(tokens.status, 200);
  });
});

describe("seeded users and the claim namespace", () => {
  const VOICEIT_ID = `usr_${"0f".repeat(16)}`;
  const NAMESPACE = "https://sandbox.example/";
  let tenant;

  before(async () => {
    tenant = await startAuth0Tenant({
      audience: AUDIENCE,
      clientId: CLIENT_ID,
      secrets: { REDIRECT_SECRET: SECRET, WORKER_URL },
      actionFetch: fakeRedeemer(SECRET),
      claimNamespace: NAMESPACE,
      users: [{ name: "Seeded Person", app_metadata: { voiceit_id: VOICEIT_ID } }],
    });
  });

  after(async () => {
    await tenant?.close();
  });

  test("a seeded user is verified against its voiceit_id, named under the namespace", async () => {
    const browser = createBrowser(tenant.baseUrl);
    const { authorization, answer } = await signIn(browser, "Seeded Person");
    const worker = actAsWorker(tenant, answer.location, { outcome: "verified" });
    assert.equal(worker.session.sub, "auth0|sandbox-seeded-person");
    assert.equal(worker.session.mode, "verify");
    assert.equal(worker.session.voiceit_id, VOICEIT_ID);

    const back = await continueWith(browser, worker.state, worker.resultToken);
    const { code } = codeFrom(back);
    const verifier = authorization.verifier;
    const { body } = await exchange(tenant, { code, code_verifier: verifier });

    const access = decodeJwt(body.access_token).payload;
    assert.equal(access[`${NAMESPACE}name`], "Seeded Person");
    assert.equal(access[NAME_CLAIM], undefined);
  });
});
