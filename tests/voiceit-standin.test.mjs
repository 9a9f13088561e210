// Specification tests for the VoiceIt stand-in: it must reject what VoiceIt rejects and answer
// in VoiceIt's shapes, or the worker's integration tests against it prove nothing.

import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';

import { startVoiceItStandin } from './support/voiceit-standin.mjs';

const API_KEY = 'key_00000000000000000000000000000000';
const API_TOKEN = 'tok_11111111111111111111111111111111';
const PHRASE = 'never forget tomorrow is a new day';

let standin;

before(async () => {
  standin = await startVoiceItStandin({ apiKey: API_KEY, apiToken: API_TOKEN });
});

after(async () => {
  await standin?.close();
});

beforeEach(() => {
  standin.reset();
});

function basicAuth(key = API_KEY, token = API_TOKEN) {
  return `Basic ${Buffer.from(`${key}:${token}`).toString('base64')}`;
}

/** A WebM-looking recording: EBML magic followed by random bytes. */
function webm(size = 2048) {
  const bytes = randomBytes(size);
  bytes.set([0x1a, 0x45, 0xdf, 0xa3], 0);
  return bytes;
}

function wav(size = 2048) {
  const bytes = randomBytes(size);
  bytes.write('RIFF', 0, 'latin1');
  bytes.write('WAVE', 8, 'latin1');
  return bytes;
}

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

function form(fields, files = {}) {
  const body = new FormData();
  for (const [name, value] of Object.entries(fields)) body.append(name, value);
  for (const [name, { bytes, filename, type }] of Object.entries(files)) {
    body.append(name, new Blob([bytes], { type }), filename);
  }
  return body;
}

async function call(base, method, path, { auth = basicAuth(), body, headers = {} } = {}) {
  const allHeaders = { ...headers };
  if (auth !== null) allHeaders.authorization = auth;
  const started = Date.now();
  // duplex is required by fetch when the body is a stream (the chunked-upload test).
  const res = await fetch(`${base}${path}`, { method, headers: allHeaders, body, duplex: 'half' });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, json, text, elapsedMs: Date.now() - started };
}

const api = (method, path, options) => call(standin.apiUrl, method, path, options);
const liveness = (method, path, options) => call(standin.livenessUrl, method, path, options);

async function createUser() {
  const { json } = await api('POST', '/users');
  return json.userId;
}

function videoPart(bytes = webm()) {
  return { bytes, filename: 'video.mp4', type: 'video/mp4' };
}

function videoForm(userId, bytes = webm(), overrides = {}) {
  const fields = { userId, contentLanguage: 'en-US', phrase: PHRASE, ...overrides };
  return form(fields, { video: videoPart(bytes) });
}

function voiceForm(userId, bytes = wav(), overrides = {}) {
  const fields = { userId, contentLanguage: 'en-US', phrase: PHRASE, ...overrides };
  return form(fields, { recording: { bytes, filename: 'recording.wav', type: 'audio/wav' } });
}

function faceForm(userId, bytes = webm()) {
  return form({ userId }, { video: videoPart(bytes) });
}

async function enrollVideos(userId, count = 3) {
  for (let i = 0; i < count; i += 1) {
    const { status } = await api('POST', '/enrollments/video', { body: videoForm(userId) });
    assert.equal(status, 201);
  }
}

function assertCommonKeys(json, status, responseCode) {
  assert.equal(json.status, status);
  assert.equal(json.responseCode, responseCode);
  assert.equal(typeof json.message, 'string');
  assert.match(json.timeTaken, /^\d+\.\d{3}s$/);
  assert.equal(typeof json.apiCallId, 'string');
}

