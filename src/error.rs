//! The gateway's one error type and its one conversion to `tonic::Status`.
//!
//! Every failure, whether found by the gateway's own checks or reported by a
//! provider, becomes a [`GatewayError`]: a [`Reason`] (which fixes the gRPC
//! code), a stable human sentence and machine-readable details. Conversion
//! always attaches `google.rpc.ErrorInfo` and adds RetryInfo, BadRequest,
//! QuotaFailure or ResourceInfo where the reason calls for them.

use std::{collections::BTreeMap, fmt, time::Duration};

use prost::Message as _;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::ProviderKind;

/// The `ErrorInfo.domain` of every error this gateway returns.
pub const ERROR_DOMAIN: &str = "esign-gateway.v1";

pub(crate) type Result<T, E = GatewayError> = std::result::Result<T, E>;

macro_rules! reasons {
    ($($variant:ident => ($code:ident, $name:literal),)*) => {
        /// Why a call failed; each reason has exactly one gRPC code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason { $($variant,)* }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The UPPER_SNAKE `ErrorInfo.reason`.
            pub fn as_str(self) -> &'static str {
                match self { $(Reason::$variant => $name,)* }
            }

            pub fn code(self) -> Code {
                match self { $(Reason::$variant => Code::$code,)* }
            }
        }
    };
}

reasons! {
    InvalidField => (InvalidArgument, "INVALID_FIELD"),
    UnknownAccount => (InvalidArgument, "UNKNOWN_ACCOUNT"),
    RequestIdReused => (InvalidArgument, "REQUEST_ID_REUSED"),
    ProviderRejectedRequest => (InvalidArgument, "PROVIDER_REJECTED_REQUEST"),
    DocumentNotFound => (NotFound, "DOCUMENT_NOT_FOUND"),
    InvitationNotFound => (NotFound, "INVITATION_NOT_FOUND"),
    InvitationNotResendable => (FailedPrecondition, "INVITATION_NOT_RESENDABLE"),
    InvalidInvitationState => (FailedPrecondition, "INVALID_INVITATION_STATE"),
    NoExpiredInvitation => (FailedPrecondition, "NO_EXPIRED_INVITATION"),
    DocumentHasNoFields => (FailedPrecondition, "DOCUMENT_HAS_NO_FIELDS"),
    InviteAlreadyExists => (AlreadyExists, "INVITE_ALREADY_EXISTS"),
    ResendLimitReached => (ResourceExhausted, "RESEND_LIMIT_REACHED"),
    ResendCooldown => (ResourceExhausted, "RESEND_COOLDOWN"),
    RateLimited => (ResourceExhausted, "RATE_LIMITED"),
    GatewayOverloaded => (ResourceExhausted, "GATEWAY_OVERLOADED"),
    ProviderInsufficientBalance => (FailedPrecondition, "PROVIDER_INSUFFICIENT_BALANCE"),
    ProviderPermissionDenied => (PermissionDenied, "PROVIDER_PERMISSION_DENIED"),
    ProviderCredentialsRejected => (Internal, "PROVIDER_CREDENTIALS_REJECTED"),
    ProviderUnavailable => (Unavailable, "PROVIDER_UNAVAILABLE"),
    DeadlineExceeded => (DeadlineExceeded, "DEADLINE_EXCEEDED"),
    ProviderUnrecognizedResponse => (Unknown, "PROVIDER_UNRECOGNIZED_RESPONSE"),
    UnsupportedByProvider => (Unimplemented, "UNSUPPORTED_BY_PROVIDER"),
    ProviderNotConfigured => (FailedPrecondition, "PROVIDER_NOT_CONFIGURED"),
    CallerUnauthenticated => (Unauthenticated, "CALLER_UNAUTHENTICATED"),
    CallerNotAllowed => (PermissionDenied, "CALLER_NOT_ALLOWED"),
    RequestInProgress => (Aborted, "REQUEST_IN_PROGRESS"),
    ReplaceSignerIncomplete => (Aborted, "REPLACE_SIGNER_INCOMPLETE"),
    ShuttingDown => (Unavailable, "SHUTTING_DOWN"),
    StateStoreUnavailable => (Unavailable, "STATE_STORE_UNAVAILABLE"),
    RequestOutcomeUnknown => (Unknown, "REQUEST_OUTCOME_UNKNOWN"),
    EventCursorExpired => (OutOfRange, "EVENT_CURSOR_EXPIRED"),
    Internal => (Internal, "INTERNAL_ERROR"),
}

