//! signNow REST adapter: OAuth token lifecycle, freeform and field invites,
//! resend, delete, the three-step replace-signer saga, cancel and document
//! status.
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
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use crate::{
    clock::Clock,
    config::{AccountConfig, Credentials, SignNowResendId, Timeouts},
    domain::{
        Document, DocumentState, Invitation, InvitationState, ProviderKind, ProviderWarning,
        ReplaceSignerRequest, Rpc, SendOptions, SendOutcome, SendRequest, SignNowAuthentication,
        SignNowInviteMode, SignNowPhoneMethod, SignNowSignerOptions, Signer,
    },
    error::{GatewayError, Reason, Result},
    provider::{
        CallContext, Provider, Services,
        http::{self, CredentialHeader, HttpClient, Outbound, ProviderResponse, RetryPolicy},
    },
    secret::Secret,
    store::StateStore,
    validate,
};

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
];

pub struct SignNow {
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

/// The cached bearer token. The async mutex is held while a token is
/// fetched, so a burst of calls triggers one token request.
struct TokenCache {
    state: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    /// `Bearer <access token>`, built once per token.
    bearer: CredentialHeader,
    refresh: Option<Secret>,
    refresh_at: DateTime<Utc>,
    generation: u64,
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
}

impl SignNow {
    pub fn new(account: AccountConfig, services: Services, timeouts: Timeouts) -> Self {
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
        http::url_with_segments(&self.account.base_url, segments)
    }

    // === token lifecycle ===

    /// A bearer token valid for a while yet, fetched or refreshed if needed.
    async fn bearer(&self, ctx: &CallContext) -> Result<(CredentialHeader, u64)> {
        if let Some(fixed) = &self.fixed_bearer {
            return Ok((fixed.clone(), 0));
        }
        let mut state = self.tokens.state.lock().await;
        let now = self.clock.now();
        if let Some(token) = state.as_ref()
            && now < token.refresh_at
        {
            return Ok((token.bearer.clone(), token.generation));
        }
        let generation = state.as_ref().map_or(1, |t| t.generation + 1);
        let refresh = state.as_ref().and_then(|t| t.refresh.clone());
        let grant = match refresh {
            Some(refresh_token) => match self.token_request(ctx, Some(&refresh_token)).await {
                Ok(grant) => grant,
                // The refresh-grant error is undocumented: any refusal falls
                // back to the password grant.
                Err(error) if error.reason() == Reason::ProviderCredentialsRejected => {
                    tracing::info!("signNow refused the refresh token; using the password grant");
                    self.token_request(ctx, None).await?
                }
                Err(error) => return Err(error),
            },
            None => self.token_request(ctx, None).await?,
        };
        let lifetime = chrono::Duration::seconds(grant.expires_in.max(1));
        // Refresh a tenth of the lifetime early, at most five minutes.
        let early = (lifetime / 10).min(chrono::Duration::minutes(5));
        let token = CachedToken {
            bearer: CredentialHeader::new(&format!("Bearer {}", grant.access_token)),
            refresh: grant.refresh_token.map(Secret::new),
            refresh_at: now + lifetime - early,
            generation,
        };
        let bearer = (token.bearer.clone(), generation);
        *state = Some(token);
        tracing::info!(
            expires_in_secs = grant.expires_in,
            "signNow access token obtained"
        );
        Ok(bearer)
    }

    /// Forgets the access token `generation` if it is still the cached one.
    async fn invalidate(&self, generation: u64) {
        let mut state = self.tokens.state.lock().await;
        if let Some(token) = state.as_mut()
            && token.generation == generation
        {
            token.refresh_at = DateTime::<Utc>::MIN_UTC;
        }
    }

