//! The worker's configuration: Wrangler vars and secrets, read into one typed struct.
//!
//! Parsing is a plain function over a lookup, so it is tested natively. A malformed value is an
//! error at once; a secret that is absent is an error only where it is needed, so the public
//! pages keep working on a deployment that has not set the 2FA secrets yet.

use crate::error::AppError;
use crate::limits::Limits;
use url::Url;

/// How the browser records, and which VoiceIt calls that means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modality {
    Face,
    Voice,
    Video,
}

impl Modality {
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Face => "face",
            Modality::Voice => "voice",
            Modality::Video => "video",
        }
    }

    /// The `amr` values (RFC 8176) a check of this modality proves.
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            Modality::Face => &["face"],
            Modality::Voice => &["vbm"],
            Modality::Video => &["face", "vbm"],
        }
    }
}

/// A secret with a redacted `Debug`, so it never lands in a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Tenant host, e.g. `example.us.auth0.com`: the `iss` of Auth0's session tokens.
    pub auth0_domain: String,
    pub auth0_client_id: String,
    pub auth0_audience: String,
    /// Where the tenant is reached (`https://{domain}` unless a local tenant is configured).
    pub auth0_base_url: Url,
    /// Prefix of the custom claims the Action adds to access tokens.
    pub claim_namespace: String,
    pub jwks_cache_seconds: u32,
    pub voiceit_base_url: Url,
    pub voiceit_liveness_url: Url,
    pub modality: Modality,
    pub liveness: bool,
    pub phrase: String,
    pub content_language: String,
    pub max_upload_bytes: u64,
    /// How long the worker waits on VoiceIt or Auth0 before it gives up.
    pub upstream_timeout_ms: u32,
    pub limits: Limits,
    /// Origins other than the worker's own that may call `/api/*` from a browser.
    pub app_origins: Vec<String>,
    /// A line the app shows in its banner (the local sandbox says so there), and a link.
    pub app_notice: Option<String>,
    pub app_notice_url: Option<String>,
    redirect_secret: Option<Secret>,
    session_secret: Option<Secret>,
    voiceit_api_key: Option<Secret>,
    voiceit_api_token: Option<Secret>,
    admin_secret: Option<Secret>,
}

pub const DEFAULT_PHRASE: &str = "never forget tomorrow is a new day";
const MIN_SECRET_BYTES: usize = 32;

