//! Simulated Bynn AutoDoc invitations (paths below `/v1`).
//!
//! Documented rules: only `sent` invitations can be resent; at most 10 send
//! attempts (422 `max_attempts_reached`); a 3-minute cooldown after `sentAt`
//! (429 `cooldown_active` with a `remaining_seconds` hint); 20 resends per
//! minute per organization and 30 requests per minute per IP (429); links
//! expire 30 days after creation; errors use `{"error": {type, message}}`.
//! Unconfirmed and chosen here: the HTTP status of an ineligible-state refusal
//! (422, type `invalid_status`) and of an expired one (422, type
//! `invitation_expired`); an unknown workflow is 404.

use std::collections::HashMap;

use axum::http::{Method, StatusCode, header};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{CooldownHint, Shared, SimRequest, SimResponse, SimulatorConfig, lock, random_hex};
use super::{looks_like_e164, looks_like_email};

pub(crate) const MAX_ATTEMPTS: u32 = 10;
pub(crate) const COOLDOWN_SECONDS: i64 = 180;
pub(crate) const RESENDS_PER_MINUTE: usize = 20;
pub(crate) const REQUESTS_PER_MINUTE: usize = 30;
pub(crate) const LINK_LIFETIME_DAYS: i64 = 30;
/// How long the simulated channel takes to accept a queued message.
pub(crate) const DELIVERY_SECONDS: i64 = 1;

#[derive(Debug, Clone)]
pub struct BynnInvitation {
    pub token: String,
    pub workflow_token: String,
    pub channel: String,
    pub recipient: String,
    pub reference: Option<String>,
    pub locale: Option<String>,
    /// Stored status; `pending` turns into `sent` once `deliver_at` passes.
    pub status: String,
    pub deliver_at: Option<DateTime<Utc>>,
    pub delivery_attempts: u32,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub error_message: Option<String>,
}

impl BynnInvitation {
    fn settle(&mut self, now: DateTime<Utc>) {
        if self.status == "pending"
            && let Some(at) = self.deliver_at
            && now >= at
        {
            self.status = "sent".into();
            self.sent_at = Some(at);
            self.deliver_at = None;
        }
    }

    fn expires_at(&self) -> DateTime<Utc> {
        self.created_at + Duration::days(LINK_LIFETIME_DAYS)
    }

    fn to_json(&self) -> Value {
        let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        json!({
            "token": self.token,
            "status": self.status,
            "channel": self.channel,
            "recipient": self.recipient,
            "reference": self.reference,
            "locale": self.locale,
            "workflowToken": self.workflow_token,
            "deliveryAttempts": self.delivery_attempts,
            "errorMessage": self.error_message,
            "dossierToken": null,
            "createdAt": iso(self.created_at),
            "sentAt": self.sent_at.map(iso),
            "expiresAt": iso(self.expires_at()),
        })
    }
}

pub struct State {
    pub invitations: HashMap<String, BynnInvitation>,
    pub workflows: Vec<String>,
    pub locales: Vec<String>,
    /// Sandbox keys are not billed; set to Some(0) to see a 402.
    pub balance_cents: Option<u64>,
    request_times: Vec<DateTime<Utc>>,
    resend_times: Vec<DateTime<Utc>>,
    cooldown_hint: CooldownHint,
    /// What a successful resend answers. Bynn documents no response body
    /// for it (evidence.md B-7), so the simulator can answer each shape.
    pub resend_answer: ResendAnswer,
}

/// The body of a successful resend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResendAnswer {
    /// 200 with the invitation object.
    #[default]
    Invitation,
    /// 200 with no body.
    Empty,
    /// 200 with `{}`.
    EmptyObject,
    /// 202 Accepted with `{"success": true}`.
    Accepted,
}

impl State {
    pub fn new(config: &SimulatorConfig) -> State {
        State {
            invitations: HashMap::new(),
            workflows: vec!["wf_demo_onboarding".into()],
            locales: vec!["en".into(), "nl".into(), "de".into(), "fr".into()],
            balance_cents: None,
            request_times: Vec::new(),
            resend_times: Vec::new(),
            cooldown_hint: config.bynn_cooldown_hint,
            resend_answer: ResendAnswer::default(),
        }
    }

    pub fn set_cooldown_hint(&mut self, hint: CooldownHint) {
        self.cooldown_hint = hint;
    }

