// The VoiceIt routes against the VoiceIt stand-in: the secure token, the Web SDK endpoint,
// forwarding byte for byte, and the outcome that reaches Auth0.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { startWorker, TEST_SECRETS, TEST_VARS, WORKER_ORIGIN, jsonBody } from "./support/worker.mjs";
import {
  startSession, sessionToken, voiceitToken, postEndpoint, complete, webmRecording, sha256, newState,
} from "./support/flow.mjs";
import { startVoiceItStandin } from "./support/voiceit-standin.mjs";
import { decodeJwt, loadAction, createTransaction } from "./support/redirect-api.mjs";

const PHRASE = "never forget tomorrow is a new day";
let voiceit;
let worker; // video, liveness on
let plain; // video, liveness off

before(async () => {
  voiceit = await startVoiceItStandin({
    apiKey: TEST_SECRETS.VOICEIT_API_KEY,
    apiToken: TEST_SECRETS.VOICEIT_API_TOKEN,
  });
  const upstream = { VOICEIT_BASE_URL: voiceit.apiUrl, VOICEIT_LIVENESS_URL: voiceit.livenessUrl, UPSTREAM_TIMEOUT_MS: "1500" };
  worker = await startWorker(upstream);
  plain = await startWorker({ ...upstream, VOICEIT_LIVENESS: "false" });
});
after(async () => {
  await worker?.close();
  await plain?.close();
  await voiceit?.close();
});
beforeEach(() => voiceit.reset());

const video = (seed = 1, size = 4096) => ({ viVideoData: { bytes: webmRecording(size, seed), type: "video/webm;codecs=vp8,opus", filename: "video.webm" } });

/** Enrolls a new user through the worker; returns the session state and its VoiceIt id. */
async function enrollThroughWorker(w = worker, sub = "auth0|alice") {
  const session = await startSession(w, { token: sessionToken({ sub }) });
  const tok = await voiceitToken(w, session.cookie);
  let cookie = tok.cookie;
  for (let i = 1; i <= 3; i++) {
    const r = await postEndpoint(w, cookie, { viRequestType: "createVideoEnrollment", viSecureToken: tok.body.token }, video(i));
    assert.equal(r.body.responseCode, "SUCC", JSON.stringify(r.body));
    cookie = r.cookie;
  }
  const voiceitId = decodeJwt(tok.body.token).payload.voiceit_id;
  return { cookie, token: tok.body.token, voiceitId, state: session.state };
}

async function verifySession(w, voiceitId, sub = "auth0|alice") {
  const session = await startSession(w, { token: sessionToken({ sub, voiceitId }) });
  const tok = await voiceitToken(w, session.cookie);
  return { cookie: tok.cookie, token: tok.body.token, state: session.state };
}

test("POST /voiceit_token without a 2FA session is a 401 JSON error", async () => {
  const { res, body } = await voiceitToken(worker, null);
  assert.equal(res.status, 401);
  assert.equal(body.error, "no_session");
  assert.ok(body.message.length > 10);
  assert.equal(voiceit.received.length, 0);
});

test("an enrollment session creates one VoiceIt user, once, with Basic auth", async () => {
  const { cookie } = await startSession(worker);
  const first = await voiceitToken(worker, cookie);
  assert.equal(first.res.status, 200);
  const second = await voiceitToken(worker, first.cookie);
  const id1 = decodeJwt(first.body.token).payload.voiceit_id;
  const id2 = decodeJwt(second.body.token).payload.voiceit_id;
  assert.match(id1, /^usr_[0-9a-f]{32}$/);
  assert.equal(id2, id1);
  const creations = voiceit.received.filter((r) => r.path === "/users" && r.method === "POST");
  assert.equal(creations.length, 1);
  const basic = Buffer.from(`${TEST_SECRETS.VOICEIT_API_KEY}:${TEST_SECRETS.VOICEIT_API_TOKEN}`).toString("base64");
  assert.equal(creations[0].headers.authorization, `Basic ${basic}`);
});

