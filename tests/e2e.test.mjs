// The whole sign-in as a person takes it, in a real Chromium: the demo app, the sandbox
// tenant's sign-in page, the Action's redirect to the worker, enrollment and verification on
// the recording page with a fake camera and microphone fed from files, and a verification made
// to fail from the sandbox control page. A full-page screenshot of each step goes to
// test-output/e2e/.
//
// The steps share one browser and run in order; once one fails, the rest are skipped.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { chromium } from "playwright-core";

import { startStandins } from "../scripts/sandbox.mjs";
import { startWorker } from "./support/worker.mjs";
import { makeFakeMedia, DEFAULT_PHRASE } from "./support/media.mjs";
import { decodeJwt } from "./support/redirect-api.mjs";

const CHROMIUM = "/usr/bin/chromium";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SHOTS = path.join(root, "test-output/e2e");

const USER_NAME = "Ada Tester";
const STEP_MS = 60_000;
// Each wait in the browser gives up well before its step does, so a failure names what it
// waited for.
const WAIT_MS = 30_000;
const SUITE_MS = 300_000;
const TENANT_SESSION_COOKIE = "auth0_sandbox_session";
const DENIED_MESSAGE = "Biometric verification failed. Please sign in again to retry.";

let standins;
let worker;
let media;
let browser;
let context;
let page;
let appUrl;
const pageErrors = [];

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function requireChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install it with \`apt-get install chromium\``);
  }
}