    async fn token_request(
        &self,
        ctx: &CallContext,
        refresh_token: Option<&Secret>,
    ) -> Result<TokenGrant> {
        let Credentials::SignNowPassword {
            username, password, ..
        } = &self.account.credentials
        else {
            return Err(GatewayError::internal(
                "signNow account has no password-grant credentials",
            ));
        };
        let form: Vec<(&str, &str)> = match refresh_token {
            Some(refresh) => vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose()),
            ],
            None => vec![
                ("grant_type", "password"),
                ("username", username.as_str()),
                ("password", password.expose()),
                ("scope", "*"),
            ],
        };
        let outbound = Outbound::new(
            "token",
            Method::POST,
            self.url(&["oauth2", "token"]),
            "/oauth2/token",
        )
        .credential(HeaderName::from_static("authorization"), &self.basic)?
        .form_body(&form)
        .timeout(self.timeouts.token)
        .retry(RetryPolicy::Safe);
        let response = self
            .http
            .send(ctx, KIND, &self.account.name, outbound)
            .await?;
        if response.status.is_success()
            && let Ok(grant) = response.json::<TokenGrant>()
        {
            return Ok(grant);
        }
        if response.status.is_success() {
            return Err(http::unrecognized(KIND, &response));
        }
        if response.status.is_server_error() || response.status == StatusCode::TOO_MANY_REQUESTS {
            return Err(http::common_status_error(KIND, &response)
                .unwrap_or_else(|| http::unrecognized(KIND, &response)));
        }
        let error = WireError::parse(&response);
        tracing::warn!(
            status = response.status.as_u16(),
            error = error.text(),
            code = error.code_string(),
            "signNow token request refused"
        );
        Err(GatewayError::new(
            Reason::ProviderCredentialsRejected,
            "signNow rejected the gateway's credentials",
        )
        .with_provider(KIND)
        .with_metadata("providerHttpStatus", response.status.as_u16().to_string())
        .with_metadata("providerCode", error.code_string()))
    }

    /// Sends `outbound` with a bearer token. When signNow says the token is
    /// invalid, the token is refreshed once; the call is replayed only when
    /// `replay` says that is safe.
    async fn send(
        &self,
        ctx: &CallContext,
        replay: Replay,
        build: impl Fn() -> Result<Outbound>,
    ) -> Result<ProviderResponse> {
        let (bearer, generation) = self.bearer(ctx).await?;
        let response = self.send_with(ctx, build()?, &bearer).await?;
        if !is_invalid_token(&response) {
            return Ok(response);
        }
        if self.fixed_bearer.is_some() {
            return Err(credentials_rejected(&response));
        }
        tracing::info!("signNow refused the access token; refreshing it");
        self.invalidate(generation).await;
        let (bearer, _) = self.bearer(ctx).await?;
        if replay == Replay::Unsafe {
            // signNow refused before acting, but this call sends email or is
            // billed: the caller decides whether to send it again.
            return Err(GatewayError::new(
                Reason::ProviderUnavailable,
                "signNow refused the gateway's access token; a fresh token is ready, retry the call",
            )
            .with_provider(KIND)
            .with_metadata("outcome", "not_applied")
            .with_retry_after(Duration::from_secs(1)));
        }
        let response = self.send_with(ctx, build()?, &bearer).await?;
        if is_invalid_token(&response) {
            return Err(credentials_rejected(&response));
        }
        Ok(response)
    }

    async fn send_with(
        &self,
        ctx: &CallContext,
        outbound: Outbound,
        bearer: &CredentialHeader,
    ) -> Result<ProviderResponse> {
        let outbound = outbound.credential(HeaderName::from_static("authorization"), bearer)?;
        self.http
            .send(ctx, KIND, &self.account.name, outbound)
            .await
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
            .map_err(|_| http::unrecognized(KIND, &response))
    }

    fn sender(&self, from: &str) -> Result<String> {
        let from = if from.is_empty() {
            self.account.sender_email.clone().unwrap_or_default()
        } else {
            from.to_owned()
        };
        if from.is_empty() {
            return Err(GatewayError::invalid_field(
                "signnow.from",
                "is required: the signNow account's login email (no SIGNNOW_SENDER_EMAIL is configured)",
            ));
        }
        if !validate::is_email(&from) {
            return Err(GatewayError::invalid_field(
                "signnow.from",
                "must be an email address",
            ));
        }
        Ok(from)
    }

    async fn send_freeform(
        &self,
        ctx: &CallContext,
        request: &SendRequest,
        options: &SignNowSendOptions<'_>,
    ) -> Result<SendOutcome> {
        let signer = match request.signers.as_slice() {
            [signer] => signer,
            _ => {
                return Err(GatewayError::invalid_field(
                    "signers",
                    "a freeform invite has exactly one signer",
                ));
            }
        };
        if !validate::is_email(&signer.email) {
            return Err(GatewayError::invalid_field(
                "signers[0].email",
                "must be an email address",
            ));
        }
        validate::reject_set(
            "",
            &[
                ("signers[0].role", !signer.role.is_empty()),
                ("signers[0].role_id", !signer.role_id.is_empty()),
                ("signers[0].order", signer.order.is_some()),
                ("signers[0].signnow", signer.signnow.is_some()),
                ("signnow.cc_steps", !options.cc_steps.is_empty()),
                ("signnow.viewers", !options.viewers.is_empty()),
            ],
            "belongs to field invites; a freeform invite has no roles or steps",
        )?;
        let mut body = Map::new();
        body.insert("from".into(), json!(options.from));
        body.insert("to".into(), json!(signer.email));
        insert_common(&mut body, request, options);
        let document_id = request.document_id.as_str();
        let response = self
            .send(ctx, Replay::Unsafe, || {
                Outbound::new(
                    "freeform_invite",
                    Method::POST,
                    self.url(&["document", document_id, "invite"]),
                    "/document/{document_id}/invite",
                )
                .json_body(&body)
                .map(|o| {
                    // Each call makes a new billed invite and email.
                    o.timeout(self.timeouts.write)
                        .retry(RetryPolicy::OnlyBeforeSent)
                })
            })
            .await?;
        if !response.status.is_success() {
            return Err(map_error(&response, Op::Invite));
        }
        let created: FreeformCreated = response
            .json()
            .map_err(|_| http::unrecognized(KIND, &response))?;
        Ok(SendOutcome {
            document_id: Some(request.document_id.clone()),
            invitations: vec![Invitation {
                id: created.id,
                signer: Signer {
                    email: signer.email.clone(),
                    ..Signer::default()
                },
                state: InvitationState::Pending,
                // Freeform invites carry no status word at signNow.
                provider_status: String::new(),
                is_signers_turn: true,
                document_id: Some(request.document_id.clone()),
                send_time: Some(self.clock.now()),
                ..Invitation::default()
            }],
            warnings: Vec::new(),
        })
    }

    async fn send_field(
        &self,
        ctx: &CallContext,
        request: &SendRequest,
        options: &SignNowSendOptions<'_>,
    ) -> Result<SendOutcome> {
        if request.signers.is_empty() {
            return Err(GatewayError::invalid_field(
                "signers",
                "a field invite needs at least one signer",
            ));
        }
        let mut recipients = Vec::with_capacity(request.signers.len());
        let mut roles_seen = std::collections::HashSet::new();
        for (index, signer) in request.signers.iter().enumerate() {
            let recipient = field_recipient(index, signer)?;
            let role_key = if signer.role_id.is_empty() {
                format!("name:{}", signer.role)
            } else {
                format!("id:{}", signer.role_id)
            };
            if !roles_seen.insert(role_key) {
                return Err(GatewayError::invalid_field(
                    format!("signers[{index}].role"),
                    "names the same role as an earlier signer",
                ));
            }
            recipients.push(recipient);
        }
        let mut body = Map::new();
        body.insert("to".into(), Value::Array(recipients));
        body.insert("from".into(), json!(options.from));
        insert_common(&mut body, request, options);
        if !options.cc_steps.is_empty() {
            body.insert("cc_step".into(), Value::Array(options.cc_steps.clone()));
        }
        if !options.viewers.is_empty() {
            body.insert("viewers".into(), Value::Array(options.viewers.clone()));
        }
        let document_id = request.document_id.as_str();
        let response = self
            .send(ctx, Replay::Safe, || {
                Outbound::new(
                    "field_invite",
                    Method::POST,
                    self.url(&["document", document_id, "invite"]),
                    "/document/{document_id}/invite",
                )
                .json_body(&body)
                .map(|o| {
                    // A repeat answers 65629, which is recognised below.
                    o.timeout(self.timeouts.write).retry(RetryPolicy::Safe)
                })
            })
            .await?;
        if !response.status.is_success() {
            let error = map_error(&response, Op::Invite);
            if !(error.reason() == Reason::InviteAlreadyExists
                && response.is_retry_after_possible_delivery)
            {
                return Err(error);
            }
            tracing::info!("retried field invite found its own invite in place");
        }
        // signNow returns no ids for field invites: read them back.
        let mut warnings = Vec::new();
        let document = match self.read_document(ctx, document_id).await {
            Ok(document) => Some(document),
            Err(error) => {
                tracing::warn!(error = %error, "could not read the field invites back");
                warnings.push(ProviderWarning {
                    code: "gateway.readback.failed".into(),
                    message: "the invites were sent, but their ids could not be read back; call GetDocument".into(),
                });
                None
            }
        };
        let now = self.clock.now();
        let invitations = request
            .signers
            .iter()
            .map(|signer| {
                let found = document.as_ref().and_then(|document| {
                    document
                        .field_invites
                        .iter()
                        .rev()
                        .find(|invite| {
                            invite.email.eq_ignore_ascii_case(&signer.email)
                                && (invite.role_id == signer.role_id || invite.role == signer.role)
                                && invite.is_open(now)
                        })
                        .map(|invite| field_invitation(document, invite, now))
                });
                found.unwrap_or_else(|| Invitation {
                    signer: Signer {
                        email: signer.email.clone(),
                        role: signer.role.clone(),
                        role_id: signer.role_id.clone(),
                        ..Signer::default()
                    },
                    document_id: Some(document_id.to_owned()),
                    ..Invitation::default()
                })
            })
            .collect();
        Ok(SendOutcome {
            document_id: Some(document_id.to_owned()),
            invitations,
            warnings,
        })
    }

    fn document_from(&self, document: WireDocument) -> Document {
        let now = self.clock.now();
        let mut invitations: Vec<Invitation> = document
            .field_invites
            .iter()
            .map(|invite| field_invitation(&document, invite, now))
            .collect();
        invitations.extend(
            document
                .requests
                .iter()
                .map(|request| freeform_invitation(&document.id, request)),
        );
        let state = document_state(&invitations);
        Document {
            id: document.id,
            reference: None,
            state,
            provider_status: String::new(),
            invitations,
        }
    }

    // === replace signer saga ===

    fn saga_key(&self, request_id: &str) -> String {
        format!(
            "saga:replace_signer:{}:{}:{request_id}",
            KIND.as_str(),
            self.account.name
        )
    }

    async fn load_saga(&self, key: &str) -> Result<Option<SagaRecord>> {
        let Some(bytes) = self.store.get(key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            GatewayError::internal("saga progress record is unreadable").with_source(e)
        })
    }

    async fn save_saga(&self, key: &str, record: &SagaRecord) -> Result<()> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| GatewayError::internal("could not encode saga progress").with_source(e))?;
        self.store.put(key, bytes, SAGA_TTL).await
    }

    async fn run_saga(
        &self,
        ctx: &CallContext,
        key: &str,
        mut record: SagaRecord,
        request: &ReplaceSignerRequest,
        step2_body: &Value,
    ) -> Result<Invitation> {
        let resumed_at = record.completed_steps;
        if record.completed_steps == 0 {
            let old = record.old_invite_id.clone();
            let response = self
                .send(ctx, Replay::Safe, || {
                    Ok(Outbound::new(
                        "replace_delete_invite",
                        Method::DELETE,
                        self.url(&["field_invite", &old]),
                        "/field_invite/{field_invite_id}",
                    )
                    .timeout(self.timeouts.write)
                    .retry(RetryPolicy::Safe))
                })
                .await?;
            if !response.status.is_success() {
                let error = map_error(&response, Op::DeleteInvite);
                // Gone already after an attempt that may have arrived: done.
                if !(error.reason() == Reason::InvitationNotFound
                    && response.is_retry_after_possible_delivery)
                {
                    return Err(error);
                }
            }
            record.completed_steps = 1;
            self.save_saga(key, &record).await?;
        }
        if record.completed_steps == 1 {
            let outcome = self
                .send(ctx, Replay::Safe, || {
                    Outbound::new(
                        "replace_create_invite",
                        Method::POST,
                        self.url(&["field_invite"]),
                        "/field_invite",
                    )
                    .json_body(step2_body)
                    .map(|o| o.timeout(self.timeouts.write).retry(RetryPolicy::Safe))
                })
                .await;
            let response = outcome.map_err(|e| incomplete(e, &record))?;
            if response.status.is_success() {
                let created: FreeformCreated = response
                    .json()
                    .map_err(|_| incomplete(http::unrecognized(KIND, &response), &record))?;
                record.new_invite_id = Some(created.id);
            } else {
                let error = map_error(&response, Op::ReplaceCreate);
                let repeated = resumed_at == 1 || response.is_retry_after_possible_delivery;
                // "Invite already exists." on a resumed step 2 is our own.
                if !(error.reason() == Reason::InviteAlreadyExists && repeated) {
                    return Err(incomplete(error, &record));
                }
                tracing::info!("resumed step 2 found the replacement invite in place");
            }
            record.completed_steps = 2;
            self.save_saga(key, &record).await?;
        }
        if record.completed_steps == 2 {
            let document_id = request.document_id.as_str();
            let outcome = self
                .send(ctx, Replay::Safe, || {
                    Ok(Outbound::new(
                        "replace_trigger_invite",
                        Method::POST,
                        self.url(&["document", document_id, "trigger_fieldinvite"]),
                        "/document/{document_id}/trigger_fieldinvite",
                    )
                    .timeout(self.timeouts.write)
                    // Whether a re-trigger resends email is unconfirmed.
                    .retry(RetryPolicy::OnlyBeforeSent))
                })
                .await;
            let response = outcome.map_err(|e| incomplete(e, &record))?;
            if !response.status.is_success() {
                let error = map_error(&response, Op::Trigger);
                // "Field invite missing" on a resumed step 3: an earlier
                // trigger may have gone through; the document tells.
                let done = resumed_at == 2
                    && error.reason() == Reason::InvalidInvitationState
                    && self.replacement_is_live(ctx, request).await;
                if !done {
                    return Err(incomplete(error, &record));
                }
            }
            record.completed_steps = 3;
            self.save_saga(key, &record).await?;
        }
        self.replacement(ctx, request, record.new_invite_id.as_deref())
            .await
    }

    async fn replacement_is_live(&self, ctx: &CallContext, request: &ReplaceSignerRequest) -> bool {
        matches!(
            self.replacement(ctx, request, None).await,
            Ok(invitation) if !invitation.id.is_empty()
        )
    }

    /// The new invite as the document shows it now.
    async fn replacement(
        &self,
        ctx: &CallContext,
        request: &ReplaceSignerRequest,
        new_invite_id: Option<&str>,
    ) -> Result<Invitation> {
        let fallback = || Invitation {
            id: new_invite_id.unwrap_or_default().to_owned(),
            signer: Signer {
                email: request.new_signer.email.clone(),
                ..Signer::default()
            },
            state: InvitationState::Unspecified,
            document_id: Some(request.document_id.clone()),
            ..Invitation::default()
        };
        let document = match self.read_document(ctx, &request.document_id).await {
            Ok(document) => document,
            Err(error) => {
                tracing::warn!(error = %error, "replacement done; could not read it back");
                return Ok(fallback());
            }
        };
        let now = self.clock.now();
        let found = document
            .field_invites
            .iter()
            .rev()
            .find(|invite| match new_invite_id {
                Some(id) => invite.id == id,
                None => {
                    invite.email.eq_ignore_ascii_case(&request.new_signer.email)
                        && invite.is_open(now)
                }
            });
        Ok(found
            .map(|invite| field_invitation(&document, invite, now))
            .unwrap_or_else(fallback))
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
        let no_options = SendOptions::SignNow {
            from: String::new(),
            mode: None,
            cc_steps: Vec::new(),
            viewers: Vec::new(),
            cc_subject: String::new(),
            cc_message: String::new(),
        };
        let options = match &request.options {
            SendOptions::None => &no_options,
            options => options,
        };
        let SendOptions::SignNow {
            from,
            mode,
            cc_steps,
            viewers,
            cc_subject,
            cc_message,
        } = options
        else {
            return Err(GatewayError::invalid_field(
                "signnow",
                "these options are for another provider than signNow",
            ));
        };
        validate_id("document_id", &request.document_id)?;
        if !request.reference.is_empty() {
            return Err(GatewayError::invalid_field(
                "reference",
                "is not supported by signNow; leave it empty",
            ));
        }
        for (field, value) in [
            ("subject", &request.subject),
            ("message", &request.message),
            ("signnow.cc_subject", cc_subject),
            ("signnow.cc_message", cc_message),
        ] {
            check_text(field, value)?;
        }
        for (index, copy) in request.cc.iter().enumerate() {
            if !validate::is_email(&copy.email) {
                return Err(GatewayError::invalid_field(
                    format!("cc[{index}].email"),
                    "must be an email address",
                ));
            }
        }
        let mut steps = Vec::with_capacity(cc_steps.len());
        for (index, step) in cc_steps.iter().enumerate() {
            if !validate::is_email(&step.email) {
                return Err(GatewayError::invalid_field(
                    format!("signnow.cc_steps[{index}].email"),
                    "must be an email address",
                ));
            }
            if step.step == 0 {
                return Err(GatewayError::invalid_field(
                    format!("signnow.cc_steps[{index}].step"),
                    "must be 1 or more",
                ));
            }
            steps.push(json!({"name": step.name, "email": step.email, "step": step.step}));
        }
        let mut viewer_list = Vec::with_capacity(viewers.len());
        for (index, viewer) in viewers.iter().enumerate() {
            if !validate::is_email(&viewer.email) {
                return Err(GatewayError::invalid_field(
                    format!("signnow.viewers[{index}].email"),
                    "must be an email address",
                ));
            }
            let mut entry = json!({"email": viewer.email});
            if !viewer.role.is_empty() {
                entry["role"] = json!(viewer.role);
            }
            if let Some(order) = viewer.order {
                entry["order"] = json!(order);
            }
            viewer_list.push(entry);
        }
        let options = SignNowSendOptions {
            from: self.sender(from)?,
            cc_subject,
            cc_message,
            cc_steps: steps,
            viewers: viewer_list,
        };
        // As the proto documents: without a mode, any role makes it a
        // field invite; otherwise it is a freeform invite.
        let mode = mode.unwrap_or_else(|| {
            if request
                .signers
                .iter()
                .any(|s| !s.role.is_empty() || !s.role_id.is_empty())
            {
                SignNowInviteMode::Field
            } else {
                SignNowInviteMode::Freeform
            }
        });
        match mode {
            SignNowInviteMode::Freeform => self.send_freeform(ctx, &request, &options).await,
            SignNowInviteMode::Field => self.send_field(ctx, &request, &options).await,
        }
    }

    async fn resend_invitation(
        &self,
        ctx: &CallContext,
        invitation_id: &str,
        document_id: Option<&str>,
    ) -> Result<Invitation> {
        validate_id("invitation_id", invitation_id)?;
        // With the document, the kind and state are known before anything
        // is sent, and either id the caller has is turned into the one the
        // account's setting names. Without it, the id goes as given.
        let (target, known) = match document_id {
            None => (invitation_id.to_owned(), None),
            Some(document_id) => {
                let document = self.read_document_for(ctx, document_id).await?;
                let now = self.clock.now();
                match document.find(invitation_id) {
                    None => return Err(not_on_document(invitation_id, document_id)),
                    Some(FoundInvite::Freeform(_)) => {
                        return Err(GatewayError::new(
                            Reason::InvitationNotResendable,
                            "signNow offers no resend for a freeform invite; cancel it with DeleteInvitation and send a new one",
                        )
                        .with_provider(KIND)
                        .with_metadata("inviteKind", "freeform")
                        .with_metadata("invitationId", invitation_id));
                    }
                    Some(FoundInvite::Field(invite)) => {
                        let invitation = field_invitation(&document, invite, now);
                        check_resendable(&invitation)?;
                        let target = match self.account.signnow_resend_id {
                            SignNowResendId::FieldInviteId => invite.id.clone(),
                            SignNowResendId::FieldRequestId => document
                                .field_request_id(&invite.role_id)
                                .map(str::to_owned)
                                .ok_or_else(|| {
                                    GatewayError::new(
                                        Reason::ProviderUnrecognizedResponse,
                                        "signNow lists no field request for this invite's role",
                                    )
                                    .with_provider(KIND)
                                    .with_metadata("invitationId", invitation_id)
                                })?,
                        };
                        (target, Some(invitation))
                    }
                }
            }
        };
        let body = json!({"client_timestamp": self.clock.now().timestamp()});
        let response = self
            .send(ctx, Replay::Unsafe, || {
                Outbound::new(
                    "resend",
                    Method::PUT,
                    self.url(&["fieldinvite", &target, "resend"]),
                    "/fieldinvite/{id}/resend",
                )
                .json_body(&body)
                .map(|o| {
                    // Sends a real email: never repeated once it may have
                    // arrived, and never retried with the other kind of id.
                    o.timeout(self.timeouts.write)
                        .retry(RetryPolicy::OnlyBeforeSent)
                })
            })
            .await?;
        if !response.status.is_success() {
            let error = map_error(&response, Op::Resend)
                .with_default_metadata("invitationId", invitation_id);
            if document_id.is_none() && error.reason() == Reason::InvitationNotFound {
                return Err(error.with_metadata(
                    "hint",
                    "freeform invites cannot be resent; pass document_id to have the gateway check the invite",
                ));
            }
            return Err(error);
        }
        Ok(match known {
            Some(invitation) => Invitation {
                state: InvitationState::Pending,
                is_signers_turn: true,
                ..invitation
            },
            None => Invitation {
                id: invitation_id.to_owned(),
                state: InvitationState::Pending,
                provider_status: "pending".into(),
                is_signers_turn: true,
                ..Invitation::default()
            },
        })
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
        validate_id("invitation_id", invitation_id)?;
        let outcome = match document_id {
            Some(document_id) => {
                let document = self.read_document_for(ctx, document_id).await?;
                match document.find(invitation_id) {
                    None => Err(not_on_document(invitation_id, document_id)),
                    Some(FoundInvite::Field(invite)) => {
                        let state = invite.state(self.clock.now());
                        if state == InvitationState::Signed {
                            return Err(signed_cannot_go(invitation_id));
                        }
                        self.delete_field_invite(ctx, &invite.id).await
                    }
                    Some(FoundInvite::Freeform(row)) => match freeform_state(row) {
                        InvitationState::Cancelled => Ok(()),
                        InvitationState::Signed => Err(signed_cannot_go(invitation_id)),
                        _ => self.cancel_freeform(ctx, row.invite_id()).await,
                    },
                }
            }
            // Both kinds are 40-hex ids: try the field invite, and on
            // "not found" the freeform invite of that id.
            None => match self.delete_field_invite(ctx, invitation_id).await {
                Err(error) if error.reason() == Reason::InvitationNotFound => {
                    match self.cancel_freeform(ctx, invitation_id).await {
                        Err(other) if other.reason() == Reason::InvitationNotFound => Err(error),
                        outcome => outcome,
                    }
                }
                outcome => outcome,
            },
        };
        outcome.map_err(|e| e.with_default_metadata("invitationId", invitation_id))
    }

    async fn replace_signer(
        &self,
        ctx: &CallContext,
        request: ReplaceSignerRequest,
    ) -> Result<Invitation> {
        let Some(request_id) = ctx.request_id.as_deref() else {
            return Err(GatewayError::invalid_field(
                "request_id",
                "is required: a replacement takes three signNow calls, and a retry with the same id resumes where one stopped",
            ));
        };
        validate_id("document_id", &request.document_id)?;
        validate_id("invitation_id", &request.invitation_id)?;
        let step2 = replace_body(&request)?;
        let fingerprint = serde_json::to_string(&json!({
            "document": request.document_id,
            "invite": request.invitation_id,
            "body": step2,
        }))
        .unwrap_or_default();

        let key = self.saga_key(request_id);
        let lock_key = format!("{key}:running");
        if !self
            .store
            .claim(&lock_key, b"1".to_vec(), SAGA_LOCK_TTL)
            .await?
        {
            return Err(GatewayError::new(
                Reason::RequestInProgress,
                "a replacement with this request_id is running",
            )
            .with_retry_after(Duration::from_secs(2)));
        }
        let outcome = async {
            let record = match self.load_saga(&key).await? {
                Some(record) if record.fingerprint != fingerprint => {
                    return Err(GatewayError::new(
                        Reason::RequestIdReused,
                        "this request_id was used for a different replacement",
                    )
                    .with_field_violation("request_id", "was used for a different request"));
                }
                Some(record) => {
                    tracing::info!(
                        completed_steps = record.completed_steps,
                        "resuming replace-signer saga"
                    );
                    record
                }
                None => {
                    let role_id = self.check_replaceable(ctx, &request).await?;
                    let record = SagaRecord {
                        fingerprint: fingerprint.clone(),
                        old_invite_id: request.invitation_id.clone(),
                        role_id,
                        completed_steps: 0,
                        new_invite_id: None,
                    };
                    self.save_saga(&key, &record).await?;
                    record
                }
            };
            let mut body = step2.clone();
            body["role_id"] = json!(record.role_id);
            self.run_saga(ctx, &key, record, &request, &body).await
        }
        .await;
        if let Err(error) = self.store.delete(&lock_key).await {
            tracing::warn!(error = %error, "could not release the saga lock");
        }
        outcome
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
        Err(map_error(&response, Op::Cancel).with_default_metadata("documentId", document_id))
    }

    async fn get_document(&self, ctx: &CallContext, document_id: &str) -> Result<Document> {
        validate_id("document_id", document_id)?;
        let document = self
            .read_document(ctx, document_id)
            .await
            .map_err(|e| e.with_default_metadata("documentId", document_id))?;
        Ok(self.document_from(document))
    }
}

