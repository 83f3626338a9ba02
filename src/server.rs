//! Server assembly: the invitation service, health, reflection (v1 and
//! v1alpha), the admin HTTP listener, and graceful shutdown.

use crate::grpc::inflight::{PayloadBudget, PayloadLayer};
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    auth::Authenticator,
    config::Config,
    grpc::InvitationApi,
    pb::{self, invitation_service_server::InvitationServiceServer},
    provider::{Registry, Services, transport::HttpClient},
};

/// The fully qualified name health and reflection use for our service.
pub const SERVICE_NAME: &str = "esign.v1.InvitationService";
/// Health entry for liveness probes: SERVING for as long as the process
/// answers, also while draining (readiness uses the service name).
pub const LIVENESS_SERVICE: &str = "liveness";
/// Largest inbound message: a 15 MB Leegality PDF plus the rest of the request.
pub(crate) const MAX_INBOUND_MESSAGE_BYTES: usize = 17 * 1024 * 1024;
/// Largest outbound message.
pub(crate) const MAX_OUTBOUND_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Concurrent RPCs one client connection may have in flight: announced in
/// HTTP/2 SETTINGS (`SETTINGS_MAX_CONCURRENT_STREAMS`), so clients queue
/// beyond it themselves and h2 refuses streams over it, with no per-call
/// semaphore in the gateway.
pub(crate) const CONCURRENCY_PER_CONNECTION: u32 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not read the listener address: {0}")]
    Listener(#[source] std::io::Error),
    #[error("could not bind the admin listener on {addr}: {source}")]
    AdminBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("could not build server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("could not build the provider HTTP client: {0}")]
    HttpClient(String),
    /// The Redis settings cannot be used: a configuration error (exit 64).
    #[error("GATEWAY_REDIS_URL / GATEWAY_REDIS_CLUSTER_URLS: {0}")]
    StateStore(String),
    /// The callers file is unusable: a configuration error (exit 64).
    #[error("GATEWAY_AUTH_TOKENS_FILE {0}")]
    Callers(String),
}

/// Why a run stopped: bad configuration found only at start (exit 64), or
/// anything else.
#[derive(Debug)]
pub enum RunError {
    Config(String),
    Runtime(String),
}

impl From<String> for RunError {
    fn from(message: String) -> RunError {
        RunError::Runtime(message)
    }
}

impl From<StartError> for RunError {
    fn from(error: StartError) -> RunError {
        match error {
            StartError::Callers(_) | StartError::StateStore(_) => {
                RunError::Config(error.to_string())
            }
            other => RunError::Runtime(other.to_string()),
        }
    }
}

/// The listeners a gateway serves on, bound by the caller (tests use port 0).
pub struct Listeners {
    /// gRPC: `InvitationService`, `EventService`, health and reflection.
    pub grpc: TcpListener,
    /// Admin HTTP: `/metrics`, `/healthz`, `/readyz`.
    pub admin: Option<TcpListener>,
    /// Webhook intake, the only port the providers reach.
    pub webhooks: Option<TcpListener>,
}

/// Binds the listeners of `config`, mapping failures to one readable line.
pub async fn bind(config: &Config) -> Result<Listeners, String> {
    bind_listeners(config, None).await
}

/// Like [`bind`], but an address already in use is replaced by a free port
/// on the same interface, and `moved` is told (the demo prints it): a
/// newcomer's demo should start beside a local Prometheus or a second demo.
pub async fn bind_or_move(
    config: &Config,
    moved: impl Fn(&'static str, SocketAddr),
) -> Result<Listeners, String> {
    bind_listeners(config, Some(&moved)).await
}

async fn bind_listeners(
    config: &Config,
    moved: Option<&dyn Fn(&'static str, SocketAddr)>,
) -> Result<Listeners, String> {
    let open = |addr: SocketAddr, variable: &'static str| async move {
        match (TcpListener::bind(addr).await, moved) {
            (Ok(listener), _) => Ok(listener),
            (Err(error), Some(moved)) if error.kind() == std::io::ErrorKind::AddrInUse => {
                let listener = TcpListener::bind(SocketAddr::new(addr.ip(), 0))
                    .await
                    .map_err(|error| format!("cannot listen on {addr} ({variable}): {error}"))?;
                if let Ok(local) = listener.local_addr() {
                    moved(variable, local);
                }
                Ok(listener)
            }
            (Err(error), _) => Err(format!("cannot listen on {addr} ({variable}): {error}")),
        }
    };
    let grpc = open(config.listen_addr, "GATEWAY_LISTEN_ADDR").await?;
    let admin = match config.metrics_addr {
        Some(addr) => Some(open(addr, "GATEWAY_METRICS_ADDR").await?),
        None => None,
    };
    let webhooks = match config.webhook_addr {
        Some(addr) => Some(open(addr, "GATEWAY_WEBHOOK_ADDR").await?),
        None => None,
    };
    Ok(Listeners {
        grpc,
        admin,
        webhooks,
    })
}

/// Keeps the account's webhook subscriptions in place: at start, then
/// hourly (someone may delete one in the provider's dashboard).
async fn keep_subscriptions(
    account: Arc<crate::provider::Account>,
    callback: String,
    secret: crate::secret::Secret,
) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        match account
            .provider
            .keep_webhook_subscriptions(&callback, secret.expose())
            .await
        {
            Ok(created) => tracing::info!(
                account = account.config.name.as_str(),
                created,
                "webhook subscriptions in place"
            ),
            Err(error) => tracing::warn!(error = %error, "could not keep webhook subscriptions"),
        }
    }
}

