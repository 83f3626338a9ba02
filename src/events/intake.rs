//! Webhook intake on a listener of its own: `POST /webhooks/{provider}/{account}`.
//!
//! The signature is checked before anything from the body is trusted, and
//! in constant time. A bad or missing signature is 401 and nothing is
//! recorded; over 1 MiB is 413; an unknown provider or account, or one with
//! no webhook secret, is 404. The answer is 2xx only once the event is in
//! the log, so the provider's own retry covers anything that fails before;
//! a redelivery is 2xx and makes no second event. Bodies are never logged
//! (a signNow payload may carry `meta.access_token`).

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::hmac;
use serde::Deserialize;
use serde_json::Value;

use super::{Events, event_id};
use crate::{
    clock::Clock,
    domain::{DocumentState, InvitationState, ProviderKind, Rpc},
    grpc::convert,
    pb,
    provider::{Account, CallContext, Registry},
    store::StateStore,
};

/// Largest webhook body accepted.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long the last known Leegality states of a document are kept.
const KNOWN_STATE_TTL: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

#[derive(Clone)]
pub(crate) struct Intake {
    registry: Arc<Registry>,
    events: Arc<Events>,
    store: Arc<dyn StateStore>,
    clock: Clock,
}

impl Intake {
    pub(crate) fn new(
        registry: Arc<Registry>,
        events: Arc<Events>,
        store: Arc<dyn StateStore>,
        clock: Clock,
    ) -> Intake {
        Intake {
            registry,
            events,
            store,
            clock,
        }
    }

    pub(crate) fn router(self) -> Router {
        Router::new()
            .route("/webhooks/{provider}/{account}", post(receive))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self)
    }
}

/// Why a webhook was not recorded.
enum Refusal {
    /// Missing, malformed or wrong signature.
    Signature,
    /// Signed, but not a payload the gateway can read.
    Malformed,
    /// The log or the provider read failed: the provider should retry.
    Unavailable,
}

