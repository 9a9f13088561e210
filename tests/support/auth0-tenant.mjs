/**
 * A stand-in Auth0 tenant on loopback, for the worker's integration tests and for the local
 * sandbox (`npm start`), where it replaces Universal Login so the whole login flow runs with no
 * accounts.
 *
 * It publishes RS256 keys (JWKS and discovery, with switches to rotate them or make the JWKS
 * fail), and plays the parts of a tenant that @auth0/auth0-spa-js 2.28.3 uses: `/authorize`
 * (code flow with PKCE S256, `response_mode` query or web_message, `prompt=none`),
 * `/oauth/token`, `/v2/logout`. Between sign-in and the code, the post-login Action runs
 * through the redirect API stand-in (`redirect-api.mjs`), so its redirect to the worker and
 * the return to `/continue` happen over real HTTP.
 *
 * Decisions taken where Auth0's behaviour is not documented, or where a sandbox differs:
 * - Any name signs in, without a password. The user is `auth0|sandbox-<slug of the name>`, so
 *   names that differ only in case or punctuation are the same user.
 * - Without `prompt=none` the sign-in form is always shown, even with a session, so another
 *   name can be used; signing in again with the session's user keeps the session, and with it
 *   the methods the Action recorded.
 * - Redirect and logout URLs are accepted on an allow-list (http or https on 127.0.0.1,
 *   localhost or [::1], any port) instead of a client's registered URLs.
 * - An authorization code is used up by the first exchange that names it, even one that fails
 *   (wrong verifier, client or redirect_uri), so a verifier cannot be guessed over many tries.
 * - The Action's custom claims cannot replace the standard claims of a token.
 * - The access token is always a JWT; without an `audience` it is only for `/userinfo`.
 *
 * What a page using auth0-spa-js 2.28.3 must pass, from reading and running that version:
 * `domain` is `baseUrl` exactly (scheme included, no trailing slash), and `issuer` is left
 * out, since spa-js turns any issuer not starting with https:// into `https://<issuer>/`. The
 * app should also be served from 127.0.0.1: the session cookie is SameSite=Lax, so the silent
 * `prompt=none` iframe carries it only when app and tenant are on the same site.
 */
import http from "node:http";
import {
  createHash,
  createHmac,
  generateKeyPairSync,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
} from "node:crypto";

import { ACTION_PATH, base64urlJson, createTransaction, loadAction } from "./redirect-api.mjs";

const SESSION_COOKIE = "auth0_sandbox_session";
const SIGN_IN_SECONDS = 600;
const CONTINUE_SECONDS = 600;
const CODE_SECONDS = 300;
const ACCESS_TOKEN_SECONDS = 86400;
const ID_TOKEN_SECONDS = 36000;
const TEST_TOKEN_SECONDS = 3600;
const SLOW_JWKS_MS = 30_000;
const MAX_BODY_BYTES = 64 * 1024;
const MAX_NAME_LENGTH = 80;
const DEFAULT_TEST_SUBJECT = "auth0|sandbox-test-user";
const JSON_TYPE = "application/json; charset=utf-8";
const HTML_TYPE = "text/html; charset=utf-8";
const JS_TYPE = "text/javascript; charset=utf-8";
const CSS_TYPE = "text/css; charset=utf-8";

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);
const RESPONSE_MODES = new Set(["query", "web_message"]);
const CODE_VERIFIER_SHAPE = /^[A-Za-z0-9._~-]{43,128}$/;
const S256_CHALLENGE_SHAPE = /^[A-Za-z0-9_-]{43}$/;

// Routes answered as OAuth JSON errors; every other route is a browser page.
const JSON_ROUTES = new Set([
  "/oauth/token",
  "/userinfo",
  "/.well-known/jwks.json",
  "/.well-known/openid-configuration",
]);

const PAGE_CSP =
  "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

const STYLESHEET = `body { font: 16px/1.5 system-ui, sans-serif; max-width: 34rem;
  margin: 3rem auto; padding: 0 1rem; color: #1d1d1f; }
.banner { background: #fff4ce; border: 1px solid #d9b84a; border-radius: 4px;
  padding: .5rem .75rem; }
label { display: block; margin-top: 1rem; font-weight: 600; }
input[type=text] { font: inherit; width: 100%; box-sizing: border-box; padding: .4rem; }
button { font: inherit; margin-top: 1rem; padding: .4rem 1.4rem; }
.problem { color: #a40000; }
code { background: #eee; padding: 0 .25rem; }
`;

