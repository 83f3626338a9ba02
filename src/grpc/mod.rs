//! The tonic service: validate, pick the provider account, call it, convert.

pub(crate) mod convert;
pub(crate) mod deadline;
mod documents;
pub(crate) mod inflight;
mod pipeline;

use std::{future::Future, sync::Arc, time::Duration};

use tokio::time::Instant;
use tonic::{Request, Response, Status};
use tracing::{Instrument as _, field};

use prost::Message as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use self::pipeline::{
    AuditContext, Pipeline, ProviderScoped, Reconcile, rpc_span, within_deadline,
};

use crate::{
    audit::{self, Audited},
    auth::{Authenticator, Caller},
    config::Config,
    domain::{Expiry, ReplaceSignerRequest, Rpc},
    error::{GatewayError, MetaKey, Outcome, Reason, Result},
    idempotency::{Claim, Idempotency, Stored},
    metrics,
    pb::{self, invitation_service_server::InvitationService},
    provider::{Account, CallContext, Registry},
    telemetry,
};

/// The answer must be on its way this long before the caller's deadline:
/// tonic clients and servers both cut the call off at the deadline with a
/// bare CANCELLED, so the gateway's own DEADLINE_EXCEEDED (with details)
/// has to get there first. A tenth of the caller's timeout, within bounds.
fn reply_margin(caller_timeout: Duration) -> Duration {
    (caller_timeout / 10).clamp(Duration::from_millis(10), Duration::from_millis(100))
}

pub(crate) struct InvitationApi {
    registry: Arc<Registry>,
    idempotency: Arc<Idempotency>,
    /// Provider RPCs in flight; beyond it calls are shed at once.
    in_flight: Arc<Semaphore>,
    auth: Option<Arc<Authenticator>>,
    /// The payload budget uploads and downloads reserve their buffers from.
    transfers: inflight::PayloadBudget,
}

/// An RPC after [`InvitationApi::begin`].
struct Begun<Req> {
    started: Instant,
    deadline: Option<Instant>,
    span: tracing::Span,
    /// The span's trace, looked up once for the metrics, the audit line
    /// and the provider calls.
    trace: Option<telemetry::Trace>,
    /// What the provider calls send as the span's trace context.
    trace_headers: Option<telemetry::TraceHeaders>,
    caller: Result<Caller>,
    admission: Result<OwnedSemaphorePermit>,
    message: Req,
}

/// Suggested wait for a caller the gateway shed.
const SHED_RETRY_AFTER: Duration = Duration::from_millis(500);

impl InvitationApi {
    pub(crate) fn new(
        registry: Arc<Registry>,
        config: &Config,
        auth: Option<Arc<Authenticator>>,
        transfers: inflight::PayloadBudget,
    ) -> Self {
        InvitationApi {
            idempotency: Arc::new(Idempotency::new(
                registry.store(),
                config.idempotency_ttl,
                config.claim_lease,
            )),
            registry,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            auth,
            transfers,
        }
    }

    /// The caller of `request`; anonymous when auth is off.
    fn authenticate<T>(&self, request: &Request<T>) -> Result<Caller> {
        match &self.auth {
            Some(auth) => auth.authenticate_request(request),
            None => Ok(Caller::anonymous()),
        }
    }

