//! The attempt ledger: a Durable Object per Auth0 user holding the `limits` records, because
//! limits need strongly consistent storage (KV and the rate-limiting binding are not).
//!
//! The worker talks to it with small JSON requests; if it cannot be reached, the caller fails
//! closed.

use crate::error::AppError;
use crate::limits::{self, Limits, SessionRecord, Settlement, UserRecord, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use worker::{
    durable_object, DurableObject, Env, Headers, Method, Request, RequestInit, Response, State,
};

pub const BINDING: &str = "ATTEMPTS";
const USER_KEY: &str = "user";
const SESSIONS_KEY: &str = "sessions";
const REDEEMED_KEY: &str = "redeemed";
const STARTED_KEY: &str = "started";
const COMPLETED_KEY: &str = "completed";
/// A user spends a few tokens an hour at most; more than this many unexpired is abuse.
const MAX_SPENT: usize = 256;
/// Session records older than this are dropped: a 2FA session lives ten minutes.
const SESSION_RECORD_MS: u64 = 60 * 60 * 1000;
const MAX_SESSION_RECORDS: usize = 16;

/// One message to the ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// May a verification be attempted now?
    Check { limits: Limits },
    /// Start a verification attempt if the limits allow; answers the verdict. An allowed
    /// attempt counts as a failure until it is settled.
    BeginAttempt { limits: Limits },
    /// How a begun attempt ended; answers the verdict that now holds.
    SettleAttempt { limits: Limits, how: Settlement },
    /// Use a session token once: true the first time its digest is seen.
    StartSession {
        token_digest: String,
        expires_ms: u64,
    },
    /// Close a 2FA session: true the first time, so one session completes once.
    CompleteSession { sid: String },
    /// Take one upload from the session's allowance.
    Upload { limits: Limits, sid: String },
    /// Take the session's one VoiceIt user creation.
    CreateUser { sid: String },
    /// Spend a result token: true the first time its `jti` is seen, false ever after (until
    /// it has expired, when it is refused anyway).
    Redeem { jti: String, expires_ms: u64 },
    /// Operator reset: forget every failure.
    Reset,
}

/// A short hex digest (128 bits of SHA-256), to name or remember something without storing it.
pub fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A stable, non-reversible name for a user: the ledger never stores the Auth0 id itself.
pub fn user_key(sub: &str) -> String {
    digest(&format!("auth0-voiceit-worker/user/{sub}"))
}

/// Sends `op` to the ledger of `sub`.
pub async fn call(env: &Env, sub: &str, op: &Op) -> Result<Value, AppError> {
    let unavailable = |why: String| AppError::Upstream {
        code: "limits_unavailable",
        message: format!(
            "The attempt counter cannot be reached, so no check can run now. Try again in a \
             minute. ({why})"
        ),
    };
    let namespace = env
        .durable_object(BINDING)
        .map_err(|e| unavailable(e.to_string()))?;
    let stub = namespace
        .id_from_name(&user_key(sub))
        .and_then(|id| id.get_stub())
        .map_err(|e| unavailable(e.to_string()))?;
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(serde_json::to_string(op).unwrap_or_default().into()));
    let request = Request::new_with_init("https://ledger/op", &init)?;
    let mut response = stub
        .fetch_with_request(request)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    if response.status_code() != 200 {
        return Err(unavailable(format!("status {}", response.status_code())));
    }
    response
        .json::<Value>()
        .await
        .map_err(|e| unavailable(e.to_string()))
}

/// Sends an op that answers yes or no (an allowance, a first use) and reads the answer.
pub async fn granted(env: &Env, sub: &str, op: &Op) -> Result<bool, AppError> {
    Ok(call(env, sub, op).await?["granted"] == json!(true))
}

/// The verdict in a ledger answer.
pub fn verdict(answer: &Value) -> Verdict {
    serde_json::from_value(answer.clone()).unwrap_or(Verdict::Locked)
}

#[durable_object]
pub struct AttemptLedger {
    state: State,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Sessions(Vec<(String, u64, SessionRecord)>);

impl AttemptLedger {
    async fn user(&self) -> worker::Result<UserRecord> {
        Ok(self
            .state
            .storage()
            .get(USER_KEY)
            .await?
            .unwrap_or_default())
    }

    async fn sessions(&self, now: u64) -> worker::Result<Sessions> {
        let mut s: Sessions = self
            .state
            .storage()
            .get(SESSIONS_KEY)
            .await?
            .unwrap_or_default();
        s.0.retain(|(_, at, _)| now.saturating_sub(*at) < SESSION_RECORD_MS);
        Ok(s)
    }

