use super::*;

#[tokio::test]
async fn send_creates_the_document_and_returns_each_sign_url() {
    use base64::Engine as _;
    let mut gateway = common::start().await;
    let response = gateway
        .client
        .send_invitation(send_request(vec![
            signer("Asha Rao", "asha@example.com", ""),
            signer("Vikram Shah", "", "9876543210"),
        ]))
        .await
        .unwrap()
        .into_inner();

    let requests = gateway.sim.requests_for(ProviderKind::Leegality);
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v3.0/sign/request");
    assert_eq!(
        sent.header("x-auth-token"),
        Some("sim-leegality-auth-token")
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.json(),
        serde_json::json!({
            "profileId": "wfTwoSigners",
            "file": {
                "name": "Lease.pdf",
                "file": base64::engine::general_purpose::STANDARD.encode(PDF),
            },
            "invitees": [
                {"name": "Asha Rao", "email": "asha@example.com"},
                {"name": "Vikram Shah", "phone": "9876543210"},
            ],
            "cc": [{"name": "Legal", "email": "legal@example.com"}],
            "irn": "IRN-2026-0042",
        })
    );

    let stored = gateway.sim.leegality().documents[&response.document_id].clone();
    assert_eq!(stored.irn.as_deref(), Some("IRN-2026-0042"));
    assert_eq!(response.invitations.len(), 2);
    for (invitation, invitee) in response.invitations.iter().zip(&stored.invitees) {
        assert_eq!(invitation.id, invitee.uuid);
        assert_eq!(
            invitation.sign_url,
            format!("https://sandbox.leegality.com/sign/{}", invitee.uuid)
        );
        assert_eq!(invitation.document_id, response.document_id);
        assert!(invitation.expire_time.is_some());
    }
    assert_eq!(
        response.invitations[0].state,
        pb::InvitationState::Pending as i32
    );
    assert!(response.invitations[0].is_signers_turn);
    assert_eq!(
        response.invitations[1].state,
        pb::InvitationState::Created as i32
    );
    assert!(!response.invitations[1].is_signers_turn);
    assert!(response.provider_warnings.is_empty());
}

#[tokio::test]
async fn send_checks_every_field_before_calling_leegality() {
    let mut gateway = common::start().await;
    let good = || {
        send_request(vec![
            signer("A", "a@example.com", ""),
            signer("B", "b@example.com", ""),
        ])
    };
    let with_options = |edit: &dyn Fn(&mut pb::LeegalityOptions)| {
        let mut request = good();
        if let Some(pb::send_invitation_request::ProviderOptions::Leegality(options)) =
            request.provider_options.as_mut()
        {
            edit(options);
        }
        request
    };
    let mut cases: Vec<(pb::SendInvitationRequest, &str)> = vec![
        (
            with_options(&|o| o.file = vec![b'x'; 100].into()),
            "leegality.file",
        ),
        (
            with_options(&|o| {
                let mut big = PDF.to_vec();
                big.resize(15_000_001, b' ');
                o.file = big.into();
            }),
            "leegality.file",
        ),
        (
            with_options(&|o| o.file = Vec::new().into()),
            "leegality.file",
        ),
        (
            with_options(&|o| o.profile_id.clear()),
            "leegality.profile_id",
        ),
        (
            with_options(&|o| o.profile_id = "../v3.0/x".into()),
            "leegality.profile_id",
        ),
        (
            with_options(&|o| o.file_name.clear()),
            "leegality.file_name",
        ),
    ];
    let mut no_options = good();
    no_options.provider_options = None;
    cases.push((no_options, "leegality"));
    let mut no_contact = good();
    no_contact.signers[1] = signer("B", "", "");
    cases.push((no_contact, "signers[1].email"));
    let mut bad_phone = good();
    bad_phone.signers[1] = signer("B", "", "+919876543210");
    cases.push((bad_phone, "signers[1].phone"));
    let mut bad_email = good();
    bad_email.signers[0] = signer("A", "not-an-email", "");
    cases.push((bad_email, "signers[0].email"));
    let mut no_name = good();
    no_name.signers[0].name.clear();
    cases.push((no_name, "signers[0].name"));
    let mut with_role = good();
    with_role.signers[0].role = "Tenant".into();
    cases.push((with_role, "signers[0].role"));
    let mut with_order = good();
    with_order.signers[1].order = 2;
    cases.push((with_order, "signers[1].order"));
    let mut with_subject = good();
    with_subject.subject = "Please sign".into();
    cases.push((with_subject, "subject"));
    let mut with_document = good();
    with_document.document_id = "01ABC".into();
    cases.push((with_document, "document_id"));
    let mut bad_cc = good();
    bad_cc.cc[0].email = "legal".into();
    cases.push((bad_cc, "cc[0].email"));
    let mut long_irn = good();
    long_irn.reference = "R".repeat(256);
    cases.push((long_irn, "reference"));
    let mut bad_request_id = good();
    bad_request_id.request_id = "not-a-uuid".into();
    cases.push((bad_request_id, "request_id"));

    for (request, field) in cases {
        let status = gateway.client.send_invitation(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert_eq!(
            common::error_info(&status).reason,
            "INVALID_FIELD",
            "{field}"
        );
        assert_eq!(
            common::field_violations(&status),
            vec![field.to_owned()],
            "{field}"
        );
    }
    assert!(gateway.sim.requests().is_empty(), "no provider call");
}

#[tokio::test]
async fn send_passes_on_warnings_and_maps_workflow_refusals() {
    use esign_gateway::simulator::{Fault, FaultKind};
    let mut gateway = common::start().await;
    let request = || {
        send_request(vec![
            signer("A", "a@example.com", ""),
            signer("B", "b@example.com", ""),
        ])
    };
    gateway.sim.inject(
        Fault::new(
            ProviderKind::Leegality,
            "/v3.0/sign/request",
            FaultKind::json(
                200,
                &serde_json::json!({
                    "status": 1,
                    "messages": [
                        {"code": "simpleWorkFlow.success", "message": "Invitations sent."},
                        {"code": "workflow.stamp.warning", "message": "Document sent without stamp."},
                    ],
                    "data": {
                        "documentId": "01KJCHYRSQGA24YDZ044BS6MTS",
                        "irn": "IRN-2026-0042",
                        "invitees": [
                            {"name": "A", "email": "a@example.com", "phone": null,
                             "signUrl": "https://sandbox.leegality.com/sign/2bdcc3ef-661f-440c-b059-82c0ff6ce4d8",
                             "active": true, "expiryDate": "08-03-2026 23:59:59"},
                            {"name": "B", "email": "b@example.com", "phone": null,
                             "signUrl": "https://sandbox.leegality.com/sign/0d9a2a4e-3c43-4a55-9a41-1f6f0b0b7f11",
                             "active": false, "expiryDate": null},
                        ],
                    },
                }),
            ),
        )
        .times(1),
    );
    let response = gateway
        .client
        .send_invitation(request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.document_id, "01KJCHYRSQGA24YDZ044BS6MTS");
    assert_eq!(
        response.provider_warnings,
        vec![pb::ProviderMessage {
            code: "workflow.stamp.warning".into(),
            message: "Document sent without stamp.".into(),
        }]
    );
    assert_eq!(
        response.invitations[0]
            .expire_time
            .as_ref()
            .map(|t| t.seconds),
        Some(1_772_994_599),
        "08-03-2026 23:59:59 IST"
    );
    assert!(response.invitations[1].expire_time.is_none());

    // The simulator's workflow expects two invitees; Leegality's code for a
    // mismatch is undocumented, and the simulator answers validator.invalid.
    let mut one_signer = request();
    one_signer.signers.truncate(1);
    let status = gateway
        .client
        .send_invitation(one_signer)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "PROVIDER_REJECTED_REQUEST");
    assert_eq!(info.metadata["providerCode"], "validator.invalid");

    // An unknown profileId is answered with the "fields or file" code.
    let mut unknown_workflow = request();
    if let Some(pb::send_invitation_request::ProviderOptions::Leegality(o)) =
        unknown_workflow.provider_options.as_mut()
    {
        o.profile_id = "wfMissing".into();
    }
    let status = gateway
        .client
        .send_invitation(unknown_workflow)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "PROVIDER_REJECTED_REQUEST");
    assert_eq!(
        info.metadata["providerCode"],
        "workflow.api.fields.or.file.required"
    );
    assert_eq!(
        common::field_violations(&status),
        vec!["leegality.profile_id".to_owned()]
    );
}

