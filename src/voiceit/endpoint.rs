//! `POST /voiceit_token` and `POST /voiceit_endpoint`: the Web SDK backend, bound to the 2FA
//! session.
//!
//! The endpoint answers in the SDK's JSON (`responseCode`, `message`) with a meaningful HTTP
//! status, and it is where the outcome is decided: a verification counts only when VoiceIt
//! itself answered success for this session's user.

use super::client::{self, BackendError};
use super::protocol::{self, CallSettings, Phase, RequestType};
use crate::config::Config;
use crate::error::AppError;
use crate::http;
use crate::ledger::{self, Op};
use crate::limits::{Settlement, Verdict};
use crate::tokens::{self, Keys, Mode, TwoFactorSession};
use crate::twofa;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{web_sys, Env, Request, Response};

/// Bytes of multipart framing and text fields allowed on top of the recording itself.
const FORM_OVERHEAD_BYTES: u64 = 64 * 1024;
const MAX_FIELD_CHARS: usize = 4096;

/// A protocol answer the worker itself produces: the SDK's code, a sentence, a status.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// For the log only.
    pub detail: String,
    /// Seconds before another attempt may be made, when a limit says so.
    pub retry_after: Option<u32>,
}

fn refuse(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code,
        message: message.into(),
        detail: String::new(),
        retry_after: None,
    }
}

fn missing(what: &str) -> Refusal {
    refuse(
        400,
        "MISP",
        format!("The request is missing {what}. Record again and resend."),
    )
}

impl From<BackendError> for Refusal {
    fn from(e: BackendError) -> Self {
        Refusal {
            status: if e.timeout { 504 } else { 502 },
            code: "BERR",
            message: e.message().into(),
            detail: e.detail,
            retry_after: None,
        }
    }
}

impl From<worker::Error> for Refusal {
    fn from(e: worker::Error) -> Self {
        Refusal {
            detail: e.to_string(),
            ..refuse(500, "BERR", "Something went wrong on our side. Try again.")
        }
    }
}

fn too_large(max_bytes: u64) -> Refusal {
    refuse(
        413,
        "MISP",
        format!(
            "The recording is larger than the {} MB allowed. Record a shorter clip.",
            max_bytes / 1_000_000
        ),
    )
}

/// An invalid session or secure token; the SDK shows "access denied" for `INVT`.
fn invalid_token(detail: String) -> Refusal {
    Refusal {
        detail,
        ..refuse(
            401,
            "INVT",
            "This biometric session is not valid any more. Go back to the application and sign in again.",
        )
    }
}

impl Refusal {
    pub fn response(&self) -> worker::Result<Response> {
        let mut body = json!({
            "responseCode": self.code,
            "message": self.message,
            // The worker-wide error shape, beside the SDK's.
            "error": self.code.to_ascii_lowercase(),
        });
        if let Some(seconds) = self.retry_after {
            body["retryAfter"] = json!(seconds);
        }
        let mut response = http::json(self.status, &body)?;
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .set("retry-after", &seconds.to_string())?;
        }
        Ok(response)
    }
}

/// What a handler produced: the response, the session to store (if it changed), and the
/// outcome code for the log.
pub struct Handled {
    pub response: Response,
    pub outcome: String,
}

fn with_cookie(
    mut response: Response,
    session: Option<(&TwoFactorSession, &Keys)>,
    now: DateTime<Utc>,
) -> worker::Result<Response> {
    if let Some((s, keys)) = session {
        response
            .headers_mut()
            .set("set-cookie", &twofa::seal_cookie(s, keys, now))?;
    }
    Ok(response)
}

/// `POST /voiceit_token`: the secure token for this session's VoiceIt user, creating that
/// user once for an enrollment that has none. The id never comes from the request.
pub async fn token(
    req: &Request,
    env: &Env,
    config: &Config,
    own_origin: &str,
    now: DateTime<Utc>,
) -> Result<Handled, AppError> {
    let keys = twofa::keys(config)?;
    twofa::same_origin(req, own_origin)?;
    let mut session = twofa::current_session(req, &keys, now)?;

    let mut changed = false;
    let voiceit_id = match (&session.voiceit_id, session.mode) {
        (Some(id), _) => id.clone(),
        (None, Mode::Enroll) => {
            // The ledger grants one creation per session, so even simultaneous first calls
            // (each holding the same cookie) cannot create a second billable user.
            let op = Op::CreateUser {
                sid: session.sid.clone(),
            };
            if !ledger::granted(env, &session.sub, &op).await? {
                return Err(AppError::BadRequest {
                    code: "session_limit",
                    message: "This sign-in already set up its biometric profile. Reload the \
                              page; if it keeps failing, sign in again."
                        .into(),
                });
            }
            let id = client::create_user(config)
                .await
                .map_err(|e| AppError::Upstream {
                    code: "voiceit_unavailable",
                    message: e.message().into(),
                })?;
            session.voiceit_id = Some(id.clone());
            session.created_user = true;
            changed = true;
            id
        }
        (None, Mode::Verify) => {
            return Err(AppError::NoSession {
                reason: "verify session without a VoiceIt id".into(),
            })
        }
    };

    let token = tokens::issue_secure_token(&keys, &session, &voiceit_id, now);
    let body = json!({
        "token": token,
        "mode": session.mode.as_str(),
        "modality": config.modality.as_str(),
        "phrase": config.phrase,
        "contentLanguage": config.content_language,
        "liveness": config.liveness,
        "enrollmentsNeeded": protocol::enrollments_needed(config.modality),
    });
    let response = http::json(200, &body)?;
    let response = with_cookie(response, changed.then_some((&session, &keys)), now)?;
    Ok(Handled {
        response,
        outcome: if changed {
            "user_created"
        } else {
            "token_issued"
        }
        .into(),
    })
}

