use super::*;

#[tokio::test]
async fn replace_signer_runs_three_steps() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant", "Landlord"]);
    let invitations = send_field_invites(&mut gateway, &doc).await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let before = step_paths(&gateway).len();
    let invitation = gateway
        .client
        .replace_signer(replace(
            &doc,
            &invitations[0].id,
            &request_id,
            "new.tenant@example.com",
        ))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(
        step_paths(&gateway)[before..],
        [
            format!("DELETE /field_invite/{}", invitations[0].id),
            "POST /field_invite".to_owned(),
            format!("POST /document/{}/trigger_fieldinvite", doc.id),
        ]
    );
    let step2 = api_calls(&gateway)
        .into_iter()
        .find(|r| r.path == "/field_invite")
        .unwrap();
    assert_eq!(
        step2.json(),
        serde_json::json!({
            "email": "new.tenant@example.com",
            "is_replace": true,
            "role_id": doc.role_ids[0],
        })
    );
    assert_eq!(
        invitation.signer.as_ref().unwrap().email,
        "new.tenant@example.com"
    );
    assert_eq!(invitation.signer.as_ref().unwrap().role, "Tenant");
    assert_eq!(invitation.state, pb::InvitationState::Pending as i32);
    let stored = gateway.sim.signnow().documents[&doc.id].clone();
    assert!(stored.field_invites.iter().any(|i| i.id == invitation.id));

    // The same request again: done already, nothing is repeated.
    let again = gateway
        .client
        .replace_signer(replace(
            &doc,
            &invitations[0].id,
            &request_id,
            "new.tenant@example.com",
        ))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert_eq!(again.id, invitation.id);
    assert_eq!(step_paths(&gateway).len(), before + 3);

    // The same id for another replacement is refused.
    let status = gateway
        .client
        .replace_signer(replace(
            &doc,
            &invitations[0].id,
            &request_id,
            "someone.else@example.com",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(common::error_info(&status).reason, "REQUEST_ID_REUSED");
}

#[tokio::test]
async fn replace_signer_checks_before_the_first_step() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant", "Landlord"]);
    let invitations = send_field_invites(&mut gateway, &doc).await;
    let before = step_paths(&gateway).len();

    let status = gateway
        .client
        .replace_signer(replace(&doc, &invitations[0].id, "", "n@example.com"))
        .await
        .unwrap_err();
    assert_eq!(
        common::field_violations(&status),
        vec!["request_id".to_owned()]
    );

    let fresh = || uuid::Uuid::new_v4().to_string();
    let status = gateway
        .client
        .replace_signer(replace(&doc, &invitations[0].id, &fresh(), "not-an-email"))
        .await
        .unwrap_err();
    assert_eq!(
        common::field_violations(&status),
        vec!["new_signer.email".to_owned()]
    );

    let mut wrong_role = replace(&doc, &invitations[0].id, &fresh(), "n@example.com");
    wrong_role.new_signer.as_mut().unwrap().role_id = doc.role_ids[1].clone();
    let status = gateway.client.replace_signer(wrong_role).await.unwrap_err();
    assert_eq!(
        common::field_violations(&status),
        vec!["new_signer.role_id".to_owned()]
    );

    let status = gateway
        .client
        .replace_signer(replace(
            &doc,
            "0123456789abcdef0123456789abcdef01234567",
            &fresh(),
            "n@example.com",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    gateway
        .sim
        .signnow()
        .documents
        .get_mut(&doc.id)
        .unwrap()
        .field_invites[0]
        .status = "fulfilled".into();
    let status = gateway
        .client
        .replace_signer(replace(&doc, &invitations[0].id, &fresh(), "n@example.com"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "INVALID_INVITATION_STATE");
    assert_eq!(info.metadata["status"], "fulfilled");

    assert_eq!(step_paths(&gateway).len(), before, "no step ran");
}

#[tokio::test]
async fn replace_signer_resumes_after_step_2_fails_with_its_answer_lost() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant", "Landlord"]);
    let invitations = send_field_invites(&mut gateway, &doc).await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let request = || {
        replace(
            &doc,
            &invitations[0].id,
            &request_id,
            "new.tenant@example.com",
        )
    };
    // Step 2 takes effect but its answer is lost, and the retries hit a
    // broken signNow: the caller sees the saga stop after step 1.
    gateway.sim.inject(
        Fault::new(
            ProviderKind::SignNow,
            "/field_invite",
            FaultKind::LoseAnswer,
        )
        .on(Method::POST)
        .times(1),
    );
    gateway.sim.inject(
        Fault::new(
            ProviderKind::SignNow,
            "/field_invite",
            FaultKind::json(
                400,
                &serde_json::json!({"errors": [{"code": 99999, "message": "Try later"}]}),
            ),
        )
        .on(Method::POST)
        .times(1),
    );
    let before = step_paths(&gateway).len();
    let status = gateway.client.replace_signer(request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "REPLACE_SIGNER_INCOMPLETE");
    assert_eq!(info.metadata["completedSteps"], "delete");
    assert_eq!(info.metadata["failedStep"], "create");
    assert!(common::retry_delay(&status).is_some());

    let invitation = gateway
        .client
        .replace_signer(request())
        .await
        .expect("resumes at step 2; 'Invite already exists.' counts as done")
        .into_inner()
        .invitation
        .unwrap();
    let steps = step_paths(&gateway)[before..].to_vec();
    assert_eq!(
        steps,
        [
            format!("DELETE /field_invite/{}", invitations[0].id),
            "POST /field_invite".to_owned(),
            "POST /field_invite".to_owned(),
            "POST /field_invite".to_owned(),
            format!("POST /document/{}/trigger_fieldinvite", doc.id),
        ],
        "step 1 ran once; step 2 was tried, retried, then resumed"
    );
    assert_eq!(invitation.signer.unwrap().email, "new.tenant@example.com");
    let stored = gateway.sim.signnow().documents[&doc.id].clone();
    let tenants: Vec<_> = stored
        .field_invites
        .iter()
        .filter(|i| i.role == "Tenant")
        .collect();
    assert_eq!(tenants.len(), 1, "one invite for the role");
    assert_eq!(tenants[0].status, "pending");
}

#[tokio::test]
async fn replace_signer_resumes_after_step_3_fails() {
    let mut gateway = common::start().await;
    let doc = seed(&gateway, &["Tenant", "Landlord"]);
    let invitations = send_field_invites(&mut gateway, &doc).await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let request = || replace(&doc, &invitations[0].id, &request_id, "n@example.com");
    gateway.sim.inject(
        Fault::new(
            ProviderKind::SignNow,
            "/trigger_fieldinvite",
            FaultKind::status(503),
        )
        .times(1),
    );
    let before = step_paths(&gateway).len();
    let status = gateway.client.replace_signer(request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    let info = common::error_info(&status);
    assert_eq!(info.metadata["completedSteps"], "delete,create");
    assert_eq!(info.metadata["failedStep"], "trigger");
    assert_eq!(info.metadata["causeReason"], "PROVIDER_UNAVAILABLE");

    gateway.client.replace_signer(request()).await.unwrap();
    let steps = step_paths(&gateway)[before..].to_vec();
    assert_eq!(
        steps,
        [
            format!("DELETE /field_invite/{}", invitations[0].id),
            "POST /field_invite".to_owned(),
            format!("POST /document/{}/trigger_fieldinvite", doc.id),
            format!("POST /document/{}/trigger_fieldinvite", doc.id),
        ],
        "only the failed trigger was repeated"
    );
}
