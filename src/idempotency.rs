//! Request-id deduplication (AIP-155) for mutating RPCs.
//!
//! The first call with a `request_id` claims it; its outcome (a response or a
//! final error) is stored for the configured window and replayed to every
//! repeat of the same request. A different request under the same id is
//! refused, and a repeat while the first still runs is told to retry.
//! Errors that prove the provider did nothing (rate limits, refused
//! connections, a shed or shutting-down gateway) release the id instead, so
//! a retry really runs.
//!
//! A running call holds a lease (`<key>:lease`) its replica renews while
//! the call runs; the record itself lives for the whole window. When a
//! replica dies mid-call its lease lapses and the record stays "running":
//! the next claim finds it [`Claim::Orphaned`] and must not simply run the
//! call again (it may have reached the provider).

use std::{sync::Arc, time::Duration};

use base64::Engine as _;
use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::{
    domain::Rpc,
    error::{GatewayError, Outcome, Reason, Result},
    store::StateStore,
};

/// Suggested wait before asking again about a call that is still running.
const IN_PROGRESS_RETRY: Duration = Duration::from_secs(1);

pub(crate) struct Idempotency {
    store: Arc<dyn StateStore>,
    ttl: Duration,
    lease: Duration,
}

/// This replica's hold on a running request id.
pub(crate) struct Lease {
    key: String,
    owner: String,
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
    Run(Lease),
    Replay(Stored),
    /// A replica claimed the id and died before recording an outcome; this
    /// call now holds the lease and decides what to answer, then `finish`.
    Orphaned(Lease),
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
    pub(crate) fn new(store: Arc<dyn StateStore>, ttl: Duration, lease: Duration) -> Self {
        Idempotency { store, ttl, lease }
    }

    pub(crate) fn key(request_id: &str) -> String {
        format!("idem:{}", request_id.to_ascii_lowercase())
    }

    /// A digest of what the request asks for; a repeat must match it. A
    /// document in the request is hashed where it lies: encoding it would
    /// copy a 15 MB PDF only to hash the copy.
    pub(crate) fn fingerprint<R: Fingerprint>(rpc: Rpc, request: &R) -> String {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(rpc.name().as_bytes());
        context.update(b"\0");
        match request.detach_document() {
            Some((rest, document)) => {
                context.update(&rest.encode_to_vec());
                context.update(b"\0document\0");
                context.update(&document);
            }
            None => context.update(&request.encode_to_vec()),
        }
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(context.finish())
    }

    /// Claims `key`: the lease first (one claimant at a time), then the
    /// record. A live lease means another call runs it; a record without
    /// one is an orphan.
    pub(crate) async fn claim(&self, key: &str, fingerprint: &str) -> Result<Claim> {
        let lease = Lease {
            key: format!("{key}:lease"),
            owner: uuid::Uuid::new_v4().simple().to_string(),
        };
        let running = serde_json::to_vec(&Record {
            fingerprint: fingerprint.to_owned(),
            response: None,
            error: None,
        })
        .map_err(|e| GatewayError::internal("could not encode a claim").with_source(e))?;
        if !self
            .store
            .claim(&lease.key, lease.owner.clone().into_bytes(), self.lease)
            .await?
        {
            // Another call holds the lease: it runs, or it just finished.
            return match self.recorded(key, fingerprint).await? {
                Some(stored) => Ok(Claim::Replay(stored)),
                None => Err(in_progress()),
            };
        }
        if self.store.claim(key, running, self.ttl).await? {
            return Ok(Claim::Run(lease));
        }
        let found = self.recorded(key, fingerprint).await;
        match found {
            Ok(Some(stored)) => {
                self.release(&lease).await;
                Ok(Claim::Replay(stored))
            }
            Ok(None) => {
                tracing::warn!(
                    "request_id was claimed by a replica that stopped before recording an outcome"
                );
                Ok(Claim::Orphaned(lease))
            }
            Err(error) => {
                self.release(&lease).await;
                Err(error)
            }
        }
    }

    /// The stored outcome of `key`, `None` while it is still running (or
    /// gone); REQUEST_ID_REUSED for another request under the same id.
    async fn recorded(&self, key: &str, fingerprint: &str) -> Result<Option<Stored>> {
        let Some(bytes) = self.store.get(key).await? else {
            return Ok(None);
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
            (Some(response), _) => Ok(Some(Stored::Response(decode(&response)?))),
            (None, Some(error)) => Ok(Some(Stored::Error(decode(&error)?))),
            (None, None) => Ok(None),
        }
    }

    /// Renews `lease` every third of its life until the returned guard is
    /// dropped, so a long call keeps its claim and a dead replica's lapses.
    pub(crate) fn hold(&self, lease: &Lease) -> LeaseGuard {
        let store = self.store.clone();
        let (key, owner, life) = (lease.key.clone(), lease.owner.clone(), self.lease);
        let renewer = tokio::spawn(async move {
            let mut every = tokio::time::interval(life / 3);
            every.tick().await;
            loop {
                every.tick().await;
                if let Err(error) = store.put(&key, owner.clone().into_bytes(), life).await {
                    tracing::warn!(error = %error, "could not renew a request-id lease");
                }
            }
        });
        LeaseGuard(renewer)
    }

