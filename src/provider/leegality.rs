//! Leegality Document Execution API v3 adapter: create (send), resend (single
//! and batch in one call), reactivate, delete invitation and transaction
//! status.
//!
//! Leegality answers most errors with HTTP 200 and `status: 0`: success and
//! failure are decided from `status` and `messages[].code`, never from the
//! HTTP status alone. Timestamps (`dd-MM-yyyy HH:mm:ss`) carry no zone; IST
//! is assumed (unconfirmed by Leegality).

use ::http::{HeaderName, Method};
use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    config::{AccountConfig, Credentials, Timeouts},
    domain::{
        BatchItemOutcome, Document, DocumentState, Expiry, Invitation, InvitationState,
        ProviderKind, ProviderWarning, Rpc, SendOptions, SendOutcome, SendRequest, Signer,
    },
    error::{GatewayError, MetaKey, Outcome, Reason, Result},
    provider::{
        CallContext, Provider,
        transport::{self, CredentialHeader, HttpClient, Outbound, ProviderResponse, RetryPolicy},
    },
    validate,
};

const KIND: ProviderKind = ProviderKind::Leegality;
const RESEND_CAP: u32 = 5;
const MAX_DOCUMENT_ID_LEN: usize = 64;
const MAX_EXPIRY_DAYS: i32 = 365;

/// "15 MB" is not defined further; the stricter decimal reading is enforced
/// so no file the provider might refuse is ever sent (unconfirmed).
pub const MAX_FILE_BYTES: usize = 15_000_000;
/// Third-party notes give 255 as the `irn` limit (unconfirmed).
const MAX_IRN_LEN: usize = 255;
const MAX_PROFILE_ID_LEN: usize = 64;
const MAX_NAME_LEN: usize = 200;
/// Codes Leegality uses for success (evidence.md D-L6); anything else on a
/// successful answer is passed on as a warning.
const SUCCESS_CODES: &[&str] = &[
    "simpleWorkFlow.success",
    "signinvitation.activate.success",
    "invitation.deleted.success",
    "document.delete.success",
];

const SUPPORTED: &[Rpc] = &[
    Rpc::SendInvitation,
    Rpc::ResendInvitation,
    Rpc::BatchResendInvitations,
    Rpc::ReactivateDocument,
    Rpc::DeleteInvitation,
    Rpc::GetDocument,
];

pub struct Leegality {
    account: AccountConfig,
    http: HttpClient,
    timeouts: Timeouts,
    /// Each endpoint's URL on this account, built once: every Leegality
    /// path is fixed (ids go in the body or the query).
    urls: Vec<Url>,
    auth_token: CredentialHeader,
}

/// The Leegality calls the adapter makes.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Create,
    Resend,
    Reactivate,
    DeleteInvitation,
    TransactionStatus,
}

impl Endpoint {
    const ALL: [Endpoint; 5] = [
        Endpoint::Create,
        Endpoint::Resend,
        Endpoint::Reactivate,
        Endpoint::DeleteInvitation,
        Endpoint::TransactionStatus,
    ];

    /// (operation name, method, path)
    fn describe(self) -> (&'static str, Method, &'static str) {
        match self {
            Endpoint::Create => ("create", Method::POST, "/v3.0/sign/request"),
            Endpoint::Resend => ("resend", Method::POST, "/v3.0/sign/request/resend"),
            Endpoint::Reactivate => ("reactivate", Method::POST, "/v3.0/sign/request/reactivate"),
            Endpoint::DeleteInvitation => (
                "delete_invitation",
                Method::DELETE,
                "/v3.0/sign/request/invitation",
            ),
            Endpoint::TransactionStatus => {
                ("transaction_status", Method::GET, "/v3.2/sign/request")
            }
        }
    }
}

impl Leegality {
    pub fn new(account: AccountConfig, http: HttpClient, timeouts: Timeouts) -> Self {
        let urls = Endpoint::ALL
            .iter()
            .map(|endpoint| transport::url_with_path(&account.base_url, endpoint.describe().2))
            .collect();
        let auth_token = CredentialHeader::new(match &account.credentials {
            Credentials::Leegality { auth_token } => auth_token.expose(),
            _ => "",
        });
        Leegality {
            account,
            http,
            timeouts,
            urls,
            auth_token,
        }
    }

    fn request(&self, endpoint: Endpoint) -> Result<Outbound> {
        let (operation, method, path) = endpoint.describe();
        Outbound::new(
            operation,
            method,
            self.urls[endpoint as usize].clone(),
            path,
        )
        .credential(HeaderName::from_static("x-auth-token"), &self.auth_token)
    }

