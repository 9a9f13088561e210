//! The worker's half of the Auth0 hand-off: `GET /2fa` starts a 2FA session from the Action's
//! session token, `POST /2fa/complete` ends it with a result token POSTed to `/continue`.
//!
//! The outcome in the result token comes only from what the worker itself saw from VoiceIt,
//! recorded in the signed session cookie; the browser relays it and cannot change it.

use crate::config::Config;
use crate::error::AppError;
use crate::http::{self, escape_html};
use crate::ledger::{self, Op};
use crate::limits::Verdict;
use crate::tokens::{self, Keys, Mode, Outcome, ResultClaims, TwoFactorSession};
use crate::voiceit::client;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use worker::{Env, Request, Response};

pub const SESSION_COOKIE: &str = "vi2fa_session";
/// Used session tokens are remembered this long: longer than any Auth0 lets one live (15 min).
const SESSION_TOKEN_MEMORY_MS: u64 = 16 * 60 * 1000;
/// Auth0's state is opaque but short; anything longer is not from Auth0.
const MAX_STATE_CHARS: usize = 2048;

/// Everything not unreserved (RFC 3986) is percent-encoded, so the state reaches `/continue`
/// byte for byte: `&`, `#`, `%`, `+` and non-ASCII text cannot change the query.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Both keys, or a config error naming the secret that is missing or weak.
pub fn keys(config: &Config) -> Result<Keys, AppError> {
    Ok(Keys::new(
        config.redirect_secret()?.expose(),
        config.session_secret()?.expose(),
    ))
}

pub fn random_id() -> Result<String, AppError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| AppError::Internal {
        detail: format!("no randomness: {e}"),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The `Set-Cookie` value for a sealed session.
pub fn session_cookie(value: &str, max_age_seconds: i64) -> String {
    format!(
        "{SESSION_COOKIE}={value}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age={max_age_seconds}"
    )
}

pub fn seal_cookie(session: &TwoFactorSession, keys: &Keys, now: DateTime<Utc>) -> String {
    let (value, expires) = session.seal(keys, now);
    session_cookie(&value, (expires - now).num_seconds().max(0))
}

/// Reads a cookie value from a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The 2FA session of this request, or `no_session` with the reason for the log.
pub fn current_session(
    req: &Request,
    keys: &Keys,
    now: DateTime<Utc>,
) -> Result<TwoFactorSession, AppError> {
    let header = req
        .headers()
        .get("cookie")
        .ok()
        .flatten()
        .unwrap_or_default();
    let value = cookie_value(&header, SESSION_COOKIE).ok_or(AppError::NoSession {
        reason: "no session cookie".into(),
    })?;
    TwoFactorSession::open(keys, value, now).map_err(|reason| AppError::NoSession { reason })
}

/// Refuses a state-changing request sent from another site. SameSite=Lax already keeps the
/// cookie off cross-site POSTs; this says so plainly instead of failing later.
///
/// `Sec-Fetch-Site` is read first: browsers send it whatever the referrer policy. `Origin`
/// is compared when it names an origin; under `Referrer-Policy: no-referrer` a same-origin
/// form POST carries `Origin: null`, which alone proves nothing either way.
pub fn same_origin(req: &Request, own_origin: &str) -> Result<(), AppError> {
    let header = |name| req.headers().get(name).ok().flatten();
    let from_site = header("sec-fetch-site");
    let origin = header("origin");
    let cross_site = matches!(from_site.as_deref(), Some(site) if site != "same-origin" && site != "none")
        || matches!(origin.as_deref(), Some(o) if o != "null" && o != own_origin);
    if cross_site {
        return Err(AppError::BadRequest {
            code: "cross_origin",
            message: "This request came from another site and was refused. Open the page from \
                      the application instead."
                .into(),
        });
    }
    Ok(())
}

/// `GET /2fa?state=…&session_token=…`: validates the Action's token and starts the session.
pub async fn start(
    req: &Request,
    env: &Env,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Response, AppError> {
    let keys = keys(config)?;
    let url = req.url()?;
    let mut state = None;
    let mut token = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "state" if state.is_none() => state = Some(v.into_owned()),
            "session_token" if token.is_none() => token = Some(v.into_owned()),
            // A second copy of either is a tampered link, not a choice to make.
            "state" | "session_token" => {
                return Err(AppError::NoSession {
                    reason: format!("duplicate {k}"),
                })
            }
            _ => {}
        }
    }
    let state = state
        .filter(|s| !s.is_empty() && s.len() <= MAX_STATE_CHARS)
        .ok_or(AppError::NoSession {
            reason: "missing or oversized state".into(),
        })?;
    let token = token.ok_or(AppError::NoSession {
        reason: "missing session_token".into(),
    })?;
    let handoff = tokens::read_session_token(&keys, &token, &config.auth0_domain, now)
        .map_err(|reason| AppError::NoSession { reason })?;

    // One redirect from the Action opens one 2FA session: replaying the link must not open
    // more (each could create a billable VoiceIt user and spend a fresh upload allowance).
    let op = Op::StartSession {
        token_digest: ledger::digest(&token),
        expires_ms: (now.timestamp_millis().max(0) as u64) + SESSION_TOKEN_MEMORY_MS,
    };
    if !ledger::granted(env, &handoff.user_id, &op).await? {
        return Err(AppError::NoSession {
            reason: "session token already used".into(),
        });
    }

    let session = TwoFactorSession::start(handoff, state, random_id()?);
    let cookie = seal_cookie(&session, &keys, now);
    // A redirect takes the token out of the address bar and the history.
    let mut response = Response::empty()?.with_status(303);
    response.headers_mut().set("location", "/biometric")?;
    response.headers_mut().set("set-cookie", &cookie)?;
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(response)
}

