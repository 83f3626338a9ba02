//! signNow's error table: code and message together, per operation.

use super::*;

pub(super) fn not_on_document(invitation_id: &str, document_id: &str) -> GatewayError {
    GatewayError::new(
        Reason::InvitationNotFound,
        "the document has no invite with this id",
    )
    .with_provider(KIND)
    .with_metadata(MetaKey::InvitationId, invitation_id)
    .with_metadata(MetaKey::DocumentId, document_id)
    .with_missing_resource("invite", invitation_id)
}

pub(super) fn signed_cannot_go(invitation_id: &str) -> GatewayError {
    GatewayError::new(
        Reason::InvalidInvitationState,
        "a signed invite cannot be removed",
    )
    .with_provider(KIND)
    .with_metadata(MetaKey::InvitationId, invitation_id)
}

/// Maps a non-2xx answer on code and message together.
pub(super) fn map_error(response: &ProviderResponse, op: Op) -> GatewayError {
    let status = response.status.as_u16();
    if status != 400
        && status != 404
        && let Some(error) = transport::common_status_error(KIND, response)
    {
        return error;
    }
    let wire = WireError::parse(response);
    let text = wire.text().to_ascii_lowercase();
    let code = wire.code;
    tracing::info!(
        status,
        code = wire.code_string(),
        message = wire.text(),
        "signNow refused the call"
    );
    let (reason, message) = match (code, op) {
        (Some(65629), _) => (
            Reason::InviteAlreadyExists,
            "the document already has open field invites",
        ),
        (Some(65615), _) if text.contains("already exists") => (
            Reason::InviteAlreadyExists,
            "the role already has an invite",
        ),
        (Some(65615), _) => (
            Reason::InvalidInvitationState,
            "the document has no field invite waiting to be sent",
        ),
        (Some(66502), _) => (
            Reason::InvitationNotFound,
            "signNow has no such field invite",
        ),
        (Some(65594), _) => (
            Reason::DocumentHasNoFields,
            "the document has no fields: send a freeform invite or add fields first",
        ),
        (Some(65582), _) if text.contains("role") => (
            Reason::ProviderRejectedRequest,
            "the role does not exist on the document",
        ),
        // 65582 also carries other refusals ("unable to find document
        // group template", plan limits on personalised invites).
        (Some(65582), _) if text.contains("document not found") => {
            (Reason::DocumentNotFound, "signNow has no such document")
        }
        (Some(65582), _) => (
            Reason::ProviderRejectedRequest,
            "signNow refused the request (code 65582)",
        ),
        (Some(65536), Op::Resend) if text.contains("routing out of order") => (
            Reason::InvalidInvitationState,
            "it is not this signer's turn yet",
        ),
        (Some(65536), Op::Resend) if text.contains("expired") => (
            Reason::InvitationNotResendable,
            "the invite has expired; send a new one",
        ),
        (Some(65536), Op::Resend) if text.contains("could not resend") => (
            Reason::InvitationNotFound,
            "signNow has no such field invite",
        ),
        (Some(65536 | 65538 | 65585), _) => (
            Reason::ProviderRejectedRequest,
            "signNow rejected the request as invalid",
        ),
        _ if status == 404 => match op {
            Op::ReadDocument | Op::Cancel | Op::Trigger | Op::Invite | Op::Download => {
                (Reason::DocumentNotFound, "signNow has no such document")
            }
            _ => (Reason::InvitationNotFound, "signNow has no such invite"),
        },
        _ if wire.text() == "Document not found" || text == "document not found." => {
            (Reason::DocumentNotFound, "signNow has no such document")
        }
        _ => (
            Reason::ProviderUnrecognizedResponse,
            "signNow refused the call for a reason the gateway does not know",
        ),
    };
    let mut error = GatewayError::new(reason, message)
        .with_provider(KIND)
        .with_metadata(MetaKey::ProviderHttpStatus, status.to_string())
        .with_metadata(MetaKey::ProviderCode, wire.code_string())
        .with_metadata(
            MetaKey::ProviderMessage,
            wire.text().chars().take(200).collect::<String>(),
        );
    if reason == Reason::ProviderRejectedRequest {
        let field = if text.contains("from") || text == "email not found" {
            Some("signnow.from")
        } else if text.contains("role") {
            Some("signers")
        } else {
            None
        };
        if let Some(field) = field {
            error = error
                .with_field_violation(field, wire.text().chars().take(200).collect::<String>());
        }
    }
    error
}

/// Either envelope: `{"errors": [{code, message}]}` or `{"error", "code"}`.
#[derive(Debug, Default)]
pub(super) struct WireError {
    pub(super) code: Option<i64>,
    pub(super) message: Option<String>,
    /// The auth layer's `error` string (`invalid_token`, `invalid_client`).
    pub(super) auth_error: Option<String>,
}

impl WireError {
    pub(super) fn parse(response: &ProviderResponse) -> WireError {
        let Ok(body) = response.json::<Value>() else {
            return WireError::default();
        };
        if let Some(first) = body["errors"].as_array().and_then(|e| e.first()) {
            return WireError {
                code: number(&first["code"]),
                message: first["message"].as_str().map(str::to_owned),
                auth_error: None,
            };
        }
        if let Some(error) = body["error"].as_str() {
            return WireError {
                code: number(&body["code"]),
                message: Some(error.to_owned()),
                auth_error: Some(error.to_owned()),
            };
        }
        WireError::default()
    }

    pub(super) fn text(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }

    pub(super) fn code_string(&self) -> String {
        self.code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "none".into())
    }
}
