//! Calls to the VoiceIt API 2.0 and liveness servers over the Fetch API, with HTTP Basic auth.
//!
//! Every way a call can fail (unreachable, slow, 5xx, not JSON, our credentials refused) ends
//! as `BackendError`, which the endpoint reports as `BERR`: nothing here ever reads as success.

use super::protocol::{self, Host, UpstreamCall, UpstreamMethod};
use crate::config::{Config, Modality};
use crate::upstream::{self, UpstreamFailure};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use worker::wasm_bindgen::JsValue;
use worker::{web_sys, Headers, Method, Request, RequestInit};

/// VoiceIt gave no usable answer. `message` is for the person; `detail` for the log.
#[derive(Debug)]
pub struct BackendError {
    pub timeout: bool,
    pub detail: String,
}

impl BackendError {
    pub fn message(&self) -> &'static str {
        if self.timeout {
            "The biometric service took too long to answer. Wait a moment, then try again."
        } else {
            "The biometric service is unavailable right now. Wait a moment, then try again."
        }
    }
}

fn backend(detail: impl Into<String>) -> BackendError {
    BackendError {
        timeout: false,
        detail: detail.into(),
    }
}

impl From<UpstreamFailure> for BackendError {
    fn from(f: UpstreamFailure) -> Self {
        match f {
            UpstreamFailure::Timeout => BackendError {
                timeout: true,
                detail: "timeout".into(),
            },
            UpstreamFailure::Unreachable(why) => backend(format!("unreachable: {why}")),
        }
    }
}

impl From<worker::Error> for BackendError {
    fn from(e: worker::Error) -> Self {
        backend(e.to_string())
    }
}

/// An answer VoiceIt gave: its HTTP status and its JSON object.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

fn base_url(config: &Config, host: Host) -> String {
    let url = match host {
        Host::Api => &config.voiceit_base_url,
        Host::Liveness => &config.voiceit_liveness_url,
    };
    url.as_str().trim_end_matches('/').to_string()
}

fn auth_headers(config: &Config) -> Result<Headers, BackendError> {
    let (key, token) = config
        .voiceit_credentials()
        .map_err(|e| backend(e.message()))?;
    let headers = Headers::new();
    let basic = STANDARD.encode(format!("{}:{}", key.expose(), token.expose()));
    headers.set("authorization", &format!("Basic {basic}"))?;
    headers.set("accept", "application/json")?;
    Ok(headers)
}

async fn send(
    config: &Config,
    host: Host,
    method: Method,
    path: &str,
    body: Option<JsValue>,
) -> Result<Answer, BackendError> {
    let url = format!("{}{}", base_url(config, host), path);
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(auth_headers(config)?);
    // A FormData body gets its boundary and a Content-Length from the runtime.
    init.with_body(body);
    let request = Request::new_with_init(&url, &init)?;
    let timeout = config.upstream_timeout_ms;
    let mut response = upstream::send(request, timeout).await?;
    let status = response.status_code();
    let text = upstream::body_text(&mut response, timeout).await?;

    if status >= 500 {
        return Err(backend(format!("{path}: status {status}")));
    }
    if status == 401 || status == 403 {
        // VoiceIt refused our key and token: an operator problem, not the user's.
        return Err(backend(format!("{path}: credentials refused ({status})")));
    }
    let body: Value =
        serde_json::from_str(&text).map_err(|_| backend(format!("{path}: answer is not JSON")))?;
    if !body.is_object() {
        return Err(backend(format!("{path}: answer is not a JSON object")));
    }
    Ok(Answer { status, body })
}

/// Creates a VoiceIt user and returns its id.
pub async fn create_user(config: &Config) -> Result<String, BackendError> {
    let answer = send(config, Host::Api, Method::Post, "/users", None).await?;
    let id = answer.body.get("userId").and_then(Value::as_str);
    match id {
        Some(id) if answer.status == 201 || answer.status == 200 => {
            if crate::tokens::is_voiceit_user_id(id) {
                Ok(id.to_string())
            } else {
                Err(backend("created user id has an unexpected shape"))
            }
        }
        _ => Err(backend(format!(
            "user creation answered {} {}",
            answer.status,
            answer.body.get("responseCode").unwrap_or(&Value::Null)
        ))),
    }
}

/// Asks VoiceIt how many enrollments `user` has, and whether that is enough for `modality`.
pub async fn has_enough_enrollments(
    config: &Config,
    user: &str,
    modality: Modality,
) -> Result<bool, BackendError> {
    let (mut voice, mut face, mut video) = (0, 0, 0);
    for kind in protocol::enrollment_kinds(modality) {
        let path = format!("/enrollments/{}/{user}", kind.as_str());
        let answer = send(config, Host::Api, Method::Get, &path, None).await?;
        if answer.body.get("responseCode").and_then(Value::as_str) != Some("SUCC") {
            // An unknown user or any other refusal means: not enrolled.
            return Ok(false);
        }
        let count = answer
            .body
            .get("count")
            .and_then(Value::as_u64)
            .unwrap_or(0) as u32;
        match kind {
            Modality::Voice => voice = count,
            Modality::Face => face = count,
            Modality::Video => video = count,
        }
    }
    Ok(protocol::enough_enrollments(modality, voice, face, video))
}

/// Sends one planned call. `file` is the browser's recording, forwarded as it came.
pub async fn forward(
    config: &Config,
    call: &UpstreamCall,
    file: Option<&web_sys::File>,
    lco_id: Option<&str>,
) -> Result<Answer, BackendError> {
    let method = match call.method {
        UpstreamMethod::Get => Method::Get,
        UpstreamMethod::Post => Method::Post,
        UpstreamMethod::Delete => Method::Delete,
    };
    let body = match call.method {
        UpstreamMethod::Post => {
            let form = web_sys::FormData::new().map_err(|_| backend("FormData unavailable"))?;
            for (name, value) in &call.fields {
                form.append_with_str(name, value)
                    .map_err(|_| backend("cannot build the upstream form"))?;
            }
            if let Some(lco) = lco_id {
                form.append_with_str("lcoId", lco)
                    .map_err(|_| backend("cannot build the upstream form"))?;
            }
            if let (Some(mapping), Some(file)) = (call.file, file) {
                // The File object goes as it is: its bytes are never copied into wasm memory.
                form.append_with_blob_and_filename(
                    mapping.upstream_part,
                    file,
                    mapping.upstream_filename,
                )
                .map_err(|_| backend("cannot attach the recording"))?;
            }
            Some(JsValue::from(form))
        }
        _ => None,
    };
    send(config, call.host, method, &call.path, body).await
}
