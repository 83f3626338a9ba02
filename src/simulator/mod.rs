//! A stateful fake of the Leegality, signNow and Bynn HTTP APIs, following
//! the provider notes in `shared/providers/` for everything the adapters
//! call: lifecycles, limits, cooldowns, credentials and error bodies.
//!
//! It serves the tests, the benchmark and the demo. Its clock is injectable
//! (tests move it instead of sleeping), it records every request it receives,
//! and it can add latency or inject faults (status, delay, malformed or huge
//! bodies, connection resets) on request.

mod answer;
pub mod bynn;
mod checks;
mod files;
pub mod leegality;
pub mod signnow;
pub mod webhooks;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use tokio::{net::TcpListener, task::JoinHandle};

pub(crate) use self::answer::{SimRequest, SimResponse};
pub(crate) use self::checks::{looks_like_e164, looks_like_email, random_hex};
pub use self::files::{ReceivedFile, sample_pdf};
pub use crate::clock::Clock;
use crate::{
    config::{AccountBudgets, AccountConfig, Credentials},
    domain::ProviderKind,
    secret::Secret,
};

/// Credentials the simulator accepts.
#[derive(Debug, Clone)]
pub struct SimulatorCredentials {
    pub leegality_auth_token: String,
    pub signnow_basic_token: String,
    pub signnow_username: String,
    pub signnow_password: String,
    pub bynn_api_key: String,
    /// Webhook signing: Leegality's private salt, signNow's subscription
    /// secret key, and the public half of the simulator's Bynn key.
    pub leegality_webhook_salt: String,
    pub signnow_webhook_secret: String,
    pub bynn_webhook_public_key: String,
}

impl Default for SimulatorCredentials {
    fn default() -> Self {
        SimulatorCredentials {
            leegality_auth_token: "sim-leegality-auth-token".into(),
            signnow_basic_token: "c2ltLWNsaWVudDpzaW0tc2VjcmV0".into(),
            signnow_username: "sender@example.com".into(),
            signnow_password: "sim-signnow-password".into(),
            bynn_api_key: "private_sandbox_sim_key".into(),
            leegality_webhook_salt: "sim-leegality-private-salt".into(),
            signnow_webhook_secret: "sim-signnow-webhook-secret".into(),
            bynn_webhook_public_key: webhooks::BYNN_PUBLIC_KEY.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub credentials: SimulatorCredentials,
    /// Host of Leegality sign URLs (`https://<host>/sign/<uuid>`).
    pub leegality_sign_host: String,
    /// Lifetime of signNow access tokens, in seconds.
    pub signnow_token_lifetime_secs: i64,
    /// How Bynn's cooldown answer carries `remaining_seconds`.
    pub bynn_cooldown_hint: CooldownHint,
    /// For the benchmark: lift Leegality's 5-resend cap so one invitee can
    /// be resent to without end.
    pub unlimited_resends: bool,
    /// Keep every request for `requests()`; the benchmark turns it off.
    pub record_requests: bool,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            credentials: SimulatorCredentials::default(),
            leegality_sign_host: "sandbox.leegality.com".into(),
            signnow_token_lifetime_secs: 2_592_000,
            bynn_cooldown_hint: CooldownHint::MessageOnly,
            unlimited_resends: false,
            record_requests: true,
        }
    }
}

/// Bynn documents the hint only "in the error message"; whether it is also a
/// structured field is unconfirmed, so the simulator can do either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CooldownHint {
    MessageOnly,
    FieldOnly,
    Both,
    Absent,
}

/// One request as the simulator received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub provider: ProviderKind,
    pub method: Method,
    /// Path below the provider's base URL, e.g. `/v3.0/sign/request/resend`.
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The file part of a multipart upload (its bytes are not kept here).
    pub file: Option<ReceivedFile>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What the simulator does instead of (or before) answering normally.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Answer with this status, content type and body.
    Respond {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
        retry_after: Option<u64>,
    },
    /// Wait this long (real time), then answer normally.
    Delay(Duration),
    /// Start a 200 response, then reset the connection mid-body.
    Reset,
    /// Do the work, then reset the connection before the answer arrives:
    /// the caller cannot tell whether the call took effect.
    LoseAnswer,
}

