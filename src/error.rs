//! The worker's one error type, and the one place that turns it into a response.
//!
//! Every failure a handler can meet becomes an `AppError`: a stable snake_case code, an HTTP
//! status, and a sentence a person can act on. Nothing escapes as the runtime's bare 500.

use std::fmt;

/// A failure the worker reports to its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError {
    /// No route has this path.
    NotFound,
    /// The path exists but not for this method; `allow` lists the methods it has.
    MethodNotAllowed { allow: &'static str },
    /// A configuration var or secret is missing or malformed; names the var.
    Config { var: &'static str, problem: String },
    /// The request has no bearer token.
    MissingToken,
    /// The bearer token is not acceptable (any reason; the reason is logged, not shown).
    InvalidToken { reason: String },
    /// The Auth0 key set could not be fetched, so no token can be checked.
    AuthUnavailable,
    /// The 2FA session is missing, expired or was tampered with.
    NoSession { reason: String },
    /// The request is malformed in a way the caller can fix.
    BadRequest { code: &'static str, message: String },
    /// A credential other than an access token was refused (a result token, the admin key).
    Refused { code: &'static str, message: String },
    /// The request conflicts with what already happened (a token already spent).
    Conflict { code: &'static str, message: String },
    /// An upstream service failed; the 2FA cannot go on.
    Upstream { code: &'static str, message: String },
    /// Something the worker did not expect; details are logged, not shown.
    Internal { detail: String },
}

impl AppError {
    pub fn status(&self) -> u16 {
        match self {
            AppError::NotFound => 404,
            AppError::MethodNotAllowed { .. } => 405,
            AppError::Config { .. } => 500,
            AppError::MissingToken | AppError::InvalidToken { .. } | AppError::NoSession { .. } => {
                401
            }
            AppError::AuthUnavailable => 503,
            AppError::BadRequest { .. } => 400,
            AppError::Conflict { .. } => 409,
            AppError::Refused { .. } => 401,
            AppError::Upstream { .. } => 502,
            AppError::Internal { .. } => 500,
        }
    }

    /// The stable code clients and tests match on.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed { .. } => "method_not_allowed",
            AppError::Config { .. } => "config_error",
            AppError::MissingToken => "missing_token",
            AppError::InvalidToken { .. } => "invalid_token",
            AppError::AuthUnavailable => "auth_unavailable",
            AppError::NoSession { .. } => "no_session",
            AppError::BadRequest { code, .. }
            | AppError::Conflict { code, .. }
            | AppError::Refused { code, .. }
            | AppError::Upstream { code, .. } => code,
            AppError::Internal { .. } => "internal_error",
        }
    }

    /// The sentence shown to a person. Token and internal details stay out of it.
    pub fn message(&self) -> String {
        match self {
            AppError::NotFound => {
                "There is nothing at this address. Check the URL, or start from the home page /."
                    .into()
            }
            AppError::MethodNotAllowed { allow } => {
                format!("This address does not accept that method. Use {allow}.")
            }
            AppError::Config { var, problem } => format!(
                "The worker is misconfigured: {var} {problem}. Set it in wrangler.toml [vars] \
                 or as a secret (see README), then redeploy."
            ),
            AppError::MissingToken => {
                "Sign in first: this API needs an 'Authorization: Bearer <access token>' header."
                    .into()
            }
            AppError::InvalidToken { .. } => {
                "The access token is not valid for this API (expired, for another audience, or \
                 not signed by the tenant). Sign in again."
                    .into()
            }
            AppError::AuthUnavailable => {
                "The sign-in service cannot be reached right now, so nobody can be checked. \
                 Try again in a minute."
                    .into()
            }
            AppError::NoSession { .. } => {
                "This biometric check has no valid session: it expired or never started. \
                 Go back to the application and sign in again."
                    .into()
            }
            AppError::BadRequest { message, .. }
            | AppError::Conflict { message, .. }
            | AppError::Refused { message, .. }
            | AppError::Upstream { message, .. } => message.clone(),
            AppError::Internal { .. } => {
                "Something went wrong on our side. Try again; if it keeps happening, tell the \
                 site's operator."
                    .into()
            }
        }
    }

    /// What goes to the log beside the code: the reason a person is not shown.
    pub fn log_detail(&self) -> Option<&str> {
        match self {
            AppError::InvalidToken { reason } | AppError::NoSession { reason } => Some(reason),
            AppError::Internal { detail } => Some(detail),
            AppError::Config { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// The JSON body every error response carries.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code(), "message": self.message() })
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for AppError {}

impl From<worker::Error> for AppError {
    fn from(err: worker::Error) -> Self {
        AppError::Internal {
            detail: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_snake_case_code_and_a_sentence() {
        let all = [
            AppError::NotFound,
            AppError::MethodNotAllowed { allow: "GET" },
            AppError::Config {
                var: "AUTH0_DOMAIN",
                problem: "is missing".into(),
            },
            AppError::MissingToken,
            AppError::InvalidToken { reason: "x".into() },
            AppError::AuthUnavailable,
            AppError::NoSession { reason: "x".into() },
            AppError::BadRequest {
                code: "bad_request",
                message: "Fix it.".into(),
            },
            AppError::Upstream {
                code: "voiceit_unavailable",
                message: "Try later.".into(),
            },
            AppError::Conflict {
                code: "result_replayed",
                message: "Sign in again.".into(),
            },
            AppError::Refused {
                code: "invalid_admin_secret",
                message: "Use the configured ADMIN_SECRET.".into(),
            },
            AppError::Internal {
                detail: "boom".into(),
            },
        ];
        for err in all {
            let code = err.code();
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
            let message = err.message();
            assert!(message.ends_with('.'), "{message}");
            assert!((400..600).contains(&err.status()));
        }
    }

    #[test]
    fn statuses_match_the_documented_contract() {
        assert_eq!(AppError::NotFound.status(), 404);
        assert_eq!(AppError::MethodNotAllowed { allow: "GET" }.status(), 405);
        assert_eq!(AppError::MissingToken.status(), 401);
        assert_eq!(AppError::AuthUnavailable.status(), 503);
    }

    #[test]
    fn a_config_error_names_the_var() {
        let err = AppError::Config {
            var: "AUTH0_AUDIENCE",
            problem: "is missing".into(),
        };
        assert_eq!(err.code(), "config_error");
        assert!(err.message().contains("AUTH0_AUDIENCE"));
        assert_eq!(err.body()["error"], "config_error");
    }

    #[test]
    fn internal_details_and_token_reasons_stay_out_of_the_message() {
        let err = AppError::InvalidToken {
            reason: "kid abc unknown".into(),
        };
        assert!(!err.message().contains("abc"));
        let err = AppError::Internal {
            detail: "panicked at src/x.rs".into(),
        };
        assert!(!err.message().contains("src/"));
    }
}