test("the token answer carries the configured modality, phrase, language and liveness", async () => {
  const { cookie } = await startSession(worker);
  const { body } = await voiceitToken(worker, cookie);
  assert.deepEqual(
    { mode: body.mode, modality: body.modality, phrase: body.phrase, contentLanguage: body.contentLanguage, liveness: body.liveness },
    { mode: "enroll", modality: "video", phrase: PHRASE, contentLanguage: "en-US", liveness: true },
  );
  const { header, payload } = decodeJwt(body.token);
  assert.equal(header.typ, "vi2fa-secure+jwt");
  assert.ok(payload.exp - payload.iat <= 600);
  assert.equal(payload.mode, "enroll");
});

test("a verification session's token names the user's existing VoiceIt id and creates nobody", async () => {
  const id = "usr_" + "ab".repeat(16);
  const { cookie } = await startSession(worker, { token: sessionToken({ voiceitId: id }) });
  const { body } = await voiceitToken(worker, cookie);
  assert.equal(decodeJwt(body.token).payload.voiceit_id, id);
  assert.equal(voiceit.received.length, 0);
});

test("a full enrollment forwards each recording byte for byte and Auth0 gets 'enrolled'", async () => {
  const session = await startSession(worker, { token: sessionToken({ sub: "auth0|enroller" }) });
  const tok = await voiceitToken(worker, session.cookie);
  let cookie = tok.cookie;
  const sent = [];
  for (let i = 1; i <= 3; i++) {
    const rec = video(i, 50_000 + i);
    sent.push(sha256(rec.viVideoData.bytes));
    // The browser's language and phrase are ignored: configuration decides.
    const r = await postEndpoint(worker, cookie, {
      viRequestType: "createVideoEnrollment", viSecureToken: tok.body.token,
      viContentLanguage: "fr-FR", viPhrase: "something else",
    }, rec);
    assert.equal(r.status, 200);
    assert.equal(r.body.responseCode, "SUCC");
    cookie = r.cookie;
  }
  const uploads = voiceit.received.filter((r) => r.path === "/enrollments/video");
  assert.deepEqual(uploads.map((u) => u.files[0].sha256), sent);
  for (const u of uploads) {
    assert.equal(u.files[0].field, "video");
    assert.ok(u.contentLength > 50_000, "no Content-Length upstream");
    assert.equal(u.fields.phrase, PHRASE);
    assert.equal(u.fields.contentLanguage, "en-US");
    assert.equal(u.fields.userId, decodeJwt(tok.body.token).payload.voiceit_id);
  }

  const done = await complete(worker, cookie);
  assert.equal(done.claims.outcome, "enrolled");
  assert.equal(done.claims.voiceit_id, decodeJwt(tok.body.token).payload.voiceit_id);
  assert.deepEqual(done.claims.amr, ["face", "vbm"]);
  assert.equal(done.claims.state, session.state);
});

test("enrollment with too few recordings completes as 'failed' (the worker asks VoiceIt itself)", async () => {
  const session = await startSession(worker);
  const tok = await voiceitToken(worker, session.cookie);
  const r = await postEndpoint(worker, tok.cookie, { viRequestType: "createVideoEnrollment", viSecureToken: tok.body.token }, video());
  assert.equal(r.body.responseCode, "SUCC");
  const done = await complete(worker, r.cookie);
  assert.equal(done.claims.outcome, "failed");
  assert.ok(voiceit.received.some((q) => q.method === "GET" && q.path.startsWith("/enrollments/video/")));
});

test("enoughVideoEnrollments is answered from VoiceIt's own counts", async () => {
  const e = await enrollThroughWorker();
  const r = await postEndpoint(worker, e.cookie, { viRequestType: "enoughVideoEnrollments", viSecureToken: e.token });
  assert.equal(r.status, 200);
  assert.equal(r.body.enoughEnrollments, true);
});

