//! Simulated signNow REST API: OAuth token endpoint (Basic app token,
//! password and refresh grants, expiring bearer tokens), documents with roles
//! and field invites, freeform invites, resend, the three replace-signer
//! calls, cancel, and signNow's error bodies (mostly HTTP 400, with either
//! `{"error", "code"}` or `{"errors": [{code, message}]}`).
//!
//! Payloads follow the shapes signNow's own material shows (evidence.md
//! T-N7..T-N10): freeform rows in `requests[]` carry `unique_id`,
//! `signature_id` and `canceled` but no `status`; field invites carry no
//! `order`, and a declined invite keeps its status with `is_full_declined`
//! and `declined[]`; an invite whose `expiration_time` passed still says
//! `pending`; `fields[]` carry the role's `field_request_id`, which differs
//! from the field invite id.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::looks_like_email;
use super::{Shared, SimRequest, SimResponse, SimulatorConfig, lock, random_hex};

#[derive(Debug, Clone)]
pub struct Role {
    pub unique_id: String,
    pub name: String,
    pub signing_order: u32,
}

#[derive(Debug, Clone)]
pub struct FieldInvite {
    pub id: String,
    pub email: String,
    pub role: String,
    pub role_id: String,
    /// Signing step, kept internally: signNow does not list it per invite.
    pub order: u32,
    /// created, pending, fulfilled, canceled (never "expired" or
    /// "declined": those show in `expiration_time` and `declined`).
    pub status: String,
    /// The role's field request id while this invite is its latest.
    pub field_request_id: String,
    /// Texts the signer gave when declining; non-empty means declined.
    pub declined: Vec<String>,
    pub created: DateTime<Utc>,
    pub expiration_time: DateTime<Utc>,
    /// Created by `POST /field_invite` and not yet triggered.
    pub awaiting_trigger: bool,
    pub options: Value,
}

#[derive(Debug, Clone)]
pub struct FreeformInvite {
    /// The row id, which signNow lists but does not hand out on create.
    pub id: String,
    /// The invite id `POST /document/{id}/invite` returns.
    pub unique_id: String,
    pub email: String,
    pub created: DateTime<Utc>,
    pub signature_id: Option<String>,
    pub canceled: bool,
}

/// Which id `PUT /fieldinvite/{id}/resend` accepts. signNow's own material
/// conflicts (evidence.md N-3), so the simulator can play either reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResendIdKind {
    #[default]
    FieldInviteId,
    FieldRequestId,
}

#[derive(Debug, Clone)]
pub struct SignNowDocument {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub roles: Vec<Role>,
    pub field_invites: Vec<FieldInvite>,
    pub requests: Vec<FreeformInvite>,
    /// The uploaded file, served back by `/download`.
    pub file: axum::body::Bytes,
}

impl SignNowDocument {
    fn has_fields(&self) -> bool {
        !self.roles.is_empty()
    }