macro_rules! meta_keys {
    ($($variant:ident => $name:literal,)*) => {
        /// The `ErrorInfo.metadata` keys the gateway writes (lowerCamel).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum MetaKey { $($variant,)* }

        impl MetaKey {
            pub fn as_str(self) -> &'static str {
                match self { $(MetaKey::$variant => $name,)* }
            }
        }
    };
}

meta_keys! {
    Account => "account",
    Breaker => "breaker",
    Caller => "caller",
    Cause => "cause",
    CauseReason => "causeReason",
    CompletedSteps => "completedSteps",
    Component => "component",
    DeniedAccount => "deniedAccount",
    DocumentId => "documentId",
    FailedStep => "failedStep",
    Field => "field",
    Hint => "hint",
    InvitationId => "invitationId",
    InviteKind => "inviteKind",
    Limiter => "limiter",
    Provider => "provider",
    ProviderCode => "providerCode",
    ProviderHttpStatus => "providerHttpStatus",
    ProviderMessage => "providerMessage",
    Reference => "reference",
    RemainingSeconds => "remainingSeconds",
    RoleId => "roleId",
    Rpc => "rpc",
    State => "state",
    Status => "status",
}

/// What a failed call did at the provider, as far as the gateway knows.
/// It decides whether a request id may run again, and tells the caller
/// whether to check state before sending again (metadata `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The request never left the gateway.
    NotSent,
    /// The provider refused it before acting.
    NotApplied,
    /// It may have been applied: check state before sending again.
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotSent => "not_sent",
            Outcome::NotApplied => "not_applied",
            Outcome::Unknown => "unknown",
        }
    }

    /// The provider certainly did nothing, so the same request may run again.
    pub fn is_without_effect(self) -> bool {
        matches!(self, Outcome::NotSent | Outcome::NotApplied)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A per-invitation limit that is used up (QuotaFailure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QuotaViolation {
    pub subject: String,
    pub description: String,
}

/// The resource a NOT_FOUND is about (ResourceInfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingResource {
    pub resource_type: &'static str,
    pub name: String,
}

/// A failed call: what went wrong, in terms the caller can act on.
#[derive(Debug)]
pub struct GatewayError {
    // Boxed so `Result<T, GatewayError>` stays one pointer wide on the hot path.
    inner: Box<ErrorInner>,
}

#[derive(Debug)]
struct ErrorInner {
    reason: Reason,
    message: String,
    metadata: BTreeMap<MetaKey, String>,
    outcome: Option<Outcome>,
    retry_after: Option<Duration>,
    field_violations: Vec<(String, String)>,
    quota_violation: Option<QuotaViolation>,
    missing_resource: Option<MissingResource>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// A stored outcome replayed verbatim for a repeated request id.
    replayed: Option<tonic_types::Status>,
}

impl GatewayError {
    /// A new error; `message` is a stable sentence without raw provider text.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        let mut error = ErrorInner {
            reason,
            message: message.into(),
            metadata: BTreeMap::new(),
            outcome: None,
            retry_after: None,
            field_violations: Vec::new(),
            quota_violation: None,
            missing_resource: None,
            source: None,
            replayed: None,
        };
        if reason == Reason::ResendCooldown || reason == Reason::RequestInProgress {
            // These always have a delay after which a retry can succeed.
            error.retry_after = Some(Duration::from_secs(1));
        }
        GatewayError {
            inner: Box::new(error),
        }
    }

    /// INVALID_ARGUMENT for one offending request field (a proto field path).
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let field = field.into();
        let description = description.into();
        GatewayError::new(
            Reason::InvalidField,
            format!("invalid value for field {field}: {description}"),
        )
        .with_metadata(MetaKey::Field, field.clone())
        .with_field_violation(field, description)
    }

    pub fn unsupported(provider: ProviderKind, rpc: &str) -> Self {
        GatewayError::new(
            Reason::UnsupportedByProvider,
            format!(
                "{rpc} is not supported for {} by this gateway",
                provider.display_name()
            ),
        )
        .with_provider(provider)
        .with_metadata(MetaKey::Rpc, rpc)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        GatewayError::new(Reason::Internal, message)
    }

    pub fn with_metadata(mut self, key: MetaKey, value: impl Into<String>) -> Self {
        self.inner.metadata.insert(key, value.into());
        self
    }

    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.inner.outcome = Some(outcome);
        self
    }

    pub fn outcome(&self) -> Option<Outcome> {
        self.inner.outcome
    }

    pub fn with_provider(self, provider: ProviderKind) -> Self {
        self.with_metadata(MetaKey::Provider, provider.as_str())
    }

    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.inner.retry_after = Some(delay);
        self
    }

    pub fn without_retry_after(mut self) -> Self {
        self.inner.retry_after = None;
        self
    }

    pub fn with_field_violation(
        mut self,
        field: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.inner
            .field_violations
            .push((field.into(), description.into()));
        self
    }

    pub fn with_quota_violation(
        mut self,
        subject: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.inner.quota_violation = Some(QuotaViolation {
            subject: subject.into(),
            description: description.into(),
        });
        self
    }

    pub fn with_missing_resource(
        mut self,
        resource_type: &'static str,
        name: impl Into<String>,
    ) -> Self {
        self.inner.missing_resource = Some(MissingResource {
            resource_type,
            name: name.into(),
        });
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// Adds metadata only where the key is not set yet (the more specific
    /// layer that set it first wins).
    pub fn with_default_metadata(mut self, key: MetaKey, value: impl Into<String>) -> Self {
        self.inner
            .metadata
            .entry(key)
            .or_insert_with(|| value.into());
        self
    }

    pub fn reason(&self) -> Reason {
        self.inner.reason
    }

    /// The same failure under a broader reason (e.g. a saga step's error as
    /// `REPLACE_SIGNER_INCOMPLETE`); metadata is kept and the original reason
    /// goes to `causeReason`.
    pub fn reclassify(mut self, reason: Reason, message: impl Into<String>) -> Self {
        let cause = self.inner.reason;
        self.inner.reason = reason;
        self.inner.message = message.into();
        self.inner.field_violations.clear();
        self.inner.quota_violation = None;
        self.inner.missing_resource = None;
        self.with_metadata(MetaKey::CauseReason, cause.as_str())
    }

    pub fn code(&self) -> Code {
        self.inner.reason.code()
    }

    pub fn message(&self) -> &str {
        &self.inner.message
    }

    pub fn metadata(&self, key: MetaKey) -> Option<&str> {
        self.inner.metadata.get(&key).map(String::as_str)
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    pub fn field_violations(&self) -> &[(String, String)] {
        &self.inner.field_violations
    }

    /// The first outcome of a request id, replayed exactly as it was sent.
    pub fn replayed(status: tonic_types::Status) -> Self {
        use tonic_types::RpcStatusExt as _;
        let reason = status
            .get_details_error_info()
            .and_then(|info| {
                Reason::ALL
                    .iter()
                    .copied()
                    .find(|r| r.as_str() == info.reason)
            })
            .unwrap_or(Reason::Internal);
        let mut error = GatewayError::new(reason, status.message.clone());
        error.inner.replayed = Some(status);
        error
    }

    /// The same error as a `google.rpc.Status`, for per-item batch results.
    pub fn to_rpc_status(&self) -> tonic_types::Status {
        if let Some(replayed) = &self.inner.replayed {
            return replayed.clone();
        }
        let status = self.to_status();
        // `details()` holds the encoded google.rpc.Status tonic-types built.
        tonic_types::Status::decode(status.details()).unwrap_or_else(|_| tonic_types::Status {
            code: status.code() as i32,
            message: status.message().to_owned(),
            details: Vec::new(),
        })
    }

    fn to_status(&self) -> tonic::Status {
        if let Some(replayed) = &self.inner.replayed {
            use prost::Message as _;
            return tonic::Status::with_details(
                Code::from_i32(replayed.code),
                replayed.message.clone(),
                replayed.encode_to_vec().into(),
            );
        }
        let mut details = ErrorDetails::with_error_info(
            self.inner.reason.as_str(),
            ERROR_DOMAIN,
            self.inner
                .metadata
                .iter()
                .map(|(key, value)| (key.as_str().to_owned(), value.clone()))
                .chain(
                    self.inner
                        .outcome
                        .map(|o| ("outcome".to_owned(), o.as_str().to_owned())),
                )
                .collect::<std::collections::HashMap<_, _>>(),
        );
        if let Some(delay) = self.inner.retry_after {
            details.set_retry_info(Some(delay));
        }
        for (field, description) in &self.inner.field_violations {
            details.add_bad_request_violation(field.clone(), description.clone());
        }
        if let Some(quota) = &self.inner.quota_violation {
            details.add_quota_failure_violation(quota.subject.clone(), quota.description.clone());
        }
        if let Some(resource) = &self.inner.missing_resource {
            details.set_resource_info(resource.resource_type, resource.name.clone(), "", "");
        }
        tonic::Status::with_error_details(
            self.inner.reason.code(),
            self.inner.message.clone(),
            details,
        )
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.inner.message, self.inner.reason)
    }
}