    /// Applies `change` to the session's record and stores it; answers what `change` said.
    async fn with_session(
        &self,
        sid: &str,
        now: u64,
        change: impl FnOnce(&mut SessionRecord) -> bool,
    ) -> worker::Result<bool> {
        let mut sessions = self.sessions(now).await?;
        if !sessions.0.iter().any(|(id, _, _)| id == sid) {
            sessions
                .0
                .push((sid.to_string(), now, SessionRecord::default()));
            let excess = sessions.0.len().saturating_sub(MAX_SESSION_RECORDS);
            sessions.0.drain(..excess);
        }
        let record = sessions
            .0
            .iter_mut()
            .find(|(id, _, _)| id == sid)
            .map(|(_, _, r)| r)
            .ok_or_else(|| worker::Error::RustError("session record vanished".into()))?;
        let allowed = change(record);
        self.state.storage().put(SESSIONS_KEY, &sessions).await?;
        Ok(allowed)
    }
}

impl AttemptLedger {
    /// Remembers `id` under `key` until `expires_ms`; true only the first time it is seen.
    async fn spend_once(
        &self,
        key: &str,
        id: String,
        expires_ms: u64,
        now: u64,
    ) -> worker::Result<bool> {
        let mut spent: Vec<(String, u64)> =
            self.state.storage().get(key).await?.unwrap_or_default();
        spent.retain(|(_, exp)| *exp > now);
        let fresh = !spent.iter().any(|(j, _)| *j == id) && spent.len() < MAX_SPENT;
        if fresh {
            spent.push((id, expires_ms));
            self.state.storage().put(key, &spent).await?;
        }
        Ok(fresh)
    }
}

impl DurableObject for AttemptLedger {
    fn new(state: State, _env: Env) -> Self {
        AttemptLedger { state }
    }

    // A Durable Object runs one request at a time per user, so each read-change-write here
    // is atomic: two parallel attempts cannot both slip under a limit.
    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let op: Op = match req.json().await {
            Ok(op) => op,
            Err(_) => return Response::error("bad ledger op", 400),
        };
        let now = worker::Date::now().as_millis();
        let answer = match op {
            Op::Check { limits } => json!(limits::check(&self.user().await?, &limits, now)),
            Op::BeginAttempt { limits } => {
                let mut record = self.user().await?;
                let verdict = limits::begin_attempt(&mut record, &limits, now);
                self.state.storage().put(USER_KEY, &record).await?;
                json!(verdict)
            }
            Op::SettleAttempt { limits, how } => {
                let mut record = self.user().await?;
                limits::settle(&mut record, how);
                self.state.storage().put(USER_KEY, &record).await?;
                json!(limits::check(&record, &limits, now))
            }
            Op::StartSession {
                token_digest,
                expires_ms,
            } => {
                let fresh = self
                    .spend_once(STARTED_KEY, token_digest, expires_ms, now)
                    .await?;
                json!({ "granted": fresh })
            }
            Op::CompleteSession { sid } => {
                let fresh = self
                    .spend_once(COMPLETED_KEY, sid, now + SESSION_RECORD_MS, now)
                    .await?;
                json!({ "granted": fresh })
            }
            Op::Upload { limits, sid } => {
                let allowed = self
                    .with_session(&sid, now, |s| limits::take_upload(s, &limits))
                    .await?;
                json!({ "granted": allowed })
            }
            Op::CreateUser { sid } => {
                let allowed = self
                    .with_session(&sid, now, limits::take_user_creation)
                    .await?;
                json!({ "granted": allowed })
            }
            Op::Redeem { jti, expires_ms } => {
                let fresh = self.spend_once(REDEEMED_KEY, jti, expires_ms, now).await?;
                json!({ "granted": fresh })
            }
            Op::Reset => {
                self.state
                    .storage()
                    .put(USER_KEY, UserRecord::default())
                    .await?;
                json!({ "reset": true })
            }
        };
        Response::from_json(&answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_are_stable_and_do_not_reveal_the_id() {
        let k = user_key("auth0|alice");
        assert_eq!(k, user_key("auth0|alice"));
        assert_ne!(k, user_key("auth0|bob"));
        assert_eq!(k.len(), 32);
        assert!(!k.contains("alice"));
    }

    #[test]
    fn ops_travel_as_tagged_json() {
        let op = Op::Upload {
            limits: Limits::default(),
            sid: "s1".into(),
        };
        let text = serde_json::to_string(&op).unwrap();
        assert!(text.contains("\"op\":\"upload\""));
        let back: Op = serde_json::from_str(&text).unwrap();
        assert!(matches!(back, Op::Upload { sid, .. } if sid == "s1"));
    }

    #[test]
    fn an_unreadable_verdict_reads_as_locked() {
        assert_eq!(verdict(&json!({"verdict": "allowed"})), Verdict::Allowed);
        assert_eq!(verdict(&json!({"nonsense": 1})), Verdict::Locked);
    }
}