    /// After a signer finishes (or an invite is triggered), the lowest open
    /// order becomes pending, as signNow chains signers itself.
    fn advance_routing(&mut self) {
        let open: Vec<u32> = self
            .field_invites
            .iter()
            .filter(|i| matches!(i.status.as_str(), "created" | "pending") && !i.awaiting_trigger)
            .map(|i| i.order)
            .collect();
        if let Some(current) = open.iter().min().copied() {
            for invite in &mut self.field_invites {
                if invite.status == "created" && !invite.awaiting_trigger && invite.order == current
                {
                    invite.status = "pending".into();
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    expires_at: DateTime<Utc>,
}

pub struct State {
    pub documents: HashMap<String, SignNowDocument>,
    tokens: HashMap<String, Token>,
    refresh_tokens: HashMap<String, ()>,
    token_lifetime: Duration,
    /// How many tokens `POST /oauth2/token` has issued.
    pub tokens_issued: u32,
    pub resend_id_kind: ResendIdKind,
    /// Event subscriptions (Webhooks 2.0), as `POST /api/v2/events` made them.
    pub subscriptions: Vec<Value>,
    /// The account's user id, the entity of `user.*` subscriptions.
    pub user_id: String,
}

impl State {
    pub fn new(config: &SimulatorConfig) -> State {
        State {
            documents: HashMap::new(),
            tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            token_lifetime: Duration::seconds(config.signnow_token_lifetime_secs),
            tokens_issued: 0,
            resend_id_kind: ResendIdKind::default(),
            subscriptions: Vec::new(),
            user_id: random_hex(40),
        }
    }

    /// The signer of a field invite signs: it becomes fulfilled and the
    /// next step's invites become pending.
    pub fn sign_field_invite(&mut self, invite_id: &str) -> bool {
        let Some((document, index)) = self.document_of_invite(invite_id) else {
            return false;
        };
        document.field_invites[index].status = "fulfilled".into();
        document.advance_routing();
        true
    }

    /// Sends a field invite for the document's first role, pending at once
    /// (for the demo); its id.
    pub fn seed_field_invite(
        &mut self,
        document_id: &str,
        email: &str,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let document = self.documents.get_mut(document_id)?;
        let role = document.roles.first()?.clone();
        let id = random_hex(40);
        document.field_invites.push(FieldInvite {
            id: id.clone(),
            email: email.into(),
            role: role.name,
            role_id: role.unique_id,
            order: role.signing_order,
            status: "created".into(),
            field_request_id: random_hex(40),
            declined: Vec::new(),
            created: now,
            expiration_time: now + Duration::days(30),
            awaiting_trigger: false,
            options: Value::Null,
        });
        document.advance_routing();
        Some(id)
    }

    /// What signNow's webhook says about a field invite.
    pub(crate) fn invite_content(&mut self, invite_id: &str) -> Value {
        match self.document_of_invite(invite_id) {
            Some((document, index)) => {
                let invite = &document.field_invites[index];
                json!({
                    "document_id": document.id,
                    "invite_id": invite.id,
                    "signer": invite.email,
                    "status": invite.status,
                })
            }
            None => json!({}),
        }
    }

    /// The document of `invite_id`, when every field invite on it is signed.
    pub(crate) fn document_completed(&mut self, invite_id: &str) -> Option<String> {
        let (document, _) = self.document_of_invite(invite_id)?;
        document
            .field_invites
            .iter()
            .all(|i| i.status == "fulfilled")
            .then(|| document.id.clone())
    }

    /// The signer declines: signNow keeps the status and records the text.
    pub fn decline_field_invite(&mut self, invite_id: &str, text: &str) -> bool {
        let Some((document, index)) = self.document_of_invite(invite_id) else {
            return false;
        };
        document.field_invites[index].declined.push(text.into());
        true
    }

    /// The signer of a freeform invite signs: a signature id appears.
    pub fn sign_freeform_invite(&mut self, unique_id: &str) -> bool {
        let found = self
            .documents
            .values_mut()
            .flat_map(|d| d.requests.iter_mut())
            .find(|r| r.unique_id == unique_id);
        match found {
            Some(request) => {
                request.signature_id = Some(random_hex(40));
                true
            }
            None => false,
        }
    }

    /// Seeds a document owned by `owner`; each role name becomes a role with
    /// fields, in signing order. No roles means a document without fields.
    pub fn seed_document(&mut self, owner: &str, name: &str, roles: &[&str]) -> SignNowDocument {
        let document = SignNowDocument {
            id: random_hex(40),
            name: name.into(),
            owner: owner.into(),
            roles: roles
                .iter()
                .enumerate()
                .map(|(index, role)| Role {
                    unique_id: random_hex(40),
                    name: (*role).into(),
                    signing_order: index as u32 + 1,
                })
                .collect(),
            field_invites: Vec::new(),
            requests: Vec::new(),
            file: super::sample_pdf(name, 2048),
        };
        self.documents.insert(document.id.clone(), document.clone());
        document
    }

    /// Revokes every issued access token (as an expiry or revocation would).
    pub fn revoke_all_tokens(&mut self) {
        self.tokens.clear();
    }

    fn document_of_invite(&mut self, invite_id: &str) -> Option<(&mut SignNowDocument, usize)> {
        self.documents.values_mut().find_map(|document| {
            let index = document
                .field_invites
                .iter()
                .position(|i| i.id == invite_id)?;
            Some((document, index))
        })
    }
}

pub(super) fn api_error(code: u64, message: &str) -> SimResponse {
    SimResponse::json(
        StatusCode::BAD_REQUEST,
        json!({"errors": [{"code": code, "message": message}]}),
    )
}

fn auth_error(error: &str, code: Option<u64>) -> SimResponse {
    let mut body = json!({"error": error});
    if let Some(code) = code {
        body["code"] = Value::from(code);
    }
    SimResponse::json(StatusCode::BAD_REQUEST, body)
}

fn success() -> SimResponse {
    SimResponse::ok(json!({"status": "success"}))
}

pub(super) fn invalid_token() -> SimResponse {
    auth_error("invalid_token", Some(1537))
}

impl State {
    pub(super) fn token_is_valid(&self, bearer: Option<&str>, now: DateTime<Utc>) -> bool {
        bearer
            .and_then(|bearer| self.tokens.get(bearer))
            .is_some_and(|token| token.expires_at > now)
    }
}

/// `GET /document/{id}/download`: the file as uploaded, with an audit
/// trail page's worth of text appended for `with_history=1`. Only
/// `type=collapsed` (the default) is served.
fn download(state: &State, id: &str, request: &SimRequest<'_>) -> SimResponse {
    let Some(document) = state.documents.get(id) else {
        return api_error(65582, "Document not found");
    };
    match request.query.get("type").map(String::as_str) {
        None | Some("collapsed") => {}
        Some(_) => return api_error(65536, "Invalid download type"),
    }
    let mut parts = vec![document.file.clone()];
    if request.query.get("with_history").map(String::as_str) == Some("1") {
        parts.push(axum::body::Bytes::from(format!(
            "%% audit trail of {}: {} field invites\n",
            document.id,
            document.field_invites.len()
        )));
    }
    SimResponse::file(format!("{}.pdf", document.name), parts)
}

pub(super) fn handle(shared: &Shared, request: &SimRequest<'_>) -> SimResponse {
    let mut state = lock(&shared.signnow);
    if request.path == "/oauth2/token" && request.method == Method::POST {
        return token(shared, &mut state, request);
    }
    if !state.token_is_valid(request.bearer(), request.now) {
        return invalid_token();
    }
    let body: Value = serde_json::from_slice(request.body).unwrap_or(Value::Null);
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let now = request.now;
    match (request.method, segments.as_slice()) {
        (&Method::GET, ["user"]) => SimResponse::ok(json!({
            "id": state.user_id, "primary_email": shared.config.credentials.signnow_username,
        })),
        (&Method::GET, ["api", "v2", "events"]) => {
            SimResponse::ok(json!({"data": state.subscriptions}))
        }
        (&Method::POST, ["api", "v2", "events"]) => subscribe(&mut state, &body),
        (&Method::GET, ["document", id, "download"]) => download(&state, id, request),
        (&Method::GET, ["document", id]) => match state.documents.get(*id) {
            Some(document) => SimResponse::ok(document_json(document)),
            None => api_error(65582, "Document not found"),
        },
        (&Method::POST, ["document", id, "invite"]) => invite(&mut state, id, &body, now),
        (&Method::PUT, ["fieldinvite", id, "resend"]) => resend(&mut state, id, now),
        (&Method::PUT, ["invite", id, "cancel"]) => {
            let found = state
                .documents
                .values_mut()
                .flat_map(|d| d.requests.iter_mut())
                .find(|r| r.unique_id == *id);
            match found {
                Some(request) => {
                    request.canceled = true;
                    SimResponse::ok(json!({}))
                }
                None => SimResponse::json(
                    StatusCode::NOT_FOUND,
                    json!({"errors": [{"code": 404, "message": "Invite not found"}]}),
                ),
            }
        }
        (&Method::DELETE, ["field_invite", id]) => match state.document_of_invite(id) {
            Some((document, index)) => {
                document.field_invites.remove(index);
                success()
            }
            None => api_error(66502, "Field invite not found."),
        },
        (&Method::POST, ["field_invite"]) => create_replacement(&mut state, &body, now),
        (&Method::POST, ["document", id, "trigger_fieldinvite"]) => {
            match state.documents.get_mut(*id) {
                Some(document) => {
                    let mut triggered = false;
                    for invite in document
                        .field_invites
                        .iter_mut()
                        .filter(|i| i.awaiting_trigger)
                    {
                        invite.awaiting_trigger = false;
                        triggered = true;
                    }
                    if !triggered {
                        return api_error(65615, "Field invite missing on this document.");
                    }
                    document.advance_routing();
                    success()
                }
                None => api_error(65582, "Document not found."),
            }
        }
        (&Method::PUT, ["document", id, "fieldinvitecancel"]) => {
            let Some(document) = state.documents.get_mut(*id) else {
                return api_error(65582, "Document not found.");
            };
            if body["reason"].as_str().unwrap_or_default().is_empty() {
                return api_error(65536, "The reason value must not be empty string.");
            }
            for invite in document
                .field_invites
                .iter_mut()
                .filter(|i| matches!(i.status.as_str(), "created" | "pending"))
            {
                invite.status = "canceled".into();
            }
            success()
        }
        _ => SimResponse::json(
            StatusCode::NOT_FOUND,
            json!({"404": "Unable to find a route to match the URI"}),
        ),
    }
}

/// `POST /api/v2/events`: `event`, `entity_id`, `action: "callback"` and
/// `attributes.callback` are required; answers 204 like signNow's spec.
fn subscribe(state: &mut State, body: &Value) -> SimResponse {
    let event = body["event"].as_str().unwrap_or_default();
    if event.is_empty() {
        return api_error(65582, "event must not be empty");
    }
    if body["action"] != "callback" || body["attributes"]["callback"].as_str().is_none() {
        return api_error(65536, "callback is required");
    }
    let entity = body["entity_id"].as_str().unwrap_or_default();
    if event.starts_with("user.") && entity != state.user_id {
        return api_error(65536, "entity_id must be the user id");
    }
    state.subscriptions.push(json!({
        "id": random_hex(40),
        "event": event,
        "entity_id": entity,
        "action": "callback",
        "json_attributes": {
            "callback_url": body["attributes"]["callback"],
            "use_tls_12": body["attributes"]["use_tls_12"],
            "delete_access_token": body["attributes"]["delete_access_token"],
            "secret_key": body["attributes"]["secret_key"],
        },
    }));
    SimResponse::json(StatusCode::NO_CONTENT, Value::Null).without_body()
}

fn token(shared: &Shared, state: &mut State, request: &SimRequest<'_>) -> SimResponse {
    let credentials = &shared.config.credentials;
    match request
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
    {
        None => return auth_error("invalid_client", Some(1538)),
        Some(basic) if basic != credentials.signnow_basic_token => {
            return auth_error("invalid_client", None);
        }
        Some(_) => {}
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(request.body)
        .into_owned()
        .collect();
    match form.get("grant_type").map(String::as_str) {
        Some("password") => {
            let (Some(username), Some(password)) = (form.get("username"), form.get("password"))
            else {
                return auth_error("invalid_request", None);
            };
            if *username != credentials.signnow_username
                || *password != credentials.signnow_password
            {
                return auth_error("Invalid credentials.", Some(826));
            }
        }
        Some("refresh_token") => {
            let Some(refresh) = form.get("refresh_token") else {
                return auth_error("invalid_request", None);
            };
            if state.refresh_tokens.remove(refresh).is_none() {
                return auth_error("invalid_grant", None);
            }
        }
        Some(_) => return auth_error("invalid_request", None),
        None => return auth_error("invalid_request", None),
    }
    let access_token = random_hex(64);
    let refresh_token = random_hex(64);
    state.tokens.insert(
        access_token.clone(),
        Token {
            expires_at: request.now + state.token_lifetime,
        },
    );
    state.refresh_tokens.insert(refresh_token.clone(), ());
    state.tokens_issued += 1;
    SimResponse::ok(json!({
        "expires_in": state.token_lifetime.num_seconds(),
        "token_type": "bearer",
        "access_token": access_token,
        "refresh_token": refresh_token,
        "scope": "*",
        "last_login": 0,
    }))
}

fn document_json(document: &SignNowDocument) -> Value {
    let listed = || {
        document
            .field_invites
            .iter()
            .filter(|i| !i.awaiting_trigger)
    };
    json!({
        "id": document.id,
        "document_name": document.name,
        "owner": document.owner,
        "roles": document.roles.iter().map(|r| json!({
            "unique_id": r.unique_id, "signing_order": r.signing_order.to_string(), "name": r.name,
        })).collect::<Vec<_>>(),
        // One signature field per role; its field request id is that of the
        // role's latest invite, null before any.
        "fields": document.roles.iter().map(|r| {
            let request_id = listed().rfind(|i| i.role_id == r.unique_id).map(|i| i.field_request_id.clone());
            json!({
                "id": random_hex(40), "type": "signature", "role_id": r.unique_id, "role": r.name,
                "field_request_id": request_id, "field_id": request_id, "field_request_canceled": null,
            })
        }).collect::<Vec<_>>(),
        "field_invites": listed().map(|i| json!({
            "id": i.id, "status": i.status, "email": i.email, "role": i.role, "role_id": i.role_id,
            "created": i.created.timestamp().to_string(),
            "updated": i.created.timestamp().to_string(),
            "expiration_time": i.expiration_time.timestamp().to_string(),
            "reminder": i.options["reminder"].clone(),
            "is_full_declined": !i.declined.is_empty(),
            "declined": i.declined.iter().map(|t| json!({"declined_text": t})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "requests": document.requests.iter().map(|r| {
            let mut row = json!({
                "id": r.id, "unique_id": r.unique_id, "user_id": random_hex(40),
                "created": r.created.timestamp().to_string(),
                "originator_email": document.owner, "signer_email": r.email,
                "redirect_target": "blank",
            });
            if let Some(signature) = &r.signature_id {
                row["signature_id"] = json!(signature);
            }
            if r.canceled {
                row["canceled"] = json!(1);
            }
            row
        }).collect::<Vec<_>>(),
    })
}

fn invite(state: &mut State, document_id: &str, body: &Value, now: DateTime<Utc>) -> SimResponse {
    let Some(document) = state.documents.get_mut(document_id) else {
        return api_error(65582, "Document not found");
    };
    let from = body["from"].as_str().unwrap_or_default();
    if !looks_like_email(from) {
        return api_error(65536, "From must be a valid email.");
    }
    if from != document.owner {
        return api_error(65536, "Email not found");
    }
    match &body["to"] {
        Value::String(to) => {
            if !looks_like_email(to) {
                return api_error(65536, "To must be a valid email.");
            }
            let id = random_hex(40);
            document.requests.push(FreeformInvite {
                id: random_hex(40),
                unique_id: id.clone(),
                email: to.clone(),
                created: now,
                signature_id: None,
                canceled: false,
            });
            SimResponse::ok(json!({"result": "success", "id": id, "callback_url": "none"}))
        }
        Value::Array(recipients) => {
            if !document.has_fields() {
                return api_error(
                    65594,
                    "Cannot send a field invite: This document does not contain fields.",
                );
            }
            if document
                .field_invites
                .iter()
                .any(|i| matches!(i.status.as_str(), "created" | "pending"))
            {
                return api_error(65629, "Could not create duplicate field invite");
            }
            let mut created = Vec::new();
            for recipient in recipients {
                let email = recipient["email"].as_str().unwrap_or_default();
                if !looks_like_email(email) {
                    return api_error(65536, "To must be a valid email.");
                }
                let role = match (recipient["role_id"].as_str(), recipient["role"].as_str()) {
                    (Some(role_id), _) => document.roles.iter().find(|r| r.unique_id == role_id),
                    (None, Some(name)) => document.roles.iter().find(|r| r.name == name),
                    (None, None) => None,
                };
                let Some(role) = role else {
                    let which = recipient["role_id"]
                        .as_str()
                        .or(recipient["role"].as_str())
                        .unwrap_or("");
                    return api_error(65536, &format!("Role {which} does not exist on document"));
                };
                if let Some(kind) = recipient.get("authentication_type") {
                    let ok = match kind.as_str() {
                        Some("password") => recipient["password"]
                            .as_str()
                            .is_some_and(|p| !p.is_empty()),
                        Some("phone") => recipient["phone"].as_str().is_some_and(|p| !p.is_empty()),
                        _ => false,
                    };
                    if !ok {
                        return api_error(65536, "authentication type must not be empty");
                    }
                }
                let expiration_days = recipient["expiration_days"].as_i64().unwrap_or(30);
                created.push(FieldInvite {
                    id: random_hex(40),
                    email: email.into(),
                    role: role.name.clone(),
                    role_id: role.unique_id.clone(),
                    order: recipient["order"]
                        .as_u64()
                        .map(|o| o as u32)
                        .unwrap_or(role.signing_order),
                    status: "created".into(),
                    field_request_id: random_hex(40),
                    declined: Vec::new(),
                    created: now,
                    expiration_time: now + Duration::days(expiration_days),
                    awaiting_trigger: false,
                    options: recipient.clone(),
                });
            }
            document.field_invites.extend(created);
            document.advance_routing();
            success()
        }
        _ => api_error(65536, "To must be a valid email."),
    }
}

fn resend(state: &mut State, id: &str, now: DateTime<Utc>) -> SimResponse {
    let kind = state.resend_id_kind;
    let found = state.documents.values().find_map(|document| {
        document.field_invites.iter().find(|i| match kind {
            ResendIdKind::FieldInviteId => i.id == id,
            ResendIdKind::FieldRequestId => i.field_request_id == id,
        })
    });
    let Some(invite) = found else {
        return api_error(65536, "could not resend");
    };
    if invite.expiration_time <= now {
        return api_error(65536, "Could not resend expired invite.");
    }
    if invite.status != "pending" || !invite.declined.is_empty() {
        return api_error(65536, "Could not resend: routing out of order.");
    }
    success()
}

fn create_replacement(state: &mut State, body: &Value, now: DateTime<Utc>) -> SimResponse {
    let email = body["email"].as_str().unwrap_or_default();
    if !looks_like_email(email) {
        return api_error(65538, "Email must be a valid email.");
    }
    let role_id = body["role_id"].as_str().unwrap_or_default();
    let Some(document) = state
        .documents
        .values_mut()
        .find(|d| d.roles.iter().any(|r| r.unique_id == role_id))
    else {
        return api_error(65582, "Role does not exist.");
    };
    if document
        .field_invites
        .iter()
        .any(|i| i.role_id == role_id && matches!(i.status.as_str(), "created" | "pending"))
    {
        return api_error(65615, "Invite already exists.");
    }
    let role = document
        .roles
        .iter()
        .find(|r| r.unique_id == role_id)
        .cloned()
        .expect("found above");
    let id = random_hex(40);
    let expiration_days = body["expiration_days"].as_i64().unwrap_or(30);
    document.field_invites.push(FieldInvite {
        id: id.clone(),
        email: email.into(),
        role: role.name,
        role_id: role.unique_id,
        order: role.signing_order,
        status: "created".into(),
        field_request_id: random_hex(40),
        declined: Vec::new(),
        created: now,
        expiration_time: now + Duration::days(expiration_days),
        awaiting_trigger: true,
        options: body.clone(),
    });
    SimResponse::ok(json!({"id": id}))
}
