// In-memory stand-in for VoiceIt API 2.0 and the VoiceIt liveness server, served over loopback.
// It enforces the request contract the worker must meet (auth, paths, field and part names,
// media containers, enrollment thresholds) and answers in VoiceIt's JSON shapes, so a test that
// passes against it says something about the real service. The contract comes from the
// project's VoiceIt research notes (voiceit.md, sections 2.3, 6 and 7).
//
// Decisions taken where VoiceIt's behaviour is not documented (each is a guess, kept in one
// place so it is easy to revise):
// - HTTP status of a response code: SUCC 200 (201 for creations); FAIL, a low-confidence
//   verification, 200; UNFD/GNFD/ENFD 404; UNAC 401; DAID 403; ACLR 429; GERR 500; every other
//   code, which describes a problem with the submitted data, 400.
// - Validation order: auth, route, multipart shape, missing fields and parts (MISP), userId
//   shape (MISP), contentLanguage (INCP), media container (IFAD/IFVD), user existence (UNFD),
//   enrollment thresholds (PNTE/TVER/NFEF).
// - A userId that is not "usr_" + 32 lowercase hex digits is MISP (400); a well-formed unknown
//   one is UNFD (404).
// - Paths match exactly: no trailing slash, no photo/audio split uploads, no byUrl variants.
// - "no-STT" enrollments and verifications report text "" and textConfidence 0; other
//   languages echo the phrase with textConfidence 100.
// - Liveness: a malformed request is HTTP 400, business failures (unknown user or lcoId, too
//   few enrollments) are HTTP 200 with success false. An lcoId belongs to the user it was issued
//   for, survives failures with retry true, and is used up by a success or a final failure.
// - Injected faults (failNext) are only taken by calls that pass the validation above, so a
//   malformed request still gets the answer the real service would give and the fault stays
//   queued. One fault per call, first matching in queue order.

import http from 'node:http';
import { createHash, randomBytes, randomInt, randomUUID } from 'node:crypto';

export const DEFAULT_CONTENT_LANGUAGES = Object.freeze([
  'no-STT',
  'en-US',
  'en-GB',
  'en-AU',
  'en-CA',
  'en-IN',
  'es-ES',
  'es-MX',
  'fr-FR',
  'fr-CA',
  'de-DE',
  'it-IT',
  'pt-BR',
  'pt-PT',
  'nl-NL',
  'sv-SE',
  'ru-RU',
  'ja-JP',
  'ko-KR',
  'zh-CN',
  'hi-IN',
  'ar-SA',
]);

const USER_ID_SHAPE = /^usr_[0-9a-f]{32}$/;
const MULTIPART_WITH_BOUNDARY = /^multipart\/form-data\s*;(.*;)?\s*boundary=/i;
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const MAX_DELAY_MS = 10 * 60 * 1000;
const CONTROL_PREFIX = '/__standin/';
const JSON_TYPE = 'application/json; charset=utf-8';

const NOT_FOUND_CODES = new Set(['UNFD', 'GNFD', 'ENFD']);

const FORCED_MESSAGES = {
  FAIL: 'Verification failed: confidence below the threshold',
  FNFD: 'No face was found in the submitted media',
  FTMF: 'More than one face was found in the submitted media',
  SSTQ: 'The speaker is speaking too quietly',
  SSTL: 'The speaker is speaking too loudly',
  NEHSD: 'Not enough human speech was detected in the recording',
  STTF: 'Speech to text failed on the recording',
  PDNM: 'The spoken phrase does not match the expected phrase',
  RWPU: 'This recording was used before',
  SRNR: 'The sound recording does not meet the requirements',
  IFAD: 'Incorrectly formatted audio data',
  IFVD: 'Incorrectly formatted video data',
  NSPE: 'The enrollment is not similar to the previous enrollments',
  GERR: 'A general error occurred',
  DAID: 'The developer account is disabled',
  ACLR: 'The API call limit was reached',
  UNAC: 'Unauthorized access',
};