    /// Runs one provider RPC as named steps: the span (child of an inbound
    /// traceparent) and the caller's deadline, authentication, admission
    /// (load shedding), then [`Pipeline::serve`] inside the deadline, the
    /// audit line, and the single error conversion.
    async fn run<Req, T, F, Fut>(
        &self,
        rpc: Rpc,
        request: Request<Req>,
        call: F,
    ) -> Result<Response<T>, Status>
    where
        Req: ProviderScoped
            + Reconcile<Response = T>
            + Audited
            + crate::idempotency::Fingerprint
            + Send
            + 'static,
        T: prost::Message + Default + Send + 'static,
        F: FnOnce(Arc<Account>, CallContext, Req) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let Begun {
            started,
            deadline,
            span,
            trace,
            trace_headers,
            caller,
            admission,
            message,
        } = self.begin(rpc, request);
        let caller_name = caller
            .as_ref()
            .map_or_else(|_| Arc::from("unauthenticated"), |c| c.name.clone());
        let audit = AuditContext::of(rpc, &message);
        let pipeline = self.pipeline(rpc, &span);
        let work = pipeline.serve(
            caller,
            admission,
            CallContext::in_trace(rpc, deadline, trace, trace_headers),
            message,
            call,
        );
        let result = within_deadline(rpc, deadline, work)
            .instrument(span.clone())
            .await;
        let audited = audit.is_some();
        if let Some(audit) = audit {
            let trace_id = trace.map(|trace| trace.id);
            // The audit line names the rpc, provider and account itself and is
            // written without spans; only an exporter wants it as an event
            // of the rpc span.
            let write = || audit.record(&caller_name, rpc, &result, trace_id);
            if telemetry::exporting() {
                span.in_scope(write);
            } else {
                write();
            }
        }
        finish(&span, trace, rpc, started, result, audited)
    }

    /// The first steps of every RPC: the clock, the caller's deadline, the
    /// span (child of an inbound traceparent), authentication, admission.
    fn begin<Req>(&self, rpc: Rpc, request: Request<Req>) -> Begun<Req> {
        let started = Instant::now();
        // Everything downstream works to this effective deadline.
        let deadline = deadline::caller_timeout(request.metadata())
            .map(|timeout| started + timeout - reply_margin(timeout));
        let span = rpc_span(rpc);
        let metadata = request.metadata();
        let header = |name| metadata.get(name).and_then(|value| value.to_str().ok());
        telemetry::set_parent(&span, header("traceparent"), header("tracestate"));
        let (trace, trace_headers) = telemetry::trace_and_headers_of(&span);
        let caller = self.authenticate(&request);
        let admission = self.admit();
        Begun {
            started,
            deadline,
            span,
            trace,
            trace_headers,
            caller,
            admission,
            message: request.into_inner(),
        }
    }

    fn pipeline<'a>(&self, rpc: Rpc, span: &'a tracing::Span) -> Pipeline<'a> {
        Pipeline {
            rpc,
            span,
            registry: self.registry.clone(),
            idempotency: self.idempotency.clone(),
            auth: self.auth.clone(),
        }
    }

    /// Admission: a permit while fewer than the limit are in flight, else
    /// the call is shed at once.
    fn admit(&self) -> Result<OwnedSemaphorePermit> {
        self.in_flight.clone().try_acquire_owned().map_err(|_| {
            metrics::global().shed("in-flight");
            GatewayError::new(
                Reason::GatewayOverloaded,
                "the gateway is at its in-flight limit; retry shortly",
            )
            .with_retry_after(SHED_RETRY_AFTER)
        })
    }
}

/// The optional `document_id` of an invitation call: checked, and refused
/// for providers that do not use it, before any provider call.
fn invitation_document<'a>(account: &Account, document_id: &'a str) -> Result<Option<&'a str>> {
    if document_id.is_empty() {
        return Ok(None);
    }
    if !account.provider.uses_invitation_document() {
        return Err(GatewayError::invalid_field(
            "document_id",
            format!(
                "is not used by {} invitation calls; leave it empty",
                account.config.provider.display_name()
            ),
        ));
    }
    convert::id("document_id", document_id)?;
    Ok(Some(document_id))
}

/// gRPC code names as the gRPC spec spells them, for metric labels.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

fn finish<T>(
    span: &tracing::Span,
    trace: Option<telemetry::Trace>,
    rpc: Rpc,
    started: Instant,
    result: Result<T>,
    audited: bool,
) -> Result<Response<T>, Status> {
    let (code, reason) = match &result {
        Ok(_) => (tonic::Code::Ok, None),
        Err(error) => (error.code(), Some(error.reason().as_str())),
    };
    metrics::global().rpc_finished(
        rpc.name(),
        code_name(code),
        reason,
        started.elapsed(),
        trace.and_then(telemetry::Trace::exemplar),
    );
    // The outcome on the span is for an exporter: the span closes right
    // after, and the line below carries the code and reason itself.
    let exporting = telemetry::exporting();
    match result {
        // One line per call: an audited call's audit line already says how
        // it ended, so only the rest get a line of their own here (and an
        // audited failure's message goes to debug).
        Ok(value) => {
            if exporting {
                span.record("rpc.grpc.status_code", 0);
            }
            if !audited {
                span.in_scope(|| tracing::info!(code = "OK", "rpc finished"));
            }
            Ok(Response::new(value))
        }
        Err(error) => {
            if exporting {
                span.record("rpc.grpc.status_code", error.code() as i32);
                span.record("error.reason", error.reason().as_str());
            }
            span.in_scope(|| {
                if audited {
                    tracing::debug!(
                        code = ?error.code(),
                        reason = error.reason().as_str(),
                        error.message = error.message(),
                        "rpc failed"
                    )
                } else {
                    tracing::info!(
                        code = ?error.code(),
                        reason = error.reason().as_str(),
                        error.message = error.message(),
                        "rpc failed"
                    )
                }
            });
            Err(error.into())
        }
    }
}

