// Steps of the 2FA flow as the browser and Auth0 take them, for the worker's route tests.
import { FormData } from "miniflare";
import { createHash, randomBytes } from "node:crypto";
import { signHs256, decodeJwt } from "./redirect-api.mjs";
import { TEST_SECRETS, TEST_VARS, setCookie, jsonBody } from "./worker.mjs";

export const SESSION_COOKIE = "vi2fa_session";

/** A session token as the Action's encodeToken makes it (HS256, iss = tenant host). */
export function sessionToken({
  sub = "auth0|alice",
  voiceitId = null,
  mode = voiceitId ? "verify" : "enroll",
  iss = TEST_VARS.AUTH0_DOMAIN,
  secret = TEST_SECRETS.REDIRECT_SECRET,
  lifetime = 300,
  extra = {},
} = {}) {
  const iat = Math.floor(Date.now() / 1000);
  return signHs256(
    // `nonce` keeps two tokens made in the same second apart, as two real logins are.
    { sub, iss, iat, exp: iat + lifetime, ip: "127.0.0.1", voiceit_id: voiceitId, mode, nonce: randomBytes(6).toString("hex"), ...extra },
    secret,
  );
}

/** A fresh Auth0-style opaque redirect state. */
export function newState() {
  return randomBytes(18).toString("base64url");
}

/** GET /2fa with a session token; returns the response and the session cookie (name=value). */
export async function startSession(worker, { state = newState(), token = sessionToken() } = {}) {
  const query = new URLSearchParams({ state, session_token: token });
  const res = await worker.fetch(`/2fa?${query}`);
  const line = setCookie(res, SESSION_COOKIE);
  await res.arrayBuffer();
  return { res, state, cookie: line ? line.split(";")[0] : null, setCookieLine: line };
}

/** Replaces the session cookie with the newer one a response set, if it set one. */
export function nextCookie(cookie, res) {
  const line = setCookie(res, SESSION_COOKIE);
  return line ? line.split(";")[0] : cookie;
}

/** POST /voiceit_token with the session cookie. */
export async function voiceitToken(worker, cookie, headers = {}) {
  const res = await worker.fetch("/voiceit_token", {
    method: "POST",
    headers: { ...(cookie ? { cookie } : {}), ...headers },
  });
  const cookieAfter = nextCookie(cookie, res);
  return { res, body: await jsonBody(res), cookie: cookieAfter };
}

/** A recording that looks like browser WebM (EBML magic first), with `size` bytes. */
export function webmRecording(size = 4096, seed = 1) {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 17) & 0xff;
  Buffer.from([0x1a, 0x45, 0xdf, 0xa3]).copy(bytes, 0);
  return bytes;
}

export function sha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * POST /voiceit_endpoint as the Web SDK does. `fields` are text parts; `files` maps a field
 * name to {bytes, type, filename}.
 */
export async function postEndpoint(worker, cookie, fields, files = {}) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  for (const [name, f] of Object.entries(files)) {
    form.append(name, new File([f.bytes], f.filename ?? "video.webm", { type: f.type ?? "video/webm" }));
  }
  const res = await worker.fetch("/voiceit_endpoint", {
    method: "POST",
    headers: cookie ? { cookie } : {},
    body: form,
  });
  const cookieAfter = nextCookie(cookie, res);
  return { res, status: res.status, body: await jsonBody(res), cookie: cookieAfter };
}

/** POST /2fa/complete; returns the continue form's action and the result token's claims. */
export async function complete(worker, cookie, headers = {}) {
  const res = await worker.fetch("/2fa/complete", {
    method: "POST",
    headers: { ...(cookie ? { cookie } : {}), ...headers },
  });
  const html = await res.text();
  const action = html.match(/<form id="continue" method="post" action="([^"]+)"/)?.[1]?.replaceAll("&amp;", "&");
  const token = html.match(/name="session_token" value="([^"]+)"/)?.[1];
  return {
    res,
    html,
    action,
    token,
    claims: token ? decodeJwt(token).payload : null,
    cookieLine: setCookie(res, SESSION_COOKIE),
  };
}
