//! The HS256 tokens that tie the login together, one kind each with its own key, `typ` and
//! validator:
//!
//! - the **session token** Auth0's Action sends in (`REDIRECT_SECRET`, `iss` = tenant host);
//! - the **2FA session** the worker keeps in a cookie (a key derived from `SESSION_SECRET`);
//! - the **secure token** the Web SDK protocol carries (another key derived from it);
//! - the **result token** the worker sends back to Auth0 (`REDIRECT_SECRET`, `token_use`).
//!
//! Every function takes `now`, so expiry is tested natively with a fixed clock.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::Sha256;

/// Tokens longer than this are refused unparsed: none of ours comes near it.
const MAX_TOKEN_CHARS: usize = 4096;
/// Clock skew tolerated between Auth0 and the worker.
const LEEWAY_SECONDS: i64 = 30;
pub const SESSION_MINUTES: i64 = 10;
pub const RESULT_MINUTES: i64 = 5;

const SESSION_TYP: &str = "vi2fa-session+jwt";
const SECURE_TYP: &str = "vi2fa-secure+jwt";
pub const RESULT_TOKEN_USE: &str = "2fa_result";

/// Why a token was refused. Logged, never shown to the user.
pub type Refusal = String;

/// Whether this login enrolls a new biometric profile or verifies an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enroll,
    Verify,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enroll => "enroll",
            Mode::Verify => "verify",
        }
    }
}

/// What the worker saw of the biometric check, as sent back to Auth0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Verified,
    Enrolled,
    Failed,
}

/// Signing keys, one per token kind. The worker's own two are derived from `SESSION_SECRET`
/// with distinct labels, so a cookie can never be replayed as a secure token or the reverse.
pub struct Keys {
    redirect: Hs256Key,
    session: Hs256Key,
    secure: Hs256Key,
}

impl Keys {
    pub fn new(redirect_secret: &str, session_secret: &str) -> Keys {
        Keys {
            redirect: Hs256Key::new(redirect_secret.as_bytes()),
            session: Hs256Key::new(derive(session_secret, "auth0-voiceit-worker/2fa-session")),
            secure: Hs256Key::new(derive(session_secret, "auth0-voiceit-worker/secure-token")),
        }
    }
}

fn derive(secret: &str, label: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn options(now: DateTime<Utc>) -> TimeOptions<impl Fn() -> DateTime<Utc>> {
    TimeOptions::new(Duration::seconds(LEEWAY_SECONDS), move || now)
}

fn sign<T: Serialize>(
    key: &Hs256Key,
    typ: Option<&str>,
    custom: T,
    issued: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> String {
    let header = match typ {
        Some(t) => Header::empty().with_token_type(t),
        None => Header::empty().with_token_type("JWT"),
    };
    let mut claims = Claims::new(custom);
    claims.issued_at = Some(issued);
    claims.expiration = Some(expires);
    Hs256
        .token(&header, &claims, key)
        .expect("serialising our own claims cannot fail")
}

/// Checks size, algorithm (HS256 only), signature, `typ` and expiry; then hands back claims.
fn verify<T: DeserializeOwned + Clone>(
    key: &Hs256Key,
    typ: Option<&str>,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Claims<T>, Refusal> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err("token too long".into());
    }
    let untrusted = UntrustedToken::new(token).map_err(|e| format!("malformed token: {e}"))?;
    // Pinning the algorithm stops `alg: none` and every algorithm-confusion trick.
    if untrusted.algorithm() != "HS256" {
        return Err(format!("algorithm {} refused", untrusted.algorithm()));
    }
    if let Some(expected) = typ {
        if untrusted.header().token_type.as_deref() != Some(expected) {
            return Err("wrong token type".into());
        }
    }
    let token = Hs256
        .validator::<T>(key)
        .validate(&untrusted)
        .map_err(|e| format!("signature or claims rejected: {e}"))?;
    let claims = token.claims().clone();
    claims
        .validate_expiration(&options(now))
        .map_err(|e| format!("expiry: {e}"))?;
    if claims.not_before.is_some() {
        claims
            .validate_maturity(&options(now))
            .map_err(|e| format!("not yet valid: {e}"))?;
    }
    Ok(claims)
}

/// A VoiceIt user id as VoiceIt issues them: `usr_` and 32 hex digits.
pub fn is_voiceit_user_id(id: &str) -> bool {
    id.len() == 36 && id.starts_with("usr_") && id[4..].bytes().all(|b| b.is_ascii_hexdigit())
}

// --- The session token, from Auth0 ---------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
struct SessionTokenClaims {
    iss: String,
    sub: String,
    #[serde(default)]
    voiceit_id: Option<String>,
    mode: Mode,
}

/// What the Action told the worker about this login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginHandoff {
    pub user_id: String,
    pub voiceit_id: Option<String>,
    pub mode: Mode,
}

