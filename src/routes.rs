//! The route table: which handler a method and path reach, as a plain function.
//!
//! Paths not in the table go to the static assets (GET and HEAD) or are not found. A known
//! path with another method gets a 405 naming the methods it has.

use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    PublicHeadline,
    PrivateHeadline,
    PublicConfig,
    StartTwoFactor,
    CompleteTwoFactor,
    /// The Action spends a result token here, so each one works once.
    RedeemResult,
    VoiceItToken,
    VoiceItEndpoint,
    /// The operator's reset of a user's attempt lock.
    ResetAttempts,
    /// A CORS preflight for one of the `/api/*` routes.
    ApiPreflight,
    /// Anything else: a file of the demo app, if there is one.
    Asset,
}

/// Finds the route for `method` and the raw `path`.
pub fn route(method: &str, path: &str) -> Result<Route, AppError> {
    let known: Option<(&'static str, Route)> = match path {
        "/api/public" => Some(("GET", Route::PublicHeadline)),
        "/api/private" => Some(("GET", Route::PrivateHeadline)),
        "/config.json" => Some(("GET", Route::PublicConfig)),
        "/2fa" => Some(("GET", Route::StartTwoFactor)),
        "/2fa/complete" => Some(("POST", Route::CompleteTwoFactor)),
        "/2fa/redeem" => Some(("POST", Route::RedeemResult)),
        "/voiceit_token" => Some(("POST", Route::VoiceItToken)),
        "/admin/attempts/reset" => Some(("POST", Route::ResetAttempts)),
        // The Web SDK posts to whatever path it was given; accept it with a trailing slash too.
        "/voiceit_endpoint" | "/voiceit_endpoint/" => Some(("POST", Route::VoiceItEndpoint)),
        _ => None,
    };

    match known {
        Some((allowed, route)) if method == allowed => Ok(route),
        Some(("GET", route)) if method == "HEAD" => Ok(route),
        Some((_, Route::PublicHeadline | Route::PrivateHeadline)) if method == "OPTIONS" => {
            Ok(Route::ApiPreflight)
        }
        Some(("GET", _)) => Err(AppError::MethodNotAllowed { allow: "GET, HEAD" }),
        Some(_) => Err(AppError::MethodNotAllowed { allow: "POST" }),
        None if method == "GET" || method == "HEAD" => Ok(Route::Asset),
        None => Err(AppError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_paths_reach_their_handlers() {
        assert_eq!(route("GET", "/api/public"), Ok(Route::PublicHeadline));
        assert_eq!(route("GET", "/api/private"), Ok(Route::PrivateHeadline));
        assert_eq!(route("GET", "/config.json"), Ok(Route::PublicConfig));
        assert_eq!(route("GET", "/2fa"), Ok(Route::StartTwoFactor));
        assert_eq!(route("POST", "/2fa/complete"), Ok(Route::CompleteTwoFactor));
        assert_eq!(route("POST", "/voiceit_token"), Ok(Route::VoiceItToken));
        assert_eq!(
            route("POST", "/voiceit_endpoint/"),
            Ok(Route::VoiceItEndpoint)
        );
    }

    #[test]
    fn a_wrong_method_is_405_with_the_allowed_ones() {
        assert_eq!(
            route("POST", "/api/public"),
            Err(AppError::MethodNotAllowed { allow: "GET, HEAD" })
        );
        assert_eq!(
            route("GET", "/voiceit_endpoint"),
            Err(AppError::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            route("DELETE", "/2fa"),
            Err(AppError::MethodNotAllowed { allow: "GET, HEAD" })
        );
    }

    #[test]
    fn unknown_paths_go_to_assets_or_are_not_found() {
        assert_eq!(route("GET", "/app.js"), Ok(Route::Asset));
        assert_eq!(route("GET", "/api/public/"), Ok(Route::Asset));
        assert_eq!(route("POST", "/nothing"), Err(AppError::NotFound));
    }

    #[test]
    fn preflight_is_answered_only_for_the_api() {
        assert_eq!(route("OPTIONS", "/api/private"), Ok(Route::ApiPreflight));
        assert!(route("OPTIONS", "/2fa").is_err());
    }
}
