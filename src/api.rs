//! The demo app's APIs: the public headline, the protected one, and the browser's config.

use crate::access_token::{self, Expected, Rejection};
use crate::config::Config;
use crate::error::AppError;
use crate::headline::{headline, SystemDice};
use crate::http;
use crate::jwks;
use chrono::{DateTime, Utc};
use serde_json::json;
use worker::{Request, Response};

/// `GET /api/public`: a headline about a historical figure.
pub fn public_headline() -> Result<Response, AppError> {
    Ok(http::json(
        200,
        &json!({ "headline": headline(None, &mut SystemDice) }),
    )?)
}

/// `GET /config.json`: what the browser needs to sign in, from Wrangler vars.
pub fn public_config(config: &Config) -> Result<Response, AppError> {
    Ok(http::json(200, &config.public_json())?)
}

/// The bearer token of the `Authorization` header.
fn bearer(req: &Request) -> Result<String, AppError> {
    let header = req
        .headers()
        .get("authorization")?
        .ok_or(AppError::MissingToken)?;
    let (scheme, token) = header.split_once(' ').ok_or(AppError::InvalidToken {
        reason: "authorization header is not 'Bearer <token>'".into(),
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::InvalidToken {
            reason: "authorization scheme is not Bearer".into(),
        });
    }
    Ok(token.trim().to_string())
}

/// `GET /api/private`: a headline starring the signed-in user, named by the token alone.
pub async fn private_headline(
    req: &Request,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Response, AppError> {
    let token = bearer(req)?;
    // Shape and algorithm first: junk never costs a key fetch.
    access_token::key_id(&token).map_err(invalid)?;

    let issuer = config.access_token_issuer();
    let expected = Expected {
        issuer: &issuer,
        audience: &config.auth0_audience,
        claim_namespace: &config.claim_namespace,
    };
    let keys = jwks::keys(config, false).await?;
    let grant = match access_token::validate(&token, &keys.set, &expected, now) {
        // Keys rotate: a kid we have not seen earns exactly one refetch, then the answer stands.
        Err(Rejection::UnknownKey(_)) if !keys.fresh => {
            let keys = jwks::keys(config, true).await?;
            access_token::validate(&token, &keys.set, &expected, now)
        }
        other => other,
    }
    .map_err(invalid)?;

    let name = grant.name.unwrap_or_else(|| "you".into());
    let headline = headline(Some(&name), &mut SystemDice);
    Ok(http::json(
        200,
        &json!({ "headline": headline, "name": name }),
    )?)
}

fn invalid(r: Rejection) -> AppError {
    AppError::InvalidToken {
        reason: match r {
            Rejection::UnknownKey(kid) => format!("unknown kid {kid}"),
            Rejection::Invalid(why) => why,
        },
    }
}