// Served as a file so that the web_message page carries no inline script.
const WEB_MESSAGE_SCRIPT = `"use strict";
// Hands the authorization response to the app that framed or opened this page.
(() => {
  const script = document.currentScript;
  const response = JSON.parse(script.dataset.response);
  const target = window.opener || window.parent;
  target.postMessage({ type: "authorization_response", response }, script.dataset.targetOrigin);
})();
`;

/** A refusal with an OAuth error code; rendered as JSON or as an HTML page by route. */
class TenantError extends Error {
  constructor(code, description, { status = 400, headers = {} } = {}) {
    super(description);
    this.code = code;
    this.status = status;
    this.headers = headers;
  }
}

// --- Small helpers --------------------------------------------------------------------------

const nowSeconds = () => Math.floor(Date.now() / 1000);
const randomId = () => randomBytes(24).toString("base64url");

function withoutUndefined(object) {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

function sameText(a, b) {
  const left = Buffer.from(String(a));
  const right = Buffer.from(String(b));
  return left.length === right.length && timingSafeEqual(left, right);
}

function s256(verifier) {
  return createHash("sha256").update(verifier, "ascii").digest("base64url");
}

/** The entry under `key` if it has not expired; expired entries are dropped. */
function takeLive(map, key) {
  const entry = typeof key === "string" ? map.get(key) : undefined;
  if (!entry) return undefined;
  if (entry.expiresAt <= Date.now()) {
    map.delete(key);
    return undefined;
  }
  return entry;
}

function putExpiring(map, key, value, seconds) {
  for (const [oldKey, entry] of map) {
    if (entry.expiresAt <= Date.now()) map.delete(oldKey);
  }
  map.set(key, { ...value, expiresAt: Date.now() + seconds * 1000 });
}

/**
 * True for an absolute http(s) URL on this machine, the sandbox's stand-in for a client's
 * registered callback and logout URLs; anything else would make the tenant an open redirect.
 */
function isAllowedReturnUrl(raw) {
  if (typeof raw !== "string" || raw === "") return false;

  let url;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  const web = url.protocol === "http:" || url.protocol === "https:";
  return web && LOOPBACK_HOSTS.has(url.hostname) && !url.username && !url.password && !url.hash;
}

function allowedOrigin(origin) {
  return isAllowedReturnUrl(origin) && new URL(origin).origin === origin ? origin : null;
}

/** The user id part of a name: lowercase ASCII words joined by "-", or a hash if none. */
function slugOf(name) {
  const ascii = name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  const slug = ascii.replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 48);
  return slug || createHash("sha256").update(name).digest("hex").slice(0, 16);
}

function normaliseName(raw) {
  const name = typeof raw === "string" ? raw.replace(/\s+/g, " ").trim() : "";
  return name.slice(0, MAX_NAME_LENGTH);
}

function readCookie(header, name) {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

// --- HTTP plumbing --------------------------------------------------------------------------

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => resolve({ text: Buffer.concat(chunks).toString("utf8"), size }));
    req.on("error", reject);
  });
}

/** The request's form or JSON fields as strings; `{}` for a request without a body. */
async function readFields(req) {
  const { text, size } = await readBody(req);
  if (size > MAX_BODY_BYTES) throw new TenantError("invalid_request", "the body is too large");
  if (text === "") return {};

  const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  if (type === "application/x-www-form-urlencoded") {
    return Object.fromEntries(new URLSearchParams(text));
  }
  if (type === "application/json") {
    let value;
    try {
      value = JSON.parse(text);
    } catch {
      throw new TenantError("invalid_request", "the JSON body could not be parsed");
    }
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      throw new TenantError("invalid_request", "the JSON body must be an object");
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
  }
  throw new TenantError("invalid_request", `a ${type || "typeless"} body is not accepted here`);
}

function send(res, status, contentType, text, headers = {}) {
  res.writeHead(status, {
    "content-type": contentType,
    "content-length": Buffer.byteLength(text),
    "x-content-type-options": "nosniff",
    ...headers,
  });
  res.end(text);
}

function sendJson(res, status, body, headers = {}) {
  send(res, status, JSON_TYPE, JSON.stringify(body), headers);
}

function redirect(res, location) {
  res.writeHead(302, { location, "cache-control": "no-store", "content-length": 0 });
  res.end();
}

const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (char) => HTML_ESCAPES[char]);
}

