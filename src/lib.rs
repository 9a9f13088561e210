//! auth0-voiceit-worker: a face and voice second factor for Auth0 logins, as one Worker.
//!
//! This file only wires requests to handlers, turns every error into its response, adds the
//! headers every response carries, and logs one line per request.

pub mod access_token;
pub mod admin;
pub mod api;
pub mod config;
pub mod cors;
pub mod error;
pub mod headline;
pub mod http;
pub mod jwks;
pub mod ledger;
pub mod limits;
pub mod routes;
pub mod tokens;
pub mod twofa;
pub mod upstream;
pub mod voiceit;

use config::Config;
use error::AppError;
use routes::Route;
use worker::{event, Context, Date, Env, Headers, Method, Request, RequestInit, Response};

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let started = Date::now().as_millis();
    // The raw method: the worker crate reads any method it does not know as GET.
    let method = req.inner().method();
    let path = req.path();
    let route = routes::route(&method, &path);
    let origin = req.headers().get("origin").ok().flatten();
    let config = config_of(&env);

    let route = match route {
        // Another method on a file of the app: 405 like any known path, not 404.
        Err(AppError::NotFound) if asset_exists(&req, &env).await => {
            Err(AppError::MethodNotAllowed { allow: "GET, HEAD" })
        }
        other => other,
    };

    let (response, outcome) = match (&route, &config) {
        (Err(err), _) => (http::error_json(err), err.code().to_string()),
        // The public headline and the app's files need no configuration at all.
        (Ok(r), Err(err)) if !matches!(r, Route::Asset | Route::PublicHeadline) => {
            (respond_error(*r, err), err.code().to_string())
        }
        (Ok(r), config) => handle(*r, &mut req, &env, config.as_ref().ok()).await,
    };

    drain_unread_body(&mut req).await;

    // The last line of defence: if even an error response could not be built, answer a
    // fixed JSON body rather than the runtime's bare 500.
    let mut response = match response {
        Ok(r) => r,
        Err(_) => Response::ok(r#"{"error":"internal_error","message":"Something went wrong on our side. Try again."}"#)?
            .with_status(500),
    };
    let is_page = matches!(
        route,
        Ok(Route::StartTwoFactor | Route::CompleteTwoFactor | Route::Asset)
    );
    add_common_headers(&mut response, config.as_ref().ok(), is_page)?;
    if matches!(
        route,
        Ok(Route::PublicHeadline | Route::PrivateHeadline | Route::ApiPreflight)
    ) {
        let allowed = config
            .as_ref()
            .map(|c| c.app_origins.as_slice())
            .unwrap_or(&[]);
        cors::decorate(&mut response, origin.as_deref(), allowed)?;
    }

    // An asset miss is answered by the worker's JSON 404; log it as such.
    let outcome = if route == Ok(Route::Asset) && response.status_code() == 404 {
        "not_found".to_string()
    } else {
        outcome
    };
    log_request(
        &method,
        &path,
        &route,
        response.status_code(),
        started,
        &outcome,
    );
    Ok(response)
}

thread_local! {
    static CONFIG: std::cell::OnceCell<Result<Config, AppError>> = const { std::cell::OnceCell::new() };
}

/// The parsed configuration. Bindings are fixed for an isolate's life (a new deploy or a
/// `wrangler dev` reload starts a new isolate), so they are read once, not on every request:
/// some thirty reads across the JS boundary were a large part of a request's CPU.
fn config_of(env: &Env) -> Result<Config, AppError> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| Config::parse(|name| env.var(name).ok().map(|v| v.to_string())))
            .clone()
    })
}

/// The error response a route gives: the 2FA pages show a readable page, the rest JSON.
fn respond_error(route: Route, err: &AppError) -> worker::Result<Response> {
    match route {
        Route::StartTwoFactor | Route::CompleteTwoFactor => http::error_page(err),
        Route::VoiceItEndpoint => voiceit::endpoint::Refusal {
            status: err.status(),
            code: "BERR",
            message: err.message(),
            detail: String::new(),
            retry_after: None,
        }
        .response(),
        _ => http::error_json(err),
    }
}