const LIVENESS_CHALLENGES = {
  FACE_NEUTRAL: 'Look straight at the camera',
  FACE_LEFT: 'Turn your head to the left',
  FACE_RIGHT: 'Turn your head to the right',
  FACE_DOWN: 'Lower your chin',
  FACE_UP: 'Raise your chin',
  FACE_TILT_LEFT: 'Tilt your head to the left',
  FACE_TILT_RIGHT: 'Tilt your head to the right',
  SMILE: 'Smile',
};
const SECONDS_PER_CHALLENGE = 2;

/** Thrown by a route's validation; turned into a VoiceIt JSON answer in one place. */
class ApiRejection extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Thrown by a liveness route's validation; carries the HTTP status and the exact body. */
class LivenessRejection extends Error {
  constructor(status, body) {
    super(body.message ?? body.uiMessage);
    this.status = status;
    this.body = body;
  }
}

function statusForCode(code) {
  if (code === 'SUCC' || code === 'FAIL') return 200;
  if (code === 'UNAC') return 401;
  if (code === 'DAID') return 403;
  if (NOT_FOUND_CODES.has(code)) return 404;
  if (code === 'ACLR') return 429;
  if (code === 'GERR') return 500;
  return 400;
}

function randomHex(bytes) {
  return randomBytes(bytes).toString('hex');
}

function sha256Hex(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A container VoiceIt could decode: WebM/Matroska, RIFF/WAVE, ISO-BMFF (MP4/MOV/M4A) or Ogg. */
function isRecognisedMedia(bytes) {
  if (bytes.length < 12) return false;
  const ascii = (start, end) => bytes.subarray(start, end).toString('latin1');
  const ebml = bytes[0] === 0x1a && bytes[1] === 0x45 && bytes[2] === 0xdf && bytes[3] === 0xa3;
  const wave = ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WAVE';
  const isoBmff = ascii(4, 8) === 'ftyp';
  const ogg = ascii(0, 4) === 'OggS';
  return ebml || wave || isoBmff || ogg;
}

function hasBasicAuth(headers, apiKey, apiToken) {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(headers.authorization ?? '');
  if (!match) return false;

  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  return decoded.slice(0, colon) === apiKey && decoded.slice(colon + 1) === apiToken;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve({ bytes: Buffer.concat(chunks), tooLarge: size > MAX_BODY_BYTES }));
    req.on('error', reject);
  });
}

/** Splits a multipart body into text fields and file parts; `error` is set if it cannot. */
async function parseMultipart(contentType, bytes) {
  const parsed = { isMultipart: false, error: null, fields: {}, files: [], fileBytes: new Map() };
  if (!MULTIPART_WITH_BOUNDARY.test(contentType ?? '')) return parsed;

  parsed.isMultipart = true;
  let form;
  try {
    const request = new Request('http://standin.invalid/', {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: bytes,
    });
    form = await request.formData();
  } catch (err) {
    parsed.error = `malformed multipart body (${err.message})`;
    return parsed;
  }

  for (const [name, value] of form) {
    if (typeof value === 'string') {
      if (!(name in parsed.fields)) parsed.fields[name] = value;
      continue;
    }
    const data = Buffer.from(await value.arrayBuffer());
    parsed.files.push({
      field: name,
      filename: value.name,
      contentType: value.type,
      size: data.length,
      sha256: sha256Hex(data),
    });
    if (!parsed.fileBytes.has(name)) parsed.fileBytes.set(name, data);
  }
  return parsed;
}

