use super::*;

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
