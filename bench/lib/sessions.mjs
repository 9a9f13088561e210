// What the load needs from the login flow: an Auth0 stand-in that signs access tokens, 2FA
// sessions minted the way a browser gets them, and multipart uploads as the Web SDK sends
// them, for the worker and, with VoiceIt's own field names, straight to the stand-in.
import { randomBytes } from "node:crypto";

import { sessionToken, webmRecording, SESSION_COOKIE } from "../../tests/support/flow.mjs";
import { TEST_SECRETS } from "../../tests/support/worker.mjs";

export const PHRASE = "never forget tomorrow is a new day";
const BOUNDARY = `----auth0-voiceit-bench-${randomBytes(8).toString("hex")}`;

/**
 * The Auth0 stand-in of the tests when it is there; otherwise a JWKS served here from a
 * generated RSA key, which is all `/api/private` needs.
 */
export async function startTenant({ audience, clientId, log }) {
  try {
    const { startAuth0Tenant } = await import("../../tests/support/auth0-tenant.mjs");
    const tenant = await startAuth0Tenant({ audience, clientId });
    if (typeof tenant.signAccessToken !== "function") throw new Error("it has no signAccessToken");
    return {
      kind: "tests/support/auth0-tenant.mjs",
      host: tenant.host,
      baseUrl: tenant.baseUrl,
      signAccessToken: (claims) => tenant.signAccessToken(claims),
      jwksFetches: () => tenant.jwksFetchCount,
      close: () => tenant.close(),
    };
  } catch (err) {
    log(`the Auth0 stand-in is not usable (${err.message}); serving a JWKS here instead`);
    const { startJwksServer } = await import("./jwks-server.mjs");
    const server = await startJwksServer({ audience, clientId });
    return { kind: "bench/lib/jwks-server.mjs (fallback)", ...server };
  }
}

function cookieFrom(response, fallback) {
  const line = response.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  return line ? line.split(";")[0] : fallback;
}

/**
 * A 2FA enrollment session as the browser holds it after `GET /2fa` and `POST /voiceit_token`:
 * the cookie (naming the VoiceIt user the worker just created) and the secure token.
 */
export async function mintSession(base, tenantHost, sub = "auth0|bench") {
  const token = sessionToken({ iss: tenantHost, sub });
  const query = new URLSearchParams({ state: `bench-${randomBytes(6).toString("hex")}`, session_token: token });
  const start = await fetch(`${base}/2fa?${query}`, { redirect: "manual" });
  await start.arrayBuffer();
  if (start.status !== 303) throw new Error(`GET /2fa answered ${start.status}`);

  const first = await fetch(`${base}/voiceit_token`, { method: "POST", headers: { cookie: cookieFrom(start) } });
  const body = await first.json();
  if (first.status !== 200) throw new Error(`POST /voiceit_token answered ${first.status}: ${JSON.stringify(body)}`);
  return { cookie: cookieFrom(first, cookieFrom(start)), token: body.token };
}

/**
 * A multipart body in three parts: the text fields with the file part's header, the
 * recording, and the closing boundary. Sessions differ only in the first part.
 */
function multipartParts(fields, fileField) {
  let head = "";
  for (const [name, value] of Object.entries(fields)) {
    head += `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  }
  head +=
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${fileField}"; filename="video.webm"\r\n` +
    "Content-Type: video/webm\r\n\r\n";
  return { head, tail: `\r\n--${BOUNDARY}--\r\n`, type: `multipart/form-data; boundary=${BOUNDARY}` };
}

function uploadPlan(url, size, variants, perVariant) {
  const recording = webmRecording(size, 7);
  const first = variants[0][0];
  const bodyBytes = Buffer.byteLength(first.head) + recording.length + Buffer.byteLength(first.tail);
  return { url, bodyBytes, upload: { recording, variants, perVariant } };
}

/**
 * Enrollment uploads through the worker. Each connection is its own user with
 * `sessionsPerConnection` 2FA sessions, each used for at most `perSession` recordings: the
 * worker caps uploads per session, and a session's first call creates its VoiceIt user.
 */
export async function workerUploads(base, tenantHost, size, { connections, sessionsPerConnection, perSession }) {
  const variants = [];
  for (let c = 0; c < connections; c++) {
    const sessions = [];
    for (let s = 0; s < sessionsPerConnection; s++) {
      const session = await mintSession(base, tenantHost, `auth0|bench-uploader-${c}`);
      const parts = multipartParts(
        { viRequestType: "createVideoEnrollment", viSecureToken: session.token },
        "viVideoData",
      );
      const headers = { cookie: session.cookie, "content-type": parts.type };
      sessions.push({ headers, head: parts.head, tail: parts.tail });
    }
    variants.push(sessions);
  }
  return uploadPlan(`${base}/voiceit_endpoint`, size, variants, perSession);
}

/** The same recordings straight to the stand-in, as the worker forwards them: one user each. */
export async function directUploads(voiceit, size, { connections }) {
  const credentials = `${TEST_SECRETS.VOICEIT_API_KEY}:${TEST_SECRETS.VOICEIT_API_TOKEN}`;
  const authorization = `Basic ${Buffer.from(credentials).toString("base64")}`;
  const variants = [];
  for (let c = 0; c < connections; c++) {
    const created = await fetch(`${voiceit.apiUrl}/users`, { method: "POST", headers: { authorization } });
    const { userId } = await created.json();
    const parts = multipartParts({ userId, contentLanguage: "en-US", phrase: PHRASE }, "video");
    const headers = { authorization, "content-type": parts.type };
    variants.push([{ headers, head: parts.head, tail: parts.tail }]);
  }
  return uploadPlan(`${voiceit.apiUrl}/enrollments/video`, size, variants, Infinity);
}

/** The first upload of a plan as one Buffer, for a plain fetch. */
export function oneUpload(plan) {
  const v = plan.upload.variants[0][0];
  const body = Buffer.concat([Buffer.from(v.head), plan.upload.recording, Buffer.from(v.tail)]);
  return { headers: v.headers, body };
}
