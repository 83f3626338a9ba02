//! Transport failures as gateway errors, and the statuses every provider
//! answers alike.

use std::time::Duration;

use http::header;

use super::ProviderResponse;
use crate::{
    domain::ProviderKind,
    error::{GatewayError, MetaKey, Outcome, Reason},
    provider::CallContext,
};

/// Delay suggested to callers after a transient provider failure.
pub(crate) const TRANSIENT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// What a failed attempt carries for its log line.
pub(super) type Cause = Box<dyn std::error::Error + Send + Sync>;

pub(super) enum SendFailure {
    Connect(Cause),
    Timeout(Cause),
    Transport(Cause),
    BodyTooLarge,
    /// A one-shot body was already sent by an earlier attempt.
    BodyGone,
}

impl SendFailure {
    pub(super) fn from_reqwest(error: reqwest::Error) -> SendFailure {
        // reqwest errors carry the URL; strip it so no id or query reaches a log.
        let error = error.without_url();
        if error.is_timeout() {
            SendFailure::Timeout(Box::new(error))
        } else if error.is_connect() {
            SendFailure::Connect(Box::new(error))
        } else {
            SendFailure::Transport(Box::new(error))
        }
    }
}

pub(super) fn failure_to_error(
    ctx: &CallContext,
    provider: ProviderKind,
    failure: SendFailure,
    bounded_by_deadline: bool,
    elapsed_ms: u64,
    max_body_bytes: usize,
) -> GatewayError {
    match failure {
        SendFailure::Timeout(error) if bounded_by_deadline => {
            tracing::warn!(elapsed_ms, error = %error, "caller deadline ran out during provider call");
            ctx.deadline_exceeded(true).with_provider(provider)
        }
        SendFailure::Timeout(error) => {
            tracing::warn!(elapsed_ms, error = %error, "provider call timed out");
            let error = GatewayError::new(
                Reason::ProviderUnavailable,
                "the provider did not answer in time",
            )
            .with_provider(provider)
            .with_retry_after(TRANSIENT_RETRY_DELAY);
            if ctx.rpc.is_mutating() {
                error.with_outcome(Outcome::Unknown)
            } else {
                error
            }
        }
        SendFailure::Connect(error) => {
            tracing::warn!(error = %error, "could not connect to provider");
            GatewayError::new(
                Reason::ProviderUnavailable,
                "the provider could not be reached",
            )
            .with_provider(provider)
            .with_retry_after(TRANSIENT_RETRY_DELAY)
            .with_outcome(Outcome::NotSent)
        }
        SendFailure::Transport(error) => {
            tracing::warn!(error = %error, "provider connection failed mid-call");
            let error = GatewayError::new(
                Reason::ProviderUnavailable,
                "the provider connection failed",
            )
            .with_provider(provider)
            .with_retry_after(TRANSIENT_RETRY_DELAY);
            if ctx.rpc.is_mutating() {
                error.with_outcome(Outcome::Unknown)
            } else {
                error
            }
        }
        SendFailure::BodyGone => {
            GatewayError::internal("a one-shot request body was about to be sent twice")
                .with_outcome(Outcome::Unknown)
        }
        SendFailure::BodyTooLarge => {
            tracing::warn!(limit = max_body_bytes, "provider response body too large");
            GatewayError::new(
                Reason::ProviderUnrecognizedResponse,
                "the provider sent a response larger than the gateway accepts",
            )
            .with_provider(provider)
        }
    }
}

/// The statuses every provider answers alike; adapters map their own bodies
/// first and fall back to this.
pub(crate) fn common_status_error(
    provider: ProviderKind,
    response: &ProviderResponse,
) -> Option<GatewayError> {
    let status = response.status;
    let error = match status.as_u16() {
        401 => GatewayError::new(
            Reason::ProviderCredentialsRejected,
            "the provider rejected the gateway's credentials",
        ),
        403 => GatewayError::new(
            Reason::ProviderPermissionDenied,
            "the provider refused access",
        ),
        429 => GatewayError::new(
            Reason::RateLimited,
            "the provider is rate limiting the gateway",
        )
        .with_retry_after(response.retry_after().unwrap_or(Duration::from_secs(60))),
        // A 503 is a refusal; after 500, 502 or 504 a write may have happened.
        503 => GatewayError::new(Reason::ProviderUnavailable, "the provider is unavailable")
            .with_retry_after(response.retry_after().unwrap_or(TRANSIENT_RETRY_DELAY))
            .with_outcome(Outcome::NotApplied),
        500..=599 => GatewayError::new(Reason::ProviderUnavailable, "the provider is unavailable")
            .with_retry_after(response.retry_after().unwrap_or(TRANSIENT_RETRY_DELAY))
            .with_outcome(Outcome::Unknown),
        _ => return None,
    };
    Some(
        error
            .with_provider(provider)
            .with_metadata(MetaKey::ProviderHttpStatus, status.as_u16().to_string()),
    )
}

/// UNKNOWN for a body the adapter could not understand.
pub(crate) fn unrecognized(provider: ProviderKind, response: &ProviderResponse) -> GatewayError {
    tracing::warn!(
        status = response.status.as_u16(),
        content_type = response
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
        body_bytes = response.body.len(),
        "unrecognized provider response"
    );
    GatewayError::new(
        Reason::ProviderUnrecognizedResponse,
        "the provider sent a response the gateway does not understand",
    )
    .with_provider(provider)
    .with_metadata(
        MetaKey::ProviderHttpStatus,
        response.status.as_u16().to_string(),
    )
}