async fn handle(
    route: Route,
    req: &mut Request,
    env: &Env,
    config: Option<&Config>,
) -> (worker::Result<Response>, String) {
    let now = chrono::Utc::now();
    let origin = match req.url() {
        Ok(url) => url.origin().ascii_serialization(),
        Err(_) => String::new(),
    };
    let done = |r: Result<Response, AppError>, ok: &str| match r {
        Ok(resp) => (Ok(resp), ok.to_string()),
        Err(err) => {
            log_detail(&err);
            (respond_error(route, &err), err.code().to_string())
        }
    };
    match route {
        Route::Asset => return (serve_asset(req, env).await, "asset".into()),
        Route::PublicHeadline => return done(api::public_headline(), "ok"),
        _ => {}
    }
    // Every other route was checked to have a config before it got here.
    let Some(config) = config else {
        return done(
            Err(AppError::Internal {
                detail: "no config".into(),
            }),
            "",
        );
    };

    match route {
        Route::PublicConfig => done(api::public_config(config), "ok"),
        Route::PrivateHeadline => done(api::private_headline(req, config, now).await, "ok"),
        Route::ApiPreflight => {
            let origin = req.headers().get("origin").ok().flatten();
            done(
                cors::preflight(origin.as_deref(), &config.app_origins),
                "preflight",
            )
        }
        Route::ResetAttempts => done(admin::reset_attempts(req, env, config).await, "reset"),
        Route::StartTwoFactor => done(twofa::start(req, env, config, now).await, "session_started"),
        Route::CompleteTwoFactor => match twofa::complete(req, env, config, &origin, now).await {
            Ok((resp, outcome)) => (Ok(resp), format!("{outcome:?}").to_lowercase()),
            Err(err) => done(Err(err), ""),
        },
        Route::RedeemResult => done(
            twofa::redeem(req, env, config, &origin, now).await,
            "redeemed",
        ),
        Route::VoiceItToken => match voiceit::endpoint::token(req, env, config, &origin, now).await
        {
            Ok(h) => (Ok(h.response), h.outcome),
            Err(err) => done(Err(err), ""),
        },
        Route::VoiceItEndpoint => {
            match voiceit::endpoint::endpoint(req, env, config, &origin, now).await {
                Ok(h) => (Ok(h.response), h.outcome),
                Err(refusal) => {
                    if !refusal.detail.is_empty() {
                        worker::console_warn!(
                            "{}",
                            serde_json::json!({"event": "voiceit_refusal", "code": refusal.code, "detail": refusal.detail})
                        );
                    }
                    (refusal.response(), refusal.code.to_string())
                }
            }
        }
        Route::Asset | Route::PublicHeadline => unreachable!("answered above"),
    }
}

/// Whether the path names a file of the app (asked for methods other than GET and HEAD).
async fn asset_exists(req: &Request, env: &Env) -> bool {
    let Ok(url) = req.url() else { return false };
    let mut init = RequestInit::new();
    init.with_method(Method::Head);
    let Ok(probe) = Request::new_with_init(url.as_str(), &init) else {
        return false;
    };
    match env.assets("ASSETS") {
        Ok(assets) => matches!(assets.fetch_request(probe).await, Ok(r) if r.status_code() < 400),
        Err(_) => false,
    }
}

/// A file of the demo app through the assets binding; a miss is the worker's JSON 404.
async fn serve_asset(req: &Request, env: &Env) -> worker::Result<Response> {
    let url = req.url()?;
    let mut init = RequestInit::new();
    init.with_method(if req.method() == Method::Head {
        Method::Head
    } else {
        Method::Get
    });
    let asset_request = Request::new_with_init(url.as_str(), &init)?;
    let response = env.assets("ASSETS")?.fetch_request(asset_request).await?;
    if response.status_code() == 404 {
        return http::error_json(&AppError::NotFound);
    }
    // Fetched headers are immutable; a copy can take the security headers.
    let headers: Headers = response.headers().clone();
    Ok(response.with_headers(headers))
}

/// Reads and drops a request body no handler read (a refusal before parsing), so the client
/// is never cut off mid-upload. Bounded in bytes and time; chunks are dropped as they come.
async fn drain_unread_body(req: &mut Request) {
    use futures_util::StreamExt;
    const MAX_DRAIN_BYTES: usize = 128 * 1024 * 1024;
    if req.inner().body_used() || req.inner().body().is_none() {
        return;
    }
    let Ok(mut stream) = req.stream() else { return };
    let drain = Box::pin(async move {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > MAX_DRAIN_BYTES {
                break;
            }
        }
    });
    // A client that declares a body and never sends it must not hold the answer back.
    let deadline = Box::pin(worker::Delay::from(std::time::Duration::from_secs(3)));
    futures_util::future::select(drain, deadline).await;
}

fn add_common_headers(
    response: &mut Response,
    config: Option<&Config>,
    is_page: bool,
) -> worker::Result<()> {
    let h = response.headers_mut();
    h.set("x-content-type-options", "nosniff")?;
    // Pages of the 2FA flow carry tokens in their URLs; no referrer leaves this site.
    h.set("referrer-policy", "no-referrer")?;
    h.set(
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    )?;
    h.set("x-frame-options", "DENY")?;
    let is_html = h
        .get("content-type")?
        .is_some_and(|t| t.starts_with("text/html"));
    if is_page && is_html {
        let tenant = config
            .map(|c| c.auth0_base_url.as_str().trim_end_matches('/').to_string())
            .unwrap_or_default();
        // No inline script anywhere: every script is a file of this origin.
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             media-src 'self' blob: mediastream:; connect-src 'self' {tenant}; frame-src {tenant}; \
             form-action 'self' {tenant}; base-uri 'none'; frame-ancestors 'none'"
        );
        h.set("content-security-policy", &csp)?;
    }
    Ok(())
}

fn log_detail(err: &AppError) {
    if let Some(detail) = err.log_detail() {
        worker::console_warn!(
            "{}",
            serde_json::json!({"event": "refused", "code": err.code(), "detail": detail})
        );
    }
}

fn log_request(
    method: &str,
    path: &str,
    route: &Result<Route, AppError>,
    status: u16,
    started: u64,
    outcome: &str,
) {
    let route_name = match route {
        Ok(r) => format!("{r:?}"),
        Err(_) => "none".into(),
    };
    // The path is logged without its query: /2fa carries tokens there.
    worker::console_log!(
        "{}",
        serde_json::json!({
            "request_id": twofa::random_id().unwrap_or_default(),
            "method": method,
            "path": path,
            "route": route_name,
            "status": status,
            "duration_ms": Date::now().as_millis().saturating_sub(started),
            "outcome": outcome,
        })
    );
}