/// The single value of a text field: absent, or present exactly once and short.
fn text_field(form: &web_sys::FormData, name: &str) -> Result<Option<String>, Refusal> {
    let all = form.get_all(name);
    match all.length() {
        0 => Ok(None),
        1 => match all.get(0).as_string() {
            Some(v) if v.len() <= MAX_FIELD_CHARS => Ok(Some(v)),
            Some(_) => Err(refuse(
                400,
                "MISP",
                format!("The field {name} is too long."),
            )),
            None => Err(refuse(
                400,
                "MISP",
                format!("The field {name} must be text, not a file."),
            )),
        },
        _ => Err(refuse(
            400,
            "MISP",
            format!("The field {name} was sent more than once."),
        )),
    }
}

/// The recording in `field`: exactly one, a real file part, not empty, of the right media
/// family and within the size limit.
fn recording(
    form: &web_sys::FormData,
    field: &str,
    media: &str,
    max_bytes: u64,
) -> Result<web_sys::File, Refusal> {
    let all = form.get_all(field);
    if all.length() > 1 {
        return Err(refuse(
            400,
            "MISP",
            format!("The file {field} was sent more than once."),
        ));
    }
    let entry = all.get(0);
    if entry.is_undefined() || entry.is_null() {
        return Err(missing(&format!("the recording ({field})")));
    }
    // A part without a filename arrives as text (and binary bytes are already mangled).
    let file: web_sys::File = entry.dyn_into().map_err(|_: JsValue| {
        refuse(
            400,
            "MISP",
            format!("The recording {field} was sent without a filename; send it as a file."),
        )
    })?;
    if file.size() <= 0.0 {
        return Err(refuse(
            400,
            "MISP",
            format!("The recording {field} is empty. Record again."),
        ));
    }
    if file.size() > max_bytes as f64 {
        return Err(too_large(max_bytes));
    }
    let media_type = file.type_();
    if !media_type.starts_with(&format!("{media}/")) {
        return Err(refuse(
            400,
            "MISP",
            format!("The recording {field} must be {media}/…, not '{media_type}'."),
        ));
    }
    Ok(file)
}

fn valid_lco_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn unreadable_body(e: worker::Error) -> Refusal {
    Refusal {
        detail: e.to_string(),
        ..refuse(
            400,
            "MISP",
            "The multipart body could not be read (truncated or malformed). Send it again.",
        )
    }
}

/// The ledger could not be asked: no attempt can be counted, so none is forwarded.
fn ledger_down(e: AppError) -> Refusal {
    Refusal {
        detail: e.message(),
        ..refuse(
            503,
            "BERR",
            "The attempt counter cannot be reached, so no check can run now. Try again in a minute.",
        )
    }
}

/// Turns a ledger verdict into the answer the page shows: when to try again, or why not.
fn refuse_unless_allowed(verdict: Verdict) -> Result<(), Refusal> {
    match verdict {
        Verdict::Allowed => Ok(()),
        Verdict::Wait { retry_after_seconds } => Err(Refusal {
            status: 429,
            code: "WAIT",
            message: format!(
                "Too many failed attempts in a row. Wait {retry_after_seconds} seconds, then try again."
            ),
            detail: String::new(),
            retry_after: Some(retry_after_seconds),
        }),
        Verdict::Locked => Err(refuse(
            403,
            "LOCK",
            "Biometric verification is locked after too many failed attempts. Ask the site's \
             operator to reset it.",
        )),
    }
}

