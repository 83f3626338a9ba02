//! Proto messages to domain types and back, with the checks every provider
//! shares (provider, account, request id, id fields, counts).

use std::collections::HashSet;

use chrono::{DateTime, TimeZone as _, Utc};

use crate::{
    domain::{self, ProviderKind},
    error::{GatewayError, Result},
    pb, validate,
};

/// Largest batch a BatchResendInvitations call may carry.
pub(crate) const MAX_BATCH_IDS: usize = 15;
/// Longest id the gateway forwards (the providers' own are far shorter).
pub(crate) const MAX_ID_LEN: usize = 512;

pub(crate) fn provider(value: i32) -> Result<ProviderKind> {
    match pb::Provider::try_from(value) {
        Ok(pb::Provider::Leegality) => Ok(ProviderKind::Leegality),
        Ok(pb::Provider::Signnow) => Ok(ProviderKind::SignNow),
        Ok(pb::Provider::Bynn) => Ok(ProviderKind::Bynn),
        Ok(pb::Provider::Unspecified) => {
            Err(GatewayError::invalid_field("provider", "is required"))
        }
        Err(_) => Err(GatewayError::invalid_field(
            "provider",
            "is not a known provider",
        )),
    }
}

pub(crate) fn provider_to_proto(kind: ProviderKind) -> pb::Provider {
    match kind {
        ProviderKind::Leegality => pb::Provider::Leegality,
        ProviderKind::SignNow => pb::Provider::Signnow,
        ProviderKind::Bynn => pb::Provider::Bynn,
    }
}

/// `account` is empty or a configured name's shape.
pub(crate) fn account(value: &str) -> Result<()> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 64
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(GatewayError::invalid_field(
            "account",
            "must be at most 64 letters, digits, '-' or '_'",
        ));
    }
    Ok(())
}

/// `request_id` is empty or a UUID (AIP-155 asks for UUID4).
pub(crate) fn request_id(value: &str) -> Result<()> {
    if value.is_empty() {
        return Ok(());
    }
    match uuid::Uuid::try_parse(value) {
        Ok(id) if value.len() == 36 && id.get_version_num() == 4 => Ok(()),
        _ => Err(GatewayError::invalid_field(
            "request_id",
            "must be a UUID4 such as 3f2b...-4...",
        )),
    }
}

/// A required id field: non-empty, bounded, printable, no whitespace.
pub(crate) fn id(field: &str, value: &str) -> Result<()> {
    validate::require_non_empty(field, value)?;
    if value.len() > MAX_ID_LEN {
        return Err(GatewayError::invalid_field(
            field,
            format!("is longer than {MAX_ID_LEN} characters"),
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(GatewayError::invalid_field(
            field,
            "must not contain spaces or control characters",
        ));
    }
    Ok(())
}

/// 1 to 15 distinct, non-empty ids.
pub(crate) fn batch_ids(ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Err(GatewayError::invalid_field(
            "invitation_ids",
            "must hold at least one id",
        ));
    }
    if ids.len() > MAX_BATCH_IDS {
        return Err(GatewayError::invalid_field(
            "invitation_ids",
            format!("must hold at most {MAX_BATCH_IDS} ids, got {}", ids.len()),
        ));
    }
    let mut seen = HashSet::with_capacity(ids.len());
    for (index, value) in ids.iter().enumerate() {
        id(&format!("invitation_ids[{index}]"), value)?;
        if !seen.insert(value.as_str()) {
            return Err(GatewayError::invalid_field(
                format!("invitation_ids[{index}]"),
                "repeats an earlier id",
            ));
        }
    }
    Ok(())
}

pub(crate) fn timestamp_to_utc(
    field: &str,
    value: &prost_types::Timestamp,
) -> Result<DateTime<Utc>> {
    if !(0..1_000_000_000).contains(&value.nanos) {
        return Err(GatewayError::invalid_field(field, "has out-of-range nanos"));
    }
    Utc.timestamp_opt(value.seconds, value.nanos as u32)
        .single()
        .ok_or_else(|| GatewayError::invalid_field(field, "is not a valid time"))
}

pub(crate) fn utc_to_timestamp(value: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: value.timestamp(),
        nanos: value.timestamp_subsec_nanos() as i32,
    }
}

fn positive(value: i32) -> Option<u32> {
    u32::try_from(value).ok().filter(|v| *v > 0)
}

/// An enum field's number as one of its known values; an unknown number
/// (a newer client, or a bug) is refused rather than read as the default.
fn known<E: TryFrom<i32>>(field: impl FnOnce() -> String, value: i32) -> Result<E> {
    E::try_from(value)
        .map_err(|_| GatewayError::invalid_field(field(), format!("{value} is not a known value")))
}

