// The Content-Length pre-check of POST /voiceit_endpoint: an upload declared larger than
// MAX_UPLOAD_BYTES (plus the form overhead) is refused before its body is read, so neither the
// session nor the parts matter and nothing is forwarded. The size check on the recording alone
// cannot give these answers: it runs only after the body, the session and the token are read,
// and it looks only at the recording's own part.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { startWorker, TEST_SECRETS, jsonBody } from "./support/worker.mjs";
import { startSession, voiceitToken, webmRecording } from "./support/flow.mjs";
import { startVoiceItStandin } from "./support/voiceit-standin.mjs";

const MAX_UPLOAD_BYTES = 100_000;
let voiceit;
let worker;

before(async () => {
  voiceit = await startVoiceItStandin({
    apiKey: TEST_SECRETS.VOICEIT_API_KEY,
    apiToken: TEST_SECRETS.VOICEIT_API_TOKEN,
  });
  worker = await startWorker({
    VOICEIT_BASE_URL: voiceit.apiUrl,
    VOICEIT_LIVENESS_URL: voiceit.livenessUrl,
    MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
  });
});
after(async () => {
  await worker?.close();
  await voiceit?.close();
});
beforeEach(() => voiceit.reset());

/**
 * A multipart body as fixed bytes, so the request carries a Content-Length (a FormData body
 * is streamed without one). `extra` adds a file part the endpoint never reads.
 */
async function multipart(fields, recordingBytes, extra = 0) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  form.append("viVideoData", new File([webmRecording(recordingBytes, 1)], "video.webm", { type: "video/webm" }));
  if (extra > 0) form.append("padding", new File([new Uint8Array(extra)], "padding.bin", { type: "application/octet-stream" }));
  const encoded = new Response(form);
  const body = new Uint8Array(await encoded.arrayBuffer());
  return { body, contentType: encoded.headers.get("content-type") };
}

async function post(cookie, { body, contentType }) {
  const res = await worker.fetch("/voiceit_endpoint", {
    method: "POST",
    headers: { "content-type": contentType, "content-length": String(body.length), ...(cookie ? { cookie } : {}) },
    body,
  });
  return { status: res.status, body: await jsonBody(res) };
}

test("an upload declared oversized is refused by its Content-Length, before the session is read", async () => {
  const { body, contentType } = await multipart({ viRequestType: "createVideoEnrollment", viSecureToken: "x" }, 300_000);
  const r = await post(null, { body, contentType });
  // Without the pre-check this is 401 INVT: the body was read and the missing session refused.
  assert.equal(r.status, 413, JSON.stringify(r.body));
  assert.equal(r.body.responseCode, "MISP");
  assert.match(r.body.message, /larger/);
  assert.equal(voiceit.received.length, 0);
});

test("a small recording inside an oversized body is refused too, and nothing is forwarded", async () => {
  const { cookie } = await startSession(worker);
  const tok = await voiceitToken(worker, cookie);
  voiceit.received.length = 0;
  const fields = { viRequestType: "createVideoEnrollment", viSecureToken: tok.body.token };
  // The recording is within the limit; the whole body is far over limit + form overhead.
  const r = await post(tok.cookie, await multipart(fields, 4096, 400_000));
  // Without the pre-check the recording passes its own size check and is forwarded (200).
  assert.equal(r.status, 413, JSON.stringify(r.body));
  assert.equal(r.body.responseCode, "MISP");
  assert.equal(voiceit.received.length, 0);
});

test("a body within the limit, declared by its Content-Length, is still accepted", async () => {
  const { cookie } = await startSession(worker);
  const tok = await voiceitToken(worker, cookie);
  const fields = { viRequestType: "createVideoEnrollment", viSecureToken: tok.body.token };
  const r = await post(tok.cookie, await multipart(fields, 4096));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.responseCode, "SUCC");
});