impl Config {
    /// Reads every var through `lookup` (the Worker env in production, a map in tests).
    pub fn parse(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, AppError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| {
            get(name).ok_or_else(|| AppError::Config {
                var: name,
                problem: "is missing".into(),
            })
        };

        let auth0_domain = required("AUTH0_DOMAIN")?;
        if auth0_domain.contains('/') || auth0_domain.contains(':') && !is_loopback(&auth0_domain) {
            return Err(malformed(
                "AUTH0_DOMAIN",
                "must be a host name such as example.us.auth0.com, without https:// or a path",
            ));
        }
        let auth0_base_url = match get("AUTH0_BASE_URL") {
            Some(v) => parse_base_url("AUTH0_BASE_URL", &v)?,
            None => parse_base_url("AUTH0_DOMAIN", &format!("https://{auth0_domain}"))?,
        };

        let modality = match get("VOICEIT_MODALITY").as_deref() {
            None | Some("video") => Modality::Video,
            Some("face") => Modality::Face,
            Some("voice") => Modality::Voice,
            Some(_) => {
                return Err(malformed(
                    "VOICEIT_MODALITY",
                    "must be face, voice or video",
                ))
            }
        };

        Ok(Config {
            auth0_domain,
            auth0_client_id: required("AUTH0_CLIENT_ID")?,
            auth0_audience: required("AUTH0_AUDIENCE")?,
            auth0_base_url,
            claim_namespace: get("AUTH0_CLAIM_NAMESPACE")
                .unwrap_or_else(|| "https://auth0-voiceit-worker/".into()),
            jwks_cache_seconds: parse_number(&get, "JWKS_CACHE_SECONDS", 600, 0, 86_400)?,
            voiceit_base_url: parse_base_url(
                "VOICEIT_BASE_URL",
                &get("VOICEIT_BASE_URL").unwrap_or_else(|| "https://api.voiceit.io".into()),
            )?,
            voiceit_liveness_url: parse_base_url(
                "VOICEIT_LIVENESS_URL",
                &get("VOICEIT_LIVENESS_URL")
                    .unwrap_or_else(|| "https://liveness.voiceit.io".into()),
            )?,
            modality,
            liveness: match get("VOICEIT_LIVENESS").as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(_) => return Err(malformed("VOICEIT_LIVENESS", "must be true or false")),
            },
            phrase: get("VOICEIT_PHRASE").unwrap_or_else(|| DEFAULT_PHRASE.into()),
            content_language: match get("VOICEIT_CONTENT_LANGUAGE") {
                None => "en-US".into(),
                Some(v) if is_language_tag(&v) => v,
                Some(_) => {
                    return Err(malformed(
                        "VOICEIT_CONTENT_LANGUAGE",
                        "must be a language tag such as en-US or no-STT",
                    ))
                }
            },
            max_upload_bytes: parse_number(
                &get,
                "MAX_UPLOAD_BYTES",
                20_000_000,
                1_000,
                100_000_000,
            )?,
            upstream_timeout_ms: parse_number(&get, "UPSTREAM_TIMEOUT_MS", 15_000, 100, 60_000)?,
            limits: Limits {
                free_failures: parse_number(&get, "ATTEMPT_FREE_FAILURES", 5, 1, 10)?,
                delay_seconds: parse_number(&get, "ATTEMPT_DELAY_SECONDS", 30, 30, 86_400)?,
                failure_cap: parse_number(&get, "ATTEMPT_FAILURE_CAP", 50, 1, 100)?,
                uploads_per_session: parse_number(&get, "UPLOADS_PER_SESSION", 12, 1, 100)?,
            },
            app_origins: parse_origins(get("APP_ORIGINS"))?,
            app_notice: get("APP_NOTICE"),
            app_notice_url: match get("APP_NOTICE_URL") {
                Some(u) if Url::parse(&u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) => {
                    Some(u)
                }
                Some(_) => return Err(malformed("APP_NOTICE_URL", "must be an http(s) URL")),
                None => None,
            },
            redirect_secret: get("REDIRECT_SECRET").map(Secret),
            session_secret: get("SESSION_SECRET").map(Secret),
            voiceit_api_key: get("VOICEIT_API_KEY").map(Secret),
            voiceit_api_token: get("VOICEIT_API_TOKEN").map(Secret),
            admin_secret: get("ADMIN_SECRET").map(Secret),
        })
    }

    /// The key shared with the Auth0 Action (session tokens in, result tokens out).
    pub fn redirect_secret(&self) -> Result<&Secret, AppError> {
        strong_secret("REDIRECT_SECRET", self.redirect_secret.as_ref())
    }

    /// The worker's own key (2FA session cookie, secure token). Never the redirect key: a token
    /// the Action signed must never pass as one the worker signed, nor the reverse.
    pub fn session_secret(&self) -> Result<&Secret, AppError> {
        let secret = strong_secret("SESSION_SECRET", self.session_secret.as_ref())?;
        if self.redirect_secret.as_ref() == Some(secret) {
            return Err(malformed(
                "SESSION_SECRET",
                "must differ from REDIRECT_SECRET",
            ));
        }
        Ok(secret)
    }

    /// HTTP Basic credentials for VoiceIt: key and token.
    pub fn voiceit_credentials(&self) -> Result<(&Secret, &Secret), AppError> {
        let missing = |var| AppError::Config {
            var,
            problem: "is missing".into(),
        };
        Ok((
            self.voiceit_api_key
                .as_ref()
                .ok_or_else(|| missing("VOICEIT_API_KEY"))?,
            self.voiceit_api_token
                .as_ref()
                .ok_or_else(|| missing("VOICEIT_API_TOKEN"))?,
        ))
    }

    /// The operator's key for the attempt-reset route; the route is closed without it.
    pub fn admin_secret(&self) -> Result<&Secret, AppError> {
        strong_secret("ADMIN_SECRET", self.admin_secret.as_ref())
    }

    /// `iss` of Auth0 access tokens: the tenant URL with its trailing slash.
    pub fn access_token_issuer(&self) -> String {
        format!("{}/", self.auth0_base_url.as_str().trim_end_matches('/'))
    }

    pub fn jwks_url(&self) -> String {
        format!(
            "{}/.well-known/jwks.json",
            self.auth0_base_url.as_str().trim_end_matches('/')
        )
    }

    /// The public part the browser needs, served at `/config.json`.
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "AUTH0_DOMAIN": self.auth0_domain,
            "AUTH0_CLIENT_ID": self.auth0_client_id,
            "AUTH0_AUDIENCE": self.auth0_audience,
            "AUTH0_BASE_URL": self.auth0_base_url.as_str().trim_end_matches('/'),
            "AUTH0_CLAIM_NAMESPACE": self.claim_namespace,
            "APP_NOTICE": self.app_notice,
            "APP_NOTICE_URL": self.app_notice_url,
        })
    }
}

