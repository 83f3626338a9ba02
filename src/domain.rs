//! Provider-neutral types: what the gRPC layer hands to a provider and what a
//! provider hands back. No proto and no provider JSON type appears here.

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderKind {
    Leegality,
    SignNow,
    Bynn,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 3] = [
        ProviderKind::Leegality,
        ProviderKind::SignNow,
        ProviderKind::Bynn,
    ];

    /// Lowercase name used in config, metrics and ErrorInfo metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Leegality => "leegality",
            ProviderKind::SignNow => "signnow",
            ProviderKind::Bynn => "bynn",
        }
    }

    pub(crate) fn display_name(self) -> &'static str {
        match self {
            ProviderKind::Leegality => "Leegality",
            ProviderKind::SignNow => "signNow",
            ProviderKind::Bynn => "Bynn",
        }
    }

    pub fn parse(name: &str) -> Option<ProviderKind> {
        ProviderKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares the RPC enum once; its method name and full gRPC name come
/// from the variant's name.
macro_rules! rpcs {
    ($($variant:ident),* $(,)?) => {
        /// The provider-facing RPCs of `esign.v1.InvitationService`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum Rpc {
            $($variant,)*
        }

        impl Rpc {
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Rpc::$variant => stringify!($variant),)*
                }
            }

            /// `esign.v1.InvitationService/<name>`: the span name the
            /// OpenTelemetry RPC conventions ask for.
            pub(crate) fn full_name(self) -> &'static str {
                match self {
                    $(Rpc::$variant => concat!("esign.v1.InvitationService/", stringify!($variant)),)*
                }
            }
        }
    };
}

rpcs! {
    SendInvitation,
    ResendInvitation,
    BatchResendInvitations,
    ReactivateDocument,
    DeleteInvitation,
    ReplaceSigner,
    CancelInvitations,
    GetDocument,
    GetInvitation,
    UploadDocument,
    DownloadDocument,
}

impl Rpc {
    /// Mutating calls can have a provider-side effect; their outcome is
    /// unknown when the caller's deadline runs out mid-call.
    pub(crate) fn is_mutating(self) -> bool {
        !matches!(
            self,
            Rpc::GetDocument | Rpc::GetInvitation | Rpc::DownloadDocument
        )
    }