impl std::error::Error for GatewayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl From<GatewayError> for tonic::Status {
    fn from(error: GatewayError) -> Self {
        error.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(error: GatewayError) -> (tonic::Status, ErrorDetails) {
        let status = tonic::Status::from(error);
        let details = status.check_error_details().expect("details decode");
        (status, details)
    }

    #[test]
    fn every_reason_is_upper_snake_and_short() {
        for reason in Reason::ALL {
            let name = reason.as_str();
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
        }
    }

    #[test]
    fn every_reason_carries_error_info_with_domain() {
        for reason in Reason::ALL {
            let (status, details) = details(GatewayError::new(*reason, "something failed"));
            assert_eq!(status.code(), reason.code());
            let info = details.error_info().expect("error info");
            assert_eq!(info.reason, reason.as_str());
            assert_eq!(info.domain, ERROR_DOMAIN);
        }
    }

    #[test]
    fn invalid_field_has_bad_request_violation_and_no_retry() {
        let (status, details) = details(GatewayError::invalid_field(
            "signers[1].email",
            "not an email",
        ));
        assert_eq!(status.code(), Code::InvalidArgument);
        let violations = &details.bad_request().expect("bad request").field_violations;
        assert_eq!(violations[0].field, "signers[1].email");
        assert!(details.retry_info().is_none());
    }

    #[test]
    fn cooldown_has_exact_retry_delay() {
        let (status, details) = details(
            GatewayError::new(Reason::ResendCooldown, "resend cooldown active")
                .with_retry_after(Duration::from_secs(97)),
        );
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            details.retry_info().unwrap().retry_delay,
            Some(Duration::from_secs(97))
        );
    }

