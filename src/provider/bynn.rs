//! Bynn AutoDoc invitations adapter: create, get and resend.
//!
//! Bynn has no documents (GetDocument is UNIMPLEMENTED) and no documented
//! delete endpoint (the MCP tool `delete_invitation` hints at one, but no
//! reference page confirms it), so DeleteInvitation is UNIMPLEMENTED too.
//! A per-account limiter keeps the gateway inside Bynn's documented
//! throttles (20 resends and 30 requests a minute) instead of discovering them.

use std::time::Duration;

use ::http::{Method, header};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    clock::Clock,
    config::{AccountConfig, Credentials, Timeouts},
    domain::{
        BynnChannel, Invitation, InvitationState, ProviderKind, ProviderWarning, Rpc, SendOptions,
        SendOutcome, SendRequest, Signer,
    },
    error::{GatewayError, MetaKey, Reason, Result},
    provider::{
        CallContext, Provider, Services,
        transport::{self, CredentialHeader, HttpClient, Outbound, ProviderResponse, RetryPolicy},
    },
    validate,
};

const KIND: ProviderKind = ProviderKind::Bynn;
/// Bynn's documented default when the cooldown answer carries no hint.
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(180);
const DEFAULT_THROTTLE_DELAY: Duration = Duration::from_secs(60);
const MAX_SEND_ATTEMPTS: u32 = 10;
const MAX_TOKEN_LEN: usize = 128;
const MAX_REFERENCE_LEN: usize = 255;

const SUPPORTED: &[Rpc] = &[
    Rpc::SendInvitation,
    Rpc::ResendInvitation,
    Rpc::BatchResendInvitations,
    Rpc::GetInvitation,
];

pub(crate) struct Bynn {
    account: AccountConfig,
    http: HttpClient,
    clock: Clock,
    /// Where sent invitations are registered for the event poller.
    store: std::sync::Arc<dyn crate::store::StateStore>,
    timeouts: Timeouts,
    /// `Bearer <api key>`, built once.
    authorization: CredentialHeader,
}

impl Bynn {
    pub(crate) fn new(account: AccountConfig, services: Services, timeouts: Timeouts) -> Self {
        let api_key = match &account.credentials {
            Credentials::Bynn { api_key } => api_key.expose(),
            _ => "",
        };
        Bynn {
            authorization: CredentialHeader::new(&format!("Bearer {api_key}")),
            account,
            http: services.http,
            clock: services.clock,
            store: services.store,
            timeouts,
        }
    }

    fn request(
        &self,
        operation: &'static str,
        method: Method,
        segments: &[&str],
        template: &'static str,
    ) -> Result<Outbound> {
        let url = transport::url_with_segments(&self.account.base_url, segments);
        Outbound::new(operation, method, url, template)
            .credential(header::AUTHORIZATION, &self.authorization)
    }

    async fn call(&self, ctx: &CallContext, outbound: Outbound) -> Result<ProviderResponse> {
        self.http
            .send(ctx, KIND, &self.account.name, &outbound)
            .await
    }
}