    async fn release(&self, lease: &Lease) {
        if let Err(error) = self.store.delete(&lease.key).await {
            tracing::warn!(error = %error, "could not release a request-id lease");
        }
    }

    /// Stores the outcome for replay, or releases the id when the error
    /// shows the provider did nothing.
    pub(crate) async fn finish<T: prost::Message>(
        &self,
        key: &str,
        lease: &Lease,
        fingerprint: &str,
        outcome: &Result<T>,
    ) -> Result<()> {
        let recorded = self.record(key, fingerprint, outcome).await;
        self.release(lease).await;
        recorded
    }

    async fn record<T: prost::Message>(
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

/// Stops renewing a lease when dropped.
pub(crate) struct LeaseGuard(tokio::task::JoinHandle<()>);

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn in_progress() -> GatewayError {
    GatewayError::new(
        Reason::RequestInProgress,
        "a call with this request_id is still running",
    )
    .with_retry_after(IN_PROGRESS_RETRY)
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

/// Requests that can be fingerprinted; one that carries a document hands
/// it over separately so that it is hashed without a copy.
pub(crate) trait Fingerprint: prost::Message + Sized {
    fn detach_document(&self) -> Option<(Self, bytes::Bytes)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{pb, store::MemoryStore};

    fn idempotency() -> (Idempotency, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new(100));
        let idem = Idempotency::new(
            store.clone(),
            Duration::from_secs(60),
            Duration::from_secs(30),
        );
        (idem, store)
    }

    fn run(claim: Claim) -> Lease {
        match claim {
            Claim::Run(lease) => lease,
            _ => panic!("expected to run"),
        }
    }

    #[test]
    fn a_document_counts_in_the_fingerprint_without_being_encoded() {
        let send = |file: &'static [u8], irn: &str| pb::SendInvitationRequest {
            reference: irn.into(),
            provider_options: Some(pb::send_invitation_request::ProviderOptions::Leegality(
                pb::LeegalityOptions {
                    file: bytes::Bytes::from_static(file),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let print = |request: &pb::SendInvitationRequest| {
            Idempotency::fingerprint(Rpc::SendInvitation, request)
        };
        assert_eq!(print(&send(b"%PDF a", "1")), print(&send(b"%PDF a", "1")));
        assert_ne!(print(&send(b"%PDF a", "1")), print(&send(b"%PDF b", "1")));
        assert_ne!(print(&send(b"%PDF a", "1")), print(&send(b"%PDF a", "2")));
    }

    #[tokio::test]
    async fn claims_then_replays_then_refuses_other_requests() {
        let (idem, _) = idempotency();
        let request = pb::ResendInvitationRequest {
            invitation_id: "a".into(),
            ..Default::default()
        };
        let fp = Idempotency::fingerprint(Rpc::ResendInvitation, &request);
        let lease = run(idem.claim("k", &fp).await.unwrap());
        let running = idem.claim("k", &fp).await.err().unwrap();
        assert_eq!(running.reason(), Reason::RequestInProgress);
        assert!(running.retry_after().is_some());
        let response = pb::ResendInvitationResponse::default();
        idem.finish("k", &lease, &fp, &Ok(response)).await.unwrap();
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
        let (idem, _) = idempotency();
        let fp = "fp";
        let lease = run(idem.claim("a", fp).await.unwrap());
        let limited: Result<pb::ResendInvitationResponse> =
            Err(GatewayError::new(Reason::RateLimited, "slow down"));
        idem.finish("a", &lease, fp, &limited).await.unwrap();
        let lease = run(idem.claim("a", fp).await.unwrap());

        let unknown: Result<pb::ResendInvitationResponse> =
            Err(GatewayError::new(Reason::DeadlineExceeded, "late").with_outcome(Outcome::Unknown));
        idem.finish("a", &lease, fp, &unknown).await.unwrap();
        assert!(matches!(
            idem.claim("a", fp).await.unwrap(),
            Claim::Replay(Stored::Error(_))
        ));
    }

    #[tokio::test]
    async fn a_lapsed_lease_without_an_outcome_is_an_orphan_once() {
        let (idem, store) = idempotency();
        let _dead = run(idem.claim("k", "fp").await.unwrap());
        // Its replica died: nobody renews the lease, and it lapses.
        store.delete("k:lease").await.unwrap();
        let Claim::Orphaned(lease) = idem.claim("k", "fp").await.unwrap() else {
            panic!("expected an orphan");
        };
        // While the orphan is being settled, others are told to wait.
        assert_eq!(
            idem.claim("k", "fp").await.err().unwrap().reason(),
            Reason::RequestInProgress
        );
        let settled: Result<pb::SendInvitationResponse> =
            Err(GatewayError::new(Reason::RequestOutcomeUnknown, "unknown")
                .with_outcome(Outcome::Unknown));
        idem.finish("k", &lease, "fp", &settled).await.unwrap();
        assert!(matches!(
            idem.claim("k", "fp").await.unwrap(),
            Claim::Replay(Stored::Error(_))
        ));
    }
}
