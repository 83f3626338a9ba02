//! ReplaceSigner as a resumable saga: delete, create with `is_replace`,
//! trigger; progress stored under the request id.

use super::*;

impl SignNow {
    pub(super) async fn replace(
        &self,
        ctx: &CallContext,
        request: ReplaceSignerRequest,
    ) -> Result<Invitation> {
        let Some(request_id) = ctx.request_id.as_deref() else {
            return Err(GatewayError::invalid_field(
                "request_id",
                "is required: a replacement takes three signNow calls, and a retry with the same id resumes where one stopped",
            ));
        };
        validate_id("document_id", &request.document_id)?;
        validate_id("invitation_id", &request.invitation_id)?;
        let step2 = replace_body(&request)?;
        // Through a JSON value (sorted keys), so the fingerprint does not
        // depend on the body type's field order.
        let fingerprint = serde_json::to_string(&json!({
            "document": request.document_id,
            "invite": request.invitation_id,
            "body": serde_json::to_value(&step2).unwrap_or_default(),
        }))
        .unwrap_or_default();

        let key = self.saga_key(request_id);
        let lock_key = format!("{key}:running");
        if !self
            .store
            .claim(&lock_key, b"1".to_vec(), SAGA_LOCK_TTL)
            .await?
        {
            return Err(GatewayError::new(
                Reason::RequestInProgress,
                "a replacement with this request_id is running",
            )
            .with_retry_after(Duration::from_secs(2)));
        }
        let outcome = async {
            let record = match self.load_saga(&key).await? {
                Some(record) if record.fingerprint != fingerprint => {
                    return Err(GatewayError::new(
                        Reason::RequestIdReused,
                        "this request_id was used for a different replacement",
                    )
                    .with_field_violation("request_id", "was used for a different request"));
                }
                Some(record) => {
                    tracing::info!(
                        completed_steps = record.completed_steps.completed(),
                        "resuming replace-signer saga"
                    );
                    record
                }
                None => {
                    let role_id = self.check_replaceable(ctx, &request).await?;
                    let record = SagaRecord {
                        fingerprint: fingerprint.clone(),
                        old_invite_id: request.invitation_id.clone(),
                        role_id,
                        completed_steps: SagaStep::Validated,
                        new_invite_id: None,
                    };
                    self.save_saga(&key, &record).await?;
                    record
                }
            };
            let body = ReplaceBody {
                role_id: Some(record.role_id.clone()),
                ..step2.clone()
            };
            self.run_saga(ctx, &key, record, &request, &body).await
        }
        .await;
        if let Err(error) = self.store.delete(&lock_key).await {
            tracing::warn!(error = %error, "could not release the saga lock");
        }
        outcome
    }

    // === replace signer saga ===

    pub(super) fn saga_key(&self, request_id: &str) -> String {
        format!(
            "saga:replace_signer:{}:{}:{request_id}",
            KIND.as_str(),
            self.account.name
        )
    }

