//! Simulated Leegality Document Execution API v3 (paths below `/api`).
//!
//! As documented: answers carry the `{status, messages, data}` envelope and
//! most failures are HTTP 200 with `status: 0` and a dotted code. Where the
//! evidence shows otherwise the simulator follows it (evidence.md L-3, L-5,
//! L-12): a create missing `profileId` or `file` is HTTP 400 with the
//! envelope and a null code; an unknown workflow answers
//! `workflow.api.fields.or.file.required`; a missing `X-Auth-Token` is
//! code null "Access Denied" (HTTP status undocumented: the simulator uses
//! 200), a wrong one a bare HTTP 401. Workflows may preset invitees in the
//! dashboard; those join the document after the request's invitees.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone as _, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Shared, SimRequest, SimResponse, SimulatorConfig, lock};

pub(crate) const RESEND_CAP: u32 = 5;
pub(crate) const MAX_SIGN_URLS: usize = 15;
pub(crate) const MAX_FILE_BYTES: usize = 15 * 1024 * 1024;
pub(crate) const MSG_RESENT: &str =
    "Invitation(s) sent successfully. Please ask invitees to check their inbox.";
pub(crate) const MSG_ALREADY_SIGNED: &str = "Document(s) already signed by the invitee.";
pub(crate) const MSG_NO_ACCESS: &str = "You do not have access to the document.";
pub(crate) const MSG_RESEND_CAP: &str = "You have already resent invitation mail 5 times. Please contact support@leegality.com for help.";
/// The per-item text for an unknown sign URL is undocumented (only the null
/// name/email/phone are); this wording is the simulator's own.
pub(crate) const MSG_INVALID_URL: &str = "Invalid sign URL.";

#[derive(Debug, Clone)]
pub struct Invitee {
    pub uuid: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub signed: bool,
    pub rejected: bool,
    pub expired: bool,
    pub active: bool,
    pub deleted: bool,
    pub expiry: DateTime<Utc>,
    pub resends: u32,
}

#[derive(Debug, Clone)]
pub struct LeegalityDocument {
    pub id: String,
    pub irn: Option<String>,
    pub invitees: Vec<Invitee>,
    /// A document of another account: resend answers "no access".
    pub foreign: bool,
    /// The PDF as created (decoded from its Base64).
    pub file: axum::body::Bytes,
}

impl LeegalityDocument {
    fn status(&self) -> &'static str {
        let live: Vec<&Invitee> = self.invitees.iter().filter(|i| !i.deleted).collect();
        if !live.is_empty() && live.iter().all(|i| i.signed) {
            "COMPLETED"
        } else {
            "SENT"
        }
    }
}

pub struct State {
    sign_host: String,
    unlimited_resends: bool,
    pub documents: HashMap<String, LeegalityDocument>,
    /// Published workflows by profile id.
    pub workflows: HashMap<String, Workflow>,
    /// Leegality documents no order for resend items (each carries its
    /// `signUrl`); when set, the simulator answers them in reverse order.
    pub reverse_resend_items: bool,
}

/// A published workflow as configured in the dashboard.
#[derive(Debug, Clone, Default)]
pub struct Workflow {
    /// How many invitees the request must carry (0: none required).
    pub request_invitees: usize,
    /// Invitees configured in the dashboard, added to every document.
    pub preset: Vec<(String, String)>,
}

impl State {
    pub fn new(config: &SimulatorConfig) -> State {
        State {
            sign_host: config.leegality_sign_host.clone(),
            unlimited_resends: config.unlimited_resends,
            documents: HashMap::new(),
            reverse_resend_items: false,
            workflows: HashMap::from([
                (
                    "wfDemo01".to_owned(),
                    Workflow {
                        request_invitees: 1,
                        preset: Vec::new(),
                    },
                ),
                (
                    "wfTwoSigners".to_owned(),
                    Workflow {
                        request_invitees: 2,
                        preset: Vec::new(),
                    },
                ),
                (
                    "wfWithWitness".to_owned(),
                    Workflow {
                        request_invitees: 1,
                        preset: vec![("Office Witness".into(), "witness@example.com".into())],
                    },
                ),
                (
                    "wfPresetOnly".to_owned(),
                    Workflow {
                        request_invitees: 0,
                        preset: vec![("Registrar".into(), "registrar@example.com".into())],
                    },
                ),
                ("wfOpen".to_owned(), Workflow::default()),
            ]),
        }
    }

