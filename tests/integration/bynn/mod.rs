//! Bynn through the real gRPC server against the simulator: lifecycle rules,
//! the local limiter, every HTTP status, and the shape of each request.

mod resend;
mod send;

use crate::common;

use std::time::Duration;

use chrono::Duration as ChronoDuration;
use esign_gateway::{
    ProviderKind, pb,
    simulator::{CooldownHint, Fault, FaultKind},
};
use tonic::Code;

const BYNN: i32 = pb::Provider::Bynn as i32;

fn resend(token: &str) -> pb::ResendInvitationRequest {
    pb::ResendInvitationRequest {
        provider: BYNN,
        invitation_id: token.into(),
        ..Default::default()
    }
}

/// Resends `token` through the gateway and returns the invitation it answers.
async fn resent(gateway: &mut common::TestGateway, token: &str) -> pb::Invitation {
    gateway
        .client
        .resend_invitation(resend(token))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap()
}

/// Seeds a `sent` invitation last sent `sent_ago` before the simulator's now.
fn seed_sent(gateway: &common::TestGateway, attempts: u32, sent_ago: ChronoDuration) -> String {
    let now = gateway.sim.clock().now();
    gateway.sim.bynn().seed(
        "lena@example.com",
        "sent",
        attempts,
        Some(now - sent_ago),
        now - ChronoDuration::days(1),
    )
}

fn get(token: &str) -> pb::GetInvitationRequest {
    pb::GetInvitationRequest {
        provider: BYNN,
        account: String::new(),
        invitation_id: token.into(),
    }
}
