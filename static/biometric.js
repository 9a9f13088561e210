// The biometric step of sign-in: records face, voice or video clips and sends them to the
// worker's VoiceIt endpoint, then hands over to `/2fa/complete`.
//
// The browser only relays recordings. Whether the check passed is decided by the worker from
// VoiceIt's own answers, so nothing this page concludes can change the outcome.

import { adviceFor, judgeAnswer } from "/voiceit-messages.js";
import { loadConfig, readJson, showEnvironmentBanner } from "/environment.js";

const MAX_FAILED_VERIFICATIONS = 3;
const RECORD_SECONDS = { face: 3, voice: 5, video: 5 };
const LIVENESS_EXTRA_SECONDS = 1;
const UPLOAD_TIMEOUT_MS = 90_000;
// Long enough to read why the check ended before the page moves on to sign-in.
const FAILURE_PAUSE_MS = 2500;

const READY_MESSAGE = "Ready. Press Start recording when you are in position.";
const NOT_ENROLLED_CODE = { face: "NFEF", voice: "PNTE", video: "TVER" };
const DEVICE_WORDS = { face: "camera", voice: "microphone", video: "camera and microphone" };
const MIME_CANDIDATES = {
  face: ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm", "video/mp4"],
  video: ["video/webm;codecs=vp8,opus", "video/webm;codecs=vp9,opus", "video/webm", "video/mp4"],
  voice: ["audio/webm;codecs=opus", "audio/webm", "audio/mp4", "audio/ogg;codecs=opus"],
};

const ui = {
  title: document.getElementById("title"),
  intro: document.getElementById("intro"),
  stepLine: document.getElementById("step-line"),
  stepLabel: document.getElementById("step-label"),
  stepProgress: document.getElementById("step-progress"),
  phrase: document.getElementById("phrase"),
  phraseText: document.getElementById("phrase-text"),
  stage: document.getElementById("stage"),
  preview: document.getElementById("preview"),
  microphoneNote: document.getElementById("microphone-note"),
  instruction: document.getElementById("instruction"),
  challenge: document.getElementById("challenge"),
  countdownLine: document.getElementById("countdown-line"),
  countdown: document.getElementById("countdown"),
  status: document.getElementById("status"),
  statusText: document.getElementById("status-text"),
  statusCode: document.getElementById("status-code"),
  uploadLine: document.getElementById("upload-line"),
  uploadProgress: document.getElementById("upload-progress"),
  start: document.getElementById("start-recording"),
  retry: document.getElementById("retry"),
  completeForm: document.getElementById("complete-form"),
  finish: document.getElementById("finish"),
  backLink: document.getElementById("back-link"),
};

/** The session is gone (`no_session`, `INVT`): nothing can be completed any more. */
class SessionEnded extends Error {}

let stream = null;
let completing = false;
let userHasActed = false;

start();

async function start() {
  ui.completeForm.addEventListener("submit", onCompleteSubmit);
  window.addEventListener("pagehide", stopMedia);
  loadConfig().then(showEnvironmentBanner, () => {});

  try {
    const session = await getSession();
    describeSession(session);
    const passed = session.mode === "enroll" ? await enroll(session) : await verify(session);
    complete(passed);
  } catch (err) {
    if (err instanceof SessionEnded) {
      endWithoutSession(err.message);
    } else {
      showProblem(`Something went wrong on this page: ${err.message}`, "page_error");
    }
  }
}

// ---- Session -------------------------------------------------------------------------------

/** `POST /voiceit_token`, offering a retry until it answers a token or the session is gone. */
async function getSession() {
  for (;;) {
    setStatus("Preparing the biometric check…");
    const { status, body } = await postToWorker("/voiceit_token");
    if (status === 200 && typeof body?.token === "string") return body;
    if (status === 401 || body?.error === "no_session") {
      throw new SessionEnded(body?.message || "There is no biometric check in progress.");
    }
    const reason = body?.message || describeStatus(status);
    showProblem(`The biometric check could not start. ${reason}`, body?.error || `HTTP ${status}`);
    await waitForRetry();
  }
}