/// The server's TLS settings; with a client CA, client certificates are
/// required and verified.
fn tls_config(
    tls: &crate::config::TlsConfig,
) -> Result<tonic::transport::ServerTlsConfig, StartError> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let read = |path: &std::path::Path, variable: &str| {
        std::fs::read(path)
            .map_err(|e| StartError::Tls(format!("cannot read {variable} {}: {e}", path.display())))
    };
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(
        read(&tls.cert, "GATEWAY_TLS_CERT")?,
        read(&tls.key, "GATEWAY_TLS_KEY")?,
    ));
    if let Some(ca) = &tls.client_ca {
        config = config.client_ca_root(Certificate::from_pem(read(ca, "GATEWAY_TLS_CLIENT_CA")?));
    }
    Ok(config)
}

/// A gateway serving on a bound listener.
pub struct RunningServer {
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    health: HealthReporter,
    ready: Arc<AtomicBool>,
    stop_grpc: Option<oneshot::Sender<()>>,
    grpc_task: JoinHandle<Result<(), tonic::transport::Error>>,
    admin_task: Option<JoinHandle<()>>,
    drain_delay: Duration,
    shutdown_grace: Duration,
    webhook_addr: Option<SocketAddr>,
    /// Webhook listener and pollers, stopped at shutdown.
    background: Vec<JoinHandle<()>>,
}

/// How a graceful shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Every in-flight call finished within the grace period.
    Drained,
    /// The grace period ran out; remaining calls were dropped.
    GraceExpired,
}