#[async_trait]
impl Provider for Bynn {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn supported_rpcs(&self) -> &'static [Rpc] {
        SUPPORTED
    }

    async fn send_invitation(
        &self,
        ctx: &CallContext,
        request: SendRequest,
    ) -> Result<SendOutcome> {
        let body = create_body(&request)?;
        let outbound = self
            .request(
                "create_invitation",
                Method::POST,
                &["autodoc", "invitations"],
                "/autodoc/invitations",
            )?
            .json_body(&body)?
            .timeout(self.timeouts.write)
            // Not idempotent and billed: never resent once it may have arrived.
            .retry(RetryPolicy::OnlyBeforeSent);
        let response = self.call(ctx, outbound).await?;
        if !response.status.is_success() {
            return Err(map_error(&response, Operation::Create, None));
        }
        let invitation = parse_invitation(&response, self.clock.now())?;
        // Bynn sends no invitation events: the poller follows this one.
        let key = crate::events::poller::watch_key(&self.account.name);
        if let Err(error) = self.store.set_add(&key, &invitation.id).await {
            tracing::warn!(error = %error, "could not register a sent invitation for polling");
        }
        Ok(SendOutcome {
            document_id: None,
            invitations: vec![invitation],
            warnings: Vec::new(),
        })
    }

    async fn resend_invitation(
        &self,
        ctx: &CallContext,
        invitation_id: &str,
        _document_id: Option<&str>,
    ) -> Result<Invitation> {
        validate_token("invitation_id", invitation_id)?;
        let outbound = self
            .request(
                "resend_invitation",
                Method::POST,
                &["autodoc", "invitations", invitation_id, "resend"],
                "/autodoc/invitations/{token}/resend",
            )?
            .timeout(self.timeouts.write)
            // Billed and capped at 10 attempts: no automatic resend.
            .retry(RetryPolicy::OnlyBeforeSent);
        let response = self.call(ctx, outbound.resend()).await?;
        if !response.status.is_success() {
            return Err(map_error(&response, Operation::Resend, Some(invitation_id)));
        }
        // Any 2xx is a resend Bynn accepted and billed. Its body is
        // undocumented (evidence.md B-7): when it is not the invitation,
        // the invitation is read back, and if even that fails the resend
        // is still reported as done, with the state left unknown.
        if let Ok(invitation) = parse_invitation(&response, self.clock.now()) {
            return Ok(invitation);
        }
        tracing::info!(
            http_status = response.status.as_u16(),
            "bynn resend answered without the invitation; reading it back"
        );
        match self.get_invitation(ctx, invitation_id).await {
            Ok(invitation) => Ok(invitation),
            Err(error) => {
                tracing::warn!(error = %error, "bynn resend done; could not read the invitation back");
                Ok(Invitation {
                    id: invitation_id.to_owned(),
                    state: InvitationState::Unspecified,
                    ..Invitation::default()
                })
            }
        }
    }

    /// Bynn lists invitations by `reference` (its own advice before retrying
    /// a create): the one for this recipient is the orphaned send.
    async fn reconcile_send(
        &self,
        ctx: &CallContext,
        request: &SendRequest,
    ) -> Result<Option<SendOutcome>> {
        let body = create_body(request)?;
        let Some(reference) = body.reference else {
            return Ok(None);
        };
        let mut outbound = self
            .request(
                "list_invitations",
                Method::GET,
                &["autodoc", "invitations"],
                "/autodoc/invitations",
            )?
            .timeout(self.timeouts.read)
            .retry(RetryPolicy::Safe);
        outbound
            .url
            .query_pairs_mut()
            .append_pair("reference", reference);
        let response = self.call(ctx, outbound).await?;
        if !response.status.is_success() {
            return Err(map_error(&response, Operation::Get, None));
        }
        let now = self.clock.now();
        let listed = parse_invitation_list(&response)?
            .into_iter()
            .filter(|wire| wire.reference.as_deref() == Some(reference))
            .filter(|wire| wire.recipient.as_deref() == Some(body.recipient))
            .max_by(|a, b| {
                parse_time(a.created_at.as_deref()).cmp(&parse_time(b.created_at.as_deref()))
            });
        Ok(listed.map(|wire| SendOutcome {
            document_id: None,
            invitations: vec![to_invitation(wire, now)],
            warnings: vec![ProviderWarning {
                code: "gateway.reconciled".into(),
                message: "an earlier attempt created this invitation; nothing new was sent".into(),
            }],
        }))
    }

    fn validate_batch_ids(&self, ids: &[String]) -> Result<()> {
        for (index, id) in ids.iter().enumerate() {
            validate_token(&format!("invitation_ids[{index}]"), id)?;
        }
        Ok(())
    }

    async fn get_invitation(&self, ctx: &CallContext, invitation_id: &str) -> Result<Invitation> {
        validate_token("invitation_id", invitation_id)?;
        let outbound = self
            .request(
                "get_invitation",
                Method::GET,
                &["autodoc", "invitations", invitation_id],
                "/autodoc/invitations/{token}",
            )?
            .timeout(self.timeouts.read)
            .retry(RetryPolicy::Safe);
        let response = self.call(ctx, outbound).await?;
        if !response.status.is_success() {
            return Err(map_error(&response, Operation::Get, Some(invitation_id)));
        }
        parse_invitation(&response, self.clock.now())
    }
}

/// Bynn tokens are `adi_` plus letters and digits; nothing else is forwarded.
fn validate_token(field: &str, token: &str) -> Result<()> {
    let valid = token.len() <= MAX_TOKEN_LEN
        && token.strip_prefix("adi_").is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric())
        });
    if !valid {
        return Err(GatewayError::invalid_field(
            field,
            "must be a Bynn invitation token such as adi_3f9c...",
        ));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody<'a> {
    workflow_token: &'a str,
    channel: &'static str,
    recipient: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locale: Option<&'a str>,
}