async fn receive(
    State(intake): State<Intake>,
    Path((provider, account)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(kind) = ProviderKind::parse(&provider) else {
        return StatusCode::NOT_FOUND;
    };
    let Ok(account) = intake.registry.resolve(kind, &account) else {
        return StatusCode::NOT_FOUND;
    };
    let Some(secret) = account.config.webhook_secret.clone() else {
        return StatusCode::NOT_FOUND;
    };
    let outcome = match kind {
        ProviderKind::SignNow => signnow(&intake, &account, secret.expose(), &headers, &body).await,
        ProviderKind::Leegality => leegality(&intake, &account, secret.expose(), &body).await,
        ProviderKind::Bynn => bynn(&intake, &account, secret.expose(), &headers, &body).await,
    };
    let (status, label) = match outcome {
        Ok(0) => (StatusCode::OK, "duplicate"),
        Ok(_) => (StatusCode::OK, "accepted"),
        Err(Refusal::Signature) => (StatusCode::UNAUTHORIZED, "bad_signature"),
        Err(Refusal::Malformed) => (StatusCode::BAD_REQUEST, "malformed"),
        Err(Refusal::Unavailable) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    crate::metrics::global().webhook(kind.as_str(), label);
    tracing::info!(
        target: crate::telemetry::AUDIT_TARGET,
        kind = "webhook",
        provider = kind.as_str(),
        account = account.config.name.as_str(),
        outcome = label,
        status = status.as_u16(),
        "webhook"
    );
    status
}

/// How many new events one notification made.
type Outcome = Result<usize, Refusal>;

async fn record_all(intake: &Intake, events: Vec<pb::Event>) -> Outcome {
    let mut new = 0;
    for event in events {
        match intake.events.record(event).await {
            Ok(true) => new += 1,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(error = %error, "could not record a webhook event");
                return Err(Refusal::Unavailable);
            }
        }
    }
    Ok(new)
}

/// A signature given as hex or base64 (hex first: a hex string is also
/// valid base64, the reverse almost never).
fn decode_signature(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let is_hex = !text.is_empty()
        && text.len().is_multiple_of(2)
        && text.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        return (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
            .collect();
    }
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    convert::utc_to_timestamp(time)
}

fn base_event(
    intake: &Intake,
    kind: ProviderKind,
    account: &Account,
    id: String,
    provider_event: &str,
) -> pb::Event {
    pb::Event {
        id,
        provider: convert::provider_to_proto(kind) as i32,
        account: account.config.name.clone(),
        provider_event: provider_event.to_owned(),
        received_at: Some(timestamp(intake.clock.now())),
        ..Default::default()
    }
}

// === signNow ===

#[derive(Deserialize)]
struct SignNowPayload {
    #[serde(default)]
    meta: SignNowMeta,
    #[serde(default)]
    content: SignNowContent,
}

#[derive(Deserialize, Default)]
struct SignNowMeta {
    #[serde(default)]
    event: String,
    #[serde(default)]
    timestamp: Option<Value>,
}

#[derive(Deserialize, Default)]
struct SignNowContent {
    #[serde(default)]
    document_id: String,
    #[serde(default)]
    invite_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// `X-SignNow-Signature`: base64 (or hex) of HMAC-SHA256 of the raw body
/// keyed with the subscription's `secret_key`.
async fn signnow(
    intake: &Intake,
    account: &Account,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Outcome {
    let signature = headers
        .get("x-signnow-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(decode_signature)
        .ok_or(Refusal::Signature)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, body, &signature).map_err(|_| Refusal::Signature)?;
    let payload: SignNowPayload = serde_json::from_slice(body).map_err(|_| Refusal::Malformed)?;
    let name = payload
        .meta
        .event
        .strip_prefix("user.")
        .unwrap_or(&payload.meta.event);
    let occurred = payload
        .meta
        .timestamp
        .as_ref()
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()));
    let document_id = payload.content.document_id.clone();
    let invite_id = payload.content.invite_id.clone().unwrap_or_default();
    let id = event_id(&[
        "signnow",
        &account.config.name,
        &document_id,
        &invite_id,
        &payload.meta.event,
        &occurred.map(|t| t.to_string()).unwrap_or_default(),
    ]);
    let mut event = base_event(
        intake,
        ProviderKind::SignNow,
        account,
        id,
        &payload.meta.event,
    );
    event.document_id = document_id;
    event.occurred_at = occurred
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .map(timestamp);
    let status = payload.content.status.unwrap_or_default();
    let state = match name {
        "document.fieldinvite.signed" | "document.freeform.signed" => InvitationState::Signed,
        "document.fieldinvite.decline" => InvitationState::Rejected,
        "document.fieldinvite.delete" => InvitationState::Cancelled,
        "document.fieldinvite.sent" | "document.freeform.create" => InvitationState::Pending,
        "document.fieldinvite.create"
        | "document.fieldinvite.reassign"
        | "document.fieldinvite.replace" => match status.as_str() {
            "pending" => InvitationState::Pending,
            "fulfilled" => InvitationState::Signed,
            _ => InvitationState::Created,
        },
        "document.complete" => {
            event.r#type = pb::EventType::DocumentStateChanged as i32;
            event.document_state = pb::DocumentState::Completed as i32;
            return record_all(intake, vec![event]).await;
        }
        "document.update" => {
            // Something changed; what, signNow does not say: re-read.
            event.r#type = pb::EventType::DocumentStateChanged as i32;
            return record_all(intake, vec![event]).await;
        }
        // Subscribed or not, other events are acknowledged and dropped.
        _ => return Ok(0),
    };
    event.r#type = pb::EventType::InvitationStateChanged as i32;
    event.invitation_id = invite_id.clone();
    event.invitation = Some(convert::invitation(crate::domain::Invitation {
        id: invite_id,
        state,
        provider_status: status,
        is_signers_turn: state == InvitationState::Pending,
        document_id: Some(event.document_id.clone()),
        ..Default::default()
    }));
    record_all(intake, vec![event]).await
}

// === Leegality ===

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeegalityPayload {
    document_id: String,
    mac: String,
    #[serde(default)]
    webhook_type: Option<String>,
}

/// `mac` = HMAC-SHA1 of `documentId` keyed with the private salt (hex, or
/// base64). Only the id is signed, so nothing else in the body is trusted:
/// the document is read back from Leegality and one event is made per
/// invitation whose state changed since the last state the gateway knew.
async fn leegality(intake: &Intake, account: &Account, salt: &str, body: &[u8]) -> Outcome {
    let payload: LeegalityPayload = serde_json::from_slice(body).map_err(|_| Refusal::Signature)?;
    let mac = decode_signature(&payload.mac).ok_or(Refusal::Signature)?;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt.as_bytes());
    hmac::verify(&key, payload.document_id.as_bytes(), &mac).map_err(|_| Refusal::Signature)?;
    let ctx = CallContext::new(Rpc::GetDocument, None);
    let document = account
        .provider
        .get_document(&ctx, &payload.document_id)
        .await
        .map_err(|error| {
            tracing::warn!(error = %error, "could not re-read a Leegality document for its webhook");
            Refusal::Unavailable
        })?;
    let key = format!(
        "events:known:leegality:{}:{}",
        account.config.name, document.id
    );
    let known: BTreeMap<String, String> = match intake.store.get(&key).await {
        Ok(bytes) => bytes
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default(),
        Err(_) => return Err(Refusal::Unavailable),
    };
    let provider_event = payload.webhook_type.unwrap_or_else(|| "webhook".into());
    let mut now_known = BTreeMap::new();
    let mut events = Vec::new();
    for invitation in &document.invitations {
        let state = invitation.state.name().to_owned();
        now_known.insert(invitation.id.clone(), state.clone());
        if known.get(&invitation.id) == Some(&state) {
            continue;
        }
        let id = event_id(&[
            "leegality",
            &account.config.name,
            &document.id,
            &invitation.id,
            &state,
        ]);
        let mut event = base_event(
            intake,
            ProviderKind::Leegality,
            account,
            id,
            &provider_event,
        );
        event.r#type = pb::EventType::InvitationStateChanged as i32;
        event.document_id = document.id.clone();
        event.invitation_id = invitation.id.clone();
        event.document_state = convert::document_state(document.state) as i32;
        event.invitation = Some(convert::invitation(invitation.clone()));
        events.push(event);
    }
    let document_state = format!("document:{}", document.state.name());
    if known.get("") != Some(&document_state) {
        let id = event_id(&[
            "leegality",
            &account.config.name,
            &document.id,
            &document_state,
        ]);
        let mut event = base_event(
            intake,
            ProviderKind::Leegality,
            account,
            id,
            &provider_event,
        );
        event.r#type = pb::EventType::DocumentStateChanged as i32;
        event.document_id = document.id.clone();
        event.document_state = convert::document_state(document.state) as i32;
        events.push(event);
    }
    now_known.insert(String::new(), document_state);
    let recorded = record_all(intake, events).await?;
    let bytes = serde_json::to_vec(&now_known).unwrap_or_default();
    if intake
        .store
        .put(&key, bytes, KNOWN_STATE_TTL)
        .await
        .is_err()
    {
        // The events are in; next time the same changes dedupe by id.
        tracing::warn!("could not store the known Leegality states");
    }
    Ok(recorded)
}