describe('authentication', () => {
  test('a call without Basic auth gets 401 UNAC in the VoiceIt shape', async () => {
    const { status, json } = await api('POST', '/users', { auth: null });
    assert.equal(status, 401);
    assertCommonKeys(json, 401, 'UNAC');
    assert.equal(standin.state.users.size, 0);
  });

  test('a wrong API token gets 401 UNAC', async () => {
    const { status, json } = await api('GET', '/users/usr_' + '0'.repeat(32), {
      auth: basicAuth(API_KEY, 'tok_wrong'),
    });
    assert.equal(status, 401);
    assert.equal(json.responseCode, 'UNAC');
  });

  test('the liveness server rejects wrong auth with success false, no responseCode', async () => {
    const path = `/v1/verification/usr_${'0'.repeat(32)}/en-US`;
    const auth = basicAuth('key_wrong', API_TOKEN);
    const { status, json } = await liveness('GET', path, { auth });
    assert.equal(status, 401);
    assert.equal(json.success, false);
    assert.equal(typeof json.message, 'string');
    assert.equal('responseCode' in json, false);
  });
});

describe('users', () => {
  test('POST /users creates usr_ + 32 hex and the user then exists', async () => {
    const created = await api('POST', '/users');
    assert.equal(created.status, 201);
    assertCommonKeys(created.json, 201, 'SUCC');
    assert.match(created.json.userId, /^usr_[0-9a-f]{32}$/);
    assert.equal(created.json.message, `Created user with userId : ${created.json.userId}`);

    const checked = await api('GET', `/users/${created.json.userId}`);
    assert.equal(checked.status, 200);
    assert.equal(checked.json.exists, true);
    const stored = standin.state.users.get(created.json.userId);
    assert.deepEqual(stored, { voice: [], face: [], video: [] });
  });

  test('GET /users for a well-formed unknown id answers exists false', async () => {
    const { status, json } = await api('GET', `/users/usr_${'a'.repeat(32)}`);
    assert.equal(status, 200);
    assertCommonKeys(json, 200, 'SUCC');
    assert.equal(json.exists, false);
  });
});