impl SignNow {
    async fn read_document_for(
        &self,
        ctx: &CallContext,
        document_id: &str,
    ) -> Result<WireDocument> {
        self.read_document(ctx, document_id)
            .await
            .map_err(|e| e.with_default_metadata("documentId", document_id))
    }

    async fn delete_field_invite(&self, ctx: &CallContext, invite_id: &str) -> Result<()> {
        let response = self
            .send(ctx, Replay::Safe, || {
                Ok(Outbound::new(
                    "delete_invite",
                    Method::DELETE,
                    self.url(&["field_invite", invite_id]),
                    "/field_invite/{field_invite_id}",
                )
                .timeout(self.timeouts.write)
                .retry(RetryPolicy::Safe))
            })
            .await?;
        if response.status.is_success() {
            return Ok(());
        }
        let error = map_error(&response, Op::DeleteInvite);
        if error.reason() == Reason::InvitationNotFound && response.is_retry_after_possible_delivery
        {
            return Ok(());
        }
        Err(error)
    }

    /// `PUT /invite/{id}/cancel`: how signNow withdraws one freeform invite.
    async fn cancel_freeform(&self, ctx: &CallContext, invite_id: &str) -> Result<()> {
        let response = self
            .send(ctx, Replay::Safe, || {
                Outbound::new(
                    "cancel_freeform_invite",
                    Method::PUT,
                    self.url(&["invite", invite_id, "cancel"]),
                    "/invite/{invite_id}/cancel",
                )
                .json_body(&json!({}))
                .map(|o| o.timeout(self.timeouts.write).retry(RetryPolicy::Safe))
            })
            .await?;
        if response.status.is_success() {
            return Ok(());
        }
        let error = map_error(&response, Op::CancelFreeform);
        if error.reason() == Reason::InvitationNotFound && response.is_retry_after_possible_delivery
        {
            return Ok(());
        }
        Err(error)
    }

