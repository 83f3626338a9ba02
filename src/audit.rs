//! One structured `audit` line per mutating call: who asked, what, for whom,
//! and how it ended. Email addresses and phone numbers are masked, and
//! Leegality invitation ids (a sign URL's UUID is enough to sign) are cut
//! short; no secret, token or document ever reaches the line.

use std::fmt;

use crate::{domain::ProviderKind, pb, telemetry};

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
fn write_masked_email<W: fmt::Write + ?Sized>(f: &mut W, email: &str) -> fmt::Result {
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() => {
            f.write_char(local.chars().next().unwrap_or('*'))?;
            f.write_str("***@")?;
            f.write_str(domain)
        }
        _ => f.write_str("***"),
    }
}

/// `+91******10`: the country prefix and the last two digits.
fn write_masked_phone<W: fmt::Write + ?Sized>(f: &mut W, phone: &str) -> fmt::Result {
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

fn write_masked_contact<W: fmt::Write + ?Sized>(f: &mut W, contact: &str) -> fmt::Result {
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
fn write_masked_invitation_id<W: fmt::Write + ?Sized>(
    f: &mut W,
    provider: Option<ProviderKind>,
    id: &str,
) -> fmt::Result {
    let url_like = id.contains('/') || id.contains(':') || crate::validate::is_uuid(id);
    if provider == Some(ProviderKind::Leegality) || url_like {
        let last = id.rsplit('/').next().unwrap_or(id);
        f.write_str(prefix(last, 8))?;
        return f.write_char('…');
    }
    f.write_str(prefix(id, 64))
}

/// How the values of a field are masked.
#[derive(Clone, Copy)]
enum Masking {
    InvitationIds(Option<ProviderKind>),
    Contacts,
}

/// Masked values joined by commas.
fn write_joined<W: fmt::Write + ?Sized>(
    f: &mut W,
    values: &[String],
    masking: Masking,
) -> fmt::Result {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        match masking {
            Masking::InvitationIds(provider) => write_masked_invitation_id(f, provider, value)?,
            Masking::Contacts => write_masked_contact(f, value)?,
        }
    }
    Ok(())
}

/// Masked values joined by commas, formatted straight into a tracing
/// event's field.
struct Joined<'a> {
    values: &'a [String],
    masking: Masking,
}

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_joined(f, self.values, self.masking)
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
    telemetry::audit_sink().is_some()
        || tracing::enabled!(target: telemetry::AUDIT_TARGET, tracing::Level::INFO)
}

/// What one audit line says.
pub(crate) struct AuditLine<'a> {
    pub caller: &'a str,
    pub rpc: &'a str,
    pub provider: Option<ProviderKind>,
    pub account: &'a str,
    pub request_id: &'a str,
    pub subjects: &'a Subjects,
    pub code: &'a str,
    pub reason: &'a str,
    pub trace_id: Option<telemetry::TraceId>,
}

/// Writes the audit line (target `audit`). Masking happens while the line
/// is encoded, without building the masked values first. Where a sink is
/// set (JSON lines, no exporter) the line is written to it directly,
/// otherwise it is a tracing event; both give the same fields.
pub(crate) fn record(line: &AuditLine<'_>) {
    record_to(line, telemetry::audit_sink());
}

/// [`record`], to `sink` when there is one.
pub(crate) fn record_to(line: &AuditLine<'_>, sink: Option<&telemetry::LineSink>) {
    let provider = line.provider;
    let account = if line.account.is_empty() {
        "default"
    } else {
        line.account
    };
    let trace_id = line.trace_id.map(telemetry::TraceId::hex);
    let trace_id = trace_id.as_ref().map_or("", |hex| hex.as_str());
    let document_id = prefix(&line.subjects.document_id, 64);
    let invitation_ids = &line.subjects.invitation_ids;
    let recipients = &line.subjects.recipients;
    if let Some(sink) = sink {
        let fields = |fields: &mut telemetry::DirectFields<'_>| {
            fields.str("caller", line.caller);
            fields.str("rpc", line.rpc);
            fields.str("provider", provider.map_or("", ProviderKind::as_str));
            fields.str("account", account);
            fields.str("request_id", line.request_id);
            fields.str("document_id", document_id);
            fields.written("invitation_ids", |f| {
                let _ = write_joined(f, invitation_ids, Masking::InvitationIds(provider));
            });
            fields.written("recipients", |f| {
                let _ = write_joined(f, recipients, Masking::Contacts);
            });
            fields.str("code", line.code);
            fields.str("reason", line.reason);
            fields.str("trace_id", trace_id);
        };
        telemetry::write_info_line(telemetry::AUDIT_TARGET, "audit", fields, sink);
        return;
    }
    let invitation_ids = Joined {
        values: invitation_ids,
        masking: Masking::InvitationIds(provider),
    };
    let recipients = Joined {
        values: recipients,
        masking: Masking::Contacts,
    };
    tracing::info!(
        target: telemetry::AUDIT_TARGET,
        caller = line.caller,
        rpc = line.rpc,
        provider = provider.map_or("", ProviderKind::as_str),
        account,
        request_id = line.request_id,
        document_id,
        invitation_ids = %invitation_ids,
        recipients = %recipients,
        code = line.code,
        reason = line.reason,
        trace_id,
        "audit"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(masking: Masking, value: &str) -> String {
        let values = [value.to_owned()];
        Joined {
            values: &values,
            masking,
        }
        .to_string()
    }

    #[test]
    fn contacts_and_sign_urls_are_masked() {
        assert_eq!(
            masked(Masking::Contacts, "john.doe@example.com"),
            "j***@example.com"
        );
        assert_eq!(masked(Masking::Contacts, "@example.com"), "***");
        assert_eq!(masked(Masking::Contacts, "+919876543210"), "+91********10");
        assert_eq!(masked(Masking::Contacts, "12"), "***");
        let leegality = Masking::InvitationIds(Some(ProviderKind::Leegality));
        assert_eq!(
            masked(
                leegality,
                "https://sandbox.leegality.com/sign/2bdcc3ef-661f-440c-b059-82c0ff6ce4d8"
            ),
            "2bdcc3ef…"
        );
        let bynn = Masking::InvitationIds(Some(ProviderKind::Bynn));
        assert_eq!(masked(bynn, "adi_123"), "adi_123");
        assert_eq!(masked(bynn, &"x".repeat(70)), "x".repeat(64));
        assert_eq!(prefix(&"é".repeat(70), 64), "é".repeat(64));
    }

    #[test]
    fn several_values_are_joined_with_commas() {
        let values = ["a@b.example".to_owned(), "+911234567890".to_owned()];
        let joined = Joined {
            values: &values,
            masking: Masking::Contacts,
        };
        assert_eq!(joined.to_string(), "a***@b.example,+91********90");
    }
}