describe('enrollment and verification', () => {
  test('three video enrollments then video verification succeeds', async () => {
    const userId = await createUser();

    const first = await api('POST', '/enrollments/video', { body: videoForm(userId) });
    assert.equal(first.status, 201);
    assertCommonKeys(first.json, 201, 'SUCC');
    assert.equal(typeof first.json.id, 'number');
    assert.equal(typeof first.json.createdAt, 'number');
    assert.equal(first.json.contentLanguage, 'en-US');
    assert.equal(first.json.text, PHRASE);
    assert.equal(typeof first.json.textConfidence, 'number');
    assert.equal(
      first.json.message,
      `Successfully enrolled video for user with userId : ${userId}`,
    );
    await enrollVideos(userId, 2);

    const listed = await api('GET', `/enrollments/video/${userId}`);
    assert.equal(listed.status, 200);
    assert.equal(listed.json.count, 3);
    assert.equal(listed.json.videoEnrollments.length, 3);
    assert.deepEqual(Object.keys(listed.json.videoEnrollments[0]).sort(), [
      'contentLanguage',
      'createdAt',
      'text',
      'videoEnrollmentId',
    ]);

    const verified = await api('POST', '/verification/video', { body: videoForm(userId) });
    assert.equal(verified.status, 200);
    assertCommonKeys(verified.json, 200, 'SUCC');
    assert.equal(typeof verified.json.voiceConfidence, 'number');
    assert.equal(typeof verified.json.faceConfidence, 'number');
    assert.equal(verified.json.text, PHRASE);
    assert.equal(typeof verified.json.textConfidence, 'number');
  });

  test('video enrollments count toward voice and face verification', async () => {
    const userId = await createUser();
    await enrollVideos(userId);

    const voice = await api('POST', '/verification/voice', {
      body: voiceForm(userId, wav(), { contentLanguage: 'no-STT' }),
    });
    assert.equal(voice.status, 200);
    assert.equal(voice.json.responseCode, 'SUCC');
    assert.equal(typeof voice.json.confidence, 'number');
    assert.equal(voice.json.text, '');

    const face = await api('POST', '/verification/face', {
      body: faceForm(userId),
    });
    assert.equal(face.status, 200);
    assert.equal(face.json.responseCode, 'SUCC');
    assert.equal(typeof face.json.faceConfidence, 'number');
  });

  test('face enrollment answers faceEnrollmentId and createdAt', async () => {
    const userId = await createUser();
    const { status, json } = await api('POST', '/enrollments/face', {
      body: faceForm(userId),
    });
    assert.equal(status, 201);
    assertCommonKeys(json, 201, 'SUCC');
    assert.equal(typeof json.faceEnrollmentId, 'number');
    assert.equal(typeof json.createdAt, 'number');
    assert.equal(standin.state.users.get(userId).face.length, 1);
  });

  test('video verification with two video enrollments is TVER', async () => {
    const userId = await createUser();
    await enrollVideos(userId, 2);
    const { status, json } = await api('POST', '/verification/video', { body: videoForm(userId) });
    assert.equal(status, 400);
    assertCommonKeys(json, 400, 'TVER');
  });

  test('voice verification without three voice or video enrollments is PNTE', async () => {
    const userId = await createUser();
    const { status, json } = await api('POST', '/verification/voice', { body: voiceForm(userId) });
    assert.equal(status, 400);
    assert.equal(json.responseCode, 'PNTE');
  });

  test('face verification without any face or video enrollment is NFEF', async () => {
    const userId = await createUser();
    const { status, json } = await api('POST', '/verification/face', {
      body: faceForm(userId),
    });
    assert.equal(status, 400);
    assert.equal(json.responseCode, 'NFEF');
  });

  test('an unknown well-formed userId is 404 UNFD, a malformed one 400 MISP', async () => {
    const unknown = `usr_${'b'.repeat(32)}`;
    const missing = await api('POST', '/verification/video', { body: videoForm(unknown) });
    assert.equal(missing.status, 404);
    assertCommonKeys(missing.json, 404, 'UNFD');
    assert.equal(missing.json.message, `User with userId : ${unknown} not found`);

    const listed = await api('GET', `/enrollments/face/${unknown}`);
    assert.equal(listed.status, 404);
    assert.equal(listed.json.responseCode, 'UNFD');

    const malformed = await api('POST', '/enrollments/video', { body: videoForm('usr_123') });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.json.responseCode, 'MISP');
  });

  test('deleting all enrollments empties every modality and verification then fails', async () => {
    const userId = await createUser();
    await enrollVideos(userId);
    await api('POST', '/enrollments/face', {
      body: faceForm(userId),
    });

    const deleted = await api('DELETE', `/enrollments/${userId}/all`);
    assert.equal(deleted.status, 200);
    assertCommonKeys(deleted.json, 200, 'SUCC');
    const expected = `All enrollments for user with userId : ${userId} were deleted`;
    assert.equal(deleted.json.message, expected);
    assert.deepEqual(standin.state.users.get(userId), { voice: [], face: [], video: [] });

    const verified = await api('POST', '/verification/video', { body: videoForm(userId) });
    assert.equal(verified.json.responseCode, 'TVER');
  });
});