    /// Step 0 of the saga: the invite exists on the document and is still
    /// open; returns its role id (checked against the caller's).
    async fn check_replaceable(
        &self,
        ctx: &CallContext,
        request: &ReplaceSignerRequest,
    ) -> Result<String> {
        let document = self
            .read_document(ctx, &request.document_id)
            .await
            .map_err(|e| e.with_default_metadata("documentId", &request.document_id))?;
        let Some(invite) = document
            .field_invites
            .iter()
            .find(|invite| invite.id == request.invitation_id)
        else {
            return Err(GatewayError::new(
                Reason::InvitationNotFound,
                "the document has no field invite with this id",
            )
            .with_provider(KIND)
            .with_metadata("invitationId", &request.invitation_id)
            .with_missing_resource("field_invite", &request.invitation_id));
        };
        if !invite.is_open(self.clock.now()) {
            return Err(GatewayError::new(
                Reason::InvalidInvitationState,
                "only a created or pending invite can get a new signer",
            )
            .with_provider(KIND)
            .with_metadata("status", &invite.status)
            .with_metadata("invitationId", &request.invitation_id));
        }
        let signer = &request.new_signer;
        if !signer.role_id.is_empty() && signer.role_id != invite.role_id {
            return Err(GatewayError::invalid_field(
                "new_signer.role_id",
                "is not the role of the invite being replaced",
            ));
        }
        if !signer.role.is_empty() && signer.role != invite.role {
            return Err(GatewayError::invalid_field(
                "new_signer.role",
                "is not the role of the invite being replaced",
            ));
        }
        if invite.role_id.is_empty() {
            return Err(GatewayError::new(
                Reason::ProviderUnrecognizedResponse,
                "signNow listed the invite without a role id",
            )
            .with_provider(KIND));
        }
        Ok(invite.role_id.clone())
    }
}

