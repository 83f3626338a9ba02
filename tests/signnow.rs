//! signNow through the real gRPC server against the simulator: tokens,
//! invites, resend, delete, cancel, status and the replace-signer saga.

mod common;

use std::time::Duration;

use axum::http::Method;
use esign_gateway::{
    domain::ProviderKind,
    pb,
    simulator::{Fault, FaultKind, RecordedRequest},
};
use tonic::Code;

const SIGNNOW: i32 = pb::Provider::Signnow as i32;

struct Doc {
    id: String,
    role_ids: Vec<String>,
}

fn seed(gateway: &common::TestGateway, roles: &[&str]) -> Doc {
    let owner = gateway.sim.config().credentials.signnow_username.clone();
    let document = gateway
        .sim
        .signnow()
        .seed_document(&owner, "Lease.pdf", roles);
    Doc {
        id: document.id,
        role_ids: document.roles.iter().map(|r| r.unique_id.clone()).collect(),
    }
}

fn role_signer(email: &str, role: &str) -> pb::Signer {
    pb::Signer {
        email: email.into(),
        role: role.into(),
        ..Default::default()
    }
}

fn field_send(document_id: &str, signers: Vec<pb::Signer>) -> pb::SendInvitationRequest {
    pb::SendInvitationRequest {
        provider: SIGNNOW,
        document_id: document_id.into(),
        signers,
        subject: "Lease for signing".into(),
        message: "Please sign".into(),
        provider_options: Some(pb::send_invitation_request::ProviderOptions::Signnow(
            pb::SignNowOptions {
                mode: pb::SignNowInviteMode::Field as i32,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// Calls to the API proper (token requests left out).
fn api_calls(gateway: &common::TestGateway) -> Vec<RecordedRequest> {
    gateway
        .sim
        .requests_for(ProviderKind::SignNow)
        .into_iter()
        .filter(|r| r.path != "/oauth2/token")
        .collect()
}

fn token_calls(gateway: &common::TestGateway) -> Vec<RecordedRequest> {
    gateway
        .sim
        .requests_for(ProviderKind::SignNow)
        .into_iter()
        .filter(|r| r.path == "/oauth2/token")
        .collect()
}

fn form(request: &RecordedRequest) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

async fn send_field_invites(gateway: &mut common::TestGateway, doc: &Doc) -> Vec<pb::Invitation> {
    gateway
        .client
        .send_invitation(field_send(
            &doc.id,
            vec![
                role_signer("tenant@example.com", "Tenant"),
                role_signer("landlord@example.com", "Landlord"),
            ],
        ))
        .await
        .unwrap()
        .into_inner()
        .invitations
}

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

fn get_document(document_id: &str) -> pb::GetDocumentRequest {
    pb::GetDocumentRequest {
        provider: SIGNNOW,
        account: String::new(),
        document_id: document_id.into(),
    }
}

fn freeform_send(document_id: &str, email: &str) -> pb::SendInvitationRequest {
    // No signnow options at all: no role, so a freeform invite is inferred.
    pb::SendInvitationRequest {
        provider: SIGNNOW,
        document_id: document_id.into(),
        signers: vec![pb::Signer {
            email: email.into(),
            ..Default::default()
        }],
        ..Default::default()
    }
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

fn replace(doc: &Doc, invite_id: &str, request_id: &str, email: &str) -> pb::ReplaceSignerRequest {
    pb::ReplaceSignerRequest {
        provider: SIGNNOW,
        request_id: request_id.into(),
        document_id: doc.id.clone(),
        invitation_id: invite_id.into(),
        new_signer: Some(pb::Signer {
            email: email.into(),
            ..Default::default()
        }),
        keep_invite_settings: true,
        ..Default::default()
    }
}

fn step_paths(gateway: &common::TestGateway) -> Vec<String> {
    api_calls(gateway)
        .iter()
        .filter(|r| r.method != Method::GET)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

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