describe('request validation', () => {
  test('a missing file part is MISP naming the part', async () => {
    const userId = await createUser();
    const { status, json } = await api('POST', '/enrollments/video', {
      body: form({ userId, contentLanguage: 'en-US', phrase: PHRASE }),
    });
    assert.equal(status, 400);
    assertCommonKeys(json, 400, 'MISP');
    assert.match(json.message, /\bvideo\b/);
    assert.equal(standin.state.users.get(userId).video.length, 0);
  });

  test('a file under the wrong part name is MISP', async () => {
    const userId = await createUser();
    const { status, json } = await api('POST', '/enrollments/video', {
      body: form(
        { userId, contentLanguage: 'en-US', phrase: PHRASE },
        { file: { bytes: webm(), filename: 'video.mp4', type: 'video/mp4' } },
      ),
    });
    assert.equal(status, 400);
    assert.equal(json.responseCode, 'MISP');
  });

  test('media sent as a text field instead of a file part is MISP', async () => {
    const userId = await createUser();
    const { json } = await api('POST', '/enrollments/face', {
      body: form({ userId, video: 'not a file' }),
    });
    assert.equal(json.responseCode, 'MISP');
  });

  test('a missing or empty phrase for voice enrollment is MISP naming phrase', async () => {
    const userId = await createUser();
    const { status, json } = await api('POST', '/enrollments/voice', {
      body: voiceForm(userId, wav(), { phrase: '   ' }),
    });
    assert.equal(status, 400);
    assert.equal(json.responseCode, 'MISP');
    assert.match(json.message, /phrase/);
  });

  test('a body that is not multipart/form-data is MISP', async () => {
    const userId = await createUser();
    const { status, json } = await api('POST', '/enrollments/face', {
      body: JSON.stringify({ userId }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(status, 400);
    assert.equal(json.responseCode, 'MISP');
  });

  test('an unknown contentLanguage is INCP', async () => {
    const userId = await createUser();
    const { status, json } = await api('POST', '/enrollments/video', {
      body: videoForm(userId, webm(), { contentLanguage: 'asdasd' }),
    });
    assert.equal(status, 400);
    assertCommonKeys(json, 400, 'INCP');
  });

  test('bytes in no known media container are IFVD for video, IFAD for audio', async () => {
    const userId = await createUser();
    const video = await api('POST', '/enrollments/video', {
      body: videoForm(userId, Buffer.from('this is plainly not a video file')),
    });
    assert.equal(video.status, 400);
    assert.equal(video.json.responseCode, 'IFVD');

    const empty = await api('POST', '/enrollments/face', {
      body: faceForm(userId, new Uint8Array(0)),
    });
    assert.equal(empty.json.responseCode, 'IFVD');

    const audio = await api('POST', '/enrollments/voice', {
      body: voiceForm(userId, randomBytes(512)),
    });
    assert.equal(audio.json.responseCode, 'IFAD');
    assert.equal(standin.state.users.get(userId).video.length, 0);
  });

  test('MP4 and Ogg containers are accepted', async () => {
    const userId = await createUser();
    const mp4 = randomBytes(256);
    mp4.write('ftyp', 4, 'latin1');
    const ogg = randomBytes(256);
    ogg.write('OggS', 0, 'latin1');

    const video = await api('POST', '/enrollments/video', { body: videoForm(userId, mp4) });
    assert.equal(video.json.responseCode, 'SUCC');
    const voice = await api('POST', '/enrollments/voice', { body: voiceForm(userId, ogg) });
    assert.equal(voice.json.responseCode, 'SUCC');
  });

  test('an unknown path is a JSON 404', async () => {
    const { status, json } = await api('GET', '/no/such/path');
    assert.equal(status, 404);
    assertCommonKeys(json, 404, 'GERR');
  });

  test('a trailing slash is not the same path', async () => {
    const { status } = await api('POST', '/users/');
    assert.equal(status, 404);
  });
});

describe('received requests', () => {
  test('records fields, headers, Content-Length and the sha256 of each file', async () => {
    const userId = await createUser();
    const bytes = webm(50_000);
    const headers = { platformid: '53' };
    await api('POST', '/enrollments/video', { body: videoForm(userId, bytes), headers });

    const seen = standin.received.at(-1);
    assert.equal(seen.host, 'api');
    assert.equal(seen.method, 'POST');
    assert.equal(seen.path, '/enrollments/video');
    assert.equal(seen.headers.platformid, '53');
    assert.equal(seen.headers.authorization, basicAuth());
    assert.deepEqual(seen.fields, { userId, contentLanguage: 'en-US', phrase: PHRASE });
    assert.deepEqual(seen.files, [
      {
        field: 'video',
        filename: 'video.mp4',
        contentType: 'video/mp4',
        size: bytes.length,
        sha256: sha256(bytes),
      },
    ]);
    assert.equal(typeof seen.contentLength, 'number');
    assert.ok(seen.contentLength > bytes.length);
    assert.equal(seen.response.status, 201);
    assert.equal(seen.response.body.responseCode, 'SUCC');
  });

  test('a chunked upload is recorded with contentLength null', async () => {
    const userId = await createUser();
    const encoded = new Response(faceForm(userId));
    const chunks = encoded.body;
    await api('POST', '/enrollments/face', {
      body: chunks,
      headers: { 'content-type': encoded.headers.get('content-type') },
    });

    const seen = standin.received.at(-1);
    assert.equal(seen.headers['transfer-encoding'], 'chunked');
    assert.equal(seen.contentLength, null);
    assert.equal(seen.response.body.responseCode, 'SUCC');
  });

  test('rejected calls are recorded too, control calls are not', async () => {
    await api('POST', '/users', { auth: null });
    await fetch(`${standin.apiUrl}/__standin/state`);
    assert.equal(standin.received.length, 1);
    assert.equal(standin.received[0].response.status, 401);
  });
});

describe('failNext', () => {
  test('a forced FAIL hits only the matching path, answering 200 with low confidence', async () => {
    const userId = await createUser();
    await enrollVideos(userId);
    standin.failNext({ code: 'FAIL', path: '/verification/video' });

    const listed = await api('GET', `/enrollments/video/${userId}`);
    assert.equal(listed.json.responseCode, 'SUCC');

    const failed = await api('POST', '/verification/video', { body: videoForm(userId) });
    assert.equal(failed.status, 200);
    assertCommonKeys(failed.json, 200, 'FAIL');
    assert.ok(failed.json.voiceConfidence < 50);
    assert.ok(failed.json.faceConfidence < 50);

    const next = await api('POST', '/verification/video', { body: videoForm(userId) });
    assert.equal(next.json.responseCode, 'SUCC');
  });

  test('times repeats a fault and a forced enrollment failure stores nothing', async () => {
    const userId = await createUser();
    standin.failNext({ code: 'FNFD', path: '/enrollments/face', times: 2 });
    const body = () => faceForm(userId);

    for (let i = 0; i < 2; i += 1) {
      const { status, json } = await api('POST', '/enrollments/face', { body: body() });
      assert.equal(status, 400);
      assertCommonKeys(json, 400, 'FNFD');
    }
    assert.equal(standin.state.users.get(userId).face.length, 0);

    const third = await api('POST', '/enrollments/face', { body: body() });
    assert.equal(third.json.responseCode, 'SUCC');
  });

  test('a fault is not used up by a call the service rejects on its own', async () => {
    const userId = await createUser();
    await enrollVideos(userId);
    standin.failNext({ code: 'FAIL', path: '/verification/video' });

    const unauthorised = await api('POST', '/verification/video', {
      body: videoForm(userId),
      auth: null,
    });
    assert.equal(unauthorised.json.responseCode, 'UNAC');
    const failed = await api('POST', '/verification/video', { body: videoForm(userId) });
    assert.equal(failed.json.responseCode, 'FAIL');
  });

  test('http5xx answers that status with a non-JSON body once', async () => {
    standin.failNext({ http5xx: 503 });
    const broken = await api('POST', '/users');
    assert.equal(broken.status, 503);
    assert.equal(broken.json, null);
    assert.equal(standin.state.users.size, 0);

    const next = await api('POST', '/users');
    assert.equal(next.status, 201);
  });

  test('garbage answers 200 with a body that is not JSON', async () => {
    standin.failNext({ garbage: true });
    const { status, json, text } = await api('POST', '/users');
    assert.equal(status, 200);
    assert.equal(json, null);
    assert.ok(text.length > 0);
  });

  test('delayMs answers normally, only later', async () => {
    standin.failNext({ delayMs: 300 });
    const { status, elapsedMs } = await api('POST', '/users');
    assert.equal(status, 201);
    assert.ok(elapsedMs >= 290, `answered after ${elapsedMs} ms`);

    const quick = await api('POST', '/users');
    assert.ok(quick.elapsedMs < 250, `answered after ${quick.elapsedMs} ms`);
  });

  test('invalid specs are refused', () => {
    assert.throws(() => standin.failNext({}), TypeError);
    assert.throws(() => standin.failNext({ code: 'SUCC' }), TypeError);
    assert.throws(() => standin.failNext({ http5xx: 404 }), TypeError);
    assert.throws(() => standin.failNext({ code: 'FAIL', garbage: true }), TypeError);
    assert.throws(() => standin.failNext({ liveness: { success: true } }), TypeError);
  });
});

describe('control API', () => {
  test('fail-next, state and reset work over HTTP without auth', async () => {
    const queued = await fetch(`${standin.apiUrl}/__standin/fail-next`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ http5xx: 502 }),
    });
    assert.equal(queued.status, 200);
    assert.deepEqual(await queued.json(), { queued: 1 });

    const refused = await fetch(`${standin.apiUrl}/__standin/fail-next`, {
      method: 'POST',
      body: '{"code":1}',
    });
    assert.equal(refused.status, 400);

    const broken = await api('POST', '/users');
    assert.equal(broken.status, 502);
    const userId = await createUser();

    const summary = await (await fetch(`${standin.apiUrl}/__standin/state`)).json();
    assert.deepEqual(summary.users, [{ userId, voice: 0, face: 0, video: 0 }]);
    assert.deepEqual(summary.queuedFaults, []);

    const reset = await fetch(`${standin.apiUrl}/__standin/reset`, { method: 'POST' });
    assert.equal(reset.status, 200);
    assert.equal(standin.state.users.size, 0);
    assert.equal(standin.received.length, 0);
  });

  test('control routes are not served by the liveness server', async () => {
    const { status, json } = await liveness('GET', '/__standin/state');
    assert.equal(status, 404);
    assert.equal(json.success, false);
  });
});

