/**
 * A stand-in for the `event` and `api` objects Auth0 hands a post-login Action, covering what
 * a redirect Action uses and behaving as Auth0 documents it: `encodeToken` claims, the `state`
 * appended by `sendUserTo`, the checks of `validateToken`, and `recordMethod` being allowed
 * only when the login continues.
 *
 * One transaction is one login: `runExecute` plays the login, `runContinue` plays the browser
 * coming back to `/continue`. Each run returns a plain record of what the Action asked for.
 *
 * Assumption (not documented by Auth0): a redirect state can be continued once.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire, isBuiltin } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

export const ACTION_PATH = fileURLToPath(
  new URL("../../auth0/post-login-action.js", import.meta.url),
);
export const DEFAULT_TENANT_HOST = "example.us.auth0.com";
export const HS256_HEADER = Object.freeze({ alg: "HS256", typ: "JWT" });

const DEFAULT_TOKEN_SECONDS = 900;
const REQUIRED_TOKEN_CLAIMS = ["iat", "exp", "sub", "iss", "state"];

// Auth0 fails these grants if an Action tries to redirect them.
const NON_REDIRECTING_PROTOCOLS = new Set([
  "oauth2-refresh-token",
  "oauth2-password",
  "oauth2-resource-owner",
  "oauth2-resource-owner-jwt-bearer",
  "oauth2-token-exchange",
  "oauth2-access-token",
]);

/** Thrown by the token helpers and by `validateToken`, with a readable reason. */
export class TokenError extends Error {
  constructor(message) {
    super(message);
    this.name = "TokenError";
  }
}

// --- Loading the Action ---------------------------------------------------------------------

/**
 * Loads the Action file as Auth0 does, as CommonJS, and returns its exports. The project's
 * package.json says `"type": "module"`, so Node's own `require` would read it as an ES module;
 * a CommonJS wrapper is compiled here instead. `require` of anything but a Node built-in
 * throws, since the Action is deployed without npm dependencies.
 */
export function loadAction(path = ACTION_PATH, { fetch: actionFetch = globalThis.fetch } = {}) {
  const source = readFileSync(path, "utf8");
  // `fetch` is passed in, so tests can point the Action's calls to the worker at a worker in
  // Miniflare, or at `fakeRedeemer`; by default it is Node's, as in Auth0's runtime.
  const wrapper = vm.compileFunction(
    source,
    ["exports", "require", "module", "__filename", "__dirname", "fetch"],
    { filename: path },
  );

  const module = { exports: {} };
  const nodeRequire = createRequire(path);
  const builtinsOnly = (name) => {
    if (!isBuiltin(name)) {
      throw new Error(`the Action may not require "${name}": only Node built-ins are available`);
    }
    return nodeRequire(name);
  };

  wrapper.call(module.exports, module.exports, builtinsOnly, module, path, dirname(path), actionFetch);
  return module.exports;
}

/**
 * A `fetch` that answers the worker's `POST /2fa/redeem` as the worker does: a valid result
 * token (HS256 with `secret`, unexpired) is redeemed once, a second use is 409, anything else
 * 401. `calls` counts requests; `down: true` makes every call fail like an unreachable host.
 */
export function fakeRedeemer(secret, { down = false } = {}) {
  const spent = new Set();
  const redeemer = async (url, init = {}) => {
    redeemer.calls += 1;
    if (redeemer.down) throw new TypeError("fetch failed");
    if (!String(url).endsWith("/2fa/redeem") || init.method !== "POST") {
      return new Response(JSON.stringify({ error: "not_found" }), { status: 404 });
    }
    let claims;
    try {
      claims = verifyHs256(JSON.parse(init.body).token, secret);
    } catch {
      return new Response(JSON.stringify({ error: "invalid_token" }), { status: 401 });
    }
    if (claims.token_use !== "2fa_result" || spent.has(claims.jti)) {
      return new Response(JSON.stringify({ error: "result_replayed" }), { status: 409 });
    }
    spent.add(claims.jti);
    return new Response(JSON.stringify({ redeemed: true }), { status: 200 });
  };
  redeemer.calls = 0;
  redeemer.down = down;
  return redeemer;
}

// --- HS256 tokens ---------------------------------------------------------------------------