    fn sign_url_host(&self) -> &str {
        self.account
            .sign_url_host
            .as_deref()
            .unwrap_or_else(|| self.account.host())
    }

    fn sign_uuid(&self, field: &str, value: &str) -> Result<String> {
        sign_uuid(self.sign_url_host(), field, value)
    }

    fn sign_url(&self, uuid: &str) -> String {
        format!("https://{}/sign/{uuid}", self.sign_url_host())
    }

    async fn call(&self, ctx: &CallContext, outbound: Outbound) -> Result<Envelope> {
        let response = self
            .http
            .send(ctx, KIND, &self.account.name, outbound)
            .await?;
        decode(&response)
    }

    async fn resend_batch(&self, ctx: &CallContext, uuids: &[String]) -> Result<Vec<ResendItem>> {
        let body = ResendBody { sign_urls: uuids };
        let outbound = self
            .request(Endpoint::Resend)?
            .json_body(&body)?
            .timeout(self.timeouts.write)
            // Sends real notifications and counts toward the 5-resend cap.
            .retry(RetryPolicy::OnlyBeforeSent);
        let envelope = self.call(ctx, outbound).await?;
        let data: ResendData = envelope
            .data()
            .map_err(|_| unrecognized_body("resend answer without data.invitations"))?;
        Ok(data.invitations)
    }

    /// Pairs each requested UUID with its item by the item's `signUrl`
    /// (evidence.md D-L5): Leegality documents no order. Only when no item
    /// carries a sign URL and the counts agree is position used. A UUID
    /// without an item gets an error that says its outcome is unknown:
    /// notifications may have gone out, so it is never resent blindly.
    fn match_items(&self, uuids: &[String], items: Vec<ResendItem>) -> Vec<Result<ResendItem>> {
        let by_position = items.len() == uuids.len() && items.iter().all(|i| i.sign_url.is_none());
        if by_position {
            return items.into_iter().map(Ok).collect();
        }
        let mut items: Vec<Option<ResendItem>> = items.into_iter().map(Some).collect();
        let mut matched = Vec::with_capacity(uuids.len());
        for uuid in uuids {
            let slot = items.iter_mut().find(|slot| {
                slot.as_ref()
                    .and_then(|item| item.sign_url.as_deref())
                    .is_some_and(|url| sign_url_uuid(url).eq_ignore_ascii_case(uuid))
            });
            matched.push(match slot.and_then(Option::take) {
                Some(item) => Ok(item),
                None => Err(
                    unrecognized_body("resend answer has no item for a sign URL")
                        .with_outcome(Outcome::Unknown)
                        .with_metadata(MetaKey::InvitationId, uuid.clone()),
                ),
            });
        }
        let unmatched = items.iter().flatten().count();
        if unmatched > 0 {
            tracing::warn!(
                unmatched,
                "leegality resend answer has items for sign URLs not asked for"
            );
        }
        matched
    }

    fn item_outcome(&self, requested: &str, uuid: &str, item: ResendItem) -> BatchItemOutcome {
        let result = if item.status == 1 {
            Ok(Invitation {
                id: uuid.to_owned(),
                sign_url: Some(self.sign_url(uuid)),
                signer: Signer {
                    name: item.name.unwrap_or_default(),
                    email: item.email.unwrap_or_default(),
                    phone: item.phone.unwrap_or_default(),
                    ..Signer::default()
                },
                state: InvitationState::Pending,
                is_signers_turn: true,
                ..Invitation::default()
            })
        } else {
            Err(item_error(uuid, &item))
        };
        BatchItemOutcome {
            invitation_id: requested.to_owned(),
            result,
        }
    }
}