/// A signer in domain terms; `path` names it in errors (`signers[1]`).
pub(crate) fn signer(path: &str, signer: pb::Signer) -> Result<domain::Signer> {
    let signnow = match signer.signnow {
        None => None,
        Some(o) => Some(domain::SignNowSignerOptions {
            expiration_days: positive(o.expiration_days),
            reminder_days: positive(o.reminder_days),
            authentication: match known(
                || format!("{path}.signnow.authentication_type"),
                o.authentication_type,
            )? {
                pb::SignNowAuthenticationType::Password => domain::SignNowAuthentication::Password,
                pb::SignNowAuthenticationType::Phone => domain::SignNowAuthentication::Phone,
                pb::SignNowAuthenticationType::Unspecified => domain::SignNowAuthentication::None,
            },
            password: o.password,
            authentication_phone: o.authentication_phone,
            phone_method: match known(|| format!("{path}.signnow.phone_method"), o.phone_method)? {
                pb::SignNowPhoneMethod::Sms => domain::SignNowPhoneMethod::Sms,
                pb::SignNowPhoneMethod::PhoneCall => domain::SignNowPhoneMethod::PhoneCall,
                pb::SignNowPhoneMethod::Unspecified => domain::SignNowPhoneMethod::Default,
            },
            subject: o.subject,
            message: o.message,
            redirect_uri: o.redirect_uri,
            decline_by_signature: o.decline_by_signature,
            reassign: o.reassign,
            force_new_signature: o.force_new_signature,
            signing_instructions: o.signing_instructions,
            prefill_signature_name: o.prefill_signature_name,
        }),
    };
    Ok(domain::Signer {
        name: signer.name.trim().to_owned(),
        email: signer.email.trim().to_owned(),
        phone: signer.phone.trim().to_owned(),
        role: signer.role,
        role_id: signer.role_id,
        order: positive(signer.order),
        signnow,
    })
}

/// The send request in domain terms; the options must match the provider.
pub(crate) fn send_request(
    kind: ProviderKind,
    request: pb::SendInvitationRequest,
) -> Result<domain::SendRequest> {
    use pb::send_invitation_request::ProviderOptions;
    let options = match (kind, request.provider_options) {
        (_, None) => domain::SendOptions::None,
        (ProviderKind::Leegality, Some(ProviderOptions::Leegality(o))) => {
            domain::SendOptions::Leegality {
                profile_id: o.profile_id,
                file_name: o.file_name,
                file: o.file,
            }
        }
        (ProviderKind::SignNow, Some(ProviderOptions::Signnow(o))) => {
            domain::SendOptions::SignNow {
                from: o.from,
                mode: match known(|| "signnow.mode".into(), o.mode)? {
                    pb::SignNowInviteMode::Freeform => Some(domain::SignNowInviteMode::Freeform),
                    pb::SignNowInviteMode::Field => Some(domain::SignNowInviteMode::Field),
                    pb::SignNowInviteMode::Unspecified => None,
                },
                cc_steps: o
                    .cc_steps
                    .into_iter()
                    .map(|s| domain::SignNowCcStep {
                        name: s.name,
                        email: s.email,
                        step: u32::try_from(s.step).unwrap_or(0),
                    })
                    .collect(),
                viewers: o
                    .viewers
                    .into_iter()
                    .map(|v| domain::SignNowViewer {
                        email: v.email,
                        role: v.role,
                        order: positive(v.order),
                    })
                    .collect(),
                cc_subject: o.cc_subject,
                cc_message: o.cc_message,
            }
        }
        (ProviderKind::Bynn, Some(ProviderOptions::Bynn(o))) => domain::SendOptions::Bynn {
            workflow_token: o.workflow_token,
            channel: match known(|| "bynn.channel".into(), o.channel)? {
                pb::BynnChannel::Email => Some(domain::BynnChannel::Email),
                pb::BynnChannel::Sms => Some(domain::BynnChannel::Sms),
                pb::BynnChannel::Unspecified => None,
            },
            locale: o.locale,
        },
        (kind, Some(other)) => {
            let field = match other {
                ProviderOptions::Leegality(_) => "leegality",
                ProviderOptions::Signnow(_) => "signnow",
                ProviderOptions::Bynn(_) => "bynn",
            };
            return Err(GatewayError::invalid_field(
                field,
                format!(
                    "these options are for another provider than {}",
                    kind.display_name()
                ),
            ));
        }
    };
    Ok(domain::SendRequest {
        document_id: request.document_id,
        signers: request
            .signers
            .into_iter()
            .enumerate()
            .map(|(index, s)| signer(&format!("signers[{index}]"), s))
            .collect::<Result<_>>()?,
        subject: request.subject,
        message: request.message,
        cc: request
            .cc
            .into_iter()
            .map(|c| domain::CcRecipient {
                name: c.name,
                email: c.email,
            })
            .collect(),
        reference: request.reference,
        options,
    })
}