/// Send options after validation, shared by both invite modes.
struct SignNowSendOptions<'a> {
    from: String,
    cc_subject: &'a str,
    cc_message: &'a str,
    cc_steps: Vec<Value>,
    viewers: Vec<Value>,
}

fn insert_common(
    body: &mut Map<String, Value>,
    request: &SendRequest,
    options: &SignNowSendOptions<'_>,
) {
    if !request.cc.is_empty() {
        body.insert(
            "cc".into(),
            Value::Array(request.cc.iter().map(|c| json!(c.email)).collect()),
        );
    }
    for (key, value) in [
        ("subject", request.subject.as_str()),
        ("message", request.message.as_str()),
        ("cc_subject", options.cc_subject),
        ("cc_message", options.cc_message),
    ] {
        if !value.is_empty() {
            body.insert(key.into(), json!(value));
        }
    }
}

/// One `to[]` entry of a field invite, checked.
fn field_recipient(index: usize, signer: &Signer) -> Result<Value> {
    let field = |name: &str| format!("signers[{index}].{name}");
    if !validate::is_email(&signer.email) {
        return Err(GatewayError::invalid_field(
            field("email"),
            "must be an email address",
        ));
    }
    if signer.role.is_empty() && signer.role_id.is_empty() {
        return Err(GatewayError::invalid_field(
            field("role"),
            "a field invite needs the signer's role or role_id",
        ));
    }
    if !signer.role_id.is_empty() {
        validate_id(&field("role_id"), &signer.role_id)?;
    }
    check_text(&field("role"), &signer.role)?;
    validate::reject_set(
        &format!("signers[{index}]"),
        &[
            ("name", !signer.name.is_empty()),
            ("phone", !signer.phone.is_empty()),
        ],
        "is not used by signNow invites (see signnow.prefill_signature_name and signnow.authentication_phone)",
    )?;
    let mut entry = json!({"email": signer.email});
    if signer.role_id.is_empty() {
        entry["role"] = json!(signer.role);
    } else {
        entry["role_id"] = json!(signer.role_id);
    }
    if let Some(order) = signer.order {
        entry["order"] = json!(order);
    }
    if let Some(options) = &signer.signnow {
        let prefix = format!("signers[{index}].signnow");
        if let Some(days) = options.expiration_days
            && !FIELD_EXPIRATION_DAYS.contains(&days)
        {
            return Err(GatewayError::invalid_field(
                format!("{prefix}.expiration_days"),
                "must be from 3 to 180",
            ));
        }
        if let Some(days) = options.expiration_days {
            entry["expiration_days"] = json!(days);
        }
        if let Some(reminder) = options.reminder_days {
            let limit = options
                .expiration_days
                .unwrap_or(*FIELD_EXPIRATION_DAYS.end());
            if reminder == 0 || reminder >= limit {
                return Err(GatewayError::invalid_field(
                    format!("{prefix}.reminder_days"),
                    "must be at least 1 and less than expiration_days",
                ));
            }
            entry["reminder"] = json!(reminder);
        }
        insert_authentication(&mut entry, &prefix, options)?;
        for (key, name, value) in [
            ("subject", "subject", &options.subject),
            ("message", "message", &options.message),
            (
                "signing_instructions",
                "signing_instructions",
                &options.signing_instructions,
            ),
            (
                "prefill_signature_name",
                "prefill_signature_name",
                &options.prefill_signature_name,
            ),
        ] {
            check_text(&format!("{prefix}.{name}"), value)?;
            if !value.is_empty() {
                entry[key] = json!(value);
            }
        }
        if !options.redirect_uri.is_empty() {
            let valid = url::Url::parse(&options.redirect_uri)
                .is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some());
            if !valid {
                return Err(GatewayError::invalid_field(
                    format!("{prefix}.redirect_uri"),
                    "must be an absolute https URL",
                ));
            }
            entry["redirect_uri"] = json!(options.redirect_uri);
        }
        if options.decline_by_signature {
            entry["decline_by_signature"] = json!("1");
        }
        if options.reassign {
            // Documented choice (evidence.md N-4): the invite endpoint's own
            // reference page says `reassign` is "whether or not to allow
            // recipients reassign this invite", so "1" allows it. signNow's
            // MCP server describes "1" as "cannot forward"; its Postman
            // examples send "1" without saying. The endpoint page wins
            // until a sandbox shows otherwise.
            entry["reassign"] = json!("1");
        }
        if options.force_new_signature {
            entry["force_new_signature"] = json!(1);
        }
    }
    Ok(entry)
}

fn insert_authentication(
    entry: &mut Value,
    prefix: &str,
    options: &SignNowSignerOptions,
) -> Result<()> {
    match options.authentication {
        SignNowAuthentication::None => {
            if !options.password.is_empty() || !options.authentication_phone.is_empty() {
                return Err(GatewayError::invalid_field(
                    format!("{prefix}.authentication_type"),
                    "must be PASSWORD or PHONE when a password or phone is given",
                ));
            }
        }
        SignNowAuthentication::Password => {
            if options.password.is_empty() {
                return Err(GatewayError::invalid_field(
                    format!("{prefix}.password"),
                    "is required for PASSWORD authentication",
                ));
            }
            entry["authentication_type"] = json!("password");
            entry["password"] = json!(options.password);
        }
        SignNowAuthentication::Phone => {
            if !validate::is_e164(&options.authentication_phone) {
                return Err(GatewayError::invalid_field(
                    format!("{prefix}.authentication_phone"),
                    "must be an E.164 number for PHONE authentication",
                ));
            }
            entry["authentication_type"] = json!("phone");
            entry["phone"] = json!(options.authentication_phone);
            match options.phone_method {
                SignNowPhoneMethod::Default => {}
                SignNowPhoneMethod::Sms => entry["method"] = json!("sms"),
                SignNowPhoneMethod::PhoneCall => entry["method"] = json!("phone_call"),
            }
        }
    }
    Ok(())
}

