//! The steps of one provider RPC after admission: target checks,
//! authorization, the account lookup, request-id deduplication with leases
//! and orphan handling, and the audit context.

use super::*;

/// The span of one RPC. The OpenTelemetry attributes that are the same for
/// every call of a method (`rpc.system`, `rpc.service`, the span's name and
/// kind) are only given to an exporter; log lines need only the method.
pub(super) fn rpc_span(rpc: Rpc) -> tracing::Span {
    if telemetry::exporting() {
        tracing::info_span!(
            "rpc",
            otel.name = rpc.full_name(),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = "esign.v1.InvitationService",
            rpc.method = rpc.name(),
            provider = field::Empty,
            account = field::Empty,
            rpc.grpc.status_code = field::Empty,
            error.reason = field::Empty,
        )
    } else {
        tracing::info_span!(
            "rpc",
            rpc.method = rpc.name(),
            provider = field::Empty,
            account = field::Empty,
            rpc.grpc.status_code = field::Empty,
            error.reason = field::Empty,
        )
    }
}

/// The call bounded by the caller's deadline: the gateway answers
/// DEADLINE_EXCEEDED (with details) before the caller's own cut-off.
///
/// Not an `async fn`: one keeps its argument in the future next to the
/// timeout that took it over, and `work` is most of the call's state,
/// copied whenever the call's future is boxed.
pub(super) fn within_deadline<T>(
    rpc: Rpc,
    deadline: Option<Instant>,
    work: impl Future<Output = Result<T>>,
) -> impl Future<Output = Result<T>> {
    use futures_util::{FutureExt as _, future::Either};
    match deadline {
        Some(deadline) => {
            Either::Left(
                tokio::time::timeout_at(deadline, work).map(move |timed| match timed {
                    Ok(result) => result,
                    Err(_) => Err(CallContext::new(rpc, None).deadline_exceeded(true)),
                }),
            )
        }
        None => Either::Right(work),
    }
}

/// What one call needs once it is admitted.
pub(super) struct Pipeline<'a> {
    pub(super) rpc: Rpc,
    /// The call's rpc span, recorded on directly (cheaper than looking up
    /// the current span each time).
    pub(super) span: &'a tracing::Span,
    pub(super) registry: Arc<Registry>,
    pub(super) idempotency: Arc<Idempotency>,
    pub(super) auth: Option<Arc<Authenticator>>,
}

