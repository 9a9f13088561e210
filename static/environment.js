// The banner slot every page has: filled when the deployment sets APP_NOTICE (the local
// sandbox says there that no real accounts are used, and links to its control page).

export function showEnvironmentBanner(config) {
  const banner = document.getElementById("environment-banner");
  const text = typeof config?.APP_NOTICE === "string" ? config.APP_NOTICE.trim() : "";
  if (!banner || !text) return;
  banner.textContent = text;
  const url = typeof config.APP_NOTICE_URL === "string" ? config.APP_NOTICE_URL : "";
  if (/^https?:\/\//.test(url)) {
    const link = document.createElement("a");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = config.APP_NOTICE_LINK_TEXT || "Open the sandbox controls";
    banner.append(" ", link);
  }
  banner.hidden = false;
}

/** `/config.json`, or an Error whose message a person can read. */
export async function loadConfig() {
  let response;
  try {
    response = await fetch("/config.json", { credentials: "same-origin", cache: "no-store" });
  } catch {
    throw new Error("The app's configuration could not be loaded: the server did not answer.");
  }
  const body = await readJson(response);
  if (!response.ok) {
    const detail = body?.message || `HTTP ${response.status}`;
    throw new Error(`The app's configuration could not be loaded: ${detail}`);
  }
  if (!body || typeof body !== "object") {
    throw new Error("The app's configuration could not be loaded: the answer was not JSON.");
  }
  return body;
}

/** The JSON body of a response, or null when it has none. */
export async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}