#[async_trait]
impl Provider for Leegality {
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
            .request(Endpoint::Create)?
            .json_body(&body)?
            .timeout(self.timeouts.upload)
            // Each call makes a new billed document; irn is not deduplicated.
            .retry(RetryPolicy::OnlyBeforeSent);
        let envelope = self.call(ctx, outbound).await.map_err(|e| {
            // After an unknown outcome the caller reconciles by irn.
            if request.reference.is_empty() {
                e
            } else {
                e.with_default_metadata(MetaKey::Reference, &request.reference)
            }
        })?;
        let mut warnings: Vec<ProviderWarning> = envelope
            .messages
            .iter()
            .filter_map(|m| {
                let code = m.code.as_deref()?;
                (!SUCCESS_CODES.contains(&code)).then(|| ProviderWarning {
                    code: code.to_owned(),
                    message: m.message.clone().unwrap_or_default(),
                })
            })
            .collect();
        let data: CreateData = envelope
            .data()
            .map_err(|_| unrecognized_body("create answer without documentId and invitees"))?;
        // The document exists and is billed: whatever Leegality lists is
        // the truth. A workflow can preset invitees in the dashboard, so the
        // count may differ from the request (evidence.md D-L3).
        if data.invitees.len() != request.signers.len() {
            warnings.push(ProviderWarning {
                code: "gateway.invitees.count_differs".into(),
                message: format!(
                    "Leegality created {} invitees for {} requested; the workflow may preset invitees",
                    data.invitees.len(),
                    request.signers.len()
                ),
            });
        }
        let invitations = data
            .invitees
            .into_iter()
            .map(|request| {
                let mut invitation = self.invitation_from(&data.document_id, request);
                invitation.reference = data.irn.clone();
                invitation
            })
            .collect();
        Ok(SendOutcome {
            document_id: Some(data.document_id),
            invitations,
            warnings,
        })
    }

    async fn resend_invitation(
        &self,
        ctx: &CallContext,
        invitation_id: &str,
        _document_id: Option<&str>,
    ) -> Result<Invitation> {
        let uuid = self.sign_uuid("invitation_id", invitation_id)?;
        let uuids = std::slice::from_ref(&uuid);
        let items = self.resend_batch(ctx, uuids).await?;
        let item = self.match_items(uuids, items).remove(0)?;
        self.item_outcome(invitation_id, &uuid, item).result
    }

    fn validate_batch_ids(&self, ids: &[String]) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for (index, id) in ids.iter().enumerate() {
            let field = format!("invitation_ids[{index}]");
            let uuid = self.sign_uuid(&field, id)?;
            if !seen.insert(uuid) {
                return Err(GatewayError::invalid_field(
                    field,
                    "names the same invitation as an earlier id",
                ));
            }
        }
        Ok(())
    }

    /// One provider call for the whole batch; one result per item.
    async fn batch_resend(
        &self,
        ctx: &CallContext,
        invitation_ids: &[String],
        _document_id: Option<&str>,
    ) -> Result<Vec<BatchItemOutcome>> {
        // The service already ran `validate_batch_ids`; this only converts.
        let uuids: Vec<String> = invitation_ids
            .iter()
            .enumerate()
            .map(|(index, id)| self.sign_uuid(&format!("invitation_ids[{index}]"), id))
            .collect::<Result<_>>()?;
        let items = self.resend_batch(ctx, &uuids).await?;
        let items = self.match_items(&uuids, items);
        Ok(invitation_ids
            .iter()
            .zip(uuids.iter())
            .zip(items)
            .map(|((requested, uuid), item)| match item {
                Ok(item) => self.item_outcome(requested, uuid, item),
                Err(error) => BatchItemOutcome {
                    invitation_id: requested.clone(),
                    result: Err(error),
                },
            })
            .collect())
    }

    async fn reactivate_document(
        &self,
        ctx: &CallContext,
        document_id: &str,
        expiry: Expiry,
    ) -> Result<Document> {
        validate_document_id(document_id)?;
        let now = Utc::now();
        let mut body = ReactivateBody {
            document_id,
            expiry_days: None,
            expiry_time: None,
        };
        match expiry {
            Expiry::WorkflowDefault => {}
            Expiry::Days(days) if (-1..=MAX_EXPIRY_DAYS).contains(&days) => {
                body.expiry_days = Some(days)
            }
            Expiry::Days(_) => {
                return Err(GatewayError::invalid_field(
                    "expiry_days",
                    "must be from -1 (45 minutes) to 365",
                ));
            }
            Expiry::At(at) if at <= now => {
                return Err(GatewayError::invalid_field(
                    "expire_time",
                    "must be in the future",
                ));
            }
            Expiry::At(at) if at > now + chrono::Duration::days(i64::from(MAX_EXPIRY_DAYS)) => {
                return Err(GatewayError::invalid_field(
                    "expire_time",
                    "must be at most 365 days ahead",
                ));
            }
            Expiry::At(at) => body.expiry_time = Some(at.timestamp_millis()),
        }
        let outbound = self
            .request(Endpoint::Reactivate)?
            .json_body(&body)?
            .timeout(self.timeouts.write)
            // A repeat answers no.expired.invitation.found, which would hide
            // the first call's success: no automatic retry.
            .retry(RetryPolicy::OnlyBeforeSent);
        let envelope = self
            .call(ctx, outbound)
            .await
            .map_err(|e| e.with_default_metadata(MetaKey::DocumentId, document_id))?;
        self.document_from(&envelope)
    }

    async fn delete_invitation(
        &self,
        ctx: &CallContext,
        invitation_id: &str,
        _document_id: Option<&str>,
    ) -> Result<()> {
        let uuid = self.sign_uuid("invitation_id", invitation_id)?;
        let mut outbound = self
            .request(Endpoint::DeleteInvitation)?
            .timeout(self.timeouts.write)
            .retry(RetryPolicy::Safe);
        outbound.url.query_pairs_mut().append_pair("signUrl", &uuid);
        let response = self
            .http
            .send(ctx, KIND, &self.account.name, outbound)
            .await
            .map_err(|e| e.with_default_metadata(MetaKey::InvitationId, invitation_id))?;
        match decode(&response) {
            Ok(_) => Ok(()),
            // A repeat after a lost answer finds nothing left to delete.
            Err(e)
                if e.reason() == Reason::InvitationNotFound
                    && response.is_retry_after_possible_delivery =>
            {
                tracing::info!("retried delete found the invitation already gone");
                Ok(())
            }
            Err(e) => Err(e.with_default_metadata(MetaKey::InvitationId, invitation_id)),
        }
    }

    async fn get_document(&self, ctx: &CallContext, document_id: &str) -> Result<Document> {
        validate_document_id(document_id)?;
        let mut outbound = self
            .request(Endpoint::TransactionStatus)?
            .timeout(self.timeouts.read)
            .retry(RetryPolicy::Safe);
        outbound
            .url
            .query_pairs_mut()
            .append_pair("documentId", document_id);
        let envelope = self
            .call(ctx, outbound)
            .await
            .map_err(|e| e.with_default_metadata(MetaKey::DocumentId, document_id))?;
        self.document_from(&envelope)
    }
}