test("verification with liveness: challenge, then a success VoiceIt reported, then 'verified'", async () => {
  const { voiceitId } = await enrollThroughWorker();
  const v = await verifySession(worker, voiceitId);
  const lco = await postEndpoint(worker, v.cookie, { viRequestType: "initialLiveness", viSecureToken: v.token });
  assert.equal(lco.status, 200);
  assert.equal(lco.body.success, true);
  assert.ok(lco.body.lcoId);
  const rec = video(9, 30_000);
  const r = await postEndpoint(worker, lco.cookie, {
    viRequestType: "videoVerificationWithLiveness", viSecureToken: v.token, viLCOId: lco.body.lcoId,
  }, rec);
  assert.equal(r.status, 200);
  assert.equal(r.body.success, true);
  const upload = voiceit.received.find((q) => q.path === "/v1/verification/video");
  assert.equal(upload.host, "liveness");
  assert.equal(upload.files[0].field, "file");
  assert.equal(upload.files[0].sha256, sha256(rec.viVideoData.bytes));
  assert.equal(upload.fields.lcoId, lco.body.lcoId);

  const done = await complete(worker, r.cookie);
  assert.equal(done.claims.outcome, "verified");
  assert.equal(done.claims.voiceit_id, voiceitId);
});

test("a liveness failure VoiceIt reported completes as 'failed'", async () => {
  const { voiceitId } = await enrollThroughWorker();
  const v = await verifySession(worker, voiceitId);
  const lco = await postEndpoint(worker, v.cookie, { viRequestType: "initialLiveness", viSecureToken: v.token });
  voiceit.failNext({ liveness: { success: false, retry: false } });
  const r = await postEndpoint(worker, lco.cookie, {
    viRequestType: "videoVerificationWithLiveness", viSecureToken: v.token, viLCOId: lco.body.lcoId,
  }, video());
  assert.equal(r.body.success, false);
  assert.notEqual(r.status, 200);
  const done = await complete(worker, r.cookie);
  assert.equal(done.claims.outcome, "failed");
});

test("without liveness, a plain videoVerification SUCC gives 'verified'; FAIL gives 'failed'", async () => {
  const { voiceitId } = await enrollThroughWorker(plain);
  const ok = await verifySession(plain, voiceitId);
  const r = await postEndpoint(plain, ok.cookie, { viRequestType: "videoVerification", viSecureToken: ok.token }, video(7));
  assert.equal(r.body.responseCode, "SUCC");
  assert.equal((await complete(plain, r.cookie)).claims.outcome, "verified");

  const bad = await verifySession(plain, voiceitId);
  voiceit.failNext({ code: "FAIL", path: "/verification/video" });
  const f = await postEndpoint(plain, bad.cookie, { viRequestType: "videoVerification", viSecureToken: bad.token }, video(8));
  assert.equal(f.body.responseCode, "FAIL");
  assert.equal((await complete(plain, f.cookie)).claims.outcome, "failed");
});

test("FNFD from VoiceIt is passed on with its code and a 4xx, and is no success", async () => {
  const { voiceitId } = await enrollThroughWorker(plain);
  const v = await verifySession(plain, voiceitId);
  voiceit.failNext({ code: "FNFD", path: "/verification/video" });
  const r = await postEndpoint(plain, v.cookie, { viRequestType: "videoVerification", viSecureToken: v.token }, video());
  assert.equal(r.body.responseCode, "FNFD");
  assert.equal(r.status, 400);
  assert.equal((await complete(plain, r.cookie)).claims.outcome, "failed");
});