/// `POST /voiceit_endpoint`.
pub async fn endpoint(
    req: &mut Request,
    env: &Env,
    config: &Config,
    own_origin: &str,
    now: DateTime<Utc>,
) -> Result<Handled, Refusal> {
    // Same-origin only: another site's page must not drive this user's session.
    twofa::same_origin(req, own_origin).map_err(|e| refuse(403, "INVT", e.message()))?;
    let keys = twofa::keys(config).map_err(|e| Refusal {
        detail: e.message(),
        ..refuse(
            500,
            "BERR",
            "The service is misconfigured. Tell the site's operator.",
        )
    })?;

    let content_type = req.headers().get("content-type")?.unwrap_or_default();
    let lowered = content_type.to_ascii_lowercase();
    if !lowered.starts_with("multipart/form-data") || !lowered.contains("boundary=") {
        return Err(refuse(
            415,
            "MISP",
            "The request must be multipart/form-data with a boundary, as the Web SDK sends it.",
        ));
    }
    // Refused before the body is read, so an oversized upload costs nothing and goes nowhere.
    let limit = config.max_upload_bytes + FORM_OVERHEAD_BYTES;
    if let Some(length) = req.headers().get("content-length")? {
        if length.parse::<u64>().map_or(true, |n| n > limit) {
            return Err(too_large(config.max_upload_bytes));
        }
    }

    // The body is read before any refusal, so a client never sees its upload cut off.
    let form: web_sys::FormData = match req.form_data().await {
        Ok(f) => JsValue::from(f).unchecked_into(),
        Err(e) => return Err(unreadable_body(e)),
    };
    let mut session = twofa::current_session(req, &keys, now)
        .map_err(|e| invalid_token(e.log_detail().unwrap_or_default().to_string()))?;

    let secure_token =
        text_field(&form, "viSecureToken")?.ok_or_else(|| missing("viSecureToken"))?;
    let claims =
        tokens::read_secure_token(&keys, &secure_token, &session, now).map_err(invalid_token)?;

    let type_name = text_field(&form, "viRequestType")?.ok_or_else(|| missing("viRequestType"))?;
    let request = RequestType::parse(&type_name)
        .ok_or_else(|| refuse(400, "IRT", "This request type is not known to the service."))?;
    let phase = Phase {
        mode: session.mode,
        modality: config.modality,
        liveness: config.liveness,
        created_user: session.created_user,
    };
    if !protocol::allowed(request, phase) {
        return Err(refuse(
            403,
            "IRT",
            format!(
                "{} is not allowed in this {} session.",
                request.name(),
                session.mode.as_str()
            ),
        ));
    }

    let user = claims.voiceit_id.as_str();
    if let RequestType::EnoughEnrollments(m) = request {
        let enough = client::has_enough_enrollments(config, user, m).await?;
        let body = json!({"responseCode": "SUCC", "message": "Enrollments counted.", "enoughEnrollments": enough});
        return Ok(Handled {
            response: http::json(200, &body)?,
            outcome: format!("enough_{enough}"),
        });
    }

    let settings = CallSettings {
        user_id: user,
        phrase: &config.phrase,
        content_language: &config.content_language,
    };
    let call = protocol::upstream_call(request, &settings)
        .ok_or_else(|| refuse(400, "IRT", "This request type is not forwarded."))?;
    let file = match call.file {
        Some(m) => Some(recording(
            &form,
            m.browser_field,
            m.media,
            config.max_upload_bytes,
        )?),
        None => None,
    };
    let lco_id = if call.needs_lco_id {
        let id = text_field(&form, "viLCOId")?.ok_or_else(|| missing("viLCOId"))?;
        if !valid_lco_id(&id) {
            return Err(refuse(400, "MISP", "The field viLCOId is malformed."));
        }
        Some(id)
    } else {
        None
    };

    // The upload allowance first: a refused upload must not leave an attempt begun.
    if file.is_some() {
        let op = Op::Upload {
            limits: config.limits,
            sid: session.sid.clone(),
        };
        let granted = ledger::granted(env, &session.sub, &op)
            .await
            .map_err(ledger_down)?;
        if !granted {
            return Err(refuse(
                429,
                "ACLR",
                "This sign-in has sent as many recordings as it may. Sign in again to start over.",
            ));
        }
    }
    if request.is_verification() {
        // The attempt takes its place in the run of failures before it is forwarded, so
        // attempts sent in parallel cannot all slip under the limit.
        let op = Op::BeginAttempt {
            limits: config.limits,
        };
        let answer = ledger::call(env, &session.sub, &op)
            .await
            .map_err(ledger_down)?;
        refuse_unless_allowed(ledger::verdict(&answer))?;
    }

    let forwarded = client::forward(config, &call, file.as_ref(), lco_id.as_deref()).await;
    if request.is_verification() {
        // Only an answer VoiceIt gave counts as an attempt; an outage counts for nobody.
        let how = match &forwarded {
            Ok(a) if protocol::succeeded(request, &a.body) => Settlement::Success,
            Ok(_) => Settlement::Failure,
            Err(_) => Settlement::NoAnswer,
        };
        let op = Op::SettleAttempt {
            limits: config.limits,
            how,
        };
        ledger::call(env, &session.sub, &op)
            .await
            .map_err(ledger_down)?;
    }
    let answer = forwarded?;
    let success = protocol::succeeded(request, &answer.body);
    let mut changed = false;
    if request.is_verification() && success && !session.verified {
        session.verified = true;
        changed = true;
    }

    let status = if success {
        200
    } else if (400..500).contains(&answer.status) {
        answer.status
    } else {
        // VoiceIt answered 2xx without success (FAIL, liveness refused): the check failed.
        422
    };
    let code = answer
        .body
        .get("responseCode")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            if success {
                "SUCC".into()
            } else {
                "FAIL".into()
            }
        });
    let response = with_cookie(
        http::json(status, &answer.body)?,
        changed.then_some((&session, &keys)),
        now,
    )?;
    Ok(Handled {
        response,
        outcome: format!("{}:{code}", request.name()),
    })
}
