//! The provider trait every adapter implements, and the registry of
//! configured accounts the gRPC layer picks from.

pub(crate) mod bynn;
pub(crate) mod leegality;
pub(crate) mod signnow;
pub(crate) mod transport;

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use futures_util::{StreamExt, stream};
use tokio::time::Instant;

use crate::{
    clock::Clock,
    config::{AccountConfig, Config},
    domain::{
        ByteStream, Document, DocumentDownload, DownloadRequest, Expiry, Invitation, ProviderKind,
        ReplaceSignerRequest, Rpc, SendOutcome, SendRequest, UploadRequest, UploadedDocument,
    },
    error::{GatewayError, MetaKey, Outcome, Reason, Result},
    store::{MemoryStore, RedisStore, StateStore},
};

/// The outcome of one item of a batch resend.
#[derive(Debug)]
pub(crate) struct BatchItemOutcome {
    pub invitation_id: String,
    pub result: Result<Invitation>,
}

/// How many provider calls a fan-out batch keeps in flight at once.
pub(crate) const BATCH_FAN_OUT_CONCURRENCY: usize = 4;

/// What a provider call needs to know about the RPC it serves.
#[derive(Debug, Clone)]
pub(crate) struct CallContext {
    pub rpc: Rpc,
    /// When the caller stops waiting (from `grpc-timeout`).
    pub deadline: Option<Instant>,
    /// The caller's validated `request_id`, if any.
    pub request_id: Option<String>,
    /// The call's trace, and whether it is sampled (for metric exemplars).
    pub trace: Option<crate::telemetry::Trace>,
    /// The rpc span's trace context as provider calls send it: a provider
    /// call without a span of its own sends these, without looking its span
    /// up again.
    pub trace_headers: Option<crate::telemetry::TraceHeaders>,
}

impl CallContext {
    /// A context in the trace of the current span.
    pub(crate) fn new(rpc: Rpc, deadline: Option<Instant>) -> Self {
        let (trace, trace_headers) =
            crate::telemetry::trace_and_headers_of(&tracing::Span::current());
        Self::in_trace(rpc, deadline, trace, trace_headers)
    }

    /// A context in `trace`, already looked up by the caller.
    pub(crate) fn in_trace(
        rpc: Rpc,
        deadline: Option<Instant>,
        trace: Option<crate::telemetry::Trace>,
        trace_headers: Option<crate::telemetry::TraceHeaders>,
    ) -> Self {
        CallContext {
            rpc,
            deadline,
            request_id: None,
            trace,
            trace_headers,
        }
    }

    /// The trace id a latency sample of this call may point at.
    pub(crate) fn exemplar(&self) -> Option<crate::telemetry::TraceId> {
        self.trace.and_then(crate::telemetry::Trace::exemplar)
    }

    pub(crate) fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = (!request_id.is_empty()).then(|| request_id.to_owned());
        self
    }

    /// Time left before the caller's deadline.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// DEADLINE_EXCEEDED for this call; `may_have_reached_provider` marks a
    /// mutating call's outcome as unknown.
    pub(crate) fn deadline_exceeded(&self, may_have_reached_provider: bool) -> GatewayError {
        let error = GatewayError::new(
            Reason::DeadlineExceeded,
            "the caller's deadline ran out before the provider answered",
        )
        .with_metadata(MetaKey::Rpc, self.rpc.name());
        if self.rpc.is_mutating() && may_have_reached_provider {
            error.with_outcome(Outcome::Unknown)
        } else {
            error.with_outcome(Outcome::NotSent)
        }
    }
}

