//! Request-id deduplication (AIP-155) for mutating RPCs.
//!
//! The first call with a `request_id` claims it; its outcome (a response or a
//! final error) is stored for the configured window and replayed to every
//! repeat of the same request. A different request under the same id is
//! refused, and a repeat while the first still runs is told to retry.
//! Errors that prove the provider did nothing (rate limits, refused
//! connections, a shed or shutting-down gateway) release the id instead, so
//! a retry really runs.

use std::time::Duration;

use base64::Engine as _;
use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::{
    domain::Rpc,
    error::{GatewayError, Outcome, Reason, Result},
    store::StateStore,
};

/// How long a running claim lives if its gateway dies mid-call.
const RUNNING_TTL: Duration = Duration::from_secs(300);
/// Suggested wait before asking again about a call that is still running.
const IN_PROGRESS_RETRY: Duration = Duration::from_secs(1);

pub(crate) struct Idempotency {
    store: std::sync::Arc<dyn StateStore>,
    ttl: Duration,
}

/// What the first call with an id left behind.
pub(crate) enum Stored {
    /// The encoded response message.
    Response(Vec<u8>),
    /// The error, as an encoded `google.rpc.Status`.
    Error(Vec<u8>),
}

pub(crate) enum Claim {
    /// This call owns the id: run it, then `finish`.
    Run,
    Replay(Stored),
}

#[derive(Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Idempotency {
    pub(crate) fn new(store: std::sync::Arc<dyn StateStore>, ttl: Duration) -> Self {
        Idempotency { store, ttl }
    }

    pub(crate) fn key(request_id: &str) -> String {
        format!("idem:{}", request_id.to_ascii_lowercase())
    }

    /// A digest of what the request asks for; a repeat must match it.
    pub(crate) fn fingerprint(rpc: Rpc, request: &impl prost::Message) -> String {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(rpc.name().as_bytes());
        context.update(b"\0");
        context.update(&request.encode_to_vec());
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(context.finish())
    }

    pub(crate) async fn claim(&self, key: &str, fingerprint: &str) -> Result<Claim> {
        let running = serde_json::to_vec(&Record {
            fingerprint: fingerprint.to_owned(),
            response: None,
            error: None,
        })
        .map_err(|e| GatewayError::internal("could not encode a claim").with_source(e))?;
        if self.store.claim(key, running, RUNNING_TTL).await? {
            return Ok(Claim::Run);
        }
        let Some(bytes) = self.store.get(key).await? else {
            // Expired between the two calls: claim again once.
            return Box::pin(self.claim(key, fingerprint)).await;
        };
        let record: Record = serde_json::from_slice(&bytes)
            .map_err(|e| GatewayError::internal("unreadable request-id record").with_source(e))?;
        if record.fingerprint != fingerprint {
            return Err(GatewayError::new(
                Reason::RequestIdReused,
                "this request_id was already used for a different request",
            )
            .with_field_violation("request_id", "was already used for a different request"));
        }
        let decode = |text: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| GatewayError::internal("unreadable request-id record").with_source(e))
        };
        match (record.response, record.error) {
            (Some(response), _) => Ok(Claim::Replay(Stored::Response(decode(&response)?))),
            (None, Some(error)) => Ok(Claim::Replay(Stored::Error(decode(&error)?))),
            (None, None) => Err(GatewayError::new(
                Reason::RequestInProgress,
                "a call with this request_id is still running",
            )
            .with_retry_after(IN_PROGRESS_RETRY)),
        }
    }

    /// Stores the outcome for replay, or releases the id when the error
    /// shows the provider did nothing.
    pub(crate) async fn finish<T: prost::Message>(
        &self,
        key: &str,
        fingerprint: &str,
        outcome: &Result<T>,
    ) -> Result<()> {
        let record = match outcome {
            Ok(response) => Record {
                fingerprint: fingerprint.to_owned(),
                response: Some(
                    base64::engine::general_purpose::STANDARD.encode(response.encode_to_vec()),
                ),
                error: None,
            },
            Err(error) if is_retryable_without_effect(error) => {
                return self.store.delete(key).await;
            }
            Err(error) => Record {
                fingerprint: fingerprint.to_owned(),
                response: None,
                error: Some(
                    base64::engine::general_purpose::STANDARD
                        .encode(error.to_rpc_status().encode_to_vec()),
                ),
            },
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| GatewayError::internal("could not encode an outcome").with_source(e))?;
        self.store.put(key, bytes, self.ttl).await
    }
}

/// Errors after which the provider certainly did nothing, so the same
/// request may run again. Anything else, an unknown outcome included, is
/// final for this request id: a retry must never send twice.
fn is_retryable_without_effect(error: &GatewayError) -> bool {
    if error.outcome().is_some_and(Outcome::is_without_effect) {
        return true;
    }
    matches!(
        error.reason(),
        Reason::RateLimited
            | Reason::ResendCooldown
            | Reason::GatewayOverloaded
            | Reason::ShuttingDown
            | Reason::RequestInProgress
            | Reason::ReplaceSignerIncomplete
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{pb, store::MemoryStore};

    fn idempotency() -> Idempotency {
        Idempotency::new(
            std::sync::Arc::new(MemoryStore::new(100)),
            Duration::from_secs(60),
        )
    }

    #[tokio::test]
    async fn claims_then_replays_then_refuses_other_requests() {
        let idem = idempotency();
        let request = pb::ResendInvitationRequest {
            invitation_id: "a".into(),
            ..Default::default()
        };
        let fp = Idempotency::fingerprint(Rpc::ResendInvitation, &request);
        assert!(matches!(idem.claim("k", &fp).await.unwrap(), Claim::Run));
        let running = idem.claim("k", &fp).await.err().unwrap();
        assert_eq!(running.reason(), Reason::RequestInProgress);
        assert!(running.retry_after().is_some());
        let response = pb::ResendInvitationResponse::default();
        idem.finish("k", &fp, &Ok(response)).await.unwrap();
        assert!(matches!(
            idem.claim("k", &fp).await.unwrap(),
            Claim::Replay(Stored::Response(_))
        ));
        let other = Idempotency::fingerprint(
            Rpc::ResendInvitation,
            &pb::ResendInvitationRequest {
                invitation_id: "b".into(),
                ..Default::default()
            },
        );
        assert_eq!(
            idem.claim("k", &other).await.err().unwrap().reason(),
            Reason::RequestIdReused
        );
    }

    #[tokio::test]
    async fn errors_without_effect_release_the_id_others_are_final() {
        let idem = idempotency();
        let fp = "fp";
        assert!(matches!(idem.claim("a", fp).await.unwrap(), Claim::Run));
        let limited: Result<pb::ResendInvitationResponse> =
            Err(GatewayError::new(Reason::RateLimited, "slow down"));
        idem.finish("a", fp, &limited).await.unwrap();
        assert!(matches!(idem.claim("a", fp).await.unwrap(), Claim::Run));

        let unknown: Result<pb::ResendInvitationResponse> =
            Err(GatewayError::new(Reason::DeadlineExceeded, "late").with_outcome(Outcome::Unknown));
        idem.finish("a", fp, &unknown).await.unwrap();
        assert!(matches!(
            idem.claim("a", fp).await.unwrap(),
            Claim::Replay(Stored::Error(_))
        ));
    }
}
