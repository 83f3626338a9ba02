//! signNow REST adapter: OAuth token lifecycle (`token`), freeform and
//! field invites, resend, delete and cancel (`invite`), the three-step
//! replace-signer saga (`replace`), document status (`state`), the error
//! table (`errors`) and signNow's JSON shapes (`wire`).
//!
//! signNow answers most errors with HTTP 400 and one of two envelopes
//! (`{"error", "code"}` from the auth layer, `{"errors": [{code, message}]}`
//! from the API); the same code means different things, so errors are
//! mapped on code and message together.

use std::time::Duration;

use ::http::{HeaderName, Method, StatusCode};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{
    clock::Clock,
    config::{AccountConfig, Credentials, SignNowResendId, Timeouts},
    domain::{
        Document, DocumentState, Invitation, InvitationState, ProviderKind, ProviderWarning,
        ReplaceSignerRequest, Rpc, SendOptions, SendOutcome, SendRequest, SignNowAuthentication,
        SignNowInviteMode, SignNowPhoneMethod, SignNowSignerOptions, Signer,
    },
    error::{GatewayError, MetaKey, Outcome, Reason, Result},
    provider::{
        CallContext, Provider, Services,
        transport::{
            self, Answer, CredentialHeader, HttpClient, Outbound, ProviderResponse, RetryPolicy,
        },
    },
    secret::Secret,
    store::StateStore,
    validate,
};

mod errors;
mod files;
mod invite;
mod replace;
mod state;
mod subscriptions;
#[cfg(test)]
mod tests;
mod token;
mod wire;

use self::{errors::*, invite::*, state::*, token::*, wire::*};

const KIND: ProviderKind = ProviderKind::SignNow;
const MAX_ID_LEN: usize = 64;
const MAX_TEXT_LEN: usize = 1000;
/// Field invite `expiration_days` range (sn-mcp-server model).
const FIELD_EXPIRATION_DAYS: std::ops::RangeInclusive<u32> = 3..=180;
/// Replace-signer step 2 allows at most 30 days for expiry and reminders.
const REPLACE_MAX_DAYS: u32 = 30;
/// How long saga progress is kept for a resume.
const SAGA_TTL: Duration = Duration::from_secs(24 * 3600);
/// A saga run holds its lock at most this long (a crashed run frees it).
const SAGA_LOCK_TTL: Duration = Duration::from_secs(120);

const SUPPORTED: &[Rpc] = &[
    Rpc::SendInvitation,
    Rpc::ResendInvitation,
    Rpc::BatchResendInvitations,
    Rpc::DeleteInvitation,
    Rpc::ReplaceSigner,
    Rpc::CancelInvitations,
    Rpc::GetDocument,
    Rpc::UploadDocument,
    Rpc::DownloadDocument,
];

pub(crate) struct SignNow {
    account: AccountConfig,
    http: HttpClient,
    clock: Clock,
    store: std::sync::Arc<dyn StateStore>,
    timeouts: Timeouts,
    tokens: TokenCache,
    /// `Basic <app token>` for the token endpoint, built once.
    basic: CredentialHeader,
    /// A configured ready access token (`SIGNNOW_ACCESS_TOKEN`), as a header.
    fixed_bearer: Option<CredentialHeader>,
}

/// Whether a call may be sent again after signNow refused the bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    Safe,
    /// Billed or email-sending: refused with a retryable error instead.
    Unsafe,
}

/// Which call an error answers; the same signNow code means different
/// things on different calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Invite,
    Resend,
    DeleteInvite,
    ReplaceCreate,
    Trigger,
    Cancel,
    CancelFreeform,
    ReadDocument,
    Upload,
    Download,
}

