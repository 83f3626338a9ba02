use super::*;

#[tokio::test]
async fn tokens_are_refreshed_before_they_run_out() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant"]);
    let get = || pb::GetDocumentRequest {
        provider: SIGNNOW,
        account: String::new(),
        document_id: doc.id.clone(),
    };
    gateway.client.get_document(get()).await.unwrap();
    gateway.client.get_document(get()).await.unwrap();
    assert_eq!(token_calls(&gateway).len(), 1, "cached");

    let lifetime = gateway.sim.config().signnow_token_lifetime_secs as u64;
    // A minute before signNow would expire it: inside the gateway's early
    // refresh window (a tenth of the lifetime, at most five minutes).
    gateway
        .sim
        .clock()
        .advance(Duration::from_secs(lifetime - 60));
    gateway.client.get_document(get()).await.unwrap();
    let tokens = token_calls(&gateway);
    assert_eq!(tokens.len(), 2);
    assert_eq!(form(&tokens[1])["grant_type"], "refresh_token");
    assert!(
        api_calls(&gateway)
            .iter()
            .all(|r| r.path == format!("/document/{}", doc.id)),
        "no call was refused"
    );
    assert_eq!(gateway.sim.signnow().tokens_issued, 2);
}

#[tokio::test]
async fn a_revoked_token_is_replaced_and_only_safe_calls_are_replayed() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant"]);
    let invitations = gateway
        .client
        .send_invitation(field_send(
            &doc.id,
            vec![role_signer("a@example.com", "Tenant")],
        ))
        .await
        .unwrap()
        .into_inner()
        .invitations;

    gateway.sim.signnow().revoke_all_tokens();
    gateway
        .client
        .get_document(pb::GetDocumentRequest {
            provider: SIGNNOW,
            account: String::new(),
            document_id: doc.id.clone(),
        })
        .await
        .expect("a read is replayed with the new token");
    assert_eq!(token_calls(&gateway).len(), 2);

    gateway.sim.signnow().revoke_all_tokens();
    let before = api_calls(&gateway).len();
    let status = gateway
        .client
        .resend_invitation(pb::ResendInvitationRequest {
            provider: SIGNNOW,
            invitation_id: invitations[0].id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let info = common::error_info(&status);
    assert_eq!(info.metadata["outcome"], "not_applied");
    assert!(common::retry_delay(&status).is_some());
    assert_eq!(
        api_calls(&gateway).len(),
        before + 1,
        "the email-sending resend was not replayed"
    );
    assert_eq!(token_calls(&gateway).len(), 3, "a fresh token is ready");
    gateway
        .client
        .resend_invitation(pb::ResendInvitationRequest {
            provider: SIGNNOW,
            invitation_id: invitations[0].id.clone(),
            ..Default::default()
        })
        .await
        .expect("the caller's retry goes through");
}

#[tokio::test]
async fn a_burst_of_calls_fetches_one_token() {
    let gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant"]);
    let calls = (0..24).map(|_| {
        let mut client = gateway.client.clone();
        let document_id = doc.id.clone();
        tokio::spawn(async move {
            client
                .get_document(pb::GetDocumentRequest {
                    provider: SIGNNOW,
                    account: String::new(),
                    document_id,
                })
                .await
        })
    });
    for call in futures_util::future::join_all(calls).await {
        call.unwrap().unwrap();
    }
    assert_eq!(token_calls(&gateway).len(), 1);
}

#[tokio::test]
async fn rejected_credentials_are_the_gateway_s_problem() {
    let mut gateway = common::start_with(|config| {
        for account in &mut config.accounts {
            if let esign_gateway::config::Credentials::SignNowPassword { password, .. } =
                &mut account.credentials
            {
                *password = esign_gateway::secret::Secret::new("wrong-password");
            }
        }
    })
    .await;
    let doc = seed(&gateway, &["Tenant"]);
    let status = gateway
        .client
        .get_document(pb::GetDocumentRequest {
            provider: SIGNNOW,
            account: String::new(),
            document_id: doc.id,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "PROVIDER_CREDENTIALS_REJECTED");
    assert_eq!(info.metadata["providerCode"], "826");
    assert!(!status.message().contains("wrong-password"));
}