impl Pipeline<'_> {
    /// Validation of the target, authorization, the account lookup, and the
    /// provider call (deduplicated when it carries a request id).
    ///
    /// Authorization comes before the lookup, on the name asked for, so a
    /// caller learns nothing about accounts it may not use: an unknown and
    /// a forbidden account answer alike.
    pub(super) async fn serve<Req, T, F, Fut>(
        self,
        caller: Result<Caller>,
        admission: Result<OwnedSemaphorePermit>,
        ctx: CallContext,
        message: Req,
        call: F,
    ) -> Result<T>
    where
        Req: ProviderScoped
            + Reconcile<Response = T>
            + crate::idempotency::Fingerprint
            + Send
            + 'static,
        T: prost::Message + Default + Send + 'static,
        F: FnOnce(Arc<Account>, CallContext, Req) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let (account, caller, (permit, in_flight)) =
            self.admit(caller, admission, &message).await?;
        let ctx = ctx.with_request_id(message.request_id());
        if !self.rpc.is_mutating() || message.request_id().is_empty() {
            let annotate = account.clone();
            return call(account, ctx, message)
                .await
                .map_err(|error| annotate.annotate(error));
        }
        // Scoped to the caller, so no caller sees another's outcome.
        let request_id = if self.auth.is_some() {
            format!("{}:{}", caller.name, message.request_id())
        } else {
            message.request_id().to_owned()
        };
        // Boxed: its state is large and only calls with a request id need it.
        Box::pin(self.deduplicated(
            &request_id,
            account,
            ctx,
            message,
            call,
            (permit, in_flight),
        ))
        .await
    }

    /// The checks before any provider call: caller, admission, provider,
    /// account and request id, authorization, and the account lookup. The
    /// admission permit and in-flight count come back with the account, to
    /// be held for as long as the call runs.
    pub(super) async fn admit<Req: ProviderScoped>(
        &self,
        caller: Result<Caller>,
        admission: Result<OwnedSemaphorePermit>,
        message: &Req,
    ) -> Result<(
        Arc<Account>,
        Caller,
        (OwnedSemaphorePermit, metrics::InFlight),
    )> {
        let caller = caller?;
        let permit = admission?;
        let in_flight = metrics::global().in_flight();
        let kind = convert::provider(message.provider())?;
        // Both span fields in one record (each record is a dispatch);
        // a call refused on the way still says which provider it named.
        let account = self.account(kind, &caller, message).inspect_err(|_| {
            self.span.record("provider", kind.as_str());
        })?;
        tracing::record_all!(
            self.span,
            provider = kind.as_str(),
            account = account.config.name.as_str()
        );
        Ok((account, caller, (permit, in_flight)))
    }

    /// The account the call is for, once its names check out and the
    /// caller may use it.
    fn account<Req: ProviderScoped>(
        &self,
        kind: crate::domain::ProviderKind,
        caller: &Caller,
        message: &Req,
    ) -> Result<Arc<Account>> {
        convert::account(message.account())?;
        convert::request_id(message.request_id())?;
        if let Some(auth) = &self.auth {
            let name = self.registry.account_name(kind, message.account());
            auth.authorize(caller, self.rpc.name(), Some((kind, name)))?;
        }
        self.registry.resolve(kind, message.account())
    }

    /// Request-id deduplication (AIP-155): the first call claims the id and
    /// runs in its own task under a renewed lease, so a caller that gives
    /// up still gets the recorded outcome on retry and a retry never sends
    /// twice; a repeat replays the stored outcome. When the replica that
    /// claimed the id died mid-call, the retry runs the call again only if
    /// that is harmless, and otherwise reconciles with the provider or
    /// answers that the outcome is unknown.
    async fn deduplicated<Req, T, F, Fut>(
        self,
        request_id: &str,
        account: Arc<Account>,
        ctx: CallContext,
        message: Req,
        call: F,
        held: (OwnedSemaphorePermit, metrics::InFlight),
    ) -> Result<T>
    where
        Req: crate::idempotency::Fingerprint + Reconcile<Response = T> + Send + 'static,
        T: prost::Message + Default + Send + 'static,
        F: FnOnce(Arc<Account>, CallContext, Req) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let key = Idempotency::key(request_id);
        let fingerprint = Idempotency::fingerprint(self.rpc, &message);
        let (lease, orphaned) = match self.idempotency.claim(&key, &fingerprint).await {
            Ok(Claim::Run(lease)) => (lease, false),
            Ok(Claim::Orphaned(lease)) => (lease, true),
            Ok(Claim::Replay(stored)) => {
                metrics::global().replayed(self.rpc.name());
                tracing::info!("request_id seen before: replaying its outcome");
                return replay(stored);
            }
            Err(error) => return Err(account.annotate(error)),
        };
        let idempotency = self.idempotency;
        let rpc = self.rpc;
        let task = tokio::spawn(
            async move {
                let renewing = idempotency.hold(&lease);
                let annotate = account.clone();
                let outcome = if orphaned && !rpc.is_safe_to_repeat() {
                    message.reconcile(account, ctx).await
                } else {
                    call(account, ctx, message).await
                }
                .map_err(|error| annotate.annotate(error));
                drop(renewing);
                if let Err(error) = idempotency
                    .finish(&key, &lease, &fingerprint, &outcome)
                    .await
                {
                    tracing::error!(error = %error, "could not record the outcome of a request id");
                }
                // The permit and the in-flight count last as long as the call.
                drop(held);
                outcome
            }
            .in_current_span(),
        );
        task.await.unwrap_or_else(|join_error| {
            tracing::error!(error = %join_error, "provider call task failed");
            Err(GatewayError::internal("the call failed inside the gateway"))
        })
    }
}

/// What a retry answers for a call whose replica died after claiming its
/// request id: the call may have reached the provider, so it is not sent
/// again. A send is looked up at the provider where it allows that; any
/// other call answers that the outcome is unknown.
#[async_trait::async_trait]
pub(super) trait Reconcile: Sized + Send + 'static {
    type Response: Send;

    async fn reconcile(self, _account: Arc<Account>, _ctx: CallContext) -> Result<Self::Response> {
        Err(outcome_unknown())
    }
}

pub(super) fn outcome_unknown() -> GatewayError {
    GatewayError::new(
        Reason::RequestOutcomeUnknown,
        "an earlier call with this request_id stopped part way and may have reached the provider; check the provider's state, then send again with a new request_id",
    )
    .with_outcome(Outcome::Unknown)
}

macro_rules! unknown_when_orphaned {
    ($($request:ty => $response:ty),* $(,)?) => {
        $(impl Reconcile for $request {
            type Response = $response;
        })*
    };
}

unknown_when_orphaned! {
    pb::ResendInvitationRequest => pb::ResendInvitationResponse,
    pb::BatchResendInvitationsRequest => pb::BatchResendInvitationsResponse,
    pb::ReactivateDocumentRequest => pb::ReactivateDocumentResponse,
    pb::DeleteInvitationRequest => pb::DeleteInvitationResponse,
    pb::ReplaceSignerRequest => pb::ReplaceSignerResponse,
    pb::CancelInvitationsRequest => pb::CancelInvitationsResponse,
    pb::GetDocumentRequest => pb::GetDocumentResponse,
    pb::GetInvitationRequest => pb::GetInvitationResponse,
    // Never reconciled: an upload is safe to run again (see `Rpc`).
    pb::UploadDocumentMetadata => pb::UploadDocumentResponse,
}

#[async_trait::async_trait]
impl Reconcile for pb::SendInvitationRequest {
    type Response = pb::SendInvitationResponse;