function describeSession(session) {
  const enrolling = session.mode === "enroll";
  const needed = session.enrollmentsNeeded || 1;
  const what = { face: "your face", voice: "your voice", video: "your face and voice" }[
    session.modality
  ];

  ui.title.textContent = enrolling ? "Set up your biometric check" : "Confirm it's you";
  ui.intro.textContent = enrolling
    ? `Record ${what} ${needed === 1 ? "once" : `${needed} times`} so you can be recognised next time.`
    : `Record ${what} to finish signing in.`;

  ui.stage.hidden = false;
  ui.completeForm.hidden = false;
  const speaks = session.modality !== "face";
  ui.phrase.hidden = !speaks;
  ui.phraseText.textContent = session.phrase || "";
  ui.preview.hidden = session.modality === "voice";
  ui.microphoneNote.hidden = session.modality !== "voice";
}

// ---- Flows ---------------------------------------------------------------------------------

async function enroll(session) {
  const needed = session.enrollmentsNeeded || 1;
  return runRecordings(session, {
    requestType: `create${capitalised(session.modality)}Enrollment`,
    seconds: RECORD_SECONDS[session.modality],
    needed,
    maxFailures: Infinity,
    step: (successes) => ["Recording", successes + 1, needed],
    startLabel: (successes) =>
      needed > 1 ? `Start recording ${successes + 1} of ${needed}` : "Start recording",
  });
}

async function verify(session) {
  if (!(await hasEnoughEnrollments(session))) {
    const code = NOT_ENROLLED_CODE[session.modality];
    showProblem(adviceFor(code), code);
    return false;
  }
  const liveness = session.liveness && session.modality !== "voice";
  return liveness ? verifyWithLiveness(session) : verifyOnce(session);
}

function verifyOnce(session) {
  return runRecordings(session, {
    requestType: `${session.modality}Verification`,
    seconds: RECORD_SECONDS[session.modality],
    ...verificationSteps(),
  });
}

async function verifyWithLiveness(session) {
  const challenge = await getLivenessChallenge(session);
  if (!challenge) return false;

  ui.instruction.textContent = challenge.uiLivenessInstruction || "";
  ui.instruction.hidden = !challenge.uiLivenessInstruction;
  const challengeSeconds = Number(challenge.livenessChallengeTime) || RECORD_SECONDS.face;
  return runRecordings(session, {
    requestType: `${session.modality}VerificationWithLiveness`,
    fields: { viLCOId: challenge.lcoId },
    seconds: challengeSeconds + LIVENESS_EXTRA_SECONDS,
    cues: { texts: challenge.lcoStrings || [], seconds: challengeSeconds },
    readyMessage: "Ready. While recording, follow each prompt shown under the preview.",
    ...verificationSteps(),
  });
}

function verificationSteps() {
  return {
    needed: 1,
    maxFailures: MAX_FAILED_VERIFICATIONS,
    step: (_successes, failures) => ["Attempt", failures + 1, MAX_FAILED_VERIFICATIONS],
    startLabel: () => "Start recording",
  };
}

/**
 * Records and sends until `plan.needed` recordings succeed. Returns false when a failure
 * cannot be retried or `plan.maxFailures` recordings have failed.
 */
async function runRecordings(session, plan) {
  let successes = 0;
  let failures = 0;
  let retrying = false;
  await openMediaForPreview(session.modality, plan.readyMessage);

  while (successes < plan.needed) {
    showStep(...plan.step(successes, failures));
    await (retrying ? waitForRetry() : waitForStart(plan.startLabel(successes)));

    const verdict = await recordAndSend(session, plan);
    if (verdict.result === "invalid") throw new SessionEnded(verdict.message);
    if (verdict.result === "success") {
      successes += 1;
      retrying = false;
      announceSuccess(successes, plan.needed);
      continue;
    }

    if (verdict.counts) failures += 1;
    const outOfTries = failures >= plan.maxFailures;
    if (verdict.result === "final" || outOfTries) {
      const suffix = outOfTries && verdict.result !== "final" ? " No attempts are left." : "";
      showProblem(`${verdict.message}${suffix}`, verdict.code);
      return false;
    }
    showProblem(verdict.message, verdict.code);
    retrying = true;
  }
  return true;
}

function announceSuccess(successes, needed) {
  if (successes < needed) {
    setStatus(`Recording ${successes} of ${needed} accepted. Record the next one when ready.`, {
      tone: "success",
    });
  } else {
    setStatus("Accepted.", { tone: "success" });
  }
}