/// Validates the `session_token` of `GET /2fa`: signed by the Action with `REDIRECT_SECRET`,
/// issued by this tenant (`iss` = `AUTH0_DOMAIN`), for a user, unexpired.
pub fn read_session_token(
    keys: &Keys,
    token: &str,
    tenant_host: &str,
    now: DateTime<Utc>,
) -> Result<LoginHandoff, Refusal> {
    let claims: Claims<SessionTokenClaims> = verify(&keys.redirect, None, token, now)?;
    let c = claims.custom;
    // A token minted by another tenant with the same secret must not start a session here.
    if c.iss != tenant_host {
        return Err("session token from another tenant".into());
    }
    if c.sub.is_empty() || c.sub.len() > 256 {
        return Err("session token has no user".into());
    }
    match (&c.mode, &c.voiceit_id) {
        (Mode::Verify, Some(id)) if is_voiceit_user_id(id) => {}
        (Mode::Enroll, None) => {}
        _ => return Err("session token mode and VoiceIt id disagree".into()),
    }
    Ok(LoginHandoff {
        user_id: c.sub,
        voiceit_id: c.voiceit_id,
        mode: c.mode,
    })
}

// --- The 2FA session, in a cookie ----------------------------------------------------------

/// One login's biometric check: whose it is, which Auth0 transaction it resumes, and what the
/// worker has seen so far. The browser holds it but cannot change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoFactorSession {
    /// Random id of this session; secure tokens name it, so they act for this session only.
    pub sid: String,
    pub sub: String,
    /// Auth0's redirect state, byte for byte as it arrived.
    pub state: String,
    pub mode: Mode,
    pub voiceit_id: Option<String>,
    /// The VoiceIt user was created during this session (so it may be wiped and re-enrolled).
    #[serde(default)]
    pub created_user: bool,
    /// VoiceIt answered success for this session's user.
    #[serde(default)]
    pub verified: bool,
    #[serde(skip)]
    pub expires: Option<DateTime<Utc>>,
}

impl TwoFactorSession {
    pub fn start(handoff: LoginHandoff, state: String, sid: String) -> TwoFactorSession {
        TwoFactorSession {
            sid,
            sub: handoff.user_id,
            state,
            mode: handoff.mode,
            voiceit_id: handoff.voiceit_id,
            created_user: false,
            verified: false,
            expires: None,
        }
    }

    /// Signs the session for its cookie. A re-signed session keeps its first expiry.
    pub fn seal(&self, keys: &Keys, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let expires = self
            .expires
            .unwrap_or(now + Duration::minutes(SESSION_MINUTES));
        (
            sign(&keys.session, Some(SESSION_TYP), self, now, expires),
            expires,
        )
    }

    pub fn open(keys: &Keys, token: &str, now: DateTime<Utc>) -> Result<TwoFactorSession, Refusal> {
        let claims: Claims<TwoFactorSession> =
            verify(&keys.session, Some(SESSION_TYP), token, now)?;
        let mut session = claims.custom;
        session.expires = claims.expiration;
        Ok(session)
    }
}

// --- The secure token of the Web SDK protocol ------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecureTokenClaims {
    pub sid: String,
    pub sub: String,
    pub state: String,
    pub mode: Mode,
    pub voiceit_id: String,
}

/// The `viSecureToken` for this session's VoiceIt user; it never outlives the session.
pub fn issue_secure_token(
    keys: &Keys,
    session: &TwoFactorSession,
    voiceit_id: &str,
    now: DateTime<Utc>,
) -> String {
    let limit = now + Duration::minutes(SESSION_MINUTES);
    let expires = session.expires.map_or(limit, |e| e.min(limit));
    let claims = SecureTokenClaims {
        sid: session.sid.clone(),
        sub: session.sub.clone(),
        state: session.state.clone(),
        mode: session.mode,
        voiceit_id: voiceit_id.to_string(),
    };
    sign(&keys.secure, Some(SECURE_TYP), claims, now, expires)
}

