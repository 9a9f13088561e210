/**
 * Auth0 post-login Action: sends an interactive login to the worker's face/voice check, and
 * lets it finish only with a signed result bound to this user and this redirect.
 *
 * Deploy this file unchanged as a Login / Post Login Action (Auth0 runs it as CommonJS).
 * Action secrets:
 *   REDIRECT_SECRET   required, at least 32 characters, the same value as the worker's secret
 *   WORKER_URL        required, e.g. https://2fa.example.workers.dev
 *   REMEMBER_SECONDS  optional, how long a passed check counts for this session (default 43200,
 *                     0 asks on every login)
 *   CLAIM_NAMESPACE   optional prefix of the custom claims (default https://auth0-voiceit-worker/)
 */
"use strict";

const MIN_SECRET_LENGTH = 32;
const DEFAULT_REMEMBER_SECONDS = 43200;
const DEFAULT_CLAIM_NAMESPACE = "https://auth0-voiceit-worker/";
const SESSION_TOKEN_SECONDS = 300;
const MAX_RESULT_TOKEN_SECONDS = 300;
const CLOCK_SKEW_SECONDS = 60;
const RESULT_TOKEN_USE = "2fa_result";
const MAX_VOICEIT_ID_LENGTH = 128;
const REDEEM_TIMEOUT_MS = 5000;

// Grants that run without a browser, so Auth0 cannot redirect them: they pass only with a
// remembered check. A protocol missing here that cannot redirect still fails closed, because
// Auth0 then fails the sendUserTo call and the login with it.
const NON_INTERACTIVE_PROTOCOLS = new Set([
  "oauth2-refresh-token",
  "oauth2-password",
  "oauth2-resource-owner",
  "oauth2-resource-owner-jwt-bearer",
  "oauth2-token-exchange",
  "oauth2-access-token",
  "wstrust-usernamemixed",
  "delegation",
]);

// Every sentence a user can see comes from here; none carries token contents or internals.
const DENY_MESSAGES = Object.freeze({
  misconfigured:
    "Biometric sign-in is not configured correctly. Please contact the site administrator.",
  interactionRequired: "Biometric verification is required: sign in again interactively.",
  profileUnreadable:
    "Your biometric profile could not be read. Please contact the site administrator.",
  unchecked:
    "Biometric verification could not be checked: the result was missing, expired or not " +
    "issued for this sign-in. Please sign in again.",
  failed: "Biometric verification failed. Please sign in again to retry.",
  locked:
    "Biometric verification is locked after too many failed attempts. Please contact the " +
    "site administrator to unlock it.",
  profileMismatch:
    "Biometric verification failed: the check did not match this account's biometric " +
    "profile. Please sign in again.",
  alreadyEnrolled:
    "Biometric enrollment was refused: this account already has a biometric profile. " +
    "Please contact the site administrator to reset it.",
});

exports.onExecutePostLogin = async (event, api) => {
  const settings = readSettings(event.secrets);
  if (!settings) {
    api.access.deny(DENY_MESSAGES.misconfigured);
    return;
  }

  if (hasRememberedCheck(event.authentication, settings)) {
    setNameClaims(event.user, api, settings);
    return;
  }

  // Silent renewals and token grants cannot show the check; letting them through would make
  // the second factor optional, so they are denied instead.
  if (!canRedirect(event.transaction)) {
    api.access.deny(DENY_MESSAGES.interactionRequired);
    return;
  }

  const profile = readProfile(event.user);
  if (!profile) {
    api.access.deny(DENY_MESSAGES.profileUnreadable);
    return;
  }

  const sessionToken = api.redirect.encodeToken({
    secret: settings.secret,
    expiresInSeconds: SESSION_TOKEN_SECONDS,
    payload: {
      voiceit_id: profile.voiceitId,
      mode: profile.voiceitId ? "verify" : "enroll",
    },
  });
  api.redirect.sendUserTo(settings.checkUrl, { query: { session_token: sessionToken } });
};