test("the Action accepts the worker's enrolled and verified results for the right user", async () => {
  const action = loadAction(undefined, { fetch: (url, init) => worker.fetch(url, init) });
  const user = { user_id: "auth0|helen", name: "Helen", app_metadata: {} };
  const secrets = { REDIRECT_SECRET: TEST_SECRETS.REDIRECT_SECRET, WORKER_URL: WORKER_ORIGIN };

  const tx = createTransaction({ user, secrets, tenantHost: TEST_VARS.AUTH0_DOMAIN });
  const first = await tx.runExecute(action);
  const res = await worker.fetch(`/2fa${new URL(first.redirect.url).search}`);
  await res.arrayBuffer();
  let cookie = res.headers.get("set-cookie").split(";")[0];
  const tok = await voiceitToken(worker, cookie);
  cookie = tok.cookie;
  for (let i = 1; i <= 3; i++) {
    cookie = (await postEndpoint(worker, cookie, { viRequestType: "createVideoEnrollment", viSecureToken: tok.body.token }, video(i))).cookie;
  }
  const done = await complete(worker, cookie);
  const back = await tx.runContinue(action, { state: tx.state, body: { session_token: done.token } });
  assert.equal(back.status, "completed", back.denied);
  const voiceitId = back.appMetadata.voiceit_id;
  assert.equal(voiceitId, done.claims.voiceit_id);

  const again = createTransaction({ user: { ...user, app_metadata: { voiceit_id: voiceitId } }, secrets, tenantHost: TEST_VARS.AUTH0_DOMAIN, authentication: { methods: [] } });
  const second = await again.runExecute(action);
  const res2 = await worker.fetch(`/2fa${new URL(second.redirect.url).search}`);
  await res2.arrayBuffer();
  const v = await voiceitToken(worker, res2.headers.get("set-cookie").split(";")[0]);
  const lco = await postEndpoint(worker, v.cookie, { viRequestType: "initialLiveness", viSecureToken: v.body.token });
  const r = await postEndpoint(worker, lco.cookie, { viRequestType: "videoVerificationWithLiveness", viSecureToken: v.body.token, viLCOId: lco.body.lcoId }, video(5));
  const done2 = await complete(worker, r.cookie);
  assert.equal(done2.claims.outcome, "verified");
  const back2 = await again.runContinue(action, { state: again.state, body: { session_token: done2.token } });
  assert.equal(back2.status, "completed", back2.denied);
});

// --- Tokens bound to one session, user and mode -------------------------------------------

test("a bad, expired or missing secure token is INVT", async () => {
  const { cookie } = await startSession(worker);
  const tok = await voiceitToken(worker, cookie);
  const parts = tok.body.token.split(".");
  const payload = JSON.parse(Buffer.from(parts[1], "base64url"));
  payload.exp = Math.floor(Date.now() / 1000) - 3600;
  const expired = `${parts[0]}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${parts[2]}`;
  for (const token of ["garbage", "a.b.c", expired, "null"]) {
    const r = await postEndpoint(worker, tok.cookie, { viRequestType: "enoughVideoEnrollments", viSecureToken: token });
    assert.equal(r.body.responseCode, "INVT", token);
    assert.equal(r.status, 401);
  }
});

test("a secure token of one session cannot act in another, even for the same user", async () => {
  const a = await startSession(worker);
  const ta = await voiceitToken(worker, a.cookie);
  const b = await startSession(worker);
  const tb = await voiceitToken(worker, b.cookie);
  const r = await postEndpoint(worker, tb.cookie, { viRequestType: "createVideoEnrollment", viSecureToken: ta.body.token }, video());
  assert.equal(r.body.responseCode, "INVT");
  assert.equal(voiceit.received.filter((q) => q.path === "/enrollments/video").length, 0);
});

test("a secure token without its session cookie is INVT", async () => {
  const a = await startSession(worker);
  const ta = await voiceitToken(worker, a.cookie);
  const r = await postEndpoint(worker, null, { viRequestType: "enoughVideoEnrollments", viSecureToken: ta.body.token });
  assert.equal(r.body.responseCode, "INVT");
});

test("an enrollment token cannot run a verification, nor a verification token an enrollment", async () => {
  const e = await startSession(worker);
  const te = await voiceitToken(worker, e.cookie);
  for (const type of ["videoVerification", "videoVerificationWithLiveness", "initialLiveness", "faceVerification"]) {
    const r = await postEndpoint(worker, te.cookie, { viRequestType: type, viSecureToken: te.body.token, viLCOId: "x" }, video());
    assert.equal(r.body.responseCode, "IRT", type);
  }
  const v = await verifySession(worker, "usr_" + "cd".repeat(16));
  for (const type of ["createVideoEnrollment", "deleteAllEnrollments", "createFaceEnrollment"]) {
    const r = await postEndpoint(worker, v.cookie, { viRequestType: type, viSecureToken: v.token }, video());
    assert.equal(r.body.responseCode, "IRT", type);
    assert.equal(r.status, 403);
  }
  assert.equal(voiceit.received.filter((q) => q.method !== "POST" || q.path !== "/users").length, 0);
});