describe('liveness server', () => {
  function faceLiveness(userId, lcoId, bytes = webm()) {
    const body = form({ userId, lcoId }, { file: videoPart(bytes) });
    return liveness('POST', '/v1/verification/face', { body });
  }

  async function challenge(userId) {
    const { status, json } = await liveness('GET', `/v1/verification/${userId}/en-US`);
    assert.equal(status, 200);
    return json;
  }

  test('an LCO has 2-3 known challenges and their strings; face liveness then passes', async () => {
    const userId = await createUser();
    await api('POST', '/enrollments/face', {
      body: faceForm(userId),
    });

    const lco = await challenge(userId);
    assert.equal(lco.success, true);
    assert.equal(typeof lco.message, 'string');
    assert.match(lco.lcoId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.ok(lco.lco.length >= 2 && lco.lco.length <= 3);
    const known = [
      'FACE_NEUTRAL',
      'FACE_LEFT',
      'FACE_RIGHT',
      'FACE_DOWN',
      'FACE_UP',
      'FACE_TILT_LEFT',
      'FACE_TILT_RIGHT',
      'SMILE',
    ];
    for (const code of lco.lco) assert.ok(known.includes(code), code);
    assert.equal(lco.lcoStrings.length, lco.lco.length);
    assert.equal(typeof lco.livenessChallengeTime, 'number');
    assert.equal(typeof lco.uiLivenessInstruction, 'string');
    assert.equal('responseCode' in lco, false);

    const bytes = webm();
    const verified = await faceLiveness(userId, lco.lcoId, bytes);
    assert.equal(verified.status, 200);
    const keys = Object.keys(verified.json).sort();
    assert.deepEqual(keys, ['audioPrompt', 'retry', 'success', 'uiMessage']);
    assert.equal(verified.json.success, true);
    assert.equal(verified.json.audioPrompt, 'LIVENESS_SUCCESS.wav');
    const seen = standin.received.at(-1);
    assert.equal(seen.host, 'liveness');
    assert.deepEqual(seen.fields, { userId, lcoId: lco.lcoId });
    assert.equal(seen.files[0].field, 'file');
    assert.equal(seen.files[0].sha256, sha256(bytes));
  });

  test('an LCO for an unknown user is success false', async () => {
    const { status, json } = await liveness('GET', `/v1/verification/usr_${'c'.repeat(32)}/en-US`);
    assert.equal(status, 200);
    assert.equal(json.success, false);
    assert.equal(typeof json.message, 'string');
  });

  test('an unknown lcoId, or one issued to another user, fails without retry', async () => {
    const userId = await createUser();
    const other = await createUser();
    await enrollVideos(userId);
    await enrollVideos(other);

    const madeUp = await faceLiveness(userId, '6f1c2a8e-0000-4000-8000-000000000000');
    assert.equal(madeUp.status, 200);
    assert.equal(madeUp.json.success, false);
    assert.equal(madeUp.json.retry, false);
    assert.equal(madeUp.json.audioPrompt, 'LIVENESS_FAILED.wav');

    const stolen = await challenge(other);
    const swapped = await faceLiveness(userId, stolen.lcoId);
    assert.equal(swapped.json.success, false);
  });

  test('an lcoId is used up by a success', async () => {
    const userId = await createUser();
    await enrollVideos(userId, 1);
    const { lcoId } = await challenge(userId);

    const first = await faceLiveness(userId, lcoId);
    assert.equal(first.json.success, true);
    const again = await faceLiveness(userId, lcoId);
    assert.equal(again.json.success, false);
  });

  test('a forced retry keeps the LCO usable, a forced final failure uses it up', async () => {
    const userId = await createUser();
    await enrollVideos(userId, 1);
    const { lcoId } = await challenge(userId);

    standin.failNext({ liveness: { success: false, retry: true } });
    const retry = await faceLiveness(userId, lcoId);
    assert.deepEqual(retry.json, {
      success: false,
      retry: true,
      uiMessage: retry.json.uiMessage,
      audioPrompt: 'LIVENESS_TRY_AGAIN.wav',
    });

    standin.failNext({ liveness: { success: false, retry: false } });
    const final = await faceLiveness(userId, lcoId);
    assert.equal(final.json.success, false);
    assert.equal(final.json.retry, false);
    assert.equal(final.json.audioPrompt, 'LIVENESS_FAILED.wav');
    assert.equal(standin.state.lcos.has(lcoId), false);
  });

  test('video liveness needs three video enrollments and a phrase', async () => {
    const userId = await createUser();
    await enrollVideos(userId, 2);
    const videoLiveness = (lcoId, fields = {}) => {
      const all = { userId, lcoId, phrase: PHRASE, contentLanguage: 'en-US', ...fields };
      return liveness('POST', '/v1/verification/video', { body: form(all, { file: videoPart() }) });
    };

    const few = await videoLiveness((await challenge(userId)).lcoId);
    assert.equal(few.json.success, false);

    await enrollVideos(userId, 1);
    const { lcoId } = await challenge(userId);
    const noPhrase = await videoLiveness(lcoId, { phrase: '' });
    assert.equal(noPhrase.status, 400);
    assert.equal(noPhrase.json.success, false);
    assert.match(noPhrase.json.message, /phrase/);

    const ok = await videoLiveness(lcoId);
    assert.equal(ok.json.success, true);
  });

  test('liveness with a misnamed part or non-media bytes is rejected', async () => {
    const userId = await createUser();
    await enrollVideos(userId, 1);
    const { lcoId } = await challenge(userId);

    const misnamed = await liveness('POST', '/v1/verification/face', {
      body: form({ userId, lcoId }, { video: videoPart() }),
    });
    assert.equal(misnamed.status, 400);
    assert.equal(misnamed.json.success, false);

    const junk = await faceLiveness(userId, lcoId, Buffer.from('definitely not a webm file'));
    assert.equal(junk.status, 400);
    assert.equal(junk.json.success, false);

    const ok = await faceLiveness(userId, lcoId);
    assert.equal(ok.json.success, true);
  });
});

describe('lifecycle', () => {
  test('listens on a given port and close() ends a call held by delayMs', async () => {
    const probe = await startVoiceItStandin({ apiKey: API_KEY, apiToken: API_TOKEN });
    const port = Number(new URL(probe.apiUrl).port);
    await probe.close();

    const fixed = await startVoiceItStandin({
      apiKey: API_KEY,
      apiToken: API_TOKEN,
      apiPort: port,
    });
    assert.equal(fixed.apiUrl, `http://127.0.0.1:${port}`);
    fixed.failNext({ delayMs: 60_000 });
    const pending = fetch(`${fixed.apiUrl}/users`, {
      method: 'POST',
      headers: { authorization: basicAuth() },
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await fixed.close();
    await assert.rejects(pending);
  });

  test('refuses to start without credentials', async () => {
    await assert.rejects(startVoiceItStandin({ apiKey: '', apiToken: API_TOKEN }), TypeError);
  });
});