impl SignNow {
    pub(crate) fn new(account: AccountConfig, services: Services, timeouts: Timeouts) -> Self {
        let (basic, fixed_bearer) = match &account.credentials {
            Credentials::SignNowPassword { basic_token, .. } => (
                CredentialHeader::new(&format!("Basic {}", basic_token.expose())),
                None,
            ),
            Credentials::SignNowAccessToken { access_token } => (
                CredentialHeader::new(""),
                Some(CredentialHeader::new(&format!(
                    "Bearer {}",
                    access_token.expose()
                ))),
            ),
            _ => (CredentialHeader::new(""), None),
        };
        SignNow {
            basic,
            fixed_bearer,
            account,
            http: services.http,
            clock: services.clock,
            store: services.store,
            timeouts,
            tokens: TokenCache {
                state: Mutex::new(None),
            },
        }
    }

    fn url(&self, segments: &[&str]) -> url::Url {
        transport::url_with_segments(&self.account.base_url, segments)
    }

    /// Sends `outbound` with a bearer token. When signNow says the token is
    /// invalid, the token is refreshed once; the call is replayed only when
    /// `replay` says that is safe.
    async fn send(
        &self,
        ctx: &CallContext,
        replay: Replay,
        build: impl FnMut() -> Result<Outbound>,
    ) -> Result<ProviderResponse> {
        match self.exchange(ctx, replay, build, None).await? {
            Answer::Whole(response) => Ok(response),
            Answer::Streaming(_) => unreachable!("answers are streamed only when asked"),
        }
    }

    /// [`Self::send`], with the answer left unread when `stream` says it is
    /// a file. `build` is called again only for a replay.
    async fn exchange(
        &self,
        ctx: &CallContext,
        replay: Replay,
        mut build: impl FnMut() -> Result<Outbound>,
        stream: Option<fn(StatusCode, &::http::HeaderMap) -> bool>,
    ) -> Result<Answer> {
        let (bearer, generation) = self.bearer(ctx).await?;
        let answer = self.exchange_with(ctx, build()?, &bearer, stream).await?;
        let Answer::Whole(response) = &answer else {
            return Ok(answer);
        };
        if !is_invalid_token(response) {
            return Ok(answer);
        }
        if self.fixed_bearer.is_some() {
            return Err(credentials_rejected(response));
        }
        tracing::info!("signNow refused the access token; refreshing it");
        self.invalidate(generation).await;
        let (bearer, _) = self.bearer(ctx).await?;
        if replay == Replay::Unsafe {
            // signNow refused before acting, but this call sends email, is
            // billed or cannot be sent twice: the caller decides.
            return Err(GatewayError::new(
                Reason::ProviderUnavailable,
                "signNow refused the gateway's access token; a fresh token is ready, retry the call",
            )
            .with_provider(KIND)
            .with_outcome(Outcome::NotApplied)
            .with_retry_after(Duration::from_secs(1)));
        }
        let answer = self.exchange_with(ctx, build()?, &bearer, stream).await?;
        if let Answer::Whole(response) = &answer
            && is_invalid_token(response)
        {
            return Err(credentials_rejected(response));
        }
        Ok(answer)
    }

    async fn exchange_with(
        &self,
        ctx: &CallContext,
        outbound: Outbound,
        bearer: &CredentialHeader,
        stream: Option<fn(StatusCode, &::http::HeaderMap) -> bool>,
    ) -> Result<Answer> {
        let outbound = outbound.credential(HeaderName::from_static("authorization"), bearer)?;
        match stream {
            Some(stream) => {
                self.http
                    .open(ctx, KIND, &self.account.name, &outbound, stream)
                    .await
            }
            None => self
                .http
                .send(ctx, KIND, &self.account.name, &outbound)
                .await
                .map(Answer::Whole),
        }
    }

    async fn read_document(&self, ctx: &CallContext, document_id: &str) -> Result<WireDocument> {
        let response = self
            .send(ctx, Replay::Safe, || {
                Ok(Outbound::new(
                    "get_document",
                    Method::GET,
                    self.url(&["document", document_id]),
                    "/document/{document_id}",
                )
                .timeout(self.timeouts.read)
                .retry(RetryPolicy::Safe))
            })
            .await?;
        if !response.status.is_success() {
            return Err(map_error(&response, Op::ReadDocument));
        }
        response
            .json::<WireDocument>()
            .map_err(|_| transport::unrecognized(KIND, &response))
    }
}

