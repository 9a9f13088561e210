// The Headlines demo app: Auth0 sign-in (authorization code + PKCE through auth0-spa-js), a
// public headline for anyone and a private one that needs the access token.

import { createAuth0Client } from "/vendor/auth0-spa-js.production.esm.js";
import { loadConfig, readJson, showEnvironmentBanner } from "/environment.js";

const ui = {
  alert: document.getElementById("alert"),
  signIn: document.getElementById("sign-in"),
  signOut: document.getElementById("sign-out"),
  userName: document.getElementById("user-name"),
  getPublic: document.getElementById("get-public"),
  getPrivate: document.getElementById("get-private"),
  privateHint: document.getElementById("private-hint"),
  result: document.getElementById("result"),
  resultText: document.getElementById("result-text"),
  resultMeta: document.getElementById("result-meta"),
};

const SIGNED_OUT_HINT = "Sign in to get a headline written about you.";
const SIGNED_IN_HINT = "Your headline uses the name from your Auth0 profile.";

let auth0 = null;
let claimNamespace = "";

start();

async function start() {
  bindButtons();
  const redirect = readRedirectParams();
  if (redirect.kind === "error") showSignInError(redirect.error, redirect.description);

  let config;
  try {
    config = await loadConfig();
  } catch (err) {
    cleanUrl(redirect);
    showAlert(err.message);
    return;
  }
  showEnvironmentBanner(config);
  claimNamespace = config.AUTH0_CLAIM_NAMESPACE || "";

  try {
    auth0 = await createClient(config);
  } catch (err) {
    cleanUrl(redirect);
    showAlert(`Sign-in is not available: ${describeAuthError(err)}`);
    return;
  }
  await finishRedirect(redirect);
  await renderAccount();
}

function bindButtons() {
  ui.getPublic.addEventListener("click", getPublicHeadline);
  ui.getPrivate.addEventListener("click", getPrivateHeadline);
  ui.signIn.addEventListener("click", signIn);
  ui.signOut.addEventListener("click", signOut);
}

/**
 * The `domain` auth0-spa-js builds every URL from. It prefixes `https://` to a bare host but
 * keeps an explicit `http://` or `https://` URL, and then expects the tokens' issuer to be
 * that URL plus `/` — which is what a local sandbox tenant on `http://127.0.0.1:PORT` issues.
 */
function auth0Domain(config) {
  if (!config.AUTH0_BASE_URL) return config.AUTH0_DOMAIN;
  const base = new URL(config.AUTH0_BASE_URL);
  return base.protocol === "http:" ? base.origin : base.host;
}

function createClient(config) {
  return createAuth0Client({
    domain: auth0Domain(config),
    clientId: config.AUTH0_CLIENT_ID,
    cacheLocation: "memory",
    authorizationParams: {
      redirect_uri: `${location.origin}/`,
      audience: config.AUTH0_AUDIENCE,
      scope: "openid profile email",
    },
  });
}

/** What Auth0 put in the address bar when it sent the browser back, if anything. */
function readRedirectParams() {
  const params = new URLSearchParams(location.search);
  if (params.has("error")) {
    return {
      kind: "error",
      error: params.get("error"),
      description: params.get("error_description") || "",
      hasState: params.has("state"),
    };
  }
  if (params.has("code") && params.has("state")) return { kind: "code" };
  return { kind: "none" };
}

async function finishRedirect(redirect) {
  if (redirect.kind === "none") return;
  try {
    // For an error this only clears the stored transaction; the message is already shown.
    if (redirect.kind === "code" || redirect.hasState) await auth0.handleRedirectCallback();
  } catch (err) {
    if (redirect.kind === "code") showCallbackError(err);
  } finally {
    cleanUrl(redirect);
  }
}

/** Takes the code, state or error out of the address bar and the history. */
function cleanUrl(redirect) {
  if (redirect.kind !== "none") history.replaceState(null, "", "/");
}