    pub fn sign_url(&self, uuid: &str) -> String {
        format!("https://{}/sign/{uuid}", self.sign_host)
    }

    /// Seeds a SENT document whose invitees sign in order.
    pub fn seed_document(
        &mut self,
        irn: Option<&str>,
        invitees: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> LeegalityDocument {
        let document = LeegalityDocument {
            id: ulid_like(),
            irn: irn.map(str::to_owned),
            invitees: invitees
                .iter()
                .enumerate()
                .map(|(index, (name, email))| Invitee {
                    uuid: uuid::Uuid::new_v4().to_string(),
                    name: (*name).to_owned(),
                    email: Some((*email).to_owned()),
                    phone: None,
                    signed: false,
                    rejected: false,
                    expired: false,
                    active: index == 0,
                    deleted: false,
                    expiry: end_of_day(now, 10),
                    resends: 0,
                })
                .collect(),
            foreign: false,
            file: super::sample_pdf("seeded Leegality document", 2048),
        };
        self.documents.insert(document.id.clone(), document.clone());
        document
    }

    /// The invitee signs: the next one becomes active, and Leegality's
    /// webhook for it is made (signed with `salt`).
    pub(crate) fn sign(&mut self, uuid: &str, salt: &str) -> Option<super::webhooks::Outgoing> {
        self.change(uuid, salt, Change::Sign)
    }

    /// The invitee's link passes its expiry date; Leegality calls back. The
    /// webhook's `action` word for this is not documented ("Expired" is this
    /// simulator's guess; the gateway re-reads the document anyway).
    pub(crate) fn expire(&mut self, uuid: &str, salt: &str) -> Option<super::webhooks::Outgoing> {
        self.change(uuid, salt, Change::Expire)
    }

    fn change(
        &mut self,
        uuid: &str,
        salt: &str,
        change: Change,
    ) -> Option<super::webhooks::Outgoing> {
        let host = self.sign_host.clone();
        let (document, index) = self.invitee_mut(uuid)?;
        let action = match change {
            Change::Sign => {
                document.invitees[index].signed = true;
                document.invitees[index].active = false;
                if let Some(next) = document
                    .invitees
                    .iter_mut()
                    .find(|i| !i.signed && !i.deleted)
                {
                    next.active = true;
                }
                "Signed"
            }
            Change::Expire => {
                document.invitees[index].expired = true;
                document.invitees[index].active = false;
                "Expired"
            }
        };
        let invitee = &document.invitees[index];
        let request = serde_json::json!({
            "inviteeType": "signer",
            "name": invitee.name,
            "email": invitee.email,
            "phone": invitee.phone,
            "invitationUrl": format!("https://{host}/sign/{}", invitee.uuid),
            "active": false,
            "action": action,
            "error": null,
            "expired": invitee.expired,
            "expiryDate": format_date(invitee.expiry),
            "rejectionMessage": null,
            "signType": "VIRTUAL_SIGN",
        });
        let status = if document.status() == "COMPLETED" {
            "Completed"
        } else {
            "Sent"
        };
        let id = document.id.clone();
        Some(super::webhooks::leegality(salt, &id, request, status))
    }

    /// Finds an invitee by bare UUID or full sign URL.
    pub(crate) fn invitee_mut(
        &mut self,
        url_or_uuid: &str,
    ) -> Option<(&mut LeegalityDocument, usize)> {
        let uuid = url_or_uuid
            .rsplit('/')
            .next()
            .unwrap_or(url_or_uuid)
            .to_owned();
        for document in self.documents.values_mut() {
            if let Some(index) = document
                .invitees
                .iter()
                .position(|i| i.uuid == uuid && !i.deleted)
            {
                return Some((document, index));
            }
        }
        None
    }

    fn request_json(&self, invitee: &Invitee) -> Value {
        json!({
            "name": invitee.name,
            "email": invitee.email,
            "phone": invitee.phone,
            "signUrl": self.sign_url(&invitee.uuid),
            "signed": invitee.signed,
            "rejected": invitee.rejected,
            "expired": invitee.expired,
            "expiryDate": format_date(invitee.expiry),
            "signType": if invitee.signed { Value::from("VIRTUAL") } else { Value::Null },
            "active": invitee.active,
        })
    }
}

/// `dd-MM-yyyy HH:mm:ss` in IST.
pub(crate) fn format_date(time: DateTime<Utc>) -> String {
    time.with_timezone(&ist())
        .format("%d-%m-%Y %H:%M:%S")
        .to_string()
}

/// N days from `now` at 23:59:59 IST, as Leegality's `expiryDays` does.
fn end_of_day(now: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    let local = (now.with_timezone(&ist()) + Duration::days(days)).date_naive();
    let end = local.and_time(NaiveTime::from_hms_opt(23, 59, 59).expect("valid time"));
    ist()
        .from_local_datetime(&end)
        .single()
        .expect("fixed offset")
        .with_timezone(&Utc)
}

/// Leegality states no zone for its `dd-MM-yyyy HH:mm:ss` times; the
/// simulator plays India Standard Time, as the one third-party trace of a
/// Leegality expiry suggests (evidence.md L-6). Kept here, not shared with
/// the adapter, so a wrong guess in one shows against the other.
fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 30 * 60).expect("valid offset")
}

