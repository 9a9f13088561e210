//! CORS for `/api/*`: only the configured app origins, each echoed alone with `Vary: Origin`.
//! The 2FA routes never carry CORS headers: they are same-origin only.

use crate::error::AppError;
use worker::Response;

/// The origin to echo back, if `origin` is one of `allowed` (exact match, scheme and port
/// included). A list is never echoed whole: browsers reject a comma-joined value.
pub fn allowed_origin<'a>(origin: Option<&'a str>, allowed: &[String]) -> Option<&'a str> {
    let origin = origin?;
    allowed.iter().any(|a| a == origin).then_some(origin)
}

/// Adds the CORS headers of an `/api/*` response for `origin`.
pub fn decorate(
    response: &mut Response,
    origin: Option<&str>,
    allowed: &[String],
) -> worker::Result<()> {
    let h = response.headers_mut();
    h.append("vary", "Origin")?;
    if let Some(origin) = allowed_origin(origin, allowed) {
        h.set("access-control-allow-origin", origin)?;
        h.set("access-control-expose-headers", "www-authenticate")?;
    }
    Ok(())
}

/// The answer to a preflight: the methods and the one header the API reads, or a refusal.
pub fn preflight(origin: Option<&str>, allowed: &[String]) -> Result<Response, AppError> {
    if allowed_origin(origin, allowed).is_none() {
        return Err(AppError::BadRequest {
            code: "origin_not_allowed",
            message: "This API accepts calls from the configured app origins only (APP_ORIGINS)."
                .into(),
        });
    }
    let mut response = Response::empty()?.with_status(204);
    let h = response.headers_mut();
    h.set("access-control-allow-methods", "GET, HEAD, OPTIONS")?;
    h.set("access-control-allow-headers", "authorization")?;
    h.set("access-control-max-age", "600")?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Vec<String> {
        vec!["https://app.example".into(), "http://127.0.0.1:5173".into()]
    }

    #[test]
    fn only_an_exact_configured_origin_is_echoed() {
        assert_eq!(
            allowed_origin(Some("https://app.example"), &list()),
            Some("https://app.example")
        );
        assert_eq!(allowed_origin(Some("http://app.example"), &list()), None);
        assert_eq!(
            allowed_origin(Some("https://app.example.evil"), &list()),
            None
        );
        assert_eq!(allowed_origin(Some("null"), &list()), None);
        assert_eq!(allowed_origin(None, &list()), None);
        assert_eq!(allowed_origin(Some("https://app.example"), &[]), None);
    }
}
