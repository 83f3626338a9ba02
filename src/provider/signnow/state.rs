//! Unified states from signNow's document, invite by invite.

use super::*;

impl SignNow {
    pub(super) fn document_from(&self, document: WireDocument) -> Document {
        let now = self.clock.now();
        let mut invitations: Vec<Invitation> = document
            .field_invites
            .iter()
            .map(|invite| field_invitation(&document, invite, now))
            .collect();
        invitations.extend(
            document
                .requests
                .iter()
                .map(|request| freeform_invitation(&document.id, request)),
        );
        let state = document_state(&invitations);
        Document {
            id: document.id,
            reference: None,
            state,
            provider_status: String::new(),
            invitations,
        }
    }
}

/// signNow's raw status vocabulary (the full set is unconfirmed; the
/// synonyms follow signNow's own MCP server). `skipped` is a step whose
/// conditional fields were skipped (.NET SDK `InviteStatus`): nobody will
/// sign it, so it reads as cancelled.
pub(super) fn invitation_state(status: &str) -> InvitationState {
    match status.to_ascii_lowercase().as_str() {
        "created" | "new" => InvitationState::Created,
        "pending" | "sent" | "waiting" => InvitationState::Pending,
        "fulfilled" | "signed" | "completed" | "done" => InvitationState::Signed,
        "declined" | "rejected" => InvitationState::Rejected,
        "expired" => InvitationState::Expired,
        "canceled" | "cancelled" | "skipped" => InvitationState::Cancelled,
        _ => InvitationState::Unspecified,
    }
}

pub(super) fn document_state(invitations: &[Invitation]) -> DocumentState {
    if invitations.is_empty() {
        return DocumentState::Draft;
    }
    // A skipped step neither blocks completion nor completes anything.
    let live: Vec<&Invitation> = invitations
        .iter()
        .filter(|i| i.provider_status != "skipped")
        .collect();
    let all = |state| live.iter().all(|i| i.state == state);
    let any = |state| live.iter().any(|i| i.state == state);
    if all(InvitationState::Signed) {
        DocumentState::Completed
    } else if any(InvitationState::Rejected) {
        DocumentState::Rejected
    } else if all(InvitationState::Cancelled) {
        DocumentState::Cancelled
    } else if any(InvitationState::Expired)
        && !any(InvitationState::Pending)
        && !any(InvitationState::Created)
    {
        DocumentState::Expired
    } else {
        DocumentState::InProgress
    }
}

pub(super) fn field_invitation(
    document: &WireDocument,
    invite: &WireFieldInvite,
    now: DateTime<Utc>,
) -> Invitation {
    let state = invite.state(now);
    Invitation {
        id: invite.id.clone(),
        sign_url: None,
        signer: Signer {
            email: invite.email.clone(),
            role: invite.role.clone(),
            role_id: invite.role_id.clone(),
            // Field invites carry no order: it is their role's step.
            order: document.signing_order(&invite.role_id),
            ..Signer::default()
        },
        state,
        provider_status: invite.status.clone(),
        is_signers_turn: state == InvitationState::Pending,
        expire_time: invite.expiration_time.as_ref().and_then(epoch),
        delivery_attempts: None,
        document_id: Some(document.id.clone()),
        reference: None,
        send_time: invite.created.as_ref().and_then(epoch),
    }
}

/// A freeform row has no status (evidence.md N-12): signed once it has a
/// `signature_id`, withdrawn when `canceled`, awaiting the signer otherwise.
pub(super) fn freeform_state(row: &WireFreeform) -> InvitationState {
    if row.canceled.as_ref().is_some_and(truthy) {
        InvitationState::Cancelled
    } else if row
        .signature_id
        .as_ref()
        .is_some_and(|id| !id.is_null() && id.as_str() != Some(""))
    {
        InvitationState::Signed
    } else {
        InvitationState::Pending
    }
}

pub(super) fn freeform_invitation(document_id: &str, row: &WireFreeform) -> Invitation {
    let state = freeform_state(row);
    Invitation {
        id: row.invite_id().to_owned(),
        signer: Signer {
            email: row.signer_email.clone().unwrap_or_default(),
            ..Signer::default()
        },
        state,
        is_signers_turn: state == InvitationState::Pending,
        provider_status: String::new(),
        send_time: row.created.as_ref().and_then(epoch),
        document_id: Some(document_id.to_owned()),
        ..Invitation::default()
    }
}

/// Resend needs an invite that is the signer's turn now.
pub(super) fn check_resendable(invitation: &Invitation) -> Result<()> {
    let refuse = |reason, message| {
        Err(GatewayError::new(reason, message)
            .with_provider(KIND)
            .with_metadata(MetaKey::InvitationId, &invitation.id)
            .with_metadata(MetaKey::Status, &invitation.provider_status)
            .with_metadata(MetaKey::State, invitation.state.name()))
    };
    match invitation.state {
        InvitationState::Pending => Ok(()),
        InvitationState::Created => refuse(
            Reason::InvalidInvitationState,
            "it is not this signer's turn yet",
        ),
        InvitationState::Expired => refuse(
            Reason::InvitationNotResendable,
            "the invite has expired; send a new one",
        ),
        InvitationState::Rejected => refuse(
            Reason::InvitationNotResendable,
            "the signer declined the invite",
        ),
        InvitationState::Signed => refuse(
            Reason::InvitationNotResendable,
            "the signer has already signed",
        ),
        _ => refuse(
            Reason::InvitationNotResendable,
            "only an invite awaiting its signer can be resent",
        ),
    }
}
