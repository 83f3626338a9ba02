use super::*;

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