// === Bynn ===

#[derive(Deserialize)]
struct BynnClaims {
    sha256: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    jti: Option<String>,
}

#[derive(Deserialize)]
struct BynnPayload {
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    event_type: String,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    resource: Value,
}

/// `X-Bynn-Signature` is a detached RS256 JWT: verified with Bynn's public
/// key, `iss` = bynn.com, unexpired, and its `sha256` claim must be the hex
/// SHA-256 of the raw body. Deduplicated on `Idempotency-Key`.
async fn bynn(
    intake: &Intake,
    account: &Account,
    public_key: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Outcome {
    let token = headers
        .get("x-bynn-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(Refusal::Signature)?;
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key.as_bytes())
        .map_err(|_| Refusal::Signature)?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&["bynn.com"]);
    validation.set_required_spec_claims(&["exp", "iss"]);
    let claims = jsonwebtoken::decode::<BynnClaims>(token, &key, &validation)
        .map_err(|_| Refusal::Signature)?
        .claims;
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let expected = claims.sha256.to_ascii_lowercase();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        hex.as_bytes(),
        expected.as_bytes(),
    )) {
        return Err(Refusal::Signature);
    }
    let payload: BynnPayload = serde_json::from_slice(body).map_err(|_| Refusal::Malformed)?;
    let delivery = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(claims.jti)
        .or(claims.sub)
        .or(payload.event_id.clone())
        .ok_or(Refusal::Malformed)?;
    let id = event_id(&["bynn", &account.config.name, &delivery]);
    let mut event = base_event(intake, ProviderKind::Bynn, account, id, &payload.event_type);
    event.occurred_at = payload
        .created_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| timestamp(t.with_timezone(&Utc)));
    // Bynn sends no invitation events; a dossier's outcome is the closest
    // thing to a document state (a documented reading of its event names).
    event.r#type = pb::EventType::DocumentStateChanged as i32;
    event.document_id = ["token", "id"]
        .iter()
        .find_map(|k| payload.resource[k].as_str())
        .unwrap_or_default()
        .to_owned();
    let state = match payload.event_type.rsplit('.').next().unwrap_or_default() {
        "completed" | "approved" => DocumentState::Completed,
        "rejected" => DocumentState::Rejected,
        "canceled" | "cancelled" => DocumentState::Cancelled,
        "expired" => DocumentState::Expired,
        _ => DocumentState::InProgress,
    };
    event.document_state = convert::document_state(state) as i32;
    record_all(intake, vec![event]).await
}

/// Makes the events of a Bynn poll (used by the poller).
pub(crate) fn poll_event(
    clock: &Clock,
    account: &str,
    invitation: crate::domain::Invitation,
) -> pb::Event {
    let state = invitation.state.name();
    let attempts = invitation.delivery_attempts.unwrap_or_default().to_string();
    let id = event_id(&["bynn-poll", account, &invitation.id, state, &attempts]);
    pb::Event {
        id,
        provider: pb::Provider::Bynn as i32,
        account: account.to_owned(),
        invitation_id: invitation.id.clone(),
        r#type: pb::EventType::InvitationStateChanged as i32,
        provider_event: "poll".into(),
        received_at: Some(timestamp(clock.now())),
        invitation: Some(convert::invitation(invitation)),
        ..Default::default()
    }
}