    #[test]
    fn resend_limit_has_quota_failure_and_no_retry_info() {
        let (status, details) = details(
            GatewayError::new(Reason::ResendLimitReached, "resend limit reached")
                .with_quota_violation("invitation:abc", "at most 5 resends"),
        );
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(details.retry_info().is_none());
        assert_eq!(
            details.quota_failure().unwrap().violations[0].subject,
            "invitation:abc"
        );
    }

    #[test]
    fn not_found_has_resource_info() {
        let (status, details) = details(
            GatewayError::new(Reason::InvitationNotFound, "invitation not found")
                .with_missing_resource("invitation", "adi_123"),
        );
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(details.resource_info().unwrap().resource_name, "adi_123");
    }

    #[test]
    fn metadata_keys_are_lower_camel_and_kept() {
        let (_, details) = details(
            GatewayError::new(Reason::ProviderUnavailable, "provider unavailable")
                .with_provider(ProviderKind::Bynn)
                .with_metadata(MetaKey::ProviderHttpStatus, "503"),
        );
        let info = details.error_info().unwrap();
        assert_eq!(info.metadata["provider"], "bynn");
        assert_eq!(info.metadata["providerHttpStatus"], "503");
    }

    #[test]
    fn rpc_status_round_trips_details() {
        let error = GatewayError::new(Reason::InvitationNotResendable, "already signed")
            .with_metadata(MetaKey::InvitationId, "x");
        let status = error.to_rpc_status();
        assert_eq!(status.code, Code::FailedPrecondition as i32);
        assert!(!status.details.is_empty());
    }
}
