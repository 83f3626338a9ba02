//! Checks of the caller's input before any Leegality call: sign URLs and
//! the create request.

use super::*;

/// The invitation's UUID from a bare UUID or a sign URL on `host`; the
/// gateway never forwards a caller's URL.
pub(super) fn sign_uuid(host: &str, field: &str, value: &str) -> Result<String> {
    if validate::is_uuid(value) {
        return Ok(value.to_ascii_lowercase());
    }
    let url = Url::parse(value).map_err(|_| {
        GatewayError::invalid_field(field, "must be a sign URL UUID or a Leegality sign URL")
    })?;
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    let valid = url.scheme() == "https"
        && url.host_str() == Some(host)
        && url.port().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && segments.len() == 2
        && segments[0] == "sign"
        && validate::is_uuid(segments[1]);
    if !valid {
        return Err(GatewayError::invalid_field(
            field,
            format!("must be a UUID or https://{host}/sign/<uuid>"),
        ));
    }
    Ok(segments[1].to_ascii_lowercase())
}

/// Checks everything Leegality would refuse before the billed call.
pub(super) fn create_body(request: &SendRequest) -> Result<CreateBody<'_>> {
    let SendOptions::Leegality {
        profile_id,
        file_name,
        file,
    } = &request.options
    else {
        return Err(GatewayError::invalid_field(
            "leegality",
            "Leegality options (profile_id, file_name, file) are required",
        ));
    };
    for (field, set, why) in [
        (
            "document_id",
            !request.document_id.is_empty(),
            "Leegality creates the document; leave it empty",
        ),
        (
            "subject",
            !request.subject.is_empty(),
            "Leegality notifications are workflow configuration; leave it empty",
        ),
        (
            "message",
            !request.message.is_empty(),
            "Leegality notifications are workflow configuration; leave it empty",
        ),
    ] {
        if set {
            return Err(GatewayError::invalid_field(field, why));
        }
    }
    validate::require_path_safe_id("leegality.profile_id", profile_id, MAX_PROFILE_ID_LEN)?;
    require_text("leegality.file_name", file_name)?;
    if file.is_empty() {
        return Err(GatewayError::invalid_field("leegality.file", "is required"));
    }
    if file.len() > MAX_FILE_BYTES {
        return Err(GatewayError::invalid_field(
            "leegality.file",
            format!(
                "is {} bytes; Leegality takes at most 15 MB ({MAX_FILE_BYTES} bytes)",
                file.len()
            ),
        ));
    }
    if !file.starts_with(b"%PDF-") {
        return Err(GatewayError::invalid_field(
            "leegality.file",
            "must be a PDF (it does not start with %PDF-)",
        ));
    }
    // No invitees is allowed: a workflow can configure them in the
    // dashboard (evidence.md L-3); Leegality refuses otherwise, and that
    // refusal names `signers`.
    let mut invitees = Vec::with_capacity(request.signers.len());
    for (index, signer) in request.signers.iter().enumerate() {
        let field = |name: &str| format!("signers[{index}].{name}");
        require_text(&field("name"), &signer.name)?;
        let email = (!signer.email.is_empty()).then_some(signer.email.as_str());
        let phone = (!signer.phone.is_empty()).then_some(signer.phone.as_str());
        if email.is_none() && phone.is_none() {
            return Err(GatewayError::invalid_field(
                field("email"),
                "an email or a 10-digit Indian mobile number is required",
            ));
        }
        if let Some(email) = email
            && !validate::is_email(email)
        {
            return Err(GatewayError::invalid_field(
                field("email"),
                "must be an email address",
            ));
        }
        if let Some(phone) = phone
            && !validate::is_indian_mobile(phone)
        {
            return Err(GatewayError::invalid_field(
                field("phone"),
                "must be a 10-digit Indian mobile number without +91",
            ));
        }
        validate::reject_set(
            &format!("signers[{index}]"),
            &[
                ("role", !signer.role.is_empty()),
                ("role_id", !signer.role_id.is_empty()),
                ("order", signer.order.is_some()),
                ("signnow", signer.signnow.is_some()),
            ],
            "is not supported by Leegality: roles and signing order come from the workflow",
        )?;
        invitees.push(WireInvitee {
            name: &signer.name,
            email,
            phone,
        });
    }
    let mut cc = Vec::with_capacity(request.cc.len());
    for (index, copy) in request.cc.iter().enumerate() {
        require_text(&format!("cc[{index}].name"), &copy.name)?;
        if !validate::is_email(&copy.email) {
            return Err(GatewayError::invalid_field(
                format!("cc[{index}].email"),
                "must be an email address",
            ));
        }
        cc.push(WireCc {
            name: &copy.name,
            email: &copy.email,
        });
    }
    if request.reference.chars().count() > MAX_IRN_LEN
        || request.reference.chars().any(char::is_control)
    {
        return Err(GatewayError::invalid_field(
            "reference",
            format!("must be at most {MAX_IRN_LEN} characters without control characters"),
        ));
    }
    Ok(CreateBody {
        profile_id,
        file: WireFile {
            name: file_name,
            file: transport::FileSlot::new(),
        },
        invitees,
        cc,
        irn: (!request.reference.is_empty()).then_some(request.reference.as_str()),
    })
}

pub(super) fn require_text(field: &str, value: &str) -> Result<()> {
    validate::require_non_empty(field, value)?;
    if value.chars().count() > MAX_NAME_LEN || value.chars().any(char::is_control) {
        return Err(GatewayError::invalid_field(
            field,
            format!("must be at most {MAX_NAME_LEN} characters without control characters"),
        ));
    }
    Ok(())
}

pub(super) fn validate_document_id(document_id: &str) -> Result<()> {
    validate::require_path_safe_id("document_id", document_id, MAX_DOCUMENT_ID_LEN)
}
