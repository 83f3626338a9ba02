//! Leegality through the real gRPC server against the simulator.

mod common;

use esign_gateway::{domain::ProviderKind, pb};
use tonic::Code;

const LEEGALITY: i32 = pb::Provider::Leegality as i32;

fn seed(gateway: &common::TestGateway, invitees: &[(&str, &str)]) -> (String, Vec<String>) {
    let now = gateway.sim.clock().now();
    let document = gateway
        .sim
        .leegality()
        .seed_document(Some("IRN-7"), invitees, now);
    (
        document.id,
        document.invitees.iter().map(|i| i.uuid.clone()).collect(),
    )
}

#[tokio::test]
async fn resend_sends_the_uuid_with_the_auth_token() {
    let mut gateway = common::start().await;
    let (_, uuids) = seed(&gateway, &[("Asha", "asha@example.com")]);
    let full_url = format!("https://sandbox.leegality.com/sign/{}", uuids[0]);
    let invitation = gateway
        .client
        .resend_invitation(pb::ResendInvitationRequest {
            provider: LEEGALITY,
            invitation_id: full_url,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(invitation.id, uuids[0]);
    assert_eq!(invitation.signer.unwrap().email, "asha@example.com");
    let requests = gateway.sim.requests_for(ProviderKind::Leegality);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/v3.0/sign/request/resend");
    assert_eq!(
        requests[0].header("x-auth-token"),
        Some(
            gateway
                .sim
                .config()
                .credentials
                .leegality_auth_token
                .as_str()
        )
    );
    assert_eq!(
        requests[0].json(),
        serde_json::json!({"signUrls": [uuids[0]]})
    );
}

#[tokio::test]
async fn batch_is_one_call_with_a_status_per_item() {
    let mut gateway = common::start().await;
    let (document_id, uuids) = seed(
        &gateway,
        &[
            ("A", "a@example.com"),
            ("B", "b@example.com"),
            ("C", "c@example.com"),
        ],
    );
    {
        let mut state = gateway.sim.leegality();
        let document = state.documents.get_mut(&document_id).unwrap();
        document.invitees[1].signed = true;
        document.invitees[2].resends = 5;
    }
    let unknown = "00000000-0000-4000-8000-000000000000".to_owned();
    let response = gateway
        .client
        .batch_resend_invitations(pb::BatchResendInvitationsRequest {
            provider: LEEGALITY,
            invitation_ids: vec![
                uuids[0].clone(),
                uuids[1].clone(),
                uuids[2].clone(),
                unknown,
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        gateway.sim.requests_for(ProviderKind::Leegality).len(),
        1,
        "one provider call"
    );
    let codes: Vec<i32> = response
        .results
        .iter()
        .map(|r| r.status.as_ref().unwrap().code)
        .collect();
    assert_eq!(
        codes,
        vec![
            0,
            Code::FailedPrecondition as i32,
            Code::ResourceExhausted as i32,
            Code::NotFound as i32
        ]
    );
    use tonic_types::RpcStatusExt as _;
    let capped = response.results[2].status.as_ref().unwrap();
    assert_eq!(
        capped.get_details_error_info().unwrap().reason,
        "RESEND_LIMIT_REACHED"
    );
    assert!(capped.get_details_retry_info().is_none());
    assert!(capped.get_details_quota_failure().is_some());
    let signed = response.results[1]
        .status
        .as_ref()
        .unwrap()
        .get_details_error_info()
        .unwrap();
    assert_eq!(signed.reason, "INVITATION_NOT_RESENDABLE");
    assert!(signed.metadata["providerMessage"].contains("already signed"));
}

#[tokio::test]
async fn foreign_hosts_and_bad_urls_are_rejected_with_their_index() {
    let mut gateway = common::start().await;
    let (_, uuids) = seed(&gateway, &[("A", "a@example.com")]);
    for (bad, index) in [
        (format!("https://evil.example.com/sign/{}", uuids[0]), 1),
        (
            format!("https://sandbox.leegality.com/other/{}", uuids[0]),
            1,
        ),
        ("not-a-uuid".to_owned(), 1),
        (uuids[0].to_uppercase(), 1),
    ] {
        let status = gateway
            .client
            .batch_resend_invitations(pb::BatchResendInvitationsRequest {
                provider: LEEGALITY,
                invitation_ids: vec![uuids[0].clone(), bad.clone()],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(
            common::field_violations(&status),
            vec![format!("invitation_ids[{index}]")],
            "{bad}"
        );
    }
    assert!(gateway.sim.requests().is_empty());
}

#[tokio::test]
async fn reactivate_checks_ranges_then_maps_provider_codes() {
    let mut gateway = common::start().await;
    let (document_id, _) = seed(&gateway, &[("A", "a@example.com")]);
    let request = |expiry| pb::ReactivateDocumentRequest {
        provider: LEEGALITY,
        document_id: document_id.clone(),
        expiry,
        ..Default::default()
    };
    use pb::reactivate_document_request::Expiry;
    let status = gateway
        .client
        .reactivate_document(request(Some(Expiry::ExpiryDays(366))))
        .await
        .unwrap_err();
    assert_eq!(
        common::field_violations(&status),
        vec!["expiry_days".to_owned()]
    );
    let past = prost_types::Timestamp {
        seconds: 1_000,
        nanos: 0,
    };
    let status = gateway
        .client
        .reactivate_document(request(Some(Expiry::ExpireTime(past))))
        .await
        .unwrap_err();
    assert_eq!(
        common::field_violations(&status),
        vec!["expire_time".to_owned()]
    );
    assert!(gateway.sim.requests().is_empty());

    let status = gateway
        .client
        .reactivate_document(request(Some(Expiry::ExpiryDays(3))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(common::error_info(&status).reason, "NO_EXPIRED_INVITATION");

    gateway
        .sim
        .leegality()
        .documents
        .get_mut(&document_id)
        .unwrap()
        .invitees[0]
        .expired = true;
    let document = gateway
        .client
        .reactivate_document(request(Some(Expiry::ExpiryDays(3))))
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    assert_eq!(document.reference, "IRN-7");
    assert_eq!(
        document.invitations[0].state,
        pb::InvitationState::Pending as i32
    );
    assert!(document.invitations[0].expire_time.is_some());
    let sent = gateway.sim.requests_for(ProviderKind::Leegality);
    assert_eq!(
        sent.last().unwrap().json(),
        serde_json::json!({"documentId": document_id, "expiryDays": 3})
    );

    let mut missing = request(None);
    missing.document_id = "NOSUCHDOC".into();
    let status = gateway
        .client
        .reactivate_document(missing)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        common::error_info(&status).metadata["providerCode"],
        "no.document.found"
    );
}

#[tokio::test]
async fn delete_and_get_document() {
    let mut gateway = common::start().await;
    let (document_id, uuids) = seed(&gateway, &[("A", "a@example.com"), ("B", "b@example.com")]);
    let document = gateway
        .client
        .get_document(pb::GetDocumentRequest {
            provider: LEEGALITY,
            account: String::new(),
            document_id: document_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    assert_eq!(document.state, pb::DocumentState::InProgress as i32);
    let states: Vec<i32> = document.invitations.iter().map(|i| i.state).collect();
    assert_eq!(
        states,
        vec![
            pb::InvitationState::Pending as i32,
            pb::InvitationState::Created as i32
        ]
    );

    let delete = |id: &str| pb::DeleteInvitationRequest {
        provider: LEEGALITY,
        invitation_id: id.to_owned(),
        ..Default::default()
    };
    gateway
        .client
        .delete_invitation(delete(&uuids[1]))
        .await
        .unwrap();
    let last = gateway
        .sim
        .requests_for(ProviderKind::Leegality)
        .pop()
        .unwrap();
    assert_eq!(last.method, "DELETE");
    assert_eq!(last.query.get("signUrl"), Some(&uuids[1]));
    let status = gateway
        .client
        .delete_invitation(delete(&uuids[1]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(common::error_info(&status).reason, "INVITATION_NOT_FOUND");
}

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";

fn send_request(signers: Vec<pb::Signer>) -> pb::SendInvitationRequest {
    pb::SendInvitationRequest {
        provider: LEEGALITY,
        signers,
        reference: "IRN-2026-0042".into(),
        cc: vec![pb::CcRecipient {
            name: "Legal".into(),
            email: "legal@example.com".into(),
        }],
        provider_options: Some(pb::send_invitation_request::ProviderOptions::Leegality(
            pb::LeegalityOptions {
                profile_id: "wfTwoSigners".into(),
                file_name: "Lease.pdf".into(),
                file: PDF.to_vec().into(),
            },
        )),
        ..Default::default()
    }
}

fn signer(name: &str, email: &str, phone: &str) -> pb::Signer {
    pb::Signer {
        name: name.into(),
        email: email.into(),
        phone: phone.into(),
        ..Default::default()
    }
}

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

fn with_profile(
    mut request: pb::SendInvitationRequest,
    profile: &str,
) -> pb::SendInvitationRequest {
    if let Some(pb::send_invitation_request::ProviderOptions::Leegality(o)) =
        request.provider_options.as_mut()
    {
        o.profile_id = profile.into();
    }
    request
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

/// Resend items are matched by their `signUrl`, whatever order they come in.
#[tokio::test]
async fn batch_items_are_matched_by_sign_url_not_position() {
    let mut gateway = common::start().await;
    let (document_id, uuids) = seed(&gateway, &[("A", "a@example.com"), ("B", "b@example.com")]);
    {
        let mut state = gateway.sim.leegality();
        state.reverse_resend_items = true;
        state.documents.get_mut(&document_id).unwrap().invitees[1].signed = true;
    }
    let response = gateway
        .client
        .batch_resend_invitations(pb::BatchResendInvitationsRequest {
            provider: LEEGALITY,
            invitation_ids: uuids.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let outcome: Vec<(String, i32)> = response
        .results
        .iter()
        .map(|r| (r.invitation_id.clone(), r.status.as_ref().unwrap().code))
        .collect();
    assert_eq!(
        outcome,
        vec![
            (uuids[0].clone(), 0),
            (uuids[1].clone(), Code::FailedPrecondition as i32),
        ]
    );
    assert_eq!(
        response.results[0]
            .invitation
            .as_ref()
            .unwrap()
            .signer
            .as_ref()
            .unwrap()
            .email,
        "a@example.com"
    );
    let stored = gateway.sim.leegality().documents[&document_id].clone();
    assert_eq!(stored.invitees[0].resends, 1);
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

/// Every documented `status: 0` code, and the non-envelope answers, through
/// a real RPC: (code or HTTP status, body) -> gRPC code and reason.
#[tokio::test]
async fn every_provider_code_maps_to_its_documented_status() {
    use esign_gateway::simulator::{Fault, FaultKind};
    let mut gateway = common::start().await;
    let (document_id, _) = seed(&gateway, &[("A", "a@example.com")]);
    let envelope = |code: serde_json::Value| {
        FaultKind::json(
            200,
            &serde_json::json!({"status": 0, "messages": [{"code": code, "message": "x"}], "data": {}}),
        )
    };
    let enveloped = |http: u16, code: serde_json::Value, message: &str| {
        FaultKind::json(
            http,
            &serde_json::json!({"status": 0, "messages": [{"code": code, "message": message}], "data": {}}),
        )
    };
    let cases: Vec<(FaultKind, Code, &str, Option<&str>)> = vec![
        // Errors in the envelope arrive on 4xx too (evidence.md L-12).
        (
            enveloped(400, "validator.invalid".into(), "x"),
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
            Some("validator.invalid"),
        ),
        (
            enveloped(
                400,
                serde_json::Value::Null,
                "Property profileId cannot be null",
            ),
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
            Some("null"),
        ),
        (
            enveloped(404, "no.document.found".into(), "No document found."),
            Code::NotFound,
            "DOCUMENT_NOT_FOUND",
            Some("no.document.found"),
        ),
        (
            enveloped(200, "workflow.api.fields.or.file.required".into(), "x"),
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
            Some("workflow.api.fields.or.file.required"),
        ),
        (
            enveloped(200, "simpleWorkFlow.no.payload.invitee".into(), "x"),
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
            Some("simpleWorkFlow.no.payload.invitee"),
        ),
        // A missing auth header: the gateway's credentials, not the caller.
        (
            enveloped(200, serde_json::Value::Null, "Access Denied"),
            Code::Internal,
            "PROVIDER_CREDENTIALS_REJECTED",
            Some("null"),
        ),
        (
            envelope("validator.invalid".into()),
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
            Some("validator.invalid"),
        ),
        (
            envelope(serde_json::Value::Null),
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
            Some("null"),
        ),
        (
            envelope("sign.url.required".into()),
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
            Some("sign.url.required"),
        ),
        (
            envelope("invalid.expiry.days.value".into()),
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
            Some("invalid.expiry.days.value"),
        ),
        (
            envelope("invalid.expiry.time".into()),
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
            Some("invalid.expiry.time"),
        ),
        (
            envelope("invalid.expiry.time.maxerror".into()),
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
            Some("invalid.expiry.time.maxerror"),
        ),
        (
            envelope("irn.length.invalid".into()),
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
            Some("irn.length.invalid"),
        ),
        (
            envelope("no.document.found".into()),
            Code::NotFound,
            "DOCUMENT_NOT_FOUND",
            Some("no.document.found"),
        ),
        (
            envelope("invitation.not.exists".into()),
            Code::NotFound,
            "INVITATION_NOT_FOUND",
            Some("invitation.not.exists"),
        ),
        (
            envelope("no.expired.invitation.found".into()),
            Code::FailedPrecondition,
            "NO_EXPIRED_INVITATION",
            Some("no.expired.invitation.found"),
        ),
        (
            envelope("brand.new.code".into()),
            Code::Unknown,
            "PROVIDER_UNRECOGNIZED_RESPONSE",
            Some("brand.new.code"),
        ),
        (
            FaultKind::status(401),
            Code::Internal,
            "PROVIDER_CREDENTIALS_REJECTED",
            None,
        ),
        (
            FaultKind::status(403),
            Code::Internal,
            "PROVIDER_CREDENTIALS_REJECTED",
            None,
        ),
        (
            FaultKind::status(500),
            Code::Unavailable,
            "PROVIDER_UNAVAILABLE",
            None,
        ),
        (
            FaultKind::html_error_page(502),
            Code::Unavailable,
            "PROVIDER_UNAVAILABLE",
            None,
        ),
        (
            FaultKind::truncated_json(),
            Code::Unknown,
            "PROVIDER_UNRECOGNIZED_RESPONSE",
            None,
        ),
        (
            FaultKind::json(200, &serde_json::json!(["not", "an", "envelope"])),
            Code::Unknown,
            "PROVIDER_UNRECOGNIZED_RESPONSE",
            None,
        ),
    ];
    for (fault, code, reason, provider_code) in cases {
        gateway.sim.clear_faults();
        gateway
            .sim
            .inject(Fault::new(ProviderKind::Leegality, "/reactivate", fault));
        let status = gateway
            .client
            .reactivate_document(pb::ReactivateDocumentRequest {
                provider: LEEGALITY,
                document_id: document_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{reason} {provider_code:?}");
        let info = common::error_info(&status);
        assert_eq!(info.reason, reason, "{provider_code:?}");
        assert_eq!(info.domain, "esign-gateway.v1");
        assert_eq!(info.metadata["provider"], "leegality");
        assert_eq!(info.metadata["documentId"], document_id);
        if let Some(provider_code) = provider_code {
            assert_eq!(info.metadata["providerCode"], provider_code);
        }
    }
}

#[tokio::test]
async fn a_wrong_auth_token_is_the_gateway_s_problem_not_the_caller_s() {
    let mut gateway = common::start_with(|config| {
        for account in &mut config.accounts {
            if let esign_gateway::config::Credentials::Leegality { auth_token } =
                &mut account.credentials
            {
                *auth_token = esign_gateway::secret::Secret::new("revoked-token");
            }
        }
    })
    .await;
    let (document_id, _) = seed(&gateway, &[("A", "a@example.com")]);
    let status = gateway
        .client
        .get_document(pb::GetDocumentRequest {
            provider: LEEGALITY,
            account: String::new(),
            document_id,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "PROVIDER_CREDENTIALS_REJECTED");
    assert_eq!(info.metadata["providerHttpStatus"], "401");
    assert!(!status.message().contains("revoked-token"));
}

#[tokio::test]
async fn no_access_and_request_shapes_of_reads_and_reactivation_by_time() {
    let mut gateway = common::start().await;
    let (document_id, uuids) = seed(&gateway, &[("A", "a@example.com")]);
    gateway
        .sim
        .leegality()
        .documents
        .get_mut(&document_id)
        .unwrap()
        .foreign = true;
    let status = gateway
        .client
        .resend_invitation(pb::ResendInvitationRequest {
            provider: LEEGALITY,
            invitation_id: uuids[0].clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        common::error_info(&status).reason,
        "PROVIDER_PERMISSION_DENIED"
    );

    gateway
        .client
        .get_document(pb::GetDocumentRequest {
            provider: LEEGALITY,
            account: String::new(),
            document_id: document_id.clone(),
        })
        .await
        .unwrap();
    let read = gateway
        .sim
        .requests_for(ProviderKind::Leegality)
        .pop()
        .unwrap();
    assert_eq!(read.method, "GET");
    assert_eq!(read.path, "/v3.2/sign/request");
    assert_eq!(read.query.get("documentId"), Some(&document_id));
    assert_eq!(
        read.header("x-auth-token"),
        Some("sim-leegality-auth-token")
    );
    assert!(read.body.is_empty());

    {
        let mut state = gateway.sim.leegality();
        let document = state.documents.get_mut(&document_id).unwrap();
        document.invitees[0].expired = true;
    }
    let at = gateway.sim.clock().now() + chrono::Duration::days(30);
    use pb::reactivate_document_request::Expiry;
    let document = gateway
        .client
        .reactivate_document(pb::ReactivateDocumentRequest {
            provider: LEEGALITY,
            document_id: document_id.clone(),
            expiry: Some(Expiry::ExpireTime(prost_types::Timestamp {
                seconds: at.timestamp(),
                nanos: 0,
            })),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    let sent = gateway
        .sim
        .requests_for(ProviderKind::Leegality)
        .pop()
        .unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v3.0/sign/request/reactivate");
    assert_eq!(
        sent.json(),
        serde_json::json!({"documentId": document_id, "expiryTime": at.timestamp() * 1000})
    );
    assert_eq!(
        document.invitations[0]
            .expire_time
            .as_ref()
            .unwrap()
            .seconds,
        at.timestamp()
    );
}

#[tokio::test]
async fn a_retried_delete_whose_first_answer_was_lost_succeeds() {
    use esign_gateway::simulator::{Fault, FaultKind};
    let mut gateway = common::start().await;
    let (document_id, uuids) = seed(&gateway, &[("A", "a@example.com"), ("B", "b@example.com")]);
    gateway.sim.inject(
        Fault::new(
            ProviderKind::Leegality,
            "/invitation",
            FaultKind::LoseAnswer,
        )
        .times(1),
    );
    gateway
        .client
        .delete_invitation(pb::DeleteInvitationRequest {
            provider: LEEGALITY,
            invitation_id: uuids[1].clone(),
            ..Default::default()
        })
        .await
        .expect("the retry's invitation.not.exists means the first attempt deleted it");
    let deletes = gateway.sim.requests_for(ProviderKind::Leegality);
    assert_eq!(deletes.len(), 2, "the idempotent delete was retried once");
    assert!(gateway.sim.leegality().documents[&document_id].invitees[1].deleted);
}
