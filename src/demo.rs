//! Demo mode: the built-in provider simulator on loopback, seeded with a few
//! documents and invitations, and the gateway wired to it.

use std::net::SocketAddr;

use chrono::Duration;
use tokio::net::TcpListener;

use crate::{
    config::Config,
    domain::ProviderKind,
    server::RunningServer,
    simulator::{Simulator, SimulatorConfig},
};

/// What the demo seeded, so the printed commands use real ids.
#[derive(Debug, Clone)]
pub(crate) struct DemoSeeds {
    pub leegality_document_id: String,
    pub leegality_sign_url_uuid: String,
    pub leegality_expired_document_id: String,
    pub signnow_document_id: String,
    pub signnow_pending_invite_id: String,
    pub bynn_resendable_token: String,
    pub bynn_delivered_token: String,
}

/// Seeds the simulator with one example of each interesting state.
pub(crate) fn seed(simulator: &Simulator) -> DemoSeeds {
    let now = simulator.clock().now();
    let (leegality_document_id, leegality_sign_url_uuid, leegality_expired_document_id) = {
        let mut leegality = simulator.leegality();
        let live = leegality.seed_document(
            Some("DEMO-IRN-1"),
            &[
                ("Asha Rao", "asha.rao@example.com"),
                ("Vikram Shah", "vikram.shah@example.com"),
            ],
            now,
        );
        let expired = leegality.seed_document(
            Some("DEMO-IRN-2"),
            &[("Meera Iyer", "meera.iyer@example.com")],
            now,
        );
        if let Some(document) = leegality.documents.get_mut(&expired.id) {
            document.invitees[0].expired = true;
            document.invitees[0].expiry = now - Duration::days(2);
        }
        (live.id, live.invitees[0].uuid.clone(), expired.id)
    };
    let (signnow_document_id, signnow_pending_invite_id) = {
        let owner = simulator.config().credentials.signnow_username.clone();
        let mut signnow = simulator.signnow();
        let document = signnow.seed_document(&owner, "Demo NDA.pdf", &["Signer 1", "Signer 2"]);
        let signing = signnow.seed_document(&owner, "Demo Lease.pdf", &["Tenant"]);
        let invite = signnow
            .seed_field_invite(&signing.id, "tenant@example.com", now)
            .unwrap_or_default();
        (document.id, invite)
    };
    let (bynn_resendable_token, bynn_delivered_token) = {
        let mut bynn = simulator.bynn();
        let resendable = bynn.seed(
            "lena.jansen@example.com",
            "sent",
            1,
            Some(now - Duration::minutes(10)),
            now - Duration::minutes(10),
        );
        let delivered = bynn.seed(
            "+31612345678",
            "delivered",
            1,
            Some(now - Duration::hours(1)),
            now - Duration::hours(1),
        );
        (resendable, delivered)
    };
    DemoSeeds {
        leegality_document_id,
        leegality_sign_url_uuid,
        leegality_expired_document_id,
        signnow_document_id,
        signnow_pending_invite_id,
        bynn_resendable_token,
        bynn_delivered_token,
    }
}