fn create_body(request: &SendRequest) -> Result<CreateBody<'_>> {
    let SendOptions::Bynn {
        workflow_token,
        channel,
        locale,
    } = &request.options
    else {
        return Err(GatewayError::invalid_field(
            "bynn",
            "Bynn options (workflow_token, channel) are required",
        ));
    };
    validate::reject_set(
        "",
        &[
            ("document_id", !request.document_id.is_empty()),
            ("subject", !request.subject.is_empty()),
            ("message", !request.message.is_empty()),
            ("cc", !request.cc.is_empty()),
        ],
        "is not supported by Bynn; leave it empty",
    )?;
    if !workflow_token.starts_with("wf_") {
        return Err(GatewayError::invalid_field(
            "bynn.workflow_token",
            "must be a Bynn workflow token such as wf_...",
        ));
    }
    validate::require_path_safe_id("bynn.workflow_token", workflow_token, MAX_TOKEN_LEN)?;
    let channel = channel
        .ok_or_else(|| GatewayError::invalid_field("bynn.channel", "must be EMAIL or SMS"))?;
    let signer: &Signer = match request.signers.as_slice() {
        [signer] => signer,
        [] => {
            return Err(GatewayError::invalid_field(
                "signers",
                "Bynn needs exactly one signer",
            ));
        }
        _ => {
            return Err(GatewayError::invalid_field(
                "signers",
                "Bynn creates one invitation per recipient: send exactly one signer per call",
            ));
        }
    };
    let recipient = match channel {
        BynnChannel::Email => {
            if !validate::is_email(&signer.email) {
                return Err(GatewayError::invalid_field(
                    "signers[0].email",
                    "must be an email address for the email channel",
                ));
            }
            signer.email.as_str()
        }
        BynnChannel::Sms => {
            if !validate::is_e164(&signer.phone) {
                return Err(GatewayError::invalid_field(
                    "signers[0].phone",
                    "must be an E.164 number such as +15551234567 for the sms channel",
                ));
            }
            signer.phone.as_str()
        }
    };
    if request.reference.len() > MAX_REFERENCE_LEN {
        return Err(GatewayError::invalid_field(
            "reference",
            "is longer than 255 characters",
        ));
    }
    if !locale.is_empty() && !is_locale(locale) {
        return Err(GatewayError::invalid_field(
            "bynn.locale",
            "must be a locale code such as en or pt-BR",
        ));
    }
    Ok(CreateBody {
        workflow_token,
        channel: channel.as_str(),
        recipient,
        reference: (!request.reference.is_empty()).then_some(request.reference.as_str()),
        locale: (!locale.is_empty()).then_some(locale.as_str()),
    })
}

fn is_locale(value: &str) -> bool {
    let mut parts = value.split(['-', '_']);
    let language = parts.next().unwrap_or_default();
    let region = parts.next();
    parts.next().is_none()
        && (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_lowercase())
        && region.is_none_or(|r| r.len() == 2 && r.chars().all(|c| c.is_ascii_alphabetic()))
}

// === wire types ===

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireInvitation {
    token: String,
    status: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    delivery_attempts: Option<u32>,
    #[serde(default)]
    sent_at: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

/// The invitation object may come bare or wrapped in `data` (unconfirmed).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum InvitationEnvelope {
    Wrapped { data: WireInvitation },
    Bare(WireInvitation),
}

#[derive(Debug, Deserialize)]
struct WireErrorEnvelope {
    error: WireError,
}

#[derive(Debug, Deserialize)]
struct WireError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    remaining_seconds: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<String>,
}

/// A page of the invitation list: under `data` (the platform's habit) or
/// `invitations`, or a bare array; the key is undocumented, so all three.
fn parse_invitation_list(response: &ProviderResponse) -> Result<Vec<WireInvitation>> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Data { data: Vec<WireInvitation> },
        Invitations { invitations: Vec<WireInvitation> },
        Bare(Vec<WireInvitation>),
    }
    match response.json::<List>() {
        Ok(List::Data { data }) => Ok(data),
        Ok(List::Invitations { invitations }) => Ok(invitations),
        Ok(List::Bare(list)) => Ok(list),
        Err(_) => Err(transport::unrecognized(KIND, response)),
    }
}

fn parse_invitation(response: &ProviderResponse, now: DateTime<Utc>) -> Result<Invitation> {
    let wire = match response.json::<InvitationEnvelope>() {
        Ok(InvitationEnvelope::Wrapped { data }) => data,
        Ok(InvitationEnvelope::Bare(invitation)) => invitation,
        Err(_) => return Err(transport::unrecognized(KIND, response)),
    };
    Ok(to_invitation(wire, now))
}