fn ulid_like() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes().iter())
        .take(26)
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

fn envelope(status: u8, code: Option<&str>, message: &str, data: impl Serialize) -> SimResponse {
    envelope_with(StatusCode::OK, status, code, message, data)
}

/// Every Leegality answer's `{status, messages, data}`, serialized straight
/// from `data` (typed on the hot resend path; a `Value` elsewhere).
fn envelope_with(
    http: StatusCode,
    status: u8,
    code: Option<&str>,
    message: &str,
    data: impl Serialize,
) -> SimResponse {
    let envelope = Envelope {
        status,
        messages: [EnvelopeMessage { code, message }],
        data,
    };
    match serde_json::to_vec(&envelope) {
        Ok(body) => SimResponse::json_bytes(http, body.into()),
        Err(error) => SimResponse::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"simulator": error.to_string()}),
        ),
    }
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    status: u8,
    messages: [EnvelopeMessage<'a>; 1],
    data: T,
}

#[derive(Serialize)]
struct EnvelopeMessage<'a> {
    code: Option<&'a str>,
    message: &'a str,
}

/// A malformed create: HTTP 400 with the envelope and a null code.
fn bad_request(message: &str) -> SimResponse {
    envelope_with(StatusCode::BAD_REQUEST, 0, None, message, json!({}))
}

fn failure(code: &str, message: &str) -> SimResponse {
    envelope(0, Some(code), message, json!({}))
}

pub(super) fn handle(shared: &Shared, request: &SimRequest<'_>) -> SimResponse {
    let expected = &shared.config.credentials.leegality_auth_token;
    match request.header("x-auth-token").filter(|t| !t.is_empty()) {
        None => return envelope_with(StatusCode::OK, 0, None, "Access Denied", json!({})),
        Some(token) if token != expected.as_str() => {
            return SimResponse::json(StatusCode::UNAUTHORIZED, Value::Null).without_body();
        }
        Some(_) => {}
    }
    let mut state = lock(&shared.leegality);
    let body: Value = serde_json::from_slice(request.body).unwrap_or(Value::Null);
    match (request.method, request.path) {
        (&Method::POST, "/v3.0/sign/request") => create(&mut state, &body, request.now),
        (&Method::GET, "/v3.2/sign/request") => status(&state, request.query.get("documentId")),
        (&Method::POST, "/v3.0/sign/request/resend") => resend(&mut state, &body),
        (&Method::POST, "/v3.0/sign/request/reactivate") => {
            reactivate(&mut state, &body, request.now)
        }
        (&Method::DELETE, "/v3.0/sign/request/invitation") => {
            delete(&mut state, request.query.get("signUrl"))
        }
        (&Method::GET, "/v3.1/document/fetchDocument") => fetch_document(&state, request),
        _ => SimResponse::json(
            StatusCode::NOT_FOUND,
            json!({"status": 0, "messages": [], "data": {}}),
        ),
    }
}