    /// Seeds an invitation in `status`, last sent at `sent_at`.
    pub fn seed(
        &mut self,
        recipient: &str,
        status: &str,
        delivery_attempts: u32,
        sent_at: Option<DateTime<Utc>>,
        created_at: DateTime<Utc>,
    ) -> String {
        let token = format!("adi_{}", random_hex(24));
        self.invitations.insert(
            token.clone(),
            BynnInvitation {
                token: token.clone(),
                workflow_token: self.workflows[0].clone(),
                channel: if recipient.starts_with('+') {
                    "sms"
                } else {
                    "email"
                }
                .into(),
                recipient: recipient.into(),
                reference: None,
                locale: None,
                status: status.into(),
                deliver_at: None,
                delivery_attempts,
                created_at,
                sent_at,
                error_message: (status == "failed").then(|| "Mailbox does not exist".to_owned()),
            },
        );
        token
    }

    pub fn invitation(&mut self, token: &str, now: DateTime<Utc>) -> Option<&mut BynnInvitation> {
        let invitation = self.invitations.get_mut(token)?;
        invitation.settle(now);
        Some(invitation)
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> SimResponse {
    SimResponse::json(status, json!({"error": {"type": kind, "message": message}}))
}

/// Requests in the minute window ending now; the oldest leaves at the returned time.
fn window(times: &mut Vec<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    times.retain(|t| now - *t < Duration::seconds(60));
    times.first().copied()
}

fn throttled(oldest: DateTime<Utc>, now: DateTime<Utc>, message: &str) -> SimResponse {
    let retry_after = (oldest + Duration::seconds(60) - now).num_seconds().max(1);
    error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        .with_header(header::RETRY_AFTER, retry_after.to_string())
}

pub(super) fn handle(shared: &Shared, request: &SimRequest<'_>) -> SimResponse {
    let expected = &shared.config.credentials.bynn_api_key;
    if request.bearer() != Some(expected.as_str()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or invalid credentials.",
        );
    }
    let now = request.now;
    let mut state = lock(&shared.bynn);
    if let Some(oldest) = window(&mut state.request_times, now)
        && state.request_times.len() >= REQUESTS_PER_MINUTE
    {
        return throttled(oldest, now, "Too many requests. Limit: 30 per minute.");
    }
    state.request_times.push(now);

    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    match (request.method, segments.as_slice()) {
        (&Method::POST, ["autodoc", "invitations"]) => create(&mut state, request),
        (&Method::GET, ["autodoc", "invitations"]) => list(&mut state, request),
        (&Method::GET, ["autodoc", "invitations", "locales"]) => {
            SimResponse::ok(json!({"data": state.locales}))
        }
        (&Method::GET, ["autodoc", "invitations", token]) => match state.invitation(token, now) {
            Some(invitation) => SimResponse::ok(invitation.to_json()),
            None => error(StatusCode::NOT_FOUND, "not_found", "Invitation not found."),
        },
        (&Method::POST, ["autodoc", "invitations", token, "resend"]) => {
            resend(&mut state, token, now)
        }
        _ => error(StatusCode::NOT_FOUND, "not_found", "Route not found."),
    }
}

/// `GET /autodoc/invitations`, filtered by `reference` when given, newest
/// first, with Bynn's `pagination` object (one page here).
fn list(state: &mut State, request: &SimRequest<'_>) -> SimResponse {
    let now = request.now;
    let reference = request.query.get("reference");
    let tokens: Vec<String> = state
        .invitations
        .values()
        .filter(|i| reference.is_none_or(|r| i.reference.as_deref() == Some(r.as_str())))
        .map(|i| i.token.clone())
        .collect();
    let mut items: Vec<(DateTime<Utc>, Value)> = Vec::with_capacity(tokens.len());
    for token in &tokens {
        if let Some(invitation) = state.invitation(token, now) {
            items.push((invitation.created_at, invitation.to_json()));
        }
    }
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    let total = items.len();
    SimResponse::ok(json!({
        "data": items.into_iter().map(|(_, item)| item).collect::<Vec<_>>(),
        "pagination": {"total": total, "totalPages": 1, "page": 1, "perPage": 100},
    }))
}

fn create(state: &mut State, request: &SimRequest<'_>) -> SimResponse {
    let body: Value = match serde_json::from_slice(request.body) {
        Ok(body) => body,
        Err(_) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_error",
                "Body must be JSON.",
            );
        }
    };
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_owned();
    let (workflow, channel, recipient) =
        (text("workflowToken"), text("channel"), text("recipient"));
    if workflow.is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "workflowToken is required.",
        );
    }
    let recipient_ok = match channel.as_str() {
        "email" => looks_like_email(&recipient),
        "sms" => looks_like_e164(&recipient),
        _ => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_error",
                "channel must be email or sms.",
            );
        }
    };
    if !recipient_ok {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "recipient is not valid for the channel.",
        );
    }
    let locale = body["locale"].as_str().map(str::to_owned);
    if let Some(locale) = &locale
        && !state.locales.contains(locale)
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "locale is not supported.",
        );
    }
    if !state.workflows.contains(&workflow) {
        return error(StatusCode::NOT_FOUND, "not_found", "Workflow not found.");
    }
    if state.balance_cents == Some(0) {
        return error(
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_balance",
            "Insufficient balance.",
        );
    }
    let token = format!("adi_{}", random_hex(24));
    let invitation = BynnInvitation {
        token: token.clone(),
        workflow_token: workflow,
        channel,
        recipient,
        reference: body["reference"].as_str().map(str::to_owned),
        locale,
        status: "pending".into(),
        deliver_at: Some(request.now + Duration::seconds(DELIVERY_SECONDS)),
        delivery_attempts: 1,
        created_at: request.now,
        sent_at: None,
        error_message: None,
    };
    let answer = invitation.to_json();
    state.invitations.insert(token, invitation);
    SimResponse::json(StatusCode::CREATED, answer)
}