impl FaultKind {
    pub fn status(status: u16) -> FaultKind {
        FaultKind::Respond {
            status,
            content_type: "application/json",
            body: b"{}".to_vec(),
            retry_after: None,
        }
    }

    /// Answer with this status and JSON body.
    pub fn json(status: u16, body: &serde_json::Value) -> FaultKind {
        FaultKind::Respond {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
            retry_after: None,
        }
    }

    pub fn truncated_json() -> FaultKind {
        FaultKind::Respond {
            status: 200,
            content_type: "application/json",
            body: br#"{"status": 1, "data": {"invitations": [{"status"#.to_vec(),
            retry_after: None,
        }
    }

    pub fn html_error_page(status: u16) -> FaultKind {
        FaultKind::Respond {
            status,
            content_type: "text/html",
            body: b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
            retry_after: None,
        }
    }
}

/// A fault that applies to requests matching a provider and path fragment.
#[derive(Debug, Clone)]
pub struct Fault {
    pub provider: ProviderKind,
    /// Applies when the request path contains this ("" matches all).
    pub path_contains: String,
    /// Applies only to this method when set.
    pub method: Option<Method>,
    /// How many requests it applies to; `None` means until cleared.
    pub times: Option<u32>,
    pub kind: FaultKind,
}

impl Fault {
    pub fn new(provider: ProviderKind, path_contains: &str, kind: FaultKind) -> Fault {
        Fault {
            provider,
            path_contains: path_contains.into(),
            method: None,
            times: None,
            kind,
        }
    }

    /// Limits the fault to one HTTP method.
    pub fn on(mut self, method: Method) -> Fault {
        self.method = Some(method);
        self
    }

    pub fn times(mut self, times: u32) -> Fault {
        self.times = Some(times);
        self
    }
}

pub(crate) struct Shared {
    pub(crate) clock: Clock,
    pub(crate) config: SimulatorConfig,
    latency: Mutex<Duration>,
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Vec<RecordedRequest>>,
    pub(crate) leegality: Mutex<leegality::State>,
    pub(crate) signnow: Mutex<signnow::State>,
    pub(crate) bynn: Mutex<bynn::State>,
    /// Webhooks waiting to go out, and where each provider's go.
    pub(crate) outbox: Mutex<Vec<webhooks::Outgoing>>,
    webhook_targets: Mutex<HashMap<ProviderKind, String>>,
    outbox_ready: tokio::sync::Notify,
}

/// A running simulator on a loopback port.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

/// Largest request body the simulator reads.
const MAX_REQUEST_BODY_BYTES: usize = 32 * 1024 * 1024;

