use super::*;

#[tokio::test]
async fn bad_input_is_refused_before_any_signnow_call() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant", "Landlord"]);
    let good = || field_send(&doc.id, vec![role_signer("tenant@example.com", "Tenant")]);
    let with_signer_options = |options: pb::SignNowSignerOptions| {
        let mut request = good();
        request.signers[0].signnow = Some(options);
        request
    };
    let mut cases: Vec<(pb::SendInvitationRequest, &str)> = Vec::new();
    let mut bad_email = good();
    bad_email.signers[0].email = "tenant".into();
    cases.push((bad_email, "signers[0].email"));
    let mut no_role = good();
    no_role.signers[0].role.clear();
    cases.push((no_role, "signers[0].role"));
    let mut same_role = good();
    same_role
        .signers
        .push(role_signer("other@example.com", "Tenant"));
    cases.push((same_role, "signers[1].role"));
    cases.push((
        with_signer_options(pb::SignNowSignerOptions {
            authentication_type: pb::SignNowAuthenticationType::Password as i32,
            ..Default::default()
        }),
        "signers[0].signnow.password",
    ));
    cases.push((
        with_signer_options(pb::SignNowSignerOptions {
            authentication_type: pb::SignNowAuthenticationType::Phone as i32,
            authentication_phone: "555".into(),
            ..Default::default()
        }),
        "signers[0].signnow.authentication_phone",
    ));
    cases.push((
        with_signer_options(pb::SignNowSignerOptions {
            expiration_days: 2,
            ..Default::default()
        }),
        "signers[0].signnow.expiration_days",
    ));
    cases.push((
        with_signer_options(pb::SignNowSignerOptions {
            redirect_uri: "javascript:alert(1)".into(),
            ..Default::default()
        }),
        "signers[0].signnow.redirect_uri",
    ));
    let mut unknown_mode = good();
    unknown_mode.provider_options = Some(pb::send_invitation_request::ProviderOptions::Signnow(
        pb::SignNowOptions {
            mode: 7,
            ..Default::default()
        },
    ));
    cases.push((unknown_mode, "signnow.mode"));
    let mut unknown_authentication = good();
    unknown_authentication.signers[0].signnow = Some(pb::SignNowSignerOptions {
        authentication_type: 9,
        ..Default::default()
    });
    cases.push((
        unknown_authentication,
        "signers[0].signnow.authentication_type",
    ));
    let mut unknown_phone_method = good();
    unknown_phone_method.signers[0].signnow = Some(pb::SignNowSignerOptions {
        phone_method: 5,
        ..Default::default()
    });
    cases.push((unknown_phone_method, "signers[0].signnow.phone_method"));
    let mut bad_from = good();
    if let Some(pb::send_invitation_request::ProviderOptions::Signnow(o)) =
        bad_from.provider_options.as_mut()
    {
        o.from = "me".into();
    }
    cases.push((bad_from, "signnow.from"));
    let mut path_trick = good();
    path_trick.document_id = "../user".into();
    cases.push((path_trick, "document_id"));
    let mut freeform_two = good();
    freeform_two
        .signers
        .push(role_signer("b@example.com", "Landlord"));
    if let Some(pb::send_invitation_request::ProviderOptions::Signnow(o)) =
        freeform_two.provider_options.as_mut()
    {
        o.mode = pb::SignNowInviteMode::Freeform as i32;
    }
    cases.push((freeform_two, "signers"));
    let mut reference = good();
    reference.reference = "R-1".into();
    cases.push((reference, "reference"));

    for (request, field) in cases {
        let status = gateway.client.send_invitation(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert_eq!(
            common::field_violations(&status),
            vec![field.to_owned()],
            "{field}"
        );
    }
    let status = gateway
        .client
        .cancel_invitations(pb::CancelInvitationsRequest {
            provider: SIGNNOW,
            document_id: doc.id.clone(),
            reason: "   ".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(common::field_violations(&status), vec!["reason".to_owned()]);
    assert!(
        gateway.sim.requests().is_empty(),
        "not even a token request"
    );
}

#[tokio::test]
async fn resend_follows_routing_and_expiry() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant", "Landlord"]);
    let invitations = send_field_invites(&mut gateway, &doc).await;
    let resend = |id: &str| pb::ResendInvitationRequest {
        provider: SIGNNOW,
        invitation_id: id.to_owned(),
        ..Default::default()
    };
    let ok = gateway
        .client
        .resend_invitation(resend(&invitations[0].id))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(ok.id, invitations[0].id);
    let last = api_calls(&gateway).pop().unwrap();
    assert_eq!(last.method, Method::PUT);
    assert_eq!(
        last.path,
        format!("/fieldinvite/{}/resend", invitations[0].id)
    );

    let status = gateway
        .client
        .resend_invitation(resend(&invitations[1].id))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "INVALID_INVITATION_STATE");
    assert_eq!(info.metadata["providerCode"], "65536");
    assert_eq!(info.metadata["providerHttpStatus"], "400");

    let status = gateway
        .client
        .resend_invitation(resend("0123456789abcdef0123456789abcdef01234567"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(common::error_info(&status).reason, "INVITATION_NOT_FOUND");

    let batch = gateway
        .client
        .batch_resend_invitations(pb::BatchResendInvitationsRequest {
            provider: SIGNNOW,
            invitation_ids: vec![invitations[0].id.clone(), invitations[1].id.clone()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<i32> = batch
        .results
        .iter()
        .map(|r| r.status.as_ref().unwrap().code)
        .collect();
    assert_eq!(codes, vec![0, Code::FailedPrecondition as i32]);

    gateway
        .sim
        .clock()
        .advance(Duration::from_secs(31 * 24 * 3600));
    let status = gateway
        .client
        .resend_invitation(resend(&invitations[0].id))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        common::error_info(&status).reason,
        "INVITATION_NOT_RESENDABLE"
    );
}

#[tokio::test]
async fn document_errors_map_on_code_and_message() {
    let mut gateway = common::start().await;
    let with_fields = seed(&gateway, &["Tenant"]);
    let without_fields = seed(&gateway, &[]);

    let status = gateway
        .client
        .send_invitation(field_send(
            &without_fields.id,
            vec![role_signer("a@example.com", "Tenant")],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(common::error_info(&status).reason, "DOCUMENT_HAS_NO_FIELDS");

    let status = gateway
        .client
        .send_invitation(field_send(
            &with_fields.id,
            vec![role_signer("a@example.com", "Buyer")],
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
        .send_invitation(field_send(
            "0000000000000000000000000000000000000000",
            vec![role_signer("a@example.com", "Tenant")],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(common::error_info(&status).reason, "DOCUMENT_NOT_FOUND");

    let mut not_owner = field_send(
        &with_fields.id,
        vec![role_signer("a@example.com", "Tenant")],
    );
    if let Some(pb::send_invitation_request::ProviderOptions::Signnow(o)) =
        not_owner.provider_options.as_mut()
    {
        o.from = "someone.else@example.com".into();
    }
    let status = gateway.client.send_invitation(not_owner).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        common::field_violations(&status),
        vec!["signnow.from".to_owned()]
    );

    gateway
        .client
        .send_invitation(field_send(
            &with_fields.id,
            vec![role_signer("a@example.com", "Tenant")],
        ))
        .await
        .unwrap();
    let status = gateway
        .client
        .send_invitation(field_send(
            &with_fields.id,
            vec![role_signer("a@example.com", "Tenant")],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "INVITE_ALREADY_EXISTS");
    assert_eq!(info.metadata["providerCode"], "65629");

    gateway.sim.inject(
        Fault::new(
            ProviderKind::SignNow,
            "/document/",
            FaultKind::Respond {
                status: 429,
                content_type: "application/json",
                body: b"{}".to_vec(),
                retry_after: Some(7),
            },
        )
        .on(Method::GET)
        .times(3),
    );
    let status = gateway
        .client
        .get_document(pb::GetDocumentRequest {
            provider: SIGNNOW,
            account: String::new(),
            document_id: with_fields.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(common::error_info(&status).reason, "RATE_LIMITED");
    assert_eq!(common::retry_delay(&status), Some(Duration::from_secs(7)));

    gateway.sim.clear_faults();
    gateway.sim.inject(
        Fault::new(
            ProviderKind::SignNow,
            "/document/",
            FaultKind::json(
                400,
                &serde_json::json!({"errors": [{"code": 424242, "message": "Brand new"}]}),
            ),
        )
        .times(1),
    );
    let status = gateway
        .client
        .get_document(pb::GetDocumentRequest {
            provider: SIGNNOW,
            account: String::new(),
            document_id: with_fields.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unknown);
    assert_eq!(
        common::error_info(&status).metadata["providerCode"],
        "424242"
    );
}

#[tokio::test]
async fn delete_cancel_and_document_status() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant", "Landlord"]);
    let invitations = send_field_invites(&mut gateway, &doc).await;

    gateway
        .client
        .delete_invitation(pb::DeleteInvitationRequest {
            provider: SIGNNOW,
            invitation_id: invitations[1].id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let last = api_calls(&gateway).pop().unwrap();
    assert_eq!(last.method, Method::DELETE);
    assert_eq!(last.path, format!("/field_invite/{}", invitations[1].id));
    let status = gateway
        .client
        .delete_invitation(pb::DeleteInvitationRequest {
            provider: SIGNNOW,
            invitation_id: invitations[1].id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        common::error_info(&status).metadata["providerCode"],
        "66502"
    );

    let response = gateway
        .client
        .cancel_invitations(pb::CancelInvitationsRequest {
            provider: SIGNNOW,
            document_id: doc.id.clone(),
            reason: "Terms changed".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.document_id, doc.id);
    let last = api_calls(&gateway).pop().unwrap();
    assert_eq!(last.method, Method::PUT);
    assert_eq!(last.path, format!("/document/{}/fieldinvitecancel", doc.id));
    assert_eq!(last.json(), serde_json::json!({"reason": "Terms changed"}));

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
    assert_eq!(document.state, pb::DocumentState::Cancelled as i32);
    assert_eq!(document.invitations.len(), 1);
    assert_eq!(
        document.invitations[0].state,
        pb::InvitationState::Cancelled as i32
    );
    assert_eq!(document.invitations[0].provider_status, "canceled");

    let status = gateway
        .client
        .cancel_invitations(pb::CancelInvitationsRequest {
            provider: SIGNNOW,
            document_id: "0000000000000000000000000000000000000000".into(),
            reason: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}