/** A verdict for one recording: what `judgeAnswer` says, and whether it uses up an attempt. */
async function recordAndSend(session, plan) {
  let media;
  try {
    media = await liveStream(session.modality);
  } catch (err) {
    return { result: "retry", counts: false, code: err.name || "media", message: mediaAdvice(err, session.modality) };
  }

  let recording;
  try {
    setStatus("Recording…");
    ui.uploadLine.hidden = true;
    recording = await recordClip(media, session.modality, plan.seconds, plan.cues);
  } catch (err) {
    const message = `The recording failed (${err.message}). Try again, or use another browser.`;
    return { result: "retry", counts: false, code: "recording_failed", message };
  }

  setStatus("Sending the recording…");
  const form = endpointForm(session, plan.requestType, plan.fields, recording);
  const { status, body } = await uploadWithProgress(form);
  // The worker's own refusals (an outage, a limit, a malformed upload) never reached VoiceIt,
  // so they do not use up one of the user's attempts; the worker's ledger does not count them
  // either.
  const code = body && typeof body === "object" ? body.responseCode : undefined;
  const counts = !["BERR", "MISP", "WAIT", "ACLR"].includes(code);
  return { ...judgeAnswer(body), counts, status };
}

async function hasEnoughEnrollments(session) {
  const form = endpointForm(session, `enough${capitalised(session.modality)}Enrollments`);
  const { body } = await postToWorker("/voiceit_endpoint", form);
  if (judgeAnswer(body).result === "invalid") throw new SessionEnded(adviceFor("INVT", body.message));
  // Any other failure is left to the verification itself to report.
  return body?.enoughEnrollments !== false;
}

/** `initialLiveness`, with up to the same number of tries as a verification. */
async function getLivenessChallenge(session) {
  for (let tries = 1; ; tries += 1) {
    setStatus("Preparing the liveness check…");
    const form = endpointForm(session, "initialLiveness");
    const { body } = await postToWorker("/voiceit_endpoint", form);
    const verdict = judgeAnswer(body);
    if (verdict.result === "invalid") throw new SessionEnded(verdict.message);
    if (verdict.result === "success" && body.lcoId) return body;

    const message = body?.message || verdict.message || "The liveness check could not start.";
    showProblem(message, verdict.code === "liveness" ? "" : verdict.code);
    if (tries >= MAX_FAILED_VERIFICATIONS) return null;
    await waitForRetry();
  }
}

// ---- Talking to the worker -----------------------------------------------------------------

/** The Web SDK's form: request type, secure token, the configured language and phrase. */
function endpointForm(session, requestType, fields = {}, recording = null) {
  const form = new FormData();
  form.append("viRequestType", requestType);
  form.append("viSecureToken", session.token);
  form.append("viContentLanguage", session.contentLanguage || "");
  form.append("viPhrase", session.phrase || "");
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  if (recording) {
    const field = session.modality === "voice" ? "viVoiceData" : "viVideoData";
    form.append(field, recording, recordingFilename(session.modality, recording.type));
  }
  return form;
}

function recordingFilename(modality, type) {
  const extension = type.includes("mp4") ? "mp4" : type.includes("ogg") ? "ogg" : "webm";
  return modality === "voice" ? `recording.${extension}` : `video.${extension}`;
}

/** A same-origin POST; always resolves, with status 0 when nothing answered. */
async function postToWorker(path, body) {
  try {
    const response = await fetch(path, { method: "POST", body, credentials: "same-origin" });
    return { status: response.status, body: (await readJson(response)) ?? unreadable(response.status) };
  } catch {
    return { status: 0, body: unreachable() };
  }
}

/** POSTs a recording with XMLHttpRequest, which (unlike fetch) reports upload progress. */
function uploadWithProgress(form) {
  showUploadProgress(0);
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/voiceit_endpoint");
    xhr.timeout = UPLOAD_TIMEOUT_MS;
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) showUploadProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      showUploadProgress(1);
      resolve({ status: xhr.status, body: parseJson(xhr.responseText) ?? unreadable(xhr.status) });
    });
    xhr.addEventListener("error", () => resolve({ status: 0, body: unreachable() }));
    xhr.addEventListener("timeout", () => resolve({ status: 0, body: unreachable() }));
    xhr.send(form);
  });
}