function sendBody(res, status, contentType, text) {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function sendJson(res, status, body) {
  sendBody(res, status, JSON_TYPE, JSON.stringify(body));
}

/** Validates a failNext spec and fills in the host it implies; throws TypeError when invalid. */
function normaliseFaultSpec(spec) {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    throw new TypeError('fault spec must be an object');
  }
  const kinds = ['code', 'http5xx', 'garbage', 'liveness'].filter((k) => spec[k] !== undefined);
  if (kinds.length > 1) throw new TypeError(`fault spec mixes ${kinds.join(' and ')}`);
  if (kinds.length === 0 && spec.delayMs === undefined) {
    throw new TypeError('fault spec needs one of code, http5xx, garbage, liveness, delayMs');
  }

  const fault = { kind: kinds[0] ?? 'delay', delayMs: 0 };
  if (spec.delayMs !== undefined) {
    if (!Number.isInteger(spec.delayMs) || spec.delayMs < 0 || spec.delayMs > MAX_DELAY_MS) {
      throw new TypeError(`delayMs must be an integer from 0 to ${MAX_DELAY_MS}`);
    }
    fault.delayMs = spec.delayMs;
  }

  let impliedHost;
  if (fault.kind === 'code') {
    if (typeof spec.code !== 'string' || !/^[A-Z]{3,5}$/.test(spec.code)) {
      throw new TypeError('code must be a VoiceIt response code such as FAIL or FNFD');
    }
    if (spec.code === 'SUCC') throw new TypeError('SUCC is not a failure');
    fault.code = spec.code;
    impliedHost = 'api';
  } else if (fault.kind === 'http5xx') {
    if (!Number.isInteger(spec.http5xx) || spec.http5xx < 500 || spec.http5xx > 599) {
      throw new TypeError('http5xx must be a status from 500 to 599');
    }
    fault.http5xx = spec.http5xx;
  } else if (fault.kind === 'garbage') {
    if (spec.garbage !== true) throw new TypeError('garbage must be true');
  } else if (fault.kind === 'liveness') {
    const { success, retry = false } = spec.liveness ?? {};
    if (success !== false) throw new TypeError('liveness faults need success: false');
    if (typeof retry !== 'boolean') throw new TypeError('liveness.retry must be a boolean');
    fault.retry = retry;
    impliedHost = 'liveness';
  }

  if (spec.host !== undefined && spec.host !== 'api' && spec.host !== 'liveness') {
    throw new TypeError('host must be "api" or "liveness"');
  }
  if (spec.host !== undefined && impliedHost !== undefined && spec.host !== impliedHost) {
    throw new TypeError(`a ${fault.kind} fault only applies to the ${impliedHost} server`);
  }
  fault.host = spec.host ?? impliedHost;

  if (spec.path !== undefined && (typeof spec.path !== 'string' || !spec.path.startsWith('/'))) {
    throw new TypeError('path must start with "/"');
  }
  fault.path = spec.path;

  if (spec.method !== undefined && typeof spec.method !== 'string') {
    throw new TypeError('method must be a string');
  }
  fault.method = spec.method?.toUpperCase();

  const times = spec.times ?? 1;
  if (!Number.isInteger(times) || times < 1) {
    throw new TypeError('times must be a positive integer');
  }
  fault.remaining = times;
  fault.spec = { ...spec };
  return fault;
}

/** FIFO queue of injected faults; a call takes the first fault whose filters it matches. */
function createFaultQueue() {
  const queue = [];
  return {
    push(spec) {
      queue.push(normaliseFaultSpec(spec));
      return queue.length;
    },
    take(call) {
      const index = queue.findIndex(
        (f) =>
          (f.host === undefined || f.host === call.host) &&
          (f.path === undefined || call.path.startsWith(f.path)) &&
          (f.method === undefined || f.method === call.method),
      );
      if (index < 0) return null;

      const fault = queue[index];
      fault.remaining -= 1;
      if (fault.remaining === 0) queue.splice(index, 1);
      return fault;
    },
    pending() {
      return queue.map((f) => ({ ...f.spec, remaining: f.remaining }));
    },
    clear() {
      queue.length = 0;
    },
  };
}

function emptyUser() {
  return { voice: [], face: [], video: [] };
}

function requireUserIdShape(userId) {
  if (!USER_ID_SHAPE.test(userId)) {
    const hint = 'expected usr_ followed by 32 hex digits';
    throw new ApiRejection('MISP', `Invalid userId parameter "${userId}": ${hint}`);
  }
}