    pub(super) async fn load_saga(&self, key: &str) -> Result<Option<SagaRecord>> {
        let Some(bytes) = self.store.get(key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            GatewayError::internal("saga progress record is unreadable").with_source(e)
        })
    }

    pub(super) async fn save_saga(&self, key: &str, record: &SagaRecord) -> Result<()> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| GatewayError::internal("could not encode saga progress").with_source(e))?;
        self.store.put(key, bytes, SAGA_TTL).await
    }

    pub(super) async fn run_saga(
        &self,
        ctx: &CallContext,
        key: &str,
        mut record: SagaRecord,
        request: &ReplaceSignerRequest,
        step2_body: &ReplaceBody<'_>,
    ) -> Result<Invitation> {
        let resumed_at = record.completed_steps;
        if record.completed_steps == SagaStep::Validated {
            let old = record.old_invite_id.clone();
            let response = self
                .send(ctx, Replay::Safe, || {
                    Ok(Outbound::new(
                        "replace_delete_invite",
                        Method::DELETE,
                        self.url(&["field_invite", &old]),
                        "/field_invite/{field_invite_id}",
                    )
                    .timeout(self.timeouts.write)
                    .retry(RetryPolicy::Safe))
                })
                .await?;
            if !response.status.is_success() {
                let error = map_error(&response, Op::DeleteInvite);
                // Gone already after an attempt that may have arrived: done.
                if !(error.reason() == Reason::InvitationNotFound
                    && response.is_retry_after_possible_delivery)
                {
                    return Err(error);
                }
            }
            record.completed_steps = SagaStep::Deleted;
            self.save_saga(key, &record).await?;
        }
        if record.completed_steps == SagaStep::Deleted {
            let outcome = self
                .send(ctx, Replay::Safe, || {
                    Outbound::new(
                        "replace_create_invite",
                        Method::POST,
                        self.url(&["field_invite"]),
                        "/field_invite",
                    )
                    .json_body(step2_body)
                    .map(|o| o.timeout(self.timeouts.write).retry(RetryPolicy::Safe))
                })
                .await;
            let response = outcome.map_err(|e| incomplete(e, &record))?;
            if response.status.is_success() {
                let created: FreeformCreated = response
                    .json()
                    .map_err(|_| incomplete(transport::unrecognized(KIND, &response), &record))?;
                record.new_invite_id = Some(created.id);
            } else {
                let error = map_error(&response, Op::ReplaceCreate);
                let repeated =
                    resumed_at == SagaStep::Deleted || response.is_retry_after_possible_delivery;
                // "Invite already exists." on a resumed step 2 is our own.
                if !(error.reason() == Reason::InviteAlreadyExists && repeated) {
                    return Err(incomplete(error, &record));
                }
                tracing::info!("resumed step 2 found the replacement invite in place");
            }
            record.completed_steps = SagaStep::Created;
            self.save_saga(key, &record).await?;
        }
        if record.completed_steps == SagaStep::Created {
            let document_id = request.document_id.as_str();
            let outcome = self
                .send(ctx, Replay::Safe, || {
                    Ok(Outbound::new(
                        "replace_trigger_invite",
                        Method::POST,
                        self.url(&["document", document_id, "trigger_fieldinvite"]),
                        "/document/{document_id}/trigger_fieldinvite",
                    )
                    .timeout(self.timeouts.write)
                    // Whether a re-trigger resends email is unconfirmed.
                    .retry(RetryPolicy::OnlyBeforeSent))
                })
                .await;
            let response = outcome.map_err(|e| incomplete(e, &record))?;
            if !response.status.is_success() {
                let error = map_error(&response, Op::Trigger);
                // "Field invite missing" on a resumed step 3: an earlier
                // trigger may have gone through; the document tells.
                let done = resumed_at == SagaStep::Created
                    && error.reason() == Reason::InvalidInvitationState
                    && self.replacement_is_live(ctx, request).await;
                if !done {
                    return Err(incomplete(error, &record));
                }
            }
            record.completed_steps = SagaStep::Triggered;
            self.save_saga(key, &record).await?;
        }
        self.replacement(ctx, request, record.new_invite_id.as_deref())
            .await
    }

    pub(super) async fn replacement_is_live(
        &self,
        ctx: &CallContext,
        request: &ReplaceSignerRequest,
    ) -> bool {
        matches!(
            self.replacement(ctx, request, None).await,
            Ok(invitation) if !invitation.id.is_empty()
        )
    }

    /// The new invite as the document shows it now.
    pub(super) async fn replacement(
        &self,
        ctx: &CallContext,
        request: &ReplaceSignerRequest,
        new_invite_id: Option<&str>,
    ) -> Result<Invitation> {
        let fallback = || Invitation {
            id: new_invite_id.unwrap_or_default().to_owned(),
            signer: Signer {
                email: request.new_signer.email.clone(),
                ..Signer::default()
            },
            state: InvitationState::Unspecified,
            document_id: Some(request.document_id.clone()),
            ..Invitation::default()
        };
        let document = match self.read_document(ctx, &request.document_id).await {
            Ok(document) => document,
            Err(error) => {
                tracing::warn!(error = %error, "replacement done; could not read it back");
                return Ok(fallback());
            }
        };
        let now = self.clock.now();
        let found = document
            .field_invites
            .iter()
            .rev()
            .find(|invite| match new_invite_id {
                Some(id) => invite.id == id,
                None => {
                    invite.email.eq_ignore_ascii_case(&request.new_signer.email)
                        && invite.is_open(now)
                }
            });
        Ok(found
            .map(|invite| field_invitation(&document, invite, now))
            .unwrap_or_else(fallback))
    }
    /// Step 0 of the saga: the invite exists on the document and is still
    /// open; returns its role id (checked against the caller's).
    pub(super) async fn check_replaceable(
        &self,
        ctx: &CallContext,
        request: &ReplaceSignerRequest,
    ) -> Result<String> {
        let document = self
            .read_document(ctx, &request.document_id)
            .await
            .map_err(|e| e.with_default_metadata(MetaKey::DocumentId, &request.document_id))?;
        let Some(invite) = document
            .field_invites
            .iter()
            .find(|invite| invite.id == request.invitation_id)
        else {
            return Err(GatewayError::new(
                Reason::InvitationNotFound,
                "the document has no field invite with this id",
            )
            .with_provider(KIND)
            .with_metadata(MetaKey::InvitationId, &request.invitation_id)
            .with_missing_resource("field_invite", &request.invitation_id));
        };
        if !invite.is_open(self.clock.now()) {
            return Err(GatewayError::new(
                Reason::InvalidInvitationState,
                "only a created or pending invite can get a new signer",
            )
            .with_provider(KIND)
            .with_metadata(MetaKey::Status, &invite.status)
            .with_metadata(MetaKey::InvitationId, &request.invitation_id));
        }
        let signer = &request.new_signer;
        if !signer.role_id.is_empty() && signer.role_id != invite.role_id {
            return Err(GatewayError::invalid_field(
                "new_signer.role_id",
                "is not the role of the invite being replaced",
            ));
        }
        if !signer.role.is_empty() && signer.role != invite.role {
            return Err(GatewayError::invalid_field(
                "new_signer.role",
                "is not the role of the invite being replaced",
            ));
        }
        if invite.role_id.is_empty() {
            return Err(GatewayError::new(
                Reason::ProviderUnrecognizedResponse,
                "signNow listed the invite without a role id",
            )
            .with_provider(KIND));
        }
        Ok(invite.role_id.clone())
    }
}

