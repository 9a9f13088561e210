//! The operator's route: `POST /admin/attempts/reset` lifts a user's attempt lock.
//!
//! Closed unless `ADMIN_SECRET` is set; the caller proves it with `Authorization: Bearer`.

use crate::config::Config;
use crate::error::AppError;
use crate::http;
use crate::ledger::{self, Op};
use sha2::{Digest, Sha256};
use worker::{Env, Request, Response};

#[derive(serde::Deserialize)]
struct ResetRequest {
    user_id: String,
}

/// Compares digests rather than the secrets, so the time taken says nothing about the secret.
fn same_secret(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}

pub async fn reset_attempts(
    req: &mut Request,
    env: &Env,
    config: &Config,
) -> Result<Response, AppError> {
    let secret = config.admin_secret()?;
    let header = req.headers().get("authorization")?.unwrap_or_default();
    let given = header.strip_prefix("Bearer ").unwrap_or_default();
    if given.is_empty() || !same_secret(given, secret.expose()) {
        return Err(AppError::Refused {
            code: "invalid_admin_secret",
            message: "This route needs 'Authorization: Bearer <ADMIN_SECRET>' with the \
                      configured operator secret."
                .into(),
        });
    }
    let body: ResetRequest = req.json().await.map_err(|_| AppError::BadRequest {
        code: "bad_request",
        message: "Send JSON {\"user_id\": \"<Auth0 user id>\"}.".into(),
    })?;
    if body.user_id.is_empty() || body.user_id.len() > 256 {
        return Err(AppError::BadRequest {
            code: "bad_request",
            message: "user_id must be an Auth0 user id such as auth0|123.".into(),
        });
    }
    ledger::call(env, &body.user_id, &Op::Reset).await?;
    Ok(http::json(200, &serde_json::json!({ "reset": true }))?)
}