/// Step 2's body (`POST /field_invite`) without `role_id`, checked.
fn replace_body(request: &ReplaceSignerRequest) -> Result<Value> {
    let signer = &request.new_signer;
    if !validate::is_email(&signer.email) {
        return Err(GatewayError::invalid_field(
            "new_signer.email",
            "must be an email address",
        ));
    }
    if !signer.role_id.is_empty() {
        validate_id("new_signer.role_id", &signer.role_id)?;
    }
    validate::reject_set(
        "new_signer",
        &[
            ("name", !signer.name.is_empty()),
            ("phone", !signer.phone.is_empty()),
            ("order", signer.order.is_some()),
        ],
        "is not used when replacing a signNow signer",
    )?;
    let mut body = json!({
        "email": signer.email,
        "is_replace": request.keep_invite_settings,
    });
    if let Some(options) = &signer.signnow {
        let prefix = "new_signer.signnow";
        validate::reject_set(
            prefix,
            &[
                ("subject", !options.subject.is_empty()),
                ("message", !options.message.is_empty()),
                ("redirect_uri", !options.redirect_uri.is_empty()),
                ("reassign", options.reassign),
                ("force_new_signature", options.force_new_signature),
                (
                    "signing_instructions",
                    !options.signing_instructions.is_empty(),
                ),
                (
                    "prefill_signature_name",
                    !options.prefill_signature_name.is_empty(),
                ),
            ],
            "is not accepted by signNow when replacing a signer",
        )?;
        if let Some(days) = options.expiration_days {
            if days == 0 || days > REPLACE_MAX_DAYS {
                return Err(GatewayError::invalid_field(
                    format!("{prefix}.expiration_days"),
                    "must be from 1 to 30 when replacing a signer",
                ));
            }
            body["expiration_days"] = json!(days);
        }
        if let Some(days) = options.reminder_days {
            if days == 0 || days > REPLACE_MAX_DAYS {
                return Err(GatewayError::invalid_field(
                    format!("{prefix}.reminder_days"),
                    "must be from 1 to 30 when replacing a signer",
                ));
            }
            body["reminder"] = json!(days);
        }
        if options.decline_by_signature {
            body["decline_by_signature"] = json!(1);
        }
        insert_authentication(&mut body, prefix, options)?;
    }
    Ok(body)
}

/// Progress of one replacement, stored under its request id.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SagaRecord {
    fingerprint: String,
    old_invite_id: String,
    role_id: String,
    completed_steps: u8,
    new_invite_id: Option<String>,
}

/// A failed later step: the caller learns what is done and resumes with
/// the same request id.
fn incomplete(error: GatewayError, record: &SagaRecord) -> GatewayError {
    let completed = match record.completed_steps {
        0 => "",
        1 => "delete",
        _ => "delete,create",
    };
    let failed = match record.completed_steps {
        0 => "delete",
        1 => "create",
        _ => "trigger",
    };
    let retry_after = error.retry_after().unwrap_or(Duration::from_secs(1));
    tracing::warn!(
        completed_steps = completed,
        failed_step = failed,
        error = %error,
        "replace-signer saga stopped part way"
    );
    error
        .reclassify(
            Reason::ReplaceSignerIncomplete,
            "the signer replacement stopped part way; retry with the same request_id to resume",
        )
        .with_metadata("completedSteps", completed)
        .with_metadata("failedStep", failed)
        .with_metadata("roleId", &record.role_id)
        .with_retry_after(retry_after)
}

fn validate_id(field: &str, value: &str) -> Result<()> {
    validate::require_path_safe_id(field, value, MAX_ID_LEN)
}

fn check_text(field: &str, value: &str) -> Result<()> {
    if value.chars().count() > MAX_TEXT_LEN || value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(GatewayError::invalid_field(
            field,
            format!("must be at most {MAX_TEXT_LEN} characters without control characters"),
        ));
    }
    Ok(())
}

/// signNow's raw status vocabulary (the full set is unconfirmed; the
/// synonyms follow signNow's own MCP server). `skipped` is a step whose
/// conditional fields were skipped (.NET SDK `InviteStatus`): nobody will
/// sign it, so it reads as cancelled.
fn invitation_state(status: &str) -> InvitationState {
    match status.to_ascii_lowercase().as_str() {
        "created" | "new" => InvitationState::Created,
        "pending" | "sent" | "waiting" => InvitationState::Pending,
        "fulfilled" | "signed" | "completed" | "done" => InvitationState::Signed,
        "declined" | "rejected" => InvitationState::Rejected,
        "expired" => InvitationState::Expired,
        "canceled" | "cancelled" | "skipped" => InvitationState::Cancelled,
        _ => InvitationState::Unspecified,
    }
}

fn document_state(invitations: &[Invitation]) -> DocumentState {
    if invitations.is_empty() {
        return DocumentState::Draft;
    }
    // A skipped step neither blocks completion nor completes anything.
    let live: Vec<&Invitation> = invitations
        .iter()
        .filter(|i| i.provider_status != "skipped")
        .collect();
    let all = |state| live.iter().all(|i| i.state == state);
    let any = |state| live.iter().any(|i| i.state == state);
    if all(InvitationState::Signed) {
        DocumentState::Completed
    } else if any(InvitationState::Rejected) {
        DocumentState::Rejected
    } else if all(InvitationState::Cancelled) {
        DocumentState::Cancelled
    } else if any(InvitationState::Expired)
        && !any(InvitationState::Pending)
        && !any(InvitationState::Created)
    {
        DocumentState::Expired
    } else {
        DocumentState::InProgress
    }
}

fn field_invitation(
    document: &WireDocument,
    invite: &WireFieldInvite,
    now: DateTime<Utc>,
) -> Invitation {
    let state = invite.state(now);
    Invitation {
        id: invite.id.clone(),
        sign_url: None,
        signer: Signer {
            email: invite.email.clone(),
            role: invite.role.clone(),
            role_id: invite.role_id.clone(),
            // Field invites carry no order: it is their role's step.
            order: document.signing_order(&invite.role_id),
            ..Signer::default()
        },
        state,
        provider_status: invite.status.clone(),
        is_signers_turn: state == InvitationState::Pending,
        expire_time: invite.expiration_time.as_ref().and_then(epoch),
        delivery_attempts: None,
        document_id: Some(document.id.clone()),
        reference: None,
        send_time: invite.created.as_ref().and_then(epoch),
    }
}

/// A freeform row has no status (evidence.md N-12): signed once it has a
/// `signature_id`, withdrawn when `canceled`, awaiting the signer otherwise.
fn freeform_state(row: &WireFreeform) -> InvitationState {
    if row.canceled.as_ref().is_some_and(truthy) {
        InvitationState::Cancelled
    } else if row
        .signature_id
        .as_ref()
        .is_some_and(|id| !id.is_null() && id.as_str() != Some(""))
    {
        InvitationState::Signed
    } else {
        InvitationState::Pending
    }
}

fn freeform_invitation(document_id: &str, row: &WireFreeform) -> Invitation {
    let state = freeform_state(row);
    Invitation {
        id: row.invite_id().to_owned(),
        signer: Signer {
            email: row.signer_email.clone().unwrap_or_default(),
            ..Signer::default()
        },
        state,
        is_signers_turn: state == InvitationState::Pending,
        provider_status: String::new(),
        send_time: row.created.as_ref().and_then(epoch),
        document_id: Some(document_id.to_owned()),
        ..Invitation::default()
    }
}

/// Resend needs an invite that is the signer's turn now.
fn check_resendable(invitation: &Invitation) -> Result<()> {
    let refuse = |reason, message| {
        Err(GatewayError::new(reason, message)
            .with_provider(KIND)
            .with_metadata("invitationId", &invitation.id)
            .with_metadata("status", &invitation.provider_status)
            .with_metadata("state", invitation.state.name()))
    };
    match invitation.state {
        InvitationState::Pending => Ok(()),
        InvitationState::Created => refuse(
            Reason::InvalidInvitationState,
            "it is not this signer's turn yet",
        ),
        InvitationState::Expired => refuse(
            Reason::InvitationNotResendable,
            "the invite has expired; send a new one",
        ),
        InvitationState::Rejected => refuse(
            Reason::InvitationNotResendable,
            "the signer declined the invite",
        ),
        InvitationState::Signed => refuse(
            Reason::InvitationNotResendable,
            "the signer has already signed",
        ),
        _ => refuse(
            Reason::InvitationNotResendable,
            "only an invite awaiting its signer can be resent",
        ),
    }
}

fn not_on_document(invitation_id: &str, document_id: &str) -> GatewayError {
    GatewayError::new(
        Reason::InvitationNotFound,
        "the document has no invite with this id",
    )
    .with_provider(KIND)
    .with_metadata("invitationId", invitation_id)
    .with_metadata("documentId", document_id)
    .with_missing_resource("invite", invitation_id)
}