impl Leegality {
    fn document_from(&self, envelope: &Envelope) -> Result<Document> {
        let data: DocumentData = envelope
            .data()
            .map_err(|_| unrecognized_body("document answer without documentId"))?;
        let invitations: Vec<Invitation> = data
            .requests
            .into_iter()
            .map(|request| self.invitation_from(&data.document_id, request))
            .collect();
        let state = match data.status.as_deref() {
            Some("DRAFT") => DocumentState::Draft,
            Some("COMPLETED") => DocumentState::Completed,
            _ => derive_document_state(&invitations),
        };
        Ok(Document {
            id: data.document_id,
            reference: data.irn,
            state,
            provider_status: data.status.unwrap_or_default(),
            invitations,
        })
    }

    fn invitation_from(&self, document_id: &str, request: WireRequest) -> Invitation {
        let uuid = request
            .sign_url
            .as_deref()
            .and_then(|url| url.rsplit('/').next())
            .unwrap_or_default()
            .to_owned();
        let state = if request.signed {
            InvitationState::Signed
        } else if request.rejected {
            InvitationState::Rejected
        } else if request.expired {
            InvitationState::Expired
        } else if request.active {
            InvitationState::Pending
        } else {
            InvitationState::Created
        };
        let provider_status = match state {
            InvitationState::Signed => "signed",
            InvitationState::Rejected => "rejected",
            InvitationState::Expired => "expired",
            InvitationState::Pending => "active",
            _ => "inactive",
        };
        Invitation {
            sign_url: Some(self.sign_url(&uuid)),
            id: uuid,
            signer: Signer {
                name: request.name.unwrap_or_default(),
                email: request.email.unwrap_or_default(),
                phone: request.phone.unwrap_or_default(),
                ..Signer::default()
            },
            state,
            provider_status: provider_status.to_owned(),
            is_signers_turn: request.active && state == InvitationState::Pending,
            expire_time: request
                .expiry_date
                .as_deref()
                .and_then(parse_leegality_time),
            delivery_attempts: None,
            document_id: Some(document_id.to_owned()),
            reference: None,
            send_time: None,
        }
    }
}

/// The invitation's UUID from a bare UUID or a sign URL on `host`; the
/// gateway never forwards a caller's URL.
pub fn sign_uuid(host: &str, field: &str, value: &str) -> Result<String> {
    if validate::is_uuid(value) {
        return Ok(value.to_ascii_lowercase());
    }
    let url = Url::parse(value).map_err(|_| {
        GatewayError::invalid_field(field, "must be a sign URL UUID or a Leegality sign URL")
    })?;
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    let valid = url.scheme() == "https"
        && url.host_str() == Some(host)
        && url.port().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && segments.len() == 2
        && segments[0] == "sign"
        && validate::is_uuid(segments[1]);
    if !valid {
        return Err(GatewayError::invalid_field(
            field,
            format!("must be a UUID or https://{host}/sign/<uuid>"),
        ));
    }
    Ok(segments[1].to_ascii_lowercase())
}

