// GET /api/private: Auth0 access tokens checked against the tenant's key set.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { generateKeyPairSync, createSign } from "node:crypto";
import { startWorker, jsonBody } from "./support/worker.mjs";
import { startAuth0Tenant } from "./support/auth0-tenant.mjs";
import { signHs256 } from "./support/redirect-api.mjs";

const AUDIENCE = "https://headlines.test";
const NS = "https://auth0-voiceit-worker/";
let tenant;
let worker;

before(async () => {
  tenant = await startAuth0Tenant({ audience: AUDIENCE, clientId: "test-client-id" });
  worker = await startWorker({
    AUTH0_DOMAIN: tenant.host,
    AUTH0_BASE_URL: tenant.baseUrl,
    AUTH0_AUDIENCE: AUDIENCE,
    UPSTREAM_TIMEOUT_MS: "1500",
  });
});
after(async () => {
  await worker?.close();
  await tenant?.close();
});

const now = () => Math.floor(Date.now() / 1000);
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");

async function call(token, headers = {}) {
  const res = await worker.fetch("/api/private", {
    headers: token === undefined ? headers : { authorization: `Bearer ${token}`, ...headers },
  });
  return { res, body: await jsonBody(res) };
}

async function assertInvalid(token, label) {
  const { res, body } = await call(token);
  assert.equal(res.status, 401, label);
  assert.equal(body.error, "invalid_token", label);
  assert.equal(res.headers.get("www-authenticate"), 'Bearer error="invalid_token"', label);
}

test("a valid access token gets a headline starring the name from the token", async () => {
  const token = tenant.signAccessToken({ sub: "auth0|alice", [`${NS}name`]: "Alice Example" });
  const { res, body } = await call(token);
  assert.equal(res.status, 200);
  assert.equal(body.name, "Alice Example");
  assert.ok(body.headline.includes("Alice Example"), body.headline);
});

test("without the name claim the headline stars 'you', and the URL cannot choose the name", async () => {
  const token = tenant.signAccessToken({ sub: "auth0|bob" });
  const res = await worker.fetch("/api/private?name=Mallory", { headers: { authorization: `Bearer ${token}` } });
  const body = await jsonBody(res);
  assert.equal(res.status, 200);
  assert.equal(body.name, "you");
  assert.ok(!body.headline.includes("Mallory"));
});

test("aud given as a plain string is accepted", async () => {
  const { res } = await call(tenant.signAccessToken({ aud: AUDIENCE }));
  assert.equal(res.status, 200);
});

test("no Authorization header is 401 missing_token", async () => {
  const { res, body } = await call(undefined);
  assert.equal(res.status, 401);
  assert.equal(body.error, "missing_token");
});

test("a non-Bearer scheme or an empty token is invalid_token", async () => {
  for (const header of ["Basic dXNlcjpwYXNz", "Bearer ", "Bearer", "token"]) {
    const { res, body } = await call(undefined, { authorization: header });
    assert.equal(res.status, 401, header);
    assert.equal(body.error, "invalid_token", header);
  }
});

test("expired, not yet valid, wrong issuer and wrong or missing audience are invalid_token", async () => {
  await assertInvalid(tenant.signAccessToken({ exp: now() - 120 }), "expired");
  await assertInvalid(tenant.signAccessToken({ nbf: now() + 300 }), "not yet valid");
  await assertInvalid(tenant.signAccessToken({ iss: "https://evil.auth0.com/" }), "wrong iss");
  await assertInvalid(tenant.signAccessToken({ iss: tenant.baseUrl }), "iss without trailing slash");
  await assertInvalid(tenant.signAccessToken({ aud: "https://other.api" }), "wrong aud");
  await assertInvalid(tenant.signAccessToken({ aud: ["https://other.api", `${tenant.issuer}userinfo`] }), "wrong aud array");
  await assertInvalid(tenant.signAccessToken({ aud: undefined }), "no aud");
});

