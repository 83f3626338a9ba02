//! Leegality through the real gRPC server against the simulator.

mod calls;
mod errors;
mod send;

use crate::common;

use esign_gateway::{ProviderKind, pb};
use tonic::Code;

const LEEGALITY: i32 = pb::Provider::Leegality as i32;

fn seed(gateway: &common::TestGateway, invitees: &[(&str, &str)]) -> (String, Vec<String>) {
    common::seed_leegality(&gateway.sim, Some("IRN-7"), invitees)
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