/// What the worker concludes from the session and, for an enrollment, from VoiceIt itself.
async fn decide(config: &Config, session: &TwoFactorSession) -> Result<Outcome, AppError> {
    match (session.mode, &session.voiceit_id) {
        (Mode::Verify, Some(_)) if session.verified => Ok(Outcome::Verified),
        (Mode::Enroll, Some(id)) => {
            // Enrolled only if VoiceIt, asked now by the worker, holds enough enrollments.
            match client::has_enough_enrollments(config, id, config.modality).await {
                Ok(true) => Ok(Outcome::Enrolled),
                Ok(false) => Ok(Outcome::Failed),
                Err(e) => Err(AppError::Upstream {
                    code: "voiceit_unavailable",
                    message: format!(
                        "{} Your enrollment is not lost until this page expires.",
                        e.message()
                    ),
                }),
            }
        }
        _ => Ok(Outcome::Failed),
    }
}

/// `POST /2fa/complete`: ends the session and hands the result to Auth0.
pub async fn complete(
    req: &Request,
    env: &Env,
    config: &Config,
    own_origin: &str,
    now: DateTime<Utc>,
) -> Result<(Response, Outcome), AppError> {
    let keys = keys(config)?;
    same_origin(req, own_origin)?;
    let session = current_session(req, &keys, now)?;
    let outcome = decide(config, &session).await?;
    // A verification that failed because the cap is reached says so, so the login is denied
    // with that message rather than a plain "failed".
    let reason = if outcome == Outcome::Failed && session.mode == Mode::Verify {
        let answer = ledger::call(
            env,
            &session.sub,
            &Op::Check {
                limits: config.limits,
            },
        )
        .await?;
        (ledger::verdict(&answer) == Verdict::Locked).then(|| "locked".to_string())
    } else {
        None
    };

    // Spent once everything else has been decided, so an error above leaves the session
    // usable for another try. The cookie is cleared below, but a copy of it must not
    // complete the session again.
    let op = Op::CompleteSession {
        sid: session.sid.clone(),
    };
    if !ledger::granted(env, &session.sub, &op).await? {
        return Err(AppError::NoSession {
            reason: "session already completed".into(),
        });
    }

    let amr = match outcome {
        Outcome::Failed => vec![],
        _ => config
            .modality
            .amr()
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let claims = ResultClaims {
        iss: own_origin.to_string(),
        sub: session.sub.clone(),
        state: session.state.clone(),
        jti: random_id()?,
        token_use: tokens::RESULT_TOKEN_USE.into(),
        outcome,
        voiceit_id: session.voiceit_id.clone(),
        amr,
        reason,
    };
    let result = tokens::issue_result_token(&keys, &claims, now);
    let action = continue_url(config, &session.state);

    let body = format!(
        "<h1>{}</h1>\n<p>Returning you to sign-in…</p>\n\
         <form id=\"continue\" method=\"post\" action=\"{}\">\n\
         <input type=\"hidden\" name=\"session_token\" value=\"{}\">\n\
         <button type=\"submit\">Continue to sign-in</button>\n</form>\n\
         <script src=\"/continue.js\"></script>",
        match outcome {
            Outcome::Verified => "Verified",
            Outcome::Enrolled => "Enrolled",
            Outcome::Failed => "Biometric check not passed",
        },
        escape_html(&action),
        escape_html(&result)
    );
    let mut response = http::html(200, http::page("Returning to sign-in", &body))?;
    // The session ends here: its cookie goes, so the same check cannot be completed twice.
    response
        .headers_mut()
        .set("set-cookie", &session_cookie("", 0))?;
    Ok((response, outcome))
}

#[derive(serde::Deserialize)]
struct RedeemRequest {
    token: String,
}

/// `POST /2fa/redeem` (from the Action, server to server): spends a result token. The first
/// call for a token answers `{"redeemed": true}`; any later one is `409 result_replayed`.
pub async fn redeem(
    req: &mut Request,
    env: &Env,
    config: &Config,
    own_origin: &str,
    now: DateTime<Utc>,
) -> Result<Response, AppError> {
    let keys = keys(config)?;
    let body: RedeemRequest = req.json().await.map_err(|_| AppError::BadRequest {
        code: "bad_request",
        message: "Send JSON {\"token\": \"<result token>\"}.".into(),
    })?;
    let refused = |_: String| AppError::Refused {
        code: "invalid_result_token",
        message: "This is not a valid result token of this worker.".into(),
    };
    let claims = tokens::read_result_token(&keys, &body.token, now).map_err(refused)?;
    if claims.custom.iss != own_origin {
        return Err(refused(String::new()));
    }
    let expires_ms = claims
        .expiration
        .map_or(0, |e| e.timestamp_millis().max(0) as u64);
    let op = Op::Redeem {
        jti: claims.custom.jti.clone(),
        expires_ms,
    };
    if !ledger::granted(env, &claims.custom.sub, &op).await? {
        return Err(AppError::Conflict {
            code: "result_replayed",
            message: "This biometric result was already used. Sign in again.".into(),
        });
    }
    Ok(http::json(200, &serde_json::json!({ "redeemed": true }))?)
}

/// `{AUTH0_BASE_URL}/continue?state=…`, from configuration only.
pub fn continue_url(config: &Config, state: &str) -> String {
    format!(
        "{}/continue?state={}",
        config.auth0_base_url.as_str().trim_end_matches('/'),
        utf8_percent_encode(state, QUERY_VALUE)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = "a=1; vi2fa_session=abc.def; vi2fa_session_x=no";
        assert_eq!(cookie_value(h, SESSION_COOKIE), Some("abc.def"));
        assert_eq!(cookie_value("x_vi2fa_session=1", SESSION_COOKIE), None);
        assert_eq!(cookie_value("", SESSION_COOKIE), None);
    }

    #[test]
    fn the_session_cookie_has_the_protective_attributes() {
        let c = session_cookie("v", 600);
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=600",
        ] {
            assert!(c.contains(attr), "{attr}");
        }
    }

    #[test]
    fn the_continue_url_encodes_the_state_byte_for_byte() {
        let config = Config::parse(|k| match k {
            "AUTH0_DOMAIN" => Some("example.us.auth0.com".into()),
            "AUTH0_CLIENT_ID" | "AUTH0_AUDIENCE" => Some("x".into()),
            _ => None,
        })
        .unwrap();
        let url = continue_url(&config, "a&b=c#d%e+f é/");
        assert_eq!(
            url,
            "https://example.us.auth0.com/continue?state=a%26b%3Dc%23d%25e%2Bf%20%C3%A9%2F"
        );
        let parsed = url::Url::parse(&url).unwrap();
        let state: Vec<_> = parsed.query_pairs().collect();
        assert_eq!(state.len(), 1);
        assert_eq!(state[0].1, "a&b=c#d%e+f é/");
    }
}