    /// Running it a second time does no harm: deletes and cancels end in
    /// the same state, and ReplaceSigner resumes from its stored progress.
    /// Sends, resends and reactivations are billed or send email. An
    /// upload repeated makes at most one more unsent document, which is
    /// neither billed nor seen by anyone (a documented choice: the caller
    /// re-streams its file anyway).
    pub(crate) fn is_safe_to_repeat(self) -> bool {
        matches!(
            self,
            Rpc::DeleteInvitation
                | Rpc::CancelInvitations
                | Rpc::ReplaceSigner
                | Rpc::GetDocument
                | Rpc::GetInvitation
                | Rpc::UploadDocument
                | Rpc::DownloadDocument
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum InvitationState {
    #[default]
    Unspecified,
    Created,
    Pending,
    Delivered,
    Opened,
    Started,
    Signed,
    Rejected,
    Expired,
    Cancelled,
    Failed,
}

impl InvitationState {
    /// The proto enum value's suffix, for error metadata.
    pub(crate) fn name(self) -> &'static str {
        match self {
            InvitationState::Unspecified => "UNSPECIFIED",
            InvitationState::Created => "CREATED",
            InvitationState::Pending => "PENDING",
            InvitationState::Delivered => "DELIVERED",
            InvitationState::Opened => "OPENED",
            InvitationState::Started => "STARTED",
            InvitationState::Signed => "SIGNED",
            InvitationState::Rejected => "REJECTED",
            InvitationState::Expired => "EXPIRED",
            InvitationState::Cancelled => "CANCELLED",
            InvitationState::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DocumentState {
    #[default]
    Unspecified,
    Draft,
    InProgress,
    Completed,
    Rejected,
    Expired,
    Cancelled,
}

impl DocumentState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            DocumentState::Unspecified => "UNSPECIFIED",
            DocumentState::Draft => "DRAFT",
            DocumentState::InProgress => "IN_PROGRESS",
            DocumentState::Completed => "COMPLETED",
            DocumentState::Rejected => "REJECTED",
            DocumentState::Expired => "EXPIRED",
            DocumentState::Cancelled => "CANCELLED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SignNowAuthentication {
    #[default]
    None,
    Password,
    Phone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum SignNowPhoneMethod {
    #[default]
    Default,
    Sms,
    PhoneCall,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SignNowSignerOptions {
    pub expiration_days: Option<u32>,
    pub reminder_days: Option<u32>,
    pub authentication: SignNowAuthentication,
    pub password: String,
    pub authentication_phone: String,
    pub phone_method: SignNowPhoneMethod,
    pub subject: String,
    pub message: String,
    pub redirect_uri: String,
    pub decline_by_signature: bool,
    pub reassign: bool,
    pub force_new_signature: bool,
    pub signing_instructions: String,
    pub prefill_signature_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Signer {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub role: String,
    pub role_id: String,
    pub order: Option<u32>,
    pub signnow: Option<SignNowSignerOptions>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CcRecipient {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SignNowCcStep {
    pub name: String,
    pub email: String,
    pub step: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SignNowViewer {
    pub email: String,
    pub role: String,
    pub order: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignNowInviteMode {
    Freeform,
    Field,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BynnChannel {
    Email,
    Sms,
}

impl BynnChannel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BynnChannel::Email => "email",
            BynnChannel::Sms => "sms",
        }
    }
}

/// Provider-specific options of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SendOptions {
    None,
    Leegality {
        profile_id: String,
        file_name: String,
        file: Bytes,
    },
    SignNow {
        from: String,
        mode: Option<SignNowInviteMode>,
        cc_steps: Vec<SignNowCcStep>,
        viewers: Vec<SignNowViewer>,
        cc_subject: String,
        cc_message: String,
    },
    Bynn {
        workflow_token: String,
        channel: Option<BynnChannel>,
        locale: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendRequest {
    pub document_id: String,
    pub signers: Vec<Signer>,
    pub subject: String,
    pub message: String,
    pub cc: Vec<CcRecipient>,
    pub reference: String,
    pub options: SendOptions,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Invitation {
    pub id: String,
    pub sign_url: Option<String>,
    pub signer: Signer,
    pub state: InvitationState,
    pub provider_status: String,
    pub is_signers_turn: bool,
    pub expire_time: Option<DateTime<Utc>>,
    pub delivery_attempts: Option<u32>,
    pub document_id: Option<String>,
    pub reference: Option<String>,
    pub send_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Document {
    pub id: String,
    pub reference: Option<String>,
    pub state: DocumentState,
    pub provider_status: String,
    pub invitations: Vec<Invitation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProviderWarning {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SendOutcome {
    pub document_id: Option<String>,
    pub invitations: Vec<Invitation>,
    pub warnings: Vec<ProviderWarning>,
}

/// The new expiry of a reactivated document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    WorkflowDefault,
    Days(i32),
    At(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplaceSignerRequest {
    pub document_id: String,
    pub invitation_id: String,
    pub new_signer: Signer,
    pub keep_invite_settings: bool,
}

/// A stream of file bytes, in or out. An `Err` ends it: for an upload the
/// provider's request body is cut off, so the provider never sees a whole
/// request and makes nothing.
pub(crate) type ByteStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = crate::error::Result<Bytes>> + Send + 'static>,
>;

/// What an upload is; its bytes come as a [`ByteStream`] beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UploadRequest {
    pub file_name: String,
    /// Exact, checked while the bytes stream through.
    pub size: u64,
    pub extract_fields: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DocumentRole {
    pub name: String,
    pub role_id: String,
    pub signing_order: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UploadedDocument {
    pub document_id: String,
    pub roles: Vec<DocumentRole>,
    pub warnings: Vec<ProviderWarning>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DocumentPart {
    #[default]
    Document,
    AuditTrail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DownloadRequest {
    pub document_id: String,
    pub with_history: bool,
    pub part: DocumentPart,
}

/// A file on its way back from the provider.
pub(crate) struct DocumentDownload {
    pub file_name: String,
    pub content_type: String,
    pub size: Option<u64>,
    pub body: ByteStream,
}