function showCallbackError(err) {
  if (err?.error) {
    showSignInError(err.error, err.error_description);
  } else {
    showAlert(`Sign-in could not be completed: ${describeAuthError(err)}`);
  }
}

function showSignInError(error, description) {
  const text = description || error;
  if (error === "access_denied") {
    showAlert(`Sign-in was denied: ${text}`);
  } else {
    showAlert(`Sign-in failed: ${text} (${error})`);
  }
}

function showAlert(text) {
  ui.alert.textContent = text;
  ui.alert.hidden = false;
}

function describeAuthError(err) {
  return err?.error_description || err?.message || String(err);
}

async function renderAccount() {
  const signedIn = await auth0.isAuthenticated();
  const user = signedIn ? await auth0.getUser() : null;

  ui.signIn.hidden = signedIn;
  ui.signIn.disabled = false;
  ui.signOut.hidden = !signedIn;
  ui.userName.hidden = !signedIn;
  ui.userName.textContent = signedIn ? `Signed in as ${displayName(user)}` : "";
  ui.getPrivate.disabled = !signedIn;
  ui.privateHint.textContent = signedIn ? SIGNED_IN_HINT : SIGNED_OUT_HINT;
}

function displayName(user) {
  return user?.[`${claimNamespace}name`] || user?.name || user?.email || "you";
}

async function signIn() {
  ui.signIn.disabled = true;
  try {
    await auth0.loginWithRedirect();
  } catch (err) {
    ui.signIn.disabled = false;
    showAlert(`Sign-in could not start: ${describeAuthError(err)}`);
  }
}

function signOut() {
  ui.signOut.disabled = true;
  auth0.logout({ logoutParams: { returnTo: `${location.origin}/` } });
}

async function getPublicHeadline() {
  await withBusyButton(ui.getPublic, async () => {
    showResult(await getJson("/api/public"));
  });
}

async function getPrivateHeadline() {
  await withBusyButton(ui.getPrivate, async () => {
    let token;
    try {
      token = await auth0.getTokenSilently();
    } catch (err) {
      showFailure(`Your sign-in could not be renewed: ${describeAuthError(err)}. Sign in again.`);
      return;
    }
    showResult(await getJson("/api/private", { Authorization: `Bearer ${token}` }));
  });
}

/** Runs `work` once at a time per button. `aria-disabled` (not `disabled`) keeps the focus. */
async function withBusyButton(button, work) {
  if (button.getAttribute("aria-disabled") === "true") return;
  button.setAttribute("aria-disabled", "true");
  ui.result.setAttribute("aria-busy", "true");
  try {
    await work();
  } finally {
    button.removeAttribute("aria-disabled");
    ui.result.removeAttribute("aria-busy");
  }
}

/** GET `path`; always resolves, with the HTTP status (0 when nothing answered) and the body. */
async function getJson(path, headers = {}) {
  try {
    const response = await fetch(path, { headers, credentials: "same-origin" });
    return { status: response.status, ok: response.ok, body: await readJson(response) };
  } catch {
    return { status: 0, ok: false, body: null };
  }
}

function showResult({ status, ok, body }) {
  if (ok && typeof body?.headline === "string") {
    ui.result.classList.remove("is-error");
    ui.resultText.textContent = body.headline;
    ui.resultMeta.textContent = body.name ? `HTTP ${status} · for ${body.name}` : `HTTP ${status}`;
    return;
  }
  if (status === 0) {
    showFailure("The server could not be reached. Check your connection and try again.");
    return;
  }
  const message = body?.message || "The server answered without a headline.";
  const code = body?.error ? ` · error code: ${body.error}` : "";
  showFailure(message, `HTTP ${status}${code}`);
}

function showFailure(message, meta = "") {
  ui.result.classList.add("is-error");
  ui.resultText.textContent = message;
  ui.resultMeta.textContent = meta;
}