pub(crate) fn invitation_state(state: domain::InvitationState) -> pb::InvitationState {
    use domain::InvitationState as S;
    match state {
        S::Unspecified => pb::InvitationState::Unspecified,
        S::Created => pb::InvitationState::Created,
        S::Pending => pb::InvitationState::Pending,
        S::Delivered => pb::InvitationState::Delivered,
        S::Opened => pb::InvitationState::Opened,
        S::Started => pb::InvitationState::Started,
        S::Signed => pb::InvitationState::Signed,
        S::Rejected => pb::InvitationState::Rejected,
        S::Expired => pb::InvitationState::Expired,
        S::Cancelled => pb::InvitationState::Cancelled,
        S::Failed => pb::InvitationState::Failed,
    }
}

pub(crate) fn document_state(state: domain::DocumentState) -> pb::DocumentState {
    use domain::DocumentState as S;
    match state {
        S::Unspecified => pb::DocumentState::Unspecified,
        S::Draft => pb::DocumentState::Draft,
        S::InProgress => pb::DocumentState::InProgress,
        S::Completed => pb::DocumentState::Completed,
        S::Rejected => pb::DocumentState::Rejected,
        S::Expired => pb::DocumentState::Expired,
        S::Cancelled => pb::DocumentState::Cancelled,
    }
}

pub(crate) fn invitation(invitation: domain::Invitation) -> pb::Invitation {
    let signer = invitation.signer;
    pb::Invitation {
        id: invitation.id,
        sign_url: invitation.sign_url.unwrap_or_default(),
        signer: Some(pb::Signer {
            name: signer.name,
            email: signer.email,
            phone: signer.phone,
            role: signer.role,
            role_id: signer.role_id,
            order: signer.order.map(|o| o as i32).unwrap_or_default(),
            signnow: None,
        }),
        state: invitation_state(invitation.state) as i32,
        provider_status: invitation.provider_status,
        is_signers_turn: invitation.is_signers_turn,
        expire_time: invitation.expire_time.map(utc_to_timestamp),
        delivery_attempts: invitation
            .delivery_attempts
            .map(|a| a as i32)
            .unwrap_or_default(),
        document_id: invitation.document_id.unwrap_or_default(),
        reference: invitation.reference.unwrap_or_default(),
        send_time: invitation.send_time.map(utc_to_timestamp),
    }
}

pub(crate) fn document(document: domain::Document) -> pb::Document {
    pb::Document {
        id: document.id,
        reference: document.reference.unwrap_or_default(),
        state: document_state(document.state) as i32,
        invitations: document.invitations.into_iter().map(invitation).collect(),
        provider_status: document.provider_status,
    }
}

pub(crate) fn send_response(outcome: domain::SendOutcome) -> pb::SendInvitationResponse {
    pb::SendInvitationResponse {
        document_id: outcome.document_id.unwrap_or_default(),
        invitations: outcome.invitations.into_iter().map(invitation).collect(),
        provider_warnings: outcome
            .warnings
            .into_iter()
            .map(|w| pb::ProviderMessage {
                code: w.code,
                message: w.message,
            })
            .collect(),
    }
}

pub(crate) fn breaker_state(state: crate::provider::transport::BreakerState) -> pb::BreakerState {
    use crate::provider::transport::BreakerState as B;
    match state {
        B::Closed => pb::BreakerState::Closed,
        B::Open => pb::BreakerState::Open,
        B::HalfOpen => pb::BreakerState::HalfOpen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_must_be_specified() {
        let error = provider(0).unwrap_err();
        assert_eq!(error.field_violations()[0].0, "provider");
        assert!(provider(42).is_err());
        assert_eq!(provider(3).unwrap(), ProviderKind::Bynn);
    }

    #[test]
    fn request_id_must_be_uuid4() {
        assert!(request_id("").is_ok());
        assert!(request_id("9b2f6c1e-3d4a-4f5b-8c6d-7e8f9a0b1c2d").is_ok());
        assert!(request_id("9b2f6c1e-3d4a-1f5b-8c6d-7e8f9a0b1c2d").is_err());
        assert!(request_id("not-a-uuid").is_err());
    }

    #[test]
    fn batch_ids_name_the_offending_index() {
        let ids: Vec<String> = vec!["a".into(), "b".into(), "a".into()];
        let error = batch_ids(&ids).unwrap_err();
        assert_eq!(error.field_violations()[0].0, "invitation_ids[2]");
        let too_many: Vec<String> = (0..16).map(|i| format!("id{i}")).collect();
        assert!(batch_ids(&too_many).is_err());
        assert!(batch_ids(&[]).is_err());
        let ids: Vec<String> = vec!["a".into(), "".into()];
        assert_eq!(
            batch_ids(&ids).unwrap_err().field_violations()[0].0,
            "invitation_ids[1]"
        );
    }
}
