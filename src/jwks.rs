//! The tenant's key set, fetched from `{AUTH0_BASE_URL}/.well-known/jwks.json` and kept in
//! the isolate for `JWKS_CACHE_SECONDS`.
//!
//! wasm32 is single-threaded, so a thread-local cell is the whole cache; no borrow is held
//! across an `.await`. A fresh isolate (or one reset after a panic) starts empty.

use crate::access_token::KeySet;
use crate::config::Config;
use crate::error::AppError;
use crate::upstream;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{Date, Method, Request, RequestInit};

struct Cached {
    url: String,
    keys: Rc<KeySet>,
    fetched_ms: u64,
}

thread_local! {
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// A key set and whether it was fetched during this call (then a refetch is pointless).
pub struct Keys {
    pub set: Rc<KeySet>,
    pub fresh: bool,
}

/// The cached key set, or a newly fetched one when the cache is empty, stale, for another
/// tenant, or `refresh` is asked for. An unreachable tenant is `auth_unavailable`, never a 401.
pub async fn keys(config: &Config, refresh: bool) -> Result<Keys, AppError> {
    let url = config.jwks_url();
    let now = Date::now().as_millis();
    let max_age = u64::from(config.jwks_cache_seconds) * 1000;
    if !refresh {
        let cached = CACHE.with(|c| {
            c.borrow().as_ref().and_then(|cached| {
                (cached.url == url && now.saturating_sub(cached.fetched_ms) < max_age)
                    .then(|| cached.keys.clone())
            })
        });
        if let Some(set) = cached {
            return Ok(Keys { set, fresh: false });
        }
    }

    let set = Rc::new(fetch(&url, config.upstream_timeout_ms).await?);
    CACHE.with(|c| {
        *c.borrow_mut() = Some(Cached {
            url,
            keys: set.clone(),
            fetched_ms: now,
        })
    });
    Ok(Keys { set, fresh: true })
}

async fn fetch(url: &str, timeout_ms: u32) -> Result<KeySet, AppError> {
    let unavailable = |why: String| {
        worker::console_warn!(
            "{}",
            serde_json::json!({"event": "jwks_unavailable", "why": why})
        );
        AppError::AuthUnavailable
    };
    let mut init = RequestInit::new();
    init.with_method(Method::Get);
    let request = Request::new_with_init(url, &init).map_err(|e| unavailable(e.to_string()))?;
    let mut response = upstream::send(request, timeout_ms)
        .await
        .map_err(|e| unavailable(format!("{e:?}")))?;
    if response.status_code() != 200 {
        return Err(unavailable(format!("status {}", response.status_code())));
    }
    let text = upstream::body_text(&mut response, timeout_ms)
        .await
        .map_err(|e| unavailable(format!("{e:?}")))?;
    let set = KeySet::parse(&text).map_err(unavailable)?;
    if set.is_empty() {
        return Err(unavailable("no usable RS256 key".into()));
    }
    Ok(set)
}