impl Simulator {
    /// Serves on `listener` until dropped.
    pub async fn start(
        config: SimulatorConfig,
        listener: TcpListener,
    ) -> std::io::Result<Simulator> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            clock: Clock::default(),
            leegality: Mutex::new(leegality::State::new(&config)),
            signnow: Mutex::new(signnow::State::new(&config)),
            bynn: Mutex::new(bynn::State::new(&config)),
            config,
            latency: Mutex::new(Duration::ZERO),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            outbox: Mutex::new(Vec::new()),
            webhook_targets: Mutex::new(HashMap::new()),
            outbox_ready: tokio::sync::Notify::new(),
        });
        tokio::spawn(send_webhooks(Arc::downgrade(&shared)));
        // A 15 MB Leegality PDF arrives Base64-encoded in JSON (about 20 MB);
        // axum's 2 MB default would refuse what the real provider takes.
        let app = Router::new()
            .fallback(handle)
            // Uploads are read as they stream (files.rs); JSON bodies are
            // bounded by MAX_REQUEST_BODY_BYTES in `handle`.
            .layer(axum::extract::DefaultBodyLimit::max(
                files::MAX_UPLOAD_BYTES,
            ))
            .with_state(shared.clone());
        // Nagle off, as HTTP servers run it: an answer written in two
        // pieces must not wait for the caller's delayed ACK.
        let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
            let _ = stream.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(error = %error, "simulator stopped");
            }
        });
        Ok(Simulator { shared, addr, task })
    }

    /// Where this provider's webhooks go (the gateway's intake URL).
    pub fn set_webhook_target(&self, provider: ProviderKind, url: impl Into<String>) {
        lock(&self.shared.webhook_targets).insert(provider, url.into());
    }

    /// Queues a webhook; used by the provider states' controls.
    pub fn send_webhook(&self, outgoing: webhooks::Outgoing) {
        lock(&self.shared.outbox).push(outgoing);
        self.shared.outbox_ready.notify_one();
    }

    /// A signNow signer signs their field invite; signNow calls back.
    pub fn sign_signnow_invite(&self, invite_id: &str) -> bool {
        self.shared.sign_signnow_invite(invite_id)
    }

    /// A signNow signer declines; signNow calls back.
    pub fn decline_signnow_invite(&self, invite_id: &str, text: &str) -> bool {
        let now = self.shared.clock.now();
        let secret = self
            .shared
            .config
            .credentials
            .signnow_webhook_secret
            .clone();
        let mut state = lock(&self.shared.signnow);
        if !state.decline_field_invite(invite_id, text) {
            return false;
        }
        let content = state.invite_content(invite_id);
        drop(state);
        self.send_webhook(webhooks::signnow(
            &secret,
            "document.fieldinvite.decline",
            content,
            now,
        ));
        true
    }

    /// A Leegality invitee signs; Leegality calls back.
    pub fn sign_leegality_invitee(&self, uuid: &str) -> bool {
        self.leegality_change(uuid, leegality::State::sign)
    }

    /// A Leegality invitee's link expires; Leegality calls back.
    pub fn expire_leegality_invitee(&self, uuid: &str) -> bool {
        self.leegality_change(uuid, leegality::State::expire)
    }

    /// Applies `change` to an invitee and sends the webhook it makes,
    /// signed with the account's salt; false for an unknown invitee.
    fn leegality_change(
        &self,
        uuid: &str,
        change: fn(&mut leegality::State, &str, &str) -> Option<webhooks::Outgoing>,
    ) -> bool {
        let salt = &self.shared.config.credentials.leegality_webhook_salt;
        let outgoing = change(&mut lock(&self.shared.leegality), uuid, salt);
        match outgoing {
            Some(outgoing) => {
                self.send_webhook(outgoing);
                true
            }
            None => false,
        }
    }

    /// Bynn calls back with a dossier event (it sends none for invitations).
    pub fn bynn_dossier_event(&self, event_type: &str, dossier_token: &str) {
        let now = self.shared.clock.now();
        self.send_webhook(webhooks::bynn(
            event_type,
            serde_json::json!({"token": dossier_token, "status": event_type.rsplit('.').next()}),
            now,
        ));
    }

    /// Starts on an ephemeral loopback port with default settings.
    pub async fn start_local() -> std::io::Result<Simulator> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Simulator::start(SimulatorConfig::default(), listener).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self, provider: ProviderKind) -> String {
        match provider {
            ProviderKind::Leegality => format!("http://{}/leegality/api", self.addr),
            ProviderKind::SignNow => format!("http://{}/signnow", self.addr),
            ProviderKind::Bynn => format!("http://{}/bynn/v1", self.addr),
        }
    }

    pub fn config(&self) -> &SimulatorConfig {
        &self.shared.config
    }

    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// Delay added to every answer (real time; for the benchmark).
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).clone()
    }

    pub fn requests_for(&self, provider: ProviderKind) -> Vec<RecordedRequest> {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.provider == provider)
            .cloned()
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    pub fn leegality(&self) -> MutexGuard<'_, leegality::State> {
        lock(&self.shared.leegality)
    }

    pub fn signnow(&self) -> MutexGuard<'_, signnow::State> {
        lock(&self.shared.signnow)
    }

    pub fn bynn(&self) -> MutexGuard<'_, bynn::State> {
        lock(&self.shared.bynn)
    }

    /// Gateway accounts, one per provider, wired to this simulator.
    pub fn gateway_accounts(&self) -> Vec<AccountConfig> {
        let credentials = &self.shared.config.credentials;
        let account = |provider: ProviderKind, credentials: Credentials| AccountConfig {
            provider,
            name: crate::config::DEFAULT_ACCOUNT.to_owned(),
            base_url: url::Url::parse(&self.base_url(provider)).expect("simulator URL"),
            credentials,
            sender_email: (provider == ProviderKind::SignNow)
                .then(|| self.shared.config.credentials.signnow_username.clone()),
            sign_url_host: (provider == ProviderKind::Leegality)
                .then(|| self.shared.config.leegality_sign_host.clone()),
            budgets: AccountBudgets::for_provider(provider),
            signnow_resend_id: Default::default(),
            webhook_secret: Some(Secret::new(match provider {
                ProviderKind::Leegality => &self.shared.config.credentials.leegality_webhook_salt,
                ProviderKind::SignNow => &self.shared.config.credentials.signnow_webhook_secret,
                ProviderKind::Bynn => &self.shared.config.credentials.bynn_webhook_public_key,
            })),
            webhook_callback_url: None,
        };
        vec![
            account(
                ProviderKind::Leegality,
                Credentials::Leegality {
                    auth_token: Secret::new(&credentials.leegality_auth_token),
                },
            ),
            account(
                ProviderKind::SignNow,
                Credentials::SignNowPassword {
                    basic_token: Secret::new(&credentials.signnow_basic_token),
                    username: credentials.signnow_username.clone(),
                    password: Secret::new(&credentials.signnow_password),
                },
            ),
            account(
                ProviderKind::Bynn,
                Credentials::Bynn {
                    api_key: Secret::new(&credentials.bynn_api_key),
                },
            ),
        ]
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not wedge every later request.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The configured latency; none at all when it is zero (a zero-length tokio
/// sleep still waits for the next timer tick, about a millisecond, which
/// would add that much to every answer of a simulator meant to add nothing).
async fn added_latency(latency: Duration) {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: axum::extract::Request) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let headers = request.headers().clone();
    let full_path = uri.path();
    // A control for the demo: make a signNow signer sign, as a person would.
    if method == Method::POST
        && let Some(invite_id) = full_path
            .strip_prefix("/_control/signnow/invites/")
            .and_then(|rest| rest.strip_suffix("/sign"))
    {
        return if shared.sign_signnow_invite(invite_id) {
            (StatusCode::OK, "signed\n").into_response()
        } else {
            (StatusCode::NOT_FOUND, "no such field invite\n").into_response()
        };
    }
    let (provider, path) = if let Some(rest) = full_path.strip_prefix("/leegality/api") {
        (ProviderKind::Leegality, rest)
    } else if let Some(rest) = full_path.strip_prefix("/signnow") {
        (ProviderKind::SignNow, rest)
    } else if let Some(rest) = full_path.strip_prefix("/bynn/v1") {
        (ProviderKind::Bynn, rest)
    } else {
        return (StatusCode::NOT_FOUND, "unknown provider prefix").into_response();
    };
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let latency = *lock(&shared.latency);
    let fault = take_fault(&shared, provider, &method, path);
    let is_upload = provider == ProviderKind::SignNow
        && method == Method::POST
        && matches!(path, "/document" | "/document/fieldextract");
    let body = if is_upload && fault.is_none() {
        // Recorded once received, with the file part summarised.
        let response = files::signnow_upload(&shared, path, request).await;
        added_latency(latency).await;
        return response;
    } else {
        let limit = if is_upload {
            files::MAX_UPLOAD_BYTES
        } else {
            MAX_REQUEST_BODY_BYTES
        };
        match axum::body::to_bytes(request.into_body(), limit).await {
            Ok(body) => body,
            Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body too large\n").into_response(),
        }
    };
    if shared.config.record_requests {
        lock(&shared.log).push(RecordedRequest {
            provider,
            method: method.clone(),
            path: path.to_owned(),
            query: query.clone(),
            headers: headers.clone(),
            body: body.clone(),
            file: None,
        });
    }

    match fault.clone() {
        Some(FaultKind::Respond {
            status,
            content_type,
            body,
            retry_after,
        }) => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            added_latency(latency).await;
            return response;
        }
        Some(FaultKind::Reset) => {
            added_latency(latency).await;
            return reset_response();
        }
        Some(FaultKind::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(FaultKind::LoseAnswer) | None => {}
    }

    let request = SimRequest {
        method: &method,
        path,
        query: &query,
        headers: &headers,
        body: &body,
        now: shared.clock.now(),
    };
    let answer = match provider {
        ProviderKind::Leegality => leegality::handle(&shared, &request),
        ProviderKind::SignNow => signnow::handle(&shared, &request),
        ProviderKind::Bynn => bynn::handle(&shared, &request),
    };
    // A real provider finishes its work even when the caller stops
    // waiting: the state changes on arrival, and only the answer is late.
    added_latency(latency).await;
    if matches!(fault, Some(FaultKind::LoseAnswer)) {
        return reset_response();
    }
    answer.into_http()
}

/// A 200 whose body breaks off with a connection reset.
fn reset_response() -> Response {
    let stream = futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"{\"status\": 1, \"data\": ")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated reset",
        )),
    ]);
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn take_fault(
    shared: &Shared,
    provider: ProviderKind,
    method: &Method,
    path: &str,
) -> Option<FaultKind> {
    let mut faults = lock(&shared.faults);
    let index = faults.iter().position(|f| {
        f.provider == provider
            && path.contains(f.path_contains.as_str())
            && f.method.as_ref().is_none_or(|m| m == method)
    })?;
    let kind = faults[index].kind.clone();
    if let Some(times) = &mut faults[index].times {
        *times -= 1;
        if *times == 0 {
            faults.remove(index);
        }
    }
    Some(kind)
}

