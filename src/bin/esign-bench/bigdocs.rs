//! Large documents: peak RSS under the payload budget.

use std::time::Duration;

use esign_gateway::{
    pb::{self, invitation_service_client::InvitationServiceClient},
    simulator::{Simulator, SimulatorConfig},
};

use crate::{
    load::channels,
    process::{start_gateway, start_simulator},
};

/// For 1, 4 and 8 concurrent creates (a fresh gateway each, so VmHWM is the
/// peak of that run): peak RSS over idle, OK and shed counts, and how many
/// creates reached the simulator.
pub(crate) async fn bigdocs_scenario(mb: usize, latency: Duration) {
    let sim = start_simulator(SimulatorConfig::default()).await;
    sim.set_latency(latency);
    let mut file = b"%PDF-1.7\n".to_vec();
    file.resize(mb * 1_000_000, b' ');
    let file = bytes::Bytes::from(file);
    println!("bigdocs: {mb} MB PDF per Leegality create, simulator answers after {latency:?}");
    for concurrency in [1usize, 4, 8] {
        let (server, _) = start_gateway(&sim, None).await;
        let idle = server.status_mib("VmRSS:");
        let creates_before = leegality_creates(&sim);
        let channel = channels(server.addr, 1).await.remove(0);
        let calls = (0..concurrency).map(|_| {
            let mut client = InvitationServiceClient::new(channel.clone())
                .max_encoding_message_size(32 * 1024 * 1024);
            let request = pb::SendInvitationRequest {
                provider: pb::Provider::Leegality as i32,
                request_id: uuid::Uuid::new_v4().to_string(),
                signers: vec![pb::Signer {
                    name: "Asha Rao".into(),
                    email: "asha@example.com".into(),
                    ..Default::default()
                }],
                provider_options: Some(pb::send_invitation_request::ProviderOptions::Leegality(
                    pb::LeegalityOptions {
                        profile_id: "wfDemo01".into(),
                        file_name: "large.pdf".into(),
                        file: file.clone(),
                    },
                )),
                ..Default::default()
            };
            async move { client.send_invitation(request).await }
        });
        let results = futures_util::future::join_all(calls).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let shed_with_retry = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .filter(|s| {
                s.code() == tonic::Code::ResourceExhausted
                    && tonic_types::StatusExt::get_details_retry_info(*s).is_some()
            })
            .count();
        let other: Vec<_> = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .filter(|s| s.code() != tonic::Code::ResourceExhausted)
            .map(|s| format!("{:?}", s.code()))
            .collect();
        let peak = server.status_mib("VmHWM:");
        let reached = leegality_creates(&sim) - creates_before;
        println!(
            "bigdocs: {concurrency} at once: idle RSS {idle:.1} MiB, peak RSS {peak:.1} MiB (+{:.1}), OK {ok}, shed with RetryInfo {shed_with_retry}, other {other:?}, creates at the simulator {reached}",
            peak - idle
        );
    }
}

fn leegality_creates(sim: &Simulator) -> usize {
    sim.requests_for(esign_gateway::ProviderKind::Leegality)
        .iter()
        .filter(|r| r.method == http::Method::POST && r.path == "/v3.0/sign/request")
        .count()
}