/** Base64url (no padding) of a value's JSON, as in a JWT segment. */
export function base64urlJson(value) {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

/** A compact JWT of `claims`, HMAC-SHA256-signed with `secret` under `header`. */
export function signHs256(claims, secret, header = HS256_HEADER) {
  const signingInput = `${base64urlJson(header)}.${base64urlJson(claims)}`;
  return `${signingInput}.${hmacSha256(signingInput, secret)}`;
}

/** The decoded parts of a compact JWT, unverified: `{header, payload, signature}`. */
export function decodeJwt(token) {
  if (typeof token !== "string") throw new TokenError("the token is not a string");

  const parts = token.split(".");
  if (parts.length !== 3) throw new TokenError("the token does not have three parts");

  const [header, payload] = parts.slice(0, 2).map(decodeJsonSegment);
  return { header, payload, signature: parts[2] };
}

/**
 * The payload of an HS256 token signed with `secret` whose `exp` is still ahead of `now`
 * (milliseconds); throws a TokenError otherwise. Other algorithms, `none` among them, fail.
 */
export function verifyHs256(token, secret, { now = Date.now() } = {}) {
  const { header, payload, signature } = decodeJwt(token);
  if (header.alg !== "HS256") throw new TokenError("the token's algorithm is not HS256");

  const signingInput = token.slice(0, token.lastIndexOf("."));
  if (!sameText(signature, hmacSha256(signingInput, secret))) {
    throw new TokenError("the token's signature is invalid");
  }

  if (!Number.isFinite(payload.exp)) throw new TokenError("the token has no numeric exp");
  if (payload.exp <= Math.floor(now / 1000)) throw new TokenError("the token has expired");

  return payload;
}

function hmacSha256(input, secret) {
  return createHmac("sha256", secret).update(input).digest("base64url");
}

function decodeJsonSegment(segment) {
  let value;
  try {
    value = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  } catch {
    throw new TokenError("a token segment is not base64url JSON");
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new TokenError("a token segment is not a JSON object");
  }
  return value;
}

function sameText(a, b) {
  const left = Buffer.from(String(a));
  const right = Buffer.from(String(b));
  return left.length === right.length && timingSafeEqual(left, right);
}

// --- Transactions ---------------------------------------------------------------------------

/**
 * One login through the post-login trigger.
 *
 * Options (all optional): `user` (merged over a default user), `secrets`, `transaction`
 * (merged over `{protocol: "oidc-basic-profile", prompt: []}`), `authentication` (default: one
 * `pwd` method now), `request` (merged over a default request), `tenantHost`, and `clock` (a
 * function returning milliseconds, used for token times).
 *
 * Returns `{state, event, runExecute(action), runContinue(action, options)}`. `state` is the
 * opaque value Auth0 appends to the redirect; `event` is the transaction's event, whose
 * `user.app_metadata` takes each run's `setAppMetadata` changes (Auth0 does not roll them back
 * on deny).
 */
export function createTransaction({
  user = {},
  secrets = {},
  transaction = {},
  authentication,
  request = {},
  tenantHost = DEFAULT_TENANT_HOST,
  clock = Date.now,
} = {}) {
  const state = randomBytes(24).toString("base64url");
  const event = {
    user: {
      user_id: "auth0|000000000000000000000001",
      ...structuredClone(user),
      app_metadata: structuredClone(user.app_metadata ?? {}),
      user_metadata: structuredClone(user.user_metadata ?? {}),
    },
    secrets: { ...secrets },
    transaction: {
      id: randomUUID(),
      protocol: "oidc-basic-profile",
      prompt: [],
      // The client's own OAuth state; a different value from the redirect `state`.
      state: `client-${randomBytes(8).toString("hex")}`,
      ...transaction,
    },
    authentication: authentication ?? {
      methods: [{ name: "pwd", timestamp: new Date(clock()).toISOString() }],
    },
    request: {
      ip: "203.0.113.7",
      hostname: tenantHost,
      method: "GET",
      user_agent: "redirect-api stand-in",
      query: {},
      body: {},
      ...request,
    },
    client: { client_id: "stand-in-client", name: "Stand-in app", metadata: {} },
    tenant: { id: tenantHost.split(".")[0] },
  };

  let redirectPending = false;

  async function run(phase, action, runEvent, continueState) {
    const handlerName = phase === "execute" ? "onExecutePostLogin" : "onContinuePostLogin";
    const record = emptyResult(phase);
    const api = buildApi({
      phase,
      event: runEvent,
      record,
      state,
      continueState,
      tenantHost,
      clock,
    });

    try {
      if (typeof action?.[handlerName] !== "function") {
        throw new Error(`the Action does not export ${handlerName}`);
      }
      await action[handlerName](runEvent, api);
    } catch (error) {
      record.error = error;
    }

    Object.assign(event.user.app_metadata, structuredClone(record.appMetadata));
    Object.assign(event.user.user_metadata, structuredClone(record.userMetadata));
    settle(record);
    redirectPending = record.status === "redirected";
    return record;
  }

  return {
    state,
    event,

    /** Runs `onExecutePostLogin` for this login; resolves to a run result. */
    runExecute(action) {
      return run("execute", action, structuredClone(event), null);
    },

    /**
     * Plays the browser's request to `/continue` and runs `onContinuePostLogin`. Options:
     * `state` (default: the state in `body` or `query`, else the transaction's), `body` (a POST
     * form's fields) and `query`. Auth0 refuses the request itself, without running the
     * Action, when no redirect is pending or the state is not the one it generated.
     */
    async runContinue(action, { state: givenState, body, query } = {}) {
      const continueState = givenState ?? body?.state ?? query?.state ?? state;
      const record = emptyResult("continue");

      if (!redirectPending) {
        return reject(record, "invalid_request", "no redirect is waiting to be continued");
      }
      if (continueState !== state) {
        return reject(record, "invalid_request", "the state does not match this login");
      }
      redirectPending = false;

      const runEvent = structuredClone(event);
      runEvent.request = continueRequest(runEvent.request, continueState, body, query);
      return run("continue", action, runEvent, continueState);
    },
  };
}

function continueRequest(base, state, body, query) {
  const requestBody = body ? { ...body } : {};
  const requestQuery = { ...(query ?? {}) };

  if (body && query?.state === undefined) requestBody.state = state;
  else requestQuery.state = state;

  return { ...base, method: body ? "POST" : "GET", body: requestBody, query: requestQuery };
}

/**
 * A run's result. `status` is one of `completed` (tokens would be issued), `redirected`,
 * `denied` (api.access.deny), `rejected` (Auth0 itself refused) or `errored` (the Action threw);
 * `failure` is the OAuth error the app would receive, or null.
 */
function emptyResult(phase) {
  return {
    phase,
    status: "completed",
    redirect: null,
    denied: null,
    failure: null,
    error: null,
    appMetadata: {},
    userMetadata: {},
    recordedMethods: [],
    accessTokenClaims: {},
    idTokenClaims: {},
  };
}

function reject(record, error, description) {
  record.rejected = { error, error_description: description };
  settle(record);
  return record;
}

function settle(record) {
  if (record.error) {
    record.status = "errored";
    record.failure = { error: "access_denied", error_description: "the Action failed" };
  } else if (record.denied !== null) {
    record.status = "denied";
    record.failure = { error: "access_denied", error_description: record.denied };
  } else if (record.rejected) {
    record.status = "rejected";
    record.failure = record.rejected;
  } else if (record.redirect) {
    record.status = "redirected";
  }
  delete record.rejected;
}

function buildApi({ phase, event, record, state, continueState, tenantHost, clock }) {
  const api = {
    access: {
      deny(reason) {
        if (record.denied === null) record.denied = String(reason);
        return api;
      },
    },

    authentication: {
      recordMethod(providerUrl) {
        if (phase !== "continue") {
          throw new Error("recordMethod may only be called from onContinuePostLogin");
        }
        new URL(providerUrl); // Auth0 requires an absolute URL; this throws otherwise.
        record.recordedMethods.push(providerUrl);
        return api;
      },
    },

    user: {
      setAppMetadata(key, value) {
        record.appMetadata[key] = value;
        return api;
      },
      setUserMetadata(key, value) {
        record.userMetadata[key] = value;
        return api;
      },
    },

    accessToken: {
      setCustomClaim(name, value) {
        record.accessTokenClaims[name] = value;
        return api;
      },
    },

    idToken: {
      setCustomClaim(name, value) {
        record.idTokenClaims[name] = value;
        return api;
      },
    },

    redirect: {
      encodeToken({ secret, payload = {}, expiresInSeconds = DEFAULT_TOKEN_SECONDS } = {}) {
        if (typeof secret !== "string" || secret === "") {
          throw new TypeError("encodeToken needs a secret");
        }
        const iat = Math.floor(clock() / 1000);
        return signHs256(
          {
            ...payload,
            sub: event.user.user_id,
            iss: tenantHost,
            iat,
            exp: iat + expiresInSeconds,
            ip: event.request.ip,
          },
          secret,
        );
      },

      sendUserTo(url, { query = {} } = {}) {
        const target = new URL(url);
        for (const [name, value] of Object.entries(query)) {
          target.searchParams.append(name, String(value));
        }
        target.searchParams.set("state", state);

        if (NON_REDIRECTING_PROTOCOLS.has(event.transaction.protocol)) {
          record.rejected = {
            error: "invalid_request",
            error_description: "redirects are not possible in this flow",
          };
        } else if ((event.transaction.prompt ?? []).includes("none")) {
          record.rejected = {
            error: "interaction_required",
            error_description: "a redirect was requested with prompt=none",
          };
        }

        record.redirect = {
          url: target.href,
          target: url,
          query: Object.fromEntries(target.searchParams),
        };
        return api;
      },

      validateToken({ secret, tokenParameterName = "session_token" } = {}) {
        if (phase !== "continue") {
          throw new Error(
            "validateToken reads the /continue request: use it in onContinuePostLogin",
          );
        }
        const token =
          event.request.body?.[tokenParameterName] ?? event.request.query?.[tokenParameterName];
        if (typeof token !== "string" || token === "") {
          throw new TokenError(`no ${tokenParameterName} was sent to /continue`);
        }

        const payload = verifyHs256(token, secret, { now: clock() });
        const missing = REQUIRED_TOKEN_CLAIMS.filter((name) => payload[name] == null);
        if (missing.length > 0) {
          throw new TokenError(`missing or invalid standard claims: ${missing.join(", ")}`);
        }
        if (payload.state !== continueState) {
          throw new TokenError("the state in the token does not match the /continue state");
        }
        return payload;
      },
    },
  };
  return api;
}
