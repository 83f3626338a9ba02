//! signNow through the real gRPC server against the simulator: tokens,
//! invites, resend, delete, cancel, status and the replace-signer saga.

mod errors;
mod invites;
mod replace;
mod tokens;

use crate::common;

use std::time::Duration;

use axum::http::Method;
use esign_gateway::{
    ProviderKind, pb,
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