fn resend(state: &mut State, token: &str, now: DateTime<Utc>) -> SimResponse {
    let hint = state.cooldown_hint;
    if let Some(oldest) = window(&mut state.resend_times, now)
        && state.resend_times.len() >= RESENDS_PER_MINUTE
    {
        return throttled(
            oldest,
            now,
            "Too many resends. Limit: 20 per minute per organization.",
        );
    }
    let Some(invitation) = state.invitation(token, now) else {
        return error(StatusCode::NOT_FOUND, "not_found", "Invitation not found.");
    };
    if now >= invitation.expires_at() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invitation_expired",
            "Invitation has expired. Create a new invitation instead.",
        );
    }
    if invitation.status != "sent" {
        let message = format!(
            "Invitation cannot be resent in status {}.",
            invitation.status
        );
        let mut answer = error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_status", &message);
        answer.body["error"]["status"] = Value::from(invitation.status.clone());
        return answer;
    }
    if invitation.delivery_attempts >= MAX_ATTEMPTS {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "max_attempts_reached",
            "Maximum of 10 send attempts reached. Create a new invitation to continue.",
        );
    }
    if let Some(sent_at) = invitation.sent_at {
        let elapsed = (now - sent_at).num_seconds();
        if elapsed < COOLDOWN_SECONDS {
            let remaining = COOLDOWN_SECONDS - elapsed;
            let message = match hint {
                CooldownHint::MessageOnly | CooldownHint::Both => {
                    format!("Please wait before resending (remaining_seconds: {remaining}).")
                }
                _ => "Please wait before resending.".to_owned(),
            };
            let mut answer = error(StatusCode::TOO_MANY_REQUESTS, "cooldown_active", &message);
            if matches!(hint, CooldownHint::FieldOnly | CooldownHint::Both) {
                answer.body["error"]["remaining_seconds"] = Value::from(remaining);
            }
            return answer;
        }
    }
    invitation.status = "pending".into();
    invitation.sent_at = None;
    invitation.deliver_at = Some(now + Duration::seconds(DELIVERY_SECONDS));
    invitation.delivery_attempts += 1;
    let answer = invitation.to_json();
    state.resend_times.push(now);
    match state.resend_answer {
        ResendAnswer::Invitation => SimResponse::ok(answer),
        ResendAnswer::Empty => SimResponse::json(StatusCode::OK, Value::Null).without_body(),
        ResendAnswer::EmptyObject => SimResponse::ok(json!({})),
        ResendAnswer::Accepted => SimResponse::json(StatusCode::ACCEPTED, json!({"success": true})),
    }
}