test("with liveness on, the plain verification is refused: no downgrade", async () => {
  const v = await verifySession(worker, "usr_" + "ef".repeat(16));
  const r = await postEndpoint(worker, v.cookie, { viRequestType: "videoVerification", viSecureToken: v.token }, video());
  assert.equal(r.body.responseCode, "IRT");
});

test("deleteAllEnrollments works only for a user created in this same session", async () => {
  const { cookie } = await startSession(worker);
  const tok = await voiceitToken(worker, cookie);
  const r = await postEndpoint(worker, tok.cookie, { viRequestType: "deleteAllEnrollments", viSecureToken: tok.body.token });
  assert.equal(r.body.responseCode, "SUCC");
  assert.ok(voiceit.received.some((q) => q.method === "DELETE"));
});

test("an unknown request type is IRT", async () => {
  const { cookie } = await startSession(worker);
  const tok = await voiceitToken(worker, cookie);
  for (const type of ["faceLiveness", "deleteVoiceEnrollments", "getAllUsers", ""]) {
    const r = await postEndpoint(worker, tok.cookie, { viRequestType: type, viSecureToken: tok.body.token });
    assert.equal(r.body.responseCode, "IRT", type);
    assert.ok(r.status >= 400 && r.status < 500);
  }
});

// --- Malformed uploads: MISP naming what is wrong -----------------------------------------

async function enrollReady() {
  const { cookie } = await startSession(worker);
  const tok = await voiceitToken(worker, cookie);
  return { cookie: tok.cookie, token: tok.body.token };
}

test("a missing viRequestType or viSecureToken is MISP naming it", async () => {
  const s = await enrollReady();
  let r = await postEndpoint(worker, s.cookie, { viSecureToken: s.token });
  assert.equal(r.body.responseCode, "MISP");
  assert.match(r.body.message, /viRequestType/);
  r = await postEndpoint(worker, s.cookie, { viRequestType: "enoughVideoEnrollments" });
  assert.equal(r.body.responseCode, "MISP");
  assert.match(r.body.message, /viSecureToken/);
});