impl RunningServer {
    /// Builds the provider accounts of `config` (their HTTP client, state
    /// store and `clock`) and starts serving on `listener`, which the caller
    /// binds (tests use port 0).
    pub async fn launch(
        config: &Config,
        clock: crate::clock::Clock,
        listeners: Listeners,
    ) -> Result<RunningServer, StartError> {
        let http = HttpClient::new(
            &config.timeouts,
            config.max_provider_body_bytes,
            config.max_in_flight,
        )
        .map_err(|error| StartError::HttpClient(error.to_string()))?;
        let services =
            Services::from_config(config, http, clock).map_err(StartError::StateStore)?;
        let events = crate::events::Events::start(services.event_log.clone());
        let store = services.store.clone();
        let clock = services.clock.clone();
        let registry = Arc::new(Registry::from_services(config, services));
        let mut background = Vec::new();
        for account in registry.accounts() {
            if let (Some(callback), Some(secret)) = (
                account.config.webhook_callback_url.clone(),
                account.config.webhook_secret.clone(),
            ) {
                background.push(tokio::spawn(keep_subscriptions(
                    account.clone(),
                    callback,
                    secret,
                )));
            }
            if crate::events::poller::polls(account) {
                let poller = crate::events::poller::Poller {
                    account: account.clone(),
                    store: store.clone(),
                    events: events.clone(),
                    clock: clock.clone(),
                    interval: config.bynn_poll_interval,
                    requests_per_minute: crate::config::defaults::BYNN_POLL_REQUESTS_PER_MINUTE,
                };
                background.push(tokio::spawn(poller.run()));
            }
        }
        let intake =
            crate::events::intake::Intake::new(registry.clone(), events.clone(), store, clock);
        let mut server =
            RunningServer::start(config, registry, events, listeners.grpc, listeners.admin).await?;
        if let Some(listener) = listeners.webhooks {
            server.webhook_addr = Some(listener.local_addr().map_err(StartError::Listener)?);
            let app = intake.router();
            background.push(tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, app).await {
                    tracing::error!(error = %error, "webhook listener failed");
                }
            }));
        }
        server.background = background;
        Ok(server)
    }

    /// Starts serving `registry` on `listener`. Health turns SERVING once
    /// the server accepts calls.
    pub(crate) async fn start(
        config: &Config,
        registry: Arc<Registry>,
        events: Arc<crate::events::Events>,
        listener: TcpListener,
        admin_listener: Option<TcpListener>,
    ) -> Result<RunningServer, StartError> {
        let local_addr = listener.local_addr().map_err(StartError::Listener)?;

        let (health, health_service) = tonic_health::server::health_reporter();
        // tonic-health registers "" as SERVING; we are not ready yet.
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health
            .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
            .await;

        let reflection_v1 = reflection_builder().build_v1()?;
        let reflection_v1alpha = reflection_builder().build_v1alpha()?;

        let auth = Authenticator::load(
            config.auth_tokens_file.as_deref(),
            config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        )
        .map_err(StartError::Callers)?;
        let payload_budget = PayloadBudget::new(config.max_inflight_bytes);
        let api = InvitationServiceServer::new(InvitationApi::new(
            registry,
            config,
            auth.clone(),
            payload_budget.clone(),
        ))
        .max_decoding_message_size(MAX_INBOUND_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_OUTBOUND_MESSAGE_BYTES);
        let event_api = pb::event_service_server::EventServiceServer::new(
            crate::events::service::EventApi::new(events, auth.clone()),
        );

        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let (stop_grpc, stopped) = oneshot::channel::<()>();
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &config.tls {
            builder = builder
                .tls_config(tls_config(tls)?)
                .map_err(|e| StartError::Tls(e.to_string()))?;
        }
        // Reflection may require a caller too; health always stays open.
        let reflection_guard = auth.filter(|_| config.protect_reflection);
        let guard =
            move |request: tonic::Request<()>| -> Result<tonic::Request<()>, tonic::Status> {
                if let Some(auth) = &reflection_guard {
                    auth.authenticate_request(&request)?;
                }
                Ok(request)
            };
        let reflection_v1 = InterceptedService::new(reflection_v1, guard.clone());
        let reflection_v1alpha = InterceptedService::new(reflection_v1alpha, guard);
        let router = builder
            .max_concurrent_streams(CONCURRENCY_PER_CONNECTION)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            // Long-lived connections are recycled so L4 balancers spread load.
            .max_connection_age(Duration::from_secs(30 * 60))
            .max_connection_age_grace(Duration::from_secs(30))
            .layer(PayloadLayer::new(payload_budget, MAX_INBOUND_MESSAGE_BYTES))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(api)
            .add_service(event_api);
        let grpc_task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
            let _ = stopped.await;
        }));

        let ready = Arc::new(AtomicBool::new(false));
        let (admin_addr, admin_task) = match admin_listener {
            Some(listener) => {
                let addr = listener.local_addr().map_err(StartError::Listener)?;
                let app = crate::admin::router(ready.clone());
                let task = tokio::spawn(async move {
                    if let Err(error) = axum::serve(listener, app).await {
                        tracing::error!(error = %error, "admin listener failed");
                    }
                });
                (Some(addr), Some(task))
            }
            None => (None, None),
        };

        health.set_service_status("", ServingStatus::Serving).await;
        health
            .set_service_status(SERVICE_NAME, ServingStatus::Serving)
            .await;
        health
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;
        ready.store(true, Ordering::SeqCst);
        tracing::info!(%local_addr, admin_addr = ?admin_addr, "gateway serving");

        Ok(RunningServer {
            local_addr,
            admin_addr,
            health,
            ready,
            stop_grpc: Some(stop_grpc),
            grpc_task,
            admin_task,
            drain_delay: config.drain_delay,
            shutdown_grace: config.shutdown_grace,
            webhook_addr: None,
            background: Vec::new(),
        })
    }

    /// Where the webhook intake listens, when it does.
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook_addr
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Health NOT_SERVING, wait the drain delay so load balancers stop
    /// routing here, then stop accepting and let in-flight calls finish
    /// within the grace period.
    pub async fn shutdown(mut self) -> ShutdownOutcome {
        self.health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        self.health
            .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
            .await;
        self.ready.store(false, Ordering::SeqCst);
        tracing::info!(
            drain_delay_ms = self.drain_delay.as_millis() as u64,
            "shutdown: NOT_SERVING, draining"
        );
        tokio::time::sleep(self.drain_delay).await;

        if let Some(stop) = self.stop_grpc.take() {
            let _ = stop.send(());
        }
        let outcome = match tokio::time::timeout(self.shutdown_grace, &mut self.grpc_task).await {
            Ok(Ok(Ok(()))) => ShutdownOutcome::Drained,
            Ok(Ok(Err(error))) => {
                tracing::error!(error = %error, "gRPC server ended with an error");
                ShutdownOutcome::Drained
            }
            Ok(Err(join_error)) => {
                tracing::error!(error = %join_error, "gRPC server task failed");
                ShutdownOutcome::Drained
            }
            Err(_) => {
                tracing::warn!(
                    grace_ms = self.shutdown_grace.as_millis() as u64,
                    "shutdown grace period ran out; dropping remaining calls"
                );
                self.grpc_task.abort();
                ShutdownOutcome::GraceExpired
            }
        };
        if let Some(admin) = self.admin_task.take() {
            admin.abort();
        }
        for task in self.background.drain(..) {
            task.abort();
        }
        tracing::info!(?outcome, "shutdown complete");
        outcome
    }
}

fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// Resolves on SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for SIGTERM; only SIGINT stops the gateway");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