function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-video-capture=${media.video}`,
      `--use-file-for-fake-audio-capture=${media.audio}`,
    ],
  });
}

let shotNumber = 0;
async function screenshot(name, target = page) {
  shotNumber += 1;
  const file = path.join(SHOTS, `${String(shotNumber).padStart(2, "0")}-${name}.png`);
  await target.screenshot({ path: file, fullPage: true });
}

/**
 * A promise that may be left unawaited when its step fails early: its rejection is then
 * expected and must not surface after the step as an unhandled one.
 */
function settledLater(promise) {
  promise.catch(() => {});
  return promise;
}

/** Resolves with the next response of the worker to `POST pathname`. */
function nextWorkerPost(pathname) {
  const isIt = (r) => r.request().method() === "POST" && r.url() === `${appUrl}${pathname}`;
  return settledLater(page.waitForResponse(isIt));
}

/**
 * The worker's log line for its next answer to `pathname` after log line `from`: the worker
 * logs one structured line per request, with the outcome it decided.
 */
async function workerLogLine(pathname, from) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const line = worker.logs.slice(from).map(parseLogLine).find((l) => l?.path === pathname);
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`the worker logged no answer to ${pathname}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function parseLogLine(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Resolves with the claims of the result token the worker hands to the tenant's /continue:
 * what the worker decided about this check. Read from the request, since the pages move on
 * before a response body could be read.
 */
function nextResultToken() {
  const handOver = page.waitForRequest(
    (r) => r.method() === "POST" && r.url().startsWith(`${standins.tenant.baseUrl}/continue?`),
  );
  return settledLater(
    handOver.then((request) => {
      const token = new URLSearchParams(request.postData() ?? "").get("session_token");
      assert.ok(token, "the hand-over to /continue carries no result token");
      return decodeJwt(token).payload;
    }),
  );
}

function textOf(selector) {
  return page.locator(selector).textContent();
}

async function waitForText(selector, text) {
  await page.locator(selector, { hasText: text }).waitFor();
}

async function signInAs(name, shot) {
  await page.locator("#sign-in:enabled").click();
  await page.waitForURL((url) => url.origin === standins.tenant.baseUrl);
  await page.getByLabel("Your name").fill(name);
  await screenshot(shot);

  const from = worker.logs.length;
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${appUrl}/biometric`);
  // The Action sent the browser to /2fa, which opened the session and moved on to the page.
  const started = await workerLogLine("/2fa", from);
  assert.equal(started.status, 303);
  assert.equal(started.outcome, "session_started");
}

async function tenantSessionCookie() {
  const cookies = await context.cookies(standins.tenant.baseUrl);
  return cookies.find((c) => c.name === TENANT_SESSION_COOKIE);
}

async function signOut() {
  assert.ok(await tenantSessionCookie(), "no tenant session to end before signing out");
  await page.locator("#sign-out").click();
  await waitForText("#sign-in:enabled", "Sign in");
  assert.equal(page.url(), `${appUrl}/`);
  assert.equal(await page.locator("#user-name").isHidden(), true);
  assert.equal(await page.locator("#get-private").isDisabled(), true);
  // /v2/logout ends the tenant session too, so the next sign-in cannot lean on a remembered check.
  assert.equal(await tenantSessionCookie(), undefined, "the tenant session survived signing out");
}

/** Waits for the app to show `name` signed in, at `/` with the code gone from the address. */
async function expectSignedInAs(name) {
  await waitForText("#user-name", `Signed in as ${name}`);
  assert.equal(page.url(), `${appUrl}/`);
  assert.equal(await page.locator("#sign-out").isVisible(), true);
  assert.equal(await page.locator("#alert").isHidden(), true);
}

/** Waits for the recording page's Start button, ready for a new recording. */
async function startButtonReady(label) {
  await waitForText("#start-recording:enabled", label);
}

/**
 * Presses Start, waits for the recording to be uploaded, and returns the worker's log line for
 * it (its HTTP status and the outcome the worker decided).
 */
async function recordOnce({ onRecording } = {}) {
  const from = worker.logs.length;
  const uploaded = nextWorkerPost("/voiceit_endpoint");
  await page.locator("#start-recording").click();
  await page.locator("#countdown-line").waitFor();
  await onRecording?.();
  const status = (await uploaded).status();
  const logged = await workerLogLine("/voiceit_endpoint", from);
  assert.equal(logged.status, status);
  return logged;
}

let broken = false;
/** A step of the journey: skipped once an earlier one failed, since each builds on the last. */
function step(name, fn) {
  // The runner's own timeout is a backstop; the step's deadline comes first so the failure
  // screenshot is still taken.
  test(name, { timeout: STEP_MS + 15_000 }, async (t) => {
    if (broken) {
      t.skip("an earlier step failed");
      return;
    }
    let timer;
    const deadline = new Promise((_, reject) => {
      const late = new Error(`the step took over ${STEP_MS / 1000} s`);
      timer = setTimeout(() => reject(late), STEP_MS);
    });
    try {
      await Promise.race([fn(t), deadline]);
      assert.deepEqual(pageErrors, [], "the pages threw uncaught errors");
    } catch (err) {
      broken = true;
      await screenshot("failure").catch(() => {});
      throw err;
    } finally {
      clearTimeout(timer);
    }
  });
}

describe("a person signs in with a face and voice check in Chromium", { timeout: SUITE_MS }, () => {
  before(async () => {
    requireChromium();
    await rm(SHOTS, { recursive: true, force: true });
    await mkdir(SHOTS, { recursive: true });

    const port = await freePort();
    standins = await startStandins({ workerUrl: `http://127.0.0.1:${port}` });
    worker = await startWorker(standins.bindings, { port });
    appUrl = new URL(worker.url).origin;
    assert.equal(appUrl, `http://127.0.0.1:${port}`);

    media = await makeFakeMedia({ phrase: standins.bindings.VOICEIT_PHRASE ?? DEFAULT_PHRASE });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    await context.grantPermissions(["camera", "microphone"], { origin: appUrl });
    context.setDefaultTimeout(WAIT_MS);
    page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(`${page.url()}: ${err.message}`));
  }, { timeout: STEP_MS });

  after(async () => {
    // Each part closes even when another fails to, so nothing keeps the process alive.
    await browser?.close().catch(() => {});
    if (worker) {
      const log = path.join(SHOTS, "worker.log");
      await writeFile(log, worker.logs.join("\n") + "\n").catch(() => {});
    }
    await worker?.close().catch(() => {});
    await standins?.close().catch(() => {});
    await media?.remove().catch(() => {});
  }, { timeout: STEP_MS });

  step("the app opens with the sandbox banner and gives anyone a headline", async () => {
    await page.goto(`${appUrl}/`);
    await waitForText("#environment-banner", "Local sandbox");
    const banner = page.locator("#environment-banner");
    assert.match(await banner.textContent(), /no real Auth0 or VoiceIt account is used/);
    assert.equal(await banner.getByRole("link").getAttribute("href"), standins.control.url);
    await page.locator("#sign-in:enabled").waitFor();

    const answered = page.waitForResponse(`${appUrl}/api/public`);
    await page.getByRole("button", { name: "Get a headline" }).click();
    assert.equal((await answered).status(), 200);
    await waitForText("#result-meta", "HTTP 200");
    const headline = await textOf("#result-text");
    assert.notEqual(headline, "No headline yet.");
    assert.ok(headline.length > 10, `headline too short: ${headline}`);
    await screenshot("public-headline");
  });

  step("signing in for the first time leads through the tenant to enrollment", async () => {
    await signInAs(USER_NAME, "tenant-sign-in");
    await waitForText("#title", "Set up your biometric check");
    const intro = "Record your face and voice 3 times so you can be recognised next time.";
    assert.equal(await textOf("#intro"), intro);
    assert.ok(await tenantSessionCookie(), "the tenant opened no session");
  });

  step("enrollment takes three recordings, then the app shows the user signed in", async () => {
    await startButtonReady("Start recording 1 of 3");
    assert.equal(await textOf("#phrase-text"), media.phrase);
    assert.equal(await textOf("#step-progress"), "1 of 3");
    assert.equal(await page.locator("#preview").isVisible(), true);
    await screenshot("enroll-ready");

    for (let n = 1; n <= 3; n += 1) {
      if (n > 1) {
        await startButtonReady(`Start recording ${n} of 3`);
        assert.equal(await textOf("#step-progress"), `${n} of 3`);
      }
      const result = n === 3 ? nextResultToken() : null;
      const logged = await recordOnce({
        onRecording: n === 1 ? () => screenshot("enroll-recording") : undefined,
      });
      assert.equal(logged.status, 200);
      assert.equal(logged.outcome, "createVideoEnrollment:SUCC");
      if (n < 3) {
        await waitForText("#status-text", `Recording ${n} of 3 accepted.`);
        assert.equal(await page.locator("#upload-progress").getAttribute("value"), "100");
        if (n === 1) await screenshot("enroll-accepted-1");
      } else {
        const claims = await result;
        assert.equal(claims.outcome, "enrolled");
        assert.equal(claims.sub, "auth0|sandbox-ada-tester");
      }
    }

    await expectSignedInAs(USER_NAME);
    await screenshot("enrolled-signed-in");
    const [user] = [...standins.voiceit.state.users.values()];
    assert.equal(standins.voiceit.state.users.size, 1);
    assert.equal(user.video.length, 3);
    const voiceitId = standins.tenant.findUser(USER_NAME).app_metadata.voiceit_id;
    assert.ok(standins.voiceit.state.users.has(voiceitId), "the Action stored no VoiceIt id");
  });

  step("the private headline names the signed-in user", async () => {
    const answered = page.waitForResponse(`${appUrl}/api/private`);
    await page.getByRole("button", { name: "Get my headline" }).click();
    assert.equal((await answered).status(), 200);
    await waitForText("#result-meta", `for ${USER_NAME}`);
    assert.match(await textOf("#result-text"), new RegExp(USER_NAME));
    assert.equal(await textOf("#result-meta"), `HTTP 200 · for ${USER_NAME}`);
    await screenshot("private-headline");
  });

  step("a reload stays signed in with no new check: the tenant remembers the session", async () => {
    const from = worker.logs.length;
    await page.reload();
    await expectSignedInAs(USER_NAME);
    const checks = worker.logs.slice(from).map(parseLogLine).filter((l) => l?.path === "/2fa");
    assert.deepEqual(checks, [], "a reload went through the biometric check again");
  });

  step("signing out ends the app's and the tenant's sessions", async () => {
    await signOut();
    await screenshot("signed-out");
  });

  step("signing in again asks for a liveness check, and passing it signs the user in", async () => {
    await signInAs(USER_NAME, "tenant-sign-in-again");
    await waitForText("#title", "Confirm it's you");
    await startButtonReady("Start recording");
    assert.equal(await textOf("#step-progress"), "1 of 3");
    assert.equal(await textOf("#instruction"), "Keep your face in frame and follow each prompt");
    assert.equal(await textOf("#phrase-text"), media.phrase);

    const result = nextResultToken();
    const logged = await recordOnce({
      onRecording: async () => {
        await page.locator("#challenge").waitFor();
        assert.ok((await textOf("#challenge")).length > 0, "no liveness prompt shown");
        await screenshot("verify-challenge");
      },
    });
    assert.equal(logged.status, 200);
    assert.equal(logged.outcome, "videoVerificationWithLiveness:SUCC");
    const claims = await result;
    assert.equal(claims.outcome, "verified");

    await expectSignedInAs(USER_NAME);
    await screenshot("verified-signed-in");
  });

  step("the control page queues a liveness failure", async () => {
    const control = await context.newPage();
    try {
      await control.goto(standins.control.url);
      await control.getByRole("button", { name: "Next liveness verification: fails for good" }).click();
      await control.getByRole("status").waitFor();
      assert.equal(
        await control.getByRole("status").textContent(),
        'Queued: the next matching VoiceIt answer will be "Next liveness verification: fails for good".',
      );
      const users = await control.locator("body").textContent();
      assert.match(users, /3 video, 0 face, 0 voice enrollments/);
      await screenshot("control-page", control);
    } finally {
      await control.close();
    }
  });

  step("a failed liveness check denies the sign-in, and the app says so", async () => {
    await signOut();
    await signInAs(USER_NAME, "tenant-sign-in-to-fail");
    await waitForText("#title", "Confirm it's you");
    await startButtonReady("Start recording");

    const result = nextResultToken();
    const logged = await recordOnce();
    assert.equal(logged.status, 422);
    assert.equal(logged.outcome, "videoVerificationWithLiveness:FAIL");
    await waitForText("#status-text", "Liveness check failed");
    await waitForText("#status-text", "Returning you to sign-in…");
    assert.equal(await page.locator("#status").getAttribute("data-tone"), "error");
    await screenshot("verify-failed");

    const claims = await result;
    assert.equal(claims.outcome, "failed");

    await waitForText("#alert", "denied");
    assert.equal(await textOf("#alert"), `Sign-in was denied: ${DENIED_MESSAGE}`);
    assert.equal(page.url(), `${appUrl}/`);
    assert.equal(await page.locator("#user-name").isHidden(), true);
    assert.equal(await page.locator("#sign-in").isVisible(), true);
    await screenshot("sign-in-denied");
  });
});