fn create(state: &mut State, body: &Value, now: DateTime<Utc>) -> SimResponse {
    let Some(profile_id) = body["profileId"].as_str() else {
        return bad_request("Property profileId cannot be null");
    };
    if body["file"].is_null() {
        return bad_request("Property file cannot be null");
    }
    let Some(workflow) = state.workflows.get(profile_id).cloned() else {
        // Leegality answers an unknown profileId with this code too.
        return failure(
            "workflow.api.fields.or.file.required",
            "Either file base64 or fields required for file.",
        );
    };
    let file = &body["file"];
    let Some(encoded) = file["file"].as_str() else {
        return failure(
            "workflow.api.fields.or.file.required",
            "Either file base64 or fields required for file.",
        );
    };
    let pdf = match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(bytes) if bytes.len() > MAX_FILE_BYTES => {
            return failure("file.size.exceeded", "File size cannot be more than 15 MB.");
        }
        Ok(bytes) => axum::body::Bytes::from(bytes),
        Err(_) => return failure("validator.invalid", "File is not valid Base64."),
    };
    let empty = Vec::new();
    let invitees = body["invitees"].as_array().unwrap_or(&empty);
    if invitees.is_empty() && workflow.preset.is_empty() {
        return failure(
            "simpleWorkFlow.no.payload.invitee",
            "Either send Invitees data or configure at least one Invitees in dashboard",
        );
    }
    if workflow.request_invitees > 0 && invitees.len() != workflow.request_invitees {
        return failure("validator.invalid", "Invitees do not match the workflow.");
    }
    if let Some(irn) = body["irn"].as_str()
        && irn.len() > 255
    {
        return failure("irn.length.invalid", "IRN length is invalid.");
    }
    let mut created = Vec::new();
    for (index, invitee) in invitees.iter().enumerate() {
        let name = invitee["name"].as_str().unwrap_or_default();
        let email = invitee["email"].as_str().filter(|e| !e.is_empty());
        let phone = invitee["phone"].as_str().filter(|p| !p.is_empty());
        if name.is_empty() || (email.is_none() && phone.is_none()) {
            return failure(
                "validator.invalid",
                "Invitee name and email or phone are required.",
            );
        }
        created.push(Invitee {
            uuid: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            email: email.map(str::to_owned),
            phone: phone.map(str::to_owned),
            signed: false,
            rejected: false,
            expired: false,
            active: index == 0,
            deleted: false,
            expiry: end_of_day(now, 10),
            resends: 0,
        });
    }
    for (name, email) in &workflow.preset {
        created.push(Invitee {
            uuid: uuid::Uuid::new_v4().to_string(),
            name: name.clone(),
            email: Some(email.clone()),
            phone: None,
            signed: false,
            rejected: false,
            expired: false,
            active: created.is_empty(),
            deleted: false,
            expiry: end_of_day(now, 10),
            resends: 0,
        });
    }
    let document = LeegalityDocument {
        id: ulid_like(),
        irn: body["irn"].as_str().map(str::to_owned),
        invitees: created,
        foreign: false,
        file: pdf,
    };
    let data = json!({
        "documentId": document.id,
        "irn": document.irn,
        "invitees": document.invitees.iter().map(|i| json!({
            "name": i.name, "email": i.email, "phone": i.phone,
            "signUrl": state.sign_url(&i.uuid), "active": i.active,
            "expiryDate": format_date(i.expiry),
        })).collect::<Vec<_>>(),
    });
    state.documents.insert(document.id.clone(), document);
    envelope(
        1,
        Some("simpleWorkFlow.success"),
        "Invitations sent successfully.",
        data,
    )
}