/// Step 2's body (`POST /field_invite`) without `role_id`, checked.
pub(super) fn replace_body(request: &ReplaceSignerRequest) -> Result<ReplaceBody<'_>> {
    let signer = &request.new_signer;
    if !validate::is_email(&signer.email) {
        return Err(GatewayError::invalid_field(
            "new_signer.email",
            "must be an email address",
        ));
    }
    if !signer.role_id.is_empty() {
        validate_id("new_signer.role_id", &signer.role_id)?;
    }
    validate::reject_set(
        "new_signer",
        &[
            ("name", !signer.name.is_empty()),
            ("phone", !signer.phone.is_empty()),
            ("order", signer.order.is_some()),
        ],
        "is not used when replacing a signNow signer",
    )?;
    let mut body = ReplaceBody {
        email: &signer.email,
        role_id: None,
        is_replace: request.keep_invite_settings,
        expiration_days: None,
        reminder: None,
        decline_by_signature: None,
        authentication: Authentication::default(),
    };
    if let Some(options) = &signer.signnow {
        let prefix = "new_signer.signnow";
        validate::reject_set(
            prefix,
            &[
                ("subject", !options.subject.is_empty()),
                ("message", !options.message.is_empty()),
                ("redirect_uri", !options.redirect_uri.is_empty()),
                ("reassign", options.reassign),
                ("force_new_signature", options.force_new_signature),
                (
                    "signing_instructions",
                    !options.signing_instructions.is_empty(),
                ),
                (
                    "prefill_signature_name",
                    !options.prefill_signature_name.is_empty(),
                ),
            ],
            "is not accepted by signNow when replacing a signer",
        )?;
        if let Some(days) = options.expiration_days {
            if days == 0 || days > REPLACE_MAX_DAYS {
                return Err(GatewayError::invalid_field(
                    format!("{prefix}.expiration_days"),
                    "must be from 1 to 30 when replacing a signer",
                ));
            }
            body.expiration_days = Some(days);
        }
        if let Some(days) = options.reminder_days {
            if days == 0 || days > REPLACE_MAX_DAYS {
                return Err(GatewayError::invalid_field(
                    format!("{prefix}.reminder_days"),
                    "must be from 1 to 30 when replacing a signer",
                ));
            }
            body.reminder = Some(days);
        }
        body.decline_by_signature = options.decline_by_signature.then_some(1);
        body.authentication = authentication(prefix, options)?;
    }
    Ok(body)
}