test("a missing, empty or nameless recording, or one of the wrong media type, is MISP", async () => {
  const s = await enrollReady();
  const fields = { viRequestType: "createVideoEnrollment", viSecureToken: s.token };
  let r = await postEndpoint(worker, s.cookie, fields);
  assert.equal(r.body.responseCode, "MISP");
  assert.match(r.body.message, /viVideoData/);

  r = await postEndpoint(worker, s.cookie, fields, { viVideoData: { bytes: Buffer.alloc(0) } });
  assert.equal(r.body.responseCode, "MISP");
  assert.match(r.body.message, /empty/);

  r = await postEndpoint(worker, s.cookie, fields, { viVoiceData: { bytes: webmRecording(), type: "audio/webm" } });
  assert.equal(r.body.responseCode, "MISP");

  r = await postEndpoint(worker, s.cookie, fields, { viVideoData: { bytes: webmRecording(), type: "text/plain" } });
  assert.equal(r.body.responseCode, "MISP");
  assert.match(r.body.message, /video\//);

  // A part without a filename is a text field to the runtime, not a file.
  r = await postEndpoint(worker, s.cookie, { ...fields, viVideoData: "not a file" });
  assert.equal(r.body.responseCode, "MISP");
  assert.match(r.body.message, /filename/);
  assert.equal(voiceit.received.filter((q) => q.path === "/enrollments/video").length, 0);
});

test("a body that is not multipart is refused with MISP naming the content type", async () => {
  const s = await enrollReady();
  const res = await worker.fetch("/voiceit_endpoint", {
    method: "POST",
    headers: { cookie: s.cookie, "content-type": "application/x-www-form-urlencoded" },
    body: `viRequestType=enoughVideoEnrollments&viSecureToken=${s.token}`,
  });
  const body = await jsonBody(res);
  assert.equal(res.status, 415);
  assert.equal(body.responseCode, "MISP");
  assert.match(body.message, /multipart/);
});

test("a duplicated field is MISP", async () => {
  const s = await enrollReady();
  const { FormData } = await import("miniflare");
  const form = new FormData();
  form.append("viRequestType", "enoughVideoEnrollments");
  form.append("viRequestType", "deleteAllEnrollments");
  form.append("viSecureToken", s.token);
  const res = await worker.fetch("/voiceit_endpoint", { method: "POST", headers: { cookie: s.cookie }, body: form });
  const body = await jsonBody(res);
  assert.equal(body.responseCode, "MISP");
  assert.match(body.message, /more than once/);
});

test("an upload over MAX_UPLOAD_BYTES is refused before anything is forwarded", async () => {
  const small = await startWorker({ VOICEIT_BASE_URL: voiceit.apiUrl, VOICEIT_LIVENESS_URL: voiceit.livenessUrl, MAX_UPLOAD_BYTES: "100000" });
  try {
    const { cookie } = await startSession(small);
    const tok = await voiceitToken(small, cookie);
    voiceit.received.length = 0;
    const r = await postEndpoint(small, tok.cookie, { viRequestType: "createVideoEnrollment", viSecureToken: tok.body.token }, video(1, 300_000));
    assert.equal(r.status, 413);
    assert.equal(r.body.responseCode, "MISP");
    assert.match(r.body.message, /larger/);
    assert.equal(voiceit.received.length, 0);
  } finally {
    await small.close();
  }
});

// --- VoiceIt failing: BERR, and nobody passes -----------------------------------------------

for (const [name, spec, status] of [
  ["a 5xx", { http5xx: 503 }, 502],
  ["garbage instead of JSON", { garbage: true }, 502],
  ["an answer slower than the timeout", { delayMs: 4000 }, 504],
]) {
  test(`VoiceIt answering ${name} is BERR with a sentence to act on`, async () => {
    const s = await enrollReady();
    voiceit.failNext({ ...spec, path: "/enrollments/video" });
    const started = Date.now();
    const r = await postEndpoint(worker, s.cookie, { viRequestType: "createVideoEnrollment", viSecureToken: s.token }, video());
    assert.equal(r.body.responseCode, "BERR");
    assert.equal(r.status, status);
    assert.match(r.body.message, /try again/i);
    assert.ok(Date.now() - started < 3900, "the worker waited past its timeout");
  });
}

async function closedPort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

test("VoiceIt unreachable: token creation and the endpoint fail closed with clear errors", async () => {
  const port = await closedPort();
  const down = await startWorker({ VOICEIT_BASE_URL: `http://127.0.0.1:${port}`, VOICEIT_LIVENESS_URL: `http://127.0.0.1:${port}` });
  try {
    const { cookie } = await startSession(down);
    const tok = await voiceitToken(down, cookie);
    assert.equal(tok.res.status, 502);
    assert.equal(tok.body.error, "voiceit_unavailable");

    const v = await startSession(down, { token: sessionToken({ voiceitId: "usr_" + "12".repeat(16) }) });
    const vt = await voiceitToken(down, v.cookie);
    const r = await postEndpoint(down, vt.cookie, { viRequestType: "initialLiveness", viSecureToken: vt.body.token });
    assert.equal(r.body.responseCode, "BERR");
    assert.equal(r.status, 502);
    assert.equal((await complete(down, r.cookie)).claims.outcome, "failed");
  } finally {
    await down.close();
  }
});

test("VoiceIt unreachable at completion of an enrollment: an error page, no result token", async () => {
  const e = await enrollThroughWorker();
  const port = await closedPort();
  const down = await startWorker({ VOICEIT_BASE_URL: `http://127.0.0.1:${port}` });
  try {
    const done = await complete(down, e.cookie);
    assert.equal(done.res.status, 502);
    assert.equal(done.token, undefined);
    assert.match(done.html, /try again/i);
  } finally {
    await down.close();
  }
});