fn status(state: &State, document_id: Option<&String>) -> SimResponse {
    let Some(document) = document_id.and_then(|id| state.documents.get(id)) else {
        return failure("no.document.found", "No document found.");
    };
    SimResponse::ok(json!({
        "status": 1,
        "messages": [],
        "data": {
            "documentId": document.id,
            "irn": document.irn,
            "status": document.status(),
            "requests": document.invitees.iter().filter(|i| !i.deleted).map(|i| state.request_json(i)).collect::<Vec<_>>(),
        }
    }))
}

fn resend(state: &mut State, body: &Value) -> SimResponse {
    let Some(urls) = body.get("signUrls") else {
        return envelope(0, None, "Property signUrls cannot be null", json!({}));
    };
    let Some(urls) = urls.as_array() else {
        return failure("validator.invalid", "signUrls must be an array.");
    };
    if urls.is_empty() || urls.len() > MAX_SIGN_URLS {
        return failure(
            "validator.invalid",
            "signUrls size must be between 1 and 15",
        );
    }
    let mut results = Vec::with_capacity(urls.len());
    for url in urls {
        let url = url.as_str().unwrap_or_default();
        let sign_url = if url.starts_with("https://") {
            url.to_owned()
        } else {
            state.sign_url(url)
        };
        let unlimited_resends = state.unlimited_resends;
        let item = match state.invitee_mut(url) {
            None => ResendItem {
                status: 0,
                name: None,
                email: None,
                phone: None,
                sign_url,
                message: MSG_INVALID_URL,
            },
            Some((document, index)) => {
                let foreign = document.foreign;
                let invitee = &mut document.invitees[index];
                let (status, message) = if foreign {
                    (0, MSG_NO_ACCESS)
                } else if invitee.signed {
                    (0, MSG_ALREADY_SIGNED)
                } else if invitee.resends >= RESEND_CAP && !unlimited_resends {
                    (0, MSG_RESEND_CAP)
                } else {
                    invitee.resends += 1;
                    (1, MSG_RESENT)
                };
                ResendItem {
                    status,
                    name: Some(invitee.name.clone()),
                    email: invitee.email.clone(),
                    phone: invitee.phone.clone(),
                    sign_url,
                    message,
                }
            }
        };
        results.push(item);
    }
    if state.reverse_resend_items {
        results.reverse();
    }
    // Typed items, not a `Value`: the benchmark's scale run asks for about
    // 8,000 of these a second on the cores the gateway under test shares.
    envelope(
        1,
        Some("simpleWorkFlow.success"),
        "Invitations sent successfully.",
        ResendData {
            invitations: results,
        },
    )
}

#[derive(Serialize)]
struct ResendData {
    invitations: Vec<ResendItem>,
}

/// One resend item; an unknown sign URL has null name, email and phone.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResendItem {
    status: u8,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    sign_url: String,
    message: &'static str,
}

fn reactivate(state: &mut State, body: &Value, now: DateTime<Utc>) -> SimResponse {
    let Some(document_id) = body["documentId"].as_str() else {
        return envelope(0, None, "Property documentId cannot be null", json!({}));
    };
    if !state.documents.contains_key(document_id) {
        return failure("no.document.found", "No document found.");
    }
    let new_expiry = if let Some(days) = body.get("expiryDays").filter(|v| !v.is_null()) {
        match days.as_i64() {
            Some(-1) => now + Duration::minutes(45),
            Some(days) if (0..=365).contains(&days) => end_of_day(now, days),
            _ => return failure("invalid.expiry.days.value", "Expiry days value is invalid."),
        }
    } else if let Some(time) = body.get("expiryTime").filter(|v| !v.is_null()) {
        let Some(at) = time
            .as_i64()
            .and_then(DateTime::<Utc>::from_timestamp_millis)
        else {
            return failure("invalid.expiry.time", "Expiry time is invalid.");
        };
        if at <= now {
            return failure("invalid.expiry.time", "Expiry time is invalid.");
        }
        if at > now + Duration::days(365) {
            return failure(
                "invalid.expiry.time.maxerror",
                "Expiry time cannot be more than 365 days.",
            );
        }
        at
    } else {
        end_of_day(now, 10)
    };
    let document = state.documents.get_mut(document_id).expect("checked above");
    let mut reactivated = false;
    for invitee in document
        .invitees
        .iter_mut()
        .filter(|i| i.expired && !i.deleted && !i.signed)
    {
        invitee.expired = false;
        invitee.expiry = new_expiry;
        reactivated = true;
    }
    if !reactivated {
        return failure(
            "no.expired.invitation.found",
            "No expired invitation found.",
        );
    }
    let document = document.clone();
    let requests: Vec<Value> = document
        .invitees
        .iter()
        .filter(|i| !i.deleted)
        .map(|i| state.request_json(i))
        .collect();
    envelope(
        1,
        Some("signinvitation.activate.success"),
        "Invitation activated successfully",
        json!({"documentId": document.id, "irn": document.irn, "requests": requests}),
    )
}

