use super::*;

#[tokio::test]
async fn resend_of_a_sent_invitation_requeues_it_and_counts_the_attempt() {
    let mut gateway = common::start().await;
    let token = seed_sent(&gateway, 1, ChronoDuration::minutes(10));
    let invitation = resent(&mut gateway, &token).await;
    assert_eq!(invitation.id, token);
    assert_eq!(invitation.provider_status, "pending");
    assert_eq!(invitation.state, pb::InvitationState::Created as i32);
    assert_eq!(invitation.delivery_attempts, 2);

    let requests = gateway.sim.requests_for(ProviderKind::Bynn);
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/autodoc/invitations/{token}/resend"));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {}", gateway.sim.config().credentials.bynn_api_key).as_str())
    );
    assert!(request.body.is_empty());
}

/// Bynn documents no resend body: whatever a 2xx carries, the billed
/// resend is reported as done, and the invitation is read back when the
/// body does not hold it.
#[tokio::test]
async fn a_resend_answered_2xx_with_any_body_is_a_success() {
    use esign_gateway::simulator::bynn::ResendAnswer;
    let mut gateway = common::start().await;
    for answer in [
        ResendAnswer::Empty,
        ResendAnswer::EmptyObject,
        ResendAnswer::Accepted,
    ] {
        gateway.sim.clear_requests();
        gateway.sim.bynn().resend_answer = answer;
        let token = seed_sent(&gateway, 1, ChronoDuration::minutes(10));
        let invitation = gateway
            .client
            .resend_invitation(resend(&token))
            .await
            .unwrap_or_else(|status| panic!("{answer:?}: {status:?}"))
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(invitation.id, token, "{answer:?}");
        assert_eq!(invitation.delivery_attempts, 2, "{answer:?}: read back");
        let calls: Vec<(String, String)> = gateway
            .sim
            .requests_for(ProviderKind::Bynn)
            .iter()
            .map(|r| (r.method.to_string(), r.path.clone()))
            .collect();
        assert_eq!(
            calls,
            vec![
                (
                    "POST".to_owned(),
                    format!("/autodoc/invitations/{token}/resend")
                ),
                ("GET".to_owned(), format!("/autodoc/invitations/{token}")),
            ],
            "{answer:?}"
        );
    }

    // When even the read-back fails, the resend still succeeded.
    gateway.sim.bynn().resend_answer = ResendAnswer::Empty;
    let token = seed_sent(&gateway, 1, ChronoDuration::minutes(10));
    gateway.sim.inject(
        Fault::new(
            ProviderKind::Bynn,
            "/autodoc/invitations/",
            FaultKind::status(500),
        )
        .on(http::Method::GET),
    );
    let invitation = resent(&mut gateway, &token).await;
    assert_eq!(invitation.id, token);
    assert_eq!(invitation.state, pb::InvitationState::Unspecified as i32);
    assert_eq!(gateway.sim.bynn().invitations[&token].delivery_attempts, 2);
}