/// One e-signature provider account, in domain types only.
///
/// The defaults answer UNIMPLEMENTED `UNSUPPORTED_BY_PROVIDER`; an adapter
/// overrides what its provider offers and lists it in `supported_rpcs`.
#[async_trait]
pub(crate) trait Provider: Send + Sync + 'static {
    fn kind(&self) -> ProviderKind;

    /// The RPCs this adapter serves, for `ListProviders`.
    fn supported_rpcs(&self) -> &'static [Rpc];

    async fn send_invitation(
        &self,
        _ctx: &CallContext,
        _request: SendRequest,
    ) -> Result<SendOutcome> {
        Err(GatewayError::unsupported(
            self.kind(),
            Rpc::SendInvitation.name(),
        ))
    }

    /// What the provider shows of a send that may have happened (its
    /// replica died before recording the outcome): `Some` when the provider
    /// lets the gateway find it, `None` when it cannot tell. Never sends.
    async fn reconcile_send(
        &self,
        _ctx: &CallContext,
        _request: &SendRequest,
    ) -> Result<Option<SendOutcome>> {
        Ok(None)
    }

    /// Keeps the provider's webhook subscriptions pointed at `callback`
    /// where the provider lets the gateway manage them; how many it made.
    async fn keep_webhook_subscriptions(&self, _callback: &str, _secret: &str) -> Result<usize> {
        Ok(0)
    }

    /// Whether invitation calls take the optional `document_id` hint
    /// (signNow reads the document to tell invite kinds apart); others
    /// refuse it before any provider call.
    fn uses_invitation_document(&self) -> bool {
        false
    }

    async fn resend_invitation(
        &self,
        _ctx: &CallContext,
        _invitation_id: &str,
        _document_id: Option<&str>,
    ) -> Result<Invitation> {
        Err(GatewayError::unsupported(
            self.kind(),
            Rpc::ResendInvitation.name(),
        ))
    }

    /// Checks the ids of a batch before any provider call; the default
    /// applies the single-resend check to each.
    fn validate_batch_ids(&self, ids: &[String]) -> Result<()> {
        let _ = ids;
        Ok(())
    }

    /// One result per id. The default fans out over `resend_invitation`
    /// with bounded concurrency; a provider with a batch endpoint overrides it.
    async fn batch_resend(
        &self,
        ctx: &CallContext,
        invitation_ids: &[String],
        document_id: Option<&str>,
    ) -> Result<Vec<BatchItemOutcome>> {
        if !self.supported_rpcs().contains(&Rpc::BatchResendInvitations) {
            return Err(GatewayError::unsupported(
                self.kind(),
                Rpc::BatchResendInvitations.name(),
            ));
        }
        let outcomes = stream::iter(invitation_ids.iter().cloned())
            .map(|invitation_id| async move {
                let result = self
                    .resend_invitation(ctx, &invitation_id, document_id)
                    .await;
                BatchItemOutcome {
                    invitation_id,
                    result,
                }
            })
            .buffered(BATCH_FAN_OUT_CONCURRENCY)
            .collect()
            .await;
        Ok(outcomes)
    }

    async fn reactivate_document(
        &self,
        _ctx: &CallContext,
        _document_id: &str,
        _expiry: Expiry,
    ) -> Result<Document> {
        Err(GatewayError::unsupported(
            self.kind(),
            Rpc::ReactivateDocument.name(),
        ))
    }

    async fn delete_invitation(
        &self,
        _ctx: &CallContext,
        _invitation_id: &str,
        _document_id: Option<&str>,
    ) -> Result<()> {
        Err(GatewayError::unsupported(
            self.kind(),
            Rpc::DeleteInvitation.name(),
        ))
    }

    async fn replace_signer(
        &self,
        _ctx: &CallContext,
        _request: ReplaceSignerRequest,
    ) -> Result<Invitation> {
        Err(GatewayError::unsupported(
            self.kind(),
            Rpc::ReplaceSigner.name(),
        ))
    }

    async fn cancel_invitations(
        &self,
        _ctx: &CallContext,
        _document_id: &str,
        _reason: &str,
    ) -> Result<()> {
        Err(GatewayError::unsupported(
            self.kind(),
            Rpc::CancelInvitations.name(),
        ))
    }

    async fn get_document(&self, _ctx: &CallContext, _document_id: &str) -> Result<Document> {
        Err(GatewayError::unsupported(
            self.kind(),
            Rpc::GetDocument.name(),
        ))
    }

    async fn get_invitation(&self, _ctx: &CallContext, _invitation_id: &str) -> Result<Invitation> {
        Err(GatewayError::unsupported(
            self.kind(),
            Rpc::GetInvitation.name(),
        ))
    }

    /// Streams `bytes` into a new provider document. Only the first item
    /// of `bytes` is awaited before the provider call starts, so an
    /// adapter that does not upload refuses before reading any.
    async fn upload_document(
        &self,
        _ctx: &CallContext,
        _request: UploadRequest,
        _bytes: ByteStream,
    ) -> Result<UploadedDocument> {
        Err(GatewayError::unsupported(
            self.kind(),
            Rpc::UploadDocument.name(),
        ))
    }

    /// Opens a download: the answer comes once the provider's headers
    /// are in, and the body streams from the provider as the caller reads.
    async fn download_document(
        &self,
        _ctx: &CallContext,
        _request: DownloadRequest,
    ) -> Result<DocumentDownload> {
        Err(GatewayError::unsupported(
            self.kind(),
            Rpc::DownloadDocument.name(),
        ))
    }
}