test("alg none, HS256 keyed with the public key, and other algorithms are invalid_token", async () => {
  const claims = { iss: tenant.issuer, sub: "auth0|x", aud: AUDIENCE, exp: now() + 600 };
  await assertInvalid(`${b64({ alg: "none", kid: tenant.currentKid })}.${b64(claims)}.`, "none");
  await assertInvalid(signHs256(claims, tenant.publicKeyPem, { alg: "HS256", typ: "JWT", kid: tenant.currentKid }), "HS256 with the public key");
  await assertInvalid(signHs256(claims, JSON.stringify(tenant.jwks), { alg: "HS256", kid: tenant.currentKid }), "HS256 with the JWKS");
  await assertInvalid(`${b64({ alg: "RS512", kid: tenant.currentKid })}.${b64(claims)}.AAAA`, "RS512");
});

test("a token signed by a key the tenant never published is invalid_token", async () => {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const claims = { iss: tenant.issuer, sub: "auth0|x", aud: AUDIENCE, exp: now() + 600 };
  const head = `${b64({ alg: "RS256", typ: "JWT", kid: tenant.currentKid })}.${b64(claims)}`;
  const sig = createSign("RSA-SHA256").update(head).sign(privateKey).toString("base64url");
  await assertInvalid(`${head}.${sig}`, "foreign key, known kid");
});

test("kid tricks and junk tokens are invalid_token, never a 5xx", async () => {
  for (const kid of ["../../../etc/passwd", "https://evil.example/jwks.json", "%00", "x".repeat(300)]) {
    await assertInvalid(tenant.signAccessToken({}, { kid }), kid.slice(0, 20));
  }
  for (const junk of ["a", "a.b", "a.b.c", "....", "x".repeat(10_000), "é.é.é"]) {
    await assertInvalid(junk, junk.slice(0, 10));
  }
});

test("keys are cached: many calls make one JWKS fetch", async () => {
  const before = tenant.jwksFetchCount;
  const token = tenant.signAccessToken({});
  for (let i = 0; i < 5; i++) assert.equal((await call(token)).res.status, 200);
  assert.ok(tenant.jwksFetchCount - before <= 1, `fetched ${tenant.jwksFetchCount - before} times`);
});

test("an unknown kid refetches once and fails; after a rotation the new key is found", async () => {
  await call(tenant.signAccessToken({})); // warm the cache
  const before = tenant.jwksFetchCount;
  await assertInvalid(tenant.signAccessToken({}, { kid: "no-such-kid" }), "unknown kid");
  assert.equal(tenant.jwksFetchCount - before, 1, "an unknown kid should refetch exactly once");

  tenant.rotateKeys();
  const { res } = await call(tenant.signAccessToken({}));
  assert.equal(res.status, 200, "the rotated key was not picked up");
});

test("JWKS unreachable, broken or slow is 503 auth_unavailable, not 401", async () => {
  const fresh = await startWorker({ AUTH0_DOMAIN: tenant.host, AUTH0_BASE_URL: tenant.baseUrl, AUTH0_AUDIENCE: AUDIENCE, UPSTREAM_TIMEOUT_MS: "1000" });
  try {
    for (const mode of [true, "garbage", "slow"]) {
      tenant.setJwksDown(mode);
      const res = await fresh.fetch("/api/private", { headers: { authorization: `Bearer ${tenant.signAccessToken({})}` } });
      const body = await jsonBody(res);
      assert.equal(res.status, 503, String(mode));
      assert.equal(body.error, "auth_unavailable");
    }
  } finally {
    tenant.setJwksDown(false);
    await fresh.close();
  }
});

test("a tenant that does not listen at all is 503 auth_unavailable", async () => {
  const server = createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  const down = await startWorker({ AUTH0_DOMAIN: `127.0.0.1:${port}`, AUTH0_BASE_URL: `http://127.0.0.1:${port}`, AUTH0_AUDIENCE: AUDIENCE });
  try {
    const res = await down.fetch("/api/private", { headers: { authorization: `Bearer ${tenant.signAccessToken({})}` } });
    assert.equal(res.status, 503);
    assert.equal((await jsonBody(res)).error, "auth_unavailable");
  } finally {
    await down.close();
  }
});
