//! Fault injection over every RPC of every provider: each simulator fault
//! gives its documented gRPC code and reason, nothing panics, provider bodies
//! are read only up to the cap, and a billable call reaches the provider
//! exactly once whatever happens to its answer.

use crate::common;

use std::time::Duration;

use esign_gateway::{
    ProviderKind, pb,
    simulator::{Fault, FaultKind},
};
use futures_util::StreamExt as _;
use tonic::{Code, Request};

const LEEGALITY: i32 = pb::Provider::Leegality as i32;
const SIGNNOW: i32 = pb::Provider::Signnow as i32;
const BYNN: i32 = pb::Provider::Bynn as i32;
const CALLER_TIMEOUT: Duration = Duration::from_millis(1500);
const HANG: Duration = Duration::from_millis(2500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    LeegalitySend,
    LeegalityResend,
    LeegalityBatch,
    LeegalityReactivate,
    LeegalityDelete,
    LeegalityGet,
    SignNowField,
    SignNowFreeform,
    SignNowResend,
    SignNowBatch,
    SignNowDelete,
    SignNowCancel,
    SignNowGet,
    BynnSend,
    BynnResend,
    BynnBatch,
    BynnGet,
}

impl Rpc {
    const ALL: [Rpc; 17] = [
        Rpc::LeegalitySend,
        Rpc::LeegalityResend,
        Rpc::LeegalityBatch,
        Rpc::LeegalityReactivate,
        Rpc::LeegalityDelete,
        Rpc::LeegalityGet,
        Rpc::SignNowField,
        Rpc::SignNowFreeform,
        Rpc::SignNowResend,
        Rpc::SignNowBatch,
        Rpc::SignNowDelete,
        Rpc::SignNowCancel,
        Rpc::SignNowGet,
        Rpc::BynnSend,
        Rpc::BynnResend,
        Rpc::BynnBatch,
        Rpc::BynnGet,
    ];

    fn provider(self) -> ProviderKind {
        use Rpc::*;
        match self {
            LeegalitySend | LeegalityResend | LeegalityBatch | LeegalityReactivate
            | LeegalityDelete | LeegalityGet => ProviderKind::Leegality,
            BynnSend | BynnResend | BynnBatch | BynnGet => ProviderKind::Bynn,
            _ => ProviderKind::SignNow,
        }
    }

    /// Billed or notification-sending: must reach the provider once.
    fn is_billable(self) -> bool {
        use Rpc::*;
        matches!(
            self,
            LeegalitySend
                | LeegalityResend
                | LeegalityBatch
                | SignNowFreeform
                | SignNowResend
                | SignNowBatch
                | BynnSend
                | BynnResend
                | BynnBatch
        )
    }

    fn is_mutating(self) -> bool {
        !matches!(self, Rpc::LeegalityGet | Rpc::SignNowGet | Rpc::BynnGet)
    }

    /// signNow answers these with a status only; any 2xx is success (a
    /// field invite's ids are read back from the document afterwards).
    /// A 2xx is success whatever its body (a Bynn resend reads the
    /// invitation back when the body lacks it).
    fn ignores_success_body(self) -> bool {
        matches!(
            self,
            Rpc::SignNowField
                | Rpc::SignNowResend
                | Rpc::SignNowBatch
                | Rpc::SignNowDelete
                | Rpc::SignNowCancel
                | Rpc::BynnResend
                | Rpc::BynnBatch
        )
    }