function sendPage(res, status, { title, body, head = "", csp = PAGE_CSP }) {
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/sandbox.css">
${head}</head>
<body>
${body}
</body>
</html>
`;
  send(res, status, HTML_TYPE, html, {
    "content-security-policy": csp,
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
  });
}

function sendErrorPage(res, error) {
  sendPage(res, error.status, {
    title: `Sandbox tenant: ${error.code}`,
    body: `<p class="banner">Sandbox tenant (no real Auth0 account)</p>
<h1>This sign-in cannot go on</h1>
<p><code>${escapeHtml(error.code)}</code></p>
<p>${escapeHtml(error.message)}</p>`,
  });
}

function sendOAuthError(res, error) {
  sendJson(
    res,
    error.status,
    { error: error.code, error_description: error.message },
    { "cache-control": "no-store", ...error.headers },
  );
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve(server.address().port);
    });
  });
}

function closeServer(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

// --- Signing keys and JWTs ------------------------------------------------------------------

function createSigningKey() {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = randomBytes(12).toString("base64url");
  const { n, e } = publicKey.export({ format: "jwk" });
  return {
    kid,
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }),
    jwk: { kty: "RSA", use: "sig", alg: "RS256", kid, n, e },
  };
}

function signJwt(header, claims, signSegment) {
  const input = `${base64urlJson(header)}.${base64urlJson(claims)}`;
  return `${input}.${signSegment(input)}`;
}

function rs256Signer(privateKey) {
  return (input) => sign("sha256", Buffer.from(input), privateKey).toString("base64url");
}

/** How `signAccessToken` signs for `alg`; HS256 is keyed with the public key PEM by default. */
function testSigner(alg, key, current) {
  if (alg === "RS256") return rs256Signer(key ?? current.privateKey);
  if (alg === "HS256") {
    const secret = key ?? current.publicKeyPem;
    return (input) => createHmac("sha256", secret).update(input).digest("base64url");
  }
  if (alg === "none") return () => "";
  throw new TypeError(`signAccessToken signs RS256, HS256 or none, not ${alg}`);
}

/** The claims of an RS256 token signed by one of `keys` and not expired, or null. */
function verifyOwnToken(token, keys) {
  const parts = typeof token === "string" ? token.split(".") : [];
  if (parts.length !== 3) return null;

  try {
    const header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"));
    const key = keys.find((candidate) => candidate.kid === header.kid);
    if (header.alg !== "RS256" || !key) return null;

    const input = Buffer.from(`${parts[0]}.${parts[1]}`);
    if (!verify("sha256", input, key.publicKey, Buffer.from(parts[2], "base64url"))) return null;

    const claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
    return Number.isFinite(claims.exp) && claims.exp > nowSeconds() ? claims : null;
  } catch {
    return null;
  }
}

// --- The tenant -----------------------------------------------------------------------------

/**
 * Starts the tenant on 127.0.0.1. `audience` is the API identifier, `clientId` the SPA's client,
 * `secrets` the Action's secrets (REDIRECT_SECRET, WORKER_URL…), `claimNamespace` if given
 * becomes the CLAIM_NAMESPACE secret, `users` seeds users (`{name, user_id?, app_metadata?}`).
 * See the returned object for the test controls.
 */
export async function startAuth0Tenant({
  port = 0,
  audience,
  clientId,
  secrets = {},
  actionPath = ACTION_PATH,
  users = [],
  claimNamespace,
  actionFetch,
} = {}) {
  const nonEmpty = (value) => typeof value === "string" && value !== "";
  if (!nonEmpty(audience) || !nonEmpty(clientId)) {
    throw new TypeError("startAuth0Tenant needs a non-empty audience and clientId");
  }

  // The Action calls the worker to spend results; tests without a worker pass a stand-in.
  const action = loadAction(actionPath, actionFetch ? { fetch: actionFetch } : undefined);
  const actionSecrets = { ...secrets };
  if (claimNamespace !== undefined) actionSecrets.CLAIM_NAMESPACE = claimNamespace;

  const usersById = new Map();
  const userIdsBySlug = new Map();
  const sessions = new Map();
  const signIns = new Map();
  const pendingContinues = new Map();
  const codes = new Map();
  const heldJwksTimers = new Set();

  let current = createSigningKey();
  let publishedKeys = [current];
  let jwksMode = false;
  let jwksFetchCount = 0;

  // Filled in once the server listens: the port is only known then.
  let baseUrl = "";
  let host = "";
  let issuer = "";

  for (const seed of users) addUser(seed);

  // --- Users and sessions ---

  function addUser({ name, user_id, app_metadata = {}, user_metadata = {}, ...profile }) {
    const cleanName = normaliseName(name);
    if (!cleanName) throw new TypeError("a seeded user needs a name");

    const slug = slugOf(cleanName);
    const userId = user_id ?? `auth0|sandbox-${slug}`;
    const createdAt = new Date().toISOString();
    const user = {
      ...structuredClone(profile),
      user_id: userId,
      name: cleanName,
      nickname: slug,
      app_metadata: structuredClone(app_metadata),
      user_metadata: structuredClone(user_metadata),
      identities: [
        { provider: "auth0", connection: "sandbox-names", user_id: userId, isSocial: false },
      ],
      created_at: createdAt,
      updated_at: createdAt,
    };
    usersById.set(userId, user);
    userIdsBySlug.set(slug, userId);
    return user;
  }

  function findOrCreateUser(name) {
    const userId = userIdsBySlug.get(slugOf(name));
    return usersById.get(userId) ?? addUser({ name });
  }

  /** Applies the metadata changes of one Action run, which Auth0 writes at the end of it. */
  function saveMetadata(user, result) {
    if (Object.keys(result.appMetadata).length + Object.keys(result.userMetadata).length === 0) {
      return;
    }
    Object.assign(user.app_metadata, structuredClone(result.appMetadata));
    Object.assign(user.user_metadata, structuredClone(result.userMetadata));
    user.updated_at = new Date().toISOString();
  }

  function sessionOf(req) {
    const id = readCookie(req.headers.cookie, SESSION_COOKIE);
    return (id && sessions.get(id)) || null;
  }

  /** The browser's session for `user`: kept if it already is this user's, else a new one. */
  function openSession(call, user) {
    const existing = sessionOf(call.req);
    const signedInAt = new Date().toISOString();

    if (existing && existing.userId === user.user_id) {
      existing.methods = existing.methods.filter((method) => method.name !== "pwd");
      existing.methods.push({ name: "pwd", timestamp: signedInAt });
      return existing;
    }

    if (existing) sessions.delete(existing.id);
    const session = {
      id: randomId(),
      userId: user.user_id,
      methods: [{ name: "pwd", timestamp: signedInAt }],
    };
    sessions.set(session.id, session);
    // Limitation: cookies are not isolated by port, so apps on this host also receive it.
    call.res.setHeader(
      "set-cookie",
      `${SESSION_COOKIE}=${session.id}; Path=/; HttpOnly; SameSite=Lax`,
    );
    return session;
  }

  function recordMethods(sessionId, urls) {
    const session = sessions.get(sessionId);
    if (!session) return;

    const timestamp = new Date().toISOString();
    for (const name of urls) {
      session.methods = session.methods.filter((method) => method.name !== name);
      session.methods.push({ name, timestamp });
    }
  }

  // --- Authorization requests ---

  /**
   * The client and where to answer it. Until both are known to be good nothing may redirect,
   * or the tenant would send errors (and codes) to an attacker's URL.
   */
  function readClient(params) {
    const client = params.get("client_id");
    if (!client) throw new TenantError("invalid_request", "the client_id parameter is missing");
    if (client !== clientId) {
      throw new TenantError("invalid_request", `"${client}" is not a client of this tenant`);
    }

    const redirectUri = params.get("redirect_uri");
    if (!isAllowedReturnUrl(redirectUri)) {
      throw new TenantError(
        "invalid_request",
        "the redirect_uri must be an http(s) URL on 127.0.0.1 or localhost without a fragment " +
          "(the sandbox allow-list)",
      );
    }

    const mode = params.get("response_mode") || "query";
    return {
      clientId: client,
      redirectUri,
      state: params.get("state") ?? undefined,
      responseMode: RESPONSE_MODES.has(mode) ? mode : "query",
      requestedMode: mode,
    };
  }

  /** The rest of the request, or `{failure}` to send back to the client. */
  function readAuthorization(params, client) {
    const fail = (error, description) => ({ failure: { error, error_description: description } });

    if (params.get("response_type") !== "code") {
      return fail("unsupported_response_type", "only response_type=code is supported");
    }
    if (!RESPONSE_MODES.has(client.requestedMode)) {
      return fail("invalid_request", "response_mode must be query or web_message");
    }

    // A public client without PKCE would let a stolen code be exchanged by anyone.
    const challenge = params.get("code_challenge");
    if (params.get("code_challenge_method") !== "S256" || !S256_CHALLENGE_SHAPE.test(challenge)) {
      return fail("invalid_request", "PKCE is required: code_challenge with method S256");
    }

    const requestedAudience = params.get("audience") || undefined;
    if (requestedAudience !== undefined && requestedAudience !== audience) {
      return fail("access_denied", `"${requestedAudience}" is not an API of this tenant`);
    }

    const prompt = (params.get("prompt") ?? "").split(" ").filter(Boolean);
    if (prompt.includes("none") && prompt.length > 1) {
      return fail("invalid_request", "prompt=none cannot be combined with other prompts");
    }

    const scope = [...new Set((params.get("scope") ?? "").split(" ").filter(Boolean))].join(" ");
    return {
      ...client,
      codeChallenge: challenge,
      nonce: params.get("nonce") || undefined,
      scope,
      audience: requestedAudience,
      prompt,
    };
  }

  /** Sends `params` (a code or an error) and the client's state back the way it asked. */
  function answerClient(res, client, params) {
    const response = withoutUndefined({ ...params, state: client.state });

    if (client.responseMode === "web_message") {
      const targetOrigin = new URL(client.redirectUri).origin;
      sendPage(res, 200, {
        title: "Sandbox authorization response",
        head: `<script src="/authorize/web-message.js" data-target-origin="${escapeHtml(
          targetOrigin,
        )}" data-response="${escapeHtml(JSON.stringify(response))}"></script>\n`,
        body: "<p>Returning to the app…</p>",
        // Only the app that asked may frame this page.
        csp: `default-src 'none'; script-src 'self'; style-src 'self'; ` +
          `frame-ancestors ${targetOrigin}`,
      });
      return;
    }

    const target = new URL(client.redirectUri);
    for (const [name, value] of Object.entries(response)) target.searchParams.set(name, value);
    redirect(res, target.href);
  }

  function sendSignInPage(res, { transaction, authorization, name = "", problem }, status = 200) {
    const returnOrigin = new URL(authorization.redirectUri).origin;
    const problemLine = problem
      ? `\n<p class="problem" role="alert">${escapeHtml(problem)}</p>`
      : "";
    sendPage(res, status, {
      title: "Sandbox sign-in (no real Auth0 account)",
      body: `<h1>Sandbox sign-in (no real Auth0 account)</h1>
<p class="banner">This page stands in for Auth0's login page on this machine. Any name signs you
in and no password is asked; the same name is the same user next time.</p>
<p>After the check you return to <code>${escapeHtml(returnOrigin)}</code>.</p>
<form method="post" action="/authorize/submit">
<input type="hidden" name="transaction" value="${escapeHtml(transaction)}">
<label for="name">Your name</label>
<input type="text" id="name" name="name" value="${escapeHtml(name)}" required
  maxlength="${MAX_NAME_LENGTH}" autocomplete="name" autofocus>${problemLine}
<button type="submit">Sign in</button>
</form>`,
    });
  }

  // --- The login pipeline ---

  function eventRequest(call) {
    return {
      ip: call.req.socket.remoteAddress,
      hostname: host,
      method: call.req.method,
      user_agent: call.req.headers["user-agent"] ?? "",
      query: Object.fromEntries(call.url.searchParams),
      body: {},
    };
  }

  async function runLogin(call, authorization, session, user) {
    const login = createTransaction({
      user,
      secrets: actionSecrets,
      transaction: {
        protocol: "oidc-basic-profile",
        prompt: authorization.prompt,
        redirect_uri: authorization.redirectUri,
        state: authorization.state,
        requested_scopes: authorization.scope.split(" ").filter(Boolean),
      },
      authentication: { methods: structuredClone(session.methods) },
      request: eventRequest(call),
      tenantHost: host,
    });

    const result = await login.runExecute(action);
    saveMetadata(user, result);
    settleRun(call, result, { login, authorization, sessionId: session.id, user });
  }

  function settleRun(call, result, flow) {
    if (result.status === "redirected") {
      putExpiring(pendingContinues, flow.login.state, flow, CONTINUE_SECONDS);
      redirect(call.res, result.redirect.url);
      return;
    }
    if (result.status === "completed") {
      recordMethods(flow.sessionId, result.recordedMethods);
      issueCode(call.res, flow, result);
      return;
    }
    answerClient(call.res, flow.authorization, result.failure);
  }

  function issueCode(res, { authorization, user }, result) {
    const code = randomBytes(32).toString("base64url");
    const grant = {
      clientId: authorization.clientId,
      redirectUri: authorization.redirectUri,
      codeChallenge: authorization.codeChallenge,
      nonce: authorization.nonce,
      scope: authorization.scope,
      audience: authorization.audience,
      userId: user.user_id,
      accessTokenClaims: structuredClone(result.accessTokenClaims),
      idTokenClaims: structuredClone(result.idTokenClaims),
    };
    putExpiring(codes, code, grant, CODE_SECONDS);
    answerClient(res, authorization, { code });
  }

  // --- Routes ---

  function publishedJwks() {
    return { keys: publishedKeys.map((key) => ({ ...key.jwk })) };
  }

  function serveJwks({ res }) {
    jwksFetchCount += 1;
    const open = { "access-control-allow-origin": "*" };

    if (jwksMode === true) {
      const body = { error: "temporarily_unavailable", error_description: "the JWKS is down" };
      sendJson(res, 503, body, { ...open, "retry-after": "5" });
    } else if (jwksMode === "garbage") {
      // Labelled JSON but cut short, so only parsing it shows the problem.
      send(res, 200, JSON_TYPE, '{"keys":[{"kty":"RSA","kid":', open);
    } else if (jwksMode === "slow") {
      const timer = setTimeout(() => {
        heldJwksTimers.delete(timer);
        if (!res.destroyed) sendJson(res, 200, publishedJwks(), open);
      }, SLOW_JWKS_MS);
      heldJwksTimers.add(timer);
      res.on("close", () => {
        clearTimeout(timer);
        heldJwksTimers.delete(timer);
      });
    } else {
      sendJson(res, 200, publishedJwks(), open);
    }
  }

  function serveDiscovery({ res }) {
    sendJson(
      res,
      200,
      {
        issuer,
        authorization_endpoint: `${baseUrl}/authorize`,
        token_endpoint: `${baseUrl}/oauth/token`,
        userinfo_endpoint: `${baseUrl}/userinfo`,
        jwks_uri: `${baseUrl}/.well-known/jwks.json`,
        end_session_endpoint: `${baseUrl}/oidc/logout`,
        response_types_supported: ["code"],
        response_modes_supported: [...RESPONSE_MODES],
        grant_types_supported: ["authorization_code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        token_endpoint_auth_methods_supported: ["none"],
        code_challenge_methods_supported: ["S256"],
        scopes_supported: ["openid", "profile"],
        claims_supported: ["iss", "sub", "aud", "iat", "exp", "nonce", "azp", "name", "nickname"],
      },
      { "access-control-allow-origin": "*" },
    );
  }

  async function authorize(call) {
    const params = call.url.searchParams;
    const client = readClient(params);
    const authorization = readAuthorization(params, client);
    if (authorization.failure) {
      answerClient(call.res, client, authorization.failure);
      return;
    }

    const session = sessionOf(call.req);
    if (authorization.prompt.includes("none")) {
      const user = session && usersById.get(session.userId);
      if (!user) {
        const description = "this browser has no session with the sandbox tenant";
        answerClient(call.res, client, { error: "login_required", error_description: description });
        return;
      }
      await runLogin(call, authorization, session, user);
      return;
    }

    const transaction = randomId();
    putExpiring(signIns, transaction, { authorization }, SIGN_IN_SECONDS);
    const name = (session && usersById.get(session.userId)?.name) ?? "";
    sendSignInPage(call.res, { transaction, authorization, name });
  }

  async function submitSignIn(call) {
    const transaction = call.fields.transaction;
    const signIn = takeLive(signIns, transaction);
    if (!signIn) {
      throw new TenantError(
        "invalid_request",
        "this sign-in form has expired or was already used: start again from the app",
      );
    }

    const name = normaliseName(call.fields.name);
    if (!name) {
      const problem = "Enter your name.";
      sendSignInPage(call.res, { transaction, authorization: signIn.authorization, problem }, 400);
      return;
    }
    signIns.delete(transaction);

    const user = findOrCreateUser(name);
    const session = openSession(call, user);
    await runLogin(call, signIn.authorization, session, user);
  }

  async function continueLogin(call) {
    const state = call.url.searchParams.get("state") ?? call.fields.state;
    const flow = takeLive(pendingContinues, state);
    if (!flow) {
      throw new TenantError(
        "invalid_request",
        "no sign-in is waiting to be continued with this state: start again from the app",
      );
    }
    pendingContinues.delete(state);

    const result = await flow.login.runContinue(action, {
      state,
      body: call.req.method === "POST" ? call.fields : undefined,
      query: Object.fromEntries(call.url.searchParams),
    });
    if (result.status === "rejected") {
      throw new TenantError(result.failure.error, result.failure.error_description);
    }

    saveMetadata(flow.user, result);
    settleRun(call, result, flow);
  }

  /** CORS for the SPA's fetches; only origins on the sandbox allow-list may read answers. */
  function allowCors(call, methods) {
    const origin = allowedOrigin(call.req.headers.origin);
    call.res.setHeader("vary", "Origin");
    if (!origin) return;

    call.res.setHeader("access-control-allow-origin", origin);
    call.res.setHeader("access-control-allow-methods", methods);
    call.res.setHeader("access-control-allow-headers", "Content-Type, Auth0-Client, Authorization");
    call.res.setHeader("access-control-max-age", "600");
  }

  function preflight(methods) {
    return (call) => {
      allowCors(call, methods);
      call.res.writeHead(204, { "content-length": 0 });
      call.res.end();
    };
  }

  function exchangeCode(call) {
    allowCors(call, "POST");
    const fields = call.fields;

    if (fields.grant_type !== "authorization_code") {
      throw new TenantError("unsupported_grant_type", "only authorization_code is supported");
    }
    if (fields.client_id !== clientId) {
      throw new TenantError("invalid_client", "the client_id is missing or unknown", {
        status: 401,
      });
    }
    if (!fields.code) throw new TenantError("invalid_request", "the code parameter is missing");
    if (!CODE_VERIFIER_SHAPE.test(fields.code_verifier ?? "")) {
      throw new TenantError("invalid_request", "the code_verifier is missing or malformed");
    }

    const grant = takeLive(codes, fields.code);
    codes.delete(fields.code);
    if (!grant) {
      throw new TenantError("invalid_grant", "the code is unknown, expired or already used");
    }
    if (grant.clientId !== fields.client_id) {
      throw new TenantError("invalid_grant", "the code was issued to another client");
    }
    if (grant.redirectUri !== fields.redirect_uri) {
      throw new TenantError("invalid_grant", "the redirect_uri differs from the authorization's");
    }
    if (!sameText(s256(fields.code_verifier), grant.codeChallenge)) {
      throw new TenantError("invalid_grant", "the code_verifier does not match the challenge");
    }

    const user = usersById.get(grant.userId);
    if (!user) throw new TenantError("invalid_grant", "the user of this code no longer exists");
    sendJson(call.res, 200, issueTokens(grant, user), {
      "cache-control": "no-store",
      pragma: "no-cache",
    });
  }

  function issueTokens(grant, user) {
    const iat = nowSeconds();
    const header = { alg: "RS256", typ: "JWT", kid: current.kid };
    const signer = rs256Signer(current.privateKey);
    const userinfo = `${issuer}userinfo`;

    const accessToken = signJwt(
      header,
      {
        ...grant.accessTokenClaims,
        iss: issuer,
        sub: user.user_id,
        aud: grant.audience ? [grant.audience, userinfo] : userinfo,
        iat,
        exp: iat + ACCESS_TOKEN_SECONDS,
        azp: grant.clientId,
        scope: grant.scope,
      },
      signer,
    );

    const tokens = {
      access_token: accessToken,
      scope: grant.scope,
      expires_in: ACCESS_TOKEN_SECONDS,
      token_type: "Bearer",
    };

    if (grant.scope.split(" ").includes("openid")) {
      const profile = grant.scope.split(" ").includes("profile")
        ? { name: user.name, nickname: user.nickname, updated_at: user.updated_at }
        : {};
      tokens.id_token = signJwt(
        header,
        withoutUndefined({
          ...grant.idTokenClaims,
          ...profile,
          iss: issuer,
          sub: user.user_id,
          aud: grant.clientId,
          iat,
          exp: iat + ID_TOKEN_SECONDS,
          nonce: grant.nonce,
        }),
        signer,
      );
    }
    return tokens;
  }

  function userinfo(call) {
    allowCors(call, "GET");
    const token = /^Bearer\s+(\S+)$/i.exec(call.req.headers.authorization ?? "")?.[1];
    const claims = verifyOwnToken(token, publishedKeys);
    const audiences = [claims?.aud].flat();
    const user = claims && usersById.get(claims.sub);

    if (!user || !audiences.includes(`${issuer}userinfo`)) {
      throw new TenantError("invalid_token", "the access token is missing, invalid or expired", {
        status: 401,
        headers: { "www-authenticate": 'Bearer error="invalid_token"' },
      });
    }
    sendJson(call.res, 200, { sub: user.user_id, name: user.name, nickname: user.nickname });
  }

  function logout(call) {
    const params = call.url.searchParams;
    const returnTo = params.get("returnTo") ?? params.get("post_logout_redirect_uri");
    const client = params.get("client_id");

    // Signing out happens even when the request is refused below: the user asked to leave.
    const session = sessionOf(call.req);
    if (session) sessions.delete(session.id);
    call.res.setHeader(
      "set-cookie",
      `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`,
    );

    if (client && client !== clientId) {
      throw new TenantError("invalid_request", `"${client}" is not a client of this tenant`);
    }
    if (returnTo === null) {
      sendPage(call.res, 200, {
        title: "Signed out of the sandbox tenant",
        body: `<p class="banner">Sandbox tenant (no real Auth0 account)</p>
<h1>You are signed out</h1>`,
      });
      return;
    }
    if (!isAllowedReturnUrl(returnTo)) {
      throw new TenantError(
        "invalid_request",
        "returnTo must be an http(s) URL on 127.0.0.1 or localhost (the sandbox allow-list)",
      );
    }
    redirect(call.res, returnTo);
  }

  const routes = new Map([
    ["GET /.well-known/jwks.json", serveJwks],
    ["GET /.well-known/openid-configuration", serveDiscovery],
    ["GET /authorize", authorize],
    ["POST /authorize/submit", submitSignIn],
    ["GET /continue", continueLogin],
    ["POST /continue", continueLogin],
    ["OPTIONS /oauth/token", preflight("POST")],
    ["POST /oauth/token", exchangeCode],
    ["OPTIONS /userinfo", preflight("GET")],
    ["GET /userinfo", userinfo],
    ["GET /v2/logout", logout],
    ["GET /oidc/logout", logout],
    ["GET /authorize/web-message.js", ({ res }) => send(res, 200, JS_TYPE, WEB_MESSAGE_SCRIPT)],
    ["GET /sandbox.css", ({ res }) => send(res, 200, CSS_TYPE, STYLESHEET)],
    ["GET /favicon.ico", ({ res }) => res.writeHead(204).end()],
  ]);

  async function handle(req, res) {
    const url = new URL(req.url, baseUrl);
    const handler = routes.get(`${req.method} ${url.pathname}`);
    if (!handler) {
      const description = `the sandbox tenant has no route ${req.method} ${url.pathname}`;
      sendJson(res, 404, { error: "not_found", error_description: description });
      return;
    }

    try {
      const fields = await readFields(req);
      await handler({ req, res, url, fields });
    } catch (error) {
      if (!(error instanceof TenantError)) throw error;
      if (JSON_ROUTES.has(url.pathname)) sendOAuthError(res, error);
      else sendErrorPage(res, error);
    }
  }

  const server = http.createServer(async (req, res) => {
    try {
      await handle(req, res);
    } catch (error) {
      // A stand-in bug must surface as a loud 500, never as a hang.
      if (!res.headersSent) {
        sendJson(res, 500, { error: "standin_failure", error_description: error.stack });
      } else {
        res.destroy(error);
      }
    }
  });

  const boundPort = await listen(server, port);
  host = `127.0.0.1:${boundPort}`;
  baseUrl = `http://${host}`;
  issuer = `${baseUrl}/`;

  return {
    baseUrl,
    host,
    issuer,
    audience,
    clientId,

    /** An RS256 JWT with access-token defaults; `undefined` claims are left out. */
    signAccessToken(claims = {}, { kid, alg = "RS256", header = {}, key } = {}) {
      const iat = nowSeconds();
      const payload = withoutUndefined({
        iss: issuer,
        sub: DEFAULT_TEST_SUBJECT,
        aud: [audience, `${issuer}userinfo`],
        azp: clientId,
        iat,
        exp: iat + TEST_TOKEN_SECONDS,
        ...claims,
      });
      const fullHeader = withoutUndefined({
        alg,
        typ: "JWT",
        kid: kid === undefined ? current.kid : (kid ?? undefined),
        ...header,
      });
      return signJwt(fullHeader, payload, testSigner(alg, key, current));
    },

    /** Makes a new key current; the old ones leave the JWKS unless `keepOld`. */
    rotateKeys({ keepOld = false } = {}) {
      current = createSigningKey();
      publishedKeys = keepOld ? [current, ...publishedKeys] : [current];
      return current.kid;
    },

    /** false: normal; true: 503; "garbage": a 200 that is not JSON; "slow": no answer for 30 s. */
    setJwksDown(mode) {
      if (![true, false, "garbage", "slow"].includes(mode)) {
        throw new TypeError('setJwksDown takes true, false, "garbage" or "slow"');
      }
      jwksMode = mode;
    },

    get currentKid() {
      return current.kid;
    },
    get publicKeyPem() {
      return current.publicKeyPem;
    },
    get jwks() {
      return publishedJwks();
    },
    get jwksFetchCount() {
      return jwksFetchCount;
    },

    /** A copy of the user with this name or user_id, or undefined. */
    findUser(nameOrId) {
      const byName = userIdsBySlug.get(slugOf(normaliseName(String(nameOrId))));
      const user = usersById.get(nameOrId) ?? usersById.get(byName);
      return user ? structuredClone(user) : undefined;
    },

    async close() {
      for (const timer of heldJwksTimers) clearTimeout(timer);
      heldJwksTimers.clear();
      await closeServer(server);
    },
  };
}
