//! One structured `audit` line per mutating call: who asked, what, for whom,
//! and how it ended. Email addresses and phone numbers are masked, and
//! Leegality invitation ids (a sign URL's UUID is enough to sign) are cut
//! short; no secret, token or document ever reaches the line.

use crate::{domain::ProviderKind, pb};

/// What a request is about, for the audit line.
#[derive(Debug, Default)]
pub(crate) struct Subjects {
    pub document_id: String,
    pub invitation_ids: Vec<String>,
    /// Email addresses and phone numbers of the people it concerns.
    pub recipients: Vec<String>,
}

/// Requests that change something at a provider.
pub(crate) trait Audited {
    fn subjects(&self) -> Subjects;
}

fn signer_contacts(signer: &pb::Signer) -> impl Iterator<Item = String> + '_ {
    [signer.email.as_str(), signer.phone.as_str()]
        .into_iter()
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl Audited for pb::SendInvitationRequest {
    fn subjects(&self) -> Subjects {
        Subjects {
            document_id: self.document_id.clone(),
            invitation_ids: Vec::new(),
            recipients: self
                .signers
                .iter()
                .flat_map(signer_contacts)
                .chain(self.cc.iter().map(|c| c.email.clone()))
                .collect(),
        }
    }
}

impl Audited for pb::ResendInvitationRequest {
    fn subjects(&self) -> Subjects {
        Subjects {
            invitation_ids: vec![self.invitation_id.clone()],
            ..Subjects::default()
        }
    }
}

impl Audited for pb::BatchResendInvitationsRequest {
    fn subjects(&self) -> Subjects {
        Subjects {
            invitation_ids: self.invitation_ids.clone(),
            ..Subjects::default()
        }
    }
}

impl Audited for pb::ReactivateDocumentRequest {
    fn subjects(&self) -> Subjects {
        Subjects {
            document_id: self.document_id.clone(),
            ..Subjects::default()
        }
    }
}

impl Audited for pb::DeleteInvitationRequest {
    fn subjects(&self) -> Subjects {
        Subjects {
            invitation_ids: vec![self.invitation_id.clone()],
            ..Subjects::default()
        }
    }
}

impl Audited for pb::ReplaceSignerRequest {
    fn subjects(&self) -> Subjects {
        Subjects {
            document_id: self.document_id.clone(),
            invitation_ids: vec![self.invitation_id.clone()],
            recipients: self.new_signer.iter().flat_map(signer_contacts).collect(),
        }
    }
}

impl Audited for pb::CancelInvitationsRequest {
    fn subjects(&self) -> Subjects {
        Subjects {
            document_id: self.document_id.clone(),
            ..Subjects::default()
        }
    }
}

impl Audited for pb::GetDocumentRequest {
    fn subjects(&self) -> Subjects {
        Subjects {
            document_id: self.document_id.clone(),
            ..Subjects::default()
        }
    }
}

impl Audited for pb::GetInvitationRequest {
    fn subjects(&self) -> Subjects {
        Subjects {
            invitation_ids: vec![self.invitation_id.clone()],
            ..Subjects::default()
        }
    }
}

impl Audited for pb::UploadDocumentMetadata {
    fn subjects(&self) -> Subjects {
        // The document id is the provider's answer, not known here.
        Subjects::default()
    }
}

/// `j***@example.com`; anything that is not an address is masked whole.
pub(crate) fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        _ => "***".to_owned(),
    }
}

/// `+91******10`: the country prefix and the last two digits.
pub(crate) fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 6 {
        return "***".to_owned();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 5))
}

pub(crate) fn mask_contact(contact: &str) -> String {
    if contact.contains('@') {
        mask_email(contact)
    } else {
        mask_phone(contact)
    }
}

/// Leegality ids are sign URLs or their UUIDs, which let anyone sign: only
/// the first 8 characters of the UUID are kept, and the same goes for any
/// id that looks like a URL or a UUID whatever the provider. Other ids are
/// opaque references, kept up to 64 characters.
pub(crate) fn mask_invitation_id(provider: Option<ProviderKind>, id: &str) -> String {
    let url_like = id.contains('/') || id.contains(':') || crate::validate::is_uuid(id);
    if provider == Some(ProviderKind::Leegality) || url_like {
        let last = id.rsplit('/').next().unwrap_or(id);
        let prefix: String = last.chars().take(8).collect();
        return format!("{prefix}…");
    }
    id.chars().take(64).collect()
}

/// Whether audit lines are written at all (the log filter may drop them),
/// so the hot path skips preparing them.
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: "audit", tracing::Level::INFO)
}

/// Writes the audit line (target `audit`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    caller: &str,
    rpc: &str,
    provider: Option<ProviderKind>,
    account: &str,
    request_id: &str,
    subjects: &Subjects,
    code: &str,
    reason: &str,
    trace_id: &str,
) {
    let invitation_ids: Vec<String> = subjects
        .invitation_ids
        .iter()
        .map(|id| mask_invitation_id(provider, id))
        .collect();
    let recipients: Vec<String> = subjects
        .recipients
        .iter()
        .map(|c| mask_contact(c))
        .collect();
    tracing::info!(
        target: "audit",
        caller,
        rpc,
        provider = provider.map_or("", ProviderKind::as_str),
        account = if account.is_empty() { "default" } else { account },
        request_id,
        document_id = subjects.document_id.chars().take(64).collect::<String>(),
        invitation_ids = invitation_ids.join(","),
        recipients = recipients.join(","),
        code,
        reason,
        trace_id,
        "audit"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_and_sign_urls_are_masked() {
        assert_eq!(mask_email("john.doe@example.com"), "j***@example.com");
        assert_eq!(mask_email("@example.com"), "***");
        assert_eq!(mask_phone("+919876543210"), "+91********10");
        assert_eq!(mask_phone("12"), "***");
        assert_eq!(
            mask_invitation_id(
                Some(ProviderKind::Leegality),
                "https://sandbox.leegality.com/sign/2bdcc3ef-661f-440c-b059-82c0ff6ce4d8"
            ),
            "2bdcc3ef…"
        );
        assert_eq!(
            mask_invitation_id(Some(ProviderKind::Bynn), "adi_123"),
            "adi_123"
        );
    }
}