fn signed_cannot_go(invitation_id: &str) -> GatewayError {
    GatewayError::new(
        Reason::InvalidInvitationState,
        "a signed invite cannot be removed",
    )
    .with_provider(KIND)
    .with_metadata("invitationId", invitation_id)
}

/// signNow writes flags as booleans, numbers or strings ("1", "0").
fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty() && s != "0" && !s.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

/// A number sent as a JSON number or a string of digits.
fn number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn epoch(value: &Value) -> Option<DateTime<Utc>> {
    number(value).and_then(|seconds| DateTime::from_timestamp(seconds, 0))
}

fn is_invalid_token(response: &ProviderResponse) -> bool {
    if response.status == StatusCode::UNAUTHORIZED {
        return true;
    }
    response.status == StatusCode::BAD_REQUEST
        && WireError::parse(response).auth_error.as_deref() == Some("invalid_token")
}

fn credentials_rejected(response: &ProviderResponse) -> GatewayError {
    GatewayError::new(
        Reason::ProviderCredentialsRejected,
        "signNow rejected the gateway's access token",
    )
    .with_provider(KIND)
    .with_metadata("providerHttpStatus", response.status.as_u16().to_string())
    .with_metadata("providerCode", WireError::parse(response).code_string())
}

/// Maps a non-2xx answer on code and message together.
fn map_error(response: &ProviderResponse, op: Op) -> GatewayError {
    let status = response.status.as_u16();
    if status != 400
        && status != 404
        && let Some(error) = http::common_status_error(KIND, response)
    {
        return error;
    }
    let wire = WireError::parse(response);
    let text = wire.text().to_ascii_lowercase();
    let code = wire.code;
    tracing::info!(
        status,
        code = wire.code_string(),
        message = wire.text(),
        "signNow refused the call"
    );
    let (reason, message) = match (code, op) {
        (Some(65629), _) => (
            Reason::InviteAlreadyExists,
            "the document already has open field invites",
        ),
        (Some(65615), _) if text.contains("already exists") => (
            Reason::InviteAlreadyExists,
            "the role already has an invite",
        ),
        (Some(65615), _) => (
            Reason::InvalidInvitationState,
            "the document has no field invite waiting to be sent",
        ),
        (Some(66502), _) => (
            Reason::InvitationNotFound,
            "signNow has no such field invite",
        ),
        (Some(65594), _) => (
            Reason::DocumentHasNoFields,
            "the document has no fields: send a freeform invite or add fields first",
        ),
        (Some(65582), _) if text.contains("role") => (
            Reason::ProviderRejectedRequest,
            "the role does not exist on the document",
        ),
        // 65582 also carries other refusals ("unable to find document
        // group template", plan limits on personalised invites).
        (Some(65582), _) if text.contains("document not found") => {
            (Reason::DocumentNotFound, "signNow has no such document")
        }
        (Some(65582), _) => (
            Reason::ProviderRejectedRequest,
            "signNow refused the request (code 65582)",
        ),
        (Some(65536), Op::Resend) if text.contains("routing out of order") => (
            Reason::InvalidInvitationState,
            "it is not this signer's turn yet",
        ),
        (Some(65536), Op::Resend) if text.contains("expired") => (
            Reason::InvitationNotResendable,
            "the invite has expired; send a new one",
        ),
        (Some(65536), Op::Resend) if text.contains("could not resend") => (
            Reason::InvitationNotFound,
            "signNow has no such field invite",
        ),
        (Some(65536 | 65538 | 65585), _) => (
            Reason::ProviderRejectedRequest,
            "signNow rejected the request as invalid",
        ),
        _ if status == 404 => match op {
            Op::ReadDocument | Op::Cancel | Op::Trigger | Op::Invite => {
                (Reason::DocumentNotFound, "signNow has no such document")
            }
            _ => (Reason::InvitationNotFound, "signNow has no such invite"),
        },
        _ if wire.text() == "Document not found" || text == "document not found." => {
            (Reason::DocumentNotFound, "signNow has no such document")
        }
        _ => (
            Reason::ProviderUnrecognizedResponse,
            "signNow refused the call for a reason the gateway does not know",
        ),
    };
    let mut error = GatewayError::new(reason, message)
        .with_provider(KIND)
        .with_metadata("providerHttpStatus", status.to_string())
        .with_metadata("providerCode", wire.code_string())
        .with_metadata(
            "providerMessage",
            wire.text().chars().take(200).collect::<String>(),
        );
    if reason == Reason::ProviderRejectedRequest {
        let field = if text.contains("from") || text == "email not found" {
            Some("signnow.from")
        } else if text.contains("role") {
            Some("signers")
        } else {
            None
        };
        if let Some(field) = field {
            error = error
                .with_field_violation(field, wire.text().chars().take(200).collect::<String>());
        }
    }
    error
}

// === wire types ===

#[derive(Debug, Deserialize)]
struct TokenGrant {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default = "default_expires_in", deserialize_with = "lenient_i64")]
    expires_in: i64,
}

fn default_expires_in() -> i64 {
    // Not stated in the answer: assume an hour rather than the 30 days the
    // docs' example shows, so a wrong guess costs a refresh, not failures.
    3600
}

fn lenient_i64<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<i64, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(number(&value).unwrap_or_else(default_expires_in))
}

#[derive(Debug, Deserialize)]
struct FreeformCreated {
    id: String,
}

#[derive(Debug, Deserialize)]
struct WireDocument {
    id: String,
    #[serde(default)]
    field_invites: Vec<WireFieldInvite>,
    #[serde(default)]
    requests: Vec<WireFreeform>,
    /// Each field of a role carries the role's field request id, which
    /// is not the field invite id (evidence.md T-N7).
    #[serde(default)]
    fields: Vec<WireField>,
    #[serde(default)]
    roles: Vec<WireRole>,
}

/// An invite found on a document, of either kind.
enum FoundInvite<'a> {
    Field(&'a WireFieldInvite),
    Freeform(&'a WireFreeform),
}

impl WireDocument {
    /// The invite a caller's id names: a field invite id, a field request
    /// id (resolved through its role to the role's latest invite), or a
    /// freeform invite id.
    fn find(&self, id: &str) -> Option<FoundInvite<'_>> {
        if let Some(invite) = self.field_invites.iter().find(|i| i.id == id) {
            return Some(FoundInvite::Field(invite));
        }
        let by_request = self
            .fields
            .iter()
            .find(|f| {
                f.field_request_id.as_deref() == Some(id) || f.field_id.as_deref() == Some(id)
            })
            .and_then(|field| {
                let role_id = field.role_id.as_deref()?;
                self.field_invites
                    .iter()
                    .rev()
                    .find(|i| i.role_id == role_id)
            });
        if let Some(invite) = by_request {
            return Some(FoundInvite::Field(invite));
        }
        self.requests
            .iter()
            .find(|r| r.invite_id() == id || r.id.as_deref() == Some(id))
            .map(FoundInvite::Freeform)
    }

    fn field_request_id(&self, role_id: &str) -> Option<&str> {
        self.fields
            .iter()
            .filter(|f| f.role_id.as_deref() == Some(role_id))
            .find_map(|f| f.field_request_id.as_deref().filter(|id| !id.is_empty()))
    }

    fn signing_order(&self, role_id: &str) -> Option<u32> {
        self.roles
            .iter()
            .find(|r| r.unique_id == role_id)
            .and_then(|r| r.signing_order.as_ref().and_then(number))
            .and_then(|o| u32::try_from(o).ok())
            .filter(|o| *o > 0)
    }
}