#[tonic::async_trait]
impl InvitationService for InvitationApi {
    async fn upload_document(
        &self,
        request: Request<tonic::Streaming<pb::UploadDocumentRequest>>,
    ) -> Result<Response<pb::UploadDocumentResponse>, Status> {
        self.upload(request).await
    }

    type DownloadDocumentStream = documents::DownloadStream;

    async fn download_document(
        &self,
        request: Request<pb::DownloadDocumentRequest>,
    ) -> Result<Response<Self::DownloadDocumentStream>, Status> {
        self.download(request).await
    }

    async fn send_invitation(
        &self,
        request: Request<pb::SendInvitationRequest>,
    ) -> Result<Response<pb::SendInvitationResponse>, Status> {
        self.run(
            Rpc::SendInvitation,
            request,
            |account, ctx, message| async move {
                let kind = account.config.provider;
                let send = convert::send_request(kind, message)?;
                let outcome = account.provider.send_invitation(&ctx, send).await?;
                Ok(convert::send_response(outcome))
            },
        )
        .await
    }

    async fn resend_invitation(
        &self,
        request: Request<pb::ResendInvitationRequest>,
    ) -> Result<Response<pb::ResendInvitationResponse>, Status> {
        self.run(
            Rpc::ResendInvitation,
            request,
            |account, ctx, message| async move {
                convert::id("invitation_id", &message.invitation_id)?;
                let document_id = invitation_document(&account, &message.document_id)?;
                let invitation = account
                    .provider
                    .resend_invitation(&ctx, &message.invitation_id, document_id)
                    .await?;
                Ok(pb::ResendInvitationResponse {
                    invitation: Some(convert::invitation(invitation)),
                })
            },
        )
        .await
    }

    async fn batch_resend_invitations(
        &self,
        request: Request<pb::BatchResendInvitationsRequest>,
    ) -> Result<Response<pb::BatchResendInvitationsResponse>, Status> {
        self.run(
            Rpc::BatchResendInvitations,
            request,
            |account, ctx, message| async move {
                convert::batch_ids(&message.invitation_ids)?;
                let document_id = invitation_document(&account, &message.document_id)?;
                account
                    .provider
                    .validate_batch_ids(&message.invitation_ids)?;
                let outcomes = account
                    .provider
                    .batch_resend(&ctx, &message.invitation_ids, document_id)
                    .await?;
                let results = outcomes
                    .into_iter()
                    .map(|outcome| match outcome.result {
                        Ok(invitation) => pb::BatchResendResult {
                            invitation_id: outcome.invitation_id,
                            status: Some(tonic_types::Status {
                                code: 0,
                                message: String::new(),
                                details: Vec::new(),
                            }),
                            invitation: Some(convert::invitation(invitation)),
                        },
                        Err(error) => pb::BatchResendResult {
                            invitation_id: outcome.invitation_id.clone(),
                            status: Some(
                                account
                                    .annotate(error.with_default_metadata(
                                        MetaKey::InvitationId,
                                        outcome.invitation_id,
                                    ))
                                    .to_rpc_status(),
                            ),
                            invitation: None,
                        },
                    })
                    .collect();
                Ok(pb::BatchResendInvitationsResponse { results })
            },
        )
        .await
    }

    async fn reactivate_document(
        &self,
        request: Request<pb::ReactivateDocumentRequest>,
    ) -> Result<Response<pb::ReactivateDocumentResponse>, Status> {
        self.run(
            Rpc::ReactivateDocument,
            request,
            |account, ctx, message| async move {
                convert::id("document_id", &message.document_id)?;
                use pb::reactivate_document_request::Expiry as ProtoExpiry;
                let expiry = match &message.expiry {
                    None => Expiry::WorkflowDefault,
                    Some(ProtoExpiry::ExpiryDays(days)) => Expiry::Days(*days),
                    Some(ProtoExpiry::ExpireTime(time)) => {
                        Expiry::At(convert::timestamp_to_utc("expire_time", time)?)
                    }
                };
                let document = account
                    .provider
                    .reactivate_document(&ctx, &message.document_id, expiry)
                    .await?;
                Ok(pb::ReactivateDocumentResponse {
                    document: Some(convert::document(document)),
                })
            },
        )
        .await
    }

