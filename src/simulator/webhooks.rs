//! Webhooks the simulated providers send when their state changes, signed
//! as each provider signs them (evidence.md section 6): signNow's
//! `X-SignNow-Signature` (base64 HMAC-SHA256 of the body), Leegality's
//! `mac` (hex HMAC-SHA1 of the document id), Bynn's detached RS256 JWT in
//! `X-Bynn-Signature` with the body's SHA-256, and `Idempotency-Key`.
//!
//! State changes queue a webhook; a task delivers the queue to the target
//! set with `Simulator::set_webhook_target`.

use std::collections::HashMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::random_hex;
use crate::domain::ProviderKind;

/// The simulator's own RSA key pair for Bynn webhooks (Bynn publishes its
/// public key; this stands in for it).
pub(crate) const BYNN_PRIVATE_KEY: &str = include_str!("bynn_webhook_key.pem");
pub const BYNN_PUBLIC_KEY: &str = include_str!("bynn_webhook_key.pub.pem");

/// One webhook waiting to go out.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub provider: ProviderKind,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// signNow: the event payload of Webhooks 2.0, signed with the secret key.
pub fn signnow(secret: &str, event: &str, content: Value, now: DateTime<Utc>) -> Outgoing {
    let body = json!({
        "meta": {
            "timestamp": now.timestamp(),
            "event": event,
            "environment": "https://api-eval.signnow.com",
            "callback_url": "https://gateway.example/webhooks/signnow/default",
            // signNow would put the token here unless the subscription set
            // delete_access_token; the gateway must never keep it.
            "access_token": random_hex(64),
        },
        "content": content,
    })
    .to_string()
    .into_bytes();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let signature =
        base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, &body).as_ref());
    Outgoing {
        provider: ProviderKind::SignNow,
        headers: vec![("X-SignNow-Signature".into(), signature)],
        body,
    }
}

/// Leegality: the v2.5 payload; only `documentId` is covered by `mac`.
pub fn leegality(salt: &str, document_id: &str, request: Value, status: &str) -> Outgoing {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt.as_bytes());
    let mac: String = ring::hmac::sign(&key, document_id.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let body = json!({
        "webhookType": "Success",
        "documentId": document_id,
        "documentStatus": status,
        "irn": null,
        "mac": mac,
        "messages": [],
        "request": request,
    })
    .to_string()
    .into_bytes();
    Outgoing {
        provider: ProviderKind::Leegality,
        headers: Vec::new(),
        body,
    }
}

/// Bynn: the event envelope, with the detached JWT over the body's digest.
pub fn bynn(event_type: &str, resource: Value, now: DateTime<Utc>) -> Outgoing {
    let event_id = random_hex(16);
    let webhook_token = random_hex(24);
    let body = json!({
        "event_id": event_id,
        "created_at": now.to_rfc3339(),
        "event_type": event_type,
        "resource": resource,
        "organization": {"id": "org_sim", "name": "Simulated"},
    })
    .to_string()
    .into_bytes();
    let digest: String = ring::digest::digest(&ring::digest::SHA256, &body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let claims = json!({
        "iss": "bynn.com",
        "sub": event_id,
        "jti": webhook_token,
        "iat": now.timestamp(),
        "exp": now.timestamp() + 24 * 3600,
        "v": "2",
        "sha256": digest,
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(BYNN_PRIVATE_KEY.as_bytes())
        .expect("the simulator's key is valid");
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .expect("signing cannot fail");
    Outgoing {
        provider: ProviderKind::Bynn,
        headers: vec![
            ("X-Bynn-Signature".into(), token),
            ("Idempotency-Key".into(), webhook_token.clone()),
            ("X-Webhook-Token".into(), webhook_token),
        ],
        body,
    }
}

/// Delivers `outgoing` to the target of its provider, if one is set.
pub(crate) async fn deliver(
    http: &reqwest::Client,
    targets: &HashMap<ProviderKind, String>,
    outgoing: Outgoing,
) {
    let Some(url) = targets.get(&outgoing.provider) else {
        return;
    };
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .body(outgoing.body);
    for (name, value) in outgoing.headers {
        request = request.header(name, value);
    }
    if let Err(error) = request.send().await {
        tracing::info!(error = %error, "simulated webhook not delivered");
    }
}