fn malformed(var: &'static str, what: &str) -> AppError {
    AppError::Config {
        var,
        problem: what.into(),
    }
}

fn strong_secret<'a>(var: &'static str, value: Option<&'a Secret>) -> Result<&'a Secret, AppError> {
    match value {
        None => Err(AppError::Config {
            var,
            problem: "is missing".into(),
        }),
        Some(s) if s.0.len() < MIN_SECRET_BYTES => Err(malformed(
            var,
            "is shorter than 32 characters; use at least 32 random bytes",
        )),
        Some(s) => Ok(s),
    }
}

fn is_loopback(host: &str) -> bool {
    host.starts_with("127.0.0.1:") || host.starts_with("localhost:")
}

fn is_language_tag(v: &str) -> bool {
    v.len() <= 16 && !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn parse_base_url(var: &'static str, value: &str) -> Result<Url, AppError> {
    let url = Url::parse(value).map_err(|_| malformed(var, "is not a URL"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    // Plain http is only for stand-ins on this machine; anything remote must be https.
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(malformed(var, "must be an https:// URL"));
    }
    if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
        return Err(malformed(
            var,
            "must be an origin without a path, query or fragment",
        ));
    }
    Ok(url)
}

fn parse_origins(value: Option<String>) -> Result<Vec<String>, AppError> {
    let Some(value) = value else {
        return Ok(vec![]);
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let url = Url::parse(o).map_err(|_| {
                malformed(
                    "APP_ORIGINS",
                    "must list origins such as https://app.example, separated by commas",
                )
            })?;
            let origin = url.origin().ascii_serialization();
            if origin != o.trim_end_matches('/') {
                return Err(malformed(
                    "APP_ORIGINS",
                    "must list bare origins (scheme, host, port), no paths",
                ));
            }
            Ok(origin)
        })
        .collect()
}