/// Validates a `viSecureToken` and checks it belongs to `session`: a token of one session (or
/// user) cannot act for another.
pub fn read_secure_token(
    keys: &Keys,
    token: &str,
    session: &TwoFactorSession,
    now: DateTime<Utc>,
) -> Result<SecureTokenClaims, Refusal> {
    let claims: Claims<SecureTokenClaims> = verify(&keys.secure, Some(SECURE_TYP), token, now)?;
    let c = claims.custom;
    if c.sid != session.sid || c.sub != session.sub || c.state != session.state {
        return Err("secure token of another session".into());
    }
    if c.mode != session.mode {
        return Err("secure token of another mode".into());
    }
    if session.voiceit_id.as_deref() != Some(c.voiceit_id.as_str()) {
        return Err("secure token of another VoiceIt user".into());
    }
    Ok(c)
}

// --- The result token, to Auth0 -------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultClaims {
    pub iss: String,
    pub sub: String,
    pub state: String,
    pub jti: String,
    pub token_use: String,
    pub outcome: Outcome,
    pub voiceit_id: Option<String>,
    pub amr: Vec<String>,
    /// Why a `failed` outcome failed, when the Action should tell the user something
    /// specific (`locked`: the attempt cap is reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The token `POST /2fa/complete` hands to Auth0's `/continue`, read by the Action's
/// `validateToken`: bound to the user, the transaction's state, and five minutes.
pub fn issue_result_token(keys: &Keys, claims: &ResultClaims, now: DateTime<Utc>) -> String {
    sign(
        &keys.redirect,
        None,
        claims,
        now,
        now + Duration::minutes(RESULT_MINUTES),
    )
}