    async fn reconcile(self, account: Arc<Account>, ctx: CallContext) -> Result<Self::Response> {
        let reference = self.reference.clone();
        let send = convert::send_request(account.config.provider, self)?;
        match account.provider.reconcile_send(&ctx, &send).await? {
            Some(outcome) => {
                tracing::info!("an orphaned send was found at the provider");
                Ok(convert::send_response(outcome))
            }
            None => {
                let error = outcome_unknown();
                Err(if reference.is_empty() {
                    error
                } else {
                    error.with_metadata(MetaKey::Reference, reference)
                })
            }
        }
    }
}

/// What the audit line needs from a mutating request, taken before the
/// request is handed to the provider call.
pub(super) struct AuditContext {
    provider: Option<crate::domain::ProviderKind>,
    account: String,
    request_id: String,
    subjects: audit::Subjects,
}

impl AuditContext {
    /// `None` when the call is not audited (reads, or audit switched off).
    pub(super) fn of<Req: ProviderScoped + Audited>(
        rpc: Rpc,
        message: &Req,
    ) -> Option<AuditContext> {
        (rpc.is_mutating() && audit::enabled()).then(|| AuditContext {
            provider: convert::provider(message.provider()).ok(),
            account: message.account().to_owned(),
            request_id: message.request_id().to_owned(),
            subjects: message.subjects(),
        })
    }

    /// The audit line for the call's outcome.
    pub(super) fn record<T>(
        &self,
        caller: &str,
        rpc: Rpc,
        result: &Result<T>,
        trace_id: Option<telemetry::TraceId>,
    ) {
        let (code, reason) = match result {
            Ok(_) => ("OK", ""),
            Err(error) => (code_name(error.code()), error.reason().as_str()),
        };
        audit::record(&audit::AuditLine {
            caller,
            rpc: rpc.name(),
            provider: self.provider,
            account: &self.account,
            request_id: &self.request_id,
            subjects: &self.subjects,
            code,
            reason,
            trace_id,
        });
    }
}

/// The stored first outcome of a request id.
pub(super) fn replay<T: prost::Message + Default>(stored: Stored) -> Result<T> {
    match stored {
        Stored::Response(bytes) => T::decode(bytes.as_slice())
            .map_err(|e| GatewayError::internal("a stored response is unreadable").with_source(e)),
        Stored::Error(bytes) => {
            let status = tonic_types::Status::decode(bytes.as_slice()).map_err(|e| {
                GatewayError::internal("a stored error is unreadable").with_source(e)
            })?;
            Err(GatewayError::replayed(status))
        }
    }
}

/// Requests that name a provider and account.
pub(super) trait ProviderScoped {
    fn provider(&self) -> i32;
    fn account(&self) -> &str;
    fn request_id(&self) -> &str {
        ""
    }
}

macro_rules! provider_scoped {
    ($($ty:ty => $has_request_id:tt),* $(,)?) => {
        $(impl ProviderScoped for $ty {
            fn provider(&self) -> i32 { self.provider }
            fn account(&self) -> &str { &self.account }
            provider_scoped!(@request_id $has_request_id);
        })*
    };
    (@request_id yes) => { fn request_id(&self) -> &str { &self.request_id } };
    (@request_id no) => {};
}

provider_scoped! {
    pb::SendInvitationRequest => yes,
    pb::ResendInvitationRequest => yes,
    pb::BatchResendInvitationsRequest => yes,
    pb::ReactivateDocumentRequest => yes,
    pb::DeleteInvitationRequest => yes,
    pb::ReplaceSignerRequest => yes,
    pb::CancelInvitationsRequest => yes,
    pb::GetDocumentRequest => no,
    pb::GetInvitationRequest => no,
    pb::UploadDocumentMetadata => yes,
    pb::DownloadDocumentRequest => no,
}

macro_rules! fingerprinted_whole {
    ($($ty:ty),* $(,)?) => {
        $(impl crate::idempotency::Fingerprint for $ty {})*
    };
}

fingerprinted_whole! {
    pb::ResendInvitationRequest,
    pb::BatchResendInvitationsRequest,
    pb::ReactivateDocumentRequest,
    pb::DeleteInvitationRequest,
    pb::ReplaceSignerRequest,
    pb::CancelInvitationsRequest,
    pb::GetDocumentRequest,
    pb::GetInvitationRequest,
    // Its bytes are not in it: `size` and `sha256` stand for them.
    pb::UploadDocumentMetadata,
}

impl crate::idempotency::Fingerprint for pb::SendInvitationRequest {
    fn detach_document(&self) -> Option<(Self, bytes::Bytes)> {
        let Some(pb::send_invitation_request::ProviderOptions::Leegality(options)) =
            &self.provider_options
        else {
            return None;
        };
        let document = options.file.clone();
        let mut rest = self.clone();
        if let Some(pb::send_invitation_request::ProviderOptions::Leegality(options)) =
            &mut rest.provider_options
        {
            options.file = bytes::Bytes::new();
        }
        Some((rest, document))
    }
}