fn derive_document_state(invitations: &[Invitation]) -> DocumentState {
    if invitations.is_empty() {
        return DocumentState::Unspecified;
    }
    if invitations
        .iter()
        .all(|i| i.state == InvitationState::Signed)
    {
        DocumentState::Completed
    } else if invitations
        .iter()
        .any(|i| i.state == InvitationState::Rejected)
    {
        DocumentState::Rejected
    } else if invitations
        .iter()
        .any(|i| i.state == InvitationState::Expired)
        && !invitations
            .iter()
            .any(|i| i.state == InvitationState::Pending)
    {
        DocumentState::Expired
    } else {
        DocumentState::InProgress
    }
}

/// Leegality's timestamps carry no zone; IST is assumed (unconfirmed).
pub fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 1800).expect("IST offset")
}

/// `dd-MM-yyyy HH:mm:ss`, read as IST (Leegality gives no zone); an ISO
/// string, seen in older samples, is accepted too.
pub fn parse_leegality_time(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(local) = NaiveDateTime::parse_from_str(value, "%d-%m-%Y %H:%M:%S") {
        return ist()
            .from_local_datetime(&local)
            .single()
            .map(|t| t.with_timezone(&Utc));
    }
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Checks everything Leegality would refuse before the billed call.
fn create_body(request: &SendRequest) -> Result<CreateBody<'_>> {
    let SendOptions::Leegality {
        profile_id,
        file_name,
        file,
    } = &request.options
    else {
        return Err(GatewayError::invalid_field(
            "leegality",
            "Leegality options (profile_id, file_name, file) are required",
        ));
    };
    for (field, set, why) in [
        (
            "document_id",
            !request.document_id.is_empty(),
            "Leegality creates the document; leave it empty",
        ),
        (
            "subject",
            !request.subject.is_empty(),
            "Leegality notifications are workflow configuration; leave it empty",
        ),
        (
            "message",
            !request.message.is_empty(),
            "Leegality notifications are workflow configuration; leave it empty",
        ),
    ] {
        if set {
            return Err(GatewayError::invalid_field(field, why));
        }
    }
    validate::require_path_safe_id("leegality.profile_id", profile_id, MAX_PROFILE_ID_LEN)?;
    require_text("leegality.file_name", file_name)?;
    if file.is_empty() {
        return Err(GatewayError::invalid_field("leegality.file", "is required"));
    }
    if file.len() > MAX_FILE_BYTES {
        return Err(GatewayError::invalid_field(
            "leegality.file",
            format!(
                "is {} bytes; Leegality takes at most 15 MB ({MAX_FILE_BYTES} bytes)",
                file.len()
            ),
        ));
    }
    if !file.starts_with(b"%PDF-") {
        return Err(GatewayError::invalid_field(
            "leegality.file",
            "must be a PDF (it does not start with %PDF-)",
        ));
    }
    // No invitees is allowed: a workflow can configure them in the
    // dashboard (evidence.md L-3); Leegality refuses otherwise, and that
    // refusal names `signers`.
    let mut invitees = Vec::with_capacity(request.signers.len());
    for (index, signer) in request.signers.iter().enumerate() {
        let field = |name: &str| format!("signers[{index}].{name}");
        require_text(&field("name"), &signer.name)?;
        let email = (!signer.email.is_empty()).then_some(signer.email.as_str());
        let phone = (!signer.phone.is_empty()).then_some(signer.phone.as_str());
        if email.is_none() && phone.is_none() {
            return Err(GatewayError::invalid_field(
                field("email"),
                "an email or a 10-digit Indian mobile number is required",
            ));
        }
        if let Some(email) = email
            && !validate::is_email(email)
        {
            return Err(GatewayError::invalid_field(
                field("email"),
                "must be an email address",
            ));
        }
        if let Some(phone) = phone
            && !validate::is_indian_mobile(phone)
        {
            return Err(GatewayError::invalid_field(
                field("phone"),
                "must be a 10-digit Indian mobile number without +91",
            ));
        }
        validate::reject_set(
            &format!("signers[{index}]"),
            &[
                ("role", !signer.role.is_empty()),
                ("role_id", !signer.role_id.is_empty()),
                ("order", signer.order.is_some()),
                ("signnow", signer.signnow.is_some()),
            ],
            "is not supported by Leegality: roles and signing order come from the workflow",
        )?;
        invitees.push(WireInvitee {
            name: &signer.name,
            email,
            phone,
        });
    }
    let mut cc = Vec::with_capacity(request.cc.len());
    for (index, copy) in request.cc.iter().enumerate() {
        require_text(&format!("cc[{index}].name"), &copy.name)?;
        if !validate::is_email(&copy.email) {
            return Err(GatewayError::invalid_field(
                format!("cc[{index}].email"),
                "must be an email address",
            ));
        }
        cc.push(WireCc {
            name: &copy.name,
            email: &copy.email,
        });
    }
    if request.reference.chars().count() > MAX_IRN_LEN
        || request.reference.chars().any(char::is_control)
    {
        return Err(GatewayError::invalid_field(
            "reference",
            format!("must be at most {MAX_IRN_LEN} characters without control characters"),
        ));
    }
    Ok(CreateBody {
        profile_id,
        file: WireFile {
            name: file_name,
            file: base64::engine::general_purpose::STANDARD.encode(file),
        },
        invitees,
        cc,
        irn: (!request.reference.is_empty()).then_some(request.reference.as_str()),
    })
}