impl Shared {
    fn sign_signnow_invite(&self, invite_id: &str) -> bool {
        let now = self.clock.now();
        let secret = self.config.credentials.signnow_webhook_secret.clone();
        let mut state = lock(&self.signnow);
        if !state.sign_field_invite(invite_id) {
            return false;
        }
        let content = state.invite_content(invite_id);
        let completed = state.document_completed(invite_id);
        drop(state);
        let mut outgoing = vec![webhooks::signnow(
            &secret,
            "document.fieldinvite.signed",
            content.clone(),
            now,
        )];
        if let Some(document_id) = completed {
            outgoing.push(webhooks::signnow(
                &secret,
                "document.complete",
                serde_json::json!({"document_id": document_id}),
                now,
            ));
        }
        lock(&self.outbox).extend(outgoing);
        self.outbox_ready.notify_one();
        true
    }
}

/// Delivers queued webhooks, oldest first, for as long as the simulator runs.
async fn send_webhooks(shared: std::sync::Weak<Shared>) {
    let http = reqwest::Client::new();
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let batch: Vec<webhooks::Outgoing> = std::mem::take(&mut *lock(&shared.outbox));
        let targets = lock(&shared.webhook_targets).clone();
        for outgoing in batch {
            webhooks::deliver(&http, &targets, outgoing).await;
        }
        tokio::select! {
            _ = shared.outbox_ready.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}
