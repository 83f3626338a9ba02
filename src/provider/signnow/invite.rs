//! Freeform and field invites: send, resend, delete and cancel.

use super::*;

impl SignNow {
    /// The invites an orphaned send left on the document, read back (never
    /// sent again): each signer's open invite for its role, or the
    /// signer's open freeform invite. `None` unless all are there.
    pub(super) async fn find_sent(
        &self,
        ctx: &CallContext,
        request: &SendRequest,
    ) -> Result<Option<SendOutcome>> {
        validate_id("document_id", &request.document_id)?;
        let document = self.read_document_for(ctx, &request.document_id).await?;
        let now = self.clock.now();
        let mut invitations = Vec::with_capacity(request.signers.len());
        for signer in &request.signers {
            let field = document.field_invites.iter().rev().find(|invite| {
                invite.email.eq_ignore_ascii_case(&signer.email)
                    && (signer.role_id.is_empty() || invite.role_id == signer.role_id)
                    && (signer.role.is_empty() || invite.role == signer.role)
                    && invite.is_open(now)
            });
            let freeform = || {
                document.requests.iter().rev().find(|row| {
                    row.signer_email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(&signer.email))
                        && freeform_state(row) == InvitationState::Pending
                })
            };
            match (field, signer.role.is_empty() && signer.role_id.is_empty()) {
                (Some(invite), _) => invitations.push(field_invitation(&document, invite, now)),
                (None, true) => match freeform() {
                    Some(row) => invitations.push(freeform_invitation(&document.id, row)),
                    None => return Ok(None),
                },
                (None, false) => return Ok(None),
            }
        }
        Ok(Some(SendOutcome {
            document_id: Some(document.id.clone()),
            invitations,
            warnings: vec![ProviderWarning {
                code: "gateway.reconciled".into(),
                message: "an earlier attempt sent these invites; nothing new was sent".into(),
            }],
        }))
    }

    pub(super) async fn send_invite(
        &self,
        ctx: &CallContext,
        request: SendRequest,
    ) -> Result<SendOutcome> {
        let no_options = SendOptions::SignNow {
            from: String::new(),
            mode: None,
            cc_steps: Vec::new(),
            viewers: Vec::new(),
            cc_subject: String::new(),
            cc_message: String::new(),
        };
        let options = match &request.options {
            SendOptions::None => &no_options,
            options => options,
        };
        let SendOptions::SignNow {
            from,
            mode,
            cc_steps,
            viewers,
            cc_subject,
            cc_message,
        } = options
        else {
            return Err(GatewayError::invalid_field(
                "signnow",
                "these options are for another provider than signNow",
            ));
        };
        validate_id("document_id", &request.document_id)?;
        if !request.reference.is_empty() {
            return Err(GatewayError::invalid_field(
                "reference",
                "is not supported by signNow; leave it empty",
            ));
        }
        for (field, value) in [
            ("subject", &request.subject),
            ("message", &request.message),
            ("signnow.cc_subject", cc_subject),
            ("signnow.cc_message", cc_message),
        ] {
            check_text(field, value)?;
        }
        for (index, copy) in request.cc.iter().enumerate() {
            if !validate::is_email(&copy.email) {
                return Err(GatewayError::invalid_field(
                    format!("cc[{index}].email"),
                    "must be an email address",
                ));
            }
        }
        let mut steps = Vec::with_capacity(cc_steps.len());
        for (index, step) in cc_steps.iter().enumerate() {
            if !validate::is_email(&step.email) {
                return Err(GatewayError::invalid_field(
                    format!("signnow.cc_steps[{index}].email"),
                    "must be an email address",
                ));
            }
            if step.step == 0 {
                return Err(GatewayError::invalid_field(
                    format!("signnow.cc_steps[{index}].step"),
                    "must be 1 or more",
                ));
            }
            steps.push(CcStep {
                name: &step.name,
                email: &step.email,
                step: step.step,
            });
        }
        let mut viewer_list = Vec::with_capacity(viewers.len());
        for (index, viewer) in viewers.iter().enumerate() {
            if !validate::is_email(&viewer.email) {
                return Err(GatewayError::invalid_field(
                    format!("signnow.viewers[{index}].email"),
                    "must be an email address",
                ));
            }
            viewer_list.push(Viewer {
                email: &viewer.email,
                role: non_empty(&viewer.role),
                order: viewer.order,
            });
        }
        let options = SignNowSendOptions {
            from: self.sender(from)?,
            cc_subject,
            cc_message,
            cc_steps: steps,
            viewers: viewer_list,
        };
        // As the proto documents: without a mode, any role makes it a
        // field invite; otherwise it is a freeform invite.
        let mode = mode.unwrap_or_else(|| {
            if request
                .signers
                .iter()
                .any(|s| !s.role.is_empty() || !s.role_id.is_empty())
            {
                SignNowInviteMode::Field
            } else {
                SignNowInviteMode::Freeform
            }
        });
        match mode {
            SignNowInviteMode::Freeform => self.send_freeform(ctx, &request, &options).await,
            SignNowInviteMode::Field => self.send_field(ctx, &request, &options).await,
        }
    }

    pub(super) async fn resend(
        &self,
        ctx: &CallContext,
        invitation_id: &str,
        document_id: Option<&str>,
    ) -> Result<Invitation> {
        validate_id("invitation_id", invitation_id)?;
        // With the document, the kind and state are known before anything
        // is sent, and either id the caller has is turned into the one the
        // account's setting names. Without it, the id goes as given.
        let (target, known) = match document_id {
            None => (invitation_id.to_owned(), None),
            Some(document_id) => {
                let document = self.read_document_for(ctx, document_id).await?;
                let now = self.clock.now();
                match document.find(invitation_id) {
                    None => return Err(not_on_document(invitation_id, document_id)),
                    Some(FoundInvite::Freeform(_)) => {
                        return Err(GatewayError::new(
                            Reason::InvitationNotResendable,
                            "signNow offers no resend for a freeform invite; cancel it with DeleteInvitation and send a new one",
                        )
                        .with_provider(KIND)
                        .with_metadata(MetaKey::InviteKind, "freeform")
                        .with_metadata(MetaKey::InvitationId, invitation_id));
                    }
                    Some(FoundInvite::Field(invite)) => {
                        let invitation = field_invitation(&document, invite, now);
                        check_resendable(&invitation)?;
                        let target = match self.account.signnow_resend_id {
                            SignNowResendId::FieldInviteId => invite.id.clone(),
                            SignNowResendId::FieldRequestId => document
                                .field_request_id(&invite.role_id)
                                .map(str::to_owned)
                                .ok_or_else(|| {
                                    GatewayError::new(
                                        Reason::ProviderUnrecognizedResponse,
                                        "signNow lists no field request for this invite's role",
                                    )
                                    .with_provider(KIND)
                                    .with_metadata(MetaKey::InvitationId, invitation_id)
                                })?,
                        };
                        (target, Some(invitation))
                    }
                }
            }
        };
        let body = json!({"client_timestamp": self.clock.now().timestamp()});
        let response = self
            .send(ctx, Replay::Unsafe, || {
                Outbound::new(
                    "resend",
                    Method::PUT,
                    self.url(&["fieldinvite", &target, "resend"]),
                    "/fieldinvite/{id}/resend",
                )
                .json_body(&body)
                .map(|o| {
                    // Sends a real email: never repeated once it may have
                    // arrived, and never retried with the other kind of id.
                    o.timeout(self.timeouts.write)
                        .retry(RetryPolicy::OnlyBeforeSent)
                        .resend()
                })
            })
            .await?;
        if !response.status.is_success() {
            let error = map_error(&response, Op::Resend)
                .with_default_metadata(MetaKey::InvitationId, invitation_id);
            if document_id.is_none() && error.reason() == Reason::InvitationNotFound {
                return Err(error.with_metadata(
                    MetaKey::Hint,
                    "freeform invites cannot be resent; pass document_id to have the gateway check the invite",
                ));
            }
            return Err(error);
        }
        Ok(match known {
            Some(invitation) => Invitation {
                state: InvitationState::Pending,
                is_signers_turn: true,
                ..invitation
            },
            None => Invitation {
                id: invitation_id.to_owned(),
                state: InvitationState::Pending,
                provider_status: "pending".into(),
                is_signers_turn: true,
                ..Invitation::default()
            },
        })
    }

    pub(super) async fn delete(
        &self,
        ctx: &CallContext,
        invitation_id: &str,
        document_id: Option<&str>,
    ) -> Result<()> {
        validate_id("invitation_id", invitation_id)?;
        let outcome = match document_id {
            Some(document_id) => {
                let document = self.read_document_for(ctx, document_id).await?;
                match document.find(invitation_id) {
                    None => Err(not_on_document(invitation_id, document_id)),
                    Some(FoundInvite::Field(invite)) => {
                        let state = invite.state(self.clock.now());
                        if state == InvitationState::Signed {
                            return Err(signed_cannot_go(invitation_id));
                        }
                        self.delete_field_invite(ctx, &invite.id).await
                    }
                    Some(FoundInvite::Freeform(row)) => match freeform_state(row) {
                        InvitationState::Cancelled => Ok(()),
                        InvitationState::Signed => Err(signed_cannot_go(invitation_id)),
                        _ => self.cancel_freeform(ctx, row.invite_id()).await,
                    },
                }
            }
            // Both kinds are 40-hex ids: try the field invite, and on
            // "not found" the freeform invite of that id.
            None => match self.delete_field_invite(ctx, invitation_id).await {
                Err(error) if error.reason() == Reason::InvitationNotFound => {
                    match self.cancel_freeform(ctx, invitation_id).await {
                        Err(other) if other.reason() == Reason::InvitationNotFound => Err(error),
                        outcome => outcome,
                    }
                }
                outcome => outcome,
            },
        };
        outcome.map_err(|e| e.with_default_metadata(MetaKey::InvitationId, invitation_id))
    }

    pub(super) fn sender(&self, from: &str) -> Result<String> {
        let from = if from.is_empty() {
            self.account.sender_email.clone().unwrap_or_default()
        } else {
            from.to_owned()
        };
        if from.is_empty() {
            return Err(GatewayError::invalid_field(
                "signnow.from",
                "is required: the signNow account's login email (no SIGNNOW_SENDER_EMAIL is configured)",
            ));
        }
        if !validate::is_email(&from) {
            return Err(GatewayError::invalid_field(
                "signnow.from",
                "must be an email address",
            ));
        }
        Ok(from)
    }

    pub(super) async fn send_freeform(
        &self,
        ctx: &CallContext,
        request: &SendRequest,
        options: &SignNowSendOptions<'_>,
    ) -> Result<SendOutcome> {
        let signer = match request.signers.as_slice() {
            [signer] => signer,
            _ => {
                return Err(GatewayError::invalid_field(
                    "signers",
                    "a freeform invite has exactly one signer",
                ));
            }
        };
        if !validate::is_email(&signer.email) {
            return Err(GatewayError::invalid_field(
                "signers[0].email",
                "must be an email address",
            ));
        }
        validate::reject_set(
            "",
            &[
                ("signers[0].role", !signer.role.is_empty()),
                ("signers[0].role_id", !signer.role_id.is_empty()),
                ("signers[0].order", signer.order.is_some()),
                ("signers[0].signnow", signer.signnow.is_some()),
                ("signnow.cc_steps", !options.cc_steps.is_empty()),
                ("signnow.viewers", !options.viewers.is_empty()),
            ],
            "belongs to field invites; a freeform invite has no roles or steps",
        )?;
        let body = FreeformInviteBody {
            to: &signer.email,
            from: &options.from,
            common: common_fields(request, options),
        };
        let document_id = request.document_id.as_str();
        let response = self
            .send(ctx, Replay::Unsafe, || {
                Outbound::new(
                    "freeform_invite",
                    Method::POST,
                    self.url(&["document", document_id, "invite"]),
                    "/document/{document_id}/invite",
                )
                .json_body(&body)
                .map(|o| {
                    // Each call makes a new billed invite and email.
                    o.timeout(self.timeouts.write)
                        .retry(RetryPolicy::OnlyBeforeSent)
                })
            })
            .await?;
        if !response.status.is_success() {
            return Err(map_error(&response, Op::Invite));
        }
        let created: FreeformCreated = response
            .json()
            .map_err(|_| transport::unrecognized(KIND, &response))?;
        Ok(SendOutcome {
            document_id: Some(request.document_id.clone()),
            invitations: vec![Invitation {
                id: created.id,
                signer: Signer {
                    email: signer.email.clone(),
                    ..Signer::default()
                },
                state: InvitationState::Pending,
                // Freeform invites carry no status word at signNow.
                provider_status: String::new(),
                is_signers_turn: true,
                document_id: Some(request.document_id.clone()),
                send_time: Some(self.clock.now()),
                ..Invitation::default()
            }],
            warnings: Vec::new(),
        })
    }

    pub(super) async fn send_field(
        &self,
        ctx: &CallContext,
        request: &SendRequest,
        options: &SignNowSendOptions<'_>,
    ) -> Result<SendOutcome> {
        if request.signers.is_empty() {
            return Err(GatewayError::invalid_field(
                "signers",
                "a field invite needs at least one signer",
            ));
        }
        let mut recipients = Vec::with_capacity(request.signers.len());
        let mut roles_seen = std::collections::HashSet::new();
        for (index, signer) in request.signers.iter().enumerate() {
            let recipient = field_recipient(index, signer)?;
            let role_key = if signer.role_id.is_empty() {
                format!("name:{}", signer.role)
            } else {
                format!("id:{}", signer.role_id)
            };
            if !roles_seen.insert(role_key) {
                return Err(GatewayError::invalid_field(
                    format!("signers[{index}].role"),
                    "names the same role as an earlier signer",
                ));
            }
            recipients.push(recipient);
        }
        let body = FieldInviteBody {
            to: recipients,
            from: &options.from,
            common: common_fields(request, options),
            cc_step: &options.cc_steps,
            viewers: &options.viewers,
        };
        let document_id = request.document_id.as_str();
        let response = self
            .send(ctx, Replay::Safe, || {
                Outbound::new(
                    "field_invite",
                    Method::POST,
                    self.url(&["document", document_id, "invite"]),
                    "/document/{document_id}/invite",
                )
                .json_body(&body)
                .map(|o| {
                    // A repeat answers 65629, which is recognised below.
                    o.timeout(self.timeouts.write).retry(RetryPolicy::Safe)
                })
            })
            .await?;
        if !response.status.is_success() {
            let error = map_error(&response, Op::Invite);
            if !(error.reason() == Reason::InviteAlreadyExists
                && response.is_retry_after_possible_delivery)
            {
                return Err(error);
            }
            tracing::info!("retried field invite found its own invite in place");
        }
        // signNow returns no ids for field invites: read them back.
        let mut warnings = Vec::new();
        let document = match self.read_document(ctx, document_id).await {
            Ok(document) => Some(document),
            Err(error) => {
                tracing::warn!(error = %error, "could not read the field invites back");
                warnings.push(ProviderWarning {
                    code: "gateway.readback.failed".into(),
                    message: "the invites were sent, but their ids could not be read back; call GetDocument".into(),
                });
                None
            }
        };
        let now = self.clock.now();
        let invitations = request
            .signers
            .iter()
            .map(|signer| {
                let found = document.as_ref().and_then(|document| {
                    document
                        .field_invites
                        .iter()
                        .rev()
                        .find(|invite| {
                            invite.email.eq_ignore_ascii_case(&signer.email)
                                && (invite.role_id == signer.role_id || invite.role == signer.role)
                                && invite.is_open(now)
                        })
                        .map(|invite| field_invitation(document, invite, now))
                });
                found.unwrap_or_else(|| Invitation {
                    signer: Signer {
                        email: signer.email.clone(),
                        role: signer.role.clone(),
                        role_id: signer.role_id.clone(),
                        ..Signer::default()
                    },
                    document_id: Some(document_id.to_owned()),
                    ..Invitation::default()
                })
            })
            .collect();
        Ok(SendOutcome {
            document_id: Some(document_id.to_owned()),
            invitations,
            warnings,
        })
    }

    pub(super) async fn read_document_for(
        &self,
        ctx: &CallContext,
        document_id: &str,
    ) -> Result<WireDocument> {
        self.read_document(ctx, document_id)
            .await
            .map_err(|e| e.with_default_metadata(MetaKey::DocumentId, document_id))
    }

    pub(super) async fn delete_field_invite(
        &self,
        ctx: &CallContext,
        invite_id: &str,
    ) -> Result<()> {
        let response = self
            .send(ctx, Replay::Safe, || {
                Ok(Outbound::new(
                    "delete_invite",
                    Method::DELETE,
                    self.url(&["field_invite", invite_id]),
                    "/field_invite/{field_invite_id}",
                )
                .timeout(self.timeouts.write)
                .retry(RetryPolicy::Safe))
            })
            .await?;
        if response.status.is_success() {
            return Ok(());
        }
        let error = map_error(&response, Op::DeleteInvite);
        if error.reason() == Reason::InvitationNotFound && response.is_retry_after_possible_delivery
        {
            return Ok(());
        }
        Err(error)
    }

    /// `PUT /invite/{id}/cancel`: how signNow withdraws one freeform invite.
    pub(super) async fn cancel_freeform(&self, ctx: &CallContext, invite_id: &str) -> Result<()> {
        let response = self
            .send(ctx, Replay::Safe, || {
                Outbound::new(
                    "cancel_freeform_invite",
                    Method::PUT,
                    self.url(&["invite", invite_id, "cancel"]),
                    "/invite/{invite_id}/cancel",
                )
                .json_body(&json!({}))
                .map(|o| o.timeout(self.timeouts.write).retry(RetryPolicy::Safe))
            })
            .await?;
        if response.status.is_success() {
            return Ok(());
        }
        let error = map_error(&response, Op::CancelFreeform);
        if error.reason() == Reason::InvitationNotFound && response.is_retry_after_possible_delivery
        {
            return Ok(());
        }
        Err(error)
    }
}