/// A configured account with the adapter that serves it.
pub(crate) struct Account {
    pub config: AccountConfig,
    pub provider: Arc<dyn Provider>,
    pub is_default: bool,
}

impl Account {
    /// Adds `provider` and `account` metadata to an error from this account.
    pub(crate) fn annotate(&self, error: GatewayError) -> GatewayError {
        error
            .with_default_metadata(MetaKey::Provider, self.config.provider.as_str())
            .with_default_metadata(MetaKey::Account, self.config.name.clone())
    }
}

/// Every configured account, keyed by (provider, account name).
pub(crate) struct Registry {
    accounts: HashMap<(ProviderKind, String), Arc<Account>>,
    defaults: HashMap<ProviderKind, Arc<Account>>,
    ordered: Vec<Arc<Account>>,
    store: Arc<dyn StateStore>,
    http: Option<transport::HttpClient>,
}

/// What every adapter shares: the HTTP client, the clock and the state
/// store (request-id records, saga progress).
#[derive(Clone)]
pub(crate) struct Services {
    pub http: transport::HttpClient,
    pub clock: Clock,
    pub store: Arc<dyn StateStore>,
    /// The event log: a Redis Stream with Redis, in process otherwise.
    pub event_log: Arc<dyn crate::events::EventLog>,
}

impl Services {
    /// As configured: Redis when it is configured (an unusable setting is an
    /// error, never a quiet fall-back to memory), the breaker settings and
    /// budgets, and `clock` (the real one outside tests).
    pub(crate) fn from_config(
        config: &Config,
        http: transport::HttpClient,
        clock: Clock,
    ) -> std::result::Result<Services, String> {
        let retention = crate::events::Retention {
            age: config.event_retention,
            max_events: config.event_retention_max,
        };
        let (store, event_log): (Arc<dyn StateStore>, Arc<dyn crate::events::EventLog>) =
            match &config.redis {
                Some(redis) => {
                    let store = Arc::new(RedisStore::new(redis)?);
                    // Says at start, in one clear line, when Redis is unreachable.
                    tokio::spawn({
                        let store = store.clone();
                        async move { store.probe().await }
                    });
                    let log = Arc::new(crate::store::RedisEventLog::new(store.clone(), retention));
                    (store, log)
                }
                None => (
                    Arc::new(MemoryStore::default()),
                    Arc::new(crate::events::MemoryLog::new(retention)),
                ),
            };
        Ok(Services {
            http: http.with_breaker_and_budgets(
                config.breaker,
                clock.clone(),
                transport::Budgets::new(store.clone(), &config.accounts),
            ),
            clock,
            store,
            event_log,
        })
    }
}