    /// Per-item results: the fault shows in the item's status.
    fn is_fan_out(self) -> bool {
        matches!(self, Rpc::SignNowBatch | Rpc::BynnBatch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Status500,
    Status502,
    Status503RetryAfter,
    Status429,
    Hang,
    Reset,
    TruncatedJson,
    HtmlErrorPage,
    HugeBody,
    WrongContentType,
    EmptyBody,
}

impl Kind {
    const ALL: [Kind; 11] = [
        Kind::Status500,
        Kind::Status502,
        Kind::Status503RetryAfter,
        Kind::Status429,
        Kind::Hang,
        Kind::Reset,
        Kind::TruncatedJson,
        Kind::HtmlErrorPage,
        Kind::HugeBody,
        Kind::WrongContentType,
        Kind::EmptyBody,
    ];

    fn fault(self) -> FaultKind {
        let respond = |status, content_type, body: Vec<u8>, retry_after| FaultKind::Respond {
            status,
            content_type,
            body,
            retry_after,
        };
        match self {
            Kind::Status500 => FaultKind::status(500),
            Kind::Status502 => FaultKind::status(502),
            Kind::Status503RetryAfter => respond(503, "application/json", b"{}".to_vec(), Some(30)),
            Kind::Status429 => FaultKind::status(429),
            Kind::Hang => FaultKind::Delay(HANG),
            Kind::Reset => FaultKind::Reset,
            Kind::TruncatedJson => FaultKind::truncated_json(),
            Kind::HtmlErrorPage => FaultKind::html_error_page(502),
            Kind::HugeBody => respond(200, "application/json", huge_json(), None),
            Kind::WrongContentType => respond(200, "text/plain", b"OK".to_vec(), None),
            Kind::EmptyBody => respond(200, "application/json", Vec::new(), None),
        }
    }
}

/// A syntactically valid 10 MB JSON document.
fn huge_json() -> Vec<u8> {
    let mut body = b"{\"padding\": \"".to_vec();
    body.resize(10 * 1024 * 1024, b'x');
    body.extend_from_slice(b"\"}");
    body
}

/// (code, reason, RetryInfo) the caller must see; `None` code means OK.
fn expected(rpc: Rpc, kind: Kind) -> (Code, Option<&'static str>, Option<Duration>) {
    const UNAVAILABLE: (Code, Option<&str>) = (Code::Unavailable, Some("PROVIDER_UNAVAILABLE"));
    const UNRECOGNIZED: (Code, Option<&str>) =
        (Code::Unknown, Some("PROVIDER_UNRECOGNIZED_RESPONSE"));
    let ((code, reason), retry) = match kind {
        Kind::Status500 | Kind::Status502 | Kind::Reset | Kind::HtmlErrorPage => {
            (UNAVAILABLE, None)
        }
        Kind::Status503RetryAfter => (UNAVAILABLE, Some(Duration::from_secs(30))),
        Kind::Status429 => ((Code::ResourceExhausted, Some("RATE_LIMITED")), None),
        Kind::Hang => ((Code::DeadlineExceeded, Some("DEADLINE_EXCEEDED")), None),
        Kind::HugeBody => (UNRECOGNIZED, None),
        Kind::TruncatedJson | Kind::WrongContentType | Kind::EmptyBody
            if rpc.ignores_success_body() =>
        {
            ((Code::Ok, None), None)
        }
        Kind::TruncatedJson | Kind::WrongContentType | Kind::EmptyBody => (UNRECOGNIZED, None),
    };
    (code, reason, retry)
}

/// Ids the calls work on, made before any fault is injected.
struct Seeds {
    leegality_document: String,
    leegality_uuid: String,
    signnow_document: String,
    signnow_plain_document: String,
    signnow_invite: String,
    bynn_token: String,
}

async fn seed(gateway: &mut common::TestGateway) -> Seeds {
    let now = gateway.sim.clock().now();
    let leegality = gateway
        .sim
        .leegality()
        .seed_document(None, &[("A", "a@example.com")], now);
    // Expired, so a reactivation is valid.
    gateway
        .sim
        .leegality()
        .documents
        .get_mut(&leegality.id)
        .unwrap()
        .invitees[0]
        .expired = true;
    let owner = gateway.sim.config().credentials.signnow_username.clone();
    let signnow = gateway
        .sim
        .signnow()
        .seed_document(&owner, "Lease.pdf", &["Tenant"]);
    let plain = gateway.sim.signnow().seed_document(&owner, "Note.pdf", &[]);
    let invites = gateway
        .client
        .send_invitation(signnow_field(&signnow.id))
        .await
        .expect("seed field invite")
        .into_inner()
        .invitations;
    // A second role-less document keeps the field-invite case repeatable.
    let bynn_token = gateway.sim.bynn().seed(
        "lena@example.com",
        "sent",
        1,
        Some(now - chrono::Duration::hours(1)),
        now - chrono::Duration::days(1),
    );
    Seeds {
        leegality_document: leegality.id,
        leegality_uuid: leegality.invitees[0].uuid.clone(),
        signnow_document: signnow.id,
        signnow_plain_document: plain.id,
        signnow_invite: invites[0].id.clone(),
        bynn_token,
    }
}

fn signnow_field(document_id: &str) -> pb::SendInvitationRequest {
    pb::SendInvitationRequest {
        provider: SIGNNOW,
        document_id: document_id.into(),
        signers: vec![pb::Signer {
            email: "tenant@example.com".into(),
            role: "Tenant".into(),
            ..Default::default()
        }],
        provider_options: Some(pb::send_invitation_request::ProviderOptions::Signnow(
            pb::SignNowOptions {
                mode: pb::SignNowInviteMode::Field as i32,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// The path fragment a case's provider call goes to.
fn path_of(rpc: Rpc) -> &'static str {
    use Rpc::*;
    match rpc {
        LeegalitySend => "/v3.0/sign/request",
        LeegalityResend | LeegalityBatch => "/resend",
        LeegalityReactivate => "/reactivate",
        LeegalityDelete => "/invitation",
        LeegalityGet => "/v3.2/sign/request",
        SignNowField | SignNowFreeform => "/invite",
        SignNowResend | SignNowBatch => "/resend",
        SignNowDelete => "/field_invite/",
        SignNowCancel => "/fieldinvitecancel",
        SignNowGet => "/document/",
        BynnSend => "/autodoc/invitations",
        BynnResend | BynnBatch => "/resend",
        BynnGet => "/autodoc/invitations/",
    }
}

fn timed<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(CALLER_TIMEOUT);
    request
}

/// Makes the call; a fan-out batch reports its first item's status.
async fn invoke(
    client: &mut pb::invitation_service_client::InvitationServiceClient<tonic::transport::Channel>,
    rpc: Rpc,
    seeds: &Seeds,
) -> Result<(), tonic::Status> {
    use pb::send_invitation_request::ProviderOptions;
    let batch_outcome = |response: pb::BatchResendInvitationsResponse| {
        let status = response.results[0].status.clone().unwrap_or_default();
        if status.code == 0 {
            Ok(())
        } else {
            use prost::Message as _;
            Err(tonic::Status::with_details(
                Code::from_i32(status.code),
                status.message.clone(),
                status.encode_to_vec().into(),
            ))
        }
    };
    match rpc {
        Rpc::LeegalitySend => client
            .send_invitation(timed(pb::SendInvitationRequest {
                provider: LEEGALITY,
                signers: vec![pb::Signer {
                    name: "A".into(),
                    email: "a@example.com".into(),
                    ..Default::default()
                }],
                provider_options: Some(ProviderOptions::Leegality(pb::LeegalityOptions {
                    profile_id: "wfDemo01".into(),
                    file_name: "a.pdf".into(),
                    file: b"%PDF-1.7\n%%EOF\n".to_vec().into(),
                })),
                ..Default::default()
            }))
            .await
            .map(drop),
        Rpc::LeegalityResend => client
            .resend_invitation(timed(pb::ResendInvitationRequest {
                provider: LEEGALITY,
                invitation_id: seeds.leegality_uuid.clone(),
                ..Default::default()
            }))
            .await
            .map(drop),
        Rpc::LeegalityBatch => client
            .batch_resend_invitations(timed(pb::BatchResendInvitationsRequest {
                provider: LEEGALITY,
                invitation_ids: vec![seeds.leegality_uuid.clone()],
                ..Default::default()
            }))
            .await
            .and_then(|r| batch_outcome(r.into_inner())),
        Rpc::LeegalityReactivate => client
            .reactivate_document(timed(pb::ReactivateDocumentRequest {
                provider: LEEGALITY,
                document_id: seeds.leegality_document.clone(),
                ..Default::default()
            }))
            .await
            .map(drop),
        Rpc::LeegalityDelete => client
            .delete_invitation(timed(pb::DeleteInvitationRequest {
                provider: LEEGALITY,
                invitation_id: seeds.leegality_uuid.clone(),
                ..Default::default()
            }))
            .await
            .map(drop),
        Rpc::LeegalityGet => client
            .get_document(timed(pb::GetDocumentRequest {
                provider: LEEGALITY,
                account: String::new(),
                document_id: seeds.leegality_document.clone(),
            }))
            .await
            .map(drop),
        Rpc::SignNowField => {
            // A fresh document each time: the seeded one already has invites.
            let document = seeds.signnow_document.clone();
            client
                .send_invitation(timed(signnow_field(&document)))
                .await
                .map(drop)
        }
        Rpc::SignNowFreeform => {
            let mut request = signnow_field(&seeds.signnow_plain_document);
            request.signers[0].role.clear();
            if let Some(ProviderOptions::Signnow(options)) = request.provider_options.as_mut() {
                options.mode = pb::SignNowInviteMode::Freeform as i32;
            }
            client.send_invitation(timed(request)).await.map(drop)
        }
        Rpc::SignNowResend => client
            .resend_invitation(timed(pb::ResendInvitationRequest {
                provider: SIGNNOW,
                invitation_id: seeds.signnow_invite.clone(),
                ..Default::default()
            }))
            .await
            .map(drop),
        Rpc::SignNowBatch => client
            .batch_resend_invitations(timed(pb::BatchResendInvitationsRequest {
                provider: SIGNNOW,
                invitation_ids: vec![seeds.signnow_invite.clone()],
                ..Default::default()
            }))
            .await
            .and_then(|r| batch_outcome(r.into_inner())),
        Rpc::SignNowDelete => client
            .delete_invitation(timed(pb::DeleteInvitationRequest {
                provider: SIGNNOW,
                invitation_id: seeds.signnow_invite.clone(),
                ..Default::default()
            }))
            .await
            .map(drop),
        Rpc::SignNowCancel => client
            .cancel_invitations(timed(pb::CancelInvitationsRequest {
                provider: SIGNNOW,
                document_id: seeds.signnow_document.clone(),
                reason: "Terms changed".into(),
                ..Default::default()
            }))
            .await
            .map(drop),
        Rpc::SignNowGet => client
            .get_document(timed(pb::GetDocumentRequest {
                provider: SIGNNOW,
                account: String::new(),
                document_id: seeds.signnow_document.clone(),
            }))
            .await
            .map(drop),
        Rpc::BynnSend => client
            .send_invitation(timed(pb::SendInvitationRequest {
                provider: BYNN,
                signers: vec![pb::Signer {
                    email: "new@example.com".into(),
                    ..Default::default()
                }],
                provider_options: Some(ProviderOptions::Bynn(pb::BynnOptions {
                    workflow_token: "wf_demo_onboarding".into(),
                    channel: pb::BynnChannel::Email as i32,
                    locale: String::new(),
                })),
                ..Default::default()
            }))
            .await
            .map(drop),
        Rpc::BynnResend => client
            .resend_invitation(timed(pb::ResendInvitationRequest {
                provider: BYNN,
                invitation_id: seeds.bynn_token.clone(),
                ..Default::default()
            }))
            .await
            .map(drop),
        Rpc::BynnBatch => client
            .batch_resend_invitations(timed(pb::BatchResendInvitationsRequest {
                provider: BYNN,
                invitation_ids: vec![seeds.bynn_token.clone()],
                ..Default::default()
            }))
            .await
            .and_then(|r| batch_outcome(r.into_inner())),
        Rpc::BynnGet => client
            .get_invitation(timed(pb::GetInvitationRequest {
                provider: BYNN,
                account: String::new(),
                invitation_id: seeds.bynn_token.clone(),
            }))
            .await
            .map(drop),
    }
}

/// Runs one (RPC, fault) case on its own simulator and gateway; returns a
/// description of each mismatch.
async fn run_case(rpc: Rpc, kind: Kind) -> Vec<String> {
    let mut gateway = common::start().await;
    let seeds = seed(&mut gateway).await;
    if rpc == Rpc::SignNowField {
        // The seeded document already carries the open invite; use one
        // without invites for the case itself.
        let owner = gateway.sim.config().credentials.signnow_username.clone();
        let fresh = gateway
            .sim
            .signnow()
            .seed_document(&owner, "Fresh.pdf", &["Tenant"]);
        let seeds = Seeds {
            signnow_document: fresh.id,
            ..seeds
        };
        return check(&mut gateway, rpc, kind, &seeds).await;
    }
    check(&mut gateway, rpc, kind, &seeds).await
}

async fn check(
    gateway: &mut common::TestGateway,
    rpc: Rpc,
    kind: Kind,
    seeds: &Seeds,
) -> Vec<String> {
    let path = path_of(rpc);
    let method_filter = match rpc {
        // GETs and writes share some path fragments.
        Rpc::LeegalitySend | Rpc::BynnSend | Rpc::SignNowField | Rpc::SignNowFreeform => {
            Some(http::Method::POST)
        }
        Rpc::LeegalityGet | Rpc::SignNowGet | Rpc::BynnGet => Some(http::Method::GET),
        _ => None,
    };
    let mut fault = Fault::new(rpc.provider(), path, kind.fault());
    if let Some(method) = &method_filter {
        fault = fault.on(method.clone());
    }
    let before = gateway.sim.requests_for(rpc.provider()).len();
    gateway.sim.inject(fault);
    let outcome = invoke(&mut gateway.client, rpc, seeds).await;
    let sent = gateway.sim.requests_for(rpc.provider())[before..]
        .iter()
        .filter(|r| r.path.contains(path) && method_filter.as_ref().is_none_or(|m| r.method == *m))
        .count();

    let mut problems = Vec::new();
    let label = format!("{rpc:?} x {kind:?}");
    let (code, reason, retry) = expected(rpc, kind);
    match (&outcome, code) {
        (Ok(()), Code::Ok) => {}
        (Ok(()), _) => problems.push(format!("{label}: OK, expected {code:?}")),
        (Err(status), Code::Ok) => problems.push(format!(
            "{label}: {:?} {}, expected OK",
            status.code(),
            status.message()
        )),
        (Err(status), _) => {
            if status.code() != code {
                problems.push(format!(
                    "{label}: {:?} ({}), expected {code:?}",
                    status.code(),
                    status.message()
                ));
            }
            use tonic_types::StatusExt as _;
            let Some(info) = status
                .check_error_details()
                .ok()
                .and_then(|d| d.error_info().cloned())
            else {
                problems.push(format!(
                    "{label}: {:?} {} without ErrorInfo",
                    status.code(),
                    status.message()
                ));
                return problems;
            };
            if Some(info.reason.as_str()) != reason {
                problems.push(format!(
                    "{label}: reason {}, expected {reason:?}",
                    info.reason
                ));
            }
            if let Some(retry) = retry
                && common::retry_delay(status) != Some(retry)
            {
                problems.push(format!(
                    "{label}: RetryInfo {:?}, expected {retry:?}",
                    common::retry_delay(status)
                ));
            }
            if kind == Kind::Hang
                && rpc.is_mutating()
                && !rpc.is_fan_out()
                && info.metadata.get("outcome").map(String::as_str) != Some("unknown")
            {
                problems.push(format!("{label}: no outcome=unknown"));
            }
        }
    }
    if rpc.is_billable() && sent != 1 {
        problems.push(format!(
            "{label}: billable call reached the provider {sent} times"
        ));
    }
    problems
}

// Several worker threads: the 10 MB bodies must not stall the other cases'
// clients past their deadlines.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_rpc_under_every_fault() {
    let cases: Vec<(Rpc, Kind)> = Rpc::ALL
        .iter()
        .flat_map(|rpc| Kind::ALL.iter().map(move |kind| (*rpc, *kind)))
        .collect();
    assert_eq!(cases.len(), 17 * 11);
    let problems: Vec<String> = futures_util::stream::iter(cases)
        .map(|(rpc, kind)| run_case(rpc, kind))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