    async fn delete_invitation(
        &self,
        request: Request<pb::DeleteInvitationRequest>,
    ) -> Result<Response<pb::DeleteInvitationResponse>, Status> {
        self.run(
            Rpc::DeleteInvitation,
            request,
            |account, ctx, message| async move {
                convert::id("invitation_id", &message.invitation_id)?;
                let document_id = invitation_document(&account, &message.document_id)?;
                account
                    .provider
                    .delete_invitation(&ctx, &message.invitation_id, document_id)
                    .await?;
                Ok(pb::DeleteInvitationResponse {
                    invitation_id: message.invitation_id,
                })
            },
        )
        .await
    }

    async fn replace_signer(
        &self,
        request: Request<pb::ReplaceSignerRequest>,
    ) -> Result<Response<pb::ReplaceSignerResponse>, Status> {
        self.run(
            Rpc::ReplaceSigner,
            request,
            |account, ctx, message| async move {
                convert::id("document_id", &message.document_id)?;
                convert::id("invitation_id", &message.invitation_id)?;
                let new_signer = message
                    .new_signer
                    .ok_or_else(|| GatewayError::invalid_field("new_signer", "is required"))?;
                let invitation = account
                    .provider
                    .replace_signer(
                        &ctx,
                        ReplaceSignerRequest {
                            document_id: message.document_id,
                            invitation_id: message.invitation_id,
                            new_signer: convert::signer("new_signer", new_signer)?,
                            keep_invite_settings: message.keep_invite_settings,
                        },
                    )
                    .await?;
                Ok(pb::ReplaceSignerResponse {
                    invitation: Some(convert::invitation(invitation)),
                })
            },
        )
        .await
    }

    async fn cancel_invitations(
        &self,
        request: Request<pb::CancelInvitationsRequest>,
    ) -> Result<Response<pb::CancelInvitationsResponse>, Status> {
        self.run(
            Rpc::CancelInvitations,
            request,
            |account, ctx, message| async move {
                convert::id("document_id", &message.document_id)?;
                if message.reason.trim().is_empty() {
                    return Err(GatewayError::invalid_field(
                        "reason",
                        "is required and must not be blank",
                    ));
                }
                account
                    .provider
                    .cancel_invitations(&ctx, &message.document_id, message.reason.trim())
                    .await?;
                Ok(pb::CancelInvitationsResponse {
                    document_id: message.document_id,
                })
            },
        )
        .await
    }

    async fn get_document(
        &self,
        request: Request<pb::GetDocumentRequest>,
    ) -> Result<Response<pb::GetDocumentResponse>, Status> {
        self.run(
            Rpc::GetDocument,
            request,
            |account, ctx, message| async move {
                convert::id("document_id", &message.document_id)?;
                let document = account
                    .provider
                    .get_document(&ctx, &message.document_id)
                    .await?;
                Ok(pb::GetDocumentResponse {
                    document: Some(convert::document(document)),
                })
            },
        )
        .await
    }

    async fn get_invitation(
        &self,
        request: Request<pb::GetInvitationRequest>,
    ) -> Result<Response<pb::GetInvitationResponse>, Status> {
        self.run(
            Rpc::GetInvitation,
            request,
            |account, ctx, message| async move {
                convert::id("invitation_id", &message.invitation_id)?;
                let invitation = account
                    .provider
                    .get_invitation(&ctx, &message.invitation_id)
                    .await?;
                Ok(pb::GetInvitationResponse {
                    invitation: Some(convert::invitation(invitation)),
                })
            },
        )
        .await
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let caller = self
            .authenticate(&request)
            .and_then(|caller| match &self.auth {
                Some(auth) => auth
                    .authorize(&caller, "ListProviders", None)
                    .map(|()| caller),
                None => Ok(caller),
            })?;
        // A caller sees only the accounts it may use.
        let accounts = self
            .registry
            .accounts()
            .iter()
            .filter(|account| {
                self.auth.as_ref().is_none_or(|auth| {
                    auth.may_see(&caller, account.config.provider, &account.config.name)
                })
            })
            .map(|account| {
                let breaker = self.registry.breaker_state(account);
                #[allow(deprecated)] // the text field is still filled for older clients
                pb::ProviderAccount {
                    provider: convert::provider_to_proto(account.config.provider) as i32,
                    account: account.config.name.clone(),
                    environment_host: account.config.host().to_owned(),
                    supported_rpcs: account
                        .provider
                        .supported_rpcs()
                        .iter()
                        .map(|rpc| rpc.name().to_owned())
                        .collect(),
                    is_default: account.is_default,
                    breaker_state: breaker.as_str().to_owned(),
                    breaker: convert::breaker_state(breaker) as i32,
                }
            })
            .collect();
        Ok(Response::new(pb::ListProvidersResponse { accounts }))
    }
}