impl Registry {
    pub(crate) fn from_services(config: &Config, services: Services) -> Registry {
        let http = services.http.clone();
        let store = services.store.clone();
        let accounts = config.accounts.iter().map(|account| {
            let provider: Arc<dyn Provider> = match account.provider {
                ProviderKind::Leegality => Arc::new(leegality::Leegality::new(
                    account.clone(),
                    services.clone(),
                    config.timeouts,
                )),
                ProviderKind::SignNow => Arc::new(signnow::SignNow::new(
                    account.clone(),
                    services.clone(),
                    config.timeouts,
                )),
                ProviderKind::Bynn => Arc::new(bynn::Bynn::new(
                    account.clone(),
                    services.clone(),
                    config.timeouts,
                )),
            };
            (account.clone(), provider)
        });
        let mut registry = Registry::new(accounts);
        registry.store = store;
        registry.http = Some(http);
        registry
    }

    /// Builds a registry from ready adapters (tests inject fakes here).
    pub(crate) fn new(
        accounts: impl IntoIterator<Item = (AccountConfig, Arc<dyn Provider>)>,
    ) -> Registry {
        let mut registry = Registry {
            accounts: HashMap::new(),
            defaults: HashMap::new(),
            ordered: Vec::new(),
            store: Arc::new(MemoryStore::default()),
            http: None,
        };
        for (config, provider) in accounts {
            let is_default = config.name == crate::config::DEFAULT_ACCOUNT;
            let account = Arc::new(Account {
                config,
                provider,
                is_default,
            });
            if is_default {
                registry
                    .defaults
                    .insert(account.config.provider, account.clone());
            }
            registry.accounts.insert(
                (account.config.provider, account.config.name.clone()),
                account.clone(),
            );
            registry.ordered.push(account);
        }
        registry.ordered.sort_by(|a, b| {
            (a.config.provider, &a.config.name).cmp(&(b.config.provider, &b.config.name))
        });
        registry
    }

    /// The account a request names; empty means the provider's default.
    /// The name a request's `account` stands for: itself, or the
    /// provider's default account name when empty (for authorization before
    /// the lookup).
    pub(crate) fn account_name<'a>(&'a self, provider: ProviderKind, account: &'a str) -> &'a str {
        if !account.is_empty() {
            return account;
        }
        self.defaults
            .get(&provider)
            .map_or(crate::config::DEFAULT_ACCOUNT, |a| a.config.name.as_str())
    }

    pub(crate) fn resolve(&self, provider: ProviderKind, account: &str) -> Result<Arc<Account>> {
        let has_any = self.ordered.iter().any(|a| a.config.provider == provider);
        if !has_any {
            return Err(GatewayError::new(
                Reason::ProviderNotConfigured,
                format!(
                    "{} is not configured on this gateway",
                    provider.display_name()
                ),
            )
            .with_provider(provider));
        }
        if account.is_empty() {
            return self.defaults.get(&provider).cloned().ok_or_else(|| {
                GatewayError::new(
                    Reason::ProviderNotConfigured,
                    format!(
                        "{} has no default account; name one in the account field",
                        provider.display_name()
                    ),
                )
                .with_provider(provider)
            });
        }
        self.accounts
            .get(&(provider, account.to_owned()))
            .cloned()
            .ok_or_else(|| {
                GatewayError::new(
                    Reason::UnknownAccount,
                    format!(
                        "no {} account with that name is configured",
                        provider.display_name()
                    ),
                )
                .with_provider(provider)
                .with_metadata(MetaKey::Account, account)
                .with_field_violation("account", "is not a configured account of this provider")
            })
    }

    pub(crate) fn accounts(&self) -> &[Arc<Account>] {
        &self.ordered
    }

    /// Where request-id records and saga progress live.
    pub(crate) fn store(&self) -> Arc<dyn StateStore> {
        self.store.clone()
    }

    /// The account's circuit.
    pub(crate) fn breaker_state(&self, account: &Account) -> transport::BreakerState {
        self.http
            .as_ref()
            .map_or(transport::BreakerState::Closed, |http| {
                http.breaker_state(account.config.provider, &account.config.name)
            })
    }
}
