// What each VoiceIt (and worker) response code means for the person recording, and how the
// biometric page reacts to an answer. Pure data and functions: no DOM, so tests can import it.

/**
 * One entry per code: `message` tells the person what to do next; `recoverable` means another
 * recording may succeed, so the page offers to try again. For the codes the worker itself
 * produces (INVT, IRT, MISP, BERR) the worker's own sentence is shown when it sends one.
 */
export const VOICEIT_MESSAGES = Object.freeze({
  SUCC: { recoverable: false, message: "Done: the recording was accepted." },
  FAIL: {
    recoverable: true,
    message:
      "That did not match your enrolled sample. Try again in the same light and position as when you enrolled.",
  },
  FNFD: {
    recoverable: true,
    message: "No face was found. Look straight at the camera and add more light in front of you.",
  },
  FTMF: {
    recoverable: true,
    message: "More than one face was in view. Make sure only your face is in the picture.",
  },
  SSTQ: {
    recoverable: true,
    message: "You were too quiet. Speak louder, or move closer to the microphone.",
  },
  SSTL: {
    recoverable: true,
    message: "You were too loud. Speak more softly, or move back from the microphone.",
  },
  NEHSD: {
    recoverable: true,
    message: "Not enough speech was heard. Say the whole phrase, clearly, while recording.",
  },
  STTF: {
    recoverable: true,
    message: "Your words could not be made out. Say exactly the phrase shown, at an even pace.",
  },
  PDNM: {
    recoverable: true,
    message: "What you said did not match the phrase. Say exactly the phrase shown.",
  },
  IFVD: {
    recoverable: true,
    message:
      "The video could not be read. Try again; if it keeps happening, use another browser.",
  },
  IFAD: {
    recoverable: true,
    message:
      "The audio could not be read. Try again; if it keeps happening, use another browser.",
  },
  SRNR: {
    recoverable: true,
    message: "The sound was not clear enough. Record again somewhere quieter.",
  },
  RWPU: {
    recoverable: true,
    message: "That recording was already used once. Record a new one.",
  },
  PNTE: {
    recoverable: false,
    message:
      "There are not enough voice enrollments for this phrase. Contact the site to enroll again.",
  },
  TVER: {
    recoverable: false,
    message: "Three video enrollments are needed first. Contact the site to enroll again.",
  },
  NFEF: {
    recoverable: false,
    message: "No face enrollment was found for you. Contact the site to enroll again.",
  },
  UNFD: {
    recoverable: false,
    message: "Your biometric profile was not found. Contact the site.",
  },
  GERR: {
    recoverable: false,
    message: "The biometric service had a problem. Try again later, or contact the site.",
  },
  DAID: {
    recoverable: false,
    message: "The site's biometric service account is disabled. Contact the site.",
  },
  UNAC: {
    recoverable: false,
    message: "The site is not authorised to use the biometric service. Contact the site.",
  },
  ACLR: {
    recoverable: false,
    message: "The site has reached its biometric service limit. Try later, or contact the site.",
  },
  INVT: {
    recoverable: false,
    message: "This biometric session is no longer valid. Go back to the application and sign in again.",
  },
  IRT: {
    recoverable: false,
    message: "This step is not allowed in this session. Go back to the application and sign in again.",
  },
  MISP: {
    recoverable: true,
    message: "Part of the recording did not arrive. Record again.",
  },
  BERR: {
    recoverable: true,
    message: "The biometric service could not be reached. Try again.",
  },
  INCP: {
    recoverable: false,
    message: "The service is set to a language the biometric service does not accept. Tell the site's operator.",
  },
  DDNE: {
    recoverable: false,
    message: "The biometric service has no data for this check. Sign in again; if it keeps happening, tell the site's operator.",
  },
  // The worker's attempt limits.
  WAIT: {
    recoverable: true,
    message: "Too many failed attempts in a row. Wait half a minute, then try again.",
  },
  LOCK: {
    recoverable: false,
    message: "Biometric verification is locked after too many failed attempts. Ask the site's operator to reset it.",
  },
});

/** Codes the worker itself answers, with a sentence written for the person reading it. */
const WORKER_CODES = new Set(["INVT", "IRT", "MISP", "BERR", "WAIT", "LOCK", "ACLR"]);

const UNKNOWN_CODE_MESSAGE = "The biometric check could not be completed.";

/**
 * The sentence to show for `code`: the worker's own sentence for the codes it makes (it knows
 * what went wrong), the table's advice for VoiceIt's codes (VoiceIt's text is for developers),
 * and VoiceIt's text only for a code the table does not know.
 */
export function adviceFor(code, serverMessage) {
  const entry = VOICEIT_MESSAGES[code];
  if (!entry) return serverMessage || UNKNOWN_CODE_MESSAGE;
  if (WORKER_CODES.has(code) && serverMessage) return serverMessage;
  return entry.message;
}

export function isRecoverable(code) {
  return VOICEIT_MESSAGES[code]?.recoverable === true;
}

/**
 * What an answer from `/voiceit_endpoint` means for the flow:
 * - `success`: the step passed;
 * - `retry`: it failed, but another recording may pass;
 * - `final`: it failed and retrying cannot help, so the flow completes (the worker reports it);
 * - `invalid`: the session is gone, so there is nothing to complete.
 *
 * Liveness answers carry `success`/`retry`; every other answer carries `responseCode`.
 */
export function judgeAnswer(body) {
  const answer = body && typeof body === "object" ? body : {};
  const code = typeof answer.responseCode === "string" ? answer.responseCode : "";

  if (code === "INVT") {
    return { result: "invalid", code, message: adviceFor(code, answer.message) };
  }
  // A liveness answer decides by its own flags, unless the worker answered in its stead.
  if (typeof answer.success === "boolean" && !WORKER_CODES.has(code)) {
    return judgeLivenessAnswer(answer);
  }
  if (code === "SUCC") {
    return { result: "success", code, message: adviceFor(code) };
  }
  const result = isRecoverable(code) ? "retry" : "final";
  return { result, code: code || "unknown", message: adviceFor(code, answer.message) };
}

function judgeLivenessAnswer(answer) {
  const message = answer.uiMessage || answer.message || "";
  if (answer.success) {
    return { result: "success", code: "SUCC", message: message || adviceFor("SUCC") };
  }
  return {
    result: answer.retry === true ? "retry" : "final",
    code: "liveness",
    message: message || "The liveness check did not pass.",
  };
}