/// An RFC 3339 time; anything else is treated as absent, not as an error.
fn parse_time(value: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn to_invitation(wire: WireInvitation, now: DateTime<Utc>) -> Invitation {
    let expires_at = parse_time(wire.expires_at.as_deref());
    let expired = expires_at.is_some_and(|at| at <= now);
    let state = match wire.status.as_str() {
        // Queued, not yet handed to the channel provider.
        "pending" => InvitationState::Created,
        "sent" => InvitationState::Pending,
        "delivered" => InvitationState::Delivered,
        "opened" => InvitationState::Opened,
        "started" => InvitationState::Started,
        "completed" => InvitationState::Signed,
        "rejected" => InvitationState::Rejected,
        "failed" => InvitationState::Failed,
        "expired" => InvitationState::Expired,
        _ => InvitationState::Unspecified,
    };
    let terminal = matches!(
        state,
        InvitationState::Signed
            | InvitationState::Rejected
            | InvitationState::Failed
            | InvitationState::Expired
    );
    let state = if expired && !terminal {
        InvitationState::Expired
    } else {
        state
    };
    let recipient = wire.recipient.unwrap_or_default();
    let is_sms = wire.channel.as_deref() == Some("sms");
    Invitation {
        id: wire.token,
        sign_url: None,
        signer: Signer {
            email: if is_sms {
                String::new()
            } else {
                recipient.clone()
            },
            phone: if is_sms { recipient } else { String::new() },
            ..Signer::default()
        },
        is_signers_turn: !terminal && !expired,
        state,
        provider_status: wire.status,
        expire_time: expires_at,
        delivery_attempts: wire.delivery_attempts,
        document_id: None,
        reference: wire.reference,
        send_time: parse_time(wire.sent_at.as_deref()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Create,
    Resend,
    Get,
}

/// Bynn's error table. Decided from the HTTP status and `error.type`
/// together; message texts are only read for the hints they carry.
fn map_error(
    response: &ProviderResponse,
    operation: Operation,
    token: Option<&str>,
) -> GatewayError {
    let status = response.status.as_u16();
    let wire = response.json::<WireErrorEnvelope>().ok().map(|e| e.error);
    let kind = wire.as_ref().map(|w| w.kind.as_str()).unwrap_or("");
    let message = wire.as_ref().map(|w| w.message.as_str()).unwrap_or("");
    tracing::info!(
        http_status = status,
        error_type = kind,
        "bynn answered with an error"
    );

    let error = match (status, kind) {
        (429, "cooldown_active") => {
            let remaining = wire
                .as_ref()
                .and_then(|w| w.remaining_seconds.as_ref())
                .and_then(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .or_else(|| seconds_in_message(message))
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_COOLDOWN);
            GatewayError::new(
                Reason::ResendCooldown,
                "Bynn allows one send every 3 minutes per invitation; retry after the delay",
            )
            .with_retry_after(remaining)
            .with_metadata(MetaKey::RemainingSeconds, remaining.as_secs().to_string())
        }
        (429, _) => GatewayError::new(Reason::RateLimited, "Bynn is rate limiting the gateway")
            .with_retry_after(response.retry_after().unwrap_or(DEFAULT_THROTTLE_DELAY)),
        (422, "max_attempts_reached") => GatewayError::new(
            Reason::ResendLimitReached,
            "the invitation has had its 10 send attempts; create a new invitation",
        )
        .with_quota_violation(
            format!("invitation:{}", token.unwrap_or_default()),
            format!("at most {MAX_SEND_ATTEMPTS} send attempts per invitation"),
        )
        .without_retry_after(),
        (422, "invitation_expired") if operation == Operation::Resend => GatewayError::new(
            Reason::InvitationNotResendable,
            "the invitation has expired and cannot be resent; create a new invitation",
        )
        .with_metadata(MetaKey::Status, "expired"),
        (422, "invalid_status") if operation == Operation::Resend => {
            let current = wire
                .as_ref()
                .and_then(|w| w.status.clone())
                .or_else(|| status_in_message(message))
                .unwrap_or_else(|| "unknown".into());
            GatewayError::new(
                Reason::InvitationNotResendable,
                "only invitations in status sent can be resent",
            )
            .with_metadata(MetaKey::Status, current)
        }
        // Another type for a state refusal (evidence.md B-1, D-B3): a
        // message naming the status still says why.
        (409 | 422, _)
            if operation == Operation::Resend
                && message.to_ascii_lowercase().contains("status")
                && status_in_message(message).is_some() =>
        {
            GatewayError::new(
                Reason::InvitationNotResendable,
                "only invitations in status sent can be resent",
            )
            .with_metadata(
                MetaKey::Status,
                status_in_message(message).unwrap_or_default(),
            )
        }
        (422, _) | (413, _) | (415, _) => GatewayError::new(
            Reason::ProviderRejectedRequest,
            "Bynn rejected the request as invalid",
        ),
        (402, _) => GatewayError::new(
            Reason::ProviderInsufficientBalance,
            "the Bynn organization has insufficient balance",
        ),
        (404, _) if operation == Operation::Create => GatewayError::new(
            Reason::ProviderRejectedRequest,
            "Bynn does not know the workflow token",
        )
        .with_field_violation(
            "bynn.workflow_token",
            "is not a workflow of this Bynn organization",
        ),
        (404, _) => GatewayError::new(Reason::InvitationNotFound, "Bynn has no such invitation")
            .with_missing_resource("invitation", token.unwrap_or_default()),
        _ => match transport::common_status_error(KIND, response) {
            Some(error) => error,
            None => transport::unrecognized(KIND, response),
        },
    };
    let error = error
        .with_provider(KIND)
        .with_default_metadata(MetaKey::ProviderHttpStatus, status.to_string());
    let error = if kind.is_empty() {
        error
    } else {
        error.with_default_metadata(MetaKey::ProviderCode, kind)
    };
    match token {
        Some(token) => error.with_default_metadata(MetaKey::InvitationId, token),
        None => error,
    }
}

/// Reads `remaining_seconds: 97` (or "97 seconds") out of a message.
fn seconds_in_message(message: &str) -> Option<u64> {
    let lower = message.to_ascii_lowercase();
    let start = lower
        .find("remaining_seconds")
        .map(|i| i + "remaining_seconds".len())
        .or_else(|| lower.find(" second").map(|_| 0))?;
    let digits: String = lower[start..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok().filter(|s| *s <= 3600)
}

/// Reads the status word out of "cannot be resent in status delivered".
fn status_in_message(message: &str) -> Option<String> {
    const KNOWN: [&str; 8] = [
        "pending",
        "delivered",
        "opened",
        "started",
        "completed",
        "rejected",
        "failed",
        "expired",
    ];
    let lower = message.to_ascii_lowercase();
    KNOWN
        .iter()
        .find(|s| lower.contains(*s))
        .map(|s| (*s).to_owned())
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn response(status: u16, body: Vec<u8>) -> ProviderResponse {
        ProviderResponse::fake(status, body)
    }

    proptest! {
        #[test]
        fn any_error_body_maps_to_an_error(
            status in prop::sample::select(vec![400u16, 401, 402, 403, 404, 409, 422, 429, 500, 503]),
            body in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            for operation in [Operation::Create, Operation::Resend, Operation::Get] {
                let error = map_error(&response(status, body.clone()), operation, Some("adi_x"));
                prop_assert!(!error.message().is_empty());
            }
        }

        #[test]
        fn cooldown_messages_never_panic(message in any::<String>(), kind in "[a-z_]{0,20}") {
            let body = serde_json::json!({"error": {"type": kind, "message": message}});
            let error = map_error(&response(429, body.to_string().into_bytes()), Operation::Resend, None);
            if let Some(delay) = error.retry_after() {
                prop_assert!(delay.as_secs() <= 24 * 3600);
            }
            let _ = seconds_in_message(&message);
            let _ = status_in_message(&message);
        }

        #[test]
        fn any_success_body_parses_or_is_unrecognized(body in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Err(error) = parse_invitation(&response(200, body), DateTime::UNIX_EPOCH) {
                prop_assert_eq!(error.reason(), Reason::ProviderUnrecognizedResponse);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_have_the_adi_shape() {
        assert!(validate_token("invitation_id", "adi_3f9cA1").is_ok());
        for bad in [
            "",
            "adi_",
            "3f9c",
            "adi_../x",
            "adi_a b",
            "https://api.bynn.com/v1/x",
        ] {
            assert!(validate_token("invitation_id", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cooldown_hint_is_read_from_message_text() {
        assert_eq!(
            seconds_in_message("Please wait (remaining_seconds: 97)."),
            Some(97)
        );
        assert_eq!(seconds_in_message("remaining_seconds=12"), Some(12));
        assert_eq!(seconds_in_message("Try again in 45 seconds"), Some(45));
        assert_eq!(seconds_in_message("Please wait."), None);
    }

    #[test]
    fn locales() {
        assert!(is_locale("en"));
        assert!(is_locale("pt-BR"));
        assert!(!is_locale("english"));
        assert!(!is_locale("en-"));
    }
}