fn require_text(field: &str, value: &str) -> Result<()> {
    validate::require_non_empty(field, value)?;
    if value.chars().count() > MAX_NAME_LEN || value.chars().any(char::is_control) {
        return Err(GatewayError::invalid_field(
            field,
            format!("must be at most {MAX_NAME_LEN} characters without control characters"),
        ));
    }
    Ok(())
}

fn validate_document_id(document_id: &str) -> Result<()> {
    validate::require_path_safe_id("document_id", document_id, MAX_DOCUMENT_ID_LEN)
}

// === wire types ===

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody<'a> {
    profile_id: &'a str,
    file: WireFile<'a>,
    invitees: Vec<WireInvitee<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cc: Vec<WireCc<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    irn: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct WireFile<'a> {
    name: &'a str,
    file: String,
}

#[derive(Debug, Serialize)]
struct WireInvitee<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct WireCc<'a> {
    name: &'a str,
    email: &'a str,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateData {
    document_id: String,
    #[serde(default)]
    irn: Option<String>,
    /// As in transaction status, without the signed/rejected/expired flags.
    invitees: Vec<WireRequest>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ResendBody<'a> {
    sign_urls: &'a [String],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReactivateBody<'a> {
    document_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiry_days: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiry_time: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    status: i64,
    #[serde(default)]
    messages: Vec<WireMessage>,
    /// Kept raw and read once into the operation's own type.
    #[serde(default)]
    data: Option<Box<serde_json::value::RawValue>>,
}