fn delete(state: &mut State, sign_url: Option<&String>) -> SimResponse {
    let Some(sign_url) = sign_url.filter(|s| !s.is_empty()) else {
        return failure("sign.url.required", "Sign URL is required.");
    };
    match state.invitee_mut(sign_url) {
        Some((document, index))
            if !document.invitees[index].signed && document.status() != "COMPLETED" =>
        {
            document.invitees[index].deleted = true;
            envelope(
                1,
                Some("invitation.deleted.success"),
                "Invitation deleted successfully.",
                json!({}),
            )
        }
        _ => failure("invitation.not.exists", "Invitation does not exist."),
    }
}

/// What happens to an invitee in [`State::change`].
enum Change {
    Sign,
    Expire,
}

/// `GET /v3.1/document/fetchDocument`: the raw file. `DOCUMENT` is served
/// at any stage, `AUDIT_TRAIL` once the document is completed; errors come
/// back as HTTP 200 JSON envelopes, as the notes describe. The simulator's
/// own choice: an audit trail asked too early is `no.document.found`.
fn fetch_document(state: &State, request: &SimRequest<'_>) -> SimResponse {
    let document = request
        .query
        .get("documentId")
        .and_then(|id| state.documents.get(id));
    let Some(document) = document.filter(|d| !d.foreign) else {
        return failure("no.document.found", "No document found.");
    };
    match request
        .query
        .get("documentDownloadType")
        .map(String::as_str)
    {
        Some("DOCUMENT") => {
            SimResponse::file(format!("{}.pdf", document.id), vec![document.file.clone()])
        }
        Some("AUDIT_TRAIL") if document.status() == "COMPLETED" => SimResponse::file(
            format!("{}-audit-trail.pdf", document.id),
            vec![super::sample_pdf(
                &format!("audit trail of {}", document.id),
                1024,
            )],
        ),
        Some("AUDIT_TRAIL") => failure("no.document.found", "No document found."),
        _ => failure("document.download.type", "Invalid document download type."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_day_is_2359_ist() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        assert_eq!(format_date(end_of_day(now, 5)), "06-03-2026 23:59:59");
    }

    #[test]
    fn a_resend_answers_the_documented_envelope_item_by_item() {
        let mut state = State::new(&SimulatorConfig::default());
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let document = state.seed_document(None, &[("Asha", "asha@example.com")], now);
        let uuid = document.invitees[0].uuid.clone();
        let answer = resend(&mut state, &json!({"signUrls": [uuid, "no-such-uuid"]}));
        assert_eq!(answer.status, StatusCode::OK);
        let body: Value =
            serde_json::from_slice(answer.json_bytes.as_deref().expect("a JSON answer"))
                .expect("valid JSON");
        assert_eq!(
            body,
            json!({
                "status": 1,
                "messages": [{"code": "simpleWorkFlow.success", "message": "Invitations sent successfully."}],
                "data": {"invitations": [
                    {"status": 1, "name": "Asha", "email": "asha@example.com", "phone": null,
                     "signUrl": state.sign_url(&uuid), "message": MSG_RESENT},
                    {"status": 0, "name": null, "email": null, "phone": null,
                     "signUrl": state.sign_url("no-such-uuid"), "message": MSG_INVALID_URL},
                ]},
            })
        );
        assert_eq!(
            state.invitee_mut(&uuid).map(|(d, i)| d.invitees[i].resends),
            Some(1)
        );
    }
}
