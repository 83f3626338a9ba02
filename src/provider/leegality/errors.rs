//! Leegality's error table: envelope codes, 4xx envelopes and per-item
//! resend texts.

use super::*;

pub(super) fn unrecognized_body(what: &str) -> GatewayError {
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
pub(super) fn decode(response: &ProviderResponse) -> Result<Envelope> {
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
    log_messages(&envelope.messages);
    if envelope.status == 1 {
        return Ok(envelope);
    }
    Err(envelope_error(status, &envelope))
}

/// The `data` of a 2xx answer with `status: 1` as `T`, with the envelope's
/// messages, or the mapped error. The success path reads the body once;
/// anything else is read again by [`decode`] for its error, and a success
/// whose data is not a `T` is unrecognized (`what` says what was missing).
pub(super) fn decode_data<T: serde::de::DeserializeOwned>(
    response: &ProviderResponse,
    what: &str,
) -> Result<(T, Vec<WireMessage>)> {
    if response.status.is_success()
        && let Ok(Envelope {
            status: 1,
            messages,
            data: Some(data),
        }) = response.json::<Envelope<T>>()
    {
        log_messages(&messages);
        return Ok((data, messages));
    }
    decode(response)?;
    Err(unrecognized_body(what))
}

fn log_messages(messages: &[WireMessage]) {
    for message in messages {
        tracing::debug!(
            code = message.code.as_deref().unwrap_or("null"),
            text = message.message.as_deref().unwrap_or(""),
            "leegality message"
        );
    }
}

pub(super) fn credentials_rejected(status: u16) -> GatewayError {
    GatewayError::new(
        Reason::ProviderCredentialsRejected,
        "Leegality rejected the gateway's auth token",
    )
    .with_provider(KIND)
    .with_metadata(MetaKey::ProviderHttpStatus, status.to_string())
}

/// The error a `status: 0` envelope stands for, from its first code (and,
/// for the null code, its text).
pub(super) fn envelope_error(http_status: u16, envelope: &Envelope) -> GatewayError {
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
        // Only when more than one download type is asked for, which the
        // gateway never does.
        Some("document.download.type") => {
            rejected().with_field_violation("part", "Leegality refused the download type")
        }
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
pub(super) fn sign_url_uuid(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

/// Per-item resend failures come as text only; matched loosely (case,
/// punctuation and numbers may vary) and kept raw in metadata.
pub(super) fn item_error(uuid: &str, item: &ResendItem) -> GatewayError {
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