/// Send options after validation, shared by both invite modes.
pub(super) struct SignNowSendOptions<'a> {
    pub(super) from: String,
    pub(super) cc_subject: &'a str,
    pub(super) cc_message: &'a str,
    pub(super) cc_steps: Vec<CcStep<'a>>,
    pub(super) viewers: Vec<Viewer<'a>>,
}

/// The fields both invite modes share.
pub(super) fn common_fields<'a>(
    request: &'a SendRequest,
    options: &SignNowSendOptions<'a>,
) -> InviteCommon<'a> {
    InviteCommon {
        cc: request.cc.iter().map(|c| c.email.as_str()).collect(),
        subject: non_empty(&request.subject),
        message: non_empty(&request.message),
        cc_subject: non_empty(options.cc_subject),
        cc_message: non_empty(options.cc_message),
    }
}

/// One `to[]` entry of a field invite, checked.
pub(super) fn field_recipient(index: usize, signer: &Signer) -> Result<FieldRecipient<'_>> {
    let field = |name: &str| format!("signers[{index}].{name}");
    if !validate::is_email(&signer.email) {
        return Err(GatewayError::invalid_field(
            field("email"),
            "must be an email address",
        ));
    }
    if signer.role.is_empty() && signer.role_id.is_empty() {
        return Err(GatewayError::invalid_field(
            field("role"),
            "a field invite needs the signer's role or role_id",
        ));
    }
    if !signer.role_id.is_empty() {
        validate_id(&field("role_id"), &signer.role_id)?;
    }
    check_text(&field("role"), &signer.role)?;
    validate::reject_set(
        &format!("signers[{index}]"),
        &[
            ("name", !signer.name.is_empty()),
            ("phone", !signer.phone.is_empty()),
        ],
        "is not used by signNow invites (see signnow.prefill_signature_name and signnow.authentication_phone)",
    )?;
    let mut entry = FieldRecipient {
        email: &signer.email,
        // One of the two: the id wins when both are given.
        role_id: non_empty(&signer.role_id),
        role: if signer.role_id.is_empty() {
            Some(&signer.role)
        } else {
            None
        },
        order: signer.order,
        ..FieldRecipient::default()
    };
    let Some(options) = &signer.signnow else {
        return Ok(entry);
    };
    let prefix = format!("signers[{index}].signnow");
    if let Some(days) = options.expiration_days
        && !FIELD_EXPIRATION_DAYS.contains(&days)
    {
        return Err(GatewayError::invalid_field(
            format!("{prefix}.expiration_days"),
            "must be from 3 to 180",
        ));
    }
    entry.expiration_days = options.expiration_days;
    if let Some(reminder) = options.reminder_days {
        let limit = options
            .expiration_days
            .unwrap_or(*FIELD_EXPIRATION_DAYS.end());
        if reminder == 0 || reminder >= limit {
            return Err(GatewayError::invalid_field(
                format!("{prefix}.reminder_days"),
                "must be at least 1 and less than expiration_days",
            ));
        }
        entry.reminder = Some(reminder);
    }
    entry.authentication = authentication(&prefix, options)?;
    for (name, value) in [
        ("subject", &options.subject),
        ("message", &options.message),
        ("signing_instructions", &options.signing_instructions),
        ("prefill_signature_name", &options.prefill_signature_name),
    ] {
        check_text(&format!("{prefix}.{name}"), value)?;
    }
    entry.subject = non_empty(&options.subject);
    entry.message = non_empty(&options.message);
    entry.signing_instructions = non_empty(&options.signing_instructions);
    entry.prefill_signature_name = non_empty(&options.prefill_signature_name);
    if !options.redirect_uri.is_empty() {
        let valid = url::Url::parse(&options.redirect_uri)
            .is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some());
        if !valid {
            return Err(GatewayError::invalid_field(
                format!("{prefix}.redirect_uri"),
                "must be an absolute https URL",
            ));
        }
        entry.redirect_uri = Some(&options.redirect_uri);
    }
    entry.decline_by_signature = options.decline_by_signature.then_some("1");
    // Documented choice (evidence.md N-4): the invite endpoint's own
    // reference page says `reassign` is "whether or not to allow recipients
    // reassign this invite", so "1" allows it. signNow's MCP server
    // describes "1" as "cannot forward"; its Postman examples send "1"
    // without saying. The endpoint page wins until a sandbox shows
    // otherwise.
    entry.reassign = options.reassign.then_some("1");
    entry.force_new_signature = options.force_new_signature.then_some(1);
    Ok(entry)
}