#[async_trait]
impl Provider for SignNow {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn supported_rpcs(&self) -> &'static [Rpc] {
        SUPPORTED
    }

    fn uses_invitation_document(&self) -> bool {
        true
    }

    async fn send_invitation(
        &self,
        ctx: &CallContext,
        request: SendRequest,
    ) -> Result<SendOutcome> {
        self.send_invite(ctx, request).await
    }

    async fn keep_webhook_subscriptions(&self, callback: &str, secret: &str) -> Result<usize> {
        self.keep_subscriptions(callback, secret).await
    }

    async fn reconcile_send(
        &self,
        ctx: &CallContext,
        request: &SendRequest,
    ) -> Result<Option<SendOutcome>> {
        self.find_sent(ctx, request).await
    }

    async fn resend_invitation(
        &self,
        ctx: &CallContext,
        invitation_id: &str,
        document_id: Option<&str>,
    ) -> Result<Invitation> {
        self.resend(ctx, invitation_id, document_id).await
    }

    fn validate_batch_ids(&self, ids: &[String]) -> Result<()> {
        for (index, id) in ids.iter().enumerate() {
            validate_id(&format!("invitation_ids[{index}]"), id)?;
        }
        Ok(())
    }

    async fn delete_invitation(
        &self,
        ctx: &CallContext,
        invitation_id: &str,
        document_id: Option<&str>,
    ) -> Result<()> {
        self.delete(ctx, invitation_id, document_id).await
    }

    async fn replace_signer(
        &self,
        ctx: &CallContext,
        request: ReplaceSignerRequest,
    ) -> Result<Invitation> {
        self.replace(ctx, request).await
    }

    async fn cancel_invitations(
        &self,
        ctx: &CallContext,
        document_id: &str,
        reason: &str,
    ) -> Result<()> {
        validate_id("document_id", document_id)?;
        if reason.trim().is_empty() {
            return Err(GatewayError::invalid_field(
                "reason",
                "is required by signNow and must not be empty",
            ));
        }
        check_text("reason", reason)?;
        let body = json!({"reason": reason});
        let response = self
            .send(ctx, Replay::Safe, || {
                Outbound::new(
                    "cancel_invites",
                    Method::PUT,
                    self.url(&["document", document_id, "fieldinvitecancel"]),
                    "/document/{document_id}/fieldinvitecancel",
                )
                .json_body(&body)
                .map(|o| o.timeout(self.timeouts.write).retry(RetryPolicy::Safe))
            })
            .await?;
        // Any 2xx: one signNow mock answers "cancelled" instead of "success".
        if response.status.is_success() {
            return Ok(());
        }
        Err(map_error(&response, Op::Cancel)
            .with_default_metadata(MetaKey::DocumentId, document_id))
    }

    async fn upload_document(
        &self,
        ctx: &CallContext,
        request: crate::domain::UploadRequest,
        bytes: crate::domain::ByteStream,
    ) -> Result<crate::domain::UploadedDocument> {
        self.upload(ctx, request, bytes).await
    }

    async fn download_document(
        &self,
        ctx: &CallContext,
        request: crate::domain::DownloadRequest,
    ) -> Result<crate::domain::DocumentDownload> {
        self.download(ctx, request).await
    }

    async fn get_document(&self, ctx: &CallContext, document_id: &str) -> Result<Document> {
        validate_id("document_id", document_id)?;
        let document = self
            .read_document(ctx, document_id)
            .await
            .map_err(|e| e.with_default_metadata(MetaKey::DocumentId, document_id))?;
        Ok(self.document_from(document))
    }
}