exports.onContinuePostLogin = async (event, api) => {
  const settings = readSettings(event.secrets);
  if (!settings) {
    api.access.deny(DENY_MESSAGES.misconfigured);
    return;
  }

  // validateToken checks the signature, expiry and that the token's state is this /continue's
  // state; the error it throws may quote the token, so it is not passed on.
  let result;
  try {
    result = await api.redirect.validateToken({
      secret: settings.secret,
      tokenParameterName: "session_token",
    });
  } catch {
    api.access.deny(DENY_MESSAGES.unchecked);
    return;
  }

  if (!isResultForThisLogin(result, event.user, settings)) {
    api.access.deny(DENY_MESSAGES.unchecked);
    return;
  }

  // Each result works once: the worker remembers its jti until it expires. If the worker
  // cannot say, the login does not pass.
  if (!(await redeem(settings, continueToken(event.request)))) {
    api.access.deny(DENY_MESSAGES.unchecked);
    return;
  }

  const profile = readProfile(event.user);
  if (!profile) {
    api.access.deny(DENY_MESSAGES.profileUnreadable);
    return;
  }

  const decision = decideOutcome(result, profile);
  if (decision.deny) {
    api.access.deny(decision.deny);
    return;
  }

  if (decision.enrolledId) {
    api.user.setAppMetadata("voiceit_id", decision.enrolledId);
  }
  api.authentication.recordMethod(settings.checkUrl);
  setNameClaims(event.user, api, settings);
};

/** The result token as it arrived at /continue (validateToken has already checked it). */
function continueToken(request) {
  const body = (request && request.body) || {};
  const query = (request && request.query) || {};
  return typeof body.session_token === "string" ? body.session_token : query.session_token;
}

/** Spends the result token at the worker; true only for its first use. */
async function redeem(settings, token) {
  if (typeof token !== "string" || token === "") return false;
  try {
    const response = await fetch(settings.redeemUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token }),
      signal: AbortSignal.timeout(REDEEM_TIMEOUT_MS),
    });
    if (response.status !== 200) return false;
    const answer = await response.json();
    return answer && answer.redeemed === true;
  } catch {
    return false;
  }
}

/** The Action's settings from its secrets, or null when they cannot be used safely. */
function readSettings(secrets) {
  const values = secrets || {};

  const secret = values.REDIRECT_SECRET;
  if (typeof secret !== "string" || secret.length < MIN_SECRET_LENGTH) return null;

  const worker = parseWorkerUrl(values.WORKER_URL);
  if (!worker) return null;

  const rememberSeconds = parseRememberSeconds(values.REMEMBER_SECONDS);
  if (rememberSeconds === null) return null;

  const claimNamespace = values.CLAIM_NAMESPACE || DEFAULT_CLAIM_NAMESPACE;

  return {
    secret,
    checkUrl: `${worker.base}/2fa`,
    redeemUrl: `${worker.base}/2fa/redeem`,
    workerOrigin: worker.origin,
    rememberSeconds,
    claimNamespace,
  };
}

/** The worker's origin and base URL (without a trailing slash), or null if unusable. */
function parseWorkerUrl(raw) {
  if (typeof raw !== "string" || raw.trim() === "") return null;

  let url;
  try {
    url = new URL(raw.trim());
  } catch {
    return null;
  }

  // Plain http would expose the session token on the wire; it is allowed only for a worker
  // running on this machine during development.
  const secure = url.protocol === "https:" || (url.protocol === "http:" && isLoopback(url));
  if (!secure || url.username || url.password || url.search || url.hash) return null;

  return { origin: url.origin, base: url.origin + url.pathname.replace(/\/+$/, "") };
}

function isLoopback(url) {
  return ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
}

function parseRememberSeconds(raw) {
  if (raw === undefined || raw === null || String(raw).trim() === "") {
    return DEFAULT_REMEMBER_SECONDS;
  }
  const text = String(raw).trim();
  return /^\d+$/.test(text) ? Number(text) : null;
}