/** Reads the multipart request of a POST that carries one media part; throws MISP/IFxD/INCP. */
function requireForm(call, { fields, file, contentLanguages, mediaCode }) {
  if (!call.form.isMultipart) {
    const hint = 'the body must be multipart/form-data with a boundary';
    throw new ApiRejection('MISP', `Missing parameters: ${hint}`);
  }
  if (call.form.error) throw new ApiRejection('MISP', `Missing parameters: ${call.form.error}`);

  const missing = fields.filter((name) => (call.form.fields[name] ?? '').trim() === '');
  if (!call.form.fileBytes.has(file)) missing.push(file);
  if (missing.length > 0) {
    throw new ApiRejection('MISP', `Missing parameters: ${missing.join(', ')}`);
  }

  const values = call.form.fields;
  requireUserIdShape(values.userId);
  if (fields.includes('contentLanguage') && !contentLanguages.includes(values.contentLanguage)) {
    throw new ApiRejection('INCP', `Invalid contentLanguage parameter "${values.contentLanguage}"`);
  }

  const media = call.form.fileBytes.get(file);
  if (!isRecognisedMedia(media)) {
    const kind = mediaCode === 'IFAD' ? 'audio' : 'video';
    throw new ApiRejection(mediaCode, `Incorrectly formatted ${kind} data in file part "${file}"`);
  }
  return { values, media };
}

function transcript(contentLanguage, phrase) {
  if (contentLanguage === 'no-STT') return { text: '', textConfidence: 0 };
  return { text: phrase, textConfidence: 100 };
}