function parseJson(text) {
  try {
    return JSON.parse(text.trim());
  } catch {
    return null;
  }
}

function unreadable(status) {
  return { responseCode: "BERR", message: `The server answered ${describeStatus(status)} without a readable result.` };
}

function unreachable() {
  return { responseCode: "BERR", message: "The server could not be reached. Check your connection." };
}

function describeStatus(status) {
  return status ? `HTTP ${status}` : "nothing";
}

// ---- Camera and microphone ------------------------------------------------------------------

function mediaConstraints(modality) {
  const video = { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" };
  if (modality === "face") return { video, audio: false };
  if (modality === "voice") return { video: false, audio: true };
  return { video, audio: true };
}

/** Opens the devices at once so the person can see the preview; failures wait for the button. */
async function openMediaForPreview(modality, readyMessage = READY_MESSAGE) {
  try {
    await liveStream(modality);
    setStatus(readyMessage);
  } catch (err) {
    showProblem(mediaAdvice(err, modality), err.name || "media");
  }
}

async function liveStream(modality) {
  const live = stream?.getTracks().every((track) => track.readyState === "live");
  if (live) return stream;
  if (!navigator.mediaDevices?.getUserMedia) {
    const err = new Error("no media devices");
    err.name = "NotSupportedError";
    throw err;
  }
  stream = await navigator.mediaDevices.getUserMedia(mediaConstraints(modality));
  if (modality !== "voice") {
    ui.preview.srcObject = stream;
    ui.preview.play().catch(() => {});
  }
  return stream;
}

function stopMedia() {
  stream?.getTracks().forEach((track) => track.stop());
  stream = null;
  ui.preview.srcObject = null;
}

function mediaAdvice(err, modality) {
  const device = DEVICE_WORDS[modality];
  switch (err.name) {
    case "NotAllowedError":
    case "SecurityError":
      return `Access to the ${device} is blocked. Allow it for this site (usually from the camera or lock icon in the address bar, or in the browser's site settings), then press Start recording.`;
    case "NotFoundError":
    case "OverconstrainedError":
      return `No ${device} was found. Connect one, then press Start recording.`;
    case "NotReadableError":
    case "AbortError":
      return `The ${device} could not be started; another app may be using it. Close that app, then press Start recording.`;
    case "NotSupportedError":
      return "This browser cannot record here. Use a current browser, on a page served over HTTPS.";
    default:
      return `The ${device} could not be opened (${err.message || err.name}). Press Start recording to try again.`;
  }
}

// ---- Recording -----------------------------------------------------------------------------

function pickMimeType(modality) {
  if (typeof MediaRecorder.isTypeSupported !== "function") return "";
  return MIME_CANDIDATES[modality].find((type) => MediaRecorder.isTypeSupported(type)) || "";
}

/** Records `seconds` of `media` as one Blob, showing the countdown and any liveness cues. */
async function recordClip(media, modality, seconds, cues) {
  if (typeof MediaRecorder === "undefined") throw new Error("this browser has no MediaRecorder");
  const mimeType = pickMimeType(modality);
  const recorder = new MediaRecorder(media, mimeType ? { mimeType } : {});
  const chunks = [];
  recorder.addEventListener("dataavailable", (event) => {
    if (event.data.size > 0) chunks.push(event.data);
  });
  const stopped = new Promise((resolve, reject) => {
    recorder.addEventListener("stop", resolve, { once: true });
    recorder.addEventListener("error", (event) => reject(event.error || new Error("the recorder failed")), {
      once: true,
    });
  });

  recorder.start();
  ui.stage.classList.add("is-recording");
  try {
    await runCountdown(seconds, cues);
  } finally {
    if (recorder.state !== "inactive") recorder.stop();
    ui.stage.classList.remove("is-recording");
    hideCountdown();
  }
  await stopped;

  if (chunks.length === 0) throw new Error("nothing was recorded");
  const fallback = modality === "voice" ? "audio/webm" : "video/webm";
  return new Blob(chunks, { type: chunks[0].type || recorder.mimeType || mimeType || fallback });
}

/** Counts down `seconds`; liveness cues take turns over the first `cues.seconds`. */
function runCountdown(seconds, cues) {
  const texts = cues?.texts ?? [];
  const perCue = texts.length ? cues.seconds / texts.length : 0;
  ui.countdownLine.hidden = false;
  ui.challenge.hidden = texts.length === 0;

  return new Promise((resolve) => {
    const started = performance.now();
    const tick = () => {
      const elapsed = (performance.now() - started) / 1000;
      setText(ui.countdown, String(Math.max(0, Math.ceil(seconds - elapsed))));
      if (texts.length) setText(ui.challenge, texts[Math.min(texts.length - 1, Math.floor(elapsed / perCue))]);
      if (elapsed >= seconds) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(tick, 100);
    tick();
  });
}

function hideCountdown() {
  ui.countdownLine.hidden = true;
  ui.challenge.hidden = true;
  ui.challenge.textContent = "";
}

// ---- Completion ----------------------------------------------------------------------------

/** Hands over to `/2fa/complete`; the worker decides what the result was. */
function complete(passed) {
  ui.start.hidden = true;
  ui.retry.hidden = true;
  if (passed) {
    setStatus("Done. Returning you to sign-in…", { tone: "success" });
    submitCompleteForm();
  } else {
    // The message may come from VoiceIt without a full stop; end its sentence first.
    const text = ui.statusText.textContent.trim();
    ui.statusText.append(/[.!?]$/.test(text) ? " Returning you to sign-in…" : ". Returning you to sign-in…");
    setTimeout(submitCompleteForm, FAILURE_PAUSE_MS);
  }
}

function submitCompleteForm() {
  if (completing) return;
  if (typeof ui.completeForm.requestSubmit === "function") {
    ui.completeForm.requestSubmit();
  } else {
    markCompleting();
    ui.completeForm.submit();
  }
}

function onCompleteSubmit(event) {
  if (completing) {
    event.preventDefault();
    return;
  }
  markCompleting();
}

function markCompleting() {
  completing = true;
  stopMedia();
  ui.start.disabled = true;
  ui.retry.disabled = true;
  ui.finish.disabled = true;
  ui.finish.textContent = "Finishing…";
}

function endWithoutSession(message) {
  stopMedia();
  setStatus(message, { tone: "error" });
  ui.intro.hidden = true;
  ui.stage.hidden = true;
  ui.uploadLine.hidden = true;
  ui.start.hidden = true;
  ui.retry.hidden = true;
  ui.completeForm.hidden = true;
  ui.backLink.hidden = false;
}

// ---- Small UI helpers ----------------------------------------------------------------------

function setStatus(message, { tone = "info", code = "" } = {}) {
  ui.status.dataset.tone = tone;
  ui.statusText.textContent = message;
  ui.statusCode.textContent = code ? `Code: ${code}` : "";
}

function showProblem(message, code = "") {
  setStatus(message, { tone: "error", code });
}

function showStep(label, current, total) {
  ui.stepLine.hidden = false;
  ui.stepLabel.textContent = label;
  ui.stepProgress.textContent = `${current} of ${total}`;
}

function showUploadProgress(fraction) {
  // The bar shows while bytes are on their way, and goes once they have all arrived.
  ui.uploadLine.hidden = fraction >= 1;
  ui.uploadProgress.value = Math.round(fraction * 100);
  ui.uploadProgress.textContent = `${Math.round(fraction * 100)}%`;
}

function setText(element, text) {
  // Unchanged text is left alone so live regions do not repeat it.
  if (element.textContent !== text) element.textContent = text;
}

function waitForStart(label) {
  ui.retry.hidden = true;
  return waitForClick(ui.start, label);
}

function waitForRetry() {
  ui.start.hidden = true;
  return waitForClick(ui.retry);
}

/** Shows and enables `button` and resolves on its next click, leaving it disabled. */
function waitForClick(button, label) {
  if (label) button.textContent = label;
  button.hidden = false;
  button.disabled = false;
  // Keyboard users keep their place: focus follows only if it was on a control that went away.
  const focusWasOnControls = [document.body, ui.start, ui.retry].includes(document.activeElement);
  if (userHasActed && focusWasOnControls) button.focus();
  return new Promise((resolve) => {
    button.addEventListener(
      "click",
      () => {
        userHasActed = true;
        button.disabled = true;
        resolve();
      },
      { once: true },
    );
  });
}

function capitalised(word) {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