/** True when this session already passed the check within the remembered window. */
function hasRememberedCheck(authentication, settings) {
  if (settings.rememberSeconds === 0) return false;

  const methods = authentication && Array.isArray(authentication.methods)
    ? authentication.methods
    : [];
  const now = Date.now();

  return methods.some(
    (method) =>
      method &&
      method.name === settings.checkUrl &&
      isWithinWindow(method.timestamp, now, settings.rememberSeconds),
  );
}

function isWithinWindow(timestamp, now, seconds) {
  const at = Date.parse(timestamp);
  if (Number.isNaN(at)) return false;

  const age = now - at;
  return age >= -CLOCK_SKEW_SECONDS * 1000 && age <= seconds * 1000;
}

function canRedirect(transaction) {
  const protocol = transaction && transaction.protocol;
  const prompt = transaction && Array.isArray(transaction.prompt) ? transaction.prompt : [];
  return !NON_INTERACTIVE_PROTOCOLS.has(protocol) && !prompt.includes("none");
}

/**
 * The user's VoiceIt id from app_metadata: `{voiceitId: string | null}`, or null when the
 * field holds something that is not an id (refusing is safer than treating it as un-enrolled,
 * which would let the next login enroll new biometrics over it).
 */
function readProfile(user) {
  const stored = user && user.app_metadata ? user.app_metadata.voiceit_id : undefined;
  if (stored === undefined || stored === null) return { voiceitId: null };
  return isVoiceitId(stored) ? { voiceitId: stored } : null;
}

function isVoiceitId(value) {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_VOICEIT_ID_LENGTH;
}

/** Checks the claims validateToken leaves to the Action: who issued it, for whom, and when. */
function isResultForThisLogin(result, user, settings) {
  if (!result || typeof result !== "object") return false;

  // Another secret holder's tokens, or the session token echoed back, are not results.
  if (result.iss !== settings.workerOrigin) return false;
  if (result.token_use !== RESULT_TOKEN_USE) return false;

  // A result earned by one account must not sign in another.
  if (typeof result.sub !== "string" || result.sub !== user.user_id) return false;

  if (typeof result.jti !== "string" || result.jti === "") return false;

  return hasShortLifetime(result);
}

// A long-lived result could be replayed long after the check; the worker issues minutes.
function hasShortLifetime(result) {
  const { iat, exp } = result;
  if (!Number.isFinite(iat) || !Number.isFinite(exp)) return false;

  const now = Math.floor(Date.now() / 1000);
  return exp > iat && exp - iat <= MAX_RESULT_TOKEN_SECONDS && iat <= now + CLOCK_SKEW_SECONDS;
}

/** What the worker's outcome means for this account: `{deny}` or `{enrolledId?}`. */
function decideOutcome(result, profile) {
  switch (result.outcome) {
    case "verified":
      if (!profile.voiceitId || result.voiceit_id !== profile.voiceitId) {
        return { deny: DENY_MESSAGES.profileMismatch };
      }
      return {};

    case "enrolled":
      // Enrollment only ever creates a profile; replacing one needs an administrator, or a
      // password alone would be enough to swap in someone else's face and voice.
      if (profile.voiceitId) return { deny: DENY_MESSAGES.alreadyEnrolled };
      if (!isVoiceitId(result.voiceit_id)) return { deny: DENY_MESSAGES.unchecked };
      return { enrolledId: result.voiceit_id };

    default:
      // The worker says why when the attempt cap is reached, so the user learns that retrying
      // will not help.
      if (result.outcome === "failed" && result.reason === "locked") {
        return { deny: DENY_MESSAGES.locked };
      }
      return { deny: DENY_MESSAGES.failed };
  }
}

function setNameClaims(user, api, settings) {
  const name = user && (user.name || user.nickname || user.email);
  if (!name) return;

  api.accessToken.setCustomClaim(`${settings.claimNamespace}name`, name);
  api.idToken.setCustomClaim(`${settings.claimNamespace}name`, name);
}