/** The API 2.0 routes: each has a validate step (throws ApiRejection) and a succeed step. */
function createApiRoutes(ctx) {
  const { state, contentLanguages } = ctx;

  function requireUser(userId) {
    requireUserIdShape(userId);
    const user = state.users.get(userId);
    if (!user) throw new ApiRejection('UNFD', `User with userId : ${userId} not found`);
    return user;
  }

  const SPOKEN_FIELDS = ['userId', 'contentLanguage', 'phrase'];
  const enrollmentForms = {
    voice: { fields: SPOKEN_FIELDS, file: 'recording', mediaCode: 'IFAD' },
    face: { fields: ['userId'], file: 'video', mediaCode: 'IFVD' },
    video: { fields: SPOKEN_FIELDS, file: 'video', mediaCode: 'IFVD' },
  };

  function readModalityForm(call, modality) {
    const { values, media } = requireForm(call, { ...enrollmentForms[modality], contentLanguages });
    const user = requireUser(values.userId);
    return { values, media, user, modality };
  }

  // Thresholds from voiceit.md 2.7 / 6.5: PNTE, TVER and NFEF name the missing enrollments.
  function requireEnoughEnrollments(user, modality) {
    if (modality === 'voice' && user.voice.length + user.video.length < 3) {
      const message = 'Phrase needs three voice or video enrollments before voice verification';
      throw new ApiRejection('PNTE', message);
    }
    if (modality === 'video' && user.video.length < 3) {
      const message = 'Three video enrollments are required before video verification';
      throw new ApiRejection('TVER', message);
    }
    if (modality === 'face' && user.face.length + user.video.length < 1) {
      throw new ApiRejection('NFEF', 'No face enrollments found for this user');
    }
  }

  function enroll({ values, media, user, modality }) {
    const id = ctx.nextEnrollmentId();
    const createdAt = Date.now();
    const record = { createdAt, sha256: sha256Hex(media), size: media.length };
    const message = `Successfully enrolled ${modality} for user with userId : ${values.userId}`;

    if (modality === 'face') {
      user.face.push({ faceEnrollmentId: id, ...record });
      return { status: 201, body: { faceEnrollmentId: id, createdAt }, message };
    }

    const { contentLanguage, phrase } = values;
    const { text, textConfidence } = transcript(contentLanguage, phrase);
    const idKey = `${modality}EnrollmentId`;
    user[modality].push({ [idKey]: id, contentLanguage, text, phrase, ...record });
    return { status: 201, body: { id, contentLanguage, text, textConfidence, createdAt }, message };
  }

  function verificationKeys(modality, values, confident) {
    const { text, textConfidence } = transcript(values.contentLanguage, values.phrase ?? '');
    const voice = confident ? 93.5 : 18.25;
    const face = confident ? 96.75 : 21.5;
    if (modality === 'voice') return { confidence: voice, text, textConfidence };
    if (modality === 'face') return { faceConfidence: face };
    return { voiceConfidence: voice, faceConfidence: face, text, textConfidence };
  }

  function publicEnrollment(modality, record) {
    const { createdAt, contentLanguage, text } = record;
    if (modality === 'face') return { createdAt, faceEnrollmentId: record.faceEnrollmentId };

    const idKey = `${modality}EnrollmentId`;
    return { createdAt, contentLanguage, [idKey]: record[idKey], text };
  }

  return [
    {
      method: 'POST',
      pattern: /^\/users$/,
      validate: () => ({}),
      succeed: () => {
        const userId = `usr_${randomHex(16)}`;
        state.users.set(userId, emptyUser());
        return { status: 201, body: { userId }, message: `Created user with userId : ${userId}` };
      },
    },
    {
      method: 'GET',
      pattern: /^\/users\/([^/]+)$/,
      validate: (call, [userId]) => {
        requireUserIdShape(userId);
        return { userId };
      },
      succeed: ({ userId }) => {
        const exists = state.users.has(userId);
        const message = `User with userId : ${userId} ${exists ? 'exists' : 'does not exist'}`;
        return { status: 200, body: { exists }, message };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/users\/([^/]+)$/,
      validate: (call, [userId]) => {
        requireUser(userId);
        return { userId };
      },
      succeed: ({ userId }) => {
        state.users.delete(userId);
        return { status: 200, body: {}, message: `Deleted user with userId : ${userId}` };
      },
    },
    {
      method: 'GET',
      pattern: /^\/enrollments\/(voice|face|video)\/([^/]+)$/,
      validate: (call, [modality, userId]) => ({ modality, userId, user: requireUser(userId) }),
      succeed: ({ modality, userId, user }) => {
        const list = user[modality].map((record) => publicEnrollment(modality, record));
        return {
          status: 200,
          body: { count: list.length, [`${modality}Enrollments`]: list },
          message: `Successfully got all ${modality} enrollments for user with userId : ${userId}`,
        };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/enrollments\/([^/]+)\/all$/,
      validate: (call, [userId]) => ({ userId, user: requireUser(userId) }),
      succeed: ({ userId, user }) => {
        user.voice.length = 0;
        user.face.length = 0;
        user.video.length = 0;
        const message = `All enrollments for user with userId : ${userId} were deleted`;
        return { status: 200, body: {}, message };
      },
    },
    {
      method: 'POST',
      pattern: /^\/enrollments\/(voice|face|video)$/,
      validate: (call, [modality]) => readModalityForm(call, modality),
      succeed: (plan) => enroll(plan),
    },
    {
      method: 'POST',
      pattern: /^\/verification\/(voice|face|video)$/,
      validate: (call, [modality]) => {
        const plan = readModalityForm(call, modality);
        requireEnoughEnrollments(plan.user, modality);
        return plan;
      },
      succeed: ({ values, modality }) => ({
        status: 200,
        body: verificationKeys(modality, values, true),
        message: `Successfully verified ${modality} for user with userId : ${values.userId}`,
      }),
      // A forced FAIL keeps the per-call keys, with a confidence too low to pass.
      failKeys: ({ values, modality }, code) =>
        code === 'FAIL' ? verificationKeys(modality, values, false) : {},
    },
  ];
}

const AUDIO_PROMPTS = {
  passed: 'LIVENESS_SUCCESS.wav',
  retry: 'LIVENESS_TRY_AGAIN.wav',
  failed: 'LIVENESS_FAILED.wav',
};

/** The four keys every liveness verification answer carries (no responseCode, see B9). */
function livenessResult(result, uiMessage) {
  return {
    success: result === 'passed',
    retry: result === 'retry',
    uiMessage,
    audioPrompt: AUDIO_PROMPTS[result],
  };
}

/** The liveness server routes; same validate/succeed split, bodies without responseCode. */
function createLivenessRoutes(ctx) {
  const { state, contentLanguages } = ctx;

  const badRequest = (message) =>
    new LivenessRejection(400, { message, ...livenessResult('failed', message) });
  const refused = (uiMessage) => new LivenessRejection(200, livenessResult('failed', uiMessage));

  function readLivenessForm(call, fields) {
    if (!call.form.isMultipart) {
      throw badRequest('the body must be multipart/form-data with a boundary');
    }
    if (call.form.error) throw badRequest(call.form.error);

    const values = call.form.fields;
    const missing = fields.filter((name) => (values[name] ?? '').trim() === '');
    if (!call.form.fileBytes.has('file')) missing.push('file');
    if (missing.length > 0) throw badRequest(`missing parameters: ${missing.join(', ')}`);

    if (!USER_ID_SHAPE.test(values.userId)) throw badRequest(`invalid userId "${values.userId}"`);
    const { contentLanguage } = values;
    if (contentLanguage !== undefined && !contentLanguages.includes(contentLanguage)) {
      throw badRequest(`invalid contentLanguage "${contentLanguage}"`);
    }
    if (!isRecognisedMedia(call.form.fileBytes.get('file'))) {
      throw badRequest('incorrectly formatted video data in file part "file"');
    }
    return values;
  }

  // The lcoId must have been issued by this server for this very user: a challenge obtained
  // for one account cannot be answered with another account's face.
  function requireChallenge(values) {
    const user = state.users.get(values.userId);
    if (!user) throw refused(`User with userId : ${values.userId} not found`);

    const challenge = state.lcos.get(values.lcoId);
    if (!challenge || challenge.userId !== values.userId) {
      throw refused('Unknown liveness challenge, please start again');
    }
    return user;
  }

  function verifyWithLiveness(modality) {
    const fields = modality === 'face' ? ['userId', 'lcoId'] : ['userId', 'lcoId', 'phrase'];
    return {
      method: 'POST',
      pattern: new RegExp(`^/v1/verification/${modality}$`),
      validate: (call) => {
        const values = readLivenessForm(call, fields);
        const user = requireChallenge(values);
        const enough =
          modality === 'face'
            ? user.face.length + user.video.length >= 1
            : user.video.length >= 3;
        if (!enough) {
          state.lcos.delete(values.lcoId);
          throw refused(`Not enough ${modality} enrollments for liveness verification`);
        }
        return values;
      },
      succeed: (values) => {
        state.lcos.delete(values.lcoId);
        return { status: 200, body: livenessResult('passed', 'Verification successful') };
      },
      fail: (values, retry) => {
        if (!retry) state.lcos.delete(values.lcoId);
        const body = retry
          ? livenessResult('retry', 'Liveness check failed, please try again')
          : livenessResult('failed', 'Liveness check failed');
        return { status: 200, body };
      },
    };
  }

  return [
    {
      method: 'GET',
      pattern: /^\/v1\/verification\/([^/]+)\/([^/]+)$/,
      validate: (call, [userId, contentLanguage]) => {
        const refuse = (status, message) =>
          new LivenessRejection(status, { success: false, message });
        if (!USER_ID_SHAPE.test(userId)) throw refuse(400, `invalid userId "${userId}"`);
        if (!contentLanguages.includes(contentLanguage)) {
          throw refuse(400, `invalid contentLanguage "${contentLanguage}"`);
        }
        if (!state.users.has(userId)) throw refuse(200, `User with userId : ${userId} not found`);
        return { userId, contentLanguage };
      },
      succeed: ({ userId, contentLanguage }) => {
        const lco = pickChallenges();
        const lcoId = randomUUID();
        state.lcos.set(lcoId, { userId, contentLanguage, lco, issuedAt: Date.now() });
        return {
          status: 200,
          body: {
            success: true,
            message: `Liveness challenge issued for user with userId : ${userId}`,
            lcoId,
            lco,
            lcoStrings: lco.map((code) => LIVENESS_CHALLENGES[code]),
            livenessChallengeTime: lco.length * SECONDS_PER_CHALLENGE,
            uiLivenessInstruction: 'Keep your face in frame and follow each prompt',
          },
        };
      },
      fail: () => ({
        status: 200,
        body: { success: false, message: 'Could not create a liveness challenge' },
      }),
    },
    verifyWithLiveness('face'),
    verifyWithLiveness('video'),
  ];
}

/** Two or three distinct challenge codes in random order. */
function pickChallenges() {
  const pool = Object.keys(LIVENESS_CHALLENGES);
  const count = randomInt(2, 4);
  const picked = [];
  while (picked.length < count) {
    const code = pool.splice(randomInt(pool.length), 1)[0];
    picked.push(code);
  }
  return picked;
}

function findRoute(routes, method, path) {
  for (const route of routes) {
    const match = route.pattern.exec(path);
    if (match && route.method === method) {
      return { route, params: match.slice(1).map((p) => decodeURIComponent(p)) };
    }
  }
  return null;
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(`http://127.0.0.1:${server.address().port}`);
    });
  });
}