#[tokio::test]
async fn cooldown_gives_the_exact_remaining_seconds_as_retry_delay() {
    let mut gateway = common::start().await;
    let token = seed_sent(&gateway, 1, ChronoDuration::seconds(60));
    let status = gateway
        .client
        .resend_invitation(resend(&token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "RESEND_COOLDOWN");
    assert_eq!(info.metadata["providerCode"], "cooldown_active");
    assert_eq!(info.metadata["providerHttpStatus"], "429");
    assert_eq!(common::retry_delay(&status), Some(Duration::from_secs(120)));

    // After the cooldown (moving the simulator's clock) the resend works.
    gateway.sim.clock().advance(Duration::from_secs(121));
    gateway
        .client
        .resend_invitation(resend(&token))
        .await
        .unwrap();
}

#[tokio::test]
async fn cooldown_hint_as_a_field_or_absent() {
    let mut gateway = common::start().await;
    gateway
        .sim
        .bynn()
        .set_cooldown_hint(CooldownHint::FieldOnly);
    let token = seed_sent(&gateway, 1, ChronoDuration::seconds(170));
    let status = gateway
        .client
        .resend_invitation(resend(&token))
        .await
        .unwrap_err();
    assert_eq!(common::retry_delay(&status), Some(Duration::from_secs(10)));

    gateway.sim.bynn().set_cooldown_hint(CooldownHint::Absent);
    let status = gateway
        .client
        .resend_invitation(resend(&token))
        .await
        .unwrap_err();
    assert_eq!(common::error_info(&status).reason, "RESEND_COOLDOWN");
    assert_eq!(
        common::retry_delay(&status),
        Some(Duration::from_secs(180)),
        "documented fallback"
    );
}

#[tokio::test]
async fn tenth_attempt_is_the_last_one() {
    let mut gateway = common::start().await;
    let token = seed_sent(&gateway, 9, ChronoDuration::minutes(5));
    gateway
        .client
        .resend_invitation(resend(&token))
        .await
        .unwrap();
    // Let the simulated channel accept it, then wait out the cooldown.
    gateway.sim.clock().advance(Duration::from_secs(5 * 60));
    let status = gateway
        .client
        .resend_invitation(resend(&token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "RESEND_LIMIT_REACHED");
    assert_eq!(
        common::retry_delay(&status),
        None,
        "a used-up cap is not retryable"
    );
    use tonic_types::StatusExt as _;
    let quota = status.get_details_quota_failure().expect("QuotaFailure");
    assert_eq!(quota.violations[0].subject, format!("invitation:{token}"));
}

#[tokio::test]
async fn each_ineligible_state_is_not_resendable_with_its_status() {
    let mut gateway = common::start().await;
    let now = gateway.sim.clock().now();
    for state in [
        "pending",
        "delivered",
        "opened",
        "started",
        "completed",
        "rejected",
        "failed",
    ] {
        let token = gateway.sim.bynn().seed(
            "x@example.com",
            state,
            1,
            Some(now - ChronoDuration::hours(1)),
            now - ChronoDuration::days(1),
        );
        let status = gateway
            .client
            .resend_invitation(resend(&token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{state}");
        let info = common::error_info(&status);
        assert_eq!(info.reason, "INVITATION_NOT_RESENDABLE", "{state}");
        assert_eq!(info.metadata["status"], state);
        assert_eq!(info.metadata["invitationId"], token);
    }
    // Expired: created more than 30 days ago.
    let token = gateway.sim.bynn().seed(
        "x@example.com",
        "sent",
        1,
        Some(now - ChronoDuration::days(31)),
        now - ChronoDuration::days(31),
    );
    let status = gateway
        .client
        .resend_invitation(resend(&token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(common::error_info(&status).metadata["status"], "expired");

    // A state refusal under another type (undocumented): the status named
    // in the message still makes it not resendable, not a caller error.
    let token = seed_sent(&gateway, 1, ChronoDuration::minutes(10));
    gateway.sim.inject(
        Fault::new(
            ProviderKind::Bynn,
            "/resend",
            FaultKind::json(
                409,
                &serde_json::json!({"error": {"type": "conflict", "message": "Invitation status is delivered."}}),
            ),
        )
        .times(1),
    );
    let status = gateway
        .client
        .resend_invitation(resend(&token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "INVITATION_NOT_RESENDABLE");
    assert_eq!(info.metadata["status"], "delivered");
}

#[tokio::test]
async fn unknown_invitation_is_not_found_with_resource_info() {
    let mut gateway = common::start().await;
    let status = gateway
        .client
        .resend_invitation(resend("adi_doesnotexist"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(common::error_info(&status).reason, "INVITATION_NOT_FOUND");
    use tonic_types::StatusExt as _;
    assert_eq!(
        status.get_details_resource_info().unwrap().resource_name,
        "adi_doesnotexist"
    );
}

#[tokio::test]
async fn malformed_tokens_never_reach_bynn() {
    let mut gateway = common::start().await;
    for bad in [
        "3f9c",
        "adi_../../v2",
        "https://api.bynn.com/v1/autodoc/invitations/adi_x",
    ] {
        let status = gateway
            .client
            .resend_invitation(resend(bad))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(
            common::field_violations(&status),
            vec!["invitation_id".to_owned()]
        );
    }
    assert!(gateway.sim.requests().is_empty());
}

#[tokio::test]
async fn local_limiter_answers_without_calling_bynn() {
    let mut gateway = common::start_with(|config| {
        for account in &mut config.accounts {
            account.budgets.resends_per_minute = Some(2);
        }
    })
    .await;
    let tokens: Vec<String> = (0..3)
        .map(|_| seed_sent(&gateway, 1, ChronoDuration::minutes(10)))
        .collect();
    gateway
        .client
        .resend_invitation(resend(&tokens[0]))
        .await
        .unwrap();
    gateway
        .client
        .resend_invitation(resend(&tokens[1]))
        .await
        .unwrap();
    let status = gateway
        .client
        .resend_invitation(resend(&tokens[2]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "RATE_LIMITED");
    assert_eq!(info.metadata["limiter"], "resends_per_minute");
    let delay = common::retry_delay(&status).unwrap();
    assert!(
        delay > Duration::from_secs(55) && delay <= Duration::from_secs(60),
        "{delay:?}"
    );
    assert_eq!(
        gateway.sim.requests_for(ProviderKind::Bynn).len(),
        2,
        "the third call stayed local"
    );
}

#[tokio::test]
async fn provider_throttle_uses_retry_after() {
    let mut gateway = common::start().await;
    let token = seed_sent(&gateway, 1, ChronoDuration::minutes(10));
    gateway.sim.inject(
        Fault::new(
            ProviderKind::Bynn,
            "/resend",
            FaultKind::Respond {
                status: 429,
                content_type: "application/json",
                body: br#"{"error":{"type":"rate_limited","message":"Too many requests"}}"#
                    .to_vec(),
                retry_after: Some(42),
            },
        )
        .times(1),
    );
    let status = gateway
        .client
        .resend_invitation(resend(&token))
        .await
        .unwrap_err();
    assert_eq!(common::error_info(&status).reason, "RATE_LIMITED");
    assert_eq!(common::retry_delay(&status), Some(Duration::from_secs(42)));
    assert_eq!(
        gateway.sim.requests_for(ProviderKind::Bynn).len(),
        1,
        "a billed resend is not retried"
    );
}

#[tokio::test]
async fn every_documented_http_status_maps_to_its_code() {
    let cases: [(u16, &str, Code, &str); 6] = [
        (
            401,
            "unauthorized",
            Code::Internal,
            "PROVIDER_CREDENTIALS_REJECTED",
        ),
        (
            402,
            "insufficient_balance",
            Code::FailedPrecondition,
            "PROVIDER_INSUFFICIENT_BALANCE",
        ),
        (
            403,
            "forbidden",
            Code::PermissionDenied,
            "PROVIDER_PERMISSION_DENIED",
        ),
        (
            422,
            "validation_error",
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
        ),
        (
            500,
            "server_error",
            Code::Unavailable,
            "PROVIDER_UNAVAILABLE",
        ),
        (
            418,
            "teapot",
            Code::Unknown,
            "PROVIDER_UNRECOGNIZED_RESPONSE",
        ),
    ];
    let mut gateway = common::start().await;
    let token = seed_sent(&gateway, 1, ChronoDuration::minutes(10));
    for (http_status, kind, code, reason) in cases {
        gateway.sim.inject(
            Fault::new(
                ProviderKind::Bynn,
                "/resend",
                FaultKind::Respond {
                    status: http_status,
                    content_type: "application/json",
                    body: format!(r#"{{"error":{{"type":"{kind}","message":"x"}}}}"#).into_bytes(),
                    retry_after: None,
                },
            )
            .times(1),
        );
        let status = gateway
            .client
            .resend_invitation(resend(&token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "HTTP {http_status}");
        let info = common::error_info(&status);
        assert_eq!(info.reason, reason, "HTTP {http_status}");
        assert_eq!(info.metadata["providerHttpStatus"], http_status.to_string());
        assert!(
            !status.message().contains("\"x\""),
            "no raw provider text in the message"
        );
    }
    // A wrong key, answered by the simulator's own credential check.
    let mut gateway = common::start_with(|config| {
        for account in &mut config.accounts {
            if let esign_gateway::config::Credentials::Bynn { api_key } = &mut account.credentials {
                *api_key = esign_gateway::secret::Secret::new("private_wrong");
            }
        }
    })
    .await;
    let status = gateway
        .client
        .resend_invitation(resend("adi_abc"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(
        common::error_info(&status).reason,
        "PROVIDER_CREDENTIALS_REJECTED"
    );
}