/// The last step of a replacement that is done. Stored as its number
/// (0..=3), as records written before this type existed are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub(super) enum SagaStep {
    /// Checked, nothing sent yet.
    Validated,
    /// Step 1: the old invite is deleted.
    Deleted,
    /// Step 2: the replacement invite exists, not yet sent.
    Created,
    /// Step 3: the replacement invite is triggered; the saga is done.
    Triggered,
}

impl SagaStep {
    /// The steps done so far, for `completedSteps`.
    pub(super) fn completed(self) -> &'static str {
        match self {
            SagaStep::Validated => "",
            SagaStep::Deleted => "delete",
            SagaStep::Created => "delete,create",
            SagaStep::Triggered => "delete,create,trigger",
        }
    }

    /// The step that runs next, for `failedStep` when it fails.
    pub(super) fn next_step(self) -> &'static str {
        match self {
            SagaStep::Validated => "delete",
            SagaStep::Deleted => "create",
            SagaStep::Created | SagaStep::Triggered => "trigger",
        }
    }
}

impl From<SagaStep> for u8 {
    fn from(step: SagaStep) -> u8 {
        match step {
            SagaStep::Validated => 0,
            SagaStep::Deleted => 1,
            SagaStep::Created => 2,
            SagaStep::Triggered => 3,
        }
    }
}

impl TryFrom<u8> for SagaStep {
    type Error = String;

    fn try_from(value: u8) -> std::result::Result<Self, String> {
        match value {
            0 => Ok(SagaStep::Validated),
            1 => Ok(SagaStep::Deleted),
            2 => Ok(SagaStep::Created),
            3 => Ok(SagaStep::Triggered),
            other => Err(format!("unknown saga step {other}")),
        }
    }
}

/// Progress of one replacement, stored under its request id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SagaRecord {
    pub(super) fingerprint: String,
    pub(super) old_invite_id: String,
    pub(super) role_id: String,
    pub(super) completed_steps: SagaStep,
    pub(super) new_invite_id: Option<String>,
}

/// A failed later step: the caller learns what is done and resumes with
/// the same request id.
pub(super) fn incomplete(error: GatewayError, record: &SagaRecord) -> GatewayError {
    let completed = record.completed_steps.completed();
    let failed = record.completed_steps.next_step();
    let retry_after = error.retry_after().unwrap_or(Duration::from_secs(1));
    tracing::warn!(
        completed_steps = completed,
        failed_step = failed,
        error = %error,
        "replace-signer saga stopped part way"
    );
    error
        .reclassify(
            Reason::ReplaceSignerIncomplete,
            "the signer replacement stopped part way; retry with the same request_id to resume",
        )
        .with_metadata(MetaKey::CompletedSteps, completed)
        .with_metadata(MetaKey::FailedStep, failed)
        .with_metadata(MetaKey::RoleId, &record.role_id)
        .with_retry_after(retry_after)
}

#[cfg(test)]
mod saga_step_tests {
    use super::*;

    #[test]
    fn steps_round_trip_through_their_stored_numbers() {
        for step in [
            SagaStep::Validated,
            SagaStep::Deleted,
            SagaStep::Created,
            SagaStep::Triggered,
        ] {
            let stored = serde_json::to_string(&step).unwrap();
            assert_eq!(serde_json::from_str::<SagaStep>(&stored).unwrap(), step);
        }
        assert_eq!(serde_json::to_string(&SagaStep::Created).unwrap(), "2");
        assert!(serde_json::from_str::<SagaStep>("4").is_err());
        assert_eq!(SagaStep::Deleted.completed(), "delete");
        assert_eq!(SagaStep::Deleted.next_step(), "create");
    }
}