#[derive(Debug, Deserialize)]
struct WireField {
    #[serde(default)]
    role_id: Option<String>,
    #[serde(default)]
    field_request_id: Option<String>,
    #[serde(default)]
    field_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireRole {
    #[serde(default)]
    unique_id: String,
    #[serde(default)]
    signing_order: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireFieldInvite {
    id: String,
    #[serde(default, deserialize_with = "string_or_null")]
    status: String,
    #[serde(default, deserialize_with = "string_or_null")]
    email: String,
    #[serde(default, deserialize_with = "string_or_null")]
    role: String,
    #[serde(default, deserialize_with = "string_or_null")]
    role_id: String,
    #[serde(default)]
    created: Option<Value>,
    #[serde(default)]
    expiration_time: Option<Value>,
    #[serde(default)]
    is_full_declined: Option<Value>,
    #[serde(default)]
    declined: Option<Value>,
}

impl WireFieldInvite {
    fn is_declined(&self) -> bool {
        self.is_full_declined.as_ref().is_some_and(truthy)
            || self
                .declined
                .as_ref()
                .and_then(Value::as_array)
                .is_some_and(|d| !d.is_empty())
    }

    /// The state from the whole row (evidence.md N-6): a decline shows in
    /// `is_full_declined`/`declined[]`, and an invite past its
    /// `expiration_time` is expired while its status still says pending.
    fn state(&self, now: DateTime<Utc>) -> InvitationState {
        if self.is_declined() {
            return InvitationState::Rejected;
        }
        let state = invitation_state(&self.status);
        let expired = self
            .expiration_time
            .as_ref()
            .and_then(epoch)
            .is_some_and(|at| at <= now);
        if expired && matches!(state, InvitationState::Created | InvitationState::Pending) {
            InvitationState::Expired
        } else {
            state
        }
    }

    fn is_open(&self, now: DateTime<Utc>) -> bool {
        matches!(
            self.state(now),
            InvitationState::Created | InvitationState::Pending
        )
    }
}

/// A freeform invite row in `requests[]` (fields per signNow's Node SDK;
/// there is no `status`).
#[derive(Debug, Deserialize)]
struct WireFreeform {
    #[serde(default)]
    id: Option<String>,
    /// The id `POST /document/{id}/invite` returned.
    #[serde(default)]
    unique_id: Option<String>,
    #[serde(default)]
    signer_email: Option<String>,
    #[serde(default)]
    created: Option<Value>,
    #[serde(default)]
    signature_id: Option<Value>,
    #[serde(default)]
    canceled: Option<Value>,
}

impl WireFreeform {
    fn invite_id(&self) -> &str {
        self.unique_id
            .as_deref()
            .or(self.id.as_deref())
            .unwrap_or_default()
    }
}

fn string_or_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

/// Either envelope: `{"errors": [{code, message}]}` or `{"error", "code"}`.
#[derive(Debug, Default)]
struct WireError {
    code: Option<i64>,
    message: Option<String>,
    /// The auth layer's `error` string (`invalid_token`, `invalid_client`).
    auth_error: Option<String>,
}

impl WireError {
    fn parse(response: &ProviderResponse) -> WireError {
        let Ok(body) = response.json::<Value>() else {
            return WireError::default();
        };
        if let Some(first) = body["errors"].as_array().and_then(|e| e.first()) {
            return WireError {
                code: number(&first["code"]),
                message: first["message"].as_str().map(str::to_owned),
                auth_error: None,
            };
        }
        if let Some(error) = body["error"].as_str() {
            return WireError {
                code: number(&body["code"]),
                message: Some(error.to_owned()),
                auth_error: Some(error.to_owned()),
            };
        }
        WireError::default()
    }

    fn text(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }

    fn code_string(&self) -> String {
        self.code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "none".into())
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_error_body_maps_to_an_error(
            status in prop::sample::select(vec![400u16, 401, 403, 404, 409, 422, 429, 500, 502, 503]),
            body in prop::collection::vec(any::<u8>(), 0..512),
            op in prop::sample::select(vec![Op::Invite, Op::Resend, Op::DeleteInvite, Op::ReplaceCreate, Op::Trigger, Op::Cancel, Op::ReadDocument]),
        ) {
            let response = ProviderResponse::fake(status, body);
            let error = map_error(&response, op);
            prop_assert!(!error.message().is_empty());
            let _ = is_invalid_token(&response);
        }

        #[test]
        fn any_code_and_message_maps_cleanly(code in any::<i64>(), message in any::<String>()) {
            let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
            let response = ProviderResponse::fake(400, body.to_string());
            let error = map_error(&response, Op::Resend);
            let expected = code.to_string();
            prop_assert_eq!(error.metadata("providerCode"), Some(expected.as_str()));
        }

        #[test]
        fn any_document_body_parses_or_is_refused(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = serde_json::from_slice::<WireDocument>(&body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: Value) -> ProviderResponse {
        ProviderResponse::fake(status, body.to_string())
    }

    fn reason(status: u16, code: i64, message: &str, op: Op) -> Reason {
        map_error(
            &response(
                status,
                json!({"errors": [{"code": code, "message": message}]}),
            ),
            op,
        )
        .reason()
    }

    #[test]
    fn codes_are_read_with_their_messages() {
        use Reason::*;
        let rows = [
            (
                65536,
                "Could not resend: routing out of order.",
                Op::Resend,
                InvalidInvitationState,
            ),
            (
                65536,
                "Could not resend expired invite.",
                Op::Resend,
                InvitationNotResendable,
            ),
            (65536, "could not resend", Op::Resend, InvitationNotFound),
            (
                65536,
                "To must be a valid email.",
                Op::Invite,
                ProviderRejectedRequest,
            ),
            (
                65536,
                "Email not found",
                Op::Invite,
                ProviderRejectedRequest,
            ),
            (
                65538,
                "Email must be a valid email.",
                Op::ReplaceCreate,
                ProviderRejectedRequest,
            ),
            (
                65585,
                "Email is invalid",
                Op::Invite,
                ProviderRejectedRequest,
            ),
            (65582, "Document not found", Op::Invite, DocumentNotFound),
            (65582, "Document not found.", Op::Trigger, DocumentNotFound),
            (
                65582,
                "Role does not exist.",
                Op::ReplaceCreate,
                ProviderRejectedRequest,
            ),
            (
                65594,
                "Cannot send a field invite: This document does not contain fields.",
                Op::Invite,
                DocumentHasNoFields,
            ),
            (
                65629,
                "Could not create duplicate field invite",
                Op::Invite,
                InviteAlreadyExists,
            ),
            (
                65615,
                "Invite already exists.",
                Op::ReplaceCreate,
                InviteAlreadyExists,
            ),
            (
                65615,
                "Field invite missing on this document.",
                Op::Trigger,
                InvalidInvitationState,
            ),
            (
                66502,
                "Field invite not found.",
                Op::DeleteInvite,
                InvitationNotFound,
            ),
            (
                12345,
                "Something new",
                Op::Invite,
                ProviderUnrecognizedResponse,
            ),
        ];
        for (code, message, op, expected) in rows {
            assert_eq!(reason(400, code, message, op), expected, "{code} {message}");
        }
    }

    #[test]
    fn both_envelopes_and_plain_statuses() {
        let plain = map_error(
            &response(400, json!({"error": "Document not found"})),
            Op::ReadDocument,
        );
        assert_eq!(plain.reason(), Reason::DocumentNotFound);
        let route = map_error(
            &response(404, json!({"404": "Unable to find a route"})),
            Op::Resend,
        );
        assert_eq!(route.reason(), Reason::InvitationNotFound);
        let limited = map_error(&response(429, json!({})), Op::Resend);
        assert_eq!(limited.reason(), Reason::RateLimited);
        assert!(limited.retry_after().is_some());
        assert!(is_invalid_token(&response(
            400,
            json!({"error": "invalid_token", "code": 1537})
        )));
        assert!(!is_invalid_token(&response(
            400,
            json!({"error": "invalid_request", "code": 1537})
        )));
    }

    #[test]
    fn statuses_map_to_the_unified_states() {
        assert_eq!(invitation_state("created"), InvitationState::Created);
        assert_eq!(invitation_state("pending"), InvitationState::Pending);
        assert_eq!(invitation_state("fulfilled"), InvitationState::Signed);
        assert_eq!(invitation_state("declined"), InvitationState::Rejected);
        assert_eq!(invitation_state("expired"), InvitationState::Expired);
        assert_eq!(invitation_state("cancelled"), InvitationState::Cancelled);
        assert_eq!(invitation_state("mystery"), InvitationState::Unspecified);
    }
}