/// `addr` as a client reaches it (a wildcard bind means loopback here).
fn loopback(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// Ready-to-paste grpcurl commands against a gateway at `addr`.
pub(crate) fn grpcurl_commands(addr: SocketAddr, seeds: &DemoSeeds) -> String {
    let target = loopback(addr);
    let call = |rpc: &str, body: String| {
        format!("grpcurl -plaintext -d '{body}' {target} esign.v1.InvitationService/{rpc}")
    };
    [
        format!("grpcurl -plaintext {target} list"),
        format!("grpcurl -plaintext {target} describe esign.v1.InvitationService"),
        format!("grpcurl -plaintext -d '{{\"service\":\"esign.v1.InvitationService\"}}' {target} grpc.health.v1.Health/Check"),
        format!("grpcurl -plaintext {target} esign.v1.InvitationService/ListProviders"),
        call(
            "GetInvitation",
            format!(r#"{{"provider":"PROVIDER_BYNN","invitation_id":"{}"}}"#, seeds.bynn_resendable_token),
        ),
        call(
            "ResendInvitation",
            format!(r#"{{"provider":"PROVIDER_BYNN","invitation_id":"{}"}}"#, seeds.bynn_resendable_token),
        ),
        call(
            "ResendInvitation",
            format!(r#"{{"provider":"PROVIDER_BYNN","invitation_id":"{}"}}"#, seeds.bynn_delivered_token),
        ),
        call(
            "GetDocument",
            format!(r#"{{"provider":"PROVIDER_LEEGALITY","document_id":"{}"}}"#, seeds.leegality_document_id),
        ),
        call(
            "ResendInvitation",
            format!(r#"{{"provider":"PROVIDER_LEEGALITY","invitation_id":"{}"}}"#, seeds.leegality_sign_url_uuid),
        ),
        call(
            "ReactivateDocument",
            format!(
                r#"{{"provider":"PROVIDER_LEEGALITY","document_id":"{}","expiry_days":7}}"#,
                seeds.leegality_expired_document_id
            ),
        ),
        call(
            "GetDocument",
            format!(r#"{{"provider":"PROVIDER_SIGNNOW","document_id":"{}"}}"#, seeds.signnow_document_id),
        ),
        call("ResendInvitation", r#"{"provider":"PROVIDER_UNSPECIFIED","invitation_id":"x"}"#.to_owned()),
    ]
    .join("\n")
}

/// Runs the demo until SIGINT/SIGTERM.
pub(crate) async fn run(mut config: Config) -> Result<(), crate::server::RunError> {
    let simulator_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| format!("cannot start the simulator: {error}"))?;
    let simulator = Simulator::start(SimulatorConfig::default(), simulator_listener)
        .await
        .map_err(|error| format!("cannot start the simulator: {error}"))?;
    config.accounts = simulator.gateway_accounts();
    let seeds = seed(&simulator);

    let listeners = crate::server::bind_or_move(&config, |variable, addr| {
        println!(
            "esign-gateway demo: the address for {variable} is taken; listening on {addr} instead"
        );
    })
    .await?;
    let server = RunningServer::launch(&config, simulator.clock().clone(), listeners).await?;
    // The simulated providers call the gateway's intake, as real ones would.
    if let Some(intake) = server.webhook_addr() {
        let host = loopback(intake);
        for kind in [
            ProviderKind::Leegality,
            ProviderKind::SignNow,
            ProviderKind::Bynn,
        ] {
            simulator.set_webhook_target(
                kind,
                format!("http://{host}/webhooks/{}/default", kind.as_str()),
            );
        }
    }

    if let Some(admin) = server.admin_addr() {
        println!(
            "esign-gateway demo: metrics and health on http://{}/metrics",
            loopback(admin)
        );
    }
    println!(
        "esign-gateway demo: gRPC on {}, simulated providers on http://{} ({}, {}, {})",
        server.local_addr(),
        simulator.addr(),
        ProviderKind::Leegality.display_name(),
        ProviderKind::SignNow.display_name(),
        ProviderKind::Bynn.display_name(),
    );
    println!(
        "Try these (Ctrl-C stops the demo):\n{}",
        grpcurl_commands(server.local_addr(), &seeds)
    );
    println!(
        "\nEvents: watch in one terminal, make the demo signer sign in another:\n\
         grpcurl -plaintext -d '{{}}' {} esign.v1.EventService/WatchEvents\n\
         curl -X POST http://{}/_control/signnow/invites/{}/sign",
        loopback(server.local_addr()),
        simulator.addr(),
        seeds.signnow_pending_invite_id,
    );

    crate::server::shutdown_signal().await;
    server.shutdown().await;
    Ok(())
}
