//! One structured `audit` line per mutating call: who asked, what, for whom,
//! and how it ended. Email addresses and phone numbers are masked, and
//! Leegality invitation ids (a sign URL's UUID is enough to sign) are cut
//! short; no secret, token or document ever reaches the line.

use std::fmt::{self, Write as _};

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
fn write_masked_email(f: &mut fmt::Formatter<'_>, email: &str) -> fmt::Result {
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() => {
            let first = local.chars().next().unwrap_or('*');
            write!(f, "{first}***@{domain}")
        }
        _ => f.write_str("***"),
    }
}

/// `+91******10`: the country prefix and the last two digits.
fn write_masked_phone(f: &mut fmt::Formatter<'_>, phone: &str) -> fmt::Result {
    let count = phone.chars().count();
    if count < 6 {
        return f.write_str("***");
    }
    for (i, c) in phone.chars().enumerate() {
        if i < 3 || i >= count - 2 {
            f.write_char(c)?;
        } else {
            f.write_char('*')?;
        }
    }
    Ok(())
}

fn write_masked_contact(f: &mut fmt::Formatter<'_>, contact: &str) -> fmt::Result {
    if contact.contains('@') {
        write_masked_email(f, contact)
    } else {
        write_masked_phone(f, contact)
    }
}

/// Leegality ids are sign URLs or their UUIDs, which let anyone sign: only
/// the first 8 characters of the UUID are kept, and the same goes for any
/// id that looks like a URL or a UUID whatever the provider. Other ids are
/// opaque references, kept up to 64 characters.
fn write_masked_invitation_id(
    f: &mut fmt::Formatter<'_>,
    provider: Option<ProviderKind>,
    id: &str,
) -> fmt::Result {
    let url_like = id.contains('/') || id.contains(':') || crate::validate::is_uuid(id);
    if provider == Some(ProviderKind::Leegality) || url_like {
        let last = id.rsplit('/').next().unwrap_or(id);
        write_prefix(f, last, 8)?;
        return f.write_char('…');
    }
    write_prefix(f, id, 64)
}

/// The first `chars` characters of `value`.
fn write_prefix(f: &mut fmt::Formatter<'_>, value: &str, chars: usize) -> fmt::Result {
    f.write_str(prefix(value, chars))
}

/// Masked values joined by commas, formatted straight into the audit line.
struct Joined<'a, F> {
    values: &'a [String],
    write_one: F,
}

impl<F> fmt::Display for Joined<'_, F>
where
    F: Fn(&mut fmt::Formatter<'_>, &str) -> fmt::Result,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, value) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            (self.write_one)(f, value)?;
        }
        Ok(())
    }
}

/// The first `chars` characters of `value`, as a slice of it.
fn prefix(value: &str, chars: usize) -> &str {
    let end = value
        .char_indices()
        .nth(chars)
        .map_or(value.len(), |(i, _)| i);
    &value[..end]
}

/// Whether audit lines are written at all (the log filter may drop them),
/// so the hot path skips preparing them.
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: "audit", tracing::Level::INFO)
}

/// Writes the audit line (target `audit`). Masking happens while the line
/// is encoded, without building the masked values first.
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
    trace_id: Option<crate::telemetry::TraceId>,
) {
    let invitation_ids = Joined {
        values: &subjects.invitation_ids,
        write_one: |f: &mut fmt::Formatter<'_>, id: &str| {
            write_masked_invitation_id(f, provider, id)
        },
    };
    let recipients = Joined {
        values: &subjects.recipients,
        write_one: write_masked_contact,
    };
    // Plain strings where no masking is needed: a `Display` field goes
    // through the formatting machinery even when empty.
    let trace_id = trace_id.map(crate::telemetry::TraceId::hex);
    tracing::info!(
        target: "audit",
        caller,
        rpc,
        provider = provider.map_or("", ProviderKind::as_str),
        account = if account.is_empty() { "default" } else { account },
        request_id,
        document_id = prefix(&subjects.document_id, 64),
        invitation_ids = %invitation_ids,
        recipients = %recipients,
        code,
        reason,
        trace_id = trace_id.as_ref().map_or("", |hex| hex.as_str()),
        "audit"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formats one value with a masking writer.
    fn masked(write: impl Fn(&mut fmt::Formatter<'_>, &str) -> fmt::Result, value: &str) -> String {
        let values = [value.to_owned()];
        Joined {
            values: &values,
            write_one: write,
        }
        .to_string()
    }

    #[test]
    fn contacts_and_sign_urls_are_masked() {
        assert_eq!(
            masked(write_masked_contact, "john.doe@example.com"),
            "j***@example.com"
        );
        assert_eq!(masked(write_masked_contact, "@example.com"), "***");
        assert_eq!(
            masked(write_masked_contact, "+919876543210"),
            "+91********10"
        );
        assert_eq!(masked(write_masked_contact, "12"), "***");
        let leegality = |f: &mut fmt::Formatter<'_>, id: &str| {
            write_masked_invitation_id(f, Some(ProviderKind::Leegality), id)
        };
        assert_eq!(
            masked(
                leegality,
                "https://sandbox.leegality.com/sign/2bdcc3ef-661f-440c-b059-82c0ff6ce4d8"
            ),
            "2bdcc3ef…"
        );
        let bynn = |f: &mut fmt::Formatter<'_>, id: &str| {
            write_masked_invitation_id(f, Some(ProviderKind::Bynn), id)
        };
        assert_eq!(masked(bynn, "adi_123"), "adi_123");
        assert_eq!(masked(bynn, &"x".repeat(70)), "x".repeat(64));
        assert_eq!(prefix(&"é".repeat(70), 64), "é".repeat(64));
    }

    #[test]
    fn several_values_are_joined_with_commas() {
        let values = ["a@b.example".to_owned(), "+911234567890".to_owned()];
        let joined = Joined {
            values: &values,
            write_one: write_masked_contact,
        };
        assert_eq!(joined.to_string(), "a***@b.example,+91********90");
    }
}
