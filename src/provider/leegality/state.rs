//! Document and invitation states, and Leegality's zone-less times.

use super::*;

pub(super) fn derive_document_state(invitations: &[Invitation]) -> DocumentState {
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
pub(super) fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 1800).expect("IST offset")
}

/// `dd-MM-yyyy HH:mm:ss`, read as IST (Leegality gives no zone); an ISO
/// string, seen in older samples, is accepted too.
pub(super) fn parse_leegality_time(value: &str) -> Option<DateTime<Utc>> {
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