impl Envelope {
    fn data<T: serde::de::DeserializeOwned>(&self) -> std::result::Result<T, serde_json::Error> {
        serde_json::from_str(self.data.as_deref().map_or("null", |raw| raw.get()))
    }
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResendData {
    invitations: Vec<ResendItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResendItem {
    status: i64,
    #[serde(default)]
    sign_url: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentData {
    document_id: String,
    #[serde(default)]
    irn: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    requests: Vec<WireRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    sign_url: Option<String>,
    #[serde(default)]
    signed: bool,
    #[serde(default)]
    rejected: bool,
    #[serde(default)]
    expired: bool,
    #[serde(default)]
    active: bool,
    #[serde(default)]
    expiry_date: Option<String>,
}

fn unrecognized_body(what: &str) -> GatewayError {
    tracing::warn!(detail = what, "unrecognized leegality answer");
    GatewayError::new(
        Reason::ProviderUnrecognizedResponse,
        "the provider sent a response the gateway does not understand",
    )
    .with_provider(KIND)
}

/// The envelope of a 2xx answer with `status: 1`, or the mapped error.
///
/// Leegality sends most errors as HTTP 200 with `status: 0`, but a
/// malformed create can come back as HTTP 400 with the same envelope
/// (evidence.md L-12): any 4xx is read as an envelope first.
fn decode(response: &ProviderResponse) -> Result<Envelope> {
    let status = response.status.as_u16();
    if status == 401 || status == 403 {
        return Err(credentials_rejected(status));
    }
    let envelope = response.json::<Envelope>().ok();
    if !response.status.is_success() {
        let enveloped_4xx = response.status.is_client_error() && status != 429;
        match envelope {
            Some(envelope) if enveloped_4xx && envelope.status != 1 => {
                return Err(envelope_error(status, &envelope));
            }
            _ => {
                return Err(transport::common_status_error(KIND, response)
                    .unwrap_or_else(|| transport::unrecognized(KIND, response)));
            }
        }
    }
    let Some(envelope) = envelope else {
        return Err(transport::unrecognized(KIND, response));
    };
    for message in &envelope.messages {
        tracing::debug!(
            code = message.code.as_deref().unwrap_or("null"),
            text = message.message.as_deref().unwrap_or(""),
            "leegality message"
        );
    }
    if envelope.status == 1 {
        return Ok(envelope);
    }
    Err(envelope_error(status, &envelope))
}

fn credentials_rejected(status: u16) -> GatewayError {
    GatewayError::new(
        Reason::ProviderCredentialsRejected,
        "Leegality rejected the gateway's auth token",
    )
    .with_provider(KIND)
    .with_metadata(MetaKey::ProviderHttpStatus, status.to_string())
}

/// The error a `status: 0` envelope stands for, from its first code (and,
/// for the null code, its text).
fn envelope_error(http_status: u16, envelope: &Envelope) -> GatewayError {
    let first = envelope.messages.first();
    let code = first.and_then(|m| m.code.clone()).filter(|c| !c.is_empty());
    let text = first
        .and_then(|m| m.message.as_deref())
        .unwrap_or_default()
        .to_ascii_lowercase();
    tracing::info!(
        code = code.as_deref().unwrap_or("null"),
        http_status,
        "leegality answered status 0"
    );
    let rejected = || {
        GatewayError::new(
            Reason::ProviderRejectedRequest,
            "Leegality rejected the request as invalid",
        )
    };
    let error = match code.as_deref() {
        // A missing or empty X-Auth-Token (evidence.md L-5, D-L4).
        None if text.contains("access denied") => {
            return credentials_rejected(http_status).with_metadata(MetaKey::ProviderCode, "null");
        }
        None if text.contains("profileid") => rejected()
            .with_field_violation("leegality.profile_id", "Leegality requires the workflow id"),
        None if text.contains("property file") => {
            rejected().with_field_violation("leegality.file", "Leegality requires the file")
        }
        None
        | Some("validator.invalid")
        | Some("sign.url.required")
        | Some("invalid.expiry.days.value")
        | Some("invalid.expiry.time")
        | Some("invalid.expiry.time.maxerror")
        | Some("irn.length.invalid") => rejected(),
        // Also Leegality's answer to an unknown or unpublished profileId.
        Some("workflow.api.fields.or.file.required") => rejected().with_field_violation(
            "leegality.profile_id",
            "Leegality found no published workflow with this id taking a file",
        ),
        Some("simpleWorkFlow.no.payload.invitee") => rejected().with_field_violation(
            "signers",
            "Leegality needs invitees: the workflow configures none in the dashboard",
        ),
        Some("no.document.found") => {
            GatewayError::new(Reason::DocumentNotFound, "Leegality has no such document")
        }
        Some("invitation.not.exists") => GatewayError::new(
            Reason::InvitationNotFound,
            "Leegality has no such unsigned invitation (it may be signed, deleted or completed)",
        ),
        Some("no.expired.invitation.found") => GatewayError::new(
            Reason::NoExpiredInvitation,
            "the document has no expired invitation to reactivate",
        ),
        Some(_) => GatewayError::new(
            Reason::ProviderUnrecognizedResponse,
            "Leegality answered with an error code the gateway does not know",
        ),
    };
    error
        .with_provider(KIND)
        .with_metadata(MetaKey::ProviderHttpStatus, http_status.to_string())
        .with_metadata(MetaKey::ProviderCode, code.unwrap_or_else(|| "null".into()))
}

/// The UUID at the end of a sign URL (or the value itself).
fn sign_url_uuid(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

/// Per-item resend failures come as text only; matched loosely (case,
/// punctuation and numbers may vary) and kept raw in metadata.
fn item_error(uuid: &str, item: &ResendItem) -> GatewayError {
    let raw = item.message.clone().unwrap_or_default();
    let text: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let error = if item.name.is_none() && item.email.is_none() && item.phone.is_none() {
        GatewayError::new(
            Reason::InvitationNotFound,
            "Leegality does not know this sign URL",
        )
        .with_missing_resource("invitation", uuid)
    } else if text.contains("already signed") {
        GatewayError::new(
            Reason::InvitationNotResendable,
            "the invitee has already signed",
        )
    } else if text.contains("not have access") || text.contains("no access") {
        GatewayError::new(
            Reason::ProviderPermissionDenied,
            "the account has no access to this document",
        )
    } else if text.contains("already resent") || (text.contains("resent") && text.contains("times"))
    {
        GatewayError::new(
            Reason::ResendLimitReached,
            "the invitation has been resent 5 times; only Leegality support can help further",
        )
        .with_quota_violation(
            format!("invitation:{uuid}"),
            format!("at most {RESEND_CAP} resends per invitee"),
        )
        .without_retry_after()
    } else {
        GatewayError::new(
            Reason::ProviderUnrecognizedResponse,
            "Leegality refused the resend for a reason the gateway does not know",
        )
    };
    error
        .with_provider(KIND)
        .with_metadata(MetaKey::InvitationId, uuid)
        .with_metadata(
            MetaKey::ProviderMessage,
            raw.chars().take(200).collect::<String>(),
        )
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
        fn sign_urls_only_ever_yield_a_uuid_for_the_configured_host(value in any::<String>()) {
            if let Ok(uuid) = sign_uuid("sandbox.leegality.com", "invitation_id", &value) {
                prop_assert!(validate::is_uuid(&uuid));
                prop_assert!(value.ends_with(&uuid) || value.eq_ignore_ascii_case(&uuid));
            }
        }

        #[test]
        fn url_shaped_input_with_another_host_is_refused(
            host in "[a-z]{1,10}\\.[a-z]{2,5}",
            path in "[a-zA-Z0-9/._-]{0,40}",
        ) {
            prop_assume!(host != "sandbox.leegality.com");
            let value = format!("https://{host}/sign/{path}");
            prop_assert!(sign_uuid("sandbox.leegality.com", "f", &value).is_err());
        }

        #[test]
        fn any_body_decodes_or_fails_cleanly(
            status in prop::sample::select(vec![200u16, 201, 400, 401, 403, 404, 429, 500, 502, 503]),
            body in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            let outcome = decode(&response(status, body));
            if outcome.is_ok() {
                prop_assert!(status < 300);
            }
        }

        #[test]
        fn any_envelope_decodes_or_fails_cleanly(
            status in -3i64..3,
            code in proptest::option::of("[a-z.]{0,30}"),
            data in prop::sample::select(vec![
                "{}".to_owned(), "null".to_owned(), "[]".to_owned(),
                r#"{"invitations": [{"status": 0}]}"#.to_owned(),
                r#"{"documentId": "X", "requests": [{"signed": "yes"}]}"#.to_owned(),
            ]),
        ) {
            let body = format!(
                r#"{{"status": {status}, "messages": [{{"code": {}, "message": "m"}}], "data": {data}}}"#,
                code.map(|c| format!("{c:?}")).unwrap_or_else(|| "null".into())
            );
            match decode(&response(200, body.into_bytes())) {
                Ok(envelope) => prop_assert_eq!(envelope.status, 1),
                Err(error) => prop_assert!(!error.message().is_empty()),
            }
        }

        #[test]
        fn dates_parse_or_are_none_and_round_trip(value in any::<String>(), seconds in 0i64..4_000_000_000) {
            let _ = parse_leegality_time(&value);
            let time = DateTime::from_timestamp(seconds, 0).unwrap();
            let text = time.with_timezone(&ist()).format("%d-%m-%Y %H:%M:%S").to_string();
            prop_assert_eq!(parse_leegality_time(&text), Some(time));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leegality_times_are_read_as_ist() {
        let time = parse_leegality_time("08-03-2026 23:59:59").unwrap();
        assert_eq!(time.to_rfc3339(), "2026-03-08T18:29:59+00:00");
        assert!(parse_leegality_time("2026-03-08T18:29:59Z").is_some());
        assert!(parse_leegality_time("yesterday").is_none());
    }

    #[test]
    fn per_item_messages_are_matched_loosely() {
        let item = |message: &str| ResendItem {
            sign_url: None,
            status: 0,
            name: Some("A".into()),
            email: Some("a@example.com".into()),
            phone: None,
            message: Some(message.into()),
        };
        let uuid = "2bdcc3ef-661f-440c-b059-82c0ff6ce4d8";
        assert_eq!(
            item_error(uuid, &item("Document(s) already signed by the invitee.")).reason(),
            Reason::InvitationNotResendable
        );
        assert_eq!(
            item_error(uuid, &item("DOCUMENT ALREADY SIGNED")).reason(),
            Reason::InvitationNotResendable
        );
        assert_eq!(
            item_error(uuid, &item("You do not have access to the document.")).reason(),
            Reason::ProviderPermissionDenied
        );
        let capped = item_error(
            uuid,
            &item("You have already resent invitation mail 6 times. Please contact support."),
        );
        assert_eq!(capped.reason(), Reason::ResendLimitReached);
        assert!(capped.retry_after().is_none());
        assert_eq!(
            item_error(uuid, &item("Something new")).reason(),
            Reason::ProviderUnrecognizedResponse
        );
        let unknown = ResendItem {
            sign_url: None,
            status: 0,
            name: None,
            email: None,
            phone: None,
            message: Some("x".into()),
        };
        assert_eq!(
            item_error(uuid, &unknown).reason(),
            Reason::InvitationNotFound
        );
    }
}
