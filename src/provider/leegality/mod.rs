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
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    clock::Clock,
    config::{AccountConfig, Credentials, Timeouts},
    domain::{
        Document, DocumentState, Expiry, Invitation, InvitationState, ProviderKind,
        ProviderWarning, Rpc, SendOptions, SendOutcome, SendRequest, Signer,
    },
    error::{GatewayError, MetaKey, Outcome, Reason, Result},
    provider::{
        BatchItemOutcome, CallContext, Provider, Services,
        transport::{self, CredentialHeader, HttpClient, Outbound, ProviderResponse, RetryPolicy},
    },
    validate,
};

mod errors;
mod files;
mod input;
mod state;
#[cfg(test)]
mod tests;
mod wire;

use self::{errors::*, input::*, state::*, wire::*};

const KIND: ProviderKind = ProviderKind::Leegality;
const RESEND_CAP: u32 = 5;
const MAX_DOCUMENT_ID_LEN: usize = 64;
const MAX_EXPIRY_DAYS: i32 = 365;

/// "15 MB" is not defined further; the stricter decimal reading is enforced
/// so no file the provider might refuse is ever sent (unconfirmed).
const MAX_FILE_BYTES: usize = 15_000_000;
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
    Rpc::DownloadDocument,
];

pub(crate) struct Leegality {
    account: AccountConfig,
    http: HttpClient,
    clock: Clock,
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
    FetchDocument,
}

impl Endpoint {
    const ALL: [Endpoint; 6] = [
        Endpoint::Create,
        Endpoint::Resend,
        Endpoint::Reactivate,
        Endpoint::DeleteInvitation,
        Endpoint::TransactionStatus,
        Endpoint::FetchDocument,
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
            // v3.1 answers the raw file; v3.3 answers a short-lived CDN link
            // that would take a second, unauthenticated fetch.
            Endpoint::FetchDocument => (
                "fetch_document",
                Method::GET,
                "/v3.1/document/fetchDocument",
            ),
        }
    }
}

impl Leegality {
    pub(crate) fn new(account: AccountConfig, services: Services, timeouts: Timeouts) -> Self {
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
            http: services.http,
            clock: services.clock,
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

    /// The call, and the answer's `data` as `T` with the envelope's
    /// messages; `what` names the data in the error when it is not a `T`.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        ctx: &CallContext,
        outbound: &Outbound,
        what: &str,
    ) -> Result<(T, Vec<WireMessage>)> {
        let response = self
            .http
            .send(ctx, KIND, &self.account.name, outbound)
            .await?;
        decode_data(&response, what)
    }

    async fn resend_batch(&self, ctx: &CallContext, uuids: &[String]) -> Result<Vec<ResendItem>> {
        let body = ResendBody { sign_urls: uuids };
        let outbound = self
            .request(Endpoint::Resend)?
            .json_body(&body)?
            .timeout(self.timeouts.write)
            // Sends real notifications and counts toward the 5-resend cap.
            .retry(RetryPolicy::OnlyBeforeSent)
            .resend();
        let (data, _): (ResendData, _) = self
            .call(ctx, &outbound, "resend answer without data.invitations")
            .await?;
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

    async fn download_document(
        &self,
        ctx: &CallContext,
        request: crate::domain::DownloadRequest,
    ) -> Result<crate::domain::DocumentDownload> {
        self.download(ctx, request).await
    }

    async fn send_invitation(
        &self,
        ctx: &CallContext,
        request: SendRequest,
    ) -> Result<SendOutcome> {
        let body = create_body(&request)?;
        let SendOptions::Leegality { file, .. } = &request.options else {
            unreachable!("create_body accepts Leegality options only");
        };
        let outbound = self
            .request(Endpoint::Create)?
            .json_body_with_file(&body, &body.file.file, file.clone())?
            .timeout(self.timeouts.upload)
            // Each call makes a new billed document; irn is not deduplicated.
            .retry(RetryPolicy::OnlyBeforeSent);
        let (data, messages): (CreateData, _) = self
            .call(
                ctx,
                &outbound,
                "create answer without documentId and invitees",
            )
            .await
            .map_err(|e| {
                // After an unknown outcome the caller reconciles by irn.
                if request.reference.is_empty() {
                    e
                } else {
                    e.with_default_metadata(MetaKey::Reference, &request.reference)
                }
            })?;
        let mut warnings: Vec<ProviderWarning> = messages
            .iter()
            .filter_map(|m| {
                let code = m.code.as_deref()?;
                (!SUCCESS_CODES.contains(&code)).then(|| ProviderWarning {
                    code: code.to_owned(),
                    message: m.message.clone().unwrap_or_default(),
                })
            })
            .collect();
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
        let now = self.clock.now();
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
        let (data, _) = self
            .call(ctx, &outbound, "document answer without documentId")
            .await
            .map_err(|e| e.with_default_metadata(MetaKey::DocumentId, document_id))?;
        Ok(self.document_from(data))
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
            .send(ctx, KIND, &self.account.name, &outbound)
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
        let (data, _) = self
            .call(ctx, &outbound, "document answer without documentId")
            .await
            .map_err(|e| e.with_default_metadata(MetaKey::DocumentId, document_id))?;
        Ok(self.document_from(data))
    }
}

impl Leegality {
    fn document_from(&self, data: DocumentData) -> Document {
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
        Document {
            id: data.document_id,
            reference: data.irn,
            state,
            provider_status: data.status.unwrap_or_default(),
            invitations,
        }
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
