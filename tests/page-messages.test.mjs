// The recording page's advice: every VoiceIt and worker code has a sentence to act on, and
// the page retries exactly the recoverable ones.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VOICEIT_MESSAGES, judgeAnswer, isRecoverable } from "../static/voiceit-messages.js";

const VOICEIT_CODES = [
  "SUCC", "MISP", "INCP", "UNFD", "FNFD", "DDNE", "FAIL", "IFVD", "IFAD", "SRNR", "SSTQ", "SSTL",
  "NEHSD", "STTF", "RWPU", "FTMF", "PNTE", "TVER", "NFEF", "PDNM", "GERR", "DAID", "UNAC", "ACLR",
];
const WORKER_CODES = ["INVT", "IRT", "BERR", "WAIT", "LOCK"];

test("every VoiceIt and worker code has advice that ends a sentence", () => {
  for (const code of [...VOICEIT_CODES, ...WORKER_CODES]) {
    const entry = VOICEIT_MESSAGES[code];
    assert.ok(entry, `no advice for ${code}`);
    assert.match(entry.message, /[.!]$/, code);
  }
});

test("recoverable codes are retried; a wrong person, a lock or a bad session are not", () => {
  for (const code of ["FNFD", "FTMF", "SSTQ", "SSTL", "NEHSD", "PDNM", "IFVD", "RWPU", "BERR", "WAIT"]) {
    assert.equal(isRecoverable(code), true, code);
    assert.equal(judgeAnswer({ responseCode: code }).result, "retry", code);
  }
  assert.equal(judgeAnswer({ responseCode: "LOCK" }).result, "final");
  assert.equal(judgeAnswer({ responseCode: "INVT" }).result, "invalid");
  assert.equal(judgeAnswer({ responseCode: "SUCC" }).result, "success");
});

test("the worker's own sentence is shown for its codes, VoiceIt's developer text is not", () => {
  assert.equal(judgeAnswer({ responseCode: "WAIT", message: "Wait 12 seconds, then try again." }).message,
    "Wait 12 seconds, then try again.");
  assert.notEqual(judgeAnswer({ responseCode: "FNFD", message: "Face not found in video" }).message,
    "Face not found in video");
});

test("liveness answers are judged by success and retry", () => {
  assert.equal(judgeAnswer({ success: true }).result, "success");
  assert.equal(judgeAnswer({ success: false, retry: true, uiMessage: "Again" }).result, "retry");
  assert.equal(judgeAnswer({ success: false, retry: false }).result, "final");
});