/// Reads a result token back (for tests, and for the worker's own checks).
pub fn read_result_token(
    keys: &Keys,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Claims<ResultClaims>, Refusal> {
    let claims: Claims<ResultClaims> = verify(&keys.redirect, None, token, now)?;
    if claims.custom.token_use != RESULT_TOKEN_USE {
        return Err("not a result token".into());
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use chrono::TimeZone;

    const REDIRECT: &str = "redirect-secret-redirect-secret-0123456789";
    const SESSION: &str = "session-secret-session-secret-0123456789";
    const TENANT: &str = "example.us.auth0.com";
    const VOICEIT_ID: &str = "usr_0123456789abcdef0123456789abcdef";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
    }

    fn keys() -> Keys {
        Keys::new(REDIRECT, SESSION)
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    /// Signs arbitrary claims as the Action's `encodeToken` would (HS256, the redirect key).
    fn auth0_token(claims: serde_json::Value, secret: &str) -> String {
        let key = Hs256Key::new(secret.as_bytes());
        let header = Header::empty().with_token_type("JWT");
        let mut c = Claims::new(claims);
        c.issued_at = Some(now());
        c.expiration = Some(now() + Duration::minutes(5));
        Hs256.token(&header, &c, &key).unwrap()
    }

    fn enroll_claims() -> serde_json::Value {
        serde_json::json!({"iss": TENANT, "sub": "auth0|alice", "voiceit_id": null, "mode": "enroll", "ip": "127.0.0.1"})
    }

    #[test]
    fn a_valid_session_token_gives_the_handoff() {
        let t = auth0_token(enroll_claims(), REDIRECT);
        let h = read_session_token(&keys(), &t, TENANT, now()).unwrap();
        assert_eq!(h.user_id, "auth0|alice");
        assert_eq!(h.mode, Mode::Enroll);
        assert_eq!(h.voiceit_id, None);
    }

    #[test]
    fn a_verify_session_token_carries_a_voiceit_id() {
        let claims = serde_json::json!({"iss": TENANT, "sub": "auth0|bob", "voiceit_id": VOICEIT_ID, "mode": "verify"});
        let h = read_session_token(&keys(), &auth0_token(claims, REDIRECT), TENANT, now()).unwrap();
        assert_eq!(h.voiceit_id.as_deref(), Some(VOICEIT_ID));
    }

    #[test]
    fn session_tokens_are_refused_when_expired_tampered_or_foreign() {
        let t = auth0_token(enroll_claims(), REDIRECT);
        let later = now() + Duration::minutes(6);
        assert!(read_session_token(&keys(), &t, TENANT, later).is_err());
        assert!(read_session_token(&keys(), &t, "other.auth0.com", now()).is_err());
        let other_secret = auth0_token(enroll_claims(), "another-secret-another-secret-0123456789");
        assert!(read_session_token(&keys(), &other_secret, TENANT, now()).is_err());

        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        let mut tampered = enroll_claims();
        tampered["sub"] = "auth0|mallory".into();
        tampered["exp"] = (now().timestamp() + 300).into();
        parts[1] = b64(&tampered);
        assert!(read_session_token(&keys(), &parts.join("."), TENANT, now()).is_err());
    }

    #[test]
    fn session_tokens_need_exp_sub_and_a_consistent_mode() {
        let mut no_exp = enroll_claims();
        no_exp["exp"] = serde_json::Value::Null;
        let header = b64(&serde_json::json!({"alg": "HS256"}));
        let body = b64(&enroll_claims());
        let unsigned = format!("{header}.{body}.");
        assert!(read_session_token(&keys(), &unsigned, TENANT, now()).is_err());

        let mut c = enroll_claims();
        c["sub"] = "".into();
        assert!(read_session_token(&keys(), &auth0_token(c, REDIRECT), TENANT, now()).is_err());
        let mut c = enroll_claims();
        c["mode"] = "verify".into();
        assert!(read_session_token(&keys(), &auth0_token(c, REDIRECT), TENANT, now()).is_err());
        let mut c = enroll_claims();
        c["voiceit_id"] = VOICEIT_ID.into();
        assert!(read_session_token(&keys(), &auth0_token(c, REDIRECT), TENANT, now()).is_err());
        let mut c = enroll_claims();
        c["mode"] = "admin".into();
        assert!(read_session_token(&keys(), &auth0_token(c, REDIRECT), TENANT, now()).is_err());
    }

    #[test]
    fn alg_none_and_oversized_tokens_are_refused() {
        let header = b64(&serde_json::json!({"alg": "none", "typ": "JWT"}));
        let mut claims = enroll_claims();
        claims["exp"] = (now().timestamp() + 300).into();
        let t = format!("{header}.{}.", b64(&claims));
        assert!(read_session_token(&keys(), &t, TENANT, now())
            .unwrap_err()
            .contains("algorithm"));
        let huge = "a".repeat(MAX_TOKEN_CHARS + 1);
        assert!(read_session_token(&keys(), &huge, TENANT, now()).is_err());
    }

    fn session() -> TwoFactorSession {
        let h = LoginHandoff {
            user_id: "auth0|bob".into(),
            voiceit_id: Some(VOICEIT_ID.into()),
            mode: Mode::Verify,
        };
        TwoFactorSession::start(h, "st&#%é".into(), "sid-1".into())
    }

    #[test]
    fn a_sealed_session_opens_with_the_same_fields_and_keeps_its_expiry() {
        let (cookie, expires) = session().seal(&keys(), now());
        assert_eq!(expires, now() + Duration::minutes(SESSION_MINUTES));
        let opened = TwoFactorSession::open(&keys(), &cookie, now()).unwrap();
        assert_eq!(opened.state, "st&#%é");
        assert_eq!(opened.sub, "auth0|bob");
        let (_, again) = opened.seal(&keys(), now() + Duration::minutes(3));
        assert_eq!(again, expires);
        assert!(TwoFactorSession::open(&keys(), &cookie, now() + Duration::minutes(11)).is_err());
    }

    #[test]
    fn token_kinds_cannot_stand_in_for_each_other() {
        let s = session();
        let (cookie, _) = s.seal(&keys(), now());
        let secure = issue_secure_token(&keys(), &s, VOICEIT_ID, now());
        assert!(read_secure_token(&keys(), &cookie, &s, now()).is_err());
        assert!(TwoFactorSession::open(&keys(), &secure, now()).is_err());
        let handoff = auth0_token(enroll_claims(), REDIRECT);
        assert!(TwoFactorSession::open(&keys(), &handoff, now()).is_err());
        // A token the worker signs with the redirect key is never a session token either.
        let result = issue_result_token(&keys(), &result_claims(), now());
        assert!(read_session_token(&keys(), &result, TENANT, now()).is_err());
    }

    #[test]
    fn a_secure_token_acts_only_for_its_own_session_mode_and_user() {
        let s = session();
        let secure = issue_secure_token(&keys(), &s, VOICEIT_ID, now());
        assert!(read_secure_token(&keys(), &secure, &s, now()).is_ok());

        let mut other = s.clone();
        other.sid = "sid-2".into();
        assert!(read_secure_token(&keys(), &secure, &other, now()).is_err());
        let mut other = s.clone();
        other.mode = Mode::Enroll;
        assert!(read_secure_token(&keys(), &secure, &other, now()).is_err());
        let mut other = s.clone();
        other.voiceit_id = Some("usr_ffffffffffffffffffffffffffffffff".into());
        assert!(read_secure_token(&keys(), &secure, &other, now()).is_err());
        assert!(read_secure_token(&keys(), &secure, &s, now() + Duration::minutes(11)).is_err());
    }

    fn result_claims() -> ResultClaims {
        ResultClaims {
            iss: "https://2fa.example.workers.dev".into(),
            sub: "auth0|bob".into(),
            state: "st".into(),
            jti: "j1".into(),
            token_use: RESULT_TOKEN_USE.into(),
            outcome: Outcome::Verified,
            voiceit_id: Some(VOICEIT_ID.into()),
            amr: vec!["face".into(), "vbm".into()],
            reason: None,
        }
    }

    #[test]
    fn a_result_token_carries_the_claims_auth0_checks() {
        let t = issue_result_token(&keys(), &result_claims(), now());
        let claims = read_result_token(&keys(), &t, now()).unwrap();
        assert_eq!(claims.custom.outcome, Outcome::Verified);
        assert_eq!(claims.issued_at, Some(now()));
        assert_eq!(claims.expiration, Some(now() + Duration::minutes(5)));

        let body = t.split('.').nth(1).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        for claim in ["iss", "sub", "iat", "exp", "jti", "state", "outcome", "amr"] {
            assert!(json.get(claim).is_some(), "{claim} missing");
        }
        assert_eq!(json["outcome"], "verified");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_text_never_opens_as_any_token(text in ".{0,300}") {
                let s = session();
                prop_assert!(TwoFactorSession::open(&keys(), &text, now()).is_err());
                prop_assert!(read_secure_token(&keys(), &text, &s, now()).is_err());
                prop_assert!(read_session_token(&keys(), &text, TENANT, now()).is_err());
                prop_assert!(read_result_token(&keys(), &text, now()).is_err());
            }

            #[test]
            fn changing_any_character_of_a_sealed_session_breaks_it(
                index in 0usize..400, replacement in proptest::char::range('-', 'z'),
            ) {
                let (cookie, _) = session().seal(&keys(), now());
                let index = index % cookie.len();
                let original = cookie.as_bytes()[index] as char;
                prop_assume!(original != replacement);
                let mut edited: Vec<char> = cookie.chars().collect();
                edited[index] = replacement;
                let edited: String = edited.into_iter().collect();
                // Base64url has slack bits in its last character; an edit that decodes to the
                // same bytes is the same token, so only edits that change bytes must fail.
                if let Ok(opened) = TwoFactorSession::open(&keys(), &edited, now()) {
                    prop_assert_eq!(opened, TwoFactorSession::open(&keys(), &cookie, now()).unwrap());
                }
            }

            #[test]
            fn a_secure_token_never_serves_a_session_that_differs_in_sid_user_or_state(
                sid in "[a-f0-9]{1,32}", sub in "[a-z|0-9]{1,20}", state in ".{1,40}",
            ) {
                let s = session();
                let token = issue_secure_token(&keys(), &s, VOICEIT_ID, now());
                let mut other = s.clone();
                other.sid = sid;
                other.sub = sub;
                other.state = state;
                prop_assume!(other.sid != s.sid || other.sub != s.sub || other.state != s.state);
                prop_assert!(read_secure_token(&keys(), &token, &other, now()).is_err());
            }
        }
    }

    #[test]
    fn voiceit_ids_have_voiceit_shape() {
        assert!(is_voiceit_user_id(VOICEIT_ID));
        assert!(!is_voiceit_user_id("usr_123"));
        assert!(!is_voiceit_user_id(
            "../users/usr_0123456789abcdef012345678"
        ));
        assert!(!is_voiceit_user_id("usr_0123456789abcdef0123456789abcdeg"));
    }
}