function closeServer(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Starts the two stand-in servers on 127.0.0.1.
 * Returns { apiUrl, livenessUrl, state, failNext(spec), received, reset(), close() }.
 */
export async function startVoiceItStandin({
  apiKey,
  apiToken,
  apiPort = 0,
  livenessPort = 0,
  contentLanguages = DEFAULT_CONTENT_LANGUAGES,
} = {}) {
  const nonEmpty = (value) => typeof value === 'string' && value !== '';
  if (!nonEmpty(apiKey) || !nonEmpty(apiToken)) {
    throw new TypeError('startVoiceItStandin needs a non-empty apiKey and apiToken');
  }

  const state = { users: new Map(), lcos: new Map() };
  const received = [];
  const faults = createFaultQueue();
  const pendingDelays = new Set();
  let enrollmentCounter = 0;

  const ctx = {
    state,
    contentLanguages: [...contentLanguages],
    nextEnrollmentId: () => {
      enrollmentCounter += 1;
      return enrollmentCounter;
    },
  };
  const apiRoutes = createApiRoutes(ctx);
  const livenessRoutes = createLivenessRoutes(ctx);

  function sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        pendingDelays.delete(timer);
        resolve();
      }, ms);
      pendingDelays.add(timer);
    });
  }

  function reset() {
    state.users.clear();
    state.lcos.clear();
    received.length = 0;
    faults.clear();
    enrollmentCounter = 0;
  }

  function summary() {
    const users = [...state.users].map(([userId, u]) => ({
      userId,
      voice: u.voice.length,
      face: u.face.length,
      video: u.video.length,
    }));
    return {
      users,
      livenessChallenges: state.lcos.size,
      queuedFaults: faults.pending(),
      received: received.length,
    };
  }

  async function recordCall(host, req, url, bytes) {
    const form = await parseMultipart(req.headers['content-type'], bytes);
    const lengthHeader = req.headers['content-length'];
    const record = {
      host,
      method: req.method,
      path: url.pathname,
      query: url.search,
      headers: { ...req.headers },
      fields: { ...form.fields },
      files: form.files,
      contentLength: lengthHeader === undefined ? null : Number(lengthHeader),
      response: null,
    };
    received.push(record);
    return { host, method: req.method, path: url.pathname, form, record };
  }

  function answer(res, record, status, contentType, payload) {
    const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
    record.response = { status, body: payload };
    sendBody(res, status, contentType, text);
  }

  // Infrastructure faults look like a proxy in front of VoiceIt: HTML bodies, not JSON.
  async function applyInfrastructureFault(fault, res, record) {
    if (fault.delayMs > 0) await sleep(fault.delayMs);
    if (fault.kind === 'http5xx') {
      const page = `<html><body><h1>${fault.http5xx} Service Unavailable</h1></body></html>`;
      answer(res, record, fault.http5xx, 'text/html', page);
      return true;
    }
    if (fault.kind === 'garbage') {
      answer(res, record, 200, 'text/html', '<html><body>upstream proxy hiccup</body></html>');
      return true;
    }
    return false;
  }

  async function handleApiCall(req, res, url, bytes) {
    const started = performance.now();
    const call = await recordCall('api', req, url, bytes);
    const respond = (code, message, extra = {}, status = statusForCode(code)) => {
      const timeTaken = `${((performance.now() - started) / 1000).toFixed(3)}s`;
      const apiCallId = randomHex(16);
      const body = { status, responseCode: code, message, ...extra, timeTaken, apiCallId };
      answer(res, call.record, status, JSON_TYPE, body);
    };

    if (!hasBasicAuth(req.headers, apiKey, apiToken)) {
      respond('UNAC', 'Unauthorized access: missing or wrong API key and token');
      return;
    }
    const found = findRoute(apiRoutes, req.method, url.pathname);
    if (!found) {
      respond('GERR', `No API route for ${req.method} ${url.pathname}`, {}, 404);
      return;
    }

    let plan;
    try {
      plan = found.route.validate(call, found.params);
    } catch (err) {
      if (!(err instanceof ApiRejection)) throw err;
      respond(err.code, err.message);
      return;
    }

    const fault = faults.take(call);
    if (fault && (await applyInfrastructureFault(fault, res, call.record))) return;
    if (fault?.kind === 'code') {
      const extra = found.route.failKeys?.(plan, fault.code) ?? {};
      const message = FORCED_MESSAGES[fault.code] ?? `Forced response code ${fault.code}`;
      respond(fault.code, message, extra);
      return;
    }

    const outcome = found.route.succeed(plan);
    respond('SUCC', outcome.message, outcome.body, outcome.status);
  }

  async function handleLivenessCall(req, res, url, bytes) {
    const call = await recordCall('liveness', req, url, bytes);
    const respond = (status, body) => answer(res, call.record, status, JSON_TYPE, body);

    if (!hasBasicAuth(req.headers, apiKey, apiToken)) {
      respond(401, { success: false, message: 'Unauthorized: missing or wrong API key and token' });
      return;
    }
    const found = findRoute(livenessRoutes, req.method, url.pathname);
    if (!found) {
      const message = `No liveness route for ${req.method} ${url.pathname}`;
      respond(404, { success: false, message });
      return;
    }

    let plan;
    try {
      plan = found.route.validate(call, found.params);
    } catch (err) {
      if (!(err instanceof LivenessRejection)) throw err;
      respond(err.status, err.body);
      return;
    }

    const fault = faults.take(call);
    if (fault && (await applyInfrastructureFault(fault, res, call.record))) return;
    const outcome =
      fault?.kind === 'liveness' ? found.route.fail(plan, fault.retry) : found.route.succeed(plan);
    respond(outcome.status, outcome.body);
  }

  // Control routes for the sandbox UI; never recorded in `received` and need no auth.
  async function handleControl(req, res, url, bytes) {
    const route = `${req.method} ${url.pathname}`;
    if (route === `POST ${CONTROL_PREFIX}fail-next`) {
      let spec;
      try {
        spec = JSON.parse(bytes.toString('utf8'));
        sendJson(res, 200, { queued: faults.push(spec) });
      } catch (err) {
        sendJson(res, 400, { error: 'invalid_fault_spec', message: err.message });
      }
      return;
    }
    if (route === `GET ${CONTROL_PREFIX}state`) {
      sendJson(res, 200, summary());
      return;
    }
    if (route === `POST ${CONTROL_PREFIX}reset`) {
      reset();
      sendJson(res, 200, { reset: true });
      return;
    }
    const message = `No control route for ${route}`;
    sendJson(res, 404, { error: 'unknown_control_route', message });
  }

  function serve(handle, allowControl) {
    return http.createServer(async (req, res) => {
      try {
        const { bytes, tooLarge } = await readBody(req);
        const url = new URL(req.url, 'http://127.0.0.1');
        if (allowControl && url.pathname.startsWith(CONTROL_PREFIX)) {
          await handleControl(req, res, url, bytes);
        } else if (tooLarge) {
          const message = 'Request body too large';
          sendJson(res, 413, { status: 413, responseCode: 'GERR', message });
        } else {
          await handle(req, res, url, bytes);
        }
      } catch (err) {
        // A stand-in bug must surface as a loud 500, never as a hang.
        if (!res.headersSent) sendJson(res, 500, { error: 'standin_failure', message: err.stack });
        else res.destroy(err);
      }
    });
  }

  const apiServer = serve(handleApiCall, true);
  const livenessServer = serve(handleLivenessCall, false);
  const apiUrl = await listen(apiServer, apiPort);
  let livenessUrl;
  try {
    livenessUrl = await listen(livenessServer, livenessPort);
  } catch (err) {
    await closeServer(apiServer);
    throw err;
  }

  return {
    apiUrl,
    livenessUrl,
    state,
    received,
    failNext: (spec) => faults.push(spec),
    reset,
    async close() {
      for (const timer of pendingDelays) clearTimeout(timer);
      pendingDelays.clear();
      await Promise.all([closeServer(apiServer), closeServer(livenessServer)]);
    },
  };
}