fn parse_number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
    min: T,
    max: T,
) -> Result<T, AppError> {
    match get(var) {
        None => Ok(default),
        Some(v) => match v.parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(n),
            _ => Err(AppError::Config {
                var,
                problem: format!("must be a whole number from {min} to {max}"),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = [
            ("AUTH0_DOMAIN", "example.us.auth0.com"),
            ("AUTH0_CLIENT_ID", "client123"),
            ("AUTH0_AUDIENCE", "https://headlines.example"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    fn parse(m: &HashMap<String, String>) -> Result<Config, AppError> {
        Config::parse(|k| m.get(k).cloned())
    }

    fn config_var(err: AppError) -> &'static str {
        match err {
            AppError::Config { var, .. } => var,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_readme() {
        let c = parse(&vars(&[])).unwrap();
        assert_eq!(c.auth0_base_url.as_str(), "https://example.us.auth0.com/");
        assert_eq!(c.access_token_issuer(), "https://example.us.auth0.com/");
        assert_eq!(
            c.jwks_url(),
            "https://example.us.auth0.com/.well-known/jwks.json"
        );
        assert_eq!(c.voiceit_base_url.as_str(), "https://api.voiceit.io/");
        assert_eq!(
            c.voiceit_liveness_url.as_str(),
            "https://liveness.voiceit.io/"
        );
        assert_eq!(c.modality, Modality::Video);
        assert!(c.liveness);
        assert_eq!(c.content_language, "en-US");
        assert_eq!(c.max_upload_bytes, 20_000_000);
        assert_eq!(c.phrase, DEFAULT_PHRASE);
        assert_eq!(c.limits, Limits::default());
        assert!(c.app_origins.is_empty());
    }

    #[test]
    fn a_missing_required_var_is_named() {
        for var in ["AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_AUDIENCE"] {
            let mut m = vars(&[]);
            m.remove(var);
            assert_eq!(config_var(parse(&m).unwrap_err()), var);
        }
    }

    #[test]
    fn malformed_values_are_named() {
        let cases = [
            ("AUTH0_DOMAIN", "https://example.auth0.com"),
            ("AUTH0_BASE_URL", "not a url"),
            ("AUTH0_BASE_URL", "http://example.auth0.com"),
            ("VOICEIT_BASE_URL", "https://api.voiceit.io/v2"),
            ("VOICEIT_MODALITY", "fingerprint"),
            ("VOICEIT_LIVENESS", "yes"),
            ("VOICEIT_CONTENT_LANGUAGE", "en US"),
            ("MAX_UPLOAD_BYTES", "twenty"),
            ("MAX_UPLOAD_BYTES", "0"),
            ("JWKS_CACHE_SECONDS", "-5"),
            ("ATTEMPT_DELAY_SECONDS", "5"),
            ("ATTEMPT_FREE_FAILURES", "11"),
            ("ATTEMPT_FAILURE_CAP", "101"),
            ("APP_ORIGINS", "https://app.example/path"),
            ("APP_ORIGINS", "not an origin"),
        ];
        for (var, value) in cases {
            let err = parse(&vars(&[(var, value)])).unwrap_err();
            assert_eq!(config_var(err), var, "{var}={value}");
        }
    }

    #[test]
    fn loopback_stand_ins_may_use_plain_http() {
        let c = parse(&vars(&[
            ("AUTH0_BASE_URL", "http://127.0.0.1:9000"),
            ("VOICEIT_BASE_URL", "http://127.0.0.1:9001"),
        ]))
        .unwrap();
        assert_eq!(c.access_token_issuer(), "http://127.0.0.1:9000/");
        assert_eq!(c.jwks_url(), "http://127.0.0.1:9000/.well-known/jwks.json");
    }

    #[test]
    fn secrets_are_checked_where_they_are_needed() {
        let c = parse(&vars(&[])).unwrap();
        assert_eq!(
            config_var(c.redirect_secret().unwrap_err()),
            "REDIRECT_SECRET"
        );
        assert_eq!(
            config_var(c.session_secret().unwrap_err()),
            "SESSION_SECRET"
        );
        assert_eq!(
            config_var(c.voiceit_credentials().unwrap_err()),
            "VOICEIT_API_KEY"
        );

        let c = parse(&vars(&[("REDIRECT_SECRET", "short")])).unwrap();
        assert_eq!(
            config_var(c.redirect_secret().unwrap_err()),
            "REDIRECT_SECRET"
        );

        let same = "s".repeat(40);
        let c = parse(&vars(&[
            ("REDIRECT_SECRET", &same),
            ("SESSION_SECRET", &same),
        ]))
        .unwrap();
        assert!(c.redirect_secret().is_ok());
        assert_eq!(
            config_var(c.session_secret().unwrap_err()),
            "SESSION_SECRET"
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = parse(&vars(&[("REDIRECT_SECRET", &"k".repeat(40))])).unwrap();
        assert!(!format!("{c:?}").contains(&"k".repeat(40)));
    }

    #[test]
    fn public_json_holds_only_public_values() {
        let c = parse(&vars(&[("REDIRECT_SECRET", &"k".repeat(40))])).unwrap();
        let json = c.public_json().to_string();
        assert!(json.contains("client123"));
        assert!(!json.contains(&"k".repeat(40)));
    }
}