/// The signer check of a field invite or a replacement, checked.
pub(super) fn authentication<'a>(
    prefix: &str,
    options: &'a SignNowSignerOptions,
) -> Result<Authentication<'a>> {
    match options.authentication {
        SignNowAuthentication::None => {
            if !options.password.is_empty() || !options.authentication_phone.is_empty() {
                return Err(GatewayError::invalid_field(
                    format!("{prefix}.authentication_type"),
                    "must be PASSWORD or PHONE when a password or phone is given",
                ));
            }
            Ok(Authentication::default())
        }
        SignNowAuthentication::Password => {
            if options.password.is_empty() {
                return Err(GatewayError::invalid_field(
                    format!("{prefix}.password"),
                    "is required for PASSWORD authentication",
                ));
            }
            Ok(Authentication {
                authentication_type: Some("password"),
                password: Some(&options.password),
                ..Authentication::default()
            })
        }
        SignNowAuthentication::Phone => {
            if !validate::is_e164(&options.authentication_phone) {
                return Err(GatewayError::invalid_field(
                    format!("{prefix}.authentication_phone"),
                    "must be an E.164 number for PHONE authentication",
                ));
            }
            Ok(Authentication {
                authentication_type: Some("phone"),
                phone: Some(&options.authentication_phone),
                method: match options.phone_method {
                    SignNowPhoneMethod::Default => None,
                    SignNowPhoneMethod::Sms => Some("sms"),
                    SignNowPhoneMethod::PhoneCall => Some("phone_call"),
                },
                ..Authentication::default()
            })
        }
    }
}

/// `Some` for a non-empty text: signNow gets no empty keys.
pub(super) fn non_empty(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

pub(super) fn validate_id(field: &str, value: &str) -> Result<()> {
    validate::require_path_safe_id(field, value, MAX_ID_LEN)
}

pub(super) fn check_text(field: &str, value: &str) -> Result<()> {
    if value.chars().count() > MAX_TEXT_LEN || value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(GatewayError::invalid_field(
            field,
            format!("must be at most {MAX_TEXT_LEN} characters without control characters"),
        ));
    }
    Ok(())
}
