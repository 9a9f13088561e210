//! Response building shared by every route: JSON bodies, HTML pages, and the error mapping.

use crate::error::AppError;
use worker::{Headers, Response};

/// A JSON response with the given status.
pub fn json(status: u16, body: &serde_json::Value) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json; charset=utf-8")?;
    headers.set("cache-control", "no-store")?;
    Ok(Response::ok(body.to_string())?
        .with_status(status)
        .with_headers(headers))
}

/// An HTML page with the given status. Pages never embed script: the CSP forbids inline code.
pub fn html(status: u16, page: String) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "text/html; charset=utf-8")?;
    headers.set("cache-control", "no-store")?;
    Ok(Response::ok(page)?
        .with_status(status)
        .with_headers(headers))
}

/// The JSON form of an error, as every API route answers it.
pub fn error_json(err: &AppError) -> worker::Result<Response> {
    let mut response = json(err.status(), &err.body())?;
    match err {
        AppError::MethodNotAllowed { allow } => {
            response.headers_mut().set("allow", allow)?;
        }
        AppError::InvalidToken { .. } => {
            response
                .headers_mut()
                .set("www-authenticate", "Bearer error=\"invalid_token\"")?;
        }
        AppError::MissingToken => {
            response.headers_mut().set("www-authenticate", "Bearer")?;
        }
        _ => {}
    }
    Ok(response)
}

/// The readable page the 2FA routes show instead of JSON, for a person in a browser.
pub fn error_page(err: &AppError) -> worker::Result<Response> {
    html(
        err.status(),
        page(
            "Biometric check unavailable",
            &format!(
                "<h1>We could not continue</h1>\n<p>{}</p>\n<p class=\"code\">Error code: {}</p>\n\
                 <p><a href=\"/\">Back to the application</a></p>",
                escape_html(&err.message()),
                err.code()
            ),
        ),
    )
}

/// A complete page around `body`, styled by the app's stylesheet.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"icon\" href=\"/favicon.svg\">\n<link rel=\"stylesheet\" href=\"/app.css\">\n</head>\n\
         <body>\n<main class=\"panel\">\n{body}\n</main>\n</body>\n</html>\n",
        escape_html(title)
    )
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape_html("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn pages_carry_no_inline_script() {
        let p = page("t", "<p>x</p>");
        assert!(!p.contains("<script"));
    }
}
