// Configuration errors: a missing or malformed var answers config_error naming it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startWorker, jsonBody } from "./support/worker.mjs";

async function withWorker(bindings, fn) {
  const worker = await startWorker(bindings);
  try {
    await fn(worker);
  } finally {
    await worker.close();
  }
}

test("a missing AUTH0_DOMAIN is a 500 config_error naming it; the public headline still works", async () => {
  await withWorker({ AUTH0_DOMAIN: undefined }, async (worker) => {
    const res = await worker.fetch("/config.json");
    assert.equal(res.status, 500);
    const body = await jsonBody(res);
    assert.equal(body.error, "config_error");
    assert.match(body.message, /AUTH0_DOMAIN/);
    assert.equal((await worker.fetch("/api/public")).status, 200);
  });
});

test("a malformed VOICEIT_MODALITY is a config_error naming it", async () => {
  await withWorker({ VOICEIT_MODALITY: "fingerprint" }, async (worker) => {
    const body = await jsonBody(await worker.fetch("/config.json"));
    assert.equal(body.error, "config_error");
    assert.match(body.message, /VOICEIT_MODALITY/);
  });
});

test("a missing secret is named where it is needed, on a readable page for /2fa", async () => {
  await withWorker({ REDIRECT_SECRET: undefined }, async (worker) => {
    const res = await worker.fetch("/2fa?state=s&session_token=t");
    assert.equal(res.status, 500);
    assert.match(res.headers.get("content-type"), /^text\/html/);
    const html = await res.text();
    assert.match(html, /REDIRECT_SECRET/);
    assert.match(html, /config_error/);
  });
});

test("a SESSION_SECRET equal to REDIRECT_SECRET is refused", async () => {
  const same = "the-same-secret-for-both-0123456789abcdef";
  await withWorker({ REDIRECT_SECRET: same, SESSION_SECRET: same }, async (worker) => {
    const res = await worker.fetch("/voiceit_token", { method: "POST" });
    assert.equal(res.status, 500);
    const body = await jsonBody(res);
    assert.equal(body.error, "config_error");
    assert.match(body.message, /SESSION_SECRET/);
  });
});
