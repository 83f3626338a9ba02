use super::*;

#[tokio::test]
async fn send_invitation_creates_one_invitation_per_recipient() {
    let mut gateway = common::start().await;
    let request = pb::SendInvitationRequest {
        provider: BYNN,
        signers: vec![pb::Signer {
            email: "new.signer@example.com".into(),
            ..Default::default()
        }],
        reference: "order-1234".into(),
        provider_options: Some(pb::send_invitation_request::ProviderOptions::Bynn(
            pb::BynnOptions {
                workflow_token: "wf_demo_onboarding".into(),
                channel: pb::BynnChannel::Email as i32,
                locale: "nl".into(),
            },
        )),
        ..Default::default()
    };
    let response = gateway
        .client
        .send_invitation(request)
        .await
        .unwrap()
        .into_inner();
    let invitation = &response.invitations[0];
    assert!(invitation.id.starts_with("adi_"));
    assert_eq!(invitation.reference, "order-1234");
    assert_eq!(invitation.delivery_attempts, 1);

    let requests = gateway.sim.requests_for(ProviderKind::Bynn);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/autodoc/invitations");
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(
        requests[0].json(),
        serde_json::json!({
            "workflowToken": "wf_demo_onboarding",
            "channel": "email",
            "recipient": "new.signer@example.com",
            "reference": "order-1234",
            "locale": "nl",
        })
    );

    // It reads back through GetInvitation once the channel accepted it.
    gateway.sim.clock().advance(Duration::from_secs(2));
    let read = gateway
        .client
        .get_invitation(pb::GetInvitationRequest {
            provider: BYNN,
            account: String::new(),
            invitation_id: invitation.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(read.state, pb::InvitationState::Pending as i32);
    assert_eq!(read.provider_status, "sent");
    assert!(read.send_time.is_some());
}

#[tokio::test]
async fn send_invitation_input_is_checked_before_calling_bynn() {
    let mut gateway = common::start().await;
    let base = pb::SendInvitationRequest {
        provider: BYNN,
        signers: vec![pb::Signer {
            phone: "+15551234567".into(),
            ..Default::default()
        }],
        provider_options: Some(pb::send_invitation_request::ProviderOptions::Bynn(
            pb::BynnOptions {
                workflow_token: "wf_demo_onboarding".into(),
                channel: pb::BynnChannel::Sms as i32,
                locale: String::new(),
            },
        )),
        ..Default::default()
    };
    let mut two_signers = base.clone();
    two_signers.signers.push(base.signers[0].clone());
    let mut bad_phone = base.clone();
    bad_phone.signers[0].phone = "5551234567".into();
    let mut no_channel = base.clone();
    no_channel.provider_options = Some(pb::send_invitation_request::ProviderOptions::Bynn(
        pb::BynnOptions {
            workflow_token: "wf_demo_onboarding".into(),
            channel: 0,
            locale: String::new(),
        },
    ));
    let mut with_subject = base.clone();
    with_subject.subject = "Please sign".into();
    for (request, field) in [
        (two_signers, "signers"),
        (bad_phone, "signers[0].phone"),
        (no_channel, "bynn.channel"),
        (with_subject, "subject"),
    ] {
        let status = gateway.client.send_invitation(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert_eq!(common::field_violations(&status), vec![field.to_owned()]);
    }
    assert!(gateway.sim.requests().is_empty());

    // An unknown workflow is Bynn's to reject.
    let mut unknown_workflow = base.clone();
    unknown_workflow.provider_options = Some(pb::send_invitation_request::ProviderOptions::Bynn(
        pb::BynnOptions {
            workflow_token: "wf_unknown".into(),
            channel: pb::BynnChannel::Sms as i32,
            locale: String::new(),
        },
    ));
    let status = gateway
        .client
        .send_invitation(unknown_workflow)
        .await
        .unwrap_err();
    assert_eq!(
        common::error_info(&status).reason,
        "PROVIDER_REJECTED_REQUEST"
    );
}

#[tokio::test]
async fn batch_resend_fans_out_with_a_status_per_item() {
    let mut gateway = common::start().await;
    let ok = seed_sent(&gateway, 1, ChronoDuration::minutes(10));
    let cooling = seed_sent(&gateway, 1, ChronoDuration::seconds(30));
    let response = gateway
        .client
        .batch_resend_invitations(pb::BatchResendInvitationsRequest {
            provider: BYNN,
            invitation_ids: vec![ok.clone(), cooling.clone(), "adi_missing".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let results = response.results;
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].invitation_id, ok);
    assert_eq!(results[0].status.as_ref().unwrap().code, 0);
    assert!(results[0].invitation.is_some());
    assert_eq!(
        results[1].status.as_ref().unwrap().code,
        Code::ResourceExhausted as i32
    );
    assert_eq!(
        results[2].status.as_ref().unwrap().code,
        Code::NotFound as i32
    );
    use tonic_types::RpcStatusExt as _;
    let info = results[1]
        .status
        .as_ref()
        .unwrap()
        .get_details_error_info()
        .unwrap();
    assert_eq!(info.reason, "RESEND_COOLDOWN");
    assert_eq!(info.metadata["invitationId"], cooling);
}

#[tokio::test]
async fn reads_retry_transient_failures_and_send_the_documented_request() {
    let mut gateway = common::start().await;
    let token = seed_sent(&gateway, 1, ChronoDuration::minutes(10));
    gateway.sim.inject(
        Fault::new(
            ProviderKind::Bynn,
            "/autodoc/invitations/",
            FaultKind::html_error_page(502),
        )
        .times(1),
    );
    let invitation = gateway
        .client
        .get_invitation(get(&token))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(invitation.id, token);
    let requests = gateway.sim.requests_for(ProviderKind::Bynn);
    assert_eq!(requests.len(), 2, "one retry after the 502");
    for request in &requests {
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, format!("/autodoc/invitations/{token}"));
        assert!(
            request
                .header("authorization")
                .unwrap()
                .starts_with("Bearer private_")
        );
    }
}

#[tokio::test]
async fn unusable_bodies_and_resets_map_to_unknown_and_unavailable() {
    let mut gateway = common::start().await;
    let token = seed_sent(&gateway, 1, ChronoDuration::minutes(10));

    // A 2xx resend is billed and done whatever its body: a broken body is
    // no reason to report a failure (the caller would send again).
    gateway
        .sim
        .inject(Fault::new(ProviderKind::Bynn, "/resend", FaultKind::truncated_json()).times(1));
    let invitation = resent(&mut gateway, &token).await;
    assert_eq!(invitation.id, token);
    let last = gateway.sim.requests_for(ProviderKind::Bynn);
    assert_eq!(
        last.last().unwrap().method,
        "GET",
        "read back after the body"
    );

    gateway.sim.inject(
        Fault::new(
            ProviderKind::Bynn,
            "/autodoc/invitations/",
            FaultKind::truncated_json(),
        )
        .on(http::Method::GET)
        .times(1),
    );
    let status = gateway
        .client
        .get_invitation(get(&token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unknown);
    assert_eq!(
        common::error_info(&status).reason,
        "PROVIDER_UNRECOGNIZED_RESPONSE"
    );

    gateway
        .sim
        .inject(Fault::new(ProviderKind::Bynn, "/resend", FaultKind::Reset).times(1));
    let status = gateway
        .client
        .resend_invitation(resend(&token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "PROVIDER_UNAVAILABLE");
    assert_eq!(
        info.metadata["outcome"], "unknown",
        "a billed resend may have happened"
    );
    assert!(common::retry_delay(&status).is_some());
    let resends = gateway
        .sim
        .requests_for(ProviderKind::Bynn)
        .into_iter()
        .filter(|r| r.path.ends_with("/resend"))
        .count();
    assert_eq!(resends, 2, "neither billed resend was retried");
}

#[tokio::test]
async fn oversized_provider_bodies_are_refused() {
    let mut gateway = common::start_with(|config| config.max_provider_body_bytes = 64 * 1024).await;
    let token = seed_sent(&gateway, 1, ChronoDuration::minutes(10));
    gateway.sim.inject(
        Fault::new(
            ProviderKind::Bynn,
            "/autodoc/invitations/",
            FaultKind::Respond {
                status: 200,
                content_type: "application/json",
                body: vec![b' '; 1024 * 1024],
                retry_after: None,
            },
        )
        .times(1),
    );
    let status = gateway
        .client
        .get_invitation(get(&token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unknown);
    assert_eq!(
        common::error_info(&status).reason,
        "PROVIDER_UNRECOGNIZED_RESPONSE"
    );
}