/// A billed create is reported as done with what Leegality created, even
/// when a workflow's preset invitees make the count differ; known success
/// codes are not warnings.
#[tokio::test]
async fn a_create_with_preset_invitees_returns_every_invitee() {
    let mut gateway = common::start().await;
    let response = gateway
        .client
        .send_invitation(with_profile(
            send_request(vec![signer("Asha Rao", "asha@example.com", "")]),
            "wfWithWitness",
        ))
        .await
        .unwrap()
        .into_inner();
    let stored = gateway.sim.leegality().documents[&response.document_id].clone();
    assert_eq!(stored.invitees.len(), 2);
    let ids: Vec<&str> = response.invitations.iter().map(|i| i.id.as_str()).collect();
    let stored_ids: Vec<&str> = stored.invitees.iter().map(|i| i.uuid.as_str()).collect();
    assert_eq!(ids, stored_ids);
    assert_eq!(
        response.invitations[1].signer.as_ref().unwrap().email,
        "witness@example.com"
    );
    let codes: Vec<&str> = response
        .provider_warnings
        .iter()
        .map(|w| w.code.as_str())
        .collect();
    assert_eq!(codes, vec!["gateway.invitees.count_differs"]);

    // No invitees at all: the workflow's own are used.
    let response = gateway
        .client
        .send_invitation(with_profile(send_request(Vec::new()), "wfPresetOnly"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.invitations.len(), 1);
    let sent = gateway.sim.requests_for(ProviderKind::Leegality);
    assert_eq!(
        sent.last().unwrap().json()["invitees"],
        serde_json::json!([])
    );

    // No invitees and none in the workflow: Leegality's refusal names signers.
    let status = gateway
        .client
        .send_invitation(with_profile(send_request(Vec::new()), "wfOpen"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "PROVIDER_REJECTED_REQUEST");
    assert_eq!(
        info.metadata["providerCode"],
        "simpleWorkFlow.no.payload.invitee"
    );
    assert_eq!(
        common::field_violations(&status),
        vec!["signers".to_owned()]
    );
}

#[tokio::test]
async fn a_send_whose_answer_is_lost_is_not_sent_again() {
    use esign_gateway::simulator::{Fault, FaultKind};
    let mut gateway = common::start().await;
    gateway.sim.inject(Fault::new(
        ProviderKind::Leegality,
        "/v3.0/sign/request",
        FaultKind::Reset,
    ));
    let status = gateway
        .client
        .send_invitation(send_request(vec![
            signer("A", "a@example.com", ""),
            signer("B", "b@example.com", ""),
        ]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let info = common::error_info(&status);
    assert_eq!(info.metadata["reference"], "IRN-2026-0042");
    assert_eq!(
        gateway.sim.requests_for(ProviderKind::Leegality).len(),
        1,
        "a billed create is never retried once it may have arrived"
    );
}
