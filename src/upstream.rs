//! Outbound calls to VoiceIt and Auth0, each bounded by a timeout so no request hangs.

use futures_util::future::{select, Either};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Request, Response};

/// Why an upstream call produced no usable answer.
#[derive(Debug)]
pub enum UpstreamFailure {
    /// Nothing came back within the timeout; the call was aborted.
    Timeout,
    /// The connection failed (DNS, refused, reset…).
    Unreachable(String),
}

/// Sends `request`, and aborts it if no response has arrived after `timeout_ms`.
pub async fn send(request: Request, timeout_ms: u32) -> Result<Response, UpstreamFailure> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let call = Box::pin(fetch.send_with_signal(&signal));
    let deadline = Box::pin(Delay::from(Duration::from_millis(u64::from(timeout_ms))));
    let raced = select(call, deadline).await;
    match raced {
        Either::Left((Ok(response), _)) => Ok(response),
        Either::Left((Err(err), _)) => Err(UpstreamFailure::Unreachable(err.to_string())),
        Either::Right(_) => {
            controller.abort();
            Err(UpstreamFailure::Timeout)
        }
    }
}

/// Reads a response body, bounded by the same kind of timeout (a slow body is a slow answer).
pub async fn body_text(
    response: &mut Response,
    timeout_ms: u32,
) -> Result<String, UpstreamFailure> {
    let read = Box::pin(response.text());
    let deadline = Box::pin(Delay::from(Duration::from_millis(u64::from(timeout_ms))));
    let raced = select(read, deadline).await;
    match raced {
        Either::Left((Ok(text), _)) => Ok(text),
        Either::Left((Err(err), _)) => Err(UpstreamFailure::Unreachable(err.to_string())),
        Either::Right(_) => Err(UpstreamFailure::Timeout),
    }
}
