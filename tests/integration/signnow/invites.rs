use super::*;

#[tokio::test]
async fn field_invite_sends_roles_and_reads_the_invite_ids_back() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant", "Landlord"]);
    let mut request = field_send(
        &doc.id,
        vec![
            pb::Signer {
                email: "tenant@example.com".into(),
                role_id: doc.role_ids[0].clone(),
                order: 1,
                signnow: Some(pb::SignNowSignerOptions {
                    expiration_days: 14,
                    reminder_days: 3,
                    authentication_type: pb::SignNowAuthenticationType::Phone as i32,
                    authentication_phone: "+14155550100".into(),
                    phone_method: pb::SignNowPhoneMethod::Sms as i32,
                    decline_by_signature: true,
                    redirect_uri: "https://example.com/done".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            role_signer("landlord@example.com", "Landlord"),
        ],
    );
    request.cc = vec![pb::CcRecipient {
        name: "Legal".into(),
        email: "legal@example.com".into(),
    }];
    if let Some(pb::send_invitation_request::ProviderOptions::Signnow(options)) =
        request.provider_options.as_mut()
    {
        options.cc_steps = vec![pb::SignNowCcStep {
            name: "Ops".into(),
            email: "ops@example.com".into(),
            step: 1,
        }];
        options.viewers = vec![pb::SignNowViewer {
            email: "viewer@example.com".into(),
            role: "Viewer".into(),
            order: 2,
        }];
    }
    let response = gateway
        .client
        .send_invitation(request)
        .await
        .unwrap()
        .into_inner();

    let tokens = token_calls(&gateway);
    assert_eq!(tokens.len(), 1);
    let credentials = gateway.sim.config().credentials.clone();
    assert_eq!(
        tokens[0].header("authorization"),
        Some(format!("Basic {}", credentials.signnow_basic_token).as_str())
    );
    assert_eq!(
        tokens[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let token_form = form(&tokens[0]);
    assert_eq!(token_form["grant_type"], "password");
    assert_eq!(token_form["username"], credentials.signnow_username);
    assert_eq!(token_form["password"], credentials.signnow_password);

    let calls = api_calls(&gateway);
    assert_eq!(calls.len(), 2, "the invite, then the read-back");
    assert_eq!(calls[0].method, Method::POST);
    assert_eq!(calls[0].path, format!("/document/{}/invite", doc.id));
    assert!(
        calls[0]
            .header("authorization")
            .is_some_and(|t| t.starts_with("Bearer ") && t.len() == 71)
    );
    assert_eq!(
        calls[0].json(),
        serde_json::json!({
            "to": [
                {
                    "email": "tenant@example.com",
                    "role_id": doc.role_ids[0],
                    "order": 1,
                    "expiration_days": 14,
                    "reminder": 3,
                    "authentication_type": "phone",
                    "phone": "+14155550100",
                    "method": "sms",
                    "redirect_uri": "https://example.com/done",
                    "decline_by_signature": "1",
                },
                {"email": "landlord@example.com", "role": "Landlord"},
            ],
            "from": credentials.signnow_username,
            "cc": ["legal@example.com"],
            "cc_step": [{"name": "Ops", "email": "ops@example.com", "step": 1}],
            "viewers": [{"email": "viewer@example.com", "role": "Viewer", "order": 2}],
            "subject": "Lease for signing",
            "message": "Please sign",
        })
    );
    assert_eq!(calls[1].method, Method::GET);
    assert_eq!(calls[1].path, format!("/document/{}", doc.id));

    let stored = gateway.sim.signnow().documents[&doc.id].clone();
    let ids: Vec<&str> = response.invitations.iter().map(|i| i.id.as_str()).collect();
    let stored_ids: Vec<&str> = stored.field_invites.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, stored_ids);
    assert_eq!(
        response.invitations[0].state,
        pb::InvitationState::Pending as i32
    );
    assert!(response.invitations[0].is_signers_turn);
    assert_eq!(
        response.invitations[1].state,
        pb::InvitationState::Created as i32
    );
    assert_eq!(
        response.invitations[1].signer.as_ref().unwrap().role,
        "Landlord"
    );
    assert!(response.invitations[0].expire_time.is_some());
}

#[tokio::test]
async fn freeform_invite_has_one_signer_and_returns_its_id() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &[]);
    let mut request = field_send(&doc.id, vec![role_signer("solo@example.com", "")]);
    if let Some(pb::send_invitation_request::ProviderOptions::Signnow(options)) =
        request.provider_options.as_mut()
    {
        options.mode = pb::SignNowInviteMode::Freeform as i32;
    }
    let response = gateway
        .client
        .send_invitation(request)
        .await
        .unwrap()
        .into_inner();
    let stored = gateway.sim.signnow().documents[&doc.id].clone();
    assert_eq!(response.invitations.len(), 1);
    // The id signNow hands out is the row's unique_id, not its row id.
    assert_eq!(response.invitations[0].id, stored.requests[0].unique_id);
    assert_ne!(stored.requests[0].unique_id, stored.requests[0].id);
    let calls = api_calls(&gateway);
    assert_eq!(calls.len(), 1, "no read-back for a freeform invite");
    let body = calls[0].json();
    assert_eq!(body["to"], "solo@example.com", "`to` is a string");
    assert_eq!(body["subject"], "Lease for signing");

    let document = gateway
        .client
        .get_document(pb::GetDocumentRequest {
            provider: SIGNNOW,
            account: String::new(),
            document_id: doc.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    assert_eq!(document.invitations[0].id, stored.requests[0].unique_id);
    assert_eq!(
        document.invitations[0].state,
        pb::InvitationState::Pending as i32
    );
    assert!(document.invitations[0].is_signers_turn);
}

/// Freeform rows have no status: signed from `signature_id`, cancelled from
/// `canceled`; DeleteInvitation cancels them with `PUT /invite/{id}/cancel`;
/// resend is refused before any call when the document shows the kind.
#[tokio::test]
async fn freeform_invites_are_read_cancelled_and_never_resent() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &[]);
    let first = gateway
        .client
        .send_invitation(freeform_send(&doc.id, "one@example.com"))
        .await
        .unwrap()
        .into_inner()
        .invitations
        .remove(0);
    let second = gateway
        .client
        .send_invitation(freeform_send(&doc.id, "two@example.com"))
        .await
        .unwrap()
        .into_inner()
        .invitations
        .remove(0);
    let sent = api_calls(&gateway);
    assert!(
        sent.iter().all(|c| c.json()["to"].is_string()),
        "freeform by inference"
    );

    assert!(gateway.sim.signnow().sign_freeform_invite(&first.id));
    let document = gateway
        .client
        .get_document(get_document(&doc.id))
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    let state = |id: &str| {
        document
            .invitations
            .iter()
            .find(|i| i.id == id)
            .map(|i| (i.state, i.is_signers_turn))
    };
    assert_eq!(
        state(&first.id),
        Some((pb::InvitationState::Signed as i32, false))
    );
    assert_eq!(
        state(&second.id),
        Some((pb::InvitationState::Pending as i32, true))
    );
    assert_eq!(document.state, pb::DocumentState::InProgress as i32);

    // Resend of a freeform id, with the document: refused, nothing sent.
    gateway.sim.clear_requests();
    let status = gateway
        .client
        .resend_invitation(pb::ResendInvitationRequest {
            provider: SIGNNOW,
            invitation_id: second.id.clone(),
            document_id: doc.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "INVITATION_NOT_RESENDABLE");
    assert_eq!(info.metadata["inviteKind"], "freeform");
    assert!(api_calls(&gateway).iter().all(|c| c.method == "GET"));

    // Delete with the document: the freeform cancel endpoint, directly.
    gateway.sim.clear_requests();
    gateway
        .client
        .delete_invitation(pb::DeleteInvitationRequest {
            provider: SIGNNOW,
            invitation_id: second.id.clone(),
            document_id: doc.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let calls: Vec<(String, String)> = api_calls(&gateway)
        .iter()
        .map(|c| (c.method.to_string(), c.path.clone()))
        .collect();
    assert_eq!(
        calls,
        vec![
            ("GET".to_owned(), format!("/document/{}", doc.id)),
            ("PUT".to_owned(), format!("/invite/{}/cancel", second.id)),
        ]
    );
    let document = gateway
        .client
        .get_document(get_document(&doc.id))
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    let cancelled = document
        .invitations
        .iter()
        .find(|i| i.id == second.id)
        .unwrap();
    assert_eq!(cancelled.state, pb::InvitationState::Cancelled as i32);

    // Delete without the document: field invite first, then freeform.
    let third = gateway
        .client
        .send_invitation(freeform_send(&doc.id, "three@example.com"))
        .await
        .unwrap()
        .into_inner()
        .invitations
        .remove(0);
    gateway.sim.clear_requests();
    gateway
        .client
        .delete_invitation(pb::DeleteInvitationRequest {
            provider: SIGNNOW,
            invitation_id: third.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let paths: Vec<String> = api_calls(&gateway).iter().map(|c| c.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            format!("/field_invite/{}", third.id),
            format!("/invite/{}/cancel", third.id),
        ]
    );
    assert!(
        gateway.sim.signnow().documents[&doc.id]
            .requests
            .iter()
            .any(|r| r.unique_id == third.id && r.canceled)
    );

    // An id that is neither kind stays NOT_FOUND.
    let status = gateway
        .client
        .delete_invitation(pb::DeleteInvitationRequest {
            provider: SIGNNOW,
            invitation_id: "0123456789abcdef0123456789abcdef01234567".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(common::error_info(&status).reason, "INVITATION_NOT_FOUND");
}

/// Field invite states from the whole row: an invite past its
/// `expiration_time` is EXPIRED though signNow still says pending; a decline
/// shows in `is_full_declined`/`declined[]`; the order comes from the role.
#[tokio::test]
async fn field_invite_states_follow_expiry_and_declines() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant", "Landlord"]);
    let mut request = field_send(
        &doc.id,
        vec![
            role_signer("tenant@example.com", "Tenant"),
            role_signer("landlord@example.com", "Landlord"),
        ],
    );
    request.provider_options = None; // roles given: a field invite
    request.signers[0].signnow = Some(pb::SignNowSignerOptions {
        expiration_days: 3,
        ..Default::default()
    });
    let invites = gateway
        .client
        .send_invitation(request)
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert_eq!(invites.len(), 2);
    assert!(
        api_calls(&gateway)[0].json()["to"].is_array(),
        "field invite by inference"
    );
    assert_eq!(invites[0].signer.as_ref().unwrap().order, 1);
    assert_eq!(invites[1].signer.as_ref().unwrap().order, 2);
    let (tenant, landlord) = (invites[0].id.clone(), invites[1].id.clone());

    // Four days on, the tenant's invite has expired; signNow's status word
    // stays "pending".
    gateway
        .sim
        .clock()
        .advance(Duration::from_secs(4 * 24 * 3600));
    let document = gateway
        .client
        .get_document(get_document(&doc.id))
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    let first = document
        .invitations
        .iter()
        .find(|i| i.id == tenant)
        .unwrap();
    assert_eq!(first.provider_status, "pending");
    assert_eq!(first.state, pb::InvitationState::Expired as i32);
    assert!(!first.is_signers_turn);

    // A resend with the document is refused before signNow is called.
    gateway.sim.clear_requests();
    let status = gateway
        .client
        .resend_invitation(pb::ResendInvitationRequest {
            provider: SIGNNOW,
            invitation_id: tenant.clone(),
            document_id: doc.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "INVITATION_NOT_RESENDABLE");
    assert_eq!(info.metadata["state"], "EXPIRED");
    assert!(api_calls(&gateway).iter().all(|c| c.method == "GET"));

    // The landlord declines: REJECTED, and so is the document.
    assert!(
        gateway
            .sim
            .signnow()
            .decline_field_invite(&landlord, "wrong rent")
    );
    let document = gateway
        .client
        .get_document(get_document(&doc.id))
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    let second = document
        .invitations
        .iter()
        .find(|i| i.id == landlord)
        .unwrap();
    assert_eq!(second.state, pb::InvitationState::Rejected as i32);
    assert_eq!(document.state, pb::DocumentState::Rejected as i32);
}

/// The resend id is a per-account setting (signNow's material conflicts);
/// either id from the caller is turned into the configured one when the
/// document is given, and a failed resend is never retried with the other.
#[tokio::test]
async fn resend_sends_the_configured_kind_of_id() {
    use esign_gateway::{config::SignNowResendId, simulator::signnow::ResendIdKind};
    for setting in [
        SignNowResendId::FieldInviteId,
        SignNowResendId::FieldRequestId,
    ] {
        let mut gateway = common::start_with(|config| {
            for account in &mut config.accounts {
                account.signnow_resend_id = setting;
            }
        })
        .await;
        gateway.sim.signnow().resend_id_kind = match setting {
            SignNowResendId::FieldInviteId => ResendIdKind::FieldInviteId,
            SignNowResendId::FieldRequestId => ResendIdKind::FieldRequestId,
        };
        let doc = seed(&gateway, &["Tenant"]);
        let invite = gateway
            .client
            .send_invitation(field_send(
                &doc.id,
                vec![role_signer("t@example.com", "Tenant")],
            ))
            .await
            .unwrap()
            .into_inner()
            .invitations
            .remove(0);
        let stored = gateway.sim.signnow().documents[&doc.id].field_invites[0].clone();
        assert_eq!(stored.id, invite.id);
        let expected = match setting {
            SignNowResendId::FieldInviteId => stored.id.clone(),
            SignNowResendId::FieldRequestId => stored.field_request_id.clone(),
        };
        // The caller may hold either id.
        for given in [stored.id.clone(), stored.field_request_id.clone()] {
            gateway.sim.clear_requests();
            let invitation = gateway
                .client
                .resend_invitation(pb::ResendInvitationRequest {
                    provider: SIGNNOW,
                    invitation_id: given.clone(),
                    document_id: doc.id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .invitation
                .unwrap();
            assert_eq!(invitation.id, stored.id);
            let puts: Vec<RecordedRequest> = api_calls(&gateway)
                .into_iter()
                .filter(|c| c.method == "PUT")
                .collect();
            assert_eq!(puts.len(), 1, "{setting:?}");
            assert_eq!(puts[0].path, format!("/fieldinvite/{expected}/resend"));
            assert!(puts[0].json()["client_timestamp"].is_i64());
        }
        // Without the document the id goes as given; the other kind fails
        // once, NOT_FOUND, and is not tried again with another id.
        let other = match setting {
            SignNowResendId::FieldInviteId => stored.field_request_id.clone(),
            SignNowResendId::FieldRequestId => stored.id.clone(),
        };
        gateway.sim.clear_requests();
        let status = gateway
            .client
            .resend_invitation(pb::ResendInvitationRequest {
                provider: SIGNNOW,
                invitation_id: other.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        assert!(common::error_info(&status).metadata.contains_key("hint"));
        let calls = api_calls(&gateway);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].path, format!("/fieldinvite/{other}/resend"));
    }
}

/// 65582 means a missing document only when its text says so.
#[tokio::test]
async fn code_65582_is_not_always_a_missing_document() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant"]);
    gateway.sim.inject(
        Fault::new(
            ProviderKind::SignNow,
            "/invite",
            FaultKind::json(
                400,
                &serde_json::json!({"errors": [{"code": 65582, "message": "unable to find document group template"}]}),
            ),
        )
        .on(Method::POST)
        .times(1),
    );
    let status = gateway
        .client
        .send_invitation(field_send(
            &doc.id,
            vec![role_signer("t@example.com", "Tenant")],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        common::error_info(&status).reason,
        "PROVIDER_REJECTED_REQUEST"
    );

    let status = gateway
        .client
        .get_document(get_document("0123456789abcdef0123456789abcdef01234567"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(common::error_info(&status).reason, "DOCUMENT_NOT_FOUND");
}

/// A signed field invite reads SIGNED and completes the document; the next
/// step's signer is then the one whose turn it is.
#[tokio::test]
async fn signing_moves_the_turn_and_completes_the_document() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant", "Landlord"]);
    let invites = send_field_invites(&mut gateway, &doc).await;
    let read = |gateway: &mut common::TestGateway| {
        let mut client = gateway.client.clone();
        let id = doc.id.clone();
        async move {
            client
                .get_document(get_document(&id))
                .await
                .unwrap()
                .into_inner()
                .document
                .unwrap()
        }
    };
    assert!(gateway.sim.signnow().sign_field_invite(&invites[0].id));
    let document = read(&mut gateway).await;
    let states: Vec<(i32, bool)> = document
        .invitations
        .iter()
        .map(|i| (i.state, i.is_signers_turn))
        .collect();
    assert_eq!(
        states,
        vec![
            (pb::InvitationState::Signed as i32, false),
            (pb::InvitationState::Pending as i32, true),
        ]
    );
    assert_eq!(document.state, pb::DocumentState::InProgress as i32);
    assert!(gateway.sim.signnow().sign_field_invite(&invites[1].id));
    let document = read(&mut gateway).await;
    assert_eq!(document.state, pb::DocumentState::Completed as i32);
}
